"""Teaching commands of ``kneehip``: explain, what-if, next-test, sensitivity, conflict.

Added to the parser by :mod:`kneehip_bn.cli` through :func:`add_commands`. Heavy
third-party imports (pandas, matplotlib) stay inside the handlers so that other commands
start fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kneehip_bn._util.text import DISCLAIMER
from kneehip_bn.causal.attribution import shapley
from kneehip_bn.cli._common import (
    add_overwrite,
    check_plot_option,
    emit_json,
    load_for_cli,
    pyplot,
    save_plot,
)
from kneehip_bn.errors import EvidenceError
from kneehip_bn.inference.queries import parse_assignments
from kneehip_bn.teaching.common import flags_json
from kneehip_bn.teaching.conflict import conflict
from kneehip_bn.teaching.explain import explain
from kneehip_bn.teaching.next_test import next_best_test
from kneehip_bn.teaching.plots import (
    draw_network,
    plot_conflict,
    plot_credible_intervals,
    plot_explanation,
    plot_next_test,
    plot_origins,
    plot_tornado,
    plot_what_if,
)
from kneehip_bn.teaching.robustness import credible_intervals, sensitivity
from kneehip_bn.teaching.what_if import parse_scenario, what_if

__all__ = ["add_commands"]

RAW = argparse.RawDescriptionHelpFormatter


_WHAT_IF_HELP = """\
Compare scenarios side by side with the base case (the -e/--do findings).

A scenario is  NAME:ACTION=ITEMS[;ACTION=ITEMS...]  where ACTION is
  add=NODE=STATE[,NODE=STATE]      observe more findings (or change an observed state)
  remove=NODE[,NODE]               forget findings of the base case
  context=NODE=STATE[,...]         change a context node (age_group, activity_level)
  do=NODE=STATE[,...]              intervene: set NODE by graph surgery ("if treated")
  set=EDIT[,EDIT]                  edit a number for this scenario (--set forms, e.g.
                                   knee_pain.leak=0.1 or knee_osteoarthritis[age_group=60_plus].present=0.4)
Actions apply in the order remove, context, add, do, set. Quote each scenario for the shell.

An observed target shows 1 (or 0); remove it in a scenario to ask how likely it would be.
"""

_WHAT_IF_EPILOG = """\
examples:
  kneehip what-if -e knee_pain=present -e hip_pain=present \\
      --scenario "treated:do=knee_osteoarthritis=absent;remove=hip_pain" \\
      --scenario "no_knee_problem:add=knee_osteoarthritis=absent;remove=hip_pain" \\
      --scenario "plus_effusion:add=knee_effusion=present" --target hip_pain --target knee_osteoarthritis
  kneehip what-if -e hip_pain=present --scenario "older:context=age_group=60_plus" --json
"""


def _command(subparsers: Any, parents: dict[str, argparse.ArgumentParser], name: str,
             func: Any, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """A teaching command: the model, evidence, --json, --plot and --overwrite options, the
    disclaimer under its description, ``func`` as its handler."""
    p = subparsers.add_parser(
        name, parents=[parents["model"], parents["evidence"], parents["json"], parents["plot"]],
        formatter_class=RAW, help=help, description=description + "\n\n" + DISCLAIMER,
        epilog=epilog)
    add_overwrite(p)
    p.set_defaults(func=func)
    return p


def _add_explain(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    ex = _command(
        subparsers, parents, "explain", cmd_explain,
        help="why the model ranks the origins: weight of evidence of each finding, paths",
        description="For each finding, how much it moved each origin (weight of evidence: "
                    "ln odds with all findings - ln odds without this one), the causal path "
                    "that carries it, and a plain-language summary.",
        epilog="example: kneehip explain -e knee_pain=present -e hip_pain=present "
               "-e knee_effusion=present --plot why.png")
    ex.add_argument("--origin", action="append", default=None, metavar="NODE",
                    help="explain only these origins (repeatable; default: all)")
    ex.add_argument("--shapley", action="store_true",
                    help="also the Shapley value of each finding on each origin's log-odds")


def _add_what_if(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    wi = _command(
        subparsers, parents, "what-if", cmd_what_if,
        help="compare scenarios side by side",
        description=_WHAT_IF_HELP.rstrip("\n"), epilog=_WHAT_IF_EPILOG)
    wi.add_argument("--scenario", "-s", action="append", default=[],
                    metavar="NAME:ACTION=ITEMS[;...]", help="a scenario (repeatable; see above)")
    wi.add_argument("--target", "-t", action="append", default=None, metavar="NODE[=STATE]",
                    help="rows of the table (repeatable; default: the origins)")


def _add_next_test(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    nt = _command(
        subparsers, parents, "next-test", cmd_next_test,
        help="which finding or test would tell the most about the origins",
        description="Rank unobserved findings and tests by expected information gain: the "
                    "mutual information (bits) between the test and the joint state of the "
                    "origins given the current findings. --json prints a list of "
                    '{"finding": NAME, "expected_information_gain": BITS, ...}, highest '
                    "first.",
        epilog="example: kneehip next-test -e knee_pain=present -e hip_pain=present "
               "--cost fadir_test=2 --json")
    nt.add_argument("--candidate", "-c", action="append", default=None, metavar="NODE",
                    help="only these candidates (repeatable; default: every unobserved "
                         "finding and test)")
    nt.add_argument("--cost", action="append", default=[], metavar="NODE=COST",
                    help="cost of a candidate (default 1) for the gain-per-cost column")
    nt.add_argument("--top", type=int, default=None, metavar="N",
                    help="show only the N best (text output and plot)")


def _add_sensitivity(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    se = _command(
        subparsers, parents, "sensitivity", cmd_sensitivity,
        help="how much each number of the model moves a posterior (tornado chart)",
        description="One-way sensitivity of P(target | findings) to every number of the "
                    "model (table entries, noisy-OR links and leaks): the derivative and the "
                    "posterior at both ends of each number's plausible range (its 95% Beta "
                    "interval given the table's strength, or +/- a fraction). --draws N also "
                    "draws every table from its uncertainty and reports each origin's "
                    "interval.",
        epilog="example: kneehip sensitivity --target knee_osteoarthritis -e knee_pain=present "
               "--top 10 --plot tornado.svg")
    se.add_argument("--target", default=None, metavar="NODE",
                    help="the node whose posterior is examined (default: the leading diagnosis)")
    se.add_argument("--state", default=None, help="its state (default present/positive)")
    se.add_argument("--top", type=int, default=15, metavar="N",
                    help="show the N most influential numbers (default 15)")
    se.add_argument("--interval", default="beta", metavar="beta|FRACTION",
                    help="range of each number: 'beta' (default) or a fraction such as 0.2")
    se.add_argument("--draws", type=int, default=0, metavar="N",
                    help="also report origin intervals from N parameter draws")
    se.add_argument("--seed", type=int, default=0, help="random seed of --draws")


def _add_conflict(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    co = _command(
        subparsers, parents, "conflict", cmd_conflict,
        help="are the findings atypical or contradictory? (Jensen's conflict measure)",
        description="conf(e) = log2( prod_i P(e_i) / P(e) ): positive when the findings are "
                    "less likely together than apart. Each finding's contribution is "
                    "log2 P(e_i) / P(e_i | the others). --simulate N compares with N cases "
                    "simulated from the model.",
        epilog="example: kneehip conflict -e low_back_pain=present -e "
               "straight_leg_raise=negative -e knee_effusion=present --simulate 2000")
    co.add_argument("--simulate", type=int, default=0, metavar="N",
                    help="simulate N cases for a tail probability (default: none)")
    co.add_argument("--seed", type=int, default=0, help="random seed of --simulate")


def add_commands(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    """Add the teaching commands to the ``kneehip`` parser."""
    for add in (_add_explain, _add_what_if, _add_next_test, _add_sensitivity, _add_conflict):
        add(subparsers, parents)


# ----------------------------------------------------------------------------- helpers
def _print_warning(df: Any) -> None:
    if df.attrs.get("warning"):
        print(df.attrs["warning"])
        print()


def _frame_text(df: Any, floatfmt: str = "{:.3f}") -> str:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.max_colwidth", 70, "display.max_rows", 500):
        return df.to_string(float_format=floatfmt.format)


# ----------------------------------------------------------------------------- commands
def cmd_explain(args: argparse.Namespace) -> int:
    check_plot_option(args)
    spec = load_for_cli(args)
    ex = explain(args.evidence, model=spec, origins=args.origin, do=args.do)
    sh = None
    if args.shapley:
        sh = shapley(args.evidence, diagnosis=args.origin, model=spec)
    if args.json:
        emit_json({**ex.to_dict(), **({"shapley": sh.as_nested()} if sh else {})})
    else:
        print(ex)
        if sh is not None:
            print()
            print(sh)
        print()
        print(DISCLAIMER)
    if args.plot:
        plt = pyplot()
        fig = plt.figure(figsize=(20, 11))
        gs = fig.add_gridspec(2, 2, width_ratios=[3.0, 1.1], height_ratios=[1, 1])
        draw_network(spec, posteriors=ex.posteriors, evidence=ex.evidence,
                     highlight=ex.highlight_edges(), ax=fig.add_subplot(gs[:, 0]), do=ex.do,
                     title="Findings: " + (", ".join(f"{k}={v}" for k, v in ex.evidence.items())
                                           or "none"))
        if ex.leading:
            plot_origins(ex, ax=fig.add_subplot(gs[0, 1]))  # prior vs posterior bars
        if ex.leading and not ex.table.empty:
            plot_explanation(ex, ax=fig.add_subplot(gs[1, 1]))
        fig.tight_layout()
        save_plot(fig, args.plot, args.overwrite)
    return 0


def cmd_what_if(args: argparse.Namespace) -> int:
    check_plot_option(args)
    spec = load_for_cli(args)
    scenarios: dict[str, Any] = {}
    for text in args.scenario:
        name, sc = parse_scenario(text)
        if name in scenarios or name == "base":
            raise EvidenceError(f"scenario '{text}': expected a new name, found '{name}' "
                                "used twice (or 'base', the name of the base case)")
        scenarios[name] = sc
    df = what_if(args.evidence, scenarios, model=spec, targets=args.target, do=args.do)
    desc = df.attrs["descriptions"]
    if args.json:
        emit_json({
            **flags_json(df), "evidence": df.attrs["evidence"], "do": df.attrs["do"],
            "targets": [{"target": t, "state": df.attrs["states"][t]} for t in df.index],
            "scenarios": [{"name": c, "description": desc[c],
                           "values": {t: float(v) for t, v in df[c].items()}}
                          for c in df.columns],
        })
    else:
        _print_warning(df)
        print("Base case: " + (", ".join(args.evidence + [f"do({d})" for d in args.do])
                               or "no findings"))
        for c in df.columns[1:]:
            print(f"  {c}: {desc[c]}")
        print()
        print(_frame_text(df))
        print()
        print("Probabilities of present/positive (or the state named). " + DISCLAIMER)
    if args.plot:
        ax = plot_what_if(df)
        save_plot(ax.figure, args.plot, args.overwrite)
    return 0


def cmd_next_test(args: argparse.Namespace) -> int:
    check_plot_option(args)
    spec = load_for_cli(args)
    costs: dict[str, float] = {}
    for k, v in parse_assignments(args.cost, what="--cost"):
        try:
            costs[k] = float(v)
        except ValueError:
            raise EvidenceError(f"--cost {k}={v}: expected a positive number after '=', "
                                f"found '{v}'") from None
    df = next_best_test(args.evidence, model=spec, candidates=args.candidate, costs=costs,
                        do=args.do)
    if args.json:
        if df.attrs.get("warning"):  # the JSON is a list: the warning goes to stderr
            print(df.attrs["warning"], file=sys.stderr)
        emit_json([{"finding": str(n), "expected_information_gain": float(r[
            "expected_information_gain"]), **{k: r[k] for k in df.columns
                                               if k != "expected_information_gain"}}
                   for n, r in df.iterrows()])
    else:
        shown = df if args.top is None else df.head(args.top)
        _print_warning(df)
        print(f"Uncertainty about the origins now: {df.attrs['entropy_bits']:.3f} bits "
              f"(leading: {df.attrs['leading']}).")
        print()
        print(_frame_text(shown))
        print()
        print("expected_information_gain: mutual information (bits) between the test and the "
              "joint state of the origins; p_change_leading: probability that its result "
              "changes the leading origin. " + DISCLAIMER)
    if args.plot:
        ax = plot_next_test(df, top=args.top or 12)
        save_plot(ax.figure, args.plot, args.overwrite)
    return 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    check_plot_option(args)
    spec = load_for_cli(args)
    interval: str | float = args.interval
    if interval != "beta":
        try:
            interval = float(interval)
        except ValueError:
            raise EvidenceError(f"--interval: expected 'beta' or a fraction such as 0.2, "
                                f"found '{args.interval}'") from None
    s = sensitivity(args.target, args.state, args.evidence, spec, do=args.do, interval=interval)
    ci = None
    if args.draws:
        ci = credible_intervals(args.evidence, spec, n_draws=args.draws, seed=args.seed,
                                do=args.do, progress=not args.json)
    top = s.head(args.top)
    if args.json:
        out: dict[str, Any] = {
            **flags_json(s), "target": s.attrs["target"], "state": s.attrs["state"],
            "posterior": s.attrs["posterior"], "evidence": s.attrs["evidence"],
            "do": s.attrs["do"], "interval": str(args.interval),
            "parameters": top.reset_index().to_dict(orient="records"),
        }
        if ci is not None:
            out["credible_intervals"] = ci.reset_index().to_dict(orient="records")
        emit_json(out)
    else:
        _print_warning(s)
        print(f"P({s.attrs['target']}={s.attrs['state']} | findings) = "
              f"{s.attrs['posterior']:.4f}; the {len(top)} most influential of {len(s)} "
              "numbers:")
        print()
        cols = ["value", "lo", "hi", "derivative", "posterior_lo", "posterior_hi", "swing",
                "source"]
        print(_frame_text(top[cols], "{:.4g}"))
        if ci is not None:
            print()
            print(f"Origins with every table drawn from its uncertainty ({args.draws} draws, "
                  f"{ci.attrs['n_failed']} failed):")
            print(_frame_text(ci))
        print()
        print("lo-hi: the number's 95% Beta interval given its table's strength (or "
              "+/- --interval); posterior_lo/hi: the posterior there. " + DISCLAIMER)
    if args.plot:
        plt = pyplot()
        if ci is None:
            fig, ax = plt.subplots(figsize=(9, 0.38 * len(top) + 1.6))
            plot_tornado(s, top=args.top, ax=ax)
        else:
            fig, axs = plt.subplots(1, 2, figsize=(16, 0.38 * len(top) + 1.6))
            plot_tornado(s, top=args.top, ax=axs[0])
            plot_credible_intervals(ci, ax=axs[1])
        save_plot(fig, args.plot, args.overwrite)
    return 0


def cmd_conflict(args: argparse.Namespace) -> int:
    check_plot_option(args)
    spec = load_for_cli(args)
    c = conflict(args.evidence, spec, do=args.do, n_sim=args.simulate, seed=args.seed)
    if args.json:
        emit_json(c.to_dict())
    else:
        print(c)
        print()
        print(DISCLAIMER)
    if args.plot:
        ax = plot_conflict(c)
        save_plot(ax.figure, args.plot, args.overwrite)
    return 0
