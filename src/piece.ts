// Bytes copied into every output line, eight or four at a time (see fast-lines.ts).

/**
 * Bytes written into every line — a text prefix, a JSON head, tail or the glue of
 * both — split into little-endian 8-byte words and the bytes left over: one store
 * per word, where TypedArray.set costs a native call per line and a byte loop a
 * store per byte (for --json's ~100-byte glue, 8-byte stores measured ~10 % less
 * main-thread time than TypedArray.set, and that less than 4-byte stores).
 *
 * The words go through float64 loads and stores, which keep every bit pattern but
 * a NaN's (JavaScriptCore makes NaNs canonical): a piece with a word that reads as
 * NaN (top byte 0x7f or 0xff over one from 0xf0: not in printable text) is stored
 * four bytes at a time instead.
 */
export class Piece {
  private readonly words8: Float64Array;
  private readonly words4: Int32Array;
  private readonly rest: Uint8Array;
  readonly length: number;

  constructor(readonly bytes: Uint8Array) {
    this.length = bytes.byteLength;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let n8 = bytes.byteLength >> 3;
    const words8 = Float64Array.from({ length: n8 }, (_, k) => view.getFloat64(8 * k, true));
    if (words8.some(Number.isNaN)) n8 = 0;
    this.words8 = words8.subarray(0, n8);
    const n4 = (bytes.byteLength - 8 * n8) >> 2;
    this.words4 = Int32Array.from({ length: n4 }, (_, k) => view.getInt32(8 * n8 + 4 * k, true));
    this.rest = bytes.slice(8 * n8 + 4 * n4);
  }

  /** Writes the piece at buf[len] (view is a DataView of buf's bytes); returns the new length. */
  put(buf: Uint8Array, view: DataView, len: number): number {
    const words8 = this.words8;
    for (let k = 0; k < words8.length; k++, len += 8) view.setFloat64(len, words8[k]!, true);
    const words4 = this.words4;
    for (let k = 0; k < words4.length; k++, len += 4) view.setInt32(len, words4[k]!, true);
    const rest = this.rest;
    for (let k = 0; k < rest.length; k++) buf[len++] = rest[k]!;
    return len;
  }
}
