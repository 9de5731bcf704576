// libc through bun:ffi (the table is core.ts's): files, descriptors, sockets'
// peers, priorities, signals, message queues. Everything exported here is a
// typed function that throws SysError (with the errno name) on failure.
import { ptr } from "bun:ffi";
import { readSync, writeSync } from "node:fs";
import { constants, getPriority } from "node:os";
import { numberAfter } from "../chars.ts";
import { SysError } from "../errors.ts";
import { c, errno, errnoNameOf, fail, ppollFds, sockaddrUn } from "./core.ts";

function cstr(s: string): Buffer {
  return Buffer.from(s + "\0", "utf8");
}

export const S_IFIFO = 0o010000;

/** mknod(2); the mode is still narrowed by the umask, as in C. */
export function mknod(path: string, mode: number): void {
  if (c().mknod(cstr(path), mode, 0) !== 0) fail("mknod", path);
}

const AT_FDCWD = -100;
const RENAME_NOREPLACE = 1;

/** renameat2(2) with RENAME_NOREPLACE: fails with EEXIST instead of replacing what is at `to`. */
export function renameNoReplace(from: string, to: string): void {
  if (c().renameat2(AT_FDCWD, cstr(from), AT_FDCWD, cstr(to), RENAME_NOREPLACE) !== 0) fail("rename", to);
}

const MFD_CLOEXEC = 1;

/** An anonymous in-memory file (for cc(), which cannot read the compiled binary's /$bunfs). */
export function memfdCreate(name: string): number {
  const fd = c().memfd_create(cstr(name), MFD_CLOEXEC);
  if (fd < 0) fail("memfd_create", name);
  return fd;
}

const F_GETFL = 3;
const F_SETFL = 4;

/** Make an inherited fd non-blocking (the event loop must never block on it). */
export function setNonBlocking(fd: number): void {
  const flags = c().fcntl(fd, F_GETFL, 0);
  if (flags < 0 || c().fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) fail("fcntl(O_NONBLOCK)", `fd ${fd}`);
}

const F_DUPFD_CLOEXEC = 1030;
const F_SETPIPE_SZ = 1031;

/**
 * Ask for a pipe buffer of `bytes` (rounded up to a power of two pages by the kernel); false when
 * refused (EPERM past /proc/sys/fs/pipe-max-size or the user's pipe-user-pages limit): the pipe keeps its size.
 */
export function setPipeSize(fd: number, bytes: number): boolean {
  return c().fcntl(fd, F_SETPIPE_SZ, bytes) >= 0;
}

/** A second descriptor for the same open file (close-on-exec). */
export function dupFd(fd: number): number {
  const r = c().fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (r < 0) fail("fcntl(F_DUPFD_CLOEXEC)", `fd ${fd}`);
  return r;
}

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

const cred = new Int32Array(3); // reused: one call per accepted connection
const credLen = new Uint32Array(1);

/** SO_PEERCRED of a connected unix socket: who connected, as of connect(). */
export function peerCred(fd: number): PeerCred {
  credLen[0] = 12;
  if (c().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, credLen) !== 0) fail("getsockopt(SO_PEERCRED)");
  return { pid: cred[0]!, uid: cred[1]! >>> 0, gid: cred[2]! >>> 0 };
}

const TIOCOUTQ = 0x5411; // SIOCOUTQ: bytes in a TCP socket's send queue not yet acknowledged by the peer
const outq = new Int32Array(1);

/** Bytes written to a TCP socket that the peer's TCP has not acknowledged yet. */
export function unackedBytes(fd: number): number {
  if (c().ioctl(fd, TIOCOUTQ, outq) !== 0) fail("ioctl(TIOCOUTQ)", `fd ${fd}`);
  return outq[0]!;
}

const PRIO_PROCESS = 0;

const NICEST = 19;

/**
 * Lower the priority of the calling thread only (Linux: setpriority on a thread
 * id) by `increment`. setpriority sets an absolute nice value: add to the current one.
 */
export function niceThisThread(increment: number): void {
  const tid = c().gettid();
  const nice = Math.min(NICEST, getPriority(tid) + increment);
  if (c().setpriority(PRIO_PROCESS, tid, nice) !== 0) fail("setpriority");
}

const POLLHUP = 0x10;
const POLLNVAL = 0x20;
const POLLRDHUP = 0x2000;


const EFD_CLOEXEC = 0o2000000;

const EFD_NONBLOCK = 0o4000;

/** An eventfd(2): a counter one thread makes readable to wake another out of ppoll. */
export function eventFd(opts: { nonBlocking?: boolean } = {}): number {
  const fd = c().eventfd(0, EFD_CLOEXEC | (opts.nonBlocking ? EFD_NONBLOCK : 0));
  if (fd < 0) fail("eventfd");
  return fd;
}

/** Make an eventfd readable (for good: nobody reads it back). */
export function raiseEventFd(fd: number): void {
  writeSync(fd, new BigUint64Array([1n]));
}

export function closeFd(fd: number): void {
  c().close(fd);
}

/**
 * For each connected socket, whether its peer has shut down its sending side
 * (all it will send is already queued): one call for them all.
 */
export function peersFinished(fds: readonly number[]): boolean[] {
  if (fds.length === 0) return [];
  const pollfds = new Int32Array(fds.length * 2);
  const events = new Int16Array(pollfds.buffer);
  fds.forEach((fd, i) => {
    pollfds[2 * i] = fd;
    events[4 * i + 2] = POLLRDHUP;
  });
  ppollFds(pollfds, fds.length, 0, "connected sockets");
  return fds.map((_, i) => (events[4 * i + 3]! & (POLLRDHUP | POLLHUP)) !== 0);
}

const MSG_DONTWAIT = 0x40;

/** recv(2) without waiting into buf[at…]: the bytes read, 0 at EOF, -1 when nothing is there yet. */
export function recvNow(fd: number, buf: Uint8Array, at: number): number {
  return withoutWaiting("recv", fd, () => Number(c().recv(fd, ptr(buf, at), buf.byteLength - at, MSG_DONTWAIT)));
}

/** read(2) of a non-blocking fd into buf[at…]: the bytes read, 0 at EOF, -1 when nothing is there yet (EAGAIN). */
export function readNow(fd: number, buf: Uint8Array, at: number): number {
  return withoutWaiting("read", fd, () => Number(c().read(fd, ptr(buf, at), buf.byteLength - at)));
}

/** A read that does not wait: its count, -1 for EAGAIN, again after EINTR; any other error is thrown. */
function withoutWaiting(call: string, fd: number, read: () => number): number {
  for (;;) {
    const n = read();
    if (n >= 0) return n;
    const e = errno();
    if (e === constants.errno.EAGAIN) return -1;
    if (e !== constants.errno.EINTR) fail(call, `fd ${fd}`, e);
  }
}

/** The lowest free descriptor number (the next one open() would return), or null if none is free. */
export function lowestFreeFd(): number | null {
  const fd = c().eventfd(0, EFD_CLOEXEC);
  if (fd < 0) {
    if (errno() === constants.errno.EMFILE) return null;
    fail("eventfd");
  }
  c().close(fd);
  return fd;
}

/** Entries polled per ppoll call by openFdsIn (and the reused array's size). */
const FD_POLL_CHUNK = 1024;
let fdPoll: { fds: Int32Array; events: Int16Array } | undefined;

/** How many of the descriptors from..to-1 are open: polled with no events (POLLNVAL: not open). */
export function openFdsIn(from: number, to: number): number {
  const poll = (fdPoll ??= (() => {
    const fds = new Int32Array(2 * FD_POLL_CHUNK);
    return { fds, events: new Int16Array(fds.buffer) };
  })());
  let open = 0;
  for (; from < to; from += FD_POLL_CHUNK) {
    const n = Math.min(FD_POLL_CHUNK, to - from);
    for (let i = 0; i < n; i++) {
      poll.fds[2 * i] = from + i;
      poll.fds[2 * i + 1] = 0; // events 0, revents 0
    }
    ppollFds(poll.fds, n, 0, "open descriptors");
    for (let i = 0; i < n; i++) if (!(poll.events[4 * i + 3]! & POLLNVAL)) open++;
  }
  return open;
}

/** The address a unix socket is bound to: a path, "@name" for an abstract one, "" if unnamed. */
export function unixSocketName(fd: number): string {
  const addr = new Uint8Array(110); // struct sockaddr_un: sa_family_t + sun_path[108]
  const len = new Uint32Array([addr.byteLength]);
  if (c().getsockname(fd, addr, len) !== 0) fail("getsockname", `fd ${fd}`);
  const path = addr.subarray(2, len[0]);
  if (path.byteLength === 0) return "";
  if (path[0] === 0) return `@${Buffer.from(path.subarray(1)).toString("utf8")}`;
  const nul = path.indexOf(0);
  return Buffer.from(nul === -1 ? path : path.subarray(0, nul)).toString("utf8");
}

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;


/** A non-blocking SOCK_STREAM unix socket bound to a path or "@name", not listening yet. */
export function bindUnixStream(address: string): number {
  const { addr, len } = sockaddrUn(address, "bind");
  const fd = c().socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  if (c().bind(fd, addr, len) !== 0) {
    const e = errno();
    c().close(fd);
    throw new SysError("bind", errnoNameOf(e), e, address);
  }
  return fd;
}

/** listen(2) with the kernel's largest backlog (net.core.somaxconn caps it). */
export function listenOn(fd: number): void {
  if (c().listen(fd, 4096) !== 0) fail("listen", `fd ${fd}`);
}

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

/** flock(2) LOCK_EX|LOCK_NB: false when someone else holds it. */
export function tryLock(fd: number): boolean {
  if (c().flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  if (errno() === constants.errno.EWOULDBLOCK) return false;
  fail("flock", `fd ${fd}`);
}

export function unlock(fd: number): void {
  c().flock(fd, LOCK_UN);
}

/** The libc's real real-time signal range (glibc reserves the first few for itself). */
export function rtSignalRange(): { min: number; max: number } {
  return { min: c().__libc_current_sigrtmin(), max: c().__libc_current_sigrtmax() };
}

const SIG_IGN = 1;
const SIG_ERR = -1;

/** Have the kernel discard sig (SIG_IGN): it can no longer kill the process. */
export function ignoreSignal(sig: number): void {
  if (c().signal(sig, SIG_IGN) === BigInt(SIG_ERR)) fail("signal", `signal ${sig}`);
}

/** sigqueue(3) with an int payload. */
export function sigqueue(pid: number, sig: number, value: number): void {
  if (c().sigqueue(pid, sig, BigInt(value | 0)) !== 0) fail("sigqueue", `pid ${pid}`);
}

// ---- POSIX message queues (mqd_t is an int fd on Linux) ----
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NONBLOCK = 0o4000;

export interface MqAttr {
  flags: number;
  maxmsg: number;
  msgsize: number;
  curmsgs: number;
}

export function mqOpen(name: string, oflag: number, mode = 0o600, attr?: { maxmsg: number; msgsize: number }): number {
  let a: BigInt64Array | null = null;
  if (attr) a = new BigInt64Array([0n, BigInt(attr.maxmsg), BigInt(attr.msgsize), 0n, 0n, 0n, 0n, 0n]);
  const fd = c().mq_open(cstr(name), oflag, mode, a);
  if (fd < 0) fail("mq_open", name);
  return fd;
}

export function mqGetattr(mqd: number): MqAttr {
  const a = new BigInt64Array(8);
  if (c().mq_getattr(mqd, a) !== 0) fail("mq_getattr");
  return { flags: Number(a[0]), maxmsg: Number(a[1]), msgsize: Number(a[2]), curmsgs: Number(a[3]) };
}

/** Send one message; returns false when the queue is full and the mqd is non-blocking. */
export function mqSend(mqd: number, msg: Uint8Array, prio: number): boolean {
  if (c().mq_send(mqd, msg, msg.byteLength, prio) === 0) return true;
  if (errno() === constants.errno.EAGAIN) return false;
  fail("mq_send");
}

const SIGEV_NONE = 1;
// struct sigevent: sigval (8) | signo (4) | notify (4) | padding to 64 bytes
const silentEvent = new Int32Array(16);
silentEvent[3] = SIGEV_NONE;

/**
 * Claim the queue as its reader: register for notification that raises nothing
 * (SIGEV_NONE). Only one process may be registered, so another reader's claim
 * fails with EBUSY, and the status line's NOTIFY_PID names us. The kernel drops
 * the registration when a message lands on the empty queue: claim again after
 * each drain. Our own old registration is dropped first (the kernel answers EBUSY
 * to it too). Throws SysError: EBUSY (another process is registered), ENOSYS.
 */
export function mqClaim(mqd: number): void {
  if (c().mq_notify(mqd, null) !== 0 || c().mq_notify(mqd, silentEvent) !== 0) fail("mq_notify");
}

/**
 * What a queue descriptor's status line says: read() on it returns
 * "QSIZE:0 NOTIFY:0 SIGNO:64 NOTIFY_PID:123" (bytes queued; pid registered for
 * notification, 0 if none). Read at offset 0, so it can be asked again.
 */
const statusLine = Buffer.alloc(256); // reused

export function mqStatus(mqd: number): { bytes: number; notifyPid: number } {
  const n = readSync(mqd, statusLine, 0, statusLine.byteLength, 0);
  const line = statusLine.toString("latin1", 0, n);
  return { bytes: numberAfter(line, "QSIZE:") ?? 0, notifyPid: numberAfter(line, "NOTIFY_PID:") ?? 0 };
}

export function mqClose(mqd: number): void {
  c().mq_close(mqd);
}

export function mqUnlink(name: string): void {
  if (c().mq_unlink(cstr(name)) !== 0) fail("mq_unlink", name);
}


/** inotify(7) event masks used by `postbox log -f`. */
export const IN = {
  MODIFY: 0x2,
  ATTRIB: 0x4,
  CLOSE_WRITE: 0x8,
  MOVED_FROM: 0x40,
  MOVED_TO: 0x80,
  CREATE: 0x100,
  DELETE: 0x200,
  DELETE_SELF: 0x400,
  MOVE_SELF: 0x800,
} as const;

const IN_NONBLOCK = 0o4000;
const IN_CLOEXEC = 0o2000000;

/** A non-blocking inotify fd: readable whenever a watched object changes. */
export function inotifyInit(): number {
  const fd = c().inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) fail("inotify_init1");
  return fd;
}

/** Watch path (a symlink such as /proc/self/fd/N is resolved: its target is watched); returns the watch descriptor. */
export function inotifyWatch(fd: number, path: string, mask: number): number {
  const wd = c().inotify_add_watch(fd, cstr(path), mask);
  if (wd < 0) fail("inotify_add_watch", path);
  return wd;
}

/** Stop a watch; one the kernel already dropped (its file deleted) is no error. */
export function inotifyUnwatch(fd: number, wd: number): void {
  c().inotify_rm_watch(fd, wd);
}
