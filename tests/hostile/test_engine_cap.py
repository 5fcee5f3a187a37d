"""Compilation is memory-safe: the engine estimates its clique tables before allocating
and refuses a model above the cap (``KNEEHIP_MAX_TABLE_BYTES``), naming the size needed.

The bnlearn networks shipped inside pgmpy (no download) either compile within the
default cap, with answers equal to pgmpy's variable elimination, or are refused at once
with the reason.
"""

from __future__ import annotations

import re
import time
import tracemalloc
import warnings

import numpy as np
import pytest

from kneehip_bn.errors import ImpossibleEvidenceError, ModelTooLargeError, ParameterError
from kneehip_bn.inference.compile import MAX_COMPILE_BYTES, compile_bytes, max_compile_bytes
from kneehip_bn.inference.engine import Engine

pytestmark = pytest.mark.slow

#: bnlearn networks shipped with pgmpy: name -> compiles within the default 2 GiB cap?
BNLEARN = {"alarm": True, "insurance": True, "child": True, "water": True,
           "hailfinder": True, "win95pts": True, "barley": False}


def _load(name):
    from pgmpy.utils import get_example_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_example_model(name)
    for cpd in model.get_cpds():  # some bnlearn columns sum to 1 - 1e-7: renormalise
        vals = cpd.get_values()
        cpd.values = (vals / vals.sum(axis=0, keepdims=True)).reshape(cpd.values.shape)
    return model


@pytest.mark.parametrize("name", sorted(BNLEARN))
def test_bnlearn_networks_compile_within_the_cap_or_say_why(name, monkeypatch):
    from pgmpy.inference import VariableElimination

    monkeypatch.delenv("KNEEHIP_MAX_TABLE_BYTES", raising=False)
    model = _load(name)
    if not BNLEARN[name]:
        tracemalloc.start()
        t = time.perf_counter()
        with pytest.raises(ModelTooLargeError, match=r"model: compiling it would need about "
                                                     r"[\d.]+ GiB \([\d,]+ clique-table entries;"
                                                     r".*over the limit of 2.00 GiB.*"
                                                     r"KNEEHIP_MAX_TABLE_BYTES"):
            Engine(model)
        elapsed = time.perf_counter() - t
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 50 * 2**20, f"refusing allocated {peak / 2**20:.0f} MiB"
        print(f"{name}: refused in {elapsed:.3f} s, peak {peak / 2**20:.1f} MiB")
        return
    eng = Engine(model)
    rng = np.random.default_rng(0)
    nodes = sorted(model.nodes)
    for _ in range(3):
        obs = rng.choice(nodes, size=2, replace=False)
        ev = {str(v): model.get_cpds(str(v)).state_names[str(v)][0] for v in obs}
        target = next(v for v in reversed(nodes) if v not in ev)
        ve = VariableElimination(model)
        try:
            got = eng.posterior(ev, targets=[target])[target]
        except ImpossibleEvidenceError:  # then pgmpy must give the evidence probability 0
            joint = ve.query(list(ev), joint=True, show_progress=False)
            assert joint.get_value(**ev) == pytest.approx(0.0, abs=1e-15)
            continue
        want = ve.query([target], evidence=ev, show_progress=False).values
        np.testing.assert_allclose(got, want, atol=1e-9)


def test_a_small_cap_refuses_with_the_size_needed(monkeypatch, tiny_spec):
    from kneehip_bn.inference.queries import query

    monkeypatch.setenv("KNEEHIP_MAX_TABLE_BYTES", "1K")
    assert max_compile_bytes() == 1024
    with pytest.raises(ModelTooLargeError, match=r"would need about [\d,]+ bytes .*over the "
                                                 r"limit of 1,024 bytes"):
        query("limp", model=tiny_spec)
    with pytest.raises(MemoryError):
        Engine(tiny_spec)
    monkeypatch.delenv("KNEEHIP_MAX_TABLE_BYTES")
    assert Engine(tiny_spec, max_table_bytes=10**6).posterior({}, targets=["limp"])
    with pytest.raises(ModelTooLargeError):
        Engine(tiny_spec, max_table_bytes=10)


def test_the_cap_at_the_cli(monkeypatch, capsys):
    from harden_util import one_line_error, run

    monkeypatch.setenv("KNEEHIP_MAX_TABLE_BYTES", "100")
    code, _, err = run(capsys, "diagnose", "--model", "knee_hip_basic")
    assert code == 1
    assert re.search(r"would need about [\d,]+ bytes .*over the limit of 100 bytes",
                     one_line_error(err)), err
    monkeypatch.setenv("KNEEHIP_MAX_TABLE_BYTES", "lots")
    code, _, err = run(capsys, "diagnose", "--model", "knee_hip_basic")
    assert code == 1
    assert "KNEEHIP_MAX_TABLE_BYTES: expected a positive number of bytes" in one_line_error(err)
    with pytest.raises(ParameterError):
        max_compile_bytes()


def test_compile_bytes_by_hand():
    card = np.array([2, 3, 4])
    # cliques {0,1}: 6 entries x 8 bytes x (2*2 + 6); {1,2}: 12 x 8 x 10
    assert compile_bytes([frozenset({0, 1}), frozenset({1, 2})], card) == 8 * 10 * (6 + 12)
    assert MAX_COMPILE_BYTES == 2 * 2**30
