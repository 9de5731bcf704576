// How a person in this directory runs this very binary again (for the banner).
import { dirname, relative } from "node:path";

export function selfCommand(): string {
  const exe = process.execPath;
  if (!exe.endsWith("/postbox")) return "postbox"; // running from source under bun
  if (Bun.which("postbox") === exe) return "postbox";
  const rel = relative(process.cwd(), exe);
  return dirname(rel) === "." ? `./${rel}` : rel.startsWith("..") ? exe : rel;
}
