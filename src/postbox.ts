// The postbox: opens the channels from typed options, routes every message to
// the sinks (stdout, --store, --forward), and closes everything in reverse order.
import { adoptFifo, openFifo } from "./channels/fifo.ts";
import { adoptMqueue, openMqueue } from "./channels/mqueue.ts";
import { openSignals, SignalTrap } from "./channels/signals.ts";
import { SocketHub } from "./channels/socket.ts";
import { adoptDgram, openDgram } from "./channels/dgram.ts";
import { ignoreSignal } from "./ffi/libc.ts";
import { signalName } from "./signames.ts";
import { EXIT, reason } from "./errors.ts";
import { Policy, UNKNOWN } from "./policy.ts";
import { sdNotify } from "./readiness.ts";
import { DirLocks, preparePidfile, removePidfile, type Pidfile } from "./endpoint.ts";
import { writeJsonAndTextLines, writeJsonLines, writeTextLines } from "./fast-lines.ts";
import { appendBytes, prefixPiece, writeText, type Sender } from "./format.ts";
import { log } from "./log.ts";
import { ForwardSink } from "./sinks/forward.ts";
import { Message, type Sink } from "./sinks/sink.ts";
import { StdoutSink } from "./sinks/stdout.ts";
import { StoreSink } from "./sinks/store.ts";
import type { ChannelContext, ChannelHandle, ServeOptions } from "./types.ts";

/** Why the postbox stops by itself, and the exit code that goes with it. */
export interface Stop {
  why: string;
  exitCode: number;
}

export interface Postbox {
  readonly channels: readonly ChannelHandle[];
  /** Messages delivered so far (counting towards --count). */
  readonly counted: number;
  /** Resolves when the postbox stops by itself: --count reached, --timeout, stdout closed. */
  readonly stopped: Promise<Stop>;
  /**
   * Deliver what is buffered, flush stdout, remove what we created. Safe to call twice.
   * Resolves to the number of failures reported on stderr (a message printed but not stored is one).
   */
  close(): Promise<number>;
  /** SIGHUP: reopen the --store file (log rotation; the forwarder follows it). */
  reopenStore(): void;
}

export async function openPostbox(opts: ServeOptions): Promise<Postbox> {
  let stop!: (s: Stop) => void;
  let done = false;
  const stopped = new Promise<Stop>((resolve) => (stop = resolve));
  const finish = (s: Stop) => {
    done = true;
    stop(s);
  };
  const store = opts.store === null ? null : new StoreSink(opts.store, log, opts.mode);
  let forward: ForwardSink | null = null;
  try {
    if (opts.forward && store) forward = new ForwardSink(opts.forward, store.store, log);
  } catch (err) {
    store?.close();
    throw err;
  }
  const stdout = new StdoutSink(opts.json, opts.timestamps, (err) => finish({ why: `stdout closed (${reason(err)})`, exitCode: EXIT.ok }), store ? () => store.flush() : undefined);
  // Durable first: what stdout shows is already in the store. Closed in reverse:
  // stdout (writing the store's buffer ahead of it), the forwarder's last sends, the store.
  const sinks: Sink[] = [store, forward, stdout].filter((s) => s !== null);
  const out = stdout.out;
  const msg = new Message();
  const policy = new Policy({ allowUids: opts.allowUids, allowGids: opts.allowGids, rate: opts.rate }, (m) => log.warn(m));
  const decoder = new TextDecoder();
  let counted = 0;

  type Deliver = ChannelContext["deliver"];
  // The common case — text to stdout, no limits — skips every check per line.
  const plain: Deliver = (from, body, start = 0, end = body.byteLength) => {
    if (done) return;
    writeText(out, from, body, start, end);
    out.commit();
    counted++;
  };
  const checked: Deliver = (from, body, start = 0, end = body.byteLength) => {
    if (done) return; // --count reached or stdout gone: nothing more is taken
    const uid = from.fields.uid; // undefined: a channel without senders; null: an unknown signal sender
    if (uid !== undefined && !policy.take(typeof uid === "number" ? uid : UNKNOWN)) return;
    msg.set(from, body, start, end);
    for (const sink of sinks) sink.take(msg);
    if (opts.match && !opts.match.test(decoder.decode(body.subarray(start, end)))) return;
    counted++;
    if (opts.count !== null && counted >= opts.count) finish({ why: `--count ${opts.count} reached`, exitCode: EXIT.ok });
  };
  const unlimited = opts.rate === null && opts.match === null && opts.count === null && opts.timeout === null;
  const simple = !opts.json && !opts.timestamps && sinks.length === 1 && unlimited;
  // --json and/or --store, no limits: whole lines in one pass too, the NDJSON
  // made once (into the store when there is one, copied to stdout).
  const structuredLines = (from: Sender, body: Uint8Array, start: number, stop: number, max: number): number => {
    if (done) return stop;
    let at: number;
    if (store === null) at = writeJsonLines(out, from, body, start, stop, max);
    else {
      const file = store.store;
      if (!file.admit()) return start; // the per-line path counts what cannot be kept
      if (!opts.json) at = writeJsonAndTextLines(file, out, from, body, start, stop, max);
      else {
        const mark = file.len;
        at = writeJsonLines(file, from, body, start, stop, max);
        appendBytes(out, file.buf.subarray(mark, file.len)); // stays put while stdout makes room (see Message.writeJson)
      }
    }
    out.commit();
    return at;
  };
  const structured = !simple && unlimited && !opts.timestamps;
  const ctx: ChannelContext = {
    deliver: simple ? plain : checked,
    deliverLines: simple
      ? (from, body, start, stop, max) => {
          if (done) return stop;
          const at = writeTextLines(out, prefixPiece(from), body, start, stop, max);
          out.commit();
          return at;
        }
      : structured
        ? structuredLines
        : undefined,
    deliverText: simple
      ? (bytes, start, stop) => {
          if (done) return;
          appendBytes(out, bytes.subarray(start, stop));
          out.commit();
        }
      : undefined,
    warn: (message) => log.warn(message),
    flush: () => out.flush(),
    get taking() {
      return !done;
    },
    get budget() {
      return done ? 0 : opts.count === null ? Infinity : opts.count - counted;
    },
    restricted: policy.restricted,
    allows: (uid, gid, who) => policy.allows(uid, gid, who),
  };

  const channels: ChannelHandle[] = [];
  const hub = new SocketHub(
    {
      mode: opts.mode,
      maxMessage: opts.maxMessage,
      maxConnections: opts.maxConnections,
      idleTimeout: opts.idleTimeout,
      linger: opts.linger,
      withComm: opts.json || opts.store !== null,
    },
    ctx,
  );
  let trap: SignalTrap | undefined;
  let locks: DirLocks | undefined;
  let pidfile: Pidfile | undefined;
  let discardPidfile: (() => void) | undefined;
  let closing: Promise<number> | undefined;
  let timer: Timer | undefined;

  const close = (): Promise<number> =>
    (closing ??= (async () => {
      const failures: string[] = [];
      clearTimeout(timer);
      sdNotify("STOPPING=1");
      hub.closeAll();
      trap?.close(); // hands on the signals already queued in its pipe
      for (const ch of [...channels].reverse()) {
        try {
          await ch.close();
        } catch (err) {
          failures.push(`${ch.kind}: ${reason(err)}`);
        }
      }
      for (const sink of [...sinks].reverse()) {
        try {
          await sink.close();
        } catch (err) {
          failures.push(`${sink === store ? "the store" : sink === forward ? "forwarding" : "stdout"}: ${reason(err)}`);
        }
      }
      policy.close();
      if (pidfile) removePidfile(pidfile); // only the one we wrote, if it is still there
      else discardPidfile?.();
      locks?.release();
      for (const f of failures) log.error(`while closing ${f}`);
      return failures.length + ((store?.unkept ?? 0) > 0 ? 1 : 0); // the store reported its own
    })());

  // A channel passed by systemd replaces the one we would open ourselves.
  const passed = (kind: "socket" | "fifo" | "mqueue" | "dgram") => opts.activated.filter((a) => a.kind === kind);
  const fifoOpts = { mode: opts.mode, maxMessage: opts.maxMessage, quiet: opts.linger || 100 };
  try {
    // Built first: compiling the signal handler is the slow part, and needs no path.
    if (opts.signals.length > 0) trap = openTrap(opts, ctx);
    // From the first look at a path until every channel is reachable, this postbox
    // alone claims paths in these directories: concurrent starts have one winner.
    const paths = [opts.fifo, opts.socket, opts.pidfile, ...opts.dgram.filter((d) => !d.startsWith("@"))].filter((p): p is string => p !== null);
    locks = await DirLocks.acquire(paths);
    for (const a of passed("fifo")) channels.push(adoptFifo(a.fd, a.name, fifoOpts, ctx));
    if (opts.fifo !== null && passed("fifo").length === 0) channels.push(openFifo(opts.fifo, fifoOpts, ctx));
    for (const a of passed("socket")) channels.push(hub.adopt(a.fd, a.name));
    if (opts.socket !== null && passed("socket").length === 0) channels.push(await hub.listen(opts.socket));
    if (opts.abstract !== null) channels.push(await hub.listen(`@${opts.abstract}`));
    if (trap) channels.push(openSignals(trap, opts.signals, ctx, { fields: opts.json || opts.store !== null }));
    const adopted = passed("mqueue")[0];
    if (adopted) channels.push(adoptMqueue(adopted.fd, adopted.name, ctx));
    else if (opts.mq !== null) channels.push(openMqueue(opts.mq, { mode: opts.mode }, ctx));
    // After the signals: the datagram reader's thread inherits their blocked mask.
    const dgramOpts = { mode: opts.mode, maxMessage: opts.maxMessage, syslog: opts.syslog, fields: opts.json || opts.store !== null };
    for (const a of passed("dgram")) channels.push(adoptDgram(a.fd, a.name, dgramOpts, ctx));
    if (passed("dgram").length === 0) for (const address of opts.dgram) channels.push(await openDgram(address, dgramOpts, ctx));
    // Readiness is one moment, once every handler is installed: the pidfile is
    // renamed into place, and right after it the gates open (each one cheap step),
    // so `wait` returning means the pidfile is there; then the banner and READY=1. The slower rest (adopting listeners,
    // reader threads, the queue's first drain) follows: posts wait in the kernel.
    const pending = opts.pidfile === null ? null : preparePidfile(opts.pidfile);
    discardPidfile = pending?.discard;
    // The fallible gates first (the queue's claim, a datagram socket's rename onto
    // its path or its abstract bind, may meet a rival): no socket
    // listens, no FIFO reads for a postbox that then fails.
    if (pending) pidfile = pending.commit();
    const rest = [...channels].reverse().map((ch) => ch.ready?.());
    for (const r of rest) r?.();
    locks.release();
  } catch (err) {
    await close();
    throw err;
  }
  const notifyError = sdNotify(`READY=1\nMAINPID=${process.pid}`);
  if (notifyError) log.warn(notifyError);
  if (opts.timeout !== null) {
    const t = opts.timeout;
    // Stops like SIGTERM: what is already on its way (a queue's taken messages,
    // unfinished lines) is still printed; only --count stops taking at once.
    timer = setTimeout(() => {
      const of = opts.count === null ? "" : ` of ${opts.count}`;
      stop({ why: `--timeout ${t} s reached with ${counted}${of} message(s)`, exitCode: EXIT.timeout });
    }, t * 1000);
  }

  return {
    channels,
    get counted() {
      return counted;
    },
    stopped,
    close,
    reopenStore() {
      for (const sink of sinks) sink.reopen?.();
    },
  };
}

/** The signal trap, or (when it cannot be built here) undefined and the signal channel skipped with an error. */
function openTrap(opts: ServeOptions, ctx: ChannelContext): SignalTrap | undefined {
  try {
    return SignalTrap.open(ctx);
  } catch (err) {
    log.error(`${(err as Error).message}; the signal channel is off`);
    // Signals we would have listened on must not kill us instead (their default action).
    for (const sig of opts.signals) {
      try {
        ignoreSignal(sig);
      } catch (e) {
        log.warn(`${signalName(sig)} is not ignored either (${reason(e)}): it would end postbox`);
      }
    }
    return undefined;
  }
}
