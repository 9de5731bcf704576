// The pidfile: written through a temp file only we can have made (O_EXCL,
// O_NOFOLLOW, an unpredictable name) and renamed into place; removed only if it
// still is the file we wrote.
import { closeSync, constants, fstatSync, openSync, renameSync, writeSync } from "node:fs";
import { PostboxError, reason } from "../errors.ts";
import { identity, isSame, lstatOrNull, NOFOLLOW, randomHex, removeIfSame, type Identity } from "./object.ts";

export interface Pidfile {
  readonly path: string;
  readonly id: Identity;
}

/** The pid, written to a temp file beside `path`; commit() renames it into place. */
export function preparePidfile(path: string): { commit(): Pidfile; discard(): void } {
  const tmp = `${path}.${randomHex(8)}.tmp`;
  let id: Identity | undefined;
  const cannot = (err: unknown) => new PostboxError(`cannot write the pidfile ${path}: ${reason(err)}`);
  const discard = () => {
    if (id) removeIfSame(tmp, id);
  };
  try {
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW, 0o644);
    try {
      id = identity(fstatSync(fd));
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    discard();
    throw cannot(err);
  }
  const written = id;
  return {
    commit() {
      try {
        renameSync(tmp, path); // replaces whatever name was there (a symlink itself, never its target)
        const st = lstatOrNull(path);
        if (!st || !isSame(st, written)) throw new Error("another file took its place right after the rename");
        return { path, id: written };
      } catch (err) {
        discard();
        throw cannot(err);
      }
    },
    discard,
  };
}

/** Remove the pidfile if it still is ours (a newer postbox may have written its own there). */
export function removePidfile(p: Pidfile): void {
  removeIfSame(p.path, p.id);
}
