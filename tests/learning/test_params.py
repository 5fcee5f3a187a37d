"""Tests of kneehip_bn.learning.params and noisy_or: families, the log-prior sum, the M-step."""

from __future__ import annotations

import numpy as np
import pytest

from kneehip_bn import load_spec
from kneehip_bn.learning.noisy_or import W_MAX, nor_laplace_sd
from kneehip_bn.learning.params import Params, build_families, plain_number, sum_xlogy


def test_sum_xlogy_agrees_with_scipy_xlogy():
    """The hand sum is kept (it is the EM objective's, bit for bit); scipy's xlogy agrees
    to the last bits."""
    from scipy.special import xlogy

    rng = np.random.default_rng(0)
    for _ in range(200):
        shape = (int(rng.integers(2, 5)), *rng.integers(1, 5, size=int(rng.integers(0, 3))))
        t = rng.dirichlet(np.ones(shape[0]), size=int(np.prod(shape[1:]))).T.reshape(shape)
        a = rng.random(shape) * 100
        a[rng.random(shape) < 0.3] = 0
        t[(a == 0) & (rng.random(shape) < 0.5)] = 0  # 0 * log 0 = 0
        assert sum_xlogy(a, t) == pytest.approx(float(xlogy(a, t).sum()), rel=1e-13, abs=1e-12)
    assert sum_xlogy(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == -np.inf


def test_families_and_the_complete_data_m_step():
    spec = load_spec("knee_hip_basic")
    fams = build_families(spec, 10.0, {"knee_pain": 4.0}, {"activity_level"}, "keep")
    by = {f.name: f for f in fams}
    assert by["knee_pain"].kind == "noisy_or" and by["knee_pain"].strength == 4.0
    assert by["activity_level"].frozen and by["age_group"].strength == 10.0
    assert np.all(by["knee_pain"].w_expert <= W_MAX)
    params = Params(fams)
    N = {f.name: np.zeros_like(f.expert) for f in fams}
    N["age_group"] = np.array([6.0, 3.0, 1.0])  # a root table: one column
    params.m_step(N)
    f = by["age_group"]
    want = (N["age_group"] + f.alpha) / (N["age_group"] + f.alpha).sum()
    np.testing.assert_allclose(params.table["age_group"], want, rtol=1e-15)
    np.testing.assert_array_equal(params.table["activity_level"], by["activity_level"].expert)


def test_laplace_sd_shrinks_with_data():
    D = np.array([[1.0, 0.0], [1.0, 1.0]])
    w = np.array([0.01, 0.9])
    small = nor_laplace_sd(D, np.array([1.0, 6.0]), np.array([99.0, 4.0]), w)
    big = nor_laplace_sd(D, np.array([10.0, 60.0]), np.array([990.0, 40.0]), w)
    assert np.all(big < small) and np.all(np.isfinite(big))


def test_plain_number():
    assert plain_number(3.0) == 3 and isinstance(plain_number(3.0), int)
    assert plain_number(2.5) == 2.5
