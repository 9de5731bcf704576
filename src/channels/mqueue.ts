// POSIX message queue channel. Readiness without threads or polling: mq_notify
// sends a real-time signal (si_code SI_MESGQ) into the signal trap when a message
// lands in the empty queue; then we re-arm first and drain until EAGAIN.
import { fchmodSync } from "node:fs";
import { PostboxError, SysError, reason } from "../errors.ts";
import { mqClose, mqGetattr, mqNotifySignal, mqOpen, mqReceive, O_CREAT, O_EXCL, O_NONBLOCK, O_RDONLY, setNonBlocking } from "../ffi/libc.ts";
import { mqueueSender, type Sender } from "../format.ts";
import type { ChannelContext, ChannelHandle } from "../types.ts";
import { selfCommand } from "../self.ts";
import type { SignalTrap } from "./signals.ts";

const SI_MESGQ = -3;
/** Messages taken per loop turn before yielding, so a flood cannot starve the other channels. */
const BATCH = 1024;
/**
 * How long the queue is still polled after its last message before we sleep on
 * mq_notify: a sender refilling a 10-slot queue is usually back within that, and
 * a notification round trip costs more than a few polls.
 */
const FLOWING_MS = 0.1;

export interface MqueueOptions {
  mode: number;
  /** The real-time signal mq_notify should raise (one nobody listens to). */
  notifySignal: number;
}

/** Open the queue, creating it with exactly `mode` when it does not exist. */
function open(name: string, mode: number): number {
  try {
    const mqd = mqOpen(name, O_RDONLY | O_NONBLOCK | O_CREAT | O_EXCL, mode);
    // mq_open's mode is narrowed by the umask; the queue must have exactly --mode.
    fchmodSync(mqd, mode);
    return mqd;
  } catch (err) {
    if (!(err instanceof SysError && err.code === "EEXIST")) throw err;
  }
  return mqOpen(name, O_RDONLY | O_NONBLOCK);
}

export function openMqueue(name: string, opts: MqueueOptions, trap: SignalTrap, ctx: ChannelContext): ChannelHandle {
  let mqd: number;
  try {
    mqd = open(name, opts.mode);
  } catch (err) {
    const why =
      err instanceof SysError && err.code === "EMFILE"
        ? "this user's message queues are at RLIMIT_MSGQUEUE (ulimit -q); remove unused ones (mount -t mqueue none /dev/mqueue to list them) or raise the limit"
        : reason(err);
    throw new PostboxError(`cannot open the message queue ${name}: ${why}`);
  }
  return serveMqueue(mqd, name, opts, trap, ctx);
}

/** A queue passed by systemd (ListenMessageQueue=): its descriptor is already open. */
export function adoptMqueue(mqd: number, name: string, opts: MqueueOptions, trap: SignalTrap, ctx: ChannelContext): ChannelHandle {
  try {
    setNonBlocking(mqd); // mq_receive must answer EAGAIN, never wait
  } catch (err) {
    throw new PostboxError(`cannot use the passed message queue ${name}: ${reason(err)}`);
  }
  return serveMqueue(mqd, name, opts, trap, ctx);
}

function serveMqueue(mqd: number, name: string, opts: MqueueOptions, trap: SignalTrap, ctx: ChannelContext): ChannelHandle {
  // An existing queue keeps the attributes it was made with: size the buffer from it.
  const buf = new Uint8Array(mqGetattr(mqd).msgsize);
  const prio = new Uint32Array(1);
  const senders = new Map<number, Sender>(); // one per priority seen (at most MQ_PRIO_MAX)
  const sender = (p: number): Sender => {
    let s = senders.get(p);
    if (!s) senders.set(p, (s = mqueueSender(name, p)));
    return s;
  };
  let serving = true;
  let armed = false;
  let lastMessage = -Infinity;
  let polling: ReturnType<typeof setImmediate> | undefined;

  const receive = (): number => {
    let got = 0;
    // Never take a message that will not be printed (--count reached, stdout gone): it stays queued.
    for (; got < BATCH && serving && ctx.taking; got++) {
      const n = mqReceive(mqd, buf, prio);
      if (n < 0) break;
      let end = n;
      while (end > 0 && buf[end - 1] === 10) end--;
      ctx.deliver(sender(prio[0]!), buf, 0, end);
    }
    return got;
  };
  const arm = (): void => {
    mqNotifySignal(mqd, opts.notifySignal);
    armed = true;
  };
  /**
   * While messages keep coming, take them every loop turn without notifications
   * (a signal round trip per refill of a 10-slot queue is the slow part). Once
   * the queue has been empty for FLOWING_MS, arm mq_notify and look once more: a
   * message that came just before arming raises no signal.
   */
  const pump = (): void => {
    polling = undefined;
    if (!serving) return;
    const now = performance.now();
    if (receive() > 0) lastMessage = now;
    if (now - lastMessage < FLOWING_MS) {
      polling = setImmediate(pump);
      return;
    }
    if (!armed) {
      try {
        arm();
      } catch (err) {
        const who = err instanceof SysError && err.code === "EBUSY" ? "another process now reads it" : reason(err);
        ctx.warn(`mq ${name}: cannot watch the queue any more (${who}); the mq channel stops`);
        serving = false;
        return;
      }
    }
    if (receive() > 0) polling = setImmediate(pump);
  };

  trap.on(opts.notifySignal, (r) => {
    if (r.code !== SI_MESGQ || !serving) return;
    armed = false; // a notification unregisters us
    if (polling === undefined) pump();
  });
  try {
    arm(); // at once: EBUSY means another reader is live
  } catch (err) {
    mqClose(mqd);
    if (err instanceof SysError && err.code === "EBUSY")
      throw new PostboxError(`cannot read the message queue ${name}: another process (a running postbox?) is already reading it`);
    throw new PostboxError(`cannot watch the message queue ${name}: ${reason(err)}`);
  }
  pump(); // what was left while nobody read, in the queue's priority order

  return {
    kind: "mqueue",
    where: `${selfCommand()} send --mq ${name} 4`,
    close() {
      if (!serving) return;
      serving = false;
      if (polling) clearImmediate(polling);
      trap.off(opts.notifySignal);
      mqClose(mqd); // drops the notification; the queue and its messages stay
    },
  };
}
