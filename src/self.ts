// How a person in this directory runs this very binary again (banner, hints):
// the name it was invoked as — a bare name found on PATH, or the path typed
// (`./postbox-linux-arm64`). The kernel keeps the real argv[0] in /proc/self/cmdline
// (a compiled Bun binary's process.argv[0] is always "bun").
import { readFileSync } from "node:fs";
import { basename, dirname, relative } from "node:path";
import { plainPath } from "./chars.ts";

let memo: string | undefined;

export function selfCommand(): string {
  return (memo ??= invokedAs());
}

function invokedAs(): string {
  const compiled = process.argv[1]?.startsWith("/$bunfs/") === true;
  if (!compiled) return "postbox"; // running from source under bun
  let argv0 = "";
  try {
    argv0 = readFileSync("/proc/self/cmdline", "latin1").split("\0")[0] ?? "";
  } catch {}
  if (argv0 !== "" && !argv0.includes("/") && Bun.which(argv0) !== null) return argv0;
  if (argv0.includes("/") && plainPath(argv0)) return argv0; // a path as typed runs again as typed
  // Unknown how we were started (exec with an odd argv[0], or under an emulator): our own path.
  const exe = process.execPath;
  if (Bun.which(basename(exe)) === exe) return basename(exe);
  const rel = relative(process.cwd(), exe);
  return dirname(rel) === "." ? `./${rel}` : rel.startsWith("..") ? exe : rel;
}
