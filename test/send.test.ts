import { describe, expect, test } from "bun:test";
import { closeSync, constants, existsSync, openSync } from "node:fs";
import { join } from "node:path";
import { BIN, have, runPostbox, startPostbox, tempDir, until } from "./harness.ts";

describe("postbox send", () => {
  test("--socket: every stdin line arrives, even with a short linger", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--no-fifo", "--linger", "1"]);
    const lines = Array.from({ length: 3000 }, (_, i) => `line ${i}`);
    const p = Bun.spawn([BIN, "send", "--socket", "socket"], { cwd: dir.path, stdin: new Blob([lines.join("\n")]) });
    expect(await p.exited).toBe(0);
    expect((await pb.waitLines(3000)).map((l) => l.slice(l.indexOf(": ") + 2))).toEqual(lines);
  });

  test("--socket with nobody serving: exit 1 and a clear line", async () => {
    using dir = tempDir();
    const r = await runPostbox(dir.path, ["send", "--socket", "nowhere", "x"]);
    expect(r).toEqual({
      exitCode: 1,
      stdout: "",
      stderr: "postbox: cannot connect to nowhere: no such file or directory (ENOENT); is a postbox serving there?\n",
    });
  });

  test.skipIf(process.getuid!() !== 0 || !have("setpriv"))("--signal to another user's process: permission denied", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--no-fifo", "--no-socket", "--no-mq"]);
    const p = Bun.spawn(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", BIN, "send", "--signal", "USR1", "--pid", String(pb.pid), "1"], {
      cwd: "/",
      stderr: "pipe",
    });
    expect(await p.exited).toBe(1);
    expect(await new Response(p.stderr).text()).toBe(`postbox: cannot send SIGUSR1 to pid ${pb.pid}: permission denied (another user's process)\n`);
    expect(pb.lines()).toEqual([]);
  });

  for (const [args, msg] of [
    [["send", "x"], /exactly one target/],
    [["send", "--socket", "a", "--fifo", "b", "x"], /exactly one target/],
    [["send", "--signal", "USR1", "1"], /--signal needs --pid/],
    [["send", "--signal", "HUP", "--pid", "1", "1"], /--signal: unknown signal/],
    [["send", "--fifo", "f", "--prio", "3", "x"], /--prio and --wait go with --mq/],
    [["send", "--sockett", "s", "x"], /unknown option --sockett/],
  ] as const) {
    test(`usage error: ${args.join(" ")}`, async () => {
      using dir = tempDir();
      const r = await runPostbox(dir.path, [...args]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(msg);
    });
  }
});

describe("postbox send --timeout", () => {
  test("a postbox whose stdout nobody reads: send gives up after --timeout with a clear line (socket and FIFO)", async () => {
    using dir = tempDir();
    // stdout is a FIFO we hold open and never read: postbox blocks on it once it is full.
    Bun.spawnSync(["mkfifo", join(dir.path, "stuck")]);
    const stuck = openSync(join(dir.path, "stuck"), constants.O_RDWR);
    const box = Bun.spawn([BIN, "--no-mq", "--no-signals", "--pidfile", "pb.pid"], { cwd: dir.path, stdin: "ignore", stdout: stuck, stderr: "ignore" });
    try {
      await until(() => existsSync(join(dir.path, "pb.pid")), "postbox ready");
      const line = "x".repeat(200);
      const started = performance.now();
      const bySocket = Bun.spawn(["bash", "-c", `yes ${line} | head -n 200000 | "${BIN}" send --socket socket --timeout 1`], { cwd: dir.path, stderr: "pipe" });
      expect(await bySocket.exited).toBe(3);
      expect(await new Response(bySocket.stderr).text()).toBe(
        "postbox: cannot send to socket: the postbox took nothing for 1 s (is its stdout blocked?); gave up (--timeout)\n",
      );
      expect(performance.now() - started).toBeGreaterThan(1000); // it did wait for the postbox that long
      const byFifo = Bun.spawn(["bash", "-c", `yes ${line} | head -n 20000 | "${BIN}" send --fifo fifo --timeout 1`], { cwd: dir.path, stderr: "pipe" });
      expect(await byFifo.exited).toBe(3);
      expect(await new Response(byFifo.stderr).text()).toBe(
        "postbox: cannot send to fifo: the postbox took nothing for 1 s (is its stdout blocked?); gave up (--timeout)\n",
      );
    } finally {
      box.kill("SIGKILL"); // blocked in write(2): SIGTERM would wait for the write
      await box.exited;
      closeSync(stuck);
    }
  }, 30_000);

  test("--timeout must be a positive number of seconds", async () => {
    using dir = tempDir();
    const r = await runPostbox(dir.path, ["send", "--socket", "s", "--timeout", "0", "x"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toStartWith("postbox: --timeout must be more than 0 seconds\n");
  });
});
