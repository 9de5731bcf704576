import { describe, expect, test } from "bun:test";
import { appendFileSync, chmodSync, closeSync, openSync, readFileSync, renameSync, statSync, symlinkSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { parseWhen } from "../src/commands/records.ts";
import { UsageError } from "../src/errors.ts";
import { parseLog } from "../src/options.ts";
import { BIN, have, runPostbox, sh, startPostbox, tempDir, until } from "./harness.ts";

const now = Date.now();
const ago = (ms: number) => new Date(now - ms).toISOString();
const MIN = 60_000;
const HOUR = 60 * MIN;

/** Records as serve stores them (format.ts's jsonLine), at known times and from known senders. */
const RECORDS = [
  { ts: ago(3 * HOUR), channel: "fifo", msg: "m1", via: "fifo" },
  { ts: ago(2 * HOUR), channel: "socket", msg: "m2", pid: 100, uid: 0, gid: 0, comm: "nc", via: "socket" },
  { ts: ago(30 * MIN), channel: "socket", msg: "m3 hello", pid: 200, uid: 65534, gid: 65534, comm: "socat", via: "socket" },
  { ts: ago(5 * MIN), channel: "signal", msg: "7", pid: 300, uid: 65534, sig: "SIGUSR1", value: 7, code: -1 },
  { ts: ago(1 * MIN), channel: "mqueue", msg: "m5 hello", prio: 3, via: "/postbox" },
];
const TEXT = [
  "fifo: m1",
  "socket[pid=100,uid=0,gid=0]: m2",
  "socket[pid=200,uid=65534,gid=65534]: m3 hello",
  "signal[pid=300,uid=65534,sig=SIGUSR1]: 7",
  "mqueue[prio=3]: m5 hello",
];
const ndjson = (recs: object[]) => recs.map((r) => JSON.stringify(r) + "\n").join("");
const pick = (...i: number[]) => i.map((k) => TEXT[k]!).join("\n") + (i.length ? "\n" : "");

describe("postbox log: filters", () => {
  const cases: [string[], string][] = [
    [[], pick(0, 1, 2, 3, 4)],
    [["--channel", "socket"], pick(1, 2)],
    [["--channel", "fifo,mqueue"], pick(0, 4)],
    [["--channel", "dgram"], pick()],
    [["--uid", "65534"], pick(2, 3)],
    [["--uid", "nobody,0"], pick(1, 2, 3)],
    [["--pid", "300"], pick(3)],
    [["--pid", "100,200"], pick(1, 2)],
    [["--comm", "socat"], pick(2)],
    [["--since", "1h"], pick(2, 3, 4)],
    [["--until", "10m"], pick(0, 1, 2)],
    [["--since", "1h", "--until", "2m"], pick(2, 3)],
    [["--since", "2h30m"], pick(1, 2, 3, 4)],
    [["--since", ago(2.5 * HOUR)], pick(1, 2, 3, 4)],
    [["--until", new Date(now - 2.5 * HOUR).toISOString().slice(0, 19) + "Z"], pick(0)],
    [["--since", "today", "--until", "now"], ""], // depends on the clock: filled in below
    [["--grep", "hello"], pick(2, 4)],
    [["--grep", "^m[0-9]$"], pick(0, 1)],
    [["--channel", "socket", "--grep", "hello"], pick(2)],
    [["--uid", "65534", "--channel", "signal", "--since", "10m"], pick(3)],
    [["-n", "2"], pick(3, 4)],
    [["-n", "0"], pick()],
    [["-n", "99"], pick(0, 1, 2, 3, 4)],
    [["-n", "all", "--reverse"], pick(4, 3, 2, 1, 0)],
    [["-n", "2", "-r"], pick(4, 3)],
    [["-n", "1", "--channel", "socket"], pick(2)],
    [["-r", "--grep", "hello"], pick(4, 2)],
  ];
  for (const [args, expected] of cases) {
    test(`log ${args.join(" ") || "(no filter)"}`, async () => {
      using dir = tempDir();
      writeFileSync(join(dir.path, "mail.ndjson"), ndjson(RECORDS));
      let want = expected;
      if (args[1] === "today") {
        const midnight = new Date(now).setHours(0, 0, 0, 0);
        want = pick(...RECORDS.flatMap((r, i) => (Date.parse(r.ts) >= midnight ? [i] : [])));
      }
      expect(await runPostbox(dir.path, ["log", ...args, "mail.ndjson"])).toEqual({ exitCode: 0, stdout: want, stderr: "" });
    });
  }

  test("--json prints the stored lines as they are; --timestamps puts ts first", async () => {
    using dir = tempDir();
    writeFileSync(join(dir.path, "mail.ndjson"), ndjson(RECORDS));
    expect(await runPostbox(dir.path, ["log", "--json", "mail.ndjson"])).toEqual({ exitCode: 0, stdout: ndjson(RECORDS), stderr: "" });
    const stamped = RECORDS.map((r, i) => `${r.ts} ${TEXT[i]}\n`).join("");
    expect(await runPostbox(dir.path, ["log", "--timestamps", "mail.ndjson"])).toEqual({ exitCode: 0, stdout: stamped, stderr: "" });
  });

  test("several files in the order given; stdin when none is named (or -)", async () => {
    using dir = tempDir();
    writeFileSync(join(dir.path, "mail.1"), ndjson(RECORDS.slice(0, 2)));
    writeFileSync(join(dir.path, "mail.ndjson"), ndjson(RECORDS.slice(2)));
    expect((await runPostbox(dir.path, ["log", "mail.1", "mail.ndjson"])).stdout).toBe(pick(0, 1, 2, 3, 4));
    expect((await runPostbox(dir.path, ["log", "-n", "4", "mail.1", "mail.ndjson"])).stdout).toBe(pick(1, 2, 3, 4));
    expect((await runPostbox(dir.path, ["log", "-r", "mail.1", "mail.ndjson"])).stdout).toBe(pick(4, 3, 2, 1, 0));
    expect(await sh(dir.path, `"${BIN}" log -n 2 < mail.ndjson && cat mail.1 | "${BIN}" log --channel socket - && cat mail.1 | "${BIN}" log`)).toEqual({
      exitCode: 0,
      stdout: pick(3, 4) + pick(1) + pick(0, 1),
      stderr: "",
    });
    // a pipe cannot be read backwards: its last n are kept in a ring
    expect(await sh(dir.path, `cat mail.1 mail.ndjson | "${BIN}" log -n 2 && cat mail.1 mail.ndjson | "${BIN}" log -n 4 -r && cat mail.ndjson | "${BIN}" log -n 2 mail.1 -`)).toEqual({
      exitCode: 0,
      stdout: pick(3, 4) + pick(4, 3, 2, 1) + pick(3, 4),
      stderr: "",
    });
    const r = await sh(dir.path, `cat mail.1 | "${BIN}" log --reverse`);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toStartWith("postbox: --reverse reads from the end: stdin is not a file");
  });

  test("backwards across 1 MiB chunk boundaries: --reverse is the forward read reversed, -n 1000 its tail", async () => {
    using dir = tempDir();
    // lines of 1 to ~3,000 bytes, so that many of them straddle a chunk boundary
    const recs = Array.from({ length: 4000 }, (_, i) => ({ ...RECORDS[0]!, msg: `${i} ${"y".repeat((i * 7919) % 3000)}` }));
    writeFileSync(join(dir.path, "m"), ndjson(recs));
    const fwd = (await runPostbox(dir.path, ["log", "m"])).stdout.split("\n").slice(0, -1);
    expect(fwd).toHaveLength(4000);
    const rev = await runPostbox(dir.path, ["log", "-r", "m"]);
    expect(rev.stdout.split("\n").slice(0, -1)).toEqual([...fwd].reverse());
    expect((await runPostbox(dir.path, ["log", "-n", "1000", "m"])).stdout.split("\n").slice(0, -1)).toEqual(fwd.slice(3000));
  });

  test("stdout closed early (postbox log | head -1): exit 0 at once, nothing on stderr", async () => {
    using dir = tempDir();
    writeFileSync(join(dir.path, "m"), ndjson(Array.from({ length: 100_000 }, (_, i) => ({ ...RECORDS[0]!, msg: `${i}` }))));
    const r = await sh(dir.path, `"${BIN}" log m | head -1; echo "status \${PIPESTATUS[0]}"`);
    expect(r).toEqual({ exitCode: 0, stdout: "fifo: 0\nstatus 0\n", stderr: "" });
  });

  test.skipIf(!have("script"))("no FILE and stdin a terminal: a usage error naming what to pass", async () => {
    using dir = tempDir();
    const r = await sh(dir.path, `NO_COLOR=1 script -qec '"${BIN}" log' /dev/null`); // (a terminal: no colour wanted here)
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toStartWith("postbox: no store to read: name it (postbox log mail.ndjson, the file given to serve --store) or pipe it in");
  });

  for (const bad of [
    ["--channel", "bogus"],
    ["--since", "last tuesday"],
    ["--until", "2026-13-45"],
    ["-n", "x"],
    ["-n", "-1"],
    ["--grep", "("],
    ["-f", "-r"],
    ["--pid", "abc"],
    ["--uid", "no-such-user-here"],
    ["--no-fifo"],
    ["--colour"],
  ]) {
    test(`usage error: log ${bad.join(" ")}`, () => {
      expect(() => parseLog([...bad, "mail.ndjson"])).toThrow(UsageError);
    });
  }

  test("parseWhen: ISO 8601 (local unless zoned), relative, named", () => {
    const t = Date.UTC(2026, 11, 1, 12, 0, 0);
    expect(parseWhen("10m", t)).toBe(t - 10 * MIN);
    expect(parseWhen("1h30m ago", t)).toBe(t - 90 * MIN);
    expect(parseWhen("2d", t)).toBe(t - 48 * HOUR);
    expect(parseWhen("2026-12-01T09:30:00Z", t)).toBe(Date.UTC(2026, 11, 1, 9, 30));
    expect(parseWhen("2026-12-01 09:30+0100", t)).toBe(Date.UTC(2026, 11, 1, 8, 30));
    expect(parseWhen("2026-12-01", t)).toBe(new Date(2026, 11, 1).getTime());
    expect(parseWhen("now", t)).toBe(t);
    expect(parseWhen("10 minutes", t)).toBeNull();
  });

  test("-f starts with the last 10, --follow -n all with everything", () => {
    expect(parseLog(["-f", "x"]).lines).toBe(10);
    expect(parseLog(["-f", "-n", "all", "x"]).lines).toBeNull();
    expect(parseLog(["x"]).lines).toBeNull();
  });
});

describe("postbox log: bad input", () => {
  const good = (i: number) => JSON.stringify(RECORDS[i]);

  test("a corrupt line and a crash-truncated last line: one warning each with its line number, the rest read", async () => {
    using dir = tempDir();
    const cut = good(4).slice(0, 30);
    writeFileSync(join(dir.path, "mail.ndjson"), `${good(0)}\n{"ts":"oops\n${good(1)}\n[1,2]\n${good(2)}\n${cut}`);
    const warn2 = "postbox: warning: mail.ndjson:2: not JSON; skipped\n";
    const warn4 = "postbox: warning: mail.ndjson:4: not a JSON object; skipped\n";
    const warn6 = "postbox: warning: mail.ndjson:6: the last line has no newline (cut short by a crash, or still being written: -f waits for it); skipped\n";
    expect(await runPostbox(dir.path, ["log", "mail.ndjson"])).toEqual({ exitCode: 0, stdout: pick(0, 1, 2), stderr: warn2 + warn4 + warn6 });
    // -n: only what is read is checked; backwards (--reverse) line numbers are counted from the start too
    expect(await runPostbox(dir.path, ["log", "-n", "5", "mail.ndjson"])).toEqual({ exitCode: 0, stdout: pick(0, 1, 2), stderr: warn2 + warn4 + warn6 });
    expect(await runPostbox(dir.path, ["log", "-n", "1", "mail.ndjson"])).toEqual({ exitCode: 0, stdout: pick(2), stderr: warn6 });
    expect(await runPostbox(dir.path, ["log", "-r", "mail.ndjson"])).toEqual({ exitCode: 0, stdout: pick(2, 1, 0), stderr: warn6 + warn4 + warn2 });
  });

  test("a real store cut inside its last record (as by a crash mid-write): the rest as serve printed it, one warning", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--store", "mail.ndjson", "--no-mq", "--no-signals", "--no-fifo"]);
    expect((await sh(dir.path, `seq 1 50 | "${BIN}" send --socket socket`)).exitCode).toBe(0);
    await pb.waitLines(50);
    const served = (await pb.stop()).stdout.split("\n").slice(0, 49);
    const store = join(dir.path, "mail.ndjson");
    truncateSync(store, statSync(store).size - 15);
    expect(await runPostbox(dir.path, ["log", "mail.ndjson"])).toEqual({
      exitCode: 0,
      stdout: served.join("\n") + "\n",
      stderr: "postbox: warning: mail.ndjson:50: the last line has no newline (cut short by a crash, or still being written: -f waits for it); skipped\n",
    });
  });

  test("records that serve cannot have written are skipped with a warning (no raw bytes reach the terminal)", async () => {
    using dir = tempDir();
    const evil = { ...RECORDS[3], sig: "SIG\u001b[2J" };
    const noMsg = { ts: RECORDS[0]!.ts, channel: "fifo" };
    writeFileSync(join(dir.path, "m"), ndjson([evil, noMsg, RECORDS[0]!, { ...RECORDS[0], channel: "x\u001b" }]));
    const r = await runPostbox(dir.path, ["log", "m"]);
    expect(r.stdout).toBe(pick(0));
    expect(r.stderr).toBe(
      'postbox: warning: m:1: not a message postbox stores (channel "signal"); skipped\n' +
        "postbox: warning: m:2: no valid msg; skipped\n" +
        'postbox: warning: m:4: not a message postbox stores (channel "x\\u001b"); skipped\n',
    );
  });

  test("signals: an unknown sender (pid and uid null) and a claimed one are shown as serve showed them", async () => {
    using dir = tempDir();
    const base = { ts: RECORDS[0]!.ts, channel: "signal", sig: "SIGUSR1" };
    const recs = [
      { ...base, msg: "0", pid: null, uid: null, value: 0, code: 0 },
      { ...base, msg: "5", pid: 0, uid: 0, value: 5, code: -1, claimed: true },
      { ...base, msg: "6", pid: null, uid: null, value: 6, code: -1 }, // serve never stores a claimed sender as null
    ];
    writeFileSync(join(dir.path, "m"), ndjson(recs));
    expect(await runPostbox(dir.path, ["log", "m"])).toEqual({
      exitCode: 0,
      stdout: "signal[pid=?,uid=?,sig=SIGUSR1]: 0\nsignal[pid=0,uid=0,sig=SIGUSR1]: 5\n",
      stderr: 'postbox: warning: m:3: not a message postbox stores (channel "signal"); skipped\n',
    });
    expect((await runPostbox(dir.path, ["log", "--uid", "0", "m"])).stdout).toBe("signal[pid=0,uid=0,sig=SIGUSR1]: 5\n");
  });

  test("past 10 bad lines in a file, the rest are counted in one warning", async () => {
    using dir = tempDir();
    writeFileSync(join(dir.path, "m"), `${good(0)}\n` + "{bad\n".repeat(15) + `${good(1)}\n`);
    const r = await runPostbox(dir.path, ["log", "m"]);
    expect(r.stdout).toBe(pick(0, 1));
    const warnings = r.stderr.split("\n").filter(Boolean);
    expect(warnings).toHaveLength(11);
    expect(warnings[0]).toBe("postbox: warning: m:2: not JSON; skipped");
    expect(warnings[10]).toBe("postbox: warning: m: 5 more bad line(s) skipped");
  });

  test("a file that is not NDJSON: one warning; a file that cannot be opened: exit 1; the others are still read", async () => {
    using dir = tempDir();
    writeFileSync(join(dir.path, "notes.txt"), "hello\nworld\n".repeat(100));
    writeFileSync(join(dir.path, "mail.ndjson"), ndjson(RECORDS.slice(0, 2)));
    symlinkSync("mail.ndjson", join(dir.path, "link"));
    expect(await runPostbox(dir.path, ["log", "notes.txt", "mail.ndjson"])).toEqual({
      exitCode: 0,
      stdout: pick(0, 1),
      stderr: "postbox: warning: notes.txt:1: not NDJSON (a postbox store holds one JSON object per line); file skipped\n",
    });
    expect(await runPostbox(dir.path, ["log", "missing", "mail.ndjson", dir.path])).toEqual({
      exitCode: 1,
      stdout: pick(0, 1),
      stderr: `postbox: cannot open missing: no such file or directory (ENOENT); cannot open ${dir.path}: it is a directory\n`,
    });
    expect(await runPostbox(dir.path, ["log", "link"])).toEqual({
      exitCode: 1,
      stdout: "",
      stderr: "postbox: cannot open link: it is a symbolic link (postbox never follows one; name the file it points to)\n",
    });
  });
});

describe("postbox log: what serve printed, read back", () => {
  // Hostile bytes: ESC, NUL, CR, tab, DEL, a C1 CSI, invalid UTF-8, a BOM, U+2028, and a plain line.
  const hostile = "a\\x1b[31mred\\x00\\r\\t\\x7f|\\xc2\\x9b|\\xff\\xfe|\\xef\\xbb\\xbfbom|\\xe2\\x80\\xa8|caf\\xc3\\xa9";
  // (no mq here: RLIMIT_MSGQUEUE is shared with whatever else runs; the mqueue line is covered above)
  const post = (dir: string, pid: number) =>
    sh(
      dir,
      `printf '${hostile}\\nplain\\n' | nc -U socket && printf '${hostile}\\n' > fifo && "${BIN}" send --signal RTMIN --pid ${pid} -5 && ` +
        `printf '<11>Dec  1 07:30:40 tag: ${hostile}\\nno header\\n' | "${BIN}" send --dgram dg`,
    );

  for (const mode of [["--timestamps"], ["--json"], []]) {
    test.skipIf(!have("nc"))(`serve --store ${mode.join(" ")}: postbox log ${mode.join(" ")} prints the same lines`, async () => {
      using dir = tempDir();
      await using pb = await startPostbox(dir.path, ["--store", "mail.ndjson", "--no-mq", "--signals", "RTMIN", "--dgram", "dg", "--syslog", ...mode]);
      const r = await post(dir.path, pb.pid);
      expect(r.stderr).toBe("");
      await pb.waitLines(6);
      const served = (await pb.stop()).stdout;
      expect(served.split("\n")).toHaveLength(7);
      if (mode.length === 0) {
        const dgrams = served.split("\n").filter((l) => l.startsWith("dgram["));
        expect((await runPostbox(dir.path, ["log", "--channel", "dgram", "mail.ndjson"])).stdout).toBe(dgrams.join("\n") + "\n");
      }
      if (mode.length === 0) expect(served).toMatch(/\ndgram\[pid=\d+,uid=\d+,gid=\d+,sev=err\]: a\\x1b\[31m[^\n]*\ndgram\[pid=\d+,uid=\d+,gid=\d+\]: no header\n$/);
      if (mode[0] !== "--json") expect(served).toContain("a\\x1b[31mred\\x00\\r\\t\\x7f|\\xc2\\x9b|\\xff\\xfe|\ufeffbom|\u2028|café\n");
      expect(await runPostbox(dir.path, ["log", ...mode, "mail.ndjson"])).toEqual({ exitCode: 0, stdout: served, stderr: "" });
      if (mode[0] === "--timestamps") {
        const ts = served.split("\n")[0]!.split(" ")[0]!;
        expect(ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        expect(JSON.parse(readFileSync(join(dir.path, "mail.ndjson"), "utf8").split("\n")[0]!).ts).toBe(ts);
      }
    });
  }
});

describe("postbox log: real senders", () => {
  const root = process.getuid!() === 0;
  test.skipIf(!root || !have("setpriv") || !have("nc"))("--uid, --pid and --comm pick out another user's messages posted through serve", async () => {
    using dir = tempDir();
    chmodSync(dir.path, 0o755);
    await using pb = await startPostbox(dir.path, ["--store", "mail.ndjson", "--no-mq", "--no-signals", "--mode", "0666"]);
    const asNobody = "setpriv --reuid=nobody --regid=nogroup --clear-groups";
    expect((await sh(dir.path, `"${BIN}" send --socket socket mine && ${asNobody} "${BIN}" send --socket socket theirs && echo by-nc | nc -U socket`)).exitCode).toBe(0);
    await pb.waitLines(3);
    const served = (await pb.stop()).stdout.split("\n");
    const theirs = served.find((l) => l.endsWith(": theirs"))!;
    const pid = /pid=(\d+)/.exec(theirs)![1]!;
    expect(theirs).toBe(`socket[pid=${pid},uid=65534,gid=65534]: theirs`);
    const log = (...args: string[]) => runPostbox(dir.path, ["log", ...args, "mail.ndjson"]).then((r) => r.stdout);
    expect(await log("--uid", "nobody")).toBe(`${theirs}\n`);
    expect(await log("--uid", "65534", "--pid", pid)).toBe(`${theirs}\n`);
    expect(await log("--uid", "0")).toBe(served.filter((l) => l.includes("uid=0,")).join("\n") + "\n");
    expect(await log("--comm", "nc")).toBe(served.filter((l) => l.endsWith(": by-nc")).join("\n") + "\n");
  });
});

describe("postbox log --follow", () => {
  test("a half-written last line waits for its newline; SIGINT ends it with exit 0", async () => {
    using dir = tempDir();
    const store = join(dir.path, "mail.ndjson");
    const third = JSON.stringify(RECORDS[2]);
    writeFileSync(store, ndjson(RECORDS.slice(0, 2)) + third.slice(0, 25));
    await using log = await startPostbox(dir.path, ["log", "-f", "mail.ndjson"], { ready: false, raw: true });
    await log.waitLines(2);
    appendFileSync(store, third.slice(25, 40)); // still no newline: nothing may be printed (a half line would be a warning)
    appendFileSync(store, third.slice(40) + "\n");
    await log.waitLines(3);
    const fourth = ndjson([RECORDS[4]!]);
    appendFileSync(store, fourth.slice(0, 10));
    appendFileSync(store, fourth.slice(10));
    await log.waitLines(4);
    const end = await log.stop("SIGINT");
    expect(end.exitCode).toBe(0);
    expect(end.stdout).toBe(pick(0, 1, 2, 4));
    expect(end.stderr).toBe("");
  });

  test("-f -n 1 starts with the last one; a file truncated in place is read again from its start", async () => {
    using dir = tempDir();
    const store = join(dir.path, "m");
    writeFileSync(store, ndjson(RECORDS.slice(0, 3)));
    await using log = await startPostbox(dir.path, ["log", "-f", "-n", "1", "m"], { ready: false, raw: true });
    await log.waitLines(1);
    writeFileSync(store, ndjson(RECORDS.slice(3, 4))); // truncate and write, as copytruncate does
    await log.waitLines(2);
    const end = await log.stop("SIGTERM");
    expect(end.exitCode).toBe(0);
    expect(end.stdout).toBe(pick(2, 3));
    expect(end.stderr).toBe("postbox: warning: m shrank (truncated in place?): reading it again from the start\n");
  });

  test("300 lines, each written in two pieces and awaited: every one is printed (no wake-up lost)", async () => {
    using dir = tempDir();
    const store = join(dir.path, "m");
    writeFileSync(store, "");
    await using log = await startPostbox(dir.path, ["log", "-f", "m"], { ready: false, raw: true });
    for (let i = 1; i <= 300; i++) {
      const line = ndjson([{ ...RECORDS[0]!, msg: `n${i}` }]);
      const cut = 1 + ((i * 7919) % (line.length - 2));
      appendFileSync(store, line.slice(0, cut));
      if (i % 2) await Bun.sleep(0);
      appendFileSync(store, line.slice(cut));
      await log.waitLines(i, 5_000);
    }
    const end = await log.stop("SIGINT");
    expect(end.exitCode).toBe(0);
    expect(end.stdout).toBe(Array.from({ length: 300 }, (_, i) => `fifo: n${i + 1}\n`).join(""));
  }, 60_000);

  test("across two rotations (mv + SIGHUP) while postbox stores at full speed: every line once, in order", async () => {
    using dir = tempDir();
    const n = 100_000;
    await using pb = await startPostbox(dir.path, ["--store", "mail.ndjson", "--no-fifo", "--no-mq", "--no-signals", "--json"]);
    await using log = await startPostbox(dir.path, ["log", "-f", "-n", "all", "mail.ndjson"], { ready: false, raw: true });
    const sender = Bun.spawn(["bash", "-c", `seq 1 ${n} | "${BIN}" send --socket socket`], { cwd: dir.path, stdout: "ignore", stderr: "inherit" });
    let flooding = 0;
    for (const [at, name] of [[1, "mail.1"], [n / 4, "mail.2"]] as const) {
      await until(() => log.lines().length >= at, `${at} lines followed`, 30_000);
      if (sender.exitCode === null) flooding++;
      renameSync(join(dir.path, "mail.ndjson"), join(dir.path, name));
      pb.proc.kill("SIGHUP");
      await until(() => pb.stderr.text.split("reopened the store").length > (name === "mail.1" ? 1 : 2), "the store reopened");
    }
    expect(await sender.exited).toBe(0);
    await log.waitLines(n, 60_000);
    const end = await log.stop("SIGINT");
    expect(end.exitCode).toBe(0);
    expect(end.stderr).toBe("");
    const got = end.stdout.split("\n").slice(0, -1);
    expect(got.length).toBe(n);
    const want = Array.from({ length: n }, (_, i) => `${i + 1}`);
    expect(got.map((l) => l.slice(l.indexOf(": ") + 2))).toEqual(want);
    for (const f of ["mail.1", "mail.2", "mail.ndjson"]) expect(readFileSync(join(dir.path, f), "utf8").length).toBeGreaterThan(0);
    console.log(`log: rotations while the sender was still posting: ${flooding}/2`);
  }, 90_000);
});

describe("postbox log: a large store", () => {
  test("256 MiB: -n 10 reads from the end (little read), a full read stays in bounded memory", async () => {
    using dir = tempDir();
    const big = join(dir.path, "big.ndjson");
    // 1 MiB of records written 256 times (fast), then 20 distinct ones at the end
    const line = (i: number) => JSON.stringify({ ts: RECORDS[1]!.ts, channel: "socket", msg: `bulk ${i} ${"x".repeat(60)}`, pid: 1, uid: 0, gid: 0, comm: "nc", via: "socket" }) + "\n";
    let block = "";
    for (let i = 0; block.length < 1 << 20; i++) block += line(i);
    const blockBytes = Buffer.from(block);
    const fd = openSync(big, "w");
    for (let i = 0; i < 256; i++) writeSync(fd, blockBytes);
    const tail = Array.from({ length: 20 }, (_, i) => ({ ...RECORDS[2]!, msg: `final ${i}` }));
    writeSync(fd, ndjson(tail));
    closeSync(fd);

    const r = await sh(dir.path, `a=$(grep rchar /proc/$$/io | cut -d' ' -f2); "${BIN}" log -n 10 big.ndjson; b=$(grep rchar /proc/$$/io | cut -d' ' -f2); echo "read $((b - a))" >&2`);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(tail.slice(10).map((t) => `socket[pid=200,uid=65534,gid=65534]: ${t.msg}\n`).join(""));
    const read = Number(/read (\d+)/.exec(r.stderr)![1]);
    console.log(`log: -n 10 of 256 MiB read ${read} bytes (binary included)`);
    expect(read).toBeLessThan(16 << 20); // the whole file is 256 MiB

    // --since stops reading backwards at the first older record
    const since = await sh(dir.path, `a=$(grep rchar /proc/$$/io | cut -d' ' -f2); "${BIN}" log --since 1h big.ndjson; b=$(grep rchar /proc/$$/io | cut -d' ' -f2); echo "read $((b - a))" >&2`);
    expect(since.stdout).toBe(tail.map((t) => `socket[pid=200,uid=65534,gid=65534]: ${t.msg}\n`).join(""));
    expect(Number(/read (\d+)/.exec(since.stderr)![1])).toBeLessThan(16 << 20);

    // the whole file (a huge -n: counted backwards, then read forwards): peak memory does not grow with it
    const p = Bun.spawn([BIN, "log", "-n", "100000000", "--grep", "^final", "big.ndjson"], { cwd: dir.path, stdout: "pipe", stderr: "pipe" });
    let peak = 0;
    const watchRss = (async () => {
      while (p.exitCode === null) {
        const m = /VmHWM:\s+(\d+)/.exec(await Bun.file(`/proc/${p.pid}/status`).text().catch(() => ""));
        if (m) peak = Math.max(peak, Number(m[1]));
        await Bun.sleep(20);
      }
    })();
    const [out, exitCode] = await Promise.all([new Response(p.stdout).text(), p.exited]);
    await watchRss;
    expect(exitCode).toBe(0);
    expect(out.split("\n")).toHaveLength(21);
    console.log(`log: full read of 256 MiB, peak RSS ${peak} KiB`);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(200 * 1024);
  }, 120_000);
});
