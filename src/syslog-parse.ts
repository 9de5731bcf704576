// Syslog headers (RFC 3164 as logger and glibc syslog(3) send them, and RFC 5424)
// → named fields and where the payload starts. Pure: bytes in, fields out.

const FACILITIES = [
  "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
  "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
] as const;
const SEVERITIES = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"] as const;

export type Severity = (typeof SEVERITIES)[number];

export interface SyslogMessage {
  facility: string;
  severity: Severity;
  /** tag, procid (RFC 3164); app, procid, msgid, sd (RFC 5424); hostname and timestamp when sent. */
  fields: Record<string, string>;
  /** The payload is b[msgStart, end). */
  msgStart: number;
}

const SP = 0x20;
const MONTHS = "JanFebMarAprMayJunJulAugSepOctNovDec";
/** Headers are short; a payload is never scanned for one beyond this. */
const HEADER_MAX = 1024;

/** Parse the syslog header of b[start, end); null when it does not start with a valid <PRI>. */
export function parseSyslog(b: Uint8Array, start = 0, end = b.byteLength): SyslogMessage | null {
  const head = Buffer.from(b.buffer, b.byteOffset + start, Math.min(end - start, HEADER_MAX)).toString("latin1");
  const pri = /^<(\d{1,3})>/.exec(head);
  if (!pri || Number(pri[1]) > 191 || (pri[1]!.length > 1 && pri[1]![0] === "0")) return null;
  const value = Number(pri[1]);
  const base = { facility: FACILITIES[value >> 3]!, severity: SEVERITIES[value & 7]! };
  const text = (from: number, to: number) => Buffer.from(b.buffer, b.byteOffset + start + from, to - from).toString("utf8");
  const at = pri[0].length;
  const rfc5424 = head.startsWith("1 ", at) ? parse5424(head, at + 2, end - start, text) : null;
  const parsed = rfc5424 ?? parse3164(head, at, text);
  return { ...base, fields: parsed.fields, msgStart: start + parsed.msgStart };
}

type Text = (from: number, to: number) => string;

interface Parsed {
  fields: Record<string, string>;
  msgStart: number;
}

/** `Mmm dd hh:mm:ss ` (the day space-padded), as glibc and logger write it; its length or 0. */
function bsdTimestamp(head: string, i: number): number {
  const m = /^([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) /.exec(head.slice(i, i + 16));
  return m && MONTHS.includes(m[1]!) && MONTHS.indexOf(m[1]!) % 3 === 0 ? 16 : 0;
}

/** A TAG with an optional [PID], then ":" — `logger: `, `sshd[812]: `. */
const TAG = /^([^\s[\]:]{1,48})(?:\[([^\]\s]{0,32})\])?:(?: |$)/;

function parse3164(head: string, i: number, text: Text): Parsed {
  const fields: Record<string, string> = {};
  const ts = bsdTimestamp(head, i);
  if (ts > 0) {
    fields.timestamp = head.slice(i, i + ts - 1);
    i += ts;
    // A HOSTNAME comes first when the next word is not a tag but the one after it is.
    const word = /^([^\s:[\]]+) /.exec(head.slice(i, i + 256));
    if (word && !TAG.test(head.slice(i, i + 128)) && TAG.test(head.slice(i + word[0].length, i + word[0].length + 128))) {
      fields.hostname = word[1]!;
      i += word[0].length;
    }
  }
  const tag = TAG.exec(head.slice(i, i + 128));
  if (tag) {
    fields.tag = text(i, i + tag[1]!.length);
    if (tag[2] !== undefined) fields.procid = tag[2];
    i += tag[0].length;
  }
  return { fields, msgStart: i };
}

/** `1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]`, "-" for a field left out. */
function parse5424(head: string, i: number, length: number, text: Text): Parsed | null {
  const names = ["timestamp", "hostname", "app", "procid", "msgid"] as const;
  const fields: Record<string, string> = {};
  for (const name of names) {
    const sp = head.indexOf(" ", i);
    if (sp === -1 || sp === i) return null;
    if (sp - i !== 1 || head[i] !== "-") fields[name] = text(i, sp);
    i = sp + 1;
  }
  if (head[i] === "-") i++;
  else {
    const sdEnd = structuredDataEnd(head, i);
    if (sdEnd < 0) return null;
    fields.sd = text(i, sdEnd);
    i = sdEnd;
  }
  if (i < length && head.charCodeAt(i) !== SP) return null;
  if (i < length) i++;
  if (head.startsWith("\xef\xbb\xbf", i)) i += 3; // the UTF-8 BOM RFC 5424 puts before a UTF-8 MSG
  return { fields, msgStart: i };
}

/** Index just past `[id k="v" …][…]`, or -1 when it is malformed (or longer than the header window). */
function structuredDataEnd(head: string, i: number): number {
  if (head[i] !== "[") return -1;
  let quoted = false;
  for (let k = i; k < head.length; k++) {
    const ch = head[k];
    if (quoted) {
      if (ch === "\\") k++;
      else if (ch === '"') quoted = false;
    } else if (ch === '"') quoted = true;
    else if (ch === "]" && head[k + 1] !== "[") return k + 1;
  }
  return -1;
}
