// Bytes copied into every output line, four at a time (see fast-lines.ts).

/**
 * Bytes written into every line — a text prefix, a JSON head or tail — split into
 * little-endian 4-byte words and the bytes left over: one store per word, where
 * TypedArray.set costs a native call per line and a byte loop a store per byte.
 */
export class Piece {
  private readonly words: Int32Array;
  private readonly rest: Uint8Array;
  readonly length: number;

  constructor(readonly bytes: Uint8Array) {
    this.length = bytes.byteLength;
    const n = bytes.byteLength >> 2;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.words = Int32Array.from({ length: n }, (_, k) => view.getInt32(4 * k, true));
    this.rest = bytes.slice(4 * n);
  }

  /** Writes the piece at buf[len] (view is a DataView of buf's bytes); returns the new length. */
  put(buf: Uint8Array, view: DataView, len: number): number {
    const words = this.words;
    for (let k = 0; k < words.length; k++, len += 4) view.setInt32(len, words[k]!, true);
    const rest = this.rest;
    for (let k = 0; k < rest.length; k++) buf[len++] = rest[k]!;
    return len;
  }
}
