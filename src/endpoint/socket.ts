// Socket endpoints: bound early (the path or name is ours from then on, with its
// mode from birth), listening only when the postbox is ready, removed only if
// still the socket we bound. Abstract names have no file mode: --mode is applied
// to each peer's SO_PEERCRED instead.
import { unlinkSync } from "node:fs";
import { PostboxError, errnoName, reason } from "../errors.ts";
import { bindUnixStream, closeFd, listenOn, peerCred, type PeerCred } from "../ffi/libc.ts";
import { comm, identity, isSame, kindOf, lstatOrNull, notOurs, removeIfSame, who, type Identity } from "./object.ts";

/** Connects to a unix socket ("\0name" = abstract); resolves its server's credentials, or null when nobody accepts. */
export async function probeSocket(address: string): Promise<PeerCred | null> {
  try {
    const client = await Bun.connect({ unix: address, socket: { data() {} } });
    let cred: PeerCred = { pid: 0, uid: -1, gid: -1 };
    try {
      cred = peerCred((client as unknown as { fd: number }).fd);
    } catch {
      // the answer matters, not the pid
    }
    client.end();
    return cred;
  } catch (err) {
    const code = errnoName(err);
    if (code === "ECONNREFUSED" || code === "ENOENT") return null;
    throw err;
  }
}

export interface SocketClaim {
  readonly address: string;
  /** The bound socket; Bun's listener owns it once listening. */
  readonly fd: number;
  /** The socket file we bound (null for an abstract name). */
  readonly id: Identity | null;
}

const serverOf = (c: PeerCred) => (c.pid > 0 ? ` (pid ${c.pid}${comm(c.pid)}, ${who(c.uid)})` : "");

/** Bind a path ("./socket") or abstract name ("@name") with `mode`; refuse what is in the way. */
export async function claimSocket(address: string, mode: number): Promise<SocketClaim> {
  const abstract = address.startsWith("@");
  if (!abstract)
    await clearStale(address, "--socket", (why) => new PostboxError(`cannot listen on ${address}: ${why}`), async () => {
      const cred = await probeSocket(address);
      return cred === null ? null : `another postbox is serving it${serverOf(cred)}; stop it or choose another --socket`;
    });
  const umask = process.umask(0o777 & ~mode); // born with its mode: no window where it is wider
  let fd: number;
  try {
    fd = bindUnixStream(address);
  } catch (err) {
    if (abstract && errnoName(err) === "EADDRINUSE") throw new PostboxError(`cannot listen on ${address}: ${await takenBy(address)}; choose another --abstract name`);
    throw new PostboxError(`cannot listen on ${address}: ${reason(err)}; check the directory and its permissions`);
  } finally {
    process.umask(umask);
  }
  if (abstract) return { address, fd, id: null };
  const st = lstatOrNull(address);
  if (!st?.isSocket()) {
    closeFd(fd);
    throw new PostboxError(`cannot listen on ${address}: ${kindOf(st)} took the socket's place right after bind; nothing was removed`);
  }
  return { address, fd, id: identity(st) };
}

/** Who holds an abstract name (the kernel tells the pid and uid of a server that accepts). */
async function takenBy(address: string): Promise<string> {
  let cred: PeerCred | null = null;
  try {
    cred = await probeSocket(`\0${address.slice(1)}`);
  } catch {
    // cannot tell more
  }
  if (cred === null) return "the name is taken by a socket that does not accept connections (another process bound it)";
  return `the name is taken: another process serves it${serverOf(cred)}`;
}

/**
 * Make `path` free for a socket we are about to bind (stream or datagram):
 * nothing there, or a stale socket file of ours that `inUse` finds nobody bound
 * to, removed only if it is still the one we looked at. `inUse` says who serves
 * it, or null. Anything else is refused and left alone.
 */
export async function clearStale(path: string, option: string, cannot: (why: string) => PostboxError, inUse: () => Promise<string | null>): Promise<void> {
  const st = lstatOrNull(path);
  if (!st) return;
  if (!st.isSocket()) throw cannot(`${kindOf(st)} is in the way (remove it or choose ${option} elsewhere)`);
  let busy: string | null;
  try {
    busy = await inUse();
  } catch (err) {
    throw cannot(`cannot tell whether it is in use: ${reason(err)}`);
  }
  if (busy !== null) throw cannot(busy);
  const why = notOurs(st, 0o777);
  if (why) throw cannot(`a stale socket is in the way and ${why}; postbox never removes another user's file`);
  const now = lstatOrNull(path);
  if (now && isSame(now, identity(st))) unlinkSync(path);
}

/** Make the bound socket reachable. */
export function listenClaimed(claim: SocketClaim): void {
  try {
    listenOn(claim.fd);
  } catch (err) {
    throw new PostboxError(`cannot listen on ${claim.address}: ${reason(err)}`);
  }
}

/** Remove the socket file if it still is the one we bound (the fd is closed by its owner). */
export function releaseSocket(claim: SocketClaim): void {
  if (claim.id) removeIfSame(claim.address, claim.id);
}

/**
 * --mode for an abstract socket, on the connecting peer: 0600 lets in our uid
 * and root, group bits our (primary) gid too, other bits everyone.
 */
export function peerMayPost(mode: number, cred: PeerCred): boolean {
  if ((mode & 0o007) !== 0) return true;
  if (cred.uid === 0 || cred.uid === process.geteuid?.()) return true;
  return (mode & 0o070) !== 0 && cred.gid === process.getegid?.();
}
