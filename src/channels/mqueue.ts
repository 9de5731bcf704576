// POSIX message queue channel. On Linux an mqd_t is an fd that poll can watch:
// a native thread (ffi/mqreader.ts) blocks in ppoll on it, never on signals, takes
// the messages and streams them in batches through a pipe the loop reads as it reads
// the FIFO (readPipe). mq_notify(SIGEV_NONE) only claims the queue as its reader.
import { fchmodSync } from "node:fs";
import { ownedOrClosed } from "../endpoint.ts";
import { PostboxError, SysError, reason } from "../errors.ts";
import { mqClaim, mqClose, mqGetattr, mqOpen, mqStatus, O_CREAT, O_EXCL, O_NONBLOCK, O_RDONLY, setNonBlocking } from "../ffi/libc.ts";
import { REC, RECORD_HEADER, startMqReader, type MqReader } from "../ffi/mqreader.ts";
import { errnoNameOf } from "../ffi/core.ts";
import { MQUEUE_PREFIX, mqueueSender, type Sender } from "../format.ts";
import type { ChannelContext, ChannelHandle } from "../types.ts";
import { log } from "../log.ts";
import { selfCommand } from "../self.ts";
import { readPipe } from "./reader.ts";

/** Lines longer than this take the per-message path (the bulk path reserves room for one). */
const LINE_MAX = 4096;
/** The most one read of the thread's pipe takes (the buffer is held while the channel is open). */
const READ_MAX = 1 << 20;
/** With --count, the reader thread runs at most this far ahead of what is printed (and never past --count). */
const AHEAD = 1 << 30;

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
  log.debug(`mq ${name}: open, maxmsg ${attr.maxmsg}, msgsize ${attr.msgsize}, ${attr.curmsgs} waiting`);
  const senders = new Map<number, Sender>(); // one per priority seen (at most MQ_PRIO_MAX)
  const sender = (p: number): Sender => {
    let s = senders.get(p);
    if (!s) senders.set(p, (s = mqueueSender(name, p)));
    return s;
  };
  let serving = true;
  /** mq_notify works here (under qemu-user it is ENOSYS: then another reader cannot be told). */
  let claims = true;
  const noClaims = (): void => {
    claims = false;
    ctx.warn(`mq ${name}: mq_notify is not available here (ENOSYS): another reader of the queue cannot be detected, and postbox wait --mq cannot see this one`);
  };
  /** With --count, the thread may take only what will be printed: the rest stays queued. */
  const limited = ctx.budget !== Infinity;
  let thread: MqReader | undefined;
  /** Messages handed on (counted where it matters: limited, there is no bulk path). */
  let delivered = 0;
  /** TEXT records taken (for -v): batches of plain messages the thread wrote as text lines. */
  let textRecords = 0;
  let tail: Uint8Array | null = null;
  let ended!: () => void;
  const end = new Promise<void>((resolve) => (ended = resolve));

  /** The whole records in data, delivered as the thread took them; returns where the unfinished one starts. */
  const records = (data: Uint8Array): number => {
    let at = 0;
    while (data.byteLength - at >= RECORD_HEADER) {
      const kind = int32(data, at);
      const prio = int32(data, at + 4);
      const len = int32(data, at + 8);
      const start = at + RECORD_HEADER;
      const stop = start + len;
      if (stop > data.byteLength) break;
      at = stop;
      if (kind === REC.text) {
        ctx.deliverText?.(data, start, stop); // asked for only when there is one
        textRecords++;
      }
      else if (kind === REC.lines) lines(sender(prio), data, start, stop);
      else if (kind === REC.raw) {
        ctx.deliver(sender(prio), data, start, stop);
        delivered++;
      } else if (kind === REC.claim && errnoNameOf(prio) === "ENOSYS") noClaims();
      else if (kind === REC.claim) quit(errnoNameOf(prio) === "EBUSY" ? `another process${otherPid()} now reads it` : `mq_notify failed: ${errnoNameOf(prio)}`);
      else quit(`${kind === REC.failed ? "mq_timedreceive" : `record kind ${kind}`}: ${errnoNameOf(prio)}`);
    }
    return at;
  };
  /** Lines of one priority, each ending in "\n": in one pass where the sinks allow it. */
  const lines = (from: Sender, data: Uint8Array, start: number, stop: number): void => {
    const bulk = ctx.deliverLines;
    while (start < stop) {
      if (bulk) start = bulk(from, data, start, stop, LINE_MAX);
      if (start >= stop) break;
      const nl = data.indexOf(10, start);
      ctx.deliver(from, data, start, nl);
      delivered++;
      start = nl + 1;
    }
  };
  const onChunk = (chunk: Uint8Array): void => {
    let data = chunk;
    if (tail !== null) {
      data = new Uint8Array(tail.byteLength + chunk.byteLength);
      data.set(tail);
      data.set(chunk, tail.byteLength);
      tail = null;
    }
    const at = records(data);
    if (at < data.byteLength) tail = data.slice(at);
    if (!serving) return;
    if (!ctx.taking) thread?.stop(); // nothing more is taken: the rest stays queued
    else if (limited) thread?.allow(delivered + Math.min(ctx.budget, AHEAD));
  };
  let finished = false;
  /** The thread is done (its pipe said end of file) or never ran: let go of the queue. */
  const onEnd = (): void => {
    if (finished) return;
    finished = true;
    serving = false;
    thread?.release();
    mqClose(mqd); // drops our claim; the queue and its messages stay
    log.debug(`mq ${name}: closed; ${textRecords} batch(es) of plain messages came as text lines from the reader thread`);
    ended();
  };

  /** No end of file will come: stop the thread; it may still hold the queue, so the mqd stays open. */
  const onPipeFailed = (err: unknown): void => {
    quit(`reading from its thread failed: ${reason(err)}`);
    thread?.stop();
    finished = true;
    ended();
  };

  const otherPid = (): string => {
    try {
      const pid = mqStatus(mqd).notifyPid;
      return pid > 0 ? ` (pid ${pid})` : "";
    } catch {
      return "";
    }
  };
  /** The thread ended by itself (it told why) or its pipe failed: say so; the pipe's end of file closes the rest. */
  const quit = (why: string): void => {
    if (!serving) return;
    serving = false;
    ctx.warn(`mq ${name}: cannot read the queue any more (${why}); the mq channel stops`);
  };
  const close = (): Promise<void> => {
    serving = false;
    if (!thread) onEnd();
    else if (!finished) thread.stop(); // it writes what it took, then its end of file comes
    return end;
  };

  const start = (): void => {
    if (!serving) return; // closed before it started
    try {
      // What was left while nobody read comes first, in the queue's priority order.
      // Text with nothing to check per message: the thread writes plain messages' lines itself.
      thread = startMqReader(mqd, attr.msgsize, { claims, limited, text: ctx.deliverText ? MQUEUE_PREFIX : undefined });
    } catch (err) {
      ctx.warn(`mq ${name}: cannot start the reader thread: ${startFailure(err)}; the mq channel stops`);
      onEnd();
      return;
    }
    if (limited) thread.allow(Math.min(ctx.budget, AHEAD));
    // A read takes a whole batch, but at most READ_MAX (a queue's messages may be up to 16 MiB: records then span reads).
    const pipe = readPipe(thread.fd, onChunk, onPipeFailed, onEnd, Math.min(thread.batch, READ_MAX)); // until end of file: stopped through the thread
    if (pipe.unwatched !== null) log.debug(`mq ${name}: the thread's pipe is read through Bun's stream (inotify: ${pipe.unwatched})`);
  };

  // Another reader is refused now, without claiming the queue ourselves: the
  // claim is what `postbox wait --mq` sees, so it is made only in ready().
  const reader = otherPid();
  if (reader !== "") {
    mqClose(mqd);
    throw new PostboxError(`cannot read the message queue ${name}: another process${reader} (a running postbox?) is already reading it`);
  }

  return {
    kind: "mqueue",
    where: `${selfCommand()} send --mq ${name} 4`,
    ready() {
      try {
        mqClaim(mqd); // EBUSY: another reader claimed it since
      } catch (err) {
        if (err instanceof SysError && err.code === "EBUSY")
          throw new PostboxError(`cannot read the message queue ${name}: another process${otherPid()} (a running postbox?) is already reading it`);
        if (err instanceof SysError && err.code === "ENOSYS") noClaims();
        else throw new PostboxError(`cannot watch the message queue ${name}: ${reason(err)}`);
      }
      // Once the loop turns, after the banner: compiling the thread (TinyCC, a few ms)
      // must not delay readiness; posts wait in the queue meanwhile.
      return () => void setImmediate(start);
    },
    close,
  };
}

/** The failing step and why, on one line. */
function startFailure(err: unknown): string {
  if (err instanceof SysError) return `${err.syscall} failed: ${reason(err)}`;
  return err instanceof Error ? err.message : String(err);
}

/** A little-endian int32 at any offset (records are packed). */
function int32(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24);
}
