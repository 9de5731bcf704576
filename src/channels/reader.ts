// Reads a non-blocking fd (FIFO, pipe) from the event loop, chunk by chunk.
import { closeSync, readSync } from "node:fs";
import { release } from "node:os";
import { errnoName, reason } from "../errors.ts";
import { IN, inotifyInit, inotifyWatch, readNow } from "../ffi/libc.ts";

export interface FdReader {
  /** Stop reading; what the kernel still holds for us is read and handed on first. */
  stop(): void;
}

/** One read: what Bun's stream reads at a time, and readPipe's buffer. */
const BUF = 1 << 18;

/** onEnd runs at end of file (all writers gone), unless stop() came first. */
export function readFd(fd: number, onChunk: (chunk: Uint8Array) => void, onError: (err: unknown) => void, onEnd?: () => void): FdReader {
  const reader = Bun.file(fd).stream().getReader();
  let reading = true;

  /**
   * Read what the kernel holds right now, without waiting (EAGAIN ends it). Only
   * once the stream is cancelled: Bun's stream reads ahead of us, so reading the
   * fd beside it would put later bytes before earlier ones. Between two macrotasks
   * its buffer is empty (each chunk is taken within microtasks), so what is left
   * at stop() is in the kernel, in order.
   */
  const drain = (): void => {
    const buf = new Uint8Array(BUF); // once, at stop: no buffer held while the stream reads
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf);
      } catch (err) {
        if (errnoName(err) === "EINTR") continue;
        return;
      }
      if (n <= 0) return;
      onChunk(buf.subarray(0, n));
      if (n < BUF) return; // the kernel had no more
    }
  };

  (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (!reading) return;
      if (done) return onEnd?.();
      onChunk(value);
    }
  })().catch((err) => {
    if (reading) onError(err);
  });
  return {
    stop() {
      if (!reading) return;
      reading = false;
      reader.cancel().catch(() => {});
      drain();
    },
  };
}

/**
 * Splice, vmsplice and tee into a pipe raise IN_MODIFY from Linux 6.6 on
 * ("splice: always fsnotify_modify(out) on success"); before, a line written
 * that way would wait for the next write. `release` is uname's, e.g. "6.1.0-27-amd64".
 */
export function notifiesEveryPipeWrite(release: string): boolean {
  // No regular expression: none runs in a default start (see chars.ts).
  const [major, minor] = release.split(".", 2).map((part) => parseInt(part, 10));
  if (major === undefined || minor === undefined || !(major >= 0 && minor >= 0)) return false;
  return major > 6 || (major === 6 && minor >= 6);
}

export interface PipeReader extends FdReader {
  /** Why the pipe is read through Bun's stream (readFd) instead: inotify could not watch it; null when it does. */
  readonly unwatched: string | null;
}

/** At most this much per loop turn, so the other channels and stdout get theirs while a writer floods us. */
const TURN = 1 << 20;

/**
 * Read a FIFO or pipe into one buffer, reused; onChunk's view is valid only during
 * the call. Bun's stream hands a fresh 256 KiB buffer per read, and the allocator
 * gives freed memory back within ~10 ms, so every read faulted its pages in again
 * (measured on 32 MB through the FIFO: ~3,000 of ~4,500 page faults, ~13 % of the
 * loop's time). Bun has no
 * fd-readiness API, but every write to a pipe raises IN_MODIFY on its inode (write,
 * writev, splice, vmsplice, tee, sendfile: tried), so inotify wakes us and we read
 * with read(2) until the pipe is empty; nothing reads ahead of us (a close raises
 * IN_CLOSE_WRITE, for onEnd). Where inotify
 * cannot watch it (no /proc, out of instances or watches, a sandbox) it is readFd.
 */
export function readPipe(fd: number, onChunk: (chunk: Uint8Array) => void, onError: (err: unknown) => void, onEnd?: () => void, bytes = BUF): PipeReader {
  const streamed = (why: string): PipeReader => ({ ...readFd(fd, onChunk, onError, onEnd), unwatched: why });
  const kernel = release();
  if (!notifiesEveryPipeWrite(kernel)) return streamed(`Linux ${kernel} does not raise IN_MODIFY for splice, vmsplice and tee writes (6.6 does)`);
  let events: number;
  try {
    events = inotifyInit();
  } catch (err) {
    return streamed(reason(err));
  }
  try {
    // A writer's close is no write: where end of file matters it must wake us too.
    inotifyWatch(events, `/proc/self/fd/${fd}`, onEnd ? IN.MODIFY | IN.CLOSE_WRITE : IN.MODIFY);
  } catch (err) {
    closeSync(events);
    return streamed(reason(err));
  }
  const buf = new Uint8Array(bytes); // the most one read takes; held while the pipe is read
  let watching = true;
  let scheduled = false;

  /** Stop watching; what happens to what the pipe still holds is the caller's. */
  const finish = (): void => {
    if (!watching) return;
    watching = false;
    wake.stop();
    closeSync(events);
  };
  /** One read, handed on; true while there may be more (a full buffer, or any read where end of file matters). */
  const step = (): boolean => {
    const live = watching;
    let n: number;
    try {
      n = readNow(fd, buf, 0);
    } catch (err) {
      finish();
      if (live) onError(err);
      return false;
    }
    if (n < 0) return false; // empty: the next write wakes us
    if (n === 0) {
      finish();
      if (live) onEnd?.();
      return false;
    }
    onChunk(buf.subarray(0, n));
    // Short: the pipe was empty then, and a write since has raised an event of its own;
    // a close may have come before the read, its event already taken: read on to EAGAIN.
    return n === buf.byteLength || onEnd !== undefined;
  };
  const drain = (): void => {
    for (let taken = 0; watching && step(); ) if ((taken += buf.byteLength) >= TURN) return later();
  };
  const later = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      drain();
    });
  };
  // What the events say does not matter: each batch means "read again". The first
  // batch of a loop turn is read at once (a line written to the FIFO before another
  // channel's is printed first); later ones wait for the next turn. Reading each at
  // once was, under a flooding writer, a chain of microtasks (Bun's stream hands the
  // next event at once while there is one) in which the loop never got round to the
  // socket or a timer: `yes > fifo` held up every other channel.
  let readThisTurn = false;
  const onEvents = (): void => {
    if (readThisTurn) return later();
    readThisTurn = true;
    setImmediate(() => (readThisTurn = false));
    drain();
  };
  const wake = readFd(events, onEvents, (err) => {
    const live = watching;
    finish();
    if (live) onError(err);
  });
  later(); // what was written before the watch
  return {
    unwatched: null,
    stop() {
      if (!watching) return;
      finish();
      while (step()); // what the kernel still holds, all of it
    },
  };
}
