"""The noisy-OR M-step: leak and links that maximise the EM objective, and their SDs.

A noisy-OR table with leak ``p_0`` and links ``p_j`` has, in parent configuration ``u``,
``P(off | u) = exp(-D[u] @ w)`` with ``w = -log(1 - p)`` and ``D`` the design matrix (a
column of ones for the leak, one 0/1 column per link: is the link's parent in its
``when`` state?). With (expected) counts plus Dirichlet pseudo-counts ``a_on``/``a_off``
per configuration, the M-step maximises

    sum_u a_off[u] * log P(off | u) + a_on[u] * log(1 - P(off | u))

over ``0 <= w <= W_MAX``. The objective is concave in ``w``, so projected Newton steps with
backtracking increase it at every accepted step (a generalised-EM M-step never lowers the
EM objective). The Laplace standard deviations come from the inverse negative Hessian at
the optimum.

Examples
--------
>>> import numpy as np
>>> D = np.array([[1.0, 0.0], [1.0, 1.0]])         # leak; one link (parent absent, present)
>>> w = fit_noisy_or(D, np.array([1.0, 60.0]), np.array([99.0, 40.0]), np.zeros(2))
>>> [round(float(p), 3) for p in -np.expm1(-w)]    # leak 1/100; 1 - 0.99 * (1 - link) = 0.6
[0.01, 0.596]
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["W_MAX", "fit_noisy_or", "nor_grad_hess", "nor_laplace_sd", "nor_objective"]

W_MAX = -math.log(1e-12)  # link/leak probabilities are kept <= 1 - 1e-12

def _log1mexp(z: np.ndarray) -> np.ndarray:
    """log(1 - exp(-z)) for z >= 0, accurate near 0 and for large z."""
    with np.errstate(divide="ignore"):
        return np.where(z > 0.693, np.log1p(-np.exp(-z)), np.log(-np.expm1(-z)))


def nor_objective(D, a_on, a_off, w) -> float:
    z = D @ w
    pos = a_on > 0
    if np.any(z[pos] <= 0):
        return -math.inf
    return float(-(a_off @ z) + a_on[pos] @ _log1mexp(z[pos]))


def nor_grad_hess(D, a_on, a_off, w):
    z = D @ w
    pos = a_on > 0
    r = np.zeros_like(z)
    h = np.zeros_like(z)
    em1 = np.expm1(z[pos])
    r[pos] = a_on[pos] / em1
    h[pos] = a_on[pos] / (em1 * -np.expm1(-z[pos]))  # a * e^z / (e^z - 1)^2
    g = D.T @ (r - a_off)
    H = -(D.T * h) @ D
    return g, H


def fit_noisy_or(D, a_on, a_off, w0, max_iter: int = 100) -> np.ndarray:
    """Maximise sum a_off log(off) + a_on log(1 - off), off = exp(-D w), over 0 <= w <= W_MAX.

    Projected Newton with backtracking; every accepted step increases the (concave)
    objective, so a generalised-EM M-step never lowers the EM objective.
    """
    w = np.clip(np.asarray(w0, float), 0.0, W_MAX)
    f = nor_objective(D, a_on, a_off, w)
    if not np.isfinite(f):  # start from a point inside the domain
        w = np.maximum(w, 1e-3)
        f = nor_objective(D, a_on, a_off, w)
    for _ in range(max_iter):
        g, H = nor_grad_hess(D, a_on, a_off, w)
        free = ~(((w <= 0) & (g < 0)) | ((w >= W_MAX) & (g > 0)))
        d = np.zeros_like(w)
        if free.any():
            Hf = -H[np.ix_(free, free)]
            ridge = 1e-10 * max(float(np.max(np.diag(Hf))), 1e-12) + 1e-12
            try:
                d[free] = np.linalg.solve(Hf + ridge * np.eye(Hf.shape[0]), g[free])
            except np.linalg.LinAlgError:
                d[free] = g[free]
        if g @ d <= 0:
            d = np.where(free, g, 0.0)
        if not np.any(d):
            break
        t, accepted = 1.0, False
        for _ in range(50):
            w_new = np.clip(w + t * d, 0.0, W_MAX)
            f_new = nor_objective(D, a_on, a_off, w_new)
            if f_new >= f:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        gain = f_new - f
        w, f = w_new, f_new
        if gain <= 1e-13 * max(1.0, abs(f)):
            break
    return w


def nor_laplace_sd(D, a_on, a_off, w) -> np.ndarray:
    """Laplace standard deviations of ``w`` at the optimum (inverse negative Hessian)."""
    _, H = nor_grad_hess(D, a_on, a_off, w)
    A = -H
    ridge = 1e-9 * max(float(np.max(np.diag(A))), 1e-12) + 1e-12
    try:
        cov = np.linalg.inv(A + ridge * np.eye(A.shape[0]))
    except np.linalg.LinAlgError:  # pragma: no cover - ridge makes it invertible
        return np.full(w.shape, np.nan)
    return np.sqrt(np.maximum(np.diag(cov), 0.0))

