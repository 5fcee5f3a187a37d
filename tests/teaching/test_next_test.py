"""next_best_test against enumeration (``MINI`` of ``mini.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from mini import ORIGINS, entropy, p_on

from basic import BASIC
from kneehip_bn import (
    EvidenceError,
    ImpossibleEvidenceError,
    UnknownNameError,
    next_best_test,
)
from oracle import BruteForce


def _eig_oracle(bf: BruteForce, ev, cand):
    origins = [o for o in ORIGINS if o not in ev]
    h0 = entropy(bf.marginal(origins, ev))
    pf = bf.marginal([cand], ev)
    gain = h0 - sum(pf[f] * entropy(bf.marginal(origins, {**ev, cand: bf.states[cand][f]}))
                    for f in range(len(pf)) if pf[f] > 0)

    def leader(e):
        return max(origins, key=lambda o: bf.marginal([o], e)[1])

    lead0 = leader(ev)
    change = sum(pf[f] for f in range(len(pf))
                 if pf[f] > 0 and leader({**ev, cand: bf.states[cand][f]}) != lead0)
    return gain, change, h0


@pytest.mark.parametrize("ev", [{}, {"f1": "present"}, {"f1": "present", "f3": "severe"},
                                {"o1": "present", "f2": "absent"}])
def test_expected_information_gain_vs_enumeration(mini, bf, ev):
    df = next_best_test(ev, model=mini)
    cands = [n for n in ["f1", "f2", "f3", "t1", "t2"] if n not in ev]
    assert sorted(df.index) == sorted(cands)
    gains = df["expected_information_gain"].to_numpy()
    assert (np.diff(gains) <= 1e-12).all()
    for c in cands:
        gain, change, h0 = _eig_oracle(bf, ev, c)
        assert df.loc[c, "expected_information_gain"] == pytest.approx(gain, abs=1e-9), c
        assert df.loc[c, "p_change_leading"] == pytest.approx(change, abs=1e-9), c
        assert df.loc[c, "p_on"] == pytest.approx(p_on(bf, c, ev), abs=1e-12)
        assert 0 <= df.loc[c, "expected_information_gain"] <= h0 + 1e-12
    assert df.attrs["entropy_bits"] == pytest.approx(h0, abs=1e-9)


def test_next_best_test_costs_candidates_do(mini, bf):
    df = next_best_test({"f1": "present"}, model=mini, candidates=["t1", "f3"],
                        costs={"t1": 4.0})
    assert list(df.columns[:2]) == ["expected_information_gain", "p_on"]
    assert sorted(df.index) == ["f3", "t1"]
    assert df.loc["t1", "gain_per_cost"] == pytest.approx(df.loc["t1",
                                                                 "expected_information_gain"] / 4)
    assert df.loc["f3", "cost"] == 1.0
    # under an intervention the origins' joint comes from the mutilated network
    df = next_best_test({"f2": "present"}, model=mini, do={"o1": "present"})
    origins = ["o2", "o3"]
    h0 = entropy(bf.marginal(origins, {"f2": "present"}, do={"o1": "present"}))
    assert df.attrs["entropy_bits"] == pytest.approx(h0, abs=1e-9)
    with pytest.raises(EvidenceError, match="already observed"):
        next_best_test({"f1": "present"}, model=mini, candidates=["f1"])
    with pytest.raises(UnknownNameError, match="did you mean 't1'"):
        next_best_test({}, model=mini, candidates=["tt1"])
    with pytest.raises(EvidenceError, match="positive number"):
        next_best_test({}, model=mini, costs={"t1": 0})
    with pytest.raises(ImpossibleEvidenceError, match="probability zero"):
        next_best_test({"o2": "absent", "z": "present"}, model=mini)


def test_next_best_test_shipped_model_radiculopathy():
    df = next_best_test({"low_back_pain": "present", "radiating_leg_pain": "present"}, model=BASIC)
    assert len(df) == 12 + 4 - 2 and df.attrs["entropy_bits"] > 0
    assert (df["expected_information_gain"] >= 0).all()
