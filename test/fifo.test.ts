import { describe, expect, test } from "bun:test";
import { existsSync, lstatSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, cpuTicks, runPostbox, sh, startPostbox, tempDir, until } from "./harness.ts";

describe("fifo channel", () => {
  test("echo 1 > fifo prints 'fifo: 1'; created 0600 by us, removed at SIGTERM", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path);
    const st = lstatSync(join(dir.path, "fifo"));
    expect(st.isFIFO()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect((await sh(dir.path, "echo 1 > fifo")).exitCode).toBe(0);
    expect(await pb.waitLines(1)).toEqual(["fifo: 1"]);
    const end = await pb.stop();
    expect(end.exitCode).toBe(0);
    expect(existsSync(join(dir.path, "fifo"))).toBe(false);
  });

  test("a last line without newline is delivered after the quiet period", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path);
    await sh(dir.path, "printf 3 > fifo");
    expect(await pb.waitLines(1)).toEqual(["fifo: 3"]);
  });

  test("one writer's 300,000 lines arrive in order, none torn", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--no-socket"]);
    expect((await sh(dir.path, "seq 1 300000 > fifo")).exitCode).toBe(0);
    const got = await pb.waitLines(300_000);
    expect(got.findIndex((line, i) => line !== `fifo: ${i + 1}`)).toBe(-1);
  });

  test("8 concurrent writers of PIPE_BUF-sized lines: every line arrives intact", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--no-socket"]);
    const writers = 8;
    const per = 200;
    // each line is exactly 4096 bytes (PIPE_BUF) with its newline: writer letter, number, padding
    const script = Array.from(
      { length: writers },
      (_, w) =>
        // bash's printf cuts output into 4096-byte writes; postbox send writes each line in one write()
        `(pad=$(printf '%04089d' 0); for i in $(seq 1 ${per}); do printf '%s%05d%s\\n' ${String.fromCharCode(97 + w)} $i "$pad"; done | "${BIN}" send --fifo fifo) &`,
    ).join("\n");
    expect((await sh(dir.path, `${script}\nwait`, 60_000)).exitCode).toBe(0);
    const lines = await pb.waitLines(writers * per, 30_000);
    const seen = new Set<string>();
    for (const l of lines) {
      expect(l).toMatch(/^fifo: [a-h]\d{5}0{4089}$/);
      seen.add(l.slice(6, 12));
    }
    expect(seen.size).toBe(writers * per);
  });

  test("an 800 KiB burst fits while postbox is stopped: the writer does not block", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--no-socket"]);
    process.kill(pb.pid, "SIGSTOP");
    try {
      // non-blocking writes of 4 KiB lines until the pipe is full (EAGAIN): the default pipe took 64 KiB
      const r = await sh(dir.path, `exec 3<>fifo; python3 -c '
import os, fcntl
fcntl.fcntl(3, fcntl.F_SETFL, os.O_WRONLY | os.O_NONBLOCK)
line, n = b"x" * 4095 + b"\\n", 0
try:
    while n < 200: os.write(3, line); n += 1
except BlockingIOError: pass
print(n)'`);
      expect(r.stdout.trim()).toBe("200"); // 800 KiB
    } finally {
      process.kill(pb.pid, "SIGCONT");
    }
    const lines = await pb.waitLines(200);
    expect(lines.every((l) => l === `fifo: ${"x".repeat(4095)}`)).toBe(true);
  });

  test("idle CPU stays ~0 after writers come and go", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--no-socket"]);
    await sh(dir.path, "for i in $(seq 1 20); do echo $i > fifo; done");
    await pb.waitLines(20);
    const before = await cpuTicks(pb.pid);
    const t0 = performance.now();
    await until(() => performance.now() - t0 >= 1000, "a one-second measuring window");
    const used = (await cpuTicks(pb.pid)) - before;
    expect(used).toBeLessThanOrEqual(3); // clock ticks (10 ms each) in one second
  });

  test("--mode sets the fifo's permissions exactly, whatever the umask", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--mode", "0666"]);
    expect(lstatSync(join(dir.path, "fifo")).mode & 0o777).toBe(0o666);
  });

  test("a leftover fifo nobody reads is reused; one with a live reader is refused", async () => {
    using dir = tempDir();
    await sh(dir.path, "mkfifo -m 600 fifo");
    await using pb = await startPostbox(dir.path, ["--no-socket"]);
    await sh(dir.path, "echo reused > fifo");
    expect(await pb.waitLines(1)).toEqual(["fifo: reused"]);
    const second = await runPostbox(dir.path, ["--no-socket", "--no-mq", "--no-signals"]);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`^postbox: cannot use fifo as the fifo: pid ${pb.pid} \\(postbox\\) is reading it \\(a running postbox\\?\\); stop it or choose --fifo elsewhere\n$`));
    await sh(dir.path, "echo still > fifo");
    expect(await pb.waitLines(2)).toEqual(["fifo: reused", "fifo: still"]);
  });

  test("a regular file, directory or symlink at the path is refused and left untouched", async () => {
    using dir = tempDir();
    const p = join(dir.path, "fifo");
    writeFileSync(p, "precious");
    const r = await runPostbox(dir.path, ["--no-socket", "--no-mq", "--no-signals"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe("postbox: cannot use fifo as the fifo: a regular file is in the way (remove it or choose --fifo elsewhere)\n");
    expect(readFileSync(p, "utf8")).toBe("precious");
    await sh(dir.path, "rm fifo && mkdir fifo && ln -s /etc/passwd link");
    expect((await runPostbox(dir.path, ["--no-socket", "--no-mq", "--no-signals"])).stderr).toMatch(/a directory is in the way/);
    const l = await runPostbox(dir.path, ["--fifo", "link", "--no-socket", "--no-mq", "--no-signals"]);
    expect(l.exitCode).toBe(1);
    expect(l.stderr).toMatch(/a symlink is in the way/);
    expect(lstatSync(join(dir.path, "link")).isSymbolicLink()).toBe(true);
  });

  test("postbox send --fifo posts, and fails fast when nobody reads", async () => {
    using dir = tempDir();
    await sh(dir.path, "mkfifo -m 600 fifo"); // no wider than --mode, or postbox refuses it
    const none = await runPostbox(dir.path, ["send", "--fifo", "fifo", "x"]);
    expect(none).toEqual({ exitCode: 1, stdout: "", stderr: "postbox: cannot write to the fifo fifo: no postbox is reading it\n" });
    await using pb = await startPostbox(dir.path, ["--no-socket"]);
    expect((await runPostbox(dir.path, ["send", "--fifo", "fifo", "hello", "world"])).exitCode).toBe(0);
    expect(await pb.waitLines(1)).toEqual(["fifo: hello world"]);
    expect(BIN).toBeTruthy();
  });
});
