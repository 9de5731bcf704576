// The datagram channel's reader thread (a Worker; the compiled binary carries it
// as a second entrypoint). It blocks in ppoll on the socket, takes every queued
// datagram with recvmsg, and hands them to the main thread in batches: one
// transferred buffer of records per batch, so a burst costs one message per
// batch, not one per datagram. At most MAX_IN_FLIGHT batches wait for the main
// thread; past that the reader waits, the kernel queue fills and senders block:
// memory stays bounded whatever they send.
import { DatagramReceiver } from "../ffi/dgram.ts";
import { reason } from "../errors.ts";

declare const self: Worker;

export interface ReaderSetup {
  fd: number;
  /** An eventfd that wakes the reader to stop. */
  wake: number;
  /** Int32 [batches in flight, stopping]. */
  shared: SharedArrayBuffer;
  /** Largest datagram read whole. */
  capacity: number;
}

export type ReaderMessage =
  | { kind: "batch"; buf: ArrayBuffer; count: number }
  | { kind: "failed"; message: string }
  | { kind: "done" };

/** Per record: stored length, real length, pid, uid, gid (Int32 each), then the bytes, padded to 4. */
export const RECORD_HEADER = 20;
const BATCH_BYTES = 1 << 18;
const MAX_IN_FLIGHT = 4;
/** With a batch in hand and the queue empty, wait this long for more before handing it on. */
const GATHER_US = 50;
/** Datagrams still taken after the stop request (what was queued when it came). */
const DRAIN_MAX = 4096;

// The main thread imports this module for its types and RECORD_HEADER only.
if (!Bun.isMainThread)
  self.onmessage = (e: MessageEvent<ReaderSetup>) => {
    try {
      run(e.data);
    } catch (err) {
      post({ kind: "failed", message: reason(err) });
    }
    post({ kind: "done" });
  };

function post(m: ReaderMessage, transfer?: ArrayBuffer[]): void {
  self.postMessage(m, transfer ?? []);
}

function run(setup: ReaderSetup): void {
  const state = new Int32Array(setup.shared);
  const rx = new DatagramReceiver(setup.fd, setup.wake, setup.capacity);
  let buf = new ArrayBuffer(BATCH_BYTES);
  let ints = new Int32Array(buf);
  let bytes = new Uint8Array(buf);
  let used = 0;
  let count = 0;

  const handOn = (): void => {
    if (count === 0) return;
    // Wait while the main thread is behind (but not once stopping: then everything goes).
    for (let n = Atomics.load(state, 0); n >= MAX_IN_FLIGHT && Atomics.load(state, 1) === 0; n = Atomics.load(state, 0))
      Atomics.wait(state, 0, n, 1000);
    Atomics.add(state, 0, 1);
    post({ kind: "batch", buf, count }, [buf]);
    buf = new ArrayBuffer(BATCH_BYTES);
    ints = new Int32Array(buf);
    bytes = new Uint8Array(buf);
    used = 0;
    count = 0;
  };

  const take = (): void => {
    const stored = Math.min(rx.length, rx.data.byteLength);
    const size = RECORD_HEADER + ((stored + 3) & ~3);
    if (used + size > buf.byteLength) {
      handOn();
      if (size > buf.byteLength) {
        // A datagram larger than a batch travels alone, in a buffer of its own size.
        buf = new ArrayBuffer(size);
        ints = new Int32Array(buf);
        bytes = new Uint8Array(buf);
      }
    }
    const h = used >> 2;
    ints[h] = stored;
    ints[h + 1] = rx.length;
    ints[h + 2] = rx.pid;
    ints[h + 3] = rx.uid;
    ints[h + 4] = rx.gid;
    bytes.set(rx.data.subarray(0, stored), used + RECORD_HEADER);
    used += size;
    count++;
  };

  for (;;) {
    while (rx.receive()) take();
    if (Atomics.load(state, 1) !== 0) break;
    if (count > 0) {
      if (rx.wait(GATHER_US) !== "timeout") continue;
      handOn();
    }
    rx.wait(-1);
  }
  for (let n = 0; n < DRAIN_MAX && rx.receive(); n++) take();
  handOn();
}
