"""``kneehip`` commands on the model itself: diagnose, query, export, graph, validate,
sources, models.

Each handler parses, calls the public API and prints the result (``--json``: its dict).

Examples (shell)::

    kneehip diagnose -e knee_pain=present -e hip_pain=present --plot dx.png
    kneehip query hip_pain -e knee_osteoarthritis=present --json
    kneehip validate my_model.yaml
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from kneehip_bn._util.text import DISCLAIMER
from kneehip_bn.cli._common import (
    add_overwrite,
    check_plot_option,
    emit_json,
    load_for_cli,
    save_plot,
)
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.queries import (
    diagnose,
    diagnosis_dict,
    diagnosis_rows,
    format_diagnosis,
    query,
)
from kneehip_bn.model.network import validation_summary
from kneehip_bn.model.readwrite import export_network
from kneehip_bn.model.spec import SHIPPED_MODELS, shipped_model_path
from kneehip_bn.model.yamlio import load_spec
from kneehip_bn.teaching.plots import draw_network, plot_origins, save_figure

__all__ = ["add_commands"]


# ---------------------------------------------------------------------- commands
def cmd_diagnose(args: argparse.Namespace) -> int:
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
        _plot_diagnosis(spec, diagnose(args.evidence, do=args.do, model=spec), args.plot,
                        args.overwrite)
    return 0


def _plot_diagnosis(spec: Any, dx: Any, path: str, overwrite: bool = False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(18, 11))
    gs = fig.add_gridspec(1, 2, width_ratios=[3.2, 1])
    post = get_engine(spec).posterior(dx.evidence, do=dx.do or None)
    draw_network(spec, posteriors=post, evidence={**dx.evidence, **dx.do}, ax=fig.add_subplot(gs[0]))
    plot_origins(dx, ax=fig.add_subplot(gs[1]))
    save_plot(fig, path, overwrite, dpi=120)


def cmd_query(args: argparse.Namespace) -> int:
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
    spec = load_for_cli(args)
    p = export_network(spec, args.output, format=args.format, overwrite=args.overwrite)
    print(f"wrote {p}")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    check_plot_option(args, "output")
    import matplotlib

    matplotlib.use("Agg")
    spec = load_for_cli(args)
    ax = draw_network(spec, title=spec.title or spec.name)
    save_figure(ax, args.output, overwrite=args.overwrite)
    print(f"wrote {args.output}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    path = args.model_file if args.model_file is not None else args.model
    msg = validation_summary(load_spec(path))
    if args.json:
        emit_json(msg)
    else:
        print(f"{msg['file']}: valid ({msg['nodes']} nodes, {msg['edges']} edges, "
              f"{msg['numbers']} numbers: "
              + ", ".join(f"{v} {k}" for k, v in sorted(msg["sources"].items()))
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
    rows = []
    for name in SHIPPED_MODELS:
        spec = load_spec(name)
        groups = dict(Counter(node.group for node in spec.nodes.values()))
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
def add_commands(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    """Add the model commands to the ``kneehip`` parser."""
    par = parents
    d = sub.add_parser("diagnose", parents=[par["model"], par["evidence"], par["json"], par["plot"]],
                       help="rank the origins given findings",
                       description="How likely is each origin given these findings? " + DISCLAIMER)
    add_overwrite(d)
    d.set_defaults(func=cmd_diagnose)

    q = sub.add_parser("query", parents=[par["model"], par["evidence"], par["json"]],
                       help="one node's distribution under evidence and/or do()")
    q.add_argument("node", help="the node to query")
    q.set_defaults(func=cmd_query)

    x = sub.add_parser("export", parents=[par["model"]], help="write BIF/XMLBIF/NET/XDSL")
    x.add_argument("--format", choices=["bif", "xmlbif", "net", "xdsl"], default=None,
                   help="default: from the output file's extension")
    x.add_argument("--output", "-o", required=True, metavar="PATH")
    add_overwrite(x, "replace an existing file")
    x.set_defaults(func=cmd_export)

    g = sub.add_parser("graph", parents=[par["model"]], help="draw the layered network")
    g.add_argument("--output", "-o", required=True, metavar="PATH", help="model.png or model.svg")
    add_overwrite(g, "replace an existing output")
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
