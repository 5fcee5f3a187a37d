"""Peak memory of ``kneehip batch``, ``fit`` and ``counts`` on huge and damaged CSV files.

Issue 10's goal: under 1 GB peak RSS each, on

- a 15,000,000-row audit CSV (just under 2 GiB: the size the reader used to read whole),
  made with ``kneehip_bn.simulate_audit`` in parts of 1,000,000 rows into a temporary
  directory (deleted at the end);
- a 2 GiB file of one line: a 200-row CSV padded with NUL bytes to 2 GiB (``truncate``,
  as in the reliability review), and a 200-row CSV followed by 2 GiB of text without a
  line end.

Each command runs in a fresh process under ``/usr/bin/time -v`` (peak RSS of that process,
"Maximum resident set size"). Same-run baselines: the previous reader (the package source
at ``--baseline`` extracted with ``git archive``: the whole-file read the reliability
review measured at 2.25 GB), a process that only imports the package, pandas and pyarrow,
and the file size. Figures on a shared machine vary; the ratios are what to compare.

Usage::

    python benchmarks/bench_memory.py --output benchmarks/results/memory.md
    python benchmarks/bench_memory.py --rows 2000000 --skip-baseline   # a quick look
    python benchmarks/bench_memory.py --data big.csv --commands counts,fit --baseline main

``fit`` runs with ``--max-iter 3``: the memory of a fit is its read and its pattern table
(made once); more EM iterations reuse them.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "knee_hip_basic"
GB = 1e9


def make_big(path: Path, rows: int, part: int = 1_000_000) -> None:
    import kneehip_bn as kb

    spec = kb.load_spec(MODEL)
    done = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        while done < rows:
            n = min(part, rows - done)
            df = kb.simulate_audit(n, seed=1000 + done // part, missing=0.1, model=spec,
                                   hidden=("mechanism", "origin"))
            df.to_csv(f, index=False, header=done == 0)
            done += n
            print(f"  simulated {done:,} rows", file=sys.stderr)


def make_one_line(path: Path, small: bytes, nul: bool) -> None:
    path.write_bytes(small)
    if nul:  # sparse: the rest of the 2 GiB is NUL bytes
        with open(path, "r+b") as f:
            f.truncate(2 << 30)
        return
    block = b"a" * (16 << 20)
    with open(path, "ab") as f:
        for _ in range((2 << 30) // len(block)):
            f.write(block)


def measure(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> dict:
    """Run ``argv`` under /usr/bin/time -v: exit status, wall time, peak RSS, stderr."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    rss = int(m.group(1)) * 1024 if m else float("nan")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("\t")
             and "Command exited" not in ln and "Command being timed" not in ln]
    return {"status": proc.returncode, "wall": wall, "rss": rss,
            "message": lines[0][:160] if lines else ""}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=15_000_000)
    ap.add_argument("--baseline", default="59fd9c5",
                    help="git commit of the previous reader (the reliability review's)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--tmp", default=None, help="directory for the temporary files")
    ap.add_argument("--output", default=None, help="write the Markdown report here")
    ap.add_argument("--data", default=None, metavar="CSV",
                    help="an audit CSV made earlier (e.g. by a previous run) instead of "
                         "simulating --rows rows; it is not deleted")
    ap.add_argument("--commands", default="batch,counts,fit",
                    help="which commands to run, comma-separated (batch, counts, fit)")
    args = ap.parse_args(argv)
    args.command_line = " ".join(sys.argv[1:] if argv is None else argv)
    wanted = {c.strip() for c in args.commands.split(",") if c.strip()}
    if not wanted or wanted - {"batch", "counts", "fit"}:
        raise SystemExit(f"bench_memory: --commands: expected some of batch, counts, fit, "
                         f"found {args.commands!r}")

    if not Path("/usr/bin/time").exists():
        raise SystemExit("bench_memory: /usr/bin/time (GNU time) is needed for -v")
    exe = shutil.which("kneehip") or str(Path(sys.executable).with_name("kneehip"))
    tmp = Path(tempfile.mkdtemp(prefix="kneehip-mem-", dir=args.tmp))
    results: list[tuple[str, str, dict]] = []
    try:
        t0 = time.perf_counter()
        if args.data:
            big = Path(args.data).resolve()
            with big.open("rb") as f:
                args.rows = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 24), b"")) - 1
        else:
            big = tmp / "big.csv"
            print(f"making {args.rows:,} rows in {big}", file=sys.stderr)
            make_big(big, args.rows)
        made = time.perf_counter() - t0
        size = big.stat().st_size
        with big.open("rb") as f:
            small = b"".join(itertools.islice(f, 201))
        nul = tmp / "nul2g.csv"
        line = tmp / "line2g.csv"
        make_one_line(nul, small, nul=True)
        make_one_line(line, small, nul=False)
        base_src = None
        if not args.skip_baseline:
            base_src = tmp / "baseline"
            base_src.mkdir()
            arch = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "src",
                                   "models"],
                                  capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base_src)], input=arch, check=True)

        def cmds(data: Path, tag: str) -> list[tuple[str, list[str]]]:
            m = ["--model", MODEL]
            return [(name, cmd) for name, cmd in (
                ("batch", [exe, "batch", str(data), *m, "-o", str(tmp / f"post_{tag}.csv")]),
                ("counts", [exe, "counts", str(data), *m, "-o", str(tmp / f"c_{tag}.json")]),
                ("fit", [exe, "fit", str(data), *m, "-o", str(tmp / f"fit_{tag}.yaml"),
                         "--max-iter", "3", "--quiet"]),
            ) if name in wanted]

        imp = measure([sys.executable, "-c", "import kneehip_bn, pandas, pyarrow, numpy"])
        results.append(("import kneehip_bn, pandas, pyarrow (no work)", "-", imp))
        for data, label, tag in ((big, f"{args.rows:,} rows, {size / GB:.2f} GB", "big"),
                                 (nul, "200 rows + NUL padding to 2 GiB", "nul"),
                                 (line, "200 rows + 2 GiB of one line", "line")):
            for name, cmd in cmds(data, tag):
                print(f"  {name} on {label}", file=sys.stderr)
                results.append((f"kneehip {name}", label, measure(cmd)))
            if base_src is not None:  # batch and counts (fit reads as counts does)
                py = [sys.executable, "-m", "kneehip_bn.cli"]
                env = {"PYTHONPATH": str(base_src / "src")}
                # the same model when the baseline ships it (else its default model)
                bm = (["--model", MODEL] if (base_src / "models" / f"{MODEL}.yaml").exists()
                      else [])
                for name, out in (("batch", f"base_{tag}.csv"), ("counts", f"base_{tag}.json")):
                    if name not in wanted:
                        continue
                    print(f"  baseline {name} on {label}", file=sys.stderr)
                    r = measure([*py, name, str(data), *bm, "-o", str(tmp / out)], env=env,
                                cwd=tmp)
                    results.append((f"baseline: {name} ({args.baseline}, previous reader)",
                                    label, r))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = _report(args, results, made, size)
    print(report)
    if args.output:
        Path(args.output).write_text(report, encoding="utf-8")
    return 0


def _report(args, results, made, size) -> str:
    import kneehip_bn

    base = {(what.split()[1], label): r for what, label, r in results
            if what.startswith("baseline")}
    out = [
        "# Memory: `kneehip batch`, `fit`, `counts` on huge and damaged CSV files",
        "",
        f"Command: `python benchmarks/bench_memory.py {args.command_line}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; kneehip_bn "
        f"{getattr(kneehip_bn, '__version__', '?')}, Python {platform.python_version()}, "
        f"model `{MODEL}`; {os.cpu_count()} cores, shared with other jobs (times vary; "
        "memory less so). Peak RSS of a fresh process (`/usr/bin/time -v`). Goal: under 1 GB.",
        "",
        f"The {args.rows:,}-row file: {size / GB:.2f} GB, "
        + (f"simulated in parts of 1,000,000 rows ({made:.0f} s)" if not args.data else
           "given with `--data` (simulated earlier the same way)")
        + ", 10% blanks, mechanisms and origins hidden (18 columns). `fit` ran "
        "with `--max-iter 3` (its memory is the read and the pattern table; more iterations "
        "reuse them). The baselines are `batch` and `counts` of the package source at "
        f"`{args.baseline}` (`git archive`), run in the same run with the same model when that "
        "source ships it (else its default model); `fit` is not rerun for the baseline (its "
        "EM takes minutes here).",
        "",
        "| command | input | exit | wall time | peak RSS | RSS vs the previous reader (same command) | goal < 1 GB | message |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for what, label, r in results:
        b = base.get((what.split()[-1], label))
        ratio = (f"{r['rss'] / b['rss']:.2f}x" if b and not what.startswith("baseline")
                 and b["rss"] == b["rss"] else "")
        goal = "yes" if r["rss"] < GB else "**no**"
        msg = r["message"].replace("|", "\\|") if r["status"] else ""
        out.append(f"| {what} | {label} | {r['status']} | {r['wall']:.1f} s | "
                   f"{r['rss'] / GB:.3f} GB | {ratio} | {goal} | {msg} |")
    out += ["", "A non-zero exit on the padded files is the expected answer: one line naming "
            "the line (a NUL byte, or a line over the 1 MiB limit, settable with "
            "`KNEEHIP_MAX_LINE_BYTES`), found after reading one range of the file."]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
