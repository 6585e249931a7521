/**
 * A minimal QMP (QEMU Machine Protocol) client over a unix socket: the greeting, capability
 * negotiation, then one command at a time. Lines are JSON objects; asynchronous events
 * arrive between replies and are skipped. Enough to ask a VM's status and to end it.
 */
import { connect, type Socket } from "node:net";

export class QmpClient {
  private buffer = "";
  private waiting: ((line: Record<string, unknown> | Error) => void) | undefined;
  private readonly queue: Record<string, unknown>[] = [];
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (line === "") continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue; // not a QMP message: ignore it rather than wedge
        }
        if ("event" in msg) continue;
        const waiter = this.waiting;
        this.waiting = undefined;
        if (waiter) waiter(msg);
        else this.queue.push(msg);
      }
    });
    const onEnd = (err?: Error): void => {
      this.closedError ??= err ?? new Error("QMP connection closed");
      const waiter = this.waiting;
      this.waiting = undefined;
      waiter?.(this.closedError);
    };
    socket.on("error", onEnd);
    socket.on("close", () => onEnd());
  }

  /** Connects, reads the greeting and leaves negotiation mode; rejects after `timeoutMs`. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`QMP socket ${path} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once("connect", () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const client = new QmpClient(socket);
    try {
      const greeting = await client.next(timeoutMs);
      if (!("QMP" in greeting))
        throw new Error(`QMP socket ${path} sent no greeting: ${JSON.stringify(greeting)}`);
      await client.execute("qmp_capabilities", undefined, timeoutMs);
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  private next(timeoutMs: number): Promise<Record<string, unknown>> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`QMP gave no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = (msg) => {
        clearTimeout(timer);
        if (msg instanceof Error) reject(msg);
        else resolve(msg);
      };
    });
  }

  /** Runs one command; resolves with its `return` value, rejects with its `error.desc`. */
  async execute(command: string, args?: Record<string, unknown>, timeoutMs = 5000): Promise<unknown> {
    this.socket.write(
      JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args }) +
        "\n",
    );
    const reply = await this.next(timeoutMs);
    if ("error" in reply) {
      const error = reply["error"] as { desc?: string } | undefined;
      throw new Error(`QMP ${command} failed: ${error?.desc ?? JSON.stringify(reply)}`);
    }
    return reply["return"];
  }

  close(): void {
    this.socket.destroy();
  }
}
