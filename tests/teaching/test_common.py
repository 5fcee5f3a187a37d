"""The teaching tools' shared helpers, and the numpy versions kept instead of scipy's.

``logit`` and the entropy of ``next_best_test`` are numpy code rather than
``scipy.special.logit`` / ``scipy.stats.entropy``: the teaching paths load no scipy (importing
``scipy.stats`` alone costs about half a second of a cold ``kneehip next-test``). Tested once
here: they give the same numbers.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kneehip_bn import UnknownNameError, get_engine
from kneehip_bn.teaching.common import (
    evidence_codes,
    family_table,
    logit,
    node_label,
    on_index,
    origin_list,
    states_text,
)
from kneehip_bn.teaching.next_test import next_best_test

scipy_special = pytest.importorskip("scipy.special")
scipy_stats = pytest.importorskip("scipy.stats")


def test_logit_equals_scipy():
    p = np.array([0.0, 1e-300, 1e-12, 0.01, 0.2, 0.5, 0.73, 1 - 1e-12, 1.0])
    with np.errstate(divide="ignore"):
        want = scipy_special.logit(p)
    np.testing.assert_allclose(logit(p), want, rtol=1e-12, atol=0)
    assert logit(0.25) == pytest.approx(float(scipy_special.logit(0.25)), rel=1e-15)


def test_entropy_of_next_best_test_equals_scipy(mini):
    nbt = next_best_test({"f1": "present"}, model=mini)
    eng = get_engine(mini)
    origins = nbt.attrs["origins"]
    probs = []  # the joint over the origins, by the chain rule through the engine
    for states in itertools.product(*[eng.states[o] for o in origins]):
        ev = {"f1": "present"}
        p = 1.0
        for o, s in zip(origins, states):
            post = eng.posterior(ev, targets=[o])
            p *= float(post[o][eng.state_index[o][s]])
            ev = {**ev, o: s}
        probs.append(p)
    assert nbt.attrs["entropy_bits"] == pytest.approx(
        float(scipy_stats.entropy(probs, base=2)), abs=1e-12)


def test_helpers(mini):
    eng = get_engine(mini)
    assert states_text({"f1": "present", "ctx": "b"}) == "f1=present, ctx=b"
    assert node_label("knee_pain") == "knee pain"
    assert eng.states["f1"][on_index(eng, "f1")] == "present"
    assert evidence_codes(eng, [{"f1": "present"}, {"ctx": "b"}], ["f1", "ctx"]).tolist() == [
        [1, -1], [-1, 1]]
    t = family_table(eng, "o3")  # P(o3 | o1), axes (o3, o1)
    np.testing.assert_allclose(t, [[0.9, 0.5], [0.1, 0.5]], atol=1e-12)
    assert origin_list(mini, eng, None) == ["o1", "o2", "o3"]
    with pytest.raises(UnknownNameError, match="origin"):
        origin_list(mini, eng, ["f1"], strict=True)
