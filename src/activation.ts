// systemd socket activation (sd_listen_fds): fds passed from fd 3 on, with
// LISTEN_PID naming us and LISTEN_FDNAMES naming them.
import { fstatSync } from "node:fs";
import { PostboxError } from "./errors.ts";
import { socketType } from "./ffi/dgram.ts";
import { mqGetattr } from "./ffi/libc.ts";

export interface ActivatedFd {
  fd: number;
  kind: "socket" | "dgram" | "fifo" | "mqueue";
  /** LISTEN_FDNAMES entry, or "fd N". */
  name: string;
}

const SD_LISTEN_FDS_START = 3;

/** The fds passed to this process, or [] when it was not socket-activated. Unsets the variables, as sd_listen_fds does. */
export function listenFds(env: NodeJS.ProcessEnv = process.env, pid = process.pid): ActivatedFd[] {
  const { LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES } = env;
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  if (LISTEN_FDS === undefined || Number(LISTEN_PID) !== pid) return [];
  const n = Number(LISTEN_FDS);
  if (!Number.isInteger(n) || n < 0) throw new PostboxError(`LISTEN_FDS=${LISTEN_FDS} is not a count of file descriptors`);
  const names = LISTEN_FDNAMES?.split(":") ?? [];
  return Array.from({ length: n }, (_, i) => {
    const fd = SD_LISTEN_FDS_START + i;
    const name = names[i] && names[i] !== "unknown" ? names[i]! : `fd ${fd}`;
    return { fd, name, kind: classify(fd, name) };
  });
}

function classify(fd: number, name: string): ActivatedFd["kind"] {
  let st;
  try {
    st = fstatSync(fd);
  } catch {
    throw new PostboxError(`socket activation: passed fd ${fd} (${name}) is not open`);
  }
  if (st.isSocket()) return socketType(fd) === "dgram" ? "dgram" : "socket"; // ListenDatagram= or ListenStream=
  if (st.isFIFO()) return "fifo";
  try {
    mqGetattr(fd); // succeeds only on a message queue descriptor
    return "mqueue";
  } catch {
    throw new PostboxError(`socket activation: passed fd ${fd} (${name}) is neither a socket, a FIFO nor a message queue`);
  }
}
