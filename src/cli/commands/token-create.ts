/** `lifeboat token create --project P [--ttl 24h]`: prints the install token alone on stdout. */
import type { Command } from "../command.js";
import { parseDuration } from "../output/format.js";
import { encode, JSON_FLAG, PROJECT_FLAG, printJson } from "./common-flags.js";

export const tokenCreate: Command = {
  name: "token create",
  summary: "Create an install token for agents (shown once)",
  flags: {
    project: PROJECT_FLAG,
    ttl: { type: "string", description: "Validity: 30m, 24h, 7d (default 24h)", placeholder: "DURATION" },
    json: JSON_FLAG,
  },
  async run(args, io) {
    const project = args.required("project", this.name);
    const ttl = args.string("ttl");
    const body = ttl === undefined ? {} : { ttlSeconds: parseDuration(ttl) };
    const token = await io
      .client()
      .post<{ id: string; token: string; expiresAt: string }>(
        `/api/projects/${encode(project)}/tokens`,
        body,
      );
    if (args.boolean("json")) return printJson(io, token);
    io.stdout.write(`${token.token}\n`);
    io.stderr.write(
      `Install token ${token.id}, valid until ${token.expiresAt}: run \`lifeboat agent --token <token>\` on each source machine\n`,
    );
  },
};
