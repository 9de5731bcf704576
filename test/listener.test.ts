import { expect, test } from "bun:test";
import { openFileLimit } from "../src/channels/listener.ts";

// Issue #18: /proc/self/limits is read with string steps (no regular expression at start).
test("openFileLimit is the soft RLIMIT_NOFILE, as a child shell's ulimit -Sn gives it", () => {
  const shell = Bun.spawnSync(["sh", "-c", "ulimit -Sn"]).stdout.toString().trim();
  expect(shell).not.toBe("");
  expect(openFileLimit()).toBe(shell === "unlimited" ? Infinity : Number(shell));
});
