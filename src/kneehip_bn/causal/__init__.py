"""Per-patient causal questions: counterfactuals, probability of causation, attributions,
minimal changes that flip a conclusion, the most probable explanation.

The front door of four modules (each documented on its own):

- :mod:`kneehip_bn.causal.counterfactuals`: :func:`counterfactual` (abduction, action, prediction on
  the twin network, with an explicit exogenous noise for every mechanism) and
  :func:`probability_of_causation` (PN, PS, and Tian-Pearl bounds).
- :mod:`kneehip_bn.causal.attribution`: :func:`shapley` (exact Shapley values of the findings on each
  diagnosis's log-odds; permutation sampling with a standard error beyond 12 findings).
- :mod:`kneehip_bn.causal.flips`: :func:`flip` (every single number of the model that could flip the
  conclusion, the value it needs and how far that is in its credible interval; the smallest
  sets of findings whose change flips it).
- :mod:`kneehip_bn.causal.maxproduct`: :func:`mpe` (max-product on the compiled junction tree, the best and
  second-best joint state of every unobserved node).

A teaching and research model, not a medical device: when a red-flag finding of the model
is present, every result's text starts with the referral warning and its ``to_dict()`` has
``"warning"`` and ``"red_flags"``.

Examples
--------
>>> import kneehip_bn as kb
>>> case = {"knee_pain": "present", "knee_effusion": "present", "hip_pain": "present",
...         "antalgic_gait_observed": "present"}
>>> cf = kb.counterfactual(case, do={"knee_pathology": "absent"}, target="hip_pain",
...                        model="knee_hip_basic")
>>> float(cf.counterfactual["present"]) < float(cf.factual["present"])
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kneehip_bn.inference.engine import Engine, get_engine
from kneehip_bn.inference.queries import (
    Evidence,
    as_model,
    red_flag_warning,
    red_flags_present,
    resolve_evidence,
)

# resolved on first use by __getattr__ below (the modules import this one's helpers)
__all__ = ["counterfactual", "flip", "mpe", "probability_of_causation", "shapley"]


def _setup(evidence: Evidence, model: Any, what: str = "evidence"
           ) -> tuple[Any, Engine, dict[str, str], list[str]]:
    """(model, engine, resolved evidence, red flags present)."""
    m = as_model(model)
    eng = get_engine(m)
    ev = resolve_evidence(eng, evidence, what=what)
    return m, eng, ev, red_flags_present(m, ev)


def _with_flags(d: dict[str, Any], flags: Sequence[str]) -> dict[str, Any]:
    """``d`` with ``"warning"`` first (when a red flag is present) and ``"red_flags"``."""
    out: dict[str, Any] = {}
    if flags:
        out["warning"] = red_flag_warning(flags)
    out.update(d)
    out["red_flags"] = list(flags)
    return out


def _text_with_flags(text: str, flags: Sequence[str]) -> str:
    return f"{red_flag_warning(flags)}\n\n{text}" if flags else text


def _fmt_ev(ev: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in ev.items()) or "none"


def __getattr__(name: str) -> Any:  # the public functions, imported on first use
    if name in ("counterfactual", "probability_of_causation"):
        from kneehip_bn.causal import counterfactuals

        return getattr(counterfactuals, name)
    if name == "shapley":
        from kneehip_bn.causal.attribution import shapley as f

        return f
    if name == "flip":
        from kneehip_bn.causal.flips import flip as f

        return f
    if name == "mpe":
        from kneehip_bn.causal.maxproduct import mpe as f

        return f
    raise AttributeError(name)
