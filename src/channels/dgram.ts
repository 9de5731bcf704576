// Unix datagram channel (path or @name): one datagram is one message, with the
// kernel's SCM_CREDENTIALS of that datagram (SO_PEERCRED means nothing on an
// unconnected datagram socket). A Worker (dgram-reader.ts) does the blocking
// recvmsg loop; this side turns its batches into messages on the main loop.
import { readFileSync, writeSync } from "node:fs";
import { claimDgram, openDgramGate, releaseDgram, type DgramClaim } from "../endpoint.ts";
import { PostboxError, reason } from "../errors.ts";
import { datagramSocket, passCredentials } from "../ffi/dgram.ts";
import { closeFd, eventFd, unixSocketName } from "../ffi/libc.ts";
import { dgramSender, type Sender } from "../format.ts";
import { selfCommand } from "../self.ts";
import { parseSyslog } from "../syslog-parse.ts";
import type { ChannelContext, ChannelHandle } from "../types.ts";
import { DGRAM_READER } from "../workers.ts";
import { RECORD_HEADER, type ReaderMessage, type ReaderSetup } from "./dgram-reader.ts";

export interface DgramOptions {
  /** Who may post: a path's file mode; for an abstract name the same bits, checked on each datagram's uid/gid. */
  mode: number;
  maxMessage: number;
  /** Decode RFC 3164/5424 headers (--syslog). */
  syslog: boolean;
  /** Every field is shown (--json, --store): comm is looked up, senders are made per message. */
  fields: boolean;
}

/** How long close() waits for the reader to hand on what was queued. */
const CLOSE_WAIT_MS = 2000;
const NL = 10;

/** The largest datagram an unprivileged sender can make: its SO_SNDBUF is at most twice wmem_max. */
function largestDatagram(): number {
  try {
    const wmem = Number(readFileSync("/proc/sys/net/core/wmem_max", "utf8"));
    if (Number.isSafeInteger(wmem) && wmem > 0) return Math.min(2 * wmem, 64 << 20);
  } catch {
    // no /proc: the default wmem_max (212992) doubled
  }
  return 425984;
}

/**
 * Claim a path or "@name" now (the endpoint module's rules); senders reach it
 * only at ready(), with the other channels' gates.
 */
export async function openDgram(address: string, opts: DgramOptions, ctx: ChannelContext): Promise<ChannelHandle> {
  const fd = datagramSocket();
  let claim: DgramClaim | null = null;
  try {
    claim = await claimDgram(fd, address, opts.mode);
    passCredentials(fd);
    const served = serveDgram(fd, address, claim, opts, ctx);
    const gated = claim;
    return { ...served, ready: () => openDgramGate(fd, gated) };
  } catch (err) {
    if (claim) releaseDgram(claim);
    closeFd(fd);
    if (err instanceof PostboxError) throw err;
    throw new PostboxError(`cannot receive datagrams at ${address}: ${reason(err)}`);
  }
}

/** A datagram socket passed by systemd (ListenDatagram=): serve it, never unlink anything. */
export function adoptDgram(fd: number, name: string, opts: DgramOptions, ctx: ChannelContext): ChannelHandle {
  let bound = "";
  try {
    bound = unixSocketName(fd);
    passCredentials(fd); // systemd sets it only with PassCredentials=yes
  } catch (err) {
    throw new PostboxError(`cannot use the passed datagram socket ${name}: ${reason(err)}`);
  }
  return serveDgram(fd, bound || name, null, opts, ctx);
}

function serveDgram(fd: number, via: string, claimed: DgramClaim | null, opts: DgramOptions, ctx: ChannelContext): ChannelHandle {
  const wake = eventFd({ nonBlocking: true });
  const shared = new SharedArrayBuffer(8);
  const state = new Int32Array(shared);
  const worker = new Worker(DGRAM_READER);
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  const deliver = datagramDelivery(via, opts, ctx);

  worker.onmessage = (e: MessageEvent<ReaderMessage>) => {
    const m = e.data;
    if (m.kind === "batch") {
      deliver(m.buf, m.count);
      Atomics.sub(state, 0, 1);
      Atomics.notify(state, 0);
    } else if (m.kind === "failed") ctx.warn(`dgram ${via}: the reader stopped: ${m.message}; no more datagrams are taken`);
    else finished();
  };
  worker.onerror = (e) => {
    ctx.warn(`dgram ${via}: the reader failed: ${e.message}`);
    finished();
  };
  const setup: ReaderSetup = { fd, wake, shared, capacity: largestDatagram() };
  worker.postMessage(setup);

  let closing: Promise<void> | undefined;
  const abstract = via.startsWith("@");
  return {
    kind: "dgram",
    where: opts.syslog && !abstract && Bun.which("logger") ? `logger -u ${via} 5` : `${selfCommand()} send --dgram ${via} 5`,
    close: () =>
      (closing ??= (async () => {
        let failure: unknown;
        try {
          if (claimed) releaseDgram(claimed); // new senders find nothing; what is queued is still read
        } catch (err) {
          failure = err;
        }
        Atomics.store(state, 1, 1);
        Atomics.notify(state, 0);
        writeSync(wake, new BigUint64Array([1n]));
        let timer: Timer | undefined;
        await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
        clearTimeout(timer);
        worker.terminate();
        closeFd(wake);
        closeFd(fd);
        if (failure !== undefined) throw new PostboxError(`cannot remove the socket file ${via}: ${reason(failure)}`);
      })()),
  };
}

/** Turns a reader batch into messages: credentials, policy, --syslog, --max-message pieces. */
function datagramDelivery(via: string, opts: DgramOptions, ctx: ChannelContext): (buf: ArrayBuffer, count: number) => void {
  const abstract = via.startsWith("@");
  const myUid = process.getuid?.() ?? 0;
  const myGid = process.getgid?.() ?? 0;
  /** A path's mode is enforced by the kernel; an abstract name's by us, from the same bits. */
  const modeAllows = (cred: { uid: number; gid: number } | null): boolean =>
    !abstract ||
    (opts.mode & 0o002) !== 0 ||
    (cred !== null && (cred.uid === 0 || cred.uid === myUid || ((opts.mode & 0o020) !== 0 && cred.gid === myGid)));
  const senders = new Map<string, Sender>(); // text: one per pid (and severity), checked against uid/gid
  let warnedAt = -Infinity;
  let unwarned = 0;
  /** One warning a second at most: a flood of oversized datagrams must not flood stderr too. */
  const warn = (message: string): void => {
    const now = performance.now();
    if (now - warnedAt < 1000) {
      unwarned++;
      return;
    }
    ctx.warn(unwarned > 0 ? `${message} (and ${unwarned} more warning(s) like it in the last second)` : message);
    warnedAt = now;
    unwarned = 0;
  };
  const who = (pid: number, uid: number, gid: number) => (pid < 0 ? "a datagram sender without credentials" : `datagram sender pid ${pid} (uid ${uid}, gid ${gid})`);

  return (buf, count) => {
    const ints = new Int32Array(buf);
    const bytes = new Uint8Array(buf);
    const comms = new Map<number, string | undefined>(); // per batch: a burst mostly comes from a few processes
    for (let off = 0, i = 0; i < count; i++) {
      const h = off >> 2;
      const stored = ints[h]!;
      const real = ints[h + 1]!;
      const pid = ints[h + 2]!;
      const uid = ints[h + 3]! >>> 0;
      const gid = ints[h + 4]! >>> 0;
      const start = off + RECORD_HEADER;
      off = start + ((stored + 3) & ~3);
      if (!ctx.taking) return;
      const cred = pid < 0 ? null : { pid, uid, gid };
      if (!modeAllows(cred)) {
        warn(`dgram ${via}: refused ${who(pid, uid, gid)}: --mode ${opts.mode.toString(8).padStart(4, "0")} does not let it post`);
        continue;
      }
      if (ctx.restricted && !ctx.allows(cred ? uid : null, () => gid, () => who(pid, uid, gid))) continue;
      if (real > stored) warn(`dgram ${via}: ${who(pid, uid, gid)} sent ${real} bytes; only the first ${stored} could be read`);
      let end = start + stored;
      if (end > start && bytes[end - 1] === NL) end--;
      let from: Sender;
      let body = start;
      const syslog = opts.syslog ? parseSyslog(bytes, start, end) : null;
      if (syslog) {
        body = syslog.msgStart;
        while (end > body && (bytes[end - 1] === 0 || bytes[end - 1] === NL)) end--; // some syslog(3)s end with NUL
      }
      if (opts.fields) {
        if (cred && !comms.has(pid)) comms.set(pid, comm(pid));
        const fields = syslog && { severity: syslog.severity, fields: { facility: syslog.facility, severity: syslog.severity, ...syslog.fields } };
        from = dgramSender(via, cred, cred ? comms.get(pid) : undefined, fields || undefined);
      } else {
        const key = syslog ? `${pid}/${syslog.severity}` : `${pid}`;
        const known = senders.get(key);
        if (known && known.fields.uid === uid && known.fields.gid === gid) from = known;
        else {
          if (senders.size >= 1024) senders.clear();
          from = dgramSender(via, cred, undefined, syslog ? { severity: syslog.severity, fields: {} } : undefined);
          senders.set(key, from);
        }
      }
      const max = opts.maxMessage;
      if (end - body > max) {
        warn(`${from.prefix.slice(0, -2)} sent a datagram of ${end - body} bytes, longer than --max-message ${max}; delivered in pieces`);
        for (; end - body > max; body += max) ctx.deliver(from, bytes, body, body + max);
      }
      ctx.deliver(from, bytes, body, end);
    }
  };
}

function comm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trimEnd();
  } catch {
    return undefined; // the sender already exited
  }
}
