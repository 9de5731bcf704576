// `postbox log`: one stored line → a checked record, the filters, and its output
// (the serve text line through format.ts, or the stored JSON as it is).
import { jsonSafe, senderOf, writeStamp, writeText, type Sender } from "../format.ts";
import type { Output } from "../output.ts";

/** One message read back from the store. */
export interface StoredRecord {
  /** The line as stored (printed by --json). */
  readonly line: string;
  readonly ts: string;
  readonly channel: string;
  readonly msg: string;
  readonly fields: Readonly<Record<string, unknown>>;
  readonly from: Sender;
}

/** The filters; every one that is set must match (AND). */
export interface LogFilter {
  channels: ReadonlySet<string> | null;
  uids: ReadonlySet<number> | null;
  pids: ReadonlySet<number> | null;
  comms: ReadonlySet<string> | null;
  /** ms since the epoch, inclusive. */
  since: number | null;
  until: number | null;
  grep: RegExp | null;
}

export interface LogOptions {
  /** Store files in reading order; "-" is stdin. */
  files: string[];
  json: boolean;
  timestamps: boolean;
  filter: LogFilter;
  /** -n: the last n matching messages; null = all. */
  lines: number | null;
  reverse: boolean;
  follow: boolean;
}

// serve writes toISOString(); anything else could carry bytes a terminal must not see
const TS = /^[+-]?\d{4,6}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;

/** The record on this line, or why it is not one (for the warning). */
export function parseRecord(line: string): StoredRecord | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return "not JSON";
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "not a JSON object";
  const rec = v as Record<string, unknown>;
  if (typeof rec.ts !== "string" || !TS.test(rec.ts)) return "no valid ts";
  if (typeof rec.msg !== "string" || (rec.msg_b64 !== undefined && typeof rec.msg_b64 !== "string")) return "no valid msg";
  const from = sender(rec);
  if (from === null) return `not a message postbox stores (channel ${JSON.stringify(String(rec.channel).slice(0, 20))})`;
  return { line, ts: rec.ts, channel: from.channel, msg: rec.msg, fields: rec, from };
}

/** Senders by what their prefix is made of (types too: "1" is not 1; a signal's code says whether its pid is known), so that a store from few senders makes few. */
const senders = new Map<string, Sender>();

function sender(rec: Record<string, unknown>): Sender | null {
  const t = (v: unknown) => `${typeof v}${v}`;
  const key = `${t(rec.channel)}|${t(rec.pid)}|${t(rec.uid)}|${t(rec.gid)}|${t(rec.sig)}|${t(rec.code)}|${t(rec.prio)}|${t(rec.severity)}`;
  let from = senders.get(key);
  if (from === undefined) {
    const made = senderOf(rec);
    if (made === null) return null;
    if (senders.size >= 4096) senders.clear();
    senders.set(key, (from = made));
  }
  return from;
}

export function matches(f: LogFilter, r: StoredRecord): boolean {
  if (f.channels !== null && !f.channels.has(r.channel)) return false;
  if (f.uids !== null && !f.uids.has(r.fields.uid as number)) return false;
  if (f.pids !== null && !f.pids.has(r.fields.pid as number)) return false;
  if (f.comms !== null && !f.comms.has(r.fields.comm as string)) return false;
  if (f.since !== null || f.until !== null) {
    const t = Date.parse(r.ts);
    if (f.since !== null && !(t >= f.since)) return false;
    if (f.until !== null && !(t <= f.until)) return false;
  }
  return f.grep === null || f.grep.test(r.msg);
}

const encoder = new TextEncoder();
let scratch = new Uint8Array(1 << 16);

/** One output line: what serve printed for this message (text, or the stored JSON). */
export function writeRecord(out: Output, r: StoredRecord, opts: Pick<LogOptions, "json" | "timestamps">): void {
  if (opts.json) {
    out.utf8(jsonSafe(r.line)); // no `+ "\n"`: flattening that string cost 4x the rest
    out.reserve(1);
    out.buf[out.len++] = 10;
  } else {
    if (opts.timestamps) writeStamp(out, r.ts);
    // the exact bytes serve received: msg_b64 when they were not UTF-8, else msg
    const b64 = r.fields.msg_b64;
    if (typeof b64 === "string") writeText(out, r.from, Buffer.from(b64, "base64"));
    else {
      if (scratch.byteLength < r.msg.length * 3) scratch = new Uint8Array(r.msg.length * 3);
      writeText(out, r.from, scratch, 0, encoder.encodeInto(r.msg, scratch).written);
    }
  }
  out.commit();
}

const UNITS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 };

/**
 * --since/--until: ISO 8601 (a date or date and time; local time unless it has a
 * zone, as journalctl), "now", "today", "yesterday", or a time ago: 10m, 2h, 1h30m, 3d.
 * Returns ms since the epoch, or null when the text is none of these.
 */
export function parseWhen(text: string, now = Date.now()): number | null {
  const t = text.trim();
  if (t === "now") return now;
  if (t === "today" || t === "yesterday") {
    const d = new Date(now);
    d.setHours(0, 0, 0, 0);
    return t === "today" ? d.getTime() : d.setDate(d.getDate() - 1);
  }
  const ago = /^((?:\d+[smhdw])+)(?: ago)?$/.exec(t);
  if (ago) {
    let ms = 0;
    for (const [, n, u] of ago[1]!.matchAll(/(\d+)([smhdw])/g)) ms += Number(n) * UNITS[u!]!;
    return now - ms;
  }
  const iso = /^(\d{4}-\d\d-\d\d)(?:[T ](\d\d:\d\d(?::\d\d(?:\.\d+)?)?))?(Z|[+-]\d\d:?\d\d)?$/.exec(t);
  if (!iso) return null;
  const zone = (iso[3] ?? "").replace(/^([+-]\d\d)(\d\d)$/, "$1:$2");
  const ms = Date.parse(`${iso[1]}T${iso[2] ?? "00:00"}${zone}`);
  return Number.isNaN(ms) ? null : ms;
}
