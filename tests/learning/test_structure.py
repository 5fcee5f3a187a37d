"""Tests of kneehip_bn.learning.structure: the structure check (d-separation, G-test, BH).

Oracles: scipy (chi-square G-test, false_discovery_control), statsmodels
(Benjamini-Hochberg) and pgmpy (d-separation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kneehip_bn import load_spec
from kneehip_bn.errors import ParameterError
from kneehip_bn.learning.simulate import simulate_audit
from kneehip_bn.learning.structure import check_structure


@pytest.fixture(scope="module")
def spec():
    return load_spec("knee_hip_basic")


def test_q_values_are_benjamini_hochberg_as_statsmodels_computes_them(spec):
    """The q-values of a check are BH-adjusted p-values (scipy), checked against
    statsmodels' independent implementation."""
    from statsmodels.stats.multitest import multipletests

    audit = simulate_audit(3000, seed=5, missing=0.1, model=spec)
    res = check_structure(audit, model=spec)
    assert len(res) > 10
    np.testing.assert_allclose(res["q_value"], multipletests(res["p_value"], method="fdr_bh")[1],
                               atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha": 2}, r"alpha: expected a false discovery rate, 0 < alpha < 1, found 2"),
    ({"alpha": 0}, r"alpha: .*found 0"),
    ({"alpha": True}, r"alpha: .*found True"),
    ({"max_given": -1}, r"max_given: expected a whole number >= 0, found -1"),
    ({"max_given": 1.5}, r"max_given: .*found 1.5"),
])
def test_bad_parameters_are_parameter_errors(kwargs, match):
    df = simulate_audit(50, seed=0, model="knee_hip_basic")
    with pytest.raises(ParameterError, match=match):
        check_structure(df, "knee_hip_basic", **kwargs)


# ------------------------------------------------------------------ structure check
@pytest.fixture(scope="module")
def structure(spec):
    df = simulate_audit(3000, seed=5, missing=0.1, model=spec, hidden=("mechanism", "origin"))
    return df, check_structure(df, spec)


def test_structure_check_claims_are_d_separations(spec, structure):
    from kneehip_bn import build_network

    _, res = structure
    model = build_network(spec)
    assert len(res) > 10
    for _, r in res.iterrows():
        given = [g for g in r["given"].split(", ") if g]
        assert not model.is_dconnected(r["x"], r["y"], observed=given), (r["x"], r["y"], given)


def test_structure_check_on_model_data_finds_few_violations(structure):
    _, res = structure
    assert res["violated"].sum() <= 1
    assert (res["q_value"] >= res["p_value"] - 1e-15).all()


def test_g_test_matches_scipy_marginal_and_stratified(structure):
    from scipy.stats import chi2_contingency

    from kneehip_bn.learning.structure import g_test

    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, 500)
    y = (x + rng.integers(0, 2, 500)) % 2
    g, dof, _, n = g_test(x, y, np.zeros(500, dtype=np.int64), 3, 2, 1)
    want = chi2_contingency(pd.crosstab(x, y), correction=False, lambda_="log-likelihood")
    assert g == pytest.approx(want[0], rel=1e-12) and dof == want[2] and n == 500
    # a reported test: the sum of the per-stratum G statistics, on complete cases
    df, res = structure
    cond = res[res["given"] == "age_group"].iloc[0]
    sub = df[[cond["x"], cond["y"], "age_group"]].dropna()
    total = sum(chi2_contingency(pd.crosstab(g_[cond["x"]], g_[cond["y"]]), correction=False,
                                 lambda_="log-likelihood")[0]
                for _, g_ in sub.groupby("age_group", observed=True))
    assert cond["g_stat"] == pytest.approx(total, rel=1e-10) and cond["n_rows"] == len(sub)


def test_structure_check_flags_an_injected_dependence(spec):
    df = simulate_audit(3000, seed=6, model=spec, hidden=("mechanism", "origin"))
    res0 = check_structure(df, spec)
    pair = res0[(res0["given"] == "age_group") & res0["x"].isin(spec.group("finding"))].iloc[0]
    x, y = pair["x"], pair["y"]
    rng = np.random.default_rng(0)
    copy_rows = (rng.random(len(df)) < 0.5) & df[x].notna().to_numpy()
    states_x = spec.nodes[x].states
    states_y = spec.nodes[y].states
    df[y] = df[y].astype(object)
    df.loc[copy_rows, y] = [states_y[states_x.index(v) % len(states_y)]
                            for v in df.loc[copy_rows, x].astype(str)]
    res = check_structure(df, spec)
    hit = res[(res["x"] == x) & (res["y"] == y)].iloc[0]
    assert hit["violated"] and hit["cramers_v"] > 0.2
    assert f"consider an arrow between {x} and {y}" in hit["hint"]
    assert res.iloc[0]["violated"]
