// A stored record → one RFC 5424 message in RFC 6587 octet-counting framing
// (`LEN SP SYSLOG-MSG`), the form RFC 5425 (TLS) uses too. Pure: unit-tested.

/** Private enterprise number 32473 is the one RFC 5612 reserves for documentation and examples (RFC 5424 §7.2.2 form `name@PEN`). */
export const SD_ID = "postbox@32473";
/** user.info: postbox relays what processes posted; nothing in a message says how severe it is. */
const PRI = "<14>";
const NIL = "-";

/** Fields of the header that are the same for every message of this postbox. */
export interface Origin {
  hostname: string;
  appName: string;
  procId: string;
  /** Names this postbox's sequence (kept with the cursor): receivers de-duplicate by (stream, seq). */
  stream: string;
}

/** RFC 5424 §6.2.4-6.2.6: PRINTUSASCII (33..126) only, bounded; anything else is the NILVALUE. */
export function headerField(value: string, max: number): string {
  return value.length > 0 && value.length <= max && /^[\x21-\x7e]+$/.test(value) ? value : NIL;
}

export function origin(hostname: string, pid: number, stream: string): Origin {
  return { hostname: headerField(hostname, 255), appName: "postbox", procId: String(pid), stream };
}

/** PARAM-VALUE: `"`, `\` and `]` are escaped with a backslash (§6.3.3). */
const TO_ESCAPE = /["\\\]]/;
const TO_ESCAPE_ALL = /["\\\]]/g;
function paramValue(v: string): string {
  return TO_ESCAPE.test(v) ? v.replace(TO_ESCAPE_ALL, (c) => `\\${c}`) : v;
}

/** PARAM-NAME / SD-NAME: 1..32 PRINTUSASCII except `=`, SP, `]`, `"`. Field names repeat: each is checked once. */
const SD_NAME = /^[\x21-\x7e]{1,32}$/;
const NOT_SD_NAME = /[= \]"]/;
const FIELDS_OUTSIDE_SD = new Set(["ts", "msg", "msg_b64", "channel"]);
const paramNames = new Map<string, boolean>();
function isParam(k: string): boolean {
  let ok = paramNames.get(k);
  if (ok === undefined) {
    ok = !FIELDS_OUTSIDE_SD.has(k) && SD_NAME.test(k) && !NOT_SD_NAME.test(k);
    if (paramNames.size < 1000) paramNames.set(k, ok);
  }
  return ok;
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$/;

/** A parsed store line (the --json object). */
export type StoredRecord = Record<string, unknown>;

/** The STRUCTURED-DATA element: the sequence number and stream first, then the channel and every sender field of the record. */
export function structuredData(rec: StoredRecord, seq: number, stream: string): string {
  let sd = `[${SD_ID} seq="${seq}" stream="${paramValue(stream)}"`;
  if (typeof rec.channel === "string") sd += ` channel="${paramValue(rec.channel)}"`;
  for (const k in rec) {
    if (!isParam(k)) continue;
    const v = rec[k];
    if (typeof v === "number") sd += ` ${k}="${v}"`;
    else if (typeof v === "string") sd += ` ${k}="${paramValue(v)}"`;
    else if (typeof v === "boolean") sd += ` ${k}="${v}"`;
  }
  return sd + "]";
}

const BOM = "\ufeff";

/**
 * MSG exactly as posted. Text: ASCII as is; UTF-8 with a non-ASCII character
 * starts with the BOM (MSG-UTF8, §6.4); plain ASCII needs none (both readings
 * agree). Bytes that are not UTF-8 (msg_b64): raw, no BOM (MSG-ANY).
 */
const NON_ASCII = /[^\x00-\x7f]/;

function messageOf(rec: StoredRecord): string | Uint8Array {
  if (typeof rec.msg_b64 === "string") return Buffer.from(rec.msg_b64, "base64");
  const text = typeof rec.msg === "string" ? rec.msg : "";
  return NON_ASCII.test(text) ? BOM + text : text;
}

/**
 * SYSLOG-MSG without its length: `<14>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [SP MSG]`,
 * as a string when MSG is text, as bytes when it is not UTF-8.
 */
export function syslogMessage(rec: StoredRecord, seq: number, o: Origin): string | Uint8Array {
  const ts = typeof rec.ts === "string" && ISO.test(rec.ts) ? rec.ts : NIL;
  const msgId = typeof rec.channel === "string" ? headerField(rec.channel, 32) : NIL;
  const msg = messageOf(rec);
  const head = `${PRI}1 ${ts} ${o.hostname} ${o.appName} ${o.procId} ${msgId} ${structuredData(rec, seq, o.stream)}`;
  if (typeof msg === "string") return msg === "" ? head : `${head} ${msg}`;
  const h = Buffer.from(`${head} `, "utf8");
  const out = new Uint8Array(h.byteLength + msg.byteLength);
  out.set(h);
  out.set(msg, h.byteLength);
  return out;
}

/**
 * RFC 6587 octet-counted frames (`LEN SP SYSLOG-MSG`) for a run of records, as one
 * buffer: text frames are joined into one string and encoded once (per-frame
 * buffers cost more than the framing); a frame whose MSG is bytes goes in as bytes.
 */
export class Frames {
  private readonly parts: Uint8Array[] = [];
  private text = "";

  add(rec: StoredRecord, seq: number, o: Origin): void {
    const m = syslogMessage(rec, seq, o);
    if (typeof m === "string") {
      this.text += `${Buffer.byteLength(m, "utf8")} ${m}`;
      return;
    }
    this.parts.push(Buffer.from(this.text, "utf8"), Buffer.from(`${m.byteLength} `), m);
    this.text = "";
  }

  bytes(): Uint8Array {
    if (this.parts.length === 0) return Buffer.from(this.text, "utf8");
    return Buffer.concat([...this.parts, Buffer.from(this.text, "utf8")]);
  }
}
