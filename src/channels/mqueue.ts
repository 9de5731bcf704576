// POSIX message queue channel. On Linux an mqd_t is an fd that poll can watch:
// readiness comes from the queue descriptor itself (a Worker blocks in ppoll on
// it, see fdwatch.ts), never from signals. The main thread drains the queue, then
// re-arms the watch; mq_notify(SIGEV_NONE) only claims the queue as its reader.
import { fchmodSync } from "node:fs";
import { ownedOrClosed } from "../endpoint.ts";
import { PostboxError, SysError, reason } from "../errors.ts";
import { mqClaim, mqClose, mqGetattr, mqOpen, mqReceive, mqStatus, O_CREAT, O_EXCL, O_NONBLOCK, O_RDONLY, setNonBlocking, waitReadable } from "../ffi/libc.ts";
import { mqueueSender, type Sender } from "../format.ts";
import type { ChannelContext, ChannelHandle } from "../types.ts";
import { log } from "../log.ts";
import { selfCommand } from "../self.ts";
import { watchReadable, type FdWatch } from "./fdwatch.ts";

/** Messages taken per loop turn before yielding, so a flood cannot starve the other channels. */
const BATCH = 1024;
/** ...and the longest a loop turn may spend on the queue. */
const TURN_MS = 2;
/**
 * While the queue flows, how long to wait for a sender to refill it before we
 * hand it back to the watcher: first by asking again (a sender in step with us is
 * back within microseconds; being put to sleep and woken costs more), then in
 * ppoll (a sender blocked on a full 10-slot queue is back within ~100 µs, and a
 * wake-up round trip through the watcher per refill costs far more).
 */
const SPIN_MS = 0.01;
const REFILL_US = 200;

export interface MqueueOptions {
  mode: number;
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
  return ownedOrClosed(mqOpen(name, O_RDONLY | O_NONBLOCK), mode, mqClose); // fstat on the mqd: never adopt another user's queue
}

export function openMqueue(name: string, opts: MqueueOptions, ctx: ChannelContext): ChannelHandle {
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
  return serveMqueue(mqd, name, ctx);
}

/** A queue passed by systemd (ListenMessageQueue=): its descriptor is already open. */
export function adoptMqueue(mqd: number, name: string, ctx: ChannelContext): ChannelHandle {
  try {
    setNonBlocking(mqd); // mq_receive must answer EAGAIN, never wait
  } catch (err) {
    throw new PostboxError(`cannot use the passed message queue ${name}: ${reason(err)}`);
  }
  return serveMqueue(mqd, name, ctx);
}

function serveMqueue(mqd: number, name: string, ctx: ChannelContext): ChannelHandle {
  // An existing queue keeps the attributes it was made with: size the buffer from it.
  const attr = mqGetattr(mqd);
  const buf = new Uint8Array(attr.msgsize);
  log.debug(`mq ${name}: open, maxmsg ${attr.maxmsg}, msgsize ${attr.msgsize}, ${attr.curmsgs} waiting`);
  const prio = new Uint32Array(1);
  const senders = new Map<number, Sender>(); // one per priority seen (at most MQ_PRIO_MAX)
  const sender = (p: number): Sender => {
    let s = senders.get(p);
    if (!s) senders.set(p, (s = mqueueSender(name, p)));
    return s;
  };
  let serving = true;
  /** mq_notify works here (under qemu-user it is ENOSYS: then another reader cannot be told). */
  let claims = true;
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
  /**
   * Claim the queue again: the kernel dropped our registration when a message
   * landed on the empty queue. EBUSY means another process registered meanwhile.
   */
  const claim = (): void => {
    if (!claims) return;
    try {
      mqClaim(mqd);
    } catch (err) {
      if (err instanceof SysError && err.code === "ENOSYS") {
        claims = false;
        ctx.warn(`mq ${name}: mq_notify is not available here (ENOSYS): another reader of the queue cannot be detected, and postbox wait --mq cannot see this one`);
        return;
      }
      throw err;
    }
  };
  /** Take messages until the queue is empty, claim it, and hand it back to the watcher. */
  const pump = (): void => {
    polling = undefined;
    if (!serving) return;
    try {
      receive();
      if (more && serving && ctx.taking) {
        polling = setImmediate(pump); // more may be waiting: let the other channels in first
        return;
      }
      if (!serving || !ctx.taking) return; // nothing more is taken: no need to watch
      claim();
    } catch (err) {
      stop(err instanceof SysError && err.code === "EBUSY" ? `another process${otherPid()} now reads it` : reason(err));
      return;
    }
    watch?.rearm();
  };
  const otherPid = (): string => {
    try {
      const pid = mqStatus(mqd).notifyPid;
      return pid > 0 ? ` (pid ${pid})` : "";
    } catch {
      return "";
    }
  };
  const stop = (why: string): void => {
    if (!serving) return;
    ctx.warn(`mq ${name}: cannot read the queue any more (${why}); the mq channel stops`);
    close();
  };
  const close = (): void => {
    if (!serving) return;
    serving = false;
    if (polling) clearImmediate(polling);
    watch?.close();
    mqClose(mqd); // drops our claim; the queue and its messages stay
  };

  // Another reader is refused now, without claiming the queue ourselves: the
  // claim is what `postbox wait --mq` sees, so it is made only in ready().
  const reader = otherPid();
  if (reader !== "") {
    mqClose(mqd);
    throw new PostboxError(`cannot read the message queue ${name}: another process${reader} (a running postbox?) is already reading it`);
  }
  let watch: FdWatch | undefined;

  return {
    kind: "mqueue",
    where: `${selfCommand()} send --mq ${name} 4`,
    ready() {
      try {
        claim(); // EBUSY: another reader claimed it since
      } catch (err) {
        if (err instanceof SysError && err.code === "EBUSY")
          throw new PostboxError(`cannot read the message queue ${name}: another process${otherPid()} (a running postbox?) is already reading it`);
        throw new PostboxError(`cannot watch the message queue ${name}: ${reason(err)}`);
      }
      return () => {
        try {
          // Armed from the start: what arrives before the first drain is seen again after it.
          watch = watchReadable(mqd, () => polling === undefined && pump(), stop);
        } catch (err) {
          throw new PostboxError(`cannot watch the message queue ${name}: starting the watcher thread failed: ${reason(err)}`);
        }
        pump(); // what was left while nobody read, in the queue's priority order
      };
    },
    close,
  };
}
