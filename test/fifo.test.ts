import { describe, expect, test } from "bun:test";
import { existsSync, lstatSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, cpuTicks, have, runPostbox, sh, startPostbox, tempDir, until } from "./harness.ts";

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

  // The fifo is read when inotify says it was written to (IN_MODIFY): every way into a pipe must say so.
  test("lines written with writev, splice, tee, vmsplice and sendfile arrive as promptly as with write", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--no-socket", "--no-mq"]);
    const ways: Record<string, string> = {
      write: "os.write(f, b)",
      writev: "os.writev(f, [b])",
      splice: "r, w = os.pipe(); os.write(w, b); os.splice(r, f, len(b))",
      tee: "r, w = os.pipe(); os.write(w, b); libc.tee(r, f, len(b), 0)",
      vmsplice: "buf = ctypes.create_string_buffer(b); iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), len(b)); libc.vmsplice(f, iov, 1, 0)",
      sendfile: "t = os.open('t', os.O_RDWR | os.O_CREAT | os.O_TRUNC); os.write(t, b); os.sendfile(f, t, 0, len(b))",
    };
    const seen: string[] = [];
    for (const [way, code] of Object.entries(ways)) {
      // one line each, and the next only once it arrived: no later write can wake postbox for it
      const r = await sh(dir.path, `python3 -c "
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
f = os.open('fifo', os.O_WRONLY); b = b'by ${way}\\n'
${code}
"`);
      expect(r.stderr).toBe("");
      seen.push(`fifo: by ${way}`);
      expect(await pb.waitLines(seen.length)).toEqual(seen);
    }
  });

  test("SIGTERM while the pipe is full and unread: every line the kernel holds is delivered, in order", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--no-socket", "--no-mq"]);
    process.kill(pb.pid, "SIGSTOP");
    try {
      const r = await sh(dir.path, `python3 -c '
import os
f = os.open("fifo", os.O_WRONLY | os.O_NONBLOCK)
n = 0
try:
    while n < 100000: os.write(f, b"%07d\\n" % n); n += 1
except BlockingIOError: pass
print(n)'`);
      expect(r.stderr).toBe("");
      expect(Number(r.stdout)).toBe(100000); // 800,000 bytes: the 1 MiB pipe holds them all
      process.kill(pb.pid, "SIGTERM"); // handled once it runs again, maybe before it reads anything
    } finally {
      process.kill(pb.pid, "SIGCONT");
    }
    const end = await pb.stop("SIGCONT"); // it ends by itself: a second SIGTERM would find no handler left and kill it
    expect(end.exitCode).toBe(0);
    const lines = end.stdout.split("\n").slice(0, -1);
    expect(lines.length).toBe(100000);
    expect(lines.findIndex((l, i) => l !== `fifo: ${String(i).padStart(7, "0")}`)).toBe(-1);
  });

  for (const call of ["inotify_init1", "inotify_add_watch"])
    test.skipIf(!have("cc"))(`where ${call} is refused (a sandbox) the fifo is read through Bun's stream: in order, the quiet-period flush, SIGTERM`, async () => {
      using dir = tempDir();
      const built = await sh(dir.path, `cc -DNR=__NR_${call} -o no-inotify ${join(import.meta.dir, "helpers", "enosys.c")}`);
      expect(built.exitCode).toBe(0);
      await using pb = await startPostbox(dir.path, ["--no-socket", "--no-mq", "--verbose"], { wrap: [join(dir.path, "no-inotify")] });
      expect(pb.stderr.text).toContain("postbox: debug: fifo fifo: read through Bun's stream (inotify: not supported by this system (ENOSYS))\n");
      expect((await sh(dir.path, "seq 1 100000 > fifo")).exitCode).toBe(0);
      const got = await pb.waitLines(100_000);
      expect(got.findIndex((line, i) => line !== `fifo: ${i + 1}`)).toBe(-1);
      await sh(dir.path, "printf 3 > fifo");
      expect((await pb.waitLines(100_001)).at(-1)).toBe("fifo: 3");
      await sh(dir.path, "printf 'complete\\npartial' > fifo");
      const end = await pb.stop();
      expect(end.stdout).toEndWith("fifo: 3\nfifo: complete\nfifo: partial\n");
    });

  test("a writer flooding the fifo does not hold up the other channels", async () => {
    using dir = tempDir();
    // stdout goes through a pipe to grep, which keeps only the socket's line: the
    // flood is never stored (it runs at hundreds of MB/s). grep reads on after the
    // match (no -m1): had it gone, postbox would end at the next write (EPIPE), and
    // did, now and then, before the last check below (CI caught it).
    const found = join(dir.path, "found");
    expect((await sh(dir.path, "mkfifo out")).exitCode).toBe(0);
    const grep = Bun.spawn(["sh", "-c", "exec grep --line-buffered -e ': through$' < out > found"], { cwd: dir.path, stderr: "ignore" });
    let flood: Bun.Subprocess | undefined;
    try {
      await using pb = await startPostbox(dir.path, ["--no-mq"], { wrap: ["sh", "-c", 'exec "$0" "$@" > out'] });
      flood = Bun.spawn(["sh", "-c", "exec yes flood > fifo"], { cwd: dir.path, stderr: "ignore" });
      const written = () => Number(/^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pb.pid}/io`, "utf8"))?.[1] ?? 0);
      await until(() => written() > 1 << 20, "the flood under way (a MiB of it printed)");
      expect((await runPostbox(dir.path, ["send", "--socket", "socket", "through"])).exitCode).toBe(0);
      await until(() => readFileSync(found, "utf8").includes(": through\n"), "the socket's line during the flood");
      expect(flood.exitCode).toBeNull(); // still flooding
      expect(written()).toBeGreaterThan(2 << 20);
      expect(pb.stderr.text).not.toContain("warning");
    } finally {
      flood?.kill("SIGKILL");
      grep.kill("SIGKILL");
      await Promise.all([flood?.exited, grep.exited]);
    }
  });
});
