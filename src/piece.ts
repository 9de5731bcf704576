// Bytes copied into every output line, eight at a time (see fast-lines.ts).

const encoder = new TextEncoder();

/**
 * Text written into every line — a text prefix, a JSON head, tail or the glue of
 * both — as its UTF-8 bytes in little-endian 8-byte words, the last one padded
 * with zeros: one store per word, where TypedArray.set costs a native call per
 * line and a byte loop a store per byte (for --json's ~100-byte glue, 8-byte
 * stores measured ~10 % less main-thread time than TypedArray.set, and that less
 * than 4-byte stores).
 *
 * One loop of whole words, so that every piece runs the same code: with a loop
 * for the bytes left over, a prefix of another length mod 8 (socket[pid=…]
 * changes with the pid's digits) ran code the compiled writers had never seen
 * run and sent them back to the interpreter (an FTL exit, InadequateCoverage),
 * and each loop more made their FTL compile longer. So put writes `room` bytes:
 * what lies past `length` is overwritten by what follows, or lies past the
 * output's len; writers reserve room, not length.
 *
 * The words go through float64 stores, which keep every bit pattern but a NaN's
 * (JavaScriptCore makes NaNs canonical). UTF-8 has no NaN word: a NaN's top two
 * bytes (the word's last two) are 0x7f or 0xff after one from 0xf0, and UTF-8
 * puts a continuation byte (0x80-0xbf) after every byte from 0xf0.
 */
export class Piece {
  private readonly words: Float64Array;
  /** The UTF-8 bytes of text. */
  readonly bytes: Uint8Array;
  readonly length: number;
  /** The bytes put writes from where it starts: length rounded up to whole words. */
  readonly room: number;

  constructor(readonly text: string) {
    this.bytes = encoder.encode(text);
    this.length = this.bytes.byteLength;
    const padded = new Uint8Array(Math.ceil(this.length / 8) * 8);
    padded.set(this.bytes);
    const view = new DataView(padded.buffer);
    this.words = new Float64Array(padded.byteLength / 8);
    for (let k = 0; k < this.words.length; k++) this.words[k] = view.getFloat64(8 * k, true);
    this.room = padded.byteLength;
  }

  /** Writes the piece at len of view's bytes, room bytes in all; returns len + length. */
  put(view: DataView, len: number): number {
    const words = this.words;
    for (let k = 0; k < words.length; k++) view.setFloat64(len + 8 * k, words[k]!, true);
    return len + this.length;
  }
}
