import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, ROOT, have, mqName, runPostbox, sh, socketClient, startPostbox, tempDir, until } from "./harness.ts";
import { mqPut, mqRemove } from "./helpers/mq.ts";

const uid = process.getuid!();

describe("made for scripts and CI", () => {
  test.skipIf(!have("nc"))("the README's CI example runs as printed: exit 0, three lines", async () => {
    const example = readFileSync(join(ROOT, "examples", "ci-smoke.sh"), "utf8");
    expect(readFileSync(join(ROOT, "README.md"), "utf8")).toContain(example.split("\n").slice(3).join("\n").trim());
    using dir = tempDir();
    const r = await sh(dir.path, `PB="${BIN}" bash "${join(ROOT, "examples", "ci-smoke.sh")}"`, 20_000);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe("fifo: hello");
    expect(lines[1]).toMatch(new RegExp(`^socket\\[pid=\\d+,uid=${uid},gid=\\d+\\]: world$`));
    expect(lines[2]).toMatch(new RegExp(`^signal\\[pid=\\d+,uid=${uid},sig=SIGUSR1\\]: 42$`));
    expect(readdirSync(dir.path)).toEqual([]); // pidfile, fifo, socket and its output file: nothing left behind
  });

  test("--timeout first: exit 3 and how many arrived", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--count", "3", "--timeout", "0.5"]);
    await runPostbox(dir.path, ["send", "--socket", "socket", "only one"]);
    const end = await pb.stop("SIGCONT"); // no signal that ends it: it ends by itself
    expect(end.exitCode).toBe(3);
    expect(end.stdout).toMatch(/: only one\n$/);
    expect(end.stderr).toMatch(/postbox: --timeout 0.5 s reached with 1 of 3 message\(s\)\n$/);
  });

  test("--timeout stops like SIGTERM: an unfinished line already received is still printed", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--timeout", "1", "--linger", "0"]);
    const c = await socketClient(join(dir.path, "socket"), ["no newline yet"], { end: false });
    const end = await pb.stop("SIGCONT"); // it ends by itself
    expect(end.exitCode).toBe(3);
    expect(end.stdout).toMatch(/: no newline yet\n$/);
    await c.closed;
  });

  test("--count with --match counts only matching messages; all are printed", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--count", "2", "--match", "^ok", "--timeout", "20"]);
    for (const m of ["ok 1", "noise", "ok 2"]) await runPostbox(dir.path, ["send", "--socket", "socket", m]);
    const end = await pb.stop("SIGCONT");
    expect(end.exitCode).toBe(0);
    expect(end.stdout.split("\n").filter(Boolean).map((l) => l.split(": ")[1])).toEqual(["ok 1", "noise", "ok 2"]);
  });

  test("--pidfile: written once ready, holds the pid, removed at exit", async () => {
    using dir = tempDir();
    const pidfile = join(dir.path, "pb.pid");
    await using pb = await startPostbox(dir.path, ["--pidfile", "pb.pid"]);
    expect(readFileSync(pidfile, "utf8")).toBe(`${pb.pid}\n`);
    expect((await pb.stop()).exitCode).toBe(0);
    expect(existsSync(pidfile)).toBe(false);
  });

  test.skipIf(!have("socat"))("NOTIFY_SOCKET gets READY=1 when ready and STOPPING=1 at exit", async () => {
    using dir = tempDir();
    const notify = join(dir.path, "notify.sock");
    const recv = Bun.spawn(["socat", "-u", `UNIX-RECV:${notify}`, `OPEN:${join(dir.path, "notes")},creat,append`], { stderr: "ignore" });
    try {
      await until(() => existsSync(notify), "the notify socket");
      await using pb = await startPostbox(dir.path, [], { env: { NOTIFY_SOCKET: notify } });
      await until(() => existsSync(join(dir.path, "notes")) && readFileSync(join(dir.path, "notes"), "utf8").includes("READY=1"), "READY=1");
      expect(readFileSync(join(dir.path, "notes"), "utf8")).toContain(`MAINPID=${pb.pid}`);
      expect((await pb.stop()).exitCode).toBe(0);
      await until(() => readFileSync(join(dir.path, "notes"), "utf8").includes("STOPPING=1"), "STOPPING=1");
    } finally {
      recv.kill();
    }
  });

  test("postbox wait: 1 on timeout; 0 once a postbox serves the socket, the fifo or the queue", async () => {
    using dir = tempDir();
    const mq = mqName();
    try {
      const early = await runPostbox(dir.path, ["wait", "--socket", "socket", "--timeout", "0.2"]);
      expect(early).toMatchObject({ exitCode: 1, stderr: "postbox: no postbox is serving socket after 0.2 s\n" });
      mqPut(mq, []); // the queue exists, nobody reads it
      expect((await runPostbox(dir.path, ["wait", "--mq", mq, "--timeout", "0.2"])).exitCode).toBe(1);
      const waiting = Bun.spawn([BIN, "wait", "--fifo", "fifo", "--timeout", "20"], { cwd: dir.path });
      await using pb = await startPostbox(dir.path, ["--mq", mq]);
      expect(await waiting.exited).toBe(0);
      for (const target of [["--socket", "socket"], ["--mq", mq], []])
        expect((await runPostbox(dir.path, ["wait", ...target, "--timeout", "5"])).exitCode).toBe(0);
      expect(pb.lines()).toEqual([]); // probing posts nothing
    } finally {
      mqRemove(mq);
    }
  });

  test.skipIf(uid !== 0 || !have("setpriv"))("--allow-uid: other users' connections and signals are refused and logged, never delivered", async () => {
    using dir = tempDir();
    chmodSync(dir.path, 0o777);
    const asNobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"];
    const nobody = Number((await sh(dir.path, "id -u nobody")).stdout.trim());
    // postbox runs as nobody and allows only nobody: root's posts must not get in
    const pb = Bun.spawn([...asNobody, BIN, "--allow-uid", "nobody", "--mode", "0666", "--no-mq", "--signals", "USR1", "--pidfile", "pb.pid"], {
      cwd: dir.path,
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      await until(() => existsSync(join(dir.path, "pb.pid")), "the pidfile");
      const pid = Number(readFileSync(join(dir.path, "pb.pid"), "utf8"));
      expect(await runPostbox(dir.path, ["send", "--socket", "socket", "from root"])).toMatchObject({
        exitCode: 1,
        stderr: "postbox: socket: refused: uid 0 may not post here\n",
      });
      await sh(dir.path, `/bin/kill -USR1 -q 1 ${pid}`);
      expect((await sh(dir.path, `${asNobody.join(" ")} "${BIN}" send --socket socket "from nobody"`)).exitCode).toBe(0);
      await sh(dir.path, `${asNobody.join(" ")} /bin/kill -USR1 -q 2 ${pid}`);
      const reader = pb.stdout.getReader();
      let out = "";
      while (out.split("\n").length < 3) out += new TextDecoder().decode((await reader.read()).value);
      pb.kill("SIGTERM");
      expect(await pb.exited).toBe(0);
      for (let r = await reader.read(); !r.done; r = await reader.read()) out += new TextDecoder().decode(r.value);
      expect(out).toContain(`,uid=${nobody},`);
      expect(out).toContain(": from nobody\n");
      expect(out).toContain(": 2\n");
      expect(out).not.toContain("from root");
      expect(out).not.toContain(": 1\n");
      const err = await new Response(pb.stderr).text();
      expect(err).toMatch(/refused socket client pid \d+ \(uid 0, gid 0\): not on --allow-uid\/--allow-gid/);
      // the signal's refusal comes in its own line or, within the same second, counted in a summary
      expect(err).toMatch(/refused (SIGUSR1 from pid \d+ \(uid 0\)|1 more message\(s\)\/connection\(s\) from uid 0): not on --allow-uid\/--allow-gid/);
    } finally {
      pb.kill("SIGKILL");
    }
  });

  test("--rate: a flood from one uid is cut to the rate, with a 'suppressed' warning", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--rate", "20/s"]);
    const r = await sh(dir.path, `seq 1 2000 | "${BIN}" send --socket socket`);
    expect(r.exitCode).toBe(0);
    await pb.waitStderr(/--rate 20\/s: suppressed \d+ message\(s\) from uid \d+/);
    const n = pb.lines().length;
    expect(n).toBeGreaterThanOrEqual(20);
    expect(n).toBeLessThan(200);
    const suppressed = [...pb.stderr.text.matchAll(/suppressed (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
    expect(n + suppressed).toBe(2000); // never silent: delivered + reported = sent
  });

  test("usage errors for the scripting options", async () => {
    using dir = tempDir();
    for (const args of [["--match", "x"], ["--count", "0"], ["--rate", "fast"], ["--allow-uid", "no-such-user-xyz"], ["--match", "(", "--count", "1"]]) {
      const r = await runPostbox(dir.path, args);
      expect(r.exitCode).toBe(2);
    }
  });
});

describe("the docs", () => {
  test("README and BENCHMARKS point only at files in the repo", () => {
    for (const doc of ["README.md", "BENCHMARKS.md"]) {
      const text = readFileSync(join(ROOT, doc), "utf8");
      expect(text).not.toMatch(/\.\.\/|\/work\//); // nothing outside the clone
      // Repo paths as links or in backticks (PREFIX/… and /run/… are where things go, not files here)
      const paths = [...text.matchAll(/\]\(([^)#:]+)\)|`((?:[a-z][\w.-]*\/)+[\w.-]+\.(?:sh|ts|py|c|md|service|socket|1))`/g)].map((m) => m[1] ?? m[2]!);
      expect(paths.length).toBeGreaterThan(0);
      for (const p of paths) expect({ doc, path: p, exists: existsSync(join(ROOT, p)) }).toEqual({ doc, path: p, exists: true });
    }
  });
});
