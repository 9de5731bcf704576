// Colour for people, never for pipes: escapes only when the stream is a terminal
// (auto), NO_COLOR set to anything but "" turns auto off, --color=always|never wins.
import { isatty } from "node:tty";

export type ColorMode = "auto" | "always" | "never";
export const COLOR_MODES: readonly ColorMode[] = ["auto", "always", "never"];

let mode: ColorMode = "auto";
const decided = new Map<number, Paint>();

export function setColorMode(m: ColorMode): void {
  mode = m;
  decided.clear();
}

/** Should text written to fd carry colour escapes? */
export function colorFor(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  if (mode !== "auto") return mode === "always";
  if ((env.NO_COLOR ?? "") !== "" || env.TERM === "dumb") return false;
  return isatty(fd);
}

export interface Paint {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
}

const sgr = (code: string) => (s: string) => `\x1b[${code}m${s}\x1b[0m`;
const same = (s: string) => s;
const COLOURED: Paint = { bold: sgr("1"), dim: sgr("2"), red: sgr("31"), yellow: sgr("33") };
const PLAIN: Paint = { bold: same, dim: same, red: same, yellow: same };

/** Decided once per fd (isatty is a syscall; log lines are many). */
export function paintFor(fd: number): Paint {
  let p = decided.get(fd);
  if (p === undefined) decided.set(fd, (p = colorFor(fd) ? COLOURED : PLAIN));
  return p;
}
