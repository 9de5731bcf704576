// --forward: the forwarder as a sink. It takes nothing from the message itself —
// it sends the store's durable records (at least once) from its own thread — so
// here it only counts, relays the store's fsyncs, and reports the lag.
import { lstatSync, readFileSync } from "node:fs";
import { PostboxError, reason } from "../errors.ts";
import type { Store } from "../store.ts";
import { newStream, openCursor, type Cursor } from "./cursor.ts";
import type { Target } from "./link.ts";
import type { Message, Sink } from "./sink.ts";
import { FORWARDER } from "../workers.ts";

export interface ForwardOptions {
  tls: boolean;
  host: string;
  port: number;
  ca: string | null;
  cert: string | null;
  key: string | null;
}

export type ToForwarder =
  | { type: "init"; target: Target; storePath: string; cursorFd: number; cursor: Cursor | null; stream: string; pid: number }
  | { type: "synced"; dev: number; ino: number; size: number }
  | { type: "finish"; ms: number };

export type FromForwarder =
  | { type: "log"; level: "warn" | "info"; message: string }
  /** Records the store has made durable since forwarding began, and how many of them were sent / taken. */
  | { type: "progress"; up: boolean; records: number; sent: number; committed: number }
  | { type: "done" };

interface Reporter {
  warn(m: string): void;
  info(m: string): void;
}

/** At exit, how long the forwarder may go on sending what is stored. */
const FINISH_MS = 3_000;
/** Lag below this is not worth a line; above it, each doubling is reported. */
const LAG_REPORTED_FROM = 1_000;

export function forwardUrl(o: ForwardOptions): string {
  return `syslog+${o.tls ? "tls" : "tcp"}://${o.host.includes(":") ? `[${o.host}]` : o.host}:${o.port}`;
}

function pem(path: string | null, what: string): string | undefined {
  if (path === null) return undefined;
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new PostboxError(`cannot read the ${what} ${path}: ${reason(err)}`);
  }
}

export class ForwardSink implements Sink {
  private readonly worker: Worker;
  private last: Extract<FromForwarder, { type: "progress" }> | null = null;
  private reported = 0;
  private readonly url: string;
  private done: Promise<void>;
  private ended!: () => void;

  constructor(
    opts: ForwardOptions,
    private readonly store: Store,
    private readonly report: Reporter,
  ) {
    const url = (this.url = forwardUrl(opts));
    if (!lstatSync(store.path, { throwIfNoEntry: false })?.isFile())
      throw new PostboxError(`cannot forward to ${url} from the store ${store.path}: not a regular file (the forwarder reads it back)`);
    const target: Target = { tls: opts.tls, host: opts.host, port: opts.port, ca: pem(opts.ca, "CA file"), cert: pem(opts.cert, "certificate"), key: pem(opts.key, "key") };
    const { fd, cursor } = openCursor(`${store.path}.cursor`, (m) => report.warn(m));
    this.done = new Promise((r) => (this.ended = r));
    this.worker = new Worker(FORWARDER);
    this.worker.onmessage = (e: MessageEvent<FromForwarder>) => this.receive(e.data);
    this.worker.onerror = (e) => {
      report.warn(`forwarding stopped: ${e.message}`);
      this.ended();
    };
    this.post({ type: "init", target, storePath: store.path, cursorFd: fd, cursor, stream: newStream(), pid: process.pid });
    store.onSynced = (f) => this.post({ type: "synced", ...f });
    store.sync(); // tells the forwarder the file and how much of it is durable now
  }

  private post(m: ToForwarder): void {
    this.worker.postMessage(m);
  }

  private receive(m: FromForwarder): void {
    if (m.type === "log") this.report[m.level](m.message);
    else if (m.type === "progress") {
      this.last = m;
      this.checkLag();
    } else this.ended();
  }

  /**
   * Records the store keeps (durable) but not yet sent (or, with `committed`, not
   * yet taken by the collector).
   */
  lag(committed = false): number {
    const p = this.last;
    if (!p) return 0;
    return Math.max(0, p.records - (committed ? p.committed : p.sent));
  }

  private checkLag(): void {
    const url = this.url;
    const lag = this.lag();
    if (lag >= LAG_REPORTED_FROM && lag >= 2 * this.reported) {
      this.reported = lag;
      this.report.warn(`forwarding to ${url} is ${lag} message(s) behind${this.last?.up ? "" : " (not connected)"}; they wait in the store`);
    } else if (lag === 0 && this.reported > 0) {
      this.reported = 0;
      this.report.info(`forwarding to ${url} caught up`);
    }
  }

  take(_m: Message): void {} // the record reaches the forwarder through the store, once it is durable there

  flush(): void {}

  async close(): Promise<void> {
    this.store.flush();
    this.store.sync(); // the store's last records are durable, and the forwarder knows it
    this.post({ type: "finish", ms: FINISH_MS });
    await Promise.race([this.done, Bun.sleep(FINISH_MS + 2_000)]);
    this.worker.terminate();
    const left = this.lag(true);
    if (left > 0) this.report.warn(`forwarding: ${left} message(s) not yet taken by the collector; they stay in the store and go out at the next start`);
  }
}
