// Named FIFO channel. Opened O_RDWR|O_NONBLOCK: we hold a writer ourselves, so the
// read side never sees EOF when writers come and go (no reopen, no spin), and
// writers never block while the postbox runs.
import { closeSync } from "node:fs";
import { claimFifo, openClaimedFifo, releaseFifo } from "../endpoint.ts";
import { PostboxError, reason } from "../errors.ts";
import { setNonBlocking, setPipeSize } from "../ffi/libc.ts";
import { fifoSender } from "../format.ts";
import { LineFramer } from "../framing.ts";
import type { ChannelContext, ChannelHandle } from "../types.ts";
import { log } from "../log.ts";
import { readPipe } from "./reader.ts";

export interface FifoOptions {
  mode: number;
  maxMessage: number;
  /** ms without data after which an unfinished line is delivered (no EOF ever comes). */
  quiet: number;
}

/**
 * Claim the FIFO now (the endpoint module checks and holds it); it becomes
 * reachable — opened for reading — only at ready(), the postbox's last step.
 */
const PIPE_BYTES = 1 << 20;

export function openFifo(path: string, opts: FifoOptions, ctx: ChannelContext): ChannelHandle {
  const claim = claimFifo(path, opts.mode);
  let served: ChannelHandle | undefined;
  let fd: number | undefined;
  let open = true;
  return {
    kind: "fifo",
    where: `echo 1 > ${path}`,
    ready() {
      try {
        fd = openClaimedFifo(claim); // writers may write from now on: it is buffered in the pipe
        // Room for a burst: a writer blocks (and both sides switch) 16 times less often than with 64 KiB.
        setPipeSize(fd, PIPE_BYTES);
      } catch (err) {
        throw new PostboxError(`cannot open the fifo ${path}: ${reason(err)}`);
      }
      return () => {
        log.debug(`fifo ${path}: ${claim.created ? "created" : "reused"}, mode 0${opts.mode.toString(8)}, held open read-write (writers never block)`);
        served = serveFifo(fd!, path, opts, ctx, () => releaseFifo(claim));
      };
    },
    close() {
      if (!open) return;
      open = false;
      if (served) return served.close();
      if (fd !== undefined) closeSync(fd);
      releaseFifo(claim);
    },
  };
}

/** A FIFO passed by systemd (ListenFIFO=): read it, and leave the file alone. */
export function adoptFifo(fd: number, name: string, opts: FifoOptions, ctx: ChannelContext): ChannelHandle {
  try {
    setNonBlocking(fd);
  } catch (err) {
    throw new PostboxError(`cannot use the passed fifo ${name}: ${reason(err)}`);
  }
  return serveFifo(fd, name, opts, ctx, () => {});
}

function serveFifo(fd: number, path: string, opts: FifoOptions, ctx: ChannelContext, remove: () => void): ChannelHandle {
  const sender = fifoSender(path);
  const framer = new LineFramer(
    opts.maxMessage,
    (buf, start, end) => ctx.deliver(sender, buf, start, end),
    () => ctx.warn(`fifo ${path}: a line longer than ${opts.maxMessage} bytes; delivered in pieces`),
    ctx.deliverLines && ((buf, start, stop) => ctx.deliverLines!(sender, buf, start, stop, opts.maxMessage)),
  );
  let quietTimer: Timer | undefined;
  const reader = readPipe(
    fd,
    (chunk) => {
      framer.push(chunk);
      clearTimeout(quietTimer);
      // No EOF ever comes on a FIFO we hold open: an unfinished line goes out after a quiet period.
      if (framer.pending > 0) quietTimer = setTimeout(() => framer.flush(), opts.quiet);
    },
    (err) => ctx.warn(`fifo ${path}: read failed: ${reason(err)}; the fifo channel is closed`),
  );
  log.debug(`fifo ${path}: ${reader.unwatched === null ? "woken by inotify, read into one buffer" : `read through Bun's stream (inotify: ${reader.unwatched})`}`);
  let open = true;

  return {
    kind: "fifo",
    where: `echo 1 > ${path}`,
    close() {
      if (!open) return;
      open = false;
      reader.stop();
      clearTimeout(quietTimer);
      framer.flush();
      remove();
      closeSync(fd);
    },
  };
}
