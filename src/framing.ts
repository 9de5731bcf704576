// Newline framing with bounded memory: a line longer than `max` bytes is handed
// on in pieces of `max` bytes, so no sender can make a buffer grow past it.

const NL = 10;

export class LineFramer {
  private partial: Uint8Array | null = null;
  private oversized = false;

  /**
   * onLine gets each line without its "\n"; the bytes are only valid during the call.
   * onOversize is called once per line that had to be cut into pieces.
   */
  constructor(
    private readonly max: number,
    private readonly onLine: (line: Uint8Array) => void,
    private readonly onOversize: () => void,
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
      this.line(joined);
      start = nl + 1;
    }
    for (let nl = chunk.indexOf(NL, start); nl !== -1; nl = chunk.indexOf(NL, start)) {
      this.line(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (start < chunk.byteLength) this.keep(chunk.subarray(start));
  }

  /** Deliver an unfinished line as a message (EOF, quiet period, shutdown). */
  flush(): void {
    const rest = this.partial;
    this.partial = null;
    if (rest && rest.byteLength > 0) this.line(rest);
    this.oversized = false;
  }

  private line(bytes: Uint8Array): void {
    let off = 0;
    if (bytes.byteLength > this.max) {
      this.warnOnce();
      for (; bytes.byteLength - off > this.max; off += this.max) this.onLine(bytes.subarray(off, off + this.max));
    }
    this.onLine(off === 0 ? bytes : bytes.subarray(off));
    this.oversized = false;
  }

  /** Hold an unfinished line, cutting off full pieces so at most `max` bytes stay (never 0: a
   * line of exactly k*max bytes must not end in an empty piece when its "\n" comes). */
  private keep(bytes: Uint8Array): void {
    let off = 0;
    if (bytes.byteLength > this.max) {
      this.warnOnce();
      for (; bytes.byteLength - off > this.max; off += this.max) this.onLine(bytes.subarray(off, off + this.max));
    }
    this.partial = bytes.slice(off);
  }

  private warnOnce(): void {
    if (this.oversized) return;
    this.oversized = true;
    this.onOversize();
  }
}
