// The one dlopen of libc for bun:ffi, and what every binding shares: errno, its
// name, failing with SysError, ppoll. The bindings, by topic, are libc.ts and
// dgram.ts; pointers and this table stay inside src/ffi/.
import { dlopen, FFIType, read } from "bun:ffi";
import { constants } from "node:os";
import { SysError } from "../errors.ts";

const { i32, u32, u64, i64, ptr } = FFIType;

const symbols = {
  __errno_location: { args: [], returns: ptr },
  mknod: { args: [ptr, u32, u64], returns: i32 },
  renameat2: { args: [i32, ptr, i32, ptr, u32], returns: i32 },
  fcntl: { args: [i32, i32, i32], returns: i32 },
  memfd_create: { args: [ptr, u32], returns: i32 },
  eventfd: { args: [u32, i32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, ptr, ptr], returns: i32 },
  getsockname: { args: [i32, ptr, ptr], returns: i32 },
  setsockopt: { args: [i32, i32, i32, ptr, u32], returns: i32 },
  bind: { args: [i32, ptr, u32], returns: i32 },
  listen: { args: [i32, i32], returns: i32 },
  flock: { args: [i32, i32], returns: i32 },
  connect: { args: [i32, ptr, u32], returns: i32 },
  recvmsg: { args: [i32, ptr, i32], returns: FFIType.i64_fast },
  recv: { args: [i32, ptr, u64, i32], returns: FFIType.i64_fast },
  read: { args: [i32, ptr, u64], returns: FFIType.i64_fast },
  ppoll: { args: [ptr, u64, ptr, ptr], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  sendto: { args: [i32, ptr, u64, i32, ptr, u32], returns: FFIType.i64_fast },
  close: { args: [i32], returns: i32 },
  ioctl: { args: [i32, u64, ptr], returns: i32 },
  gettid: { args: [], returns: i32 },
  setpriority: { args: [i32, u32, i32], returns: i32 },
  __libc_current_sigrtmin: { args: [], returns: i32 },
  __libc_current_sigrtmax: { args: [], returns: i32 },
  sigqueue: { args: [i32, i32, i64], returns: i32 },
  signal: { args: [i32, u64], returns: i64 }, // the handler as an integer: SIG_IGN is 1
  mq_open: { args: [ptr, i32, u32, ptr], returns: i32 },
  mq_getattr: { args: [i32, ptr], returns: i32 },
  mq_receive: { args: [i32, ptr, u64, ptr], returns: FFIType.i64_fast }, // a number, not a BigInt per message
  mq_send: { args: [i32, ptr, u64, u32], returns: i32 },
  mq_notify: { args: [i32, ptr], returns: i32 },
  mq_close: { args: [i32], returns: i32 },
  mq_unlink: { args: [ptr], returns: i32 },
  inotify_init1: { args: [i32], returns: i32 },
  inotify_add_watch: { args: [i32, ptr, u32], returns: i32 },
  inotify_rm_watch: { args: [i32, i32], returns: i32 },
  pipe2: { args: [ptr, i32], returns: i32 },
  pthread_attr_init: { args: [ptr], returns: i32 },
  pthread_attr_setdetachstate: { args: [ptr, i32], returns: i32 },
  pthread_attr_setsigmask_np: { args: [ptr, ptr], returns: i32 },
  pthread_attr_setstacksize: { args: [ptr, u64], returns: i32 },
  pthread_attr_destroy: { args: [ptr], returns: i32 },
  pthread_create: { args: [ptr, ptr, ptr, ptr], returns: i32 },
} as const;

type Libc = ReturnType<typeof dlopen<typeof symbols>>["symbols"];
let libc: Libc | undefined;

/** dlopen on first use (in each thread that uses it), never at import time. */
export function c(): Libc {
  libc ??= dlopen("libc.so.6", symbols).symbols;
  return libc;
}

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(constants.errno).map(([name, num]) => [num, name]),
);

/** "EEXIST" for 17, … (the names node:os knows for this platform). */
export function errnoNameOf(num: number): string {
  return ERRNO_NAMES.get(num) ?? `errno ${num}`;
}

export function errno(): number {
  const p = c().__errno_location();
  return p === null ? 0 : read.i32(p, 0);
}

/** Throw the SysError for a failed call (errno now, unless the caller saved it). */
export function fail(syscall: string, where?: string, code = errno()): never {
  throw new SysError(syscall, errnoNameOf(code), code, where);
}

const waitFor = new BigInt64Array(2); // struct timespec

/**
 * ppoll(2) over `count` entries of a struct pollfd array { int fd; short events,
 * revents; } (as Int32 pairs), waiting up to `microseconds` (0: just look;
 * Infinity: until one is ready). Returns how many are ready (0 on timeout or a
 * signal); revents are filled in.
 */
export function ppollFds(pollfds: Int32Array, count: number, microseconds: number, what: string): number {
  const forever = microseconds === Infinity;
  if (!forever) {
    waitFor[0] = BigInt(Math.floor(microseconds / 1e6));
    waitFor[1] = BigInt(Math.round((microseconds % 1e6) * 1000));
  }
  const n = c().ppoll(pollfds, count, forever ? null : waitFor, null);
  if (n < 0 && errno() !== constants.errno.EINTR) fail("ppoll", what);
  return Math.max(n, 0);
}

const AF_UNIX = 1;

/** struct sockaddr_un for a path, or "@name" for the abstract namespace; with its length. */
export function sockaddrUn(address: string, syscall: string): { addr: Uint8Array; len: number } {
  const abstract = address.startsWith("@");
  const name = Buffer.from(abstract ? `\0${address.slice(1)}` : address);
  if (name.byteLength > 107) throw new SysError(syscall, "ENAMETOOLONG", 36, address);
  const addr = new Uint8Array(2 + name.byteLength + 1);
  addr[0] = AF_UNIX;
  addr.set(name, 2);
  return { addr, len: abstract ? 2 + name.byteLength : addr.byteLength };
}
