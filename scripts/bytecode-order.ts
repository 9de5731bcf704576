// Records bytecode.order, the profile build.ts lays the binary's bytecode out by
// (compile.bytecodeOrder): the functions a default `postbox` runs from start to the
// banner and shutdown go together at the front, so an idle postbox reads (and keeps
// resident) less of itself. Run `npm run order` after large changes; a stale profile
// still applies (functions are matched by a hash of their syntax) and only costs
// memory, never behaviour. Needs a host build: ./postbox.
import { chmodSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mqUnlink } from "../src/ffi/libc.ts";

const root = join(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "postbox-order-"));
const profile = join(dir, "bytecode.order");
const mq = `/postbox-order-${process.pid}`;
try {
  const p = Bun.spawn([join(root, "postbox"), "--mq", mq], {
    cwd: dir,
    env: { ...process.env, BUN_BYTECODE_ORDER_OUT: profile },
    stdout: "ignore",
    stderr: "pipe",
  });
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of p.stderr) {
    text += decoder.decode(chunk, { stream: true });
    if (text.includes("... by mq_send")) p.kill("SIGTERM"); // open: now the way out
  }
  if ((await p.exited) !== 0 || !text.includes("... by mq_send")) throw new Error(`./postbox did not open and close cleanly:\n${text}`);
  chmodSync(profile, 0o644);
  renameSync(profile, join(root, "bytecode.order"));
  process.stderr.write("wrote bytecode.order (now run: bun build.ts)\n");
} catch (err) {
  process.stderr.write(`order: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  try {
    mqUnlink(mq);
  } catch {}
  rmSync(dir, { recursive: true, force: true });
}
