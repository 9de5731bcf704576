# usage: PB=/path/postbox python3 bench/structured.py [ROUNDS]   (needs bench/reference/bench.py run once: it builds /tmp/pbtools/pbload)
# 1,000,000 x 32 B over one connection: text vs --json vs --store (text on stdout), alternating,
# to the last line on stdout (incremental count), CPU of the server and its main thread's run time
# (schedstat: robust against other load, unlike the wall time). Ratios against text, medians.
import sys, os, subprocess, time, statistics, tempfile, signal, socket as S
HZ = os.sysconf("SC_CLK_TCK")
def run(pid):
    """main thread's time on a CPU, in seconds (schedstat, ns)"""
    return int(open(f"/proc/{pid}/schedstat").read().split()[0]) / 1e9
def cpu(pid):
    """(main thread user, main thread sys, other threads user+sys) in seconds"""
    mu = ms = other = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try: f = open(f"/proc/{pid}/task/{t}/stat").read()
        except OSError: continue
        f = f[f.rindex(")")+2:].split(); u, s_ = int(f[11]) / HZ, int(f[12]) / HZ
        if int(t) == pid: mu, ms = u, s_
        else: other += u + s_
    return (mu, ms, other)
pb = os.path.abspath(os.environ.get("PB", "./postbox")); rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
L = "/tmp/pbtools/pbload"
modes = {"text": [], "json": ["--json"], "store": ["--store", "mail"]}
res = {m: [] for m in modes}
for r in range(rounds):
    for m, extra in (list(modes.items()) if r % 2 == 0 else list(modes.items())[::-1]):
        d = tempfile.mkdtemp(prefix="pbstruct-"); out = os.path.join(d, "out")
        p = subprocess.Popen([pb, "--no-mq", "--no-signals", "--no-fifo", *extra], cwd=d, stdout=open(out, "wb"), stderr=subprocess.DEVNULL)
        sock = os.path.join(d, "socket")
        for _ in range(2000):
            try: c = S.socket(S.AF_UNIX); c.connect(sock); c.close(); break
            except OSError: time.sleep(0.005)
        time.sleep(0.3)
        f = open(out, "rb"); n = 0
        def poll():
            global n
            while True:
                b = f.read(1 << 20)
                if not b: return n
                n += b.count(b"\n")
        poll(); base = n; c0 = cpu(p.pid); r0 = run(p.pid); t0 = time.monotonic()
        subprocess.run([L, "stream", sock, "1000000", "32"], stderr=subprocess.DEVNULL)
        while poll() - base < 1_000_000 and time.monotonic() - t0 < 30: time.sleep(0.001)
        dt = time.monotonic() - t0; c1 = cpu(p.pid); r1 = run(p.pid)
        p.send_signal(signal.SIGTERM); p.wait(); subprocess.run(["rm", "-rf", d])
        res[m].append((dt, sum(c1) - sum(c0), c1[0] - c0[0], c1[1] - c0[1], c1[2] - c0[2], r1 - r0))
t = {m: statistics.median(x[0] for x in v) for m, v in res.items()}
c = {m: statistics.median(x[1] for x in v) for m, v in res.items()}
rt = {m: statistics.median(x[5] for x in v) for m, v in res.items()}
for m in modes:
    med = lambda k: statistics.median(x[k] for x in res[m])
    print(f"{m:6} time {t[m]*1000:6.0f} ms (x{t[m]/t['text']:.2f} of text)  cpu {c[m]:.2f} s (x{c[m]/c['text']:.2f}; main user {med(2):.2f} sys {med(3):.2f}, other threads {med(4):.2f})  main thread run {rt[m]*1000:.0f} ms (x{rt[m]/rt['text']:.2f})  runs {' '.join(f'{x[0]*1000:.0f}' for x in res[m])}")
