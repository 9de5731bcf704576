// Nobody else's files, nobody else's channels: each case with a real hostile
// second user (setpriv to nobody) in a shared 1777 directory, against ./postbox.
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, have, mqName, ROOT, runPostbox, sh, startPostbox, tempDir, until } from "./harness.ts";
import { mqMode, mqRemove } from "./helpers/mq.ts";

const root = process.getuid?.() === 0;
/** The system's python (a pyenv shim under /root is out of nobody's reach). */
const PY = "/usr/bin/python3";
const canHostile = root && have("setpriv") && existsSync(PY);
const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
const HOSTILE = join(ROOT, "test/helpers/hostile.py");
/** No mq, no signal handler to compile: quick starts. --timeout bounds a postbox that (wrongly) starts. */
const LEAN = ["--no-mq", "--no-signals"];
const BOUNDED = ["--timeout", "2"];

/** A temp dir anyone may create files in, like /tmp. */
function sharedDir() {
  const d = tempDir();
  chmodSync(d.path, 0o1777);
  return d;
}

async function asNobody(cmd: string[], cwd = "/") {
  const p = Bun.spawn([...NOBODY, ...cmd], { cwd, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (exitCode !== 0) throw new Error(`as nobody: ${cmd.join(" ")}: exit ${exitCode}: ${stderr}`);
  return stdout;
}

const nobodyPostbox = (args: string[]) => Bun.spawnSync([...NOBODY, BIN, ...args], { stdout: "pipe", stderr: "pipe" });

describe.skipIf(!canHostile)("never follow a symlink", () => {
  test("pidfile: symlinks planted for the next pids' temp names: the target is never written, the pidfile ends up ours", async () => {
    using dir = sharedDir();
    using safe = tempDir();
    const target = join(safe.path, "precious");
    const pidfile = join(dir.path, "pb.pid");
    let overwritten = 0;
    let notOurs = 0;
    for (let trial = 0; trial < 5; trial++) {
      writeFileSync(target, "precious\n", { mode: 0o644 });
      const last = Number(readFileSync("/proc/sys/kernel/ns_last_pid", "utf8"));
      await asNobody([PY, HOSTILE, "plant", `${pidfile}.`, ".tmp", target, String(last + 1), "400"]);
      await using pb = await startPostbox(dir.path, [...LEAN, "--no-fifo", "--socket", "s", "--pidfile", pidfile]);
      if (readFileSync(target, "utf8") !== "precious\n") overwritten++;
      const st = lstatSync(pidfile);
      if (!st.isFile() || st.uid !== 0 || readFileSync(pidfile, "utf8") !== `${pb.pid}\n`) notOurs++;
      expect((await pb.stop()).exitCode).toBe(0);
      for (const f of readdirSync(dir.path)) rmSync(join(dir.path, f), { force: true });
    }
    expect({ overwritten, notOurs }).toEqual({ overwritten: 0, notOurs: 0 });
  });

  test("fifo swapped for a symlink to a root file (RENAME_EXCHANGE in a loop), 100 starts: never adopted, chmodded or read", async () => {
    using dir = sharedDir();
    using safe = tempDir();
    const secret = join(safe.path, "secret");
    writeFileSync(secret, "TOPSECRET\n", { mode: 0o600 });
    const fifo = join(dir.path, "f");
    await asNobody(["bash", "-c", `umask 0 && mkfifo -m 0666 ${fifo} && ln -s ${secret} ${dir.path}/x`]);
    const swapper = Bun.spawn([...NOBODY, PY, HOSTILE, "exchange", fifo, join(dir.path, "x"), "120"], { stdout: "pipe", stderr: "inherit" });
    try {
      const reader = swapper.stdout.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain("ready");
      let started = 0;
      let printed = 0;
      let chmodded = 0;
      let unclear = 0;
      for (let i = 0; i < 100; i++) {
        const r = await runPostbox(dir.path, [...LEAN, "--no-socket", "--fifo", fifo, "--timeout", "0.2"]);
        if (r.exitCode !== 1) started++;
        if (r.stdout.includes("TOPSECRET")) printed++;
        if ((statSync(secret).mode & 0o777) !== 0o600) chmodded++;
        chmodSync(secret, 0o600);
        if (!/^postbox: cannot use .* as the fifo: (a symlink is in the way|it belongs to uid 65534 \(nobody\) \(mode 0666\)|a symlink appeared)/.test(r.stderr)) unclear++;
      }
      expect({ started, printed, chmodded, unclear }).toEqual({ started: 0, printed: 0, chmodded: 0, unclear: 0 });
    } finally {
      swapper.kill();
      await swapper.exited;
    }
  }, 60_000);
});

describe.skipIf(!canHostile)("never adopt someone else's channel", () => {
  test("another user's FIFO (0666) is refused naming owner and mode, and left as it was", async () => {
    using dir = sharedDir();
    await asNobody(["bash", "-c", "umask 0 && mkfifo -m 0666 f"], dir.path);
    const r = await runPostbox(dir.path, [...LEAN, ...BOUNDED, "--no-socket", "--fifo", "f"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe("postbox: cannot use f as the fifo: it belongs to uid 65534 (nobody) (mode 0666), not to uid 0 (root); not adopted (remove it, or choose --fifo elsewhere)\n");
    const st = statSync(join(dir.path, "f"));
    expect({ mode: st.mode & 0o777, uid: st.uid }).toEqual({ mode: 0o666, uid: 65534 });
  });

  test("our own FIFO left wider than --mode is refused too", async () => {
    using dir = tempDir();
    await sh(dir.path, "mkfifo -m 0622 f");
    const r = await runPostbox(dir.path, [...LEAN, ...BOUNDED, "--no-socket", "--fifo", "f"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("its mode 0622 is wider than --mode 0600");
  });

  test("another user's message queue (0666) is refused naming owner and mode; its mode is unchanged", async () => {
    using dir = tempDir();
    const mq = mqName();
    try {
      await asNobody([PY, HOSTILE, "mq", mq, "0666"]);
      const r = await runPostbox(dir.path, [...BOUNDED, "--no-socket", "--no-fifo", "--no-signals", "--mq", mq]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toBe(`postbox: cannot open the message queue ${mq}: it belongs to uid 65534 (nobody) (mode 0666), not to uid 0 (root); not adopted (remove it, or choose another name)\n`);
      expect(mqMode(mq)).toBe(0o666);
    } finally {
      mqRemove(mq);
    }
  });

  test("another user's stale datagram socket file is refused naming owner and mode (the stream socket's rule), and left there", async () => {
    using dir = sharedDir();
    await asNobody([PY, "-c", "import os, socket; os.umask(0o077); socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).bind('d')"], dir.path);
    const r = await runPostbox(dir.path, [...LEAN, "--no-fifo", "--no-socket", "--dgram", "d", ...BOUNDED]);
    expect(r).toMatchObject({
      exitCode: 1,
      stderr: "postbox: cannot receive datagrams at d: a stale socket is in the way and it belongs to uid 65534 (nobody) (mode 0700), not to uid 0 (root); postbox never removes another user's file\n",
    });
    expect(lstatSync(join(dir.path, "d"))).toMatchObject({ uid: 65534 });
    expect(readdirSync(dir.path)).toEqual(["d"]); // no temporary name left behind either
  });

  test("a forwarding cursor of another user, or ours wider than 0600, is refused naming owner and mode (the endpoint module's check), and left as it was", async () => {
    using dir = sharedDir();
    await asNobody(["bash", "-c", "umask 077 && : > s.cursor"], dir.path);
    const args = [...LEAN, "--no-fifo", "--socket", "s.sock", "--store", "s", "--forward", "syslog+tcp://127.0.0.1:1", ...BOUNDED];
    const r = await runPostbox(dir.path, args);
    expect(r).toMatchObject({ exitCode: 1, stderr: "postbox: cannot open the forwarding cursor s.cursor: it belongs to uid 65534 (nobody) (mode 0600), not to uid 0 (root); remove it or pick another --store\n" });
    expect(statSync(join(dir.path, "s.cursor"))).toMatchObject({ uid: 65534, size: 0 });
    using own = tempDir();
    writeFileSync(join(own.path, "s.cursor"), "", { mode: 0o644 });
    const w = await runPostbox(own.path, args);
    expect(w).toMatchObject({ exitCode: 1, stderr: "postbox: cannot open the forwarding cursor s.cursor: its mode 0644 is wider than --mode 0600; remove it or pick another --store\n" });
    expect(statSync(join(own.path, "s.cursor")).mode & 0o777).toBe(0o644);
  });

  test("a --store file of another user is refused and never written; a symlink is never followed", async () => {
    using dir = sharedDir();
    await asNobody(["bash", "-c", "umask 0 && : > mail && ln -s /etc/hostname link"], dir.path);
    const r = await runPostbox(dir.path, [...LEAN, "--no-fifo", "--socket", "s", "--store", "mail", ...BOUNDED]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("postbox: cannot open the store mail: it belongs to uid 65534 (nobody) (mode 0666)");
    expect(statSync(join(dir.path, "mail")).size).toBe(0);
    // Our own symlink in our own directory (the kernel's protected_symlinks already stops theirs in /tmp).
    using own = tempDir();
    writeFileSync(join(own.path, "target"), "kept\n");
    await sh(own.path, "ln -s target link");
    const l = await runPostbox(own.path, [...LEAN, "--no-fifo", "--socket", "s", "--store", "link", ...BOUNDED]);
    expect(l.exitCode).toBe(1);
    expect(l.stderr).toBe("postbox: cannot open the store link: it is a symlink (postbox never writes through one); give the file itself\n");
    expect(readFileSync(join(own.path, "target"), "utf8")).toBe("kept\n");
  });

  test("--abstract with --mode: 0600 lets only our uid and root post, 0660 our group, 0666 everyone (SO_PEERCRED)", async () => {
    using dir = tempDir();
    const name = `pbtest-abs-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const results: Record<string, string[]> = {};
    for (const mode of ["0600", "0660", "0666"]) {
      await using pb = await startPostbox(dir.path, [...LEAN, "--no-fifo", "--no-socket", "--abstract", `${name}-${mode}`, "--mode", mode]);
      const other = nobodyPostbox(["send", "--abstract", `${name}-${mode}`, `from nobody ${mode}`]);
      const group = Bun.spawnSync(["setpriv", "--reuid=65534", "--regid=0", "--clear-groups", BIN, "send", "--abstract", `${name}-${mode}`, `from group ${mode}`]);
      const own = Bun.spawnSync([BIN, "send", "--abstract", `${name}-${mode}`, `from root ${mode}`]);
      expect(own.exitCode).toBe(0);
      await until(() => pb.lines().some((l) => l.endsWith(`from root ${mode}`)), "root's line");
      const end = await pb.stop();
      results[mode] = end.stdout.split("\n").filter(Boolean).map((l) => l.replace(/^.*: /, ""));
      if (mode === "0600") {
        expect(other.exitCode).toBe(1);
        expect(other.stderr.toString()).toContain(`refused: uid 65534 may not post here (--mode 0600)`);
        expect(end.stderr).toMatch(/refused pid \d+ \(uid 65534, gid 65534\): --mode 0600 does not let it post/);
      }
    }
    expect(results).toEqual({
      "0600": ["from root 0600"],
      "0660": expect.arrayContaining(["from group 0660", "from root 0660"]),
      "0666": expect.arrayContaining(["from nobody 0666", "from group 0666", "from root 0666"]),
    });
    expect(results["0660"]).toHaveLength(2);
  });

  test("a squatted --abstract name: postbox names the squatter; send --expect-uid refuses to post to it", async () => {
    using dir = tempDir();
    const name = `pbtest-squat-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const squatter = Bun.spawn([...NOBODY, PY, "-c", `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind("\\0${name}"); s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept(); sys.stdout.write(c.recv(4096).decode()); sys.stdout.flush(); c.close()
`], { stdout: "pipe", stderr: "inherit" });
    try {
      const reader = squatter.stdout.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain("ready");
      const r = await runPostbox(dir.path, [...LEAN, "--no-fifo", "--no-socket", "--abstract", name]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toBe(`postbox: cannot listen on @${name}: the name is taken: another process serves it (pid ${squatter.pid} (python3), uid 65534 (nobody)); choose another --abstract name\n`);
      const s = Bun.spawnSync([BIN, "send", "--abstract", name, "--expect-uid", "0", "the secret"]);
      expect({ exitCode: s.exitCode, stderr: s.stderr.toString() }).toEqual({
        exitCode: 1,
        stderr: `postbox: not sending to @${name}: it is served by uid 65534 (pid ${squatter.pid}), not by uid 0 (--expect-uid)\n`,
      });
      squatter.kill();
      let heard = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        heard += new TextDecoder().decode(value);
      }
      expect(heard).not.toContain("secret"); // the squatter got nothing (the probes send nothing)
    } finally {
      squatter.kill();
      await squatter.exited;
    }
  });
});

describe("remove only what is ours, and only one postbox wins", () => {
  const args = [...LEAN, "--socket", "s", "--fifo", "f", "--pidfile", "pb.pid"];
  const files = ["s", "f", "pb.pid"];
  const inodes = (dir: string) => files.map((f) => (existsSync(join(dir, f)) ? lstatSync(join(dir, f)).ino : 0));

  test("start A, remove its files, start B on the same paths, SIGTERM A: B's files intact and B serving (3 of 3)", async () => {
    using dir = tempDir();
    let broken = 0;
    for (let i = 0; i < 3; i++) {
      await using a = await startPostbox(dir.path, args);
      for (const f of files) rmSync(join(dir.path, f));
      await using b = await startPostbox(dir.path, args);
      const mine = inodes(dir.path);
      expect((await a.stop()).exitCode).toBe(0);
      if (inodes(dir.path).join() !== mine.join() || readFileSync(join(dir.path, "pb.pid"), "utf8") !== `${b.pid}\n`) broken++;
      await sh(dir.path, `echo via-fifo > f; echo via-socket | nc -U -N s`);
      const lines = (await b.waitLines(2)).map((l) => l.replace(/^socket\[.*\]/, "socket")).sort();
      expect(lines).toEqual(["fifo: via-fifo", "socket: via-socket"]);
      expect((await b.stop()).exitCode).toBe(0);
      expect(inodes(dir.path)).toEqual([0, 0, 0]); // B removed its own
    }
    expect(broken).toBe(0);
  });

  // ext4 gives a freed inode number to the next file made in that directory: device + inode
  // alone would take the newcomer for the file postbox made.
  const reusesInodes = (() => {
    using d = tempDir();
    const p = join(d.path, "probe");
    writeFileSync(p, "");
    const before = lstatSync(p).ino;
    rmSync(p);
    writeFileSync(p, "");
    return lstatSync(p).ino === before;
  })();

  test.skipIf(!reusesInodes)("files made at our paths after ours were removed are left alone, even with our old inode numbers (5 of 5)", async () => {
    using dir = tempDir();
    let reused = 0;
    for (let i = 0; i < 5; i++) {
      await using a = await startPostbox(dir.path, args);
      const old = inodes(dir.path);
      for (const f of files) {
        rmSync(join(dir.path, f));
        writeFileSync(join(dir.path, f), `theirs ${f}\n`); // at once: the inode just freed is the one handed out
      }
      reused += inodes(dir.path).filter((ino, k) => ino === old[k]).length;
      expect((await a.stop()).exitCode).toBe(0);
      expect(files.map((f) => (existsSync(join(dir.path, f)) ? readFileSync(join(dir.path, f), "utf8") : "removed"))).toEqual(files.map((f) => `theirs ${f}\n`));
      for (const f of files) rmSync(join(dir.path, f));
    }
    expect(reused).toBeGreaterThan(0); // the case this is about did happen
  });

  test.skipIf(!canHostile)("another user's regular files put at our paths are never deleted", async () => {
    using dir = sharedDir();
    await using a = await startPostbox(dir.path, args);
    for (const f of files) rmSync(join(dir.path, f));
    await asNobody(["bash", "-c", "echo theirs > s; echo theirs > f; echo theirs > pb.pid"], dir.path);
    expect((await a.stop()).exitCode).toBe(0);
    expect(files.map((f) => readFileSync(join(dir.path, f), "utf8"))).toEqual(["theirs\n", "theirs\n", "theirs\n"]);
  });

  test.skipIf(!canHostile)("another user's stale socket is refused naming its owner, and left in place", async () => {
    using dir = sharedDir();
    await asNobody([PY, "-c", "import socket; socket.socket(socket.AF_UNIX).bind('s')"], dir.path);
    const r = await runPostbox(dir.path, [...LEAN, ...BOUNDED, "--no-fifo", "--socket", "s"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^postbox: cannot listen on s: a stale socket is in the way and it belongs to uid 65534 \(nobody\) \(mode 0[0-7]{3}\), not to uid 0 \(root\); postbox never removes another user's file\n$/);
    expect(lstatSync(join(dir.path, "s")).uid).toBe(65534);
  });

  test("a refused second start names the running postbox and leaves its pidfile and files alone", async () => {
    using dir = tempDir();
    await using a = await startPostbox(dir.path, args);
    const mine = inodes(dir.path);
    const r = await runPostbox(dir.path, [...args, ...BOUNDED]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe(`postbox: cannot use f as the fifo: pid ${a.pid} (postbox) is reading it (a running postbox?); stop it or choose --fifo elsewhere\n`);
    const s = await runPostbox(dir.path, [...LEAN, ...BOUNDED, "--no-fifo", "--socket", "s", "--pidfile", "pb.pid"]);
    expect(s.stderr).toBe(`postbox: cannot listen on s: another postbox is serving it (pid ${a.pid} (postbox), uid 0 (root)); stop it or choose another --socket\n`);
    expect(inodes(dir.path)).toEqual(mine);
    expect(readFileSync(join(dir.path, "pb.pid"), "utf8")).toBe(`${a.pid}\n`);
  });

  test.skipIf(!canHostile || !have("flock"))("a lock held by another user on the directory: the wait is bounded, the holder named, nothing created", async () => {
    using dir = sharedDir();
    const holder = Bun.spawn([...NOBODY, "flock", "-x", dir.path, "-c", "echo locked; exec sleep 60"], { stdout: "pipe", stderr: "inherit" });
    try {
      const reader = holder.stdout.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain("locked");
      const t0 = performance.now();
      const r = await runPostbox(dir.path, [...args, ...BOUNDED]);
      const waited = performance.now() - t0;
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/^postbox: cannot claim a path in \S+: the directory has been locked for 5 s by pid \d+ \((flock|sleep)\) \(a postbox still starting there, or someone holding the lock\); postbox waits at most 5 s\n$/);
      expect(waited).toBeGreaterThan(4_500);
      expect(readdirSync(dir.path)).toEqual([]);
    } finally {
      holder.kill();
      await holder.exited;
    }
  }, 30_000);

  test("100 trials of 10 simultaneous starts (the last winner killed -9, its files left stale): one winner, serving, files intact", async () => {
    using dir = tempDir();
    const failures: string[] = [];
    const t0 = performance.now();
    for (let trial = 0; trial < 100; trial++) {
      const procs = Array.from({ length: 10 }, () =>
        Bun.spawn([BIN, ...args], { cwd: dir.path, stdin: "ignore", stdout: "pipe", stderr: "pipe" }),
      );
      const errs = procs.map((p) => new Response(p.stderr).text());
      // Every loser exits on its own; the winner serves until told to stop.
      await until(() => procs.filter((p) => p.exitCode !== null).length >= 9, "9 losers to exit", 30_000);
      const alive = procs.filter((p) => p.exitCode === null);
      if (alive.length !== 1) failures.push(`trial ${trial}: ${alive.length} alive`);
      const winner = alive[0];
      if (winner) {
        const pid = (() => {
          try {
            return readFileSync(join(dir.path, "pb.pid"), "utf8");
          } catch {
            return "missing";
          }
        })();
        if (pid !== `${winner.pid}\n`) failures.push(`trial ${trial}: pidfile ${JSON.stringify(pid)}, winner ${winner.pid}`);
        const r = await sh(dir.path, `echo t${trial} > f && echo t${trial} | nc -U -N s`);
        if (r.exitCode !== 0) failures.push(`trial ${trial}: send failed: ${r.stderr}`);
        const out = new Response(winner.stdout).text();
        winner.kill(trial % 2 ? "SIGKILL" : "SIGTERM"); // every other trial starts on stale files
        await winner.exited;
        const lines = (await out).split("\n").filter(Boolean);
        if (lines.length !== 2) failures.push(`trial ${trial}: winner printed ${JSON.stringify(lines)}`);
      }
      for (const [i, p] of procs.entries()) if (p !== winner && !/^postbox: cannot (use f as the fifo|listen on s): /.test(await errs[i]!)) failures.push(`trial ${trial}: loser said ${await errs[i]}`);
    }
    console.log(`10 simultaneous starts x 100: ${Math.round(performance.now() - t0)} ms`);
    expect(failures).toEqual([]);
  }, 120_000);
});
