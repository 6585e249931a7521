/** `lifeboat token revoke ID`. */
import type { InstallToken } from "../../common/model.js";
import type { Command } from "../command.js";
import { encode, JSON_FLAG, printJson } from "./common-flags.js";

export const tokenRevoke: Command = {
  name: "token revoke",
  summary: "Revoke an install token: agents can no longer register with it",
  usage: "TOKEN_ID",
  positionals: { min: 1, max: 1 },
  flags: { json: JSON_FLAG },
  async run(args, io) {
    const token = await io
      .client()
      .request<InstallToken>("DELETE", `/api/tokens/${encode(args.positionals[0] ?? "")}`);
    if (args.boolean("json")) return printJson(io, token);
    io.stdout.write(`Revoked install token ${token.id} at ${token.revokedAt ?? "?"}\n`);
  },
};
