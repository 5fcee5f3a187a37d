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

from kneehip_bn.causal.attribution import shapley
from kneehip_bn.causal.counterfactuals import counterfactual, probability_of_causation
from kneehip_bn.causal.flips import flip
from kneehip_bn.causal.maxproduct import mpe

__all__ = ["counterfactual", "flip", "mpe", "probability_of_causation", "shapley"]
