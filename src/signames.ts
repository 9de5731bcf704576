// Signal names ↔ numbers, with the libc's real SIGRTMIN/SIGRTMAX.
import { constants } from "node:os";
import { rtSignalRange } from "./ffi/libc.ts";

const USER = { USR1: constants.signals.SIGUSR1, USR2: constants.signals.SIGUSR2 } as const;

/** "SIGUSR1" → "USR1" (a string test: no regular expression runs at start, see chars.ts). */
export function withoutSig(name: string): string {
  return name.startsWith("SIG") ? name.slice(3) : name;
}

/** "USR1", "SIGUSR2", "RTMIN", "RTMIN+3", "RTMAX-1" → signal number; throws on anything else. */
export function parseSignal(name: string): number {
  const n = withoutSig(name.trim().toUpperCase());
  if (n === "USR1" || n === "USR2") return USER[n];
  const m = /^RT(MIN|MAX)(?:([+-])(\d+))?$/.exec(n);
  if (!m) throw new Error(`unknown signal ${JSON.stringify(name)} (use USR1, USR2, RTMIN, RTMIN+n or RTMAX-n)`);
  const { min, max } = rtSignalRange();
  const off = m[3] === undefined ? 0 : Number(m[3]);
  const sig = m[1] === "MIN" ? (m[2] === "-" ? min - off : min + off) : m[2] === "+" ? max + off : max - off;
  if (sig < min || sig > max) throw new Error(`signal ${name} is outside SIGRTMIN..SIGRTMAX (${min}..${max})`);
  return sig;
}

/** 10 → "SIGUSR1", 35 → "SIGRTMIN+1" (relative to the libc's SIGRTMIN). */
export function signalName(sig: number): string {
  if (sig === USER.USR1) return "SIGUSR1";
  if (sig === USER.USR2) return "SIGUSR2";
  const { min, max } = rtSignalRange();
  if (sig === min) return "SIGRTMIN";
  if (sig > min && sig <= max) return sig - min <= max - sig ? `SIGRTMIN+${sig - min}` : sig === max ? "SIGRTMAX" : `SIGRTMAX-${max - sig}`;
  const known = Object.entries(constants.signals).find(([, v]) => v === sig);
  return known ? known[0] : `SIG${sig}`;
}
