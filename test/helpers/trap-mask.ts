// trap-mask: checks the trap's ucontext layout on this architecture for real.
// The handler ORs the real-time signals it catches into uc_sigmask (at UC_SIGMASK);
// if that offset is right, the mask sigreturn restores has them blocked again.
// Prints {"before":0,"after":1} when it is: an RT signal unblocked, then a USR1
// through the handler, and the RT signal is blocked once more. Run by the tests
// natively and under qemu (BUN_BE_BUN=1 with the arm64 build).
import { cc } from "bun:ffi";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TRAP_SOURCE } from "../../src/ffi/siginfo.ts";

const PROBE = String.raw`
#if defined(__x86_64__)
#define NR_GETPID 39
#define NR_GETTID 186
#define NR_TGKILL 234
#else
#define NR_GETPID 172
#define NR_GETTID 178
#define NR_TGKILL 131
#endif
/* the RT signal's bit in this thread's mask: before*2 + after */
int probe(int rt) {
  unsigned long one = 1UL << (rt - 1), cur = 0, before;
  rawsys(1 /* SIG_UNBLOCK */, (long) &one, 0, 8, SYS_RT_SIGPROCMASK);
  rawsys(0, 0, (long) &cur, 8, SYS_RT_SIGPROCMASK);
  before = (cur >> (rt - 1)) & 1;
  rawsys(rawsys(0, 0, 0, 0, NR_GETPID), rawsys(0, 0, 0, 0, NR_GETTID), 10 /* SIGUSR1 */, 0, NR_TGKILL);
  rawsys(0, 0, (long) &cur, 8, SYS_RT_SIGPROCMASK);
  return (int) (before * 2 + ((cur >> (rt - 1)) & 1));
}
`;

const dir = mkdtempSync(join(tmpdir(), "postbox-trap-mask-"));
try {
  const source = join(dir, "probe.c");
  writeFileSync(source, TRAP_SOURCE + PROBE);
  const { symbols } = cc({
    source,
    flags: ["-nostdlib"],
    symbols: { pb_open: { args: [], returns: "int" }, pb_catch: { args: ["int"], returns: "int" }, probe: { args: ["int"], returns: "int" } },
  });
  const rt = 40; // any real-time signal postbox might listen on
  if (symbols.pb_open() < 0 || symbols.pb_catch(10) !== 0 || symbols.pb_catch(rt) !== 0) throw new Error("cannot install the trap");
  const r = symbols.probe(rt);
  console.log(JSON.stringify({ arch: process.arch, before: r >> 1, after: r & 1 }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
