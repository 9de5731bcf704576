// The message queue's reader thread: a header-free C function, built with the
// binary (native.ts) or compiled at start with bun:ffi's cc() (TinyCC, -nostdlib:
// raw system calls only, as the signal trap), started with pthread_create from libc.so.6. It blocks in ppoll on the
// queue, takes what is queued with mq_timedreceive and streams it in batches of
// records into a pipe the event loop reads (in plain text mode a printable
// message as its whole output line, see MqReaderOptions). The kernel's pipe bounds how far it
// runs ahead: when the loop does not read (a slow stdout), it waits and the queue
// fills, so its senders block.
import type { Pointer } from "bun:ffi";
import { SysError } from "../errors.ts";
import { c, errnoNameOf, fail } from "./core.ts";
import { closeFd, eventFd, raiseEventFd, setPipeSize } from "./libc.ts";
import { CompileError, nativeLib } from "./native.ts";

/** The thread's C source. */
export const MQ_READER_SOURCE = String.raw`
/*
 * -nostdlib: nothing is linked (no libc.so link script, no headers). TinyCC
 * turns struct copies and zeroed initialisers into memcpy/memset calls, which
 * nothing here links: everything is set field by field.
 */
long rawsys(long a, long b, long c, long d, long e, long nr);

#if defined(__x86_64__)
/* the arguments arrive in rdi, rsi, rdx, rcx, r8, r9; the kernel wants r10 for the 4th and the number in rax */
__asm__(".text\n.global rawsys\nrawsys:\n mov %r9, %rax\n mov %rcx, %r10\n syscall\n ret\n");
#define SYS_READ 0
#define SYS_WRITE 1
#define SYS_CLOSE 3
#define SYS_RT_SIGPROCMASK 14
#define SYS_MQ_TIMEDRECEIVE 243
#define SYS_MQ_NOTIFY 244
#define SYS_PPOLL 271
#elif defined(__aarch64__)
/* TinyCC has no arm64 instructions in inline asm, but it places words: mov x8, x5; svc #0; ret */
__asm__(".text\n.global rawsys\nrawsys:\n.int 0xaa0503e8\n.int 0xd4000001\n.int 0xd65f03c0\n");
#define SYS_READ 63
#define SYS_WRITE 64
#define SYS_CLOSE 57
#define SYS_RT_SIGPROCMASK 135
#define SYS_MQ_TIMEDRECEIVE 183
#define SYS_MQ_NOTIFY 184
#define SYS_PPOLL 73
#else
#error "postbox's mq reader knows x86_64 and aarch64"
#endif

#define EINTR 4
#define EAGAIN 11
#define ENOSYS 38
#define POLLIN 1
#define POLLOUT 4
/* While the queue flows, how long and how often to wait for a refill before writing what was taken. */
#define REFILL_NS 200000
#define REFILLS 8

/* Shared with JS (an Int32Array over the same memory); the batch buffer follows at +128, then room for one message. */
struct pb_mq {
  int mqd, out, ctl, msgsize;
  int bufsize, flush_at, claims, limited;
  volatile int stop;                /* set by JS, then ctl raised */
  volatile unsigned allowed;        /* limited: how many messages may be taken in all */
  unsigned taken;
  int text, before_len, after_len;  /* text: plain messages are written as whole text lines, before prio after msg */
  unsigned char before[32], after[16];
};
#define HEADER 128
/* The longest prefix: before (32), the priority's digits (put_prefix writes 8 at most; MQ_PRIO_MAX is 32768), after (16). */
#define PREFIX_MAX 56
struct pb_pollfd { int fd; short events, revents; };
struct pb_timespec { long sec, nsec; };
struct pb_sigevent { long value; int signo, notify; int pad[12]; };

/* Records: kind, prio, length (little-endian int32 each), then length bytes. */
#define LINES 0   /* lines of one priority, each ending in \n (the messages without a \n inside) */
#define RAW 1     /* one message with a \n inside, its trailing \n stripped */
#define CLAIM 2   /* mq_notify failed with errno prio; ENOSYS: goes on unclaimed, else: the end */
#define FAILED 3  /* mq_timedreceive or ppoll failed with errno prio: the end */
#define TEXT 4    /* text mode: whole output lines (prefix, message, \n) of plain messages, any priorities */

static void put32(unsigned char *p, int v) { p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24; }
static void header(unsigned char *p, int kind, int prio, int len) { put32(p, kind); put32(p + 4, prio); put32(p + 8, len); }

static int wait_for(int fd, int events) {
  struct pb_pollfd p;
  p.fd = fd; p.events = events; p.revents = 0;
  return (int) rawsys((long) &p, 1, 0, 0, 8, SYS_PPOLL);
}

/* Wait until fd is readable or ctl is raised (ctl is reset then), at most ns (-1: no limit); > 0 when one is. */
static long wait_two(int fd, int ctl, long ns) {
  struct pb_pollfd p[2];
  struct pb_timespec t;
  unsigned long counter;
  long r;
  t.sec = 0; t.nsec = ns;
  p[0].fd = fd; p[0].events = POLLIN; p[0].revents = 0;
  p[1].fd = ctl; p[1].events = POLLIN; p[1].revents = 0;
  r = rawsys((long) p, 2, ns < 0 ? 0 : (long) &t, 0, 8, SYS_PPOLL);
  if (r > 0 && p[1].revents) rawsys(ctl, (long) &counter, 8, 0, 0, SYS_READ);
  return r;
}

/* Write buf[0, len) whole (waiting while the pipe is full: the loop is behind); 0 or -errno. */
static int flush(struct pb_mq *m, unsigned char *buf, int len) {
  int off = 0;
  long w;
  while (off < len) {
    w = rawsys(m->out, (long) (buf + off), len - off, 0, 0, SYS_WRITE);
    if (w > 0) off += (int) w;
    else if (w == -EAGAIN) wait_for(m->out, POLLOUT);
    else if (w != -EINTR) return (int) w;
  }
  return 0;
}

/* Claim the queue again: the kernel drops the registration when a message lands on the empty queue. */
static int claim(int mqd) {
  struct pb_sigevent ev;
  int i;
  ev.value = 0; ev.signo = 0; ev.notify = 1; /* SIGEV_NONE */
  for (i = 0; i < 12; i++) ev.pad[i] = 0;
  rawsys(mqd, 0, 0, 0, 0, SYS_MQ_NOTIFY); /* our old registration: the kernel says EBUSY to it too */
  return (int) rawsys(mqd, (long) &ev, 0, 0, 0, SYS_MQ_NOTIFY);
}

/* Whether b[0, n) holds a \n: eight bytes at a time (TinyCC's byte loops are slow). */
static int has_newline(unsigned char *b, int n) {
  unsigned long x;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    x = *(unsigned long *) (b + i) ^ 0x0a0a0a0a0a0a0a0aUL;
    if ((x - 0x0101010101010101UL) & ~x & 0x8080808080808080UL) return 1;
  }
  for (; i < n; i++) if (b[i] == 10) return 1;
  return 0;
}

/*
 * Whether b[0, n) is all printable ASCII (0x20..0x7e): text shows such a message
 * as it is, so it needs no escaping here. Eight bytes at a time: a byte below
 * 0x20 borrows into its top bit, one above 0x7e carries into it (or has it).
 */
static int plain(unsigned char *b, int n) {
  unsigned long x;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    x = *(unsigned long *) (b + i);
    if ((((x - 0x2020202020202020UL) & ~x) | ((x + 0x0101010101010101UL) | x)) & 0x8080808080808080UL) return 0;
  }
  for (; i < n; i++) if (b[i] < 0x20 || b[i] > 0x7e) return 0;
  return 1;
}

static void copy(unsigned char *to, unsigned char *from, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) *(unsigned long *) (to + i) = *(unsigned long *) (from + i);
  for (; i < n; i++) to[i] = from[i];
}

/* The text prefix of prio at p (JS gave the parts around the digits); returns its length. */
static int put_prefix(struct pb_mq *m, unsigned char *p, unsigned prio) {
  unsigned char digits[8];
  int k = 0, i, nd = 0;
  for (i = 0; i < m->before_len; i++) p[k++] = m->before[i];
  do { digits[nd++] = (unsigned char) ('0' + prio % 10); prio /= 10; } while (prio && nd < 8);
  while (nd > 0) p[k++] = digits[--nd];
  for (i = 0; i < m->after_len; i++) p[k++] = m->after[i];
  return k;
}

/*
 * Each message is received into its own room after the batch buffer, then
 * appended to the open record: a text line (text mode, plain), a line of the
 * open LINES record's priority, or a record of its own. A record is closed (its
 * header written) when a message of another kind or priority comes, and before
 * every write of the batch.
 */
static void *run(void *arg) {
  struct pb_mq *m = arg;
  unsigned char *buf = (unsigned char *) m + HEADER, *s = buf + m->bufsize;
  unsigned long all = ~0UL;
  unsigned prio, open_prio = 0;
  unsigned long counter;
  int len = 0, open = -1, open_kind = 0, n, rc = 0, got = 0, refills = 0, out = m->out, mqd = m->mqd, msgsize = m->msgsize;
  long r;
#define CLOSE_RECORD() do { if (open >= 0) { header(buf + open, open_kind, open_kind == LINES ? (int) open_prio : 0, len - open - 12); open = -1; } } while (0)
  rawsys(0 /* SIG_BLOCK */, (long) &all, 0, 8, 0, SYS_RT_SIGPROCMASK); /* created blocked already; never a signal here */
  while (!m->stop && rc >= 0) {
    if (m->limited && (int) (m->allowed - m->taken) <= 0) {
      CLOSE_RECORD();
      if (len > 0 && (rc = flush(m, buf, len)) < 0) break;
      len = 0; got = 0; refills = 0;
      wait_for(m->ctl, POLLIN);
      rawsys(m->ctl, (long) &counter, 8, 0, 0, SYS_READ);
      continue;
    }
    if (len + 12 + PREFIX_MAX + msgsize + 1 > m->bufsize) {
      CLOSE_RECORD();
      if ((rc = flush(m, buf, len)) < 0) break;
      len = 0; got = 0; refills = 0;
    }
    r = rawsys(mqd, (long) s, msgsize, (long) &prio, 0, SYS_MQ_TIMEDRECEIVE);
    if (r >= 0) {
      m->taken++;
      got++;
      n = (int) r;
      while (n > 0 && s[n - 1] == 10) n--;
      if (m->text && plain(s, n)) {
        if (open >= 0 && open_kind != TEXT) CLOSE_RECORD();
        if (open < 0) { open = len; open_kind = TEXT; len += 12; }
        len += put_prefix(m, buf + len, prio);
        copy(buf + len, s, n);
        len += n;
        buf[len++] = 10;
      } else if (has_newline(s, n)) {
        CLOSE_RECORD();
        header(buf + len, RAW, prio, n);
        copy(buf + len + 12, s, n);
        len += 12 + n;
      } else {
        if (open >= 0 && (open_kind != LINES || open_prio != prio)) CLOSE_RECORD();
        if (open < 0) { open = len; open_kind = LINES; open_prio = prio; len += 12; }
        copy(buf + len, s, n);
        len += n;
        buf[len++] = 10;
      }
      if (len >= m->flush_at) {
        CLOSE_RECORD();
        rc = flush(m, buf, len);
        len = 0; got = 0; refills = 0;
      }
      continue;
    }
    if (r == -EINTR) continue;
    if (r == -EAGAIN && got > 1 && refills < REFILLS) {
      /* Flowing: a sender blocked on the full queue is back within ~100 µs; waking the loop per refill costs more. */
      refills++;
      if (wait_two(mqd, m->ctl, REFILL_NS) > 0) continue;
    }
    CLOSE_RECORD();
    if (r != -EAGAIN) { header(buf + len, FAILED, (int) -r, 0); len += 12; break; }
    if (len > 0) { rc = flush(m, buf, len); len = 0; got = 0; refills = 0; continue; } /* and look again before sleeping */
    if (m->claims && (rc = claim(mqd)) < 0) {
      header(buf + len, CLAIM, -rc, 0); len += 12;
      if (rc != -ENOSYS) break;
      m->claims = 0; rc = 0;
      continue;
    }
    r = wait_two(mqd, m->ctl, -1);
    if (r < 0 && r != -EINTR) { header(buf + len, FAILED, (int) -r, 0); len += 12; break; }
  }
  CLOSE_RECORD();
  if (len > 0) flush(m, buf, len);
  rawsys(out, 0, 0, 0, 0, SYS_CLOSE); /* the loop's end of file; m is not touched after it */
  return 0;
}

void *pb_mq_entry(void) { return (void *) run; }
`;

/** Record kinds, as the C source numbers them. */
export const REC = { lines: 0, raw: 1, claim: 2, failed: 3, text: 4 } as const;
export const RECORD_HEADER = 12;

/** Fields of struct pb_mq, as Int32Array indices. */
const F = { mqd: 0, out: 1, ctl: 2, msgsize: 3, bufsize: 4, flushAt: 5, claims: 6, limited: 7, stop: 8, allowed: 9, taken: 10, text: 11, beforeLen: 12, afterLen: 13 } as const;
/** Where struct pb_mq's before[32] and after[16] are, and their sizes. */
const BEFORE_AT = 56;
const AFTER_AT = 88;
const BEFORE_MAX = AFTER_AT - BEFORE_AT;
const AFTER_MAX = 16;
const HEADER_BYTES = 128;
/** As the C source's PREFIX_MAX: before (32 at most), up to 8 digits, after (16). */
const PREFIX_MAX = 56;
/** A batch is written once it holds this much (or the queue is empty): few writes, little delay. */
const FLUSH_AT = 64 << 10;
const PIPE_BYTES = 1 << 20;

export interface MqReader {
  /** Read end of the record pipe (non-blocking); end of file once the thread is done. */
  readonly fd: number;
  /** The most one batch holds (a read of this size takes a whole one): FLUSH_AT and one message. */
  readonly batch: number;
  /** Limited mode: let the thread take up to `total` messages in all (it waits for more). */
  allow(total: number): void;
  /** Ask the thread to stop: it writes what it holds, closes the pipe and ends. */
  stop(): void;
  /** Free what the thread shared with us, and the pipe: only once it said end of file (the thread is done). */
  release(): void;
}

let entry: Pointer | bigint | undefined;
let compiled: unknown; // held for good: the code must outlive every thread running it

/**
 * Load (or compile) once per process (native.ts). The object or source goes in
 * through a memfd, or where a sandbox refuses memfd_create (which also keeps the
 * signal trap from being built) through a private temp file, so the queue is
 * still served without signals.
 */
function threadEntry(): Pointer | bigint {
  if (entry !== undefined) return entry;
  const lib = readerLib();
  compiled = lib;
  const p = lib.symbols.pb_mq_entry();
  if (p === null) throw new Error("cc() gave no entry point");
  entry = p;
  return p;
}

function readerLib() {
  try {
    return nativeLib("postbox-mqreader", "reader", MQ_READER_SOURCE, { pb_mq_entry: { args: [], returns: "ptr" } } as const, { tempFallback: true });
  } catch (err) {
    throw err instanceof CompileError ? new Error(`bun:ffi cc() (TinyCC) failed: ${err.message}`) : err;
  }
}

const encoder = new TextEncoder();
const PTHREAD_CREATE_DETACHED = 1;
const STACK_BYTES = 256 << 10; // the thread needs little; aarch64's PTHREAD_STACK_MIN is 128 KiB

export interface MqReaderOptions {
  /** The queue is claimed (mq_notify); false where mq_notify is ENOSYS. */
  claims: boolean;
  /** Nothing is taken beyond what allow() lets it. */
  limited: boolean;
  /**
   * Plain messages (printable ASCII only, which text shows as they are) come
   * as TEXT records of whole lines, `${before}${prio}${after}${message}\n`;
   * the rest as before, for the loop to escape.
   */
  text?: { before: string; after: string };
}

/** Start the reader thread on mqd (non-blocking). Throws SysError, or Error when TinyCC fails. */
export function startMqReader(mqd: number, msgsize: number, opts: MqReaderOptions): MqReader {
  const start = threadEntry();
  const pipe = new Int32Array(2);
  if (c().pipe2(pipe, O_NONBLOCK_CLOEXEC) !== 0) fail("pipe2");
  const [readFd, writeFd] = [pipe[0]!, pipe[1]!];
  setPipeSize(writeFd, PIPE_BYTES); // best effort: the default 64 KiB works too
  let ctl = -1;
  try {
    ctl = eventFd({ nonBlocking: true });
    // Below FLUSH_AT the thread takes one more message: then room for the largest line (and its record's header).
    const bufsize = FLUSH_AT + RECORD_HEADER + PREFIX_MAX + msgsize + 1;
    const shared = new ArrayBuffer(HEADER_BYTES + bufsize + msgsize + 8); // then the room a message is received into
    const state = new Int32Array(shared, 0, HEADER_BYTES / 4);
    if (opts.text) {
      const before = encoder.encode(opts.text.before);
      const after = encoder.encode(opts.text.after);
      if (before.byteLength > BEFORE_MAX || after.byteLength > AFTER_MAX) throw new Error("the mq text prefix is too long for the reader thread");
      new Uint8Array(shared).set(before, BEFORE_AT);
      new Uint8Array(shared).set(after, AFTER_AT);
      state[F.text] = 1;
      state[F.beforeLen] = before.byteLength;
      state[F.afterLen] = after.byteLength;
    }
    state[F.mqd] = mqd;
    state[F.out] = writeFd;
    state[F.ctl] = ctl;
    state[F.msgsize] = msgsize;
    state[F.bufsize] = bufsize;
    state[F.flushAt] = FLUSH_AT;
    state[F.claims] = opts.claims ? 1 : 0;
    state[F.limited] = opts.limited ? 1 : 0;
    spawnDetached(start, new Uint8Array(shared));
    const control = ctl;
    let stopped = false;
    holders.add(shared); // the thread uses it until it closes the pipe
    return {
      fd: readFd,
      batch: bufsize,
      allow(total) {
        if (stopped) return;
        state[F.allowed] = total; // modulo 2^32, as the thread compares (the caller keeps it < 2^31 ahead)
        raiseEventFd(control);
      },
      stop() {
        if (stopped) return;
        stopped = true;
        state[F.stop] = 1;
        raiseEventFd(control);
      },
      release() {
        stopped = true;
        holders.delete(shared);
        closeFd(control);
        closeFd(readFd);
      },
    };
  } catch (err) {
    if (ctl >= 0) closeFd(ctl);
    closeFd(writeFd);
    closeFd(readFd);
    throw err;
  }
}

/** What running threads share with us: kept alive here, whatever the owner drops. */
const holders = new Set<ArrayBuffer>();

const O_NONBLOCK_CLOEXEC = 0o4000 | 0o2000000;

/** A detached thread with every signal blocked from its first instruction, running fn(arg). */
function spawnDetached(fn: Pointer | bigint, arg: Uint8Array): void {
  const attr = new Uint8Array(128); // pthread_attr_t: 56 bytes on x86_64, 64 on aarch64
  const all = new Uint8Array(128).fill(0xff); // glibc's sigset_t: 1024 bits
  const check = (call: string, rc: number): void => {
    if (rc !== 0) throw new SysError(call, errnoNameOf(rc), rc);
  };
  check("pthread_attr_init", c().pthread_attr_init(attr));
  try {
    check("pthread_attr_setdetachstate", c().pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED));
    check("pthread_attr_setsigmask_np", c().pthread_attr_setsigmask_np(attr, all));
    check("pthread_attr_setstacksize", c().pthread_attr_setstacksize(attr, STACK_BYTES));
    check("pthread_create", c().pthread_create(new BigUint64Array(1), attr, fn, arg));
  } finally {
    c().pthread_attr_destroy(attr);
  }
}
