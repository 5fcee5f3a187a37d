"""Load test of the classroom server: simulated students updating cases at once, over loopback.

Starts ``kneehip serve`` (uvicorn, one process) on a free port of 127.0.0.1 in a child
process, then runs simulated students with httpx (asyncio). Each student repeats: think
(a random pause), change one finding of its case (set it present/absent or back to "not
examined", as a click does), and send exactly the requests the page sends on a change, at
the same moments: ``/api/diagnose`` and ``/api/case`` (the ranked diagnoses, regions and
red-flag warning) at once, then, 120 ms later (the page waits for the clicks to pause),
``/api/explain``, ``/api/next-test``, ``/api/conflict`` (two findings or more) and
``/api/graph.svg``. Two latencies per update, from the click:

- *case update*: until the ranked diagnoses and the case summary have arrived (what the
  issue's goal p95 <= 50 ms is about);
- *full page*: until all six answers have arrived (explanation, next test, picture too);

and, from the ``Server-Timing`` header, the case update's time inside the server (arrival
to answer), which leaves out the load generator's own scheduling on this shared machine.

Baseline in the same run: ONE student, no think time, the same kind of updates (the
server's unloaded latency); the ratios loaded / baseline are printed. Bounded: each
student does ``--updates`` updates and the whole run stops after ``--max-seconds`` (the
server is stopped too); traffic goes only to 127.0.0.1.

Usage::

    python benchmarks/bench_serve.py                   # 50 students x 20 updates
    python benchmarks/bench_serve.py --students 10 --updates 5 --output /tmp/serve.md
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import os
import platform
import random
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE_ENDPOINTS = ("diagnose", "case", "explain", "next-test", "conflict", "graph.svg")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model: str, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "kneehip_bn.cli", "serve", "--model", model, "--host",
           "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/model", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start in 60 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; nan elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def process_tree_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of the server process and of each of its children (the worker)."""
    out = {"server": cpu_seconds(pid)}
    kids: list[str] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += (task / "children").read_text().split()
        except OSError:
            pass
    for i, k in enumerate(kids):
        out[f"worker{i or ''}"] = cpu_seconds(int(k))
    return out


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class Student:
    def __init__(self, info: dict, rng: random.Random) -> None:
        self.rng = rng
        self.findings = [n for s in info["sections"] for n in s["nodes"]]
        self.nodes = info["nodes"]
        self.evidence: dict[str, str] = {}

    def click(self) -> dict:
        n = self.rng.choice(self.findings)
        choice = self.rng.choice([*self.nodes[n]["states"], None])
        if choice is None or (len(self.evidence) >= 8 and n not in self.evidence):
            self.evidence.pop(n, None)
        else:
            self.evidence[n] = choice
        return {"evidence": dict(self.evidence)}


QUICK = ("diagnose", "case")
QUICK_ONLY = False  # --quick-only: leave out the slow requests (to see what they cost)
SLOW_DELAY = 0.12  # the page sends the slow requests when the clicks pause for 120 ms


async def one_update(client, base: str, body: dict, stats: dict) -> None:
    t0 = time.perf_counter()

    async def post(ep: str):
        r = await client.post(f"{base}/api/{ep}", json=body)
        server = float(r.headers.get("server-timing", "app;dur=nan").partition("dur=")[2])
        return ep, r.status_code, time.perf_counter() - t0, server / 1000

    async def slow_part():
        if QUICK_ONLY:
            return []
        await asyncio.sleep(SLOW_DELAY)
        eps = [e for e in PAGE_ENDPOINTS if e not in QUICK
               and (e != "conflict" or len(body["evidence"]) >= 2)]
        return await asyncio.gather(*(post(e) for e in eps))

    try:  # as the page: the quick requests at the click, the slow ones after the pause
        quick, slow = await asyncio.gather(asyncio.gather(*(post(e) for e in QUICK)),
                                           slow_part())
        results = [*quick, *slow]
    except Exception as exc:  # a failed request is an error, not a crash of the benchmark
        stats["errors"].append(f"{type(exc).__name__}: {exc}")
        return
    bad = [(e, s) for e, s, _, _ in results if s != 200]
    stats["errors"].extend(f"{e}: HTTP {s}" for e, s in bad)
    done = {e: t for e, _, t, _ in results}
    inside = {e: t for e, _, _, t in results}
    stats["case"].append(max(done["diagnose"], done["case"]))
    stats["full"].append(max(done.values()))
    stats["case_server"].append(max(inside["diagnose"], inside["case"]))
    stats["requests"] += len(results)


async def run_students(base: str, info: dict, n_students: int, updates: int,
                       think: tuple[float, float], max_seconds: float, seed: int) -> dict:
    import httpx

    stats: dict = {"case": [], "full": [], "case_server": [], "errors": [], "requests": 0}
    limits = httpx.Limits(max_connections=n_students * len(PAGE_ENDPOINTS))
    deadline = time.monotonic() + max_seconds
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        async def student(i: int) -> None:
            rng = random.Random(seed * 1000 + i)
            s = Student(info, rng)
            await asyncio.sleep(rng.uniform(0, think[1]))  # students do not click in step
            for _ in range(updates):
                if time.monotonic() > deadline:
                    return
                await one_update(client, base, s.click(), stats)
                await asyncio.sleep(rng.uniform(*think))

        t0 = time.perf_counter()
        await asyncio.gather(*(student(i) for i in range(n_students)))
        stats["wall"] = time.perf_counter() - t0
    return stats


def summary(stats: dict) -> dict:
    out = {"updates": len(stats["case"]), "requests": stats["requests"],
           "errors": len(stats["errors"]), "wall_s": stats["wall"]}
    for k in ("case", "full", "case_server"):
        ms = [1000 * x for x in stats[k]]
        out[k] = {q: pct(ms, v) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}
        out[k]["max"] = max(ms) if ms else float("nan")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="knee_hip_basic")
    ap.add_argument("--students", type=int, default=50)
    ap.add_argument("--updates", type=int, default=20, help="updates per student")
    ap.add_argument("--think", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
                    help="seconds a student pauses between clicks (uniform)")
    ap.add_argument("--max-seconds", type=float, default=180.0, help="stop the run after this")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick-only", action="store_true",
                    help="send only the quick requests (diagnose, case) of each update")
    ap.add_argument("--output", default=str(HERE / "results" / "serve.md"))
    args = ap.parse_args(argv)
    global QUICK_ONLY
    QUICK_ONLY = args.quick_only

    port = free_port()
    server = start_server(args.model, port)
    base = f"http://127.0.0.1:{port}"
    try:
        info = json.load(urllib.request.urlopen(f"{base}/api/model"))
        # warm-up (first compile and imports), not measured
        asyncio.run(run_students(base, info, 1, 5, (0.0, 0.0), 60, seed=99))
        baseline = summary(asyncio.run(run_students(
            base, info, 1, max(40, args.updates), (0.0, 0.0), 60, seed=args.seed)))
        print(f"baseline (1 student, no pause): case update p50 {baseline['case']['p50']:.1f} ms,"
              f" full page p50 {baseline['full']['p50']:.1f} ms")
        load = os.getloadavg()
        cpu0, me0 = process_tree_cpu(server.pid), time.process_time()
        loaded_stats = asyncio.run(run_students(base, info, args.students, args.updates,
                                                tuple(args.think), args.max_seconds, args.seed))
        cpu1, me1 = process_tree_cpu(server.pid), time.process_time()
        loaded = summary(loaded_stats)
        cpu = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
        cpu["load generator"] = me1 - me0
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    rows = []
    for k, label in (("case", "case update (ranked diagnoses + case summary)"),
                     ("case_server", "case update, inside the server (Server-Timing)"),
                     ("full", "full page (+ explanation, next test, conflict, picture)")):
        for q in ("p50", "p95", "p99"):
            ratio = loaded[k][q] / baseline[k][q] if baseline[k][q] else float("nan")
            rows.append((label, q, loaded[k][q], baseline[k][q], ratio))
    goal_met = loaded["case"]["p95"] <= 50.0 and loaded["errors"] == 0
    lines = [
        "# Classroom server load test (`benchmarks/bench_serve.py`)",
        "",
        f"- date: {_dt.datetime.now().isoformat(timespec='seconds')}",
        f"- machine: {os.cpu_count()} CPUs, load average before the run "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (shared machine: other jobs were running)",
        f"- Python {platform.python_version()}; one uvicorn process serving `{args.model}` on "
        "127.0.0.1; the students (httpx, asyncio) in another process",
        f"- {args.students} students x {args.updates} updates, a pause of "
        f"{args.think[0]:g}-{args.think[1]:g} s between clicks; each update sends the page's "
        f"requests as the page does: {', '.join(QUICK)} at the click, then "
        f"{', '.join(e for e in PAGE_ENDPOINTS if e not in QUICK)} {1000 * SLOW_DELAY:.0f} ms "
        "later (conflict from two findings); the slow ones run in the server's worker process",
        f"- {loaded['updates']} updates, {loaded['requests']} requests in "
        f"{loaded['wall_s']:.1f} s; errors: {loaded['errors']}",
        "- CPU used during the loaded run: " + ", ".join(
            f"{k} {v:.1f} s ({100 * v / loaded['wall_s']:.0f}% of one core)"
            for k, v in cpu.items()),
        "",
        "| latency | percentile | 50 students | baseline: 1 student, no pause | ratio |",
        "|---|---|---|---|---|",
        *[f"| {a} | {q} | {v:.1f} ms | {b:.1f} ms | {r:.2f}x |" for a, q, v, b, r in rows],
        "",
        f"Goal (issue 14): p95 of a case update <= 50 ms with zero errors: "
        f"**{'met' if goal_met else 'MISSED'}** (p95 {loaded['case']['p95']:.1f} ms, "
        f"{loaded['errors']} errors).",
        "",
        "Figures were taken on a shared 2-core machine with other jobs running; they vary "
        "from run to run.",
    ]
    if loaded_stats["errors"]:
        lines += ["", "First errors:", *[f"- {e}" for e in loaded_stats["errors"][:10]]]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
