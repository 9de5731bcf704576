import { describe, expect, test } from "bun:test";
import { writeJsonLines, writeTextLines } from "../src/fast-lines.ts";
import { fifoSender, jsonLine, prefixPiece, signalSender, socketSender, writeEscaped, writeJsonLine, writeText } from "../src/format.ts";
import { Output } from "../src/output.ts";

function text(body: Uint8Array | string, from = fifoSender("fifo")): string {
  const out = new Output(-1, () => {});
  writeText(out, from, typeof body === "string" ? new TextEncoder().encode(body) : body);
  const s = Buffer.from(out.buf.subarray(0, out.len)).toString("utf8");
  out.len = 0; // nothing is written to fd -1
  return s;
}

describe("text lines", () => {
  test("the SPEC's lines", () => {
    expect(text("1")).toBe("fifo: 1\n");
    expect(text("2", socketSender("socket", 781581, 10104, 10150))).toBe("socket[pid=781581,uid=10104,gid=10150]: 2\n");
    expect(text("3", signalSender(781590, 10104, "SIGUSR1", 3, -1))).toBe("signal[pid=781590,uid=10104,sig=SIGUSR1]: 3\n");
  });

  test("control bytes are escaped, one message stays one line", () => {
    expect(text("a\x00b\x1b[31mc\rd\te\nf\x7f")).toBe("fifo: a\\x00b\\x1b[31mc\\rd\\te\\nf\\x7f\n");
  });

  test("valid UTF-8 passes, invalid bytes and C1 controls are escaped", () => {
    expect(text("grüße ☃ 🎅")).toBe("fifo: grüße ☃ 🎅\n");
    expect(text(new Uint8Array([0x61, 0xff, 0xc3, 0x28, 0x62]))).toBe("fifo: a\\xff\\xc3(b\n");
    expect(text(new Uint8Array([0xc2, 0x9b, 0x32, 0x4a]))).toBe("fifo: \\xc2\\x9b2J\n"); // CSI
    expect(text(new Uint8Array([0xed, 0xa0, 0x80]))).toBe("fifo: \\xed\\xa0\\x80\n"); // surrogate
    expect(text(new Uint8Array([0xe2, 0x82]))).toBe("fifo: \\xe2\\x82\n"); // truncated
  });
});

test("a range ends the line: bytes after it never complete a UTF-8 sequence", () => {
  const out = new Output(-1, () => {});
  writeEscaped(out, new Uint8Array([0x41, 0xc3, 0x0a, 0xa9]), 0, 2);
  expect(Buffer.from(out.buf.subarray(0, out.len)).toString("utf8")).toBe("A\\xc3");
  out.len = 0;
});

test("writeTextLines: plain lines in one pass, stops at a line to escape or longer than max", () => {
  const out = new Output(-1, () => {});
  const b = new TextEncoder().encode("one\ntwo\nbad\x1b\nfour\n");
  const from = fifoSender("fifo");
  const stop = writeTextLines(out, prefixPiece(from), b, 0, b.byteLength, 64);
  expect(stop).toBe(8); // the start of "bad\x1b"
  expect(Buffer.from(out.buf.subarray(0, out.len)).toString()).toBe("fifo: one\nfifo: two\n");
  expect(writeTextLines(out, prefixPiece(from), new TextEncoder().encode("12345\n"), 0, 6, 4)).toBe(0); // 5 > max 4
  expect(writeTextLines(out, prefixPiece(from), new TextEncoder().encode("1234\n"), 0, 5, 4)).toBe(5); // exactly max is fine
  expect(Buffer.from(out.buf.subarray(0, out.len)).toString()).toBe("fifo: one\nfifo: two\nfifo: 1234\n");
  out.len = 0;
});

describe("--json", () => {
  test("fields, and msg_b64 only when the bytes are not UTF-8", () => {
    const from = socketSender("socket", 1, 2, 3, "nc");
    const rec = JSON.parse(jsonLine(from, new TextEncoder().encode("hi"), new Date(0)));
    expect(rec).toEqual({ ts: "1970-01-01T00:00:00.000Z", channel: "socket", msg: "hi", pid: 1, uid: 2, gid: 3, comm: "nc", via: "socket" });
    const bad = JSON.parse(jsonLine(from, new Uint8Array([0x61, 0xff])));
    expect(bad.msg).toBe("a\\xff");
    expect(Buffer.from(bad.msg_b64, "base64")).toEqual(Buffer.from([0x61, 0xff]));
  });

  test("no raw control character reaches the output", () => {
    const line = jsonLine(fifoSender("fifo"), new TextEncoder().encode("\x1b\x7f\u009b\u2028"));
    expect(line).not.toMatch(/[\x00-\x1f\x7f-\x9f\u2028]/);
    expect(JSON.parse(line).msg).toBe("\x1b\x7f\u009b\u2028");
  });

  test("writeJsonLine writes jsonLine's bytes (and its newline) for every kind of byte", () => {
    const out = new Output(-1, () => {});
    const pieces = [[0x61], [0x22], [0x5c], [0x7f], [0], [8], [9], [10], [12], [13], [0x1b], [0xc2, 0x80], [0xc2, 0x9b], [0xc2, 0xa0], [0xe2, 0x80, 0xa8], [0xe2, 0x80, 0xa9], [0xef, 0xbb, 0xbf], [0xf0, 0x9f, 0x98, 0x80], [0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc2], [0xe2, 0x80], [0x80]];
    const senders = [socketSender("s", 1, 2, 3, "n\x1bc\u2028\u0085"), fifoSender("f\x7f"), signalSender(0, 0, "USR1", 1, 0), signalSender(5, 6, "RTMIN", 7, -1)];
    let seed = 1;
    const random = (n: number) => {
      // mulberry32 (an LCG's low bits cycle: some combinations would never come up)
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    for (let t = 0; t < 20_000; t++) {
      const bytes = t < 256 ? [t] : Array.from({ length: random(8) }, () => pieces[random(pieces.length)]!).flat();
      const body = new Uint8Array([9, ...bytes, 9]); // the message is body[1, n - 1)
      const from = senders[t % senders.length]!;
      const at = writeJsonLine(out, from, body, 1, body.byteLength - 1);
      const got = Buffer.from(out.buf.subarray(at, out.len)).toString("latin1");
      const want = Buffer.from(`${jsonLine(from, new Uint8Array(bytes))}\n`).toString("latin1");
      // the same but for the time, which may have moved on by a millisecond
      expect(got.replace(/^\{"ts":"[^"]*"/, "")).toBe(want.replace(/^\{"ts":"[^"]*"/, ""));
      out.len = 0;
    }
  });

  test("writeJsonLines: writeJsonLine's bytes for plain lines in one pass, stops where writeTextLines stops", () => {
    const json = new Output(-1, () => {});
    const text = new Output(-1, () => {});
    const from = socketSender("s", 1, 2, 3, "nc");
    const b = new TextEncoder().encode('one\nsay "hi" \\o/\n12345\nbad\x1b\nfour\n');
    const noTs = (s: string) => s.replace(/\{"ts":"[^"]*"/g, "");
    const stop = writeJsonLines(json, from, b, 0, b.byteLength, 16);
    expect(stop).toBe(writeTextLines(text, prefixPiece(from), b, 0, b.byteLength, 16));
    expect(stop).toBe(b.indexOf(0x62)); // "bad\x1b"
    const want = new Output(-1, () => {});
    for (const line of ["one", 'say "hi" \\o/', "12345"]) {
      const l = new TextEncoder().encode(line);
      writeJsonLine(want, from, l, 0, l.byteLength);
    }
    expect(noTs(Buffer.from(json.buf.subarray(0, json.len)).toString())).toBe(noTs(Buffer.from(want.buf.subarray(0, want.len)).toString()));
    expect(writeJsonLines(json, from, new TextEncoder().encode("12345\n"), 0, 6, 4)).toBe(0); // 5 > max 4: left to writeJsonLine
    json.len = text.len = want.len = 0;
  });
});
