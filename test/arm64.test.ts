// The linux-arm64 build, run under qemu-user (qemu-aarch64-static with the
// libc6-arm64-cross sysroot): the trap's aarch64 half (raw syscall numbers, the
// kernel's struct sigaction, uc_sigmask at offset 40) really runs here.
// qemu-user quirks (PLATFORM-NOTES), so these tests do not chase ghosts:
// - it shifts real-time signals by 2: the guest's SIGRTMIN (34) is the host's
//   signal 36 (host SIGRTMIN+2); host SIGRTMIN arrives as guest 32 and kills.
// - mq_notify is ENOSYS: the arm64 postbox still serves its queue (readiness is
//   ppoll on the queue descriptor) and warns that a second reader cannot be told;
//   the arm64 binary's send --mq goes into an x86_64 postbox.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync } from "node:fs";
import { join } from "node:path";
import { mqRemove } from "./helpers/mq.ts";
import { mqName, ROOT, runPostbox, sh, startPostbox, tempDir, until } from "./harness.ts";

const QEMU = Bun.which("qemu-aarch64-static");
const SYSROOT = "/usr/aarch64-linux-gnu";
const skipWhy =
  QEMU === null
    ? "qemu-aarch64-static is not installed (apt-get install qemu-user-static)"
    : !existsSync(join(SYSROOT, "lib", "ld-linux-aarch64.so.1"))
      ? `no aarch64 sysroot at ${SYSROOT} (apt-get install libc6-arm64-cross)`
      : null;
if (skipWhy) console.log(`arm64: skipped: ${skipWhy}`);

const uid = process.getuid!();
const gid = process.getgid!();
const wrap = [QEMU ?? "qemu-aarch64-static", "-L", SYSROOT];
const build = tempDir("postbox-arm64-");
const ARM_BIN = join(build.path, "postbox");
const STARTUP = 60_000; // a 100 MB binary under emulation, on a loaded machine

beforeAll(() => {
  if (skipWhy) return;
  chmodSync(build.path, 0o755); // the mq test runs it as another user
  // Once per test run: the same build.ts interface the release uses.
  const b = Bun.spawnSync([process.execPath, "build.ts", "--target=linux-arm64", `--outfile=${ARM_BIN}`], { cwd: ROOT, stderr: "pipe" });
  if (b.exitCode !== 0) throw new Error(`bun build.ts --target=linux-arm64 failed: ${b.stderr.toString()}`);
  const elf = Bun.spawnSync(["od", "-An", "-tx2", "-j18", "-N2", ARM_BIN]).stdout.toString().trim();
  if (elf !== "00b7") throw new Error(`${ARM_BIN} is no aarch64 ELF (e_machine ${elf})`);
});
afterAll(() => build[Symbol.dispose]()); // (process.on("exit") never runs under bun test)

async function startArm(dir: string, args: string[]) {
  const pb = await startPostbox(dir, args, { wrap, bin: ARM_BIN, ready: false });
  await pb.waitStderr(/Santas Postbox is open![^]*\n$/, STARTUP);
  return pb;
}

async function run(cmd: string[]) {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  const [stderr, exitCode] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  return { pid: p.pid, exitCode, stderr };
}

test("build.ts: an unknown target or argument fails loudly, before building anything", async () => {
  for (const [arg, message] of [
    ["--target=linux-mips", "build: --target=linux-mips: unknown (linux-x64 or linux-arm64)\n"],
    ["--outdir=x", "build: --outdir=x: unknown argument (usage: bun build.ts [--target=linux-x64|linux-arm64] [--outfile=PATH])\n"],
  ] as const) {
    const p = Bun.spawn([process.execPath, "build.ts", arg], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const [stderr, exitCode] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    expect({ exitCode, stderr }).toEqual({ exitCode: 1, stderr: message });
  }
});

/**
 * setpriv to a uid of our own where we can (root, setpriv present): queues count against
 * RLIMIT_MSGQUEUE per uid, and other suites' queues on this machine must not decide whether ours opens.
 */
function ownUid(base: number): string[] {
  const own = base + (process.pid % 10_000);
  return uid === 0 && Bun.which("setpriv") ? ["setpriv", `--reuid=${own}`, `--regid=${own}`, "--clear-groups"] : [];
}

describe.skipIf(skipWhy !== null)("linux-arm64 under qemu-user", () => {
  test(
    "fifo, socket, USR1 and USR2 with payloads",
    async () => {
      using dir = tempDir();
      await using pb = await startArm(dir.path, ["--no-mq", "--signals", "USR1,USR2"]);
      expect(pb.stderr.text).not.toContain("postbox:");
      expect((await sh(dir.path, "echo 1 > fifo")).exitCode).toBe(0);
      expect((await runPostbox(dir.path, ["send", "--socket", "socket", "2"])).exitCode).toBe(0);
      await pb.waitLines(2, STARTUP);
      const k1 = await run(["/bin/kill", "-USR1", "-q", "3", String(pb.pid)]);
      await pb.waitLines(3, STARTUP);
      const k2 = await run(["/bin/kill", "-USR2", "-q", "-4", String(pb.pid)]);
      const lines = await pb.waitLines(4, STARTUP);
      expect(lines[0]).toBe("fifo: 1");
      expect(lines[1]).toMatch(new RegExp(`^socket\\[pid=\\d+,uid=${uid},gid=${gid}\\]: 2$`));
      expect(lines.slice(2)).toEqual([`signal[pid=${k1.pid},uid=${uid},sig=SIGUSR1]: 3`, `signal[pid=${k2.pid},uid=${uid},sig=SIGUSR2]: -4`]);
    },
    STARTUP * 2,
  );

  test(
    "the trap's aarch64 ucontext layout: the handler's uc_sigmask is the mask sigreturn restores",
    async () => {
      // The arm64 build acting as bun runs the probe with the arm64 runtime's TinyCC.
      const p = Bun.spawn([...wrap, ARM_BIN, join(import.meta.dir, "helpers", "trap-mask.ts")], {
        env: { ...process.env, BUN_BE_BUN: "1" },
        stdout: "pipe",
        stderr: "pipe",
      });
      const [stdout, stderr, exitCode] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      expect({ exitCode, stderr, result: stdout.trim() }).toEqual({ exitCode: 0, stderr: "", result: '{"arch":"arm64","before":0,"after":1}' });
    },
    STARTUP * 2,
  );

  test(
    "a burst of 5,000 real-time signals: every one, with the sender's pid and uid and its value",
    async () => {
      using dir = tempDir();
      await using pb = await startArm(dir.path, ["--no-mq", "--no-fifo", "--no-socket", "--signals", "RTMIN"]);
      // Host RTMIN+2 is what lands as the guest's SIGRTMIN (see the top of this file).
      const b = await run([process.execPath, join(import.meta.dir, "helpers", "sigburst.ts"), String(pb.pid), "RTMIN+2", "5000"]);
      expect(b).toMatchObject({ exitCode: 0, stderr: "" });
      const lines = await pb.waitLines(5000, STARTUP);
      const re = new RegExp(`^signal\\[pid=${b.pid},uid=${uid},sig=SIGRTMIN\\]: (\\d+)$`);
      const values = new Set(lines.map((l) => Number(re.exec(l)?.[1] ?? NaN)));
      expect(values.size).toBe(5000);
      expect(Math.min(...values)).toBe(1);
      expect(Math.max(...values)).toBe(5000);
      expect(pb.stderr.text).not.toContain("lost");
      expect(pb.proc.exitCode).toBeNull();
    },
    STARTUP * 2,
  );

  test(
    "the arm64 postbox serves its mq under qemu (mq_notify is ENOSYS there: one warning, every message)",
    async () => {
      using dir = tempDir();
      chmodSync(dir.path, 0o1777);
      const asUser = ownUid(30_000);
      const mq = mqName();
      try {
        const pb = await startPostbox(dir.path, ["--mq", mq, "--no-fifo", "--no-socket", "--no-signals"], { wrap: [...asUser, ...wrap], bin: ARM_BIN, ready: false });
        await using _pb = pb;
        await pb.waitStderr(/Santas Postbox is open![^]*\n$/, STARTUP);
        expect(pb.stderr.text).toStartWith(`postbox: warning: mq ${mq}: mq_notify is not available here (ENOSYS)`);
        const lines = Array.from({ length: 1000 }, (_, i) => `m${i}`);
        const p = Bun.spawn([...asUser, join(ROOT, "postbox"), "send", "--mq", mq, "--wait"], { cwd: dir.path, stdin: new Blob([lines.join("\n")]), stderr: "pipe" });
        expect(await p.exited).toBe(0);
        const got = await pb.waitLines(1000, STARTUP);
        expect(got).toEqual(lines.map((l) => `mqueue[prio=0]: ${l}`));
      } finally {
        mqRemove(mq);
      }
    },
    STARTUP * 2,
  );

  test(
    "send --mq from the arm64 binary into an x86_64 postbox (mq_notify is ENOSYS under qemu)",
    async () => {
      using dir = tempDir();
      chmodSync(dir.path, 0o1777);
      const asUser = ownUid(20_000);
      const mq = mqName();
      await using pb = await startPostbox(dir.path, ["--mq", mq, "--no-fifo", "--no-socket", "--no-signals"], { wrap: asUser });
      const p = Bun.spawn([...asUser, ...wrap, ARM_BIN, "send", "--mq", mq, "--prio", "3", "from arm64"], { cwd: dir.path, stdout: "pipe", stderr: "pipe" });
      try {
        const [stderr, exitCode] = await Promise.all([new Response(p.stderr).text(), p.exited]);
        expect({ exitCode, stderr }).toEqual({ exitCode: 0, stderr: "" });
        await until(() => pb.lines().length >= 1, "the arm64 post");
        expect(pb.lines()).toEqual(["mqueue[prio=3]: from arm64"]);
      } finally {
        mqRemove(mq); // the harness's exit-time safety net does not run under bun test
      }
    },
    STARTUP * 2,
  );
});
