// FIFO endpoints: claimed through an O_PATH handle (no reader appears, nothing is
// followed), checked and chmodded on that handle, opened for reading only when
// the postbox is ready, removed only if still the FIFO we made.
import { chmodSync, closeSync, constants, fstatSync, openSync, readdirSync, readFileSync, statSync, type Stats } from "node:fs";
import { PostboxError, errnoName, reason } from "../errors.ts";
import { mknod, S_IFIFO } from "../ffi/libc.ts";
import { comm, identity, isSame, kindOf, lstatOrNull, NOFOLLOW, O_CLOEXEC, notOurs, O_PATH, octal, removeIfSame, type Identity } from "./object.ts";

export interface FifoClaim {
  readonly path: string;
  readonly created: boolean;
  readonly id: Identity;
  /** The O_PATH handle, until open() replaces it by a reading one. */
  fd: number | null;
}

/** A handle on the object at path itself (a symlink stays a symlink); checked by fstat. */
function openPath(path: string): { fd: number; st: Stats } {
  const fd = openSync(path, O_PATH | NOFOLLOW);
  return { fd, st: fstatSync(fd) };
}

/** Reopen an O_PATH handle with real access: the same inode, whatever the name points to now. */
function reopen(fd: number, flags: number): number {
  return openSync(`/proc/self/fd/${fd}`, flags | O_CLOEXEC);
}

/** Claim the FIFO at path for a postbox: create it with `mode`, or take over a leftover of ours. */
export function claimFifo(path: string, mode: number): FifoClaim {
  const fail = (why: string) => new PostboxError(`cannot use ${path} as the fifo: ${why}`);
  const before = lstatOrNull(path);
  if (before && !before.isFIFO()) throw fail(`${kindOf(before)} is in the way (remove it or choose --fifo elsewhere)`);
  let created = false;
  if (!before) {
    try {
      mknod(path, S_IFIFO | mode); // the umask may narrow it; chmod below sets it exactly
      created = true;
    } catch (err) {
      throw fail(reason(err));
    }
  }
  let h: { fd: number; st: Stats };
  try {
    h = openPath(path);
  } catch (err) {
    throw fail(reason(err));
  }
  const refuse = (why: string) => {
    closeSync(h.fd);
    return fail(why);
  };
  if (!h.st.isFIFO()) throw refuse(`${kindOf(h.st)} appeared in its place while claiming it; nothing was touched`);
  const why = notOurs(h.st, created ? 0o777 : mode);
  if (why) throw refuse(`${why}; not adopted (remove it, or choose --fifo elsewhere)`);
  if (!created && hasReader(h.fd)) {
    const readers = fifoHolders(identity(h.st));
    throw refuse(`${readers.length > 0 ? describe(readers) : "another process"} is reading it (a running postbox?); stop it or choose --fifo elsewhere`);
  }
  try {
    chmodSync(`/proc/self/fd/${h.fd}`, mode); // the inode we hold, not whatever the name means now
  } catch (err) {
    throw refuse(reason(err));
  }
  return { path, created, id: identity(h.st), fd: h.fd };
}

/** Make the claimed FIFO reachable: open it O_RDWR (we hold a writer, so no EOF ever comes). */
export function openClaimedFifo(claim: FifoClaim): number {
  if (claim.fd === null) throw new PostboxError(`cannot open the fifo ${claim.path}: it was released`);
  const fd = reopen(claim.fd, constants.O_RDWR | constants.O_NONBLOCK);
  closeSync(claim.fd);
  claim.fd = null;
  return fd;
}

/** Close the handle (if still claimed) and remove the FIFO if we made it and it is still ours. */
export function releaseFifo(claim: FifoClaim): void {
  if (claim.fd !== null) closeSync(claim.fd);
  claim.fd = null;
  if (claim.created) removeIfSame(claim.path, claim.id);
}

/** Does anybody hold the FIFO open for reading? (A non-blocking writer open answers ENXIO when nobody does.) */
function hasReader(pathFd: number): boolean {
  try {
    closeSync(reopen(pathFd, constants.O_WRONLY | constants.O_NONBLOCK));
    return true;
  } catch (err) {
    if (errnoName(err) === "ENXIO") return false;
    throw err;
  }
}

export interface Holder {
  pid: number;
  /** Opened O_RDWR, as a postbox holds its FIFO. */
  rdwr: boolean;
  reading: boolean;
}

/**
 * Processes holding the object open, found through /proc/PID/fd (only those we
 * may inspect: our own uid's, or all as root). `uninspected` gets the uids of the others.
 */
export function fifoHolders(id: Identity, uninspected?: Set<number>): Holder[] {
  const found: Holder[] = [];
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid);
  } catch {
    return found;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch (err) {
      if (uninspected && errnoName(err) === "EACCES") {
        const uid = /^Uid:\s+\d+\s+(\d+)/m.exec(safeRead(`/proc/${pid}/status`))?.[1];
        if (uid !== undefined) uninspected.add(Number(uid));
      }
      continue;
    }
    for (const fd of fds) {
      let st: Stats;
      try {
        st = statSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!isSame(st, id)) continue;
      const flags = parseInt(/^flags:\s+(\d+)/m.exec(safeRead(`/proc/${pid}/fdinfo/${fd}`))?.[1] ?? "1", 8);
      const access = flags & 3;
      found.push({ pid: Number(pid), rdwr: access === constants.O_RDWR, reading: access !== constants.O_WRONLY });
    }
  }
  return found.filter((h) => h.reading);
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function describe(holders: Holder[]): string {
  const pids = [...new Set(holders.map((h) => h.pid))];
  return pids.map((p) => `pid ${p}${comm(p)}`).join(", ");
}

/** held: someone reads it but no postbox, found by a scan of /proc (the costly answer). */
export type FifoState = { state: "none" } | { state: "not-fifo"; kind: string } | { state: "fifo"; served: boolean; held: boolean };

/**
 * Is a postbox reading the FIFO at path? It must be a FIFO (nothing else is
 * opened), held O_RDWR by a process — a postbox holds its own writer, a `cat`
 * does not. A process we may not inspect counts only if it runs as the FIFO's owner.
 */
export function fifoServed(path: string): FifoState {
  let h: { fd: number; st: Stats };
  try {
    h = openPath(path);
  } catch (err) {
    if (errnoName(err) === "ENOENT") return { state: "none" };
    throw err;
  }
  try {
    if (!h.st.isFIFO()) return { state: "not-fifo", kind: kindOf(h.st) };
    if (!hasReader(h.fd)) return { state: "fifo", served: false, held: false };
    const others = new Set<number>();
    const holders = fifoHolders(identity(h.st), others);
    const served = holders.some((x) => x.rdwr) || others.has(h.st.uid);
    return { state: "fifo", served, held: !served };
  } finally {
    closeSync(h.fd);
  }
}

/** A writing end of the FIFO at path: anything that is not a FIFO is refused before it is opened for writing. */
export function openFifoForWriting(path: string): number {
  let h: { fd: number; st: Stats };
  try {
    h = openPath(path);
  } catch (err) {
    throw new PostboxError(`cannot write to the fifo ${path}: ${reason(err)}`);
  }
  try {
    if (!h.st.isFIFO())
      throw new PostboxError(`cannot write to the fifo ${path}: it is ${kindOf(h.st)} (mode ${octal(h.st.mode)}), not a fifo; nothing was written`);
    try {
      return reopen(h.fd, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (err) {
      const why = errnoName(err) === "ENXIO" ? "no postbox is reading it" : reason(err);
      throw new PostboxError(`cannot write to the fifo ${path}: ${why}`);
    }
  } finally {
    closeSync(h.fd);
  }
}
