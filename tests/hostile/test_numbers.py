"""Numbers and options at the door, numerical noise, read-only specs, stale models.

Every bad option is one line naming the option, exit status 1, before any work (no file
written). Conflict and staleness results are checked against independent oracles
(brute-force enumeration, pgmpy's variable elimination).
"""

from __future__ import annotations

import copy
import itertools
import math
import re

import numpy as np
import pytest
from harden_util import one_line_error, run, snapshot

import kneehip_bn as kb
from kneehip_bn.errors import FrozenSpecError, KneeHipError, ParameterError
from oracle import BruteForce

BASIC = ["--model", "knee_hip_basic"]
BIG = str(10**40)


@pytest.fixture(scope="module")
def audit_csv(tmp_path_factory):
    p = tmp_path_factory.mktemp("num") / "audit.csv"
    kb.simulate_audit(200, seed=2, model="knee_hip_basic").to_csv(p, index=False)
    return p


CASES = [
    (["simulate", "--n", "10", "--seed", "-1", "-o", "OUT.csv"], r"--seed: expected a random seed .*found -1"),
    (["simulate", "--n", "10", "--seed", BIG, "-o", "OUT.csv"], r"--seed: .*found a 41-digit number"),
    (["simulate", "--n", "10000000000", "-o", "OUT.csv"], r"--n: expected a number of patients from 1 to 10,000,000"),
    (["simulate", "--n", "0", "-o", "OUT.csv"], r"--n: expected .*found 0"),
    (["simulate", "--n", "10", "--missing", "1.5", "-o", "OUT.csv"], r"--missing: expected a fraction of blank cells"),
    (["simulate", "--n", "10", "--diagnosis-noise", "nan", "-o", "OUT.csv"], r"--diagnosis-noise: .*found nan"),
    (["check", "AUDIT", "--alpha", "2"], r"--alpha: expected a false discovery rate with 0 < alpha < 1, found 2"),
    (["check", "AUDIT", "--alpha", "0"], r"--alpha: .*found 0"),
    (["check", "AUDIT", "--alpha", "nan"], r"--alpha: .*found nan"),
    (["check", "AUDIT", "--max-given", "-1"], r"--max-given: expected a conditioning-set size"),
    (["batch", "AUDIT", "-o", "OUT.csv", "--chunksize", "0"], r"--chunksize: expected .*found 0"),
    (["batch", "AUDIT", "-o", "OUT.csv", "--chunksize", "-5"], r"--chunksize: .*found -5"),
    (["fit", "AUDIT", "-o", "OUT.yaml", "--holdout", "1"], r"--holdout: expected a fraction of rows held out, 0 <= holdout < 1, found 1"),
    (["fit", "AUDIT", "-o", "OUT.yaml", "--holdout", "-0.1"], r"--holdout: .*found -0.1"),
    (["fit", "AUDIT", "-o", "OUT.yaml", "--seed", "-3"], r"--seed: .*found -3"),
    (["fit", "AUDIT", "-o", "OUT.yaml", "--strength", "inf"], r"--strength: expected a positive equivalent sample size, found inf"),
    (["fit", "AUDIT", "-o", "OUT.yaml", "--tol", "0"], r"--tol: expected a positive tolerance"),
    (["fit", "AUDIT", "-o", "OUT.yaml", "--max-iter", "0"], r"--max-iter: expected a positive number of EM iterations"),
    (["conflict", "-e", "knee_pain=present", "--simulate", "10", "--seed", "-1"], r"--seed: .*found -1"),
    (["sensitivity", "-e", "knee_pain=present", "--draws", "10", "--seed", "-1"], r"--seed: .*found -1"),
    (["sensitivity", "-e", "knee_pain=present", "--top", "0"], r"--top: expected a positive number"),
    (["sources", "--node", ""], r"--node: expected a value, found an empty string"),
    (["diagnose", "-e", ""], r"-e/--evidence: expected a value, found an empty string"),
    (["diagnose", "--set", ""], r"--set: expected a value, found an empty string"),
    (["batch", "", "-o", "OUT.csv"], r"DATA: expected a value, found an empty string"),
    (["simulate", "--n", "5", "-o", ""], r"--output: expected a value, found an empty string"),
    (["validate", ""], r"MODEL: expected a value, found an empty string"),
]


@pytest.mark.parametrize("argv,pattern", CASES, ids=[" ".join(c[0][:3]) + f" #{i}"
                                                     for i, c in enumerate(CASES)])
def test_bad_numbers_and_options(argv, pattern, audit_csv, tmp_path, capsys):
    argv = [str(audit_csv) if a == "AUDIT" else str(tmp_path / a) if a.startswith("OUT.")
            else a for a in argv]
    before = snapshot(audit_csv.parent)
    extra = BASIC if argv[0] != "validate" else []
    code, out, err = run(capsys, *argv, *extra)
    assert code == 1, (out, err)
    assert re.search(pattern, one_line_error(err)), err
    assert list(tmp_path.iterdir()) == []
    assert snapshot(audit_csv.parent) == before


def test_a_huge_seed_in_range_is_accepted(tmp_path, capsys):
    code, _, err = run(capsys, "simulate", *BASIC, "--n", "5", "--seed", str(2**64 - 1), "-o",
                       tmp_path / "s.csv")
    assert code == 0, err


# ------------------------------------------------------------------ conflict
def _families(spec):
    from kneehip_bn.model.tables import cpd_array

    return [(n, s.states, s.parents, cpd_array(spec, n)) for n, s in spec.nodes.items()]


@pytest.fixture(scope="module")
def basic():
    return kb.load_spec("knee_hip_basic")


def test_conflict_of_one_finding_is_exactly_zero(basic):
    for name in basic.group("finding") + basic.group("test"):
        for state in basic.nodes[name].states:
            try:
                c = kb.conflict({name: state}, basic, n_sim=50, seed=1)
            except kb.ImpossibleEvidenceError:
                continue
            assert c.conflict == 0.0 and not c.flagged
            assert np.all(c.contributions["contribution"] == 0.0)
            assert np.all(c.simulated == 0.0) and c.p_value == 1.0


def test_conflict_of_one_finding_at_the_cli(capsys):
    code, out, _ = run(capsys, "conflict", *BASIC, "-e", "knee_effusion=absent", "--json")
    import json

    d = json.loads(out)
    assert code == 0 and d["conflict_bits"] == 0.0 and d["flagged"] is False


def test_conflict_against_brute_force(tiny_spec):
    bf = BruteForce(_families(tiny_spec))
    pairs = [("limp", "present"), ("pain_level", "severe"), ("limp", "absent"),
             ("pain_level", "none")]
    for (a, sa), (b, sb) in itertools.combinations(pairs, 2):
        if a == b:
            continue
        ev = {a: sa, b: sb}
        want = math.log2(bf.probability({a: sa}) * bf.probability({b: sb}) / bf.probability(ev))
        c = kb.conflict(ev, tiny_spec)
        assert c.conflict == pytest.approx(want, abs=1e-12)
        assert c.flagged == (want > 1e-9)


def test_explain_origin_must_be_an_origin(capsys):
    code, _, err = run(capsys, "explain", *BASIC, "-e", "knee_pain=present", "--origin",
                       "knee_pain")
    assert code == 1
    assert re.search(r"unknown origin 'knee_pain': expected one of knee_pathology, "
                     r"hip_pathology.*did you mean 'knee_pathology'\?", one_line_error(err))
    with pytest.raises(kb.UnknownNameError, match="unknown origin 'hip_pain'"):
        kb.next_best_test({"knee_pain": "present"}, "knee_hip_basic", origins=["hip_pain"])


# ------------------------------------------------------------------ read-only specs
def test_validated_specs_are_read_only(basic):
    edits = [
        lambda s: s.nodes["knee_pathology"].table[0].probabilities.__setitem__("present", 0.5),
        lambda s: setattr(s.nodes["knee_pain"].noisy_or.leak, "p", 0.9),
        lambda s: s.nodes.pop("knee_pain"),
        lambda s: s.nodes["knee_pain"].parents.append("age_group"),
        lambda s: setattr(s, "name", "other"),
        lambda s: s.sources.clear(),
    ]
    before = kb.query("knee_pathology", model=basic)
    for edit in edits:
        with pytest.raises(FrozenSpecError, match="read-only: edit it with set_prior"):
            edit(basic)
    assert kb.query("knee_pathology", model=basic).equals(before)
    assert isinstance(FrozenSpecError("x"), TypeError)


def test_edits_return_new_read_only_specs_and_deepcopy_is_editable(basic):
    new = kb.set_prior(basic, "lumbar_radiculopathy", 0.3)
    assert kb.model.spec.is_frozen(new) and new is not basic
    assert kb.query("lumbar_radiculopathy", model=new)["present"] == pytest.approx(0.3)
    e = copy.deepcopy(basic)
    for row in e.nodes["lumbar_radiculopathy"].table:
        row.probabilities = {"absent": 0.25, "present": 0.75}
    assert kb.query("lumbar_radiculopathy", model=e)["present"] == pytest.approx(0.75, abs=1e-12)
    e.nodes["lumbar_radiculopathy"].table[0].probabilities = {"absent": 0.5, "present": 0.75}
    with pytest.raises(kb.ModelFileError, match="summing to 1"):
        kb.query("lumbar_radiculopathy", model=e)   # an in-place edit is validated
    e.nodes["lumbar_radiculopathy"].table[0].probabilities = {"absent": 0.4, "present": 0.6}
    got = kb.query("lumbar_radiculopathy", model=e)["present"]
    # by hand: sum over age of P(age) P(present | age), rows 0.6 (first age) and 0.75
    assert e.nodes["lumbar_radiculopathy"].parents == ["age_group"]
    p_age = e.nodes["age_group"].table[0].probabilities
    rows = {r.given["age_group"]: r.probabilities["present"]
            for r in e.nodes["lumbar_radiculopathy"].table}
    want = math.fsum(p_age[a] * rows[a] for a in p_age)
    assert got == pytest.approx(want, abs=1e-12)


def test_engine_cache_sees_an_in_place_cpd_edit():
    from pgmpy.inference import VariableElimination

    m = kb.load_model("knee_hip_basic")
    first = kb.query("lumbar_radiculopathy", model=m)["present"]
    cpd = m.get_cpds("lumbar_radiculopathy")
    cpd.values[0, ...] = 0.2
    cpd.values[1, ...] = 0.8
    got = kb.query("lumbar_radiculopathy", model=m)["present"]
    want = VariableElimination(m).query(["lumbar_radiculopathy"], show_progress=False).values[1]
    assert got == pytest.approx(want, abs=1e-12) and abs(got - first) > 0.5


# ------------------------------------------------------------------ stale models (issue 9)
def _replaced():
    from pgmpy.factors.discrete import TabularCPD

    m = kb.load_model("knee_hip_basic")
    old = m.get_cpds("lumbar_radiculopathy")
    k = int(np.prod(old.cardinality[1:]))
    m.add_cpds(TabularCPD("lumbar_radiculopathy", 2, [[0.1] * k, [0.9] * k],
                          evidence=old.variables[1:], evidence_card=list(old.cardinality[1:]),
                          state_names=old.state_names))
    return m


STALE = r"the network's table of 'lumbar_radiculopathy' is no longer the one of the model file"


def test_a_stale_network_is_refused_everywhere(audit_csv):
    import pandas as pd

    from kneehip_bn.learning.simulate import forward_sample, perturb_model
    from kneehip_bn.learning.structure import check_structure

    m = _replaced()
    assert kb.query("lumbar_radiculopathy", model=m)["present"] == pytest.approx(0.9)
    data = pd.read_csv(audit_csv)
    calls = {
        "simulate_audit": lambda: kb.simulate_audit(100, seed=1, model=m),
        "forward_sample": lambda: forward_sample(100, 1, m),
        "perturb_model": lambda: perturb_model(m),
        "PriorFitter": lambda: kb.PriorFitter(model=m).fit(data),
        "check_structure": lambda: check_structure(data, m),
    }
    refused = []
    for name, call in calls.items():
        with pytest.raises(KneeHipError, match=STALE):
            call()
        refused.append(name)
    assert refused == list(calls)


def test_an_unchanged_network_samples_like_its_spec():
    spec = kb.load_spec("knee_hip_basic")
    a = kb.simulate_audit(500, seed=3, model=spec, hidden=())
    b = kb.simulate_audit(500, seed=3, model=kb.build_network(spec), hidden=())
    assert a.equals(b)


def test_parameter_error_is_a_value_error():
    assert issubclass(ParameterError, ValueError) and issubclass(ParameterError, KneeHipError)
