import { test } from "node:test";
import assert from "node:assert/strict";
import { renderTable } from "./table.js";

test("renderTable() pads columns, right-aligns numeric columns and shows - for missing cells", () => {
  const text = renderTable(
    ["NAME", "PROGRESS", "STATE"],
    [
      ["web-1", "100%", "CONTINUOUS"],
      ["database-01", "7%", null],
    ],
  );
  assert.equal(
    text,
    [
      "NAME         PROGRESS  STATE",
      "web-1            100%  CONTINUOUS",
      "database-01        7%  -",
      "",
    ].join("\n"),
  );
  assert.equal(renderTable(["A"], []), "A\n");
});
