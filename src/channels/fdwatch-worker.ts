// The fdwatch Worker's entry (see fdwatch.ts): block in ppoll until the fd is
// readable, tell the main thread, sleep until re-armed; CLOSED or the raised
// eventfd ends it.
import { reason } from "../errors.ts";
import { waitReadableOrWoken } from "../ffi/libc.ts";
import { ARMED, CLOSED, IDLE, type WatchReport, type WatchSetup } from "./fdwatch.ts";

declare var self: Worker;

function watch({ fd, wake, state }: WatchSetup): void {
  const tell = (r: WatchReport) => self.postMessage(r);
  for (;;) {
    Atomics.wait(state, 0, IDLE); // at once unless IDLE: until rearm() or close()
    if (Atomics.load(state, 0) === CLOSED) return;
    let ready: ReturnType<typeof waitReadableOrWoken>;
    try {
      ready = waitReadableOrWoken(fd, wake);
    } catch (err) {
      tell({ failed: `cannot watch fd ${fd}: ${reason(err)}` });
      return;
    }
    if (ready === "woken") return;
    // Tell once per arming; close() may have come meanwhile.
    if (ready === "readable" && Atomics.compareExchange(state, 0, ARMED, IDLE) === ARMED) tell({ readable: true });
  }
}

self.onmessage = (e: MessageEvent<WatchSetup>) => watch(e.data);
