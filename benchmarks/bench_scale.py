"""Research scale: ``kneehip fit`` and ``kneehip batch`` end to end on a folder of Parquet files.

Issue 12's unmeasured figures: ``kneehip fit`` end to end on 100,000,000 rows as Parquet
(counted where they live by DuckDB, then EM on the distinct patterns), and a
100,000,000-row Parquet ``kneehip batch`` with bounded memory. Each command runs in a fresh
process under ``/usr/bin/time`` (wall time, peak RSS). Same-run baselines:

- ``pyarrow.parquet.read_table`` of the same columns, file after file (just reading the
  data once, the least any tool must do; all 100M rows at once would need about 7 GB);
- for ``batch``, ``pyarrow.parquet.ParquetFile.iter_batches`` reading every file in
  batches and writing each batch back out with ``pyarrow.parquet.ParquetWriter`` (read +
  write, no inference: the floor of a streaming batch).

The data: ``--parts`` files of ``--part-rows`` rows made with ``kneehip_bn.simulate_audit``
(model ``knee_hip_basic``, 10% blanks, mechanisms and origins hidden: 18 columns) in
``--data`` (made if empty, kept, so a later run can reuse it).

Usage::

    python benchmarks/bench_scale.py --data /tmp/big100/audit               # 20 x 5M rows
    python benchmarks/bench_scale.py --data /tmp/small --parts 4 --part-rows 250000
    python benchmarks/bench_scale.py --data DIR --output benchmarks/results/scale.md
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_counts import MODEL, make_parquet  # noqa: E402 - the same simulated Parquet parts

READ = """
import sys, glob, pyarrow.parquet as pq
n = 0
for f in sorted(glob.glob(sys.argv[1] + "/*.parquet")):
    t = pq.read_table(f)
    n += t.num_rows
    del t
print(n)
"""

COPY = """
import sys, glob, pyarrow.parquet as pq
out, n, w = sys.argv[2], 0, None
for f in sorted(glob.glob(sys.argv[1] + "/*.parquet")):
    for b in pq.ParquetFile(f).iter_batches(batch_size=1_000_000):
        if w is None:
            w = pq.ParquetWriter(out, b.schema)
        w.write_batch(b)
        n += b.num_rows
w.close()
print(n)
"""


def run(cmd: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in GB, stdout) of a fresh process; exits on failure."""
    out = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *cmd], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr[-3000:]}")
    line = [x for x in out.stderr.splitlines() if x.startswith("TIME ")][-1].split()
    return float(line[1]), int(line[2]) / 1e6, out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder of Parquet files (made if empty)")
    ap.add_argument("--parts", type=int, default=20)
    ap.add_argument("--part-rows", type=int, default=5_000_000)
    ap.add_argument("--commands", default="fit,batch")
    ap.add_argument("--max-iter", type=int, default=None,
                    help="EM iterations for fit (default: the CLI's, to convergence)")
    ap.add_argument("--tol", type=float, default=None,
                    help="EM tolerance for fit (default: the CLI's); the simulated data come "
                         "from the model itself, so EM from the expert tables stops at once "
                         "unless the tolerance is tightened")
    ap.add_argument("--output", default=None, help="write the Markdown report here")
    args = ap.parse_args()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    if not any(data.glob("*.parquet")):
        print(f"generating {args.parts * args.part_rows:,} rows in {data}", flush=True)
        make_parquet(data, args.parts, args.part_rows)  # the data of bench_counts.py
    import pyarrow.parquet as pq

    files = sorted(data.glob("*.parquet"))
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    size = sum(f.stat().st_size for f in files) / 1e9
    exe = str(Path(sys.executable).with_name("kneehip"))
    want = args.commands.split(",")
    table = []
    with tempfile.TemporaryDirectory(prefix="kneehip-scale-") as tmp:
        t_read, m_read, _ = run([sys.executable, "-c", READ, str(data)])
        table.append(("baseline: pyarrow read_table, file after file", t_read, m_read, "", ""))
        print(f"read_table: {t_read:.1f} s, {m_read:.2f} GB", flush=True)
        if "fit" in want:
            cmd = [exe, "fit", str(data), "--model", MODEL, "-o", f"{tmp}/fit.yaml",
                   "--report", f"{tmp}/fit.json", "--json"]
            if args.max_iter:
                cmd += ["--max-iter", str(args.max_iter)]
            if args.tol:
                cmd += ["--tol", str(args.tol)]
            t, m, out = run(cmd)
            import json

            rep = json.loads(out)
            import statistics

            estep = statistics.median(h["seconds"] for h in rep["history"])
            note = (f"{rep['rows']:,} rows in {rep['distinct_patterns']:,} distinct patterns; "
                    f"E-step median {estep:.1f} s over {len(rep['history'])} E-steps; "
                    f"{rep['iterations']} EM iterations ({rep['method']}), converged "
                    f"{rep['converged']}; the fit's own clock {rep['seconds']:.1f} s")
            table.append(("kneehip fit FOLDER (DuckDB counts + EM)", t, m,
                          f"{t / t_read:.2f}x", note))
            print(f"fit: {t:.1f} s, {m:.2f} GB; {note}", flush=True)
        if "batch" in want:
            t_copy, m_copy, _ = run([sys.executable, "-c", COPY, str(data), f"{tmp}/copy.parquet"])
            table.append(("baseline: pyarrow iter_batches + ParquetWriter (read + write)",
                          t_copy, m_copy, "", ""))
            os.remove(f"{tmp}/copy.parquet")
            t, m, out = run([exe, "batch", str(data), "--model", MODEL, "-o",
                             f"{tmp}/post.parquet"])
            n_out = pq.ParquetFile(f"{tmp}/post.parquet").metadata.num_rows
            table.append(("kneehip batch FOLDER -o post.parquet", t, m,
                          f"{t / t_copy:.2f}x", f"{n_out:,} rows written"))
            print(f"batch: {t:.1f} s, {m:.2f} GB, {n_out:,} rows", flush=True)
    lines = [
        "# Research scale: `kneehip fit` and `kneehip batch` on a folder of Parquet files",
        "",
        f"`python benchmarks/bench_scale.py {' '.join(sys.argv[1:])}` on "
        f"{_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, "
        f"{os.cpu_count()} cores (shared with other jobs: times vary), Python "
        f"{platform.python_version()}. Data: {rows:,} rows in {len(files)} Parquet files "
        f"({size:.2f} GB), model `{MODEL}`, 10% blanks, mechanisms and origins hidden. "
        "Fresh processes; wall time and peak RSS from `/usr/bin/time`; ratios against the "
        "baseline of the same kind in the same run.",
        "",
        "| command | wall time | peak RSS | vs baseline | note |",
        "|---|---|---|---|---|",
        *[f"| {c} | {t:.1f} s | {m:.2f} GB | {r} | {n} |" for c, t, m, r, n in table],
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
