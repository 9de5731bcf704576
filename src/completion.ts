// `postbox completion bash|zsh|fish`: scripts generated from the command
// definitions (commands.ts), so a new option completes with no extra work.
import { COMMANDS, DEFAULT_COMMAND, GLOBAL_ARGS, optionRows, type CommandSpec, type OptionRow } from "./commands.ts";
import { COLOR_MODES } from "./color.ts";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

/** Values a shell can offer for an option or operand, or "files", or null (free text). */
function valuesOf(hint: string | null): string[] | "files" | null {
  if (hint === null) return null;
  if (hint.split("|").some((h) => h === "path" || h === "file")) return "files"; // path|@name too
  if (hint === "when") return [...COLOR_MODES];
  if (hint.includes("|")) return hint.split("|");
  return null;
}

function operandValues(cmd: CommandSpec): string[] | null {
  if (cmd.name === "help") return COMMANDS.map((c) => c.name);
  const positional = Object.values(cmd.args).find((d) => d.type === "positional");
  const v = valuesOf(positional?.valueHint ?? null);
  return Array.isArray(v) ? v : null;
}

const globals = (): OptionRow[] => optionRows(GLOBAL_ARGS);
const rows = (cmd: CommandSpec): OptionRow[] => [...optionRows(cmd.args, cmd.negatable), ...globals()];
/** Every spelling of an option: --fifo, --no-fifo, -q. */
const spellings = (r: OptionRow): string[] => r.flags.split(", ").map((f) => f.split(" ")[0]!);
/** The spellings that take the value (not --no-fifo). */
const valued = (r: OptionRow): string[] => spellings(r).filter((f) => !f.startsWith("--no-"));

function bash(self: string): string {
  const names = COMMANDS.map((c) => c.name);
  const perCommand = (cmd: CommandSpec, label: string) => {
    const rs = rows(cmd);
    const files = rs.filter((r) => valuesOf(r.value) === "files").flatMap(valued);
    const lists = rs.filter((r) => Array.isArray(valuesOf(r.value)));
    const free = rs.filter((r) => r.value !== null && valuesOf(r.value) === null).flatMap(valued);
    const words = [...rs.flatMap(spellings), ...(operandValues(cmd) ?? []), ...(label === "''" ? names : [])];
    return [
      `    ${label})`,
      `      case $prev in`,
      ...(files.length ? [`        ${files.join("|")}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`] : []),
      ...lists.map((r) => `        ${valued(r).join("|")}) COMPREPLY=($(compgen -W "${(valuesOf(r.value) as string[]).join(" ")}" -- "$cur")); return ;;`),
      ...(free.length ? [`        ${free.join("|")}) return ;;`] : []),
      `      esac`,
      `      words="${words.join(" ")}" ;;`,
    ];
  };
  const dflt = COMMANDS.find((c) => c.name === DEFAULT_COMMAND)!;
  const targets = [...new Set(["postbox", self])].join(" ");
  return [
    `# bash completion for postbox: eval "$(${self} completion bash)", or save it as`,
    `# /usr/share/bash-completion/completions/postbox`,
    `_postbox() {`,
    `  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} cmd= words i`,
    `  for ((i = 1; i < COMP_CWORD; i++)); do`,
    `    case \${COMP_WORDS[i]} in ${names.join("|")}) cmd=\${COMP_WORDS[i]}; break ;; esac`,
    `  done`,
    `  case $cmd in`,
    ...COMMANDS.flatMap((c) => perCommand(c, c.name)),
    ...perCommand(dflt, "''"),
    `  esac`,
    `  COMPREPLY=($(compgen -W "$words" -- "$cur"))`,
    `}`,
    `complete -F _postbox ${targets}`,
    "",
  ].join("\n");
}

/** A description inside zsh's [...] or fish's '...'. */
const zshText = (s: string) => s.replace(/[[\]]/g, "").replace(/'/g, "'\\''").replace(/:/g, "\\:");
const fishText = (s: string) => s.replace(/\\/g, "\\\\").replace(/'/g, "\\'");

function zsh(self: string): string {
  const spec = (r: OptionRow) => {
    const v = valuesOf(r.value);
    const action = r.value === null ? "" : `:${r.value}:${v === "files" ? "_files" : Array.isArray(v) ? `(${v.join(" ")})` : " "}`;
    return spellings(r).map((f) => `'${f}[${zshText(r.description)}]${f.startsWith("--no-") ? "" : action}'`);
  };
  const body = (cmd: CommandSpec) => {
    const ops = operandValues(cmd);
    return [...rows(cmd).flatMap(spec), ...(ops ? [`'1:${cmd.name}:(${ops.join(" ")})'`] : [])].join(" \\\n        ");
  };
  return [
    `#compdef postbox`,
    `# zsh completion for postbox: ${self} completion zsh > "\${fpath[1]}/_postbox"`,
    `_postbox() {`,
    `  local -a commands`,
    `  commands=(${COMMANDS.map((c) => `'${c.name}:${zshText(c.summary)}'`).join(" ")})`,
    `  if (( CURRENT == 2 )) && [[ $words[2] != -* ]]; then _describe command commands; return; fi`,
    `  local cmd=$words[2]`,
    `  case $cmd in`,
    ...COMMANDS.map((c) => `    ${c.name}) shift words; (( CURRENT-- )); _arguments \\\n        ${body(c)} ;;`),
    `    *) _arguments \\\n        ${body(COMMANDS.find((c) => c.name === DEFAULT_COMMAND)!)} ;;`,
    `  esac`,
    `}`,
    `compdef _postbox postbox`,
    "",
  ].join("\n");
}

function fish(self: string): string {
  const names = COMMANDS.map((c) => c.name).join(" ");
  const lines = [`# fish completion for postbox: ${self} completion fish > ~/.config/fish/completions/postbox.fish`, `complete -c postbox -f`];
  lines.push(...COMMANDS.map((c) => `complete -c postbox -n '__fish_use_subcommand' -a ${c.name} -d '${fishText(c.summary)}'`));
  for (const cmd of COMMANDS) {
    const cond = cmd.name === DEFAULT_COMMAND ? `not __fish_seen_subcommand_from ${names.replace(`${DEFAULT_COMMAND} `, "")}` : `__fish_seen_subcommand_from ${cmd.name}`;
    for (const r of rows(cmd)) {
      const v = valuesOf(r.value);
      for (const f of spellings(r)) {
        const flag = f.startsWith("--") ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`;
        const arg = r.value === null || f.startsWith("--no-") ? "" : v === "files" ? " -r -F" : Array.isArray(v) ? ` -x -a '${v.join(" ")}'` : " -x";
        lines.push(`complete -c postbox -n '${cond}' ${flag}${arg} -d '${fishText(r.description)}'`);
      }
    }
    const ops = operandValues(cmd);
    if (ops) lines.push(`complete -c postbox -n '${cond}' -a '${ops.join(" ")}'`);
  }
  return lines.join("\n") + "\n";
}

export function completionScript(shell: Shell, self: string): string {
  return shell === "bash" ? bash(self) : shell === "zsh" ? zsh(self) : fish(self);
}
