// Diagnostics for people: consola on stderr, level chosen explicitly (never from NODE_ENV/CI).
import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";
import { formatWithOptions } from "node:util";

export type Verbosity = "quiet" | "normal" | "verbose";
const LEVELS: Record<Verbosity, number> = { quiet: 1, normal: 3, verbose: 4 };

function render(obj: LogObject): string {
  const text = formatWithOptions({ colors: false }, ...obj.args);
  switch (obj.type) {
    case "fatal":
    case "error":
      return `postbox: ${text}`;
    case "warn":
      return `postbox: warning: ${text}`;
    case "debug":
    case "trace":
    case "verbose":
      return `postbox: debug: ${text}`;
    default:
      return text;
  }
}

export const log: ConsolaInstance = createConsola({
  level: LEVELS.normal,
  throttle: 0, // a repeated warning is news, not noise to fold
  reporters: [{ log: (obj) => process.stderr.write(render(obj) + "\n") }],
});

export function setVerbosity(v: Verbosity): void {
  log.level = LEVELS[v];
}
