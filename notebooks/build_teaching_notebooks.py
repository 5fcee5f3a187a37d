"""Write the teaching notebooks (01_tour, 02_editing_priors, 04_explorer) with nbformat.

    python notebooks/build_teaching_notebooks.py           # write them (no outputs)
    python notebooks/build_teaching_notebooks.py --check   # also run each headless, timed

Notebooks are saved without outputs so that diffs stay small; tests/test_notebooks.py runs
them. Edit the cells here, not in the .ipynb files.
"""

from __future__ import annotations

import sys
from pathlib import Path

from _nbtools import check, code, md, write

DISCLAIMER = (
    "> **Teaching model, not a medical device.** kneehip_bn must not be used to diagnose, "
    "triage or treat anyone. Every number comes from `models/knee_hip.yaml`, where each one "
    "names its source: a published study (evidence IDs such as X1, M8, T21) or an `elicited` "
    "expert judgement with a one-line rationale. `kneehip sources` (or `spec.provenance()`) "
    "lists them all. The numbers describe populations, not the patient in front of you."
)


# ----------------------------------------------------------------------------- 01 tour
def tour() -> list:
    cells = [
        md(f"""
# A guided tour of the knee-hip network

Knee pain and hip pain often come together. A physiotherapy article lists the reasons:
**altered gait**, **compensation** onto the other leg, **nerve irritation** from the lumbar
spine, **hip weakness changing knee alignment**, **overuse**, and the **hip → knee** direction.
This notebook shows each mechanism as a clinical case: what the model concludes (the posterior),
*why* (which finding moved which diagnosis, through which causal path) and *what if* (a finding
added or removed, or a treatment).

{DISCLAIMER}

**Words used below**

* *prior*: how common an origin is before any finding (in community adults of that age);
* *posterior*: how likely it is after the findings;
* *odds factor* / *weight of evidence*: how many-fold one finding multiplied the odds of an
  origin, given the other findings (weight of evidence = the natural log of that factor);
* *observe* vs *do*: "among patients **seen** without knee pathology" (conditioning) is not
  "if we **removed** the knee pathology" (an intervention, `do`): only the second cuts the
  arrows into the treated node.
"""),
        code("""
%matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

import kneehip_bn as kb
from kneehip_bn.teaching.plots import plot_explanation, plot_what_if

pd.set_option("display.width", 160)
spec = kb.load_spec("knee_hip_basic")   # the basic edition: the article's mechanisms
print(spec.title)
print(f"{len(spec.nodes)} nodes, {len(spec.provenance())} numbers, each with a source")
kb.diagnose(model=spec).origins.round(3)   # no findings: the priors
"""),
        md("""
Every number has a source. For example, how the model links knee pathology to a detectable
effusion, and where that number comes from:
"""),
        code("""
prov = pd.DataFrame(spec.provenance())
prov.query("node == 'knee_effusion'")[["what", "value", "source", "source_text"]]
"""),
        md("""
One helper runs the same four steps for every case: the ranked origins, the network with each
node's posterior inside it (observed findings outlined, the paths that carry the evidence to
the leading origin in red), the explanation in words and as bars, and a what-if table.
"""),
        code("""
def show_case(evidence, scenarios, targets):
    dx = kb.diagnose(evidence, model=spec)
    display(dx.origins.round(3))
    kb.show_inference(evidence, model=spec)
    plt.show()
    ex = kb.explain(evidence, model=spec)
    print(ex.summary)
    plot_explanation(ex)
    plt.show()
    df = kb.what_if(evidence, scenarios, model=spec, targets=targets)
    for name, text in df.attrs["descriptions"].items():
        print(f"{name:>22}: {text}")
    display(df.round(3))
    plot_what_if(df)
    plt.show()
    return ex, df
"""),
        md("""
## 1. Altered gait: a painful knee changes the walk, and the hip takes the load

*Article*: "individuals may unconsciously modify their walking pattern ... increased stress on
the hip joint". *Model path*: `knee_pathology → altered_gait → hip_joint_stress → hip_pain`
(and `altered_gait → antalgic_gait_observed`). The link strengths are elicited and tuned to the
odds ratio of lateral hip pain with ipsilateral knee OA (M8, OR 3.47); see `models/MECHANISMS.md`.

**Case.** A 64-year-old with knee pain, a knee effusion and a limp, who also reports hip pain on
the same side.

**What-if.** Treating the knee is an intervention, `do(knee_pathology=absent)`. Notice what
happens when we keep the knee findings as they are (`treated_keep_findings`): the model must
then explain the effusion and the limp by *other* causes, so hip pathology goes up. A fair
comparison removes the findings the treatment would change, and compares a treated with an
untreated population of the same age (`knee_treated` vs `knee_untreated`). A true
counterfactual for this one patient needs more than this network.
"""),
        code("""
gait_case = {"age_group": "60_plus", "knee_pain": "present", "knee_effusion": "present",
             "antalgic_gait_observed": "present", "hip_pain": "present"}
changed_by_treatment = ["knee_pain", "knee_effusion", "antalgic_gait_observed", "hip_pain"]
ex, df = show_case(gait_case, {
    "hip_pain_unknown": {"remove": ["hip_pain"]},
    "treated_keep_findings": {"do": {"knee_pathology": "absent"}, "remove": ["hip_pain"]},
    "knee_treated": {"do": {"knee_pathology": "absent"}, "remove": changed_by_treatment},
    "knee_untreated": {"do": {"knee_pathology": "present"}, "remove": changed_by_treatment},
    "gait_retrained": {"do": {"altered_gait": "absent"},
                       "remove": ["hip_pain", "antalgic_gait_observed"]},
}, targets=["hip_pain", "hip_joint_stress", "altered_gait", "hip_pathology"])
"""),
        md("""
*Questions for students*: which finding carried most of the weight for knee pathology? Why does
hip pain *lower* the odds of knee pathology slightly while raising hip pathology? How big is
the difference in hip pain between `knee_treated` and `knee_untreated`, and which path carries it?
"""),
        md("""
## 2. Compensation: shifting weight onto the other leg

*Article*: people "shift their weight and movements to the other leg ... overuse of the hip
joint". *Model path*: `knee_pathology / hip_pathology → weight_shift →
contralateral_hip_overload → contralateral_hip_pain`. The evidence supports a relative effect
(M1) but small absolute rates (M5–M7), so the model gives this route only a small effect.

**Case.** A 66-year-old with knee pain and effusion, and pain in the *other* hip.
"""),
        code("""
comp_case = {"age_group": "60_plus", "knee_pain": "present", "knee_effusion": "present",
             "contralateral_hip_pain": "present"}
knee_findings = ["contralateral_hip_pain", "knee_pain", "knee_effusion"]
ex, df = show_case(comp_case, {
    "other_hip_unknown": {"remove": ["contralateral_hip_pain"]},
    "knee_treated": {"do": {"knee_pathology": "absent"}, "remove": knee_findings},
    "knee_untreated": {"do": {"knee_pathology": "present"}, "remove": knee_findings},
}, targets=["contralateral_hip_pain", "weight_shift", "contralateral_hip_overload"])
effect = df.loc["contralateral_hip_pain", "knee_untreated"] - df.loc["contralateral_hip_pain", "knee_treated"]
print(f"knee pathology adds {100 * effect:.1f} percentage points of other-hip pain")
"""),
        md("""
Weight shift itself moves a lot, but little of it reaches the other hip: the link
`weight_shift → contralateral_hip_overload` is weak on purpose (M5: 1.3–2.3 % absolute rates).
The other-hip pain barely changes the odds of knee pathology: most other-hip pain has other causes
(the leak).
"""),
        md("""
## 3. Nerve irritation: one lumbar root, pain at the knee and the hip

*Article*: "a herniated disc in the lumbar spine can cause both knee and hip pain". *Model
path*: `lumbar_radiculopathy → nerve_irritation → knee_pain, hip_pain, radiating_leg_pain,
leg_numbness_tingling, straight_leg_raise`, and `→ upper_lumbar_root → femoral_nerve_stretch`
(pain maps X13; test accuracy T1, T3, T6, T7, T10).

**Case.** A 52-year-old with low back pain, pain radiating down the leg, tingling, and pain at
both the knee and the hip.
"""),
        code("""
nerve_case = {"age_group": "40_to_59", "low_back_pain": "present", "radiating_leg_pain": "present",
              "leg_numbness_tingling": "present", "knee_pain": "present", "hip_pain": "present"}
root_findings = ["knee_pain", "hip_pain", "low_back_pain", "radiating_leg_pain",
                 "leg_numbness_tingling"]
ex, df = show_case(nerve_case, {
    "femoral_stretch_positive": {"add": {"femoral_nerve_stretch": "positive"}},
    "slr_negative": {"add": {"straight_leg_raise": "negative"}},
    "root_treated": {"do": {"lumbar_radiculopathy": "absent"}, "remove": root_findings},
    "root_untreated": {"do": {"lumbar_radiculopathy": "present"}, "remove": root_findings},
}, targets=["lumbar_radiculopathy", "upper_lumbar_root", "knee_pain", "hip_pain"])
"""),
        md("""
A negative straight-leg raise lowers the probability of radiculopathy only a little: the test
is sensitive but not specific (T1, T3), and the model was given these accuracy figures. A positive femoral nerve stretch points to an upper lumbar (L2–L4)
root, which the model otherwise considers rare (P29–P31).
"""),
        md("""
## 4. Hip weakness → knee alignment

*Article*: "weakness in the hip muscles can alter the alignment and mechanics of the knee
joint, leading to knee pain". *Model path*: `hip_muscle_weakness → knee_malalignment →
knee_pain, single_leg_squat_valgus`; `hip_muscle_weakness → trendelenburg_sign`. The evidence
is weak: hip weakness did **not** predict knee pain prospectively (M14), so the weakness →
malalignment link is kept small (0.25).

**Case.** A 28-year-old runner with knee pain, dynamic valgus on a single-leg squat and a
positive Trendelenburg sign. The last two scenarios ask "what if the link were as strong as the
article implies?" by editing one number for that scenario only (`set`).
"""),
        code("""
weak_case = {"age_group": "under_40", "activity_level": "high_impact", "knee_pain": "present",
             "single_leg_squat_valgus": "present", "trendelenburg_sign": "positive"}
signs = ["knee_pain", "single_leg_squat_valgus", "trendelenburg_sign"]
strong = ["knee_malalignment.link.hip_muscle_weakness=0.7"]
ex, df = show_case(weak_case, {
    "strengthened": {"do": {"hip_muscle_weakness": "absent"}, "remove": signs},
    "weak": {"do": {"hip_muscle_weakness": "present"}, "remove": signs},
    "strong_link_strengthened": {"do": {"hip_muscle_weakness": "absent"}, "remove": signs,
                                 "set": strong},
    "strong_link_weak": {"do": {"hip_muscle_weakness": "present"}, "remove": signs,
                         "set": strong},
}, targets=["knee_pain", "knee_malalignment", "hip_muscle_weakness", "overuse_injury"])
"""),
        md("""
Compare the effect of strengthening (`weak` minus `strengthened`) with the published link and
with the stronger one. How much of the conclusion depends on a number that is elicited, not
measured? Notebook 02 makes this question systematic (sensitivity analysis).
"""),
        md("""
## 5. Overuse: running, jumping, and a knee that hurts more with activity

*Article*: "running or jumping ... overuse injuries ... referred pain to the hip area". *Model
path*: `activity_level → overuse_injury → knee_pain, pain_worse_with_activity` and a small
referred link to `hip_pain` (no published figure: elicited and kept small). Priors by activity
come from running-injury studies (P35–P37).

**Case.** A 24-year-old who does high-impact sport, with knee pain that is worse with activity.
"""),
        code("""
overuse_case = {"age_group": "under_40", "activity_level": "high_impact", "knee_pain": "present",
                "pain_worse_with_activity": "present"}
ex, df = show_case(overuse_case, {
    "low_activity_patient": {"context": {"activity_level": "low"}},
    "rested": {"do": {"overuse_injury": "absent"}, "remove": ["knee_pain", "pain_worse_with_activity"]},
    "not_rested": {"do": {"overuse_injury": "present"},
                   "remove": ["knee_pain", "pain_worse_with_activity"]},
}, targets=["overuse_injury", "knee_pathology", "knee_pain", "hip_pain"])
"""),
        md("""
The same findings in a patient with low activity shift the diagnosis towards structural knee
pathology: the context (a prior) matters as much as the findings.
"""),
        md("""
## 6. Hip → knee: the reverse direction

*Article*: "hip pain can lead to altered movement patterns and compensation mechanisms that
affect the knee joint". *Model paths*: `hip_pathology → knee_pain` (referred pain through the
obturator and femoral nerves: ipsilateral knee pain in about half of patients before hip
replacement, halving after it, X1–X3) and `hip_pathology → altered_gait → knee_joint_stress →
knee_pain`.

**Case.** A 70-year-old with hip pain, limited internal rotation and a positive FADIR test, who
also has knee pain but no knee effusion.
"""),
        code("""
hipknee_case = {"age_group": "60_plus", "hip_pain": "present",
                "hip_internal_rotation_limited": "present", "fadir_test": "positive",
                "knee_pain": "present", "knee_effusion": "absent"}
hip_findings = ["knee_pain", "hip_pain", "hip_internal_rotation_limited", "fadir_test"]
ex, df = show_case(hipknee_case, {
    "knee_pain_unknown": {"remove": ["knee_pain"]},
    "hip_replaced": {"do": {"hip_pathology": "absent"}, "remove": hip_findings},
    "hip_untreated": {"do": {"hip_pathology": "present"}, "remove": hip_findings},
    "plus_effusion": {"add": {"knee_effusion": "present"}},
}, targets=["knee_pain", "hip_pathology", "knee_pathology", "altered_gait"])
"""),
        md("""
The absent effusion has no causal path to hip pathology, yet it raises its odds: it lowers the
odds of the competing explanation of the knee pain (knee pathology). This is *explaining away*.
"""),
        md("""
## What to ask next, and when findings disagree

`next_best_test` ranks the unobserved findings and tests by how much they are expected to
reduce the uncertainty about the five origins (mutual information, in bits), and by how likely
their result is to change the leading diagnosis. `conflict` flags combinations of findings that
are less likely together than apart (Jensen's conflict measure), and compares with cases
simulated from the model.
"""),
        code("""
first_visit = {"age_group": "60_plus", "knee_pain": "present", "hip_pain": "present"}
kb.next_best_test(first_visit, model=spec).head(6).round(3)
"""),
        code("""
odd_case = {"low_back_pain": "present", "radiating_leg_pain": "present",
            "straight_leg_raise": "negative", "leg_numbness_tingling": "absent",
            "knee_effusion": "present"}
print(kb.conflict(odd_case, spec, n_sim=2000))
"""),
        md("""
---
Remember: a teaching model, not a medical device. To change a number and see what follows,
open `02_editing_priors.ipynb`; to explore cases with switches and sliders, `04_explorer.ipynb`.
"""),
    ]
    return cells


# ----------------------------------------------------------------------------- 02 editing priors
def editing() -> list:
    return [
        md(f"""
# Editing priors: what changes, how fragile is it, and saving your own model

A model is only as good as its numbers. Here we change a prevalence and a link strength, see
which conclusions move, measure how fragile a conclusion is to *every* number (sensitivity
analysis and parameter uncertainty), and save the edited model to a file of our own.

{DISCLAIMER}
"""),
        code("""
%matplotlib inline
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

import kneehip_bn as kb
from kneehip_bn.teaching.plots import plot_credible_intervals, plot_tornado, plot_what_if

pd.set_option("display.width", 160)
spec = kb.load_spec("knee_hip_basic")
case = {"age_group": "40_to_59", "hip_pain": "present", "low_back_pain": "present",
        "radiating_leg_pain": "present"}
kb.diagnose(case, model=spec).origins.round(3)
"""),
        md("""
## 1. Change a prevalence and a link strength

`set_prior`, `set_row`, `set_link` and `set_leak` return a **new** specification; the shipped
one is untouched. Each edited number gets `source: user` and keeps the previous value and its
source under `edited`, so the provenance is never lost.
"""),
        code("""
more_radiculopathy = kb.set_prior(spec, "lumbar_radiculopathy", 0.10)   # every age group
weaker_hip_link = kb.set_link(spec, "hip_pain", "nerve_irritation", 0.20)  # was 0.44 (X13)
row = more_radiculopathy.nodes["lumbar_radiculopathy"].table[0]
print("new row:", row.probabilities, "| source:", row.source, "| edited:", row.edited)
pd.DataFrame({
    "shipped": kb.diagnose(case, model=spec).origins["posterior"],
    "radiculopathy 10%": kb.diagnose(case, model=more_radiculopathy).origins["posterior"],
    "nerve -> hip link 0.20": kb.diagnose(case, model=weaker_hip_link).origins["posterior"],
}).round(3)
"""),
        md("""
The same comparison with `what_if`: each scenario may edit numbers for itself only (`set`,
in the same form as `kneehip --set`), next to added findings or interventions.
"""),
        code("""
df = kb.what_if(case, {
    "radiculopathy_10pct": {"set": ["lumbar_radiculopathy=0.10"]},
    "weak_nerve_hip_link": {"set": ["hip_pain.link.nerve_irritation=0.20"]},
    "plus_positive_slr": {"add": {"straight_leg_raise": "positive"}},
}, model=spec, targets=["lumbar_radiculopathy", "hip_pathology", "hip_muscle_weakness"])
display(df.round(3))
plot_what_if(df)
plt.show()
"""),
        md("""
## 2. How fragile is the conclusion? One-way sensitivity

`sensitivity` moves **every** number of the model on its own (each table entry, each noisy-OR
link and leak) over its plausible range: the 95 % interval of a Beta distribution whose
weight is the table's `strength` (its equivalent sample size in the model file). The
posterior is a ratio of two linear functions of any one number, so the curve is exact. The
tornado chart shows the numbers that move the conclusion most.
"""),
        code("""
sens = kb.sensitivity("lumbar_radiculopathy", evidence=case, model=spec)
print(f"P(lumbar radiculopathy | case) = {sens.attrs['posterior']:.3f}; {len(sens)} numbers examined")
display(sens.head(8)[["value", "lo", "hi", "derivative", "posterior_lo", "posterior_hi", "source"]].round(3))
plot_tornado(sens, top=12)
plt.show()
"""),
        md("""
Look at the `source` column: are the most influential numbers published figures or elicited
guesses? That is where better evidence (or local audit data, notebook 03) would help most.
"""),
        md("""
## 3. All numbers uncertain at once: credible intervals

`credible_intervals` redraws every table from its uncertainty (rows from a Dirichlet, links and
leaks from a Beta, each weighted by the table's strength) and recomputes the posterior each
time. A larger `strength` means more confidence in the expert numbers, and narrower intervals.
"""),
        code("""
ci = kb.credible_intervals(case, spec, n_draws=200, seed=0)
ci_confident = kb.credible_intervals(case, spec, n_draws=200, seed=0, strength=500)
display(pd.concat({"file strengths": ci, "strength 500": ci_confident}, axis=1).round(3))
fig, axes = plt.subplots(1, 2, figsize=(13, 3.6), sharey=True)
plot_credible_intervals(ci, ax=axes[0])
axes[0].set_title("strengths from the model file")
plot_credible_intervals(ci_confident, ax=axes[1])
axes[1].set_title("every table with strength 500")
plt.show()
"""),
        md("""
## 4. Save your own model

`save_spec` validates the model and writes it atomically; it refuses to replace an existing
file unless you pass `overwrite=True`. Here we write to a temporary folder; in class, pick your
own path (`kneehip validate my_model.yaml` checks it; `kneehip diagnose --model my_model.yaml`
uses it).
"""),
        code("""
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "my_knee_hip.yaml"
    kb.save_spec(more_radiculopathy, path)
    mine = kb.load_spec(path)
    print("saved and reloaded:", path.name, "| lumbar_radiculopathy rows:",
          [r.probabilities["present"] for r in mine.nodes["lumbar_radiculopathy"].table])
    same = kb.diagnose(case, model=mine).origins["posterior"]
    print("same posteriors after reloading:",
          bool((same - kb.diagnose(case, model=more_radiculopathy).origins["posterior"]).abs().max() < 1e-12))
    try:
        kb.save_spec(mine, path)
    except FileExistsError as exc:
        print("refused:", exc)
"""),
    ]


# ----------------------------------------------------------------------------- 04 explorer
def explorer() -> list:
    return [
        md(f"""
# Interactive explorer

Switch findings on and off, change the patient's context and the main priors, and watch the
origins and the network update. Run all cells; the last cell draws one default case so the
notebook also shows a result when it runs without a browser.

{DISCLAIMER}
"""),
        code("""
%matplotlib inline
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

import kneehip_bn as kb
from kneehip_bn.teaching.plots import plot_origins

try:
    import ipywidgets as widgets
except ImportError:  # not installed (or broken): say what to install, keep going
    widgets = None
    print("The switches and sliders of this explorer need ipywidgets, which is not installed.")
    print("Install the notebook extras, then restart the kernel (Kernel > Restart):")
    print('    pip install ".[notebooks]"        # from the repository root')
    print("Until then the cells below still draw and time the default case.")
    print("No Jupyter at all? `kneehip serve` opens the same explorer as a web page.")

base_spec = kb.load_spec("knee_hip_basic")
groups = {n: s.group for n, s in base_spec.nodes.items()}
observable = [n for n, g in groups.items() if g in ("finding", "test")]
context = [n for n, g in groups.items() if g == "context"]
origins = [n for n, g in groups.items() if g == "origin"]
"""),
        md("""
**Controls.** One button row per finding or test (`?` = not examined), one dropdown per context
node, and one slider per origin that multiplies its prior odds (1 = the published prior; the
age dependence is kept).
"""),
        code("""
def finding_control(node):
    states = base_spec.nodes[node].states
    return widgets.ToggleButtons(options=["?", *states], value="?",
                                 description=node.replace("_", " "),
                                 style={"description_width": "190px", "button_width": "80px"})

if widgets is not None:
    finding_w = {n: finding_control(n) for n in observable}
    context_w = {n: widgets.Dropdown(options=["?", *base_spec.nodes[n].states], value="?",
                                     description=n.replace("_", " ")) for n in context}
    prior_w = {n: widgets.FloatLogSlider(value=1.0, base=2, min=-3, max=3, step=0.25,
                                         description=n.replace("_", " "),
                                         continuous_update=False,
                                         style={"description_width": "160px"})
               for n in origins}
"""),
        code("""
_spec_cache = {}

def scaled_spec(multipliers):
    \"\"\"The model with each origin's prior odds multiplied (every row of its table).\"\"\"
    key = tuple(sorted(multipliers.items()))
    if key not in _spec_cache:
        spec = base_spec
        for node, m in multipliers.items():
            if m == 1.0:
                continue
            for row in base_spec.nodes[node].table:
                p = row.probabilities["present"]
                odds = p / (1 - p) * m
                spec = kb.set_row(spec, node, row.given, odds / (1 + odds))
        _spec_cache[key] = spec
    return _spec_cache[key]


def current_case(findings, ctx):
    ev = {n: v for n, v in findings.items() if v != "?"}
    ev.update({n: v for n, v in ctx.items() if v != "?"})
    return ev


def render(findings, ctx, multipliers):
    spec = scaled_spec(multipliers)
    ev = current_case(findings, ctx)
    t0 = time.perf_counter()
    dx = kb.diagnose(ev, model=spec)          # evidence -> posteriors (the compiled engine)
    ms = 1000 * (time.perf_counter() - t0)
    fig = plt.figure(figsize=(17, 9))
    grid = fig.add_gridspec(1, 2, width_ratios=[3.2, 1])
    kb.show_inference(ev, model=spec, ax=fig.add_subplot(grid[0]))
    plot_origins(dx, ax=fig.add_subplot(grid[1]))
    plt.show()
    print(f"posterior update: {ms:.1f} ms")
    return dx


def on_change(**values):
    findings = {n: values[n] for n in observable}
    ctx = {n: values[n] for n in context}
    mult = {n: values[n] for n in origins}
    render(findings, ctx, mult)


if widgets is not None:
    controls = {**finding_w, **context_w, **prior_w}
    out = widgets.interactive_output(on_change, controls)
    panel = widgets.HBox([
        widgets.VBox([widgets.HTML("<b>Findings and tests</b>"), *finding_w.values()]),
        widgets.VBox([widgets.HTML("<b>Context</b>"), *context_w.values(),
                      widgets.HTML("<b>Prior odds multipliers</b>"), *prior_w.values()]),
    ])
    display(panel, out)
else:
    print('(no controls: pip install ".[notebooks]" and restart the kernel to get them)')
"""),
        md("""
**A static result** (for a printed handout, or when the notebook runs without a browser): the
default case below, drawn once by calling the same function the controls call.
"""),
        code("""
default_findings = {n: "?" for n in observable}
default_findings.update(knee_pain="present", hip_pain="present", knee_effusion="present")
default_context = {"age_group": "60_plus", "activity_level": "?"}
dx = render(default_findings, default_context, {n: 1.0 for n in origins})
dx.origins.round(3)
"""),
        md("""
**How fast is an update?** The posterior part of one update (evidence changed → every
origin's posterior) goes through the compiled junction tree; the goal is under 50 ms.
"""),
        code("""
spec = scaled_spec({n: 1.0 for n in origins})
cases = [current_case({**default_findings, "antalgic_gait_observed": s}, default_context)
         for s in ("present", "absent")]
times = []
for i in range(40):
    t0 = time.perf_counter()
    kb.diagnose(cases[i % 2], model=spec)
    times.append(1000 * (time.perf_counter() - t0))
print(f"posterior update: median {np.median(times):.2f} ms, max {np.max(times):.2f} ms "
      f"(goal < 50 ms)")
t0 = time.perf_counter()
scaled_spec({**{n: 1.0 for n in origins}, "hip_pathology": 2.0})
kb.diagnose(cases[0], model=scaled_spec({**{n: 1.0 for n in origins}, "hip_pathology": 2.0}))
print(f"prior slider moved (edit + recompile + posterior): {1000 * (time.perf_counter() - t0):.0f} ms")
"""),
    ]


NOTEBOOKS = {"01_tour.ipynb": tour, "02_editing_priors.ipynb": editing,
             "04_explorer.ipynb": explorer}


def build() -> list[Path]:
    return [write(name, make()) for name, make in NOTEBOOKS.items()]


if __name__ == "__main__":
    written = build()
    print("wrote", ", ".join(p.name for p in written))
    if "--check" in sys.argv:
        check(written)
