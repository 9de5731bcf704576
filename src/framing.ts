// Newline framing with bounded memory: a line longer than `max` bytes is handed
// on in pieces of `max` bytes, so no sender can make a buffer grow past it.

const NL = 10;

/**
 * Optional fast path: takes whole lines of buf[start, stop) (stop is just past a
 * "\n") in one pass and returns where it stopped: stop, or the start of a line it
 * leaves to onLine (one too long, or needing escapes).
 */
export type BulkLines = (buf: Uint8Array, start: number, stop: number) => number;

export class LineFramer {
  private partial: Uint8Array | null = null;
  private oversized = false;

  /**
   * onLine gets each line as buf[start, end) without its "\n"; valid only during the call
   * (a range, not a subarray: allocating one per line would cost more than the framing).
   * onOversize is called once per line that had to be cut into pieces.
   */
  constructor(
    private readonly max: number,
    private readonly onLine: (buf: Uint8Array, start: number, end: number) => void,
    private readonly onOversize: () => void,
    private readonly bulk?: BulkLines,
  ) {}

  /** Bytes held of an unfinished line. */
  get pending(): number {
    return this.partial?.byteLength ?? 0;
  }

  push(chunk: Uint8Array): void {
    let start = 0;
    if (this.partial) {
      const nl = chunk.indexOf(NL);
      const head = chunk.subarray(0, nl === -1 ? chunk.byteLength : nl);
      const joined = new Uint8Array(this.partial.byteLength + head.byteLength);
      joined.set(this.partial);
      joined.set(head, this.partial.byteLength);
      this.partial = null;
      if (nl === -1) {
        this.keep(joined);
        return;
      }
      this.line(joined, 0, joined.byteLength);
      start = nl + 1;
    }
    if (this.bulk) {
      const stop = chunk.lastIndexOf(NL) + 1;
      while (start < stop) {
        start = this.bulk(chunk, start, stop);
        if (start < stop) {
          const nl = chunk.indexOf(NL, start);
          this.line(chunk, start, nl);
          start = nl + 1;
        }
      }
    } else {
      for (let nl = chunk.indexOf(NL, start); nl !== -1; nl = chunk.indexOf(NL, start)) {
        this.line(chunk, start, nl);
        start = nl + 1;
      }
    }
    if (start < chunk.byteLength) this.keep(chunk.subarray(start));
  }

  /** Deliver an unfinished line as a message (EOF, quiet period, shutdown). */
  flush(): void {
    const rest = this.partial;
    this.partial = null;
    if (rest && rest.byteLength > 0) this.line(rest, 0, rest.byteLength);
    this.oversized = false;
  }

  private line(buf: Uint8Array, start: number, end: number): void {
    if (end - start > this.max) {
      this.warnOnce();
      for (; end - start > this.max; start += this.max) this.onLine(buf, start, start + this.max);
    }
    this.onLine(buf, start, end);
    this.oversized = false;
  }

  /** Hold an unfinished line, cutting off full pieces so at most `max` bytes stay (never 0: a
   * line of exactly k*max bytes must not end in an empty piece when its "\n" comes). */
  private keep(bytes: Uint8Array): void {
    let off = 0;
    if (bytes.byteLength > this.max) {
      this.warnOnce();
      for (; bytes.byteLength - off > this.max; off += this.max) this.onLine(bytes, off, off + this.max);
    }
    // A copy: Buffer's slice is a view, which would keep the whole chunk alive and see it reused.
    this.partial = Uint8Array.prototype.slice.call(bytes, off);
  }

  private warnOnce(): void {
    if (this.oversized) return;
    this.oversized = true;
    this.onOversize();
  }
}
