"""The most probable explanation: the single most likely joint state of every unobserved node.

Max-product on the engine's compiled junction tree: the clique tables (the same ones the
sum-product queries use) times the evidence indicators; upward messages are maxima over the
non-separator variables (rescaled to a maximum of 1, with the scale kept in logs), the root's
best entry gives ``max_x P(x, e)``, and a downward pass fixes each clique's variables to the
best entry consistent with its parent's choice. The second-best assignment is found exactly
by Nilsson's partition: the best assignment that agrees with the first on the first ``i - 1``
unobserved nodes and differs from it on the ``i``-th, for every ``i`` (one max-product pass
each, with the constraints entered as indicator masks).

Examples
--------
>>> from kneehip_bn import mpe
>>> best = mpe({"knee_effusion": "present", "joint_line_tenderness": "present",
...             "knee_pain": "present", "age_group": "60_plus"}, model="knee_hip_basic")
>>> best.assignment["knee_pathology"]
'present'
>>> 0 < best.second_probability <= best.probability <= 1
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kneehip_bn.causal.common import format_evidence, setup_case, text_with_flags, with_flags
from kneehip_bn.errors import ImpossibleEvidenceError
from kneehip_bn.inference.engine import Engine
from kneehip_bn.inference.queries import check_do_vs_evidence, node_groups, resolve_evidence

__all__ = ["MostProbableExplanation", "max_product", "mpe"]


@dataclass
class MostProbableExplanation:
    """The best and second-best joint states of the unobserved nodes.

    Attributes
    ----------
    assignment : dict
        ``{node: state}`` over every unobserved node.
    probability : float
        ``P(assignment | evidence)``.
    second : dict
        The second-best assignment; ``second_probability`` its probability given the evidence.
    evidence, do : dict
    """

    assignment: dict[str, str]
    probability: float
    second: dict[str, str]
    second_probability: float
    evidence: dict[str, str]
    do: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    red_flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{"assignment": {node: state}, "probability", "second": {"assignment",
        "probability", "differs"}}``."""
        differs = {k: v for k, v in self.second.items() if self.assignment.get(k) != v}
        return with_flags({
            "assignment": dict(self.assignment), "probability": self.probability,
            "second": {"assignment": dict(self.second), "probability": self.second_probability,
                       "differs": differs},
            "evidence": dict(self.evidence), "do": dict(self.do),
        }, self.red_flags)

    def __str__(self) -> str:
        lines = [f"Findings: {format_evidence(self.evidence)}"]
        if self.do:
            lines.append("Interventions: " + ", ".join(f"do({k}={v})" for k, v in self.do.items()))
        ratio = self.probability / self.second_probability if self.second_probability else math.inf
        lines += [f"Most probable explanation: P = {self.probability:.4g} given the findings "
                  f"({ratio:.2f}x the second best, P = {self.second_probability:.4g})", ""]
        order = ["context", "origin", "mechanism", "finding", "test"]
        for g in order + sorted({*self.groups.values()} - set(order)):
            names = [n for n in self.assignment if self.groups.get(n, "other") == g]
            if not names:
                continue
            lines.append(f"{g}:")
            for n in names:
                alt = self.second.get(n)
                mark = f"   (second best: {alt})" if alt != self.assignment[n] else ""
                lines.append(f"  {n:<32}{self.assignment[n]}{mark}")
        return text_with_flags("\n".join(lines), self.red_flags)


def max_product(eng: Engine, masks: Mapping[int, np.ndarray],
                do: Mapping[int, int] | None = None) -> tuple[float, np.ndarray]:
    """``(log max_x prod tables * masks, argmax)`` on the compiled junction tree.

    ``masks`` maps a variable index to a 0/1 (or weight) vector over its states (evidence,
    or constraints); the argmax gives a state index per variable (``-1`` never occurs).
    """
    pots = [p[0].copy() for p in eng.clique_tables(do)]
    for v, mask in masks.items():
        h = eng.var_home[v]
        pots[h] = pots[h] * np.asarray(mask, dtype=float)[eng.var_idx[v]]
    up: list[np.ndarray | None] = [None] * len(eng.cliques)
    logz = 0.0
    for c in eng.collect:  # children before parents, the root excluded
        pc = pots[c]
        for ch in eng.children[c]:
            pc = pc * up[ch][eng.sep_in_parent[ch]]  # type: ignore[index]
        pots[c] = pc
        ssize = int(eng.sep_in_child[c].max()) + 1 if pc.size else 1  # type: ignore[union-attr]
        msg = np.zeros(ssize)
        np.maximum.at(msg, eng.sep_in_child[c], pc)
        top = float(msg.max())
        if top <= 0:
            return -math.inf, np.full(len(eng.variables), -1)
        up[c] = msg / top
        logz += math.log(top)
    r = eng.root
    pr = pots[r]
    for ch in eng.children[r]:
        pr = pr * up[ch][eng.sep_in_parent[ch]]  # type: ignore[index]
    pots[r] = pr
    best = int(np.argmax(pr))
    if pr[best] <= 0:
        return -math.inf, np.full(len(eng.variables), -1)
    log_max = logz + math.log(float(pr[best]))
    assign = np.full(len(eng.variables), -1)
    chosen = [-1] * len(eng.cliques)
    chosen[r] = best
    for v, s in zip(eng.cliques[r].vars, eng.grid[r][:, best]):
        assign[v] = s
    for c in eng.topdown[1:]:
        p = eng.parent[c]
        sep_val = eng.sep_in_parent[c][chosen[p]]  # type: ignore[index]
        cand = np.where(eng.sep_in_child[c] == sep_val, pots[c], -1.0)  # type: ignore[operator]
        k = int(np.argmax(cand))
        chosen[c] = k
        for v, s in zip(eng.cliques[c].vars, eng.grid[c][:, k]):
            assign[v] = s
    return log_max, assign


def mpe(evidence: Any, model: Any = None, *, do: Any = None) -> MostProbableExplanation:
    """The single most likely joint state of every unobserved node, and the second best.

    Parameters
    ----------
    evidence : dict or list of "NAME=STATE"
    model : optional
    do : dict, optional
        Interventions (graph surgery) held fixed.

    Returns
    -------
    MostProbableExplanation
        ``probability = P(assignment, evidence) / P(evidence)``.

    Raises
    ------
    ImpossibleEvidenceError

    Examples
    --------
    >>> from kneehip_bn import mpe
    >>> r = mpe({"low_back_pain": "present", "straight_leg_raise": "positive",
    ...          "radiating_leg_pain": "present", "leg_numbness_tingling": "present"},
    ...         model="knee_hip_basic")
    >>> r.assignment["lumbar_radiculopathy"]
    'present'
    """
    m, eng, ev, flags = setup_case(evidence, model)
    dov = resolve_evidence(eng, do, what="do")
    check_do_vs_evidence(ev, dov)
    do_idx = eng.encode(dov) if dov else None
    masks: dict[int, np.ndarray] = {}
    for k, v in eng.encode(ev).items():
        mk = np.zeros(int(eng.card[k]))
        mk[v] = 1.0
        masks[k] = mk
    log_pe = eng.log_probability(ev, do=dov or None)
    if not math.isfinite(log_pe):
        raise ImpossibleEvidenceError.for_evidence(ev, dov)
    log_best, best = max_product(eng, masks, do_idx)
    free = [i for i, n in enumerate(eng.variables) if n not in ev and n not in dov]
    # second best (Nilsson): agree on free[:i], differ on free[i]
    log_2, second = -math.inf, best
    fixed: dict[int, np.ndarray] = {}
    for v in free:
        if eng.card[v] > 1:
            differ = np.ones(int(eng.card[v]))
            differ[best[v]] = 0.0
            lv, a = max_product(eng, {**masks, **fixed, v: differ}, do_idx)
            if lv > log_2:
                log_2, second = lv, a
        same = np.zeros(int(eng.card[v]))
        same[best[v]] = 1.0
        fixed[v] = same
    names = eng.variables
    groups = node_groups(m)
    rank = {n: i for i, n in enumerate(groups)}
    free.sort(key=lambda i: rank.get(names[i], len(rank) + i))

    def as_dict(a: np.ndarray) -> dict[str, str]:
        return {names[i]: eng.states[names[i]][int(a[i])] for i in free}

    return MostProbableExplanation(
        assignment=as_dict(best), probability=math.exp(log_best - log_pe),
        second=as_dict(second) if math.isfinite(log_2) else {},
        second_probability=math.exp(log_2 - log_pe) if math.isfinite(log_2) else 0.0,
        evidence=ev, do=dov, groups={n: groups.get(n, "other") for n in names},
        red_flags=flags)
