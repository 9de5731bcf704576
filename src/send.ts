// postbox send: one client for every channel, for machines without nc, kill -q or mq_send.
import { closeSync, writeSync } from "node:fs";
import { openFifoForWriting } from "./endpoint.ts";
import { EXIT, PostboxError, SysError, UsageError, errnoName, reason } from "./errors.ts";
import { mqClose, mqGetattr, mqOpen, mqSend, O_NONBLOCK, O_WRONLY, peerCred, sigqueue, type PeerCred } from "./ffi/libc.ts";
import { DatagramSender } from "./ffi/dgram.ts";
import { signalName } from "./signames.ts";

export type SendTarget =
  | { kind: "socket"; path: string; expectUid?: number | null }
  | { kind: "abstract"; name: string; expectUid?: number | null }
  | { kind: "fifo"; path: string }
  | { kind: "mq"; name: string; prio: number; wait: boolean }
  | { kind: "dgram"; address: string }
  | { kind: "signal"; sig: number; pid: number };

/**
 * --timeout: a postbox that takes nothing for that long (its stdout blocked, so it
 * reads no more) makes send give up instead of waiting for ever. Waiting for our
 * own stdin is not the postbox's fault and never counts.
 */
class Stall {
  private since = performance.now();
  constructor(
    private readonly seconds: number | null,
    private readonly where: string,
  ) {}
  get bounded(): boolean {
    return this.seconds !== null;
  }
  progress(): void {
    this.since = performance.now();
  }
  /** Throws once nothing moved for --timeout seconds. */
  check(): void {
    if (this.seconds !== null && performance.now() - this.since >= this.seconds * 1000) throw this.error();
  }
  /** p, or the timeout error once nothing moved for --timeout seconds from now. */
  async bound<T>(p: Promise<T>): Promise<T> {
    if (this.seconds === null) return p;
    let timer: Timer | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(this.error()), this.seconds! * 1000)));
    try {
      return await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  }
  private error(): PostboxError {
    return new PostboxError(`cannot send to ${this.where}: the postbox took nothing for ${this.seconds} s (is its stdout blocked?); gave up (--timeout)`, EXIT.timeout);
  }
}

/** Hand every message to the kernel channel; throws PostboxError saying what failed. */
export async function send(target: SendTarget, messages: AsyncIterable<string> | Iterable<string>, timeout: number | null = null): Promise<number> {
  switch (target.kind) {
    case "socket":
    case "abstract": {
      const address = target.kind === "socket" ? target.path : `@${target.name}`;
      return sendSocket(address, messages, new Stall(timeout, address), target.expectUid ?? null);
    }
    case "fifo":
      return sendFifo(target.path, messages, new Stall(timeout, target.path));
    case "mq":
      return sendMq(target, messages, new Stall(timeout, target.name));
    case "dgram":
      return sendDgram(target.address, messages);
    case "signal":
      return sendSignal(target, messages);
  }
}

/** One datagram per message; blocks while the receiver's queue is full, as logger does. */
async function sendDgram(address: string, messages: AsyncIterable<string> | Iterable<string>): Promise<number> {
  const why = (err: unknown): string => {
    const code = errnoName(err);
    if (code === "ECONNREFUSED") return "nobody is receiving there (is a postbox serving it with --dgram?)";
    if (code === "ENOENT") return "no such socket (is a postbox serving it with --dgram?)";
    if (code === "EPROTOTYPE") return "that is a stream socket (use --socket)";
    if (code === "EMSGSIZE") return "the message is larger than a datagram may be (the socket's send buffer)";
    return reason(err);
  };
  let sender: DatagramSender;
  try {
    sender = new DatagramSender(address);
  } catch (err) {
    throw new PostboxError(`cannot send to ${address}: ${why(err)}`);
  }
  let n = 0;
  try {
    for await (const m of messages) {
      try {
        sender.send(Buffer.from(m));
      } catch (err) {
        throw new PostboxError(`cannot send to ${address}: ${why(err)}`);
      }
      n++;
    }
  } finally {
    sender.close();
  }
  return n;
}

async function sendSocket(address: string, messages: AsyncIterable<string> | Iterable<string>, stall: Stall, expectUid: number | null): Promise<number> {
  const unix = address.startsWith("@") ? `\0${address.slice(1)}` : address;
  let closed!: () => void;
  const done = new Promise<void>((resolve) => (closed = resolve));
  // The server may half-close while we still write (its --linger ran out between
  // two of our lines): keep writing; close fully only once we are done too.
  let finished = false;
  let serverEnded = false;
  let answer = ""; // a postbox writes to a client only to refuse it
  let socket;
  try {
    socket = await Bun.connect({
      unix,
      allowHalfOpen: true, // the server's half-close must not close our sending side
      socket: {
        data: (_s, chunk) => {
          if (answer.length < 1024) answer += Buffer.from(chunk).toString("utf8");
        },
        end: (s) => {
          serverEnded = true;
          if (finished) s.end();
        },
        close: () => closed(),
        error: () => closed(),
      },
    });
  } catch (err) {
    const code = errnoName(err);
    if (code === "ECONNRESET") throw new PostboxError(`${address}: the postbox closed the connection at once (refused? see its log)`);
    const hint = code === "ECONNREFUSED" || code === "ENOENT" ? "; is a postbox serving there?" : "";
    throw new PostboxError(`cannot connect to ${address}: ${reason(err)}${hint}`);
  }
  if (expectUid !== null) insist(socket, address, expectUid);
  let n = 0;
  for await (const m of messages) {
    // write() may take only part of a big message: keep going until it is all in the kernel.
    let rest = Buffer.from(`${m}\n`);
    while (rest.byteLength > 0) {
      const w = socket.write(rest);
      if (w < 0) throw new PostboxError(`cannot send to ${address}: the connection was closed`);
      if (w > 0) stall.progress();
      rest = rest.subarray(w);
      if (rest.byteLength > 0) {
        stall.check();
        await Bun.sleep(1);
      }
    }
    n++;
  }
  socket.flush();
  finished = true;
  socket.shutdown(); // EOF for the server; then wait until it has read everything and closed
  if (serverEnded) socket.end();
  stall.progress();
  try {
    await stall.bound(done);
  } catch (err) {
    socket.end();
    throw err;
  }
  if (answer !== "") throw new PostboxError(`${address}: ${answer.trim().replace(/^postbox: /, "").split("\n")[0]}`);
  return n;
}

/** --expect-uid: the kernel says who accepted us (SO_PEERCRED); anyone else gets nothing. */
function insist(socket: { end(): void }, address: string, uid: number): void {
  let cred: PeerCred;
  try {
    cred = peerCred((socket as unknown as { fd: number }).fd);
  } catch (err) {
    socket.end();
    throw new PostboxError(`not sending to ${address}: cannot tell who serves it (${reason(err)}) and --expect-uid ${uid} was asked`);
  }
  if (cred.uid === uid) return;
  socket.end();
  throw new PostboxError(`not sending to ${address}: it is served by uid ${cred.uid} (pid ${cred.pid}), not by uid ${uid} (--expect-uid)`);
}

async function sendFifo(path: string, messages: AsyncIterable<string> | Iterable<string>, stall: Stall): Promise<number> {
  const fd = openFifoForWriting(path); // anything but a FIFO is refused, untouched
  let n = 0;
  try {
    for await (const m of messages) {
      // One write per line: lines up to PIPE_BUF arrive whole even among other writers.
      const buf = Buffer.from(`${m}\n`);
      for (let off = 0; off < buf.byteLength; ) {
        try {
          off += writeSync(fd, buf, off);
          stall.progress();
        } catch (err) {
          if (errnoName(err) !== "EAGAIN") throw new PostboxError(`cannot write to the fifo ${path}: ${reason(err)}`);
          stall.check();
          await Bun.sleep(1);
        }
      }
      n++;
    }
  } finally {
    closeSync(fd);
  }
  return n;
}

async function sendMq(t: { name: string; prio: number; wait: boolean }, messages: AsyncIterable<string> | Iterable<string>, stall: Stall): Promise<number> {
  // --wait blocks in mq_send; with --timeout it waits here instead, where a timer can end it.
  const poll = t.wait && stall.bounded;
  let mqd: number;
  try {
    mqd = mqOpen(t.name, O_WRONLY | (t.wait && !poll ? 0 : O_NONBLOCK));
  } catch (err) {
    const why = err instanceof SysError && err.code === "ENOENT" ? "no such queue (is a postbox serving it?)" : reason(err);
    throw new PostboxError(`cannot open the message queue ${t.name}: ${why}`);
  }
  let n = 0;
  try {
    const { msgsize } = mqGetattr(mqd);
    for await (const m of messages) {
      const buf = Buffer.from(m);
      if (buf.byteLength > msgsize) throw new PostboxError(`cannot send to ${t.name}: message of ${buf.byteLength} bytes exceeds the queue's ${msgsize}`);
      let sent: boolean;
      for (;;) {
        try {
          sent = mqSend(mqd, buf, t.prio);
        } catch (err) {
          throw new PostboxError(`cannot send to ${t.name}: ${reason(err)}`);
        }
        if (sent || !poll) break;
        stall.check();
        await Bun.sleep(1);
      }
      stall.progress();
      if (!sent) throw new PostboxError(`cannot send to ${t.name}: the queue is full (use --wait to block until there is room)`);
      n++;
    }
  } finally {
    mqClose(mqd);
  }
  return n;
}

async function sendSignal(t: { sig: number; pid: number }, messages: AsyncIterable<string> | Iterable<string>): Promise<number> {
  let n = 0;
  for await (const m of messages) {
    const v = m.trim();
    if (!/^-?\d+$/.test(v) || Number(v) > 2 ** 31 - 1 || Number(v) < -(2 ** 31))
      throw new UsageError(`cannot send ${JSON.stringify(m)} by signal: the value must be a 32-bit integer`);
    try {
      sigqueue(t.pid, t.sig, Number(v));
    } catch (err) {
      const code = err instanceof SysError ? err.code : "";
      const why = code === "ESRCH" ? "no such process" : code === "EPERM" ? "permission denied (another user's process)" : reason(err);
      throw new PostboxError(`cannot send ${signalName(t.sig)} to pid ${t.pid}: ${why}`);
    }
    n++;
  }
  return n;
}

/** stdin, line by line (a last line without "\n" counts). */
export async function* stdinLines(): AsyncIterable<string> {
  const dec = new TextDecoder();
  let rest = "";
  for await (const chunk of Bun.stdin.stream()) {
    rest += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf("\n")) !== -1) {
      yield rest.slice(0, nl);
      rest = rest.slice(nl + 1);
    }
  }
  rest += dec.decode();
  if (rest !== "") yield rest;
}
