"""Write notebook 05 ("did the knee cause the hip pain?") with nbformat.

    python notebooks/build_causal_notebook.py           # write it (no outputs)
    python notebooks/build_causal_notebook.py --check   # also run it headless, timed

Saved without outputs (small diffs); tests/test_notebooks.py runs it. Edit the cells here,
not in the .ipynb file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from _nbtools import check, code, md, write

NAME = "05_did_the_knee_cause_the_hip_pain.ipynb"

DISCLAIMER = (
    "> **Teaching model, not a medical device.** kneehip_bn must not be used to diagnose, "
    "triage or treat anyone. Every number comes from the model file, where each one names its "
    "source (a published study or an `elicited` expert judgement). The counterfactual answers "
    "below are about the *model's* patient: they rest on its causal reading of each table, "
    "stated in each section."
)


def cells() -> list:
    return [
        md(f"""
# Did the knee cause the hip pain?

A patient in the teaching clinic: **knee osteoarthritis with an effusion and a limp**, aged 60+,
and now **hip pain on the same side**. The article's question is personal: *can this patient's
knee problem be causing their hip pain?* The population question ("how common would hip pain be
if nobody had knee disease?", `kneehip query hip_pain --do ...`) is not the same question. This
notebook answers the personal one five ways:

1. **counterfactual**: how likely *this patient's* hip pain would be, had their knee been healthy;
2. **probability of causation**: necessity (PN) and sufficiency (PS), with bounds;
3. **Shapley values**: how the findings share the credit for each diagnosis;
4. **flips**: which single number of the model, or fewest findings, would change the conclusion;
5. **the most probable explanation**: the single most likely story of every hidden node.

{DISCLAIMER}
"""),
        md("""
Pick the model here. `knee_hip_basic` is the first edition (five broad origins); when the
second edition of `knee_hip` (specific diagnoses such as `knee_osteoarthritis`) is in place,
set `MODEL = "knee_hip"`: the cells below pick the node names that model has.
"""),
        code("""
%matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

import kneehip_bn as kb
from kneehip_bn.causal.plots import plot_counterfactual, plot_flip, plot_shapley

pd.set_option("display.width", 160)
MODEL = "knee_hip_basic"          # or "knee_hip" (the second edition)
spec = kb.load_spec(MODEL)


def first(*names):
    \"\"\"The first of these node names that the model has.\"\"\"
    return next(n for n in names if n in spec.nodes)


KNEE = first("knee_osteoarthritis", "knee_pathology")     # the candidate cause
HIP = first("hip_osteoarthritis", "hip_pathology")        # the rival explanation
wanted = {"age_group": "60_plus", "knee_pain": "present", "knee_effusion": "present",
          "antalgic_gait_observed": "present", "hip_pain": "present"}
case = {k: v for k, v in wanted.items() if k in spec.nodes}
print(spec.title)
print("cause:", KNEE, "| rival:", HIP, "| case:", case)
print("not in this model:", sorted(set(wanted) - set(case)) or "none")
kb.diagnose(case, model=spec).origins.round(3)
"""),
        md("""
## 1. Counterfactual: had this patient's knee been healthy

Three different questions, three different numbers:

* **observation**: among patients *seen* with these findings but a healthy knee (conditioning);
* **intervention**: in the whole population, if knee disease were removed (`do`);
* **counterfactual**: for *this* patient (their own findings tell us which of their mechanisms
  fired), had the knee been healthy. Each noisy-OR link (knee → altered gait → hip joint stress →
  hip pain, …) is an independent mechanism with its own switch: the patient's findings update
  the switches, and the same switches act in the imagined world. Full tables use the comonotone
  (monotone) coupling, described in `kneehip_bn.causal.counterfactuals`.
"""),
        code("""
healthy = {KNEE: "absent"}
cf = kb.counterfactual(case, do=healthy, target="hip_pain", model=spec)
others = {k: v for k, v in case.items() if k != "hip_pain"}
compare = pd.DataFrame({
    "as seen (factual)": cf.factual,
    "observed healthy knee": kb.query("hip_pain", {**others, **healthy}, model=spec),
    "do(healthy knee), population": kb.query("hip_pain", do=healthy, model=spec),
    "this patient, had the knee been healthy": cf.counterfactual,
})
display(compare.round(3))
plot_counterfactual(cf)
plt.show()
"""),
        md("""
## 2. Probability of necessity and sufficiency

* **PN**: given that both the knee problem and the hip pain occurred, the probability that the
  hip pain would *not* have occurred without the knee problem;
* **PS**: in a patient like this one with neither, the probability that the knee problem would
  have produced the hip pain.

Where a full table lies between cause and finding (here `hip_muscle_weakness`, the arthrogenic
inhibition route, in the first edition), the point values rest on the coupling chosen for it;
the **Tian–Pearl bounds** hold for every coupling (they use only the observational and
interventional distributions in the context, here the age group).
"""),
        code("""
pc = kb.probability_of_causation("hip_pain", KNEE, case, model=spec)
print(pc)
"""),
        md("""
## 3. Which findings carry the conclusion? Shapley values beside leave-one-out weights

The leave-one-out weight of evidence (`kb.explain`) asks what each finding adds *to all the
others*; findings that explain each other away then look weaker than they are, and the weights
add up to nothing in particular. The **Shapley value** averages each finding's contribution over
every order in which the findings could have been learned; the values add up exactly to the
change in log-odds from the context (age) alone to all the findings.
"""),
        code("""
sh = kb.shapley(case, model=spec)
table = pd.DataFrame({"Shapley": sh.values[KNEE], "leave-one-out": sh.loo[KNEE]})
display(table.round(3))
print(f"sum of Shapley values {sh.values[KNEE].sum():+.3f} = total change "
      f"{sh.total[KNEE] - sh.base[KNEE]:+.3f} nats ({sh.method})")
fig, axs = plt.subplots(1, 2, figsize=(16, 4.8))
plot_shapley(sh, KNEE, ax=axs[0])
plot_shapley(sh, HIP, ax=axs[1])
plt.tight_layout()
plt.show()
"""),
        md("""
## 4. What would flip the conclusion?

For the rival diagnosis (hip disease) to reach 50%, which single number of the model would have
to change, to what, and how far is that inside the number's own 95% credible interval (1 = the
edge)? Every `--set` expression listed was applied to the model and the case re-run. Then: the
smallest sets of this patient's findings whose change would do it.
"""),
        code("""
fl = kb.flip(case, HIP, goal="threshold", model=spec)
print(fl)
plot_flip(fl)
plt.show()
"""),
        code("""
leader = kb.flip(case, KNEE, goal="leads", model=spec)   # what would stop the knee leading?
print(leader.goal)
with pd.option_context("display.max_colwidth", 90):
    display(leader.parameters[["set", "current", "interval_distance"]].head(8).round(3))
"""),
        md("""
## 5. The most probable explanation

Not one diagnosis at a time but the single most likely joint state of every hidden node
(diagnoses *and* mechanisms), by max-product on the compiled junction tree, with the runner-up.
The probability of any one complete story is small; the ratio to the second best says how
clearly it wins.
"""),
        code("""
best = kb.mpe(case, model=spec)
print(best)
"""),
        md("""
## What to take away

* The counterfactual answer is about *this* patient and differs from the population answer of
  `do()`: their own findings say which mechanisms fired.
* PN is the number behind "would the hip pain probably not be there had the knee been healthy":
  read it with its sentence, its assumption (the cause present) and, where tables are not
  noisy-OR, its bounds.
* Shapley values add up; leave-one-out weights do not.
* A conclusion that flips only when a number leaves its credible interval is robust to that
  number; one that flips inside it is fragile.

The same tools from the shell: `kneehip counterfactual`, `kneehip cause`, `kneehip explain
--shapley`, `kneehip flip`, `kneehip mpe` (each with `--json`).
"""),
    ]


def build() -> Path:
    return write(NAME, cells())


if __name__ == "__main__":
    p = build()
    print("wrote", p.name)
    if "--check" in sys.argv:
        check([p], keep="--keep" in sys.argv)
