import { describe, expect, test } from "bun:test";
import { readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { BIN, runPostbox, sh, startPostbox, tempDir } from "./harness.ts";

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

  test("/dev/full: a clear error, and stdout keeps serving", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--store", "/dev/full"]);
    for (const m of ["a", "b", "c"]) expect((await runPostbox(dir.path, ["send", "--socket", "socket", m])).exitCode).toBe(0);
    expect((await pb.waitLines(3)).map((l) => l.split(": ")[1])).toEqual(["a", "b", "c"]);
    await pb.waitStderr(/postbox: cannot write to the store \/dev\/full: no space left on device \(ENOSPC\); messages still go to stdout/);
    const end = await pb.stop();
    expect(end.exitCode).toBe(0);
    expect(end.stderr).toMatch(/3 message\(s\) were printed but could not be kept in the store \/dev\/full/);
  });

  test("a store that cannot be opened is a clear start-up error", async () => {
    using dir = tempDir();
    const r = await runPostbox(dir.path, ["--no-mq", "--store", "no/such/dir/mail"]);
    expect(r).toEqual({ exitCode: 1, stdout: "", stderr: "postbox: cannot open the store no/such/dir/mail: no such file or directory (ENOENT)\n" });
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
