// Reads a non-blocking fd (FIFO, pipe) from the event loop, chunk by chunk.
import { readSync } from "node:fs";
import { errnoName } from "../errors.ts";

export interface FdReader {
  /** Stop reading; what the kernel still holds for us is read and handed on first. */
  stop(): void;
}

export function readFd(fd: number, onChunk: (chunk: Uint8Array) => void, onError: (err: unknown) => void): FdReader {
  const reader = Bun.file(fd).stream().getReader();
  let reading = true;
  (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || !reading) return;
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
      const buf = new Uint8Array(65536);
      for (;;) {
        let n: number;
        try {
          n = readSync(fd, buf);
        } catch (err) {
          if (errnoName(err) === "EINTR") continue;
          return; // EAGAIN: nothing left
        }
        if (n <= 0) return;
        onChunk(buf.subarray(0, n));
      }
    },
  };
}
