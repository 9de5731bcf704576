// The forwarder's cursor: which store file (device, inode), the byte position in
// it and the sequence number of the last message the collector has taken, plus the
// stream id that names this sequence. One fixed-size record at offset 0 of
// `<store>.cursor`, rewritten in place and fdatasynced (a sector-sized write).
import { constants, fdatasyncSync, readSync, writeSync, type Stats } from "node:fs";
import { openOwnedFile, randomHex } from "../endpoint.ts";
import { PostboxError, reason } from "../errors.ts";

export interface Cursor {
  /** Random, made with the cursor: a lost cursor starts a new stream, never reuses sequence numbers of an old one. */
  stream: string;
  dev: number;
  ino: number;
  /** Bytes of that file already forwarded (always at a line boundary). */
  pos: number;
  /** Sequence number of the last message forwarded (the first one is 1). */
  seq: number;
}

const SIZE = 256;

export function newStream(): string {
  return randomHex(8);
}

/**
 * Opens (creating 0600) the cursor file next to the store. A symlink, a foreign
 * file or one others may read is refused: it is not ours. Returns the fd (kept for
 * saves) and the cursor, or null when there is none yet or it is unreadable.
 */
export function openCursor(path: string, warn: (m: string) => void): { fd: number; cursor: Cursor | null } {
  let fd: number;
  let st: Stats;
  try {
    ({ fd, st } = openOwnedFile(path, constants.O_RDWR | constants.O_CREAT, 0o600, 0o600));
  } catch (err) {
    throw new PostboxError(`cannot open the forwarding cursor ${path}: ${reason(err)}; remove it or pick another --store`);
  }
  if (st.size === 0) return { fd, cursor: null };
  const buf = Buffer.alloc(SIZE);
  const n = readSync(fd, buf, 0, SIZE, 0);
  const cursor = parseCursor(buf.subarray(0, n).toString("utf8"));
  if (!cursor) warn(`the forwarding cursor ${path} is unreadable: forwarding the whole store again as a new stream`);
  return { fd, cursor };
}

function parseCursor(text: string): Cursor | null {
  try {
    const c = JSON.parse(text) as Partial<Cursor>;
    const ok = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
    if (typeof c.stream === "string" && /^[0-9a-f]{16}$/.test(c.stream) && ok(c.dev) && ok(c.ino) && ok(c.pos) && ok(c.seq)) return c as Cursor;
  } catch {}
  return null;
}

/** Rewrite the record in place, then fdatasync: once this returns the cursor survives a crash. */
export function saveCursor(fd: number, c: Cursor): void {
  const text = JSON.stringify({ stream: c.stream, dev: c.dev, ino: c.ino, pos: c.pos, seq: c.seq });
  const buf = Buffer.alloc(SIZE, " ");
  buf.write(text);
  buf[SIZE - 1] = 10;
  let off = 0;
  while (off < SIZE) off += writeSync(fd, buf, off, SIZE - off, off);
  fdatasyncSync(fd);
}
