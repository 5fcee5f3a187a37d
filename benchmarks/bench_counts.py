"""Benchmark counting (``kneehip counts``) against reading the same data, in the same run.

Every measurement is a fresh process timed from start to exit with its peak resident
memory (``/usr/bin/time -f "%e %M"``); ratios are printed against a baseline measured in
the same run, and a markdown table is written to ``benchmarks/results/counts.md``.

a. **100,000,000 rows as Parquet.** ``kb.simulate_audit`` (model ``knee_hip_basic``, 10%
   blanks, mechanisms and origins hidden: 18 columns) writes ``--parts`` files of
   ``--part-rows`` rows to a temporary folder (deleted afterwards). Ours: ``kneehip counts
   FOLDER`` (DuckDB ``GROUP BY`` over the folder, memory limit 1 GB). Baseline:
   ``pyarrow.parquet.read_table`` of the same 18 columns, file after file (reading all
   100M rows at once would need about 7 GB even as dictionary indices). Goal: peak memory
   <= 2 GB; the counts add up to every row.
b. **1,000,000-row CSV.** Ours: ``kneehip counts audit.csv`` (DuckDB). Baselines:
   ``pandas.read_csv`` of the file (as the package reads it: text kept as text) and the
   previous path, the same counts through pandas in 500,000-row chunks
   (``audit_counts(..., engine="pandas")``). Interleaved repeats, medians.

The machine is shared: figures are taken under load and vary; the ratios, measured in the
same run, are what to compare.

Usage::

    python benchmarks/bench_counts.py                  # full run (100M rows: several minutes)
    python benchmarks/bench_counts.py --parts 4 --part-rows 250000   # a quick check
    python benchmarks/bench_counts.py --only b
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "counts.md"
MODEL = "knee_hip_basic"
ROWS: list[str] = []


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS in GB, stdout) of a fresh process."""
    out = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *cmd], capture_output=True,
                         text=True, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    line = [x for x in out.stderr.splitlines() if x.startswith("TIME ")][-1].split()
    return float(line[1]), int(line[2]) / 1e6, out.stdout


def kneehip() -> str:
    return str(Path(sys.executable).with_name("kneehip"))


def make_parquet(folder: Path, parts: int, part_rows: int) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    import kneehip_bn as kb

    spec = kb.load_spec(MODEL)
    t = time.perf_counter()
    for i in range(parts):
        df = kb.simulate_audit(part_rows, seed=1000 + i, missing=0.1, model=spec,
                               hidden=("mechanism", "origin"))
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False),
                       folder / f"part-{i:03d}.parquet")
        del df
        print(f"  wrote part {i + 1}/{parts} ({time.perf_counter() - t:.0f} s)", flush=True)
    return list(pq.read_schema(folder / "part-000.parquet").names)


READ_TABLE = """
import sys, glob, pyarrow.parquet as pq
cols = sys.argv[2].split(",")
n = 0
for f in sorted(glob.glob(sys.argv[1] + "/*.parquet")):
    t = pq.read_table(f, columns=cols)
    n += t.num_rows
    del t
print(n)
"""


COUNT = """
import sys
from kneehip_bn.io.counting import audit_counts
c = audit_counts(sys.argv[1], "knee_hip_basic")
print(c.n_rows, int(c.counts.sum()), len(c.counts))
"""


def part_a(parts: int, part_rows: int, reuse: str | None) -> None:
    """Counting in a fresh process (``audit_counts(FOLDER)``, the work of ``kneehip
    counts`` before the file is written: writing tens of millions of patterns is not
    memory-bounded yet) against ``read_table`` of the same columns."""
    import pyarrow.parquet as pq

    total = parts * part_rows
    tmp = Path(reuse).parent if reuse else Path(tempfile.mkdtemp(prefix="kneehip-bench-counts-"))
    try:
        if not reuse:
            print(f"a. generating {total:,} rows as {parts} Parquet files in {tmp}", flush=True)
            (tmp / "audit").mkdir()
            make_parquet(tmp / "audit", parts, part_rows)
        files = sorted((tmp / "audit").iterdir())
        cols = list(pq.read_schema(files[0]).names)
        total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        size = sum(f.stat().st_size for f in files) / 1e9
        t_ours, m_ours, out = run([sys.executable, "-c", COUNT, str(tmp / "audit")])
        n, s, m = map(int, out.strip().splitlines()[-1].split())
        assert n == s == total, (n, s, total)
        print(f"   counts: {t_ours:.1f} s, {m_ours:.2f} GB peak, {m:,} patterns", flush=True)
        t_base, m_base, out = run([sys.executable, "-c", READ_TABLE, str(tmp / "audit"),
                                   ",".join(cols)])
        assert int(out.strip()) == total, out
        print(f"   read_table (file by file): {t_base:.1f} s, {m_base:.2f} GB; ratio "
              f"{t_ours / t_base:.2f}x", flush=True)
        ROWS.append(f"| a. {total:,} rows, {len(files)} Parquet files ({size:.2f} GB, "
                    f"{len(cols)} columns) | `audit_counts(FOLDER)` (DuckDB, memory limit 1 GB): "
                    f"**{t_ours:.1f} s, {m_ours:.2f} GB** | `pq.read_table` of the {len(cols)} "
                    f"columns, file by file: {t_base:.1f} s, {m_base:.2f} GB | "
                    f"**{t_ours / t_base:.2f}x** | {m:,} distinct patterns, rows = sum of counts "
                    f"= {total:,}; goal <= 2 GB peak: {'met' if m_ours <= 2 else 'NOT met'}; one "
                    "run each |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


PANDAS_READ = """
import sys, pandas as pd
df = pd.read_csv(sys.argv[1], keep_default_na=False, na_values=[""])
print(len(df))
"""
PANDAS_COUNTS = """
import sys
from kneehip_bn.io.counting import audit_counts
c = audit_counts(sys.argv[1], "knee_hip_basic", engine="pandas")
print(c.n_rows)
"""


def part_b(rows: int, repeats: int) -> None:
    import kneehip_bn as kb

    tmp = Path(tempfile.mkdtemp(prefix="kneehip-bench-counts-"))
    try:
        df = kb.simulate_audit(rows, seed=5, missing=0.1, model=kb.load_spec(MODEL),
                               hidden=("mechanism", "origin"))
        df.to_csv(tmp / "audit.csv", index=False)
        del df
        size = (tmp / "audit.csv").stat().st_size / 1e6
        ours, read, old = [], [], []
        for i in range(repeats):  # interleaved
            read.append(run([sys.executable, "-c", PANDAS_READ, str(tmp / "audit.csv")])[:2])
            ours.append(run([kneehip(), "counts", str(tmp / "audit.csv"), "--model", MODEL, "-o",
                             str(tmp / f"c{i}.json")])[:2])
            old.append(run([sys.executable, "-c", PANDAS_COUNTS, str(tmp / "audit.csv")])[:2])
        a = json.loads((tmp / "c0.json").read_text())
        assert a["rows"] == rows
        med = {k: (statistics.median(x[0] for x in v), max(x[1] for x in v))
               for k, v in (("ours", ours), ("read", read), ("old", old))}
        print(f"b. {rows:,}-row CSV ({size:.0f} MB): kneehip counts {med['ours'][0]:.2f} s "
              f"({med['ours'][1]:.2f} GB), read_csv {med['read'][0]:.2f} s "
              f"({med['read'][1]:.2f} GB), pandas counts {med['old'][0]:.2f} s "
              f"({med['old'][1]:.2f} GB); ratio vs read_csv "
              f"{med['ours'][0] / med['read'][0]:.2f}x", flush=True)
        ROWS.append(f"| b. {rows:,}-row CSV ({size:.0f} MB) | `kneehip counts audit.csv`: "
                    f"**{med['ours'][0]:.2f} s, {med['ours'][1]:.2f} GB** | `pandas.read_csv`: "
                    f"{med['read'][0]:.2f} s, {med['read'][1]:.2f} GB; previous pandas counting "
                    f"path: {med['old'][0]:.2f} s, {med['old'][1]:.2f} GB | "
                    f"**{med['ours'][0] / med['read'][0]:.2f}x** read_csv, "
                    f"{med['ours'][0] / med['old'][0]:.2f}x the pandas path | medians of "
                    f"{repeats} interleaved fresh processes |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, default=20)
    ap.add_argument("--part-rows", type=int, default=5_000_000)
    ap.add_argument("--csv-rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=["a", "b"], default=None)
    ap.add_argument("--reuse", default=None, metavar="DIR",
                    help="part a on Parquet files already written by an earlier run (DIR/audit; "
                         "deleted afterwards)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.only in (None, "b"):
        part_b(args.csv_rows, args.repeats)
    if args.only in (None, "a"):
        part_a(args.parts, args.part_rows, args.reuse)
    import duckdb

    head = [
        "# Counting benchmark (`benchmarks/bench_counts.py`)",
        "",
        f"{_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, DuckDB {duckdb.__version__}; "
        f"`{' '.join(sys.argv[1:]) or '(defaults)'}`; total {time.perf_counter() - t0:.0f} s. "
        "Fresh processes, wall time and peak RSS from `/usr/bin/time`. **Taken on a shared "
        "machine under load (2 cores, several other jobs)**: compare the ratios, measured in "
        "the same run.",
        "",
        "| task | ours | baseline (same run) | ratio | note |",
        "|---|---|---|---|---|",
    ]
    text = "\n".join([*head, *ROWS]) + "\n"
    print(text)
    if args.parts * args.part_rows >= 100_000_000 or args.only == "b" or args.reuse:
        old = RESULTS.read_text() if RESULTS.exists() else ""
        keep = ([r for r in old.splitlines() if r.startswith("| a.")] if args.only == "b" else
                [r for r in old.splitlines() if r.startswith("| b.")] if args.only == "a" else [])
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text("\n".join([*head, *ROWS, *keep]) + "\n")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
