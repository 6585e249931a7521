import { test } from "node:test";
import assert from "node:assert/strict";
import { UserError, errorMessage } from "./errors.js";

test("UserError carries a status and a cause", () => {
  const cause = new Error("inner");
  const err = new UserError("Project not found: p1", 404, { cause });
  assert.equal(err.status, 404);
  assert.equal(err.cause, cause);
  assert.equal(errorMessage(err), "Project not found: p1");
  assert.equal(errorMessage("plain"), "plain");
});
