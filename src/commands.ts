// The commands and their option definitions: the one source for dispatch, --help,
// the man page and shell completions. A new command or option added here shows up
// in all of them.
import type { ArgsDef } from "citty";
import { completionArgs, globalArgs, helpArgs, logArgs, NEGATABLE, sendArgs, serveArgs, waitArgs } from "./options.ts";

export interface CommandSpec {
  name: string;
  summary: string;
  args: ArgsDef;
  /** Options that also take --no-<name>. */
  negatable: ReadonlySet<string>;
}

const none: ReadonlySet<string> = new Set();

export const COMMANDS: readonly CommandSpec[] = [
  { name: "serve", summary: "Open the postbox (the default command)", args: serveArgs, negatable: NEGATABLE },
  { name: "send", summary: "Post one message (or stdin, line by line) to a postbox", args: sendArgs, negatable: none },
  { name: "wait", summary: "Return 0 as soon as a postbox serves there, 1 on timeout", args: waitArgs, negatable: none },
  { name: "log", summary: "Read the --store mailbox back, like journalctl (filters, -n, -f)", args: logArgs, negatable: none },
  { name: "help", summary: "Show the help of a command", args: helpArgs, negatable: none },
  { name: "completion", summary: "Print a completion script: eval \"$(postbox completion bash)\"", args: completionArgs, negatable: none },
];

export const DEFAULT_COMMAND = "serve";
export const GLOBAL_ARGS: ArgsDef = globalArgs;

export function command(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

export interface OptionRow {
  name: string;
  /** -q, --quiet / --fifo <path>, --no-fifo */
  flags: string;
  /** The value's hint for a string option, else null. */
  value: string | null;
  description: string;
}

/** Every option of a definition, in order, for help, man page and completions alike. */
export function optionRows(args: ArgsDef, negatable: ReadonlySet<string> = none): OptionRow[] {
  return Object.entries(args)
    .filter(([, d]) => d.type !== "positional")
    .map(([name, d]) => {
      const aliases = "alias" in d && d.alias !== undefined ? [d.alias].flat() : [];
      const value = d.type === "boolean" ? null : (d.valueHint ?? "value");
      const flags = [...aliases.map((a) => `-${a}`), `--${name}${value === null ? "" : ` <${value}>`}`, ...(negatable.has(name) ? [`--no-${name}`] : [])];
      return { name, flags: flags.join(", "), value, description: d.description ?? "" };
    });
}

/** `[message...]`, `<bash|zsh|fish>`: the operands as a synopsis shows them. */
export function operands(args: ArgsDef): string {
  return Object.entries(args)
    .filter(([, d]) => d.type === "positional")
    .map(([name, d]) => (d.required ? `<${d.valueHint ?? name}>` : `[${d.valueHint ?? name}]`))
    .join(" ");
}
