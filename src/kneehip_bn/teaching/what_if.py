"""What if? Several scenarios side by side.

:func:`what_if` starts from a base case and applies, per scenario, findings removed or
added, context changed, interventions ``do`` (graph surgery) and edited priors (``set``),
in the order of :data:`SCENARIO_ACTIONS`; :func:`parse_scenario` reads the command-line
form of a scenario (``NAME:ACTION=ITEMS[;ACTION=ITEMS]``).

Examples
--------
>>> from kneehip_bn.teaching.what_if import what_if
>>> df = what_if({"knee_pain": "present"}, {"treated": "do=knee_pathology=absent"},
...              targets=["knee_pathology"], model="knee_hip_basic")
>>> float(df.loc["knee_pathology", "treated"])
0.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kneehip_bn.errors import EvidenceError, ImpossibleEvidenceError, KneeHipError, UnknownNameError
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.engine import Engine
from kneehip_bn.inference.queries import (
    Evidence,
    as_model,
    check_do_vs_evidence,
    node_groups,
    on_state,
    resolve_evidence,
)
from kneehip_bn.model.edit import apply_overrides
from kneehip_bn.model.spec import ModelSpec
from kneehip_bn.model.tables import cpd_array
from kneehip_bn.teaching.common import family_table, flag_attrs, origin_list, states_text

__all__ = ["SCENARIO_ACTIONS", "parse_scenario", "what_if"]

#: what a what-if scenario may do, in the order it is applied
SCENARIO_ACTIONS = ("remove", "context", "add", "do", "set")


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    if isinstance(x, Mapping):
        return [f"{k}={v}" for k, v in x.items()]
    return list(x)


def _spec_for_edit(m: Any, eng: Engine, where: str) -> Any:
    """The model file form of ``m`` for an edit (a network only when its tables are still
    those of the spec it was built from)."""
    if isinstance(m, ModelSpec):
        return m
    spec = m.graph.get("kneehip_spec") if hasattr(m, "graph") else None
    if spec is not None and all(
            np.allclose(cpd_array(spec, n), family_table(eng, n)) for n in spec.nodes):
        return spec
    raise KneeHipError(
        f"{where}: edited priors ('set') need the model file form (a ModelSpec), found a "
        f"{type(m).__name__} whose tables are not those of a model file; pass "
        "model=load_spec(PATH) or a spec")


def what_if(
    base_evidence: Evidence = None,
    scenarios: Mapping[str, Mapping[str, Any] | str] | None = None,
    model: Any = None,
    targets: Sequence[str] | None = None,
    *,
    do: Evidence = None,
) -> Any:
    """Compare scenarios side by side: findings added or removed, context, do(), edited priors.

    Parameters
    ----------
    base_evidence : dict or list of "NAME=STATE"
        The case every scenario starts from (column ``base``).
    scenarios : dict
        ``{name: {"add": {...}, "remove": [...], "context": {...}, "do": {...},
        "set": ["NODE.leak=0.1", ...]}}``, applied in the order remove, context, add, do,
        set. ``add`` observes findings (replacing a node's state if already observed);
        ``remove`` forgets observed findings; ``context`` changes context nodes (age,
        activity); ``do`` intervenes (graph surgery: "if the knee pathology were treated");
        ``set`` edits priors for this scenario only (:func:`~kneehip_bn.apply_overrides`
        forms). A value may also be a scenario string (``"add=knee_effusion=present"``,
        see :func:`parse_scenario`).
    model : optional
        As in :func:`~kneehip_bn.diagnose`.
    targets : list of str, optional
        Rows: nodes (P(present/positive)) or ``"NODE=STATE"`` (default: the origins).
        An observed target shows 1 or 0: remove it in a scenario to ask how likely it
        would be.
    do : dict, optional
        Interventions of the base case (kept in every scenario).

    Returns
    -------
    pandas.DataFrame
        Rows = targets, columns = ``base`` then the scenarios, values = probabilities;
        ``df.attrs["descriptions"]`` says what each scenario did. Draw it with
        :func:`kneehip_bn.teaching.plots.plot_what_if`.

    Examples
    --------
    >>> from kneehip_bn import what_if
    >>> df = what_if({"knee_pain": "present", "hip_pain": "present"},
    ...              {"treated": {"do": {"knee_pathology": "absent"}, "remove": ["hip_pain"]},
    ...               "no_knee_path": {"add": {"knee_pathology": "absent"},
    ...                                "remove": ["hip_pain"]}},
    ...              targets=["hip_pain", "hip_pathology"], model="knee_hip_basic")
    >>> list(df.columns)
    ['base', 'treated', 'no_knee_path']
    >>> round(float(df.loc["hip_pain", "base"]), 9)   # observed in the base case
    1.0
    """
    import pandas as pd

    m = as_model(model)
    eng = get_engine(m)
    base_ev = resolve_evidence(eng, base_evidence, what="base evidence")
    base_do = resolve_evidence(eng, do, what="do")
    check_do_vs_evidence(base_ev, base_do)
    rows = _parse_targets(eng, m, targets)
    groups = node_groups(m)
    cases: dict[str, tuple[dict, dict, Any, str]] = {"base": (base_ev, base_do, m, "base case")}
    for name, sc in (scenarios or {}).items():
        name = str(name)
        if name in cases:
            raise EvidenceError(f"scenario '{name}': expected a new scenario name, found it "
                                "twice (or named 'base', which is the base case)")
        cases[name] = _scenario_case(name, sc, base_ev, base_do, m, eng, groups)
    data = {name: _scenario_column(name, ev, dov, mm, rows)
            for name, (ev, dov, mm, _) in cases.items()}
    df = pd.DataFrame(data, index=pd.Index([lab for lab, _, _ in rows], name="target"))
    df.attrs["descriptions"] = {k: v[3] for k, v in cases.items()}
    flag_attrs(df, m, base_ev)
    df.attrs["evidence"] = dict(base_ev)
    df.attrs["do"] = dict(base_do)
    df.attrs["states"] = {lab: s for lab, _, s in rows}
    return df


def _scenario_case(name: str, sc: Mapping[str, Any] | str, base_ev: Mapping[str, str],
                   base_do: Mapping[str, str], m: Any, eng: Engine,
                   groups: Mapping[str, str]) -> tuple[dict, dict, Any, str]:
    """(evidence, do, model, description) of one scenario, its actions applied to the base
    case in the order of :data:`SCENARIO_ACTIONS`."""
    where = f"scenario '{name}'"
    if isinstance(sc, str):
        sc = parse_scenario(f"{name}:{sc}")[1]
    if not isinstance(sc, Mapping):
        raise EvidenceError(f"{where}: expected a dict with keys {', '.join(SCENARIO_ACTIONS)}"
                            f", found {type(sc).__name__}")
    for k in sc:
        if k not in SCENARIO_ACTIONS:
            raise UnknownNameError.for_name("scenario action", str(k), SCENARIO_ACTIONS,
                                            where=where)
    ev = dict(base_ev)
    desc = _remove(ev, _as_list(sc.get("remove")), eng, where)
    ctx = resolve_evidence(eng, _as_list(sc.get("context")), what=f"{where}, context")
    for n in ctx:
        if groups.get(n) != "context":
            raise EvidenceError(
                f"{where}, context: expected a context node "
                f"({', '.join(n for n, g in groups.items() if g == 'context') or 'none'}), "
                f"found '{n}' (group {groups.get(n)}); use add=... for findings")
    ev.update(ctx)
    if ctx:
        desc.append(f"context {states_text(ctx)}")
    add = resolve_evidence(eng, _as_list(sc.get("add")), what=f"{where}, add")
    ev.update(add)
    if add:
        desc.append(f"add {states_text(add)}")
    dov = dict(base_do)
    new_do = resolve_evidence(eng, _as_list(sc.get("do")), what=f"{where}, do")
    dov.update(new_do)
    if new_do:
        desc.append(f"do({states_text(new_do)})")
    mm = m
    edits = [str(x) for x in _as_list(sc.get("set"))]
    if edits:
        mm = apply_overrides(_spec_for_edit(m, eng, where), edits)
        desc.append("set " + ", ".join(edits))
    try:
        check_do_vs_evidence(ev, dov)
    except EvidenceError as exc:
        raise EvidenceError(f"{where}: {exc}") from None
    return ev, dov, mm, "; ".join(desc) or "same as base"


def _remove(ev: dict[str, str], names: Sequence[str], eng: Engine, where: str) -> list[str]:
    """Forget the observed ``names`` in ``ev`` (in place); their descriptions."""
    desc = []
    for n in names:
        if n not in ev:
            if n not in eng.index:
                raise UnknownNameError.for_name("node", n, eng.variables,
                                                where=f"{where}, remove")
            raise EvidenceError(
                f"{where}, remove: expected an observed node of the base evidence "
                f"({', '.join(ev) or 'none'}), found '{n}' not observed")
        del ev[n]
        desc.append(f"remove {n}")
    return desc


def _scenario_column(name: str, ev: Mapping[str, str], dov: Mapping[str, str], mm: Any,
                     rows: Sequence[tuple[str, str, str]]) -> list[float]:
    """The probabilities of the target rows under one scenario."""
    e2 = get_engine(mm)
    try:
        post = e2.posterior(ev, targets=sorted({n for _, n, _ in rows}), do=dov or None)
    except ImpossibleEvidenceError as exc:
        raise ImpossibleEvidenceError(f"scenario '{name}': {exc}") from None
    return [float(post[n][e2.state_index[n][s]]) for _, n, s in rows]


def _parse_targets(eng: Engine, m: Any, targets: Sequence[str] | None):
    if targets is None:
        targets = origin_list(m, eng, None)
    rows = []
    for t in targets:
        node, _, state = str(t).partition("=")
        node, state = node.strip(), state.strip()
        if node not in eng.index:
            raise UnknownNameError.for_name("node", node, eng.variables, where="targets")
        if state:
            if state not in eng.state_index[node]:
                raise UnknownNameError.for_name(f"state of {node}", state, eng.states[node],
                                                where="targets")
            rows.append((f"{node}={state}", node, state))
        else:
            rows.append((node, node, on_state(eng.states[node])))
    return rows


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside square brackets (``NODE[A=x,B=y].s=0.1`` stays whole)."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [s.strip() for s in out if s.strip()]


def parse_scenario(text: str) -> tuple[str, dict[str, list[str]]]:
    """Parse the command-line form of a scenario.

    ``NAME:ACTION=ITEMS[;ACTION=ITEMS...]`` where ACTION is ``add``, ``remove``,
    ``context``, ``do`` or ``set``, and ITEMS a comma-separated list: ``NODE=STATE`` items
    (add, context, do), node names (remove) or ``--set`` edits (set).

    >>> from kneehip_bn.teaching.what_if import parse_scenario
    >>> parse_scenario("treated:do=knee_pathology=absent;remove=hip_pain")
    ('treated', {'do': ['knee_pathology=absent'], 'remove': ['hip_pain']})
    >>> parse_scenario("older:context=age_group=60_plus;set=knee_pain.leak=0.1")[1]["set"]
    ['knee_pain.leak=0.1']
    """
    usage = ("expected NAME:ACTION=ITEMS[;ACTION=ITEMS], ACTION one of "
             f"{', '.join(SCENARIO_ACTIONS)} (e.g. \"treated:do=knee_osteoarthritis=absent\")")
    if not isinstance(text, str) or ":" not in text:
        raise EvidenceError(f"scenario '{text}': {usage}, found no ':' after the name")
    name, _, body = text.partition(":")
    name = name.strip()
    if not name:
        raise EvidenceError(f"scenario '{text}': {usage}, found an empty name")
    parts = _split_top(body, ";")
    if not parts:
        raise EvidenceError(f"scenario '{text}': {usage}, found no action")
    out: dict[str, list[str]] = {}
    for part in parts:
        action, eq, items = part.partition("=")
        action = action.strip()
        if not eq:
            raise EvidenceError(f"scenario '{name}': {usage}, found '{part}' without '='")
        if action not in SCENARIO_ACTIONS:
            raise UnknownNameError.for_name("scenario action", action, SCENARIO_ACTIONS,
                                            where=f"scenario '{name}'")
        vals = _split_top(items, ",")
        if not vals:
            raise EvidenceError(f"scenario '{name}': expected items after '{action}=', "
                                "found none")
        if action in ("add", "context", "do"):
            for v in vals:
                if v.count("=") != 1:
                    raise EvidenceError(f"scenario '{name}', {action}: expected NODE=STATE, "
                                        f"found '{v}'")
        out.setdefault(action, []).extend(vals)
    return name, out

