// postbox wait: returns as soon as a postbox serves at a socket, FIFO or queue —
// the line a CI script puts after starting postbox in the background.
import { fifoServed, probeSocket, type FifoState } from "./endpoint.ts";
import { PostboxError } from "./errors.ts";
import { probeDatagram } from "./ffi/dgram.ts";
import { mqClose, mqOpen, mqStatus, O_NONBLOCK, O_RDONLY } from "./ffi/libc.ts";

export type WaitTarget =
  | { kind: "socket"; address: string }
  | { kind: "fifo"; path: string }
  | { kind: "mq"; name: string }
  | { kind: "dgram"; address: string };

const POLL_MS = 10;
/**
 * A FIFO held by a process that is not a postbox (a `cat`) costs a scan of
 * /proc per probe: while that lasts the polls back off to this, so a waiting
 * CI step does not burn a core.
 */
const SLOW_POLL_MS = 200;

/**
 * Is a postbox serving there right now? Probes never take or disturb a message.
 * "costly": not yet, and finding out took a /proc scan.
 */
export async function probe(t: WaitTarget): Promise<"served" | "no" | "costly"> {
  const answer = (served: boolean) => (served ? "served" : "no");
  switch (t.kind) {
    case "socket":
      try {
        return answer((await probeSocket(t.address.startsWith("@") ? `\0${t.address.slice(1)}` : t.address)) !== null);
      } catch {
        return "no";
      }
    case "fifo": {
      let s: FifoState;
      try {
        s = fifoServed(t.path); // a postbox's reader, not any reader
      } catch {
        return "no";
      }
      if (s.state === "not-fifo") throw new PostboxError(`cannot wait for ${t.path}: it is ${s.kind}, not a fifo (nothing was opened)`);
      if (s.state === "none") return "no";
      return s.served ? "served" : s.held ? "costly" : "no";
    }
    case "mq":
      return answer(mqReader(t.name) !== 0);
    case "dgram":
      try {
        return answer(probeDatagram(t.address) === "live"); // connect(2) only: nothing is sent
      } catch {
        return "no";
      }
  }
}

/**
 * The pid registered for notification on a queue (0 if none), from its status
 * line: a serving postbox keeps the queue claimed (mq_notify SIGEV_NONE), and
 * re-claims it within microseconds of each message. Registering ourselves to find
 * out would make a starting postbox see EBUSY.
 */
function mqReader(name: string): number {
  let mqd: number;
  try {
    mqd = mqOpen(name, O_RDONLY | O_NONBLOCK);
  } catch {
    return 0;
  }
  try {
    return mqStatus(mqd).notifyPid;
  } catch {
    return 0;
  } finally {
    mqClose(mqd);
  }
}

/** Poll until served or the deadline; true when served. */
export async function waitUntilServing(t: WaitTarget, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  let pause = POLL_MS;
  for (;;) {
    const p = await probe(t);
    if (p === "served") return true;
    if (performance.now() >= deadline) return false;
    pause = p === "costly" ? Math.min(SLOW_POLL_MS, pause * 1.5) : POLL_MS; // 10, 15, 22 … 200 ms
    await Bun.sleep(Math.min(pause, Math.max(0, deadline - performance.now())));
  }
}
