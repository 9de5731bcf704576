import type { Sender } from "./format.ts";
import type { ActivatedFd } from "./activation.ts";
import type { Verbosity } from "./log.ts";
import type { ForwardOptions } from "./sinks/forward.ts";

/** Everything `postbox serve` needs, parsed and checked; the core never sees argv. */
export interface ServeOptions {
  /** FIFO path, or null for --no-fifo. [fifo] */
  fifo: string | null;
  /** Socket path, or null for --no-socket. [socket] */
  socket: string | null;
  /** Abstract socket name (without "@"), or null. [off] */
  abstract: string | null;
  /** Message queue name ("/postbox"), or null for --no-mq. */
  mq: string | null;
  /** Signal numbers to listen on. [USR1, USR2] */
  signals: number[];
  /** Datagram sockets to receive on: paths, or "@name" for the abstract namespace. [none] */
  dgram: string[];
  /** Decode RFC 3164/5424 headers of datagrams into fields. [off] */
  syslog: boolean;
  /** Permissions of fifo, socket and mq. [0o600] */
  mode: number;
  json: boolean;
  /** Text lines start with the message's ts (ISO 8601 UTC, ms) and a space. [off] */
  timestamps: boolean;
  /** Longest line delivered whole, in bytes. [65536] */
  maxMessage: number;
  /** Open socket connections at most. [1024] */
  maxConnections: number;
  /** Seconds a socket client may stay silent, 0 = forever. [60] */
  idleTimeout: number;
  /** Quiet ms after a complete line before the socket is half-closed, 0 = never. [100] */
  linger: number;
  /** Also append every message as NDJSON to this file, durably. [off] */
  store: string | null;
  /** Forward every stored message to a syslog collector, at least once (needs store). [off] */
  forward: ForwardOptions | null;
  /** Fds passed by systemd socket activation; each replaces the channel of its kind. */
  activated: ActivatedFd[];
  /** Written (atomically) once ready, removed at exit. [off] */
  pidfile: string | null;
  /** Stop with exit 0 after this many (matching) messages. [off] */
  count: number | null;
  /** Stop with exit 3 after this many seconds from ready. [off] */
  timeout: number | null;
  /** Only messages whose text matches count towards --count. [all] */
  match: RegExp | null;
  /** Senders (socket, signals) allowed to post; null = everyone. */
  allowUids: ReadonlySet<number> | null;
  allowGids: ReadonlySet<number> | null;
  /** Messages per second per sender uid (socket, signals). [off] */
  rate: number | null;
  verbosity: Verbosity;
}

export const DEFAULTS = {
  fifo: "fifo",
  socket: "socket",
  mq: "/postbox",
  signals: ["USR1", "USR2"],
  mode: 0o600,
  maxMessage: 65536,
  maxConnections: 1024,
  idleTimeout: 60,
  linger: 100,
} as const;

/** What channels hand their messages and complaints to. */
export interface ChannelContext {
  /** One message: body[start, end) (a range, so framing allocates nothing per line). */
  deliver(from: Sender, body: Uint8Array, start?: number, end?: number): void;
  /**
   * Set when no limit or filter needs each message on its own (text, --json, --store):
   * whole lines of body[start, stop) in one pass (see LineFramer's bulk path); returns
   * where it stopped, at a line it leaves to deliver.
   */
  deliverLines?: (from: Sender, body: Uint8Array, start: number, stop: number, max: number) => number;
  /**
   * Set only for text to stdout with no limit, filter or other output: bytes[start, stop)
   * are whole output lines already (the mq reader thread's plain messages, a burst of signals).
   */
  deliverText?: (bytes: Uint8Array, start: number, stop: number) => void;
  warn(message: string): void;
  /** Write out what was delivered so far (a client served at once is closed only once its lines are out). */
  flush(): void;
  /** False once no more messages are taken (--count reached, stdout gone). */
  readonly taking: boolean;
  /** How many more messages may be taken: what --count still counts (Infinity without it; 0 once not taking). */
  readonly budget: number;
  /** --allow-uid/--allow-gid are set: only then is allows() worth its closures. */
  restricted: boolean;
  /** --allow-uid/--allow-gid: may this sender post (uid null: unknown, never)? Warns when not; gid and who are computed only when needed. */
  allows(uid: number | null, gid: () => number | undefined, who: () => string): boolean;
}

/** An open channel. close() is safe to call twice. */
export interface ChannelHandle {
  readonly kind: "fifo" | "socket" | "signals" | "mqueue" | "dgram";
  /** How a person posts here (for the banner). */
  readonly where: string;
  /**
   * Open the gate (listen, open the FIFO for reading, claim the queue): one cheap
   * step, called last, once every channel is claimed and every handler installed.
   * Returns what is left (adopting the listener, starting the reader, the first
   * drain), run once the pidfile is in place.
   */
  ready?(): (() => void) | void;
  /** Deliver what is buffered (unfinished lines) and stop taking input; release what we claimed. */
  close(): void | Promise<void>;
}
