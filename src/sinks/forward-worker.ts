// The forwarder's thread: reads the store (only what is fsynced) from the cursor,
// sends each record as an RFC 5424 message, and moves the cursor past what the
// collector has taken. Its own thread, so that a slow or dead collector, the
// framing and the cursor's fdatasync never hold up local delivery.
//
// "Taken" (plain syslog over TCP/TLS has no acknowledgement): the collector's TCP
// has acknowledged the bytes (TIOCOUTQ) and the connection was still up HOLD_MS
// after they were written; at a clean exit, acknowledged is enough. On every
// (re)connect sending starts again at the cursor: what was sent but not taken
// goes out again (duplicates, same sequence numbers), never a gap.
import { hostname } from "node:os";
import { niceThisThread } from "../ffi/libc.ts";
import { saveCursor, type Cursor } from "./cursor.ts";
import { Link, type Target } from "./link.ts";
import { Spool, type Position } from "./spool.ts";
import { Frames, origin, type Origin } from "./syslog.ts";
import type { FromForwarder, ToForwarder } from "./forward.ts";

declare const self: Worker;

const HOLD_MS = 3_000;
/** Forwarding is background work: where the CPU is short, local delivery goes first. */
const NICE = 10;
const TICK_MS = 200;
const BATCH = 256 << 10;

let target: Target;
let spool: Spool;
let link: Link;
let org: Origin;
let cursorFd = -1;
let saved: Cursor | null = null;
let stream = "";
/** What the collector has taken (persisted) and how far sending has got. */
let committed: Position | null = null;
let at: Position | null = null;
/** Bytes the link has not taken yet, and where they end in the spool. */
let unsent: Uint8Array | null = null;
let unsentEnd: Position | null = null;
let checkpoints: { t: number; bytes: number; pos: Position }[] = [];
let buf = new Uint8Array(BATCH);
let skipped = 0;
let lastSkipWarn = -Infinity;
const decoder = new TextDecoder();

const post = (m: FromForwarder) => self.postMessage(m);
const warn = (message: string) => post({ type: "log", level: "warn", message });
const where = () => `syslog+${target.tls ? "tls" : "tcp"}://${target.host.includes(":") ? `[${target.host}]` : target.host}:${target.port}`;

function progress(): void {
  if (!at || !committed) return;
  post({ type: "progress", up: link.up, records: spool.records, sent: at.records, committed: committed.records });
}

/** While sent bytes wait to count as taken, look again every TICK_MS; idle, nothing wakes the thread. */
let tick: Timer | undefined;
function schedule(): void {
  if (tick !== undefined || checkpoints.length === 0) return;
  tick = setTimeout(() => {
    tick = undefined;
    commit();
    progress();
    schedule();
  }, TICK_MS);
}

/** finish() waits for the next drain, disconnection or sync. */
let wake: (() => void) | null = null;
function poke(): void {
  const w = wake;
  wake = null;
  w?.();
}

/** Frames for the complete lines in bytes, numbered from seq + 1; returns the frames, the last number and the records passed (as Spool counts them). */
function frames(bytes: Uint8Array, seq: number): { out: Uint8Array; seq: number; records: number } {
  const out = new Frames();
  let records = 0;
  for (const line of decoder.decode(bytes).split("\n")) {
    if (line === "") continue;
    let rec: Record<string, unknown>;
    try {
      if (!line.endsWith("}")) throw new Error("torn");
      records++;
      rec = JSON.parse(line) as Record<string, unknown>;
      if (typeof rec !== "object" || rec === null) throw new Error("not an object");
    } catch {
      // a torn record (a crash mid-write, sealed later): not a message, no number
      skipped++;
      if (performance.now() - lastSkipWarn > 10_000) {
        lastSkipWarn = performance.now();
        warn(`forwarding: ${skipped} record(s) of the store are not JSON (torn by a crash?): skipped`);
      }
      continue;
    }
    out.add(rec, ++seq, org);
  }
  return { out: out.bytes(), seq, records };
}

/** Send from `at` while the link takes it; drain() calls again. */
function pump(): void {
  while (link.up && at) {
    if (unsent) {
      const n = link.write(unsent);
      if (n < unsent.byteLength) {
        unsent = unsent.subarray(n);
        return;
      }
      checkpoints.push({ t: performance.now(), bytes: link.written, pos: unsentEnd! });
      unsent = null;
      schedule();
    }
    const r = spool.read(at, buf);
    if (r === "longer") {
      buf = new Uint8Array(buf.byteLength * 2);
      continue;
    }
    if (!r) return;
    const { out, seq, records } = frames(r.bytes, r.pos.seq);
    at = { ...r.pos, pos: r.pos.pos + r.bytes.byteLength, seq, records: r.pos.records + records };
    unsent = out;
    unsentEnd = at;
  }
}

/** Move the cursor past every checkpoint the collector has taken; persist it when it moved. */
function commit(final = false): void {
  const acked = link.acked();
  const now = performance.now();
  let moved: Position | null = null;
  while (checkpoints.length > 0) {
    const c = checkpoints[0]!;
    if (c.bytes > acked || (!final && now - c.t < HOLD_MS)) break;
    moved = c.pos;
    checkpoints.shift();
  }
  if (moved) {
    committed = moved;
    persist();
    spool.release(committed.file);
  }
}

function persist(): void {
  if (!committed) return;
  const c: Cursor = { stream, dev: committed.file.dev, ino: committed.file.ino, pos: committed.pos, seq: committed.seq };
  if (saved && saved.ino === c.ino && saved.dev === c.dev && saved.pos === c.pos && saved.seq === c.seq) return;
  try {
    saveCursor(cursorFd, c);
    saved = c;
  } catch (err) {
    warn(`forwarding: cannot save the cursor: ${(err as Error).message}; messages may be sent again after a restart`);
  }
}

let lastDownWarn = -Infinity;
let warnedDown = false;

function up(): void {
  // once per warning: a collector that drops every connection at once is not news each time
  if (warnedDown) post({ type: "log", level: "info", message: `forwarding: connected to ${where()} again` });
  warnedDown = false;
  pump();
  progress();
}

function down(why: string): void {
  // what was sent but not taken goes out again from the cursor
  unsent = null;
  checkpoints = [];
  at = committed;
  const now = performance.now();
  if (now - lastDownWarn > 30_000) {
    lastDownWarn = now;
    warnedDown = true;
    warn(`forwarding: cannot reach ${where()} (${why}); messages wait in the store, retrying`);
  }
  progress();
}

async function finish(ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  let ackWait = 5;
  while (link.up && performance.now() < deadline) {
    pump();
    const left = deadline - performance.now();
    if (unsent || !at) await Promise.race([new Promise<void>((r) => (wake = r)), Bun.sleep(left)]);
    else if (link.acked() === link.written) break;
    else {
      // all written; TCP raises no event when the peer acknowledges it: look again, less often
      await Bun.sleep(Math.min(ackWait, left));
      ackWait = Math.min(ackWait * 2, 100);
    }
  }
  clearTimeout(tick);
  if (link.up) commit(true);
  persist();
  link.close();
  spool.close();
  progress();
  post({ type: "done" });
}

self.onmessage = (e: MessageEvent<ToForwarder>) => {
  const m = e.data;
  switch (m.type) {
    case "init":
      try {
        niceThisThread(NICE);
      } catch {} // not allowed here: forwarding runs at the postbox's own priority
      target = m.target;
      cursorFd = m.cursorFd;
      saved = m.cursor;
      stream = m.cursor?.stream ?? m.stream;
      org = origin(hostname(), m.pid, stream);
      spool = new Spool(m.storePath, warn);
      link = new Link(target, {
        up,
        down: (why) => (down(why), poke()),
        drain: () => (pump(), poke()),
      });
      break;
    case "synced": {
      spool.synced(m, m.size);
      if (at || spool.files.length === 0) {
        pump();
        poke();
        return progress();
      }
      committed = at = spool.begin(saved);
      persist(); // the stream id is durable before its first message goes out
      link.connect();
      progress();
      break;
    }
    case "finish":
      void finish(m.ms);
      break;
  }
};
