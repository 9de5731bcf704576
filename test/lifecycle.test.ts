import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, mqName, runPostbox, sh, startPostbox, tempDir } from "./harness.ts";
import { mqPut, mqRemove } from "./helpers/mq.ts";

describe("lifecycle", () => {
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    test(`${sig}: what is buffered is delivered, fifo and socket removed, mq kept, exit 0`, async () => {
      using dir = tempDir();
      const mq = mqName();
      try {
        // a long quiet period: the unfinished line can only come out through the shutdown
        await using pb = await startPostbox(dir.path, ["--mq", mq, "--linger", "60000"]);
        await sh(dir.path, "printf 'complete\\npartial' > fifo");
        await pb.waitLines(1);
        const end = await pb.stop(sig);
        expect(end.exitCode).toBe(0);
        expect(end.stdout).toBe("fifo: complete\nfifo: partial\n");
        expect(existsSync(join(dir.path, "fifo"))).toBe(false);
        expect(existsSync(join(dir.path, "socket"))).toBe(false);
        mqPut(mq, [["kept", 0]]); // the queue outlived the postbox
      } finally {
        mqRemove(mq);
      }
    });
  }

  test("stdout closed (EPIPE): clean exit 0, files removed", async () => {
    using dir = tempDir();
    const mq = mqName();
    try {
      const r = await sh(
        dir.path,
        `set -u
        ( "${BIN}" --mq ${mq} --no-signals 2>err.txt; echo $? > rc.txt ) | head -n 1 > out.txt &
        "${BIN}" wait --socket socket --timeout 10
        for i in $(seq 1 20); do "${BIN}" send --socket socket "m$i" || break; done
        wait`,
        20_000,
      );
      expect(r.exitCode).toBe(0);
      expect(readFileSync(join(dir.path, "out.txt"), "utf8")).toMatch(/^socket\[.*\]: m1\n$/);
      expect(readFileSync(join(dir.path, "rc.txt"), "utf8")).toBe("0\n");
      expect(existsSync(join(dir.path, "socket"))).toBe(false);
      expect(existsSync(join(dir.path, "fifo"))).toBe(false);
    } finally {
      mqRemove(mq);
    }
  });

  test("usage errors: one line, exit 2, nothing created", async () => {
    using dir = tempDir();
    for (const args of [["--sockt", "x"], ["--signals", "HUP"], ["--mode", "12345"], ["bogus"]]) {
      const r = await runPostbox(dir.path, args);
      expect(r.exitCode).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/^postbox: [^\n]+\nTry '\S+\/postbox --help' for the options.\n$/); // the path it was run as
    }
    expect(existsSync(join(dir.path, "fifo")) || existsSync(join(dir.path, "socket"))).toBe(false);
  });

  test("--help lists every serve option; --version prints the version", async () => {
    using dir = tempDir();
    const help = await runPostbox(dir.path, ["--help"], { NO_COLOR: "1" });
    expect(help.exitCode).toBe(0);
    for (const opt of ["--fifo", "--socket", "--abstract", "--mq", "--signals", "--mode", "--json", "--max-message", "--max-connections", "--idle-timeout", "--linger", "--quiet", "--verbose"])
      expect(help.stdout).toContain(opt);
    const pkg = JSON.parse(readFileSync(join(import.meta.dir, "..", "package.json"), "utf8"));
    expect(await runPostbox(dir.path, ["--version"])).toMatchObject({ exitCode: 0, stdout: expect.stringContaining(`postbox ${pkg.version} (commit `), stderr: "" });
  });

  test("a stranger's .env in the working directory is not read by the binary", async () => {
    using dir = tempDir();
    await Bun.write(join(dir.path, ".env"), "NOTIFY_SOCKET=/nonexistent/notify\n");
    await using pb = await startPostbox(dir.path, ["--no-signals"]);
    expect(pb.stderr.text).not.toContain("cannot notify systemd"); // it would, had .env been loaded
    const withEnv = await startPostbox(dir.path, ["--no-signals", "--no-socket", "--no-fifo"], { env: { NOTIFY_SOCKET: "/nonexistent/notify" } });
    expect(withEnv.stderr.text).toContain("cannot notify systemd at /nonexistent/notify"); // the check above can fail
    await withEnv[Symbol.asyncDispose]();
  });

  test("--quiet: no banner, messages still on stdout", async () => {
    using dir = tempDir();
    const mq = mqName();
    try {
      const p = Bun.spawn([BIN, "--quiet", "--mq", mq], { cwd: dir.path, stdout: "pipe", stderr: "pipe" });
      expect((await runPostbox(dir.path, ["wait", "--socket", "socket", "--timeout", "10"])).exitCode).toBe(0);
      expect((await runPostbox(dir.path, ["send", "--socket", "socket", "q"])).exitCode).toBe(0);
      const reader = p.stdout.getReader();
      const { value } = await reader.read();
      expect(new TextDecoder().decode(value)).toMatch(/^socket\[.*\]: q\n$/);
      p.kill("SIGTERM");
      expect(await p.exited).toBe(0);
      expect(await new Response(p.stderr).text()).toBe("");
    } finally {
      mqRemove(mq);
    }
  });
});
