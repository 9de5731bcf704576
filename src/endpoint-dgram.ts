// Claiming and releasing a datagram socket's path, the s6 way: bind first (it
// fails on anything already there, and never follows a symlink in the last
// component); on EADDRINUSE lstat and probe what is there; replace only a socket
// file of ours that provably nobody is bound to; at exit remove the file only if
// it is still the one we created (same device and inode).
import { lstatSync, unlinkSync } from "node:fs";
import { PostboxError, errnoName, reason } from "./errors.ts";
import { bindUnix, probeDatagram } from "./ffi/dgram.ts";

/** A path we bound and may remove at exit. */
export interface ClaimedPath {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
}

function kindOf(st: ReturnType<typeof lstatSync>): string {
  if (!st) return "nothing";
  if (st.isSymbolicLink()) return "a symlink";
  if (st.isDirectory()) return "a directory";
  if (st.isFile()) return "a regular file";
  if (st.isFIFO()) return "a fifo";
  return "a special file";
}

/**
 * Bind the datagram socket fd at path, the file born with exactly `mode` (the
 * umask is set around bind). A stale socket file (ECONNREFUSED to a probe) of
 * ours is replaced; a live receiver, another user's file or anything that is not
 * a socket is refused. Of concurrent starts only one binds: bind itself is the
 * arbiter, and a stale file is unlinked only if it is still the one probed.
 */
export function bindDatagramPath(fd: number, path: string, mode: number): ClaimedPath {
  const cannot = (why: string) => new PostboxError(`cannot receive datagrams at ${path}: ${why}`);
  for (let attempt = 0; attempt < 5; attempt++) {
    const umask = process.umask(0o777 & ~mode);
    let inUse = false;
    try {
      bindUnix(fd, path);
    } catch (err) {
      if (errnoName(err) !== "EADDRINUSE") throw cannot(`${reason(err)}; check the directory and its permissions`);
      inUse = true;
    } finally {
      process.umask(umask);
    }
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!inUse) {
      if (!st?.isSocket()) throw cannot("the socket file vanished right after bind");
      return { path, dev: st.dev, ino: st.ino };
    }
    if (!st) continue; // removed meanwhile: try again
    if (!st.isSocket()) throw cannot(`${kindOf(st)} is in the way (remove it or choose --dgram elsewhere)`);
    const who = probeDatagram(path);
    if (who === "live")
      throw cannot("another process is receiving datagrams there (a running postbox or syslog daemon?); stop it or choose another --dgram");
    if (who === "stream") throw cannot("a stream socket is being served there; choose another --dgram");
    if (who === "none") continue;
    if (st.uid !== process.getuid?.()) throw cannot(`a stale socket file of uid ${st.uid} is there; not ours to remove`);
    const again = lstatSync(path, { throwIfNoEntry: false });
    if (again && again.dev === st.dev && again.ino === st.ino) unlinkSync(path);
  }
  throw cannot("the path keeps changing under us (another postbox starting at the same time?)");
}

/** Remove the socket file at exit, only if it is still the one we bound. */
export function releaseDatagramPath(claimed: ClaimedPath): void {
  const st = lstatSync(claimed.path, { throwIfNoEntry: false });
  if (st?.isSocket() && st.dev === claimed.dev && st.ino === claimed.ino) unlinkSync(claimed.path);
}

/** An abstract name (no file): bind, with a clear line when another process holds it. */
export function bindDatagramName(fd: number, address: string): void {
  try {
    bindUnix(fd, address);
  } catch (err) {
    const why = errnoName(err) === "EADDRINUSE" ? "another process is bound to it; choose another name" : reason(err);
    throw new PostboxError(`cannot receive datagrams at ${address}: ${why}`);
  }
}
