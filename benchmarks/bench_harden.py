"""What the hardening costs, each against a baseline measured in the same run.

    python benchmarks/bench_harden.py [--main /path/to/main/src] [--repeat 7]

1. cold start of ``kneehip diagnose`` (this tree vs ``--main``'s source tree, if given:
   alternating subprocess runs, medians);
2. reading a model file: the strict loader (``_yaml.load_yaml``: compose + checked build)
   vs ``yaml.load`` with libyaml's safe loader;
3. ``get_engine`` on a cache hit: a read-only spec (content key cached; baseline a dict
   lookup) and a pgmpy network (fingerprint with the CPDs' value bytes; baseline the old
   lookup with the identity-only fingerprint);
4. ``atomic_write_text`` of 1 MB vs a plain ``open().write()``.

Figures are noisy on a shared machine: read the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit


def _median_run(cmd, env, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def _per_call(fn, n):
    return min(timeit.repeat(fn, number=n, repeat=5)) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--main", default=None, help="src folder of the baseline tree")
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()

    import yaml

    import kneehip_bn as kb
    from kneehip_bn._util import strict_yaml as _yaml
    from kneehip_bn._util.files import atomic_write_text
    from kneehip_bn.inference.cache import _ENGINES, get_engine
    from kneehip_bn.model.spec import shipped_model_path

    rows = []
    cmd = [sys.executable, "-m", "kneehip_bn.cli", "diagnose", "-e", "knee_pain=present",
           "--model", "knee_hip_basic"]
    if a.main:
        base_env = {**os.environ, "PYTHONPATH": a.main}
        here, base = [], []
        for _ in range(a.repeat):  # alternate, so that load changes hit both alike
            here.append(_median_run(cmd, dict(os.environ), 1))
            base.append(_median_run(cmd, base_env, 1))
        rows.append(("cold start: kneehip diagnose (s)", statistics.median(here),
                     statistics.median(base), "main"))
    path = shipped_model_path("knee_hip_basic")
    text = path.read_text()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    rows.append(("read the model file (ms)", 1e3 * _per_call(lambda: _yaml.load_yaml(text=text), 20),
                 1e3 * _per_call(lambda: yaml.load(text, Loader=loader), 20),
                 "yaml.load(CSafeLoader)"))
    spec = kb.load_spec("knee_hip_basic")
    get_engine(spec)
    net = kb.build_network(spec)
    get_engine(net)

    def old_fp(model):
        return (*((str(c.variable), id(c), id(c.values)) for c in model.get_cpds()),
                tuple(sorted(map(tuple, model.edges()))))

    rows.append(("get_engine(spec), cache hit (us)", 1e6 * _per_call(lambda: get_engine(spec), 2000),
                 1e6 * _per_call(lambda: spec.__dict__.get("_engine"), 2000), "dict lookup"))
    rows.append(("get_engine(network), cache hit (us)", 1e6 * _per_call(lambda: get_engine(net), 500),
                 1e6 * _per_call(lambda: (_ENGINES.get(net), old_fp(net)), 500),
                 "old: lookup + id fingerprint"))
    big = "x" * (2**20 - 1) + "\n"
    with tempfile.TemporaryDirectory() as d:
        i = [0]

        def atomic():
            i[0] += 1
            atomic_write_text(os.path.join(d, f"a{i[0]}.txt"), big)

        def plain():
            i[0] += 1
            with open(os.path.join(d, f"p{i[0]}.txt"), "w") as fh:
                fh.write(big)

        rows.append(("write 1 MB (ms)", 1e3 * _per_call(atomic, 20), 1e3 * _per_call(plain, 20),
                     "open().write() (no fsync)"))
    print(f"{'measure':<40}{'this':>10}{'baseline':>10}{'ratio':>8}  baseline")
    for name, x, b, what in rows:
        print(f"{name:<40}{x:>10.3f}{b:>10.3f}{x / b:>8.2f}  {what}")


if __name__ == "__main__":
    main()
