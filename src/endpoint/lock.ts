// Only one postbox claims a path at a time: an flock on each directory that holds
// one of its paths, taken before the first look at a path and kept until every
// channel is reachable. Losers wait for it, then find the winner serving and
// refuse without touching anything.
import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { PostboxError } from "../errors.ts";
import { tryLock, unlock } from "../ffi/libc.ts";
import { comm, O_CLOEXEC } from "./object.ts";

/**
 * Anyone who can read a directory can flock it, so a hostile user in /tmp could
 * hold the lock forever: the wait is bounded and the error names the holder.
 */
export const LOCK_WAIT_MS = 5_000;
const POLL_MS = 5;

export class DirLocks {
  private constructor(private fds: number[]) {}

  /** Lock the directories of `paths` (in one global order, so two postboxes cannot deadlock). */
  static async acquire(paths: readonly string[], waitMs = LOCK_WAIT_MS): Promise<DirLocks> {
    const dirs = new Map<string, { fd: number; dir: string }>();
    for (const dir of new Set(paths.map((p) => dirname(resolve(p))))) {
      let fd: number;
      try {
        fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | O_CLOEXEC);
      } catch {
        continue; // no such directory: claiming the path says why
      }
      const st = fstatSync(fd);
      const key = `${st.dev}:${st.ino}`;
      if (dirs.has(key)) closeSync(fd);
      else dirs.set(key, { fd, dir });
    }
    const order = [...dirs.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v);
    const locks = new DirLocks([]);
    const deadline = performance.now() + waitMs;
    try {
      for (const { fd, dir } of order) {
        while (!tryLock(fd)) {
          if (performance.now() > deadline) {
            const holder = lockHolder(fstatSync(fd).ino);
            throw new PostboxError(
              `cannot claim a path in ${dir}: the directory has been locked for ${waitMs / 1000} s by ${holder} ` +
                `(a postbox still starting there, or someone holding the lock); postbox waits at most ${waitMs / 1000} s`,
            );
          }
          await Bun.sleep(POLL_MS);
        }
        locks.fds.push(fd);
      }
    } catch (err) {
      for (const { fd } of order) if (!locks.fds.includes(fd)) closeSync(fd); // not locked yet
      locks.release();
      throw err;
    }
    return locks;
  }

  /** Safe to call twice. */
  release(): void {
    for (const fd of this.fds.splice(0)) {
      unlock(fd);
      closeSync(fd);
    }
  }
}

/** "pid 123 (postbox)" from /proc/locks, which lists each flock with its owner. */
function lockHolder(ino: number): string {
  try {
    for (const line of readFileSync("/proc/locks", "utf8").split("\n")) {
      const m = /^\d+:\s+FLOCK\s+\S+\s+WRITE\s+(\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s/.exec(line);
      if (m && Number(m[2]) === ino) return `pid ${m[1]}${comm(Number(m[1]))}`;
    }
  } catch {
    // /proc/locks unreadable: say less
  }
  return "another process";
}
