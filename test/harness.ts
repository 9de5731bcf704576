// Test harness: temp dirs, the compiled binary started directly (never through
// a wrapper), readiness by waiting for the banner, real clients, cleanup.
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { mqRemove } from "./helpers/mq.ts";

export const ROOT = resolve(import.meta.dir, "..");
/** The binary under test (POSTBOX_BIN runs the suite against another build, e.g. the old one). */
export const BIN = process.env.POSTBOX_BIN ?? join(ROOT, "postbox");

if (!existsSync(BIN)) {
  const b = Bun.spawnSync([process.execPath, "build.ts"], { cwd: ROOT, stderr: "inherit" });
  if (b.exitCode !== 0) throw new Error("cannot build ./postbox for the tests");
}

export function have(cmd: string): boolean {
  return Bun.which(cmd) !== null;
}

/** A fresh directory, removed when disposed. */
export function tempDir(prefix = "postbox-test-"): { path: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

let mqCounter = 0;
const mqNames = new Set<string>();
/**
 * Safety net: queues outlive processes and count against RLIMIT_MSGQUEUE, so even
 * a test that failed half-way must not leave one behind. Called by test/preload.ts
 * after the run (process.on("exit") never runs under bun test).
 */
export function removeTestQueues(): void {
  mqNames.forEach(mqRemove);
  mqNames.clear();
}

/** A message queue name no other test (or run) uses; removed at the latest when the test run ends. */
export function mqName(): string {
  const name = `/pbtest_${process.pid}_${++mqCounter}_${Math.random().toString(36).slice(2, 8)}`;
  mqNames.add(name);
  return name;
}

/** Poll `cond` until it is truthy or the deadline passes (then throw with `what`). */
export async function until<T>(cond: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** Collects a byte stream into text as it arrives. */
class Collector {
  text = "";
  done: Promise<void>;
  constructor(stream: ReadableStream<Uint8Array>) {
    const dec = new TextDecoder();
    this.done = (async () => {
      for await (const chunk of stream) this.text += dec.decode(chunk, { stream: true });
    })();
  }
}

export interface Running {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  pid: number;
  dir: string;
  stdout: Collector;
  stderr: Collector;
  /** Complete stdout lines so far. */
  lines(): string[];
  /** Wait until stdout has at least n lines; returns them. */
  waitLines(n: number, timeoutMs?: number): Promise<string[]>;
  waitStderr(re: RegExp, timeoutMs?: number): Promise<void>;
  /** Send a signal and wait for the exit; returns everything it printed. */
  stop(sig?: NodeJS.Signals): Promise<{ exitCode: number | null; stdout: string; stderr: string }>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface StartOptions {
  /** Wait for the banner (default true). */
  ready?: boolean;
  env?: Record<string, string>;
  /** Defaults keep every test on its own mq and off the default signals' way. */
  raw?: boolean;
  /** A command that execs postbox (its arguments follow), e.g. under a seccomp filter. */
  wrap?: string[];
  /** The binary to start (default ./postbox), e.g. the arm64 build under qemu through `wrap`. */
  bin?: string;
}

/** Start ./postbox in dir with args; by default with its own mq name and waiting for the banner. */
export async function startPostbox(dir: string, args: string[] = [], opts: StartOptions = {}): Promise<Running> {
  const own = opts.raw || args.some((a) => a === "--mq" || a === "--no-mq") ? null : mqName();
  const argv = own === null ? args : ["--mq", own, ...args];
  const proc = Bun.spawn([...(opts.wrap ?? []), opts.bin ?? BIN, ...argv], {
    cwd: dir,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...opts.env },
  });
  const stdout = new Collector(proc.stdout);
  const stderr = new Collector(proc.stderr);
  const r: Running = {
    proc,
    pid: proc.pid,
    dir,
    stdout,
    stderr,
    lines: () => stdout.text.split("\n").slice(0, -1),
    async waitLines(n, timeoutMs = 10_000) {
      await until(() => r.lines().length >= n || proc.exitCode !== null, `${n} lines on stdout`, timeoutMs);
      if (r.lines().length < n)
        throw new Error(`postbox exited (${proc.exitCode}) with ${r.lines().length}/${n} lines; stderr: ${stderr.text}`);
      return r.lines();
    },
    async waitStderr(re, timeoutMs = 10_000) {
      await until(() => re.test(stderr.text) || proc.exitCode !== null, `stderr ${re}`, timeoutMs);
      if (!re.test(stderr.text)) throw new Error(`postbox exited (${proc.exitCode}) without ${re}; stderr: ${stderr.text}`);
    },
    async stop(sig = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
      const exitCode = await proc.exited;
      await Promise.all([stdout.done, stderr.done]);
      return { exitCode, stdout: stdout.text, stderr: stderr.text };
    },
    async [Symbol.asyncDispose]() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await proc.exited;
      if (own !== null) mqRemove(own); // queues outlive processes and count against RLIMIT_MSGQUEUE
    },
  };
  if (opts.ready !== false) await r.waitStderr(/Santas Postbox is open![^]*\n$/);
  return r;
}

/** Run a shell command line (bash) in dir; resolves with its result. */
export async function sh(dir: string, script: string, timeoutMs = 10_000) {
  const p = Bun.spawn(["bash", "-c", script], { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, exitCode] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { stdout, stderr, exitCode };
}

/** Run ./postbox to completion (for usage errors and other short runs). */
export async function runPostbox(dir: string, args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawn([BIN, ...args], { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { ...process.env, ...env } });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, exitCode };
}

/** Resident set size of a process in KiB (VmRSS), or VmHWM with peak = true. */
export async function rssKiB(pid: number, peak = false): Promise<number> {
  const status = await Bun.file(`/proc/${pid}/status`).text();
  const m = new RegExp(`^${peak ? "VmHWM" : "VmRSS"}:\\s+(\\d+)`, "m").exec(status);
  return m ? Number(m[1]) : -1;
}

/** utime + stime of a process, in clock ticks. */
export async function cpuTicks(pid: number): Promise<number> {
  const stat = await Bun.file(`/proc/${pid}/stat`).text();
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** One line of measured figures for the reliability suite's log. */
export function report(name: string, figures: Record<string, number | string>): void {
  console.log(`reliability: ${name}: ${Object.entries(figures).map(([k, v]) => `${k}=${v}`).join(" ")}`);
}

/**
 * A Bun socket client that writes `chunks` in turn, then (unless end: false)
 * half-closes. `ended` resolves when the server half-closes, `closed` when the
 * connection is gone. A full listen backlog refuses a non-blocking connect
 * (EAGAIN): it tries again, as a blocking client would wait.
 */
export async function socketClient(path: string, chunks: (string | Uint8Array)[] = [], opts: { end?: boolean } = {}) {
  let closed!: () => void;
  let ended!: () => void;
  const done = new Promise<void>((r) => (closed = r));
  const serverEnded = new Promise<void>((r) => (ended = r));
  let finished = false;
  let peerDone = false;
  const connect = () =>
    Bun.connect({
      unix: path,
      allowHalfOpen: true, // the server's half-close (--linger) must not close our sending side
      socket: {
        data() {},
        close: () => closed(),
        end: (x) => {
          peerDone = true;
          ended();
          if (finished) x.end();
        },
      },
    });
  let s: Awaited<ReturnType<typeof connect>> | undefined;
  for (let tries = 0; !s; tries++) {
    try {
      s = await connect();
    } catch (err) {
      if (tries > 500) throw err;
      await Bun.sleep(2);
    }
  }
  const socket = s;
  const write = async (c: string | Uint8Array) => {
    let rest = typeof c === "string" ? Buffer.from(c) : c;
    while (rest.byteLength > 0) {
      const w = socket.write(rest);
      rest = rest.subarray(Math.max(w, 0));
      if (rest.byteLength > 0) await Bun.sleep(1);
    }
  };
  /** Half-close our side; the connection closes once the server has closed its side too. */
  const finish = () => {
    finished = true;
    socket.shutdown();
    if (peerDone) socket.end();
  };
  for (const c of chunks) await write(c);
  if (opts.end !== false) finish();
  return { socket, write, finish, closed: done, ended: serverEnded };
}
