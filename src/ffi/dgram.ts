// Unix datagram sockets through libc (Bun has no API for them): socket, bind,
// SO_PASSCRED, recvmsg with SCM_CREDENTIALS, connect as a liveness probe,
// sendto. Pointers stay in this file; everything exported is typed and throws
// SysError with the errno name.
import { ptr } from "bun:ffi";
import { constants } from "node:os";
import { SysError } from "../errors.ts";
import { c, errno, fail, ppollFds, sockaddrUn } from "./core.ts";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_PASSCRED = 16;
const SCM_CREDENTIALS = 2;
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const MSG_CMSG_CLOEXEC = 0x40000000;

/** A new non-blocking, close-on-exec AF_UNIX SOCK_DGRAM socket. */
export function datagramSocket(): number {
  const fd = c().socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket(AF_UNIX, SOCK_DGRAM)");
  return fd;
}

export function bindUnix(fd: number, address: string): void {
  const { addr, len } = sockaddrUn(address, "bind");
  if (c().bind(fd, addr, len) !== 0) fail("bind", address);
}

/** SO_PASSCRED: every datagram then comes with the kernel's SCM_CREDENTIALS of its sender. */
export function passCredentials(fd: number): void {
  if (c().setsockopt(fd, SOL_SOCKET, SO_PASSCRED, new Int32Array([1]), 4) !== 0) fail("setsockopt(SO_PASSCRED)", `fd ${fd}`);
}

/** "dgram" for a SOCK_DGRAM socket, "stream" for SOCK_STREAM, "other" for anything else. */
export function socketType(fd: number): "dgram" | "stream" | "other" {
  const v = new Int32Array(1);
  const len = new Uint32Array([4]);
  if (c().getsockopt(fd, SOL_SOCKET, SO_TYPE, v, len) !== 0) fail("getsockopt(SO_TYPE)", `fd ${fd}`);
  return v[0] === SOCK_DGRAM ? "dgram" : v[0] === SOCK_STREAM ? "stream" : "other";
}

/**
 * Who is at a unix socket address, asked with connect(2) from a datagram socket
 * (nothing is sent): "live" a datagram receiver is bound there, "stream" a
 * stream (or seqpacket) socket is, "stale" a socket file nobody is bound to
 * (ECONNREFUSED), "none" nothing at all.
 */
export function probeDatagram(address: string): "live" | "stream" | "stale" | "none" {
  const { addr, len } = sockaddrUn(address, "connect");
  const fd = c().socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket(AF_UNIX, SOCK_DGRAM)");
  try {
    if (c().connect(fd, addr, len) === 0) return "live";
    const e = errno();
    if (e === constants.errno.ECONNREFUSED) return "stale";
    if (e === constants.errno.EPROTOTYPE) return "stream";
    if (e === constants.errno.ENOENT) return "none";
    fail("connect", address, e);
  } finally {
    c().close(fd);
  }
}

const POLLIN = 1;

/**
 * One blocking reader of a datagram socket. A datagram is read whole into a
 * buffer as large as any datagram an unprivileged sender can make (twice
 * net.core.wmem_max); the pages are committed only as large datagrams touch them.
 */
export class DatagramReceiver {
  /** The last datagram's bytes are data[0, length). */
  readonly data: Uint8Array;
  /** Its real length (more than data holds when it was truncated). */
  length = 0;
  /** Its sender, from SCM_CREDENTIALS; pid -1 when none came with it. */
  pid = -1;
  uid = 0;
  gid = 0;
  private readonly msghdr: BigUint64Array;
  private readonly msgFlags: Int32Array;
  private readonly control: DataView;
  private readonly controlBytes: Uint8Array;
  private readonly pollfds: Int32Array;
  private readonly pollEvents: Int16Array;
  /** The iovec the msghdr points to: kept alive as long as this receiver. */
  private readonly iov: BigUint64Array;

  constructor(
    private readonly fd: number,
    private readonly wake: number,
    capacity: number,
  ) {
    // Out-of-line ArrayBuffers: their memory never moves, so the kernel may hold their addresses.
    this.data = new Uint8Array(new ArrayBuffer(capacity));
    const iov = (this.iov = new BigUint64Array(new ArrayBuffer(16)));
    iov[0] = BigInt(ptr(this.data));
    iov[1] = BigInt(capacity);
    // Room for one SCM_CREDENTIALS only: fds a sender attaches (SCM_RIGHTS) then
    // do not fit, and the kernel closes them instead of installing them here.
    this.controlBytes = new Uint8Array(new ArrayBuffer(32));
    this.control = new DataView(this.controlBytes.buffer);
    const hdr = new ArrayBuffer(56); // struct msghdr (LP64)
    this.msghdr = new BigUint64Array(hdr);
    this.msgFlags = new Int32Array(hdr, 48, 1);
    this.msghdr[2] = BigInt(ptr(iov));
    this.msghdr[3] = 1n;
    this.msghdr[4] = BigInt(ptr(this.controlBytes));
    const pfd = new ArrayBuffer(16); // two struct pollfd
    this.pollfds = new Int32Array(pfd);
    this.pollEvents = new Int16Array(pfd);
    this.pollfds[0] = fd;
    this.pollEvents[2] = POLLIN;
    this.pollfds[2] = wake;
    this.pollEvents[6] = POLLIN;
  }

  /** Take one datagram without waiting: true, or false when none is queued. */
  receive(): boolean {
    const m = this.msghdr;
    m[5] = 32n; // msg_controllen: the kernel lowers it to what it wrote
    this.msgFlags[0] = 0;
    const n = Number(c().recvmsg(this.fd, m, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC));
    if (n < 0) {
      const e = errno();
      if (e === constants.errno.EAGAIN || e === constants.errno.EINTR) return false;
      fail("recvmsg", `fd ${this.fd}`, e);
    }
    this.length = n;
    const v = this.control;
    // struct cmsghdr { size_t len; int level; int type; } then struct ucred { pid, uid, gid }
    if (m[5]! >= 28n && v.getInt32(8, true) === SOL_SOCKET && v.getInt32(12, true) === SCM_CREDENTIALS) {
      this.pid = v.getInt32(16, true);
      this.uid = v.getUint32(20, true);
      this.gid = v.getUint32(24, true);
    } else this.pid = -1;
    return true;
  }

  /** Whether the last datagram was longer than data. */
  get truncated(): boolean {
    return (this.msgFlags[0]! & MSG_TRUNC) !== 0 || this.length > this.data.byteLength;
  }

  /**
   * Wait up to `microseconds` (-1: without end) for a datagram or a wake-up.
   * Returns "data", "wake" or "timeout".
   */
  wait(microseconds: number): "data" | "wake" | "timeout" {
    this.pollEvents[3] = 0;
    this.pollEvents[7] = 0;
    const n = ppollFds(this.pollfds, 2, microseconds < 0 ? Infinity : microseconds, `fd ${this.fd}`); // 0 after a signal too
    if (this.pollEvents[7] !== 0) return "wake";
    return n > 0 ? "data" : "timeout";
  }
}

/** A client socket that sends datagrams to one address (blocking while the receiver's queue is full). */
export class DatagramSender {
  private readonly fd: number;
  private readonly addr: Uint8Array;
  private readonly len: number;

  constructor(private readonly address: string) {
    ({ addr: this.addr, len: this.len } = sockaddrUn(address, "sendto"));
    this.fd = c().socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (this.fd < 0) fail("socket(AF_UNIX, SOCK_DGRAM)");
  }

  send(message: Uint8Array): void {
    for (;;) {
      if (Number(c().sendto(this.fd, message, message.byteLength, 0, this.addr, this.len)) >= 0) return;
      if (errno() !== constants.errno.EINTR) fail("sendto", this.address);
    }
  }

  close(): void {
    c().close(this.fd);
  }
}
