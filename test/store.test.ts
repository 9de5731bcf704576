import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, have, runPostbox, sh, startPostbox, tempDir, until } from "./harness.ts";

const records = (path: string) =>
  readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe("--store", () => {
  test("every message is appended as NDJSON, file 0600; after SIGTERM nothing is missing", async () => {
    using dir = tempDir();
    const store = join(dir.path, "mail.ndjson");
    await using pb = await startPostbox(dir.path, ["--store", "mail.ndjson", "--signals", "RTMIN"]);
    expect(statSync(store).mode & 0o777).toBe(0o600);
    const n = 2000;
    const r = await sh(dir.path, `seq 1 ${n} | "${BIN}" send --socket socket && echo fifo-line > fifo`);
    expect(r.exitCode).toBe(0);
    await pb.waitLines(n + 1);
    const end = await pb.stop("SIGTERM");
    expect(end.exitCode).toBe(0);
    const recs = records(store);
    expect(recs).toHaveLength(n + 1);
    expect(recs.filter((x) => x.channel === "socket").map((x) => x.msg)).toEqual(Array.from({ length: n }, (_, i) => String(i + 1)));
    expect(recs.find((x) => x.channel === "fifo")).toMatchObject({ msg: "fifo-line", via: "fifo" });
    expect(typeof recs[0].comm).toBe("string"); // the store gets the --json fields even in text mode
    expect(end.stdout.split("\n")).toHaveLength(n + 2);
  });

  test("SIGHUP reopens the file (log rotation)", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--store", "mail.ndjson"]);
    await runPostbox(dir.path, ["send", "--socket", "socket", "before"]);
    await pb.waitLines(1);
    renameSync(join(dir.path, "mail.ndjson"), join(dir.path, "mail.1"));
    pb.proc.kill("SIGHUP");
    await pb.waitStderr(/reopened the store mail\.ndjson/);
    await runPostbox(dir.path, ["send", "--socket", "socket", "after"]);
    await pb.waitLines(2);
    expect((await pb.stop()).exitCode).toBe(0);
    expect(records(join(dir.path, "mail.1")).map((x) => x.msg)).toEqual(["before"]);
    expect(records(join(dir.path, "mail.ndjson")).map((x) => x.msg)).toEqual(["after"]);
  });

  test("/dev/full: a clear error, stdout keeps serving, and the exit status says what was not kept", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--store", "/dev/full"]);
    for (const m of ["a", "b", "c"]) expect((await runPostbox(dir.path, ["send", "--socket", "socket", m])).exitCode).toBe(0);
    expect((await pb.waitLines(3)).map((l) => l.split(": ")[1])).toEqual(["a", "b", "c"]);
    await pb.waitStderr(/postbox: cannot write to the store \/dev\/full: no space left on device \(ENOSPC\); messages still go to stdout/);
    const end = await pb.stop();
    expect(end.exitCode).toBe(1); // printed is not kept: SIGTERM's usual 0 would hide it
    expect(end.stderr).toMatch(/postbox: 3 message\(s\) were printed but could not be kept in the store \/dev\/full\n$/);
  });

  test("a store that cannot be opened is a clear start-up error", async () => {
    using dir = tempDir();
    const r = await runPostbox(dir.path, ["--no-mq", "--store", "no/such/dir/mail"]);
    expect(r).toEqual({ exitCode: 1, stdout: "", stderr: "postbox: cannot open the store no/such/dir/mail: no such file or directory (ENOENT)\n" });
    mkdirSync(join(dir.path, "a-dir"));
    const d = await runPostbox(dir.path, ["--no-mq", "--store", "a-dir"]);
    expect(d).toEqual({ exitCode: 1, stdout: "", stderr: "postbox: cannot open the store a-dir: it is a directory (EISDIR)\n" });
  });

  test("a symlink as the store is refused, and what it points to is left untouched", async () => {
    using dir = tempDir();
    const victim = join(dir.path, "victim.txt");
    writeFileSync(victim, "not postbox's", { mode: 0o600 }); // no final newline: the old code "sealed" it
    symlinkSync(victim, join(dir.path, "mail.ndjson"));
    const r = await runPostbox(dir.path, ["--no-mq", "--no-fifo", "--no-socket", "--signals", "USR1", "--timeout", "0.5", "--store", "mail.ndjson"]);
    expect(r).toEqual({ exitCode: 1, stdout: "", stderr: "postbox: cannot open the store mail.ndjson: it is a symlink (postbox never writes through one); give the file itself\n" });
    expect(readFileSync(victim, "utf8")).toBe("not postbox's");
  });

  test("a FIFO as the store is refused at once (opening it for writing would block postbox until a reader came)", async () => {
    using dir = tempDir();
    expect((await sh(dir.path, "mkfifo mail.ndjson")).exitCode).toBe(0);
    const p = Bun.spawn([BIN, "--no-mq", "--no-fifo", "--no-socket", "--signals", "USR1", "--timeout", "0.5", "--store", "mail.ndjson"], { cwd: dir.path, stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => p.kill("SIGKILL"), 4_000); // the old build hung in open(2) for good
    const [stdout, stderr, exitCode] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    clearTimeout(timer);
    expect({ exitCode, stdout, stderr }).toEqual({ exitCode: 1, stdout: "", stderr: "postbox: cannot open the store mail.ndjson: it is a FIFO or a socket, not a file (writing to it would block postbox)\n" });
  });

  test("the store is written no later than stdout", async () => {
    using dir = tempDir();
    const store = join(dir.path, "mail.ndjson");
    await using pb = await startPostbox(dir.path, ["--store", "mail.ndjson"]);
    for (let i = 0; i < 20; i++) {
      await runPostbox(dir.path, ["send", "--socket", "socket", `m${i}`]);
      const lines = await pb.waitLines(i + 1);
      // whatever stdout shows is already in the file
      expect(records(store).length).toBeGreaterThanOrEqual(lines.length);
    }
  });
});

// Issue #12: the store never tears.
describe("--store never tears", () => {
  const strict = new TextDecoder("utf-8", { fatal: true });

  test("a torn last record (a crash mid-write) is sealed at start, with its offset; every record after it parses", async () => {
    using dir = tempDir();
    const store = join(dir.path, "mail.ndjson");
    const whole = '{"ts":"2026-12-01T00:00:00.000Z","channel":"fifo","msg":"whole","via":"fifo"}\n';
    const torn = '{"ts":"2026-12-01T00:00:01.000Z","channel":"socket","msg":"tor';
    writeFileSync(store, whole + torn, { mode: 0o600 });
    await using pb = await startPostbox(dir.path, ["--store", "mail.ndjson", "--no-mq"]);
    await pb.waitStderr(new RegExp(`store mail\\.ndjson ended in a torn record at byte ${whole.length} .*sealed`));
    for (const m of ["after-1", "after-2"]) expect((await runPostbox(dir.path, ["send", "--socket", "socket", m])).exitCode).toBe(0);
    await pb.waitLines(2);
    expect((await pb.stop()).exitCode).toBe(0);
    const lines = readFileSync(store, "utf8").split("\n");
    expect(lines[0]).toBe(whole.trimEnd());
    expect(lines[1]).toBe(torn); // kept as it was, on a line of its own
    expect(lines.slice(2, 4).map((l) => JSON.parse(l).msg)).toEqual(["after-1", "after-2"]);
    expect(lines[4]).toBe("");
  });

  // A tmpfs of our own needs a private mount namespace (root with CAP_SYS_ADMIN).
  const canMount =
    process.getuid!() === 0 && have("unshare") && Bun.spawnSync(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"]).exitCode === 0;
  test.skipIf(!canMount)(
    "ENOSPC mid-character on a small tmpfs: retries write the exact bytes; every record is UTF-8 and JSON",
    async () => {
      using dir = tempDir();
      mkdirSync(join(dir.path, "mnt"));
      // A tmpfs of its own (a private mount namespace) that fills up, then frees a filler file per round.
      const setup = "mount -t tmpfs -o size=1280k tmpfs mnt && for i in 0 1 2 3 4 5 6 7; do head -c 150k /dev/zero > mnt/fill$i; done; exec \"$@\"";
      await using pb = await startPostbox(dir.path, ["--store", "mnt/mail.ndjson", "--no-fifo", "--no-mq"], { wrap: ["unshare", "-m", "bash", "-c", setup, "bash"] });
      const mnt = `/proc/${pb.pid}/root${dir.path}/mnt`;
      // 8 rounds of 500 lines (~142 KiB of records) against 80 KiB free, then 150 KiB more a
      // round: the disk fills in every round, each time cutting a record (often mid-emoji).
      const emoji = "😀".repeat(40);
      const sent: string[] = [];
      const post = async (n: number) => {
        const batch = Array.from({ length: n }, (_, i) => `${sent.length + i} ${emoji}`);
        writeFileSync(join(dir.path, "batch.txt"), batch.join("\n") + "\n");
        expect((await sh(dir.path, `"${BIN}" send --socket socket < batch.txt`, 30_000)).exitCode).toBe(0);
        sent.push(...batch);
        await pb.waitLines(sent.length, 30_000);
      };
      for (let round = 0; round < 8; round++) {
        await post(500);
        if (round === 0) await pb.waitStderr(/cannot write to the store .*no space left on device/);
        rmSync(join(mnt, `fill${round}`));
      }
      await post(1); // every filler is gone: one more message makes postbox retry what it holds
      const read = () => readFileSync(join(mnt, "mail.ndjson"));
      // the retry is done once every record (or the count of those not kept) is accounted for
      await until(() => read().filter((c) => c === 10).length >= sent.length || /could not be kept/.test(pb.stderr.text), "every record in the store", 20_000);
      const bytes = read();
      const text = strict.decode(bytes); // throws on the old code: a retry had re-decoded split characters
      const msgs = text.split("\n").slice(0, -1).map((l) => JSON.parse(l).msg);
      expect(msgs.length + Number(/(\d+) message\(s\) could not be kept/.exec(pb.stderr.text)?.[1] ?? 0)).toBe(sent.length);
      expect(msgs.filter((m) => m.includes("\ufffd"))).toEqual([]);
      expect(msgs).toEqual(sent.slice(0, msgs.length));
    },
  );
});
