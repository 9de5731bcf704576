// Signal channel: every listened signal arrives as a siginfo record through the
// trap's pipe (see ffi/siginfo.ts) and is handled in the loop like any other fd.
import { PostboxError, SysError, reason } from "../errors.ts";
import {
  signalTrapLib,
  RecordSplitter,
  RECORD_WORDS,
  REC_CODE,
  REC_PID,
  REC_SIGNO,
  REC_UID,
  REC_VALUE,
  type SignalTrapLib,
} from "../ffi/siginfo.ts";
import { prefixPiece, signalIdentity, signalOrigin, signalPrefix, signalSender, type Sender } from "../format.ts";
import { processGid } from "../policy.ts";
import { signalName, withoutSig } from "../signames.ts";
import type { ChannelContext, ChannelHandle } from "../types.ts";
import { readFd, type FdReader } from "./reader.ts";
import { log } from "../log.ts";

/** Where the trap hands the records of the signals it was asked to route. */
export interface RecordSink {
  /** Records words[from, to), RECORD_WORDS each (see ffi/siginfo.ts): a run of consecutive ones for this sink. */
  take(words: Int32Array, from: number, to: number): void;
}

/** One record pipe for the process; channels subscribe per signal number. */
export class SignalTrap {
  /** By signal number (1..64). */
  private readonly sinks: (RecordSink | undefined)[] = new Array<RecordSink | undefined>(65).fill(undefined);
  private readonly reader: FdReader;
  private readonly splitter = new RecordSplitter();
  private lost = 0;

  private constructor(
    private readonly lib: SignalTrapLib,
    private readonly ctx: ChannelContext,
  ) {
    this.reader = readFd(
      lib.fd,
      (chunk) => this.onChunk(chunk),
      (err) => ctx.warn(`signal pipe: read failed: ${reason(err)}; signals are no longer received`),
    );
  }

  /** Throws PostboxError naming why signals cannot be received here (no TinyCC, odd libc, …). */
  static open(ctx: ChannelContext): SignalTrap {
    let lib: SignalTrapLib;
    try {
      lib = signalTrapLib();
    } catch (err) {
      throw new PostboxError(`cannot set up signal handling: ${trapFailure(err)}`);
    }
    return new SignalTrap(lib, ctx);
  }

  /** Route `sig` to sink. The handler is installed now and stays for the life of the process. */
  on(sig: number, sink: RecordSink): void {
    try {
      this.lib.catch(sig);
    } catch (err) {
      throw new PostboxError(`cannot catch ${signalName(sig)}: ${reason(err)}`);
    }
    this.sinks[sig] = sink;
    log.debug(`signal ${signalName(sig)} (${sig}): SA_SIGINFO handler installed`);
  }

  off(sig: number): void {
    this.sinks[sig] = undefined;
  }

  /** Stop reading. Handlers stay installed: a listened signal must never kill us, even at exit. */
  close(): void {
    this.reader.stop();
  }

  private onChunk(chunk: Uint8Array): void {
    const words = this.splitter.words(chunk);
    const sinks = this.sinks;
    for (let at = 0; at < words.length; ) {
      const sink = sinks[words[at + REC_SIGNO]!];
      let to = at + RECORD_WORDS;
      while (to < words.length && sinks[words[to + REC_SIGNO]!] === sink) to += RECORD_WORDS;
      sink?.take(words, at, to);
      at = to;
    }
    const dropped = this.lib.dropped();
    if (dropped > this.lost) {
      this.ctx.warn(`signal pipe full: ${dropped - this.lost} signal(s) lost (${dropped} in all)`);
      this.lost = dropped;
    }
  }
}

/** What to do when a step of building the trap fails, by step. */
const FIXES: Record<string, string> = {
  memfd_create: "allow memfd_create in the sandbox (seccomp) policy",
  pipe2: "raise the open-file limit (ulimit -n)",
};

/** The failing step, why, and what to do, on one line (TinyCC's message spans several). */
export function trapFailure(err: unknown): string {
  if (err instanceof SysError) {
    const fix = FIXES[err.syscall];
    return `${err.syscall} failed: ${reason(err)}${fix ? ` — ${fix}` : ""}`;
  }
  const why = (err instanceof Error ? err.message : String(err))
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .join(": ");
  return `compiling the handler with bun:ffi cc() (TinyCC) failed: ${why} — please report it with \`uname -m\` and \`ldd --version\``;
}

export interface SignalOptions {
  /** --json or --store: every signal needs its own Sender with all its fields (value, code). */
  fields: boolean;
}

/** A value as decimal digits, at most this many ("-2147483648"). */
const DIGITS_MAX = 11;

/** Write the int32 v's decimal digits at b[at..]; returns the end. */
function writeInt(b: Uint8Array, at: number, v: number): number {
  if (v < 0) {
    b[at++] = 45; // "-"
    v = -v;
  }
  const end = at + (v < 1e5 ? (v < 10 ? 1 : v < 100 ? 2 : v < 1e3 ? 3 : v < 1e4 ? 4 : 5) : v < 1e6 ? 6 : v < 1e7 ? 7 : v < 1e8 ? 8 : v < 1e9 ? 9 : 10);
  let i = end;
  do {
    const q = (v / 10) | 0;
    b[--i] = 48 + v - q * 10;
    v = q;
  } while (v !== 0);
  return end;
}

type Identity = ReturnType<typeof signalIdentity>;

/** A sender seen recently: its Sender is reused while pid, uid and identity stay the same. */
interface Known {
  sig: number;
  pid: number;
  uid: number;
  /** si_code of its latest signal (only its identity matters; compared first, as it is cheaper) */
  code: number;
  identity: Identity;
  /** Without value and code, which change per signal: enough for the text line, --rate and the allow lists. */
  sender: Sender;
}

/**
 * The signal channel's records → messages. Text with no limits (the common case)
 * needs only the sender's prefix and the value's digits, which never need escaping:
 * a burst is written as whole text lines into one buffer and handed on in one
 * deliverText call, with nothing allocated per signal. --json/--store give each
 * signal its own Sender; allow lists and limits take them one by one.
 */
class SignalLines implements RecordSink {
  private readonly names: string[] = [];
  private readonly known = new Map<number, Known>();
  private last: Known | undefined;
  /** The text lines of a burst, or a single value when delivered one by one. */
  private readonly body = new Uint8Array(16 * 1024);
  private readonly view = new DataView(this.body.buffer);
  private readonly restricted: boolean;
  private readonly text: ChannelContext["deliverText"];

  constructor(
    signals: readonly number[],
    private readonly ctx: ChannelContext,
    private readonly fields: boolean,
  ) {
    for (const sig of signals) this.names[sig] = signalName(sig);
    this.restricted = ctx.restricted;
    // Without fields the text line is the Sender's prefix and the value: written here.
    this.text = fields ? undefined : ctx.deliverText;
  }

  take(w: Int32Array, from: number, to: number): void {
    const text = this.text;
    if (text === undefined || this.restricted) {
      for (let at = from; at < to; at += RECORD_WORDS) this.one(w, at);
      return;
    }
    const { body, view } = this;
    let len = 0;
    let k = this.last;
    for (let at = from; at < to; at += RECORD_WORDS) {
      const sig = w[at + REC_SIGNO]!;
      const code = w[at + REC_CODE]!;
      const pid = w[at + REC_PID]!;
      const uid = w[at + REC_UID]! >>> 0;
      k = this.lookup(k, sig, code, pid, uid);
      const prefix = prefixPiece(k.sender);
      if (len + prefix.room + DIGITS_MAX + 1 > body.byteLength) {
        text(body, 0, len);
        len = 0;
      }
      len = prefix.put(view, len);
      len = writeInt(body, len, w[at + REC_VALUE]!);
      body[len++] = 10;
    }
    if (len > 0) text(body, 0, len);
  }

  /** One signal on its own: through the allow lists, with all its fields when they are written. */
  private one(w: Int32Array, at: number): void {
    const sig = w[at + REC_SIGNO]!;
    const code = w[at + REC_CODE]!;
    const pid = w[at + REC_PID]!;
    const uid = w[at + REC_UID]! >>> 0;
    const value = w[at + REC_VALUE]!;
    const k = this.lookup(this.last, sig, code, pid, uid);
    if (this.restricted && !this.allowed(k)) return;
    const n = writeInt(this.body, 0, value);
    let from = k.sender;
    if (this.fields) {
      from = signalSender(pid, uid, this.names[sig]!, value, code, k.sender.prefix);
      from.prefixPiece = prefixPiece(k.sender); // made once per sender, not per signal
    }
    this.ctx.deliver(from, this.body, 0, n);
  }

  /** The sender of a record: `last` when it is the same one (a burst mostly comes from one), else from the map. */
  private lookup(last: Known | undefined, sig: number, code: number, pid: number, uid: number): Known {
    if (last !== undefined && last.pid === pid && last.code === code && last.uid === uid && last.sig === sig) return last;
    const identity = signalIdentity(code, pid);
    const key = identity === "unknown" ? sig : pid * 128 + sig; // uid follows from pid while the sender lives
    let k = this.known.get(key);
    if (k === undefined || k.uid !== uid || k.identity !== identity) {
      if (this.known.size >= 1024) this.known.clear();
      const name = this.names[sig]!;
      const fresh: Known = { sig, pid, uid, code, identity, sender: signalOrigin(pid, uid, name, code, signalPrefix(pid, uid, name, code)) };
      this.known.set(key, fresh);
      k = fresh;
    }
    k.code = code;
    this.last = k;
    return k;
  }

  /** A sender the kernel did not record never passes an allow list; a claimed one is taken at its word. */
  private allowed(k: Known): boolean {
    const name = this.names[k.sig]!;
    return k.identity === "unknown"
      ? this.ctx.allows(null, () => undefined, () => `${name} from an unknown sender (its siginfo was lost: RLIMIT_SIGPENDING used up)`)
      : this.ctx.allows(k.uid, () => processGid(k.pid), () => `${name} from pid ${k.pid} (uid ${k.uid})`);
  }
}

export function openSignals(trap: SignalTrap, signals: readonly number[], ctx: ChannelContext, opts: SignalOptions): ChannelHandle {
  const sink = new SignalLines(signals, ctx, opts.fields);
  for (const sig of signals) trap.on(sig, sink);
  const first = signals[0] === undefined ? "USR1" : withoutSig(signalName(signals[0]));
  return {
    kind: "signals",
    where: `/bin/kill -${first} -q 3 ${process.pid}`,
    close() {
      for (const sig of signals) trap.off(sig);
    },
  };
}
