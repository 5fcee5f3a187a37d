"""Ancestral sampling from the compiled engine, as the teaching tools use it
(:func:`~kneehip_bn.teaching.conflict.conflict`'s simulated cases).

The teaching tools themselves live in :mod:`kneehip_bn.teaching.explain`,
:mod:`~kneehip_bn.teaching.what_if`, :mod:`~kneehip_bn.teaching.next_test` and
:mod:`~kneehip_bn.teaching.conflict`; their shared helpers in
:mod:`~kneehip_bn.teaching.common`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kneehip_bn.inference.engine import Engine
from kneehip_bn.teaching.common import family_table

__all__ = ["forward_sample"]


def forward_sample(eng: Engine, n: int, rng: np.random.Generator,
                   do: Mapping[str, str] | None = None) -> np.ndarray:
    """``n`` cases drawn from the network (ancestral sampling), shape (n, n_variables) of
    state indices in ``eng.variables`` order; ``do`` nodes are fixed."""
    do = dict(do or {})
    codes = np.zeros((n, len(eng.variables)), dtype=np.intp)
    for v in eng.variables:  # topological order
        i = eng.index[v]
        if v in do:
            codes[:, i] = eng.state_index[v][do[v]]
            continue
        t = family_table(eng, v)
        pidx = tuple(codes[:, eng.index[p]] for p in eng.parents[v])
        probs = t[(slice(None), *pidx)] if pidx else np.broadcast_to(t[:, None], (t.shape[0], n))
        cum = np.cumsum(probs.T, axis=1)
        u = rng.random(n)[:, None] * cum[:, -1:]
        codes[:, i] = np.minimum((u >= cum).sum(axis=1), t.shape[0] - 1)
    return codes
