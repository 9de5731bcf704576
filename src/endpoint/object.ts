// What postbox owns is an object (device + inode) it created or checked, never
// a name: names can be swapped under us, an open fd cannot.
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, unlinkSync, type Stats } from "node:fs";
import { PostboxError, errnoName, reason } from "../errors.ts";

/** open(2)'s O_PATH: a handle on the object itself, no read or write access, no side effects. */
export const O_PATH = 0o10000000;
/** Not in node:fs's constants; Linux's value (every architecture Bun runs on). */
export const O_CLOEXEC = 0o2000000;
/** Flags of every open by name: never follow a symlink in the last component. */
export const NOFOLLOW = constants.O_NOFOLLOW | O_CLOEXEC;

export interface Identity {
  dev: number;
  ino: number;
  /** Birth time (statx btime, ms); 0 where the filesystem keeps none. */
  born: number;
}

/**
 * Device and inode name an object only while it exists: ext4 hands a freed inode
 * number to the next file made, so a file put at our path after ours was removed
 * can carry our old number. Its birth time tells them apart.
 */
export const identity = (st: Stats): Identity => ({ dev: st.dev, ino: st.ino, born: st.birthtimeMs });

/** st is the object id names (a birth time that is not known on either side does not count). */
export const isSame = (st: Stats, id: Identity): boolean =>
  st.dev === id.dev && st.ino === id.ino && (st.birthtimeMs === id.born || st.birthtimeMs === 0 || id.born === 0);

/** An unguessable name part: `bytes` random bytes as hex (Web Crypto; node:crypto is not loaded for it). */
export function randomHex(bytes: number): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("hex");
}

export function lstatOrNull(path: string): Stats | undefined {
  return lstatSync(path, { throwIfNoEntry: false });
}

/** "a regular file", "a symlink", … for messages; "none" when nothing is there. */
export function kindOf(st: Stats | undefined): string {
  if (!st) return "none";
  if (st.isSocket()) return "a socket";
  if (st.isFIFO()) return "a fifo";
  if (st.isSymbolicLink()) return "a symlink";
  if (st.isDirectory()) return "a directory";
  if (st.isFile()) return "a regular file";
  if (st.isCharacterDevice()) return "a character device";
  return "a special file";
}

export const octal = (mode: number): string => `0${(mode & 0o777).toString(8).padStart(3, "0")}`;

/** "uid 65534 (nobody)" */
export function who(uid: number): string {
  try {
    const line = readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .find((l) => l.split(":")[2] === String(uid));
    return line ? `uid ${uid} (${line.split(":")[0]})` : `uid ${uid}`;
  } catch {
    return `uid ${uid}`;
  }
}

/** " (postbox)": the command name of a pid, for messages; "" once it is gone. */
export function comm(pid: number): string {
  try {
    return ` (${readFileSync(`/proc/${pid}/comm`, "utf8").trim()})`;
  } catch {
    return "";
  }
}

/** Why an existing object may not be used as ours (another owner, or wider than maxMode); null if it may. */
export function notOurs(st: Stats, maxMode: number): string | null {
  const euid = process.geteuid?.() ?? 0;
  if (st.uid !== euid) return `it belongs to ${who(st.uid)} (mode ${octal(st.mode)}), not to ${who(euid)}`;
  if ((st.mode & 0o777 & ~maxMode) !== 0) return `its mode ${octal(st.mode)} is wider than --mode ${octal(maxMode)}`;
  return null;
}

/**
 * The opened object must be ours and no wider than maxMode, or fd is closed and
 * the start refused: checked on the descriptor, never on the name. Returns fd.
 */
export function ownedOrClosed(fd: number, maxMode: number, close: (fd: number) => void = closeSync): number {
  let why: string | null;
  try {
    why = notOurs(fstatSync(fd), maxMode);
  } catch (err) {
    close(fd);
    throw err;
  }
  if (why === null) return fd;
  close(fd);
  throw new PostboxError(`${why}; not adopted (remove it, or choose another name)`);
}

/** Remove path only if it still is the object we created; anything else there is left alone. */
export function removeIfSame(path: string, id: Identity): void {
  const st = lstatOrNull(path);
  if (!st || !isSame(st, id)) return;
  try {
    unlinkSync(path);
  } catch {
    // gone in between: nothing of ours is left
  }
}

/**
 * Open (or create with createMode) a regular file of ours by name: never through
 * a symlink, and only if the opened file is ours and no wider than maxMode.
 * Otherwise nothing stays open and the PostboxError says why ("it is a symlink", "it belongs to …").
 */
export function openOwnedFile(path: string, flags: number, createMode: number, maxMode: number): { fd: number; st: Stats } {
  let fd: number;
  try {
    fd = openSync(path, flags | NOFOLLOW, createMode);
  } catch (err) {
    throw new PostboxError(errnoName(err) === "ELOOP" ? "it is a symlink" : reason(err));
  }
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch (err) {
    closeSync(fd);
    throw new PostboxError(reason(err));
  }
  const why = st.isFile() ? notOurs(st, maxMode) : `it is ${kindOf(st)}, not a regular file`;
  if (why === null) return { fd, st };
  closeSync(fd);
  throw new PostboxError(why);
}
