// A bare machine: no libc.so link script, no libc.a, no headers, no compiler —
// what slim containers and servers look like. Preferably a Debian minbase root
// (debootstrap, cached outside the clone) with only ./postbox copied in, run
// under chroot; where that cannot be built, this machine inside a mount
// namespace that hides libc.so, libc.a and /usr/include. Either way in its own
// mount and IPC namespace (unshare -m -i): the mounts and the queue vanish with it.
import { describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { BIN, tempDir } from "./harness.ts";

// Run as a uid of our own: message queues count against RLIMIT_MSGQUEUE per uid, and
// other suites' root-owned queues on this machine must not decide whether ours opens.
const uid = 20_000 + (process.pid % 10_000);
const gid = uid;
const LIB = `/usr/lib/${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux-gnu`;
const skipWhy =
  process.getuid!() !== 0
    ? "needs root (mount namespaces, chroot)"
    : ["unshare", "chroot", "setpriv"].some((c) => Bun.which(c) === null)
      ? "needs unshare, chroot and setpriv (util-linux, coreutils)"
      : null;
if (skipWhy) console.log(`bare machine: skipped: ${skipWhy}`);

// POSIX sh (the root has dash, coreutils and grep, no nc): the SPEC's four posts,
// each by `postbox send`, waiting for conditions with a deadline.
const FOUR_POSTS = String.raw`
set -u
: > out; : > err # before the background job's own redirections, so the polls below can read them
./postbox --mq /pbbare --signals USR1 > out 2> err &
pid=$!
# poll until $1 holds, postbox has exited, or 30 s have passed
wait_for() { n=0; until eval "$1"; do n=$((n + 1)); kill -0 $pid 2>/dev/null && [ $n -lt 1500 ] || return 1; sleep 0.02; done; }
wait_for 'grep -q "^\.\.\. by signal" err' || { echo "no banner" >&2; kill -KILL $pid 2>/dev/null; exit 1; }
./postbox send --fifo fifo 1
./postbox send --socket socket 2
./postbox send --signal USR1 --pid $pid 3
./postbox send --mq /pbbare 4
wait_for '[ "$(wc -l < out)" -ge 4 ]' || echo "timed out waiting for 4 lines" >&2
kill -TERM $pid
wait $pid
`;

/** The cached minbase root, or null with the reason why it cannot be had here (POSTBOX_TEST_BARE=namespace forces that). */
function minbaseRoot(): { root: string | null; why: string } {
  if (process.env.POSTBOX_TEST_BARE === "namespace") return { root: null, why: "POSTBOX_TEST_BARE=namespace" };
  const r = Bun.spawnSync(["bash", join(import.meta.dir, "helpers", "minbase-root.sh")], { stdout: "pipe", stderr: "pipe" });
  const root = r.stdout.toString().trim();
  if (r.exitCode === 0 && existsSync(join(root, "bin", "sh"))) return { root, why: "" };
  return { root: null, why: r.stderr.toString().trim() || `minbase-root.sh exited ${r.exitCode}` };
}

/** Mounts (inside the namespace) that hide what only libc6-dev and friends install. */
function hideDevFiles(work: string): string {
  const lib = LIB;
  return [
    `w="${work}"; mkdir "$w" "$w/up" "$w/work"`,
    // overlay whiteouts (0:0 character devices) make libc.so and libc.a vanish from the lib dir
    `mknod "$w/up/libc.so" c 0 0; mknod "$w/up/libc.a" c 0 0`,
    `mount -t overlay overlay -o "lowerdir=${lib},upperdir=$w/up,workdir=$w/work" ${lib}`,
    `mount -t tmpfs tmpfs /usr/include`,
    `[ ! -e ${lib}/libc.so ] && [ ! -e ${lib}/libc.a ] && [ ! -e /usr/include/stdio.h ]`,
  ].join("\n");
}

describe("bare machine", () => {
  test.skipIf(skipWhy !== null)(
    "no libc.so, no headers: send --fifo, --socket, --signal USR1, --mq print the four SPEC lines",
    async () => {
      using dir = tempDir();
      copyFileSync(BIN, join(dir.path, "postbox")); // the only thing the machine gets
      chmodSync(dir.path, 0o1777);
      const asUser = `setpriv --reuid=${uid} --regid=${gid} --clear-groups`;
      const { root, why } = minbaseRoot();
      let script: string;
      if (root) {
        console.log(`bare machine: debootstrap minbase root ${root}, under chroot`);
        // The work dir appears as the root's /mnt; /proc is the root's own mount.
        script = [
          `set -e`,
          `mount -t proc proc "${root}/proc"`,
          `mount --bind "${dir.path}" "${root}/mnt"`,
          `[ ! -e "${root}${LIB}/libc.so" ] && [ ! -e "${root}/usr/include/stdio.h" ] && [ ! -e "${root}/usr/bin/cc" ]`,
          `exec chroot "${root}" /bin/sh -c 'cd /mnt && exec ${asUser} /bin/sh -c "$1"' sh "$1"`,
        ].join("\n");
      } else {
        console.log(`bare machine: no minbase root (${why}); a mount namespace hiding libc.so, libc.a and /usr/include`);
        script = `set -e\n${hideDevFiles(join(dir.path, ".overlay"))}\ncd "${dir.path}"\nexec ${asUser} /bin/sh -c "$1"`;
      }
      const p = Bun.spawn(["unshare", "-m", "-i", "--propagation", "private", "bash", "-c", script, "bash", FOUR_POSTS], {
        stdout: "pipe",
        stderr: "pipe",
      });
      const [, stderr, exitCode] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      const out = await Bun.file(join(dir.path, "out")).text().catch(() => "");
      const err = await Bun.file(join(dir.path, "err")).text().catch(() => "");
      expect({ exitCode, stderr, err: err.split("\n").filter((l) => l.startsWith("postbox:")) }).toEqual({ exitCode: 0, stderr: "", err: [] });
      const lines = out.split("\n").slice(0, -1);
      expect(lines).toHaveLength(4);
      expect(lines).toContain("fifo: 1");
      expect(lines.filter((l) => new RegExp(`^socket\\[pid=\\d+,uid=${uid},gid=${gid}\\]: 2$`).test(l))).toHaveLength(1);
      expect(lines.filter((l) => new RegExp(`^signal\\[pid=\\d+,uid=${uid},sig=SIGUSR1\\]: 3$`).test(l))).toHaveLength(1);
      expect(lines).toContain("mqueue[prio=0]: 4");
    },
    240_000, // the first run builds the root (~30–60 s); later runs reuse it
  );
});
