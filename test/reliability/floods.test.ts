// Floods and hostile input: every line delivered exactly once, memory bounded.
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, mqName, report, rssKiB, sh, socketClient, tempDir, until } from "../harness.ts";
import { mqRemove } from "../helpers/mq.ts";

/** postbox with stdout to a file (large outputs), waiting for its pidfile. */
async function startToFile(dir: string, args: string[] = []) {
  const mq = mqName();
  const out = join(dir, "out.txt");
  const p = Bun.spawn([BIN, "--mq", mq, "--pidfile", "pb.pid", ...args], { cwd: dir, stdout: Bun.file(out), stderr: "pipe" });
  const err = new Response(p.stderr).text();
  await until(() => Bun.file(join(dir, "pb.pid")).size > 0 || p.exitCode !== null, "postbox to be ready");
  const lines = () => {
    try {
      return readFileSync(out, "latin1").split("\n").slice(0, -1);
    } catch {
      return [];
    }
  };
  const count = () => {
    try {
      const b = readFileSync(out);
      let n = 0;
      for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
      return n;
    } catch {
      return 0;
    }
  };
  return {
    p,
    out,
    lines,
    count,
    stop: async () => {
      p.kill("SIGTERM");
      const code = await p.exited;
      return { code, stderr: await err };
    },
    [Symbol.asyncDispose]: async () => {
      p.kill("SIGKILL");
      await p.exited;
      mqRemove(mq);
    },
  };
}

/** A deterministic byte stream (xorshift32), so a failure can be replayed. */
function seeded(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** Output lines postbox must print for this input with --max-message max (pieces for long lines). */
function expectedLines(input: Uint8Array, max: number): number {
  let n = 0;
  let start = 0;
  for (let i = input.indexOf(10); i !== -1; i = input.indexOf(10, i + 1)) {
    n += Math.max(1, Math.ceil((i - start) / max));
    start = i + 1;
  }
  if (start < input.byteLength) n += Math.ceil((input.byteLength - start) / max);
  return n;
}

describe("floods", () => {
  test("2,000 concurrent socket clients: each line exactly once", async () => {
    using dir = tempDir();
    await using pb = await startToFile(dir.path, ["--no-fifo", "--no-signals"]);
    const path = join(dir.path, "socket");
    const clients = await Promise.all(Array.from({ length: 2000 }, () => socketClient(path, [], { end: false })));
    // all 2,000 are connected at once; now each posts and half-closes
    clients.forEach((c, i) => {
      c.socket.write(`client ${i}\n`);
      c.finish();
    });
    await Promise.all(clients.map((c) => c.closed));
    await until(() => pb.count() >= 2000, "2000 lines", 30_000);
    const got = pb.lines().map((l) => l.slice(l.indexOf(": ") + 2));
    expect(got).toHaveLength(2000);
    expect(new Set(got).size).toBe(2000);
    report("2,000 concurrent clients", { lines: got.length, peakRSS_MiB: +((await rssKiB(pb.p.pid, true)) / 1024).toFixed(1) });
    expect((await pb.stop()).code).toBe(0);
  });

  test("1,000,000 lines from 8 concurrent senders over socket and FIFO: counts match, none twice", async () => {
    using dir = tempDir();
    await using pb = await startToFile(dir.path, ["--no-signals"]);
    const per = 125_000;
    const t0 = performance.now();
    const senders = Array.from({ length: 8 }, (_, k) => {
      const target = k < 4 ? "--socket socket" : "--fifo fifo";
      return `seq -f 's${k}-%.0f' 1 ${per} | "${BIN}" send ${target} &`;
    });
    const r = await sh(dir.path, `${senders.join("\n")}\nwait`, 120_000);
    expect(r).toMatchObject({ exitCode: 0, stderr: "" });
    await until(() => pb.count() >= 8 * per, "1,000,000 lines", 60_000);
    const seen = new Map<string, number>();
    for (const l of pb.lines()) {
      const m = /: s(\d)-(\d+)$/.exec(l);
      expect(m).not.toBeNull();
      const key = `${m![1]}-${m![2]}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    report("1M lines, 8 senders", { lines: seen.size, seconds: +((performance.now() - t0) / 1000).toFixed(2) });
    expect(seen.size).toBe(8 * per);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect((await pb.stop()).code).toBe(0);
  }, 180_000);
});

describe("hostile bytes", () => {
  for (const channel of ["socket", "fifo"] as const) {
    test(`10 MiB of seeded random bytes by ${channel}: alive, escaped, every message counted`, async () => {
      using dir = tempDir();
      const input = seeded(10 << 20, channel === "socket" ? 12345 : 67890);
      writeFileSync(join(dir.path, "input.bin"), input);
      await using pb = await startToFile(dir.path, ["--max-message", "4096", "--no-signals", "--linger", "300"]);
      const send = channel === "socket" ? "nc -N -U socket < input.bin" : "cat input.bin > fifo";
      if (channel === "socket" && !Bun.which("nc")) return console.log("skip: nc is not installed");
      expect((await sh(dir.path, send, 60_000)).exitCode).toBe(0);
      const want = expectedLines(input, 4096);
      await until(() => pb.count() >= want, `${want} lines`, 60_000);
      const out = readFileSync(pb.out);
      // no raw control byte but the line ends, no invalid UTF-8: a terminal is safe
      for (let i = 0; i < out.byteLength; i++) {
        const c = out[i]!;
        if (c !== 10 && (c < 0x20 || c === 0x7f)) throw new Error(`raw control byte 0x${c.toString(16)} at ${i}`);
      }
      expect(() => new TextDecoder("utf-8", { fatal: true }).decode(out)).not.toThrow();
      expect(pb.count()).toBe(want);
      report(`10 MiB random by ${channel}`, { messages: want, peakRSS_MiB: +((await rssKiB(pb.p.pid, true)) / 1024).toFixed(1) });
      expect(pb.p.exitCode).toBeNull();
      expect((await pb.stop()).code).toBe(0);
    }, 120_000);
  }

  test("NUL, ESC, CR, invalid UTF-8 in one line, then a 64 MiB line: escaped, memory bounded", async () => {
    using dir = tempDir();
    await using pb = await startToFile(dir.path, ["--no-fifo", "--no-signals"]);
    const path = join(dir.path, "socket");
    const c = await socketClient(path, [], { end: false });
    const write = c.write;
    await write(new Uint8Array([0x61, 0x00, 0x1b, 0x5b, 0x32, 0x4a, 0x0d, 0xc3, 0x28, 0xff, 0x62, 0x0a]));
    const mib = new Uint8Array(1 << 20).fill(0x79);
    let peak = 0;
    for (let i = 0; i < 64; i++) {
      await write(mib);
      if (i % 8 === 0) peak = Math.max(peak, await rssKiB(pb.p.pid));
    }
    c.finish();
    await c.closed;
    await until(() => pb.count() >= 1 + 1024, "1025 lines", 60_000);
    peak = Math.max(peak, await rssKiB(pb.p.pid, true));
    const first = pb.lines()[0]!;
    expect(first).toBe(`socket[pid=${process.pid},uid=${process.getuid!()},gid=${process.getgid!()}]: a\\x00\\x1b[2J\\r\\xc3(\\xffb`);
    expect(pb.count()).toBe(1025);
    report("64 MiB line", { pieces: 1024, peakRSS_MiB: +(peak / 1024).toFixed(1) });
    expect(peak).toBeLessThan(200 * 1024); // KiB: a 64 MiB line must not be held whole
    const { code, stderr } = await pb.stop();
    expect(code).toBe(0);
    expect(stderr).toMatch(/sent a line longer than 65536 bytes; delivered in pieces/);
  }, 120_000);
});

describe("output side", () => {
  test("stdout a full pipe that drains slowly: senders are held back, memory bounded, nothing lost", async () => {
    using dir = tempDir();
    const mq = mqName();
    try {
      const n = 200_000;
      // The reader of postbox's stdout sleeps first: postbox must block on the full
      // pipe (and so hold back its senders) instead of buffering without end.
      const box = Bun.spawn(
        ["bash", "-c", `"${BIN}" --mq ${mq} --no-fifo --no-signals --pidfile pb.pid | { while [ ! -e go ]; do sleep 0.05; done; cat > out.txt; }`],
        { cwd: dir.path, stderr: "ignore" },
      );
      await until(() => Bun.file(join(dir.path, "pb.pid")).size > 0, "ready");
      const pid = Number(readFileSync(join(dir.path, "pb.pid"), "utf8"));
      const sender = Bun.spawn(["bash", "-c", `seq -f '%.0f ${"z".repeat(100)}' 1 ${n} | "${BIN}" send --socket socket`], { cwd: dir.path });
      let peak = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < 1500) {
        peak = Math.max(peak, await rssKiB(pid));
        await Bun.sleep(50);
      }
      expect(sender.exitCode).toBeNull(); // held back: that is the backpressure
      writeFileSync(join(dir.path, "go"), "");
      expect(await sender.exited).toBe(0);
      await until(() => {
        try {
          return readFileSync(join(dir.path, "out.txt"), "latin1").endsWith(`: ${n} ${"z".repeat(100)}\n`);
        } catch {
          return false;
        }
      }, "the last line", 30_000);
      const out = readFileSync(join(dir.path, "out.txt"), "latin1").split("\n").slice(0, -1);
      expect(out).toHaveLength(n);
      report("slow stdout reader", { lines: n, peakRSS_MiB: +(peak / 1024).toFixed(1) });
      expect(peak).toBeLessThan(150 * 1024);
      process.kill(pid, "SIGTERM");
      expect(await box.exited).toBe(0);
    } finally {
      mqRemove(mq);
    }
  }, 60_000);
});
