#!/usr/bin/env bun
// The command line: dispatch to the commands, errors → exit codes, the banner.
// Parsing lives in options.ts, the command table in commands.ts; nothing here
// opens a channel (the postbox does).
import { listenFds } from "./activation.ts";
import { paintFor, setColorMode } from "./color.ts";
import { command, DEFAULT_COMMAND } from "./commands.ts";
import { completionScript, SHELLS, type Shell } from "./completion.ts";
import { EXIT, PostboxError, UsageError } from "./errors.ts";
import { log, setVerbosity } from "./log.ts";
import { completionArgs, helpArgs, parseOperand, parseSend, parseServe, parseWait, takeColor } from "./options.ts";
import { openPostbox, type Postbox, type Stop } from "./postbox.ts";
import { selfCommand } from "./self.ts";
import { normalJit } from "./startup.ts";
import { send, stdinLines } from "./send.ts";
import { didYouMean, helpText } from "./usage.ts";
import { versionText } from "./version.ts";
import { waitUntilServing } from "./wait.ts";
import { logCommand } from "./commands/log.ts";

/** One write, so whoever waits for it sees it whole. */
function banner(box: Postbox): void {
  const label = { fifo: "fifo", socket: "socket", signals: "signal", mqueue: "mq_send", dgram: "dgram" } as const;
  const lines = box.channels.map((ch) => `... by ${`${label[ch.kind]}:`.padEnd(7)} ${ch.where}`);
  log.info(["Santas Postbox is open! Send your requests ...", ...lines].join("\n"));
}

/** Resolves on the first SIGINT/SIGTERM; the handlers only record, the loop does the work. */
function shutdownSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => resolve(sig));
  });
}

async function serve(raw: string[]): Promise<number> {
  const opts = parseServe(raw, listenFds());
  setVerbosity(opts.verbosity);
  const signalled = shutdownSignal();
  let box: Postbox | undefined;
  process.on("SIGHUP", () => box?.reopenStore()); // log rotation; a hangup never kills the postbox
  box = await openPostbox(opts);
  banner(box);
  normalJit();
  const end = await Promise.race([signalled.then((sig): Stop => ({ why: sig, exitCode: EXIT.ok })), box.stopped]);
  log.debug(`closing: ${end.why}`);
  const failures = await box.close(); // each already reported on stderr
  if (end.exitCode !== EXIT.ok) throw new PostboxError(end.why, end.exitCode);
  return failures > 0 ? EXIT.failure : EXIT.ok;
}

async function sendCommand(raw: string[]): Promise<number> {
  const { target, words, timeout } = parseSend(raw);
  await send(target, words.length > 0 ? [words.join(" ")] : stdinLines(), timeout);
  return EXIT.ok;
}

async function waitCommand(raw: string[]): Promise<number> {
  const { target, timeout } = parseWait(raw);
  if (!(await waitUntilServing(target, timeout * 1000))) {
    const where = target.kind === "socket" || target.kind === "dgram" ? target.address : target.kind === "fifo" ? target.path : target.name;
    throw new PostboxError(`no postbox is serving ${where} after ${timeout} s`);
  }
  return EXIT.ok;
}

function knownCommand(name: string) {
  const cmd = command(name);
  if (cmd) return cmd;
  const guess = didYouMean(name);
  throw new UsageError(`unknown command ${JSON.stringify(name)}${guess ? `; did you mean ${JSON.stringify(guess)}?` : ""}`);
}

async function helpCommand(raw: string[]): Promise<number> {
  const name = parseOperand(raw, helpArgs, "help");
  process.stdout.write(helpText(name === undefined ? null : knownCommand(name), selfCommand(), paintFor(1)));
  return EXIT.ok;
}

async function completionCommand(raw: string[]): Promise<number> {
  const shell = parseOperand(raw, completionArgs, "completion");
  if (shell === undefined || !(SHELLS as readonly string[]).includes(shell))
    throw new UsageError(`completion needs a shell: ${SHELLS.join(", ")}${shell === undefined ? "" : ` (got ${JSON.stringify(shell)})`}`);
  process.stdout.write(completionScript(shell as Shell, selfCommand()));
  return EXIT.ok;
}

const RUN: Record<string, (raw: string[]) => Promise<number>> = {
  serve,
  send: sendCommand,
  wait: waitCommand,
  help: helpCommand,
  completion: completionCommand,
  log: logCommand,
};

/** One of these flags before a `--`. */
function asks(raw: readonly string[], ...flags: string[]): boolean {
  const end = raw.indexOf("--");
  return (end === -1 ? raw : raw.slice(0, end)).some((a) => flags.includes(a));
}

export async function runCli(argv: string[]): Promise<number> {
  let named: string | null = null; // the command typed, for the usage hint
  try {
    const { color, rest: args } = takeColor(argv);
    setColorMode(color);
    const first = args[0];
    // A first word that is not an option is a command: a typo must not start serve.
    if (first !== undefined && !first.startsWith("-")) named = knownCommand(first).name;
    const name = named ?? DEFAULT_COMMAND;
    const rest = named === null ? args : args.slice(1);
    if (asks(rest, "--version", "-V")) {
      process.stdout.write(versionText());
      return EXIT.ok;
    }
    if (asks(rest, "--help", "-h")) {
      process.stdout.write(helpText(named === null ? null : command(name)!, selfCommand(), paintFor(1)));
      return EXIT.ok;
    }
    if (name !== "serve") normalJit(); // serve: once it is open
    return await RUN[name]!(rest);
  } catch (err) {
    if (err instanceof PostboxError) {
      log.error(err.message);
      if (err.exitCode === EXIT.usage) usageHint(named);
      return err.exitCode;
    }
    log.error(`unexpected failure: ${(err as Error)?.message ?? String(err)}`);
    return EXIT.failure;
  }
}

function usageHint(named: string | null): void {
  const help = named === null || named === "help" ? "--help" : `${named} --help`;
  process.stderr.write(`Try '${selfCommand()} ${help}' for the options.\n`);
}

if (import.meta.main) process.exit(await runCli(process.argv.slice(2)));
