"""conflict (and the forward sampler behind its tail probability) against brute-force
enumeration (``MINI`` of ``mini.py``)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from mini import CASES

from kneehip_bn import (
    EvidenceError,
    ImpossibleEvidenceError,
    UnknownNameError,
    conflict,
    get_engine,
)
from kneehip_bn.inference.sampling import forward_sample
from oracle import BruteForce


def _conf_oracle(bf: BruteForce, ev) -> float:
    lp = sum(math.log2(bf.marginal([k])[bf.states[k].index(v)]) for k, v in ev.items())
    return lp - math.log2(bf.probability(ev))


@pytest.mark.parametrize("ev", [CASES[0], CASES[1], {"t2": "positive", "f3": "none"},
                                {"f1": "absent", "f2": "present", "t1": "positive"}])
def test_conflict_vs_brute_force(mini, bf, ev):
    c = conflict(ev, model=mini)
    assert c.conflict == pytest.approx(_conf_oracle(bf, ev), abs=1e-9)
    assert c.flagged == (_conf_oracle(bf, ev) > 0)
    for k, r in c.contributions.iterrows():
        rest = {a: b for a, b in ev.items() if a != k}
        p_i = bf.marginal([k])[bf.states[k].index(ev[k])]
        p_rest = bf.marginal([k], rest)[bf.states[k].index(ev[k])]
        assert r["prior"] == pytest.approx(p_i, abs=1e-12)
        assert r["given_rest"] == pytest.approx(p_rest, abs=1e-12)
        assert r["contribution"] == pytest.approx(math.log2(p_i / p_rest), abs=1e-9)
        assert r["contribution"] == pytest.approx(
            _conf_oracle(bf, ev) - (_conf_oracle(bf, rest) if rest else 0.0), abs=1e-9)


def test_conflict_flags_contradictory_findings(mini, bf):
    # t2 positive points to o2 present, f3 none to o2 absent: less likely together
    ev = {"t2": "positive", "f3": "none"}
    assert _conf_oracle(bf, ev) > 0
    c = conflict(ev, model=mini)
    assert c.flagged and "CONFLICT" in str(c)
    assert not conflict({"f1": "present", "f2": "present"}, model=mini).flagged


def test_conflict_tail_probability_vs_exact_enumeration(mini, bf):
    ev = {"t2": "positive", "f3": "none", "f1": "absent"}
    c = conflict(ev, model=mini, n_sim=4000, seed=3)
    obs = _conf_oracle(bf, ev)
    names = list(ev)
    tail = 0.0
    for combo in itertools.product(*[bf.states[n] for n in names]):
        e = dict(zip(names, combo))
        p = bf.probability(e)
        if p > 0 and _conf_oracle(bf, e) >= obs - 1e-12:
            tail += p
    sd = math.sqrt(tail * (1 - tail) / 4000)
    assert abs(c.p_value - tail) < 4 * sd + 1e-9
    assert len(c.simulated) == 4000
    d = c.to_dict()
    assert d["flagged"] == c.flagged and len(d["contributions"]) == 3


def test_forward_sample_matches_the_priors(mini, bf):
    eng = get_engine(mini)
    s = forward_sample(eng, 40000, np.random.default_rng(0))
    for v in bf.variables:
        f = np.bincount(s[:, eng.index[v]], minlength=len(bf.states[v])) / len(s)
        p = bf.marginal([v])
        assert np.all(np.abs(f - p) <= 4.5 * np.sqrt(p * (1 - p) / len(s)) + 1e-12), v
    # structural zero respected; do() fixes a node and cuts its parents
    assert not ((s[:, eng.index["o2"]] == 0) & (s[:, eng.index["z"]] == 1)).any()
    s = forward_sample(eng, 20000, np.random.default_rng(1), do={"o3": "present"})
    assert (s[:, eng.index["o3"]] == 1).all()
    f_o1 = s[:, eng.index["o1"]].mean()
    assert abs(f_o1 - bf.marginal(["o1"])[1]) < 4.5 * math.sqrt(0.25 / 20000)


def test_conflict_errors(mini):
    with pytest.raises(EvidenceError, match="at least one finding"):
        conflict({}, model=mini)
    with pytest.raises(ImpossibleEvidenceError):
        conflict({"o2": "absent", "t2": "positive", "z": "present"}, model=mini)
    with pytest.raises(UnknownNameError, match="did you mean 't2'"):
        conflict({"t22": "positive"}, model=mini)
