"""Shapley values of the findings against permutation enumeration and pyAgrum."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from scm_oracle import (
    chain_spec_file,
    cpd,
)

from oracle import BruteForce


@pytest.fixture
def chain_spec(tmp_path: Path):
    return chain_spec_file(tmp_path)


# ----------------------------------------------------------------------------- Shapley
def _shapley_by_permutations(value, players):
    """Average marginal contribution over all n! orders (direct enumeration)."""
    phi = dict.fromkeys(players, 0.0)
    perms = list(itertools.permutations(players))
    for order in perms:
        have: list[str] = []
        for f in order:
            phi[f] += value([*have, f]) - value(have)
            have.append(f)
    return {f: v / len(perms) for f, v in phi.items()}


def test_shapley_matches_permutation_enumeration(chain_spec):
    from kneehip_bn import shapley

    bf = BruteForce([(n, list(s.states), list(s.parents), cpd(chain_spec, n))
                     for n, s in chain_spec.nodes.items()])
    ev = {"a": "high", "d": "present", "e": "some", "t": "positive"}
    sh = shapley(ev, model=chain_spec)
    assert sh.context == {"a": "high"} and sh.method == "exact"
    for diag in ("b", "h"):
        def v(s, diag=diag):
            p = float(bf.marginal([diag], {"a": "high", **{f: ev[f] for f in s}})[1])
            return math.log(p / (1 - p))

        want = _shapley_by_permutations(v, ["d", "e", "t"])
        for f, x in want.items():
            assert sh.values.loc[f, diag] == pytest.approx(x, abs=1e-10)
        assert sh.values[diag].sum() == pytest.approx(v(["d", "e", "t"]) - v([]), abs=1e-10)
        assert sh.loo.loc["d", diag] == pytest.approx(v(["d", "e", "t"]) - v(["e", "t"]), abs=1e-10)


def test_shapley_sampling_close_to_exact_on_shipped_model():
    from kneehip_bn import shapley

    case = {"age_group": "60_plus", "knee_pain": "present", "knee_effusion": "present",
            "hip_pain": "present", "antalgic_gait_observed": "present",
            "joint_line_tenderness": "present", "low_back_pain": "absent",
            "fadir_test": "negative", "radiating_leg_pain": "absent"}
    exact = shapley(case, model="knee_hip_basic")
    mc = shapley(case, model="knee_hip_basic", exact_max=4, n_permutations=600, seed=3)
    assert exact.stderr is None and mc.stderr is not None
    z = (mc.values - exact.values).abs() / np.maximum(mc.stderr, 1e-9)
    assert float(z.max().max()) < 5
    gap = mc.values.sum() - (mc.total - mc.base)
    assert float(gap.abs().max()) < 1e-9  # efficiency holds for every sampled order


def test_shapley_agrees_with_pyagrum_conditional_shap(chain_spec):
    """pyAgrum's ConditionalShapValues(logit=True) uses the same value function (log-odds
    given the observed subset); its players are every observed column, so the context is a
    player there: compare on a case without context."""
    gum = pytest.importorskip("pyagrum")
    import pandas as pd
    from pyagrum.explain import ConditionalShapValues

    from kneehip_bn import export_network, shapley

    ev = {"d": "present", "e": "some", "t": "positive"}
    sh = shapley(ev, diagnosis="h", model=chain_spec)
    path = Path(chain_spec.path).with_suffix(".bif")
    export_network(chain_spec, path)
    bn = gum.loadBN(str(path))
    expl = ConditionalShapValues(bn, "h", logit=True).compute(
        (pd.DataFrame([{**ev, "a": "low", "b": "absent", "c": "absent"}])[list(ev)], True))
    present = bn.variable("h").labels().index("present")
    got = {f: float(np.ravel(expl[present][f])[0]) for f in ev}  # values per target state
    for f in ev:
        assert got[f] == pytest.approx(sh.values.loc[f, "h"], abs=1e-6)
