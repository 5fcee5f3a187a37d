"""Specification -> probability tables: noisy-OR by hand, drawn tables, the exact-row fix."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from conftest import TINY_YAML, tiny_families
from kneehip_bn import SHIPPED_MODELS, build_network, load_spec
from kneehip_bn.model.tables import cpd_array, exact_row, noisy_or_array
from kneehip_bn.model.yamlio import parse_spec


def test_tiny_tables_match_the_hand_typed_ones(tiny_spec):
    for var, states, parents, table in tiny_families():
        assert tiny_spec.nodes[var].states == states
        assert tiny_spec.nodes[var].parents == parents
        np.testing.assert_allclose(cpd_array(tiny_spec, var), table, atol=1e-15, err_msg=var)


def test_noisy_or_with_multi_state_parent_and_custom_on_state():
    """P(off | u) = (1 - leak) * prod (1 - p) over active links, worked by hand."""
    data = yaml.safe_load(TINY_YAML)
    data["nodes"]["alarm"] = {
        "group": "finding", "states": ["ringing", "quiet"], "parents": ["pain_level", "limp"],
        "noisy_or": {"on_state": "ringing", "leak": {"p": 0.1, "source": "guess"}, "links": [
            {"parent": "pain_level", "when": "mild", "p": 0.2, "source": "guess"},
            {"parent": "pain_level", "when": "severe", "p": 0.6, "source": "guess"},
            {"parent": "limp", "p": 0.5, "source": "guess"}]}}
    spec = parse_spec(data)
    arr = noisy_or_array(spec, spec.nodes["alarm"])
    assert arr.shape == (2, 3, 2)
    # quiet = off; axes (state, pain_level, limp)
    off = {("none", "absent"): 0.9, ("mild", "absent"): 0.9 * 0.8, ("severe", "absent"): 0.9 * 0.4,
           ("none", "present"): 0.9 * 0.5, ("mild", "present"): 0.9 * 0.8 * 0.5,
           ("severe", "present"): 0.9 * 0.4 * 0.5}
    for (pl, lp), q in off.items():
        i, j = ["none", "mild", "severe"].index(pl), ["absent", "present"].index(lp)
        assert arr[1, i, j] == pytest.approx(q, abs=1e-15)
        assert arr[0, i, j] == pytest.approx(1 - q, abs=1e-15)
    model = build_network(spec)
    cpd = model.get_cpds("alarm")
    assert cpd.get_value(alarm="quiet", pain_level="severe", limp="present") == pytest.approx(
        0.18, abs=1e-15)


# ----------------------------------------------------------------------------- one builder, one fix
def _noisy_or_by_hand(spec, node):
    """The scalar builder as it was before it was vectorised (network.noisy_or_array)."""
    nor = node.noisy_or
    cards = [len(spec.nodes[p].states) for p in node.parents]
    off = np.full(cards, 1.0 - float(nor.leak.p))
    for ln in nor.links:
        axis = node.parents.index(ln.parent)
        factor = np.ones(cards[axis])
        factor[spec.nodes[ln.parent].states.index(ln.when)] = 1.0 - float(ln.p)
        shape = [1] * len(cards)
        shape[axis] = cards[axis]
        off = off * factor.reshape(shape)
    on = node.states.index(nor.on_state)
    out = np.empty([2, *cards])
    out[on] = 1.0 - off
    out[1 - on] = off
    return out


@pytest.mark.parametrize("model", SHIPPED_MODELS)
def test_noisy_or_array_is_bit_identical_to_the_hand_version(model):
    spec = load_spec(model)
    nodes = [n for n in spec.nodes.values() if n.noisy_or is not None]
    assert nodes
    for node in nodes:
        np.testing.assert_array_equal(noisy_or_array(spec, node), _noisy_or_by_hand(spec, node),
                                      err_msg=node.name)


@given(seed=st.integers(0, 2**32 - 1))
def test_drawn_noisy_or_tables_equal_one_table_per_draw(seed):
    spec = load_spec("knee_hip_basic")
    rng = np.random.default_rng(seed)
    node = spec.nodes["knee_pain"]
    nor = node.noisy_or
    n = 3
    leaks = rng.uniform(0, 1, n)
    links = [rng.uniform(0, 1, n) for _ in nor.links]
    tabs = noisy_or_array(spec, node, leak=leaks, links=links)
    assert tabs.shape == (n, *cpd_array(spec, node).shape)
    for d in range(n):
        one = dataclasses.replace(node, noisy_or=dataclasses.replace(
            nor, leak=dataclasses.replace(nor.leak, p=float(leaks[d])),
            links=[dataclasses.replace(ln, p=float(x[d])) for ln, x in zip(nor.links, links)]))
        np.testing.assert_array_equal(tabs[d], noisy_or_array(spec, one))


def _em_exact_row(states, probs):
    """learning/em.py's ``_exact_row`` before it became :func:`exact_row`."""
    vals = [float(x) for x in probs]
    big = int(np.argmax(vals))
    vals[big] = 1.0 - math.fsum(v for i, v in enumerate(vals) if i != big)
    return dict(zip(states, vals))


def _perturb_residue(states, q):
    """learning/simulate.py's residue fix in ``perturb_model`` (a plain ``sum``)."""
    big = int(np.argmax(q))
    vals = [float(x) for x in q]
    vals[big] = 1.0 - float(sum(v for i, v in enumerate(vals) if i != big))
    return dict(zip(states, vals))


def _complete_residue(states, out, rest):
    """model/spec.py's ``_complete``: the residue on the largest *remaining* state."""
    out = dict(out)
    big = max(rest, key=lambda s: out[s])
    out[big] = 1.0 - math.fsum(v for s, v in out.items() if s != big)
    return {s: out[s] for s in states}


@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 6))
def test_exact_row_is_bit_identical_to_the_three_hand_versions(seed, k):
    rng = np.random.default_rng(seed)
    states = [f"s{i}" for i in range(k)]
    q = rng.dirichlet(np.ones(k))
    if rng.random() < 0.3:
        q[rng.integers(k)] = q.max()  # a tie for the largest: the first one takes the residue
    got = exact_row(states, q)
    assert got == _em_exact_row(states, q)
    assert abs(math.fsum(got.values()) - 1.0) <= 2**-52  # one rounding from 1
    if k <= 3:  # a plain sum of at most two numbers is the exact sum, correctly rounded
        assert got == _perturb_residue(states, q)
    rest = [s for s in states if rng.random() < 0.6] or states[-1:]
    out = dict(zip(states, map(float, q)))
    assert exact_row(states, q, among=rest) == _complete_residue(states, out, rest)
