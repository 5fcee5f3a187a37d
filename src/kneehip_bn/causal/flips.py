"""Minimal changes that flip a conclusion: one number of the model, or a few findings.

For a case and a goal about a diagnosis ("hip OA leads", or "P(hip OA) >= 0.5"; when the
goal already holds, its negation: "what would make it stop leading?"):

- **Parameters** (in the spirit of SamIam's sensitivity analysis): for every single number
  of the model (table entries, noisy-OR links and leaks, as
  :func:`~kneehip_bn.teaching.robustness.sensitivity` lists them), every posterior is a ratio of two
  functions that are linear in that number, ``P(d | e)(x) = (a_d + b_d x) / (c + g x)``;
  two engine passes give all of them exactly, and the goal becomes linear inequalities in
  ``x`` solved in closed form. Each number that can reach the goal within [0, 1] is
  reported with the value it needs (nearest to its current value, nudged just inside the
  goal and rounded to a ``--set`` expression), verified by applying that expression to the
  model (:func:`~kneehip_bn.apply_overrides`) and re-querying, and with its distance in
  its credible interval: ``(needed - current) / (hi - current)`` (or towards ``lo``), where
  ``[lo, hi]`` is the 95% Beta interval of the number given its table's strength: 1 is the
  edge of that interval, above 1 outside it.
- **Findings**: the smallest sets of the case's findings (context nodes excepted) whose
  change to another state reaches the goal, found breadth-first over set sizes (every set of
  size 1, then 2, ...), each verified by re-querying.

Examples
--------
>>> from kneehip_bn import flip
>>> fl = flip({"knee_pain": "present", "hip_pain": "present", "knee_effusion": "present"},
...           target="hip_pathology", model="knee_hip_basic")
>>> fl.goal
'hip_pathology leads'
>>> bool(fl.parameters["verified"].all())
True
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kneehip_bn.causal.common import format_evidence, setup_case, text_with_flags, with_flags
from kneehip_bn.errors import EvidenceError, ImpossibleEvidenceError, KneeHipError, UnknownNameError
from kneehip_bn.inference.engine import Engine
from kneehip_bn.inference.queries import node_groups, on_state
from kneehip_bn.model.edit import apply_overrides
from kneehip_bn.model.spec import ModelSpec
from kneehip_bn.model.tables import cpd_array
from kneehip_bn.teaching.common import evidence_codes, origin_list
from kneehip_bn.teaching.robustness import beta_interval, parameters_of

__all__ = ["Flip", "flip"]

GOALS = ("leads", "threshold")


@dataclass
class Flip:
    """What would flip the conclusion about ``target``.

    Attributes
    ----------
    target, goal : str
        The diagnosis and the goal reached by every change listed (``"X leads"``, ``"X no
        longer leads"``, ``"P(X) >= 0.5"``, ``"P(X) < 0.5"``).
    met_now : bool
        Whether the *original* goal holds now (then the changes listed break it).
    posterior : float
        P(target | evidence) now; ``leader``: the leading diagnosis now.
    parameters : pandas.DataFrame
        One row per number that can reach the goal, nearest in its credible interval first:
        ``set`` (the ``--set`` expression), ``parameter``, ``node``, ``kind``, ``current``,
        ``needed``, ``lo``, ``hi``, ``interval_distance``, ``posterior_after``,
        ``verified``.
    findings : list of list of dict
        The smallest sets of finding changes, each ``[{"node", "from", "to"}, ...]``.
    """

    target: str
    goal: str
    met_now: bool
    posterior: float
    leader: str
    evidence: dict[str, str]
    parameters: Any
    findings: list[list[dict[str, str]]]
    red_flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{"target", "goal", "parameters": [{"set", "current", "needed",
        "interval_distance", ...}], "findings": [[{"node", "from", "to"}]]}``."""
        params = [{k: (r[k] if k in ("set", "parameter", "node", "kind") else float(r[k]))
                   for k in ("set", "current", "needed", "interval_distance", "parameter",
                             "node", "kind", "lo", "hi", "posterior_after")}
                  for _, r in self.parameters.iterrows()]
        return with_flags({
            "target": self.target, "goal": self.goal, "met_now": self.met_now,
            "posterior": self.posterior, "leader": self.leader, "parameters": params,
            "findings": self.findings, "evidence": dict(self.evidence), "notes": self.notes,
        }, self.red_flags)

    def __str__(self) -> str:
        lines = [f"Findings: {format_evidence(self.evidence)}",
                 f"P({self.target}) now {self.posterior:.4f}; leading: {self.leader}. "
                 f"Goal: {self.goal}.", ""]
        p = self.parameters
        if len(p):
            lines.append(f"{len(p)} single numbers can reach it (nearest in its 95% credible "
                         "interval first; distance 1 = the interval's edge):")
            for _, r in p.head(15).iterrows():
                lines.append(f"  --set {r['set']:<58} now {r['current']:.4g}  "
                             f"distance {r['interval_distance']:.2f}")
        else:
            lines.append("No single number of the model can reach it.")
        lines.append("")
        if self.findings:
            k = len(self.findings[0])
            lines.append(f"Smallest finding changes that reach it ({k} finding"
                         f"{'s' if k > 1 else ''}):")
            for s in self.findings[:15]:
                lines.append("  " + "; ".join(f"{c['node']}: {c['from']} -> {c['to']}" for c in s))
        else:
            lines.append("No change of the case's findings (within the size searched) reaches it.")
        lines += [f"  note: {n}" for n in self.notes]
        return text_with_flags("\n".join(lines), self.red_flags)


def _goal_ok(post: np.ndarray, t: int, goal: str, thr: float, want: bool) -> np.ndarray:
    """Does each row (posteriors of the diagnoses, shape (rows, n)) satisfy the goal?"""
    if goal == "leads":
        others = np.delete(post, t, axis=1)
        ok = post[:, t] > (others.max(axis=1) if others.shape[1] else -np.inf)
    else:
        ok = post[:, t] >= thr
    return ok == want


def _solve(a: np.ndarray, b: np.ndarray, mode: str) -> list[tuple[float, float]]:
    """Intervals of x in [0, 1] where ``a_k + b_k x >= 0`` for all k (``mode="all"``) or for
    some k (``"any"``); whether a boundary itself reaches a strict goal is settled by the
    verification of the value chosen just inside it."""
    ivs = []
    for ak, bk in zip(a, b):
        if abs(bk) < 1e-300:
            ivs.append((0.0, 1.0) if ak > 0 else None)
            continue
        r = -ak / bk
        iv = (max(0.0, r), 1.0) if bk > 0 else (0.0, min(1.0, r))
        ivs.append(iv if iv[0] <= iv[1] else None)
    if mode == "all":
        lo, hi = 0.0, 1.0
        for iv in ivs:
            if iv is None:
                return []
            lo, hi = max(lo, iv[0]), min(hi, iv[1])
        return [(lo, hi)] if lo <= hi else []
    return [iv for iv in ivs if iv is not None]


def _nearest(ivs: Sequence[tuple[float, float]], x0: float) -> tuple[float, float, float] | None:
    """(boundary nearest x0, interval lo, interval hi)."""
    best = None
    for lo, hi in ivs:
        b = min(max(x0, lo), hi)
        if best is None or abs(b - x0) < abs(best[0] - x0):
            best = (b, lo, hi)
    return best


def _fmt(x: float) -> str:
    return f"{x:.6g}" if x not in (0.0, 1.0) else str(int(x))


def _candidates(b: float, lo: float, hi: float, x0: float) -> list[float]:
    """Values just inside [lo, hi] from boundary b (away from x0), rounded for ``--set``."""
    out = []
    direction = 1.0 if b >= x0 else -1.0
    far = hi if direction > 0 else lo
    for step in (1e-6, 1e-4, 1e-2):
        x = b + direction * max(step, step * abs(b))
        if (x - far) * direction > 0:
            x = far
        for digits in (6, 8, 12):
            r = float(f"{x:.{digits}g}")
            if lo <= r <= hi:
                out.append(r)
                break
    out.append((b + far) / 2)
    return list(dict.fromkeys(min(1.0, max(0.0, v)) for v in out))


def flip(
    evidence: Any,
    target: str,
    goal: str | None = "leads",
    model: Any = None,
    *,
    threshold: float = 0.5,
    max_findings: int = 3,
    strength: float = 10.0,
    level: float = 0.95,
) -> Flip:
    """Every single number, and the smallest sets of findings, whose change flips a conclusion.

    Parameters
    ----------
    evidence : dict or list of "NAME=STATE"
    target : str
        The diagnosis (an unobserved node; for ``"leads"`` compared with the model's other
        unobserved origins).
    goal : {"leads", "threshold"} or "P >= p"
        ``"leads"`` (or ``"TARGET leads"``): the target has the highest P(present) among the
        origins; ``"threshold"``: P(target present) >= ``threshold`` (``"P >= 0.6"`` or
        ``"P(TARGET) >= 0.6"`` set the threshold too). When the goal already holds, the
        changes reported are those that break it.
    model : optional
    threshold : float
        For ``goal="threshold"`` (default 0.5).
    max_findings : int
        Largest set of finding changes searched (breadth-first, stops at the first size with
        a solution).
    strength : float
        Equivalent sample size for pgmpy networks without a model file.
    level : float
        Coverage of the credible interval of each number.

    Returns
    -------
    Flip

    Examples
    --------
    >>> from kneehip_bn import flip
    >>> fl = flip({"hip_pain": "present"}, target="hip_pathology", goal="threshold",
    ...           model="knee_hip_basic")
    >>> fl.goal
    'P(hip_pathology) >= 0.5'
    """
    import pandas as pd

    goal, threshold = _parse_goal(goal, target, threshold)
    if max_findings < 0:
        raise KneeHipError(f"max_findings: expected a number >= 0, found {max_findings!r}")
    m, eng, ev, flags = setup_case(evidence, model)
    if target not in eng.index:
        raise UnknownNameError.for_name("node", target, eng.variables, where="target")
    if target in ev:
        raise EvidenceError(f"target {target}: expected an unobserved diagnosis, found "
                            f"{target}={ev[target]} in the evidence")
    diags = [o for o in origin_list(m, eng, None) if o not in ev]
    if target not in diags:
        diags.insert(0, target)
    t = diags.index(target)
    on = [eng.state_index[d][on_state(eng.states[d])] for d in diags]
    cols = list(ev)
    codes = evidence_codes(eng, [ev], cols)

    def run(e: Engine, c: np.ndarray = codes) -> tuple[np.ndarray, np.ndarray]:
        r = e.batch(c, cols, targets=diags, on_impossible="nan")
        return r.log_evidence, np.stack([r.marginals[d][:, k] for d, k in zip(diags, on)], 1)

    lpe0, post0 = run(eng)
    if not math.isfinite(lpe0[0]):
        raise ImpossibleEvidenceError.for_evidence(ev)
    post0 = post0[0]
    met_now = bool(_goal_ok(post0[None], t, goal, threshold, True)[0])
    want = not met_now
    if goal == "leads":
        goal_text = f"{target} leads" if want else f"{target} no longer leads"
    else:
        goal_text = (f"P({target}) >= {threshold:g}" if want else f"P({target}) < {threshold:g}")
    leader = diags[int(np.argmax(post0))]

    aim = (t, goal, threshold, want)
    rows, unverified = _number_flips(m, eng, run, float(lpe0[0]), post0, aim, strength, level)
    cols_out = ["set", "parameter", "node", "kind", "current", "needed", "lo", "hi",
                "interval_distance", "posterior_after", "verified"]
    params = pd.DataFrame(rows, columns=cols_out)
    params = params.sort_values(["interval_distance", "parameter"], kind="stable").reset_index(
        drop=True)
    notes = []
    if unverified:
        notes.append(f"{len(unverified)} number(s) reach the goal only at a knife-edge value "
                     "that did not verify after rounding, left out: " + ", ".join(unverified))

    found = _finding_flips(m, eng, ev, run, diags, on, aim, max_findings)
    return Flip(target=target, goal=goal_text, met_now=met_now, posterior=float(post0[t]),
                leader=leader, evidence=ev, parameters=params, findings=found, red_flags=flags,
                notes=notes)


def _parse_goal(goal: str | None, target: str, threshold: float) -> tuple[str, float]:
    """``"leads"`` or ``"threshold"`` and the threshold, from the ``goal`` forms of :func:`flip`."""
    goal = (goal or "leads").strip()
    m_goal = re.fullmatch(r"(?:p|P)(?:\((\w+)\))?\s*>=\s*([0-9.eE+-]+)", goal)
    if m_goal:  # "P >= 0.6" or "P(target) >= 0.6"
        if m_goal.group(1) not in (None, target):
            raise KneeHipError(f"goal {goal!r}: expected P({target}) >= P (the target), found "
                               f"P({m_goal.group(1)})")
        try:
            threshold = float(m_goal.group(2))
        except ValueError:
            raise KneeHipError(f"goal {goal!r}: expected a probability after '>='") from None
        goal = "threshold"
    elif goal in (f"{target} leads", "target leads"):
        goal = "leads"
    if goal not in GOALS:
        raise UnknownNameError.for_name("goal", goal, GOALS)
    if not 0 < threshold < 1:
        raise KneeHipError(f"threshold: expected a probability between 0 and 1, found {threshold!r}")
    return goal, threshold


def _number_flips(m: Any, eng: Engine, run: Callable, lpe0: float, post0: np.ndarray,
                  aim: tuple[int, str, float, bool], strength: float, level: float
                  ) -> tuple[list[dict[str, Any]], list[str]]:
    """The single numbers whose change reaches the goal (rows of ``Flip.parameters``, not
    yet sorted), and those whose boundary did not verify after rounding.

    Each posterior is linear-fractional in one number: two engine passes give the interval
    of values where the goal holds; the value nearest the current one is then checked with
    the model file's own ``--set`` edit."""
    t, goal, threshold, want = aim
    spec = m if isinstance(m, ModelSpec) else None
    rows = []
    unverified: list[str] = []
    for p in parameters_of(m, eng, strength):
        x0 = p.value
        x1 = x0 + 0.5 * (1 - x0) if x0 < 0.5 else 0.5 * x0
        lpe1, post1 = run(eng.with_tables({p.node: p.table(x1)}))
        d1 = math.exp(lpe1[0] - lpe0) if math.isfinite(lpe1[0]) else 0.0
        n1 = post1[0] * d1 if d1 > 0 else np.zeros(len(post0))
        # N_d(x) = post0_d + bn_d (x - x0), D(x) = 1 + bd (x - x0)  (both / P(e) now)
        bn = (n1 - post0) / (x1 - x0)
        bd = (d1 - 1.0) / (x1 - x0)

        def lin(ca: np.ndarray, cb: np.ndarray, x0: float = x0) -> tuple[np.ndarray, np.ndarray]:
            return ca - cb * x0, cb  # a + b x form

        if goal == "leads":
            others = [j for j in range(len(post0)) if j != t]
            if want:  # N_t - N_j > 0 for all j
                a, b = lin(post0[t] - post0[others], bn[t] - bn[others])
                ivs = _solve(a, b, "all")
            else:  # N_j - N_t >= 0 for some j
                a, b = lin(post0[others] - post0[t], bn[others] - bn[t])
                ivs = _solve(a, b, "any")
        else:
            s = 1.0 if want else -1.0  # (N_t - thr D) >= 0, or < 0
            a, b = lin(np.array([s * (post0[t] - threshold)]), np.array([s * (bn[t] - threshold * bd)]))
            ivs = _solve(a, b, "all")
        near = _nearest(ivs, x0)
        if near is None:
            continue
        b0, lo_iv, hi_iv = near
        if 1.0 + bd * (b0 - x0) <= 1e-9:  # only where the evidence becomes impossible
            continue
        done = None
        for x in _candidates(b0, lo_iv, hi_iv, x0):
            if x == x0:
                continue
            expr = f"{p.name}={_fmt(x)}"
            table = _applied_table(spec, expr, p, x)
            lp, po = run(eng.with_tables({p.node: table}))
            if math.isfinite(lp[0]) and _goal_ok(po, t, goal, threshold, want)[0]:
                done = (x, expr, float(po[0, t]))
                break
        if done is None:
            unverified.append(f"{p.name} (boundary {b0:.6g})")
            continue
        x, expr, p_after = done
        lo, hi = beta_interval(p.value, p.strength, level)
        span = (hi - x0) if x > x0 else (x0 - lo)
        dist = abs(x - x0) / span if span > 0 else math.inf
        rows.append({"set": expr, "parameter": p.name, "node": p.node, "kind": p.kind,
                     "current": x0, "needed": x, "lo": lo, "hi": hi, "interval_distance": dist,
                     "posterior_after": p_after, "verified": True})
    return rows, unverified


def _finding_flips(m: Any, eng: Engine, ev: dict[str, str], run: Callable, diags: list[str],
                   on: list[int], aim: tuple[int, str, float, bool], max_findings: int
                   ) -> list[list[dict[str, str]]]:
    """The smallest sets of finding changes that reach the goal, breadth-first over set
    sizes (each verified by a fresh single query)."""
    t, goal, threshold, want = aim
    cols = list(ev)
    groups = node_groups(m)
    players = [k for k in ev if groups.get(k) != "context"]
    found: list[list[dict[str, str]]] = []
    for k in range(1, min(max_findings, len(players)) + 1):
        changes = []
        for combo in itertools.combinations(players, k):
            alts = [[s for s in eng.states[f] if s != ev[f]] for f in combo]
            for states in itertools.product(*alts):
                changes.append(dict(zip(combo, states)))
        if not changes:
            break
        rows_ev = [{**ev, **c} for c in changes]
        lp, po = run(eng, evidence_codes(eng, rows_ev, cols))
        ok = np.isfinite(lp) & _goal_ok(po, t, goal, threshold, want)
        for i in np.flatnonzero(ok):
            # verified by a fresh single query
            chk = eng.posterior(rows_ev[i], targets=diags)
            pv = np.array([[chk[d][j] for d, j in zip(diags, on)]])
            if _goal_ok(pv, t, goal, threshold, want)[0]:
                found.append([{"node": f, "from": ev[f], "to": s} for f, s in changes[i].items()])
        if found:
            break
    return found


def _applied_table(spec: Any, expr: str, p: Any, x: float) -> np.ndarray:
    """The edited node's table after applying the ``--set`` expression to the model file
    (for a network without a model file: the parameter's own table function)."""
    if spec is None:
        return p.table(x)
    edited = apply_overrides(spec, [expr])
    return cpd_array(edited, p.node)
