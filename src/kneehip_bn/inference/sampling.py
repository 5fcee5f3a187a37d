"""The one forward (ancestral) sampler: whole patients drawn from the compiled tables.

Each node is drawn for all ``n`` cases at once, parents before children: its conditional
table is indexed by the parents' sampled states and an inverse-CDF draw (one uniform per
case) picks the state. ``do()`` nodes are fixed and take no draw. The random stream is
consumed one node at a time in the order given (default: the engine's topological order),
so a seed and an order fix every sample; :func:`generation_order` gives the order in which
``networkx.topological_sort`` visits a model's nodes (the order synthetic audits have
always been drawn in, kept so that a seed gives the same table as before).

Examples
--------
>>> import numpy as np
>>> from kneehip_bn import load_spec
>>> from kneehip_bn.inference.engine import get_engine
>>> eng = get_engine(load_spec("knee_hip_basic"))
>>> x = forward_sample(eng, 20000, np.random.default_rng(0))
>>> x.shape == (20000, len(eng.variables))
True
>>> p = eng.prior_marginals()["knee_pain"][1]
>>> bool(abs((x[:, eng.index["knee_pain"]] == 1).mean() - p) < 0.02)
True
>>> y = forward_sample(eng, 5, np.random.default_rng(0), do={"knee_pathology": "absent"})
>>> y[:, eng.index["knee_pathology"]].tolist()
[0, 0, 0, 0, 0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from kneehip_bn.errors import ParameterError
from kneehip_bn.inference.engine import Engine

__all__ = ["forward_sample", "generation_order"]


def forward_sample(engine: Engine, n: int, rng: np.random.Generator,
                   do: Mapping[str, str] | None = None,
                   order: Sequence[str] | None = None) -> np.ndarray:
    """``n`` cases drawn from the network, every node.

    Parameters
    ----------
    engine : Engine
        The compiled model (:func:`~kneehip_bn.inference.engine.get_engine`).
    n : int
        Number of cases.
    rng : numpy.random.Generator
        The random stream (one uniform per case and node drawn, in ``order``).
    do : dict, optional
        ``{node: state}`` interventions: the node is fixed, its table unused.
    order : sequence of str, optional
        The order the nodes are drawn in: a topological order of the engine's nodes
        (default ``engine.variables``; :func:`generation_order` for the order synthetic
        audits use).

    Returns
    -------
    ndarray of shape (n, len(engine.variables))
        State indices in ``engine.variables`` order (the smallest integer type that holds
        them: ``int8`` for nodes of up to 127 states).
    """
    do_idx = engine.encode(do) if do else {}
    names = list(engine.variables if order is None else order)
    if sorted(names) != sorted(engine.variables):
        raise ParameterError(f"order: expected each of the {len(engine.variables)} nodes once, "
                             f"found {len(names)} names")
    dtype = np.int8 if int(engine.card.max()) <= 127 else np.int32
    codes = np.zeros((int(n), len(engine.variables)), dtype=dtype)
    for name in names:
        i = engine.index[name]
        if i in do_idx:
            codes[:, i] = do_idx[i]
            continue
        table = engine.family_table(name)
        card = table.shape[0]
        flat = np.zeros(int(n), dtype=np.intp)
        for p in engine.parents[name]:
            flat = flat * int(engine.card[engine.index[p]]) + codes[:, engine.index[p]]
        cum = np.cumsum(table.reshape(card, -1), axis=0)  # (card, parent configurations)
        u = rng.random(int(n))
        # state = number of cumulative probabilities below u (clipped for rounding)
        code = (u[None, :] >= cum[:-1, flat]).sum(axis=0) if card > 1 else 0
        codes[:, i] = np.minimum(code, card - 1)
    return codes


def generation_order(nodes: Sequence[str], parents: Mapping[str, Sequence[str]]) -> list[str]:
    """The nodes in ``networkx.topological_sort`` order of the graph built by adding
    ``nodes`` in order, then the edges ``(parent, node)`` node by node: generations of
    nodes whose parents are all drawn, each in the order its nodes became ready.

    Examples
    --------
    >>> generation_order(["b", "a", "c"], {"b": [], "a": [], "c": ["a", "b"]})
    ['b', 'a', 'c']
    """
    children: dict[str, list[str]] = {v: [] for v in nodes}
    indeg = {v: 0 for v in nodes}
    for c in nodes:
        for p in parents[c]:
            children[p].append(c)
            indeg[c] += 1
    generation = [v for v in nodes if indeg[v] == 0]
    out: list[str] = []
    while generation:
        out.extend(generation)
        ready = []
        for v in generation:
            for c in children[v]:
                indeg[c] -= 1
                if indeg[c] == 0:
                    ready.append(c)
        generation = ready
    if len(out) != len(indeg):
        raise ValueError("the graph has a cycle")
    return out
