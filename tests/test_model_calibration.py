"""Calibration of the second-edition model (``knee_hip``) against P3, person level, age 60+.

P3 (Dawson et al., Oxfordshire postal survey, age >= 65, n = 3341; evidence.md row P3)
reports, per person: any knee pain 32.6%, any hip pain 19.2%, hip AND knee pain 11.3%.
The model has one index side and a contralateral side, so "any knee" is index OR
contralateral knee pain, and "any hip" is index OR contralateral hip-region pain. Each
figure is a joint query computed exactly with the engine,

    P(any knee) = 1 - P(knee_pain = absent, contralateral_knee_pain = absent | 60+)
    P(any hip)  = 1 - P(hip_pain = absent, contralateral_hip_pain = absent | 60+)
    P(both)     = P(any knee) + P(any hip) - P(any knee or any hip)

and must lie within 3 percentage points of P3. The engine's joint probabilities are checked
against pgmpy's variable elimination on the same network (an independent implementation).
The model's band is 60+, P3's is 65+: a stated approximation (see docs/readme/model2.md).

Print the figures with ``python tests/test_model_calibration.py`` (or the ``kneehip query``
commands in docs/readme/model2.md).
"""

from __future__ import annotations

import math

import pytest

import kneehip_bn as kb
from kneehip_bn.engine import Engine

AGE = {"age_group": "60_plus"}
KNEE = ("knee_pain", "contralateral_knee_pain")
HIP = ("hip_pain", "contralateral_hip_pain")
P3 = {"any_knee": 0.326, "any_hip": 0.192, "both": 0.113}
TOLERANCE = 0.03


def _none_of(eng: Engine, nodes: tuple[str, ...]) -> float:
    """P(every node in ``nodes`` absent | age 60+), exactly, from two log-probabilities."""
    joint = {**AGE, **{n: "absent" for n in nodes}}
    return math.exp(eng.log_probability(joint) - eng.log_probability(AGE))


def calibration_figures(spec=None) -> dict[str, float]:
    """``{"any_knee", "any_hip", "both"}`` person-level pain probabilities at 60+."""
    eng = kb.get_engine(spec if spec is not None else kb.load_spec("knee_hip"))
    any_knee = 1.0 - _none_of(eng, KNEE)
    any_hip = 1.0 - _none_of(eng, HIP)
    either = 1.0 - _none_of(eng, KNEE + HIP)
    return {"any_knee": any_knee, "any_hip": any_hip, "both": any_knee + any_hip - either}


@pytest.fixture(scope="module")
def spec():
    return kb.load_spec("knee_hip")


@pytest.fixture(scope="module")
def figures(spec):
    return calibration_figures(spec)


@pytest.mark.parametrize("figure", sorted(P3))
def test_person_level_pain_matches_p3_within_3_points(figures, figure):
    got, want = figures[figure], P3[figure]
    assert abs(got - want) <= TOLERANCE, (
        f"{figure}: model {got:.3f} vs P3 {want:.3f} (difference {got - want:+.3f}, "
        f"allowed +-{TOLERANCE})")


def test_figures_are_coherent(figures):
    # both <= each marginal, and the union is at least the larger marginal
    assert 0 < figures["both"] <= min(figures["any_knee"], figures["any_hip"])
    assert figures["any_knee"] + figures["any_hip"] - figures["both"] >= max(
        figures["any_knee"], figures["any_hip"])


def test_joint_queries_agree_with_pgmpy_variable_elimination(spec):
    """The engine's joint P(no knee pain on either side, no hip pain on either side | 60+)
    against pgmpy's VariableElimination (independent code), to 1e-9."""
    import warnings

    from pgmpy.inference import VariableElimination

    eng = kb.get_engine(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ve = VariableElimination(kb.build_network(spec))
        q = ve.query(list(KNEE + HIP), evidence=AGE, joint=True, show_progress=False)
    for nodes in (KNEE, HIP, KNEE + HIP):
        sub = q.marginalize([v for v in q.variables if v not in nodes], inplace=False)
        want = float(sub.get_value(**{n: "absent" for n in nodes}))
        assert _none_of(eng, nodes) == pytest.approx(want, abs=1e-9)


if __name__ == "__main__":  # print the figures: python tests/test_model_calibration.py
    f = calibration_figures()
    for k in ("any_knee", "any_hip", "both"):
        print(f"{k:9s} model {f[k]:.3f}   P3 {P3[k]:.3f}   difference {f[k] - P3[k]:+.3f}")
