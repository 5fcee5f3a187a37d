"""Benchmark the compiled engine against pgmpy and pyAgrum, in the same run, on this machine.

Prints a table and writes ``benchmarks/results/engine.md``. For each goal: our time, the
baseline's time, the ratio, and whether the goal is met.

1. One diagnosis on the shipped model (every origin's and mechanism's posterior for one
   evidence set; median over many runs and evidence sets): ``Engine.posterior`` vs pgmpy
   ``VariableElimination`` (one ``joint=False`` call with all targets, and one call per
   target) vs pyAgrum ``LazyPropagation`` (a fresh engine per query, and a reused engine:
   ``setEvidence`` + ``makeInference`` + posteriors).
2. The same on ALARM (pgmpy's example model) with 8 observed nodes.
3. Batch posteriors for 10,000 simulated audit rows (mechanisms and origins hidden, 10% of
   findings and tests blanked): ours (int64 row keys + ``np.unique``, ``Engine.batch`` on the
   distinct patterns, scatter back) vs pgmpy ``predict_probability`` (on a subset, per row)
   vs distinct patterns + ``VariableElimination`` per pattern.
4. Cold start of ``kneehip diagnose`` vs importing pgmpy's model and inference modules.
5. Memory: bytes per batch row and peak RSS of a 1,000,000-row batch.

Usage::

    python benchmarks/bench_engine.py           # full run (a few minutes)
    python benchmarks/bench_engine.py --quick   # smaller sizes, fewer repetitions
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "engine.md"

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=RuntimeWarning)


# ----------------------------------------------------------------------------- helpers
def median_time(fn, repeat: int, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in seconds."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def median_over(fn, items, repeat: int) -> float:
    """Median over ``repeat`` passes of the mean time of ``fn(item)`` per item."""
    for it in items[:3]:
        fn(it)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        for it in items:
            fn(it)
        ts.append((time.perf_counter() - t) / len(items))
    return statistics.median(ts)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def header() -> list[str]:
    import numpy
    import pgmpy

    try:
        import pyagrum as gum

        gv = gum.__version__
    except ImportError:  # pragma: no cover
        gv = "not installed"
    try:
        load = os.getloadavg()
        load_s = f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    except OSError:  # pragma: no cover
        load_s = "?"
    return [
        f"- date: {_dt.datetime.now().isoformat(timespec='seconds')}",
        f"- machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}, load average {load_s} "
        "(shared machine: other jobs were running)",
        f"- Python {platform.python_version()}, numpy {numpy.__version__}, pgmpy "
        f"{pgmpy.__version__}, pyAgrum {gv}",
    ]


def fmt_t(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str, str]] = []

    def add(self, task: str, ours: float, baseline: str, theirs: float, goal: str = "",
            met: bool | None = None, ours_txt: str | None = None, theirs_txt: str | None = None):
        ratio = theirs / ours if ours > 0 else float("inf")
        status = "" if met is None else ("met" if met else "MISSED")
        ratio_txt = "n/a" if not np.isfinite(ratio) else f"{ratio:,.1f}x"
        self.rows.append((task, ours_txt or fmt_t(ours), baseline, theirs_txt or fmt_t(theirs),
                          ratio_txt, f"{goal} {status}".strip()))
        print(f"  {task:<44} ours {self.rows[-1][1]:>11}  {baseline:<44} {self.rows[-1][3]:>11}"
              f"  {self.rows[-1][4]:>10}  {self.rows[-1][5]}", flush=True)

    def markdown(self) -> list[str]:
        out = ["| task | ours | baseline | baseline time | baseline / ours | goal |",
               "|---|---|---|---|---|---|"]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        return out


# ----------------------------------------------------------------------------- models, data
def shipped(name: str = "knee_hip_basic"):
    from kneehip_bn import Engine, build_network, load_spec

    spec = load_spec(name)
    return spec, build_network(spec), Engine(spec)


def random_evidence(spec, engine, rng, n: int, lo: int = 3, hi: int = 9) -> list[dict]:
    """``n`` possible evidence sets of ``lo``..``hi - 1`` observed context/finding/test nodes."""
    observable = [v for v in spec.nodes if spec.nodes[v].group in ("context", "finding", "test")]
    evs: list[dict] = []
    while len(evs) < n:
        k = int(rng.integers(lo, hi))
        ev = {v: str(rng.choice(engine.states[v]))
              for v in rng.choice(observable, size=k, replace=False)}
        if engine.log_probability(ev) > -np.inf:
            evs.append(ev)
    return evs


def bench_em_iteration(table, spec, label: str, n: int, pgmpy_rows: int) -> None:
    """One EM iteration (E-step + M-step) of ours on ``n`` simulated rows (10% blanks,
    mechanisms latent) vs pgmpy ``DiscreteEM`` (1 iteration) on the complete rows it can
    use, timed on at most ``pgmpy_rows`` distinct rows and scaled to all of them."""
    from pgmpy.models import DiscreteBayesianNetwork
    from pgmpy.parameter_estimator import DiscreteEM

    from kneehip_bn import build_network
    from kneehip_bn.learning.fitter import PriorFitter
    from kneehip_bn.learning.simulate import simulate_audit

    df = simulate_audit(n, seed=2, missing=0.1, model=spec, hidden=("mechanism",))
    one = PriorFitter(spec, progress=False, holdout=0, max_iter=1, tol=1e-300).fit(df)
    ours = float(one.history_["seconds"].iloc[0] + one.history_["mstep_seconds"].iloc[0])
    latents = set(spec.group("mechanism"))
    complete = df.dropna().astype(str)
    uniq = complete.drop_duplicates()
    if len(uniq) == 0:
        table.add(f"{label}: one EM iteration, {n:,} rows", ours, "pgmpy DiscreteEM",
                  float("nan"), theirs_txt=f"no complete row among {n:,} (pgmpy drops blanks)")
        return
    sub = uniq.iloc[:pgmpy_rows]
    m = DiscreteBayesianNetwork(build_network(spec).edges(), latents=latents)
    est = DiscreteEM(state_names={k: v for k, v in spec.state_names().items() if k not in latents},
                     latent_card={v: 2 for v in latents}, max_iter=1, seed=0, show_progress=False)
    t = time.perf_counter()
    m.fit(sub, estimator=est)
    theirs = (time.perf_counter() - t) * len(uniq) / len(sub)
    table.add(f"{label}: one EM iteration, {n:,} rows", ours,
              f"pgmpy DiscreteEM, 1 it. ({len(complete):,} complete rows kept"
              + (f"; timed on {len(sub)} distinct, scaled" if len(sub) < len(uniq) else "") + ")",
              theirs, ">= 100x", theirs / ours >= 100)


def alarm():
    from pgmpy.utils import get_example_model

    from kneehip_bn import Engine

    model = get_example_model("alarm")
    for cpd in model.get_cpds():  # two ALARM tables sum to 1 - 1e-7: renormalise
        vals = cpd.get_values()
        cpd.values = (vals / vals.sum(axis=0, keepdims=True)).reshape(cpd.values.shape)
    return model, Engine(model)


def forward_sample(engine, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Our own numpy ancestral sampler over the engine's tables (state codes per node)."""
    codes: dict[str, np.ndarray] = {}
    for v in engine.variables:  # topological order
        fam, arr = engine.factors[engine.index[v]]
        names = [engine.variables[i] for i in fam]
        # move the node's own axis first, parents after (in fam order)
        k = names.index(v)
        t = np.moveaxis(arr, k, 0)
        parents = [x for x in names if x != v]
        flat = t.reshape(t.shape[0], -1)
        if parents:
            idx = np.ravel_multi_index([codes[p] for p in parents],
                                       [int(engine.card[engine.index[p]]) for p in parents])
        else:
            idx = np.zeros(n, dtype=np.intp)
        cum = np.cumsum(flat[:, idx], axis=0)
        u = rng.random(n)
        codes[v] = np.minimum((u[None, :] > cum).sum(axis=0), t.shape[0] - 1)
    return codes


def audit_rows(spec, engine, n: int, seed: int = 0):
    """Simulated audit rows: context, findings, tests observed; 10% of findings and tests
    blanked (-1); origins and mechanisms hidden (they are what we predict)."""
    rng = np.random.default_rng(seed)
    codes = forward_sample(engine, n, rng)
    cols = [v for v in engine.variables if spec.nodes[v].group in ("context", "finding", "test")]
    x = np.column_stack([codes[c] for c in cols])
    blankable = np.array([spec.nodes[c].group in ("finding", "test") for c in cols])
    x[(rng.random(x.shape) < 0.10) & blankable[None, :]] = -1
    return x, cols


def grouped_batch(engine, x: np.ndarray, cols, targets):
    """Group identical rows by an int64 key, run the engine on distinct patterns, scatter."""
    radix = np.array([int(engine.card[engine.index[c]]) + 1 for c in cols], dtype=np.int64)
    weights = np.cumprod(np.concatenate([[1], radix[:-1]])).astype(np.int64)
    key = (x.astype(np.int64) + 1) @ weights
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    res = engine.batch(x[first], cols, targets=targets, on_impossible="nan")
    stacked = np.hstack(list(res.marginals.values()))[inverse]  # one gather for all targets
    bounds = np.cumsum([0, *(m.shape[1] for m in res.marginals.values())])
    return {t: stacked[:, a:b] for t, a, b in zip(res.marginals, bounds[:-1], bounds[1:])}, len(first)


# ----------------------------------------------------------------------------- benchmarks
def bench_diagnosis(table, label, model, engine, targets_fn, evidence_sets, repeat, per_target_n,
                    joint_call: bool = True):
    import pyagrum as gum
    from pgmpy.inference import VariableElimination

    ve = VariableElimination(model)
    ours = median_over(lambda ev: engine.posterior(ev, targets_fn(ev)), evidence_sets, repeat)
    # pgmpy VE: one call with all targets (may fail: pgmpy contracts a joint over them)
    if not joint_call:
        table.add(f"{label}: one diagnosis", ours, "pgmpy VE, one joint=False call", float("nan"),
                  theirs_txt="not run: a joint over every target (2^28 entries)")
    else:
        try:
            ve_one = median_over(lambda ev: ve.query(targets_fn(ev), evidence=ev, joint=False,
                                                     show_progress=False),
                                 evidence_sets[:per_target_n], max(1, repeat // 20))
            table.add(f"{label}: one diagnosis", ours, "pgmpy VE, one joint=False call", ve_one,
                      ">= 10x", ve_one / ours >= 10)
        except MemoryError as exc:
            table.add(f"{label}: one diagnosis", ours, "pgmpy VE, one joint=False call",
                      float("nan"),
                      theirs_txt=f"fails: MemoryError ({str(exc).split(' for ')[0][-18:]})")

    def per_target(ev):
        for t in targets_fn(ev):
            ve.query([t], evidence=ev, show_progress=False)

    ve_each = median_over(per_target, evidence_sets[:per_target_n], max(1, repeat // 40))
    table.add(f"{label}: one diagnosis", ours, "pgmpy VE, one call per target", ve_each,
              ">= 10x", ve_each / ours >= 10)
    # pyAgrum through XMLBIF (exact): fresh engine, reused engine, reused + tuned
    import tempfile

    from kneehip_bn.model.readwrite import export_network

    with tempfile.TemporaryDirectory() as d:
        path = export_network(model, Path(d) / "net.bifxml")
        bn = gum.loadBN(str(path))

    def agrum_fresh(ev):
        ie = gum.LazyPropagation(bn)
        ie.setEvidence(ev)
        ie.makeInference()
        for t in targets_fn(ev):
            ie.posterior(t)

    reused = gum.LazyPropagation(bn)

    def agrum_reused(ev):
        reused.eraseAllEvidence()
        reused.setEvidence(ev)
        reused.makeInference()
        for t in targets_fn(ev):
            reused.posterior(t)

    tuned: dict = {}

    def agrum_tuned(ev):
        key = frozenset(targets_fn(ev))
        ie = tuned.get(key)
        if ie is None:  # one engine per target set, built outside the timing (warm-up)
            ie = tuned[key] = gum.LazyPropagation(bn)
            ie.setNumberOfThreads(1)
            ie.setTargets(set(key))
        ie.eraseAllEvidence()
        ie.setEvidence(ev)
        ie.makeInference()
        for t in key:
            ie.posterior(t)

    for ev in evidence_sets:
        agrum_tuned(ev)
    ag_fresh = median_over(agrum_fresh, evidence_sets, max(1, repeat // 5))
    ag_reused = median_over(agrum_reused, evidence_sets, max(1, repeat // 5))
    ag_tuned = median_over(agrum_tuned, evidence_sets, max(1, repeat // 5))
    best = min(ag_fresh, ag_reused, ag_tuned)
    table.add(f"{label}: one diagnosis", ours, "pyAgrum LazyPropagation, fresh engine", ag_fresh,
              "faster", ours < best if ag_fresh == best else None)
    table.add(f"{label}: one diagnosis", ours, "pyAgrum, reused engine", ag_reused,
              "faster", ours < best if ag_reused == best else None)
    table.add(f"{label}: one diagnosis", ours, "pyAgrum, reused, targets set, 1 thread",
              ag_tuned, "faster", ours < best if ag_tuned == best else None)
    return ours


def bench_batch(table, spec, model, engine, n, n_predict, n_ve_patterns, repeat, label=""):
    pre = f"{label}: " if label else ""
    from pgmpy.inference import VariableElimination

    x, cols = audit_rows(spec, engine, n)
    targets = spec.group("origin") + spec.group("mechanism")
    ours = median_time(lambda: grouped_batch(engine, x, cols, targets), repeat, warmup=1)
    _, n_distinct = grouped_batch(engine, x, cols, targets)
    ours_row = ours / n
    # pgmpy predict_probability: it cannot take missing cells, so it gets complete rows
    import pandas as pd

    complete = x[(x >= 0).all(axis=1)][:n_predict]
    df = pd.DataFrame({c: [engine.states[c][k] for k in complete[:, j]]
                       for j, c in enumerate(cols)})
    t = time.perf_counter()
    model.predict_probability(df)
    pp_row = (time.perf_counter() - t) / len(df)
    table.add(f"{pre}batch {n:,} rows ({n_distinct:,} distinct), per row", ours_row,
              f"pgmpy predict_probability ({len(df)} complete rows)", pp_row, ">= 1000x",
              pp_row / ours_row >= 1000)
    # distinct patterns + VE per pattern (timed on a subset of patterns, extrapolated)
    ve = VariableElimination(model)
    radix = np.array([int(engine.card[engine.index[c]]) + 1 for c in cols], dtype=np.int64)
    key = (x.astype(np.int64) + 1) @ np.cumprod(np.concatenate([[1], radix[:-1]]))
    _, first = np.unique(key, return_index=True)
    pats = x[first][:n_ve_patterns]
    t = time.perf_counter()
    for r in pats:
        ev = {c: engine.states[c][k] for c, k in zip(cols, r) if k >= 0}
        ve.query(targets, evidence=ev, joint=False, show_progress=False)
    ve_total = (time.perf_counter() - t) / len(pats) * n_distinct
    note = "" if len(pats) == n_distinct else f", timed on {len(pats)}, scaled"
    table.add(f"{pre}batch {n:,} rows, total", ours, f"distinct patterns + VE{note}", ve_total,
              ">= 5x", ve_total / ours >= 5, theirs_txt=fmt_t(ve_total))
    return ours, n_distinct


def bench_cold_start(table, runs: int):
    exe = Path(sys.executable).with_name("kneehip")
    cmd = [str(exe) if exe.exists() else "kneehip", "diagnose", "--model", "knee_hip_basic", "-e", "knee_pain=present"]

    def wall(c):
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            out = subprocess.run(c, capture_output=True, text=True)
            ts.append(time.perf_counter() - t)
            assert out.returncode == 0, out.stderr
        return statistics.median(ts)

    ours = wall(cmd)
    default = wall([c for c in cmd if c not in ("--model", "knee_hip_basic")])
    pg = wall([sys.executable, "-W", "ignore", "-c", "import pgmpy.models, pgmpy.inference"])
    table.add("cold start `kneehip diagnose -e ...`", ours,
              "`import pgmpy.models, pgmpy.inference`", pg, "< 1.5 s", ours < 1.5)
    table.add("cold start, the default model (2nd ed.)", default,
              "`import pgmpy.models, pgmpy.inference`", pg, "< 1.5 s", default < 1.5)
    return ours


_CHILD = """
import json, sys, time
import numpy as np
sys.path.insert(0, {here!r})
from bench_engine import audit_rows, grouped_batch, shipped


def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # MB
    return float("nan")


spec, model, engine = shipped()
x, cols = audit_rows(spec, engine, {n})
targets = spec.group("origin") + spec.group("mechanism")
base = status("VmRSS")
try:  # reset the peak (VmHWM) so that only the batch counts
    open("/proc/self/clear_refs", "w").write("5")
except OSError:
    pass
t = time.perf_counter()
if {mode!r} == "grouped":
    out, nd = grouped_batch(engine, x, cols, targets)
else:
    nd = len(x)
    out = engine.batch(x, cols, targets=targets, on_impossible="nan").marginals
el = time.perf_counter() - t
print(json.dumps({{"base_mb": base, "peak_mb": status("VmHWM"), "seconds": el,
                  "distinct": int(nd), "bytes_per_row": engine.bytes_per_row,
                  "chunk_rows": engine.chunk_rows(),
                  "output_mb": sum(m.nbytes for m in out.values()) / 2**20}}))
"""


def bench_memory(n: int) -> dict:
    res = {}
    for mode in ("grouped", "direct"):
        code = _CHILD.format(here=str(HERE), n=n, mode=mode)
        out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                             text=True)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    return res


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    ap.add_argument("--no-write", action="store_true", help="do not write results/engine.md")
    ap.add_argument("--v2-baselines", action="store_true",
                    help="also run pgmpy's batch and EM baselines on the second edition (very slow:"
                         " its predict_probability contracts a joint over every unobserved node)")
    args = ap.parse_args(argv)
    q = args.quick
    repeat = 20 if q else 200
    lines = header()
    print("\n".join(lines), flush=True)
    table = Table()
    rng = np.random.default_rng(42)

    # 1. shipped model
    spec, model, engine = shipped()
    targets = spec.group("origin") + spec.group("mechanism")
    observable = [v for v in spec.nodes if spec.nodes[v].group in ("context", "finding", "test")]
    evs = []
    while len(evs) < (10 if q else 40):
        k = int(rng.integers(3, 9))
        ev = {v: str(rng.choice(engine.states[v]))
              for v in rng.choice(observable, size=k, replace=False)}
        if engine.log_probability(ev) > -np.inf:
            evs.append(ev)
    print("\n1. one diagnosis, basic edition (31 nodes; 13 targets; 3-8 findings)")
    ours_ship = bench_diagnosis(table, "knee_hip_basic", model, engine, lambda ev: targets, evs, repeat,
                                per_target_n=5 if q else 20)
    table.add("knee_hip_basic: one diagnosis", ours_ship, "goal", 0.3e-3, "<= 0.3 ms",
              ours_ship <= 0.3e-3)
    goal_ms = ours_ship <= 0.3e-3

    # 1b. the second edition (the default shipped model)
    spec2, model2, engine2 = shipped("knee_hip")
    targets2 = spec2.group("origin") + spec2.group("mechanism")
    evs2 = random_evidence(spec2, engine2, rng, 10 if q else 40, 4, 12)
    print(f"\n1b. one diagnosis, second edition ({len(spec2.nodes)} nodes; "
          f"{len(targets2)} targets; 4-11 findings)")
    ours_v2 = bench_diagnosis(table, "knee_hip (2nd ed.)", model2, engine2, lambda ev: targets2,
                              evs2, max(5, repeat // 4), per_target_n=3 if q else 8,
                              joint_call=False)
    print("\n1c. batch and EM, second edition")
    if args.v2_baselines:
        bench_batch(table, spec2, model2, engine2, 10_000, n_predict=10 if q else 50,
                    n_ve_patterns=10 if q else 40, repeat=1 if q else 3,
                    label="knee_hip (2nd ed.)")
        bench_em_iteration(table, spec2, "knee_hip (2nd ed.)", 2_000 if q else 20_000,
                           pgmpy_rows=20 if q else 100)
    else:  # pgmpy's predict_probability and VE contract a joint over the 28 unobserved targets
        x2, cols2 = audit_rows(spec2, engine2, 10_000)
        t2 = median_time(lambda: grouped_batch(engine2, x2, cols2, targets2), 1 if q else 3,
                         warmup=1)
        table.add("knee_hip (2nd ed.): batch 10,000 rows, total", t2, "pgmpy", float("nan"),
                  theirs_txt="not run (a joint over 28 targets; --v2-baselines to try)")

    # 2. ALARM
    amodel, aengine = alarm()
    print("\n2. one diagnosis, ALARM (37 nodes; 8 observed; all 29 others are targets)")
    aevs = []
    while len(aevs) < (10 if q else 40):
        ev = {v: str(rng.choice(aengine.states[v]))
              for v in rng.choice(aengine.variables, size=8, replace=False)}
        if aengine.log_probability(ev) > -np.inf:
            aevs.append(ev)
    ours_alarm = bench_diagnosis(table, "ALARM", amodel, aengine,
                                 lambda ev: [v for v in aengine.variables if v not in ev], aevs,
                                 repeat, per_target_n=3 if q else 10)

    # 3. batch
    print("\n3. batch posteriors (origins + mechanisms) for simulated audit rows")
    n = 10_000
    _, n_distinct = bench_batch(table, spec, model, engine, n, n_predict=30 if q else 300,
                                n_ve_patterns=100 if q else 10**9, repeat=3 if q else 7)

    # 4. cold start
    print("\n4. cold start")
    cold = bench_cold_start(table, 3 if q else 5)

    # 5. memory
    print("\n5. memory")
    n_mem = 100_000 if q else 1_000_000
    mem = bench_memory(n_mem)
    for mode, r in mem.items():
        print(f"  {mode}: {json.dumps(r)}")

    md = ["# Engine benchmark (`benchmarks/bench_engine.py" + (" --quick" if q else "") + "`)", "",
          *lines, "", *table.markdown(), ""]
    md += [
        f"- One diagnosis on the shipped model: median {fmt_t(ours_ship)} "
        f"(goal <= 0.3 ms: {'met' if goal_ms else 'MISSED'}); second edition "
        f"{fmt_t(ours_v2)}; ALARM {fmt_t(ours_alarm)}.",
        "- pyAgrum *fresh*: a new `LazyPropagation` per query; *reused*: one engine, "
        "`eraseAllEvidence` + `setEvidence` + `makeInference` + `posterior` of each target "
        "(evidence update cost included); *targets set, 1 thread*: as reused, with "
        "`setTargets(targets)` and `setNumberOfThreads(1)` (its fastest setting on this busy "
        "2-core machine). The 'faster' goal is judged against the fastest pyAgrum variant. "
        "pyAgrum loads the model exported as XMLBIF (exact).",
        "- pgmpy VE with `joint=False` and many targets contracts a joint over all targets; "
        "on ALARM (29 targets) it runs out of memory, so only per-target calls are timed there.",
        "- pgmpy `predict_probability` cannot take missing cells, so it is timed on complete "
        "rows (no blanks) of the same simulated audit, per row; ours is per row over all "
        f"{n:,} rows (with blanks), grouping included. The VE baseline runs on the same "
        f"{n_distinct:,} distinct patterns ours does.",
        f"- Memory: {engine.bytes_per_row:,} bytes per batch row (shipped model; the "
        f"batch plan's cliques, {engine.chunk_rows():,} rows per chunk). A {n_mem:,}-row "
        "batch of origins + mechanisms in a fresh process (peak RSS, reset before the batch; "
        "the 13 posteriors alone take "
        f"{mem['direct']['output_mb']:.0f} MB): grouped ({mem['grouped']['distinct']:,} "
        f"distinct patterns) peak {mem['grouped']['peak_mb']:.0f} MB from "
        f"{mem['grouped']['base_mb']:.0f} MB, {mem['grouped']['seconds']:.2f} s; direct "
        f"`Engine.batch` on all rows peak {mem['direct']['peak_mb']:.0f} MB from "
        f"{mem['direct']['base_mb']:.0f} MB, {mem['direct']['seconds']:.2f} s.",
        f"- Cold start median {fmt_t(cold)} (goal < 1.5 s).",
    ]
    text = "\n".join(md) + "\n"
    print()
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
        print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
