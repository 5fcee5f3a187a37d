"""The one forward (ancestral) sampler: whole patients drawn from the model's tables.

Each node is drawn for all ``n`` cases at once, parents before children: its conditional
table is indexed by the parents' sampled states and an inverse-CDF draw (one uniform per
case) picks the state. ``do()`` nodes are fixed and take no draw. The random stream is
consumed one node at a time in the order given, so a seed and an order fix every sample:
an engine's topological order by default, and for a specification :func:`generation_order`,
the order in which ``networkx.topological_sort`` visits its nodes (the order synthetic
audits have always been drawn in, kept so that a seed gives the same table as before).

Examples
--------
>>> import numpy as np
>>> from kneehip_bn import load_spec
>>> from kneehip_bn.inference.cache import get_engine
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
from typing import Any

import numpy as np

from kneehip_bn.errors import ParameterError, UnknownNameError
from kneehip_bn.inference.engine import Engine
from kneehip_bn.model.network import cpd_array

__all__ = ["forward_sample", "generation_order"]


def forward_sample(model: Engine | Any, n: int, rng: np.random.Generator,
                   do: Mapping[str, str] | None = None,
                   order: Sequence[str] | None = None) -> np.ndarray:
    """``n`` cases drawn from the network, every node.

    Parameters
    ----------
    model : Engine or ModelSpec
        A compiled engine (:func:`~kneehip_bn.inference.cache.get_engine`), or a model
        specification (its tables are read directly: sampling needs no compilation).
    n : int
        Number of cases.
    rng : numpy.random.Generator
        The random stream (one uniform per case and node drawn, in ``order``).
    do : dict, optional
        ``{node: state}`` interventions: the node is fixed, its table unused.
    order : sequence of str, optional
        The order the nodes are drawn in, a topological order (default: an engine's
        ``variables``; a specification's :func:`generation_order`, the order synthetic
        audits have always been drawn in).

    Returns
    -------
    ndarray of shape (n, number of nodes)
        State indices, one column per node in the model's order (``engine.variables``;
        ``spec.nodes``), in the smallest integer type that holds them (``int8`` for nodes
        of up to 127 states), column-major: each node's column is contiguous.
    """
    m = _Tables(model)
    do_idx = m.encode(do)
    names = list(m.default_order() if order is None else order)
    if sorted(names) != sorted(m.nodes):
        raise ParameterError(f"order: expected each of the {len(m.nodes)} nodes once, "
                             f"found {len(names)} names")
    dtype = np.int8 if max(m.card.values(), default=1) <= 127 else np.int32
    codes = np.zeros((int(n), len(m.nodes)), dtype=dtype, order="F")  # columns contiguous
    for name in names:
        i = m.index[name]
        if name in do_idx:
            codes[:, i] = do_idx[name]
            continue
        table = m.table(name)
        card = table.shape[0]
        flat = np.zeros(int(n), dtype=np.intp)
        for p in m.parents[name]:
            flat = flat * m.card[p] + codes[:, m.index[p]]
        cum = np.cumsum(table.reshape(card, -1), axis=0)  # (card, parent configurations)
        u = rng.random(int(n))
        # state = number of cumulative probabilities below u (clipped for rounding)
        code = (u[None, :] >= cum[:-1, flat]).sum(axis=0) if card > 1 else 0
        codes[:, i] = np.minimum(code, card - 1)
    return codes


class _Tables:
    """What sampling reads of an engine or a specification: nodes, parents, cards,
    tables ``(card, *parent_cards)``."""

    def __init__(self, model: Any) -> None:
        self.model = model
        if isinstance(model, Engine):
            self.nodes = list(model.variables)
            self.parents = model.parents
            self.states = model.states
        else:  # a ModelSpec
            self.nodes = list(model.nodes)
            self.parents = {k: list(s.parents) for k, s in model.nodes.items()}
            self.states = {k: list(s.states) for k, s in model.nodes.items()}
        self.index = {v: i for i, v in enumerate(self.nodes)}
        self.card = {v: len(self.states[v]) for v in self.nodes}

    def default_order(self) -> list[str]:
        if isinstance(self.model, Engine):
            return self.nodes
        return generation_order(self.nodes, self.parents)

    def table(self, name: str) -> np.ndarray:
        if isinstance(self.model, Engine):
            return self.model.family_table(name)
        return cpd_array(self.model, self.model.nodes[name])

    def encode(self, do: Mapping[str, str] | None) -> dict[str, int]:
        out = {}
        for k, v in (do or {}).items():
            if k not in self.index:
                raise UnknownNameError.for_name("node", k, self.nodes, where="do")
            if str(v) not in self.states[k]:
                raise UnknownNameError.for_name(f"state of {k}", str(v), self.states[k],
                                                where="do")
            out[k] = self.states[k].index(str(v))
        return out


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
