"""Held-out evaluation: how well the expert model and a fit predict the working diagnosis.

When an audit records a clinician's working diagnosis, a fraction of its rows can be held
out (``PriorFitter(holdout=0.25)``): EM fits the other rows, and on the held-out rows each
origin's posterior (from every observed column except the origins themselves) is scored
against "the working diagnosis names this origin" by log loss, Brier score and AUC, for
the expert model and for the training fit, with binned calibration.

The metrics are written out here, not taken from ``sklearn.metrics``, for three measured
reasons: ``log_loss`` (scikit-learn 1.9) clips predictions at the float epsilon
(2.2e-16), not at the 1e-15 the report has always used, so a prediction of exactly 0 or 1
scores differently (34.5 against 36.0 nats); ``roc_auc_score`` on a held-out origin that
never occurs warns (``UndefinedMetricWarning``) where the report wants a quiet NaN; and
importing scikit-learn adds about a second to every held-out evaluation. Elsewhere they
give the same values to the last one or two bits (``tests/learning/test_holdout.py``
compares the three with scikit-learn's on weighted data).

Examples
--------
>>> import numpy as np
>>> m = holdout_metrics(np.array([0.0, 1.0]), np.array([0.2, 0.9]), np.array([1.0, 3.0]))
>>> round(m["brier"], 4), m["auc"]
(0.0175, 1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kneehip_bn._util.runtime import single_blas_thread
from kneehip_bn.inference.engine import Engine
from kneehip_bn.inference.queries import on_state
from kneehip_bn.learning.em import FitResult

__all__ = ["HoldoutResult", "auc_score", "calibration_bins", "evaluate_holdout", "holdout_metrics"]


@dataclass
class HoldoutResult:
    """Held-out accuracy: ``table`` (per origin and model: ``n``, ``prevalence``,
    ``mean_predicted``, ``log_loss``, ``brier``, ``auc``), ``calibration`` (binned predicted
    vs observed) and ``info`` (test and training rows, fraction, seed, rows skipped)."""

    table: Any
    calibration: Any
    info: dict[str, Any] = field(default_factory=dict)


def auc_score(y: np.ndarray, score: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Area under the ROC curve from ranks (ties count one half), optionally weighted.

    Equals the probability that a random positive scores above a random negative.

    >>> auc_score(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, float)
    w = np.ones(y.shape[0]) if weights is None else np.asarray(weights, float)
    wp, wn = float(w[y].sum()), float(w[~y].sum())
    if wp == 0 or wn == 0:
        return math.nan
    uniq, inv = np.unique(s, return_inverse=True)
    pos = np.bincount(inv, weights=w * y, minlength=uniq.size)
    neg = np.bincount(inv, weights=w * ~y, minlength=uniq.size)
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    return float(np.sum(pos * (below + 0.5 * neg)) / (wp * wn))


def holdout_metrics(y, p, w) -> dict[str, float]:
    """Weighted log loss (p clipped to [1e-15, 1 - 1e-15]), Brier score, AUC, prevalence
    and mean prediction of binary labels ``y`` and predictions ``p``."""
    eps = 1e-15
    pc = np.clip(p, eps, 1 - eps)
    tot = w.sum()
    ll = -float(np.sum(w * (y * np.log(pc) + (1 - y) * np.log1p(-pc))) / tot)
    brier = float(np.sum(w * (p - y) ** 2) / tot)
    return {"n": float(tot), "prevalence": float(np.sum(w * y) / tot), "mean_predicted":
            float(np.sum(w * p) / tot), "log_loss": ll, "brier": brier, "auc": auc_score(y, p, w)}


def calibration_bins(y, p, w, bins=10):
    """(weight, mean predicted, observed rate) in ``bins`` equal-width bins of ``p``."""
    edges = np.linspace(0, 1, bins + 1)
    b = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    wt = np.bincount(b, weights=w, minlength=bins)
    mp = np.bincount(b, weights=w * p, minlength=bins)
    fy = np.bincount(b, weights=w * y, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return wt, mp / wt, fy / wt




def evaluate_holdout(spec: Any, train_fit: FitResult, test: tuple[np.ndarray, np.ndarray, np.ndarray],
                     labels: list[str], columns: list[str], *, fraction: float,
                     seed: int | None) -> HoldoutResult:
    """Held-out log loss, Brier score, AUC and calibration of each origin.

    Parameters
    ----------
    spec : ModelSpec
        The expert model.
    train_fit : FitResult
        EM on the training rows.
    test : (patterns, diagnosis codes, counts)
        The held-out patterns (codes of ``columns``), their working diagnosis (an index
        into ``labels``) and how often each occurs.
    labels : list of str
        The working-diagnosis labels: the origins, then "none".
    columns : list of str
        The observed columns of the patterns.
    fraction, seed : float, int
        The split (recorded in ``info``).
    """
    import pandas as pd

    pats, diag, cnt = test
    origins = labels[:-1]
    fams = train_fit.families
    with single_blas_thread():
        base = Engine(spec)
        models = {"expert": base, "fitted": base.with_tables(
            {f.name: train_fit.params.table[f.name] for f in fams})}
        keep = [j for j, c in enumerate(columns) if c not in origins]  # never predict from the answer
        ev_cols = [columns[j] for j in keep]
        x = pats[:, keep]
        rows, cal = [], []
        n_nan = 0
        for name, eng in models.items():
            res = eng.batch(x, ev_cols, targets=origins, on_impossible="nan")
            ok = np.isfinite(res.log_evidence)
            n_nan = int(cnt[~ok].sum())
            for k, o in enumerate(origins):
                on = eng.state_index[o][on_state(eng.states[o])]
                p = res.marginals[o][ok, on]
                y = (diag[ok] == k).astype(float)
                w = cnt[ok]
                rows.append({"origin": o, "model": name, **holdout_metrics(y, p, w)})
                wt, mp, fy = calibration_bins(y, p, w)
                for b in range(wt.size):
                    cal.append({"model": name, "origin": o, "bin": b, "weight": float(wt[b]),
                                "mean_predicted": float(mp[b]) if wt[b] > 0 else math.nan,
                                "observed": float(fy[b]) if wt[b] > 0 else math.nan})
    info = {"test_rows": float(cnt.sum()), "fraction": float(fraction), "seed": seed,
            "train_rows": int(train_fit.counts[fams[0].name].sum()) if train_fit.counts else 0,
            "impossible_rows_skipped": n_nan, "train_iterations": train_fit.n_iter}
    return HoldoutResult(pd.DataFrame(rows), pd.DataFrame(cal), info)
