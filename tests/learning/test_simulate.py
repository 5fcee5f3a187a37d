"""Tests of kneehip_bn.learning.simulate: forward sampling, audit-like blanking, working diagnosis.

Oracles: the exact marginals and conditional tables of the model (sampling frequencies
must match them within sampling error), and the rules stated in the docstrings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kneehip_bn import KneeHipError, UnknownNameError, load_spec
from kneehip_bn.errors import ParameterError
from kneehip_bn.inference.engine import Engine
from kneehip_bn.learning.simulate import (
    DIAGNOSIS_COLUMN,
    NO_DIAGNOSIS,
    forward_sample,
    perturb_model,
    simulate_audit,
)
from kneehip_bn.model.tables import cpd_array


@pytest.fixture(scope="module")
def spec():
    return load_spec("knee_hip_basic")


@pytest.fixture(scope="module")
def big_sample(spec):
    return forward_sample(40_000, seed=11, model=spec)


def test_forward_sample_marginals_match_exact_marginals(spec, big_sample):
    exact = Engine(spec).prior_marginals()
    n = len(big_sample)
    for node, probs in exact.items():
        freq = big_sample[node].value_counts(normalize=True).reindex(spec.nodes[node].states,
                                                                    fill_value=0.0)
        sd = np.sqrt(probs * (1 - probs) / n)
        assert np.all(np.abs(freq.to_numpy() - probs) <= 5 * sd + 1e-12), node


def test_forward_sample_conditional_tables(spec, big_sample):
    # P(knee_pathology | age_group) and P(knee_pain | parents) in the most common configs
    for node in ("knee_pathology", "activity_level", "weight_shift"):
        n_spec = spec.nodes[node]
        table = cpd_array(spec, node)
        grp = big_sample.groupby(list(n_spec.parents), observed=False)[node]
        for key, col in grp:
            key = key if isinstance(key, tuple) else (key,)
            idx = tuple(spec.nodes[p].states.index(k) for p, k in zip(n_spec.parents, key))
            if len(col) < 500:
                continue
            freq = col.value_counts(normalize=True).reindex(n_spec.states).to_numpy()
            p = table[(slice(None), *idx)]
            assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / len(col)) + 1e-12)


def test_structural_zero_never_sampled(big_sample):
    bad = (big_sample["upper_lumbar_root"] == "present") & (
        big_sample["lumbar_radiculopathy"] == "absent")
    assert not bad.any()


def test_same_seed_same_table_and_categorical_states(spec):
    a = simulate_audit(300, seed=5, missing=0.2, diagnosis_noise=0.1, model=spec)
    b = simulate_audit(300, seed=5, missing=0.2, diagnosis_noise=0.1, model=spec)
    c = simulate_audit(300, seed=6, missing=0.2, diagnosis_noise=0.1, model=spec)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert list(a["knee_pain"].cat.categories) == ["absent", "present"]
    assert list(a[DIAGNOSIS_COLUMN].cat.categories) == [*spec.group("origin"), NO_DIAGNOSIS]


def test_hidden_groups_are_dropped(spec):
    df = simulate_audit(50, seed=1, model=spec)
    assert not set(spec.group("mechanism")) & set(df.columns)
    assert set(spec.group("origin")) <= set(df.columns)
    df2 = simulate_audit(50, seed=1, model=spec, hidden=("mechanism", "origin"))
    assert list(df2.columns) == [n for n, s in spec.nodes.items()
                                 if s.group in ("context", "finding", "test")]
    assert DIAGNOSIS_COLUMN not in df2.columns


def test_mcar_blank_rate(spec):
    df = simulate_audit(20_000, seed=2, missing=0.3, model=spec)
    rate = df.isna().to_numpy().mean()
    assert abs(rate - 0.3) < 0.01
    # completely at random: the rate does not depend on age_group
    by_age = df.drop(columns="age_group").isna().mean(axis=1).groupby(df["age_group"],
                                                                        observed=True).mean()
    assert by_age.max() - by_age.min() < 0.02


def test_mar_blank_rate_depends_on_age(spec):
    df = simulate_audit(20_000, seed=3, missing=0.3, mechanism="mar", model=spec)
    assert not df["age_group"].isna().any()
    by_age = df.drop(columns="age_group").isna().mean(axis=1).groupby(df["age_group"],
                                                                        observed=True).mean()
    assert by_age["under_40"] < by_age["40_to_59"] < by_age["60_plus"]
    # the weights 0.5 : 1 : 1.5 (scaled): oldest about three times the youngest
    assert 2.5 < by_age["60_plus"] / by_age["under_40"] < 3.5
    assert abs(df.drop(columns="age_group").isna().to_numpy().mean() - 0.3) < 0.01


def test_working_diagnosis_rule_without_noise(spec):
    df = simulate_audit(3000, seed=4, model=spec, hidden=(), diagnosis_noise=0.0)
    origins = spec.group("origin")
    present = df[origins].eq("present")
    dx = df[DIAGNOSIS_COLUMN].astype(str)
    none = ~present.any(axis=1)
    assert (dx[none] == NO_DIAGNOSIS).all()
    # a named origin is one the patient has
    named = df[~none]
    assert all(named.loc[i, dx[i]] == "present" for i in named.index)
    # ... and the present origin with the highest posterior given what a clinician sees
    eng = Engine(spec)
    seen = [n for n, s in spec.nodes.items() if s.group in ("context", "finding", "test")]
    multi = present.sum(axis=1) >= 2
    rows = df.index[multi][:15]
    assert len(rows) >= 5
    for i in rows:
        post = eng.posterior({k: df.loc[i, k] for k in seen}, targets=origins)
        best = max((o for o in origins if present.loc[i, o]), key=lambda o: post[o][1])
        assert dx[i] == best


def test_working_diagnosis_noise_rate(spec):
    clean = simulate_audit(5000, seed=8, model=spec, diagnosis_noise=0.0)
    noisy = simulate_audit(5000, seed=8, model=spec, diagnosis_noise=0.3)
    # same patients (noise draws come after sampling), labels changed at the stated rate
    pd.testing.assert_frame_equal(clean.drop(columns=DIAGNOSIS_COLUMN),
                                  noisy.drop(columns=DIAGNOSIS_COLUMN))
    changed = (clean[DIAGNOSIS_COLUMN].astype(str) != noisy[DIAGNOSIS_COLUMN].astype(str)).mean()
    assert abs(changed - 0.3) < 0.02
    always = simulate_audit(5000, seed=8, model=spec, diagnosis_noise=1.0)
    assert (always[DIAGNOSIS_COLUMN].astype(str) != clean[DIAGNOSIS_COLUMN].astype(str)).all()


def test_perturb_model_keeps_structural_zero_and_moves_numbers(spec):
    true = perturb_model(spec, scale=0.5, seed=1)
    row = next(r for r in true.nodes["upper_lumbar_root"].table
           if r.given["lumbar_radiculopathy"] == "absent")
    assert row.probabilities["present"] == 0.0
    assert true.nodes["knee_pain"].noisy_or.leak.p != spec.nodes["knee_pain"].noisy_or.leak.p
    assert true.nodes["age_group"].table[0].probabilities != spec.nodes["age_group"].table[0].probabilities


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n: expected a positive whole number"),
    ({"n": 10, "missing": 1.5}, r"missing: expected a fraction in \[0, 1\), found 1.5"),
    ({"n": 10, "mechanism": "mnar"}, "unknown missingness mechanism 'mnar'"),
    ({"n": 10, "diagnosis_noise": 2}, "diagnosis_noise: expected None or a probability"),
    ({"n": 10, "hidden": ["mechanisms"]}, "did you mean 'mechanism'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(KneeHipError, match=match):
        simulate_audit(**kwargs)


@pytest.mark.parametrize("call, match", [
    (lambda: simulate_audit(10, seed=-1), r"^seed: expected None or a whole number >= 0, found -1$"),
    (lambda: simulate_audit(10, seed=1.5), r"^seed: .*found 1.5$"),
    (lambda: simulate_audit(0), r"^n: expected a positive whole number of patients, found 0$"),
    (lambda: simulate_audit(10.0), r"^n: .*found 10.0$"),
    (lambda: simulate_audit(10, missing=-0.1), r"^missing: expected a fraction"),
    (lambda: simulate_audit(10, missing=0.1, mechanism="mar", mar_weights=(1, -1)),
     r"^mar_weights: expected two relative blank rates >= 0"),
    (lambda: forward_sample(10, seed=-3), r"^seed: "),
    (lambda: perturb_model(scale=-1), r"^scale: expected a standard deviation >= 0, found -1$"),
    (lambda: perturb_model(seed=-1), r"^seed: "),
])
def test_bad_parameters_are_one_line_parameter_errors(call, match):
    with pytest.raises(ParameterError, match=match) as err:
        call()
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)


def test_mar_needs_age_group():
    with pytest.raises(ParameterError, match="expected the observed column age_group"):
        simulate_audit(10, missing=0.1, mechanism="mar", hidden=("mechanism", "context"))


def test_mar_column_is_a_parameter(spec):
    kw = dict(seed=3, missing=0.3, mechanism="mar", model=spec)
    assert simulate_audit(400, **kw).equals(
        simulate_audit(400, mar_column="age_group", mar_weights=(0.5, 1.5), **kw))
    df = simulate_audit(20_000, mar_column="activity_level", mar_weights=(0.2, 1.8), **kw)
    assert not df["activity_level"].isna().any() and df["age_group"].isna().any()
    rate = df.drop(columns="activity_level").isna().mean(axis=1).groupby(
        df["activity_level"], observed=True).mean()
    first, *_, last = spec.nodes["activity_level"].states
    assert rate[last] > 5 * rate[first]
    with pytest.raises(UnknownNameError, match="mar_column"):
        simulate_audit(10, mar_column="activity", **kw)


def test_unknown_group_is_unknown_name_error():
    with pytest.raises(UnknownNameError):
        simulate_audit(10, hidden=["nodes"])
