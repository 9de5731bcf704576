// Builds the standalone postbox. Fails loudly: a broken build must not look green.
//   bun build.ts [--target=linux-x64|linux-arm64] [--outfile=PATH]
// Default: the host's target and ./postbox. The arm64 runtime comes from
// node_modules/@oven/bun-linux-aarch64 of the pinned Bun when present (offline);
// otherwise Bun fetches it from the npm registry. The version, git commit, target and
// Bun version are baked in for `postbox --version`.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "./package.json" with { type: "json" };
import { MQ_READER_SOURCE } from "./src/ffi/mqreader.ts";
import { NATIVE_CFLAGS } from "./src/ffi/native.ts";
import { TRAP_SOURCE } from "./src/ffi/siginfo.ts";

const TARGETS = {
  "linux-x64": { bun: "bun-linux-x64", pkg: "bun-linux-x64", arch: "x64", cc: "x86_64-linux-gnu-gcc" },
  "linux-arm64": { bun: "bun-linux-arm64", pkg: "bun-linux-aarch64", arch: "arm64", cc: "aarch64-linux-gnu-gcc" },
} as const;
type Target = keyof typeof TARGETS;

function fail(message: string): never {
  console.error(`build: ${message}`);
  process.exit(1);
}

function parse(argv: string[]): { target: Target; outfile: string } {
  const host = Object.entries(TARGETS).find(([, t]) => t.arch === process.arch)?.[0] as Target | undefined;
  let target = host;
  let outfile = "./postbox";
  for (const arg of argv) {
    const [key, value] = arg.split(/=(.*)/s, 2);
    if (key === "--target" && value !== undefined) {
      if (!(value in TARGETS)) fail(`--target=${value}: unknown (linux-x64 or linux-arm64)`);
      target = value as Target;
    } else if (key === "--outfile" && value) outfile = value;
    else fail(`${arg}: unknown argument (usage: bun build.ts [--target=linux-x64|linux-arm64] [--outfile=PATH])`);
  }
  if (!target) fail(`the host (${process.arch}) is no postbox target: pass --target=linux-x64 or --target=linux-arm64`);
  return { target, outfile };
}

const { target, outfile } = parse(process.argv.slice(2));
const t = TARGETS[target];
const cross = t.arch !== process.arch;
// The pinned runtime from node_modules, when that package is of the running Bun's version.
const local = join(import.meta.dir, "node_modules", "@oven", t.pkg);
const localVersion = existsSync(join(local, "package.json")) ? (await Bun.file(join(local, "package.json")).json()).version : null;
const executablePath = cross && localVersion === Bun.version && existsSync(join(local, "bin", "bun")) ? join(local, "bin", "bun") : undefined;

/** The commit built, "-dirty" when tracked files differ from it; "unknown" outside git. */
function gitCommit(): string {
  const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: import.meta.dir, stderr: "ignore" });
  if (head.exitCode !== 0) return "unknown";
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"], { cwd: import.meta.dir, stderr: "ignore" });
  return head.stdout.toString().trim() + (dirty.stdout.toString().trim() === "" ? "" : "-dirty");
}
const build = { version: pkg.version, commit: gitCommit(), target, bun: Bun.version };

/**
 * The signal trap and the mq reader as shared objects for the target (src/ffi/native.ts:
 * the binary then needs no TinyCC compile at start), with the host's gcc or the
 * target's cross gcc. Without one, none: the binary compiles them with cc() as before.
 */
function nativeObjects(): { objects: Record<string, string>; compiler: string | null } {
  const compiler = [t.cc, ...(cross ? [] : ["gcc", "cc"])].find((name) => Bun.which(name) !== null) ?? null;
  if (compiler === null) return { objects: {}, compiler };
  const dir = mkdtempSync(join(tmpdir(), "postbox-build-"));
  try {
    const objects: Record<string, string> = {};
    for (const [name, source] of [["postbox-siginfo", TRAP_SOURCE], ["postbox-mqreader", MQ_READER_SOURCE]] as const) {
      writeFileSync(join(dir, `${name}.c`), source);
      const r = Bun.spawnSync([compiler, ...NATIVE_CFLAGS, "-o", join(dir, `${name}.so`), join(dir, `${name}.c`)], { stderr: "pipe" });
      if (r.exitCode !== 0) fail(`${compiler} could not build ${name}.so: ${r.stderr.toString().trim()}`);
      objects[name] = readFileSync(join(dir, `${name}.so`)).toString("base64");
    }
    return { objects, compiler };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const native = nativeObjects();

let result: Awaited<ReturnType<typeof Bun.build>>;
try {
  result = await Bun.build({
    // the Worker threads (the forwarder's, the datagram reader) are their own entry points, embedded beside the CLI
    entrypoints: ["./src/cli.ts", "./src/sinks/forward-worker.ts", "./src/channels/dgram-reader.ts"],
    target: "bun",
    format: "esm",
    minify: true,
    bytecode: true,
    define: { POSTBOX_BUILD: JSON.stringify(build), POSTBOX_NATIVE: JSON.stringify(native.objects) },
    compile: {
      // The host's own target: the running (pinned) Bun is the runtime, nothing fetched.
      ...(cross ? { target: t.bun } : {}),
      outfile,
      autoloadDotenv: false,
      autoloadBunfig: false,
      // JIT tier-up thresholds x8 until the CLI calls Bun.unsafe.setJITPolicy(1)
      // (serve: once open): start-up code runs once, compiling it only costs time
      // and memory (measured: ~2.5 MiB less idle RSS, one JIT thread fewer).
      jitPolicy: 8,
      // The bytecode a default serve runs from start to shutdown, laid out together
      // at the front (recorded by `npm run order`): an idle postbox keeps less of
      // its own bytecode resident (measured: ~1.4 MiB). Layout only, never behaviour.
      bytecodeOrder: join(import.meta.dir, "bytecode.order"),
      ...(executablePath ? { executablePath } : {}),
    },
  });
} catch (err) {
  // Bun.build throws (rather than returning logs) when it cannot fetch a cross runtime.
  fail(`${target}: ${err instanceof Error ? err.message : String(err)}${cross && !executablePath ? ` (Bun fetches the ${t.pkg} runtime from the npm registry; offline, install @oven/${t.pkg}@${Bun.version} into node_modules)` : ""}`);
}
if (!result.success) {
  for (const m of result.logs) console.error(m);
  fail(`${target}: the build failed`);
}
// Plain stderr: console.error paints it red on a terminal, and this is news, not an error.
const nativeNote = native.compiler === null ? ", trap and mq reader left to TinyCC (no C compiler for the target)" : "";
process.stderr.write(`built ${outfile} (${target}, ${build.commit}${executablePath ? `, runtime from ${executablePath}` : ""}${nativeNote})\n`);
