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
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

DISCLAIMER = (
    "Teaching and research model, NOT a medical device: do not use it to diagnose or "
    "treat anyone. Its numbers come from published studies and expert judgement (each with "
    "its source in the model file); they describe populations, not a patient."
)

#: modules that add subcommands (``register(subparsers, parents)``)
COMMAND_MODULES = ["kneehip_bn.cli_learn", "kneehip_bn.cli_teach"]
COMMAND_MODULES.append("kneehip_bn.cli_serve")  # kneehip serve: the classroom page


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
    from .spec import apply_overrides, load_spec

    spec = load_spec(args.model)
    if getattr(args, "overrides", None):
        spec = apply_overrides(spec, args.overrides)
    return spec


def emit_json(obj: Any) -> None:
    """Print JSON (NaN/inf become null)."""
    print(json.dumps(_clean(obj), indent=2))


def _clean(o: Any) -> Any:
    import math

    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if hasattr(o, "item") and callable(o.item):
        return _clean(o.item())
    return o


# ---------------------------------------------------------------------- commands
def cmd_diagnose(args: argparse.Namespace) -> int:
    from .queries import _diagnose_rows, diagnosis_dict, format_diagnosis

    spec = load_for_cli(args)
    rows = _diagnose_rows(args.evidence, args.do, spec, None, None)  # no pandas: fast start
    if args.json:
        emit_json(diagnosis_dict(*rows))
    else:
        print(format_diagnosis(*rows))
        print()
        print("odds x = posterior odds / prior odds.  " + DISCLAIMER)
    if args.plot:
        from .queries import diagnose

        _plot_diagnosis(spec, diagnose(args.evidence, do=args.do, model=spec), args.plot)
    return 0


def _plot_diagnosis(spec: Any, dx: Any, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .engine import get_engine
    from .plots import draw_network, plot_origins

    fig = plt.figure(figsize=(18, 11))
    gs = fig.add_gridspec(1, 2, width_ratios=[3.2, 1])
    post = get_engine(spec).posterior(dx.evidence, do=dx.do or None)
    draw_network(spec, posteriors=post, evidence={**dx.evidence, **dx.do}, ax=fig.add_subplot(gs[0]))
    plot_origins(dx, ax=fig.add_subplot(gs[1]))
    fig.savefig(path, bbox_inches="tight", dpi=120)
    plt.close(fig)
    print(f"figure written to {path}", file=sys.stderr)


def cmd_query(args: argparse.Namespace) -> int:
    from .queries import query

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
    from .readwrite import export_network

    spec = load_for_cli(args)
    p = export_network(spec, args.output, format=args.format, overwrite=args.overwrite)
    print(f"wrote {p}")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .plots import draw_network, save_figure

    spec = load_for_cli(args)
    if os.path.exists(args.output) and not args.overwrite:
        raise FileExistsError(f"{args.output} exists: pass --overwrite to replace it")
    ax = draw_network(spec, title=spec.title or spec.name)
    save_figure(ax, args.output)
    print(f"wrote {args.output}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .network import build_network
    from .spec import load_spec

    path = args.model_file or args.model
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
    from .spec import SHIPPED_MODELS, load_spec, shipped_model_path

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
    from . import __version__

    p.add_argument("--version", action="version", version=f"kneehip_bn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    par = _common_parents()

    d = sub.add_parser("diagnose", parents=[par["model"], par["evidence"], par["json"], par["plot"]],
                       help="rank the origins given findings",
                       description="How likely is each origin given these findings? " + DISCLAIMER)
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


def _print_other_problems(exc: Exception) -> None:
    """After the first line, list the other errors an audit report holds (one per line)."""
    report = getattr(exc, "report", None)
    errors = getattr(report, "errors", None)
    if errors is None or len(errors) < 2:
        return
    for msg in list(errors["message"])[1:]:
        print(f"  also: {msg}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kneehip`` command; returns the exit status."""
    from .errors import KneeHipError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KneeHipError as exc:
        if os.environ.get("KNEEHIP_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        _print_other_problems(exc)
        return 1
    except (FileExistsError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        if os.environ.get("KNEEHIP_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except CLIError as exc:
        print(f"kneehip: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
