// Readiness is one moment: what `postbox wait` watches becomes reachable only
// once every channel is open, every handler installed and the pidfile written.
import { describe, expect, test } from "bun:test";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, mqName, sh, tempDir } from "./harness.ts";
import { mqRemove } from "./helpers/mq.ts";

/** Busy loops on both cores, so start-up steps stretch out and races show. */
function cpuLoad(): { [Symbol.dispose](): void } {
  const hogs = [0, 1].map(() => Bun.spawn(["bash", "-c", "while :; do :; done"], { stdio: ["ignore", "ignore", "ignore"] }));
  return { [Symbol.dispose]: () => hogs.forEach((h) => h.kill("SIGKILL")) };
}

// One start per turn, all in one bash loop (spawning from the test would dominate).
// wait, then at once USR1 and the pidfile: USR1 must find its handler (else it
// kills: exit 138), the pidfile must hold the pid.
const startLoop = `
n=$1 kind=$2 target=$3 mq=\${4:---no-mq}
waitfail=0 nopid=0 killed=0
for i in $(seq "$n"); do
  "$BIN" $mq --socket s --fifo f --pidfile pb.pid >/dev/null 2>>err & p=$!
  "$BIN" wait "--$kind" "$target" --timeout 30 || waitfail=$((waitfail+1))
  kill -USR1 $p 2>/dev/null
  [ "$(cat pb.pid 2>/dev/null)" = "$p" ] || nopid=$((nopid+1))
  kill -TERM $p 2>/dev/null; wait $p; rc=$?
  [ $rc = 0 ] || { killed=$((killed+1)); echo "start $i: exit $rc" >> err; }
done
echo "waitfail=$waitfail nopid=$nopid killed=$killed"
`;

// Postboxes that fail at their last step (the pidfile cannot be written), while
// a waiter per channel keeps polling (the datagram ones too, at a path and an
// abstract name); a waiter that returns 0 saw a failed postbox "serving".
const failLoop = `
n=$1 ab=$2
seen=0
targets=("--socket s" "--fifo f" "--dgram d" "--dgram @$ab")
w=()
for k in 0 1 2 3; do "$BIN" wait \${targets[$k]} --timeout 600 & w[$k]=$!; done
for i in $(seq "$n"); do
  "$BIN" --no-mq --socket s --fifo f --dgram d --dgram "@$ab" --pidfile no/such/dir/pb.pid 2>/dev/null && echo "start $i succeeded?"
  for k in 0 1 2 3; do
    if ! kill -0 "\${w[$k]}" 2>/dev/null; then
      wait "\${w[$k]}" && { seen=$((seen+1)); echo "start $i: wait \${targets[$k]} returned 0" >&2; }
      "$BIN" wait \${targets[$k]} --timeout 600 & w[$k]=$!
    fi
  done
done
for k in 0 1 2 3; do kill "\${w[$k]}" 2>/dev/null; wait "\${w[$k]}" && seen=$((seen+1)); done
echo "seen=$seen"
`;

describe("readiness is one moment", () => {
  test("280 starts under CPU load (100 wait --socket, 100 wait --fifo, 40 wait --mq, 40 wait --dgram), then at once USR1 and the pidfile: 0 killed, 0 missing", async () => {
    using dir = tempDir();
    const script = join(dir.path, "loop.sh");
    writeFileSync(script, startLoop);
    using _load = cpuLoad();
    const t0 = performance.now();
    const socket = await sh(dir.path, `BIN=${BIN} bash ${script} 100 socket s`, 120_000);
    const fifo = await sh(dir.path, `BIN=${BIN} bash ${script} 100 fifo f`, 120_000);
    const q = mqName();
    let mq;
    try {
      mq = await sh(dir.path, `BIN=${BIN} bash ${script} 40 mq ${q} "--mq ${q}"`, 120_000);
    } finally {
      mqRemove(q);
    }
    // --dgram d as well (with the mq off): 40 starts, waiting for the datagram socket.
    const dgram = await sh(dir.path, `BIN=${BIN} bash ${script} 40 dgram d "--no-mq --dgram d"`, 120_000);
    console.log(`readiness: 280 starts in ${Math.round(performance.now() - t0)} ms; socket ${socket.stdout.trim()}; fifo ${fifo.stdout.trim()}; mq ${mq.stdout.trim()}; dgram ${dgram.stdout.trim()}`);
    const err = await Bun.file(join(dir.path, "err")).text().catch(() => "");
    expect({ socket: socket.stdout.trim(), fifo: fifo.stdout.trim(), mq: mq.stdout.trim(), dgram: dgram.stdout.trim() }).toEqual({
      socket: "waitfail=0 nopid=0 killed=0",
      fifo: "waitfail=0 nopid=0 killed=0",
      mq: "waitfail=0 nopid=0 killed=0",
      dgram: "waitfail=0 nopid=0 killed=0",
    });
    expect(err.split("\n").filter((l) => l && !l.startsWith("Santas") && !l.startsWith("..."))).toEqual([]);
  }, 150_000);

  test("a postbox that fails at its last step is never reported serving (40 failed starts, socket, fifo, dgram path and @name waiters polling throughout)", async () => {
    using dir = tempDir();
    const script = join(dir.path, "fail.sh");
    writeFileSync(script, failLoop);
    using _load = cpuLoad();
    const r = await sh(dir.path, `BIN=${BIN} bash ${script} 40 pbtest-ready-${process.pid}-${Math.random().toString(36).slice(2)}`, 120_000);
    expect({ out: r.stdout.trim(), err: r.stderr }).toEqual({ out: "seen=0", err: "" });
    expect(readdirSync(dir.path).filter((n) => !["fail.sh", "s", "f"].includes(n))).toEqual([]); // no datagram socket, nor its temporary name
  }, 150_000);
});

describe("wait --fifo and send --fifo answer only for FIFOs", () => {
  test("wait --fifo on a FIFO held by a cat backs off its /proc scans: under 20 CPU ticks (0.2 s of a core) in 2 s of waiting", async () => {
    using dir = tempDir();
    // The window is a measurement, not a wait for a condition: ticks (utime + stime, /proc/PID/stat) over 2 s.
    const r = await sh(
      dir.path,
      `
      mkfifo held; cat held > /dev/null & c=$!; exec 3>held
      "${BIN}" wait --fifo held --timeout 6 2>/dev/null & w=$!
      sleep 1; a=$(awk '{print $14 + $15}' /proc/$w/stat)
      sleep 2; b=$(awk '{print $14 + $15}' /proc/$w/stat)
      kill $w; exec 3>&-; kill $c
      echo "$((b - a)) $(getconf CLK_TCK)"
      `,
    );
    const [ticks, hz] = r.stdout.trim().split(" ").map(Number);
    console.log(`wait --fifo held by cat: ${ticks} ticks of ${hz}/s in 2 s`);
    expect(hz).toBe(100);
    expect(ticks).toBeLessThan(20); // 10 ms polls took ~40-50 ticks
  });

  test("a regular file, /dev/null, a FIFO held by cat: wait refuses or keeps waiting; send --fifo to a regular file writes nothing", async () => {
    using dir = tempDir();
    writeFileSync(join(dir.path, "reg"), "original\n");
    const r = await sh(
      dir.path,
      `
      "${BIN}" wait --fifo reg --timeout 1; echo "reg=$?"
      "${BIN}" wait --fifo /dev/null --timeout 1; echo "null=$?"
      mkfifo held; cat held > /dev/null & c=$!; exec 3>held
      "${BIN}" wait --fifo held --timeout 0.5; echo "held=$?"
      exec 3>&-; kill $c 2>/dev/null
      "${BIN}" send --fifo reg "overwrite"; echo "send=$?"
      cat reg
      `,
    );
    expect(r.stdout).toBe("reg=1\nnull=1\nheld=1\nsend=1\noriginal\n");
    expect(r.stderr).toBe(
      [
        "postbox: cannot wait for reg: it is a regular file, not a fifo (nothing was opened)",
        "postbox: cannot wait for /dev/null: it is a character device, not a fifo (nothing was opened)",
        "postbox: no postbox is serving held after 0.5 s",
        "postbox: cannot write to the fifo reg: it is a regular file (mode 0644), not a fifo; nothing was written",
        "",
      ].join("\n"),
    );
  });
});
