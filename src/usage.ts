// --help text, rendered from the command definitions (commands.ts), and the
// "did you mean" guess for a misspelt command. Pure: the caller writes it out.
import pkg from "../package.json" with { type: "json" };
import type { Paint } from "./color.ts";
import { COMMANDS, DEFAULT_COMMAND, GLOBAL_ARGS, operands, optionRows, type CommandSpec, type OptionRow } from "./commands.ts";

function table(rows: OptionRow[], paint: Paint): string[] {
  const width = Math.min(32, Math.max(...rows.map((r) => r.flags.length)));
  return rows.map((r) => `  ${paint.bold(r.flags)}${" ".repeat(Math.max(1, width - r.flags.length + 2))}${r.description}`);
}

/** `postbox --help` (cmd null): the commands and the default command's options; else that command's. */
export function helpText(cmd: CommandSpec | null, self: string, paint: Paint): string {
  const globals = ["", paint.bold("Global options:"), ...table(optionRows(GLOBAL_ARGS), paint)];
  if (cmd !== null) {
    const ops = operands(cmd.args);
    const opts = optionRows(cmd.args, cmd.negatable);
    return [
      `${cmd.summary}`,
      "",
      `${paint.bold("Usage:")} ${self} ${cmd.name}${opts.length ? " [options]" : ""}${ops ? ` ${ops}` : ""}`,
      ...(opts.length ? ["", paint.bold("Options:"), ...table(opts, paint)] : []),
      ...globals,
      "",
    ].join("\n");
  }
  const dflt = COMMANDS.find((c) => c.name === DEFAULT_COMMAND)!;
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `${pkg.description} (postbox ${pkg.version})`,
    "",
    `${paint.bold("Usage:")} ${self} [${DEFAULT_COMMAND}] [options]`,
    `       ${self} <command> [options]`,
    "",
    paint.bold("Commands:"),
    ...COMMANDS.map((c) => `  ${paint.bold(c.name.padEnd(width))}  ${c.summary}`),
    "",
    paint.bold(`Options of ${DEFAULT_COMMAND}:`),
    ...table(optionRows(dflt.args, dflt.negatable), paint),
    ...globals,
    "",
    `'${self} help <command>' shows a command's options; 'man postbox' explains them all.`,
    "",
  ].join("\n");
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = d[j]!;
      d[j] = Math.min(up + 1, d[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return d[b.length]!;
}

/** The command a typo most likely meant (at most 2 edits, or a prefix), if any. */
export function didYouMean(word: string): string | undefined {
  const scored = COMMANDS.map((c) => ({ name: c.name, d: c.name.startsWith(word) ? 0 : distance(word, c.name) }));
  const best = scored.sort((x, y) => x.d - y.d)[0];
  return best !== undefined && best.d <= 2 ? best.name : undefined;
}
