"""What to ask next: the unobserved finding or test expected to tell the most.

:func:`next_best_test` ranks candidates by the mutual information, in bits, between the
candidate and the joint state of the unobserved origins given the evidence, with costs.
The joint posterior over the origins and ``P(candidate | e, origins)`` for every
configuration come from one batched ``Engine.batch`` pass.

Examples
--------
>>> from kneehip_bn.teaching.next_test import next_best_test
>>> nbt = next_best_test({"knee_pain": "present"}, model="knee_hip_basic")
>>> bool((nbt["expected_information_gain"].diff().dropna() <= 1e-12).all())
True
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kneehip_bn.errors import EvidenceError, ImpossibleEvidenceError, UnknownNameError
from kneehip_bn.inference.engine import Engine
from kneehip_bn.inference.queries import Evidence, node_groups
from kneehip_bn.teaching.common import flag_attrs, on_index, origin_list, setup_query

__all__ = ["next_best_test"]


def _origin_joint(eng: Engine, ev: Mapping[str, str], dov: Mapping[str, str],
                  origins: Sequence[str], targets: Sequence[str]):
    """P(origin configuration | e) for every configuration of ``origins`` and
    P(target | e, configuration), from one batched pass.

    Returns (configs (n_cfg, n_origins) state indices, weights (n_cfg,), marginals
    {target: (n_cfg, card)}).
    """
    cards = [int(eng.card[eng.index[o]]) for o in origins]
    configs = np.array(list(itertools.product(*[range(c) for c in cards])), dtype=np.intp)
    configs = configs.reshape(-1, len(origins))
    cols = list(ev) + list(origins)
    base = np.array([eng.state_index[k][v] for k, v in ev.items()], dtype=np.intp)
    codes = np.hstack([np.broadcast_to(base, (len(configs), len(base))), configs])
    res = eng.batch(codes, cols, targets=list(targets) or None, do=dov or None,
                    on_impossible="nan")
    lp = res.log_evidence
    if not np.isfinite(lp).any():
        raise ImpossibleEvidenceError.for_evidence(ev, dov)
    w = np.exp(lp - lp[np.isfinite(lp)].max())
    w[~np.isfinite(lp)] = 0.0
    w = w / w.sum()
    margs = {t: np.nan_to_num(res.marginals[t], nan=0.0) for t in targets}
    return configs, w, margs


def _entropy_bits(p: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Shannon entropy in bits (``0 log 0 = 0``), as ``scipy.stats.entropy(p, base=2)`` for a
    normalised ``p`` (numpy here: see :mod:`kneehip_bn.teaching.common`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0), axis=axis)


def _leader(configs: np.ndarray, weights: np.ndarray, on_idx: np.ndarray) -> int:
    """Index of the origin with the highest marginal P(on) under a joint over configs."""
    if weights.sum() <= 0:
        return -1
    marg = ((configs == on_idx[None, :]) * weights[:, None]).sum(axis=0) / weights.sum()
    return int(np.argmax(marg))


def next_best_test(
    evidence: Evidence = None,
    model: Any = None,
    candidates: Sequence[str] | None = None,
    costs: Mapping[str, float] | None = None,
    *,
    do: Evidence = None,
    origins: Sequence[str] | None = None,
) -> Any:
    """Rank unobserved findings and tests by the information they are expected to give.

    Expected information gain of a candidate ``F``: the mutual information, in bits,
    between ``F`` and the joint state of the (unobserved) origins ``O`` given the current
    evidence ``e``: ``I(F; O | e) = H(O | e) - sum_f P(f | e) H(O | e, f)``. The joint
    posterior over the origins (32 states for five two-state origins) and ``P(F | e, o)``
    for every candidate come from one batched engine pass with each origin configuration
    added as evidence.

    Parameters
    ----------
    evidence : dict or list of "NAME=STATE"
    model : optional
    candidates : list of str, optional
        Default: every unobserved node of the groups ``finding`` and ``test``.
    costs : dict, optional
        ``{candidate: cost}`` (positive; missing ones cost 1) for the ``gain_per_cost``
        column.
    do : dict, optional
        Interventions.
    origins : list of str, optional
        The diagnostic targets (default: the ``origin`` group).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``finding``, highest gain first: ``expected_information_gain`` (bits),
        ``p_on`` (P(present/positive | e)), ``p_change_leading`` (probability that observing
        it changes the leading origin), ``leading_if_on``, ``leading_if_not_on``, ``cost``,
        ``gain_per_cost``. ``df.attrs["entropy_bits"]`` is H(O | e), the most any test can
        give; ``df.attrs["leading"]`` the current leading origin.

    Examples
    --------
    >>> from kneehip_bn import next_best_test
    >>> nbt = next_best_test({"low_back_pain": "present", "radiating_leg_pain": "present"}, model="knee_hip_basic")
    >>> nbt.index[0] in {"leg_numbness_tingling", "straight_leg_raise", "hip_pain", "knee_pain",
    ...                  "femoral_nerve_stretch", "fadir_test", "hip_internal_rotation_limited"}
    True
    """
    import pandas as pd

    m, eng, ev, dov = setup_query(evidence, do, model)
    olist = [o for o in origin_list(m, eng, origins, strict=True)
             if o not in ev and o not in dov]
    if candidates is None:
        groups = node_groups(m)
        cands = [n for n in groups if groups[n] in ("finding", "test") and n in eng.index
                 and n not in ev and n not in dov]
    else:
        cands = []
        for c in candidates:
            if c not in eng.index:
                raise UnknownNameError.for_name("node", c, eng.variables, where="candidates")
            if c in ev or c in dov:
                raise EvidenceError(f"candidates: expected an unobserved node, found '{c}' "
                                    f"already {'observed' if c in ev else 'intervened on'}")
            cands.append(c)
    costs = dict(costs or {})
    for k, v in costs.items():
        if k not in cands:
            raise UnknownNameError.for_name("candidate", k, cands, where="costs")
        if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
            raise EvidenceError(f"costs: expected a positive number for {k}, found {v!r}")
    if not olist:
        raise EvidenceError("next_best_test: expected at least one unobserved origin, found "
                            "every origin observed or intervened on")
    configs, w, margs = _origin_joint(eng, ev, dov, olist, cands)
    h_o = float(_entropy_bits(w))
    on_idx = np.array([on_index(eng, o) for o in olist])
    lead0 = _leader(configs, w, on_idx)
    rows = []
    for c in cands:
        joint = w[:, None] * margs[c]  # P(o, f | e)
        pf = joint.sum(axis=0)
        h_cond = sum(pf[f] * _entropy_bits(joint[:, f] / pf[f]) for f in range(len(pf))
                     if pf[f] > 0)
        gain = max(0.0, h_o - float(h_cond))
        k = on_index(eng, c)
        leaders = [_leader(configs, joint[:, f], on_idx) for f in range(len(pf))]
        p_change = float(sum(pf[f] for f in range(len(pf)) if pf[f] > 0 and leaders[f] != lead0))
        not_on = joint.sum(axis=1) - joint[:, k]
        cost = float(costs.get(c, 1.0))
        rows.append({
            "finding": c, "expected_information_gain": gain, "p_on": float(pf[k]),
            "p_change_leading": p_change,
            "leading_if_on": olist[leaders[k]] if pf[k] > 0 else None,
            "leading_if_not_on": (olist[_leader(configs, not_on, on_idx)]
                                  if not_on.sum() > 0 else None),
            "cost": cost, "gain_per_cost": gain / cost,
        })
    cols = ["finding", "expected_information_gain", "p_on", "p_change_leading",
            "leading_if_on", "leading_if_not_on", "cost", "gain_per_cost"]
    df = pd.DataFrame(rows, columns=cols).set_index("finding")
    df = df.sort_values("expected_information_gain", ascending=False, kind="stable")
    df.attrs["entropy_bits"] = h_o
    df.attrs["leading"] = olist[lead0] if lead0 >= 0 else None
    df.attrs["evidence"] = dict(ev)
    df.attrs["origins"] = olist
    flag_attrs(df, m, ev)
    return df

