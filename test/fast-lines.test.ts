// The fast paths against the per-line writers they stand in for: for any bytes,
// at any alignment, in any chunking, the output must be the same bytes.
import { expect, test } from "bun:test";
import { writeJsonAndTextLines, writeJsonLines, writeTextLines } from "../src/fast-lines.ts";
import { fifoSender, prefixPiece, socketSender, writeJsonLine, writeText, type ByteSink, type Sender } from "../src/format.ts";
import { LineFramer } from "../src/framing.ts";
import { Output } from "../src/output.ts";
import { Piece } from "../src/piece.ts";

const PIECES = [[0x61], [0x7a], [0x20], [0x7e], [0x22], [0x5c], [0x7f], [0], [9], [13], [0x1b], [0x1f], [0x0a], [0x0a], [0x0a], [0xc2, 0x80], [0xc2, 0x9b], [0xc3, 0xa9], [0xe2, 0x80, 0xa8], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x98, 0x80], [0xff], [0xc0, 0x80], [0x80], [0xed, 0xa0, 0x80]];
const PLAIN = Array.from("abcdefgh ~{}0123", (ch) => [ch.charCodeAt(0)]);

/** mulberry32: every residue equally likely (an LCG's low bits cycle, and a test would miss cases). */
let seed = 7;
function random(n: number): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) % n;
}

/** Mostly plain lines of every length (words and their tails), with every kind of byte now and then. */
function input(): Uint8Array {
  const bytes: number[] = [];
  const lines = 1 + random(40);
  for (let l = 0; l < lines; l++) {
    const n = random(5) === 0 ? random(80) : random(12);
    for (let k = 0; k < n; k++) bytes.push(...(random(12) === 0 ? PIECES[random(PIECES.length)]! : PLAIN[random(PLAIN.length)]!));
    bytes.push(10);
  }
  if (random(3) === 0) bytes.push(0x61, 0x62); // an unfinished last line
  return new Uint8Array(bytes);
}

/** Feed bytes through a framer in random chunks, each at a random offset of its ArrayBuffer (word alignment varies). */
function feed(framer: LineFramer, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.byteLength; ) {
    const n = 1 + random(bytes.byteLength - at);
    const pad = random(8);
    const room = new Uint8Array(pad + n + random(8));
    room.set(bytes.subarray(at, at + n), pad);
    framer.push(room.subarray(pad, pad + n));
    at += n;
  }
  framer.flush();
}

/** What o holds, emptied for the next round (the outputs are reused: each is a 2 MiB buffer). */
const text = (o: Output) => {
  const s = Buffer.from(o.buf.subarray(0, o.len)).toString("latin1");
  o.len = 0;
  return s;
};
const output = () => new Output(-1, () => {});
const [want, got, wantJson, wantText, json, both, bothText] = [output(), output(), output(), output(), output(), output(), output()];
const noTs = (s: string) => s.replace(/\{"ts":"[^"]*"/g, "{");
const SENDERS: Sender[] = [fifoSender("fifo"), socketSender("socket", 12345, 0, 0), socketSender("@a", 1, 22, 333, 'n"c')];

/** The per-line writers' NDJSON (ts left out) and text for bytes: what every fast path must give. */
function reference(from: Sender, max: number, bytes: Uint8Array): { json: string; text: string } {
  feed(new LineFramer(max, (b, s, e) => (writeJsonLine(wantJson, from, b, s, e), writeText(wantText, from, b, s, e)), () => {}), bytes);
  return { json: noTs(text(wantJson)), text: text(wantText) };
}

/** bytes through writeJsonAndTextLines into json and txt (the per-line writers for what it leaves). */
function feedJsonAndText(json: ByteSink, txt: Output, from: Sender, max: number, bytes: Uint8Array): void {
  feed(new LineFramer(max, (b, s, e) => (writeJsonLine(json, from, b, s, e), writeText(txt, from, b, s, e)), () => {}, (b, s, e) => writeJsonAndTextLines(json, txt, from, b, s, e, max)), bytes);
}

test("writeTextLines gives writeText's bytes for any input, chunking and alignment", () => {
  for (let t = 0; t < 3000; t++) {
    const from = SENDERS[t % SENDERS.length]!;
    const max = [1, 3, 4, 5, 8, 31, 64, 65536][random(8)]!;
    const bytes = input();
    feed(new LineFramer(max, (b, s, e) => writeText(want, from, b, s, e), () => {}), bytes);
    feed(
      new LineFramer(max, (b, s, e) => writeText(got, from, b, s, e), () => {}, (b, s, e) => writeTextLines(got, prefixPiece(from), b, s, e, max)),
      bytes,
    );
    expect(text(got)).toBe(text(want));
  }
});

test("writeJsonLines and writeJsonAndTextLines give writeJsonLine's (and writeText's) bytes for any input", () => {
  for (let t = 0; t < 3000; t++) {
    const from = SENDERS[t % SENDERS.length]!;
    const max = [1, 3, 4, 5, 8, 31, 64, 65536][random(8)]!;
    const bytes = input();
    const ref = reference(from, max, bytes);
    feed(new LineFramer(max, (b, s, e) => void writeJsonLine(json, from, b, s, e), () => {}, (b, s, e) => writeJsonLines(json, from, b, s, e, max)), bytes);
    expect(noTs(text(json))).toBe(ref.json);
    feedJsonAndText(both, bothText, from, max, bytes);
    expect(noTs(text(both))).toBe(ref.json);
    expect(text(bothText)).toBe(ref.text);
  }
});

test("a Piece writes its text's UTF-8 bytes at any offset, and nothing past its room", () => {
  // characters of 1 to 4 UTF-8 bytes, DEL and controls among them: no word may come out as a NaN (made canonical by the engine)
  const CHARS = ["a", "\x7f", "\x00", "\x1b", "é", "\u00ff", "\u0800", "\uffff", "\u{10000}", "\u{10ffff}", "\u{1f600}", '"', "\\"];
  const out = new Uint8Array(256);
  const view = new DataView(out.buffer);
  for (let t = 0; t < 3000; t++) {
    let text = "";
    for (let n = random(30); n > 0; n--) text += CHARS[random(CHARS.length)];
    const want = new TextEncoder().encode(text);
    const at = random(64);
    out.fill(0xaa);
    const piece = new Piece(text);
    expect(piece.put(view, at)).toBe(at + want.byteLength);
    expect([...out.subarray(at, at + want.byteLength)]).toEqual([...want]);
    // whole words: it may write past its bytes, up to room (reserved by every writer), never further
    expect(piece.room - want.byteLength).toBeWithin(0, 8);
    expect([...out.subarray(at + piece.room, at + piece.room + 8)]).toEqual(new Array(8).fill(0xaa));
  }
});

/** An Output of a few hundred bytes that keeps what it writes out (after `before`, as stdout runs the store's flush first). */
class Collecting extends Output {
  written: Buffer[] = [];
  constructor(private readonly first: () => void = () => {}) {
    super(-1, () => {});
  }
  /** Empty, with a buffer of size bytes. */
  reset(size: number): this {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
    this.len = 0;
    this.written = [];
    return this;
  }
  override commit(): void {}
  override flush(): void {
    this.first();
    this.written.push(Buffer.from(this.buf.subarray(0, this.len)));
    this.buf.fill(0xee, 0, this.len); // what was written out must not be read again
    this.len = 0;
  }
  take(): string {
    this.flush();
    return Buffer.concat(this.written).toString("latin1");
  }
}

/** The store's side: grows on reserve (never writes by itself), written out when stdout is flushed. */
class Growing {
  buf = new Uint8Array(64);
  view = new DataView(this.buf.buffer);
  len = 0;
  written: Buffer[] = [];
  reserve(n: number): void {
    if (this.len + n <= this.buf.byteLength) return;
    const grown = new Uint8Array(this.len + n + random(64));
    grown.set(this.buf.subarray(0, this.len));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }
  flush(): void {
    this.written.push(Buffer.from(this.buf.subarray(0, this.len)));
    this.len = 0;
  }
}

test("the writers give the same bytes when the outputs fill up mid-read (stdout written out, the store first)", () => {
  const store = new Growing();
  const [small, stdout] = [new Collecting(), new Collecting(() => store.flush())];
  for (let t = 0; t < 2000; t++) {
    const from = SENDERS[t % SENDERS.length]!;
    const max = [1, 3, 4, 5, 8, 31, 64, 65536][random(8)]!;
    const bytes = input();
    const ref = reference(from, max, bytes);
    // a piece writes up to its room, past its length: a writer that reserved only the length would write past a small buffer
    small.reset(100 + random(300));
    feed(new LineFramer(max, (b, s, e) => writeText(small, from, b, s, e), () => {}, (b, s, e) => writeTextLines(small, prefixPiece(from), b, s, e, max)), bytes);
    expect(small.take()).toBe(ref.text);
    small.reset(200 + random(300));
    feed(new LineFramer(max, (b, s, e) => void writeJsonLine(small, from, b, s, e), () => {}, (b, s, e) => writeJsonLines(small, from, b, s, e, max)), bytes);
    expect(noTs(small.take())).toBe(ref.json);
    store.written = [];
    stdout.reset(100 + random(300));
    feedJsonAndText(store, stdout, from, max, bytes);
    expect(stdout.take()).toBe(ref.text);
    store.flush();
    expect(noTs(Buffer.concat(store.written).toString("latin1"))).toBe(ref.json);
  }
});

test("the text writers stay inside a buffer that is nearly full: short lines at every buffer size", () => {
  // A piece writes up to its room (its length rounded up to 8): a writer that reserved only the
  // length wrote past the end when the line just fitted (a RangeError from the DataView).
  const out = new Collecting();
  const lines = new TextEncoder().encode("x\n\n".repeat(20)); // empty lines too: no message bytes after the prefix
  // prefixes of every length mod 8 that matters: room - length from 2 to 7
  for (const from of [...SENDERS, socketSender("socket", 7, 0, 0), socketSender("socket", 123456, 1000, 1000), socketSender("socket", 1234567, 0, 0)]) {
    const want = `${from.prefix}x\n${from.prefix}\n`.repeat(20);
    for (let size = 24; size < 400; size++) {
      for (const max of [1, 2, 64]) {
        out.reset(size);
        feed(new LineFramer(max, (b, s, e) => writeText(out, from, b, s, e), () => {}, (b, s, e) => writeTextLines(out, prefixPiece(from), b, s, e, max)), lines);
        expect(out.take()).toBe(want);
        out.reset(size);
        feed(new LineFramer(max, (b, s, e) => writeText(out, from, b, s, e), () => {}), lines);
        expect(out.take()).toBe(want);
      }
    }
  }
});

test("clients that arrive after writeTextLines was compiled do not make it compile again (a fresh process)", () => {
  // A Piece once wrote its bytes in three loops (8-byte words, 4-byte words, single bytes), which of
  // them ran depending on the length mod 8: a client whose prefix ran a loop the compiled writer had
  // not seen run sent it back to be compiled again (retries 1 with the old Piece, 3 runs of 3).
  const run = Bun.spawnSync([process.execPath, `${import.meta.dir}/helpers/jit-writer.ts`], { stderr: "pipe" });
  expect({ exitCode: run.exitCode, stderr: run.stderr.toString() }).toEqual({ exitCode: 0, stderr: "" });
  expect(JSON.parse(run.stdout.toString())).toEqual({ retries: 0 });
});
