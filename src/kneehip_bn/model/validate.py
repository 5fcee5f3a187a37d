"""Validation of a specification: every problem found at once, each with where, expected, found.

:func:`validate_spec` checks a :class:`~kneehip_bn.ModelSpec` and, when it passes, makes it
read-only. It is pure otherwise: it fills no defaults (reading a file does that, in
:mod:`kneehip_bn.model.yamlio`). Problems are collected in a :class:`ProblemList` of
:class:`~kneehip_bn.errors.Problem` records and raised together as one
:class:`~kneehip_bn.errors.ModelFileError`.

Examples
--------
>>> import copy
>>> from kneehip_bn import load_spec
>>> spec = copy.deepcopy(load_spec("knee_hip_basic"))
>>> spec.nodes["knee_pain"].parents.append("knee_pian")
>>> validate_spec(spec)
Traceback (most recent call last):
...
kneehip_bn.errors.ModelFileError: model file ...: at nodes.knee_pain.parents: expected names of nodes defined in this file, found 'knee_pian'; did you mean 'knee_pain'?
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from kneehip_bn._util.graph import find_cycle
from kneehip_bn.errors import ModelFileError, Problem, closest
from kneehip_bn.model.spec import SUM_TOL, ModelSpec, NodeSpec, freeze, is_number

__all__ = ["ProblemList", "shown", "validate_spec"]


def shown(x: Any, limit: int = 200) -> str:
    """``repr`` of a found value, cut short (a hostile value must not make a huge line).

    >>> shown("x" * 300)[-20:]
    '... (302 characters)'
    """
    r = repr(x)
    return r if len(r) <= limit else r[:limit] + f"... ({len(r):,} characters)"


class ProblemList:
    """The problems of one specification, collected so that all are reported together.

    Parameters
    ----------
    lines : mapping, optional
        ``{path into the YAML document: line}`` (from
        :func:`kneehip_bn._util.strict_yaml.load_yaml`); a problem added with a ``path``
        shows its line.
    """

    def __init__(self, lines: Mapping[tuple[Any, ...], int] | None = None) -> None:
        self.records: list[Problem] = []
        self.lines = lines or {}

    def add(self, where: str, expected: str, found: Any, hint: str | None = None,
            path: tuple[Any, ...] | None = None) -> None:
        """Record one problem; ``found`` is the value found (shown as its cut ``repr``)."""
        line = self.lines.get(path) if path is not None else None
        self.records.append(Problem(where, expected, shown(found), hint or None, line))

    def raise_if_any(self, source: str | None) -> None:
        """Raise one :class:`~kneehip_bn.errors.ModelFileError` listing every problem."""
        if self.records:
            raise ModelFileError(self.records, source=source)


def validate_spec(spec: ModelSpec, source: str | None = None) -> ModelSpec:
    """Check a specification's consistency; raise one :class:`ModelFileError` listing all problems.

    Checks: parents and sources exist (with the closest name suggested), the graph has no
    cycle (the cycle is shown), each full table covers every parent configuration exactly
    once with distributions over the node's states summing to 1 within 1e-9, noisy-OR nodes
    are two-state with probabilities in [0, 1] and a link for every parent.

    Returns
    -------
    ModelSpec
        ``spec`` itself, now read-only (edits return new specs).
    """
    c = ProblemList()
    _check_parents(spec, c)
    for node in spec.nodes.values():
        if any(p not in spec.nodes for p in node.parents):
            continue
        if node.table is not None:
            _check_table(spec, node, c)
        elif node.noisy_or is not None:
            _check_noisy_or(spec, node, c)
    _check_roles(spec, c)
    _check_sources(spec, c)
    c.raise_if_any(source or spec.path)
    freeze(spec)  # validated: read-only from here on (edits return new specs)
    return spec


def _check_parents(spec: ModelSpec, c: ProblemList) -> None:
    """Parents are nodes of the file, no self-loops, no directed cycle."""
    names = list(spec.nodes)
    for name, node in spec.nodes.items():
        where = f"nodes.{name}"
        for p in node.parents:
            if p not in spec.nodes:
                g = closest(p, names)
                c.add(f"{where}.parents", "names of nodes defined in this file", p,
                      f"did you mean '{g}'?" if g else "define that node or remove the parent")
            if p == name:
                c.add(f"{where}.parents", "no self-loop", p)
    cyc = find_cycle({n: [p for p in s.parents if p in spec.nodes]
                      for n, s in spec.nodes.items()})
    if cyc:
        path = " -> ".join([*cyc, cyc[0]])
        c.add("nodes (parents)", "a directed acyclic graph", f"the cycle {path}",
              "remove one of these parent links")


def _check_sources(spec: ModelSpec, c: ProblemList) -> None:
    """Every number names a source of the file."""
    for _, loc, e in spec.entries():
        if not isinstance(e.source, str) or not e.source:
            c.add(f"{loc}.source", "the id of an entry in `sources`", e.source,
                  "every number needs a source (a citation id or an elicited rationale)")
        elif e.source not in spec.sources:
            g2 = closest(e.source, spec.sources)
            c.add(f"{loc}.source", "the id of an entry in `sources`", e.source,
                  f"did you mean '{g2}'?" if g2 else "add it under `sources:`")


def _configs(spec: ModelSpec, parents: Sequence[str]) -> list[tuple[str, ...]]:
    return list(itertools.product(*(spec.nodes[p].states for p in parents)))


def _check_prob(c: ProblemList, where: str, p: Any) -> bool:
    if not is_number(p) or not 0.0 <= p <= 1.0:
        c.add(where, "a probability between 0 and 1", p)
        return False
    return True


def _check_table(spec: ModelSpec, node: NodeSpec, c: ProblemList) -> None:
    where = f"nodes.{node.name}.table"
    seen: dict[tuple[str, ...], int] = {}
    for i, row in enumerate(node.table or []):
        w = f"{where}[{i}]"
        if set(row.given) != set(node.parents):
            c.add(f"{w}.given", f"exactly the parents {node.parents}", sorted(row.given))
            continue
        bad = False
        for p, st in row.given.items():
            if st not in spec.nodes[p].states:
                g = closest(str(st), spec.nodes[p].states)
                c.add(f"{w}.given.{p}", f"a state of {p}: {spec.nodes[p].states}", st,
                      f"did you mean '{g}'?" if g else None)
                bad = True
        if bad:
            continue
        key = tuple(row.given[p] for p in node.parents)
        if key in seen:
            c.add(f"{w}.given", "each parent configuration once",
                  f"{_fmt_given(row.given)} again (first at row {seen[key]})")
        seen[key] = i
        if set(row.probabilities) != set(node.states):
            missing = [s for s in node.states if s not in row.probabilities]
            extra = [s for s in row.probabilities if s not in node.states]
            hint = None
            if extra:
                g = closest(extra[0], node.states)
                hint = f"did you mean '{g}'?" if g else None
            c.add(f"{w}.probabilities", f"one probability per state {node.states}",
                  f"missing {missing}, unknown {extra}", hint)
            continue
        ok = all(_check_prob(c, f"{w}.probabilities.{s}", v) for s, v in row.probabilities.items())
        if ok:
            total = math.fsum(row.probabilities.values())
            if abs(total - 1.0) > SUM_TOL:
                c.add(f"{w}.probabilities", "probabilities summing to 1 (within 1e-9)",
                      f"sum {total:.12g} for P({node.name} | {_fmt_given(row.given) or 'no parents'})",
                      "adjust one value so the row sums to exactly 1")
    if not node.parents and len(node.table or []) != 1:
        c.add(where, "one distribution (the node has no parents)", f"{len(node.table or [])} rows")
        return
    missing = [k for k in _configs(spec, node.parents) if k not in seen]
    if missing and node.parents:
        shown = "; ".join(_fmt_given(dict(zip(node.parents, k))) for k in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        c.add(where, "one row per parent configuration", f"no row for {shown}{more}")


def _fmt_given(given: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in given.items())


def _check_noisy_or(spec: ModelSpec, node: NodeSpec, c: ProblemList) -> None:
    nor = node.noisy_or
    assert nor is not None
    where = f"nodes.{node.name}.noisy_or"
    if len(node.states) != 2:
        c.add(where, "a two-state node for noisy-OR", node.states, "use a full `table` instead")
        return
    if nor.on_state not in node.states:
        c.add(f"{where}.on_state", f"one of {node.states}", nor.on_state)
    _check_prob(c, f"{where}.leak.p", nor.leak.p)
    used: dict[tuple[str, str], int] = {}
    for i, ln in enumerate(nor.links):
        w = f"{where}.links[{i}]"
        if ln.parent not in node.parents:
            g = closest(str(ln.parent), node.parents)
            c.add(f"{w}.parent", f"one of the node's parents {node.parents}", ln.parent,
                  f"did you mean '{g}'?" if g else "add it to `parents`")
            continue
        pstates = spec.nodes[ln.parent].states
        if ln.when is None:  # a model file may omit it for two-state parents (filled on reading)
            hint = ("`when` may only be omitted for two-state parents" if len(pstates) != 2
                    else "name the parent state that switches the node on")
            c.add(f"{w}.when", f"the activating state of {ln.parent} (one of {pstates})",
                  None, hint)
            continue
        if ln.when not in pstates:
            g = closest(str(ln.when), pstates)
            c.add(f"{w}.when", f"a state of {ln.parent}: {pstates}", ln.when,
                  f"did you mean '{g}'?" if g else None)
            continue
        if (ln.parent, ln.when) in used:
            c.add(w, "each parent state in at most one link",
                  f"{ln.parent}={ln.when} again (first at links[{used[(ln.parent, ln.when)]}])")
        used[(ln.parent, ln.when)] = i
        _check_prob(c, f"{w}.p", ln.p)
    for p in node.parents:
        if not any(k[0] == p for k in used):
            c.add(f"{where}.links", f"at least one link for parent '{p}'", "none",
                  "add a link or remove the parent")


def _check_roles(spec: ModelSpec, c: ProblemList) -> None:
    """``region`` on diagnoses, ``red_flag`` on two-state findings, the ``scope`` block."""
    for name, node in spec.nodes.items():
        where = f"nodes.{name}"
        if "region" in node.extra and (node.group != "origin" or not isinstance(
                node.extra["region"], str) or not node.extra["region"]):
            c.add(f"{where}.region", "a region name (a string) on an origin node",
                  node.extra["region"] if node.group == "origin" else f"group {node.group}")
        if "red_flag" in node.extra:
            flag = node.extra["red_flag"]
            if not isinstance(flag, bool):
                c.add(f"{where}.red_flag", "true or false", flag)
            elif flag and (node.group not in ("finding", "test") or len(node.states) != 2):
                c.add(f"{where}.red_flag", "a two-state finding or test",
                      f"group {node.group} with {len(node.states)} states")
    if "scope" not in spec.extra:
        return
    sc = spec.extra["scope"]
    if not isinstance(sc, Mapping):
        c.add("scope", "a mapping with min_age, age_node and refer", sc)
        return
    unknown = set(sc) - {"min_age", "age_node", "refer"}
    if unknown:
        c.add("scope", "only min_age, age_node, refer", sorted(unknown))
    if "min_age" in sc and (not is_number(sc["min_age"]) or sc["min_age"] < 0):
        c.add("scope.min_age", "a non-negative number of years", sc["min_age"])
    if "age_node" in sc and sc["age_node"] not in spec.nodes:
        g = closest(str(sc["age_node"]), list(spec.nodes))
        c.add("scope.age_node", "a node of this model", sc["age_node"],
              f"did you mean '{g}'?" if g else None)
    if "refer" in sc and not isinstance(sc["refer"], str):
        c.add("scope.refer", "a one-line message (string)", sc["refer"])
