import { describe, expect, test } from "bun:test";
import { parseForward } from "../src/options.ts";
import { UsageError } from "../src/errors.ts";
import { Frames, headerField, origin, SD_ID, structuredData } from "../src/sinks/syslog.ts";

const o = origin("host.example", 42, "0123456789abcdef");
/** The forwarder's framing, for one record. */
const frame = (rec: Record<string, unknown>, seq = 7) => {
  const f = new Frames();
  f.add(rec, seq, o);
  return Buffer.from(f.bytes());
};

describe("RFC 5424 frames", () => {
  test("octet counting: LEN SP, then PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG", () => {
    const f = frame({ ts: "2026-12-01T09:08:08.123Z", channel: "socket", msg: "hello", pid: 5, uid: 1000, gid: 100, comm: "nc", via: "socket" });
    const text = f.toString("latin1");
    const sp = text.indexOf(" ");
    expect(Number(text.slice(0, sp))).toBe(f.byteLength - sp - 1);
    expect(text.slice(sp + 1)).toBe(
      `<14>1 2026-12-01T09:08:08.123Z host.example postbox 42 socket [${SD_ID} seq="7" stream="0123456789abcdef" channel="socket" pid="5" uid="1000" gid="100" comm="nc" via="socket"] hello`,
    );
  });

  test("a run of records, text and bytes mixed, is the frames one after the other in order", () => {
    const recs = [{ msg: "a" }, { msg_b64: Buffer.from([0xff]).toString("base64") }, { msg: "é" }, { msg: "c" }];
    const run = new Frames();
    recs.forEach((r, i) => run.add(r, i + 1, o));
    expect(Buffer.from(run.bytes()).toString("hex")).toBe(Buffer.concat(recs.map((r, i) => frame(r, i + 1))).toString("hex"));
  });

  test("PARAM-VALUE escapes \", \\ and ]; bad names and non-scalar values are left out", () => {
    expect(structuredData({ channel: "socket", comm: 'a"b\\c]d', "bad name": 1, obj: { x: 1 } }, 1, "s")).toBe(`[${SD_ID} seq="1" stream="s" channel="socket" comm="a\\"b\\\\c\\]d"]`);
  });

  test("MSG bytes: ASCII bare, other UTF-8 after a BOM, msg_b64 raw; an empty MSG drops its SP", () => {
    const tail = (rec: Record<string, unknown>) => [...frame({ channel: "fifo", ...rec })].slice(-5);
    expect(tail({ msg: "abc" })).toEqual([0x5d, 0x20, 0x61, 0x62, 0x63]); // `] abc`
    expect(tail({ msg: "é" })).toEqual([0xef, 0xbb, 0xbf, 0xc3, 0xa9]);
    expect(tail({ msg: "b\\xff", msg_b64: Buffer.from([0x62, 0xff]).toString("base64") })).toEqual([0x22, 0x5d, 0x20, 0x62, 0xff]); // `"] b\xff`
    expect(frame({ ts: "2026-12-01T09:08:08Z", channel: "fifo", msg: "" }).toString().endsWith(`stream="0123456789abcdef" channel="fifo"]`)).toBe(true);
  });

  test("header fields that are not PRINTUSASCII become the NILVALUE; so does a bad timestamp", () => {
    expect(headerField("my host", 255)).toBe("-");
    expect(headerField("h".repeat(256), 255)).toBe("-");
    expect(headerField("box-1.example.org", 255)).toBe("box-1.example.org");
    expect(frame({ ts: "yesterday", channel: "fifo", msg: "x" }).toString()).toContain("<14>1 - host.example");
  });
});

describe("--forward URLs", () => {
  test("tcp and tls, default ports 514 and 6514, IPv6 in brackets", () => {
    expect(parseForward("syslog+tcp://127.0.0.1:5140", {})).toEqual({ tls: false, host: "127.0.0.1", port: 5140, ca: null, cert: null, key: null });
    expect(parseForward("syslog+tcp://logs.example", {})).toMatchObject({ port: 514 });
    expect(parseForward("syslog+tls://[::1]", { ca: "ca.pem" })).toEqual({ tls: true, host: "::1", port: 6514, ca: "ca.pem", cert: null, key: null });
  });

  for (const bad of ["syslog://h:1", "tcp://h:1", "syslog+tcp://h:99999", "syslog+tcp://h:1/path", "syslog+tcp://user@h:1", "syslog+tcp://"]) {
    test(`usage error: ${bad}`, () => expect(() => parseForward(bad, {})).toThrow(UsageError));
  }
  test("TLS files only with syslog+tls, cert and key together", () => {
    expect(() => parseForward("syslog+tcp://h:1", { ca: "x" })).toThrow(UsageError);
    expect(() => parseForward("syslog+tls://h:1", { cert: "x" })).toThrow(UsageError);
  });
});
