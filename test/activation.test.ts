import { describe, expect, test } from "bun:test";
import { existsSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { BIN, have, mqName, sh, tempDir, until } from "./harness.ts";
import { mqPut, mqRemove } from "./helpers/mq.ts";
import { mqClose, mqOpen, O_CREAT, O_RDONLY } from "../src/ffi/libc.ts";

/** Spawn a command, collecting its output; disposed by SIGKILL. */
function spawn(cmd: string[], opts: { cwd: string; stdio?: ["ignore", "pipe", "pipe", ...number[]] }) {
  const p = Bun.spawn(cmd, { cwd: opts.cwd, stdio: opts.stdio ?? ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const dec = new TextDecoder();
  (async () => {
    for await (const c of p.stdout as ReadableStream<Uint8Array>) out += dec.decode(c, { stream: true });
  })();
  (async () => {
    for await (const c of p.stderr as ReadableStream<Uint8Array>) err += dec.decode(c, { stream: true });
  })();
  return {
    p,
    out: () => out,
    err: () => err,
    [Symbol.dispose]: () => p.kill("SIGKILL"),
  };
}

describe("systemd socket activation", () => {
  test.skipIf(!have("systemd-socket-activate") || !have("nc"))("systemd-socket-activate passes a listening socket; postbox adopts it and leaves the file", async () => {
    using dir = tempDir();
    const sock = join(dir.path, "act.sock");
    using run = spawn(["systemd-socket-activate", "-l", sock, "--fdname=post", BIN, "--no-mq", "--no-fifo"], { cwd: dir.path });
    await until(() => existsSync(sock), "systemd-socket-activate to listen");
    expect((await sh(dir.path, "echo first | nc -U act.sock")).exitCode).toBe(0); // the first connection starts postbox
    await until(() => run.out().includes(": first\n"), "the first message");
    await until(() => run.err().includes("... by socket: echo 2 | nc -U " + sock), "the banner with the passed path");
    expect(existsSync(join(dir.path, "socket"))).toBe(false); // no socket of its own
    run.p.kill("SIGTERM");
    await run.p.exited;
    expect(lstatSync(sock).isSocket()).toBe(true); // not ours to remove
    expect(run.out()).toMatch(/^socket\[pid=\d+,uid=\d+,gid=\d+\]: first\n$/);
  });

  test("a launcher passing a FIFO and a message queue the sd_listen_fds way", async () => {
    using dir = tempDir();
    const mq = mqName();
    try {
      await sh(dir.path, "mkfifo -m 600 passed.fifo");
      const mqd = mqOpen(mq, O_RDONLY | O_CREAT, 0o600, { maxmsg: 10, msgsize: 128 });
      mqPut(mq, [["left in the queue", 3]]);
      // LISTEN_PID must be the pid that execs postbox: bash sets it, then execs in place.
      const script = `exec 4<>passed.fifo; LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=queue:pipe exec "${BIN}" --no-socket --no-signals`;
      using run = spawn(["bash", "-c", script], { cwd: dir.path, stdio: ["ignore", "pipe", "pipe", mqd] });
      mqClose(mqd); // the child has its own copy
      await until(() => run.err().includes("Santas Postbox is open"), "the banner");
      expect(run.err()).toContain("... by fifo:   echo 1 > pipe");
      await until(() => run.out().includes("mqueue[prio=3]: left in the queue\n"), "the queued message");
      await sh(dir.path, "echo through the fifo > passed.fifo");
      await until(() => run.out().includes("fifo: through the fifo\n"), "the fifo message");
      mqPut(mq, [["fresh", 1]]);
      await until(() => run.out().includes("mqueue[prio=1]: fresh\n"), "a message posted after start");
      expect(existsSync(join(dir.path, "fifo"))).toBe(false);
      run.p.kill("SIGTERM");
      expect(await run.p.exited).toBe(0);
      expect(lstatSync(join(dir.path, "passed.fifo")).isFIFO()).toBe(true);
    } finally {
      mqRemove(mq);
    }
  });
});
