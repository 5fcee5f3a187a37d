"""mpe (max-product) against brute force and pgmpy's MAP query."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scm_oracle import (
    chain_spec_file,
    cpd,
)

from oracle import BruteForce, random_dag_families, to_pgmpy


@pytest.fixture
def chain_spec(tmp_path: Path):
    return chain_spec_file(tmp_path)


# ----------------------------------------------------------------------------- MPE
def _brute_mpe(bf: BruteForce, ev: dict):
    j = bf.joint(ev)
    flat = np.argsort(-j.ravel(), kind="stable")
    pe = j.sum()
    out = []
    for idx in flat[:2]:
        st = np.unravel_index(idx, j.shape)
        out.append(({v: bf.states[v][s] for v, s in zip(bf.variables, st) if v not in ev},
                    float(j.ravel()[idx] / pe)))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_mpe_matches_brute_force_random(seed):
    from kneehip_bn import mpe

    fams = random_dag_families(seed, n_nodes=7, max_card=3, max_joint=3000)
    bf = BruteForce(fams)
    rng = np.random.default_rng(seed)
    v = bf.variables[-1]
    ev = {v: str(rng.choice(bf.states[v]))}
    (best, p1), (_second, p2) = _brute_mpe(bf, ev)
    r = mpe(ev, model=to_pgmpy(fams))
    assert r.probability == pytest.approx(p1, rel=1e-10)
    assert r.second_probability == pytest.approx(p2, rel=1e-10)
    if p1 > p2 * (1 + 1e-9):
        assert r.assignment == best


def test_mpe_tiny_and_chain(tiny_spec, chain_spec, tiny_oracle):
    from kneehip_bn import mpe

    (best, p1), (_, p2) = _brute_mpe(tiny_oracle, {"limp": "present", "pain_level": "mild"})
    r = mpe({"limp": "present", "pain_level": "mild"}, model=tiny_spec)
    assert r.assignment == best and r.probability == pytest.approx(p1, rel=1e-12)
    assert r.second_probability == pytest.approx(p2, rel=1e-12)
    bf = BruteForce([(n, list(s.states), list(s.parents), cpd(chain_spec, n))
                     for n, s in chain_spec.nodes.items()])
    (best, p1), _ = _brute_mpe(bf, {"d": "present", "e": "much"})
    r = mpe({"d": "present", "e": "much"}, model=chain_spec)
    assert r.assignment == best and r.probability == pytest.approx(p1, rel=1e-12)


def test_mpe_matches_pgmpy_map_query_on_basic():
    """pgmpy's map_query builds the joint of the query variables, so the case observes
    every finding and test (15 unobserved nodes)."""
    import warnings

    from pgmpy.inference import VariableElimination

    from kneehip_bn import build_network, load_spec, mpe

    spec = load_spec("knee_hip_basic")
    net = build_network(spec)
    ev = {n: ("present" if n in ("knee_pain", "hip_pain", "knee_effusion",
                                 "antalgic_gait_observed") else s.states[0])
          for n, s in spec.nodes.items() if s.group in ("finding", "test")}
    r = mpe(ev, model=spec)
    free = [n for n in spec.nodes if n not in ev]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = VariableElimination(net).map_query(variables=free, evidence=ev, show_progress=False)
    assert r.assignment == {n: q[n] for n in r.assignment}
    assert set(r.assignment) == set(free)

def test_mpe_with_do_matches_brute_force(tiny_spec, tiny_oracle):
    from kneehip_bn import mpe

    ev, do = {"limp": "present"}, {"knee_oa": "absent"}
    j = tiny_oracle.joint(ev, do)
    idx = np.unravel_index(int(np.argmax(j)), j.shape)
    want = {v: tiny_oracle.states[v][s] for v, s in zip(tiny_oracle.variables, idx)
            if v not in ev and v not in do}
    r = mpe(ev, model=tiny_spec, do=do)
    assert r.assignment == want
    assert r.probability == pytest.approx(float(j.max() / j.sum()), rel=1e-12)
