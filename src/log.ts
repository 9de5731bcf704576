// Diagnostics for people: consola on stderr, level chosen explicitly (never from NODE_ENV/CI).
import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";
import { paintFor } from "./color.ts";

export type Verbosity = "quiet" | "normal" | "verbose";
const LEVELS: Record<Verbosity, number> = { quiet: 1, normal: 3, verbose: 4 };

function render(obj: LogObject): string {
  const text = obj.args.map((a) => (typeof a === "string" ? a : Bun.inspect(a, { colors: false }))).join(" ");
  const paint = paintFor(2);
  switch (obj.type) {
    case "fatal":
    case "error":
      return `${paint.red("postbox:")} ${text}`;
    case "warn":
      return `${paint.yellow("postbox: warning:")} ${text}`;
    case "debug":
    case "trace":
    case "verbose":
      return paint.dim(`postbox: debug: ${text}`);
    default:
      return text;
  }
}

export const log: ConsolaInstance = createConsola({
  level: LEVELS.normal,
  throttle: 0, // a repeated warning is news, not noise to fold
  reporters: [{ log: (obj) => process.stderr.write(render(obj) + "\n") }],
});

/** True under -v: callers skip building debug lines on hot paths otherwise. */
export let debugging = false;

export function setVerbosity(v: Verbosity): void {
  log.level = LEVELS[v];
  debugging = v === "verbose";
}
