// Test-side access to message queues through the same ffi shim.
import { fstatSync } from "node:fs";
import { mqClose, mqGetattr, mqOpen, mqSend, mqUnlink, O_CREAT, O_NONBLOCK, O_WRONLY } from "../../src/ffi/libc.ts";

/** Post messages, creating the queue (0600, 10 x 8192) when missing, like a C mq_send client. */
export function mqPut(name: string, messages: Array<[string, number]>): void {
  const mqd = mqOpen(name, O_WRONLY | O_CREAT | O_NONBLOCK, 0o600, { maxmsg: 10, msgsize: 8192 });
  try {
    for (const [text, prio] of messages) if (!mqSend(mqd, Buffer.from(text), prio)) throw new Error(`${name} is full`);
  } finally {
    mqClose(mqd);
  }
}

/** Permission bits of a queue. */
export function mqMode(name: string): number {
  const mqd = mqOpen(name, O_WRONLY | O_NONBLOCK);
  try {
    return fstatSync(mqd).mode & 0o777;
  } finally {
    mqClose(mqd);
  }
}

export function mqRemove(name: string): void {
  try {
    mqUnlink(name);
  } catch {
    // already gone
  }
}

/** Messages waiting in a queue. */
export function mqWaiting(name: string): number {
  const mqd = mqOpen(name, O_WRONLY | O_NONBLOCK);
  try {
    return mqGetattr(mqd).curmsgs;
  } finally {
    mqClose(mqd);
  }
}
