// Telling others that the postbox is ready (and when it stops): a pidfile
// written atomically, and sd_notify READY=1 / STOPPING=1 when NOTIFY_SOCKET is set.
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { PostboxError, reason } from "./errors.ts";
import { sendDatagram } from "./ffi/libc.ts";

/** Write the pid to a temp file beside it, then rename: readers never see a partial pidfile. */
export function writePidfile(path: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${process.pid}\n`, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new PostboxError(`cannot write the pidfile ${path}: ${reason(err)}`);
  }
}

export function removePidfile(path: string): void {
  rmSync(path, { force: true });
}

/** sd_notify(3): a no-op unless systemd (or a test) set NOTIFY_SOCKET. Returns an error text, or null. */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const address = env.NOTIFY_SOCKET;
  if (!address) return null;
  try {
    sendDatagram(address, state);
    return null;
  } catch (err) {
    return `cannot notify systemd at ${address}: ${reason(err)}`;
  }
}
