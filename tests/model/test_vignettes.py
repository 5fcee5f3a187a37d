"""Face validity: clinical vignettes where a clinician knows what the model should say.

Each case is data, so anyone (a clinician included) can add one:

- ``VIGNETTES``: findings of one patient; ``leads`` is the origin that must rank first in
  ``diagnose()``; ``at_least`` / ``at_most`` bound posteriors P(present) of origins or
  mechanisms.
- ``CONTRASTS``: two situations of the same patient; P(``node`` = present) must move in
  ``direction`` ("up"/"down") from ``before`` to ``after`` (each ``{"evidence", "do"}``),
  optionally by at least ``min_change`` and at most ``max_change`` (absolute).
- ``CALIBRATION``: population figures (P3) the model should reproduce.

These check direction and ranking, which a clinician can vouch for, not our own numbers.
They use the first edition's five-origin vocabulary, so they name that model explicitly
(``MODEL = "knee_hip_basic"``); the second edition's cases are in ``test_vignettes_v2.py``.
"""

from __future__ import annotations

import pytest

from kneehip_bn import diagnose, query

MODEL = "knee_hip_basic"

VIGNETTES = [
    {
        "id": "knee_disease_with_same_side_hip_pain",
        "description": "A patient with a swollen knee, tender joint line and a limp who also has "
                       "pain in the hip on the same side: the knee is the origin and the gait "
                       "change is the likely link to the hip.",
        "evidence": {"knee_effusion": "present", "joint_line_tenderness": "present",
                     "antalgic_gait_observed": "present", "hip_pain": "present"},
        "leads": "knee_pathology",
        "at_least": {"altered_gait": 0.5},
    },
    {
        "id": "upper_lumbar_radiculopathy",
        "description": "Back pain with pain radiating down the leg and a positive femoral nerve "
                       "stretch test, plus knee and hip pain: an upper lumbar root.",
        "evidence": {"low_back_pain": "present", "radiating_leg_pain": "present",
                     "femoral_nerve_stretch": "positive", "knee_pain": "present",
                     "hip_pain": "present"},
        "leads": "lumbar_radiculopathy",
        "at_least": {"nerve_irritation": 0.5, "upper_lumbar_root": 0.2},
    },
    {
        "id": "older_hip_referring_to_knee",
        "description": "A patient over 60 with knee pain whose hip internal rotation is limited "
                       "and whose FADIR test is positive: hip disease referring to the knee.",
        "evidence": {"hip_internal_rotation_limited": "present", "fadir_test": "positive",
                     "age_group": "60_plus", "knee_pain": "present"},
        "leads": "hip_pathology",
    },
    {
        "id": "young_runner_overuse",
        "description": "A young high-impact runner with knee pain that is worse with activity: "
                       "an overuse injury.",
        "evidence": {"age_group": "under_40", "activity_level": "high_impact",
                     "knee_pain": "present", "pain_worse_with_activity": "present"},
        "leads": "overuse_injury",
    },
    {
        "id": "hip_weakness_valgus",
        "description": "Knee pain with dynamic valgus on single-leg squat and a positive "
                       "Trendelenburg sign: hip abductor weakness.",
        "evidence": {"single_leg_squat_valgus": "present", "trendelenburg_sign": "positive",
                     "knee_pain": "present"},
        "leads": "hip_muscle_weakness",
        "at_least": {"knee_malalignment": 0.5},
    },
    {
        "id": "sciatica_without_femoral_sign",
        "description": "Back pain, pain radiating below the knee and numbness in the leg: "
                       "radiculopathy, with the nerve irritated.",
        "evidence": {"low_back_pain": "present", "radiating_leg_pain": "present",
                     "leg_numbness_tingling": "present"},
        "leads": "lumbar_radiculopathy",
        "at_least": {"nerve_irritation": 0.5},
    },
    {
        "id": "upper_root_implies_radiculopathy",
        "description": "An upper lumbar root is only involved in a radiculopathy (structural "
                       "zero): knowing it is involved makes the radiculopathy certain.",
        "evidence": {"upper_lumbar_root": "present"},
        "leads": "lumbar_radiculopathy",
        "at_least": {"lumbar_radiculopathy": 1 - 1e-12},
    },
    {
        "id": "no_findings_no_leader_change",
        "description": "A young, inactive person with no knee or hip pain: every origin stays "
                       "unlikely.",
        "evidence": {"age_group": "under_40", "activity_level": "low", "knee_pain": "absent",
                     "hip_pain": "absent"},
        "at_most": {"knee_pathology": 0.1, "hip_pathology": 0.05, "lumbar_radiculopathy": 0.05,
                    "overuse_injury": 0.05},
    },
]

CONTRASTS = [
    {
        "id": "explaining_away_hip_by_knee",
        "description": "An older patient with hip pain: finding knee disease (effusion, "
                       "tender joint line) explains the hip pain away, so hip disease becomes "
                       "less likely.",
        "node": "hip_pathology",
        "before": {"evidence": {"age_group": "60_plus", "hip_pain": "present"}},
        "after": {"evidence": {"age_group": "60_plus", "hip_pain": "present",
                               "knee_effusion": "present", "joint_line_tenderness": "present"}},
        "direction": "down",
    },
    {
        "id": "treating_the_knee_lowers_hip_pain",
        "description": "For a patient with knee pathology, removing it (do(knee_pathology="
                       "absent)) lowers the chance of hip pain through the gait route.",
        "node": "hip_pain",
        "before": {"evidence": {"age_group": "60_plus", "knee_pathology": "present"}},
        "after": {"evidence": {"age_group": "60_plus"}, "do": {"knee_pathology": "absent"}},
        "direction": "down",
    },
    {
        "id": "contralateral_hip_pain_suggests_weight_shift",
        "description": "Pain in the other hip makes a shift of weight to that leg more likely.",
        "node": "weight_shift",
        "before": {"evidence": {}},
        "after": {"evidence": {"contralateral_hip_pain": "present"}},
        "direction": "up",
    },
    {
        "id": "compensation_is_small_in_absolute_terms",
        "description": "Knee disease raises contralateral hip pain, but only by about one "
                       "point (M1 relative vs M5-M7 absolute rates).",
        "node": "contralateral_hip_pain",
        "before": {"evidence": {"knee_pathology": "absent"}},
        "after": {"evidence": {"knee_pathology": "present"}},
        "direction": "up",
        "max_change": 0.03,
    },
    {
        "id": "hip_disease_causes_knee_pain",
        "description": "The reverse direction: hip disease (intervened on) raises knee pain "
                       "(referred pain and the gait route; X1-X3).",
        "node": "knee_pain",
        "before": {"do": {"hip_pathology": "absent"}},
        "after": {"do": {"hip_pathology": "present"}},
        "direction": "up",
        "min_change": 0.1,
    },
    {
        "id": "knee_disease_weakens_the_hip",
        "description": "Arthrogenic inhibition: knee pathology makes hip muscle weakness more "
                       "likely.",
        "node": "hip_muscle_weakness",
        "before": {"evidence": {"age_group": "40_to_59", "knee_pathology": "absent"}},
        "after": {"evidence": {"age_group": "40_to_59", "knee_pathology": "present"}},
        "direction": "up",
    },
    {
        "id": "high_impact_sport_raises_overuse",
        "description": "High-impact sport makes a knee overuse injury more likely than low "
                       "activity.",
        "node": "overuse_injury",
        "before": {"evidence": {"activity_level": "low"}},
        "after": {"evidence": {"activity_level": "high_impact"}},
        "direction": "up",
    },
    {
        "id": "femoral_stretch_points_to_upper_root",
        "description": "A positive femoral nerve stretch test makes an upper lumbar root more "
                       "likely in a patient with radiculopathy.",
        "node": "upper_lumbar_root",
        "before": {"evidence": {"lumbar_radiculopathy": "present"}},
        "after": {"evidence": {"lumbar_radiculopathy": "present",
                               "femoral_nerve_stretch": "positive"}},
        "direction": "up",
    },
]

CALIBRATION = [
    # P3 (Dawson 2004, age >= 65): knee pain 32.6%, hip pain 19.2%, both 11.3%
    {"id": "P3_knee_pain", "evidence": {"age_group": "60_plus"}, "nodes": ["knee_pain"],
     "target": 0.326, "tolerance": 0.05},
    {"id": "P3_hip_pain", "evidence": {"age_group": "60_plus"}, "nodes": ["hip_pain"],
     "target": 0.192, "tolerance": 0.05},
    {"id": "P3_both", "evidence": {"age_group": "60_plus"}, "nodes": ["knee_pain", "hip_pain"],
     "target": 0.113, "tolerance": 0.05},
]


def p_present(node: str, evidence=None, do=None) -> float:
    """P(node = present/positive) via diagnose() for origins and mechanisms, else query()."""
    dx = diagnose(evidence or {}, do=do or {}, model=MODEL)
    if node in dx.origins.index:
        return float(dx.origins.loc[node, "posterior"])
    if node in dx.mechanisms.index:
        return float(dx.mechanisms.loc[node, "posterior"])
    s = query(node, evidence or {}, do=do or {}, model=MODEL)
    return float(s["positive" if "positive" in s.index else "present"])


@pytest.mark.parametrize("case", VIGNETTES, ids=[c["id"] for c in VIGNETTES])
def test_vignette(case):
    dx = diagnose(case["evidence"], do=case.get("do"), model=MODEL)
    post = {**dx.origins["posterior"].to_dict(), **dx.mechanisms["posterior"].to_dict()}
    if "leads" in case:
        assert dx.origins.index[0] == case["leads"], (case["description"], dx.origins)
    for node, p in case.get("at_least", {}).items():
        assert post[node] >= p, (case["description"], node, post[node])
    for node, p in case.get("at_most", {}).items():
        assert post[node] <= p, (case["description"], node, post[node])


@pytest.mark.parametrize("case", CONTRASTS, ids=[c["id"] for c in CONTRASTS])
def test_contrast(case):
    before = p_present(case["node"], **case["before"])
    after = p_present(case["node"], **case["after"])
    change = after - before if case["direction"] == "up" else before - after
    assert change > 0, (case["description"], before, after)
    assert change >= case.get("min_change", 0.0), (case["description"], before, after)
    assert change <= case.get("max_change", 1.0), (case["description"], before, after)


@pytest.mark.parametrize("case", CALIBRATION, ids=[c["id"] for c in CALIBRATION])
def test_calibration(case):
    ev = dict(case["evidence"])
    p = 1.0
    for node in case["nodes"]:  # chain rule: P(a, b | e) = P(a | e) P(b | a, e)
        p *= p_present(node, ev)
        ev[node] = "present"
    assert abs(p - case["target"]) <= case["tolerance"], (case["id"], p)
