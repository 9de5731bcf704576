// C source handed to bun:ffi's cc() (TinyCC), or a prebuilt object to dlopen, by
// path: neither can read the compiled binary's /$bunfs, so the bytes go through a
// memfd (no writable TMPDIR needed).
import { closeSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reason } from "../errors.ts";
import { memfdCreate } from "./libc.ts";

/**
 * Run compile on a path holding source. Where memfd_create is refused (a sandbox),
 * with `tempFallback` the source goes through a private temp dir instead; without
 * it the SysError of memfd_create is thrown. `keepOpen`: the memfd stays open for
 * good (its /proc/self/fd path then names no other file later).
 */
export function withSourcePath<T>(name: string, source: string | Uint8Array, compile: (path: string) => T, opts: { tempFallback?: boolean; keepOpen?: boolean } = {}): T {
  let memfd: number;
  try {
    memfd = memfdCreate(name);
  } catch (refused) {
    if (!opts.tempFallback) throw refused;
    const dir = tmpdir();
    let made: string;
    try {
      made = mkdtempSync(join(dir, "postbox-cc-"));
      writeFileSync(join(made, name), source, { mode: 0o600, flag: "wx" });
    } catch (err) {
      throw new Error(`memfd_create failed: ${reason(refused)}, and no temporary file in ${dir}: ${reason(err)}`);
    }
    try {
      return compile(join(made, name));
    } finally {
      rmSync(made, { recursive: true, force: true });
    }
  }
  let kept = false;
  try {
    writeFileSync(memfd, source);
    const done = compile(`/proc/self/fd/${memfd}`);
    kept = opts.keepOpen === true;
    return done;
  } finally {
    if (!kept) closeSync(memfd);
  }
}
