/**
 * The CLI's HTTPS client for the console API: TLS 1.3 only, trusting only the console's
 * CA from the client config, the admin key as a bearer token (or, for an agent, a client
 * certificate). A refused request becomes
 * an ApiError whose message says so ("Console refused the request (409): ...").
 */
import { request } from "node:https";

/** The CLI passes its client.json; an agent passes its client certificate instead of a key. */
export interface ApiClientOptions {
  readonly consoleUrl: string;
  readonly caPem: string;
  readonly apiKey?: string;
  readonly clientCert?: { readonly certPem: string; readonly keyPem: string };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(`Console refused the request (${status}): ${detail}`);
    this.name = "ApiError";
  }
}

const TIMEOUT_MS = 30_000;

export class ApiClient {
  readonly #config: ApiClientOptions;
  readonly #base: URL;

  constructor(config: ApiClientOptions) {
    this.#config = config;
    this.#base = new URL(config.consoleUrl);
  }

  get consoleUrl(): string {
    return this.#config.consoleUrl;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>("POST", path, body);
  }

  request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const url = new URL(path, this.#base);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ca: this.#config.caPem,
          minVersion: "TLSv1.3",
          timeout: TIMEOUT_MS,
          ...(this.#config.clientCert === undefined
            ? {}
            : { cert: this.#config.clientCert.certPem, key: this.#config.clientCert.keyPem }),
          headers: {
            ...(this.#config.apiKey === undefined ? {} : { authorization: `Bearer ${this.#config.apiKey}` }),
            accept: "application/json",
            ...(payload === undefined
              ? {}
              : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            const status = res.statusCode ?? 0;
            let parsed: unknown;
            try {
              parsed = text === "" ? null : JSON.parse(text);
            } catch {
              parsed = undefined;
            }
            if (status >= 200 && status < 300) {
              resolve((parsed === undefined ? text : parsed) as T);
              return;
            }
            const fromBody = (parsed as { error?: { message?: unknown } } | null | undefined)?.error?.message;
            const message =
              typeof fromBody === "string" ? fromBody : text || (res.statusMessage ?? "no reason given");
            reject(new ApiError(status, message));
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
      req.on("error", (err) => {
        reject(
          new Error(`Cannot reach the console at ${this.#config.consoleUrl}: ${err.message}`, { cause: err }),
        );
      });
      req.end(payload);
    });
  }
}
