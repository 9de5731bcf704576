// The store read back as the forwarder's spool: the files in the order they were
// written (SIGHUP rotation adds one), each read only up to what has been fsynced.
// A file that was rotated away is finished before the next one is started.
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Cursor } from "./cursor.ts";

export interface FileId {
  dev: number;
  ino: number;
}

export interface SpoolFile extends FileId {
  fd: number;
  /** Bytes known to be fsynced: nothing past this is read. */
  durable: number;
  /** A newer file exists: this one will not grow (the store synced it before switching). */
  final: boolean;
  /** Times the file was seen shrinking (truncated in place): positions of an older generation are void. */
  generation: number;
  /** Bytes whose records are counted in Spool.records, and the last of them. */
  counted: number;
  lastByte: number;
  /** Spool.records when this generation of the file began: a position reset to its start has passed that many. */
  base: number;
}

/** Where the forwarder is: a line boundary in a file, and the sequence number of the line before it. */
export interface Position {
  file: SpoolFile;
  pos: number;
  seq: number;
  /** file.generation when the position was taken. */
  generation: number;
  /** Records passed since forwarding began: the lag is Spool.records minus this. */
  records: number;
}

const same = (a: FileId, b: FileId) => a.dev === b.dev && a.ino === b.ino;
const NL = 10;
const CLOSE = 0x7d; // `}`

export class Spool {
  /** Oldest first; files[0] holds the committed cursor. */
  readonly files: SpoolFile[] = [];
  /**
   * Records durable since where forwarding began, counted as the store syncs them:
   * what the store really kept. A record is a line ending in `}` (a JSON object);
   * a record torn by a crash (sealed with a newline) is not one.
   */
  records = 0;
  private counting = false;

  constructor(
    private readonly path: string,
    private readonly warn: (m: string) => void,
  ) {}

  /** The store fsynced `id` up to `size`. A new identity means the store was reopened (rotation). */
  synced(id: FileId, size: number): void {
    const last = this.files.at(-1);
    if (last && same(last, id)) {
      // Synced sizes only grow, unless the file was truncated in place (copytruncate, `: > store`).
      if (size < last.durable) {
        last.generation++;
        last.counted = 0;
        last.lastByte = NL;
        last.base = this.records; // records of the old content not sent yet are gone, not behind
        this.warn(`the store ${this.path} was truncated under the forwarder: forwarding what it holds now from its start`);
      }
      last.durable = size;
      this.count(last);
      return;
    }
    if (last) last.final = true;
    const f = this.openFile(id, size);
    if (!f) return;
    f.base = this.records;
    this.files.push(f);
    this.count(f);
  }

  /** Add the records of f synced since it was last counted. */
  private count(f: SpoolFile): void {
    if (!this.counting || f.counted >= f.durable) return;
    const buf = new Uint8Array(Math.min(1 << 20, f.durable - f.counted));
    while (f.counted < f.durable) {
      const n = readSync(f.fd, buf, 0, Math.min(buf.byteLength, f.durable - f.counted), f.counted);
      if (n === 0) return; // shorter than synced (truncated just now): the next sync tells
      const got = buf.subarray(0, n);
      for (let k = got.indexOf(NL); k !== -1; k = got.indexOf(NL, k + 1)) if ((k > 0 ? got[k - 1] : f.lastByte) === CLOSE) this.records++;
      f.lastByte = got[n - 1]!;
      f.counted += n;
    }
  }

  /** The store's file at its path, or (rotated away) a file of the same directory with that identity. */
  private openFile(id: FileId, size: number): SpoolFile | null {
    for (const candidate of [this.path, ...this.siblings(id)]) {
      let fd: number;
      try {
        fd = openSync(candidate, constants.O_RDONLY | constants.O_NOFOLLOW);
      } catch {
        continue;
      }
      const st = fstatSync(fd);
      if (st.isFile() && same(st, id)) return { dev: st.dev, ino: st.ino, fd, durable: size, final: false, generation: 0, counted: 0, lastByte: NL, base: 0 };
      closeSync(fd);
    }
    return null;
  }

  private siblings(id: FileId): string[] {
    const dir = dirname(this.path);
    try {
      return readdirSync(dir)
        .map((name) => join(dir, name))
        .filter((p) => {
          try {
            return same(statSync(p, { throwIfNoEntry: false }) ?? { dev: -1, ino: -1 }, id);
          } catch {
            return false;
          }
        });
    } catch {
      return [];
    }
  }

  /**
   * Where forwarding starts, once the store's current file is known: at the cursor
   * when it points into that file, or into a rotated one still in the store's
   * directory (finished first); from the start otherwise (said so when a cursor existed).
   */
  begin(cursor: Cursor | null): Position {
    const current = this.files.at(-1)!;
    if (cursor && !same(cursor, current)) {
      const old = this.openFile(cursor, Number.MAX_SAFE_INTEGER);
      if (old) {
        old.durable = fstatSync(old.fd).size;
        old.final = true;
        this.files.unshift(old);
      } else this.warn(`the store file the forwarding cursor points to is gone (rotated out of ${dirname(this.path)}?): what it still held is not forwarded; going on with ${this.path}`);
    }
    const file = this.files[0]!;
    let pos = 0;
    if (cursor && same(cursor, file)) {
      if (cursor.pos > file.durable) this.warn(`the store ${this.path} is shorter than the forwarding cursor (truncated?): forwarding it from its start`);
      else pos = cursor.pos;
    }
    // the lag counts from here on
    this.counting = true;
    file.counted = pos;
    for (const f of this.files) {
      f.base = this.records;
      this.count(f);
    }
    return { file, pos, seq: cursor?.seq ?? 0, generation: file.generation, records: 0 };
  }

  /**
   * Complete lines from p: bytes [p.pos, end) of p.file, read into buf (at most its
   * size). Past the end of a finished file, moves on to the next one. Null: nothing
   * durable yet; "longer": the next line does not fit in buf.
   */
  read(p: Position, buf: Uint8Array): { pos: Position; bytes: Uint8Array } | null | "longer" {
    for (;;) {
      const f = p.file;
      // What the file holds since it was truncated was all written after: it is all new.
      if (p.generation !== f.generation) p = { file: f, pos: 0, seq: p.seq, generation: f.generation, records: f.base };
      const n = Math.min(buf.byteLength, f.durable - p.pos);
      if (n > 0) {
        const got = readSync(f.fd, buf, 0, n, p.pos);
        if (got === 0) return null; // shorter than synced (truncated just now): the next sync tells
        const end = buf.lastIndexOf(10, got - 1) + 1;
        if (end > 0) return { pos: p, bytes: buf.subarray(0, end) };
        return got === buf.byteLength ? "longer" : null; // or a line not completely synced yet
      }
      const i = this.files.indexOf(f);
      if (!f.final || i + 1 >= this.files.length) return null;
      const next = this.files[i + 1]!;
      p = { file: next, pos: 0, seq: p.seq, generation: next.generation, records: next.base };
    }
  }

  /** Files wholly before the committed position are not needed again. */
  release(committed: SpoolFile): void {
    while (this.files.length > 1 && this.files[0] !== committed) closeSync(this.files.shift()!.fd);
  }

  close(): void {
    for (const f of this.files.splice(0)) closeSync(f.fd);
  }
}
