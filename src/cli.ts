#!/usr/bin/env bun
// The command line: citty commands, argv → typed options, errors → exit codes.
// Nothing here opens a channel; the postbox module does.
import { defineCommand, parseArgs, renderUsage, runCommand, type ArgsDef, type CommandDef } from "citty";
import pkg from "../package.json" with { type: "json" };
import { EXIT, PostboxError, UsageError } from "./errors.ts";
import { log, setVerbosity, type Verbosity } from "./log.ts";
import { openPostbox, type Postbox } from "./postbox.ts";
import { parseSignal } from "./signames.ts";
import { DEFAULTS, type ServeOptions } from "./types.ts";

const serveArgs = {
  fifo: { type: "string", valueHint: "path", description: `FIFO to read (--no-fifo: none) [${DEFAULTS.fifo}]` },
  socket: { type: "string", valueHint: "path", description: `Unix stream socket to listen on (--no-socket: none) [${DEFAULTS.socket}]` },
  abstract: { type: "string", valueHint: "name", description: "Also listen on the abstract socket @name [off]" },
  mq: { type: "string", valueHint: "name", description: `POSIX message queue (--no-mq: none) [${DEFAULTS.mq}]` },
  signals: {
    type: "string",
    valueHint: "list",
    description: `Signals to take: USR1, USR2, RTMIN, RTMIN+n, RTMAX-n (--no-signals: none) [${DEFAULTS.signals.join(",")}]`,
  },
  mode: { type: "string", valueHint: "octal", description: "Permissions of fifo, socket and mq [0600]" },
  json: { type: "boolean", description: "One JSON object per message (NDJSON) instead of text" },
  "max-message": { type: "string", valueHint: "bytes", description: `Longer lines are delivered in pieces [${DEFAULTS.maxMessage}]` },
  "max-connections": { type: "string", valueHint: "n", description: `Socket clients at once [${DEFAULTS.maxConnections}]` },
  "idle-timeout": { type: "string", valueHint: "s", description: `Close silent socket clients after s seconds, 0 = never [${DEFAULTS.idleTimeout}]` },
  linger: {
    type: "string",
    valueHint: "ms",
    description: `Half-close a socket client quiet for ms after a complete line, 0 = never [${DEFAULTS.linger}]`,
  },
  quiet: { type: "boolean", alias: "q", description: "Only warnings and errors on stderr" },
  verbose: { type: "boolean", alias: "v", description: "Debug diagnostics on stderr" },
} as const satisfies ArgsDef;

/** Options that take `--no-<name>`. */
const NEGATABLE = new Set(["fifo", "socket", "mq", "signals"]);

/**
 * citty accepts any flag and ignores the unknown ones: a typo like `--sockt x`
 * would silently run with defaults. Check every token against the definition.
 */
export function checkFlags(raw: readonly string[], def: ArgsDef, negatable: ReadonlySet<string> = NEGATABLE): void {
  const byName = new Map<string, string>();
  for (const [name, d] of Object.entries(def)) {
    byName.set(name, name);
    const aliases = "alias" in d && d.alias !== undefined ? [d.alias].flat() : [];
    for (const a of aliases) byName.set(a, name);
  }
  for (let i = 0; i < raw.length; i++) {
    const tok = raw[i]!;
    if (tok === "--") return;
    if (!tok.startsWith("-") || tok === "-") {
      const positional = Object.values(def).some((d) => d.type === "positional");
      if (!positional) throw new UsageError(`unexpected argument ${JSON.stringify(tok)}`);
      continue;
    }
    const body = tok.replace(/^--?/, "");
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
}

function integer(value: string | undefined, flag: string, dflt: number, min: number): number {
  if (value === undefined) return dflt;
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value)))
    throw new UsageError(`--${flag} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return Number(value);
}

function seconds(value: string | undefined, flag: string, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(n)) throw new UsageError(`--${flag} must be a number of seconds, got ${JSON.stringify(value)}`);
  return n;
}

/** A path option: its value, null for --no-<name>, or the default. */
function pathOption(value: unknown, flag: string, dflt: string): string | null {
  if (value === false) return null;
  if (value === undefined || value === true) return dflt;
  if (typeof value !== "string" || value === "") throw new UsageError(`--${flag} needs a non-empty value`);
  return value;
}

/** argv (after "serve") → checked ServeOptions. Pure but for the libc's SIGRTMIN lookup. */
export function parseServe(raw: string[]): ServeOptions {
  checkFlags(raw, serveArgs);
  const a = parseArgs<typeof serveArgs>(raw, serveArgs);
  const modeText = a.mode ?? "0600";
  if (!/^0?[0-7]{3}$/.test(modeText)) throw new UsageError(`--mode must be octal permissions like 0600 or 666, got ${JSON.stringify(modeText)}`);
  let mq = pathOption(a.mq, "mq", DEFAULTS.mq);
  if (mq !== null && !/^\/[^/]{1,254}$/.test(mq))
    throw new UsageError(`--mq must look like /name (one leading slash, no other), got ${JSON.stringify(mq)}`);
  const sigText = (a.signals as unknown) === false ? null : (a.signals ?? DEFAULTS.signals.join(","));
  let signals: number[] = [];
  if (sigText !== null) {
    try {
      signals = [...new Set(sigText.split(",").filter((s) => s.trim() !== "").map(parseSignal))];
    } catch (err) {
      throw new UsageError(`--signals: ${(err as Error).message}`);
    }
  }
  const abstract = a.abstract === undefined ? null : pathOption(a.abstract, "abstract", "");
  if (a.quiet && a.verbose) throw new UsageError("--quiet and --verbose exclude each other");
  const verbosity: Verbosity = a.quiet ? "quiet" : a.verbose ? "verbose" : "normal";
  const opts: ServeOptions = {
    fifo: pathOption(a.fifo, "fifo", DEFAULTS.fifo),
    socket: pathOption(a.socket, "socket", DEFAULTS.socket),
    abstract: abstract?.replace(/^@/, "") ?? null,
    mq,
    signals,
    mode: parseInt(modeText, 8),
    json: a.json === true,
    maxMessage: integer(a["max-message"], "max-message", DEFAULTS.maxMessage, 1),
    maxConnections: integer(a["max-connections"], "max-connections", DEFAULTS.maxConnections, 1),
    idleTimeout: seconds(a["idle-timeout"], "idle-timeout", DEFAULTS.idleTimeout),
    linger: integer(a.linger, "linger", DEFAULTS.linger, 0),
    verbosity,
  };
  if (opts.fifo === null && opts.socket === null && opts.abstract === null && opts.mq === null && opts.signals.length === 0)
    throw new UsageError("every channel is turned off: nothing to serve");
  return opts;
}

function banner(box: Postbox): void {
  log.info("Santas Postbox is open! Send your requests ...");
  const label = { fifo: "fifo", socket: "socket", signals: "signal", mqueue: "mq_send" } as const;
  for (const ch of box.channels) log.info(`... by ${`${label[ch.kind]}:`.padEnd(7)} ${ch.where}`);
}

/** Resolves on the first SIGINT/SIGTERM; the handlers only record, the loop does the work. */
function shutdownSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => resolve(sig));
  });
}

const serve = defineCommand({
  meta: { name: "serve", description: "Open the postbox (the default command)" },
  args: serveArgs,
  async run({ rawArgs }) {
    const opts = parseServe(rawArgs);
    setVerbosity(opts.verbosity);
    const signalled = shutdownSignal();
    const box = await openPostbox(opts);
    banner(box);
    const why = await Promise.race([signalled, box.stopped]);
    log.debug(`closing: ${why}`);
    await box.close();
  },
});

const main = defineCommand({
  meta: { name: pkg.name, version: pkg.version, description: pkg.description },
  subCommands: { serve },
});

const SUBCOMMANDS: Record<string, CommandDef<any>> = { serve };

async function usage(cmd: CommandDef<any>, parent?: CommandDef<any>): Promise<string> {
  return renderUsage(cmd, parent);
}

export async function runCli(argv: string[]): Promise<number> {
  const first = argv[0];
  try {
    if (first === "--version" || first === "-V") {
      process.stdout.write(`${pkg.version}\n`);
      return EXIT.ok;
    }
    const name = first !== undefined && first in SUBCOMMANDS ? first : "serve";
    const cmd = SUBCOMMANDS[name]!;
    const rest = name === first ? argv.slice(1) : argv;
    if (rest.includes("--help") || rest.includes("-h") || (name !== first && (first === "--help" || first === "-h"))) {
      process.stdout.write(`${await usage(name === first ? cmd : main, name === first ? main : undefined)}\n`);
      return EXIT.ok;
    }
    await runCommand(cmd, { rawArgs: rest });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof PostboxError) {
      log.error(err.message);
      if (err.exitCode === EXIT.usage) process.stderr.write("Try 'postbox --help' for the options.\n");
      return err.exitCode;
    }
    if ((err as { name?: string } | null)?.name === "CLIError") {
      log.error((err as Error).message);
      process.stderr.write("Try 'postbox --help' for the options.\n");
      return EXIT.usage;
    }
    log.error(`unexpected failure: ${(err as Error)?.message ?? String(err)}`);
    return EXIT.failure;
  }
}

if (import.meta.main) process.exit(await runCli(process.argv.slice(2)));
