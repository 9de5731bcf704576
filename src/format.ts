// Message → output: the text line of the SPEC, or one NDJSON object. Text never
// carries a raw control byte or invalid UTF-8: those are written as escapes.
import type { Output } from "./output.ts";
import { Piece } from "./piece.ts";

export type Channel = "fifo" | "socket" | "signal" | "mqueue" | "dgram";

/** Who a message came from; fields appear in --json, prefix starts the text line. */
export interface Sender {
  readonly channel: Channel;
  readonly prefix: string;
  readonly fields: Readonly<Record<string, string | number | boolean | null>>;
  /** prefix as bytes, made on first use (NOT_MADE until then): a connection writes it before every line. */
  prefixPiece: Piece;
  /** The NDJSON bytes after msg's text (`","pid":1,…}\n`), made on first use. */
  jsonTail: Piece;
  /** The NDJSON bytes before msg's text (`{"ts":"…","channel":"…","msg":"`) and the millisecond they name. */
  jsonHead: Piece;
  jsonHeadMs: number;
  /** jsonTail and jsonHead in one piece (between two lines of one read), made with jsonHead. */
  jsonGlue: Piece;
}

/** The value of a sender's cache until it is made (compared by identity). */
const NOT_MADE = new Piece("");

/**
 * Every sender is made here, with its caches already in place: all senders then
 * share one object shape, so filling a new sender's cache does not change its
 * shape under the JIT-compiled writers (which otherwise deoptimized and were
 * recompiled as new connections came in: three FTL compiles of writeTextLines
 * with 100 clients, one with one). A cache not made yet holds NOT_MADE, a Piece
 * like the made ones: `undefined` there was a second type, and a client arriving
 * after a writer was compiled for Pieces sent it back to be compiled again (an
 * FTL exit, BadType; measured while writeTextLines still read the cache itself,
 * as the JSON writers do: with 100 clients two FTL compiles of ~25 ms each on the
 * JIT thread instead of one).
 */
function sender(channel: Channel, prefix: string, fields: Sender["fields"]): Sender {
  return { channel, prefix, fields, prefixPiece: NOT_MADE, jsonTail: NOT_MADE, jsonHead: NOT_MADE, jsonHeadMs: -1, jsonGlue: NOT_MADE };
}

/** Bytes appended at buf[len..]: stdout's Output and the store's buffer. reserve(n) makes room for n more. */
export interface ByteSink {
  buf: Uint8Array;
  /** A DataView of buf's bytes (the fast paths write four bytes at a time). */
  view: DataView;
  len: number;
  reserve(n: number): void;
}

/** Append bytes to out (room is made first). */
export function appendBytes(out: ByteSink, bytes: Uint8Array): void {
  out.reserve(bytes.byteLength);
  out.buf.set(bytes, out.len);
  out.len += bytes.byteLength;
}

export function fifoSender(via: string): Sender {
  return sender("fifo", "fifo: ", { via });
}

export function socketSender(via: string, pid: number, uid: number, gid: number, comm?: string): Sender {
  const fields: Record<string, string | number> = { pid, uid, gid };
  if (comm !== undefined) fields.comm = comm;
  fields.via = via;
  return sender("socket", `socket[pid=${pid},uid=${uid},gid=${gid}]: `, fields);
}

/** si_code of tgkill(): like kill() (SI_USER, 0) the kernel fills pid and uid, and nobody else may send it. */
const SI_TKILL = -6;

/**
 * Whose word a signal's pid and uid are. Other negative si_codes (SI_QUEUE from
 * sigqueue, …) come from rt_sigqueueinfo, where the sender writes them itself:
 * "claimed". pid 0 with a kernel code: the kernel kept no siginfo (its pending
 * queue was full, RLIMIT_SIGPENDING) and zeroed it — nobody knows who sent it.
 */
export function signalIdentity(code: number, pid: number): "kernel" | "claimed" | "unknown" {
  if (code < 0 && code !== SI_TKILL) return "claimed";
  return pid === 0 ? "unknown" : "kernel";
}

export function signalPrefix(pid: number, uid: number, sig: string, code = 0): string {
  if (signalIdentity(code, pid) === "unknown") return `signal[pid=?,uid=?,sig=${sig}]: `;
  return `signal[pid=${pid},uid=${uid},sig=${sig}]: `;
}

/** `prefix` may be passed in from a cache: a burst of signals mostly comes from one sender. */
export function signalSender(pid: number, uid: number, sig: string, value: number, code: number, prefix = signalPrefix(pid, uid, sig, code)): Sender {
  return sender("signal", prefix, signalFields(signalIdentity(code, pid), pid, uid, sig, { value, code }));
}

/** A signal's sender without the value and code of one signal: what the text line, allow lists and --rate need. */
export function signalOrigin(pid: number, uid: number, sig: string, code: number, prefix: string): Sender {
  return sender("signal", prefix, signalFields(signalIdentity(code, pid), pid, uid, sig));
}

/** Fields in the order --json writes them; an unknown sender's pid and uid are null, a claimed one says so. */
function signalFields(identity: ReturnType<typeof signalIdentity>, pid: number, uid: number, sig: string, one?: { value: number; code: number }): Sender["fields"] {
  const who = identity === "unknown" ? { pid: null, uid: null } : { pid, uid };
  return identity === "claimed" ? { ...who, sig, ...one, claimed: true } : { ...who, sig, ...one };
}

/** A datagram's sender (SCM_CREDENTIALS), plus what --syslog decoded from its header. */
export function dgramSender(
  via: string,
  cred: { pid: number; uid: number; gid: number } | null,
  comm?: string,
  syslog?: { severity: string; fields: Readonly<Record<string, string>> },
): Sender {
  // No credentials came with it (never seen with SO_PASSCRED set): an unknown sender, as for signals.
  const fields: Record<string, string | number | null> = cred ? { pid: cred.pid, uid: cred.uid, gid: cred.gid } : { pid: null, uid: null, gid: null };
  if (comm !== undefined) fields.comm = comm;
  fields.via = via;
  if (syslog) Object.assign(fields, syslog.fields);
  const who = cred ? `pid=${cred.pid},uid=${cred.uid},gid=${cred.gid}` : "pid=?,uid=?,gid=?";
  const sev = syslog ? `,sev=${syslog.severity}` : "";
  return sender("dgram", `dgram[${who}${sev}]: `, fields);
}

/** The mq text prefix around the priority's digits (the reader thread writes it for plain messages). */
export const MQUEUE_PREFIX = { before: "mqueue[prio=", after: "]: " } as const;

export function mqueueSender(via: string, prio: number): Sender {
  return sender("mqueue", `${MQUEUE_PREFIX.before}${prio}${MQUEUE_PREFIX.after}`, { prio, via });
}

type Stored = Readonly<Record<string, unknown>>;
const int = (v: unknown): v is number => Number.isSafeInteger(v);
const str = (v: unknown, dflt: string): string => (typeof v === "string" ? v : dflt);

/**
 * How each channel's sender is made again from a stored record (`postbox log`), by
 * the same constructors as serve's, so the text line read back is the line serve
 * printed. Typed by Channel: a new channel does not compile without its entry.
 * Null when the fields cannot be what serve wrote (a prefix must never carry raw bytes).
 */
const FROM_RECORD = {
  fifo: (rec) => fifoSender(str(rec.via, "fifo")),
  socket: (rec) =>
    int(rec.pid) && int(rec.uid) && int(rec.gid)
      ? socketSender(str(rec.via, ""), rec.pid, rec.uid, rec.gid, typeof rec.comm === "string" ? rec.comm : undefined)
      : null,
  signal: (rec) => {
    if (typeof rec.sig !== "string" || !/^SIG[A-Z0-9+-]{1,16}$/.test(rec.sig)) return null;
    const value = int(rec.value) ? rec.value : 0;
    const code = int(rec.code) ? rec.code : 0;
    // a sender the kernel did not record is stored as pid and uid null
    if (rec.pid === null && rec.uid === null) return signalIdentity(code, 0) === "unknown" ? signalSender(0, 0, rec.sig, value, code) : null;
    return int(rec.pid) && int(rec.uid) ? signalSender(rec.pid, rec.uid, rec.sig, value, code) : null;
  },
  mqueue: (rec) => (int(rec.prio) ? mqueueSender(str(rec.via, ""), rec.prio) : null),
  dgram: (rec) => {
    // no credentials: stored as pid, uid and gid null; --syslog: its severity is in the prefix
    const unknown = rec.pid === null && rec.uid === null && rec.gid === null;
    if (!unknown && !(int(rec.pid) && int(rec.uid) && int(rec.gid))) return null;
    if (rec.severity !== undefined && (typeof rec.severity !== "string" || !/^[a-z]{1,10}$/.test(rec.severity))) return null;
    const cred = unknown ? null : { pid: rec.pid as number, uid: rec.uid as number, gid: rec.gid as number };
    const syslog = rec.severity === undefined ? undefined : { severity: rec.severity, fields: {} };
    return dgramSender(str(rec.via, ""), cred, typeof rec.comm === "string" ? rec.comm : undefined, syslog);
  },
} as const satisfies Record<Channel, (rec: Stored) => Sender | null>;

export function senderOf(rec: Stored): Sender | null {
  const make = Object.hasOwn(FROM_RECORD, rec.channel as string) ? FROM_RECORD[rec.channel as Channel] : undefined;
  return make === undefined ? null : make(rec);
}

const HEX = "0123456789abcdef";
const SHORT: Record<number, string> = { 9: "\\t", 10: "\\n", 13: "\\r" };

/** Length of the valid UTF-8 sequence at i (within b[.., end)) that is safe to print, or 0. */
function printableSequence(b: Uint8Array, i: number, end = b.byteLength): number {
  // U+0080..U+009F are C1 controls (CSI = U+009B): escape them.
  if (b[i] === 0xc2 && i + 1 < end && b[i + 1]! < 0xa0) return 0;
  return utf8Sequence(b, i, end);
}

/** Length of the valid (shortest-form, no surrogate, ≤ U+10FFFF) UTF-8 sequence at i, or 0. */
function utf8Sequence(b: Uint8Array, i: number, end: number): number {
  const at = (k: number): number => (i + k < end ? b[i + k]! : 0);
  const c = at(0);
  if (c >= 0xc2 && c <= 0xdf) return cont(at(1)) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (c === 0xe0 && at(1) < 0xa0) return 0; // overlong
    if (c === 0xed && at(1) > 0x9f) return 0; // surrogates
    return cont(at(1)) && cont(at(2)) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (c === 0xf0 && at(1) < 0x90) return 0;
    if (c === 0xf4 && at(1) > 0x8f) return 0;
    return cont(at(1)) && cont(at(2)) && cont(at(3)) ? 4 : 0;
  }
  return 0;
}

function cont(x: number): boolean {
  return (x & 0xc0) === 0x80;
}

/** Write b[start, end) as one line of text: printable UTF-8 as is, everything else escaped. */
export function writeEscaped(out: Output, b: Uint8Array, start = 0, end = b.byteLength): void {
  out.reserve((end - start) * 4);
  out.len = escapeInto(out.buf, out.len, b, start, end);
}

/** Escape b[start, end) into buf at len (room for 4 bytes per input byte is there); returns the new length. */
function escapeInto(buf: Uint8Array, len: number, b: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; ) {
    const c = b[i]!;
    if (c >= 0x20 && c < 0x7f) {
      buf[len++] = c;
      i++;
      continue;
    }
    const n = c >= 0x80 ? printableSequence(b, i, end) : 0;
    if (n > 0) {
      for (let k = 0; k < n; k++) buf[len++] = b[i + k]!;
      i += n;
      continue;
    }
    const short = SHORT[c];
    const esc = short ?? `\\x${HEX[c >> 4]}${HEX[c & 15]}`;
    for (let k = 0; k < esc.length; k++) buf[len++] = esc.charCodeAt(k);
    i++;
  }
  return len;
}

/** The escaped text form as a string (for --json when the bytes are not UTF-8). */
export function escapedText(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.byteLength; ) {
    const c = b[i]!;
    const n = c >= 0x80 ? printableSequence(b, i) : c >= 0x20 && c < 0x7f ? 1 : 0;
    if (n > 0) {
      s += Buffer.from(b.subarray(i, i + n)).toString("utf8");
      i += n;
    } else {
      s += SHORT[c] ?? `\\x${HEX[c >> 4]}${HEX[c & 15]}`;
      i++;
    }
  }
  return s;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// JSON.stringify leaves DEL, C1 controls and the JS line separators raw; a terminal must not see them.
const UNSAFE_IN_JSON = /[\u007f-\u009f\u2028\u2029]/g;
const HAS_UNSAFE = /[\u007f-\u009f\u2028\u2029]/;

let isoMs = -1;
let iso = "";

/** toISOString costs more than the rest of a line: once per millisecond is enough. */
export function timestamp(now?: Date): string {
  if (now) return now.toISOString();
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    iso = new Date(ms).toISOString();
  }
  return iso;
}

/** The sender's fields as the tail of a JSON object (`,"pid":1,…}`), made once per sender. */
const fieldsJson = new WeakMap<Sender, string>();

export function fieldsTail(from: Sender): string {
  let tail = fieldsJson.get(from);
  if (tail === undefined) {
    const f = JSON.stringify(from.fields);
    fieldsJson.set(from, (tail = f === "{}" ? "}" : `,${f.slice(1)}`));
  }
  return tail;
}

/** One NDJSON object (without the newline): ts, channel, msg (msg_b64), then the sender's fields. */
export function jsonLine(from: Sender, body: Uint8Array, now?: Date | string): string {
  let msg: string;
  try {
    msg = JSON.stringify(strictUtf8.decode(body));
  } catch {
    msg = `${JSON.stringify(escapedText(body))},"msg_b64":"${Buffer.from(body).toString("base64")}"`;
  }
  const ts = typeof now === "string" ? now : timestamp(now);
  // comm comes from the sender too (prctl PR_SET_NAME): the whole line is checked
  return jsonSafe(`{"ts":"${ts}","channel":"${from.channel}","msg":${msg}${fieldsTail(from)}`);
}

/** A JSON line with DEL, C1 controls and U+2028/9 written as \\u escapes: safe for a terminal, same value. */
export function jsonSafe(line: string): string {
  return HAS_UNSAFE.test(line) ? line.replace(UNSAFE_IN_JSON, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`) : line;
}

/** --timestamps: the message's ts (ISO 8601, UTC, ms — the store's) and a space before the text line. */
export function writeStamp(out: Output, ts: string): void {
  out.reserve(ts.length + 1);
  for (let i = 0; i < ts.length; i++) out.buf[out.len++] = ts.charCodeAt(i) & 0x7f;
  out.buf[out.len++] = 32;
}

const encoder = new TextEncoder();
/** `{"ts":"<ts>","channel":"` as bytes, remade when ts changes (once per millisecond). */
let headTs = "";
let head = new Uint8Array(0);
/** `","msg":"` after the channel name, per channel. */
const channelBytes = new Map<Channel, Uint8Array>();
/** JSON escapes of the ASCII bytes (as JSON.stringify and jsonSafe write them); undefined: the byte itself. */
const JSON_ESCAPE: (Uint8Array | undefined)[] = Array.from({ length: 128 }, (_, c) => {
  if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) return undefined;
  // DEL by hand, as jsonSafe writes it: no regular expression runs at start (see chars.ts)
  return encoder.encode(c === 0x7f ? "\\u007f" : JSON.stringify(String.fromCharCode(c)).slice(1, -1));
});

/**
 * The NDJSON line of jsonLine (the same bytes, with its newline) appended straight
 * into out: no string is made per line. Sequences that are not UTF-8 take
 * jsonLine (they need escapedText and msg_b64). Returns where in out.buf the line starts.
 */
export function writeJsonLine(out: ByteSink, from: Sender, b: Uint8Array, start: number, end: number, ts = timestamp()): number {
  if (ts !== headTs) {
    headTs = ts;
    head = encoder.encode(`{"ts":"${ts}","channel":"`);
  }
  let mid = channelBytes.get(from.channel);
  if (mid === undefined) channelBytes.set(from.channel, (mid = encoder.encode(`${from.channel}","msg":"`)));
  const tail = jsonTail(from).bytes;
  out.reserve(head.byteLength + mid.byteLength + (end - start) * 6 + tail.byteLength);
  const buf = out.buf;
  const at = out.len;
  let len = at;
  buf.set(head, len);
  len += head.byteLength;
  for (let k = 0; k < mid.byteLength; k++) buf[len++] = mid[k]!;
  for (let i = start; i < end; ) {
    const c = b[i]!;
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) {
      buf[len++] = c;
      i++;
      continue;
    }
    if (c < 0x80) {
      const esc = JSON_ESCAPE[c]!;
      for (let k = 0; k < esc.byteLength; k++) buf[len++] = esc[k]!;
      i++;
      continue;
    }
    const n = utf8Sequence(b, i, end);
    if (n === 0) {
      const line = `${jsonLine(from, b.subarray(start, end), ts)}\n`;
      out.reserve(line.length * 3);
      const off = out.len;
      out.len += encoder.encodeInto(line, out.buf.subarray(off)).written;
      return off;
    }
    // jsonSafe's characters: C1 controls (U+0080..U+009F) and U+2028, U+2029
    const d = b[i + 1]!;
    if (c === 0xc2 && d < 0xa0) len = hexEscape(buf, len, d);
    else if (c === 0xe2 && d === 0x80 && (b[i + 2] === 0xa8 || b[i + 2] === 0xa9)) len = hexEscape(buf, len, 0x2000 | (b[i + 2]! - 0x80));
    else for (let k = 0; k < n; k++) buf[len++] = b[i + k]!;
    i += n;
  }
  for (let k = 0; k < tail.byteLength; k++) buf[len++] = tail[k]!;
  out.len = len;
  return at;
}

/** `","pid":1,…}\n`: what follows msg's text in an NDJSON line, made once per sender. */
export function jsonTail(from: Sender): Piece {
  if (from.jsonTail === NOT_MADE) from.jsonTail = new Piece(`"${jsonSafe(fieldsTail(from))}\n`);
  return from.jsonTail;
}

/** The text prefix as bytes, made once per sender. */
export function prefixPiece(from: Sender): Piece {
  if (from.prefixPiece === NOT_MADE) from.prefixPiece = new Piece(from.prefix);
  return from.prefixPiece;
}

/** `\uXXXX` (lowercase, as jsonSafe writes it). */
function hexEscape(buf: Uint8Array, len: number, u: number): number {
  buf[len++] = 0x5c;
  buf[len++] = 0x75;
  for (let shift = 12; shift >= 0; shift -= 4) buf[len++] = HEX.charCodeAt((u >> shift) & 15);
  return len;
}

/** Append one text line for the message in b[start, end). */
export function writeText(out: Output, from: Sender, b: Uint8Array, start = 0, end = b.byteLength): void {
  const prefix = prefixPiece(from);
  out.reserve(prefix.room + (end - start) * 4 + 1);
  const buf = out.buf;
  let len = prefix.put(out.view, out.len);
  len = escapeInto(buf, len, b, start, end);
  buf[len++] = 10;
  out.len = len;
}
