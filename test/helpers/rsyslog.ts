// A real rsyslogd as the collector: foreground, unprivileged-friendly temp config,
// imtcp (optionally TLS through rsyslog-gnutls) on a free loopback port, and two
// omfile outputs: one JSON object per message (header fields, the structured
// data parsed by mmpstrucdata, msg) and the raw msg bytes, one per line.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { have, sh, until } from "../harness.ts";

export const haveRsyslog = have("rsyslogd");
/** certtool for a throwaway CA, and rsyslog-gnutls's TLS driver. */
export const haveTls = have("certtool") && ["x86_64", "aarch64"].some((a) => existsSync(`/usr/lib/${a}-linux-gnu/rsyslog/lmnsd_gtls.so`));

/** What one message looked like at the collector. */
export interface Received {
  host: string;
  app: string;
  procid: string;
  msgid: string;
  sd: Record<string, Record<string, string>>;
  msg: string;
}

/** A port nobody listens on right now (the kernel's pick, then released). */
export async function freePort(): Promise<number> {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

export interface Tls {
  ca: string;
  cert: string;
  key: string;
  /** A client certificate of the same CA, for collectors that ask for one. */
  clientCert: string;
  clientKey: string;
  /** rsyslog's StreamDriver.AuthMode: anon (any client) or x509/certvalid (a client certificate of the CA). */
  authMode?: "anon" | "x509/certvalid";
}

/** A throwaway CA and a server certificate for localhost/127.0.0.1, made with certtool. */
export async function throwawayCa(dir: string): Promise<Tls> {
  writeFileSync(join(dir, "ca.tmpl"), 'cn = "postbox test CA"\nca\ncert_signing_key\nexpiration_days = 2\n');
  writeFileSync(join(dir, "srv.tmpl"), 'cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nencryption_key\nexpiration_days = 2\n');
  writeFileSync(join(dir, "cli.tmpl"), 'cn = "postbox client"\ntls_www_client\nsigning_key\nencryption_key\nexpiration_days = 2\n');
  const r = await sh(
    dir,
    "set -e; certtool --generate-privkey --key-type=ecdsa --outfile ca-key.pem; certtool --generate-self-signed --load-privkey ca-key.pem --template ca.tmpl --outfile ca.pem;" +
      " certtool --generate-privkey --key-type=ecdsa --outfile key.pem; certtool --generate-certificate --load-privkey key.pem --load-ca-certificate ca.pem --load-ca-privkey ca-key.pem --template srv.tmpl --outfile cert.pem;" +
      " certtool --generate-privkey --key-type=ecdsa --outfile ckey.pem; certtool --generate-certificate --load-privkey ckey.pem --load-ca-certificate ca.pem --load-ca-privkey ca-key.pem --template cli.tmpl --outfile ccert.pem",
  );
  if (r.exitCode !== 0) throw new Error(`certtool failed: ${r.stderr}`);
  return { ca: join(dir, "ca.pem"), cert: join(dir, "cert.pem"), key: join(dir, "key.pem"), clientCert: join(dir, "ccert.pem"), clientKey: join(dir, "ckey.pem") };
}

export class Collector {
  private proc: Subprocess<"ignore", "ignore", "pipe"> | null = null;
  readonly out: string;
  readonly raw: string;
  private readonly conf: string;

  constructor(
    readonly dir: string,
    readonly port: number,
    tls?: Tls,
    /** Only the raw msg file (the benchmark: the collector's own JSON work left out). */
    rawOnly = false,
  ) {
    this.out = join(dir, "received.json");
    this.raw = join(dir, "received.raw");
    this.conf = join(dir, "rsyslog.conf");
    const tlsGlobal = tls ? ` DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="${tls.ca}" DefaultNetstreamDriverCertFile="${tls.cert}" DefaultNetstreamDriverKeyFile="${tls.key}"` : "";
    const tlsInput = tls ? ` StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="${tls.authMode ?? "anon"}"` : "";
    writeFileSync(
      this.conf,
      `global(workDirectory="${dir}" maxMessageSize="256k" parser.escapeControlCharactersOnReceive="off"${tlsGlobal})
module(load="imtcp"${tlsInput})
module(load="mmpstrucdata")
input(type="imtcp" address="127.0.0.1" port="${port}" ruleset="in")
template(name="json" type="list") {
  constant(value="{\\"host\\":\\"") property(name="hostname" format="json")
  constant(value="\\",\\"app\\":\\"") property(name="app-name" format="json")
  constant(value="\\",\\"procid\\":\\"") property(name="procid" format="json")
  constant(value="\\",\\"msgid\\":\\"") property(name="msgid" format="json")
  constant(value="\\",\\"sd\\":") property(name="$!rfc5424-sd")
  constant(value=",\\"msg\\":\\"") property(name="msg" format="json")
  constant(value="\\"}\\n")
}
template(name="raw" type="string" string="%msg%\\n")
ruleset(name="in") {
${rawOnly ? "" : `  action(type="mmpstrucdata")\n  action(type="omfile" file="${this.out}" template="json")\n`}  action(type="omfile" file="${this.raw}" template="raw")
}
`,
    );
  }

  /** Start rsyslogd and wait until it accepts connections. */
  async start(): Promise<void> {
    this.proc = Bun.spawn(["rsyslogd", "-n", "-f", this.conf, "-i", join(this.dir, "rsyslog.pid")], { cwd: this.dir, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    const proc = this.proc;
    await until(async () => {
      if (proc.exitCode !== null) throw new Error(`rsyslogd exited ${proc.exitCode}: ${await new Response(proc.stderr).text()}`);
      try {
        const s = await Bun.connect({ hostname: "127.0.0.1", port: this.port, socket: { data() {} } });
        s.end();
        return true;
      } catch {
        return false;
      }
    }, `rsyslogd on port ${this.port}`);
  }

  /** SIGSTOP: a hung collector — its kernel still takes (and acknowledges) bytes into the socket buffer. */
  freeze(): void {
    this.proc?.kill("SIGSTOP");
  }

  thaw(): void {
    this.proc?.kill("SIGCONT");
  }

  /** SIGKILL: no flush, no goodbye (what a crash looks like to the forwarder). */
  async kill9(): Promise<void> {
    this.proc?.kill("SIGKILL");
    await this.proc?.exited;
    this.proc = null;
  }

  async stop(): Promise<void> {
    this.proc?.kill("SIGTERM");
    await this.proc?.exited;
    this.proc = null;
  }

  received(): Received[] {
    if (!existsSync(this.out)) return [];
    const text = readFileSync(this.out, "utf8");
    const out: Received[] = [];
    // a collector killed mid-write leaves a torn line: not a message it kept
    for (const l of text.slice(0, text.lastIndexOf("\n") + 1).split("\n")) {
      try {
        if (l) out.push(JSON.parse(l) as Received);
      } catch {}
    }
    return out;
  }

  /** Our element of a received message. */
  static sd(r: Received): Record<string, string> {
    return r.sd["postbox@32473"] ?? {};
  }

  /** Distinct sequence numbers received, and how many arrived more than once. */
  seqs(): { distinct: Set<number>; duplicates: number; count: number } {
    const all = this.received().map((r) => Number(Collector.sd(r).seq));
    const distinct = new Set(all);
    return { distinct, duplicates: all.length - distinct.size, count: all.length };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill9();
  }
}
