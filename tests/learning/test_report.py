"""Tests of kneehip_bn.learning.report: fit report statistics and the structure check.

Oracles: scipy (Dirichlet-multinomial, Beta quantiles, chi-square G-test), scikit-learn
(AUC, log loss, Brier score), statsmodels (Benjamini-Hochberg) and pgmpy (d-separation).
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from kneehip_bn import load_spec
from kneehip_bn.learning.fit_report import dirichlet_multinomial_logpmf
from kneehip_bn.learning.fitter import PriorFitter
from kneehip_bn.learning.holdout import auc_score
from kneehip_bn.learning.holdout import holdout_metrics as _metrics
from kneehip_bn.learning.structure import bh_qvalues as _bh
from kneehip_bn.learning.structure import check_structure
from kneehip_bn.learning.simulate import forward_sample, simulate_audit
from kneehip_bn.model.spec import set_prior


@pytest.fixture(scope="module")
def spec():
    return load_spec("knee_hip_basic")


@pytest.fixture(scope="module")
def fitted(spec):
    """Audit from a model whose age mix differs strongly from the expert's."""
    true = set_prior(spec, "age_group", {"under_40": 0.05, "40_to_59": 0.15, "60_plus": 0.80})
    df = simulate_audit(600, seed=4, missing=0.05, diagnosis_noise=0.1, model=true,
                        hidden=("mechanism", "origin"))
    return PriorFitter(spec, progress=False, max_iter=6, tol=1e-12, holdout=0.3, seed=1).fit(df)


# ------------------------------------------------------------------ statistics
def test_dirichlet_multinomial_matches_scipy():
    from scipy.stats import dirichlet_multinomial

    rng = np.random.default_rng(0)
    for _ in range(10):
        alpha = rng.uniform(0.2, 5, 3)
        x = rng.integers(0, 7, 3)
        want = dirichlet_multinomial.logpmf(x, alpha, x.sum())
        assert dirichlet_multinomial_logpmf(x[:, None].astype(float), alpha[:, None])[0] == \
            pytest.approx(want, abs=1e-10)


def test_dirichlet_multinomial_sums_to_one_with_a_structural_zero():
    alpha = np.array([2.0, 0.0, 3.0])
    total = 0.0
    for x in itertools.product(range(5), repeat=3):
        if sum(x) == 4:
            total += math.exp(dirichlet_multinomial_logpmf(np.array(x, float)[:, None],
                                                           alpha[:, None])[0]) if x[1] == 0 else 0
    assert total == pytest.approx(1.0, abs=1e-12)


def test_auc_against_pairs_and_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200), 1)  # many ties
    w = rng.integers(1, 4, 200).astype(float)
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0)
             for a, ya in zip(s, y) for b, yb in zip(s, y) if ya == 1 and yb == 0]
    assert auc_score(y, s) == pytest.approx(np.mean(pairs), abs=1e-12)
    assert auc_score(y, s, w) == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)
    assert math.isnan(auc_score(np.zeros(5), np.arange(5.0)))


def test_metrics_match_sklearn():
    from sklearn.metrics import brier_score_loss, log_loss

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300).astype(float)
    p = rng.random(300)
    w = rng.integers(1, 5, 300).astype(float)
    m = _metrics(y, p, w)
    assert m["log_loss"] == pytest.approx(log_loss(y, p, sample_weight=w), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p, sample_weight=w), abs=1e-12)


def test_benjamini_hochberg_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(3).random(40) ** 3
    np.testing.assert_allclose(_bh(p), multipletests(p, method="fdr_bh")[1], atol=1e-12)


# ------------------------------------------------------------------ fit report
def test_credible_intervals_are_beta_quantiles(spec):
    from scipy.stats import beta

    df = forward_sample(400, seed=2, model=spec)
    fit = PriorFitter(spec, progress=False).fit(df)
    t = fit.report_.tables
    n = df["age_group"].value_counts()
    s = spec.strength_of("age_group")
    for state, e in spec.nodes["age_group"].table[0].probabilities.items():
        row = t[(t["node"] == "age_group") & (t["state"] == state)].iloc[0]
        a = n[state] + s * e
        b = 400 + s - a
        lo, hi = beta.ppf([0.025, 0.975], a, b)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi), abs=1e-12)
        assert row["fitted"] == pytest.approx(a / (a + b), abs=1e-12) and row["n"] == 400
    ok = t[~t["frozen"]]
    assert ((ok["ci_low"] <= ok["fitted"] + 1e-12) & (ok["fitted"] <= ok["ci_high"] + 1e-12)).all()


def test_surprise_ranks_the_disagreeing_table_first(fitted):
    s = fitted.report_.surprise
    assert s.iloc[0]["node"] == "age_group" and s.iloc[0]["p_value"] < 0.01
    assert s.iloc[0]["z"] > 3
    assert (s["p_value"] > 0.01).mean() > 0.8  # the other tables agree with the expert


def test_report_holdout_text_dict_and_plot(fitted, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    rep = fitted.report_
    ho = rep.holdout
    assert set(ho["model"]) == {"expert", "fitted"}
    assert len(ho) == 2 * 5 and ho["auc"].between(0, 1).all()
    assert rep.holdout_info["test_rows"] > 100
    text = str(rep)
    for part in ("Tables where the audit most disagrees", "Largest changes", "Held-out accuracy",
                 "Log-likelihood: expert"):
        assert part in text
    d = rep.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["loglik"]["fitted"] > d["loglik"]["expert"]
    rep.to_json(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == 600
    fig = rep.plot(tmp_path / "r.png")
    assert len(fig.axes) == 4 and (tmp_path / "r.png").stat().st_size > 10_000
    matplotlib.pyplot.close(fig)


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

    from kneehip_bn.learning.structure import g_test as _g_test

    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, 500)
    y = (x + rng.integers(0, 2, 500)) % 2
    g, dof, _, n = _g_test(x, y, np.zeros(500, dtype=np.int64), 3, 2, 1)
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
