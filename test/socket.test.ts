import { describe, expect, test } from "bun:test";
import { lstatSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { have, rssKiB, runPostbox, sh, socketClient, startPostbox, tempDir, until } from "./harness.ts";

const uid = process.getuid!();
const gid = process.getgid!();
const onlyFlags = ["--no-fifo", "--no-signals"];

describe("socket channel", () => {
  test.skipIf(!have("nc"))("echo 2 | nc -U socket prints the sender's pid/uid/gid and returns promptly", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, onlyFlags);
    expect(lstatSync(join(dir.path, "socket")).mode & 0o777).toBe(0o600);
    const t0 = performance.now();
    const r = await sh(dir.path, "echo 2 | nc -U socket & pid=$!; wait $pid; echo $pid");
    const took = performance.now() - t0;
    expect(r.exitCode).toBe(0);
    expect(took).toBeLessThan(2000); // correctness bound (linger is 100 ms), not a speed target
    const ncPid = Number(r.stdout.trim());
    expect(await pb.waitLines(1)).toEqual([`socket[pid=${ncPid},uid=${uid},gid=${gid}]: 2`]);
  });

  test.skipIf(!have("nc"))("nc -N with many lines: all arrive in order on one connection", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, onlyFlags);
    expect((await sh(dir.path, "seq 1 5000 | nc -N -U socket")).exitCode).toBe(0);
    const lines = await pb.waitLines(5000);
    expect(lines.map((l) => l.replace(/^socket\[[^\]]+\]: /, ""))).toEqual(Array.from({ length: 5000 }, (_, i) => String(i + 1)));
    expect(new Set(lines.map((l) => l.slice(0, l.indexOf("]")))).size).toBe(1);
  });

  test("a client that pauses longer than --linger after a line still gets every line in (it may go on after the half-close)", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, [...onlyFlags, "--linger", "50"]);
    const c = await socketClient(join(dir.path, "socket"), ["first\n"], { end: false });
    await pb.waitLines(1);
    await c.ended; // the server half-closed after 50 ms of quiet
    await c.write("sec");
    await c.write("ond\nthird");
    c.finish();
    await c.closed;
    expect((await pb.waitLines(3)).map((l) => l.split(": ")[1])).toEqual(["first", "second", "third"]);
  });

  test("--linger 0 keeps a long-lived client open; its last line without newline comes at EOF", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, [...onlyFlags, "--linger", "0"]);
    const c = await socketClient(join(dir.path, "socket"), ["a\nb\n", "par"], { end: false });
    let serverEnded = false;
    void c.ended.then(() => (serverEnded = true));
    await pb.waitLines(2);
    // three times the default linger: a postbox lingering would have half-closed and flushed "par" by now
    const t0 = performance.now();
    await until(() => performance.now() - t0 >= 300, "a 300 ms window");
    expect(serverEnded).toBe(false);
    expect(pb.lines()).toHaveLength(2);
    expect(c.socket.readyState).toBe(1); // not half-closed by the server
    await c.write("tial");
    c.finish();
    await c.closed;
    expect((await pb.waitLines(3))[2]).toBe(`socket[pid=${process.pid},uid=${uid},gid=${gid}]: partial`);
  });

  test("50 concurrent clients × 200 lines: every line once, per-connection order kept", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, onlyFlags);
    const path = join(dir.path, "socket");
    await Promise.all(
      Array.from({ length: 50 }, async (_, k) => {
        const body = Array.from({ length: 200 }, (_, i) => `c${k}-${i}\n`).join("");
        const c = await socketClient(path, [body]);
        await c.closed;
      }),
    );
    const lines = await pb.waitLines(50 * 200);
    const per = new Map<string, number[]>();
    for (const l of lines) {
      const m = /: c(\d+)-(\d+)$/.exec(l)!;
      per.set(m[1]!, [...(per.get(m[1]!) ?? []), Number(m[2])]);
    }
    expect(per.size).toBe(50);
    for (const seq of per.values()) expect(seq).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  test.skipIf(!have("nc"))("4 clients streaming 150,000 lines each at once: every line once, in order, the last one (no newline) at EOF", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, onlyFlags);
    const n = 150_000;
    const r = await sh(dir.path, `for k in 1 2 3 4; do { seq 1 ${n}; printf end$k; } | nc -N -U socket & done; wait`);
    expect(r.exitCode).toBe(0);
    const lines = await pb.waitLines(4 * (n + 1), 60_000);
    const per = new Map<string, string[]>();
    for (const l of lines) {
      const at = l.indexOf("]: ");
      const who = l.slice(0, at);
      const seq = per.get(who) ?? [];
      seq.push(l.slice(at + 3));
      per.set(who, seq);
    }
    expect(per.size).toBe(4);
    const ends = [...per.values()].map((seq) => seq.at(-1)).sort();
    expect(ends).toEqual(["end1", "end2", "end3", "end4"]);
    for (const seq of per.values()) expect(seq.slice(0, -1)).toEqual(Array.from({ length: n }, (_, i) => String(i + 1)));
  });

  test.skipIf(!have("socat"))("--abstract: socat ABSTRACT-CONNECT posts to @name", async () => {
    using dir = tempDir();
    const name = `pbtest-${process.pid}-${Date.now()}`;
    await using pb = await startPostbox(dir.path, [...onlyFlags, "--no-socket", "--abstract", name]);
    expect(pb.stderr.text).toContain(`... by socket: echo 2 | socat - ABSTRACT-CONNECT:${name}`);
    expect((await sh(dir.path, `echo abs | socat - ABSTRACT-CONNECT:${name}`)).exitCode).toBe(0);
    expect((await pb.waitLines(1))[0]).toMatch(/^socket\[pid=\d+,uid=\d+,gid=\d+\]: abs$/);
    expect((await runPostbox(dir.path, ["send", "--abstract", name, "via send"])).exitCode).toBe(0);
    expect((await pb.waitLines(2))[1]).toMatch(/: via send$/);
  });

  test("control bytes and invalid UTF-8 are escaped; --json carries comm and msg_b64", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, [...onlyFlags, "--json"]);
    const c = await socketClient(join(dir.path, "socket"), [new Uint8Array([0x61, 0x1b, 0x5b, 0x32, 0x4a, 0x00, 0xff, 0x0a]), "plain\n"]);
    await c.closed;
    const [bad, plain] = (await pb.waitLines(2)).map((l) => JSON.parse(l));
    expect(bad).toMatchObject({ channel: "socket", msg: "a\\x1b[2J\\x00\\xff", pid: process.pid, uid, gid, via: "socket" });
    expect(Buffer.from(bad.msg_b64, "base64")).toEqual(Buffer.from([0x61, 0x1b, 0x5b, 0x32, 0x4a, 0x00, 0xff]));
    expect(plain.msg).toBe("plain");
    expect(plain.msg_b64).toBeUndefined();
    expect(typeof plain.comm).toBe("string");
    expect(new Date(plain.ts).getTime()).toBeGreaterThan(0);
  });

  test("a 64 MiB line without newline: delivered in --max-message pieces, memory stays bounded", async () => {
    using dir = tempDir();
    const out = join(dir.path, "out.txt");
    const pb = Bun.spawn([(await import("./harness.ts")).BIN, ...onlyFlags, "--no-mq"], {
      cwd: dir.path,
      stdout: Bun.file(out),
      stderr: "pipe",
    });
    try {
      // the file appears at bind(), a moment before listen(): wait until it answers
      expect((await runPostbox(dir.path, ["wait", "--socket", "socket", "--timeout", "10"])).exitCode).toBe(0);
      const piece = new Uint8Array(1 << 20).fill(0x78);
      const c = await socketClient(join(dir.path, "socket"), Array.from({ length: 64 }, () => piece));
      await c.closed;
      await until(() => Bun.file(out).size >= 64 * (1 << 20), "64 MiB of output", 30_000);
      const peak = await rssKiB(pb.pid, true);
      pb.kill("SIGTERM");
      expect(await pb.exited).toBe(0);
      const text = readFileSync(out, "latin1").split("\n");
      expect(text.length - 1).toBe(1024); // 64 MiB / 65536
      expect(text.slice(0, -1).every((l) => l.length === 65536 + l.indexOf(": ") + 2)).toBe(true);
      expect(peak).toBeLessThan(200 * 1024);
      expect(await new Response(pb.stderr).text()).toMatch(/longer than 65536 bytes; delivered in pieces/);
    } finally {
      pb.kill("SIGKILL");
    }
  });

  test("a stale socket file is replaced; a live postbox's socket is refused and keeps serving", async () => {
    using dir = tempDir();
    const first = await startPostbox(dir.path, onlyFlags);
    first.proc.kill("SIGKILL"); // leaves its socket file behind
    await first.proc.exited;
    await first[Symbol.asyncDispose]();
    expect(lstatSync(join(dir.path, "socket")).isSocket()).toBe(true);
    await using live = await startPostbox(dir.path, onlyFlags);
    const second = await runPostbox(dir.path, [...onlyFlags, "--no-mq"]);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toBe(
      `postbox: cannot listen on socket: another postbox is serving it (pid ${live.pid} (postbox), uid ${process.getuid!()} (${myName()})); stop it or choose another --socket\n`,
    );
    await (await socketClient(join(dir.path, "socket"), ["still here\n"])).closed;
    expect((await live.waitLines(1))[0]).toMatch(/: still here$/);
  });

  test("a regular file at the socket path is refused and untouched", async () => {
    using dir = tempDir();
    writeFileSync(join(dir.path, "socket"), "precious");
    const r = await runPostbox(dir.path, [...onlyFlags, "--no-mq"]);
    expect(r).toEqual({
      exitCode: 1,
      stdout: "",
      stderr: "postbox: cannot listen on socket: a regular file is in the way (remove it or choose --socket elsewhere)\n",
    });
    expect(readFileSync(join(dir.path, "socket"), "utf8")).toBe("precious");
  });

  test("--max-connections: extra clients wait (warned) and get in when a slot frees", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, [...onlyFlags, "--max-connections", "2", "--linger", "0"]);
    const path = join(dir.path, "socket");
    const a = await socketClient(path, ["a\n"], { end: false });
    const b = await socketClient(path, ["b\n"], { end: false });
    await pb.waitLines(2);
    const c = await socketClient(path, ["c\n"], { end: false });
    await pb.waitStderr(/--max-connections 2 reached/);
    expect(pb.lines()).toHaveLength(2); // c's line waits in the kernel
    a.finish();
    await a.closed;
    expect((await pb.waitLines(3))[2]).toMatch(/: c$/);
    c.finish();
    b.finish();
    await Promise.all([b.closed, c.closed]);
  });

  test("--max-connections: a client that already sent everything and closed is served at once", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, [...onlyFlags, "--max-connections", "1", "--linger", "0"]);
    const path = join(dir.path, "socket");
    const a = await socketClient(path, ["a\n"], { end: false });
    await pb.waitLines(1);
    // Stopped, postbox cannot accept: b's line and its EOF are both queued before it looks.
    process.kill(pb.pid, "SIGSTOP");
    let b;
    try {
      b = await socketClient(path, ["b\n"]);
    } finally {
      process.kill(pb.pid, "SIGCONT");
    }
    expect((await pb.waitLines(2))[1]).toMatch(/: b$/);
    await b.closed;
    expect(pb.stderr.text).not.toMatch(/reached/);
    a.finish();
    await a.closed;
  });

  test("clients that sent everything (more than one read) and hung up before they were accepted: every line once, in order", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, onlyFlags);
    const path = join(dir.path, "socket");
    // 96 KiB each: more than one read, a line cut at the read's end; the last line has no newline.
    const body = (k: number) => Array.from({ length: 800 }, (_, i) => `c${k}-${String(i).padStart(120, "0")}\n`).join("") + `c${k}-tail`;
    process.kill(pb.pid, "SIGSTOP"); // not accepting: each client's bytes and EOF are queued first
    let clients;
    try {
      clients = await Promise.all(Array.from({ length: 12 }, (_, k) => socketClient(path, k === 11 ? [] : [body(k)])));
    } finally {
      process.kill(pb.pid, "SIGCONT");
    }
    const late = await socketClient(path, ["late\n"]);
    const lines = await pb.waitLines(11 * 801 + 1);
    await Promise.all([...clients, late].map((c) => c.closed));
    const per = new Map<string, string[]>();
    for (const l of lines) {
      const m = /: (c\d+)-(.*)$/.exec(l);
      if (m) per.set(m[1]!, [...(per.get(m[1]!) ?? []), m[2]!]);
    }
    expect(per.size).toBe(11);
    const want = [...Array.from({ length: 800 }, (_, i) => String(i).padStart(120, "0")), "tail"];
    for (const seq of per.values()) expect(seq).toEqual(want);
    expect(lines.filter((l) => l.endsWith(": late"))).toHaveLength(1);
    expect(lines).toHaveLength(11 * 801 + 1);
  });

  test("a client served at once sees its connection end only once its line is on stdout (kill -9 then loses nothing)", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, onlyFlags);
    const path = join(dir.path, "socket");
    process.kill(pb.pid, "SIGSTOP"); // each client's line and EOF are queued before postbox looks
    let clients;
    try {
      clients = await Promise.all(Array.from({ length: 300 }, (_, i) => socketClient(path, [`line ${i}\n`])));
    } finally {
      process.kill(pb.pid, "SIGCONT");
    }
    const seen = new Set<number>();
    clients.forEach((c, i) => void c.closed.then(() => seen.add(i)));
    await Promise.race(clients.map((c) => c.closed));
    const ended = [...seen]; // these saw the end before the kill
    const out = await pb.stop("SIGKILL");
    expect(ended.length).toBeGreaterThan(0);
    const printed = new Set(out.stdout.split("\n").map((l) => l.split(": ")[1]));
    expect(ended.filter((i) => !printed.has(`line ${i}`))).toEqual([]);
  });

  test("--idle-timeout closes a silent client", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, [...onlyFlags, "--idle-timeout", "1"]);
    const c = await socketClient(join(dir.path, "socket"), [], { end: false });
    await c.ended; // resolves only when the server gives up on it
    await pb.waitStderr(/idle for 1 s; connection closed/);
    expect(pb.proc.exitCode).toBeNull();
  });
});

describe("nothing buffered is dropped (issue #12)", () => {
  test("SIGTERM delivers the complete lines of clients still waiting past --max-connections", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, [...onlyFlags, "--no-mq", "--max-connections", "1", "--linger", "0"]);
    const path = join(dir.path, "socket");
    const idle = await socketClient(path, [], { end: false }); // holds the only slot
    const waiting = await socketClient(path, ["first\n", "second\n", "unfinished"], { end: false });
    await pb.waitStderr(/--max-connections 1 reached: new clients wait/);
    expect(pb.lines()).toEqual([]);
    const end = await pb.stop("SIGTERM");
    expect(end.exitCode).toBe(0);
    expect(end.stdout.split("\n").map((l) => l.replace(/^socket\[[^\]]+\]: /, ""))).toEqual(["first", "second", "unfinished", ""]);
    await Promise.all([idle.closed, waiting.closed]);
  });

  test("SIGTERM delivers the unfinished last line of every waiting client, each its own", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, [...onlyFlags, "--no-mq", "--max-connections", "1", "--linger", "0"]);
    const path = join(dir.path, "socket");
    const idle = await socketClient(path, [], { end: false }); // holds the only slot
    const waiting = [];
    for (const name of ["alpha", "beta", "gamma"]) waiting.push(await socketClient(path, [`${name} done\n${name} unfinished`], { end: false }));
    await pb.waitStderr(/--max-connections 1 reached: new clients wait/);
    const end = await pb.stop("SIGTERM");
    expect(end.exitCode).toBe(0);
    const msgs = end.stdout.split("\n").filter(Boolean).map((l) => l.replace(/^socket\[[^\]]+\]: /, ""));
    expect(msgs.sort()).toEqual(["alpha done", "alpha unfinished", "beta done", "beta unfinished", "gamma done", "gamma unfinished"]);
    await Promise.all([idle.closed, ...waiting.map((c) => c.closed)]);
  });
});

/** Our user name as /etc/passwd has it (postbox names a server's uid that way). */
function myName(): string {
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.split(":")[2] === String(process.getuid!()));
  return line?.split(":")[0] ?? "";
}
