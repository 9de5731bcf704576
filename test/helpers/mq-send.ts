// mq-send NAME PREFIX (--count N | --seconds S) [--every-us U]: blocking mq_send
// of PREFIX0, PREFIX1, … (a sender that waits while the queue is full, as a C
// client would), paced at one message every U µs if asked; prints how many it sent.
import { mqClose, mqOpen, mqSend, O_WRONLY } from "../../src/ffi/libc.ts";

const [name, prefix, ...rest] = process.argv.slice(2);
const opt = (flag: string): number | undefined => {
  const i = rest.indexOf(flag);
  return i === -1 ? undefined : Number(rest[i + 1]);
};
const count = opt("--count") ?? Infinity;
const until = performance.now() + (opt("--seconds") ?? Infinity) * 1000;
const everyMs = (opt("--every-us") ?? 0) / 1000;

const pause = new Int32Array(new SharedArrayBuffer(4)); // Atomics.wait: a sleep finer than 1 ms
const mqd = mqOpen(name!, O_WRONLY);
const t0 = performance.now();
let sent = 0;
while (sent < count && performance.now() < until) {
  if (everyMs > 0) {
    const wait = t0 + sent * everyMs - performance.now();
    if (wait > 0) Atomics.wait(pause, 0, 0, wait);
  }
  mqSend(mqd, Buffer.from(`${prefix}${sent}`), 0);
  sent++;
}
mqClose(mqd);
console.log(sent);
