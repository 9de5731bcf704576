// The postbox: opens the channels from typed options, routes every message to
// stdout (text or NDJSON), and closes everything in reverse order.
import { openFifo } from "./channels/fifo.ts";
import { openMqueue } from "./channels/mqueue.ts";
import { openSignals, SignalTrap } from "./channels/signals.ts";
import { SocketHub } from "./channels/socket.ts";
import { rtSignalRange } from "./ffi/libc.ts";
import { reason } from "./errors.ts";
import { writeMessage } from "./format.ts";
import { log } from "./log.ts";
import { Output } from "./output.ts";
import type { ChannelContext, ChannelHandle, ServeOptions } from "./types.ts";

export interface Postbox {
  readonly channels: readonly ChannelHandle[];
  /** Messages delivered so far. */
  readonly delivered: number;
  /** Resolves when the postbox cannot go on (stdout closed); the reason says why. */
  readonly stopped: Promise<string>;
  /** Deliver what is buffered, flush stdout, remove what we created. Safe to call twice. */
  close(): Promise<void>;
}

export async function openPostbox(opts: ServeOptions): Promise<Postbox> {
  let stop!: (why: string) => void;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  const out = new Output(1, (err) => stop(`stdout closed (${reason(err)})`));
  let delivered = 0;
  const ctx: ChannelContext = {
    deliver(from, body) {
      delivered++;
      writeMessage(out, opts.json, from, body);
    },
    warn: (message) => log.warn(message),
  };

  const channels: ChannelHandle[] = [];
  const hub = new SocketHub(
    {
      mode: opts.mode,
      maxMessage: opts.maxMessage,
      maxConnections: opts.maxConnections,
      idleTimeout: opts.idleTimeout,
      linger: opts.linger,
      withComm: opts.json,
    },
    ctx,
  );
  let trap: SignalTrap | undefined;
  let closing: Promise<void> | undefined;

  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const failures: string[] = [];
      hub.closeAll();
      trap?.close(); // hands on the signals already queued in its pipe
      for (const ch of [...channels].reverse()) {
        try {
          await ch.close();
        } catch (err) {
          failures.push(`${ch.kind}: ${reason(err)}`);
        }
      }
      out.flush();
      for (const f of failures) log.error(`while closing ${f}`);
    })());

  try {
    if (opts.fifo !== null)
      channels.push(openFifo(opts.fifo, { mode: opts.mode, maxMessage: opts.maxMessage, quiet: opts.linger || 100 }, ctx));
    if (opts.socket !== null) channels.push(await hub.listen(opts.socket));
    if (opts.abstract !== null) channels.push(await hub.listen(`@${opts.abstract}`));
    if (opts.mq !== null || opts.signals.length > 0) trap = openTrap(opts, ctx);
    if (trap && opts.mq !== null)
      channels.push(openMqueue(opts.mq, { mode: opts.mode, notifySignal: notifySignal(opts.signals) }, trap, ctx));
    // Last: the banner (with our PID) comes only after every handler is installed.
    if (trap && opts.signals.length > 0) channels.push(openSignals(trap, opts.signals, ctx));
  } catch (err) {
    await close();
    throw err;
  }

  return {
    channels,
    get delivered() {
      return delivered;
    },
    stopped,
    close,
  };
}

/** The signal trap, or (when it cannot be built here) undefined and the mq/signal channels skipped with an error. */
function openTrap(opts: ServeOptions, ctx: ChannelContext): SignalTrap | undefined {
  try {
    return SignalTrap.open(ctx);
  } catch (err) {
    const off = [opts.signals.length > 0 ? "signal" : "", opts.mq !== null ? "message-queue" : ""].filter(Boolean);
    log.error(`${(err as Error).message}; the ${off.join(" and ")} channel${off.length > 1 ? "s are" : " is"} off`);
    return undefined;
  }
}

/** The highest real-time signal nobody asked to listen on: mq_notify raises it. */
function notifySignal(listened: readonly number[]): number {
  const { min, max } = rtSignalRange();
  for (let sig = max; sig >= min; sig--) if (!listened.includes(sig)) return sig;
  throw new Error("every real-time signal is listened on: none is left for mq_notify");
}
