// Reads a non-blocking fd (FIFO, pipe) from the event loop, chunk by chunk.
import { readSync } from "node:fs";
import { errnoName } from "../errors.ts";

export interface FdReader {
  /** Stop reading; what the kernel still holds for us is read and handed on first. */
  stop(): void;
}

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
