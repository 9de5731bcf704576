import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { BIN, mqName, ROOT, runPostbox, sh, startPostbox, tempDir, until } from "./harness.ts";
import { mqRemove } from "./helpers/mq.ts";

/** The memfd objects (native.ts) mapped into pid: "postbox-siginfo.so", … */
function mappedObjects(pid: number): string[] {
  const maps = readFileSync(`/proc/${pid}/maps`, "utf8");
  return [...new Set([...maps.matchAll(/\/memfd:(postbox-\w+\.so)/g)].map((m) => m[1]!))].sort();
}

/** A signal and an mq message arrive: whichever way the trap and the reader were built. */
async function serves(bin: string): Promise<string[]> {
  using dir = tempDir();
  const mq = mqName();
  using _q = { [Symbol.dispose]: () => mqRemove(mq) };
  await using pb = await startPostbox(dir.path, ["--mq", mq, "--signals", "USR1"], { bin });
  await until(async () => (await sh(dir.path, `/bin/kill -USR1 -q 7 ${pb.pid}`)).exitCode === 0, "kill -q");
  expect((await runPostbox(dir.path, ["send", "--mq", mq, "m"])).exitCode).toBe(0);
  const lines = await pb.waitLines(2);
  expect(lines.some((l) => l.startsWith("signal[") && l.endsWith(": 7"))).toBe(true);
  expect(lines).toContain("mqueue[prio=0]: m");
  await until(() => mappedObjects(pb.pid).length === 2, "both objects mapped", 2000).catch(() => {});
  return mappedObjects(pb.pid);
}

// Issue #18: the trap and the mq reader are shared objects built with the binary
// (no TinyCC compile at start: ~1.4 MiB less idle RSS); without a C compiler the
// build leaves them to cc() at start, as before.
describe("prebuilt trap and mq reader", () => {
  test("the binary loads both from memfds and serves signals and the queue with them", async () => {
    expect(await serves(BIN)).toEqual(["postbox-mqreader.so", "postbox-siginfo.so"]);
  });

  test("built where no C compiler is on PATH: a note in the build line, both compiled with TinyCC at start", async () => {
    using dir = tempDir();
    const out = join(dir.path, "pb");
    const bin = join(dir.path, "bin"); // git (for the commit) and nothing else
    mkdirSync(bin);
    symlinkSync(Bun.which("git")!, join(bin, "git"));
    const b = Bun.spawnSync([process.execPath, "build.ts", `--outfile=${out}`], { cwd: ROOT, stderr: "pipe", env: { ...process.env, PATH: bin } });
    expect(b.exitCode).toBe(0);
    expect(b.stderr.toString()).toContain("trap and mq reader left to TinyCC (no C compiler for the target)");
    expect(await serves(out)).toEqual([]);
  });
});
