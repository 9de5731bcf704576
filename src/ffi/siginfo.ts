// The signal trap: a header-free C SA_SIGINFO handler, compiled at start with
// bun:ffi's cc() (TinyCC), that write()s one fixed-size record per signal to a
// non-blocking pipe. signalfd cannot be used: Bun's loop waits with no signal
// blocked, so a signal not handled this way kills the process (PLATFORM-NOTES).
import { cc } from "bun:ffi";
import { closeSync, writeFileSync } from "node:fs";
import { SysError } from "../errors.ts";
import { errnoNameOf, memfdCreate } from "./libc.ts";

const SOURCE = String.raw`
typedef unsigned long size_t;
typedef long ssize_t;
/* Linux siginfo_t: the kill/rt/mesgq members all start at offset 16 */
struct pb_siginfo { int signo; int errno_; int code; int pad; int pid; unsigned uid; int value; int rest[25]; };
/* glibc's struct sigaction (x86_64 and aarch64) */
struct pb_sigaction { void (*action)(int, struct pb_siginfo *, void *); unsigned long mask[16]; int flags; void (*restorer)(void); };
extern int sigaction(int, const struct pb_sigaction *, struct pb_sigaction *);
extern ssize_t write(int, const void *, size_t);
extern int pipe2(int *, int);
extern int fcntl(int, int, ...);
extern int *__errno_location(void);

struct pb_record { int signo, code, pid; unsigned uid; int value, pad; };
static int record_fd = -1;
static volatile unsigned dropped;

static void on_signal(int sig, struct pb_siginfo *si, void *uc) {
  int saved = *__errno_location();
  struct pb_record r;
  r.signo = sig; r.code = si->code; r.pid = si->pid; r.uid = si->uid; r.value = si->value; r.pad = 0;
  /* 24 bytes < PIPE_BUF: written whole or not at all */
  if (write(record_fd, &r, sizeof r) != sizeof r) dropped++;
  *__errno_location() = saved;
}

/* Creates the record pipe (O_NONBLOCK|O_CLOEXEC, 1 MiB when allowed); returns its read end or -errno. */
int pb_open(void) {
  int fds[2];
  if (record_fd >= 0) return -16; /* EBUSY */
  if (pipe2(fds, 04000 | 02000000) < 0) return -*__errno_location();
  fcntl(fds[1], 1031 /* F_SETPIPE_SZ */, 1 << 20);
  record_fd = fds[1];
  return fds[0];
}

/* Installs the handler for sig with every signal blocked while it runs; 0 or -errno. */
int pb_catch(int sig) {
  struct pb_sigaction sa; int i;
  for (i = 0; i < 16; i++) sa.mask[i] = ~0UL;
  sa.action = on_signal;
  sa.flags = 4 /* SA_SIGINFO */ | 0x10000000 /* SA_RESTART */;
  sa.restorer = 0;
  if (sigaction(sig, &sa, 0) < 0) return -*__errno_location();
  return 0;
}

unsigned pb_dropped(void) { return dropped; }
`;

export const RECORD_BYTES = 24;

export interface SignalRecord {
  signo: number;
  code: number;
  pid: number;
  uid: number;
  value: number;
}

export interface SignalTrapLib {
  /** Read end of the record pipe. */
  readonly fd: number;
  /** Install the handler for one signal. Throws SysError. */
  catch(sig: number): void;
  /** Records lost because the pipe was full. */
  dropped(): number;
}

let lib: SignalTrapLib | undefined;

function check(syscall: string, rc: number): number {
  if (rc < 0) throw new SysError(syscall, errnoNameOf(-rc), -rc);
  return rc;
}

/**
 * Compile the handler once per process. cc() cannot read the compiled binary's
 * /$bunfs, and a temp file would need a writable TMPDIR: the source goes through a memfd.
 */
export function signalTrapLib(): SignalTrapLib {
  if (lib) return lib;
  const memfd = memfdCreate("postbox-siginfo.c");
  try {
    writeFileSync(memfd, SOURCE);
    const { symbols } = cc({
      source: `/proc/self/fd/${memfd}`,
      symbols: {
        pb_open: { args: [], returns: "int" },
        pb_catch: { args: ["int"], returns: "int" },
        pb_dropped: { args: [], returns: "u32" },
      },
    });
    const fd = check("pipe2", symbols.pb_open());
    lib = {
      fd,
      catch: (sig) => void check("sigaction", symbols.pb_catch(sig)),
      dropped: () => symbols.pb_dropped(),
    };
    return lib;
  } finally {
    closeSync(memfd);
  }
}

/** Split a chunk of the pipe into records; returns the unfinished tail to prepend next time. */
export function parseRecords(chunk: Uint8Array, each: (r: SignalRecord) => void): Uint8Array {
  const whole = chunk.byteLength - (chunk.byteLength % RECORD_BYTES);
  const view = new DataView(chunk.buffer, chunk.byteOffset, whole);
  for (let off = 0; off < whole; off += RECORD_BYTES) {
    each({
      signo: view.getInt32(off, true),
      code: view.getInt32(off + 4, true),
      pid: view.getInt32(off + 8, true),
      uid: view.getUint32(off + 12, true),
      value: view.getInt32(off + 16, true),
    });
  }
  return chunk.slice(whole);
}
