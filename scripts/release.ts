// npm run release: both Linux targets, compressed, with SHA256SUMS and the man page.
//   bun scripts/release.ts [--dist=DIR] [--fast]       (default ./dist)
// --fast: xz -1 instead of -9, for the test that installs the artifacts (xz -9 of
// both targets takes minutes; the files and every other step are the same).
// Each binary is built as <tmp>/<target>/postbox: Bun embeds the output's file name,
// so the same name keeps builds of one commit byte-identical. xz -9 single-threaded
// is deterministic too: the same commit gives the same SHA256SUMS.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { tmpdir } from "node:os";
import pkg from "../package.json" with { type: "json" };
import { manPage } from "../src/manpage.ts";

const TARGETS = ["linux-x64", "linux-arm64"] as const;
const root = resolve(import.meta.dir, "..");

function fail(message: string): never {
  process.stderr.write(`release: ${message}\n`);
  process.exit(1);
}

let dist = join(root, "dist");
let level = "-9";
for (const arg of process.argv.slice(2)) {
  const m = /^--dist=(.+)$/.exec(arg);
  if (arg === "--fast") level = "-1";
  else if (m) dist = resolve(m[1]!);
  else fail(`unknown argument ${arg} (usage: bun scripts/release.ts [--dist=DIR] [--fast])`);
}

async function run(argv: string[], stdout: "inherit" | number = "inherit"): Promise<void> {
  const p = Bun.spawn(argv, { cwd: root, stdin: "ignore", stdout, stderr: "inherit" });
  if ((await p.exited) !== 0) fail(`${argv.join(" ")} failed (exit ${p.exitCode})`);
}

if (Bun.which("xz") === null) fail("xz is missing: install xz-utils");
const work = mkdtempSync(join(tmpdir(), "postbox-release-"));
try {
  mkdirSync(dist, { recursive: true });
  for (const f of readdirSync(dist)) if (/^postbox-.*\.xz$|^SHA256SUMS$|^postbox\.1$/.test(f)) rmSync(join(dist, f));
  const archives: string[] = [];
  for (const target of TARGETS) {
    const bin = join(work, target, "postbox");
    await run([process.execPath, "build.ts", `--target=${target}`, `--outfile=${bin}`]);
    archives.push(join(dist, `postbox-${pkg.version}-${target}.xz`));
  }
  // The two compressions in parallel: xz -9 is the slow part (~1-2 min each).
  await Promise.all(
    TARGETS.map(async (target, i) => {
      const out = Bun.file(archives[i]!).writer();
      const p = Bun.spawn(["xz", level, "-T1", "-c", join(work, target, "postbox")], { stdout: "pipe", stderr: "inherit" });
      for await (const chunk of p.stdout) out.write(chunk);
      await out.end();
      if ((await p.exited) !== 0) fail(`xz failed for ${target}`);
    }),
  );
  const page = join(dist, "postbox.1");
  await Bun.write(page, manPage());
  const sums = [...archives, page].map((f) => `${new Bun.CryptoHasher("sha256").update(readFileSync(f)).digest("hex")}  ${basename(f)}`);
  await Bun.write(join(dist, "SHA256SUMS"), sums.join("\n") + "\n");
  for (const f of [...archives, page]) process.stderr.write(`release: ${f} (${(Bun.file(f).size / 2 ** 20).toFixed(1)} MiB)\n`);
  process.stderr.write(`release: ${join(dist, "SHA256SUMS")}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
