"""The shared-message batch pass (:mod:`kneehip_bn.inference.shared`) against brute-force enumeration,
the row-by-row junction tree pass, and on the shipped model.

Every comparison is with an independent computation: :class:`oracle.BruteForce` sums the
full joint; the row-by-row pass (:meth:`kneehip_bn.inference.rows.OrientedPlan.calibrate`)
shares no messages between rows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kneehip_bn import Engine, ImpossibleEvidenceError
from kneehip_bn.inference.shared import MAX_TABLE_BYTES, MemoPlan, dense_ids
from oracle import BruteForce, random_dag_families

TOL = 1e-10
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def _rows(rng, oracle, cols, n, blank=0.3, distinct=40):
    """``n`` rows drawn from ``distinct`` random patterns (so rows repeat), with blanks."""
    base = np.column_stack([rng.integers(0, len(oracle.states[c]), distinct) for c in cols])
    base = np.where(rng.random(base.shape) < blank, -1, base)
    return base[rng.integers(0, distinct, n)]


def _memo_run(eng, codes, cols, targets, do=None):
    plan = eng.batch_plan()
    ti = tuple(eng.index[t] for t in targets)
    col_idx = [eng.index[c] for c in cols]
    mp = MemoPlan(plan, ti, col_idx, (codes >= 0).any(axis=0).tolist(), codes.shape[0])
    phis = eng.batch_phis(eng.encode(do) if do else None)
    with np.errstate(divide="ignore", invalid="ignore"):
        marg, lp = mp.run(phis, codes.astype(np.intp), col_idx)
    return {t: marg[eng.index[t]] for t in targets}, lp, mp


def _check_rows(oracle, codes, cols, marg, lp, do=None):
    cache = {}
    for i, row in enumerate(codes):
        key = tuple(row)
        if key not in cache:
            ev = {c: oracle.states[c][k] for c, k in zip(cols, row) if k >= 0}
            p = oracle.probability(ev, do=do)
            cache[key] = (p, oracle.posterior(ev, list(marg), do=do) if p > 0 else None)
        p, want = cache[key]
        if p == 0:
            assert lp[i] == -np.inf
            assert all(np.isnan(m[i]).all() for m in marg.values())
            continue
        assert lp[i] == pytest.approx(math.log(p), abs=1e-10)
        for t in marg:
            np.testing.assert_allclose(marg[t][i], want[t], atol=TOL, rtol=0, err_msg=t)


@given(seed=SEEDS)
def test_memo_plan_vs_brute_force(seed):
    """Random networks (with structural zeros), random observed columns with blanks and
    repeated rows, random target sets: marginals and log P(evidence) are exact."""
    fams = random_dag_families(seed, zero_prob=0.1)
    rng = np.random.default_rng(seed)
    oracle, eng = BruteForce(fams), Engine.from_families(fams)
    names = oracle.variables
    cols = [str(c) for c in rng.permutation(names)[: int(rng.integers(1, len(names) + 1))]]
    k = int(rng.integers(1, len(names) + 1))
    targets = [str(t) for t in rng.permutation(names)[:k]]
    codes = _rows(rng, oracle, cols, 120)
    marg, lp, _ = _memo_run(eng, codes, cols, targets)
    _check_rows(oracle, codes, cols, marg, lp)


@pytest.mark.parametrize("seed", range(8))
def test_memo_plan_with_do_vs_brute_force(seed):
    fams = random_dag_families(seed + 300, n_nodes=7)
    rng = np.random.default_rng(seed)
    oracle, eng = BruteForce(fams), Engine.from_families(fams)
    names = oracle.variables
    x = names[int(rng.integers(0, len(names)))]
    do = {x: oracle.states[x][0]}
    cols = [c for c in names if c != x][:4]
    targets = list(names)
    codes = _rows(rng, oracle, cols, 80)
    marg, lp, _ = _memo_run(eng, codes, cols, targets, do=do)
    _check_rows(oracle, codes, cols, marg, lp, do=do)


def test_memo_forest_and_every_column_blank():
    """A disconnected network, a column blank in every row, and a row with no evidence."""
    fams = [*random_dag_families(21, n_nodes=5),
            *[(f"y{v[1:]}", s, [f"y{p[1:]}" for p in ps], t)
              for v, s, ps, t in random_dag_families(22, n_nodes=4)]]
    oracle, eng = BruteForce(fams), Engine.from_families(fams)
    rng = np.random.default_rng(1)
    cols = ["x4", "y3", "x1", "y0"]
    codes = _rows(rng, oracle, cols, 60)
    codes[:, 2] = -1
    codes[0] = -1
    for targets in (["x0"], ["y2", "x3"], list(oracle.variables)):
        marg, lp, _ = _memo_run(eng, codes, cols, targets)
        _check_rows(oracle, codes, cols, marg, lp)


def test_memo_long_chain_rescaling_exact():
    """150 variables: upward messages are normalised with their log scale carried, so
    P(evidence) far below the float range of a product is still exact."""
    rng = np.random.default_rng(0)
    fams = []
    for i in range(150):
        pa = [f"x{i - 1}"] if i else []
        t = rng.dirichlet(np.ones(2), size=2 if i else 1).T.reshape([2] + [2] * len(pa))
        fams.append((f"x{i}", ["a", "b"], pa, t))
    eng = Engine.from_families(fams)
    cols = [f"x{i}" for i in range(0, 150, 2)]
    codes = rng.integers(-1, 2, size=(40, len(cols)))
    targets = ["x1", "x75", "x149"]
    marg, lp, _ = _memo_run(eng, codes, cols, targets)
    for i in range(0, 40, 7):
        ev = {c: eng.states[c][k] for c, k in zip(cols, codes[i]) if k >= 0}
        one = eng.posterior(ev, targets=targets)
        for t in targets:
            np.testing.assert_allclose(marg[t][i], one[t], atol=1e-12)
        assert lp[i] == pytest.approx(eng.log_probability(ev), abs=1e-9)


def test_engine_batch_uses_memo_for_many_rows_and_agrees(monkeypatch, shipped_spec,
                                                         shipped_engine):
    """Above a few thousand rows with few targets the engine shares messages; the answer
    equals the row-by-row pass (forced by a zero ``max_shared_bytes``)."""
    from kneehip_bn.io.encode import encode_audit
    from kneehip_bn.learning.simulate import simulate_audit

    eng = shipped_engine
    df = simulate_audit(12_000, seed=7, missing=0.15, model=shipped_spec,
                        hidden=("mechanism", "origin"))
    enc = encode_audit(df, shipped_spec)
    cols, codes = enc.columns, enc.codes
    targets = ["knee_pathology", "hip_pathology", "lumbar_radiculopathy",
               "hip_muscle_weakness", "overuse_injury", "altered_gait", "age_group"]
    calls = []
    real_run = MemoPlan.run
    monkeypatch.setattr(MemoPlan, "run", lambda self, *a, **k: calls.append(1) or
                        real_run(self, *a, **k))
    done = []
    res = eng.batch(codes, cols, targets=targets, progress=done.append)
    assert calls and sum(done) == len(codes)
    monkeypatch.setattr(eng, "max_shared_bytes", 0)
    ref = eng.batch(codes, cols, targets=targets)
    assert len(calls) == 1  # the second call took the row-by-row pass
    for t in targets:
        np.testing.assert_allclose(res.marginals[t], ref.marginals[t], atol=1e-12, err_msg=t)
        np.testing.assert_allclose(res.marginals[t].sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(res.log_evidence, ref.log_evidence, atol=1e-10)


def test_blocks_of_the_shared_pass_give_the_one_pass_answer(monkeypatch, shipped_spec,
                                                          shipped_engine):
    """A batch longer than ``block_rows`` goes block by block (here 5,000 + 5,000 + 2,000:
    the last block is short enough for the row pass): marginals, log P and expected counts
    equal one pass over every row, impossible rows included."""
    from kneehip_bn.io.encode import encode_audit
    from kneehip_bn.learning.simulate import simulate_audit

    eng = shipped_engine
    df = simulate_audit(12_000, seed=11, missing=0.2, model=shipped_spec,
                        hidden=("mechanism", "origin"))
    enc = encode_audit(df, shipped_spec)
    cols, codes = list(enc.columns), enc.codes.copy()
    # two rows the model rules out (a structural zero), in the first and the last block
    for c, state in (("lumbar_radiculopathy", "absent"), ("upper_lumbar_root", "present")):
        j = cols.index(c) if c in cols else None
        if j is None:
            cols.append(c)
            codes = np.column_stack([codes, np.full(len(codes), -1)])
            j = len(cols) - 1
        codes[[17, 11_500], j] = eng.states[c].index(state)
    w = np.random.default_rng(2).integers(1, 5, len(codes)).astype(float)
    targets = ["knee_pathology", "hip_pathology", "lumbar_radiculopathy"]
    one = eng.batch(codes, cols, targets=targets, on_impossible="nan")
    assert np.isneginf(one.log_evidence[[17, 11_500]]).all()
    n1, ll1, lp1 = eng.expected_counts(codes, cols, weights=w, on_impossible="nan")
    monkeypatch.setattr(eng, "block_rows", 5_000)
    seen = []
    blk = eng.batch(codes, cols, targets=targets, on_impossible="nan", progress=seen.append)
    assert sum(seen) == len(codes)
    n2, ll2, lp2 = eng.expected_counts(codes, cols, weights=w, on_impossible="nan")
    with pytest.raises(ImpossibleEvidenceError, match="impossible"):
        eng.expected_counts(codes, cols, weights=w)
    for t in targets:
        np.testing.assert_allclose(blk.marginals[t], one.marginals[t], atol=1e-12, err_msg=t)
    np.testing.assert_allclose(blk.log_evidence, one.log_evidence, atol=1e-10)
    np.testing.assert_allclose(lp2, lp1, atol=1e-10)
    assert np.isneginf(ll1) and np.isneginf(ll2)
    ok = np.isfinite(lp1)
    for v in n1:
        np.testing.assert_allclose(n2[v], n1[v], rtol=1e-10, atol=1e-9, err_msg=v)
        assert float(n1[v].sum()) == pytest.approx(w[ok].sum())  # every possible row once


def test_engine_batch_memo_impossible_rows(shipped_engine):
    """Probability-zero rows inside a large batch: NaN marginals and -inf, or the error."""
    eng = shipped_engine
    cols = ["age_group", "knee_pain", "knee_effusion"]
    rng = np.random.default_rng(3)
    codes = np.column_stack([rng.integers(-1, len(eng.states[c]), 9000) for c in cols])
    # find a structural zero: a state of some node the model never allows given its parents
    impossible = None
    for c in eng.variables:
        fam, arr = eng.factors[eng.index[c]]
        if (arr == 0).any() and len(fam) == 1:
            impossible = (c, int(np.flatnonzero(arr == 0)[0]))
    if impossible is None:  # the shipped model has none at the root: build one
        fams = [("a", ["0", "1"], [], np.array([1.0, 0.0])),
                ("b", ["0", "1"], ["a"], np.array([[0.3, 0.5], [0.7, 0.5]]))]
        eng = Engine.from_families(fams)
        cols = ["a", "b"]
        codes = np.column_stack([rng.integers(-1, 2, 9000), rng.integers(-1, 2, 9000)])
        bad = codes[:, 0] == 1
    else:
        cols = [*cols, impossible[0]]
        extra = np.where(rng.random(9000) < 0.01, impossible[1], -1)
        codes = np.column_stack([codes, extra])
        bad = extra >= 0
    res = eng.batch(codes, cols, on_impossible="nan", targets=list(eng.variables)[:3])
    assert np.isneginf(res.log_evidence[bad]).all()
    assert np.isfinite(res.log_evidence[~bad]).all()
    for m in res.marginals.values():
        assert np.isnan(m[bad]).all() and np.isfinite(m[~bad]).all()
    with pytest.raises(ImpossibleEvidenceError, match="impossible"):
        eng.batch(codes, cols)


# ----------------------------------------------------------------------------- dense_ids
@given(seed=SEEDS, big=st.booleans(), n=st.sampled_from([1, 7, 400, 40_000]))
def test_dense_ids_numbers_distinct_rows(seed, big, n):
    """Every path: all combinations enumerated (few), a direct table, a sort (big radices)
    and the int64 overflow compression (radices whose product exceeds 2**62)."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 6))
    radices = [int(rng.integers(2, 2**20 if big else 5)) for _ in range(k)]
    hi = [min(r, 6) for r in radices]  # few distinct values so rows repeat
    cols = [rng.integers(0, h, n) for h in hi]
    if big and k > 1:
        cols[0] = rng.integers(0, radices[0], n)
    ids, vals = dense_ids(list(zip(cols, radices)), n)
    assert len(vals) == k and ids.shape == (n,)
    m = vals[0].shape[0]
    assert ids.min() >= 0 and ids.max() < m
    for v, col in zip(vals, cols):
        np.testing.assert_array_equal(v[ids], col)  # ids determine the rows
    rows = np.column_stack(cols)
    distinct = {tuple(r) for r in rows.tolist()}
    assert len(set(ids.tolist())) == len(distinct)  # ... and equal rows share an id
    if math.prod(radices) > max(4096, n // 8):
        assert m == len(distinct)  # numbered densely: no unused ids


def test_dense_ids_edge_cases():
    ids, vals = dense_ids([], 5)
    assert ids.tolist() == [0] * 5 and vals == []
    ids, vals = dense_ids([(np.array([], dtype=int), 3)], 0)
    assert ids.size == 0
    many = [(np.array([1, 0, 1]), 2**40)] * 4  # 2**160 combinations: compressed on the way
    ids, vals = dense_ids(many, 3)
    assert ids.tolist()[0] == ids.tolist()[2] != ids.tolist()[1]
    assert [v.tolist() for v in vals] == [[0, 1]] * 4


def test_memo_plan_prefers_small_root_and_estimates_memory(shipped_engine):
    """On the shipped model with the origins as targets, the per-row work is a small
    root and one join; the memory estimate for a million rows stays far under the cap."""
    eng = shipped_engine
    plan = eng.batch_plan()
    cols = [v for v in eng.variables if eng.parents[v] == [] or not any(
        v in eng.parents[w] for w in eng.variables)]
    col_idx = [eng.index[c] for c in cols]
    origins = ["knee_pathology", "hip_pathology", "lumbar_radiculopathy",
               "hip_muscle_weakness", "overuse_injury"]
    mp = MemoPlan(plan, tuple(eng.index[t] for t in origins), col_idx, [True] * len(cols),
                  1_000_000)
    assert plan.size[mp.root] <= 16
    assert mp.worth_it(1_000_000)
    assert mp.table_bytes(1_000_000) < MAX_TABLE_BYTES
    assert 2 * mp.cost <= mp.row_cost  # estimated at less than half the row-by-row work


def test_memo_on_alarm_vs_single_queries(alarm_model):
    """ALARM (37 nodes, cards up to 4): shared messages equal one-at-a-time queries of the
    flat junction tree (a different compilation)."""
    eng = Engine(alarm_model)
    rng = np.random.default_rng(5)
    leaves = [v for v in eng.variables if not any(v in eng.parents[w] for w in eng.variables)]
    cols = [*leaves[:10], "HYPOVOLEMIA"]
    codes = np.column_stack([np.where(rng.random(300) < 0.3, -1,
                                      rng.integers(0, eng.card[eng.index[c]], 300)) for c in cols])
    codes = codes[rng.integers(0, 300, 600)]
    targets = ["LVFAILURE", "ANAPHYLAXIS", "PULMEMBOLUS", "INTUBATION", "KINKEDTUBE"]
    marg, lp, _ = _memo_run(eng, codes, cols, targets)
    for i in range(0, 600, 37):
        ev = {c: eng.states[c][k] for c, k in zip(cols, codes[i]) if k >= 0}
        one = eng.posterior(ev, targets=targets)
        for t in targets:
            np.testing.assert_allclose(marg[t][i], one[t], atol=1e-10, err_msg=t)
        assert lp[i] == pytest.approx(eng.log_probability(ev), abs=1e-9)
