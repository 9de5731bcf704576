// Datagram socket endpoints, under the same rules as the stream socket (the
// stale check is socket.ts's): a path is bound at once, with its mode from birth,
// to a fresh temporary name beside it, and renamed onto the path at the gate
// (renameat2 RENAME_NOREPLACE: nothing that appeared meanwhile is replaced). The
// bound socket follows its inode, so senders reach it by the new name from then
// on and not before. An abstract name cannot be renamed: it is checked free at
// the claim and bound at the gate (one syscall), its --mode applied per datagram.
import { dirname, join } from "node:path";
import { PostboxError, errnoName, reason } from "../errors.ts";
import { bindUnix, probeDatagram } from "../ffi/dgram.ts";
import { renameNoReplace } from "../ffi/libc.ts";
import { identity, kindOf, lstatOrNull, randomHex, removeIfSame, type Identity } from "./object.ts";
import { clearStale } from "./socket.ts";

export interface DgramClaim {
  readonly address: string;
  /** The socket file we bound (null for an abstract name). */
  readonly id: Identity | null;
  /** Where that file is: the temporary name until the gate, then the address. */
  at: string;
}

const cannot = (address: string) => (why: string) => new PostboxError(`cannot receive datagrams at ${address}: ${why}`);

/** Who is bound at a datagram address, for messages; null when nobody is (stale, or gone). */
async function receiver(address: string): Promise<string | null> {
  const who = probeDatagram(address);
  if (who === "live") return "another process is receiving datagrams there (a running postbox or syslog daemon?); stop it or choose another --dgram";
  if (who === "stream") return "a stream socket is being served there; choose another --dgram";
  return null;
}

/**
 * Claim a path or "@name" for the datagram socket `fd`, not reachable yet (see
 * openDgram). Call with the directory locked (DirLocks): a rival postbox then
 * finds the winner serving and refuses.
 */
export async function claimDgram(fd: number, address: string, mode: number): Promise<DgramClaim> {
  const fail = cannot(address);
  if (address.startsWith("@")) {
    const busy = await receiver(address);
    if (busy !== null) throw fail("another process is bound to it; choose another name");
    return { address, id: null, at: address };
  }
  await clearStale(address, "--dgram", fail, () => receiver(address));
  const tmp = temporaryName(address);
  const umask = process.umask(0o777 & ~mode); // born with its mode: no window where it is wider
  try {
    bindUnix(fd, tmp); // fails on anything already there; never follows a symlink
  } catch (err) {
    throw fail(`${reason(err)}; check the directory and its permissions`);
  } finally {
    process.umask(umask);
  }
  const st = lstatOrNull(tmp);
  if (!st?.isSocket()) throw fail(`${kindOf(st)} took the socket's place right after bind; nothing was removed`);
  return { address, id: identity(st), at: tmp };
}

/** Longest socket path (sun_path less its NUL). */
const SUN_PATH_MAX = 107;

/** A fresh name beside the path, unguessable; shorter when the path is near the socket path limit. */
function temporaryName(address: string): string {
  const hex = randomHex(6);
  const beside = `${address}.${hex}.tmp`;
  return Buffer.byteLength(beside) <= SUN_PATH_MAX ? beside : join(dirname(address), `.${hex}`);
}

/** The gate: the claimed socket becomes reachable at its address. */
export function openDgramGate(fd: number, claim: DgramClaim): void {
  const fail = cannot(claim.address);
  if (!claim.id) {
    try {
      bindUnix(fd, claim.address);
    } catch (err) {
      throw fail(errnoName(err) === "EADDRINUSE" ? "another process is bound to it; choose another name" : reason(err));
    }
    return;
  }
  try {
    renameNoReplace(claim.at, claim.address);
  } catch (err) {
    const what = lstatOrNull(claim.address);
    throw fail(errnoName(err) === "EEXIST" ? `${kindOf(what)} appeared there while postbox was starting; nothing was replaced` : reason(err));
  }
  claim.at = claim.address;
}

/** Remove the socket file (wherever it is now) only if it still is the one we bound. */
export function releaseDgram(claim: DgramClaim): void {
  if (claim.id) removeIfSame(claim.at, claim.id);
}
