"""Shapley-value attribution of a case's findings to each diagnosis's log-odds.

The leave-one-out weight of evidence of :func:`~kneehip_bn.explain` asks "what does this
finding add to all the others?"; with interacting findings (two findings explaining each
other away) those weights do not add up to anything. The Shapley value shares the total
change fairly: the value of a set ``S`` of the case's findings is the natural-log posterior
odds of the diagnosis given ``S`` and the context (the ``context`` nodes of the model, such
as age, always given),

``v(S) = ln P(d | context, S) - ln P(not d | context, S)``,

and a finding's Shapley value is its marginal contribution ``v(S + f) - v(S)`` averaged over
every order in which the findings could be learned. The values add up exactly to
``v(all) - v(none)``: the change from the context alone (efficiency, checked on every call).

Up to ``exact_max`` findings (12 by default: 4,096 subsets) every subset is evaluated in one
batched engine pass; beyond, ``n_permutations`` random orders are sampled (antithetic pairs)
and each value's standard error is reported.

Examples
--------
>>> from kneehip_bn import shapley
>>> sh = shapley({"knee_pain": "present", "knee_effusion": "present", "hip_pain": "present"},
...              diagnosis="knee_pathology", model="knee_hip_basic")
>>> bool(abs(sh.values["knee_pathology"].sum()
...          - (sh.total["knee_pathology"] - sh.base["knee_pathology"])) < 1e-9)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kneehip_bn.causal.common import format_evidence, setup_case, text_with_flags, with_flags
from kneehip_bn.errors import EvidenceError, KneeHipError, UnknownNameError
from kneehip_bn.inference.engine import Engine
from kneehip_bn.inference.queries import node_groups, on_state
from kneehip_bn.teaching.common import logit

__all__ = ["Shapley", "shapley"]

EXACT_MAX = 12


@dataclass
class Shapley:
    """Shapley values of the findings on each diagnosis's natural-log posterior odds.

    Attributes
    ----------
    values : pandas.DataFrame
        Findings x diagnoses (nats); each column adds up to ``total - base``.
    stderr : pandas.DataFrame or None
        Monte Carlo standard errors (``None`` when exact).
    loo : pandas.DataFrame
        Leave-one-out weights of evidence (``v(all) - v(all without f)``), for comparison.
    base, total : pandas.Series
        Log-odds of each diagnosis given the context alone, and given every finding.
    method : str
        ``"exact"`` or ``"permutation sampling (N orders)"``.
    context : dict
        Evidence always given (context nodes).
    """

    values: Any
    stderr: Any
    loo: Any
    base: Any
    total: Any
    method: str
    evidence: dict[str, str]
    context: dict[str, str]
    red_flags: list[str] = field(default_factory=list)

    def as_nested(self) -> dict[str, dict[str, float]]:
        """``{diagnosis: {finding: value}}``."""
        return {d: {f: float(v) for f, v in self.values[d].items()} for d in self.values.columns}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"shapley": {diagnosis: {finding: value}}, "base", "total",
        "stderr", "loo", "method", "units", "context", "evidence"}``."""
        def nest(df: Any) -> dict[str, dict[str, float]] | None:
            if df is None:
                return None
            return {d: {f: float(v) for f, v in df[d].items()} for d in df.columns}

        return with_flags({
            "shapley": self.as_nested(), "base": {k: float(v) for k, v in self.base.items()},
            "total": {k: float(v) for k, v in self.total.items()}, "stderr": nest(self.stderr),
            "loo": nest(self.loo), "method": self.method,
            "units": "natural-log posterior odds (nats); values add up to total - base",
            "context": dict(self.context), "evidence": dict(self.evidence),
        }, self.red_flags)

    def __str__(self) -> str:
        import pandas as pd

        lines = [f"Findings: {format_evidence(self.evidence)}  (context: {format_evidence(self.context)})",
                 f"Shapley values on the log-odds of each diagnosis ({self.method}; nats)", ""]
        df = self.values.copy()
        df.loc["(context alone)"] = self.base
        df.loc["(all findings)"] = self.total
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            lines.append(df.to_string(float_format=lambda x: f"{x:+.3f}"))
        if self.stderr is not None:
            lines += ["", f"largest standard error: {float(np.nanmax(self.stderr.values)):.4f}"]
        return text_with_flags("\n".join(lines), self.red_flags)


def _values(eng: Engine, masks: np.ndarray, players: Sequence[str], ev: Mapping[str, str],
            context: Mapping[str, str], diags: Sequence[str]) -> np.ndarray:
    """v(S) for each bitmask (rows) and diagnosis (columns), in one batched pass."""
    cols = list(context) + list(players)
    codes = np.full((len(masks), len(cols)), -1, dtype=np.intp)
    for j, c in enumerate(context):
        codes[:, j] = eng.state_index[c][context[c]]
    for i, f in enumerate(players):
        on = (masks >> i) & 1
        codes[:, len(context) + i] = np.where(on == 1, eng.state_index[f][ev[f]], -1)
    res = eng.batch(codes, cols, targets=list(diags))
    out = np.empty((len(masks), len(diags)))
    for k, d in enumerate(diags):
        out[:, k] = logit(res.marginals[d][:, eng.state_index[d][on_state(eng.states[d])]])
    if not np.isfinite(out).all():
        bad = np.argwhere(~np.isfinite(out))[0]
        sub = [players[i] for i in range(len(players)) if (int(masks[bad[0]]) >> i) & 1]
        raise EvidenceError(
            f"shapley: {diags[bad[1]]} is certain (probability 0 or 1) given the context and "
            f"{sub or 'no findings'}: expected diagnoses with finite log-odds; leave it out "
            "(diagnosis=...)")
    return out


def shapley(
    evidence: Any,
    diagnosis: str | Sequence[str] | None = None,
    model: Any = None,
    *,
    exact_max: int = EXACT_MAX,
    n_permutations: int = 2000,
    seed: int = 0,
) -> Shapley:
    """Exact Shapley values of the case's findings on each diagnosis's log posterior odds.

    Parameters
    ----------
    evidence : dict or list of "NAME=STATE"
        The case. Nodes of the ``context`` group (age, activity) are always given; every
        other observed node is a player.
    diagnosis : str or list of str, optional
        The diagnoses (default: every unobserved ``origin`` of the model).
    model : optional
    exact_max : int
        Enumerate all ``2**n`` subsets up to this many findings; sample beyond.
    n_permutations : int
        Orders sampled beyond ``exact_max`` (in antithetic pairs).
    seed : int
        Random seed of the sampling.

    Returns
    -------
    Shapley

    Examples
    --------
    >>> from kneehip_bn import shapley
    >>> sh = shapley({"age_group": "60_plus", "knee_pain": "present", "hip_pain": "present"},
    ...              model="knee_hip_basic")
    >>> sorted(sh.values.index)
    ['hip_pain', 'knee_pain']
    """
    import pandas as pd

    m, eng, ev, flags = setup_case(evidence, model)
    groups = node_groups(m)
    context = {k: v for k, v in ev.items() if groups.get(k) == "context"}
    players = [k for k in ev if k not in context]
    if diagnosis is None:
        diags = [n for n, g in groups.items() if g == "origin" and n not in ev and n in eng.index]
        if not diags:
            raise KneeHipError("shapley: expected unobserved origins to explain, found none; "
                               "pass diagnosis=NODE")
    else:
        diags = [diagnosis] if isinstance(diagnosis, str) else list(diagnosis)
        for d in diags:
            if d not in eng.index:
                raise UnknownNameError.for_name("node", d, eng.variables, where="diagnosis")
            if d in ev:
                raise EvidenceError(f"diagnosis {d}: expected an unobserved node, found "
                                    f"{d}={ev[d]} in the evidence")
    n = len(players)
    full = (1 << n) - 1
    stderr = None
    if n <= exact_max:
        masks = np.arange(1 << n, dtype=np.int64)
        v = _values(eng, masks, players, ev, context, diags)
        size = np.array([bin(int(b)).count("1") for b in masks])
        w = np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n)
                      if s < n else 0.0 for s in range(n + 1)])
        phi = np.zeros((n, len(diags)))
        for i in range(n):
            without = masks[(masks >> i) & 1 == 0]
            phi[i] = (w[size[without]][:, None] * (v[without | (1 << i)] - v[without])).sum(0)
        method = "exact"
        base, total = v[0], v[full]
        loo = np.array([v[full] - v[full & ~(1 << i)] for i in range(n)]).reshape(n, len(diags))
    else:
        if n_permutations < 2:
            raise KneeHipError(f"n_permutations: expected at least 2, found {n_permutations}")
        rng = np.random.default_rng(seed)
        half = (n_permutations + 1) // 2
        perms = np.array([rng.permutation(n) for _ in range(half)])
        perms = np.concatenate([perms, perms[:, ::-1]])  # antithetic: each order and its reverse
        bits = (np.int64(1) << perms.astype(np.int64))
        prefix = np.concatenate([np.zeros((len(perms), 1), dtype=np.int64),
                                 np.cumsum(bits, axis=1)], axis=1)  # (m, n + 1)
        loo_masks = np.array([full & ~(1 << i) for i in range(n)], dtype=np.int64)
        uniq, inv = np.unique(np.concatenate([prefix.ravel(), loo_masks]), return_inverse=True)
        vals = _values(eng, uniq, players, ev, context, diags)
        vp = vals[inv[:prefix.size]].reshape(*prefix.shape, len(diags))
        contrib = np.diff(vp, axis=1)  # (m, n, diags): the finding perms[:, k] adds contrib[:, k]
        per = np.zeros((len(perms), n, len(diags)))
        per[np.arange(len(perms))[:, None], perms] = contrib
        # antithetic pairs are averaged first, so the standard error is over independent pairs
        pair = 0.5 * (per[:half] + per[half:])
        phi = pair.mean(axis=0)
        se = pair.std(axis=0, ddof=1) / math.sqrt(half)
        stderr = pd.DataFrame(se, index=pd.Index(players, name="finding"), columns=diags)
        method = f"permutation sampling ({2 * half} orders, {half} antithetic pairs)"
        base, total = vp[0, 0], vp[0, -1]
        loo = total[None, :] - vals[inv[prefix.size:]]
    gap = np.abs(phi.sum(axis=0) - (total - base))
    if (gap > 1e-8 * np.maximum(1.0, np.abs(total - base))).any():
        raise KneeHipError(f"shapley: efficiency check failed (values add up to within "
                           f"{float(gap.max()):.3g} of the total change): please report this")
    idx = pd.Index(players, name="finding")
    return Shapley(values=pd.DataFrame(phi, index=idx, columns=diags), stderr=stderr,
                   loo=pd.DataFrame(loo, index=idx, columns=diags),
                   base=pd.Series(base, index=diags, name="base"),
                   total=pd.Series(total, index=diags, name="total"), method=method,
                   evidence=ev, context=context, red_flags=flags)
