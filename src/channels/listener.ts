// A Bun listener that can stop watching its socket and watch it again. Bun has
// no pause: at the open-file limit accept(2) fails with EMFILE, the listening
// socket stays readable, and the loop spins. Paused, a dup of the listening fd
// keeps the socket (and its backlog) alive while Bun forgets it; resumed, Bun
// adopts that fd again. Clients meanwhile wait in the kernel's queue.
import { closeSync, readdirSync, readFileSync } from "node:fs";
import type { SocketHandler } from "bun";
import { numberAfter } from "../chars.ts";
import { dupFd, lowestFreeFd, openFdsIn } from "../ffi/libc.ts";

interface BunListener {
  readonly fd: number;
  stop(closeActive?: boolean): void;
}

// Bun.listen({ fd }) exists at runtime (adopts a listening fd) but is missing from the typings.
const listenFd = Bun.listen as unknown as <T>(o: { fd: number; socket: SocketHandler<T> }) => BunListener;

export class PausableListener<T> {
  private bun: BunListener | null;
  /** While paused: our dup of the listening socket. */
  private held = -1;
  private closed = false;

  private constructor(
    listener: BunListener,
    private readonly handlers: SocketHandler<T>,
  ) {
    this.bun = listener;
  }

  /**
   * Adopt a listening fd (ours or systemd's): stop() of such a listener unlinks
   * nothing; a socket file we bound is the endpoint module's to remove.
   */
  static adopt<T>(fd: number, handlers: SocketHandler<T>): PausableListener<T> {
    return new PausableListener(listenFd({ fd, socket: handlers }), handlers);
  }

  /** Stop watching; connections already accepted go on. Needs one free fd. */
  pause(): void {
    if (this.bun === null) return;
    this.held = dupFd(this.bun.fd);
    this.bun.stop(false);
    this.bun = null;
  }

  resume(): void {
    if (this.bun !== null || this.closed) return;
    this.bun = listenFd({ fd: this.held, socket: this.handlers });
    this.held = -1;
  }

  /** Stop listening and drop the connections. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.bun) this.bun.stop(true);
    else closeSync(this.held);
    this.bun = null;
  }
}

/** Soft RLIMIT_NOFILE (Infinity when it cannot be read). */
export function openFileLimit(): number {
  try {
    // "Max open files            1024                 524288               files": the soft limit
    return numberAfter(readFileSync("/proc/self/limits", "utf8"), "Max open files") ?? Infinity;
  } catch {
    return Infinity;
  }
}

/**
 * Descriptors open in this process right now, or null when it cannot tell
 * (EMFILE: none left to look). `limit` is the soft RLIMIT_NOFILE; `known` how
 * many the caller knows are open (its sockets). Every fd under the lowest free
 * one is open (the kernel hands out the lowest), so only those above it are
 * polled — a few near the limit. Reading /proc/self/fd costs ~50 times more per
 * entry: it is for a wide range with few open (at start).
 */
export function openFds(limit: number, known = 0): number | null {
  try {
    const low = lowestFreeFd();
    if (low === null) return limit;
    const range = limit - low - 1;
    if (range <= 4096 || known >= range / 16) return low + openFdsIn(low + 1, limit);
    return readdirSync("/proc/self/fd").length - 1; // less the one readdir used
  } catch {
    return null;
  }
}
