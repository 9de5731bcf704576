// What this binary is, for `postbox --version` and bug reports: baked in by build.ts.
import pkg from "../package.json" with { type: "json" };

declare const POSTBOX_BUILD: { version: string; commit: string; target: string; bun: string } | undefined;

/** Running from source (bun src/cli.ts) there is no build: say so instead of guessing. */
export const build =
  typeof POSTBOX_BUILD === "undefined"
    ? { version: pkg.version, commit: "source", target: `linux-${process.arch}`, bun: Bun.version }
    : POSTBOX_BUILD;

export function versionText(): string {
  return `postbox ${build.version} (commit ${build.commit}, ${build.target}, Bun ${build.bun})\n`;
}
