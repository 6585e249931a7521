/** The providers lifeboat knows, filled explicitly; the core never imports an implementation. */
import { UserError } from "../common/errors.js";
import { ExportProvider } from "./export/export-provider.js";
import { LocalProvider } from "./local/local-provider.js";
import type { Provider } from "./provider.js";

const providers: ReadonlyMap<string, () => Provider> = new Map<string, () => Provider>([
  ["export", () => new ExportProvider()],
  ["local", () => new LocalProvider()],
]);

export function providerNames(): string[] {
  return [...providers.keys()];
}

export function provider(name: string): Provider {
  const make = providers.get(name);
  if (!make) throw new UserError(`Unknown provider ${name}: choose one of ${providerNames().join(", ")}`);
  return make();
}
