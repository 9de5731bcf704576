import { describe, expect, test } from "bun:test";
import { parseArgs } from "citty";
import { checkFlags, flagValues, parseSend, parseServe, parseWait, serveArgs } from "../src/options.ts";
import { BIN, tempDir } from "./harness.ts";
import { UsageError } from "../src/errors.ts";
import { DEFAULTS } from "../src/types.ts";

describe("parseServe", () => {
  test("defaults", () => {
    const o = parseServe([]);
    expect(o).toMatchObject({ fifo: "fifo", socket: "socket", abstract: null, mq: "/postbox", mode: 0o600, json: false });
    expect(o).toMatchObject({ maxMessage: DEFAULTS.maxMessage, maxConnections: 1024, idleTimeout: 60, linger: 100 });
    expect(o.signals).toEqual([10, 12]);
  });

  test("--no-X turns channels off, values are taken", () => {
    const o = parseServe(["--no-fifo", "--socket", "s", "--abstract=@box", "--no-mq", "--signals", "RTMIN,RTMIN+2,RTMAX-1", "--mode", "666"]);
    expect(o).toMatchObject({ fifo: null, socket: "s", abstract: "box", mq: null, mode: 0o666 });
    expect(o.signals).toEqual([34, 36, 63]);
  });

  for (const bad of [
    ["--sockt", "x"],
    ["--fifo"],
    ["--json=1"],
    ["stray"],
    ["--mode", "999"],
    ["--max-message", "0"],
    ["--linger", "-1"],
    ["--signals", "HUP"],
    ["--signals", "RTMIN+99"],
    ["--mq", "noslash"],
    ["--no-fifo", "--no-socket", "--no-mq", "--no-signals"],
    ["-q", "-v"],
    ["--socket", "s".repeat(108)],
    ["--abstract", "a".repeat(108)],
  ]) {
    test(`usage error: ${bad.join(" ")}`, () => {
      expect(() => parseServe(bad)).toThrow(UsageError);
    });
  }
});

// Issue #12: values the kernel, the timers or memory cannot honour are usage
// errors naming the allowed range, not a late failure.
const long = (n: number) => "d/".repeat(Math.floor(n / 2)) + "f";
const outOfRange: { args: string[]; says: RegExp }[] = [
  { args: ["--timeout", "2147484"], says: /--timeout .*2147483/ },
  { args: ["--idle-timeout", "2147484"], says: /--idle-timeout .*2147483/ },
  { args: ["--linger", "2147483648"], says: /--linger .*2147483647/ },
  { args: ["--max-message", "4294967296"], says: /--max-message .*16777216/ },
  { args: ["--max-connections", "4294967296"], says: /--max-connections .*1048576/ },
  { args: ["--abstract", "@"], says: /--abstract .*name/ },
  { args: ["--fifo", "f".repeat(300)], says: /--fifo .*255/ },
  { args: ["--store", "s".repeat(256)], says: /--store .*255/ },
  { args: ["--pidfile", long(4100)], says: /--pidfile .*4095/ },
  { args: ["--count", "99999999999999999999"], says: /--count/ },
];

describe("issue #12: out-of-range values", () => {
  for (const { args, says } of outOfRange) {
    test(`serve ${args[0]} ${args[1]!.slice(0, 20)}: usage error naming the range`, () => {
      expect(() => parseServe(args)).toThrow(says);
      expect(() => parseServe(args)).toThrow(UsageError);
    });
  }
  test("the largest allowed values are taken", () => {
    const o = parseServe(["--timeout", "2147483", "--max-message", "16777216", "--linger", "2147483647", "--fifo", "f".repeat(255)]);
    expect(o).toMatchObject({ timeout: 2147483, maxMessage: 16777216, linger: 2147483647, fifo: "f".repeat(255) });
  });
  const sendBad: { args: string[]; says: RegExp }[] = [
    { args: ["--mq", "/q", "--prio", "32768", "x"], says: /--prio .*32767/ },
    { args: ["--abstract", "@", "x"], says: /--abstract .*name/ },
    { args: ["--fifo", "f".repeat(300), "x"], says: /--fifo .*255/ },
    { args: ["--signal", "USR1", "--pid", "4294967297", "x"], says: /--pid .*2147483647/ },
  ];
  for (const { args, says } of sendBad) {
    test(`send ${args.slice(0, 4).join(" ").slice(0, 40)}: usage error`, () => {
      expect(() => parseSend(args)).toThrow(says);
    });
  }
  test("send --prio 32767 is the highest priority taken", () => {
    expect(parseSend(["--mq", "/q", "--prio", "32767", "x"]).target).toMatchObject({ prio: 32767 });
  });
  for (const { args, says } of [
    { args: ["--timeout", "2147484"], says: /--timeout .*2147483/ },
    { args: ["--abstract", "@"], says: /--abstract .*name/ },
    { args: ["--fifo", long(4100)], says: /--fifo .*4095/ },
  ]) {
    test(`wait ${args[0]} ${args[1]!.slice(0, 20)}: usage error`, () => {
      expect(() => parseWait(args)).toThrow(says);
    });
  }

  // Black box: the binary says it in one line and exits 2, before opening anything.
  const runs = [
    ...outOfRange.map((c) => ({ cmd: [] as string[], ...c })),
    { cmd: ["send"], args: ["--mq", "/q", "--prio", "32768", "x"], says: /--prio/ },
    { cmd: ["send"], args: ["--fifo", "f".repeat(300), "x"], says: /--fifo/ },
    { cmd: ["wait"], args: ["--timeout", "2147484"], says: /--timeout/ },
  ];
  for (const { cmd, args, says } of runs) {
    test(`./postbox ${[...cmd, ...args].join(" ").slice(0, 40)}: exit 2, one line`, async () => {
      using dir = tempDir();
      const extra = cmd.length === 0 ? ["--no-mq", "--no-signals"] : [];
      // old builds served on with some of these: stop them, the run then fails on its exit code
      const p = Bun.spawn([BIN, ...cmd, ...args, ...extra], { cwd: dir.path, stdout: "pipe", stderr: "pipe", timeout: 5000 });
      const [stderr, exitCode] = await Promise.all([new Response(p.stderr).text(), p.exited]);
      const r = { stderr, exitCode };
      expect(r.exitCode).toBe(2);
      const lines = r.stderr.trim().split("\n");
      expect(lines[0]).toMatch(says);
      expect(lines.length).toBeLessThanOrEqual(2); // the reason, then "Try 'postbox --help'"
      expect(r.stderr).not.toMatch(/Warning|    at /);
    });
  }
});

describe("datagram options", () => {
  test("--dgram is repeatable (duplicates once), @name is abstract; --syslog needs a --dgram", () => {
    const o = parseServe(["--no-fifo", "--dgram", "a", "--dgram=@b", "--dgram", "a", "--syslog"]);
    expect(o).toMatchObject({ dgram: ["a", "@b"], syslog: true });
    expect(parseServe([]).dgram).toEqual([]);
    expect(() => parseServe(["--syslog"])).toThrow(UsageError);
    expect(() => parseServe(["--dgram", ""])).toThrow(UsageError);
    expect(() => parseServe(["--dgram", "@"])).toThrow(UsageError);
    expect(() => parseServe(["--dgram", "d".repeat(108)])).toThrow(UsageError);
  });

  test("only --dgram is enough to serve", () => {
    expect(parseServe(["--no-fifo", "--no-socket", "--no-mq", "--no-signals", "--dgram", "d"]).dgram).toEqual(["d"]);
  });
});

// Issue #18: serve reads its checked argv with flagValues instead of citty's
// parser (which keeps node:util's parseArgs resident). Same values, argv for argv.
describe("serve's flag values are citty's", () => {
  const argvs: string[][] = [
    [],
    ["--fifo", "f", "--socket=s", "--mq", "/q", "--json"],
    ["--no-fifo", "--fifo", "f"],
    ["--fifo", "f", "--no-fifo"],
    ["--socket", "a", "--socket", "b"],
    ["-q", "--mode", "0666", "--signals", "USR1,RTMIN+1"],
    ["-v", "--verbose"],
    ["--fifo", "--json"],
    ["--fifo", "-q"],
    ["--fifo="],
    ["--fifo=a=b", "--store", "s", "--forward", "syslog+tcp://h:1"],
    ["--max-message", "10", "--max-connections=5", "--idle-timeout", "0", "--linger", "7"],
    ["--no-mq", "--no-signals", "--no-socket", "--timestamps", "--count", "3", "--match", "^x$"],
    ["--dgram", "a", "--dgram=@b", "--syslog"],
    ["--allow-uid", "0,1", "--allow-gid=2", "--rate", "5/s", "--pidfile", "p", "--timeout", "1.5"],
  ];
  for (const argv of argvs) {
    test(JSON.stringify(argv), () => {
      checkFlags(argv, serveArgs);
      const ours = flagValues(argv, serveArgs);
      const citty = parseArgs(argv, serveArgs);
      for (const name of [...Object.keys(serveArgs), "q", "v"]) expect([name, ours[name]]).toEqual([name, citty[name]]);
    });
  }
});

// Issue #18: a default serve runs no regular expression (the first one brings in
// the regular-expression compiler for good); the loops that replaced them say
// what the patterns said.
describe("start-up checks without regular expressions", () => {
  const mode = (m: string) => () => parseServe(["--mode", m]);
  for (const m of ["600", "0600", "0060", "777", "000"]) test(`--mode ${m} is taken`, () => expect(mode(m)).not.toThrow());
  for (const m of ["", "60", "6666", "00600", "0800", "06a0", "+600", "0x60"])
    test(`--mode ${JSON.stringify(m)} is refused, as /^0?[0-7]{3}$/ refuses it`, () => {
      expect(/^0?[0-7]{3}$/.test(m)).toBe(false);
      expect(mode(m)).toThrow(UsageError);
    });
  for (const [q, ok] of [["/a", true], ["/a.b-c", true], ["/", false], ["a", false], ["/a/b", false], ["//a", false], ["/a/", false]] as const)
    test(`--mq ${q}: ${ok ? "taken" : "refused"}, as /^\\/[^/]+$/ says`, () => {
      expect(/^\/[^/]+$/.test(q)).toBe(ok);
      if (ok) expect(parseServe(["--mq", q]).mq).toBe(q);
      else expect(() => parseServe(["--mq", q])).toThrow(UsageError);
    });
  test("-5 is an operand, -qv two flags, -q1 an unknown option", () => {
    expect(checkFlags(["-5"], { n: { type: "positional" } }, new Set())).toEqual(["-5"]);
    expect(parseServe(["-qq"]).verbosity).toBe("quiet");
    expect(() => parseServe(["-q1"])).toThrow(UsageError);
  });
});
