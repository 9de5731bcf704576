import { describe, expect, test } from "bun:test";
import { LineFramer } from "../src/framing.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function framer(max = 8) {
  const lines: string[] = [];
  let warnings = 0;
  const f = new LineFramer(max, (b, s, e) => lines.push(dec(b.subarray(s, e))), () => warnings++);
  return { f, lines, warnings: () => warnings };
}

describe("LineFramer", () => {
  test("an unfinished line is kept as a copy, not a view of the chunk (a Buffer's slice is a view)", () => {
    const { f, lines } = framer(64);
    const chunk = Buffer.from("one\ntw");
    f.push(chunk);
    chunk.fill(0x78); // the reader reuses (or the GC keeps alive) what the kept line points into
    f.push(enc("o\n"));
    expect(lines).toEqual(["one", "two"]);
  });

  test("splits lines, strips the newline, keeps empty lines", () => {
    const { f, lines } = framer();
    f.push(enc("a\n\nbc\n"));
    expect(lines).toEqual(["a", "", "bc"]);
    expect(f.pending).toBe(0);
  });

  test("joins a line split across chunks", () => {
    const { f, lines } = framer();
    f.push(enc("he"));
    f.push(enc("ll"));
    expect(lines).toEqual([]);
    expect(f.pending).toBe(4);
    f.push(enc("o\nx"));
    expect(lines).toEqual(["hello"]);
    expect(f.pending).toBe(1);
  });

  test("flush delivers the unfinished line once", () => {
    const { f, lines } = framer();
    f.push(enc("tail"));
    f.flush();
    f.flush();
    expect(lines).toEqual(["tail"]);
  });

  test("a long line comes in pieces of max bytes, warned once, memory bounded", () => {
    const { f, lines, warnings } = framer(4);
    f.push(enc("abcdefghij"));
    expect(f.pending).toBeLessThanOrEqual(4);
    f.push(enc("kl\nok\n"));
    expect(lines).toEqual(["abcd", "efgh", "ijkl", "ok"]);
    expect(warnings()).toBe(1);
  });

  test("a line of exactly k*max bytes ends without an empty piece", () => {
    const { f, lines } = framer(4);
    f.push(enc("abcdefgh"));
    f.push(enc("\n"));
    expect(lines).toEqual(["abcd", "efgh"]);
  });

  test("byte-at-a-time input frames the same", () => {
    const { f, lines } = framer(64);
    for (const ch of "one\ntwo\n") f.push(enc(ch));
    expect(lines).toEqual(["one", "two"]);
  });
});

describe("LineFramer bulk path", () => {
  test("whole lines go through bulk; the lines it leaves come to onLine, in order", () => {
    const got: string[] = [];
    // a bulk consumer that takes lines without "!" and stops before the first one with it
    const bulk = (b: Uint8Array, start: number, stop: number) => {
      let i = start;
      while (i < stop) {
        const nl = b.indexOf(10, i);
        const line = dec(b.subarray(i, nl));
        if (line.includes("!")) return i;
        got.push(`bulk:${line}`);
        i = nl + 1;
      }
      return i;
    };
    const f = new LineFramer(64, (b, s, e) => got.push(`line:${dec(b.subarray(s, e))}`), () => {}, bulk);
    f.push(enc("a\nb!\nc\nd"));
    f.push(enc("e\n"));
    expect(got).toEqual(["bulk:a", "line:b!", "bulk:c", "line:de"]); // a line joined across chunks takes the plain path
  });
});
