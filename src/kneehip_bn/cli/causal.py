"""Causal commands of ``kneehip``: counterfactual, cause, flip, mpe.

Added to the parser by :mod:`kneehip_bn.cli` through :func:`add_commands`.
"""

from __future__ import annotations

import argparse
from typing import Any

from kneehip_bn._util.text import DISCLAIMER
from kneehip_bn.causal.counterfactuals import counterfactual, probability_of_causation
from kneehip_bn.causal.flips import flip
from kneehip_bn.causal.maxproduct import mpe
from kneehip_bn.causal.plots import plot_counterfactual, plot_flip
from kneehip_bn.cli._common import (
    add_overwrite,
    check_plot_option,
    emit_json,
    load_for_cli,
    save_plot,
)

__all__ = ["add_commands"]


RAW = argparse.RawDescriptionHelpFormatter


def _evidence_only(p: argparse.ArgumentParser) -> None:
    """``-e`` without ``--do`` (the commands that read no intervention)."""
    p.add_argument("-e", "--evidence", metavar="NAME=STATE", action="append", default=[],
                   help="an observed finding, test or context (repeatable)")


def _add_counterfactual(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    cf = subparsers.add_parser(
        "counterfactual", formatter_class=RAW,
        parents=[parents["model"], parents["evidence"], parents["json"], parents["plot"]],
        help="for this patient: how likely the target would have been had --do held",
        description="Abduction, action, prediction on the twin network: the findings (-e) "
                    "update this patient's own mechanisms (each noisy-OR link and leak an "
                    "independent switch; full tables read with the comonotone coupling), "
                    "--do imagines a change, and the target is read in the imagined world. "
                    "--json prints {\"target\", \"do\", \"factual\": {state: p}, "
                    "\"counterfactual\": {state: p}}.\n\n" + DISCLAIMER,
        epilog="example: kneehip counterfactual -e knee_pain=present -e knee_effusion=present "
               "-e hip_pain=present --do knee_osteoarthritis=absent --target hip_pain")
    cf.add_argument("--target", "-t", required=True, metavar="NODE", help="the node asked about")
    add_overwrite(cf)
    cf.set_defaults(func=cmd_counterfactual)


def _add_cause(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    ca = subparsers.add_parser(
        "cause", formatter_class=RAW, parents=[parents["model"], parents["json"]],
        help="did the cause produce this patient's finding? (PN, PS)",
        description="Probability of necessity (the finding would have been absent without "
                    "the cause, given both occurred) and of sufficiency, with Tian-Pearl "
                    "bounds where a full table lies between them. --json prints {\"finding\", "
                    "\"cause\", \"p_cause_present\", \"pn\", \"ps\", \"explanation\", ...}."
                    "\n\n" + DISCLAIMER,
        epilog="example: kneehip cause --finding hip_pain --cause knee_osteoarthritis "
               "-e knee_pain=present -e knee_effusion=present -e hip_pain=present")
    _evidence_only(ca)
    ca.add_argument("--finding", required=True, metavar="NODE",
                    help="a finding present in the evidence")
    ca.add_argument("--cause", required=True, metavar="NODE", help="the candidate cause")
    ca.set_defaults(func=cmd_cause)


def _add_flip(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    fl = subparsers.add_parser(
        "flip", formatter_class=RAW,
        parents=[parents["model"], parents["json"], parents["plot"]],
        help="which single number, or fewest findings, would flip the conclusion",
        description="Every single number of the model that could make --target lead (or "
                    "reach --threshold; or, when that already holds, stop it), the value it "
                    "needs as a --set expression (verified by applying it) and its distance "
                    "in its 95% credible interval (1 = the edge); and the smallest sets of "
                    "the findings whose change reaches it. --json prints {\"target\", "
                    "\"goal\", \"parameters\": [{\"set\", \"current\", \"needed\", "
                    "\"interval_distance\"}], \"findings\": [[{\"node\", \"from\", \"to\"}]]}."
                    "\n\n" + DISCLAIMER,
        epilog="example: kneehip flip -e knee_pain=present -e hip_pain=present "
               "--target hip_pathology --goal threshold")
    _evidence_only(fl)
    fl.add_argument("--target", "-t", required=True, metavar="NODE", help="the diagnosis")
    fl.add_argument("--goal", choices=["leads", "threshold"], default="leads",
                    help="'leads' (default): the target has the highest probability; "
                         "'threshold': P(target) >= --threshold")
    fl.add_argument("--threshold", type=float, default=0.5, metavar="P",
                    help="for --goal threshold (default 0.5)")
    fl.add_argument("--max-findings", type=int, default=3, metavar="N",
                    help="largest set of finding changes searched (default 3)")
    add_overwrite(fl)
    fl.set_defaults(func=cmd_flip)


def _add_mpe(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    mp = subparsers.add_parser(
        "mpe", formatter_class=RAW, parents=[parents["model"], parents["evidence"], parents["json"]],
        help="the most probable joint state of every unobserved node",
        description="Max-product on the compiled junction tree: the single most likely "
                    "joint state of every unobserved node given the findings, its "
                    "probability, and the second best. --json prints {\"assignment\": "
                    "{node: state}, \"probability\", \"second\": {...}}.\n\n" + DISCLAIMER,
        epilog="example: kneehip mpe -e knee_effusion=present -e hip_pain=present --json")
    mp.set_defaults(func=cmd_mpe)


def add_commands(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    """Add the causal commands to the ``kneehip`` parser."""
    for add in (_add_counterfactual, _add_cause, _add_flip, _add_mpe):
        add(subparsers, parents)


def _print(result: Any, json_out: bool) -> None:
    if json_out:
        emit_json(result.to_dict())
    else:
        print(result)
        print()
        print(DISCLAIMER)


def _show(args: argparse.Namespace, result: Any, plot: Any = None) -> int:
    """Print a result (text or ``--json``) and draw it with ``plot`` when ``--plot``."""
    _print(result, args.json)
    if plot is not None and args.plot:
        save_plot(plot(result).figure, args.plot, getattr(args, "overwrite", False))
    return 0


def cmd_counterfactual(args: argparse.Namespace) -> int:
    check_plot_option(args)
    r = counterfactual(args.evidence, do=args.do, target=args.target, model=load_for_cli(args))
    return _show(args, r, plot_counterfactual)


def cmd_cause(args: argparse.Namespace) -> int:
    return _show(args, probability_of_causation(args.finding, args.cause, args.evidence,
                                                model=load_for_cli(args)))


def cmd_flip(args: argparse.Namespace) -> int:
    check_plot_option(args)
    r = flip(args.evidence, args.target, goal=args.goal, model=load_for_cli(args),
             threshold=args.threshold, max_findings=args.max_findings)
    return _show(args, r, plot_flip)


def cmd_mpe(args: argparse.Namespace) -> int:
    return _show(args, mpe(args.evidence, model=load_for_cli(args), do=args.do))
