// The connection to a syslog collector (TCP, or TLS over it): connects, tells the
// forwarder when it is up or down, reconnects with exponential backoff. Bytes are
// counted per connection so that the forwarder can ask how many the collector's
// TCP has acknowledged (TIOCOUTQ).
import type { Socket } from "bun";
import { unackedBytes } from "../ffi/libc.ts";

export interface Target {
  tls: boolean;
  host: string;
  port: number;
  /** PEM contents (read by the main thread, so that a missing file is a start-up error). */
  ca?: string;
  cert?: string;
  key?: string;
}

export interface LinkEvents {
  up(): void;
  down(why: string): void;
  drain(): void;
}

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 10_000;
/** A connection that lasted this long resets the backoff (one that is dropped at once does not). */
const STABLE_MS = 5_000;
const CONNECT_TIMEOUT_MS = 10_000;

export class Link {
  private socket: Socket<undefined> | null = null;
  private retryMs = FIRST_RETRY_MS;
  private timer: Timer | undefined;
  private upSince = 0;
  private closed = false;
  private busy = false;
  up = false;
  /** Bytes the current connection has accepted. */
  written = 0;

  constructor(
    private readonly target: Target,
    private readonly events: LinkEvents,
  ) {}

  connect(): void {
    if (this.closed || this.busy) return;
    this.busy = true; // one attempt or connection at a time
    const t = this.target;
    let why = "";
    let over = false; // this attempt's end (refused, timed out, or closed after being up) counts once
    const fail = (reason: string) => {
      why ||= reason;
      if (over || this.closed) return;
      over = true;
      this.busy = false;
      this.socket = null;
      clearTimeout(connectTimer);
      const wasUp = this.up;
      this.up = false;
      if (wasUp && performance.now() - this.upSince >= STABLE_MS) this.retryMs = FIRST_RETRY_MS;
      this.events.down(why);
      this.retry();
    };
    const ready = (s: Socket<undefined>) => {
      clearTimeout(connectTimer);
      this.up = true;
      this.upSince = performance.now();
      this.written = 0;
      this.socket = s;
      this.events.up();
    };
    let attempt: Socket<undefined> | undefined;
    const connectTimer = setTimeout(() => {
      fail(`no connection within ${CONNECT_TIMEOUT_MS / 1000} s`);
      attempt?.terminate();
    }, CONNECT_TIMEOUT_MS);
    Bun.connect({
      hostname: t.host,
      port: t.port,
      tls: t.tls ? { ca: t.ca, cert: t.cert, key: t.key, serverName: t.host, rejectUnauthorized: true } : undefined,
      socket: {
        open: (s) => {
          attempt = s;
          if (over) s.terminate();
          else if (!t.tls) ready(s);
        },
        handshake: (s, ok, err) => {
          if (ok) ready(s);
          else {
            why = `TLS: ${err?.message ?? "handshake failed"}`;
            s.terminate();
          }
        },
        data: () => {}, // a syslog collector says nothing back
        drain: () => this.events.drain(),
        error: (_s, err) => {
          why ||= err.message;
        },
        close: () => fail("the collector closed the connection"),
      },
    }).catch((err: Error & { code?: string }) => fail(err.code ?? err.message));
  }

  private retry(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    const ms = this.retryMs;
    this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
    this.timer = setTimeout(() => this.connect(), ms * (0.75 + Math.random() / 2));
  }

  /** Bytes the connection took (the kernel's send buffer); the rest waits for drain(). */
  write(bytes: Uint8Array): number {
    if (!this.socket || !this.up) return 0;
    const n = Math.max(0, this.socket.write(bytes));
    this.written += n;
    return n;
  }

  /**
   * Of `written`, how many the collector's TCP has acknowledged (-1: not connected).
   * TLS: `written` is plaintext, and when the kernel's send buffer is full Bun keeps
   * encrypted bytes in its own memory, where TIOCOUTQ does not see them (measured
   * 3-56 KB): written minus TIOCOUTQ would count them as taken before they left the
   * process. So with TLS only an empty send queue says all written was acknowledged;
   * Bun hands the kernel what it kept as soon as there is room, well before then.
   */
  acked(): number {
    const s = this.socket as (Socket<undefined> & { fd?: number }) | null;
    if (!s || !this.up || typeof s.fd !== "number") return -1;
    try {
      const unacked = unackedBytes(s.fd);
      if (this.target.tls) return unacked === 0 ? this.written : 0;
      return this.written - unacked;
    } catch {
      return -1;
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.end();
    this.socket = null;
    this.up = false;
  }
}
