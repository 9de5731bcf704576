// sigburst PID SIG N: sigqueue(PID, SIG, i) for i = 1..N, from a separate process.
import { sigqueue } from "../../src/ffi/libc.ts";
import { SysError } from "../../src/errors.ts";
import { parseSignal } from "../../src/signames.ts";

const [pid, sig, n] = [Number(process.argv[2]), parseSignal(process.argv[3]!), Number(process.argv[4])];
for (let i = 1; i <= n; i++) {
  for (;;) {
    try {
      sigqueue(pid, sig, i);
      break;
    } catch (err) {
      if (err instanceof SysError && err.code === "EAGAIN") Bun.sleepSync(1); // RLIMIT_SIGPENDING: let it drain
      else throw err;
    }
  }
}
