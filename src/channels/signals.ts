// Signal channel: every listened signal arrives as a siginfo record through the
// trap's pipe (see ffi/siginfo.ts) and is handled in the loop like any other fd.
import { PostboxError, SysError, reason } from "../errors.ts";
import { signalTrapLib, parseRecords, type SignalRecord, type SignalTrapLib } from "../ffi/siginfo.ts";
import { signalIdentity, signalPrefix, signalSender } from "../format.ts";
import { processGid } from "../policy.ts";
import { signalName } from "../signames.ts";
import type { ChannelContext, ChannelHandle } from "../types.ts";
import { readFd, type FdReader } from "./reader.ts";
import { log } from "../log.ts";

/** One record pipe for the process; channels subscribe per signal number. */
export class SignalTrap {
  private readonly handlers = new Map<number, (r: SignalRecord) => void>();
  private readonly reader: FdReader;
  private tail: Uint8Array = new Uint8Array(0);
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

  /** Route `sig` to fn. The handler is installed now and stays for the life of the process. */
  on(sig: number, fn: (r: SignalRecord) => void): void {
    try {
      this.lib.catch(sig);
    } catch (err) {
      throw new PostboxError(`cannot catch ${signalName(sig)}: ${reason(err)}`);
    }
    this.handlers.set(sig, fn);
    log.debug(`signal ${signalName(sig)} (${sig}): SA_SIGINFO handler installed`);
  }

  off(sig: number): void {
    this.handlers.delete(sig);
  }

  /** Stop reading. Handlers stay installed: a listened signal must never kill us, even at exit. */
  close(): void {
    this.reader.stop();
  }

  private onChunk(chunk: Uint8Array): void {
    let data = chunk;
    if (this.tail.byteLength > 0) {
      data = new Uint8Array(this.tail.byteLength + chunk.byteLength);
      data.set(this.tail);
      data.set(chunk, this.tail.byteLength);
    }
    this.tail = parseRecords(data, (r) => this.handlers.get(r.signo)?.(r));
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

export function openSignals(trap: SignalTrap, signals: readonly number[], ctx: ChannelContext): ChannelHandle {
  const enc = new TextEncoder();
  const digits = new Uint8Array(16);
  // Text prefixes of recent senders: formatting one per signal would dominate a burst.
  const prefixes = new Map<number, string>();
  /** A sender the kernel did not record never passes an allow list; a claimed one is taken at its word. */
  const allowed = (r: SignalRecord, unknown: boolean, name: string): boolean =>
    unknown
      ? ctx.allows(null, () => undefined, () => `${name} from an unknown sender (its siginfo was lost: RLIMIT_SIGPENDING used up)`)
      : ctx.allows(r.uid, () => processGid(r.pid), () => `${name} from pid ${r.pid} (uid ${r.uid})`);
  for (const sig of signals) {
    const name = signalName(sig);
    trap.on(sig, (r) => {
      const unknown = signalIdentity(r.code, r.pid) === "unknown";
      if (ctx.restricted && !allowed(r, unknown, name)) return;
      const key = unknown ? sig : r.pid * 128 + sig; // uid follows from pid while the sender lives
      let prefix = prefixes.get(key);
      if (prefix === undefined || !(unknown || prefix.includes(`uid=${r.uid},`))) {
        if (prefixes.size >= 1024) prefixes.clear();
        prefixes.set(key, (prefix = signalPrefix(r.pid, r.uid, name, r.code)));
      }
      const n = enc.encodeInto(String(r.value), digits).written;
      ctx.deliver(signalSender(r.pid, r.uid, name, r.value, r.code, prefix), digits, 0, n);
    });
  }
  const first = signals[0] === undefined ? "USR1" : signalName(signals[0]).replace(/^SIG/, "");
  return {
    kind: "signals",
    where: `/bin/kill -${first} -q 3 ${process.pid}`,
    close() {
      for (const sig of signals) trap.off(sig);
    },
  };
}
