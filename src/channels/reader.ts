// Reads a non-blocking fd (FIFO, pipe) from the event loop, chunk by chunk.
import { readSync } from "node:fs";
import { errnoName } from "../errors.ts";

export interface FdReader {
  /** Stop reading; what the kernel still holds for us is read and handed on first. */
  stop(): void;
}

const BUF = 1 << 18;

export function readFd(fd: number, onChunk: (chunk: Uint8Array) => void, onError: (err: unknown) => void): FdReader {
  const reader = Bun.file(fd).stream().getReader();
  const buf = new Uint8Array(BUF);
  let reading = true;

  /** Read what the kernel holds right now, without waiting (EAGAIN ends it). */
  const drain = (): void => {
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
      if (done || !reading) return;
      onChunk(value);
      // Under load more has arrived meanwhile: take it in the same turn, one
      // syscall per 256 KiB instead of a stream round trip per small chunk.
      drain();
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
