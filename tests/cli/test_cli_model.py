"""The ``kneehip`` command through ``cli.main`` (and once through the installed script)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from basic import BASIC, main_basic
from kneehip_bn import diagnose, query
from kneehip_bn._util.text import DISCLAIMER
from kneehip_bn.cli import main


def run(capsys, *argv):
    code = main_basic(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


# ----------------------------------------------------------------------------- diagnose
def test_diagnose_text(capsys):
    code, out, err = run(capsys, "diagnose", "-e", "knee_effusion=present", "-e",
                         "joint_line_tenderness=present")
    assert code == 0, err
    assert "Findings: knee_effusion=present, joint_line_tenderness=present" in out
    lines = [ln for ln in out.splitlines() if ln.startswith("knee_pathology")]
    assert lines, out
    want = diagnose({"knee_effusion": "present", "joint_line_tenderness": "present"},
                    model=BASIC).origins
    assert f"{want.loc['knee_pathology', 'posterior']:.3f}" in lines[0]
    # ranked: the first origin row is the leader
    header = out.splitlines().index(next(ln for ln in out.splitlines() if ln.startswith("diagnosis")))
    assert out.splitlines()[header + 1].startswith(want.index[0])
    assert "NOT a medical device" in out


def test_diagnose_json_shape(capsys):
    d = run_json(capsys, "diagnose", "-e", "low_back_pain=present", "-e",
                 "radiating_leg_pain=present")
    assert set(d) >= {"origins", "mechanisms", "evidence", "do"}
    assert all({"name", "prior", "posterior", "odds_ratio"} <= set(o) for o in d["origins"])
    post = [o["posterior"] for o in d["origins"]]
    assert post == sorted(post, reverse=True)
    assert d["origins"][0]["name"] == "lumbar_radiculopathy"
    assert isinstance(d["mechanisms"], dict) and "nerve_irritation" in d["mechanisms"]
    want = diagnose(["low_back_pain=present", "radiating_leg_pain=present"], model=BASIC)
    np.testing.assert_allclose(d["mechanisms"]["nerve_irritation"],
                               want.mechanisms.loc["nerve_irritation", "posterior"], atol=1e-12)
    assert d["evidence"] == {"low_back_pain": "present", "radiating_leg_pain": "present"}


def test_diagnose_do(capsys):
    d = run_json(capsys, "diagnose", "-e", "hip_pain=present", "--do", "knee_pathology=absent")
    assert d["do"] == {"knee_pathology": "absent"}
    ko = next(o for o in d["origins"] if o["name"] == "knee_pathology")
    assert ko["posterior"] == 0.0


def test_diagnose_plot(capsys, tmp_path):
    p = tmp_path / "dx.png"
    code, _, err = run(capsys, "diagnose", "-e", "knee_pain=present", "--plot", str(p))
    assert code == 0, err
    assert p.stat().st_size > 10_000


# ----------------------------------------------------------------------------- query
def test_query_json_shape_and_do(capsys):
    d = run_json(capsys, "query", "hip_pain", "-e", "knee_effusion=present")
    assert set(d) == {"variable", "distribution"} and d["variable"] == "hip_pain"
    assert list(d["distribution"]) == ["absent", "present"]
    want = query("hip_pain", {"knee_effusion": "present"}, model=BASIC)
    assert d["distribution"]["present"] == pytest.approx(want["present"], abs=1e-12)
    d2 = run_json(capsys, "query", "hip_pain", "--do", "knee_pathology=absent")
    want2 = query("hip_pain", do={"knee_pathology": "absent"}, model=BASIC)
    assert d2["distribution"]["present"] == pytest.approx(want2["present"], abs=1e-12)
    assert d2["distribution"]["present"] != pytest.approx(d["distribution"]["present"])


def test_query_text(capsys):
    code, out, _ = run(capsys, "query", "age_group", "-e", "knee_pain=present", "--do",
                       "hip_pathology=present")
    assert code == 0
    assert out.splitlines()[0] == "P(age_group | knee_pain=present; do(hip_pathology=present))"
    assert "60_plus" in out


def test_set_overrides_change_the_answer(capsys):
    base = run_json(capsys, "query", "knee_pain")["distribution"]["present"]
    edited = run_json(capsys, "query", "knee_pain", "--set", "knee_pain.leak=0.5")
    assert edited["distribution"]["present"] > base + 0.2
    d = run_json(capsys, "diagnose", "--set", "lumbar_radiculopathy=0.5")
    lr = next(o for o in d["origins"] if o["name"] == "lumbar_radiculopathy")
    assert lr["prior"] == pytest.approx(0.5)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("argv, pattern", [
    (["diagnose", "-e", "knee_pian=present"], "unknown node 'knee_pian'.*did you mean 'knee_pain'"),
    (["diagnose", "-e", "knee_pain=presnt"],
     "unknown state of knee_pain 'presnt'.*did you mean 'present'"),
    (["query", "hip_pian"], "unknown node 'hip_pian'.*did you mean 'hip_pain'"),
    (["diagnose", "-e", "knee_pain=present", "-e", "knee_pain=absent"],
     "knee_pain given twice with different states"),
    (["diagnose", "-e", "lumbar_radiculopathy=absent", "-e", "upper_lumbar_root=present"],
     "impossible evidence.*probability zero"),
    (["diagnose", "--set", "knee_pain.leak"], "override 'knee_pain.leak': expected NODE=P"),
    (["diagnose", "--set", "knee_pain.leak=lots"], "expected a probability after the last '='"),
    (["diagnose", "--set", "knee_pain.leak=1.5"], r"expected a leak probability in \[0, 1\]"),
    (["diagnose", "--set", "kne_pain.leak=0.1"], "unknown node 'kne_pain'.*'knee_pain'"),
    (["diagnose", "-e", "knee_pain"], "expected NAME=STATE"),
    (["query", "hip_pain", "-e", "knee_pain=present", "--do", "knee_pain=absent"],
     "both observed and intervened on"),
    (["sources", "--node", "hip_pian"], "unknown node 'hip_pian'"),
    (["diagnose", "--model", "/nonexistent/model.yaml"], "no such file"),
])
def test_user_errors_exit_1_with_one_line(capsys, argv, pattern):
    import re

    code, out, err = run(capsys, *argv)
    assert code == 1
    assert err.startswith("error: ")
    assert re.search(pattern, err), err
    assert "Traceback" not in err and out == ""


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["diagnose", "--bogus"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


# ----------------------------------------------------------------------------- export, graph
@pytest.mark.parametrize("fmt, ext, head", [("bif", ".bif", "network"), ("xmlbif", ".xml", "<?xml"),
                                            ("net", ".net", "net"), ("xdsl", ".xdsl", "<?xml")])
def test_export_each_format(capsys, tmp_path, fmt, ext, head):
    p = tmp_path / f"m{ext}"
    code, out, err = run(capsys, "export", "-o", str(p))
    assert code == 0, err
    assert out.strip() == f"wrote {p}"
    assert p.read_text().lstrip().startswith(head)
    assert "knee_pathology" in p.read_text()
    code, _, err = run(capsys, "export", "-o", str(p), "--format", fmt)
    assert code == 1 and "exists" in err and "--overwrite" in err
    code, _, err = run(capsys, "export", "-o", str(p), "--overwrite", "--set", "knee_pain.leak=0.2")
    assert code == 0, err


@pytest.mark.parametrize("ext", ["png", "svg"])
def test_graph(capsys, tmp_path, ext):
    p = tmp_path / f"model.{ext}"
    code, _, err = run(capsys, "graph", "-o", str(p))
    assert code == 0, err
    assert p.stat().st_size > 5_000
    if ext == "svg":
        text = p.read_text()
        for name in ("knee_pathology", "hip_pain", "femoral_nerve_stretch", "altered_gait"):
            assert name in text, name
    else:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run(capsys, "graph", "-o", str(p))
    assert code == 1 and "exists" in err


# ----------------------------------------------------------------------------- validate, sources
def test_validate_ok(capsys):
    code, out, err = run(capsys, "validate", BASIC)
    assert code == 0, err
    assert "valid (31 nodes" in out and "check_model() passed" in out
    d = run_json(capsys, "validate", BASIC)
    assert d["valid"] is True and d["nodes"] == 31 and set(d["sources"]) <= {"citation", "elicited"}


def test_validate_broken_file(capsys, broken_yaml_path):
    code, _, err = run(capsys, "validate", str(broken_yaml_path))
    assert code == 1
    assert "nodes.limp.parents" in err and "did you mean 'gait'?" in err
    assert str(broken_yaml_path) in err


def test_validate_tiny_file(capsys, tiny_yaml_path):
    code, out, err = run(capsys, "validate", str(tiny_yaml_path))
    assert code == 0, err
    assert "valid (6 nodes, 6 edges" in out


def test_model_option_uses_another_file(capsys, tiny_yaml_path):
    d = run_json(capsys, "diagnose", "--model", str(tiny_yaml_path), "-e", "pain_level=severe")
    ko = next(o for o in d["origins"] if o["name"] == "knee_oa")
    assert ko["posterior"] == pytest.approx(11 / 24, abs=1e-12)  # hand-worked in conftest


def test_sources(capsys):
    recs = run_json(capsys, "sources", "--node", "knee_effusion")
    assert {r["node"] for r in recs} == {"knee_effusion"}
    assert {r["source"] for r in recs} == {"T40_T41"}
    code, out, _ = run(capsys, "sources", "--node", "knee_effusion")
    assert code == 0 and "T40_T41" in out


# ----------------------------------------------------------------------------- installed script
def test_console_script_help_shows_disclaimer():
    exe = shutil.which("kneehip") or str(__import__("pathlib").Path(sys.executable).with_name("kneehip"))
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "NOT a medical device" in out.stdout
    flat = " ".join(out.stdout.split())
    assert " ".join(DISCLAIMER.split()) in flat
    for cmd in ("diagnose", "query", "export", "graph", "validate", "sources"):
        assert cmd in out.stdout
