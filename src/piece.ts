// Bytes copied into every output line, eight or four at a time (see fast-lines.ts).

/**
 * Bytes written into every line — a text prefix, a JSON head, tail or the glue of
 * both — as little-endian 8-byte words, the last one padded with zeros: one store
 * per word, where TypedArray.set costs a native call per line and a byte loop a
 * store per byte (for --json's ~100-byte glue, 8-byte stores measured ~10 % less
 * main-thread time than TypedArray.set, and that less than 4-byte stores).
 *
 * Whole words and no loop for the bytes left over: with one, a prefix of another
 * length mod 8 (socket[pid=…] changes with the pid's digits) ran loop bodies the
 * compiled writers had never seen run, and each such sender sent them back to the
 * interpreter (an FTL exit, InadequateCoverage). So put writes up to `room` bytes:
 * what lies past `length` is overwritten by what follows, or lies past the
 * output's len; reserve room, not length.
 *
 * The words go through float64 loads and stores, which keep every bit pattern but
 * a NaN's (JavaScriptCore makes NaNs canonical): a piece with a word that reads as
 * NaN (top byte 0x7f or 0xff over one from 0xf0: not in printable text) is stored
 * four bytes at a time instead.
 */
export class Piece {
  private readonly words8: Float64Array;
  /** Empty unless a word reads as NaN: then the bytes as 4-byte words, and words8 is empty. */
  private readonly words4: Int32Array;
  readonly length: number;
  /** The bytes put writes from where it starts: length rounded up to its words. */
  readonly room: number;

  constructor(readonly bytes: Uint8Array) {
    this.length = bytes.byteLength;
    const padded = new Uint8Array(Math.ceil(bytes.byteLength / 8) * 8);
    padded.set(bytes);
    const view = new DataView(padded.buffer);
    const words8 = Float64Array.from({ length: padded.byteLength / 8 }, (_, k) => view.getFloat64(8 * k, true));
    const nan = words8.some(Number.isNaN);
    this.words8 = nan ? new Float64Array(0) : words8;
    const n4 = nan ? Math.ceil(bytes.byteLength / 4) : 0;
    this.words4 = Int32Array.from({ length: n4 }, (_, k) => view.getInt32(4 * k, true));
    this.room = nan ? 4 * n4 : padded.byteLength;
  }

  /** Writes the piece at len of view's bytes, room bytes in all; returns len + length. */
  put(view: DataView, len: number): number {
    const words8 = this.words8;
    for (let k = 0; k < words8.length; k++) view.setFloat64(len + 8 * k, words8[k]!, true);
    const words4 = this.words4;
    for (let k = 0; k < words4.length; k++) view.setInt32(len + 4 * k, words4[k]!, true);
    return len + this.length;
  }
}
