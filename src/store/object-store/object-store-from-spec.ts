/**
 * The ObjectStore registry: builds a backend from the operator's store spec, the one file
 * that names every implementation (the cloud SDKs load only when a spec asks for them).
 *
 *   local:/var/lib/lifeboat/layers    or just   /var/lib/lifeboat/layers
 *   s3://bucket/prefix?region=eu-west-1&endpoint=https://minio:9000&pathStyle=1
 *   azure://container/prefix?endpoint=https://account.blob.core.windows.net
 *
 * Secrets never appear in a spec: S3 takes the AWS SDK's usual sources (AWS_ACCESS_KEY_ID
 * and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, instance or task role); Azure takes
 * AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY.
 */
import { isAbsolute } from "node:path";
import { UserError } from "../../common/errors.js";
import { checkObjectPrefix } from "./object-key.js";
import type { ObjectStore } from "./object-store.js";

export type ObjectStoreSpec =
  | { readonly kind: "local"; readonly root: string }
  | {
      readonly kind: "s3";
      readonly bucket: string;
      readonly prefix: string;
      readonly region: string | undefined;
      readonly endpoint: string | undefined;
      readonly forcePathStyle: boolean;
    }
  | {
      readonly kind: "azure";
      readonly container: string;
      readonly prefix: string;
      readonly endpoint: string | undefined;
    };

export type SpecEnvironment = Readonly<Record<string, string | undefined>>;

const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const AZURE_CONTAINER = /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/;
const SPEC_HELP = "use local:/absolute/path, s3://bucket/prefix?region=... or azure://container/prefix";

/** Parses a store spec without touching the network or the environment. */
export function parseObjectStoreSpec(spec: string): ObjectStoreSpec {
  const text = spec.trim();
  if (text.startsWith("/")) return localSpec(text);
  if (text.startsWith("local:")) return localSpec(text.slice("local:".length));
  const scheme = /^([a-z0-9+.-]+):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme !== "s3" && scheme !== "azure") {
    throw new UserError(`Unknown object store spec ${quoteSafely(text)}: ${SPEC_HELP}`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UserError(`Object store spec is not a valid URL: ${quoteSafely(text)}: ${SPEC_HELP}`);
  }
  if (url.username !== "" || url.password !== "") {
    // Not echoed: what sits before the '@' is probably a secret.
    throw new UserError(
      `The ${scheme}:// store spec holds credentials before its '@': remove them and put them in the environment`,
    );
  }
  if (url.port !== "")
    throw new UserError(
      `A ${scheme}:// spec names a ${scheme === "s3" ? "bucket" : "container"}, not host:port; use ?endpoint=`,
    );
  const params = readParams(url, scheme === "s3" ? ["region", "endpoint", "pathStyle"] : ["endpoint"]);
  // The raw path, not url.pathname: URL parsing would quietly resolve "/../x" to "/x".
  const afterScheme = text.slice(scheme.length + 3).split(/[?#]/)[0] ?? "";
  const slash = afterScheme.indexOf("/");
  const prefix = parsePrefix(slash < 0 ? "" : afterScheme.slice(slash), text);
  const endpoint = params.get("endpoint");
  if (endpoint !== undefined) checkEndpoint(endpoint);
  if (scheme === "s3") {
    if (!S3_BUCKET.test(url.hostname)) {
      throw new UserError(
        `Invalid S3 bucket name ${JSON.stringify(url.hostname)} in ${quoteSafely(text)}: 3-63 characters of a-z 0-9 . -`,
      );
    }
    const pathStyle = params.get("pathStyle");
    if (pathStyle !== undefined && pathStyle !== "0" && pathStyle !== "1") {
      throw new UserError(`Invalid pathStyle=${pathStyle} in the s3:// spec: use 1 or 0`);
    }
    return {
      kind: "s3",
      bucket: url.hostname,
      prefix,
      region: params.get("region"),
      endpoint,
      forcePathStyle: pathStyle === "1",
    };
  }
  if (!AZURE_CONTAINER.test(url.hostname)) {
    throw new UserError(
      `Invalid Azure container name ${JSON.stringify(url.hostname)} in ${quoteSafely(text)}: 3-63 characters of a-z 0-9 -, no "--"`,
    );
  }
  return { kind: "azure", container: url.hostname, prefix, endpoint };
}

/** Builds the store a spec names; cloud credentials come from `env` (by default, the process's). */
export async function objectStoreFromSpec(
  spec: string,
  env: SpecEnvironment = process.env,
): Promise<ObjectStore> {
  const parsed = parseObjectStoreSpec(spec);
  switch (parsed.kind) {
    case "local": {
      const { LocalObjectStore } = await import("./local-object-store.js");
      return LocalObjectStore.open(parsed.root);
    }
    case "s3": {
      const { S3ObjectStore } = await import("./s3-object-store.js");
      const region =
        parsed.region ??
        env["AWS_REGION"] ??
        env["AWS_DEFAULT_REGION"] ??
        (parsed.endpoint !== undefined ? "us-east-1" : undefined);
      if (region === undefined) {
        throw new UserError(
          `No AWS region for s3://${parsed.bucket}: add ?region=... to the spec, or set AWS_REGION`,
        );
      }
      const credentials = awsCredentials(env);
      return new S3ObjectStore({
        bucket: parsed.bucket,
        prefix: parsed.prefix,
        region,
        forcePathStyle: parsed.forcePathStyle,
        ...(parsed.endpoint !== undefined ? { endpoint: parsed.endpoint } : {}),
        ...(credentials !== undefined ? { credentials } : {}),
      });
    }
    case "azure": {
      const { AzureBlobObjectStore } = await import("./azure-blob-object-store.js");
      const base = { container: parsed.container, prefix: parsed.prefix };
      const connectionString = env["AZURE_STORAGE_CONNECTION_STRING"];
      if (connectionString !== undefined && connectionString !== "") {
        if (parsed.endpoint !== undefined) {
          throw new UserError(
            "An azure:// spec with ?endpoint= takes AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, not a connection string (it names its own endpoint)",
          );
        }
        return new AzureBlobObjectStore({ ...base, connectionString });
      }
      const account = env["AZURE_STORAGE_ACCOUNT"];
      const key = env["AZURE_STORAGE_KEY"];
      if (account === undefined || account === "" || key === undefined || key === "") {
        throw new UserError(
          `No Azure credentials for azure://${parsed.container}: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY`,
        );
      }
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || key.length % 4 !== 0) {
        throw new UserError(
          "AZURE_STORAGE_KEY is not a valid account key: expected base64, as the portal shows it",
        );
      }
      if (!/^[a-z0-9]{3,24}$/.test(account)) {
        throw new UserError(
          `AZURE_STORAGE_ACCOUNT ${JSON.stringify(account)} is not a storage account name (3-24 of a-z 0-9)`,
        );
      }
      const { StorageSharedKeyCredential } = await import("@azure/storage-blob");
      return new AzureBlobObjectStore({
        ...base,
        accountUrl: parsed.endpoint ?? `https://${account}.blob.core.windows.net`,
        credential: new StorageSharedKeyCredential(account, key),
      });
    }
  }
}

function localSpec(path: string): ObjectStoreSpec {
  if (path === "" || !isAbsolute(path)) {
    throw new UserError(
      `A local object store needs an absolute path, not ${JSON.stringify(path)}: use local:/path/to/dir`,
    );
  }
  return { kind: "local", root: path };
}

function readParams(url: URL, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of url.searchParams) {
    if (!allowed.includes(name)) {
      throw new UserError(
        `Unknown parameter ${JSON.stringify(name)} in the store spec: allowed are ${allowed.join(", ")}`,
      );
    }
    if (out.has(name)) throw new UserError(`Parameter ${name} appears twice in the store spec`);
    out.set(name, value);
  }
  return out;
}

function parsePrefix(pathname: string, text: string): string {
  const prefix = pathname.replace(/^\/+|\/+$/g, "");
  if (prefix === "") return "";
  try {
    checkObjectPrefix(`${prefix}/`);
  } catch {
    throw new UserError(
      `Invalid prefix ${JSON.stringify(prefix)} in ${quoteSafely(text)}: slash-separated segments of A-Z a-z 0-9 . _ -`,
    );
  }
  return prefix;
}

function checkEndpoint(endpoint: string): void {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new UserError(
      `Invalid endpoint in the store spec: ${JSON.stringify(endpoint)} is not a URL (use https://host:port)`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new UserError(`Invalid endpoint in the store spec: use http:// or https://, not ${url.protocol}`);
  }
  if (url.username !== "" || url.password !== "") {
    throw new UserError(
      "The endpoint in the store spec holds credentials: remove them and put them in the environment",
    );
  }
}

function awsCredentials(
  env: SpecEnvironment,
): { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined {
  const accessKeyId = env["AWS_ACCESS_KEY_ID"];
  const secretAccessKey = env["AWS_SECRET_ACCESS_KEY"];
  const sessionToken = env["AWS_SESSION_TOKEN"];
  if (accessKeyId === undefined && secretAccessKey === undefined) return undefined; // the SDK's own chain
  if (
    accessKeyId === undefined ||
    secretAccessKey === undefined ||
    accessKeyId === "" ||
    secretAccessKey === ""
  ) {
    throw new UserError(
      "Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (to use a profile or a role)",
    );
  }
  return {
    accessKeyId,
    secretAccessKey,
    ...(sessionToken !== undefined && sessionToken !== "" ? { sessionToken } : {}),
  };
}

/** A spec for an error message, with anything between "//" and "@" cut out. */
function quoteSafely(text: string): string {
  return JSON.stringify(text.replace(/\/\/[^/?#&]*@/g, "//…@"));
}
