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
/* glibc's struct sigaction and sigset_t (x86_64 and aarch64) */
struct pb_sigaction { void (*action)(int, struct pb_siginfo *, void *); unsigned long mask[16]; int flags; void (*restorer)(void); };
struct pb_timespec { long sec, nsec; };
extern int sigaction(int, const struct pb_sigaction *, struct pb_sigaction *);
extern int pthread_sigmask(int, const unsigned long *, unsigned long *);
extern long syscall(long, ...);
extern ssize_t write(int, const void *, size_t);
extern int ioctl(int, unsigned long, ...);
extern int pipe2(int *, int);
extern int fcntl(int, int, ...);
extern int *__errno_location(void);

/* Where the kernel keeps the mask restored by sigreturn, and rt_sigtimedwait's number */
#if defined(__x86_64__)
#define UC_SIGMASK 296
#define SYS_RT_SIGTIMEDWAIT 128
#elif defined(__aarch64__)
#define UC_SIGMASK 40
#define SYS_RT_SIGTIMEDWAIT 137
#else
#error "postbox's signal trap knows x86_64 and aarch64"
#endif

struct pb_record { int signo, code, pid; unsigned uid; int value, pad; };
/* 170 records = 4080 bytes <= PIPE_BUF: each write lands whole or not at all, from any thread */
#define BATCH 170
#define DRAIN_MAX 4096
static int record_fd = -1, read_fd = -1, pipe_size;
static unsigned long caught, queued; /* kernel sigsets: bit n-1 for signal n */
static volatile unsigned dropped;

static void fill(struct pb_record *r, int sig, struct pb_siginfo *si) {
  r->signo = sig; r->code = si->code; r->pid = si->pid; r->uid = si->uid; r->value = si->value; r->pad = 0;
}

/* Records that still fit in the pipe, so draining never takes a signal it cannot keep */
static int room(void) {
  int unread = 0;
  if (ioctl(read_fd, 0x541B /* FIONREAD */, &unread) < 0) return BATCH;
  return (pipe_size - unread) / (int) sizeof(struct pb_record);
}

/*
 * A signal delivered to a thread costs a signal frame, and to a running thread
 * an interrupt: several µs each. So the first signal blocks the real-time ones
 * for this thread from sigreturn on, and takes every other pending one with
 * rt_sigtimedwait, which is far cheaper. With them blocked everywhere, they wait
 * in the kernel's queue until the loop's epoll_pwait2 (empty mask) lets one in,
 * and that one brings the rest. Standard signals (USR1, USR2) stay unblocked:
 * the kernel keeps only one of each pending, so every one caught early counts.
 */
static void on_signal(int sig, struct pb_siginfo *si, void *uc) {
  int saved = *__errno_location();
  struct pb_record batch[BATCH];
  struct pb_siginfo more;
  struct pb_timespec now = {0, 0};
  unsigned long set[16] = {0};
  int n = 1, left = room() - 1, taken = 0;
  *(unsigned long *) ((char *) uc + UC_SIGMASK) |= queued;
  set[0] = caught;
  fill(&batch[0], sig, si);
  for (;;) {
    while (n < BATCH && left > 0 && taken < DRAIN_MAX && syscall(SYS_RT_SIGTIMEDWAIT, set, &more, &now, 8) > 0) {
      fill(&batch[n++], more.signo, &more);
      left--; taken++;
    }
    if (n > 0 && write(record_fd, batch, n * sizeof batch[0]) != (ssize_t) (n * sizeof batch[0])) dropped += n;
    if (n < BATCH || left <= 0 || taken >= DRAIN_MAX) break;
    n = 0;
  }
  *__errno_location() = saved;
}

/* Creates the record pipe (O_NONBLOCK|O_CLOEXEC, 1 MiB when allowed); returns its read end or -errno. */
int pb_open(void) {
  int fds[2];
  if (record_fd >= 0) return -16; /* EBUSY */
  if (pipe2(fds, 04000 | 02000000) < 0) return -*__errno_location();
  fcntl(fds[1], 1031 /* F_SETPIPE_SZ */, 1 << 20);
  pipe_size = fcntl(fds[1], 1032 /* F_GETPIPE_SZ */);
  if (pipe_size <= 0) pipe_size = 65536;
  record_fd = fds[1];
  read_fd = fds[0];
  return fds[0];
}

/*
 * Installs the handler for sig with every signal blocked while it runs and, for
 * a real-time sig, blocks it in the calling (main) thread outside the loop's
 * wait; 0 or -errno.
 */
int pb_catch(int sig) {
  struct pb_sigaction sa; int i; unsigned long one[16] = {0};
  for (i = 0; i < 16; i++) sa.mask[i] = ~0UL;
  sa.action = on_signal;
  sa.flags = 4 /* SA_SIGINFO */ | 0x10000000 /* SA_RESTART */;
  sa.restorer = 0;
  caught |= 1UL << (sig - 1);
  if (sigaction(sig, &sa, 0) < 0) return -*__errno_location();
  if (sig < 32) return 0; /* SIGRTMIN is 32 for the kernel */
  queued |= 1UL << (sig - 1);
  one[0] = 1UL << (sig - 1);
  pthread_sigmask(0 /* SIG_BLOCK */, one, 0);
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
