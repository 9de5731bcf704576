#!/usr/bin/env bun
// The command line: citty commands and dispatch, errors → exit codes, the banner.
// Parsing lives in options.ts; nothing here opens a channel (the postbox does).
import { defineCommand, renderUsage, runCommand, type CommandDef } from "citty";
import pkg from "../package.json" with { type: "json" };
import { listenFds } from "./activation.ts";
import { EXIT, PostboxError } from "./errors.ts";
import { log, setVerbosity } from "./log.ts";
import { parseSend, parseServe, parseWait, sendArgs, serveArgs, waitArgs } from "./options.ts";
import { openPostbox, type Postbox, type Stop } from "./postbox.ts";
import { send, stdinLines } from "./send.ts";
import { waitUntilServing } from "./wait.ts";

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

const serve = defineCommand({
  meta: { name: "serve", description: "Open the postbox (the default command)" },
  args: serveArgs,
  async run({ rawArgs }) {
    const opts = parseServe(rawArgs, listenFds());
    setVerbosity(opts.verbosity);
    const signalled = shutdownSignal();
    let box: Postbox | undefined;
    process.on("SIGHUP", () => box?.reopenStore()); // log rotation; a hangup never kills the postbox
    box = await openPostbox(opts);
    banner(box);
    const end = await Promise.race([signalled.then((sig): Stop => ({ why: sig, exitCode: EXIT.ok })), box.stopped]);
    log.debug(`closing: ${end.why}`);
    await box.close();
    if (end.exitCode !== EXIT.ok) throw new PostboxError(end.why, end.exitCode);
  },
});


const sendCmd = defineCommand({
  meta: { name: "send", description: "Post one message (or stdin, line by line) to a postbox" },
  args: sendArgs,
  async run({ rawArgs }) {
    const { target, words } = parseSend(rawArgs);
    await send(target, words.length > 0 ? [words.join(" ")] : stdinLines());
  },
});


const waitCmd = defineCommand({
  meta: { name: "wait", description: "Return 0 as soon as a postbox serves there, 1 on timeout" },
  args: waitArgs,
  async run({ rawArgs }) {
    const { target, timeout } = parseWait(rawArgs);
    if (!(await waitUntilServing(target, timeout * 1000))) {
      const where = target.kind === "socket" || target.kind === "dgram" ? target.address : target.kind === "fifo" ? target.path : target.name;
      throw new PostboxError(`no postbox is serving ${where} after ${timeout} s`);
    }
  },
});

const main = defineCommand({
  meta: { name: pkg.name, version: pkg.version, description: pkg.description },
  subCommands: { serve, send: sendCmd, wait: waitCmd },
});

const SUBCOMMANDS: Record<string, CommandDef<any>> = { serve, send: sendCmd, wait: waitCmd };

/** `postbox --help` shows the commands and the default command's options; `postbox send --help` its own. */
async function usage(name: string | null): Promise<string> {
  if (name !== null) return renderUsage(SUBCOMMANDS[name]!, main);
  const commands = await renderUsage(main);
  const serveHelp = (await renderUsage(SUBCOMMANDS.serve!, main)).split("\n").slice(2).join("\n");
  return `${commands}\n\n${serveHelp}`;
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
      process.stdout.write(`${await usage(name === first ? name : null)}\n`);
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
