import { describe, expect, test } from "bun:test";
import { chmodSync } from "node:fs";
import { join } from "node:path";
import { BIN, cpuTicks, have, mqName, report, runPostbox, sh, startPostbox, tempDir, until } from "./harness.ts";
import { mqMode, mqPut, mqRemove, mqWaiting } from "./helpers/mq.ts";

const only = ["--no-fifo", "--no-socket", "--no-signals"];
const root = process.getuid!() === 0;
const MQ_SEND = join(import.meta.dir, "helpers", "mq-send.ts");

/** A queue name removed after the test, whatever happens. */
function queue(): { name: string; [Symbol.dispose](): void } {
  const name = mqName();
  return { name, [Symbol.dispose]: () => mqRemove(name) };
}

/**
 * Queued before the start (the reader thread takes them back to back), the lines
 * are `text`: as the thread writes plain ones itself (no options, and -v says
 * so), and with --count, where the loop formats every message.
 */
async function expectText(posted: Array<[string, number]>, text: string[]): Promise<void> {
  for (const [args, threadText] of [[[], true], [["--count", String(posted.length)], false]] as const) {
    using dir = tempDir();
    using q = queue();
    mqPut(q.name, posted);
    await using pb = await startPostbox(dir.path, [...only, "-v", "--mq", q.name, ...args]);
    expect(await pb.waitLines(posted.length)).toEqual(text);
    const { stderr } = await pb.stop();
    const batches = /closed; (\d+) batch\(es\) of plain messages came as text lines/.exec(stderr)?.[1];
    expect({ thread: batches !== undefined && Number(batches) > 0 }).toEqual({ thread: threadText });
  }
}

describe("message-queue channel", () => {
  test("postbox send --mq from another process prints 'mqueue[prio=0]: 4'", async () => {
    using dir = tempDir();
    using q = queue();
    await using pb = await startPostbox(dir.path, [...only, "--mq", q.name]);
    expect(pb.stderr.text).toContain(`... by mq_send: ${BIN} send --mq ${q.name} 4`);
    expect((await runPostbox(dir.path, ["send", "--mq", q.name, "4"])).exitCode).toBe(0);
    expect(await pb.waitLines(1)).toEqual(["mqueue[prio=0]: 4"]);
  });

  test("messages left while nobody read are delivered at start, in priority order", async () => {
    using dir = tempDir();
    using q = queue();
    mqPut(q.name, [["low", 1], ["high", 9], ["mid", 5], ["mid2", 5]]);
    await using pb = await startPostbox(dir.path, [...only, "--mq", q.name, "--json"]);
    const recs = (await pb.waitLines(4)).map((l) => JSON.parse(l));
    expect(recs.map((r) => [r.msg, r.prio])).toEqual([["high", 9], ["mid", 5], ["mid2", 5], ["low", 1]]);
    expect(recs[0]).toMatchObject({ channel: "mqueue", via: q.name });
  });

  test("newlines inside and at the end, control bytes, an empty and a long message, two priorities: each arrives whole, in order, as text, --json and with --count", async () => {
    const long = "y".repeat(6000); // longer than the bulk path takes in one line
    const posted: Array<[string, number]> = [["a1", 5], ["two\nlines", 5], ["a2", 5], ["trail\n\n", 5], ["", 5], ["ctl\x01x", 0], ["b1", 0], [long, 0], ["b2\n", 0]];
    const text = ["a1", "two\\nlines", "a2", "trail", ""].map((m) => `mqueue[prio=5]: ${m}`).concat(["ctl\\x01x", "b1", long, "b2"].map((m) => `mqueue[prio=0]: ${m}`));
    await expectText(posted, text);
    using dir = tempDir();
    using q = queue();
    mqPut(q.name, posted);
    await using pb = await startPostbox(dir.path, [...only, "--mq", q.name, "--json"]);
    const recs = (await pb.waitLines(9)).map((l) => JSON.parse(l));
    expect(recs.map((r) => [r.msg, r.prio])).toEqual([["a1", 5], ["two\nlines", 5], ["a2", 5], ["trail", 5], ["", 5], ["ctl\x01x", 0], ["b1", 0], [long, 0], ["b2", 0]]);
  });

  test("plain messages (which the reader thread writes as text itself) and escaped ones interleave in one batch: each line as the per-message writer prints it", async () => {
    // By priority, then in the order posted.
    const posted: Array<[string, number]> = [
      ["plain \\ back~slash", 32767],
      ["tab\there", 32767],
      ["\u00e9 utf-8", 32767],
      ["del\x7f", 100],
      ["0123456789abcdefXY", 100],
      ["esc\x1b[31m", 100],
      ["", 100],
      ["0123456\x7f89abcdef", 7],
      ["abcd\u00ffefghijkl", 0],
      ["last", 0],
    ];
    const text = [
      "mqueue[prio=32767]: plain \\ back~slash",
      "mqueue[prio=32767]: tab\\there",
      "mqueue[prio=32767]: \u00e9 utf-8",
      "mqueue[prio=100]: del\\x7f",
      "mqueue[prio=100]: 0123456789abcdefXY",
      "mqueue[prio=100]: esc\\x1b[31m",
      "mqueue[prio=100]: ",
      "mqueue[prio=7]: 0123456\\x7f89abcdef",
      "mqueue[prio=0]: abcd\u00ffefghijkl",
      "mqueue[prio=0]: last",
    ];
    await expectText(posted, text);
  });

  test("SIGTERM while a sender streams into the queue: every message taken is printed, the rest stay queued, none twice", async () => {
    using dir = tempDir();
    using q = queue();
    const pb = await startPostbox(dir.path, [...only, "--mq", q.name]);
    const n = 20_000;
    const lines = Array.from({ length: n }, (_, i) => `m${i}`).join("\n");
    const sender = Bun.spawn([BIN, "send", "--mq", q.name, "--wait"], { stdin: new Blob([lines]), stderr: "pipe" });
    await until(() => pb.lines().length >= 2000, "the queue to flow");
    expect((await pb.stop()).exitCode).toBe(0);
    await pb[Symbol.asyncDispose]();
    const first = pb.lines();
    // The rest, sent into the queue while nobody read it, comes to the next reader.
    await using again = await startPostbox(dir.path, [...only, "--mq", q.name]);
    expect(await sender.exited).toBe(0);
    const rest = await again.waitLines(n - first.length);
    expect([...first, ...rest]).toEqual(lines.split("\n").map((l) => `mqueue[prio=0]: ${l}`));
  });

  test("a stdout nobody reads holds the queue back: it fills, the sender waits, memory stays bounded; read on, every message comes in order", async () => {
    using dir = tempDir();
    using q = queue();
    mqPut(q.name, []);
    const pb = Bun.spawn([BIN, ...only, "--mq", q.name], { cwd: dir.path, stdout: "pipe", stderr: "pipe" });
    const n = 20_000; // 40 MB: far more than the pipes and buffers between the queue and stdout
    const body = "x".repeat(2000);
    const sender = Bun.spawn([BIN, "send", "--mq", q.name, "--wait"], { stdin: new Blob([Array.from({ length: n }, (_, i) => `${i} ${body}`).join("\n")]) });
    try {
      expect((await runPostbox(dir.path, ["wait", "--mq", q.name, "--timeout", "5"])).exitCode).toBe(0);
      const rss = async () => Number(/VmRSS:\s+(\d+)/.exec(await Bun.file(`/proc/${pb.pid}/status`).text())![1]) / 1024;
      await until(() => mqWaiting(q.name) === 10, "the queue to fill while stdout is not read");
      const held = await rss();
      expect(sender.exitCode).toBeNull(); // still waiting for room
      const reader = pb.stdout.getReader();
      let text = "";
      const dec = new TextDecoder();
      let lines = 0;
      while (lines < n) {
        const { value, done } = await reader.read();
        if (done) break;
        const chunk = dec.decode(value, { stream: true });
        text += chunk;
        lines += chunk.split("\n").length - 1;
      }
      expect(await sender.exited).toBe(0);
      const got = text.split("\n").slice(0, n);
      expect(got.length).toBe(n);
      expect(got.every((l, i) => l === `mqueue[prio=0]: ${i} ${body}`)).toBe(true);
      report("mq held back by stdout", { rssMiB: held.toFixed(1) });
      expect(held).toBeLessThan(150); // ~60 MiB idle; reading all 40 MB ahead would show
    } finally {
      sender.kill();
      pb.kill();
      await pb.exited;
    }
  });

  test("--count takes no more from the queue than it prints: the rest stay for the next reader", async () => {
    using dir = tempDir();
    using q = queue();
    mqPut(q.name, [["m1", 0], ["m2", 0], ["m3", 0], ["m4", 0], ["m5", 0]]);
    const first = await runPostbox(dir.path, [...only, "--mq", q.name, "--count", "2", "--timeout", "10"]);
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toBe("mqueue[prio=0]: m1\nmqueue[prio=0]: m2\n");
    const second = await runPostbox(dir.path, [...only, "--mq", q.name, "--count", "3", "--timeout", "10"]);
    expect(second.stdout).toBe("mqueue[prio=0]: m3\nmqueue[prio=0]: m4\nmqueue[prio=0]: m5\n");
  });

  test("a signal flood that uses up postbox's RLIMIT_SIGPENDING leaves no message unread", async () => {
    using dir = tempDir();
    using q = queue();
    mqPut(q.name, []); // created before postbox, so nothing is waiting at start
    const wrap = ["bash", "-c", 'ulimit -i 40 && exec "$@"', "bash"];
    await using pb = await startPostbox(dir.path, ["--no-fifo", "--no-socket", "--signals", "RTMIN", "--mq", q.name], { wrap });
    process.kill(pb.pid, "SIGSTOP"); // nothing is taken while stopped: signals pile up
    try {
      // Fill the pending-signal limit; the last sigqueue calls fail with EAGAIN.
      const flood = await sh(dir.path, `n=0; for i in $(seq 1 60); do /bin/kill -RTMIN -q $i ${pb.pid} 2>/dev/null && n=$((n+1)); done; echo $n`);
      const queued = Number(flood.stdout.trim());
      expect(queued).toBeGreaterThan(0);
      expect(queued).toBeLessThan(60);
      mqPut(q.name, [["after the flood", 0]]); // its notification finds no room
      process.kill(pb.pid, "SIGCONT");
      const lines = await pb.waitLines(queued + 1);
      expect(lines).toContain("mqueue[prio=0]: after the flood");
    } finally {
      process.kill(pb.pid, "SIGCONT");
    }
  });

  test("a steady trickle (one message every 200 µs, 2,000 of them) arrives complete, five runs in a row", async () => {
    const got: number[] = [];
    const stops: string[] = [];
    for (let run = 0; run < 5; run++) {
      using dir = tempDir();
      using q = queue();
      await using pb = await startPostbox(dir.path, [...only, "--mq", q.name]);
      const sender = Bun.spawn([process.execPath, MQ_SEND, q.name, "t", "--count", "2000", "--every-us", "200"], { stdout: "ignore" });
      try {
        await pb.waitLines(2000, 10_000).catch(() => {}); // a stopped channel leaves the sender blocked: counted below
      } finally {
        sender.kill("SIGKILL");
      }
      const lines = pb.lines();
      got.push(lines.length);
      expect(lines).toEqual(Array.from({ length: lines.length }, (_, i) => `mqueue[prio=0]: t${i}`)); // in order, none twice
      if (pb.stderr.text.includes("the mq channel stops")) stops.push(pb.stderr.text.trim().split("\n").pop()!);
    }
    report("mq 200 µs trickle", { delivered: got.join(",") });
    expect(stops).toEqual([]);
    expect(got).toEqual([2000, 2000, 2000, 2000, 2000]);
  }, 90_000);

  test.skipIf(!root || !have("setpriv"))("RLIMIT_SIGPENDING used up by another process of postbox's uid: an mq post still arrives within a second", async () => {
    using dir = tempDir();
    chmodSync(dir.path, 0o1777);
    using q = queue();
    // A uid of its own, so no other test (or helper) shares its pending-signal count.
    const uid = 200_000 + Math.floor(Math.random() * 100_000);
    const as = `setpriv --reuid=${uid} --regid=${uid} --clear-groups`;
    const limited = ["bash", "-c", `ulimit -i 64 && exec ${as} "$@"`, "bash"];
    await using pb = await startPostbox(dir.path, [...only, "--mq", q.name], { wrap: limited });
    // The hog catches RTMIN and is stopped: what is sent to it stays pending, charged to the uid.
    const hog = Bun.spawn([...limited, "bash", "-c", "trap : RTMIN; while :; do sleep 1; done"], { cwd: dir.path });
    try {
      await until(async () => (await Bun.file(`/proc/${hog.pid}/status`).text()).includes(`Uid:\t${uid}`), "the hog to run as the test uid");
      process.kill(hog.pid, "SIGSTOP");
      const flood = await sh(dir.path, `${as} bash -c 'n=0; while /bin/kill -RTMIN -q $n ${hog.pid} 2>/dev/null; do n=$((n+1)); [ $n -ge 1000 ] && break; done; echo $n'`);
      const queued = Number(flood.stdout.trim());
      expect(queued).toBeGreaterThan(0);
      expect(queued).toBeLessThanOrEqual(64); // stopped at EAGAIN: the uid's limit is used up
      mqPut(q.name, [["while the uid has no signal left", 0]]);
      expect(await pb.waitLines(1, 1000)).toEqual(["mqueue[prio=0]: while the uid has no signal left"]);
      expect((await runPostbox(dir.path, ["wait", "--mq", q.name, "--timeout", "2"])).exitCode).toBe(0);
    } finally {
      hog.kill("SIGKILL");
      await hog.exited;
    }
  });

  test.skipIf(!have("cc"))("where mq_notify is missing (ENOSYS, as under qemu-user) the queue is still served, with a warning", async () => {
    using dir = tempDir();
    using q = queue();
    const built = await sh(dir.path, `cc -DNR=__NR_mq_notify -o no-mq-notify ${join(import.meta.dir, "helpers", "enosys.c")}`);
    expect(built.exitCode).toBe(0);
    mqPut(q.name, [["left", 1]]);
    await using pb = await startPostbox(dir.path, [...only, "--mq", q.name], { wrap: [join(dir.path, "no-mq-notify")] });
    expect(pb.stderr.text).toStartWith(`postbox: warning: mq ${q.name}: mq_notify is not available here (ENOSYS)`);
    expect(await pb.waitLines(1)).toEqual(["mqueue[prio=1]: left"]);
    mqPut(q.name, [["after", 2]]);
    expect(await pb.waitLines(2)).toEqual(["mqueue[prio=1]: left", "mqueue[prio=2]: after"]);
  });

  test.skipIf(!have("cc"))("memfd_create refused: the reader thread is built from a temp file; with no temp dir either, one warning naming both, and the other channels serve on", async () => {
    using dir = tempDir();
    const built = await sh(dir.path, `cc -DNR=__NR_memfd_create -o no-memfd ${join(import.meta.dir, "helpers", "enosys.c")}`);
    expect(built.exitCode).toBe(0);
    const wrap = [join(dir.path, "no-memfd")];
    {
      using q = queue();
      await using pb = await startPostbox(dir.path, ["--no-socket", "--no-signals", "--no-fifo", "--mq", q.name], { wrap, env: { TMPDIR: dir.path } });
      expect((await runPostbox(dir.path, ["send", "--mq", q.name, "4"])).exitCode).toBe(0);
      expect(await pb.waitLines(1)).toEqual(["mqueue[prio=0]: 4"]);
    }
    using q = queue();
    const none = join(dir.path, "missing");
    await using pb = await startPostbox(dir.path, ["--no-socket", "--no-signals", "--mq", q.name], { wrap, env: { TMPDIR: none } });
    await pb.waitStderr(/the mq channel stops/);
    expect(pb.stderr.text).toContain(
      `postbox: warning: mq ${q.name}: cannot start the reader thread: memfd_create failed: not supported by this system (ENOSYS), and no temporary file in ${none}: no such file or directory (ENOENT); the mq channel stops\n`,
    );
    expect((await runPostbox(dir.path, ["send", "--fifo", "fifo", "1"])).exitCode).toBe(0);
    expect(await pb.waitLines(1)).toEqual(["fifo: 1"]);
  });

  test("a burst larger than the queue (10 slots) arrives complete while the sender blocks", async () => {
    using dir = tempDir();
    using q = queue();
    await using pb = await startPostbox(dir.path, [...only, "--mq", q.name]);
    const lines = Array.from({ length: 3000 }, (_, i) => `m${i}`).join("\n");
    const p = Bun.spawn([(await import("./harness.ts")).BIN, "send", "--mq", q.name, "--wait"], { stdin: new Blob([lines]) });
    expect(await p.exited).toBe(0);
    const got = await pb.waitLines(3000);
    expect(got.map((l) => l.slice("mqueue[prio=0]: ".length))).toEqual(lines.split("\n"));
  });

  test("after a burst the queue is no longer polled: idle CPU stays ~0", async () => {
    using dir = tempDir();
    using q = queue();
    await using pb = await startPostbox(dir.path, [...only, "--mq", q.name]);
    const lines = Array.from({ length: 2000 }, (_, i) => `m${i}`).join("\n");
    const p = Bun.spawn([BIN, "send", "--mq", q.name, "--wait"], { stdin: new Blob([lines]) });
    expect(await p.exited).toBe(0);
    await pb.waitLines(2000);
    const before = await cpuTicks(pb.pid);
    const t0 = performance.now();
    await until(() => performance.now() - t0 >= 1000, "a one-second measuring window");
    expect((await cpuTicks(pb.pid)) - before).toBeLessThanOrEqual(3); // clock ticks (10 ms) in one second
  });

  test("the queue is created with --mode exactly and kept at exit", async () => {
    using dir = tempDir();
    using q = queue();
    const pb = await startPostbox(dir.path, [...only, "--mq", q.name, "--mode", "0640"]);
    expect(mqMode(q.name)).toBe(0o640);
    expect((await pb.stop()).exitCode).toBe(0);
    await pb[Symbol.asyncDispose]();
    mqPut(q.name, [["while down", 0]]);
    // An existing queue must be no wider than --mode (never adopted wider than asked).
    await using again = await startPostbox(dir.path, [...only, "--mq", q.name, "--mode", "0640"]);
    expect(await again.waitLines(1)).toEqual(["mqueue[prio=0]: while down"]);
  });

  test("a second reader of the same queue is refused; the first keeps serving", async () => {
    using dir = tempDir();
    using q = queue();
    await using pb = await startPostbox(dir.path, [...only, "--mq", q.name]);
    const second = await runPostbox(dir.path, [...only, "--mq", q.name]);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toBe(`postbox: cannot read the message queue ${q.name}: another process (pid ${pb.pid}) (a running postbox?) is already reading it\n`);
    mqPut(q.name, [["first still", 2]]);
    expect(await pb.waitLines(1)).toEqual(["mqueue[prio=2]: first still"]);
  });

  test("a reader that claims the queue while postbox drains it is reported; postbox leaves the queue to it", async () => {
    using dir = tempDir();
    using q = queue();
    await using pb = await startPostbox(dir.path, [...only, "--mq", q.name]);
    process.kill(pb.pid, "SIGSTOP"); // so the rival gets in between a message and postbox's re-claim
    const rival = Bun.spawn([process.execPath, join(import.meta.dir, "helpers", "mq-claim.ts"), q.name], { stdin: "pipe", stdout: "pipe" });
    try {
      mqPut(q.name, [["taken before the rival", 0]]); // lands on the empty queue: the kernel drops postbox's claim
      const said = await rival.stdout.getReader().read(); // it stays, holding the claim
      expect(new TextDecoder().decode(said.value)).toBe("claimed\n");
      process.kill(pb.pid, "SIGCONT");
      await pb.waitStderr(/another process \(pid \d+\) now reads it\); the mq channel stops/);
      expect(pb.stderr.text).toContain(`(pid ${rival.pid})`);
      // stdout and stderr are separate pipes: the line may come in after the warning
      expect(await pb.waitLines(1)).toEqual(["mqueue[prio=0]: taken before the rival"]);
      expect((await runPostbox(dir.path, ["wait", "--mq", q.name, "--timeout", "1"])).exitCode).toBe(0); // the rival holds it
      expect(pb.proc.exitCode).toBeNull(); // the other channels would go on
    } finally {
      process.kill(pb.pid, "SIGCONT");
      rival.kill();
    }
  });

  test("postbox send --mq: a missing queue and a full one are clear errors", async () => {
    using dir = tempDir();
    using q = queue();
    expect(await runPostbox(dir.path, ["send", "--mq", q.name, "x"])).toMatchObject({
      exitCode: 1,
      stderr: `postbox: cannot open the message queue ${q.name}: no such queue (is a postbox serving it?)\n`,
    });
    mqPut(q.name, Array.from({ length: 10 }, (_, i) => [`f${i}`, 0] as [string, number]));
    expect(await runPostbox(dir.path, ["send", "--mq", q.name, "x"])).toMatchObject({
      exitCode: 1,
      stderr: `postbox: cannot send to ${q.name}: the queue is full (use --wait to block until there is room)\n`,
    });
  });
});
