// Readiness of an fd Bun's event loop cannot watch (an mqd_t): a Worker blocks in
// ppoll on it and tells the main thread "readable". One-shot and level-triggered:
// after telling, the Worker sleeps until rearm(), which the owner calls once it has
// drained the fd — data that came meanwhile makes the next ppoll return at once,
// so no wake-up is lost, and nothing polls while idle.
import { closeFd, eventFd, raiseEventFd } from "../ffi/libc.ts";
import { FDWATCH } from "../workers.ts";

/** The Worker's state word (shared memory): what it should do next. */
export const IDLE = 0; // told "readable", waiting for rearm()
export const ARMED = 1; // watch the fd
export const CLOSED = 2; // stop

/** What the Worker is sent once, at start. */
export interface WatchSetup {
  fd: number;
  /** An eventfd the owner raises to get the Worker out of ppoll at close. */
  wake: number;
  state: Int32Array;
}

/** What the Worker posts back: "readable", or why it stopped watching. */
export type WatchReport = { readable: true } | { failed: string };

export interface FdWatch {
  /** Watch again (call once the fd is drained; a no-op after close). */
  rearm(): void;
  /** Stop the Worker. Safe to call twice. */
  close(): void;
}


/** Watch fd; onReadable runs (on the main thread) once per rearm() when there is data. */
export function watchReadable(fd: number, onReadable: () => void, onFailed: (why: string) => void): FdWatch {
  const state = new Int32Array(new SharedArrayBuffer(4));
  state[0] = ARMED;
  const wake = eventFd();
  let worker: Worker;
  try {
    worker = new Worker(FDWATCH, { name: `fdwatch ${fd}` });
  } catch (err) {
    closeFd(wake);
    throw err;
  }
  let closed = false;
  worker.onmessage = (e: MessageEvent<WatchReport>) => {
    if (closed) return;
    if ("readable" in e.data) onReadable();
    else onFailed(e.data.failed);
  };
  worker.onerror = (e) => {
    e.preventDefault();
    if (!closed) onFailed(`the watcher thread failed: ${e.message}`);
  };
  worker.addEventListener("close", () => closeFd(wake)); // the Worker may poll it until then
  worker.postMessage({ fd, wake, state } satisfies WatchSetup);
  // Left ref'd: with an unref'd Worker and nothing else holding the loop, Bun 1.4.5's
  // loop spins (measured: ~35% of a core while idle). close() ends it.

  return {
    rearm() {
      if (closed) return;
      Atomics.store(state, 0, ARMED);
      Atomics.notify(state, 0);
    },
    close() {
      if (closed) return;
      closed = true;
      Atomics.store(state, 0, CLOSED);
      Atomics.notify(state, 0);
      raiseEventFd(wake);
      worker.terminate();
    },
  };
}
