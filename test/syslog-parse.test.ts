import { describe, expect, test } from "bun:test";
import { parseSyslog } from "../src/syslog-parse.ts";

const enc = (s: string) => new TextEncoder().encode(s);
function parse(s: string) {
  const b = enc(s);
  const r = parseSyslog(b);
  return r && { facility: r.facility, severity: r.severity, fields: r.fields, msg: Buffer.from(b.subarray(r.msgStart)).toString("utf8") };
}

describe("RFC 3164 (logger, glibc syslog(3))", () => {
  test("logger -u: <PRI>TIMESTAMP TAG: MSG, no hostname", () => {
    expect(parse("<13>Dec  1 07:30:40 root: hello")).toEqual({
      facility: "user",
      severity: "notice",
      fields: { timestamp: "Dec  1 07:30:40", tag: "root" },
      msg: "hello",
    });
  });

  test("syslog(3) with LOG_PID, LOG_DAEMON|LOG_ERR", () => {
    expect(parse("<27>Nov 30 23:59:59 sshd[812]: Accepted key")).toEqual({
      facility: "daemon",
      severity: "err",
      fields: { timestamp: "Nov 30 23:59:59", tag: "sshd", procid: "812" },
      msg: "Accepted key",
    });
  });

  test("logger --rfc3164: a hostname before the tag", () => {
    expect(parse("<158>Dec 12 01:02:03 box app[7]: x: y")).toEqual({
      facility: "local3",
      severity: "info",
      fields: { timestamp: "Dec 12 01:02:03", hostname: "box", tag: "app", procid: "7" },
      msg: "x: y",
    });
  });

  test("no timestamp, no tag: the rest is the message", () => {
    expect(parse("<0>just text")).toEqual({ facility: "kern", severity: "emerg", fields: {}, msg: "just text" });
    expect(parse("<191>")).toEqual({ facility: "local7", severity: "debug", fields: {}, msg: "" });
  });

  test("not syslog: no <PRI>, a PRI out of range or with a leading zero", () => {
    for (const s of ["hello", "<192>x", "<013>x", "<>x", "<1a>x", "13>x"]) expect(parse(s)).toBeNull();
  });

  test("a payload is bytes as sent (UTF-8 kept, offsets in bytes)", () => {
    expect(parse("<14>Jan  2 03:04:05 tâg: grüße")!.fields.tag).toBe("tâg");
    expect(parse("<14>Jan  2 03:04:05 tâg: grüße")!.msg).toBe("grüße");
  });
});

describe("RFC 5424 (logger --rfc5424)", () => {
  test("every header field, structured data kept as sent", () => {
    expect(parse('<13>1 2026-12-01T07:30:40.123456+00:00 vm root 4242 MID [timeQuality tzKnown="1" isSynced="0"] hello')).toEqual({
      facility: "user",
      severity: "notice",
      fields: {
        timestamp: "2026-12-01T07:30:40.123456+00:00",
        hostname: "vm",
        app: "root",
        procid: "4242",
        msgid: "MID",
        sd: '[timeQuality tzKnown="1" isSynced="0"]',
      },
      msg: "hello",
    });
  });

  test("nil fields are left out; several SD elements with escapes; BOM stripped", () => {
    const r = parse('<165>1 - - - - - [a@1 k="v \\"q\\" \\]"][b@2 x="1"] \ufeffmsg');
    expect(r).toEqual({ facility: "local4", severity: "notice", fields: { sd: '[a@1 k="v \\"q\\" \\]"][b@2 x="1"]' }, msg: "msg" });
    expect(parse("<14>1 - host app - - -")).toEqual({ facility: "user", severity: "info", fields: { hostname: "host", app: "app" }, msg: "" });
  });

  test("a malformed 5424 header falls back to RFC 3164 reading", () => {
    const r = parse("<14>1 2026-12-01T00:00:00Z host [broken");
    expect(r?.severity).toBe("info");
    expect(r?.msg).toBe("1 2026-12-01T00:00:00Z host [broken");
  });
});
