import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, have, runPostbox, sh, startPostbox, tempDir, until } from "./harness.ts";

const uid = process.getuid!();
const gid = process.getgid!();
const root = uid === 0;
const only = ["--no-fifo", "--no-socket", "--no-mq", "--no-signals"];
const base = [...only, "--dgram", "dgram"];
const asNobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"];
const json = (lines: string[]) => lines.map((l) => JSON.parse(l) as Record<string, unknown>);

describe("datagram channel: real senders", () => {
  test.skipIf(!have("logger"))("logger -u: one line with logger's real pid; --syslog shows the payload with its severity", async () => {
    using dir = tempDir();
    {
      await using pb = await startPostbox(dir.path, base);
      expect(lstatSync(join(dir.path, "dgram")).mode & 0o777).toBe(0o600);
      const p = Number((await sh(dir.path, "logger -u dgram hello & p=$!; wait $p; echo $p")).stdout.trim());
      const [line] = await pb.waitLines(1);
      // without --syslog the bytes are shown as they came, header and all
      expect(line).toMatch(new RegExp(`^dgram\\[pid=${p},uid=${uid},gid=${gid}\\]: <13>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\S+: hello$`));
    }
    await using pb = await startPostbox(dir.path, [...base, "--syslog"]);
    expect(pb.stderr.text).toContain("... by dgram:  logger -u dgram 5");
    const p = Number((await sh(dir.path, "logger -u dgram hello & p=$!; wait $p; echo $p")).stdout.trim());
    const q = Number((await sh(dir.path, "logger -u dgram -p user.err oops & p=$!; wait $p; echo $p")).stdout.trim());
    expect(await pb.waitLines(2)).toEqual([`dgram[pid=${p},uid=${uid},gid=${gid},sev=notice]: hello`, `dgram[pid=${q},uid=${uid},gid=${gid},sev=err]: oops`]);
  });

  test.skipIf(!have("logger"))("--syslog --json: RFC 3164 and RFC 5424 headers become fields; a syslog(3)-style sender too", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, [...base, "--syslog", "--json"]);
    const r = await sh(dir.path, "logger -u dgram -t mytag -i -p local3.err one && logger --rfc5424 -u dgram --msgid MID -t app5 two");
    expect(r.exitCode).toBe(0);
    // what glibc's syslog(3) writes to /dev/log: openlog("pyapp", LOG_PID, LOG_DAEMON), syslog(LOG_INFO, …)
    const py = await sh(dir.path, `"${BIN}" send --dgram dgram "<30>Dec  1 09:14:49 pyapp[$$]: from syslog(3)"; echo $$`);
    expect(py.exitCode).toBe(0);
    const [one, two, three] = json(await pb.waitLines(3));
    expect(one).toMatchObject({ channel: "dgram", msg: "one", uid, gid, via: "dgram", facility: "local3", severity: "err", tag: "mytag" });
    expect(one!.procid).toBe(String(one!.pid)); // logger -i: its own pid, as the kernel saw it
    expect(two).toMatchObject({ msg: "two", facility: "user", severity: "notice", app: "app5", msgid: "MID" });
    expect(String(two!.sd)).toStartWith("[timeQuality ");
    expect(typeof two!.timestamp).toBe("string");
    expect(typeof two!.hostname).toBe("string");
    expect(three).toMatchObject({ msg: "from syslog(3)", facility: "daemon", severity: "info", tag: "pyapp", timestamp: "Dec  1 09:14:49" });
    expect(three!.procid).toBe(py.stdout.trim());
  });

  test.skipIf(!have("socat") || !have("nc"))("socat UNIX-SENDTO, nc -Uu, postbox send: one datagram is one message, its trailing \\n stripped", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, base);
    expect((await sh(dir.path, "printf 'two\\nlines\\n' | socat - UNIX-SENDTO:dgram")).exitCode).toBe(0);
    await pb.waitLines(1);
    expect((await sh(dir.path, "echo from nc | nc -Uu -q0 dgram")).exitCode).toBe(0);
    await pb.waitLines(2);
    const send = await runPostbox(dir.path, ["send", "--dgram", "dgram", "from", "postbox"]);
    expect(send).toMatchObject({ exitCode: 0, stderr: "" });
    const lines = await pb.waitLines(3);
    expect(lines.map((l) => l.replace(/^dgram\[pid=\d+,uid=\d+,gid=\d+\]: /, ""))).toEqual(["two\\nlines", "from nc", "from postbox"]);
    expect(lines.every((l) => l.startsWith(`dgram[pid=`) && l.includes(`,uid=${uid},gid=${gid}]: `))).toBe(true);
  });

  test.skipIf(!have("systemd-notify"))("systemd-notify --pid=… READY=1 with NOTIFY_SOCKET at the channel (no systemd running)", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, [...base, "--json"]);
    // systemd-notify also waits for a barrier (an fd it passes along): it returns only if we do not hold that fd
    const r = await sh(dir.path, `NOTIFY_SOCKET="$PWD/dgram" systemd-notify --pid=$$ READY=1; echo "$? $$"`);
    const [rc, pid] = r.stdout.trim().split(" ").map(Number);
    expect(rc).toBe(0);
    await until(() => json(pb.lines()).some((m) => m.pid === pid && String(m.msg).split("\n").includes("READY=1")), "READY=1 from the given pid");
  });

  test.skipIf(!root || !have("setpriv"))("another user's datagrams carry its uid; --allow-uid refuses them; an abstract name applies --mode itself", async () => {
    using dir = tempDir();
    chmodSync(dir.path, 0o777);
    const nobody = Number((await sh(dir.path, "id -u nobody")).stdout.trim());
    const nogroup = Number((await sh(dir.path, "id -g nobody")).stdout.trim());
    const abstract = `pbtest-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const sendAsNobody = (target: string, msg: string) => sh(dir.path, `${asNobody.join(" ")} "${BIN}" send --dgram ${target} ${msg} & p=$!; wait $p; echo "$? $p"`);
    {
      await using pb = await startPostbox(dir.path, [...base, "--mode", "0666", "--dgram", `@${abstract}`]);
      const [rc, p] = (await sendAsNobody("dgram", "from-nobody")).stdout.trim().split(" ").map(Number);
      expect(rc).toBe(0);
      expect(await pb.waitLines(1)).toEqual([`dgram[pid=${p},uid=${nobody},gid=${nogroup}]: from-nobody`]);
      expect((await sendAsNobody(`@${abstract}`, "abstract-ok")).stdout).toStartWith("0 ");
      expect((await pb.waitLines(2))[1]).toEndWith(`uid=${nobody},gid=${nogroup}]: abstract-ok`);
    }
    {
      // @name has no file permissions: --mode 0600 is applied to each datagram's uid
      await using pb = await startPostbox(dir.path, [...only, "--dgram", `@${abstract}`]);
      expect((await sendAsNobody(`@${abstract}`, "abstract-refused")).stdout).toStartWith("0 "); // a datagram is sent; it is dropped on arrival
      await pb.waitStderr(new RegExp(`refused datagram sender pid \\d+ \\(uid ${nobody}, gid ${nogroup}\\): --mode 0600`));
      expect((await runPostbox(dir.path, ["send", "--dgram", `@${abstract}`, "mine"])).exitCode).toBe(0);
      expect(await pb.waitLines(1)).toEqual([expect.stringMatching(new RegExp(`uid=${uid},gid=${gid}\\]: mine$`))]);
    }
    await using pb = await startPostbox(dir.path, [...base, "--mode", "0666", "--allow-uid", String(uid)]);
    expect((await sendAsNobody("dgram", "refused")).stdout).toStartWith("0 ");
    await pb.waitStderr(new RegExp(`refused datagram sender pid \\d+ \\(uid ${nobody}, gid ${nogroup}\\): not on --allow-uid`));
    expect((await runPostbox(dir.path, ["send", "--dgram", "dgram", "allowed"])).exitCode).toBe(0);
    expect(await pb.waitLines(1)).toEqual([expect.stringMatching(/\]: allowed$/)]);
    const end = await pb.stop();
    expect(end.stdout).not.toContain("refused");
  });

  test("a 200,000-byte datagram is read whole: in --max-message pieces with one warning, or as one line", async () => {
    using dir = tempDir();
    const big = "x".repeat(199_999) + "y";
    writeFileSync(join(dir.path, "big"), big);
    {
      await using pb = await startPostbox(dir.path, base);
      expect((await sh(dir.path, `"${BIN}" send --dgram dgram < big`)).exitCode).toBe(0);
      const lines = (await pb.waitLines(4)).map((l) => l.slice(l.indexOf("]: ") + 3));
      expect(lines.map((l) => l.length)).toEqual([65536, 65536, 65536, 3392]);
      expect(lines.join("")).toBe(big);
      const end = await pb.stop();
      expect(end.stderr.match(/longer than --max-message/g)).toHaveLength(1);
      expect(end.stderr).toContain("sent a datagram of 200000 bytes");
    }
    await using pb = await startPostbox(dir.path, [...base, "--max-message", "300000"]);
    expect((await sh(dir.path, `"${BIN}" send --dgram dgram < big`)).exitCode).toBe(0);
    const [line] = await pb.waitLines(1);
    expect(line!.slice(line!.indexOf("]: ") + 3)).toBe(big);
  });

  test("a burst of 20,000 datagrams from 4 blocking senders at once: every one delivered, each sender's order kept", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, base);
    for (let k = 0; k < 4; k++) writeFileSync(join(dir.path, `in${k}`), Array.from({ length: 5000 }, (_, i) => `s${k}-${i}\n`).join(""));
    const r = await sh(dir.path, `for k in 0 1 2 3; do "${BIN}" send --dgram dgram < in$k & done; wait`, 60_000);
    expect(r).toMatchObject({ exitCode: 0, stderr: "" });
    const lines = await pb.waitLines(20_000, 30_000);
    const per = new Map<string, number[]>();
    for (const l of lines) {
      const m = /^dgram\[pid=\d+,uid=\d+,gid=\d+\]: s(\d)-(\d+)$/.exec(l)!;
      per.set(m[1]!, [...(per.get(m[1]!) ?? []), Number(m[2])]);
    }
    expect([...per.keys()].sort()).toEqual(["0", "1", "2", "3"]);
    for (const seq of per.values()) expect(seq).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    const end = await pb.stop();
    expect(end.stdout.split("\n").length - 1).toBe(20_000);
  });

  test("real-time signals and datagrams at once: every payload and every datagram arrives (the reader thread never takes a signal)", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, ["--no-fifo", "--no-socket", "--no-mq", "--signals", "RTMIN", "--dgram", "dgram"]);
    writeFileSync(join(dir.path, "lines"), Array.from({ length: 5000 }, (_, i) => `d${i}\n`).join(""));
    const burst = join(import.meta.dir, "helpers", "sigburst.ts");
    const r = await sh(dir.path, `"${process.execPath}" "${burst}" ${pb.pid} RTMIN 3000 & "${BIN}" send --dgram dgram < lines & wait`, 60_000);
    expect(r).toMatchObject({ exitCode: 0, stderr: "" });
    const lines = await pb.waitLines(8000, 30_000);
    const values = lines.filter((l) => l.startsWith("signal[")).map((l) => Number(l.slice(l.lastIndexOf(" ") + 1)));
    expect(values.sort((a, b) => a - b)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    expect(lines.filter((l) => l.startsWith("dgram[")).map((l) => l.slice(l.indexOf("]: ") + 3))).toEqual(Array.from({ length: 5000 }, (_, i) => `d${i}`));
    expect(pb.proc.exitCode).toBeNull();
  });

  test("--rate limits each sender uid; the rest is counted in a warning", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, [...base, "--rate", "5/s"]);
    writeFileSync(join(dir.path, "many"), Array.from({ length: 200 }, (_, i) => `m${i}\n`).join(""));
    expect((await sh(dir.path, `"${BIN}" send --dgram dgram < many`)).exitCode).toBe(0);
    await pb.waitStderr(/--rate 5\/s: suppressed \d+ message\(s\) from uid/);
    const n = pb.lines().length;
    expect(n).toBeGreaterThanOrEqual(5);
    expect(n).toBeLessThan(200);
  });
});

describe("datagram channel: lifecycle", () => {
  test("a live receiver is never stolen; a stale file (postbox killed) is replaced; wait --dgram tells them apart", async () => {
    using dir = tempDir();
    expect((await runPostbox(dir.path, ["wait", "--dgram", "dgram", "--timeout", "0.1"])).exitCode).toBe(1);
    await using first = await startPostbox(dir.path, base);
    expect((await runPostbox(dir.path, ["wait", "--dgram", "dgram", "--timeout", "5"])).exitCode).toBe(0);
    const second = await runPostbox(dir.path, base);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toStartWith("postbox: cannot receive datagrams at dgram: another process is receiving datagrams there");
    expect((await runPostbox(dir.path, ["send", "--dgram", "dgram", "still first"])).exitCode).toBe(0);
    expect(await first.waitLines(1)).toEqual([expect.stringMatching(/\]: still first$/)]);
    first.proc.kill("SIGKILL");
    await first.proc.exited;
    expect(lstatSync(join(dir.path, "dgram")).isSocket()).toBe(true); // left behind: stale
    expect((await runPostbox(dir.path, ["wait", "--dgram", "dgram", "--timeout", "0.1"])).exitCode).toBe(1);
    const refused = await runPostbox(dir.path, ["send", "--dgram", "dgram", "to nobody"]);
    expect(refused).toMatchObject({ exitCode: 1, stderr: "postbox: cannot send to dgram: nobody is receiving there (is a postbox serving it with --dgram?)\n" });
    await using again = await startPostbox(dir.path, base);
    expect((await runPostbox(dir.path, ["send", "--dgram", "dgram", "after restart"])).exitCode).toBe(0);
    expect(await again.waitLines(1)).toEqual([expect.stringMatching(/\]: after restart$/)]);
    const end = await again.stop();
    expect(end.exitCode).toBe(0);
    expect(existsSync(join(dir.path, "dgram"))).toBe(false); // ours: removed at exit
  });

  test("of 5 postboxes started at once on a stale path exactly one serves; the others say why", async () => {
    using dir = tempDir();
    {
      await using dead = await startPostbox(dir.path, base);
      dead.proc.kill("SIGKILL");
      await dead.proc.exited;
    }
    expect(lstatSync(join(dir.path, "dgram")).isSocket()).toBe(true);
    const runs = Array.from({ length: 5 }, () => Bun.spawn([BIN, ...base], { cwd: dir.path, stdout: "pipe", stderr: "pipe" }));
    try {
      const exits = runs.map((p) => p.exited);
      await until(() => runs.filter((p) => p.exitCode !== null).length === 4, "four of them to give up", 20_000);
      const losers = runs.filter((p) => p.exitCode !== null);
      for (const p of losers) {
        expect(p.exitCode).toBe(1);
        expect(await new Response(p.stderr).text()).toStartWith("postbox: cannot receive datagrams at dgram: another process is receiving datagrams there");
      }
      const winner = runs.find((p) => p.exitCode === null)!;
      expect((await runPostbox(dir.path, ["send", "--dgram", "dgram", "to the winner"])).exitCode).toBe(0);
      winner.kill("SIGTERM");
      expect(await exits[runs.indexOf(winner)]).toBe(0);
      expect(await new Response(winner.stdout).text()).toMatch(/^dgram\[pid=\d+,uid=\d+,gid=\d+\]: to the winner\n$/);
    } finally {
      for (const p of runs) p.kill("SIGKILL");
    }
  });

  test("a regular file, a symlink, a directory or a live stream socket at the path is refused and left alone", async () => {
    using dir = tempDir();
    writeFileSync(join(dir.path, "file"), "keep me");
    writeFileSync(join(dir.path, "target"), "target");
    symlinkSync("target", join(dir.path, "link"));
    mkdirSync(join(dir.path, "dir"));
    for (const [name, what] of [["file", "a regular file"], ["link", "a symlink"], ["dir", "a directory"]] as const) {
      const r = await runPostbox(dir.path, [...only, "--dgram", name]);
      expect(r).toMatchObject({ exitCode: 1, stderr: `postbox: cannot receive datagrams at ${name}: ${what} is in the way (remove it or choose --dgram elsewhere)\n` });
    }
    expect(readFileSync(join(dir.path, "file"), "utf8")).toBe("keep me");
    expect(readlinkSync(join(dir.path, "link"))).toBe("target");
    await using stream = await startPostbox(dir.path, ["--no-fifo", "--no-mq", "--no-signals", "--socket", "stream"]);
    const r = await runPostbox(dir.path, [...only, "--dgram", "stream"]);
    expect(r).toMatchObject({ exitCode: 1, stderr: "postbox: cannot receive datagrams at stream: a stream socket is being served there; choose another --dgram\n" });
    expect(lstatSync(join(dir.path, "stream")).isSocket()).toBe(true);
  });

  test("a path near the 107-byte socket limit works too (its temporary name is shorter then) and leaves nothing behind", async () => {
    using dir = tempDir();
    const path = join(dir.path, "x".repeat(105 - dir.path.length));
    expect(Buffer.byteLength(path)).toBe(106);
    {
      await using pb = await startPostbox(dir.path, [...only, "--dgram", path]);
      expect((await runPostbox(dir.path, ["send", "--dgram", path, "near the limit"])).exitCode).toBe(0);
      expect(await pb.waitLines(1)).toEqual([expect.stringMatching(/\]: near the limit$/)]);
      expect((await pb.stop()).exitCode).toBe(0);
    }
    expect(readdirSync(dir.path)).toEqual([]);
  });

  test("the socket file is born with --mode; at exit only the file we created is removed", async () => {
    using dir = tempDir();
    {
      await using pb = await startPostbox(dir.path, [...base, "--mode", "0620"]);
      expect(lstatSync(join(dir.path, "dgram")).mode & 0o777).toBe(0o620);
      // someone replaces the file while we run: at exit it is not ours to remove
      await sh(dir.path, "rm dgram && echo other > dgram");
      expect((await pb.stop()).exitCode).toBe(0);
      expect(readFileSync(join(dir.path, "dgram"), "utf8")).toBe("other\n");
    }
  });

  test("datagrams queued at SIGTERM are still delivered", async () => {
    using dir = tempDir();
    await using pb = await startPostbox(dir.path, base);
    writeFileSync(join(dir.path, "some"), Array.from({ length: 300 }, (_, i) => `q${i}\n`).join(""));
    expect((await sh(dir.path, `"${BIN}" send --dgram dgram < some`)).exitCode).toBe(0);
    const end = await pb.stop();
    expect(end.exitCode).toBe(0);
    expect(end.stdout.split("\n").length - 1).toBe(300);
  });

  test.skipIf(!have("systemd-socket-activate"))("systemd-socket-activate --datagram passes a datagram socket (ListenDatagram=); postbox adopts it and leaves the file", async () => {
    using dir = tempDir();
    const sock = join(dir.path, "act.dgram");
    const p = Bun.spawn(["systemd-socket-activate", "--datagram", "-l", sock, BIN, ...only], { cwd: dir.path, stdout: "pipe", stderr: "pipe" });
    try {
      let err = "";
      void (async () => {
        for await (const c of p.stderr) err += Buffer.from(c).toString();
      })();
      const out = new Response(p.stdout).text();
      await until(() => existsSync(sock), "systemd-socket-activate to bind");
      expect((await runPostbox(dir.path, ["send", "--dgram", sock, "first"])).exitCode).toBe(0); // starts postbox
      await until(() => err.includes("Santas Postbox is open"), "the banner");
      expect(err).toContain(`... by dgram:  ${BIN} send --dgram ${sock} 5`);
      expect((await runPostbox(dir.path, ["send", "--dgram", sock, "second"])).exitCode).toBe(0);
      // queued in the passed socket by now: whatever postbox has not read yet it drains at SIGTERM
      p.kill("SIGTERM");
      expect(await p.exited).toBe(0);
      expect((await out).split("\n").map((l) => l.replace(/^dgram\[pid=\d+,uid=\d+,gid=\d+\]: /, ""))).toEqual(["first", "second", ""]);
      expect(lstatSync(sock).isSocket()).toBe(true); // not ours to remove
    } finally {
      p.kill("SIGKILL");
    }
  });

  test.skipIf(!root || !have("unshare") || !have("logger"))("--dgram /dev/log in a container (a mount namespace with its own /dev): logger and syslog(3) just work", async () => {
    using dir = tempDir();
    const py = have("python3") ? `python3 -c 'import syslog; syslog.openlog("pyapp", syslog.LOG_PID); syslog.syslog(syslog.LOG_WARNING, "via syslog(3)")'` : `logger -t pyapp -i -p warning "via syslog(3)"`;
    // A fresh /dev the way a container has one: a tmpfs with the few device nodes programs need, and no /dev/log.
    const script = `set -e
      mkdir dev
      mount -t tmpfs -o mode=755 tmpfs dev
      for n in null zero full random urandom; do touch dev/$n; mount --bind /dev/$n dev/$n; done
      mount --bind dev /dev
      test ! -e /dev/log
      "${BIN}" ${only.join(" ")} --dgram /dev/log --syslog --json --count 2 --timeout 20 > out.json 2> err.txt &
      "${BIN}" wait --dgram /dev/log --timeout 20
      logger -t nslogger "plain logger"
      ${py}
      wait $!`;
    const r = await sh(dir.path, `unshare -m --propagation private bash -c '${script.replaceAll("'", `'\\''`)}'`, 30_000);
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    const msgs = json(readFileSync(join(dir.path, "out.json"), "utf8").trim().split("\n"));
    expect(msgs).toEqual([
      expect.objectContaining({ msg: "plain logger", via: "/dev/log", tag: "nslogger", severity: "notice", uid }),
      expect.objectContaining({ msg: "via syslog(3)", via: "/dev/log", tag: "pyapp", severity: "warning", uid }),
    ]);
    expect(existsSync("/dev/log")).toBe(false); // the namespace is gone, and the host's /dev never saw it
  });
});
