"""The teaching commands through the ``kneehip`` entry point (cli.main) with capsys."""

from __future__ import annotations

import json
import math

import pytest

from basic import BASIC, main_basic
from kneehip_bn import cli, conflict, explain, next_best_test, what_if


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main_basic(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


EV = ["-e", "knee_pain=present", "-e", "hip_pain=present"]


def test_next_test_json_shape(capsys):
    code, out, _ = run(capsys, "next-test", *EV, "--json")
    assert code == 0
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 14
    for item in data:
        assert list(item)[:2] == ["finding", "expected_information_gain"]
        assert isinstance(item["finding"], str)
        assert isinstance(item["expected_information_gain"], float)
        assert item["expected_information_gain"] >= 0
    gains = [d["expected_information_gain"] for d in data]
    assert gains == sorted(gains, reverse=True)
    api = next_best_test({"knee_pain": "present", "hip_pain": "present"}, model=BASIC)
    assert [d["finding"] for d in data] == list(api.index)
    assert gains == pytest.approx(api["expected_information_gain"].tolist(), abs=1e-12)
    assert {"knee_pain", "hip_pain"}.isdisjoint(d["finding"] for d in data)


def test_next_test_candidates_costs_text_and_plot(capsys, tmp_path):
    plot = tmp_path / "nbt.png"
    code, out, err = run(capsys, "next-test", *EV, "--candidate", "fadir_test", "--candidate",
                         "knee_effusion", "--cost", "fadir_test=2", "--plot", str(plot))
    assert code == 0 and plot.exists() and "figure written" in err
    assert "Uncertainty about the origins now" in out and "fadir_test" in out
    code, out, _ = run(capsys, "next-test", *EV, "-c", "fadir_test", "--cost",
                       "fadir_test=2", "--json")
    (item,) = json.loads(out)
    assert item["cost"] == 2.0
    assert item["gain_per_cost"] == pytest.approx(item["expected_information_gain"] / 2)
    code, _, err = run(capsys, "next-test", *EV, "--cost", "fadir_test=cheap")
    assert code == 1 and "expected a positive number" in err


def test_explain_text_json_plot(capsys, tmp_path):
    ev = [*EV, "-e", "knee_effusion=present"]
    code, out, _ = run(capsys, "explain", *ev)
    assert code == 0
    assert "Leading origin: knee pathology" in out
    assert "Knee effusion = present raised the odds of knee pathology" in out
    assert "NOT a medical device" in out
    code, out, _ = run(capsys, "explain", *ev, "--json", "--origin", "knee_pathology")
    data = json.loads(out)
    api = explain({"knee_pain": "present", "hip_pain": "present", "knee_effusion": "present"},
                  origins=["knee_pathology"], model=BASIC)
    assert len(data["weights"]) == 3
    assert [w["woe"] for w in data["weights"]] == pytest.approx(api.table["woe"].tolist())
    assert data["weights"][2]["path"] == "knee_pathology -> knee_effusion"
    plot = tmp_path / "why.svg"
    code, _, _ = run(capsys, "explain", *ev, "--plot", str(plot))
    assert code == 0 and b"<svg" in plot.read_bytes()
    # never overwrite a file unless asked
    code, _, err = run(capsys, "explain", *ev, "--plot", str(plot))
    assert code == 1 and "pass --overwrite" in err
    code, _, _ = run(capsys, "explain", *ev, "--plot", str(plot), "--overwrite")
    assert code == 0


def test_explain_unknown_finding(capsys):
    code, out, err = run(capsys, "explain", "-e", "hip_pian=present")
    assert code == 1 and out == ""
    assert err.startswith("error: ") and "did you mean 'hip_pain'?" in err
    assert "Traceback" not in err


def test_what_if_scenarios(capsys, tmp_path):
    plot = tmp_path / "whatif.png"
    code, out, _ = run(capsys, "what-if", *EV,
                       "--scenario", "treated:do=knee_pathology=absent;remove=hip_pain",
                       "--scenario", "plus_effusion:add=knee_effusion=present",
                       "-s", "older:context=age_group=60_plus;set=hip_pain.leak=0.1",
                       "--target", "hip_pain", "--target", "knee_pathology", "--json",
                       "--plot", str(plot))
    assert code == 0 and plot.exists()
    data = json.loads(out)
    assert [s["name"] for s in data["scenarios"]] == ["base", "treated", "plus_effusion", "older"]
    assert [t["target"] for t in data["targets"]] == ["hip_pain", "knee_pathology"]
    api = what_if({"knee_pain": "present", "hip_pain": "present"}, {
        "treated": {"do": {"knee_pathology": "absent"}, "remove": ["hip_pain"]},
        "plus_effusion": {"add": {"knee_effusion": "present"}},
        "older": {"context": {"age_group": "60_plus"}, "set": ["hip_pain.leak=0.1"]},
    }, targets=["hip_pain", "knee_pathology"], model=BASIC)
    for s in data["scenarios"]:
        for t, v in s["values"].items():
            assert v == pytest.approx(api.loc[t, s["name"]], abs=1e-12)
    assert data["scenarios"][1]["values"]["knee_pathology"] == 0.0
    assert "do(knee_pathology=absent)" in data["scenarios"][1]["description"]
    code, out, _ = run(capsys, "what-if", *EV, "-s", "treated:do=knee_pathology=absent")
    assert code == 0 and "treated: do(knee_pathology=absent)" in out


@pytest.mark.parametrize("scenario, message", [
    ("treated do=knee_pathology=absent", "no ':' after the name"),
    ("x:addd=knee_effusion=present", "did you mean 'add'"),
    ("x:add=knee_effusion", "expected NODE=STATE"),
    ("x:add=knee_efusion=present", "did you mean 'knee_effusion'"),
    ("x:remove=low_back_pain", "expected an observed node"),
    ("x:set=knee_pain.leak=2", "expected a leak probability in [0, 1]"),
])
def test_what_if_bad_scenarios(capsys, scenario, message):
    code, out, err = run(capsys, "what-if", *EV, "--scenario", scenario)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err


def test_what_if_duplicate_scenario_name(capsys):
    code, _, err = run(capsys, "what-if", *EV, "-s", "a:add=knee_effusion=present",
                       "-s", "a:add=knee_effusion=absent")
    assert code == 1 and "used twice" in err


def test_what_if_help_documents_the_syntax(capsys):
    with pytest.raises(SystemExit):
        cli.main(["what-if", "--help"])
    out = capsys.readouterr().out
    assert "NAME:ACTION=ITEMS" in out and "remove=NODE" in out and "do=NODE=STATE" in out


def test_sensitivity_command(capsys, tmp_path, tiny_yaml_path):
    plot = tmp_path / "tornado.png"
    code, out, _ = run(capsys, "sensitivity", "--model", str(tiny_yaml_path), "--target",
                       "knee_oa", "-e", "limp=present", "--top", "5", "--json", "--plot",
                       str(plot))
    assert code == 0 and plot.exists()
    data = json.loads(out)
    assert data["target"] == "knee_oa" and data["state"] == "present"
    assert len(data["parameters"]) == 5
    swings = [p["swing"] for p in data["parameters"]]
    assert swings == sorted(swings, reverse=True)
    code, out, _ = run(capsys, "sensitivity", "--model", str(tiny_yaml_path), "--target",
                       "knee_oa", "-e", "limp=present", "--set", "gait.leak=0.3",
                       "--draws", "20", "--interval", "0.1")
    assert code == 0 and "gait.leak" in out and "20 draws" in out
    code, _, err = run(capsys, "sensitivity", "--model", str(tiny_yaml_path), "--target",
                       "knee_o")
    assert code == 1 and "did you mean 'knee_oa'" in err
    code, _, err = run(capsys, "sensitivity", "--model", str(tiny_yaml_path), "--interval",
                       "wide", "--target", "knee_oa")
    assert code == 1 and "--interval: expected 'beta' or a fraction" in err


def test_conflict_command(capsys, tmp_path):
    ev = ["-e", "low_back_pain=present", "-e", "straight_leg_raise=negative",
          "-e", "knee_effusion=present"]
    code, out, _ = run(capsys, "conflict", *ev, "--json")
    data = json.loads(out)
    api = conflict({"low_back_pain": "present", "straight_leg_raise": "negative",
                    "knee_effusion": "present"}, BASIC)
    assert data["conflict_bits"] == pytest.approx(api.conflict, abs=1e-12)
    assert data["flagged"] == api.flagged and data["p_value"] is None
    assert [c["finding"] for c in data["contributions"]] == ["low_back_pain",
                                                             "straight_leg_raise", "knee_effusion"]
    plot = tmp_path / "c.png"
    code, out, _ = run(capsys, "conflict", *ev, "--simulate", "300", "--plot", str(plot))
    assert code == 0 and plot.exists() and "conf(e) =" in out and "300 cases simulated" in out
    code, _, err = run(capsys, "conflict")
    assert code == 1 and "at least one finding" in err
    assert not math.isnan(api.conflict)
