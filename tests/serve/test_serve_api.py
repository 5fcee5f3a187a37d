"""The classroom API (``kneehip serve``): every endpoint through Starlette's TestClient.

Numbers are compared with the CLI's ``--json`` output for the same case, obtained by
running :func:`kneehip_bn.cli.main` (the independent path: argparse, the command handler,
``emit_json``); error messages with the CLI's ``error:`` line; region probabilities with
brute-force enumeration (``tests/oracle.py``); the network picture with ``draw_network``'s.
"""

from __future__ import annotations

import doctest
import importlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("starlette")
from starlette.testclient import TestClient

import kneehip_bn as kb
from kneehip_bn.cli import main
from kneehip_bn.serve import MAX_BODY_BYTES, create_app
from kneehip_bn.serve import api as serve_api
from kneehip_bn.serve.cases import load_case_file, load_case_library, shipped_case_files
from kneehip_bn.serve.layout import examination_sections
from oracle import BruteForce

BASIC = "knee_hip_basic"
CASE = {"knee_pain": "present", "hip_pain": "present", "knee_effusion": "present",
        "age_group": "60_plus"}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(BASIC)) as c:  # runs the lifespan: starts and stops the worker
        yield c


def cli_json(capsys, *argv: str):
    capsys.readouterr()
    status = main([*argv, "--model", BASIC, "--json"])
    out = capsys.readouterr()
    assert status == 0, out.err
    return json.loads(out.out)


def cli_error(capsys, *argv: str) -> str:
    capsys.readouterr()
    status = main([*argv, "--model", BASIC])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert err[0].startswith("error: ")
    return err[0][len("error: "):]


def ev_args(ev: dict[str, str], flag: str = "-e") -> list[str]:
    return [x for k, v in ev.items() for x in (flag, f"{k}={v}")]


# ------------------------------------------------------------------ same JSON as the CLI
@pytest.mark.parametrize("evidence,do,edits", [
    ({}, {}, []),
    (CASE, {}, []),
    ({"knee_pain": "present"}, {"hip_pathology": "absent"}, []),
    ({"hip_pain": "present"}, {}, ["knee_pain.leak=0.2", "lumbar_radiculopathy=0.1"]),
])
def test_diagnose_equals_cli(client, capsys, evidence, do, edits):
    body = {"evidence": evidence, "do": do, "set": edits}
    r = client.post("/api/diagnose", json=body)
    assert r.status_code == 200
    argv = ["diagnose", *ev_args(evidence), *ev_args(do, "--do")]
    for e in edits:
        argv += ["--set", e]
    assert r.json() == cli_json(capsys, *argv)


def test_edits_change_the_numbers(client):
    """A slider edit really reaches the model (not a test that cannot fail: the numbers
    differ from the unedited case, and equal a spec edited in Python)."""
    base = client.post("/api/diagnose", json={"evidence": {"hip_pain": "present"}}).json()
    edited = client.post("/api/diagnose", json={"evidence": {"hip_pain": "present"},
                                                "set": ["hip_pathology.present=0.5"]}).json()
    spec = kb.apply_overrides(kb.load_spec(BASIC), ["hip_pathology.present=0.5"])
    direct = kb.diagnose({"hip_pain": "present"}, model=spec).origins
    got = {o["name"]: o["posterior"] for o in edited["origins"]}
    assert got["hip_pathology"] == pytest.approx(float(direct.loc["hip_pathology", "posterior"]),
                                                  abs=1e-15)
    assert got["hip_pathology"] > {o["name"]: o["posterior"]
                                   for o in base["origins"]}["hip_pathology"] + 0.1


def test_query_equals_cli(client, capsys):
    body = {"variable": "hip_pain", "evidence": {"age_group": "60_plus"},
            "do": {"knee_pathology": "absent"}}
    r = client.post("/api/query", json=body)
    assert r.status_code == 200
    assert r.json() == cli_json(capsys, "query", "hip_pain", "-e", "age_group=60_plus",
                                "--do", "knee_pathology=absent")


def test_explain_equals_cli(client, capsys):
    r = client.post("/api/explain", json={"evidence": CASE, "origin": ["knee_pathology",
                                                                       "hip_pathology"]})
    assert r.status_code == 200
    assert r.json() == cli_json(capsys, "explain", *ev_args(CASE), "--origin",
                                "knee_pathology", "--origin", "hip_pathology")


def test_what_if_equals_cli(client, capsys):
    scen = ["treated:do=knee_pathology=absent;remove=hip_pain",
            "older:context=age_group=under_40", "rarer:set=lumbar_radiculopathy=0.01"]
    r = client.post("/api/what-if", json={"evidence": CASE, "scenario": scen,
                                          "target": ["hip_pain", "knee_pathology"]})
    assert r.status_code == 200
    argv = ["what-if", *ev_args(CASE), "--target", "hip_pain", "--target", "knee_pathology"]
    for s in scen:
        argv += ["--scenario", s]
    assert r.json() == cli_json(capsys, *argv)


def test_what_if_structured_equals_string_form(client):
    """The page's object form of scenarios gives the same numbers as the CLI's strings."""
    a = client.post("/api/what-if", json={"evidence": CASE, "scenario": [
        "treated:do=knee_pathology=absent", "no_effusion:add=knee_effusion=absent"]}).json()
    b = client.post("/api/what-if", json={"evidence": CASE, "scenarios": {
        "treated": {"do": {"knee_pathology": "absent"}},
        "no_effusion": {"add": {"knee_effusion": "absent"}}}}).json()
    assert a == b
    vals = {s["name"]: s["values"]["knee_pathology"] for s in a["scenarios"]}
    assert vals["treated"] == 0.0 and vals["no_effusion"] < vals["base"]


def test_next_test_equals_cli(client, capsys):
    r = client.post("/api/next-test", json={"evidence": {"knee_pain": "present"},
                                            "cost": ["fadir_test=2"], "top": 3})
    assert r.status_code == 200
    assert r.json() == cli_json(capsys, "next-test", "-e", "knee_pain=present", "--cost",
                                "fadir_test=2", "--top", "3")


def test_conflict_equals_cli(client, capsys):
    ev = {"age_group": "under_40", "knee_effusion": "present",
          "hip_internal_rotation_limited": "present", "knee_pain": "absent"}
    r = client.post("/api/conflict", json={"evidence": ev, "simulate": 200, "seed": 3})
    assert r.status_code == 200
    assert r.json() == cli_json(capsys, "conflict", *ev_args(ev), "--simulate", "200",
                                "--seed", "3")
    assert r.json()["flagged"] is True


def test_repeated_request_is_served_the_same(client):
    """The per-case memo returns the same answer as a fresh server would."""
    body = {"evidence": CASE}
    first = client.post("/api/explain", json=body).json()
    again = client.post("/api/explain", json=body).json()
    fresh = TestClient(create_app(BASIC)).post("/api/explain", json=body).json()
    assert first == again == fresh


# ------------------------------------------------------------------ bad input: 4xx + CLI message
@pytest.mark.parametrize("evidence,argv", [
    ({"hip_pian": "present"}, ["-e", "hip_pian=present"]),
    ({"knee_pain": "maybe"}, ["-e", "knee_pain=maybe"]),
])
def test_unknown_names_give_the_cli_message(client, capsys, evidence, argv):
    r = client.post("/api/diagnose", json={"evidence": evidence})
    assert r.status_code == 400
    assert r.json() == {"error": cli_error(capsys, "diagnose", *argv)}


def test_impossible_evidence(client, capsys):
    ev = {"upper_lumbar_root": "present", "lumbar_radiculopathy": "absent"}
    for ep in ("diagnose", "explain", "next-test", "conflict", "graph.svg"):
        r = client.post(f"/api/{ep}", json={"evidence": ev})
        assert r.status_code == 422, ep
        assert "impossible" in r.json()["error"]
    r = client.post("/api/diagnose", json={"evidence": ev})
    assert r.json() == {"error": cli_error(capsys, "diagnose", *ev_args(ev))}


def test_bad_override_and_scenario_messages(client, capsys):
    r = client.post("/api/diagnose", json={"set": ["knee_pain.leak=1.5"]})
    assert r.status_code == 400
    assert r.json()["error"] == cli_error(capsys, "diagnose", "--set", "knee_pain.leak=1.5")
    r = client.post("/api/what-if", json={"scenario": ["oops"]})
    assert r.status_code == 400
    assert r.json()["error"] == cli_error(capsys, "what-if", "--scenario", "oops")
    r = client.post("/api/next-test", json={"cost": ["fadir_test=cheap"]})
    assert r.json()["error"] == cli_error(capsys, "next-test", "--cost", "fadir_test=cheap")
    r = client.post("/api/conflict", json={})
    assert r.status_code == 400
    assert r.json()["error"] == cli_error(capsys, "conflict")


@pytest.mark.parametrize("body,needle", [
    ([1, 2], "body: expected a JSON object"),
    ({"evidence": ["knee_pain=present"]}, "body.evidence: expected an object"),
    ({"evidence": {"knee_pain": True}}, "body.evidence.knee_pain: expected a state name"),
    ({"do": "knee_pathology=absent"}, "body.do: expected an object"),
    ({"set": "knee_pain.leak=0.1"}, "body.set: expected a list of strings"),
    ({"set": [0.1]}, "body.set: expected a list of strings"),
    ({"evidnce": {}}, "body: unknown field 'evidnce'"),
    ({"model": "other.yaml"}, "body.model: the model is fixed"),
])
def test_wrong_types(client, body, needle):
    r = client.post("/api/diagnose", json=body)
    assert r.status_code == 400
    assert r.json()["error"].startswith(needle)
    assert "Traceback" not in r.text


def test_wrong_types_other_endpoints(client):
    assert client.post("/api/query", json={}).json()["error"].startswith("body.variable")
    assert client.post("/api/query", json={"variable": 3}).status_code == 400
    assert client.post("/api/conflict", json={"evidence": CASE, "simulate": "many"}
                       ).json()["error"] == "body.simulate: expected an integer, found a string"
    r = client.post("/api/conflict", json={"evidence": CASE, "simulate": 10**6})
    assert r.status_code == 400 and "at most" in r.json()["error"]
    r = client.post("/api/what-if", json={"scenarios": ["a"]})
    assert r.json()["error"].startswith("body.scenarios: expected an object")
    r = client.post("/api/next-test", json={"top": 0})
    assert r.json()["error"] == "--top: expected a positive number, found 0"


def test_invalid_json_and_oversize_body(client):
    r = client.post("/api/diagnose", content=b'{"evidence": ',
                    headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("body: expected JSON")
    big = json.dumps({"evidence": {"knee_pain": "present" + " " * MAX_BODY_BYTES}})
    r = client.post("/api/diagnose", content=big.encode())
    assert r.status_code == 413
    assert r.json()["error"].startswith(f"body: expected at most {MAX_BODY_BYTES} bytes")


def test_oversize_body_without_content_length(client):
    """A chunked body (no Content-Length) is cut off while it is read."""
    def chunks():
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    r = client.post("/api/diagnose", content=chunks())
    assert r.status_code == 413


def test_too_much_evidence(client):
    ev = {f"node_{i}": "present" for i in range(serve_api.MAX_EVIDENCE + 1)}
    r = client.post("/api/diagnose", json={"evidence": ev})
    assert r.status_code == 400
    assert r.json()["error"] == (f"body.evidence: expected at most {serve_api.MAX_EVIDENCE} "
                                 f"entries, found {serve_api.MAX_EVIDENCE + 1}")
    r = client.post("/api/diagnose", json={"set": ["knee_pain.leak=0.1"] *
                                           (serve_api.MAX_EDITS + 1)})
    assert r.status_code == 400 and "at most" in r.json()["error"]


def test_methods_and_unknown_paths(client):
    r = client.get("/api/diagnose")
    assert r.status_code == 405 and "expected POST" in r.json()["error"]
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json()["error"].startswith("/api/nothing: no such")
    assert client.get("/etc/passwd").status_code == 404
    assert client.get("/static/../../spec.py").status_code == 404


def test_internal_error_has_no_stack_trace(monkeypatch):
    app = create_app(BASIC)

    def boom(models, body):
        raise RuntimeError("secret detail /home/x")

    monkeypatch.setitem(serve_api.HANDLERS, "diagnose", boom)
    app = create_app(BASIC)  # handlers are bound when the app is built
    r = TestClient(app, raise_server_exceptions=False).post("/api/diagnose", json={})
    assert r.status_code == 500
    assert set(r.json()) == {"error"}
    assert "Traceback" not in r.text and "secret" not in r.text


# ------------------------------------------------------------------ page data
@pytest.mark.parametrize("name", list(kb.SHIPPED_MODELS))
def test_model_info_and_sections_cover_every_finding(name):
    spec = kb.load_spec(name)
    info = TestClient(create_app(spec)).get("/api/model").json()
    assert info["name"] == spec.name and info["teaching_model"] is True
    assert "NOT a medical device" in info["disclaimer"]
    listed = [n for s in info["sections"] for n in s["nodes"]]
    expected = [n for n, s in spec.nodes.items() if s.group in ("finding", "test")]
    assert sorted(listed) == sorted(expected) and len(listed) == len(set(listed))
    assert info["context"] == spec.group("context")
    flags = set(spec.red_flags())
    for s in info["sections"]:
        assert (s["id"] == "red_flags") == bool(flags & set(s["nodes"])) or not flags


def test_sections_follow_the_documented_rules():
    secs = {s["id"]: s["nodes"] for s in examination_sections(kb.load_spec(BASIC))}
    assert "knee_pain" in secs["history"] and "low_back_pain" in secs["history"]
    assert "knee_effusion" in secs["knee"] and "fadir_test" in secs["hip"]
    assert "femoral_nerve_stretch" in secs["spine"]
    assert "red_flags" not in secs  # the basic model has none


def test_every_slider_number_is_a_working_edit():
    """Each ``numbers`` entry's ``set`` is accepted by apply_overrides and sets that value."""
    spec = kb.load_spec(BASIC)
    info = TestClient(create_app(spec)).get("/api/model").json()
    recs = {(r["node"], r["what"], r["given"]): r["value"] for r in spec.provenance()}
    assert len(info["numbers"]) >= 40
    for num in info["numbers"]:
        edited = kb.apply_overrides(spec, [f"{num['set']}=0.123"])
        changed = [(r["node"], r["what"], r["given"]) for r in edited.provenance()
                   if r["value"] == pytest.approx(0.123) and r["edited"]]
        assert changed, num
        assert all(k in recs for k in changed)


def _red_flag_model(tmp_path: Path) -> Path:
    from conftest import TINY_YAML

    data = yaml.safe_load(TINY_YAML)
    data["name"] = "tiny_flags"
    data["nodes"]["knee_oa"]["region"] = "knee"
    data["nodes"]["hip_oa"]["region"] = "hip"
    data["nodes"]["serious"] = {
        "group": "origin", "states": ["absent", "present"], "region": "serious",
        "table": {"probabilities": {"absent": 0.98, "present": 0.02}, "source": "guess"}}
    data["nodes"]["night_pain"] = {
        "group": "finding", "states": ["absent", "present"], "parents": ["serious"],
        "red_flag": True, "table": [
            {"given": {"serious": "absent"}, "probabilities": {"absent": 0.95, "present": 0.05},
             "source": "guess"},
            {"given": {"serious": "present"}, "probabilities": {"absent": 0.3, "present": 0.7},
             "source": "guess"}]}
    p = tmp_path / "tiny_flags.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_regions_and_red_flags_against_brute_force(tmp_path):
    spec = kb.load_spec(_red_flag_model(tmp_path))
    c = TestClient(create_app(spec))
    bf = BruteForce.from_pgmpy(kb.build_network(spec))
    for ev in ({}, {"limp": "present"}, {"limp": "present", "night_pain": "present"},
               {"pain_level": "severe", "age": "old"}):
        r = c.post("/api/case", json={"evidence": ev}).json()
        for region, dxs in spec.regions().items():
            none = bf.probability({**ev, **{d: "absent" for d in dxs}}) / bf.probability(ev)
            assert r["regions"][region] == pytest.approx(1 - none, abs=1e-12)
        assert r["red_flags"] == (["night_pain"] if ev.get("night_pain") == "present" else [])
    # an observed diagnosis makes its region certain
    r = c.post("/api/case", json={"evidence": {"knee_oa": "present"}}).json()
    assert r["regions"]["knee"] == 1.0
    secs = {s["id"]: s["nodes"] for s in examination_sections(spec)}
    assert secs["red_flags"] == ["night_pain"]


# ------------------------------------------------------------------ the picture
def test_svg_matches_draw_network():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kneehip_bn.teaching.plots import show_inference

    spec = kb.load_spec(BASIC)
    ev = {"knee_effusion": "present", "hip_pain": "present"}
    do = {"hip_muscle_weakness": "absent"}
    r = TestClient(create_app(spec)).post("/api/graph.svg", json={"evidence": ev, "do": do})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    svg = r.text
    ax = show_inference(ev, model=spec, do=do)
    hl_mpl = {p.get_gid()[5:] for p in ax.patches
              if (p.get_gid() or "").startswith("edge:") and p.get_linewidth() > 2}
    edges_mpl = {p.get_gid()[5:] for p in ax.patches if (p.get_gid() or "").startswith("edge:")}
    nodes_mpl = {p.get_gid()[5:] for p in ax.patches if (p.get_gid() or "").startswith("node:")}
    texts_mpl = sorted(t.get_text() for t in ax.texts if t.get_text().startswith("P("))
    plt.close(ax.figure)
    import re

    assert set(re.findall(r'data-edge="([^"]+)" data-highlight', svg)) == hl_mpl != set()
    assert set(re.findall(r'data-edge="([^"]+)"', svg)) == edges_mpl
    assert set(re.findall(r'data-node="([^"]+)"', svg)) == nodes_mpl
    texts_svg = sorted(re.findall(r">(P\([^<]+)</text>", svg))
    assert texts_svg == texts_mpl
    post = kb.get_engine(spec).posterior(ev, do=do)
    for node, p in re.findall(r'data-node="([^"]+)" data-group="[a-z]+" data-p="([^"]+)"', svg):
        k = spec.nodes[node].states.index(kb.inference.queries.on_state(spec.nodes[node].states))
        assert float(p) == pytest.approx(float(post[node][k]), abs=1e-12)
    assert 'data-observed="absent"' in svg  # the do() node shows its state
    assert client_get_prior_svg(spec).count("data-p=") == len(spec.nodes)


def client_get_prior_svg(spec) -> str:
    r = TestClient(create_app(spec)).get("/api/graph.svg")
    assert r.status_code == 200
    return r.text


# ------------------------------------------------------------------ pages, docs, OpenAPI
def test_page_assets_and_docs(client):
    page = client.get("/")
    assert page.status_code == 200 and "not a medical device" in page.text.lower()
    assert "http" not in client.get("/static/app.js").text.replace("http://127", "")
    assert client.get("/static/style.css").status_code == 200
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for name, fields in serve_api.ENDPOINT_FIELDS.items():
        path = "/api/graph.svg" if name == "graph" else f"/api/{name}"
        schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert list(schema["properties"]) == list(fields)
    for name in ("diagnose", "query", "explain", "what-if", "next-test"):
        assert f"/api/{name}" in doc["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/diagnose" in docs.text


# ------------------------------------------------------------------ case library
@pytest.mark.parametrize("name", list(kb.SHIPPED_MODELS))
def test_shipped_cases_load_and_lead_with_their_answer(name):
    """Each shipped case that fits its model leads, once every finding is revealed, with the
    case's expected diagnosis (a vignette check that can fail). A case for another edition
    of a model of the same name is reported as skipped, with the reason, never dropped."""
    spec = kb.load_spec(name)
    lib = load_case_library(spec)
    tagged = [c for f in shipped_case_files() for c in load_case_file(f) if c["model"] == name]
    assert len(tagged) >= 12
    assert len(lib["cases"]) + len(lib["skipped"]) == len(tagged)
    for s in lib["skipped"]:
        assert "unknown" in s["reason"] or "diagnosis" in s["reason"]
    if name == BASIC:
        assert not lib["skipped"]
    if {"knee_osteoarthritis", "hip_osteoarthritis"} <= set(spec.nodes):  # second edition
        assert not lib["skipped"]
    for c in lib["cases"]:
        ev = dict(c["context"])
        for s in c["steps"]:
            ev.update(s["reveal"])
        dx = kb.diagnose(ev, model=spec)
        assert dx.origins.index[0] == c["answer"], (c["id"], dx.origins["posterior"].to_dict())


def test_cases_for_other_models_are_counted_not_shown(tmp_path):
    spec = kb.load_spec(_red_flag_model(tmp_path))
    lib = load_case_library(spec)
    assert lib["cases"] == [] and lib["other_models"].get(BASIC, 0) >= 12
    assert lib["skipped"] == []


def test_case_file_problems(tmp_path):
    spec = kb.load_spec(BASIC)
    good = ("format: kneehip-cases/1\ncases:\n  - id: a\n    model: knee_hip_basic\n"
            "    title: t\n    story: s\n    answer: hip_pathology\n"
            "    steps:\n      - reveal: {hip_pain: present}\n")
    p = tmp_path / "c.yaml"
    p.write_text(good)
    assert load_case_library(spec, extra=[p], shipped=False)["cases"][0]["id"] == "a"
    bad = {
        "dup": good.replace("    title: t\n", "    title: t\n    title: u\n"),
        "unknown node": good.replace("hip_pain: present", "hip_pian: present"),
        "unknown state": good.replace("hip_pain: present", "hip_pain: maybe"),
        "answer": good.replace("answer: hip_pathology", "answer: hip_pain"),
        "tag": good.replace("title: t", "!!python/object:os.system t"),
        "format": good.replace("kneehip-cases/1", "kneehip-cases/9"),
        "other model": good.replace("model: knee_hip_basic", "model: knee_hip_x"),
        "no steps": good.split("    steps:")[0],
    }
    msgs = {}
    for what, text in bad.items():
        p.write_text(text)
        with pytest.raises(kb.KneeHipError) as info:
            load_case_library(spec, extra=[p], shipped=False)
        msgs[what] = str(info.value)
    assert "duplicate key" in msgs["dup"] and "first at line" in msgs["dup"]
    assert "did you mean 'hip_pain'" in msgs["unknown node"]
    assert "expected one of absent, present" in msgs["unknown state"]
    assert "diagnosis" in msgs["answer"]
    assert "kneehip-cases/1" in msgs["format"]
    assert "expected 'knee_hip_basic'" in msgs["other model"]
    assert "steps" in msgs["no steps"]
    assert load_case_file is not None


def test_cases_endpoint(client):
    lib = client.get("/api/cases").json()
    assert lib["model"] == BASIC and len(lib["cases"]) >= 12
    assert all(c["model"] == BASIC for c in lib["cases"])


# ------------------------------------------------------------------ the command
def test_serve_help_and_warning(capsys):
    from kneehip_bn.cli.serve import serve_warning

    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
    assert "--host" in capsys.readouterr().out
    assert serve_warning("127.0.0.1") is None and serve_warning("localhost") is None
    assert "anyone who can reach this computer" in serve_warning("0.0.0.0")


def test_serve_without_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ModuleNotFoundError
    assert main(["serve"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['error: the classroom page needs starlette and uvicorn: pip install '
                   '"kneehip_bn[serve]"']


def test_serve_bad_model_is_one_line(capsys, tmp_path):
    assert main(["serve", "--model", str(tmp_path / "nope.yaml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


@pytest.mark.parametrize("mod", ["kneehip_bn.serve.api", "kneehip_bn.serve.app",
                                 "kneehip_bn.serve.cases", "kneehip_bn.serve.info",
                                 "kneehip_bn.serve.layout", "kneehip_bn.serve.openapi",
                                 "kneehip_bn.serve.svg"])
def test_serve_docstring_examples(mod):
    m = importlib.import_module(mod)
    res = doctest.testmod(m, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0


def test_numbers_are_finite_json(client, capsys):
    """An observed diagnosis (posterior 1, odds ratio infinite or huge): strict JSON (no
    NaN/Infinity tokens), the same as the CLI's."""
    r = client.post("/api/diagnose", json={"evidence": {"knee_pathology": "present"}})
    assert "Infinity" not in r.text and "NaN" not in r.text
    dx = r.json()
    assert dx == cli_json(capsys, "diagnose", "-e", "knee_pathology=present")
    row = next(o for o in dx["origins"] if o["name"] == "knee_pathology")
    assert row["posterior"] == pytest.approx(1.0, abs=1e-12)
    assert all(math.isfinite(o["posterior"]) for o in dx["origins"])
    assert np.isclose(sum(client.post("/api/query", json={"variable": "age_group"}).json()[
        "distribution"].values()), 1.0)


def test_serve_command_starts_uvicorn_with_the_warning(monkeypatch, capsys):
    """``kneehip serve --host 0.0.0.0`` warns that others can reach it, then serves the
    model named on the command line (uvicorn.run replaced: no socket is opened)."""
    import uvicorn

    seen = {}

    def fake_run(app, host, port, **kw):
        seen.update(app=app, host=host, port=port)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    assert main(["serve", "--model", BASIC, "--host", "0.0.0.0", "--port", "8123"]) == 0
    err = capsys.readouterr().err
    assert "WARNING: listening on 0.0.0.0" in err and "anyone who can reach" in err
    assert seen["host"] == "0.0.0.0" and seen["port"] == 8123
    assert seen["app"].state.spec.name == BASIC
    assert main(["serve", "--model", BASIC]) == 0
    err = capsys.readouterr().err
    assert "WARNING" not in err and "http://127.0.0.1:8000/" in err
    assert main(["serve", "--model", BASIC, "--port", "0"]) == 1
    assert capsys.readouterr().err.startswith("error: --port: expected a port")


@pytest.mark.slow
def test_wheel_ships_the_page_and_the_cases(tmp_path):
    """The built wheel holds every asset of the page and the case library (no CDN, no
    build step): what `pip install "kneehip_bn[serve]"` gets."""
    import subprocess
    import zipfile

    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(repo),
                        "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("kneehip_bn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ("index.html", "app.js", "style.css"):
        assert f"kneehip_bn/serve/static/{asset}" in names
    shipped = {f"kneehip_bn/serve/cases/{p.name}" for p in shipped_case_files()}
    assert shipped and shipped <= names
    page = zipfile.ZipFile(wheel).read("kneehip_bn/serve/static/index.html").decode()
    assert "http://" not in page and "https://" not in page  # nothing fetched from outside
