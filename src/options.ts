// Argument parsing: citty definitions, a strict flag check citty lacks, and
// pure argv → typed options for each command. No I/O but the libc's SIGRTMIN.
import { parseArgs, type ArgsDef, type ParsedArgs } from "citty";
import { onlyChars, onlyDigits } from "./chars.ts";
import { COLOR_MODES, type ColorMode } from "./color.ts";
import type { ActivatedFd } from "./activation.ts";
import { UsageError } from "./errors.ts";
import type { Verbosity } from "./log.ts";
import { parseIdList } from "./policy.ts";
import type { SendTarget } from "./send.ts";
import type { ForwardOptions } from "./sinks/forward.ts";
import { parseSignal } from "./signames.ts";
import { DEFAULTS, type ServeOptions } from "./types.ts";
import type { WaitTarget } from "./wait.ts";
import { parseWhen, type LogFilter, type LogOptions } from "./commands/records.ts";

export const serveArgs = {
  fifo: { type: "string", valueHint: "path", description: `FIFO to read (--no-fifo: none) [${DEFAULTS.fifo}]` },
  socket: { type: "string", valueHint: "path", description: `Unix stream socket to listen on (--no-socket: none) [${DEFAULTS.socket}]` },
  abstract: { type: "string", valueHint: "name", description: "Also listen on the abstract socket @name [off]" },
  mq: { type: "string", valueHint: "name", description: `POSIX message queue (--no-mq: none) [${DEFAULTS.mq}]` },
  signals: {
    type: "string",
    valueHint: "list",
    description: `Signals to take: USR1, USR2, RTMIN, RTMIN+n, RTMAX-n (--no-signals: none) [${DEFAULTS.signals.join(",")}]`,
  },
  dgram: { type: "string", valueHint: "path|@name", description: "Also receive datagrams here (logger -u, syslog(3), sd_notify); repeatable [off]" },
  syslog: { type: "boolean", description: "Decode RFC 3164/5424 headers of datagrams (facility, severity, tag, …)" },
  mode: { type: "string", valueHint: "octal", description: "Permissions of fifo, socket, dgram and mq [0600]" },
  json: { type: "boolean", description: "One JSON object per message (NDJSON) instead of text" },
  timestamps: { type: "boolean", description: "Start each text line with the time it arrived (ISO 8601, UTC)" },
  store: { type: "string", valueHint: "file", description: "Also append every message to file as NDJSON, fsynced (SIGHUP reopens it)" },
  forward: { type: "string", valueHint: "url", description: "Forward every stored message, at least once: syslog+tcp://host:port or syslog+tls://host:port (needs --store)" },
  "forward-ca": { type: "string", valueHint: "file", description: "syslog+tls: CA certificates (PEM) to verify the collector [the system's]" },
  "forward-cert": { type: "string", valueHint: "file", description: "syslog+tls: client certificate (PEM) to present" },
  "forward-key": { type: "string", valueHint: "file", description: "syslog+tls: key (PEM) of --forward-cert" },
  "max-message": { type: "string", valueHint: "bytes", description: `Longer lines are delivered in pieces [${DEFAULTS.maxMessage}]` },
  "max-connections": { type: "string", valueHint: "n", description: `Socket clients at once [${DEFAULTS.maxConnections}]` },
  "idle-timeout": { type: "string", valueHint: "s", description: `Close silent socket clients after s seconds, 0 = never [${DEFAULTS.idleTimeout}]` },
  linger: {
    type: "string",
    valueHint: "ms",
    description: `Half-close a socket client quiet for ms after a complete line, 0 = never [${DEFAULTS.linger}]`,
  },
  pidfile: { type: "string", valueHint: "file", description: "Write the pid here once ready (removed at exit)" },
  count: { type: "string", valueHint: "n", description: "Exit 0 after n messages (that match --match)" },
  timeout: { type: "string", valueHint: "s", description: "Exit 3 after s seconds unless --count was reached" },
  match: { type: "string", valueHint: "regex", description: "Only messages matching regex count towards --count" },
  "allow-uid": { type: "string", valueHint: "list", description: "Only these users may post by socket or signal (uids or names)" },
  "allow-gid": { type: "string", valueHint: "list", description: "Only these groups may post by socket or signal (gids or names)" },
  rate: { type: "string", valueHint: "n/s", description: "At most n messages a second per sender uid (socket, signals)" },
  quiet: { type: "boolean", alias: "q", description: "Only warnings and errors on stderr" },
  verbose: { type: "boolean", alias: "v", description: "Debug diagnostics on stderr" },
} as const satisfies ArgsDef;

/** Options that take `--no-<name>`. */
export const NEGATABLE: ReadonlySet<string> = new Set(["fifo", "socket", "mq", "signals"]);

/** Options every command takes; the CLI handles them before dispatch. */
export const globalArgs = {
  color: { type: "string", valueHint: "when", description: "Colour on stderr/stdout: auto (only on a terminal, off with NO_COLOR), always, never [auto]" },
  help: { type: "boolean", alias: "h", description: "Show the help (of the command given)" },
  version: { type: "boolean", alias: "V", description: "Print the version and build: git commit, target, Bun version" },
} as const satisfies ArgsDef;

/** `--color=when` / `--color when` anywhere before `--`: the mode and argv without it. */
export function takeColor(raw: readonly string[]): { color: ColorMode; rest: string[] } {
  let color: ColorMode = "auto";
  const rest: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const tok = raw[i]!;
    if (tok === "--") {
      rest.push(...raw.slice(i));
      break;
    }
    if (tok !== "--color" && !tok.startsWith("--color=")) {
      rest.push(tok);
      continue;
    }
    const value = tok === "--color" ? raw[++i] : tok.slice("--color=".length);
    if (value === undefined || !(COLOR_MODES as readonly string[]).includes(value))
      throw new UsageError(`--color must be auto, always or never, got ${value === undefined ? "nothing" : JSON.stringify(value)}`);
    color = value as ColorMode;
  }
  return { color, rest };
}

/** `-q` (min 1), `-qv` (min 2): a dash and at least min letters, nothing else. */
function dashLetters(tok: string, min: number): boolean {
  if (tok.length < min + 1 || tok[0] !== "-") return false;
  for (let i = 1; i < tok.length; i++) {
    const c = tok.charCodeAt(i) | 0x20; // lower case
    if (c < 97 || c > 122) return false;
  }
  return true;
}

/** `-qv` → `-q -v`: every letter must be a boolean's short alias, else one clear error. */
export function expandShortFlags(raw: readonly string[], def: ArgsDef): string[] {
  const booleans = new Set<string>();
  for (const d of Object.values(def)) if (d.type === "boolean" && "alias" in d && d.alias !== undefined) [d.alias].flat().forEach((a) => booleans.add(a));
  const out: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const tok = raw[i]!;
    if (tok === "--") {
      out.push(...raw.slice(i));
      break;
    }
    if (!dashLetters(tok, 2) || booleans.size === 0) {
      out.push(tok);
      continue;
    }
    for (const c of tok.slice(1)) {
      if (!booleans.has(c)) {
        const known = [...booleans].map((b) => `-${b}`).join(", ");
        throw new UsageError(`unknown option -${c} in ${tok}${known ? ` (short options here: ${known}; combine only those)` : ""}`);
      }
      out.push(`-${c}`);
    }
  }
  return out;
}

/**
 * citty accepts any flag and ignores the unknown ones: a typo like `--sockt x`
 * would silently run with defaults. Check every token against the definition.
 */
export function checkFlags(raw: readonly string[], def: ArgsDef, negatable: ReadonlySet<string> = NEGATABLE): string[] {
  raw = expandShortFlags(raw, def);
  const positionals: string[] = [];
  const byName = new Map<string, string>();
  for (const [name, d] of Object.entries(def)) {
    byName.set(name, name);
    const aliases = "alias" in d && d.alias !== undefined ? [d.alias].flat() : [];
    for (const a of aliases) byName.set(a, name);
  }
  for (let i = 0; i < raw.length; i++) {
    const tok = raw[i]!;
    if (tok === "--") {
      positionals.push(...raw.slice(i + 1));
      break;
    }
    if (!tok.startsWith("-") || tok === "-" || onlyDigits(tok, 1)) {
      positionals.push(tok);
      continue;
    }
    const body = tok.slice(tok.startsWith("--") ? 2 : 1);
    const eq = body.indexOf("=");
    const flag = eq === -1 ? body : body.slice(0, eq);
    if (flag.startsWith("no-") && negatable.has(flag.slice(3)) && eq === -1) continue;
    const name = byName.get(flag);
    if (name === undefined) throw new UsageError(`unknown option ${tok.slice(0, tok.length - body.length)}${flag}`);
    const type = def[name]!.type;
    if (type === "boolean") {
      if (eq !== -1) throw new UsageError(`option --${name} takes no value`);
    } else if (eq === -1) {
      if (i + 1 >= raw.length) throw new UsageError(`option --${name} needs a value`);
      i++;
    }
  }
  if (positionals.length > 0 && !Object.values(def).some((d) => d.type === "positional"))
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  return positionals;
}

/**
 * The values of checked argv (checkFlags passed it), as citty's parseArgs gives
 * them: a string option's last value, true for a boolean, false for --no-<name>
 * (whatever its place), an alias under its option's name too. The serve path
 * takes this instead of citty's parser, which runs node:util's parseArgs and
 * keeps that code resident for the daemon's life (measured: ~0.7 MiB of idle RSS).
 */
export function flagValues(raw: readonly string[], def: ArgsDef): Record<string, string | boolean> {
  const byName = new Map<string, string>();
  for (const [name, d] of Object.entries(def)) {
    byName.set(name, name);
    if ("alias" in d && d.alias !== undefined) for (const a of [d.alias].flat()) byName.set(a, name);
  }
  const out: Record<string, string | boolean> = {};
  const negated: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const tok = raw[i]!;
    if (tok === "--") break;
    const long = tok.startsWith("--");
    if (!long && !(tok.length === 2 && dashLetters(tok, 1))) continue; // a positional (checkFlags ruled on it)
    const body = tok.slice(long ? 2 : 1);
    if (long && body.startsWith("no-") && !body.includes("=")) {
      negated.push(body.slice(3));
      continue;
    }
    const eq = long ? body.indexOf("=") : -1;
    const name = byName.get(eq === -1 ? body : body.slice(0, eq));
    if (name === undefined) continue;
    if (def[name]!.type === "boolean") out[name] = true;
    else out[name] = eq === -1 ? (raw[++i] ?? "") : body.slice(eq + 1);
  }
  for (const name of negated) out[name] = false;
  for (const [name, d] of Object.entries(def))
    if ("alias" in d && d.alias !== undefined && name in out) for (const a of [d.alias].flat()) out[a] = out[name]!;
  return out;
}

/** The longest timer Node/Bun can arm: 2^31-1 ms; longer ones fire at once with a warning. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_TIMER_S = Math.floor(MAX_TIMER_MS / 1000); // 2147483 s, about 24.8 days

function integer(value: string | undefined, flag: string, dflt: number, min: number, max: number = Number.MAX_SAFE_INTEGER, why = ""): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw new UsageError(`--${flag} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}${why}, got ${JSON.stringify(value)}`);
  return n;
}

function seconds(value: string | undefined, flag: string, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n <= MAX_TIMER_S))
    throw new UsageError(`--${flag} must be a number of seconds from 0 to ${MAX_TIMER_S} (about 24 days, the longest timer), got ${JSON.stringify(value)}`);
  return n;
}

function regex(source: string): RegExp {
  try {
    return new RegExp(source);
  } catch (err) {
    throw new UsageError(`--match: ${(err as Error).message}`);
  }
}

function idList(list: string, flag: string, db: "/etc/passwd" | "/etc/group"): Set<number> {
  try {
    return parseIdList(list, db);
  } catch (err) {
    throw new UsageError(`--${flag}: ${(err as Error).message}`);
  }
}

function rate(text: string): number {
  const m = /^(\d+)(?:\/s)?$/.exec(text);
  if (!m || Number(m[1]) < 1) throw new UsageError(`--rate must look like 100/s, got ${JSON.stringify(text)}`);
  return Number(m[1]);
}

/** sun_path holds 108 bytes with its NUL (an abstract name: 107 after its leading NUL). */
const SUN_PATH_MAX = 107;

function socketAddress(value: string | null, flag: string): string | null {
  if (value !== null && Buffer.byteLength(value) > SUN_PATH_MAX)
    throw new UsageError(`--${flag} is ${Buffer.byteLength(value)} bytes long; a unix socket address holds at most ${SUN_PATH_MAX} (use a shorter or relative path)`);
  return value;
}

/** "@name" or "name" → name; "@" alone would listen on (or dial) the empty abstract name. */
function abstractName(value: string | null): string | null {
  if (value === null) return null;
  const name = value.replace(/^@/, "");
  if (name === "") throw new UsageError("--abstract needs a name after the @");
  return socketAddress(name, "abstract");
}

/** Linux PATH_MAX (4096 with the NUL) and NAME_MAX (255 per component): longer fails as ENAMETOOLONG. */
const PATH_MAX = 4095;
const NAME_MAX = 255;

function filePath(value: string | null, flag: string): string | null {
  if (value === null) return null;
  const bytes = Buffer.byteLength(value);
  if (bytes > PATH_MAX) throw new UsageError(`--${flag} is ${bytes} bytes long; a path holds at most ${PATH_MAX}`);
  const part = value.split("/").find((c) => Buffer.byteLength(c) > NAME_MAX);
  if (part !== undefined)
    throw new UsageError(`--${flag} has a ${Buffer.byteLength(part)}-byte name in it (${JSON.stringify(part.slice(0, 12) + "…")}); a file name holds at most ${NAME_MAX} bytes`);
  return value;
}

/**
 * Longest line delivered whole. Each client's unfinished line is held in memory up
 * to this size and its escaped text can take 4 times as much: 16 MiB keeps one
 * line within 64 MiB of output buffer. Longer lines still arrive, in pieces.
 */
const MAX_MESSAGE = 16 << 20;
/** More clients than the kernel's default fs.nr_open could hold fds for. */
const MAX_CONNECTIONS = 1 << 20;
/** mq priorities are 0 .. MQ_PRIO_MAX-1 (32767 on Linux). */
const MQ_PRIO_TOP = 32767;
/** pid_t is an int: anything above is not a process (below it the kernel answers ESRCH). */
const PID_TOP = 2 ** 31 - 1;

/** Every value of a repeatable option (citty keeps only the last). */
function repeated(raw: readonly string[], flag: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const tok = raw[i]!;
    if (tok === "--") break;
    if (tok === `--${flag}`) values.push(raw[++i] ?? "");
    else if (tok.startsWith(`--${flag}=`)) values.push(tok.slice(flag.length + 3));
  }
  return values;
}

/** A datagram address: a path, or @name for the abstract namespace. */
function dgramAddress(value: string, flag = "dgram"): string {
  if (value === "" || value === "@") throw new UsageError(`--${flag} needs a path or @name`);
  return socketAddress(value, flag)!;
}

/** A path option: its value, null for --no-<name>, or the default. */
function pathOption(value: unknown, flag: string, dflt: string): string | null {
  if (value === false) return null;
  if (value === undefined || value === true) return dflt;
  if (typeof value !== "string" || value === "") throw new UsageError(`--${flag} needs a non-empty value`);
  return value;
}

const DEFAULT_PORT = { tcp: 514, tls: 6514 } as const;

/** --forward URL (and the TLS files) → ForwardOptions. Only syslog+tcp and syslog+tls, a host, an optional port. */
export function parseForward(url: string, files: { ca?: string; cert?: string; key?: string }): ForwardOptions {
  const m = /^syslog\+(tcp|tls):\/\/(\[[0-9a-fA-F:.]+\]|[^/:@?#\[\]\s]+)(?::(\d{1,5}))?\/?$/.exec(url);
  if (!m) throw new UsageError(`--forward must look like syslog+tcp://host:port or syslog+tls://host:port, got ${JSON.stringify(url)}`);
  const tls = m[1] === "tls";
  const port = m[3] === undefined ? DEFAULT_PORT[tls ? "tls" : "tcp"] : Number(m[3]);
  if (port < 1 || port > 65535) throw new UsageError(`--forward: port ${port} is out of range (1-65535)`);
  if (!tls && (files.ca ?? files.cert ?? files.key) !== undefined) throw new UsageError("--forward-ca, --forward-cert and --forward-key go with a syslog+tls:// --forward");
  if ((files.cert === undefined) !== (files.key === undefined)) throw new UsageError("--forward-cert and --forward-key go together");
  return { tls, host: m[2]!.replace(/^\[(.*)\]$/, "$1"), port, ca: files.ca ?? null, cert: files.cert ?? null, key: files.key ?? null };
}

/** argv (after "serve") → checked ServeOptions. Pure but for the libc's SIGRTMIN lookup. */
export function parseServe(raw: string[], activated: ActivatedFd[] = []): ServeOptions {
  raw = expandShortFlags(raw, serveArgs);
  checkFlags(raw, serveArgs);
  const a = flagValues(raw, serveArgs) as ParsedArgs<typeof serveArgs>;
  const modeText = a.mode ?? "0600";
  const octal = (modeText.length === 3 || (modeText.length === 4 && modeText[0] === "0")) && onlyChars(modeText, 48, 55); // 0?[0-7]{3}
  if (!octal) throw new UsageError(`--mode must be octal permissions like 0600 or 666, got ${JSON.stringify(modeText)}`);
  let mq = pathOption(a.mq, "mq", DEFAULTS.mq);
  if (mq !== null && (mq.length < 2 || mq[0] !== "/" || mq.includes("/", 1) || Buffer.byteLength(mq) > NAME_MAX))
    throw new UsageError(`--mq must look like /name (one leading slash, no other, at most ${NAME_MAX} bytes), got ${JSON.stringify(mq)}`);
  const sigText = (a.signals as unknown) === false ? null : (a.signals ?? DEFAULTS.signals.join(","));
  let signals: number[] = [];
  if (sigText !== null) {
    try {
      signals = [...new Set(sigText.split(",").filter((s) => s.trim() !== "").map(parseSignal))];
    } catch (err) {
      throw new UsageError(`--signals: ${(err as Error).message}`);
    }
  }
  const abstract = a.abstract === undefined ? null : abstractName(pathOption(a.abstract, "abstract", ""));
  if (a.quiet && a.verbose) throw new UsageError("--quiet and --verbose exclude each other");
  if (a.match !== undefined && a.count === undefined) throw new UsageError("--match goes with --count");
  const verbosity: Verbosity = a.quiet ? "quiet" : a.verbose ? "verbose" : "normal";
  const opts: ServeOptions = {
    fifo: filePath(pathOption(a.fifo, "fifo", DEFAULTS.fifo), "fifo"),
    socket: socketAddress(pathOption(a.socket, "socket", DEFAULTS.socket), "socket"),
    abstract,
    mq,
    signals,
    dgram: [...new Set(repeated(raw, "dgram").map((v) => dgramAddress(v)))],
    syslog: a.syslog === true,
    mode: parseInt(modeText, 8),
    json: a.json === true,
    timestamps: a.timestamps === true,
    maxMessage: integer(a["max-message"], "max-message", DEFAULTS.maxMessage, 1, MAX_MESSAGE, " (longer lines come in pieces)"),
    maxConnections: integer(a["max-connections"], "max-connections", DEFAULTS.maxConnections, 1, MAX_CONNECTIONS),
    idleTimeout: seconds(a["idle-timeout"], "idle-timeout", DEFAULTS.idleTimeout),
    linger: integer(a.linger, "linger", DEFAULTS.linger, 0, MAX_TIMER_MS, " ms"),
    store: a.store === undefined ? null : filePath(pathOption(a.store, "store", ""), "store"),
    forward: null,
    activated,
    pidfile: a.pidfile === undefined ? null : filePath(pathOption(a.pidfile, "pidfile", ""), "pidfile"),
    count: a.count === undefined ? null : integer(a.count, "count", 0, 1),
    timeout: a.timeout === undefined ? null : seconds(a.timeout, "timeout", 0),
    match: a.match === undefined ? null : regex(a.match),
    allowUids: a["allow-uid"] === undefined ? null : idList(a["allow-uid"], "allow-uid", "/etc/passwd"),
    allowGids: a["allow-gid"] === undefined ? null : idList(a["allow-gid"], "allow-gid", "/etc/group"),
    rate: a.rate === undefined ? null : rate(a.rate),
    verbosity,
  };
  const tlsFiles = { ca: a["forward-ca"], cert: a["forward-cert"], key: a["forward-key"] };
  if (a.forward !== undefined) {
    if (opts.store === null) throw new UsageError("--forward needs --store <file>: messages are forwarded from the store, so that none is lost while the collector is away");
    opts.forward = parseForward(a.forward, tlsFiles);
  } else if (Object.values(tlsFiles).some((v) => v !== undefined)) throw new UsageError("--forward-ca, --forward-cert and --forward-key go with --forward");
  if (opts.syslog && opts.dgram.length === 0 && !activated.some((f) => f.kind === "dgram")) throw new UsageError("--syslog goes with --dgram");
  const none = opts.fifo === null && opts.socket === null && opts.abstract === null && opts.mq === null && opts.dgram.length === 0;
  if (none && opts.signals.length === 0 && activated.length === 0)
    throw new UsageError("every channel is turned off: nothing to serve");
  return opts;
}

export const sendArgs = {
  socket: { type: "string", valueHint: "path", description: "Post to the Unix socket at path" },
  abstract: { type: "string", valueHint: "name", description: "Post to the abstract socket @name" },
  fifo: { type: "string", valueHint: "path", description: "Post to the FIFO at path (fails at once when nobody reads it)" },
  mq: { type: "string", valueHint: "name", description: "Post to the POSIX message queue name" },
  dgram: { type: "string", valueHint: "path|@name", description: "Post each message as one datagram to path or @name" },
  prio: { type: "string", valueHint: "n", description: "mq priority [0]" },
  wait: { type: "boolean", description: "mq: block while the queue is full instead of failing" },
  signal: { type: "string", valueHint: "SIG", description: "Post a sigqueue value with signal SIG (USR1, RTMIN+n, …) to --pid" },
  pid: { type: "string", valueHint: "pid", description: "Process to signal" },
  timeout: { type: "string", valueHint: "s", description: "Give up (exit 3) when the postbox takes nothing for s seconds (its stdout blocked…) [never]" },
  "expect-uid": { type: "string", valueHint: "uid", description: "socket/abstract: post only if the server runs as this uid (SO_PEERCRED), else fail" },
  message: { type: "positional", required: false, valueHint: "message...", description: "The message (the rest of the line); without it, stdin line by line" },
} as const satisfies ArgsDef;

/** argv (after "send") → target and the message words. */
export function parseSend(raw: string[]): { target: SendTarget; words: string[]; timeout: number | null } {
  raw = expandShortFlags(raw, sendArgs);
  const words = checkFlags(raw, sendArgs, new Set());
  const a = parseArgs<typeof sendArgs>(raw, sendArgs);
  const chosen = (["socket", "abstract", "fifo", "mq", "dgram", "signal"] as const).filter((k) => a[k] !== undefined);
  if (chosen.length !== 1) throw new UsageError("send needs exactly one target: --socket, --abstract, --fifo, --mq, --dgram or --signal");
  const value = (k: "socket" | "abstract" | "fifo" | "mq" | "dgram" | "signal"): string => pathOption(a[k], k, "") ?? "";
  const expectUid = a["expect-uid"] === undefined ? null : integer(a["expect-uid"], "expect-uid", 0, 0);
  if (expectUid !== null && chosen[0] !== "socket" && chosen[0] !== "abstract") throw new UsageError("--expect-uid goes with --socket or --abstract");
  let target: SendTarget;
  switch (chosen[0]!) {
    case "socket":
      target = { kind: "socket", path: socketAddress(value("socket"), "socket")!, expectUid };
      break;
    case "abstract":
      target = { kind: "abstract", name: abstractName(value("abstract"))!, expectUid };
      break;
    case "fifo":
      target = { kind: "fifo", path: filePath(value("fifo"), "fifo")! };
      break;
    case "mq":
      target = { kind: "mq", name: value("mq"), prio: integer(a.prio, "prio", 0, 0, MQ_PRIO_TOP), wait: a.wait === true };
      break;
    case "dgram":
      target = { kind: "dgram", address: dgramAddress(value("dgram")) };
      break;
    case "signal": {
      let sig: number;
      try {
        sig = parseSignal(value("signal"));
      } catch (err) {
        throw new UsageError(`--signal: ${(err as Error).message}`);
      }
      if (a.pid === undefined) throw new UsageError("--signal needs --pid <pid>");
      target = { kind: "signal", sig, pid: integer(a.pid, "pid", 0, 1, PID_TOP) };
      break;
    }
  }
  if (target.kind !== "mq" && (a.prio !== undefined || a.wait)) throw new UsageError("--prio and --wait go with --mq");
  if (target.kind !== "signal" && a.pid !== undefined) throw new UsageError("--pid goes with --signal");
  const timeout = a.timeout === undefined ? null : seconds(a.timeout, "timeout", 0);
  if (timeout === 0) throw new UsageError("--timeout must be more than 0 seconds");
  return { target, words, timeout };
}

export const waitArgs = {
  socket: { type: "string", valueHint: "path", description: "Wait for a postbox on this socket [socket]" },
  abstract: { type: "string", valueHint: "name", description: "Wait for a postbox on the abstract socket @name" },
  fifo: { type: "string", valueHint: "path", description: "Wait for a postbox reading this FIFO" },
  mq: { type: "string", valueHint: "name", description: "Wait for a postbox reading this message queue" },
  dgram: { type: "string", valueHint: "path|@name", description: "Wait for a receiver bound to this datagram socket" },
  timeout: { type: "string", valueHint: "s", description: "Give up (exit 1) after s seconds [30]" },
} as const satisfies ArgsDef;

export const helpArgs = {
  command: { type: "positional", required: false, description: "The command to explain (default: all)" },
} as const satisfies ArgsDef;

export const completionArgs = {
  shell: { type: "positional", required: true, valueHint: "bash|zsh|fish", description: "The shell to print a completion script for" },
} as const satisfies ArgsDef;

/** The operands of help/completion: at most one, no options. */
export function parseOperand(raw: string[], def: ArgsDef, what: string): string | undefined {
  const words = checkFlags(raw, def, new Set());
  if (words.length > 1) throw new UsageError(`${what} takes one argument, got ${words.length}`);
  return words[0];
}

export function parseWait(raw: string[]): { target: WaitTarget; timeout: number } {
  raw = expandShortFlags(raw, waitArgs);
  checkFlags(raw, waitArgs, new Set());
  const a = parseArgs<typeof waitArgs>(raw, waitArgs);
  const chosen = (["socket", "abstract", "fifo", "mq", "dgram"] as const).filter((k) => a[k] !== undefined);
  if (chosen.length > 1) throw new UsageError("wait takes one target: --socket, --abstract, --fifo, --mq or --dgram");
  const k = chosen[0] ?? "socket";
  const v = pathOption(a[k], k, DEFAULTS.socket)!;
  const target: WaitTarget =
    k === "fifo"
      ? { kind: "fifo", path: filePath(v, "fifo")! }
      : k === "mq"
        ? { kind: "mq", name: v }
        : k === "dgram"
          ? { kind: "dgram", address: dgramAddress(v) }
          : { kind: "socket", address: k === "abstract" ? `@${abstractName(v)}` : socketAddress(v, "socket")! };
  return { target, timeout: seconds(a.timeout, "timeout", 30) };
}


export const LOG_CHANNELS = ["fifo", "socket", "dgram", "signal", "mqueue"] as const;

export const logArgs = {
  files: {
    type: "positional",
    required: false,
    valueHint: "FILE…",
    description: "Store files (serve --store) in the order to read, oldest first; none or -: stdin",
  },
  json: { type: "boolean", description: "The stored NDJSON lines as they are, instead of text" },
  timestamps: { type: "boolean", description: "Start each text line with the message's time (ISO 8601, UTC)" },
  channel: { type: "string", valueHint: "list", description: `Only these channels: ${LOG_CHANNELS.join(", ")}` },
  uid: { type: "string", valueHint: "list", description: "Only messages from these uids (or user names)" },
  pid: { type: "string", valueHint: "list", description: "Only messages from these pids" },
  comm: { type: "string", valueHint: "list", description: "Only messages from these command names" },
  since: { type: "string", valueHint: "time", description: "Only messages from time on: ISO 8601, today, yesterday, or ago: 10m, 2h, 1d" },
  until: { type: "string", valueHint: "time", description: "Only messages up to time (as --since)" },
  grep: { type: "string", valueHint: "regex", description: "Only messages whose text matches regex" },
  lines: { type: "string", alias: "n", valueHint: "n|all", description: "Only the last n messages that match [all; 10 with --follow]" },
  reverse: { type: "boolean", alias: "r", description: "Newest first" },
  follow: { type: "boolean", alias: "f", description: "Then print new messages as they are stored, across rotation, until Ctrl-C" },
} as const satisfies ArgsDef;

function list(value: string | undefined): string[] | null {
  return value === undefined ? null : value.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

function when(value: string | undefined, flag: string): number | null {
  if (value === undefined) return null;
  const t = parseWhen(value);
  if (t === null) throw new UsageError(`--${flag} takes ISO 8601 (2026-12-01, 2026-12-01T09:30Z), today, yesterday or a time ago (10m, 2h, 1d), got ${JSON.stringify(value)}`);
  return t;
}

/** argv (after "log") → LogOptions. No file is opened here; no FILE is left empty (log.ts picks stdin). */
export function parseLog(raw: string[]): LogOptions {
  const files = checkFlags(raw, logArgs, new Set());
  const a = parseArgs<typeof logArgs>(raw, logArgs);
  const channels = list(a.channel);
  for (const c of channels ?? []) {
    if (!(LOG_CHANNELS as readonly string[]).includes(c)) throw new UsageError(`--channel takes ${LOG_CHANNELS.join(", ")}; got ${JSON.stringify(c)}`);
  }
  const pids = list(a.pid)?.map((p) => integer(p, "pid", 0, 1, PID_TOP));
  let grep: RegExp | null = null;
  try {
    grep = a.grep === undefined ? null : new RegExp(a.grep);
  } catch (err) {
    throw new UsageError(`--grep: ${(err as Error).message}`);
  }
  const follow = a.follow === true;
  const reverse = a.reverse === true;
  if (follow && reverse) throw new UsageError("--follow and --reverse exclude each other");
  const n = a.lines ?? (follow ? "10" : "all");
  const filter: LogFilter = {
    channels: channels === null ? null : new Set(channels),
    uids: a.uid === undefined ? null : idList(a.uid, "uid", "/etc/passwd"),
    pids: pids === undefined ? null : new Set(pids),
    comms: a.comm === undefined ? null : new Set(list(a.comm)),
    since: when(a.since, "since"),
    until: when(a.until, "until"),
    grep,
  };
  return {
    files,
    json: a.json === true,
    timestamps: a.timestamps === true,
    filter,
    lines: n === "all" ? null : integer(n, "lines", 0, 0),
    reverse,
    follow,
  };
}
