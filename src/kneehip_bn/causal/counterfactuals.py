"""Counterfactuals for one patient: abduction, action and prediction on the twin network.

"Given what we saw in this patient, how likely is it that their hip pain would not be
there had their knee been healthy?" is not ``P(hip_pain | do(knee healthy))`` (a population
answer): the patient's own findings must first tell us about *their* mechanisms (the
exogenous noise), and the same noise then acts in the imagined world.

The causal reading of the tables (a structural causal model, each node a deterministic
function of its parents and its own exogenous noise):

- **Noisy-OR tables** keep their causal reading: each link is an independent mechanism
  with its own switch ``U(node.link_i)`` ~ Bernoulli(link probability), and so is the leak
  ``U(node.leak)``; the node is on when the leak is on or some link's switch is on and its
  parent is in the link's state. A patient whose knee-pain link fired keeps that switch in
  the imagined world; a switch that did not fire stays off.
- **Full tables** use the canonical (response-function) parametrisation with one documented
  choice: a single exogenous ``U(node)`` ~ Uniform(0, 1) per node, shared by all parent
  configurations, and the node takes the state whose interval of the cumulative row
  ``P(state_0 | pa), P(state_0) + P(state_1 | pa), ...`` contains ``U`` (the *comonotone*
  coupling; for a two-state node whose P(on) rises with a cause this is Pearl's
  *monotonicity* assumption: no patient in whom the cause prevents the effect). ``U`` is
  discretised exactly at the union of all rows' cumulative breakpoints. Other couplings give
  other answers; :func:`probability_of_causation` reports the Tian-Pearl bounds that hold
  for every coupling.

The twin network holds the factual nodes, one counterfactual copy (``node'``) of every node
that is both a descendant of an intervened node and an ancestor of the target, the
exogenous switches they share, and noisy-OR "chains" (``node~i``: the OR of the leak and the
first ``i`` links) so that no family grows with the number of links. It is compiled by the
same junction-tree engine (:meth:`Engine.from_families`); the factual evidence enters as
ordinary findings and the counterfactual copy of the target is read.

Examples
--------
>>> from kneehip_bn import counterfactual, probability_of_causation
>>> case = {"knee_pain": "present", "knee_effusion": "present", "hip_pain": "present",
...         "antalgic_gait_observed": "present"}
>>> cf = counterfactual(case, do={"knee_pathology": "absent"}, target="hip_pain",
...                     model="knee_hip_basic")
>>> round(float(cf.factual["present"]), 6)
1.0
>>> pc = probability_of_causation("hip_pain", "knee_pathology", case, model="knee_hip_basic")
>>> 0 < pc.pn < 1
True
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kneehip_bn.causal.common import format_evidence, setup_case, text_with_flags, with_flags
from kneehip_bn.errors import EvidenceError, ImpossibleEvidenceError, KneeHipError, UnknownNameError
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.engine import Engine
from kneehip_bn.inference.queries import (
    Evidence,
    as_model,
    on_state,
    resolve_evidence,
    spec_or_none,
)
from kneehip_bn.model.tables import noisy_or_array
from kneehip_bn.teaching.common import family_table

__all__ = [
    "CausalModel",
    "Counterfactual",
    "ProbabilityOfCausation",
    "counterfactual",
    "probability_of_causation",
    "structural_model",
]

CF = "'"  # suffix of a counterfactual copy


# ----------------------------------------------------------------------------- the SCM
@dataclass
class _Mech:
    """One node's mechanism: a noisy-OR (leak + links) or a full table."""

    name: str
    states: list[str]
    parents: list[str]
    table: np.ndarray  # (card, *parent_cards), parents in ``parents`` order
    on: int = -1  # noisy-OR: index of the on state
    leak: float = 0.0
    links: list[tuple[str, int, float]] = field(default_factory=list)  # (parent, when, p)

    @property
    def noisy_or(self) -> bool:
        return self.on >= 0


@dataclass
class CausalModel:
    """The structural reading of a model: one mechanism per node (see the module notes).

    Attributes
    ----------
    mechanisms : dict
        ``{node: _Mech}``; ``noisy_or`` tells which reading each node has.
    """

    mechanisms: dict[str, _Mech]

    @property
    def full_table_nodes(self) -> list[str]:
        """Nodes with parents whose mechanism is a full table (comonotone coupling)."""
        return [n for n, m in self.mechanisms.items() if m.parents and not m.noisy_or]

    def children(self) -> dict[str, list[str]]:
        ch: dict[str, list[str]] = {n: [] for n in self.mechanisms}
        for n, m in self.mechanisms.items():
            for p in m.parents:
                ch[p].append(n)
        return ch

    def descendants(self, nodes: Sequence[str]) -> set[str]:
        ch = self.children()
        out: set[str] = set()
        stack = list(nodes)
        while stack:
            for c in ch[stack.pop()]:
                if c not in out:
                    out.add(c)
                    stack.append(c)
        return out

    def ancestors(self, nodes: Sequence[str]) -> set[str]:
        out: set[str] = set()
        stack = list(nodes)
        while stack:
            for p in self.mechanisms[stack.pop()].parents:
                if p not in out:
                    out.add(p)
                    stack.append(p)
        return out


_SCMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def structural_model(model: Any = None) -> CausalModel:
    """The structural causal model behind a model (noisy-OR nodes keep their links).

    For a :class:`~kneehip_bn.ModelSpec` (or model file / name) every noisy-OR table is read
    as its links and leak; for a pgmpy network built from a model file the file's noisy-OR
    structure is used when its tables still match, otherwise every table is a full table.

    >>> from kneehip_bn.causal.counterfactuals import structural_model
    >>> scm = structural_model("knee_hip_basic")
    >>> scm.mechanisms["hip_pain"].noisy_or, scm.mechanisms["hip_muscle_weakness"].noisy_or
    (True, False)
    """
    m = as_model(model)
    eng = get_engine(m)
    hit = _SCMS.get(eng)
    if hit is not None:
        return hit
    spec = spec_or_none(m)
    mechs: dict[str, _Mech] = {}
    for v in eng.variables:
        table = np.asarray(family_table(eng, v), dtype=float)
        mech = _Mech(v, list(eng.states[v]), list(eng.parents[v]), table)
        node = spec.nodes.get(v) if spec is not None else None
        if node is not None and node.noisy_or is not None and list(node.parents) == mech.parents:
            if np.allclose(noisy_or_array(spec, node), table, atol=1e-12):
                nor = node.noisy_or
                mech.on = node.states.index(nor.on_state)
                mech.leak = float(nor.leak.p)
                mech.links = [(ln.parent, spec.nodes[ln.parent].states.index(ln.when), float(ln.p))
                              for ln in nor.links]
        mechs[v] = mech
    scm = CausalModel(mechs)
    _SCMS[eng] = scm
    return scm


def _cells(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Comonotone response function of a full table: the widths of the cells of U and, per
    cell and parent configuration, the state taken (shape (*parent_cards, n_cells))."""
    card = table.shape[0]
    cols = table.reshape(card, -1)
    cum = np.cumsum(cols, axis=0)
    cum[-1] = 1.0
    pts = np.unique(np.concatenate([[0.0, 1.0], np.clip(cum[:-1].ravel(), 0.0, 1.0)]))
    widths = np.diff(pts)
    keep = widths > 1e-15
    lo, widths = pts[:-1][keep], widths[keep]
    mid = lo + widths / 2
    # state = number of cumulative breakpoints at or below the cell's middle
    state = (cum[:, :, None] <= mid[None, None, :]).sum(axis=0)  # (cols, cells)
    state = np.minimum(state, card - 1)
    return widths / widths.sum(), state.reshape(*table.shape[1:], len(widths))


def _onehot(state: np.ndarray, card: int) -> np.ndarray:
    """Deterministic table (card, *state.shape) putting mass 1 on ``state``."""
    out = np.zeros((card, *state.shape))
    np.put_along_axis(out, state[None].astype(np.intp), 1.0, axis=0)
    return out


def twin_families(scm: CausalModel, do: Mapping[str, int], targets: Sequence[str]
                  ) -> tuple[list[tuple[str, list[str], list[str], np.ndarray]], dict[str, str]]:
    """The twin network's families and ``{node: name of its counterfactual copy}``.

    Nodes that are not descendants of ``do`` are shared by both worlds (their copy is
    themselves). ``do`` maps a node to the state index it is set to in the imagined world.
    """
    mechs = scm.mechanisms
    need = (scm.ancestors(list(targets)) | set(targets))
    twin = (scm.descendants(list(do)) & need) - set(do)
    cf = {v: (v + CF if (v in twin or (v in do and v in need)) else v) for v in mechs}
    used: set[str] = set()
    fams: list[tuple[str, list[str], list[str], np.ndarray]] = []
    ab = ["off", "on"]

    def add(name: str, states: list[str], parents: list[str], table: np.ndarray) -> None:
        if name in used:  # a model node already named like a generated one
            raise KneeHipError(f"twin network: node name {name!r} is used twice; expected "
                               f"model node names without {CF!r}, '~' or 'U(...)'")
        used.add(name)
        fams.append((name, states, parents, table))

    for v, m in mechs.items():
        if v not in twin:
            add(v, m.states, m.parents, m.table)
            if v in do and v in need:
                point = np.zeros(len(m.states))
                point[do[v]] = 1.0
                add(cf[v], m.states, [], point)
            continue
        if m.noisy_or:
            card = len(m.states)
            off = 1 - m.on if card == 2 else 0
            leak = f"U({v}.leak)"
            add(leak, ab, [], np.array([1.0 - m.leak, m.leak]))
            us = []
            for i, (_p, _w, p) in enumerate(m.links):
                u = f"U({v}.link{i + 1})"
                add(u, ab, [], np.array([1.0 - p, p]))
                us.append(u)
            for world, rename in (("", lambda x: x), (CF, lambda x: cf[x])):
                prev = leak
                for i, (par, when, _p) in enumerate(m.links):
                    pc = len(mechs[par].states)
                    hit = (np.arange(pc) == when)  # (pc,)
                    on = np.zeros((2, 2, pc), dtype=bool)  # [prev, u, parent]
                    on |= np.array([False, True])[:, None, None]
                    on |= (np.array([False, True])[None, :, None] & hit[None, None, :])
                    last = i == len(m.links) - 1
                    name = (v + world) if last else f"{v}{world}~{i + 1}"
                    if last:
                        st = np.where(on, m.on, off)
                        add(name, m.states, [prev, us[i], rename(par)], _onehot(st, card))
                    else:
                        add(name, ab, [prev, us[i], rename(par)], _onehot(on.astype(int), 2))
                    prev = name
                if not m.links:
                    st = np.array([off, m.on])
                    add(v + world, m.states, [leak], _onehot(st, card))
        else:
            widths, state = _cells(m.table)
            u = f"U({v})"
            add(u, [f"cell{i}" for i in range(len(widths))], [], widths)
            det = _onehot(state, len(m.states))
            add(v, m.states, [*m.parents, u], det)
            add(cf[v], m.states, [*(cf[p] for p in m.parents), u], det)
    return fams, cf


_TWINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _twin_engine(eng: Engine, scm: CausalModel, do: Mapping[str, int], target: str,
                 observed: Sequence[str] = ()) -> tuple[Engine, dict[str, str]]:
    """The compiled twin network for (do, target), pruned to the ancestors of the observed
    nodes and of the target's copy (barren nodes do not change the answer); cached per
    (do, target, observed node set)."""
    cache = _TWINS.setdefault(eng, {})
    key = (tuple(sorted(do.items())), target, frozenset(observed))
    hit = cache.get(key)
    if hit is None:
        fams, cf = twin_families(scm, do, [target])
        parents = {f[0]: f[2] for f in fams}
        keep: set[str] = set()
        stack = [cf[target], *observed]
        while stack:
            v = stack.pop()
            if v not in keep:
                keep.add(v)
                stack.extend(parents[v])
        if len(cache) >= 64:
            cache.clear()
        hit = cache[key] = (Engine.from_families([f for f in fams if f[0] in keep]), cf)
    return hit


# ----------------------------------------------------------------------------- counterfactual
@dataclass
class Counterfactual:
    """``P(target | evidence)`` beside ``P(target had do held | evidence)``.

    Attributes
    ----------
    target : str
    do : dict
        The imagined intervention.
    evidence : dict
        What was seen in this patient (the factual world).
    factual, counterfactual : pandas.Series
        Distributions of the target over its states.
    red_flags : list of str
    """

    target: str
    do: dict[str, str]
    evidence: dict[str, str]
    factual: Any
    counterfactual: Any
    red_flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{"target", "do", "factual": {state: p}, "counterfactual": {state: p}}``."""
        return with_flags({
            "target": self.target, "do": dict(self.do),
            "factual": {k: float(v) for k, v in self.factual.items()},
            "counterfactual": {k: float(v) for k, v in self.counterfactual.items()},
            "evidence": dict(self.evidence),
        }, self.red_flags)

    def __str__(self) -> str:
        do = ", ".join(f"{k}={v}" for k, v in self.do.items())
        lines = [f"Findings: {format_evidence(self.evidence)}",
                 f"Counterfactual: had {do} held (same patient, same mechanisms)", "",
                 f"{'P(' + self.target + ' = ...)':<32}{'factual':>10}{'had ' + do:>{max(14, len(do) + 6)}}"]
        for s in self.factual.index:
            lines.append(f"  {s:<30}{self.factual[s]:>10.4f}"
                         f"{self.counterfactual[s]:>{max(14, len(do) + 6)}.4f}")
        return text_with_flags("\n".join(lines), self.red_flags)


def _series(values: np.ndarray, states: Sequence[str], name: str) -> Any:
    import pandas as pd

    return pd.Series(np.asarray(values, dtype=float), index=pd.Index(list(states), name="state"),
                     name=name)


def _cf_distribution(eng: Engine, scm: CausalModel, ev: Mapping[str, str],
                     do_idx: Mapping[str, int], target: str) -> np.ndarray:
    twin, cf = _twin_engine(eng, scm, do_idx, target, list(ev))
    return twin.posterior(ev, targets=[cf[target]])[cf[target]]


def counterfactual(
    evidence: Evidence,
    do: Evidence,
    target: str,
    model: Any = None,
) -> Counterfactual:
    """How likely the target would have been, for this patient, had ``do`` held.

    Abduction (the evidence updates every exogenous mechanism of the patient), action (the
    imagined intervention ``do``) and prediction (the target in the imagined world), on the
    twin network described in the module notes: noisy-OR links and leaks are independent
    mechanisms with their own noise; full tables use the comonotone (monotone) coupling.

    Parameters
    ----------
    evidence : dict or list of "NAME=STATE"
        What was seen (may include the intervened node's actual state).
    do : dict or list of "NAME=STATE"
        The imagined intervention, e.g. ``{"knee_pathology": "absent"}``.
    target : str
        The node asked about.
    model : optional
        pgmpy network, ModelSpec, model path or shipped model name, or ``None``.

    Returns
    -------
    Counterfactual
        ``factual`` = P(target | evidence), ``counterfactual`` = P(target_do | evidence).

    Raises
    ------
    ImpossibleEvidenceError
        When the model gives the evidence probability zero.

    Examples
    --------
    >>> from kneehip_bn import counterfactual
    >>> cf = counterfactual({"hip_pain": "present", "knee_effusion": "present"},
    ...                     do={"knee_pathology": "absent"}, target="hip_pain",
    ...                     model="knee_hip_basic")
    >>> list(cf.counterfactual.index)
    ['absent', 'present']
    """
    m, eng, ev, flags = setup_case(evidence, model)
    dov = resolve_evidence(eng, do, what="do")
    if not dov:
        raise EvidenceError("do: expected at least one NAME=STATE to imagine, found none")
    if target not in eng.index:
        raise UnknownNameError.for_name("node", target, eng.variables, where="target")
    scm = structural_model(m)
    do_idx = {k: eng.state_index[k][v] for k, v in dov.items()}
    fact = eng.posterior(ev, targets=[target])[target]
    cfd = _cf_distribution(eng, scm, ev, do_idx, target)
    states = eng.states[target]
    return Counterfactual(target=target, do=dov, evidence=ev,
                          factual=_series(fact, states, target),
                          counterfactual=_series(cfd, states, target + CF), red_flags=flags)


# ----------------------------------------------------------------------------- PN / PS
@dataclass
class ProbabilityOfCausation:
    """Did the cause produce the finding in this patient? PN, PS and their bounds.

    Attributes
    ----------
    finding, cause : str
    p_cause_present : float
        P(cause present | evidence).
    pn : float
        Probability of necessity: P(finding would be absent had the cause been absent |
        the evidence, the cause present).
    ps : float
        Probability of sufficiency: P(finding would be present had the cause been present |
        the other evidence, cause and finding both absent); NaN when that situation is
        impossible under the model.
    bounds : dict or None
        Tian-Pearl bounds (hold for every structural reading of the full tables) on PN and PS
        in the context (the evidence on non-descendants of the cause), with the model's own
        values there: ``{"context", "pn": [lo, hi], "ps": [lo, hi], "pn_model", "ps_model"}``;
        ``None`` when every mechanism between cause and finding is noisy-OR (point-identified
        under the model's causal reading).
    explanation : str
        The plain-language sentence.
    """

    finding: str
    cause: str
    evidence: dict[str, str]
    p_cause_present: float
    pn: float
    ps: float
    bounds: dict[str, Any] | None
    explanation: str
    cause_state: str = ""
    baseline: str = ""
    red_flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{"finding", "cause", "p_cause_present", "pn", "ps", "explanation", ...}``."""
        return with_flags({
            "finding": self.finding, "cause": self.cause,
            "p_cause_present": self.p_cause_present, "pn": self.pn,
            "ps": None if math.isnan(self.ps) else self.ps,
            "explanation": self.explanation, "bounds": self.bounds,
            "evidence": dict(self.evidence),
        }, self.red_flags)

    def __str__(self) -> str:
        lines = [f"Findings: {format_evidence(self.evidence)}", "",
                 f"P({self.cause}={self.cause_state} | findings)  = {self.p_cause_present:.4f}",
                 f"PN (necessity)                   = {self.pn:.4f}",
                 "PS (sufficiency)                 = "
                 + ("n/a" if math.isnan(self.ps) else f"{self.ps:.4f}")]
        if self.bounds:
            b = self.bounds
            lines += ["", f"Tian-Pearl bounds in the context ({format_evidence(b['context'])}), valid "
                          "whatever the full tables' mechanisms:",
                      f"  PN in [{b['pn'][0]:.4f}, {b['pn'][1]:.4f}] (model {b['pn_model']:.4f})",
                      f"  PS in [{b['ps'][0]:.4f}, {b['ps'][1]:.4f}] (model {b['ps_model']:.4f})"]
        lines += ["", self.explanation]
        return text_with_flags("\n".join(lines), self.red_flags)


def _label(n: str) -> str:
    return n.replace("_", " ")


def _off_state(states: Sequence[str], on: str) -> str:
    for s in ("absent", "negative", "no", "False"):
        if s in states and s != on:
            return s
    return next(s for s in states if s != on)


def _sentence(finding: str, cause: str, baseline: str, pn: float, pc: float) -> str:
    had = f"had {_label(cause)} been {baseline}"
    if pn >= 0.5:
        main = (f"Given these findings, the {_label(finding)} would probably ({pn:.2f}) not be "
                f"present {had}")
    elif pn >= 0.2:
        main = (f"Given these findings, the {_label(finding)} might ({pn:.2f}) not be present "
                f"{had}, but more likely it would still be there")
    else:
        main = (f"Given these findings, the {_label(finding)} would probably still be present "
                f"{had} (probability it would be absent: {pn:.2f})")
    return (f"{main}; this assumes {_label(cause)} is present, which the findings make "
            f"{pc:.2f} likely.")


def probability_of_causation(
    finding: str,
    cause: str,
    evidence: Evidence,
    model: Any = None,
    *,
    cause_state: str | None = None,
    baseline: str | None = None,
) -> ProbabilityOfCausation:
    """PN and PS of a present finding and a candidate cause, for this patient.

    - ``PN = P(finding_{cause=baseline} = absent | evidence, cause = cause_state)``: given
      that both occurred (the finding is in the evidence, the cause is assumed present), the
      probability that the finding would not have occurred without the cause.
    - ``PS = P(finding_{cause=cause_state} = present | evidence without the finding,
      cause = baseline, finding absent)``: in a patient like this one but with neither, the
      probability that the cause would have produced the finding.
    - ``p_cause_present = P(cause = cause_state | evidence)``.
    - Where a full table lies between cause and finding (so the point values rest on the
      comonotone coupling of :mod:`kneehip_bn.causal.counterfactuals`), the Tian-Pearl (2000) bounds
      that hold for every coupling, from the observational and interventional
      distributions in the *context* ``c`` (the evidence on non-descendants of the cause):
      ``max(0, (P(y|c) - P(y_x'|c)) / P(x,y|c)) <= PN <= min(1, (P(y'_x'|c) - P(x',y'|c)) /
      P(x,y|c))`` and ``max(0, (P(y_x|c) - P(y|c)) / P(x',y'|c)) <= PS <= min(1, (P(y_x|c) -
      P(x,y|c)) / P(x',y'|c))``, with the model's own PN and PS in that context beside them.

    Parameters
    ----------
    finding : str
        A finding present in ``evidence`` (its present/positive state).
    cause : str
        The candidate cause (usually a diagnosis); not observed in another state.
    evidence : dict or list of "NAME=STATE"
    model : optional
    cause_state, baseline : str, optional
        The cause's "present" state and the state imagined instead (default: present /
        absent).

    Returns
    -------
    ProbabilityOfCausation

    Examples
    --------
    >>> from kneehip_bn import probability_of_causation
    >>> pc = probability_of_causation(
    ...     "hip_pain", "knee_pathology",
    ...     {"knee_pain": "present", "knee_effusion": "present", "hip_pain": "present",
    ...      "antalgic_gait_observed": "present"}, model="knee_hip_basic")
    >>> pc.explanation.startswith("Given these findings, the hip pain")
    True
    """
    m, eng, ev, flags = setup_case(evidence, model)
    for what, n in (("finding", finding), ("cause", cause)):
        if n not in eng.index:
            raise UnknownNameError.for_name("node", n, eng.variables, where=what)
    if finding == cause:
        raise EvidenceError(f"cause {cause}: expected a node other than the finding, found the "
                            "same node")
    f_on = on_state(eng.states[finding])
    if ev.get(finding) != f_on:
        found = f"{finding}={ev[finding]}" if finding in ev else "it not given"
        raise EvidenceError(
            f"finding {finding}: expected it present in the evidence ({finding}={f_on}), found "
            f"{found}; add -e {finding}={f_on} (PN and PS are about a finding that occurred)")
    x_on = cause_state or on_state(eng.states[cause])
    if x_on not in eng.state_index[cause]:
        raise UnknownNameError.for_name(f"state of {cause}", x_on, eng.states[cause])
    x_off = baseline or _off_state(eng.states[cause], x_on)
    if x_off not in eng.state_index[cause] or x_off == x_on:
        raise UnknownNameError.for_name(f"baseline state of {cause}", x_off,
                                        [s for s in eng.states[cause] if s != x_on])
    if cause in ev and ev[cause] != x_on:
        raise EvidenceError(
            f"cause {cause}: expected it unobserved or {cause}={x_on}, found {cause}={ev[cause]} "
            "in the evidence (the cause cannot have produced the finding)")
    scm = structural_model(m)
    xi, x0 = eng.state_index[cause][x_on], eng.state_index[cause][x_off]
    yi = eng.state_index[finding][f_on]
    post = eng.posterior(ev, targets=[cause])[cause]
    pc = float(post[xi])
    if pc <= 0:
        raise ImpossibleEvidenceError(
            f"cause {cause}: expected a cause the findings allow, found P({cause}={x_on} | "
            f"findings) = 0; PN is undefined")
    pn = 1.0 - float(_cf_distribution(eng, scm, {**ev, cause: x_on}, {cause: x0}, finding)[yi])
    ev_s = {k: v for k, v in ev.items() if k != finding}
    ev_s.update({cause: x_off, finding: _off_state(eng.states[finding], f_on)})
    try:
        ps = float(_cf_distribution(eng, scm, ev_s, {cause: xi}, finding)[yi])
    except ImpossibleEvidenceError:
        ps = math.nan
    between = (scm.descendants([cause]) & (scm.ancestors([finding]) | {finding}))
    full = [n for n in between if not scm.mechanisms[n].noisy_or]
    bounds = None
    if full:
        bounds = _tian_pearl(eng, scm, ev, cause, finding, xi, x0, yi, f_on, x_off)
        bounds["full_tables"] = sorted(full)
    text = _sentence(finding, cause, x_off, pn, pc)
    return ProbabilityOfCausation(finding=finding, cause=cause, evidence=ev, p_cause_present=pc,
                                  pn=pn, ps=ps, bounds=bounds, explanation=text,
                                  cause_state=x_on, baseline=x_off, red_flags=flags)


def _tian_pearl(eng: Engine, scm: CausalModel, ev: Mapping[str, str], cause: str, finding: str,
                xi: int, x0: int, yi: int, f_on: str, x_off: str) -> dict[str, Any]:
    desc = scm.descendants([cause])
    ctx = {k: v for k, v in ev.items() if k not in desc and k != cause}
    x_on = eng.states[cause][xi]
    px = eng.posterior(ctx, targets=[cause])[cause]
    py_x = eng.posterior({**ctx, cause: x_on}, targets=[finding])[finding][yi]
    py_x0 = eng.posterior({**ctx, cause: x_off}, targets=[finding])[finding][yi]
    pxy, px0y = px[xi] * py_x, px[x0] * py_x0
    px0y0 = px[x0] * (1 - py_x0)
    # only the two states of the question: P(y) over them (other states of a multi-state
    # cause are outside these bounds' population)
    py = pxy + px0y
    pop = px[xi] + px[x0]
    py, pxy, px0y0 = py / pop, pxy / pop, px0y0 / pop
    dy_x = eng.posterior(ctx, targets=[finding], do={cause: x_on})[finding][yi]
    dy_x0 = eng.posterior(ctx, targets=[finding], do={cause: x_off})[finding][yi]
    with np.errstate(divide="ignore", invalid="ignore"):
        pn = [max(0.0, (py - dy_x0) / pxy), min(1.0, ((1 - dy_x0) - px0y0) / pxy)]
        ps = [max(0.0, (dy_x - py) / px0y0), min(1.0, (dy_x - pxy) / px0y0)]
    f_off = _off_state(eng.states[finding], f_on)
    pn_m = 1.0 - float(_cf_distribution(eng, scm, {**ctx, cause: x_on, finding: f_on},
                                        {cause: x0}, finding)[yi])
    ps_m = float(_cf_distribution(eng, scm, {**ctx, cause: x_off, finding: f_off},
                                  {cause: xi}, finding)[yi])
    return {"context": ctx, "pn": [float(pn[0]), float(pn[1])],
            "ps": [float(ps[0]), float(ps[1])], "pn_model": pn_m, "ps_model": ps_m}
