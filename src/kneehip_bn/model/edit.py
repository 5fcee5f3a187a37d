"""Editing a specification: each edit returns a new, validated spec and records itself.

A validated :class:`~kneehip_bn.ModelSpec` is read-only. :func:`set_row`,
:func:`set_prior`, :func:`set_link` and :func:`set_leak` edit a deep copy, mark every
changed entry with ``source: user`` and an ``edited`` record (the previous value and
source, the date), and validate the copy. :func:`apply_overrides` reads the ``--set``
forms of the command line. A partial distribution keeps the proportions of the states it
does not name, and every edited row sums to 1 (the residue of rounding on its largest state,
:func:`kneehip_bn.model.tables.exact_row`).

Examples
--------
>>> from kneehip_bn import load_spec
>>> spec = load_spec("knee_hip_basic")
>>> edited = set_leak(spec, "knee_pain", 0.1)
>>> edited.nodes["knee_pain"].noisy_or.leak.edited["previous"] == spec.nodes["knee_pain"].noisy_or.leak.p
True
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from kneehip_bn.errors import ModelFileError, UnknownNameError
from kneehip_bn.model.spec import SUM_TOL, Leak, Link, ModelSpec, NodeSpec, Provenance, is_number
from kneehip_bn.model.tables import exact_row
from kneehip_bn.model.validate import validate_spec

__all__ = ["apply_overrides", "set_leak", "set_link", "set_prior", "set_row"]


def _today() -> str:
    return _dt.date.today().isoformat()


def _mark_edit(entry: Provenance, previous: Any) -> None:
    if entry.source != "user":  # keep the original provenance through repeated edits
        entry.edited = {"previous": previous, "previous_source": entry.source, "date": _today()}
    else:
        entry.edited = dict(entry.edited or {}, date=_today())
    entry.source = "user"


def _complete(node: NodeSpec, probs: Mapping[str, float] | float, old: Mapping[str, float]):
    """Fill a partial distribution: the other states keep their proportions."""
    if not isinstance(probs, Mapping):
        if len(node.states) != 2:
            raise ModelFileError(
                f"at nodes.{node.name}: expected a mapping state -> probability for a node "
                f"with {len(node.states)} states, found the single number {probs!r}"
            )
        probs = {node.states[1]: probs}
    for s, v in probs.items():
        if s not in node.states:
            raise UnknownNameError.for_name(f"state of {node.name}", s, node.states)
        if not is_number(v) or not 0 <= v <= 1:
            raise ModelFileError(
                f"at nodes.{node.name}: expected a probability between 0 and 1 for state "
                f"'{s}', found {v!r}")
    given_total = math.fsum(probs.values())
    rest = [s for s in node.states if s not in probs]
    if not rest:
        if abs(given_total - 1) > SUM_TOL:
            raise ModelFileError(
                f"at nodes.{node.name}: expected probabilities summing to 1, found sum "
                f"{given_total:.12g}")
        return {s: float(probs[s]) for s in node.states}
    if given_total > 1 + SUM_TOL:
        raise ModelFileError(
            f"at nodes.{node.name}: expected the given probabilities to sum to at most 1, "
            f"found {given_total:.12g}")
    old_rest = math.fsum(old[s] for s in rest)
    out = {s: float(probs[s]) for s in probs}
    for s in rest:
        share = old[s] / old_rest if old_rest > 0 else 1.0 / len(rest)
        out[s] = (1.0 - given_total) * share
    return exact_row(node.states, [out[s] for s in node.states], among=rest)


def _check_given(spec: ModelSpec, node: NodeSpec, given: Mapping[str, str] | None) -> dict:
    given = dict(given or {})
    for p, st in given.items():
        if p not in node.parents:
            raise UnknownNameError.for_name(f"parent of {node.name}", p, node.parents)
        if st not in spec.nodes[p].states:
            raise UnknownNameError.for_name(f"state of {p}", st, spec.nodes[p].states)
    return given


def set_row(
    spec: ModelSpec,
    node: str,
    given: Mapping[str, str] | None,
    probabilities: Mapping[str, float] | float,
) -> ModelSpec:
    """Set the rows of a full table matching ``given`` (a partial configuration matches all
    rows that agree with it); return a new specification.

    ``probabilities`` may name only some states: the others keep their proportions. For a
    two-state node a single number is P(second state).

    >>> from kneehip_bn import load_spec, set_row
    >>> s = set_row(load_spec("knee_hip_basic"), "knee_pathology", {"age_group": "60_plus"}, {"present": 0.4})
    >>> [r.probabilities["present"] for r in s.nodes["knee_pathology"].table
    ...  if r.given["age_group"] == "60_plus"][0]
    0.4
    """
    new = copy.deepcopy(spec)
    n = new.node(node)
    if n.table is None:
        raise ModelFileError(
            f"at nodes.{node}: expected a full table to set a row, found a noisy-OR table; "
            "use set_link or set_leak")
    given = _check_given(new, n, given)
    hit = 0
    for row in n.table:
        if all(row.given.get(k) == v for k, v in given.items()):
            old = dict(row.probabilities)
            row.probabilities = _complete(n, probabilities, old)
            _mark_edit(row, old)
            hit += 1
    assert hit, "validated spec has a row for every configuration"
    return validate_spec(new)


def set_prior(
    spec: ModelSpec,
    node: str,
    probabilities: Mapping[str, float] | float,
    given: Mapping[str, str] | None = None,
) -> ModelSpec:
    """Set P(node) (every row, or the rows matching ``given``); return a new specification.

    For an origin with parents (e.g. ``age_group``) and no ``given``, every row gets the
    new value: the node then no longer depends on those parents.

    >>> from kneehip_bn import load_spec, set_prior
    >>> s = set_prior(load_spec("knee_hip_basic"), "lumbar_radiculopathy", {"present": 0.05})
    >>> {r.probabilities["present"] for r in s.nodes["lumbar_radiculopathy"].table}
    {0.05}
    """
    return set_row(spec, node, given, probabilities)


def set_link(
    spec: ModelSpec, node: str, parent: str, p: float, when: str | None = None
) -> ModelSpec:
    """Set a noisy-OR link probability; return a new specification.

    >>> from kneehip_bn import load_spec, set_link
    >>> s = set_link(load_spec("knee_hip_basic"), "knee_pain", "knee_pathology", 0.6)
    >>> [ln.p for ln in s.nodes["knee_pain"].noisy_or.links if ln.parent == "knee_pathology"]
    [0.6]
    """
    new = copy.deepcopy(spec)
    n = _noisy_or_node(new, node, "link")
    if parent not in n.parents:
        raise UnknownNameError.for_name(f"parent of {node}", parent, n.parents)
    links = [ln for ln in n.noisy_or.links if ln.parent == parent]
    if when is not None:
        links = [ln for ln in links if ln.when == when]
        if not links:
            raise UnknownNameError.for_name(
                f"linked state of {parent} in {node}", when,
                [ln.when for ln in n.noisy_or.links if ln.parent == parent])
    elif len(links) > 1:
        raise ModelFileError(
            f"at nodes.{node}.noisy_or.links: expected one link for parent '{parent}', found "
            f"{len(links)} (states {[ln.when for ln in links]}); pass when=STATE")
    return _set_p(new, node, links[0], p, "link")


def set_leak(spec: ModelSpec, node: str, p: float) -> ModelSpec:
    """Set a noisy-OR leak probability; return a new specification.

    >>> from kneehip_bn import load_spec, set_leak
    >>> set_leak(load_spec("knee_hip_basic"), "knee_pain", 0.1).nodes["knee_pain"].noisy_or.leak.p
    0.1
    """
    new = copy.deepcopy(spec)
    n = _noisy_or_node(new, node, "leak")
    return _set_p(new, node, n.noisy_or.leak, p, "leak")


def _noisy_or_node(spec: ModelSpec, node: str, what: str) -> NodeSpec:
    """The noisy-OR node whose ``what`` (link or leak) is set."""
    n = spec.node(node)
    if n.noisy_or is None:
        raise ModelFileError(
            f"at nodes.{node}: expected a noisy-OR table to set a {what}, found a full table; "
            "use set_row")
    return n


def _set_p(new: ModelSpec, node: str, entry: Link | Leak, p: float, what: str) -> ModelSpec:
    """Set one noisy-OR probability of the copy ``new``, marked as a user edit."""
    if not is_number(p) or not 0 <= p <= 1:
        raise ModelFileError(f"at nodes.{node}: expected a {what} probability in [0, 1], found {p!r}")
    _mark_edit(entry, entry.p)
    entry.p = float(p)
    return validate_spec(new)


def apply_overrides(spec: ModelSpec, overrides: Sequence[str]) -> ModelSpec:
    """Apply ``--set`` style edits; return a new specification (each edit marked ``user``).

    Forms (``P`` is a probability):

    - ``NODE=P``: P(second state) of a two-state table node, every row
      (e.g. ``lumbar_radiculopathy=0.05``);
    - ``NODE.STATE=P``: P(NODE=STATE), every row, other states rescaled;
    - ``NODE[PARENT=STATE,...].STATE=P``: only the rows matching the parent states;
    - ``NODE.leak=P``: a noisy-OR leak;
    - ``NODE.link.PARENT=P`` or ``NODE.link.PARENT:STATE=P``: a noisy-OR link.

    >>> from kneehip_bn import load_spec
    >>> from kneehip_bn.model.edit import apply_overrides
    >>> s = apply_overrides(load_spec("knee_hip_basic"), ["knee_pain.leak=0.1", "knee_pathology[age_group=60_plus].present=0.4"])
    >>> s.nodes["knee_pain"].noisy_or.leak.p
    0.1
    """
    for item in overrides:
        spec = _apply_one(spec, item)
    return spec


def _apply_one(spec: ModelSpec, item: str) -> ModelSpec:
    usage = ("expected NODE=P, NODE.STATE=P, NODE[PARENT=STATE].STATE=P, NODE.leak=P or "
             "NODE.link.PARENT[:STATE]=P")
    if "=" not in item:
        raise ModelFileError(f"override '{item}': {usage}, found no '='")
    lhs, _, rhs = item.rpartition("=")
    try:
        p = float(rhs)
    except ValueError:
        raise ModelFileError(f"override '{item}': expected a probability after the last '=', "
                             f"found '{rhs}'") from None
    lhs, given = _split_given(item, lhs)
    parts = lhs.split(".")
    node = parts[0]
    n = spec.node(node)
    if len(parts) == 1:
        return set_row(spec, node, given, p)
    if parts[1] == "leak" and len(parts) == 2:
        return set_leak(spec, node, p)
    if parts[1] == "link" and len(parts) == 3:
        parent, _, when = parts[2].partition(":")
        return set_link(spec, node, parent, p, when=when or None)
    if len(parts) == 2:
        state = parts[1]
        if state not in n.states:
            raise UnknownNameError.for_name(f"state of {node}", state, n.states,
                                            where=f"override '{item}'")
        return set_row(spec, node, given, {state: p})
    raise ModelFileError(f"override '{item}': {usage}")


def _split_given(item: str, lhs: str) -> tuple[str, dict[str, str]]:
    """``NODE[PARENT=STATE,...].STATE`` -> (``NODE.STATE``, ``{PARENT: STATE}``)."""
    given: dict[str, str] = {}
    if "[" not in lhs:
        return lhs, given
    head, _, rest = lhs.partition("[")
    inner, _, tail = rest.partition("]")
    for part in filter(None, (x.strip() for x in inner.split(","))):
        if "=" not in part:
            raise ModelFileError(f"override '{item}': expected PARENT=STATE inside [], "
                                 f"found '{part}'")
        k, _, v = part.partition("=")
        if k.strip() in given:
            raise ModelFileError(f"override '{item}': expected each parent once inside [], "
                                 f"found '{k.strip()}' twice")
        given[k.strip()] = v.strip()
    return head + tail, given
