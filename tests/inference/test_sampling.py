"""The one forward sampler (:mod:`kneehip_bn.inference.sampling`)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from kneehip_bn import load_spec
from kneehip_bn.errors import ParameterError
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.sampling import forward_sample, generation_order


@pytest.mark.parametrize("name", ["knee_hip_basic", "knee_hip"])
def test_generation_order_is_networkx_topological_sort(name):
    spec = load_spec(name)
    g = nx.DiGraph()
    g.add_nodes_from(spec.nodes)
    g.add_edges_from((p, c) for c, s in spec.nodes.items() for p in s.parents)
    parents = {k: s.parents for k, s in spec.nodes.items()}
    assert generation_order(list(spec.nodes), parents) == list(nx.topological_sort(g))


def test_generation_order_refuses_a_cycle():
    with pytest.raises(ValueError, match="cycle"):
        generation_order(["a", "b"], {"a": ["b"], "b": ["a"]})


def test_forward_sample_conditional_frequencies_match_the_tables():
    """Each node's empirical conditional frequencies match its table (with a do() node
    fixed and its children drawn from it)."""
    eng = get_engine(load_spec("knee_hip_basic"))
    n = 60_000
    x = forward_sample(eng, n, np.random.default_rng(2), do={"knee_pathology": "present"})
    kp = eng.index["knee_pathology"]
    assert (x[:, kp] == eng.state_index["knee_pathology"]["present"]).all()
    for v in eng.variables:
        if v == "knee_pathology" or len(eng.parents[v]) != 1:
            continue
        (p,) = eng.parents[v]
        t = eng.family_table(v)
        for s in range(t.shape[1]):
            rows = x[:, eng.index[p]] == s
            if rows.sum() < 2000:
                continue
            freq = np.bincount(x[rows, eng.index[v]], minlength=t.shape[0]) / rows.sum()
            np.testing.assert_allclose(freq, t[:, s], atol=0.03, err_msg=v)


def test_forward_sample_order_is_checked_and_fixes_the_stream():
    eng = get_engine(load_spec("knee_hip_basic"))
    a = forward_sample(eng, 100, np.random.default_rng(0))
    b = forward_sample(eng, 100, np.random.default_rng(0), order=list(eng.variables))
    assert (a == b).all() and a.dtype == np.int8
    with pytest.raises(ParameterError, match="order: expected each"):
        forward_sample(eng, 10, np.random.default_rng(0), order=eng.variables[:3])


def test_forward_sample_from_a_spec_equals_its_engine_in_the_same_order():
    """A specification is sampled from its own tables, without compiling; drawn in the same
    order, the engine gives the same cases (columns in each one's node order)."""
    spec = load_spec("knee_hip")
    eng = get_engine(spec)
    order = generation_order(list(spec.nodes), {k: s.parents for k, s in spec.nodes.items()})
    a = forward_sample(spec, 3000, np.random.default_rng(4), do={"hip_osteoarthritis": "present"})
    b = forward_sample(eng, 3000, np.random.default_rng(4), do={"hip_osteoarthritis": "present"},
                       order=order)
    for i, k in enumerate(spec.nodes):
        assert (a[:, i] == b[:, eng.index[k]]).all(), k
