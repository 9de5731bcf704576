// The signal trap: a header-free C SA_SIGINFO handler, built with the binary
// (native.ts) or compiled at start with bun:ffi's cc() (TinyCC), that write()s one fixed-size record per signal to a
// non-blocking pipe. signalfd cannot be used: Bun's loop waits with no signal
// blocked, so a signal not handled this way kills the process (PLATFORM-NOTES).
import { SysError } from "../errors.ts";
import { errnoNameOf } from "./core.ts";
import { nativeLib } from "./native.ts";

/** The trap's C source (exported for the layout test, which compiles it with a probe). */
export const TRAP_SOURCE = String.raw`
/*
 * Compiled with -nostdlib: nothing is linked, so the trap needs neither libc.so
 * (the link script only libc development packages install) nor headers. Every
 * call is a raw system call through rawsys(), and the structs are the kernel's.
 */
typedef long ssize_t;
/* Linux siginfo_t: the kill/rt/mesgq members all start at offset 16 */
struct pb_siginfo { int signo; int errno_; int code; int pad; int pid; unsigned uid; int value; int rest[25]; };
/* The kernel's struct sigaction and sigset_t (64 signals), the same on x86_64 and aarch64 */
struct pb_sigaction { void (*action)(int, struct pb_siginfo *, void *); unsigned long flags; void (*restorer)(void); unsigned long mask; };
struct pb_timespec { long sec, nsec; };
/* The kernel's struct signalfd_siginfo (128 bytes), up to what the trap reads */
struct pb_sfd_info { unsigned signo; int errno_; int code; unsigned pid, uid; int fd; unsigned tid, band, overrun, trapno; int status, value; unsigned long ptr, utime, stime, addr; int rest[12]; };
long rawsys(long a, long b, long c, long d, long nr);

#if defined(__x86_64__)
/* rawsys: the arguments arrive in rdi, rsi, rdx, rcx, r8; the kernel wants r10 for the 4th */
__asm__(".text\n.global rawsys\nrawsys:\n mov %r8, %rax\n mov %rcx, %r10\n syscall\n ret\n"
        /* sigreturn trampoline: x86_64 needs SA_RESTORER (glibc's sigaction used to supply it) */
        ".global pb_restorer\npb_restorer:\n mov $15, %eax\n syscall\n hlt\n");
void pb_restorer(void);
#define RESTORER pb_restorer
#define SA_RESTORER 0x04000000
#define UC_SIGMASK 296 /* offsetof(struct ucontext, uc_sigmask): after the 256-byte sigcontext */
#define SYS_READ 0
#define SYS_WRITE 1
#define SYS_RT_SIGACTION 13
#define SYS_RT_SIGPROCMASK 14
#define SYS_IOCTL 16
#define SYS_FCNTL 72
#define SYS_RT_SIGTIMEDWAIT 128
#define SYS_SIGNALFD4 289
#define SYS_PIPE2 293
#elif defined(__aarch64__)
/* TinyCC has no arm64 instructions in inline asm, but it places words: mov x8, x4; svc #0; ret */
__asm__(".text\n.global rawsys\nrawsys:\n.int 0xaa0403e8\n.int 0xd4000001\n.int 0xd65f03c0\n");
/* No restorer: the kernel returns through the vDSO's sigreturn, as glibc relies on too */
#define RESTORER 0
#define SA_RESTORER 0
#define UC_SIGMASK 40 /* arm64 puts uc_sigmask before uc_mcontext */
#define SYS_FCNTL 25
#define SYS_IOCTL 29
#define SYS_PIPE2 59
#define SYS_READ 63
#define SYS_WRITE 64
#define SYS_SIGNALFD4 74
#define SYS_RT_SIGACTION 134
#define SYS_RT_SIGPROCMASK 135
#define SYS_RT_SIGTIMEDWAIT 137
#else
#error "postbox's signal trap knows x86_64 and aarch64"
#endif

struct pb_record { int signo, code, pid; unsigned uid; int value, pad; };
/* 170 records = 4080 bytes <= PIPE_BUF: each write lands whole or not at all, from any thread */
#define BATCH 170
#define DRAIN_MAX 4096
/* siginfos per read of the signalfd: 2 KiB of the interrupted thread's stack */
#define SFD_BATCH 16
static int record_fd = -1, read_fd = -1, pipe_size;
/* A signalfd on the caught set, or -1: drain with rt_sigtimedwait, one system call per signal */
static int sig_fd = -1;
static unsigned long caught, queued; /* kernel sigsets: bit n-1 for signal n */
static volatile unsigned dropped;

/* A poll layout (SI_SIGIO, which a sigqueue sender may forge, or POLL_*) has si_band and si_fd where others have pid, uid and value */
#define POLL_LAYOUT(code) ((code) == -5 || ((code) > 0 && (code) <= 6))

/* Field by field: TinyCC turns struct copies and zeroed initialisers into memcpy/memset calls, which nothing here links */
static void fill(struct pb_record *r, int sig, struct pb_siginfo *si) {
  r->signo = sig; r->code = si->code; r->pid = si->pid; r->uid = POLL_LAYOUT(si->code) ? ~0u : si->uid; r->value = si->value; r->pad = 0;
}

/*
 * signalfd copies the siginfo by the kernel's layout for its si_code, not as raw
 * bytes: put pid, uid and value back where the handler's siginfo has them, so a
 * record does not depend on how it was taken. Of a poll layout signalfd keeps
 * only the low 32 bits of si_band (where the pid would be): its "uid" is not
 * known either way, and (uid_t) -1 says so.
 */
static void fill_sfd(struct pb_record *r, struct pb_sfd_info *s) {
  r->signo = (int) s->signo; r->code = s->code; r->pad = 0;
  if (s->code == -2 /* SI_TIMER */) { r->pid = (int) s->tid; r->uid = s->overrun; r->value = s->value; }
  else if (POLL_LAYOUT(s->code)) { r->pid = (int) s->band; r->uid = ~0u; r->value = s->fd; }
  else { r->pid = (int) s->pid; r->uid = s->uid; r->value = s->value; }
}

/* Records that still fit in the pipe, so draining never takes a signal it cannot keep */
static int room(void) {
  int unread = 0;
  if (rawsys(read_fd, 0x541B /* FIONREAD */, (long) &unread, 0, SYS_IOCTL) < 0) return BATCH;
  return (pipe_size - unread) / (int) sizeof(struct pb_record);
}

/*
 * A signal delivered to a thread costs a signal frame, and to a running thread
 * an interrupt: several µs each. So the first signal blocks the real-time ones
 * for this thread from sigreturn on, and takes every other pending one through
 * the signalfd, SFD_BATCH a read (about half the kernel time of one
 * rt_sigtimedwait per signal, which is the fallback). With them blocked everywhere, they wait
 * in the kernel's queue until the loop's epoll_pwait2 (empty mask) lets one in,
 * and that one brings the rest. Standard signals (USR1, USR2) stay unblocked:
 * the kernel keeps only one of each pending, so every one caught early counts.
 * Raw system calls leave errno alone: nothing to save.
 */
static void on_signal(int sig, struct pb_siginfo *si, void *uc) {
  struct pb_record batch[BATCH];
  struct pb_sfd_info infos[SFD_BATCH];
  struct pb_siginfo more;
  struct pb_timespec now;
  unsigned long set = caught;
  int n = 1, left = room() - 1, taken = 0, empty = 0, fd = sig_fd, want, i;
  long bytes, got;
  now.sec = 0; now.nsec = 0;
  *(unsigned long *) ((char *) uc + UC_SIGMASK) |= queued;
  fill(&batch[0], sig, si);
  for (;;) {
    while (!empty && n < BATCH && left > 0 && taken < DRAIN_MAX) {
      want = BATCH - n;
      if (want > left) want = left;
      if (want > SFD_BATCH) want = SFD_BATCH;
      if (fd >= 0) {
        got = rawsys(fd, (long) infos, want * (long) sizeof infos[0], 0, SYS_READ);
        if (got == -11 /* EAGAIN: none pending */) break;
        if (got < 0) { fd = -1; continue; } /* not usable here: one by one */
        got /= (long) sizeof infos[0];
        for (i = 0; i < got; i++) fill_sfd(&batch[n++], &infos[i]);
        empty = got < want;
      } else {
        if (rawsys((long) &set, (long) &more, (long) &now, 8, SYS_RT_SIGTIMEDWAIT) <= 0) break;
        fill(&batch[n++], more.signo, &more);
        got = 1;
      }
      left -= (int) got; taken += (int) got;
    }
    bytes = n * (long) sizeof batch[0];
    if (n > 0 && rawsys(record_fd, (long) batch, bytes, 0, SYS_WRITE) != bytes) dropped += n;
    if (empty || n < BATCH || left <= 0 || taken >= DRAIN_MAX) break;
    n = 0;
  }
}

/* Creates the record pipe (O_NONBLOCK|O_CLOEXEC, 1 MiB when allowed); returns its read end or -errno. */
int pb_open(void) {
  int fds[2];
  long rc;
  if (record_fd >= 0) return -16; /* EBUSY */
  rc = rawsys((long) fds, 04000 | 02000000, 0, 0, SYS_PIPE2);
  if (rc < 0) return (int) rc;
  rawsys(fds[1], 1031 /* F_SETPIPE_SZ */, 1 << 20, 0, SYS_FCNTL);
  pipe_size = (int) rawsys(fds[1], 1032 /* F_GETPIPE_SZ */, 0, 0, SYS_FCNTL);
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
  struct pb_sigaction sa;
  unsigned long one;
  long rc;
  sa.action = on_signal;
  sa.flags = 4 /* SA_SIGINFO */ | 0x10000000 /* SA_RESTART */ | SA_RESTORER;
  sa.restorer = RESTORER;
  sa.mask = ~0UL;
  caught |= 1UL << (sig - 1);
  /* Before the handler: it drains the whole caught set. Without a signalfd it falls back. */
  rc = rawsys(sig_fd, (long) &caught, 8, 04000 | 02000000 /* SFD_NONBLOCK | SFD_CLOEXEC */, SYS_SIGNALFD4);
  if (rc >= 0) sig_fd = (int) rc;
  rc = rawsys(sig, (long) &sa, 0, 8, SYS_RT_SIGACTION);
  if (rc < 0) return (int) rc;
  if (sig < 32) return 0; /* SIGRTMIN is 32 for the kernel */
  queued |= 1UL << (sig - 1);
  one = 1UL << (sig - 1);
  rawsys(0 /* SIG_BLOCK */, (long) &one, 0, 8, SYS_RT_SIGPROCMASK);
  return 0;
}

unsigned pb_dropped(void) { return dropped; }
`;

export const RECORD_BYTES = 24;
/** A record as int32 words (native byte order, as the trap wrote it): these offsets, then padding. uid is unsigned. */
export const RECORD_WORDS = 6;
export const REC_SIGNO = 0;
export const REC_CODE = 1;
export const REC_PID = 2;
export const REC_UID = 3;
export const REC_VALUE = 4;

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
 * Load (or compile) the handler once per process (native.ts). It goes in through
 * a memfd only: a temp file would need a writable TMPDIR.
 */
export function signalTrapLib(): SignalTrapLib {
  if (lib) return lib;
  const syms = {
    pb_open: { args: [], returns: "int" },
    pb_catch: { args: ["int"], returns: "int" },
    pb_dropped: { args: [], returns: "u32" },
  } as const;
  const { symbols } = nativeLib("postbox-siginfo", "trap", TRAP_SOURCE, syms, { tempFallback: false });
  const fd = check("pipe2", symbols.pb_open());
  lib = {
    fd,
    catch: (sig) => void check("sigaction", symbols.pb_catch(sig)),
    dropped: () => symbols.pb_dropped(),
  };
  return lib;
}

/**
 * The pipe's bytes as whole records of int32 words. A chunk is viewed in place
 * when it is aligned and no record was split across reads (the usual case: the
 * trap writes whole records); otherwise it is copied after the split record's start.
 */
const NONE = new Uint8Array(0);

export class RecordSplitter {
  private buf = new Uint8Array(0);
  /** The start of a record split across reads (rare: the trap writes whole records). */
  private split = NONE;

  /** The whole records in chunk (after the split one of the last call); valid until the next call. */
  words(chunk: Uint8Array): Int32Array {
    let bytes = chunk;
    if (this.split.byteLength > 0 || chunk.byteOffset % 4 !== 0) {
      const n = this.split.byteLength + chunk.byteLength;
      if (this.buf.byteLength < n) this.buf = new Uint8Array(n);
      this.buf.set(this.split);
      this.buf.set(chunk, this.split.byteLength);
      bytes = this.buf.subarray(0, n);
    }
    const whole = bytes.byteLength - (bytes.byteLength % RECORD_BYTES);
    this.split = whole === bytes.byteLength ? NONE : bytes.slice(whole);
    return new Int32Array(bytes.buffer, bytes.byteOffset, whole / 4);
  }
}
