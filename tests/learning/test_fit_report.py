"""Tests of kneehip_bn.learning.fit_report: the fit report's statistics, text, dict and figure.

Oracles: scipy (Dirichlet-multinomial, Beta quantiles).
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from kneehip_bn import load_spec
from kneehip_bn.learning.fit_report import dirichlet_multinomial_logpmf
from kneehip_bn.learning.fitter import PriorFitter
from kneehip_bn.learning.simulate import forward_sample, simulate_audit
from kneehip_bn.model.edit import set_prior


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
