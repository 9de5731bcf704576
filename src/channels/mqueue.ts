// POSIX message queue channel. Readiness without threads or polling: mq_notify
// sends a real-time signal (si_code SI_MESGQ) into the signal trap when a message
// lands in the empty queue; then we drain it, and re-arm once it is quiet.
import { fchmodSync } from "node:fs";
import { PostboxError, SysError, reason } from "../errors.ts";
import { mqClose, mqGetattr, mqNotifySignal, mqOpen, mqReceive, mqStatus, O_CREAT, O_EXCL, O_NONBLOCK, O_RDONLY, setNonBlocking, waitReadable } from "../ffi/libc.ts";
import { mqueueSender, type Sender } from "../format.ts";
import type { ChannelContext, ChannelHandle } from "../types.ts";
import { selfCommand } from "../self.ts";
import type { SignalTrap } from "./signals.ts";

const SI_MESGQ = -3;
/** Messages taken per loop turn before yielding, so a flood cannot starve the other channels. */
const BATCH = 1024;
/** ...and the longest a loop turn may spend on the queue. */
const TURN_MS = 2;
/**
 * While the queue flows, how long to wait for a sender to refill it before we
 * sleep on mq_notify: first by asking again (a sender in step with us is back
 * within microseconds; being put to sleep and woken costs more), then in ppoll
 * (a sender blocked on a full 10-slot queue is back within ~100 µs, and a
 * notification round trip per refill costs far more).
 */
const SPIN_MS = 0.01;
const REFILL_US = 200;

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
  let polling: ReturnType<typeof setImmediate> | undefined;

  /** One message into buf (its length), or -1: the queue is empty, and stayed so if it was flowing. */
  const next = (flowing: boolean, until: number): number => {
    let n = mqReceive(mqd, buf, prio);
    if (n >= 0 || !flowing) return n;
    const spinUntil = Math.min(performance.now() + SPIN_MS, until);
    while ((n = mqReceive(mqd, buf, prio)) < 0 && performance.now() < spinUntil);
    if (n >= 0 || performance.now() >= until) return n;
    ctx.flush(); // what we took must not wait with us
    return waitReadable(mqd, REFILL_US) ? mqReceive(mqd, buf, prio) : -1;
  };
  /** Whether the last receive() stopped with the queue possibly not empty (its turn was used up). */
  let more = false;
  /**
   * Take what the queue holds. Once more than one message came in this turn the
   * queue is flowing and is given time to refill (see SPIN_MS) instead of
   * returning to the loop; a trickle of lone messages never waits. Never takes a
   * message that will not be printed (--count reached, stdout gone): it stays queued.
   */
  const receive = (): number => {
    const until = performance.now() + TURN_MS;
    let got = 0;
    more = false;
    while (serving && ctx.taking) {
      if (got >= BATCH) {
        more = true;
        break;
      }
      const n = next(got > 1, until);
      if (n < 0) {
        more = got > 1 && performance.now() >= until;
        break;
      }
      let end = n;
      while (end > 0 && buf[end - 1] === 10) end--;
      ctx.deliver(sender(prio[0]!), buf, 0, end);
      got++;
    }
    return got;
  };
  const arm = (): void => {
    try {
      mqNotifySignal(mqd, opts.notifySignal);
    } catch (err) {
      // EBUSY is also what our own registration answers, once recheck() raced a notification.
      if (!(err instanceof SysError && err.code === "EBUSY" && mqStatus(mqd).notifyPid === process.pid)) throw err;
    }
    armed = true;
  };
  /**
   * A notification is a queued real-time signal. When a signal flood has used up
   * RLIMIT_SIGPENDING the kernel drops it — unregistering us all the same — and
   * the queue would wait for a notification that never comes. So after each
   * batch of signals: messages waiting and nobody registered means that happened.
   */
  const recheck = (): void => {
    if (!serving || !armed || polling !== undefined) return;
    try {
      const { bytes, notifyPid } = mqStatus(mqd);
      if (bytes === 0 || notifyPid === process.pid) return;
    } catch {
      return;
    }
    armed = false;
    pump();
  };
  /**
   * Take messages until the queue is quiet; then arm mq_notify and look once
   * more: a message that came just before arming raises no signal.
   */
  const pump = (): void => {
    polling = undefined;
    if (!serving) return;
    receive();
    if (more && serving && ctx.taking) {
      polling = setImmediate(pump); // more may be waiting: let the other channels in first
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
  trap.afterSignals(recheck);
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
