"""Synthetic audit data: patients drawn from the model, recorded as a clinic would.

:func:`simulate_audit` draws patients by forward (ancestral) sampling, one numpy pass per
node over all patients at once, then makes the table look like a real clinical audit:
the mechanisms (and optionally the origins) are dropped because no clinic records them,
cells are blanked at random, and a clinician's working diagnosis may be recorded.

The output is SYNTHETIC: it describes the model, not any real population.

Examples
--------
>>> from kneehip_bn.learning.simulate import simulate_audit
>>> df = simulate_audit(200, seed=1, missing=0.1, diagnosis_noise=0.1, model="knee_hip_basic")
>>> df.shape[0], "knee_pain" in df.columns, "altered_gait" in df.columns
(200, True, False)
>>> sorted(df["knee_pain"].dropna().unique())
['absent', 'present']
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from kneehip_bn._util.runtime import single_blas_thread
from kneehip_bn.errors import ParameterError, UnknownNameError
from kneehip_bn.inference import sampling
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.queries import on_state
from kneehip_bn.io.patterns import group_patterns
from kneehip_bn.model.coerce import model_spec
from kneehip_bn.model.spec import DIAGNOSIS_COLUMN, GROUPS, NO_DIAGNOSIS
from kneehip_bn.model.tables import exact_row
from kneehip_bn.model.validate import validate_spec

__all__ = [
    "DIAGNOSIS_COLUMN",
    "NO_DIAGNOSIS",
    "forward_sample",
    "perturb_model",
    "simulate_audit",
]



def forward_sample_codes(spec: Any, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Ancestral sampling in numpy: ``{node: state codes (n,)}`` for every node
    (:func:`kneehip_bn.inference.sampling.forward_sample` on the specification's tables)."""
    x = sampling.forward_sample(spec, n, rng)
    return {k: x[:, i].astype(np.int8, copy=False) for i, k in enumerate(spec.nodes)}


def forward_sample(n: int, seed: int | None = None, model: Any = None) -> Any:
    """Draw ``n`` complete patients (every node) from the model.

    Returns
    -------
    pandas.DataFrame
        One column per node (categorical, categories = the node's states in model order).

    Examples
    --------
    >>> from kneehip_bn.learning.simulate import forward_sample
    >>> df = forward_sample(1000, seed=0, model="knee_hip_basic")
    >>> df.shape
    (1000, 31)
    """
    import pandas as pd

    spec = model_spec(model)
    _check_n(n)
    codes = forward_sample_codes(spec, int(n), _rng(seed))
    return pd.DataFrame({
        k: pd.Categorical.from_codes(v, categories=spec.nodes[k].states) for k, v in codes.items()
    })


def _check_n(n: Any) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"n: expected a positive whole number of patients, found {n!r}")


def _rng(seed: Any) -> np.random.Generator:
    """The random generator of ``seed`` (None, or a whole number >= 0), or a ParameterError."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or seed < 0):
        raise ParameterError(f"seed: expected None or a whole number >= 0, found {seed!r}")
    return np.random.default_rng(seed)


def simulate_audit(
    n: int,
    seed: int | None = None,
    missing: float = 0.0,
    mechanism: str = "mcar",
    diagnosis_noise: float | None = None,
    model: Any = None,
    hidden: Sequence[str] = ("mechanism",),
    mar_column: str = "age_group",
    mar_weights: tuple[float, float] = (0.5, 1.5),
) -> Any:
    """Simulate a clinical audit table from the model.

    Parameters
    ----------
    n : int
        Number of patients (rows).
    seed : int, optional
        Seed of the random generator (same seed, same table).
    missing : float, default 0.0
        Fraction of recorded cells left blank.
    mechanism : {"mcar", "mar"}
        ``"mcar"``: every recorded cell is blank with probability ``missing``.
        ``"mar"``: ``mar_column`` is always recorded and every other cell is blank with a
        probability that depends on it (weights from ``mar_weights[0]`` for its first state
        to ``mar_weights[1]`` for its last, evenly spaced: 0.5 : 1 : 1.5 for the three age
        bands by default, scaled so that the overall blank rate is about ``missing``):
        missing at random given an observed column.
    diagnosis_noise : float, optional
        ``None``: no diagnosis column. Otherwise a ``working_diagnosis`` column is recorded
        by this rule: among the origins the patient truly has, the clinician names the one
        with the highest posterior probability given the patient's context, findings and
        tests (what a clinician sees; the pathology itself is not seen); ``none`` when the
        patient has no origin. With probability ``diagnosis_noise`` the label is replaced by
        a different label drawn uniformly from the other origins and ``none``. The column is
        blanked like the others.
    model : optional
        The model to draw from (default: the shipped model).
    hidden : sequence of str, default ("mechanism",)
        Node groups not recorded (dropped), e.g. ``("mechanism", "origin")`` for an audit
        that records only context, findings, tests and the working diagnosis.
    mar_column : str, default "age_group"
        With ``mechanism="mar"``: the recorded node the blank rate depends on.
    mar_weights : (float, float), default (0.5, 1.5)
        With ``mechanism="mar"``: the relative blank rates at its first and last state.

    Returns
    -------
    pandas.DataFrame
        Node names as columns, state labels as values (categorical), blanks as NaN;
        ``working_diagnosis`` last when requested.

    Examples
    --------
    >>> df = simulate_audit(500, seed=3, missing=0.2, mechanism="mar",
    ...                     hidden=("mechanism", "origin"), diagnosis_noise=0.2, model="knee_hip_basic")
    >>> "knee_pathology" in df.columns, bool(df["age_group"].isna().any())
    (False, False)
    """
    import pandas as pd

    _check_n(n)
    rng = _rng(seed)
    if not isinstance(missing, (int, float)) or not 0.0 <= missing < 1.0:
        raise ParameterError(f"missing: expected a fraction in [0, 1), found {missing!r}")
    if mechanism not in ("mcar", "mar"):
        raise UnknownNameError.for_name("missingness mechanism", str(mechanism), ["mcar", "mar"])
    if diagnosis_noise is not None and (
            not isinstance(diagnosis_noise, (int, float)) or not 0.0 <= diagnosis_noise <= 1.0):
        raise ParameterError(
            f"diagnosis_noise: expected None or a probability in [0, 1], found {diagnosis_noise!r}")
    hidden = [hidden] if isinstance(hidden, str) else list(hidden)
    for g in hidden:
        if g not in GROUPS:
            raise UnknownNameError.for_name("node group", g, GROUPS, where="hidden")
    spec = model_spec(model)
    if mechanism == "mar":
        _check_mar(spec, mar_column, mar_weights)
    codes = forward_sample_codes(spec, int(n), rng)
    visible = [k for k, s in spec.nodes.items() if s.group not in hidden]
    cols = {k: codes[k].astype(np.int8) for k in visible}

    diag = None
    origins = spec.group("origin")
    if diagnosis_noise is not None and origins:
        diag = _working_diagnosis(spec, codes, origins, float(diagnosis_noise), rng)
        cols[DIAGNOSIS_COLUMN] = diag

    if missing > 0:
        _blank(spec, cols, missing, mechanism, rng, mar_column, mar_weights)

    data = {}
    for k, v in cols.items():
        cats = [*origins, NO_DIAGNOSIS] if k == DIAGNOSIS_COLUMN else spec.nodes[k].states
        data[k] = pd.Categorical.from_codes(v, categories=cats)
    return pd.DataFrame(data)


def _check_mar(spec: Any, column: Any, weights: Any) -> None:
    if column not in spec.nodes:
        raise UnknownNameError.for_name("node", str(column), spec.nodes, where="mar_column")
    ok = (isinstance(weights, (tuple, list)) and len(weights) == 2 and all(
        isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0
        for w in weights) and sum(weights) > 0)
    if not ok:
        raise ParameterError(f"mar_weights: expected two relative blank rates >= 0 (first and "
                             f"last state of mar_column), found {weights!r}")


def _working_diagnosis(spec, codes, origins, noise, rng) -> np.ndarray:
    eng = get_engine(spec)
    seen = [k for k, s in spec.nodes.items() if s.group in ("context", "finding", "test")]
    x = np.stack([codes[k] for k in seen], axis=1).astype(np.int64)
    pats, _, inv = group_patterns(x, [len(spec.nodes[k].states) for k in seen])
    with single_blas_thread():
        res = eng.batch(pats, seen, targets=origins)
    on = [spec.nodes[o].states.index(on_state(spec.nodes[o].states)) for o in origins]
    post = np.stack([res.marginals[o][:, i] for o, i in zip(origins, on)], axis=1)[inv]
    present = np.stack([codes[o] == i for o, i in zip(origins, on)], axis=1)
    score = np.where(present, post, -1.0)
    label = np.where(present.any(axis=1), score.argmax(axis=1), len(origins))
    if noise > 0:
        flip = rng.random(label.shape[0]) < noise
        # a different label, uniformly among the other len(origins) labels
        shift = rng.integers(1, len(origins) + 1, size=label.shape[0])
        label = np.where(flip, (label + shift) % (len(origins) + 1), label)
    return label.astype(np.int8)


def _blank(spec, cols, missing, mechanism, rng, column="age_group", weights=(0.5, 1.5)) -> None:
    n = next(iter(cols.values())).shape[0]
    if mechanism == "mcar":
        for k in cols:
            cols[k] = np.where(rng.random(n) < missing, -1, cols[k]).astype(np.int8)
        return
    # MAR: the driver column always recorded; blank rate depends on it
    if column not in cols:
        raise ParameterError(
            f"mechanism='mar': expected the observed column {column} (missingness depends on "
            f"it), found it hidden; use mechanism='mcar' or keep the "
            f"{spec.nodes[column].group} group")
    card = len(spec.nodes[column].states)
    w = np.linspace(weights[0], weights[1], card)[cols[column]]
    rate = np.minimum(missing * w / w.mean(), 1.0)
    for k in cols:
        if k == column:
            continue
        cols[k] = np.where(rng.random(n) < rate, -1, cols[k]).astype(np.int8)


def perturb_model(model: Any = None, scale: float = 0.5, seed: int | None = 0) -> Any:
    """A "true" model for recovery studies: every number moved on the logit scale.

    Full-table rows get Gaussian noise (sd ``scale``) on the log-probabilities and are
    renormalised; structural zeros stay zero. Noisy-OR leaks and links get noise on
    the logit scale. Returns a new :class:`~kneehip_bn.ModelSpec`.

    >>> from kneehip_bn.learning.simulate import perturb_model
    >>> true = perturb_model(scale=0.3, seed=2, model="knee_hip_basic")
    >>> true.nodes["knee_pain"].noisy_or.leak.p != 0.08
    True
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (
            math.isfinite(scale) and scale >= 0):
        raise ParameterError(f"scale: expected a standard deviation >= 0, found {scale!r}")
    spec = copy.deepcopy(model_spec(model))
    rng = _rng(seed)

    def logit_move(p: float) -> float:
        if p <= 0.0 or p >= 1.0:
            return float(p)
        z = np.log(p / (1 - p)) + rng.normal(0, scale)
        return float(np.clip(1 / (1 + np.exp(-z)), 1e-4, 1 - 1e-4))

    for node in spec.nodes.values():
        if node.noisy_or is not None:
            node.noisy_or.leak.p = logit_move(node.noisy_or.leak.p)
            for ln in node.noisy_or.links:
                ln.p = logit_move(ln.p)
            continue
        for row in node.table or []:
            p = np.array([row.probabilities[s] for s in node.states], dtype=float)
            pos = p > 0
            q = np.zeros_like(p)
            q[pos] = np.exp(np.log(p[pos]) + rng.normal(0, scale, pos.sum()))
            q = q / q.sum()
            q[pos] = np.maximum(q[pos], 1e-4)
            q = q / q.sum()
            row.probabilities = exact_row(node.states, q)
    return validate_spec(spec)
