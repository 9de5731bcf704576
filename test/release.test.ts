// npm run release and scripts/install.sh, end to end: the archives just built are
// installed into a prefix and the installed binary runs (x64 natively, arm64 under
// qemu-user). xz -9 of both targets takes minutes (15 on a loaded 2-core machine),
// so the test builds with --fast (xz -1; every other step the same) and caches the
// result outside the clone by a hash of everything it is made from.
import { describe, expect, test } from "bun:test";
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, relative } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { BIN, have, ROOT, sh, tempDir, until } from "./harness.ts";

const QEMU = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"];
const canArm = have("qemu-aarch64-static") && existsSync("/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1");

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Everything a release is made from. */
function sourceHash(): string {
  const h = new Bun.CryptoHasher("sha256");
  // install.sh is run from the tree at test time, not part of the release: editing it rebuilds nothing.
  const inputs = [...files(join(ROOT, "src")), ...files(join(ROOT, "scripts")).filter((f) => !f.endsWith("install.sh")), ...["build.ts", "package.json", "package-lock.json"].map((f) => join(ROOT, f))];
  for (const f of inputs.sort()) h.update(relative(ROOT, f)).update("\0").update(readFileSync(f)).update("\0");
  return h.update(Bun.version).digest("hex").slice(0, 16);
}

function cacheRoot(): string {
  for (const dir of [process.env.POSTBOX_TEST_CACHE, "/var/cache/postbox-test", join(homedir(), ".cache", "postbox-test")]) {
    if (!dir) continue;
    try {
      mkdirSync(dir, { recursive: true });
      accessSync(dir, constants.W_OK);
      return dir;
    } catch {}
  }
  throw new Error("no writable cache directory for the release artifacts");
}

/** dist/ of this tree's release: from the cache, or built now with `bun scripts/release.ts`. */
async function release(): Promise<string> {
  const dist = join(cacheRoot(), `release-fast-${sourceHash()}`);
  if (existsSync(join(dist, "SHA256SUMS"))) return dist;
  const tmp = `${dist}.${process.pid}.tmp`;
  const p = Bun.spawn([process.execPath, "scripts/release.ts", "--fast", `--dist=${tmp}`], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if ((await p.exited) !== 0) throw new Error("bun scripts/release.ts failed");
  rmSync(dist, { recursive: true, force: true });
  renameSync(tmp, dist); // whole or not at all: a killed run leaves only a .tmp
  // ~80 MiB per source version: drop releases of other versions not used for an hour.
  for (const old of readdirSync(cacheRoot())) {
    const path = join(cacheRoot(), old);
    if (/^release-fast-/.test(old) && path !== dist && Date.now() - statSync(path).mtimeMs > 3_600_000) rmSync(path, { recursive: true, force: true });
  }
  return dist;
}

/** A "download" directory holding the archive, SHA256SUMS and the man page, as a user would have them. */
function download(dist: string, into: string, target: string): string {
  const archive = `postbox-${pkg.version}-${target}.xz`;
  for (const f of [archive, "SHA256SUMS", "postbox.1"]) copyFileSync(join(dist, f), join(into, f));
  return join(into, archive);
}

/** Serve from the installed binary (optionally under qemu) on a FIFO and a socket; post to both. */
async function postThrough(cmd: string[], dir: string): Promise<string> {
  const proc = Bun.spawn([...cmd, "--no-mq", "--no-signals", "--linger", "0"], { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  let out = "";
  let err = "";
  const reading = Promise.all([
    (async () => {
      for await (const c of proc.stdout) out += new TextDecoder().decode(c);
    })(),
    (async () => {
      for await (const c of proc.stderr) err += new TextDecoder().decode(c);
    })(),
  ]);
  try {
    await until(() => err.includes("... by socket") || proc.exitCode !== null, "the installed postbox's banner", 60_000);
    expect(err).toContain("... by fifo:");
    writeFileSync(join(dir, "fifo"), "by fifo\n");
    const s = Bun.spawnSync([BIN, "send", "--socket", join(dir, "socket"), "by socket"]);
    expect(s.exitCode).toBe(0);
    await until(() => out.split("\n").length > 2, "two lines from the installed postbox", 30_000);
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
    await reading;
  }
  expect(proc.exitCode).toBe(0);
  return out;
}

describe("release and install", () => {
  test("npm run release: both archives, the man page and SHA256SUMS that verify", async () => {
    const dist = await release();
    const names = readFileSync(join(dist, "SHA256SUMS"), "utf8").trim().split("\n").map((l) => l.split(/\s+/)[1]).sort();
    expect(names).toEqual([`postbox-${pkg.version}-linux-arm64.xz`, `postbox-${pkg.version}-linux-x64.xz`, "postbox.1"]);
    expect(await sh(dist, "sha256sum --check --strict SHA256SUMS")).toMatchObject({ exitCode: 0 });
    for (const n of names) console.log(`release: ${n} ${(statSync(join(dist, n!)).size / 2 ** 20).toFixed(1)} MiB`);
  }, 300_000);

  test("install.sh installs the x64 archive (binary + man page); the installed postbox runs and serves", async () => {
    const dist = await release();
    using dl = tempDir();
    using prefix = tempDir();
    const archive = download(dist, dl.path, "linux-x64");
    const r = await sh(dl.path, `sh "${ROOT}/scripts/install.sh" --prefix "${prefix.path}" "${archive}"`, 60_000);
    expect(r).toMatchObject({ exitCode: 0 });
    const bin = join(prefix.path, "bin", "postbox");
    expect(statSync(bin).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(prefix.path, "share", "man", "man1", "postbox.1"), "utf8")).toBe(readFileSync(join(dist, "postbox.1"), "utf8"));
    const v = Bun.spawnSync([bin, "--version"]);
    expect(v.stdout.toString()).toMatch(new RegExp(`^postbox ${pkg.version.replace(/\./g, "\\.")} \\(commit [0-9a-f]{12}(-dirty)?, linux-x64, Bun ${Bun.version}\\)\\n$`));
    using work = tempDir();
    const out = await postThrough([bin], work.path);
    expect(out).toContain("fifo: by fifo\n");
    expect(out).toMatch(/socket\[pid=\d+,uid=\d+,gid=\d+\]: by socket\n/);
  }, 300_000);

  test("install.sh refuses an archive whose checksum does not match, and installs nothing", async () => {
    const dist = await release();
    using dl = tempDir();
    using prefix = tempDir();
    const archive = download(dist, dl.path, "linux-x64");
    const bytes = readFileSync(archive);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    writeFileSync(archive, bytes);
    const r = await sh(dl.path, `sh "${ROOT}/scripts/install.sh" --prefix "${prefix.path}" "${archive}"`, 60_000);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^install\.sh: checksum mismatch for postbox-[\d.]+-linux-x64\.xz: expected [0-9a-f]{64}, got [0-9a-f]{64}; .*nothing installed\n$/);
    expect(readdirSync(prefix.path)).toEqual([]);
  }, 300_000);

  test.skipIf(!canArm)("the arm64 archive installs and runs under qemu-user: --version, a FIFO and a socket post", async () => {
    const dist = await release();
    using dl = tempDir();
    using prefix = tempDir();
    const archive = download(dist, dl.path, "linux-arm64");
    const r = await sh(dl.path, `sh "${ROOT}/scripts/install.sh" --prefix "${prefix.path}" "${archive}"`, 60_000);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain("is for aarch64, this machine is x86_64");
    const bin = join(prefix.path, "bin", "postbox");
    expect(Bun.spawnSync(["file", "-b", bin]).stdout.toString()).toMatch(/ARM aarch64/);
    const v = Bun.spawnSync([...QEMU, bin, "--version"]);
    expect(v.stdout.toString()).toMatch(/^postbox [\d.]+ \(commit [0-9a-f]{12}(-dirty)?, linux-arm64, Bun [\d.]+\)\n$/);
    using work = tempDir();
    const out = await postThrough([...QEMU, bin], work.path);
    expect(out).toContain("fifo: by fifo\n");
    expect(out).toMatch(/socket\[pid=\d+,uid=\d+,gid=\d+\]: by socket\n/);
  }, 300_000);

  test("two builds of one tree are byte-identical (the release is reproducible)", async () => {
    using a = tempDir();
    using b = tempDir();
    for (const d of [a.path, b.path]) {
      const p = Bun.spawnSync([process.execPath, "build.ts", `--outfile=${join(d, "postbox")}`], { cwd: ROOT });
      expect(p.exitCode).toBe(0);
    }
    const sum = (d: string) => new Bun.CryptoHasher("sha256").update(readFileSync(join(d, "postbox"))).digest("hex");
    expect(sum(a.path)).toBe(sum(b.path));
  }, 120_000);
});
