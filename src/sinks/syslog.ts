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
function paramValue(v: string): string {
  return /["\\\]]/.test(v) ? v.replace(/["\\\]]/g, (c) => `\\${c}`) : v;
}

/** PARAM-NAME / SD-NAME: 1..32 PRINTUSASCII except `=`, SP, `]`, `"`. */
const SD_NAME = /^[\x21-\x7e]{1,32}$/;
const NOT_SD_NAME = /[= \]"]/;

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$/;
const FIELDS_OUTSIDE_SD = new Set(["ts", "msg", "msg_b64", "channel"]);

/** A parsed store line (the --json object). */
export type StoredRecord = Record<string, unknown>;

/** The STRUCTURED-DATA element: the sequence number and stream first, then the channel and every sender field of the record. */
export function structuredData(rec: StoredRecord, seq: number, stream: string): string {
  let sd = `[${SD_ID} seq="${seq}" stream="${paramValue(stream)}"`;
  if (typeof rec.channel === "string") sd += ` channel="${paramValue(rec.channel)}"`;
  for (const [k, v] of Object.entries(rec)) {
    if (FIELDS_OUTSIDE_SD.has(k) || !SD_NAME.test(k) || NOT_SD_NAME.test(k)) continue;
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") sd += ` ${k}="${paramValue(String(v))}"`;
  }
  return sd + "]";
}

const BOM = new Uint8Array([0xef, 0xbb, 0xbf]);

/**
 * MSG as bytes, exactly what was posted: the raw bytes (msg_b64) when they are not
 * UTF-8 — MSG-ANY, no BOM; UTF-8 with a non-ASCII character starts with the BOM
 * (MSG-UTF8, §6.4); plain ASCII needs none (both readings agree).
 */
export function messageBytes(rec: StoredRecord): Uint8Array {
  if (typeof rec.msg_b64 === "string") return Buffer.from(rec.msg_b64, "base64");
  const text = typeof rec.msg === "string" ? rec.msg : "";
  const utf8 = Buffer.from(text, "utf8");
  if (utf8.byteLength === text.length) return utf8; // ASCII only
  const out = new Uint8Array(BOM.byteLength + utf8.byteLength);
  out.set(BOM);
  out.set(utf8, BOM.byteLength);
  return out;
}

const encoder = new TextEncoder();

/** The whole frame: `LEN SP <14>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [SP MSG]`. */
export function syslogFrame(rec: StoredRecord, seq: number, o: Origin): Uint8Array {
  const ts = typeof rec.ts === "string" && ISO.test(rec.ts) ? rec.ts : NIL;
  const msgId = typeof rec.channel === "string" ? headerField(rec.channel, 32) : NIL;
  const msg = messageBytes(rec);
  const head = encoder.encode(`${PRI}1 ${ts} ${o.hostname} ${o.appName} ${o.procId} ${msgId} ${structuredData(rec, seq, o.stream)}${msg.byteLength > 0 ? " " : ""}`);
  const len = head.byteLength + msg.byteLength;
  const prefix = `${len} `;
  const frame = new Uint8Array(prefix.length + len);
  for (let i = 0; i < prefix.length; i++) frame[i] = prefix.charCodeAt(i);
  frame.set(head, prefix.length);
  frame.set(msg, prefix.length + head.byteLength);
  return frame;
}
