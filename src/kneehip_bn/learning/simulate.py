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
from collections.abc import Sequence
from typing import Any

import numpy as np

from kneehip_bn.errors import KneeHipError, UnknownNameError
from kneehip_bn.model.spec import DIAGNOSIS_COLUMN, NO_DIAGNOSIS

__all__ = [
    "DIAGNOSIS_COLUMN",
    "NO_DIAGNOSIS",
    "forward_sample",
    "perturb_model",
    "simulate_audit",
]



def _spec_of(model: Any) -> Any:
    """The model's specification, refusing a network edited since it was built
    (:func:`kneehip_bn.inference.queries.model_spec`, the one place that decides)."""
    from kneehip_bn.inference.queries import model_spec

    return model_spec(model)


def forward_sample_codes(spec: Any, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Ancestral sampling in numpy: ``{node: state codes (n,)}`` for every node.

    Each node is drawn for all ``n`` patients at once: its conditional table is indexed by
    the parents' sampled codes and an inverse-CDF draw picks the state.
    """
    import networkx as nx

    from kneehip_bn.model.network import cpd_array

    g = nx.DiGraph()
    g.add_nodes_from(spec.nodes)
    g.add_edges_from((p, c) for c, s in spec.nodes.items() for p in s.parents)
    out: dict[str, np.ndarray] = {}
    for name in nx.topological_sort(g):
        node = spec.nodes[name]
        table = cpd_array(spec, node)
        card = table.shape[0]
        cols = table.reshape(card, -1)
        if node.parents:
            flat = np.zeros(n, dtype=np.intp)
            for p in node.parents:
                flat = flat * len(spec.nodes[p].states) + out[p]
        else:
            flat = np.zeros(n, dtype=np.intp)
        cum = np.cumsum(cols, axis=0)  # (card, n_configs)
        u = rng.random(n)
        # state = number of cumulative probabilities below u (clipped for rounding)
        code = (u[None, :] >= cum[:-1, flat]).sum(axis=0) if card > 1 else np.zeros(n, int)
        out[name] = np.minimum(code, card - 1).astype(np.int8)
    return {k: out[k] for k in spec.nodes}


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

    spec = _spec_of(model)
    _check_n(n)
    codes = forward_sample_codes(spec, int(n), np.random.default_rng(seed))
    return pd.DataFrame({
        k: pd.Categorical.from_codes(v, categories=spec.nodes[k].states) for k, v in codes.items()
    })


def _check_n(n: Any) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise KneeHipError(f"n: expected a positive whole number of patients, found {n!r}")


def simulate_audit(
    n: int,
    seed: int | None = None,
    missing: float = 0.0,
    mechanism: str = "mcar",
    diagnosis_noise: float | None = None,
    model: Any = None,
    hidden: Sequence[str] = ("mechanism",),
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
        ``"mar"``: ``age_group`` is always recorded and every other cell is blank with a
        probability that depends on it (weights 0.5 : 1 : 1.5 for the youngest to the
        oldest band, scaled so that the overall blank rate is about ``missing``): missing
        at random given an observed column.
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

    from kneehip_bn.model.spec import GROUPS

    _check_n(n)
    if not isinstance(missing, (int, float)) or not 0.0 <= missing < 1.0:
        raise KneeHipError(f"missing: expected a fraction in [0, 1), found {missing!r}")
    if mechanism not in ("mcar", "mar"):
        raise UnknownNameError.for_name("missingness mechanism", str(mechanism), ["mcar", "mar"])
    if diagnosis_noise is not None and (
            not isinstance(diagnosis_noise, (int, float)) or not 0.0 <= diagnosis_noise <= 1.0):
        raise KneeHipError(
            f"diagnosis_noise: expected None or a probability in [0, 1], found {diagnosis_noise!r}")
    hidden = [hidden] if isinstance(hidden, str) else list(hidden)
    for g in hidden:
        if g not in GROUPS:
            raise UnknownNameError.for_name("node group", g, GROUPS, where="hidden")
    spec = _spec_of(model)
    rng = np.random.default_rng(seed)
    codes = forward_sample_codes(spec, int(n), rng)
    visible = [k for k, s in spec.nodes.items() if s.group not in hidden]
    cols = {k: codes[k].astype(np.int8) for k in visible}

    diag = None
    origins = spec.group("origin")
    if diagnosis_noise is not None and origins:
        diag = _working_diagnosis(spec, codes, origins, float(diagnosis_noise), rng)
        cols[DIAGNOSIS_COLUMN] = diag

    if missing > 0:
        _blank(spec, cols, codes, missing, mechanism, rng)

    data = {}
    for k, v in cols.items():
        cats = [*origins, NO_DIAGNOSIS] if k == DIAGNOSIS_COLUMN else spec.nodes[k].states
        data[k] = pd.Categorical.from_codes(v, categories=cats)
    return pd.DataFrame(data)


def _working_diagnosis(spec, codes, origins, noise, rng) -> np.ndarray:
    from kneehip_bn.inference.engine import get_engine
    from kneehip_bn.io.patterns import group_patterns

    eng = get_engine(spec)
    seen = [k for k, s in spec.nodes.items() if s.group in ("context", "finding", "test")]
    x = np.stack([codes[k] for k in seen], axis=1).astype(np.int64)
    pats, _, inv = group_patterns(x, [len(spec.nodes[k].states) for k in seen])
    from kneehip_bn.learning.em import _blas_single

    with _blas_single():
        res = eng.batch(pats, seen, targets=origins)
    on = [spec.nodes[o].states.index(_on(spec.nodes[o].states)) for o in origins]
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


def _on(states):
    from kneehip_bn.inference.queries import on_state

    return on_state(states)


def _blank(spec, cols, codes, missing, mechanism, rng) -> None:
    n = next(iter(cols.values())).shape[0]
    if mechanism == "mcar":
        for k in cols:
            cols[k] = np.where(rng.random(n) < missing, -1, cols[k]).astype(np.int8)
        return
    # MAR: age_group always recorded; blank rate depends on it
    if "age_group" not in cols:
        raise KneeHipError(
            "mechanism='mar': expected the observed column age_group (missingness depends on "
            "it), found it hidden; use mechanism='mcar' or keep the context group")
    card = len(spec.nodes["age_group"].states)
    w = np.linspace(0.5, 1.5, card)[cols["age_group"]]
    rate = np.minimum(missing * w / w.mean(), 1.0)
    for k in cols:
        if k == "age_group":
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
    from kneehip_bn.model.spec import validate_spec

    spec = copy.deepcopy(_spec_of(model))
    rng = np.random.default_rng(seed)

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
            big = int(np.argmax(q))
            vals = [float(x) for x in q]
            vals[big] = 1.0 - float(sum(v for i, v in enumerate(vals) if i != big))
            row.probabilities = dict(zip(node.states, vals))
    return validate_spec(spec)
