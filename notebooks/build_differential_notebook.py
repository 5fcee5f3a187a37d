"""Write notebooks/06_differential_diagnosis.ipynb (the second edition, ``knee_hip``) with nbformat.

    python notebooks/build_differential_notebook.py           # write it (no outputs)
    python notebooks/build_differential_notebook.py --check   # also run it headless, timed

Saved without outputs; tests/test_notebooks.py runs it headless. Edit the cells here.
"""

from __future__ import annotations

import sys
from pathlib import Path

from _nbtools import check, code, md, write

CELLS = [
    md("""
# Differential diagnosis of knee and hip pain (second edition of the model)

> **Teaching model, not a medical device.** kneehip_bn must not be used to diagnose, triage or
> treat anyone. Every number in `models/knee_hip.yaml` names its source: a published study
> (evidence IDs such as X1, T26, P14) or an `elicited` judgement with a one-line rationale
> (`kneehip sources`). The numbers describe populations, not the patient in front of you.

The basic edition (`knee_hip_basic`, notebook 01) teaches the article's *mechanisms* with five
broad origins. This edition names the **specific diagnoses** a physiotherapist weighs (knee OA,
meniscal tear, ACL rupture, patellofemoral pain, knee overuse; hip OA, FAI/labral, gluteal
tendinopathy; upper and lower lumbar radiculopathy, lumbar stenosis) plus a **serious
pathology** catch-all with its red flags, and a latent **generalised OA** that gives knee and
hip disease a shared cause. Five cases:

1. hip OA presenting as knee pain;
2. an L3 root presenting as anterior knee pain;
3. gluteal tendinopathy (GTPS) versus hip OA;
4. patellofemoral pain versus knee OA;
5. a red flag.
"""),
    code("""
%matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

import kneehip_bn as kb
from kneehip_bn.teaching.plots import plot_explanation, plot_origins, plot_what_if

pd.set_option("display.width", 160)
spec = kb.load_spec("knee_hip")          # the second edition (the default model)
print(spec.title)
regions = spec.regions()
for region, diagnoses in regions.items():
    print(f"{region:>8}: {', '.join(diagnoses)}")
print("red flags:", ", ".join(spec.red_flags()))
"""),
    md("""
Every case below uses one helper: the ranked diagnoses, the probability of each **region**
(at least one of its diagnoses present), and for each complaint **what accounts for it** (the
posterior probability that each cause's link produced the finding, a noisy-OR read causally).
"""),
    code("""
def show(evidence, top=6):
    dx = kb.diagnose(evidence, model=spec)
    if dx.red_flags:
        print(dx.warning)
    display(dx.origins.head(top).round(3))
    print("regions:", {r: round(p, 3) for r, p in dx.regions.items()})
    for finding, causes in dx.explained_by.items():
        best = sorted(causes.items(), key=lambda kv: -kv[1])[:4]
        print(f"  {finding} explained by: " + ", ".join(f"{c} {p:.2f}" for c, p in best))
    plot_origins(dx)
    plt.show()
    return dx
"""),
    md("""
## 1. Hip OA presenting as knee pain

A 68-year-old with knee pain, but the knee examination is unremarkable (no effusion, no
joint-line tenderness); she has groin pain and a limited hip internal rotation. Hip → knee
referral is the best-evidenced direction in the evidence file (ipsilateral knee pain in 52–65%
before hip replacement, halving after it: X1–X3), and the article never mentions it.
"""),
    code("""
hip_oa_knee = {"age_group": "60_plus", "sex": "female", "knee_pain": "present",
               "groin_pain": "present", "hip_internal_rotation_limited": "present",
               "knee_effusion": "absent", "joint_line_tenderness": "absent"}
dx1 = show(hip_oa_knee)
"""),
    code("""
ex1 = kb.explain(hip_oa_knee, model=spec)
print(ex1.summary)
plot_explanation(ex1, origin=ex1.leading[0])
plt.show()
"""),
    md("""
What should we examine next? `next_best_test` ranks the findings and tests not yet examined by
the information they are expected to give about the diagnoses (bits).
"""),
    code("""
kb.next_best_test(hip_oa_knee, model=spec).head(6).round(3)
"""),
    md("""
## 2. An upper-lumbar (L3) root presenting as anterior knee pain

Knee pain with anterior thigh pain and tingling, a positive femoral nerve stretch and a
**negative** straight-leg raise. The SLR tests the L5/S1 roots (T1, T3); a negative SLR says
little about L2–L4, where the femoral nerve stretch and the patellar reflex are the tests
(T6, T7). In this edition the two root levels are separate nodes, so the negative SLR no longer
argues the upper-lumbar root away.
"""),
    code("""
l3 = {"age_group": "40_to_59", "knee_pain": "present", "anterior_thigh_pain": "present",
      "leg_numbness_tingling": "present", "low_back_pain": "present",
      "femoral_nerve_stretch": "positive", "straight_leg_raise": "negative"}
dx2 = show(l3)
"""),
    code("""
df2 = kb.what_if(l3, {
    "reflex_reduced": {"add": {"patellar_reflex_reduced": "positive"}},
    "SLR_positive_instead": {"add": {"straight_leg_raise": "positive"}},
    "no_FNST": {"remove": ["femoral_nerve_stretch"]},
}, model=spec, targets=["upper_lumbar_radiculopathy", "lower_lumbar_radiculopathy",
                        "knee_osteoarthritis"])
display(df2.round(3))
plot_what_if(df2)
plt.show()
"""),
    md("""
## 3. Gluteal tendinopathy versus hip OA

Lateral hip pain is the commonest hip complaint of middle-aged women; GTPS affects about one
woman in four aged 50–79 (P14). Trochanteric tenderness, pain within 30 s of single-leg stance
and resisted external derotation point to the tendon (T26); groin pain and limited internal
rotation point to the joint (T29, T15).
"""),
    code("""
lateral = {"age_group": "40_to_59", "sex": "female", "hip_pain": "present",
           "lateral_hip_pain": "present", "trochanteric_tenderness": "present",
           "single_leg_stance_30s": "positive", "resisted_external_derotation": "positive",
           "groin_pain": "absent"}
dx3 = show(lateral)
"""),
    code("""
df3 = kb.what_if(lateral, {
    "groin_and_IR_limited": {"add": {"groin_pain": "present",
                                     "hip_internal_rotation_limited": "present"},
                             "remove": ["single_leg_stance_30s",
                                        "resisted_external_derotation"]},
}, model=spec, targets=["gluteal_tendinopathy", "hip_osteoarthritis", "fai_labral"])
display(df3.round(3))
plot_what_if(df3)
plt.show()
"""),
    md("""
## 4. Patellofemoral pain versus knee OA

Two people with knee pain on stairs and squatting: a 25-year-old runner with no effusion, and a
66-year-old with crepitus and an effusion. Age, activity and the examination separate them.
"""),
    code("""
runner = {"age_group": "under_40", "activity_level": "high_impact", "knee_pain": "present",
          "pain_on_stairs_or_squatting": "present", "knee_effusion": "absent",
          "knee_crepitus": "absent"}
older = {"age_group": "60_plus", "bmi_group": "30_plus", "knee_pain": "present",
         "pain_on_stairs_or_squatting": "present", "knee_effusion": "present",
         "knee_crepitus": "present"}
both = pd.DataFrame({
    "runner, 25": kb.diagnose(runner, model=spec).origins["posterior"],
    "older adult, 66": kb.diagnose(older, model=spec).origins["posterior"],
}).sort_values("runner, 25", ascending=False)
display(both.round(3))
both.head(6).plot.barh(figsize=(7, 3.5)).invert_yaxis()
plt.xlabel("P(present | findings)")
plt.show()
"""),
    md("""
## 5. A red flag

An 80-year-old who cannot bear weight after a fall, with hip and knee pain. Whatever the
probabilities say, a red flag means **refer now**: `diagnose` and every teaching output put the
warning first. (Below 18 the model refuses the case altogether: in a child with knee or hip
pain think of SCFE or Perthes, where hip disease presents as knee pain, X9–X11.)
"""),
    code("""
fall = {"age_group": "60_plus", "hip_pain": "present", "knee_pain": "present",
        "unable_to_bear_weight": "present"}
dx5 = show(fall)
try:
    kb.diagnose({"age": "14", "knee_pain": "present"}, model=spec)
except kb.EvidenceError as err:
    print("refused:", err)
"""),
    md("""
### What this edition still cannot do

It has no time course (acute versus chronic), one index side plus the other side's knee and
hip, and many mechanism strengths are elicited (labelled so in the file). `models/MECHANISMS.md`
says, mechanism by mechanism, what the evidence supports and what it contradicts.
"""),
]


def build() -> Path:
    return write("06_differential_diagnosis.ipynb", CELLS)


if __name__ == "__main__":
    path = build()
    print(f"wrote {path.name}")
    if "--check" in sys.argv:
        check([path])
