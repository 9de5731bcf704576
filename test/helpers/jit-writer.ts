// Run by fast-lines.test.ts in a process of its own (a fresh JIT): compiles
// writeTextLines with one sender (DFG, then FTL), then writes with 3,000 new ones
// (pids of 1 to 6 digits: prefixes of other lengths), and prints how often
// JavaScriptCore threw the compiled writer away since (0 when new senders look to
// it like the first).
import { numberOfDFGCompiles, reoptimizationRetryCount } from "bun:jsc";
import { writeTextLines } from "../../src/fast-lines.ts";
import { prefixPiece, socketSender } from "../../src/format.ts";
import { Output } from "../../src/output.ts";

const out = new Output(-1, () => {});
const line = new TextEncoder().encode(`${"x".repeat(31)}\n`);
const chunk = new Uint8Array(line.byteLength * 64);
for (let k = 0; k < 64; k++) chunk.set(line, k * line.byteLength);
const write = (from: ReturnType<typeof socketSender>): void => {
  writeTextLines(out, prefixPiece(from), chunk, 0, chunk.byteLength, 65536);
  out.len = 0; // nothing is written to the fd
};
const first = socketSender("socket", 1, 0, 0);
const deadline = performance.now() + 20_000;
while (numberOfDFGCompiles(writeTextLines) === 0 && performance.now() < deadline) write(first);
if (numberOfDFGCompiles(writeTextLines) === 0) throw new Error("writeTextLines was never compiled");
for (let r = 0; r < 20_000; r++) write(first); // on to the FTL, which inlines Piece.put
for (let i = 0; i < 3000; i++) {
  const from = socketSender("socket", [7, 42, 1000 + i, 123456 + i][i % 4]!, 0, 0); // prefixes of other lengths too
  for (let r = 0; r < 20; r++) write(from);
}
console.log(JSON.stringify({ retries: reoptimizationRetryCount(writeTextLines) }));
