// forge-sigqueue PID SIG VALUE CLAIMED_PID CLAIMED_UID [COUNT [CODE]]: rt_sigqueueinfo with a
// siginfo the sender fills itself (si_code SI_QUEUE unless CODE is given), as any same-uid
// process can; COUNT of them, with values VALUE, VALUE+1, … (a burst the trap drains in batches).
import { dlopen, FFIType, ptr } from "bun:ffi";
import { parseSignal } from "../../src/signames.ts";

const [pid, sig, value, claimedPid, claimedUid, count, code] = [
  Number(process.argv[2]),
  parseSignal(process.argv[3]!),
  ...process.argv.slice(4, 9).map(Number),
];
const SYS_rt_sigqueueinfo = process.arch === "arm64" ? 138 : 129;
const SI_QUEUE = -1;
const info = new Int32Array(32); // siginfo_t: 128 bytes
info[0] = sig; // si_signo
info[2] = code ?? SI_QUEUE; // si_code
info[4] = claimedPid!; // si_pid (the union starts at byte 16 on 64-bit)
info[5] = claimedUid!; // si_uid
const libc = dlopen("libc.so.6", { syscall: { args: [FFIType.i64, FFIType.i64, FFIType.i64, FFIType.ptr], returns: FFIType.i64 } });
for (let i = 0; i < (count ?? 1); i++) {
  info[6] = value! + i; // si_value.sival_int
  const r = Number(libc.symbols.syscall(SYS_rt_sigqueueinfo, pid, sig, ptr(info)));
  if (r !== 0) {
    console.error(`rt_sigqueueinfo failed (${r})`);
    process.exit(1);
  }
}
