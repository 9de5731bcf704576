// The pidfile: written through a temp file only we can have made (O_EXCL,
// O_NOFOLLOW, an unpredictable name) and renamed into place; removed only if it
// still is the file we wrote.
import { closeSync, constants, fstatSync, openSync, renameSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { PostboxError, reason } from "../errors.ts";
import { identity, lstatOrNull, NOFOLLOW, removeIfSame, type Identity } from "./object.ts";

export interface Pidfile {
  readonly path: string;
  readonly id: Identity;
}

export function writePidfile(path: string): Pidfile {
  const tmp = `${path}.${randomBytes(8).toString("hex")}.tmp`;
  let id: Identity | undefined;
  try {
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW, 0o644);
    try {
      id = identity(fstatSync(fd));
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path); // replaces whatever name was there (a symlink itself, never its target)
    const st = lstatOrNull(path);
    if (!st || st.ino !== id.ino || st.dev !== id.dev) throw new Error("another file took its place right after the rename");
    return { path, id };
  } catch (err) {
    if (id) removeIfSame(tmp, id);
    throw new PostboxError(`cannot write the pidfile ${path}: ${reason(err)}`);
  }
}

/** Remove the pidfile if it still is ours (a newer postbox may have written its own there). */
export function removePidfile(p: Pidfile): void {
  removeIfSame(p.path, p.id);
}
