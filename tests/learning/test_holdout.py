"""Tests of kneehip_bn.learning.holdout: the held-out metrics against scikit-learn, and
held-out evaluation as an explicit step (EM runs a second time only when asked for).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kneehip_bn.learning.fitter import PriorFitter
from kneehip_bn.learning.holdout import auc_score, calibration_bins, holdout_metrics
from kneehip_bn.learning.simulate import simulate_audit


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
    m = holdout_metrics(y, p, w)
    assert m["log_loss"] == pytest.approx(log_loss(y, p, sample_weight=w), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p, sample_weight=w), abs=1e-12)


def test_calibration_bins_weights_and_rates():
    y = np.array([0.0, 1.0, 1.0, 0.0])
    p = np.array([0.05, 0.15, 0.95, 0.99])
    wt, mp, fy = calibration_bins(y, p, np.array([1.0, 1.0, 2.0, 2.0]))
    assert wt[0] == 1 and wt[1] == 1 and wt[9] == 4 and wt.sum() == 6
    assert fy[9] == pytest.approx(0.5) and mp[9] == pytest.approx(0.97)


@pytest.fixture(scope="module")
def audit_with_diagnosis():
    return simulate_audit(600, seed=4, missing=0.05, diagnosis_noise=0.1, model="knee_hip_basic",
                          hidden=("mechanism", "origin"))


def test_holdout_is_off_by_default_and_em_runs_once(audit_with_diagnosis, monkeypatch):
    import kneehip_bn.learning.fitter as fitter_mod

    runs = []
    real = fitter_mod.run_em
    monkeypatch.setattr(fitter_mod, "run_em", lambda *a, **k: runs.append(1) or real(*a, **k))
    f = PriorFitter("knee_hip_basic", progress=False, max_iter=3).fit(audit_with_diagnosis)
    assert f.holdout is None and f.report_.holdout is None and len(runs) == 1
    g = PriorFitter("knee_hip_basic", progress=False, max_iter=3, holdout=0.25,
                    seed=1).fit(audit_with_diagnosis)
    assert len(runs) == 3  # asked for: a second EM run, on the training rows
    assert set(g.report_.holdout["model"]) == {"expert", "fitted"}
    assert g.report_.holdout_info["fraction"] == 0.25 and g.report_.holdout_info["seed"] == 1
    # the fit itself does not depend on the held-out evaluation
    assert g.loglik_ == f.loglik_ and g.n_iter_ == f.n_iter_
