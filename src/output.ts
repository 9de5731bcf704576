// stdout is the data channel: lines are collected into one buffer and written
// once per event-loop turn (or when the buffer fills). Writes are blocking, so a
// slow reader of stdout slows the postbox down instead of growing its memory.
import { writeSync } from "node:fs";
import { errnoName } from "./errors.ts";

const FLUSH_AT = 1 << 20;
const encoder = new TextEncoder();

export class Output {
  buf = new Uint8Array(FLUSH_AT * 2);
  view = new DataView(this.buf.buffer);
  len = 0;
  private scheduled = false;
  private closed = false;

  /** onClosed runs once when the reader has gone (EPIPE) or the fd fails for good. */
  /** `before` runs ahead of every write to fd (the store is written before stdout). */
  constructor(
    private readonly fd: number,
    private readonly onClosed: (err: unknown) => void,
    private readonly before?: () => void,
  ) {}

  /** Make room for n more bytes. */
  reserve(n: number): void {
    if (this.len + n <= this.buf.byteLength) return;
    if (this.len > 0) this.flush();
    if (n > this.buf.byteLength) {
      this.buf = new Uint8Array(n);
      this.view = new DataView(this.buf.buffer);
    }
  }

  utf8(s: string): void {
    this.reserve(s.length * 3);
    this.len += encoder.encodeInto(s, this.buf.subarray(this.len)).written;
  }

  /** Call after appending a whole line: flush now if the buffer is full, else soon. */
  commit(): void {
    if (this.len >= FLUSH_AT) this.flush();
    else if (!this.scheduled && this.len > 0) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  flush(): void {
    this.before?.();
    let off = 0;
    while (off < this.len && !this.closed) {
      try {
        off += writeSync(this.fd, this.buf, off, this.len - off);
      } catch (err) {
        // A non-blocking stdout inherited from the parent: wait for room instead of dropping.
        if (errnoName(err) === "EAGAIN") Bun.sleepSync(1);
        else if (errnoName(err) !== "EINTR") this.close(err);
      }
    }
    this.len = 0;
  }

  private close(err: unknown): void {
    this.closed = true;
    this.onClosed(err);
  }
}
