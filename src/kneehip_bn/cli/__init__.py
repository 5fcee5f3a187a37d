"""The ``kneehip`` command: parse, call the public API, print.

Every command takes ``--model PATH`` (default: the shipped model) and ``--set`` overrides
for one run. Errors print one readable line (``error: ...``) and exit with status 1;
usage errors exit with status 2. Set ``KNEEHIP_DEBUG=1`` to see a traceback.

Other modules add commands through :data:`COMMAND_MODULES`: each has
``register(subparsers, parents)`` and keeps heavy imports inside its handlers so that
``kneehip diagnose`` starts fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from kneehip_bn._util.jsonclean import json_clean
from kneehip_bn._util.text import DISCLAIMER

#: modules that add subcommands (``register(subparsers, parents)``)
COMMAND_MODULES = ["kneehip_bn.cli.learn", "kneehip_bn.cli.teach", "kneehip_bn.cli.causal"]
COMMAND_MODULES.append("kneehip_bn.cli.serve")  # kneehip serve: the classroom page


class CLIError(Exception):
    """A problem with the command line that argparse cannot see (exit status 2)."""


def _common_parents() -> dict[str, argparse.ArgumentParser]:
    model = argparse.ArgumentParser(add_help=False)
    g = model.add_argument_group("model")
    g.add_argument("--model", metavar="PATH|NAME", default=None,
                   help="model file, or a shipped model's name (knee_hip, the default; "
                        "knee_hip_basic); `kneehip models` lists them")
    g.add_argument("--set", dest="overrides", metavar="EDIT", action="append", default=[],
                   help="change a number for this run: NODE=P, NODE.STATE=P, "
                        "NODE[PARENT=STATE].STATE=P, NODE.leak=P, NODE.link.PARENT[:STATE]=P "
                        "(repeatable)")
    evidence = argparse.ArgumentParser(add_help=False)
    e = evidence.add_argument_group("evidence")
    e.add_argument("-e", "--evidence", metavar="NAME=STATE", action="append", default=[],
                   help="an observed finding, test or context (repeatable)")
    e.add_argument("--do", metavar="NAME=STATE", action="append", default=[],
                   help="an intervention: set NAME to STATE by graph surgery (repeatable)")
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="print machine-readable JSON")
    plot = argparse.ArgumentParser(add_help=False)
    plot.add_argument("--plot", metavar="PATH", default=None,
                      help="also save a figure (PNG, SVG or PDF by extension)")
    return {"model": model, "evidence": evidence, "json": out, "plot": plot}


def load_for_cli(args: argparse.Namespace) -> Any:
    """The ModelSpec named by ``--model`` with ``--set`` overrides applied."""
    from kneehip_bn.model.spec import apply_overrides, load_spec

    spec = load_spec(args.model)
    if getattr(args, "overrides", None):
        spec = apply_overrides(spec, args.overrides)
    return spec


def emit_json(obj: Any) -> None:
    """Print JSON (NaN/inf become null)."""
    print(json.dumps(json_clean(obj), indent=2))


# ---------------------------------------------------------------------- commands
def cmd_diagnose(args: argparse.Namespace) -> int:
    from kneehip_bn.inference.queries import diagnosis_dict, diagnosis_rows, format_diagnosis

    check_plot_option(args)
    spec = load_for_cli(args)
    rows = diagnosis_rows(args.evidence, args.do, spec, None, None)  # no pandas: fast start
    if args.json:
        emit_json(diagnosis_dict(*rows))
    else:
        print(format_diagnosis(*rows))
        print()
        print("odds x = posterior odds / prior odds.  " + DISCLAIMER)
    if args.plot:
        from kneehip_bn.inference.queries import diagnose

        _plot_diagnosis(spec, diagnose(args.evidence, do=args.do, model=spec), args.plot,
                        args.overwrite)
    return 0


def check_plot_option(args: argparse.Namespace, option: str = "plot") -> None:
    """``--plot`` (or another figure option): a known figure extension, and a new file
    unless ``--overwrite``, checked before any work so that nothing is half done."""
    path = getattr(args, option, None)
    if path is None:
        return
    from kneehip_bn._util.files import check_new_output
    from kneehip_bn.teaching.plots import figure_format

    figure_format(path, "--" + option if option == "plot" else "--output")
    check_new_output(path, getattr(args, "overwrite", False))


def _plot_diagnosis(spec: Any, dx: Any, path: str, overwrite: bool = False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kneehip_bn.inference.engine import get_engine
    from kneehip_bn.teaching.plots import draw_network, plot_origins, save_figure

    fig = plt.figure(figsize=(18, 11))
    gs = fig.add_gridspec(1, 2, width_ratios=[3.2, 1])
    post = get_engine(spec).posterior(dx.evidence, do=dx.do or None)
    draw_network(spec, posteriors=post, evidence={**dx.evidence, **dx.do}, ax=fig.add_subplot(gs[0]))
    plot_origins(dx, ax=fig.add_subplot(gs[1]))
    save_figure(fig, path, overwrite=overwrite, dpi=120)
    print(f"figure written to {path}", file=sys.stderr)


def cmd_query(args: argparse.Namespace) -> int:
    from kneehip_bn.inference.queries import query

    spec = load_for_cli(args)
    s = query(args.node, args.evidence, do=args.do, model=spec)
    if args.json:
        emit_json({"variable": args.node, "distribution": {k: float(v) for k, v in s.items()}})
    else:
        cond = []
        if args.evidence:
            cond.append(", ".join(args.evidence))
        if args.do:
            cond.append(", ".join(f"do({d})" for d in args.do))
        print(f"P({args.node}" + (" | " + "; ".join(cond) if cond else "") + ")")
        for k, v in s.items():
            print(f"  {k:<16}{v:8.4f}  " + "#" * round(v * 40))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from kneehip_bn.model.readwrite import export_network

    spec = load_for_cli(args)
    p = export_network(spec, args.output, format=args.format, overwrite=args.overwrite)
    print(f"wrote {p}")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from kneehip_bn.teaching.plots import draw_network, save_figure

    check_plot_option(args, "output")
    spec = load_for_cli(args)
    ax = draw_network(spec, title=spec.title or spec.name)
    save_figure(ax, args.output, overwrite=args.overwrite)
    print(f"wrote {args.output}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from kneehip_bn.model.network import build_network
    from kneehip_bn.model.spec import load_spec

    path = args.model_file if args.model_file is not None else args.model
    spec = load_spec(path)
    model = build_network(spec)
    n_num = len(spec.provenance())
    kinds: dict[str, int] = {}
    for rec in spec.provenance():
        kinds[rec["source_kind"]] = kinds.get(rec["source_kind"], 0) + 1
    msg = {
        "file": spec.path, "valid": True, "nodes": len(spec.nodes),
        "edges": model.number_of_edges(), "numbers": n_num, "sources": kinds,
    }
    if args.json:
        emit_json(msg)
    else:
        print(f"{spec.path}: valid ({len(spec.nodes)} nodes, {model.number_of_edges()} edges, "
              f"{n_num} numbers: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
              + "); pgmpy check_model() passed")
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    import pandas as pd

    spec = load_for_cli(args)
    df = pd.DataFrame(spec.provenance())
    if args.node:
        spec.node(args.node)
        df = df[df["node"] == args.node]
    if args.json:
        emit_json(df.to_dict(orient="records"))
    else:
        with pd.option_context("display.max_rows", None, "display.width", 200,
                               "display.max_colwidth", 60):
            print(df[["node", "what", "given", "value", "source", "source_text"]]
                  .to_string(index=False))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from kneehip_bn.model.spec import SHIPPED_MODELS, load_spec, shipped_model_path

    rows = []
    for name in SHIPPED_MODELS:
        spec = load_spec(name)
        groups: dict[str, int] = {}
        for node in spec.nodes.values():
            groups[node.group] = groups.get(node.group, 0) + 1
        rows.append({"name": name, "title": spec.title, "nodes": len(spec.nodes),
                     "groups": groups, "default": name == SHIPPED_MODELS[0],
                     "path": str(shipped_model_path(name))})
    if args.json:
        emit_json(rows)
        return 0
    for r in rows:
        mark = " (default)" if r["default"] else ""
        counts = ", ".join(f"{n} {g}" for g, n in r["groups"].items())
        print(f"{r['name']}{mark}: {r['title']}\n    {r['nodes']} nodes ({counts})")
    print("Use one with --model NAME, or in Python kb.load_spec(NAME). " + DISCLAIMER)
    return 0


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(
        prog="kneehip",
        description="Probabilistic reasoning about co-occurring knee and hip pain with a "
                    "Bayesian network built from published evidence.\n\n" + DISCLAIMER,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: kneehip diagnose -e knee_pain=present -e hip_pain=present "
               "-e knee_effusion=present",
    )
    from kneehip_bn._util.version import __version__

    p.add_argument("--version", action="version", version=f"kneehip_bn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    par = _common_parents()

    d = sub.add_parser("diagnose", parents=[par["model"], par["evidence"], par["json"], par["plot"]],
                       help="rank the origins given findings",
                       description="How likely is each origin given these findings? " + DISCLAIMER)
    d.add_argument("--overwrite", action="store_true", help="replace an existing --plot file")
    d.set_defaults(func=cmd_diagnose)

    q = sub.add_parser("query", parents=[par["model"], par["evidence"], par["json"]],
                       help="one node's distribution under evidence and/or do()")
    q.add_argument("node", help="the node to query")
    q.set_defaults(func=cmd_query)

    x = sub.add_parser("export", parents=[par["model"]], help="write BIF/XMLBIF/NET/XDSL")
    x.add_argument("--format", choices=["bif", "xmlbif", "net", "xdsl"], default=None,
                   help="default: from the output file's extension")
    x.add_argument("--output", "-o", required=True, metavar="PATH")
    x.add_argument("--overwrite", action="store_true", help="replace an existing file")
    x.set_defaults(func=cmd_export)

    g = sub.add_parser("graph", parents=[par["model"]], help="draw the layered network")
    g.add_argument("--output", "-o", required=True, metavar="PATH", help="model.png or model.svg")
    g.add_argument("--overwrite", action="store_true")
    g.set_defaults(func=cmd_graph)

    v = sub.add_parser("validate", parents=[par["json"]], help="check a model file")
    v.add_argument("model_file", nargs="?", default=None, metavar="MODEL",
                   help="model file (default: the shipped model)")
    v.add_argument("--model", default=None, help=argparse.SUPPRESS)
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("sources", parents=[par["model"], par["json"]],
                       help="list every number with its source")
    s.add_argument("--node", default=None)
    s.set_defaults(func=cmd_sources)

    m = sub.add_parser("models", parents=[par["json"]], help="list the shipped models")
    m.set_defaults(func=cmd_models)

    for modname in COMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name != modname:
                raise
            continue
        mod.register(sub, par)
    return p


#: largest ``simulate --n`` (about 0.3 GB of memory per million patients)
MAX_SIMULATE_ROWS = 10_000_000
#: option -> (smallest, largest, what it is) for whole-number options of every command
INT_OPTIONS: dict[str, tuple[int, int, str]] = {
    "seed": (0, 2**64 - 1, "a random seed (a whole number from 0 to 2**64 - 1)"),
    "n": (1, MAX_SIMULATE_ROWS, f"a number of patients from 1 to {MAX_SIMULATE_ROWS:,} "
                                "(larger synthetic audits: several runs with other seeds)"),
    "chunksize": (1, 100_000_000, "a number of rows read at a time, from 1 to 100,000,000"),
    "draws": (0, 10_000_000, "a number of draws from 0 to 10,000,000"),
    "simulate": (0, 10_000_000, "a number of simulated cases from 0 to 10,000,000"),
    "top": (1, 1_000_000, "a positive number of rows to show"),
    "max_iter": (1, 1_000_000, "a positive number of EM iterations"),
    "max_given": (0, 64, "a conditioning-set size from 0 to 64"),
}
#: option -> (low, high, low included, high included, what it is) for number options
FLOAT_OPTIONS: dict[str, tuple[float, float, bool, bool, str]] = {
    "alpha": (0.0, 1.0, False, False, "a false discovery rate with 0 < alpha < 1"),
    "holdout": (0.0, 1.0, True, False, "a fraction of rows held out, 0 <= holdout < 1"),
    "missing": (0.0, 1.0, True, True, "a fraction of blank cells from 0 to 1"),
    "diagnosis_noise": (0.0, 1.0, True, True, "an error rate from 0 to 1"),
    "tol": (0.0, float("inf"), False, False, "a positive tolerance"),
    "strength": (0.0, float("inf"), False, False, "a positive equivalent sample size"),
}
_OPTION_NAMES = {"overrides": "--set", "evidence": "-e/--evidence", "data": "DATA",
                 "model_file": "MODEL", "node": "NODE"}


def _option(dest: str, args: argparse.Namespace) -> str:
    if dest == "node" and getattr(args, "command", None) != "query":
        return "--node"
    return _OPTION_NAMES.get(dest, "--" + dest.replace("_", "-"))


def check_options(args: argparse.Namespace) -> None:
    """Numbers and strings checked at the door, for every command, before any work.

    Seeds, sizes, fractions and rates must be in range (:data:`INT_OPTIONS`,
    :data:`FLOAT_OPTIONS`), numbers finite, and no option or argument an empty string;
    a problem is a :class:`~kneehip_bn.errors.ParameterError` naming the option.
    """
    import math

    from kneehip_bn.errors import ParameterError

    for dest, value in vars(args).items():
        if dest in ("func", "command") or value is None or isinstance(value, bool):
            continue
        opt = _option(dest, args)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and not v.strip():
                raise ParameterError(f"{opt}: expected a value, found an empty string")
        if dest in INT_OPTIONS and isinstance(value, int):
            lo, hi, what = INT_OPTIONS[dest]
            if not lo <= value <= hi:
                found = str(value) if len(str(value)) <= 30 else f"a {len(str(value))}-digit number"
                raise ParameterError(f"{opt}: expected {what}, found {found}")
        if dest in FLOAT_OPTIONS and isinstance(value, (int, float)):
            lo, hi, lo_in, hi_in, what = FLOAT_OPTIONS[dest]
            ok = math.isfinite(value) and (lo <= value if lo_in else lo < value) and \
                (value <= hi if hi_in else value < hi)
            if not ok:
                raise ParameterError(f"{opt}: expected {what}, found {value:g}")


def _print_other_problems(exc: Exception) -> None:
    """After the first line, list the other errors an audit report holds (one per line)."""
    report = getattr(exc, "report", None)
    errors = getattr(report, "errors", None)
    if errors is None or len(errors) < 2:
        return
    for msg in list(errors["message"])[1:]:
        print(f"  also: {msg}", file=sys.stderr)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that Python's flush at exit cannot fail again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):  # pragma: no cover (no real stdout)
        pass


def _error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kneehip`` command; returns the exit status.

    Every failure is one ``error: ...`` line on stderr and exit status 1 (usage errors:
    argparse's message and status 2). Stdout closed early (``kneehip sources | head -1``)
    ends quietly with status 141 as other Unix tools do; a full disk on stdout is one
    line; SIGINT, SIGTERM and SIGHUP remove any temporary output file and exit with 130,
    143 and 129. ``KNEEHIP_DEBUG=1`` shows the traceback instead.
    """
    from kneehip_bn._util.files import (
        Terminated,
        install_signal_handlers,
        remove_leftovers,
        restore_signal_handlers,
    )
    from kneehip_bn.errors import KneeHipError

    old_handlers = install_signal_handlers()
    debug = bool(os.environ.get("KNEEHIP_DEBUG"))
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        check_options(args)
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a broken pipe or full disk shows here, not at exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        if debug:
            raise
        return 141
    except KeyboardInterrupt as exc:
        if debug:
            raise
        if isinstance(exc, Terminated):
            print(f"interrupted ({exc}): no output written", file=sys.stderr)
            return 128 + exc.signum
        print("interrupted: no output written", file=sys.stderr)
        return 130
    except KneeHipError as exc:
        if debug:
            raise
        code = _error(str(exc))
        _print_other_problems(exc)
        return code
    except OSError as exc:
        if debug:
            raise
        if exc.errno == errno.EPIPE:
            _quiet_stdout()
            return 141
        name = exc.filename if exc.filename is not None else None
        if name is None and exc.errno == errno.ENOSPC:
            _quiet_stdout()
            return _error("cannot write the output: no space left on the device (standard "
                          "output?)")
        why = exc.strerror or str(exc)
        return _error(f"{name}: {why}" if name is not None else why)
    except CLIError as exc:
        print(f"kneehip: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        if debug:
            raise
        return _error("out of memory: the model or the data is too large for this machine "
                      "(see KNEEHIP_MAX_TABLE_BYTES and --chunksize)")
    except RecursionError:
        if debug:
            raise
        return _error("the input is nested too deeply to process")
    except Exception as exc:  # a bug: still one line, and the way to see more
        if debug:
            raise
        return _error(f"unexpected {type(exc).__name__}: {str(exc)[:300]} (this is a bug in "
                      "kneehip_bn: please report it; KNEEHIP_DEBUG=1 shows the traceback)")
    finally:
        remove_leftovers()
        restore_signal_handlers(old_handlers)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
