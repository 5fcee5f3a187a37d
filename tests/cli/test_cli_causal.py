"""The causal commands (counterfactual, cause, flip, mpe, explain --shapley) through the
``kneehip`` entry point; each answer compared with the Python API, bad input one line, exit 1."""

from __future__ import annotations

import json

import pytest

import kneehip_bn as kb
from kneehip_bn import cli

CASE = {"knee_pain": "present", "knee_effusion": "present", "hip_pain": "present",
        "antalgic_gait_observed": "present"}
EV = [x for k, v in CASE.items() for x in ("-e", f"{k}={v}")]
BASIC = ["--model", "knee_hip_basic"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_counterfactual_json_text_plot(capsys, tmp_path):
    code, out, _ = run(capsys, "counterfactual", *EV, *BASIC, "--do", "knee_pathology=absent",
                       "--target", "hip_pain", "--json")
    assert code == 0
    d = json.loads(out)
    assert list(d)[:4] == ["target", "do", "factual", "counterfactual"]
    api = kb.counterfactual(CASE, do={"knee_pathology": "absent"}, target="hip_pain",
                            model="knee_hip_basic")
    assert d["counterfactual"] == pytest.approx(api.counterfactual.to_dict(), abs=1e-12)
    assert d["factual"] == pytest.approx(api.factual.to_dict(), abs=1e-12)
    plot = tmp_path / "cf.png"
    code, out, err = run(capsys, "counterfactual", *EV, *BASIC, "--do", "knee_pathology=absent",
                         "--target", "hip_pain", "--plot", str(plot))
    assert code == 0 and plot.stat().st_size > 1000 and "NOT a medical device" in out
    assert "had knee_pathology=absent" in out
    code, _, err = run(capsys, "counterfactual", *EV, *BASIC, "--do", "knee_pathology=absent",
                       "--target", "hip_pain", "--plot", str(plot))
    assert code == 1 and "exists" in err and "--overwrite" in err and len(err.splitlines()) == 1


def test_cause_json_and_sentence(capsys):
    code, out, _ = run(capsys, "cause", *EV, *BASIC, "--finding", "hip_pain", "--cause",
                       "knee_pathology", "--json")
    assert code == 0
    d = json.loads(out)
    assert list(d)[:6] == ["finding", "cause", "p_cause_present", "pn", "ps", "explanation"]
    api = kb.probability_of_causation("hip_pain", "knee_pathology", CASE, model="knee_hip_basic")
    assert d["pn"] == pytest.approx(api.pn, abs=1e-12)
    assert d["ps"] == pytest.approx(api.ps, abs=1e-12)
    assert d["explanation"].startswith("Given these findings, the hip pain")
    assert d["bounds"]["pn"][0] - 1e-12 <= d["bounds"]["pn_model"] <= d["bounds"]["pn"][1] + 1e-12


def test_flip_json_verified(capsys, tmp_path):
    plot = tmp_path / "flip.png"
    code, out, _ = run(capsys, "flip", *EV, *BASIC, "--target", "hip_pathology", "--goal",
                       "threshold", "--json", "--plot", str(plot))
    assert code == 0 and plot.exists()
    d = json.loads(out)
    assert list(d)[:3] == ["target", "goal", "met_now"]
    assert d["goal"] == "P(hip_pathology) >= 0.5"
    for p in d["parameters"]:  # each --set applied on the command line reaches the goal
        code, out2, _ = run(capsys, "diagnose", *EV, *BASIC, "--set", p["set"], "--json")
        post = {o["name"]: o["posterior"] for o in json.loads(out2)["origins"]}
        assert post["hip_pathology"] >= 0.5, p["set"]
    assert all(isinstance(s, list) for s in d["findings"])


def test_mpe_json(capsys):
    code, out, _ = run(capsys, "mpe", *EV, *BASIC, "--json")
    assert code == 0
    d = json.loads(out)
    api = kb.mpe(CASE, model="knee_hip_basic")
    assert d["assignment"] == api.assignment
    assert d["probability"] == pytest.approx(api.probability)
    assert d["second"]["probability"] <= d["probability"]
    assert set(d["assignment"]) == set(kb.load_spec("knee_hip_basic").nodes) - set(CASE)


def test_explain_shapley_json(capsys):
    code, out, _ = run(capsys, "explain", *EV, *BASIC, "--shapley", "--json")
    assert code == 0
    d = json.loads(out)
    sh = kb.shapley(CASE, model="knee_hip_basic")
    assert set(d["shapley"]) == set(sh.values.columns)
    for diag, vals in sh.as_nested().items():
        assert d["shapley"][diag] == pytest.approx(vals, abs=1e-12)
    assert "weights" in d  # the leave-one-out table is still there
    code, out, _ = run(capsys, "explain", *EV, *BASIC, "--shapley", "--origin", "hip_pathology")
    assert code == 0 and "Shapley values" in out


@pytest.mark.parametrize("argv,needle", [
    (["cause", "--finding", "hip_pain", "--cause", "knee_pathology", "-e", "knee_pain=present"],
     "expected it present in the evidence"),
    (["cause", "--finding", "hip_pian", "--cause", "knee_pathology", "-e", "hip_pain=present"],
     "did you mean 'hip_pain'?"),
    (["counterfactual", "-e", "hip_pain=presnt", "--do", "knee_pathology=absent", "--target",
      "hip_pain"], "did you mean 'present'?"),
    (["counterfactual", "-e", "hip_pain=present", "--do", "knee_pathology=absent", "--target",
      "hip_pian"], "did you mean 'hip_pain'?"),
    (["counterfactual", "-e", "hip_pain=present", "--target", "hip_pain"],
     "expected at least one NAME=STATE"),
    (["mpe", "-e", "knee_pain=absent", "-e", "knee_pathology=present", "-e",
      "knee_effusion=present", "--set", "knee_effusion.leak=0", "--set",
      "knee_effusion.link.knee_pathology=0"], "impossible evidence"),
    (["flip", "-e", "hip_pain=present", "--target", "hip_pathology", "--set",
      "hip_pain.leak=0", "--set", "hip_pain.link.hip_pathology=0", "--set",
      "hip_pain.link.hip_joint_stress=0", "--set", "hip_pain.link.nerve_irritation=0",
      "--set", "hip_pain.link.overuse_injury=0"], "impossible evidence"),
    (["flip", "-e", "hip_pain=present", "--target", "hip_pathology", "-e",
      "hip_pathology=present"], "expected an unobserved diagnosis"),
    (["cause", "--finding", "hip_pain", "--cause", "knee_pathology", "-e", "hip_pain=present",
      "-e", "knee_pathology=absent"], "the cause cannot have produced"),
])
def test_bad_input_one_line_exit_1(capsys, argv, needle):
    code, _out, err = run(capsys, *argv, *BASIC)
    assert code == 1
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert needle in err
    assert "Traceback" not in err
