// Endpoints the s6 way: lstat first, probe what is there, replace only what is
// provably stale, never follow a symlink, never touch a stranger's file.
import { closeSync, constants, lstatSync, openSync, unlinkSync } from "node:fs";
import { PostboxError, errnoName, reason } from "./errors.ts";
import { peerCred } from "./ffi/libc.ts";

function what(path: string): string {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return "none";
  if (st.isSocket()) return "socket";
  if (st.isFIFO()) return "fifo";
  if (st.isSymbolicLink()) return "a symlink";
  if (st.isDirectory()) return "a directory";
  if (st.isFile()) return "a regular file";
  return "a special file";
}

/** Connects to a unix socket; resolves the pid serving it, or null when nobody does. */
export async function probeSocket(address: string): Promise<number | null> {
  try {
    const client = await Bun.connect({ unix: address, socket: { data() {} } });
    let pid = 0;
    try {
      pid = peerCred((client as unknown as { fd: number }).fd).pid;
    } catch {
      // the answer matters, not the pid
    }
    client.end();
    return pid;
  } catch (err) {
    const code = errnoName(err);
    if (code === "ECONNREFUSED" || code === "ENOENT") return null;
    throw err;
  }
}

/** Make `path` free for a new listening socket, or explain why it cannot be. */
export async function claimSocketPath(path: string): Promise<void> {
  const kind = what(path);
  if (kind === "none") return;
  if (kind !== "socket")
    throw new PostboxError(`cannot listen on ${path}: ${kind} is in the way (remove it or choose --socket elsewhere)`);
  let pid: number | null;
  try {
    pid = await probeSocket(path);
  } catch (err) {
    throw new PostboxError(`cannot listen on ${path}: cannot tell whether it is in use: ${reason(err)}`);
  }
  if (pid !== null)
    throw new PostboxError(
      `cannot listen on ${path}: another postbox is serving it${pid > 0 ? ` (pid ${pid})` : ""}; stop it or choose another --socket`,
    );
  unlinkSync(path); // stale: nobody accepts on it
}

/** Is there a FIFO at `path` we may read ("reuse"), nothing ("create"), or refuse. */
export function claimFifoPath(path: string): "create" | "reuse" {
  const kind = what(path);
  if (kind === "none") return "create";
  if (kind !== "fifo")
    throw new PostboxError(`cannot use ${path} as the fifo: ${kind} is in the way (remove it or choose --fifo elsewhere)`);
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (err) {
    if (errnoName(err) === "ENXIO") return "reuse"; // no reader: a leftover of ours or of a crash
    throw new PostboxError(`cannot use ${path} as the fifo: ${reason(err)}`);
  }
  closeSync(fd);
  throw new PostboxError(`cannot use ${path} as the fifo: another process (a running postbox?) is reading it`);
}
