# usage: PB=/path/a/postbox[,/path/b/postbox] python3 bench/last-line.py SCENARIO... [REPEAT]
# Times each scenario until its last line is in the stdout file (incremental line counting, 1 ms polls),
# against the C reference; prints median time, ratio to C, and the server process CPU (user/sys, all threads).
# like bench/reference/bench.py but counts lines incrementally (cheap polls every 1 ms), and reports server CPU
import sys, os, importlib.util, subprocess, time, signal, statistics
spec = importlib.util.spec_from_file_location("bench", os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference", "bench.py"))
b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)
b.build()
HZ = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    ut = st = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try: s = open(f"/proc/{pid}/task/{t}/stat").read()
        except OSError: continue
        f = s[s.rindex(")")+2:].split(); ut += int(f[11]); st += int(f[12])
    return ut / HZ, st / HZ
class Counter:
    def __init__(s, path): s.f = open(path, "rb"); s.n = 0
    def poll(s):
        while True:
            d = s.f.read(1 << 20)
            if not d: return s.n
            s.n += d.count(b"\n")
def cmd_for(name, srv):
    L = os.path.join(b.BIN, "pbload"); d = srv.dir
    if name == "stream": return 1_000_000, [L, "stream", os.path.join(d, "socket"), "1000000", "32"]
    if name == "oneshot": return 20_000, [L, "oneshot", os.path.join(d, "socket"), "20000", "4"]
    if name.startswith("streams"):
        conc = int(name[7:]); n = 1_000_000 // conc * conc
        return n, [L, "streams", os.path.join(d, "socket"), str(n), str(conc), "32"]
    if name == "fifo": return 1_000_000, [L, "fifo", os.path.join(d, "fifo"), "1000000", "32"]
    if name == "mq": return 100_000, [L, "mq", srv.mq, "100000", "32"]
    if name == "rtsig": return 10_000, [L, "sig", str(srv.p.pid), str(signal.SIGRTMIN), "10000"]
pbs = [os.path.abspath(p) for p in os.environ.get("PB", "./postbox").split(",")]
scen = sys.argv[1:-1] if len(sys.argv) > 2 else sys.argv[1:]
reps = int(sys.argv[-1]) if len(sys.argv) > 2 and sys.argv[-1].isdigit() else 3
if sys.argv[-1].isdigit(): scen = sys.argv[1:-1]
res = {}
for rep in range(reps):
    for sc in scen:
        kinds = [("ref", None)] + [("postbox", p) for p in pbs]
        if rep % 2: kinds.reverse()
        for kind, pb in kinds:
            srv = b.Server(kind, pb or pbs[0], f"/pbprec_{kind}_{os.getpid()}")
            c = Counter(srv.out); c.poll(); base = c.n
            n, cmd = cmd_for(sc, srv)
            u0, s0 = cpu(srv.p.pid)
            t0 = time.monotonic()
            lg = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
            while c.poll() - base < n and time.monotonic() - t0 < 30: time.sleep(0.001)
            dt = time.monotonic() - t0
            lg.wait()
            u1, s1 = cpu(srv.p.pid)
            got = c.n - base
            srv.stop()
            key = (sc, pb or "ref")
            res.setdefault(key, []).append((dt, u1 - u0, s1 - s0, got))
for sc in scen:
    ref = statistics.median(x[0] for x in res[(sc, "ref")])
    for k in ["ref"] + pbs:
        r = res[(sc, k)]
        t = statistics.median(x[0] for x in r)
        print(f"{sc:11} {os.path.basename(os.path.dirname(k)) + '/' + os.path.basename(k) if k != 'ref' else 'ref':28} time {t*1000:7.1f} ms x{t/ref:.2f}  cpu u {statistics.median(x[1] for x in r):.2f} s {statistics.median(x[2] for x in r):.2f}  runs {' '.join(f'{x[0]*1000:.0f}' for x in r)} got(min) {min(x[3] for x in r)}")
