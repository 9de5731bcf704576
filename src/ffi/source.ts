// C source handed to bun:ffi's cc() (TinyCC) by path: cc() cannot read the compiled
// binary's /$bunfs, so the source goes through a memfd (no writable TMPDIR needed).
import { closeSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reason } from "../errors.ts";
import { memfdCreate } from "./libc.ts";

/**
 * Run compile on a path holding source. Where memfd_create is refused (a sandbox),
 * with `tempFallback` the source goes through a private temp dir instead; without
 * it the SysError of memfd_create is thrown.
 */
export function withSourcePath<T>(name: string, source: string, compile: (path: string) => T, opts: { tempFallback?: boolean } = {}): T {
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
  try {
    writeFileSync(memfd, source);
    return compile(`/proc/self/fd/${memfd}`);
  } finally {
    closeSync(memfd);
  }
}
