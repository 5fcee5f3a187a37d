"""``kneehip`` commands for audit data: fit, check, batch, simulate, counts, merge-counts.

Added to the parser by :mod:`kneehip_bn.cli` through :func:`add_commands`. Heavy
third-party imports (pandas, matplotlib) happen inside the handlers.

Examples (shell)::

    kneehip simulate --n 2000 --seed 1 --missing 0.1 --output audit.csv
    kneehip fit audit.csv --strength 50 --output fitted.yaml --report fit.json --plot fit.png
    kneehip fit sqlite:///audit.db --table audit --output fitted.yaml
    kneehip check audit.csv
    kneehip batch audit.csv --output posteriors.csv
    kneehip counts clinic_a.csv --output a_counts.json
    kneehip fit --counts a_counts.json b_counts.json --output pooled.yaml
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from kneehip_bn._util.memory import keep_freed_memory
from kneehip_bn.cli._common import (
    add_overwrite,
    check_output,
    check_plot_option,
    emit_json,
    load_for_cli,
)
from kneehip_bn.errors import KneeHipError, ParameterError
from kneehip_bn.io.counting import audit_counts
from kneehip_bn.io.counts import generalise, merge_counts, privacy_summary
from kneehip_bn.io.counts_file import read_counts
from kneehip_bn.io.mapping import MAPPING_FORMAT, load_mapping
from kneehip_bn.io.spark import read_spark, session
from kneehip_bn.io.writers import table_format, write_table
from kneehip_bn.learning.batch import write_batch_posteriors
from kneehip_bn.learning.fitter import PriorFitter
from kneehip_bn.learning.impossible import screen_counts
from kneehip_bn.learning.simulate import simulate_audit
from kneehip_bn.learning.structure import check_structure
from kneehip_bn.teaching.plots import save_figure

__all__ = ["add_commands"]


# ---------------------------------------------------------------------- arguments
def _data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("data", nargs=None if required else "?", metavar="DATA",
                   help="audit: a .csv/.parquet file (counts: also a glob or a partitioned "
                        "folder), or a database URL (sqlite:///audit.db, duckdb:///audit.duckdb, "
                        "any SQLAlchemy URL), opened read-only")
    p.add_argument("--mapping", metavar="MAP", default=None,
                   help="YAML mapping of the audit's columns and codes to nodes and states")
    p.add_argument("--ignore", nargs="+", metavar="COLUMN", default=[],
                   help="audit columns not used by the model (e.g. a patient id); without this "
                        "(or a mapping) every column must be a node")
    p.add_argument("--table", default=None, help="table to read (with a database URL)")
    p.add_argument("--sql", default=None,
                   help="one read-only SELECT (or WITH ... SELECT) query, with a database URL; "
                        "anything else is refused before it reaches the database")
    p.add_argument("--max-line-bytes", type=int, default=None, metavar="BYTES",
                   help="longest line accepted in an audit CSV file, in bytes (default: "
                        "$KNEEHIP_MAX_LINE_BYTES, else 1048576); a longer line is an error "
                        "naming it")


def _spark_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spark", metavar="TABLE_OR_PATH", default=None,
                   help="read the audit with Spark: a table name or a path Spark reads (CSV, "
                        "Parquet, a folder); honours SPARK_REMOTE and --spark-master (default "
                        "local[2]); needs pip install \"kneehip_bn[spark]\"")
    p.add_argument("--spark-master", metavar="URL", default=None,
                   help="Spark master (default: $SPARK_MASTER or local[2]; ignored with "
                        "SPARK_REMOTE)")


def _add_fit(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    fit = subparsers.add_parser(
        "fit", parents=[parents["model"], parents["json"], parents["plot"]],
        help="update the expert priors with audit data (Dirichlet update / EM)",
        description="Fit the model's expert priors to audit data: each table's expert "
                    "probabilities x its strength are Dirichlet pseudo-counts updated by the "
                    "audit (EM when values are blank or nodes unobserved). Writes a new model "
                    "file; never overwrites without --overwrite.")
    _data_args(fit, required=False)
    fit.add_argument("--counts", nargs="+", metavar="COUNTS", default=None,
                     help="fit from shared counts files (kneehip counts) instead of DATA; "
                          "several are merged")
    fit.add_argument("--strength", type=float, default=None,
                     help="equivalent sample size of every table (default: the model file's)")
    fit.add_argument("--strengths", nargs="+", metavar="NODE=N", default=[],
                     help="per-table equivalent sample sizes")
    fit.add_argument("--freeze", nargs="+", metavar="NODE", default=[],
                     help="tables kept at their expert values")
    fit.add_argument("--noisy-or", choices=["keep", "tabular"], default="keep",
                     help="keep noisy-OR tables noisy-OR (default) or fit full tables")
    _fit_em_args(fit)
    fit.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    fit.add_argument("--dataset-name", default=None, help="name recorded in the fitted model")
    fit.add_argument("--output", "-o", required=True, metavar="NEW_MODEL")
    add_overwrite(fit, "replace existing output files")
    fit.add_argument("--report", metavar="REPORT.json", default=None,
                     help="also write the fit report as JSON")
    fit.add_argument("--quiet", action="store_true", help="no progress bars")
    fit.add_argument("--on-impossible", choices=["error", "drop", "relax"], default="error",
                     help="rows the expert model rules out (they contradict a structural zero): "
                          "stop with a message naming them (default), fit the other rows and "
                          "record how many were dropped, or give each contradicted zero a "
                          "small pseudo-count (recorded in the fitted file)")
    fit.add_argument("--no-squarem", action="store_true",
                     help="plain EM steps (default: SQUAREM-accelerated, same optimum)")
    fit.add_argument("--estep", choices=["auto", "shared", "rows"], default="auto",
                     help="E-step through the shared-message pass or row by row "
                          "(default: auto; same numbers)")
    _spark_arg(fit)
    fit.set_defaults(func=cmd_fit)


def _fit_em_args(fit: argparse.ArgumentParser) -> None:
    fit.add_argument("--max-iter", type=int, default=200)
    fit.add_argument("--tol", type=float, default=1e-6,
                     help="relative change of the log-posterior at which EM stops")
    fit.add_argument("--holdout", type=float, default=0.25,
                     help="fraction of rows held out for accuracy when a working diagnosis "
                          "is recorded (0: none)")


def _add_check(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    chk = subparsers.add_parser(
        "check", parents=[parents["model"], parents["json"]],
        help="test the independencies the graph implies on audit data",
        description="Structure check: conditional independencies the graph implies among the "
                    "observed columns, tested on complete cases (G-test, Benjamini-Hochberg). "
                    "Violations hint at missing arrows.")
    _data_args(chk)
    chk.add_argument("--alpha", type=float, default=0.05, help="false discovery rate")
    chk.add_argument("--max-given", type=int, default=4,
                     help="largest conditioning set tested")
    chk.add_argument("--all", action="store_true", help="list every test, not only violations")
    chk.set_defaults(func=cmd_check)


def _add_batch(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    bat = subparsers.add_parser(
        "batch", parents=[parents["model"]],
        help="posterior of each origin for every audit row",
        description="One output row per input row, in input order, one column per origin "
                    "with P(present). Identical rows, and the parts different rows share, "
                    "are computed once; every number is written exactly (shortest form that "
                    "reads back to the same float). Teaching and research model, not a "
                    "medical device.")
    _data_args(bat, required=False)
    bat.add_argument("--output", "-o", required=True, metavar="POSTERIORS.csv")
    bat.add_argument("--targets", nargs="+", metavar="NODE", default=None,
                     help="nodes to report (default: the origins)")
    bat.add_argument("--keep", nargs="+", metavar="COLUMN", default=[],
                     help="input columns copied to the output (e.g. a patient id)")
    bat.add_argument("--on-impossible", choices=["error", "drop", "relax", "raise", "nan"],
                     default="error",
                     help="rows the model gives probability zero: stop naming them (default; "
                          "'raise' is the same), blank posteriors with a status column "
                          "('drop'), posteriors with each contradicted zero given a small "
                          "probability and status 'relaxed' ('relax'), or NaN ('nan')")
    _spark_arg(bat)
    bat.add_argument("--chunksize", type=int, default=1_000_000, help="rows read at a time")
    add_overwrite(bat, "replace an existing output")
    bat.set_defaults(func=cmd_batch)


def _add_simulate(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    sim = subparsers.add_parser(
        "simulate", parents=[parents["model"]],
        help="write a SYNTHETIC audit drawn from the model",
        description="Forward-sample patients from the model and record them as an audit "
                    "would: mechanisms dropped, cells blanked, optional working diagnosis.")
    sim.add_argument("--n", type=int, required=True, help="number of patients")
    sim.add_argument("--seed", type=int, default=None)
    sim.add_argument("--missing", type=float, default=0.0, help="fraction of blank cells")
    sim.add_argument("--mechanism", choices=["mcar", "mar"], default="mcar",
                     help="blanks completely at random, or at random given age_group")
    sim.add_argument("--diagnosis-noise", type=float, default=None,
                     help="record a working_diagnosis column with this error rate")
    sim.add_argument("--hide", nargs="+", metavar="GROUP", default=["mechanism"],
                     help="node groups not recorded (default: mechanism)")
    sim.add_argument("--output", "-o", required=True, metavar="PATH", help=".csv or .parquet")
    add_overwrite(sim, "replace an existing output")
    sim.set_defaults(func=cmd_simulate)


def _add_counts(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    cnt = subparsers.add_parser(
        "counts", parents=[parents["model"]],
        help="summarise an audit into shareable pattern counts",
        description="Distinct patterns and their counts (no patient records): fitting from "
                    "merged counts equals fitting from the pooled rows.")
    _data_args(cnt, required=False)
    cnt.add_argument("--output", "-o", required=True, metavar="COUNTS",
                     help=".json, .csv or .parquet")
    cnt.add_argument("--dataset-name", default=None)
    cnt.add_argument("--on-impossible", choices=["error", "drop", "relax"], default="error",
                     help="patterns the model rules out: stop naming them (default), leave them "
                          "out (the count is printed), or keep them for a fit with "
                          "--on-impossible relax")
    _spark_arg(cnt)
    cnt.add_argument("--min-count", type=int, default=None, metavar="K",
                     help="release no pattern with fewer than K rows: rarer patterns are "
                          "generalised (cells blanked, most common value first) until they "
                          "merge into one with K or more; recorded in the file")
    cnt.add_argument("--memory-limit", default=None, metavar="SIZE",
                     help="DuckDB's memory limit when counting files (default 1GB); it "
                          "spills to a temporary folder beyond it")
    cnt.add_argument("--threads", type=int, default=None,
                     help="DuckDB threads when counting files (default: all cores)")
    add_overwrite(cnt, "replace an existing output")
    cnt.set_defaults(func=cmd_counts)


def _add_merge_counts(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    mrg = subparsers.add_parser("merge-counts", parents=[parents["model"]],
                                help="pool counts files from several clinics")
    mrg.add_argument("counts", nargs="+", metavar="COUNTS")
    mrg.add_argument("--output", "-o", required=True, metavar="COUNTS")
    add_overwrite(mrg, "replace an existing output")
    mrg.set_defaults(func=cmd_merge_counts)


def add_commands(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    """Add the learning commands to the ``kneehip`` parser."""
    for add in (_add_fit, _add_check, _add_batch, _add_simulate, _add_counts,
                _add_merge_counts):
        add(subparsers, parents)


# ---------------------------------------------------------------------- handlers
def _mapping_arg(args: argparse.Namespace) -> Any:
    """``--mapping`` with the ``--ignore`` columns added (a mapping object), or the path."""
    ignore = list(getattr(args, "ignore", None) or [])
    if not ignore:
        return args.mapping
    base = load_mapping(args.mapping)
    if base is None:
        return load_mapping({"format": MAPPING_FORMAT, "ignore": ignore})
    base.ignore = [*base.ignore, *(c for c in ignore if c not in base.ignore)]
    return base


def _strengths(items) -> dict[str, float]:
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        try:
            out[k.strip()] = float(v)
        except ValueError:
            sep = ""
        if not sep or not k.strip():
            raise ParameterError(f"--strengths '{it}': expected NODE=N (e.g. knee_pain=50)")
    return out


def _spark_data(args: argparse.Namespace, what: str) -> Any:
    """The Spark DataFrame of ``--spark`` (None without it); DATA and --spark exclude
    each other."""
    if getattr(args, "spark", None) is None:
        if getattr(args, "data", None) is None and getattr(args, "counts", None) is None:
            raise KneeHipError(f"{what}: expected exactly one of DATA (an audit file or URL)"
                               + (", --counts FILES" if what == "fit" else "")
                               + " or --spark TABLE_OR_PATH, found neither")
        return None
    if getattr(args, "data", None) is not None or getattr(args, "counts", None) is not None:
        raise KneeHipError(f"{what}: expected one of DATA, --counts or --spark, found more "
                           "than one")
    return read_spark(args.spark, session(args.spark_master))


def cmd_fit(args: argparse.Namespace) -> int:
    check_output(args.output, args.overwrite)
    if args.report is not None:
        check_output(args.report, args.overwrite, "--report")
    check_plot_option(args)  # the outputs before the model and Spark: a bad name costs nothing
    spec = load_for_cli(args)
    sdf = _spark_data(args, "fit")
    if sdf is None and (args.data is None) == (args.counts is None):
        raise KneeHipError("fit: expected exactly one of DATA (an audit file or URL) or "
                           f"--counts FILES, found {'both' if args.data else 'neither'}")
    fitter = PriorFitter(
        model=spec, strength=args.strength, strengths=_strengths(args.strengths),
        freeze=args.freeze, noisy_or=args.noisy_or, max_iter=args.max_iter, tol=args.tol,
        progress=not args.quiet and sys.stderr.isatty(), holdout=args.holdout, seed=args.seed,
        accelerate=not args.no_squarem, estep=args.estep, on_impossible=args.on_impossible,
        mapping=_mapping_arg(args), dataset_name=args.dataset_name, table=args.table,
        sql=args.sql)  # holdout: the held-out evaluation is asked for (--holdout, default 0.25)
    data = sdf if sdf is not None else args.counts if args.counts is not None else args.data
    fitter.fit(data)
    rep = fitter.report_
    fig = None
    if args.plot:  # drawn before anything is written: a failure leaves no output behind
        import matplotlib

        matplotlib.use("Agg")
        fig = rep.plot()
    fitter.save(args.output, overwrite=args.overwrite)
    if args.report:
        rep.to_json(args.report, overwrite=args.overwrite)
    if fig is not None:
        save_figure(fig, args.plot, overwrite=args.overwrite, dpi=110)
    if args.json:
        emit_json(rep.to_dict() | {"output": args.output})
    else:
        print(rep)
        print(f"\nwrote {args.output}" + (f", {args.report}" if args.report else "")
              + (f", {args.plot}" if args.plot else ""))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    import pandas as pd

    spec = load_for_cli(args)
    res = check_structure(args.data, spec, _mapping_arg(args), alpha=args.alpha,
                          max_given=args.max_given, table=args.table, sql=args.sql)
    bad = res[res["violated"]]
    if args.json:
        emit_json({"rows": res.attrs.get("rows"), "alpha": args.alpha, "tests": len(res),
                   "violated": len(bad),
                   "skipped_large_given": res.attrs.get("skipped_large_given", 0),
                   "results": (res if args.all else bad).to_dict(orient="records")})
        return 0
    print(f"Structure check: {len(res)} implied independencies among observed columns tested "
          f"on {res.attrs.get('rows')} rows (complete cases per test, G-test, "
          f"Benjamini-Hochberg FDR {args.alpha:g}); {len(bad)} violated"
          + (f"; {res.attrs['skipped_large_given']} skipped (conditioning set > "
             f"{args.max_given})" if res.attrs.get("skipped_large_given") else ""))
    show = res if args.all else bad
    if len(show):
        with pd.option_context("display.max_rows", None, "display.width", 200,
                               "display.max_colwidth", 50):
            print(show[["x", "y", "given", "n_rows", "g_stat", "dof", "q_value", "cmi",
                        "cramers_v", "violated"]].to_string(index=False,
                                                             float_format=lambda v: f"{v:.4g}"))
        if len(bad):
            print("\nViolations are hints, not proof: each says the two columns are associated "
                  "beyond what the graph allows (a missing arrow or common cause).")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    table_format(args.output)
    check_output(args.output, args.overwrite)
    keep_freed_memory()  # this process ends after the command
    spec = load_for_cli(args)
    sdf = _spark_data(args, "batch")
    path, n = write_batch_posteriors(
        sdf if sdf is not None else args.data, args.output, spec, _mapping_arg(args), args.targets,
        on_impossible=args.on_impossible, keep=args.keep, table=args.table, sql=args.sql,
        overwrite=args.overwrite, chunksize=args.chunksize,
        progress=sys.stderr.isatty())
    if n < 0:
        print(f"wrote {path} (a folder of part files written by Spark; one row per input row, "
              "matched by the --keep columns)")
    else:
        print(f"wrote {path} ({n} rows)")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    table_format(args.output)
    check_output(args.output, args.overwrite)
    spec = load_for_cli(args)
    df = simulate_audit(args.n, seed=args.seed, missing=args.missing, mechanism=args.mechanism,
                        diagnosis_noise=args.diagnosis_noise, model=spec, hidden=args.hide)
    write_table(df, args.output, overwrite=args.overwrite)
    print(f"wrote {args.output} ({len(df)} rows, {df.shape[1]} columns; SYNTHETIC data drawn "
          f"from model '{spec.name}', seed {args.seed})")
    return 0


def _counts_format(path: str) -> None:
    if not os.fspath(path).lower().endswith((".json", ".csv", ".parquet", ".pq")):
        raise ParameterError(f"--output {path}: expected a .json, .csv or .parquet file name, "
                             f"found '{os.path.splitext(path)[1] or 'no extension'}'")


def cmd_counts(args: argparse.Namespace) -> int:
    _counts_format(args.output)
    check_output(args.output, args.overwrite)
    spec = load_for_cli(args)
    sdf = _spark_data(args, "counts")
    c = audit_counts(args.data if sdf is None else sdf, spec, _mapping_arg(args),
                     table=args.table, sql=args.sql, dataset=args.dataset_name,
                     progress=sys.stderr.isatty(), memory_limit=args.memory_limit,
                     threads=args.threads)
    c, bad = screen_counts(c, spec, args.on_impossible)
    if args.min_count is not None:  # generalised after screening: only possible patterns merge
        c = generalise(c, args.min_count)
    c.save(args.output, overwrite=args.overwrite)
    print(f"wrote {args.output}: {c.n_rows} rows as {c.patterns.shape[0]} distinct patterns over "
          f"{len(c.columns)} columns (no patient-level records)")
    _print_privacy(c)
    if bad is not None:
        what = ("left out" if args.on_impossible == "drop" else
                "kept for a fit with --on-impossible relax")
        print(f"{_n(bad.rows)} row(s) in {bad.patterns.size} pattern(s) the model rules out were "
              f"{what}: " + "; ".join(map(str, bad.entries[:4])))
    return 0


def _n(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _print_privacy(c: Any) -> None:
    line = privacy_summary(c)
    if line:
        print(line)


def cmd_merge_counts(args: argparse.Namespace) -> int:
    _counts_format(args.output)
    check_output(args.output, args.overwrite)
    spec = load_for_cli(args)
    c = merge_counts([read_counts(p, spec) for p in args.counts])
    c.save(args.output, overwrite=args.overwrite)
    print(f"wrote {args.output}: {c.n_rows} rows from {len(args.counts)} files "
          f"({', '.join(c.datasets)}), {c.patterns.shape[0]} distinct patterns")
    _print_privacy(c)
    return 0
