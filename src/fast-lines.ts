// The fast paths of format.ts: all whole lines of one read written in one pass,
// four bytes at a time. A line these cannot take as it is (a byte to escape,
// longer than --max-message) is left to format.ts's per-line writers, which are
// the reference: a test checks that both give the same bytes for any input.
import { jsonTail, prefixPiece, type ByteSink, type Sender } from "./format.ts";
import { Piece } from "./piece.ts";
import type { Output } from "./output.ts";

/*
 * Flags of a 4-byte word: the top bit of each byte that is below 0x20 or from 0x7f
 * up (a control byte, DEL or part of a multi-byte character); 0 for a plain word.
 * Take the lowest such byte: every byte below it is 0x20..0x7e, so no borrow or
 * carry reaches it, and x - 0x20 sets its top bit if it is below 0x20 or from 0xa0
 * up, x + 1 if it is 0x7f..0xfe. Borrows and carries may flag bytes above it too,
 * so the lowest flag is exact and the others only mean "look closer".
 */
const textFlags = (x: number): number => ((x - 0x20202020) | (x + 0x01010101)) & 0x80808080;

/**
 * textFlags, and `"` or `\` (the printable bytes a JSON string escapes). Below
 * the lowest text flag every byte is under 0x80, so y + 0x7f carries into no other
 * byte and leaves its top bit clear only where y is 0 (x is that quote or backslash).
 */
const jsonFlags = (x: number): number => (textFlags(x) | ~(((x ^ 0x22222222) + 0x7f7f7f7f) & ((x ^ 0x5c5c5c5c) + 0x7f7f7f7f))) & 0x80808080;

/** Index (0–3) of the byte of the lowest flag. */
const firstFlagged = (flags: number): number => (31 - Math.clz32(flags & -flags)) >> 3;

/** The newline that ends a line is a flagged byte: when it is the first one, the word holds the line's end. */
const newlineAt = (x: number, k: number): boolean => ((x >>> (8 * k)) & 0xff) === 10;

function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/*
 * The writers store a word before they look at its flags: when the first flagged
 * byte is the line's newline, the word's bytes up to it end the line (what the
 * store put past it is overwritten by the next line or lies past len); any other
 * flag leaves the line to the byte loop, which escapes `"` and `\` and leaves a
 * line with anything else to the per-line writer. The last bytes of a read (fewer
 * than four) go one by one.
 */

/**
 * Plain text: the whole lines of b[start, stop) (stop is just past a "\n"), each
 * after prefix (the sender's prefixPiece). Stops (and returns) at the first line
 * that is longer than max or holds a byte to escape; that line is left to
 * writeText. The caller makes the prefix and commits: compiled into this loop,
 * they made its FTL compile (on the JIT thread, while the first burst is read)
 * take ~40 % longer.
 */
export function writeTextLines(out: Output, prefix: Piece, b: Uint8Array, start: number, stop: number, max: number): number {
  const src = viewOf(b);
  let i = start;
  lines: while (i < stop) {
    out.reserve(prefix.room + max + 1);
    const buf = out.buf;
    const view = out.view;
    let len = prefix.put(view, out.len);
    const first = i;
    const end = stop < first + max ? stop : first + max;
    for (; i + 4 <= end; i += 4, len += 4) {
      const x = src.getInt32(i, true);
      view.setInt32(len, x, true);
      const flags = textFlags(x);
      if (flags === 0) continue;
      const k = firstFlagged(flags);
      if (!newlineAt(x, k)) break;
      i += k + 1;
      out.len = len + k + 1;
      continue lines;
    }
    for (let c = b[i]!; c !== 10; c = b[++i]!) {
      if (c < 0x20 || c >= 0x7f || i - first === max) return first; // out.len was not moved: this line's prefix is dropped
      buf[len++] = c;
    }
    buf[len++] = 10;
    i++;
    out.len = len;
  }
  return i;
}

/**
 * The NDJSON line of writeJsonLine for each whole line of b[start, stop), like
 * writeTextLines: stops (and returns) at the first line that is longer than max
 * or holds a byte writeTextLines would escape (the same line it stops at), which
 * is left to writeJsonLine. Lines of one read share its millisecond.
 *
 * A line's tail and the next line's head are one piece (the glue): after the
 * head of the first line, each line is its message and one put. The last head
 * is written past out.len, so it is not part of the output.
 */
export function writeJsonLines(out: ByteSink, from: Sender, b: Uint8Array, start: number, stop: number, max: number): number {
  const glue = jsonGlue(from);
  const head = from.jsonHead;
  const headLength = head.length;
  const room = glue.room + 2 * max;
  const src = viewOf(b);
  out.reserve(room + head.room);
  let buf = out.buf;
  let view = out.view;
  let len = head.put(view, out.len); // where this line's msg goes; out.len is where it starts
  let i = start;
  while (i < stop) {
    if (len + room > buf.byteLength) {
      out.reserve(room + head.room);
      buf = out.buf;
      view = out.view;
      len = head.put(view, out.len);
    }
    const first = i;
    const end = stop < first + max ? stop : first + max;
    wordLoop: {
      for (; i + 4 <= end; i += 4, len += 4) {
        const x = src.getInt32(i, true);
        view.setInt32(len, x, true);
        const flags = jsonFlags(x);
        if (flags === 0) continue;
        const k = firstFlagged(flags);
        if (!newlineAt(x, k)) break;
        i += k + 1;
        len += k;
        break wordLoop;
      }
      for (let c = b[i]!; c !== 10; c = b[++i]!) {
        if (c < 0x20 || c >= 0x7f || i - first === max) return first; // out.len was not moved
        if (c === 0x22 || c === 0x5c) buf[len++] = 0x5c; // " and \ are the only escapes left here
        buf[len++] = c;
      }
      i++;
    }
    len = glue.put(view, len);
    out.len = len - headLength;
  }
  return i;
}

/**
 * writeJsonLines into json and writeTextLines into text in one pass (--store
 * with text on stdout): each line is checked once. Stops where both would. The
 * caller commits text, as for writeTextLines.
 */
export function writeJsonAndTextLines(json: ByteSink, text: Output, from: Sender, b: Uint8Array, start: number, stop: number, max: number): number {
  const glue = jsonGlue(from);
  const head = from.jsonHead;
  const headLength = head.length;
  const jsonRoom = glue.room + 2 * max;
  const prefix = prefixPiece(from);
  const textRoom = prefix.room + max + 1;
  const src = viewOf(b);
  let jb = json.buf;
  let jv = json.view;
  let tb = text.buf;
  let tv = text.view;
  let j = 0; // where this line's msg goes in json; json.len is where the line starts
  let i = start;
  lines: for (let fresh = true; i < stop; fresh = false) {
    if (fresh || j + jsonRoom > jb.byteLength || text.len + textRoom > tb.byteLength) {
      json.reserve(jsonRoom + head.room);
      text.reserve(textRoom); // may write out the store (it goes first): json.len is read after
      jb = json.buf;
      jv = json.view;
      tb = text.buf;
      tv = text.view;
      j = head.put(jv, json.len);
    }
    let t = prefix.put(tv, text.len);
    const first = i;
    const end = stop < first + max ? stop : first + max;
    for (; i + 4 <= end; i += 4, j += 4, t += 4) {
      const x = src.getInt32(i, true);
      jv.setInt32(j, x, true);
      tv.setInt32(t, x, true);
      const flags = jsonFlags(x);
      if (flags === 0) continue;
      const k = firstFlagged(flags);
      if (!newlineAt(x, k)) break;
      j = glue.put(jv, j + k);
      json.len = j - headLength;
      text.len = t + k + 1;
      i += k + 1;
      continue lines;
    }
    for (let c = b[i]!; c !== 10; c = b[++i]!) {
      if (c < 0x20 || c >= 0x7f || i - first === max) return first; // neither len was moved
      tb[t++] = c;
      if (c === 0x22 || c === 0x5c) jb[j++] = 0x5c;
      jb[j++] = c;
    }
    j = glue.put(jv, j);
    json.len = j - headLength;
    tb[t++] = 10;
    text.len = t;
    i++;
  }
  return i;
}

/**
 * jsonTail then jsonHead: the bytes between two lines' messages. Made once per
 * millisecond and sender, with from.jsonHead (`{"ts":"…","channel":"…","msg":"`).
 */
function jsonGlue(from: Sender): Piece {
  const ms = Date.now();
  if (from.jsonHeadMs !== ms) {
    from.jsonHeadMs = ms;
    const head = `{"ts":"${new Date(ms).toISOString()}","channel":"${from.channel}","msg":"`;
    from.jsonHead = new Piece(head);
    from.jsonGlue = new Piece(jsonTail(from).text + head);
  }
  return from.jsonGlue;
}
