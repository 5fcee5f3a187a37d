"""Do the findings fit together? Jensen's conflict measure.

:func:`conflict` computes ``conf(e) = log2(prod_i P(e_i) / P(e))`` with each finding's
contribution and, optionally, its tail probability among cases simulated from the model:
a positive conflict flags an atypical or contradictory case.

Examples
--------
>>> from kneehip_bn.teaching.conflict import conflict
>>> conflict({"knee_pain": "present", "knee_effusion": "present"}, model="knee_hip_basic").flagged
False
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kneehip_bn.errors import EvidenceError, ImpossibleEvidenceError, ParameterError
from kneehip_bn.inference.queries import Evidence, red_flag_warning, red_flags_present
from kneehip_bn.inference.sampling import forward_sample
from kneehip_bn.teaching.common import LN2, evidence_codes, setup_query

__all__ = ["CONFLICT_TOL", "Conflict", "conflict"]

_EPS = 1e-300
#: conflict (bits) above which findings are flagged: rounding noise (~1e-15) is not conflict
CONFLICT_TOL = 1e-9


@dataclass
class Conflict:
    """Jensen's conflict measure of a set of findings.

    Attributes
    ----------
    conflict : float
        ``conf(e) = log2(prod_i P(e_i) / P(e))`` in bits. Positive: the findings are less
        likely together than if they were independent (an atypical or contradictory case);
        negative: they support each other.
    contributions : pandas.DataFrame
        Per finding: ``prior`` P(e_i), ``given_rest`` P(e_i | other findings),
        ``contribution`` = log2(P(e_i) / P(e_i | rest)) = conf(e) - conf(e without e_i),
        positive when the finding is surprising given the others.
    p_value : float or None
        Share of cases simulated from the model (same findings observed) whose conflict is
        at least as high (``None`` unless ``n_sim > 0``).
    simulated : ndarray or None
        The simulated conflict values.
    """

    conflict: float
    contributions: Any
    evidence: dict[str, str]
    do: dict[str, str]
    p_value: float | None = None
    simulated: np.ndarray | None = None
    red_flags: list[str] = field(default_factory=list)

    @property
    def warning(self) -> str:
        """"REFER: red flag ..." when a red-flag finding is present, else ``""``."""
        return red_flag_warning(self.red_flags)

    @property
    def flagged(self) -> bool:
        """True when conf(e) > :data:`CONFLICT_TOL` bits (the findings disagree with each
        other); rounding noise of a few 1e-16 bits never flips the verdict."""
        return self.conflict > CONFLICT_TOL

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        head = {"warning": self.warning} if self.red_flags else {}
        return {**head, "red_flags": list(self.red_flags),
                "conflict_bits": self.conflict, "flagged": self.flagged,
                "p_value": self.p_value, "evidence": dict(self.evidence), "do": dict(self.do),
                "contributions": self.contributions.reset_index().to_dict(orient="records")}

    def __str__(self) -> str:
        verdict = ("CONFLICT: the findings are less likely together than apart (atypical or "
                   "contradictory case)" if self.flagged else
                   "no conflict: the findings support each other")
        lines = [self.warning, ""] if self.red_flags else []
        lines.append(f"conf(e) = {self.conflict:+.3f} bits -> {verdict}.")
        if self.p_value is not None:
            lines.append(f"Share of {len(self.simulated)} cases simulated from the model with at "
                         f"least this conflict: {self.p_value:.3f}.")
        lines.append("")
        labs = [f"{n}={r['state']}" for n, r in self.contributions.iterrows()]
        w = max([len(x) for x in labs] + [8]) + 2
        lines.append(f"{'finding':<{w}}{'P(e_i)':>9}{'P(e_i|rest)':>13}{'bits':>8}")
        for lab, (_, r) in zip(labs, self.contributions.iterrows()):
            lines.append(f"{lab:<{w}}{r['prior']:>9.3f}{r['given_rest']:>13.3f}"
                         f"{r['contribution']:>+8.2f}")
        lines.append("bits = log2 P(e_i) / P(e_i | the other findings): positive when a finding "
                     "is surprising given the rest.")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        head = html.escape(str(self).split("\n")[0])
        fmt = {"prior": "{:.3f}", "given_rest": "{:.3f}", "contribution": "{:+.2f}"}
        try:  # pandas' Styler needs jinja2, which is not a dependency
            body = self.contributions.style.format(fmt).to_html()
        except (AttributeError, ImportError):
            body = self.contributions.to_html(float_format="{:.3f}".format)
        return f"<p>{head}</p>" + body


def conflict(
    evidence: Evidence,
    model: Any = None,
    *,
    do: Evidence = None,
    n_sim: int = 0,
    seed: int = 0,
) -> Conflict:
    """Jensen's conflict measure ``conf(e) = log2(prod_i P(e_i) / P(e))`` with per-finding
    contributions and, optionally, its tail probability among simulated cases.

    Parameters
    ----------
    evidence : dict or list of "NAME=STATE"
    model : optional
    do : dict, optional
        Interventions (all probabilities are then under the intervention).
    n_sim : int, default 0
        Simulate this many cases from the model, observe the same nodes, and report the
        share whose conflict is at least as high (``p_value``).
    seed : int
        Random seed of the simulation.

    Examples
    --------
    >>> from kneehip_bn import conflict
    >>> c = conflict({"knee_pain": "present", "knee_effusion": "present"}, model="knee_hip_basic")
    >>> c.flagged
    False
    """
    import pandas as pd

    if isinstance(n_sim, bool) or not isinstance(n_sim, (int, np.integer)) or n_sim < 0:
        raise ParameterError(f"conflict: n_sim: expected a whole number of simulated cases "
                             f">= 0, found {n_sim!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"conflict: seed: expected a whole number >= 0, found {seed!r}")
    m, eng, ev, dov = setup_query(evidence, do, model)
    if not ev:
        raise EvidenceError("conflict: expected at least one finding, found none")
    names = list(ev)
    rows = [ev] + [{k: v for k, v in ev.items() if k != f} for f in names]
    res = eng.batch(evidence_codes(eng, rows, names), names, targets=names, do=dov or None,
                    on_impossible="nan")
    lp = res.log_evidence / LN2  # bits
    if not np.isfinite(lp[0]):
        raise ImpossibleEvidenceError.for_evidence(
            ev, dov, hint="the conflict measure needs findings the model allows")
    prior = eng.posterior({}, targets=names, do=dov or None)
    lpi = np.array([math.log2(max(float(prior[n][eng.state_index[n][ev[n]]]), _EPS))
                    for n in names])
    conf = float(lpi.sum() - lp[0])
    contrib = lpi + lp[1:] - lp[0]
    if len(names) == 1:  # conf of one finding is 0 by definition (log2 P(e)/P(e))
        conf, contrib = 0.0, np.zeros(1)
    df = pd.DataFrame({
        "state": [ev[n] for n in names],
        "prior": np.exp2(lpi),
        "given_rest": np.exp2(lp[0] - lp[1:]),
        "contribution": contrib,
    }, index=pd.Index(names, name="finding"))
    out = Conflict(conflict=conf, contributions=df, evidence=ev, do=dov,
                   red_flags=red_flags_present(m, ev))
    if n_sim and n_sim > 0:
        rng = np.random.default_rng(seed)
        sample = forward_sample(eng, int(n_sim), rng, dov)
        codes = sample[:, [eng.index[n] for n in names]]
        sim = eng.batch(codes, names, targets=names[:1], do=dov or None, on_impossible="nan")
        pri = {n: np.log2(np.maximum(prior[n], _EPS)) for n in names}
        sim_l = sum(pri[n][codes[:, j]] for j, n in enumerate(names))
        conf_sim = sim_l - sim.log_evidence / LN2
        if len(names) == 1:
            conf_sim = np.zeros_like(conf_sim)
        out.simulated = conf_sim
        out.p_value = float(np.mean(conf_sim >= conf - CONFLICT_TOL))
    return out

