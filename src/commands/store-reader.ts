// Reading a store file line by line in bounded memory: forwards from any offset
// (streamed and resumable: the follower keeps calling read()), or backwards from
// the end (-n, --reverse), so the last lines of a huge store cost what they weigh.
import { closeSync, readSync } from "node:fs";
import { errnoName } from "../errors.ts";

const CHUNK = 1 << 20;
/** Longer lines cannot be messages serve stored: they are skipped, so memory stays bounded. */
export const MAX_LINE = 64 << 20;

/** A complete line: its text, the file offset where it starts, its number (0: not counted yet, ask lineAt). */
export type LineSink = (text: string, offset: number, lineNo: number) => void;

/** An open store (a file, or stdin). */
export class StoreFile {
  /** line is the number of the line starting at offset: the last answer, to count on from. */
  private mark = { offset: 0, line: 1 };

  constructor(
    readonly name: string,
    readonly fd: number,
    /** A regular file: read by offset (backwards too); else only forwards, in sequence. */
    readonly seekable: boolean,
  ) {}

  /** The number of the line starting at offset, counted when asked: only warnings need it. */
  lineAt(offset: number): number {
    if (!this.seekable) return 0;
    const { offset: at, line } = this.mark;
    const n = offset >= at ? line + countNewlines(this.fd, at, offset) : line - countNewlines(this.fd, offset, at);
    this.mark = { offset, line: n };
    return n;
  }

  close(): void {
    if (this.fd > 2) closeSync(this.fd);
  }
}

function countNewlines(fd: number, from: number, to: number): number {
  const buf = Buffer.allocUnsafe(Math.min(4 << 20, Math.max(to - from, 1)));
  let n = 0;
  for (let pos = from; pos < to; ) {
    const got = readSync(fd, buf, 0, Math.min(buf.byteLength, to - pos), pos);
    if (got <= 0) break;
    const b = buf.subarray(0, got);
    for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
    pos += got;
  }
  return n;
}

/** read(2) that retries EINTR and takes EAGAIN (a non-blocking pipe) as "nothing now". */
function readSome(fd: number, buf: Buffer, position: number | null): number {
  for (;;) {
    try {
      return readSync(fd, buf, 0, buf.byteLength, position);
    } catch (err) {
      if (errnoName(err) === "EAGAIN") return 0;
      if (errnoName(err) !== "EINTR") throw err;
    }
  }
}

/** Forwards: complete lines in order; an unfinished last line waits for its newline. */
export class ForwardLines {
  /** File offset where the line not yet handed on starts. */
  position: number;
  /** File offset of the next byte to read. */
  readAt: number;
  private line: number;
  private parts: Buffer[] = [];
  private partLen = 0;
  private skipping = false;
  private readonly buf = Buffer.allocUnsafe(CHUNK);

  constructor(
    readonly file: StoreFile,
    start: number,
    /** Number of the line at start; 0 when not known (started mid-file). */
    firstLine: number,
    private readonly onLine: LineSink,
    /** A line longer than MAX_LINE, skipped. */
    private readonly onLong: (offset: number, lineNo: number) => void,
  ) {
    this.position = this.readAt = start;
    this.line = firstLine;
  }

  /** Hand on the complete lines the file holds now; true when `budget` bytes were read and more may wait. */
  read(budget = Infinity): boolean {
    for (let done = 0; done < budget; ) {
      const n = readSome(this.file.fd, this.buf, this.file.seekable ? this.readAt : null);
      if (n <= 0) return false;
      const base = this.readAt;
      this.readAt += n;
      done += n;
      this.take(this.buf.subarray(0, n), base);
    }
    return true;
  }

  /** Bytes after the last newline: a line being written, or cut short. */
  get pending(): number {
    return this.readAt - this.position;
  }

  /** The source ends here: an unfinished last line is reported (offset, number) and dropped. */
  end(onCut: (offset: number, lineNo: number) => void): void {
    if (this.pending > 0) onCut(this.position, this.line);
    this.parts = [];
    this.partLen = 0;
    this.position = this.readAt;
  }

  private take(chunk: Buffer, base: number): void {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      if (this.skipping) this.skipping = false;
      else if (this.partLen > 0) {
        this.parts.push(chunk.subarray(start, nl));
        const text = Buffer.concat(this.parts).toString("utf8");
        this.parts = [];
        this.partLen = 0;
        this.onLine(text, this.position, this.line);
      } else if (nl > start) this.onLine(chunk.toString("utf8", start, nl), this.position, this.line);
      start = nl + 1;
      this.position = base + start;
      if (this.line > 0) this.line++;
    }
    if (start === chunk.byteLength || this.skipping) return;
    if (this.partLen + chunk.byteLength - start > MAX_LINE) {
      this.onLong(this.position, this.line);
      this.skipping = true;
      this.parts = [];
      this.partLen = 0;
      return;
    }
    this.parts.push(Buffer.from(chunk.subarray(start))); // a copy: the read buffer is reused
    this.partLen += chunk.byteLength - start;
  }
}

export interface BackLine {
  text: string;
  offset: number;
  /** False for the last line of the file when it has no newline (being written, or cut short). */
  complete: boolean;
}

/** Backwards from size: the lines of file from the last to the first (empty lines skipped). */
export function* backwardLines(file: StoreFile, size: number, onLong: (offset: number) => void): Generator<BackLine> {
  let pos = size;
  let carry: Buffer = Buffer.alloc(0); // the end of a line that starts before pos
  let skipping = false; // that line is longer than MAX_LINE: dropped up to its start
  let tail = true;
  while (pos > 0) {
    const from = Math.max(0, pos - CHUNK);
    const chunk = Buffer.allocUnsafe(pos - from);
    for (let got = 0; got < chunk.byteLength; ) {
      const n = readSync(file.fd, chunk, got, chunk.byteLength - got, from + got);
      if (n <= 0) throw new Error(`${file.name} shrank while it was read`);
      got += n;
    }
    const buf = carry.byteLength > 0 ? Buffer.concat([chunk, carry]) : chunk;
    let stop = buf.byteLength; // the line ends here (its newline, or the end of the file)
    for (let nl = stop > 0 ? buf.lastIndexOf(10, stop - 1) : -1; nl !== -1; nl = stop > 0 ? buf.lastIndexOf(10, stop - 1) : -1) {
      const complete = !tail;
      tail = false;
      if (skipping) {
        skipping = false;
        onLong(from + nl + 1);
      } else if (stop > nl + 1) yield { text: buf.toString("utf8", nl + 1, stop), offset: from + nl + 1, complete };
      stop = nl;
    }
    pos = from;
    carry = skipping ? Buffer.alloc(0) : buf.subarray(0, stop);
    if (carry.byteLength > MAX_LINE) {
      skipping = true;
      carry = Buffer.alloc(0);
    }
  }
  if (skipping) onLong(0);
  else if (carry.byteLength > 0) yield { text: carry.toString("utf8"), offset: 0, complete: !tail };
}
