"""The small graph routines that keep networkx off the cold-start path, against networkx."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kneehip_bn.inference.compile import maximum_spanning_tree, topological_order
from kneehip_bn.model.spec import find_cycle

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


@given(seed=SEEDS)
def test_maximum_spanning_tree_equals_networkx(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 14))
    edges = [(i, j, float(rng.integers(0, 4)) - rng.integers(0, 3) / 10)
             for i, j in itertools.combinations(range(n), 2) if rng.random() < 0.6]
    g = nx.Graph()
    g.add_nodes_from(range(n))
    for i, j, w in edges:
        g.add_edge(i, j, weight=w)
    want = [tuple(e) for e in nx.maximum_spanning_tree(g).edges()]
    assert maximum_spanning_tree(n, edges) == want  # same edges, same order


@given(seed=SEEDS)
def test_topological_order_equals_networkx(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 15))
    names = [f"v{int(x)}" for x in rng.permutation(n)]
    edges = [(names[i], names[j]) for i, j in itertools.combinations(range(n), 2)
             if rng.random() < 0.3]
    g = nx.DiGraph()
    g.add_nodes_from(names)
    g.add_edges_from(edges)
    assert topological_order(names, edges) == list(nx.lexicographical_topological_sort(g))


@given(seed=SEEDS)
def test_find_cycle_agrees_with_networkx(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 10))
    parents = {f"v{i}": [f"v{j}" for j in range(n) if j != i and rng.random() < 0.15]
               for i in range(n)}
    g = nx.DiGraph()
    g.add_nodes_from(parents)
    g.add_edges_from((p, c) for c, ps in parents.items() for p in ps)
    cyc = find_cycle(parents)
    assert bool(cyc) == (not nx.is_directed_acyclic_graph(g))
    for a, b in zip(cyc, [*cyc[1:], *cyc[:1]]):  # a real cycle: each node a parent of the next
        assert a in parents[b]
    if not cyc and g.number_of_edges():  # reversing one edge of a DAG's edge makes a 2-cycle
        a, b = next(iter(g.edges()))
        with pytest.raises(ValueError, match="cycle"):
            topological_order(list(parents), [*g.edges(), (b, a)])
