// npm run bench: the compiled ./postbox under load from separate processes
// (bench/load.c, built here with the system C compiler so that the generator is
// never the bottleneck), next to socat and nc as plain byte pipes where present,
// and the datagram channel next to a C recvmsg loop (bench/dgram-recv.c).
// Prints markdown tables: throughput, latency, output targets, start-up and RSS.
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { mqRemove } from "../test/helpers/mq.ts";
import { rtSignalRange } from "../src/ffi/libc.ts";
import { Collector, freePort } from "../test/helpers/rsyslog.ts";

const ROOT = resolve(import.meta.dir, "..");
const BIN = join(ROOT, "postbox");
const WORK = mkdtempSync(join(tmpdir(), "postbox-bench-"));
const LOAD = join(WORK, "load");
const DGRAM_RECV = join(WORK, "dgram-recv");
const RTMIN = rtSignalRange().min;

function fail(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(1);
}

if (!existsSync(BIN)) fail("./postbox is missing: run 'npm run build' first");
const compiler = ["cc", "gcc", "clang"].find((c) => Bun.which(c));
if (!compiler) fail("needs a C compiler (cc, gcc or clang) for the load generator");
const built = Bun.spawnSync([compiler, "-O2", "-o", LOAD, join(import.meta.dir, "load.c"), "-lrt"], { stderr: "inherit" });
if (built.exitCode !== 0) fail("cannot build bench/load.c");
const builtRecv = Bun.spawnSync([compiler, "-O2", "-o", DGRAM_RECV, join(import.meta.dir, "dgram-recv.c")], { stderr: "inherit" });
if (builtRecv.exitCode !== 0) fail("cannot build bench/dgram-recv.c");

const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;
const sleep = (ms: number) => Bun.sleep(ms);

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

function status(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Open files allowed to postbox and the load generator: 1,000 streams, 10,000 idle clients. */
const FILES = 16_384;
/** argv run with the soft open-file limit raised to FILES (or as far as the hard limit allows); never lowered. */
const withFiles = (argv: string[]) => [
  "sh",
  "-c",
  `n=$(ulimit -n); [ "$n" = unlimited ] || [ "$n" -ge ${FILES} ] || ulimit -n ${FILES} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`,
  "sh",
  ...argv,
];

async function runLoad(args: (string | number)[]): Promise<void> {
  const p = Bun.spawn(withFiles([LOAD, ...args.map(String)]), { stdout: "ignore", stderr: "pipe" });
  if ((await p.exited) !== 0) throw new Error(`load ${args.join(" ")}: ${await new Response(p.stderr).text()}`);
}

/** Counts lines on a stream and calls back on each chunk (lines of text for latency). */
function consume(stream: ReadableStream<Uint8Array>, onText?: (text: string) => void) {
  const state = { lines: 0, bytes: 0 };
  const dec = new TextDecoder();
  const done = (async () => {
    for await (const chunk of stream) {
      state.bytes += chunk.byteLength;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) state.lines++;
      onText?.(dec.decode(chunk, { stream: true }));
    }
  })();
  return { state, done };
}

type Out = "pipe" | "file" | "/dev/null";
interface Server {
  pid: number;
  dir: string;
  mq: string;
  lines: () => number;
  peakKiB: () => number;
  stop: () => Promise<void>;
}

let seq = 0;
/** Everything started, so that a failing run leaves no server behind. */
const running = new Set<{ kill(sig?: number | NodeJS.Signals): void }>();
/** Every queue named, so that a failing run leaves none behind either (they outlive their reader). */
const queues = new Set<string>();
/** A queue name of this run, removed at the end whatever happens. */
function queueName(tag: string | number): string {
  const mq = `/pbbench_${process.pid}_${tag}`;
  queues.add(mq);
  return mq;
}
async function startPostbox(args: string[], out: Out = "pipe", onText?: (t: string) => void): Promise<Server> {
  const dir = mkdtempSync(join(WORK, "pb-"));
  const mq = queueName(++seq);
  const stdout = out === "pipe" ? "pipe" : out === "file" ? Bun.file(join(dir, "out.txt")) : "ignore";
  const queue = args.includes("--no-mq") ? [] : ["--mq", mq];
  const p = Bun.spawn(withFiles([BIN, "--quiet", ...queue, "--signals", "USR1,RTMIN", "--pidfile", "pid", ...args]), { cwd: dir, stdout, stderr: "inherit" });
  running.add(p);
  const counter = out === "pipe" ? consume(p.stdout as ReadableStream<Uint8Array>, onText) : null;
  await until(() => existsSync(join(dir, "pid")), "postbox to be ready");
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, status(p.pid, "VmHWM"))), 10);
  return {
    pid: p.pid,
    dir,
    mq,
    lines: () => counter?.state.lines ?? 0,
    peakKiB: () => Math.max(peak, status(p.pid, "VmHWM")),
    stop: async () => {
      clearInterval(sampler);
      p.kill("SIGTERM");
      await p.exited;
      await counter?.done;
      mqRemove(mq);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** socat or nc as a byte pipe from a listening unix socket (or the C datagram receiver) to a counted stdout. */
async function startPipe(cmd: (sock: string) => string[], name = "socket"): Promise<Server> {
  const dir = mkdtempSync(join(WORK, "pipe-"));
  const sock = join(dir, name);
  const p = Bun.spawn(cmd(sock), { cwd: dir, stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  running.add(p);
  const counter = consume(p.stdout as ReadableStream<Uint8Array>);
  await until(() => existsSync(sock), `${cmd(sock)[0]} to listen`);
  return {
    pid: p.pid,
    dir,
    mq: "",
    lines: () => counter.state.lines,
    peakKiB: () => status(p.pid, "VmHWM"),
    stop: async () => {
      p.kill("SIGKILL");
      await p.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const SCENARIOS = {
  stream: { n: 1_000_000, bytes: 32, load: (s: Server) => runLoad(["stream", join(s.dir, "socket"), 1_000_000, 32]) },
  oneshot: { n: 20_000, bytes: 10, load: (s: Server) => runLoad(["oneshot", join(s.dir, "socket"), 20_000, 4]) },
  fifo: { n: 1_000_000, bytes: 32, load: (s: Server) => runLoad(["fifo", join(s.dir, "fifo"), 1_000_000, 32]) },
  mq: { n: 100_000, bytes: 32, load: (s: Server) => runLoad(["mq", s.mq, 100_000, 32]) },
  rtsig: { n: 10_000, bytes: 4, load: (s: Server) => runLoad(["sig", s.pid, 10_000, RTMIN]) },
  dgram: { n: 100_000, bytes: 32, load: (s: Server) => runLoad(["dgram", join(s.dir, "dgram"), 100_000, 32]) },
  // that many connections streaming at once, 1,000,000 lines in all
  streams10: { n: 1_000_000, bytes: 32, load: (s: Server) => runLoad(["streams", join(s.dir, "socket"), 1_000_000, 10, 32]) },
  streams100: { n: 1_000_000, bytes: 32, load: (s: Server) => runLoad(["streams", join(s.dir, "socket"), 1_000_000, 100, 32]) },
  streams1000: { n: 1_000_000, bytes: 32, load: (s: Server) => runLoad(["streams", join(s.dir, "socket"), 1_000_000, 1000, 32]) },
} as const;
type Scenario = keyof typeof SCENARIOS;

interface Row {
  scenario: string;
  server: string;
  n: number;
  secs: number;
  mb: number;
  peakKiB: number;
}

async function measure(scenario: Scenario, server: string, s: Server): Promise<Row> {
  const sc = SCENARIOS[scenario];
  const base = s.lines();
  const t0 = performance.now();
  await sc.load(s);
  await until(() => s.lines() - base >= sc.n, `${sc.n} lines from ${server}`, 120_000);
  const secs = (performance.now() - t0) / 1000;
  const row = { scenario, server, n: sc.n, secs, mb: (sc.n * sc.bytes) / 1e6, peakKiB: s.peakKiB() };
  await s.stop();
  return row;
}

function fmt(rows: Row[]): string {
  const head = "| scenario | server | messages | time | messages/s | MB/s | peak RSS |\n|---|---|---:|---:|---:|---:|---:|";
  return [
    head,
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.server} | ${r.n.toLocaleString("en")} | ${r.secs.toFixed(3)} s | ${Math.round(r.n / r.secs).toLocaleString("en")} | ${(r.mb / r.secs).toFixed(1)} | ${r.peakKiB > 0 ? `${(r.peakKiB / 1024).toFixed(1)} MiB` : "—"} |`,
    ),
  ].join("\n");
}

async function latency(kind: "stream" | "fifo" | "mq" | "sig"): Promise<number[]> {
  const samples: number[] = [];
  let rest = "";
  const s = await startPostbox(["--linger", "0"], "pipe", (text) => {
    rest += text;
    const now = nowUs();
    let nl: number;
    while ((nl = rest.indexOf("\n")) !== -1) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      const v = Number(line.slice(line.lastIndexOf(" ") + 1));
      samples.push(kind === "sig" ? (((Math.floor(now) & 0x7fffffff) - v + 2 ** 31) % 2 ** 31) : now - v);
    }
  });
  const target = kind === "stream" ? join(s.dir, "socket") : kind === "fifo" ? join(s.dir, "fifo") : kind === "mq" ? s.mq : String(s.pid);
  await runLoad([`lat-${kind}`, target, 2000, 200, ...(kind === "sig" ? [RTMIN] : [])]);
  await until(() => samples.length >= 2000, `2000 ${kind} latency samples`);
  await s.stop();
  return samples.sort((a, b) => a - b);
}

/** utime + stime of a process's main thread, in seconds (the forwarder's thread is not in it). */
function mainThreadCpu(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Lines in a file that grows, counted as it grows. */
function lineCounter(path: string) {
  let pos = 0;
  let lines = 0;
  const buf = Buffer.alloc(1 << 20);
  return () => {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch {
      return lines;
    }
    for (let n; (n = readSync(fd, buf, 0, buf.byteLength, pos)) > 0; pos += n)
      for (let i = buf.indexOf(10); i !== -1 && i < n; i = buf.indexOf(10, i + 1)) lines++;
    closeSync(fd);
    return lines;
  };
}

/**
 * 1,000,000 stream lines with --store, then with --store --forward to a local
 * rsyslogd, three rounds alternating (the machine is noisy): the local time of
 * each, and until every message reached the collector. Medians.
 */
async function forwarding(): Promise<void> {
  const n = 1_000_000;
  const times = { local: [] as number[], forwarding: [] as number[], collector: [] as number[], rssLocal: 0, rssForward: 0 };
  const cpu = { local: [] as number[], forwarding: [] as number[] };
  for (let round = 0; round < 3; round++) {
    for (const forward of [false, true]) {
      const dir = mkdtempSync(join(WORK, "fwd-"));
      const c = new Collector(dir, await freePort(), undefined, true);
      running.add({ kill: () => void c.kill9() });
      await c.start();
      const s = await startPostbox(["--store", join(dir, "mail"), ...(forward ? ["--forward", `syslog+tcp://127.0.0.1:${c.port}`] : [])]);
      const received = lineCounter(c.raw);
      const c0 = mainThreadCpu(s.pid);
      const t0 = performance.now();
      await runLoad(["stream", join(s.dir, "socket"), n, 32]);
      await until(() => s.lines() >= n, `${n} lines on stdout`, 120_000);
      (forward ? times.forwarding : times.local).push((performance.now() - t0) / 1000);
      (forward ? cpu.forwarding : cpu.local).push(mainThreadCpu(s.pid) - c0);
      if (forward) {
        await until(() => received() >= n, `${n} messages at rsyslogd`, 300_000);
        times.collector.push((performance.now() - t0) / 1000);
      }
      if (forward) times.rssForward = Math.max(times.rssForward, s.peakKiB());
      else times.rssLocal = Math.max(times.rssLocal, s.peakKiB());
      await s.stop();
      await c.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const row = (server: string, xs: number[], rss: number): Row => ({ scenario: "stream", server, n, secs: median(xs), mb: (n * 32) / 1e6, peakKiB: rss });
  console.log("\n## Forwarding to a local rsyslogd (syslog+tcp, imtcp → omfile; medians of 3 alternating rounds)\n");
  console.log(fmt([row("postbox --store: stdout", times.local, times.rssLocal), row("postbox --store --forward: stdout", times.forwarding, times.rssForward), row("postbox --forward: all at rsyslogd", times.collector, times.rssForward)]));
  const ratios = times.forwarding.map((t, i) => (t / times.local[i]!).toFixed(2)).join(", ");
  console.log(`\nlocal path while forwarding: x${(median(times.forwarding) / median(times.local)).toFixed(2)} the time of --store alone (target ≤ 1.3; per round x${ratios})`);
  console.log(`CPU of postbox's main thread for the 1,000,000 lines (median): ${median(cpu.local).toFixed(2)} s with --store, ${median(cpu.forwarding).toFixed(2)} s with --store --forward`);
}

/** Descriptors open in a process. */
function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/**
 * RSS with n silent clients connected (and served: --max-connections n), minus
 * the RSS before they came: what postbox keeps per connection.
 */
async function idleConnections(n: number): Promise<{ beforeKiB: number; withKiB: number; served: boolean }> {
  const s = await startPostbox(["--max-connections", String(n), "--idle-timeout", "0"]);
  await sleep(500);
  const beforeKiB = status(s.pid, "VmRSS");
  const fds = fdCount(s.pid);
  const p = Bun.spawn(withFiles([LOAD, "idle", join(s.dir, "socket"), String(n)]), { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  running.add(p);
  const reader = (p.stdout as ReadableStream<Uint8Array>).getReader();
  const { value } = await reader.read();
  if (!value || !new TextDecoder().decode(value).includes("ready"))
    throw new Error(`load idle did not connect its ${n} clients (its stderr above says why): it and postbox need more than ${n} open files each, and the hard limit (ulimit -Hn) caps what they can raise theirs to`);
  let served = true;
  await until(() => fdCount(s.pid) >= fds + n, `postbox to accept ${n} clients`, 60_000).catch(() => (served = false));
  await sleep(1000); // let what the connections allocated settle
  const withKiB = status(s.pid, "VmRSS");
  p.stdin.end();
  await p.exited;
  await s.stop();
  return { beforeKiB, withKiB, served };
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function startup(): Promise<{ medianMs: number; idleKiB: number }> {
  const times: number[] = [];
  let idle = 0;
  for (let i = 0; i < 10; i++) {
    const dir = mkdtempSync(join(WORK, "start-"));
    const mq = queueName(`start${i}`);
    const t0 = performance.now();
    const p = Bun.spawn([BIN, "--mq", mq], { cwd: dir, stdout: "ignore", stderr: "pipe" });
    let text = "";
    const dec = new TextDecoder();
    const reader = (p.stderr as ReadableStream<Uint8Array>).getReader();
    while (!text.includes("... by signal")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`postbox did not start: ${text}`);
      text += dec.decode(value);
    }
    times.push(performance.now() - t0);
    if (i === 9) {
      await sleep(500);
      idle = status(p.pid, "VmRSS");
    }
    p.kill("SIGTERM");
    await p.exited;
    mqRemove(mq);
    rmSync(dir, { recursive: true, force: true });
  }
  times.sort((a, b) => a - b);
  return { medianMs: (times[4]! + times[5]!) / 2, idleKiB: idle };
}

/** Spawn → exit of one ./postbox run, stdout to /dev/null; with its peak RSS (sampled). */
async function timed(args: string[], cwd: string): Promise<{ secs: number; peakKiB: number }> {
  const t0 = performance.now();
  const p = Bun.spawn([BIN, ...args], { cwd, stdout: "ignore", stderr: "inherit" });
  running.add(p);
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, status(p.pid, "VmHWM"))), 10);
  if ((await p.exited) !== 0) throw new Error(`postbox ${args.join(" ")} failed`);
  clearInterval(sampler);
  running.delete(p);
  return { secs: (performance.now() - t0) / 1000, peakKiB: peak };
}

/** postbox log on a 1 GiB store (made by writing a 1 MiB block of records 1,024 times). */
async function logBench(): Promise<void> {
  const dir = mkdtempSync(join(WORK, "log-"));
  const rec = (i: number) =>
    JSON.stringify({ ts: new Date().toISOString(), channel: "socket", msg: `message ${i} ${"x".repeat(40)}`, pid: 4242, uid: 1000, gid: 1000, comm: "nc", via: "socket" }) + "\n";
  let block = "";
  for (let i = 0; block.length < 1 << 20; i++) block += rec(i);
  const bytes = Buffer.from(block);
  const lines = block.split("\n").length - 1;
  const { openSync, writeSync, closeSync } = await import("node:fs");
  const write = (name: string, blocks: number) => {
    const fd = openSync(join(dir, name), "w");
    for (let i = 0; i < blocks; i++) writeSync(fd, bytes);
    closeSync(fd);
  };
  write("1g.ndjson", 1024);
  write("128m.ndjson", 128);
  const rows: string[] = [];
  const median = async (args: string[]) => {
    const runs = [];
    for (let i = 0; i < 5; i++) runs.push(await timed(args, dir));
    runs.sort((a, b) => a.secs - b.secs);
    return runs[2]!;
  };
  for (const args of [["-n", "10"], ["--json", "-n", "10"], ["-n", "10", "--grep", "message 7"], ["-n", "10", "--reverse"]]) {
    const r = await median(["log", ...args, "1g.ndjson"]);
    rows.push(`| \`log ${args.join(" ")}\` | 1 GiB | ${(r.secs * 1000).toFixed(0)} ms (median of 5) | — | ${(r.peakKiB / 1024).toFixed(1)} MiB |`);
  }
  for (const [args, file, mib, n] of [
    [["--channel", "fifo"], "1g.ndjson", 1024, lines * 1024],
    [[], "128m.ndjson", 128, lines * 128],
    [["--json"], "128m.ndjson", 128, lines * 128],
  ] as const) {
    const r = await timed(["log", ...args, file], dir);
    const what = args.length === 0 ? "text" : args[0] === "--json" ? "JSON" : "nothing matches";
    rows.push(`| \`log ${args.join(" ")}\` (${what}) | ${mib >= 1024 ? "1 GiB" : `${mib} MiB`} | ${r.secs.toFixed(2)} s | ${(mib / r.secs).toFixed(0)} MiB/s, ${Math.round(n / r.secs).toLocaleString("en")} lines/s | ${(r.peakKiB / 1024).toFixed(1)} MiB |`);
  }
  // -f idle: CPU ticks of a follower over 5 s while nothing is written
  const f = Bun.spawn([BIN, "log", "-f", "128m.ndjson"], { cwd: dir, stdout: "ignore", stderr: "inherit" });
  running.add(f);
  await sleep(1000);
  const ticks = () => {
    const st = readFileSync(`/proc/${f.pid}/stat`, "utf8");
    const fields = st.slice(st.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  };
  const before = ticks();
  await sleep(5000);
  const idleTicks = ticks() - before;
  f.kill("SIGINT");
  await f.exited;
  running.delete(f);
  rmSync(dir, { recursive: true, force: true });
  console.log("\n## postbox log (a store of " + lines.toLocaleString("en") + " records per MiB; stdout to /dev/null; wall time spawn → exit)\n");
  console.log("| command | store | time | rate | peak RSS |\n|---|---|---:|---:|---:|");
  console.log(rows.join("\n"));
  console.log(`\n\`log -f\` idle: ${idleTicks} clock ticks (1/100 s) of CPU in 5 s`);
}

async function main(): Promise<void> {
  const which = process.argv.slice(2) as (Scenario | "forward" | "idle")[];
  const scenarios = which.length > 0 ? (which.filter((w) => w in SCENARIOS) as Scenario[]) : (Object.keys(SCENARIOS) as Scenario[]);
  const bun = Bun.spawnSync([BIN, "--version"]).stdout.toString().trim();
  console.log(`# postbox ${bun} benchmark — ${new Date().toISOString().slice(0, 10)}`);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, Linux ${readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()}, Bun ${Bun.version}\n`);

  if (which.join() === "forward") return forwarding(); // bun bench/bench.ts forward: that table alone
  if ((which as string[]).join() === "log") return logBench(); // bun bench/bench.ts log: that table alone
  if (which.join() === "idle") return printIdle(); // bun bench/bench.ts idle: that line alone
  const rows: Row[] = [];
  for (const sc of scenarios) {
    rows.push(await measure(sc, "postbox", await startPostbox(sc === "dgram" ? ["--no-fifo", "--no-socket", "--no-mq", "--dgram", "dgram"] : [])));
    if (sc === "dgram") rows.push(await measure(sc, "C recvmsg loop", await startPipe((p) => [DGRAM_RECV, p], "dgram")));
    if (sc === "stream") {
      // the structured outputs, against the text stream of the same build
      rows.push(await measure(sc, "postbox --json", await startPostbox(["--json"])));
      rows.push(await measure(sc, "postbox --store", await startPostbox(["--store", "mail"])));
    }
    if (sc === "stream" || sc === "oneshot") {
      if (Bun.which("socat")) rows.push(await measure(sc, "socat", await startPipe((p) => ["socat", "-u", `UNIX-LISTEN:${p}${sc === "oneshot" ? ",fork" : ""}`, "STDOUT"])));
      if (Bun.which("nc") && sc === "stream") rows.push(await measure(sc, "nc -lU", await startPipe((p) => ["nc", "-d", "-lU", p])));
    }
  }
  console.log("## Throughput (stdout to a pipe read by the bench)\n");
  console.log(fmt(rows));
  const time = (server: string) => rows.find((r) => r.scenario === "dgram" && r.server === server)?.secs;
  const [pb, c] = [time("postbox"), time("C recvmsg loop")];
  if (pb !== undefined && c !== undefined) console.log(`\ndgram: postbox / C recvmsg loop = x${(pb / c).toFixed(2)} (target <= 2.0)`);
  const text = rows.find((r) => r.scenario === "stream" && r.server === "postbox");
  if (text) {
    const vs = (server: string) => rows.find((r) => r.server === server);
    const ratio = (server: string) => `x${((vs(server)?.secs ?? NaN) / text.secs).toFixed(2)}`;
    console.log(`\nstream --json ${ratio("postbox --json")}, --store ${ratio("postbox --store")} the time of the text stream (target ≤ 1.6)`);
  }

  if (which.length > 0) return; // only the scenarios asked for
  console.log("\n## stream into other outputs (postbox --count, time until it exits)\n");
  const outs: Row[] = [];
  for (const out of ["pipe", "file", "/dev/null"] as Out[]) {
    const s = await startPostbox(["--count", "1000000"], out);
    const t0 = performance.now();
    await runLoad(["stream", join(s.dir, "socket"), 1_000_000, 32]);
    await until(() => !existsSync(join(s.dir, "pid")), "postbox to exit after --count", 120_000);
    outs.push({ scenario: "stream", server: `postbox > ${out}`, n: 1_000_000, secs: (performance.now() - t0) / 1000, mb: 32, peakKiB: s.peakKiB() });
    await s.stop();
  }
  console.log(fmt(outs));

  if (Bun.which("rsyslogd")) await forwarding();
  else console.log("\n(forwarding skipped: no rsyslogd)");

  console.log("\n## Latency (2,000 messages, one every 200 µs; sent → line read from postbox's stdout)\n");
  console.log("| channel | p50 | p99 | max |\n|---|---:|---:|---:|");
  for (const kind of ["stream", "fifo", "mq", "sig"] as const) {
    const xs = await latency(kind);
    console.log(`| ${kind === "sig" ? "rtsig" : kind === "stream" ? "socket" : kind} | ${pct(xs, 50).toFixed(0)} µs | ${pct(xs, 99).toFixed(0)} µs | ${xs[xs.length - 1]!.toFixed(0)} µs |`);
  }

  await printIdle();
  const st = await startup();
  console.log(`\n## Start-up and memory\n\nstart-up to ready (banner), median of 10: ${st.medianMs.toFixed(1)} ms; idle RSS: ${(st.idleKiB / 1024).toFixed(1)} MiB`);
  if (which.length === 0) await logBench();
}

async function printIdle(): Promise<void> {
  const n = 10_000;
  const r = await idleConnections(n);
  const grew = (r.withKiB - r.beforeKiB) / 1024;
  console.log(
    `\n## Idle connections\n\n${n.toLocaleString("en")} silent clients connected${r.served ? "" : " (NOT all accepted)"}: RSS ${(r.beforeKiB / 1024).toFixed(1)} → ${(r.withKiB / 1024).toFixed(1)} MiB, +${grew.toFixed(1)} MiB (${((r.withKiB - r.beforeKiB) / n).toFixed(2)} KiB each; target ≤ 40 MiB)`,
  );
}

try {
  await main();
} finally {
  for (const p of running) p.kill("SIGKILL");
  for (const mq of queues) mqRemove(mq);
  rmSync(WORK, { recursive: true, force: true });
}
