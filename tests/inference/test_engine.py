"""The junction-tree engine against independent oracles.

Oracles: hand-worked fractions (tiny network, see conftest), brute-force enumeration of the
joint (tests/oracle.py) on the tiny network and on many random networks, pgmpy's
VariableElimination on the shipped model and ALARM, and pyAgrum's LazyPropagation on the
shipped model (exported as XMLBIF).
"""

from __future__ import annotations

import itertools
import math
import warnings
from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kneehip_bn import Engine, ImpossibleEvidenceError, get_engine
from kneehip_bn.errors import EvidenceError, ParameterError, UnknownNameError
from oracle import BruteForce, random_dag_families, random_evidence, to_pgmpy

TOL = 1e-10
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def assert_posteriors_close(got, want, tol=TOL, names=None):
    names = list(want) if names is None else names
    assert set(names) <= set(got)
    for n in names:
        np.testing.assert_allclose(got[n], want[n], atol=tol, rtol=0, err_msg=n)


# ----------------------------------------------------------------------------- tiny network
def test_tiny_hand_worked(tiny_spec):
    """The four hand-worked cases of conftest's docstring, with exact fractions."""
    eng = Engine(tiny_spec)
    # 1. prior
    p_k = F(6, 10) * F(1, 10) + F(4, 10) * F(4, 10)
    assert p_k == F(22, 100)
    assert eng.posterior({}, ["knee_oa"])["knee_oa"][1] == pytest.approx(float(p_k), abs=1e-15)
    # 2. one finding on a 3-state node
    post = p_k * F(3, 10) / (p_k * F(3, 10) + (1 - p_k) * F(1, 10))
    assert post == F(11, 24)
    got = eng.posterior({"pain_level": "severe"}, ["knee_oa"])["knee_oa"]
    assert got[1] == pytest.approx(float(post), abs=1e-15)
    # 3. explaining away through the noisy-OR
    w = {(0, 0): F(6, 10) * F(8, 10) * F(10, 100), (1, 0): F(4, 10) * F(8, 10) * F(55, 100),
         (0, 1): F(6, 10) * F(2, 10) * F(46, 100), (1, 1): F(4, 10) * F(2, 10) * F(73, 100)}
    p_hip = (w[0, 1] + w[1, 1]) / sum(w.values())
    assert p_hip == F(71, 211)
    got = eng.posterior({"age": "old", "gait": "present"}, ["hip_oa"])["hip_oa"][1]
    assert got == pytest.approx(float(p_hip), abs=1e-15)
    p_hip_k = w[1, 1] / (w[1, 0] + w[1, 1])
    assert p_hip_k == F(73, 293)
    got_k = eng.posterior({"age": "old", "gait": "present", "knee_oa": "present"},
                          ["hip_oa"])["hip_oa"][1]
    assert got_k == pytest.approx(float(p_hip_k), abs=1e-15)
    assert got_k < got
    # 4. intervention vs observation
    p_gait_do = F(89, 100) * F(55, 100) + F(11, 100) * F(73, 100)
    do = eng.posterior({}, ["gait", "age"], do={"knee_oa": "present"})
    assert do["gait"][1] == pytest.approx(float(p_gait_do), abs=1e-15)
    assert do["age"][1] == pytest.approx(0.4, abs=1e-15)
    seen = eng.posterior({"knee_oa": "present"}, ["age"])["age"][1]
    assert seen == pytest.approx(8 / 11, abs=1e-15)
    # P(evidence)
    assert math.exp(eng.log_probability({"pain_level": "severe"})) == pytest.approx(
        float(p_k * F(3, 10) + (1 - p_k) * F(1, 10)), abs=1e-15)


def test_tiny_every_evidence_pair(tiny_spec, tiny_oracle):
    """Every single finding and every pair of findings, on roots, intermediates and leaves."""
    eng = Engine(tiny_spec)
    states = eng.states
    singles = [{v: s} for v in states for s in states[v]]
    pairs = [{a: sa, b: sb} for a, b in itertools.combinations(states, 2)
             for sa in states[a] for sb in states[b]]
    for ev in [{}, *singles, *pairs]:
        want = tiny_oracle.posterior(ev)
        assert_posteriors_close(eng.posterior(ev), want)
        assert eng.log_probability(ev) == pytest.approx(math.log(tiny_oracle.probability(ev)),
                                                        abs=1e-12)


def test_tiny_from_spec_pgmpy_and_families_agree(tiny_spec):
    from conftest import tiny_families
    from kneehip_bn import build_network

    a = Engine(tiny_spec).posterior({"limp": "present"})
    b = Engine(build_network(tiny_spec)).posterior({"limp": "present"})
    c = Engine.from_families(tiny_families()).posterior({"limp": "present"})
    assert_posteriors_close(a, b, tol=1e-15)
    assert_posteriors_close(a, c, tol=1e-15)


# ----------------------------------------------------------------------------- random networks
def _check_network(fams, seed, max_clique_states=1024):
    rng = np.random.default_rng(seed)
    oracle = BruteForce(fams)
    eng = Engine.from_families(fams, max_clique_states=max_clique_states)
    names = oracle.variables
    # evidence on every kind of node: each variable observed alone, then random subsets
    evs = [{}] + [{v: str(rng.choice(oracle.states[v]))} for v in names]
    evs += [random_evidence(rng, oracle.states, int(rng.integers(1, len(names) + 1)))
            for _ in range(6)]
    for ev in evs:
        p = oracle.probability(ev)
        if p == 0:
            with pytest.raises(ImpossibleEvidenceError):
                eng.posterior(ev)
            assert eng.log_probability(ev) == -np.inf
            continue
        assert_posteriors_close(eng.posterior(ev), oracle.posterior(ev))
        assert eng.log_probability(ev) == pytest.approx(math.log(p), abs=1e-10)
    return eng, oracle, rng


@pytest.mark.parametrize("seed", range(40))
def test_random_networks_vs_brute_force(seed):
    fams = random_dag_families(seed)
    _check_network(fams, seed)


@pytest.mark.parametrize("max_states", [1, 8, 64, 10**6])
def test_clique_merging_threshold_does_not_change_answers(max_states):
    for seed in range(100, 110):
        _check_network(random_dag_families(seed, n_nodes=7), seed, max_clique_states=max_states)


def test_pgmpy_input_matches_families():
    for seed in range(200, 210):
        fams = random_dag_families(seed)
        model = to_pgmpy(fams)
        a = Engine(model).posterior({fams[-1][0]: fams[-1][1][0]})
        b = BruteForce.from_pgmpy(model).posterior({fams[-1][0]: fams[-1][1][0]})
        assert_posteriors_close(a, b)


def test_disconnected_network():
    """Two components and an isolated node: a forest of junction trees."""
    ab = ["a", "b"]
    fams = [
        ("u", ab, [], np.array([0.3, 0.7])),
        ("v", ab, ["u"], np.array([[0.9, 0.2], [0.1, 0.8]])),
        ("w", ["x", "y", "z"], [], np.array([0.2, 0.3, 0.5])),
        ("q", ab, ["w"], np.array([[0.1, 0.5, 0.9], [0.9, 0.5, 0.1]])),
        ("lonely", ab, [], np.array([0.5, 0.5])),
    ]
    eng, oracle = Engine.from_families(fams), BruteForce(fams)
    for ev in [{}, {"v": "b"}, {"q": "a", "v": "a"}, {"lonely": "b", "q": "b"}]:
        assert_posteriors_close(eng.posterior(ev), oracle.posterior(ev))
        assert eng.log_probability(ev) == pytest.approx(math.log(oracle.probability(ev)))


@given(seed=SEEDS)
def test_virtual_evidence_vs_brute_force(seed):
    fams = random_dag_families(seed)
    rng = np.random.default_rng(seed)
    oracle, eng = BruteForce(fams), Engine.from_families(fams)
    hard = random_evidence(rng, oracle.states, int(rng.integers(0, 3)))
    soft_nodes = rng.choice(oracle.variables, size=min(2, len(oracle.variables)), replace=False)
    soft = {v: rng.random(len(oracle.states[v])) + 0.01 for v in soft_nodes}
    if oracle.probability(hard, virtual_evidence=soft) == 0:
        return
    got = eng.posterior(hard, virtual_evidence=soft)
    assert_posteriors_close(got, oracle.posterior(hard, virtual_evidence=soft))
    # a soft finding with a one-hot likelihood is a hard finding
    v = str(soft_nodes[0])
    k = int(rng.integers(len(oracle.states[v])))
    onehot = np.eye(len(oracle.states[v]))[k]
    ev = {x: s for x, s in hard.items() if x != v}
    if oracle.probability({**ev, v: oracle.states[v][k]}) > 0:
        assert_posteriors_close(eng.posterior(ev, virtual_evidence={v: onehot}),
                                eng.posterior({**ev, v: oracle.states[v][k]}))


@given(seed=SEEDS)
def test_do_vs_brute_force_on_mutilated_network(seed):
    fams = random_dag_families(seed)
    rng = np.random.default_rng(seed)
    oracle, eng = BruteForce(fams), Engine.from_families(fams)
    x = str(rng.choice(oracle.variables))
    do = {x: str(rng.choice(oracle.states[x]))}
    ev = random_evidence(rng, oracle.states, int(rng.integers(0, 3)), exclude=[x])
    # the mutilated network, built by hand: x's table becomes a point mass, no parents
    point = np.array([1.0 if s == do[x] else 0.0 for s in oracle.states[x]])
    mutilated = [(v, s, [] if v == x else p, point if v == x else t) for v, s, p, t in fams]
    mut = BruteForce(mutilated)
    if mut.probability(ev) == 0:
        with pytest.raises(ImpossibleEvidenceError):
            eng.posterior(ev, do=do)
        return
    assert_posteriors_close(eng.posterior(ev, do=do), mut.posterior(ev))
    assert_posteriors_close(eng.posterior(ev, do=do), oracle.posterior(ev, do=do))
    assert eng.log_probability(ev, do=do) == pytest.approx(math.log(mut.probability(ev)))


@given(seed=SEEDS)
def test_batch_equals_per_row(seed):
    fams = random_dag_families(seed, zero_prob=0.1)
    rng = np.random.default_rng(seed)
    oracle, eng = BruteForce(fams), Engine.from_families(fams)
    cols = [str(c) for c in rng.permutation(oracle.variables)[: max(1, len(fams) - 1)]]
    n = 30
    codes = np.column_stack([rng.integers(-1, len(oracle.states[c]), n) for c in cols])
    res = eng.batch(codes, cols, on_impossible="nan")
    for i in range(n):
        ev = {c: oracle.states[c][k] for c, k in zip(cols, codes[i]) if k >= 0}
        p = oracle.probability(ev)
        if p == 0:
            assert res.log_evidence[i] == -np.inf
            assert all(np.isnan(m[i]).all() for m in res.marginals.values())
            continue
        assert res.log_evidence[i] == pytest.approx(math.log(p), abs=1e-10)
        want = oracle.posterior(ev)
        for v in oracle.variables:
            np.testing.assert_allclose(res.marginals[v][i], want[v], atol=TOL, rtol=0)


def test_batch_targets_do_and_chunking(tiny_spec, tiny_oracle):
    eng = Engine(tiny_spec)
    cols = ["limp", "pain_level", "age"]
    codes = np.array(list(itertools.product([-1, 0, 1], [-1, 0, 1, 2], [-1, 0, 1])))
    eng.chunk_bytes = eng.bytes_per_row * 7  # force many chunks
    res = eng.batch(codes, cols, targets=["hip_oa", "gait"], do={"knee_oa": "present"})
    assert set(res.marginals) == {"hip_oa", "gait"}
    for i, row in enumerate(codes):
        ev = {c: eng.states[c][k] for c, k in zip(cols, row) if k >= 0}
        want = tiny_oracle.posterior(ev, ["hip_oa", "gait"], do={"knee_oa": "present"})
        for t in ("hip_oa", "gait"):
            np.testing.assert_allclose(res.marginals[t][i], want[t], atol=TOL)


@given(seed=SEEDS)
def test_expected_counts_vs_brute_force(seed):
    fams = random_dag_families(seed)
    rng = np.random.default_rng(seed)
    oracle, eng = BruteForce(fams), Engine.from_families(fams)
    cols = list(oracle.variables)
    n = 12
    codes = np.column_stack([rng.integers(-1, len(oracle.states[c]), n) for c in cols])
    # keep only possible rows (the E-step raises on impossible ones; tested below)
    evs = [{c: oracle.states[c][k] for c, k in zip(cols, r) if k >= 0} for r in codes]
    keep = [i for i, ev in enumerate(evs) if oracle.probability(ev) > 0]
    codes, evs = codes[keep], [evs[i] for i in keep]
    w = rng.random(len(keep)) * 3
    counts, loglik, log_pe = eng.expected_counts(codes, cols, weights=w)
    logs = np.array([math.log(oracle.probability(ev)) for ev in evs])
    np.testing.assert_allclose(log_pe, logs, atol=1e-10)
    assert loglik == pytest.approx(float(w @ logs), abs=1e-9)
    for v in oracle.variables:
        assert eng.parents[v] == oracle.parents[v]
        want = sum(wi * oracle.family_posterior(v, ev) for wi, ev in zip(w, evs))
        np.testing.assert_allclose(counts[v], want, atol=1e-9, err_msg=v)


def test_expected_counts_impossible_row_raises():
    fams = [("a", ["0", "1"], [], np.array([1.0, 0.0])),
            ("b", ["0", "1"], ["a"], np.array([[0.5, 0.5], [0.5, 0.5]]))]
    eng = Engine.from_families(fams)
    with pytest.raises(ImpossibleEvidenceError, match=r"1 of 2 evidence rows are impossible: they have "
                       r"probability zero under the current parameters, first rows 1;"):
        eng.expected_counts(np.array([[0, 1], [1, 0]]), ["a", "b"])


# ----------------------------------------------------------------------------- properties
@given(seed=SEEDS)
def test_posteriors_sum_to_one_and_prior_is_brute_force(seed):
    fams = random_dag_families(seed)
    oracle, eng = BruteForce(fams), Engine.from_families(fams)
    prior = eng.prior_marginals()
    assert_posteriors_close(prior, oracle.posterior({}))
    rng = np.random.default_rng(seed)
    ev = random_evidence(rng, oracle.states, 2)
    if oracle.probability(ev) > 0:
        for p in eng.posterior(ev).values():
            assert p.sum() == pytest.approx(1.0, abs=1e-12)
            assert (p >= 0).all()


@given(seed=SEEDS)
def test_d_separated_evidence_changes_nothing(seed):
    """If X is d-separated from Y given Z (pgmpy decides), P(X | Z, y) == P(X | Z)."""
    fams = random_dag_families(seed, n_nodes=8, max_card=3)
    model = to_pgmpy(fams)
    eng = Engine(model)
    oracle = BruteForce(fams)
    rng = np.random.default_rng(seed)
    names = oracle.variables
    checked = 0
    for _ in range(15):
        x, y = (str(v) for v in rng.choice(names, size=2, replace=False))
        z = random_evidence(rng, oracle.states, int(rng.integers(0, 3)), exclude=[x, y])
        if model.is_dconnected(x, y, observed=list(z)):
            continue
        yv = {y: str(rng.choice(oracle.states[y]))}
        if oracle.probability({**z, **yv}) == 0:
            continue
        checked += 1
        np.testing.assert_allclose(eng.posterior({**z, **yv}, [x])[x], eng.posterior(z, [x])[x],
                                   atol=1e-12)
        # the oracle agrees that the independence holds (pgmpy's d-separation is right)
        np.testing.assert_allclose(oracle.posterior({**z, **yv}, [x])[x],
                                   oracle.posterior(z, [x])[x], atol=1e-12)
    # and a d-separating set found by pgmpy blocks every path
    x, y = names[0], names[-1]
    if not model.has_edge(x, y) and not model.has_edge(y, x):
        sep = model.minimal_dseparator(x, y)
        if sep is not None:
            z = {s: oracle.states[s][0] for s in sep}
            if oracle.probability({**z, y: oracle.states[y][1]}) > 0:
                np.testing.assert_allclose(
                    eng.posterior({**z, y: oracle.states[y][1]}, [x])[x],
                    eng.posterior(z, [x])[x], atol=1e-12)


# ----------------------------------------------------------------------------- impossible evidence
def test_impossible_evidence_raises_and_nan():
    fams = random_dag_families(7, n_nodes=6, zero_prob=0.4)
    oracle, eng = BruteForce(fams), Engine.from_families(fams)
    rng = np.random.default_rng(0)
    impossible = None
    for _ in range(500):
        ev = random_evidence(rng, oracle.states, 3)
        if oracle.probability(ev) == 0:
            impossible = ev
            break
    assert impossible is not None, "the generator should make some evidence impossible"
    with pytest.raises(ImpossibleEvidenceError, match=r"impossible evidence"):
        eng.posterior(impossible)
    cols = list(impossible)
    good = {c: -1 for c in cols}
    codes = np.array([[good[c] for c in cols],
                      [oracle.states[c].index(impossible[c]) for c in cols]])
    with pytest.raises(ImpossibleEvidenceError, match=r"1 of 2 evidence rows .* first rows 1"):
        eng.batch(codes, cols)
    res = eng.batch(codes, cols, on_impossible="nan")
    assert res.log_evidence[1] == -np.inf and np.isfinite(res.log_evidence[0])
    assert all(np.isnan(m[1]).all() and np.isfinite(m[0]).all() for m in res.marginals.values())


def test_shipped_structural_zero_is_impossible(shipped_engine):
    ev = {"lumbar_radiculopathy": "absent", "upper_lumbar_root": "present"}
    with pytest.raises(ImpossibleEvidenceError, match=r"upper_lumbar_root=present"):
        shipped_engine.posterior(ev)
    assert shipped_engine.log_probability(ev) == -np.inf


# ----------------------------------------------------------------------------- input errors
def test_engine_input_errors(tiny_spec):
    eng = Engine(tiny_spec)
    with pytest.raises(UnknownNameError, match=r"unknown node 'lmp'.*did you mean 'limp'"):
        eng.posterior({"lmp": "present"})
    with pytest.raises(UnknownNameError, match=r"unknown state of limp 'presnt'.*'present'"):
        eng.posterior({"limp": "presnt"})
    with pytest.raises(UnknownNameError, match=r"unknown node 'gate'"):
        eng.posterior({}, targets=["gate"])
    with pytest.raises(EvidenceError, match=r"expected 3 non-negative weights"):
        eng.posterior({}, virtual_evidence={"pain_level": [1, 2]})
    with pytest.raises(EvidenceError, match=r"expected 2 non-negative weights"):
        eng.posterior({}, virtual_evidence={"limp": [1, -2]})
    with pytest.raises(EvidenceError, match=r"expected shape \(n_rows, 2\)"):
        eng.batch(np.zeros((3, 3), int), ["limp", "age"])
    with pytest.raises(EvidenceError, match=r"expected -1 \(missing\) or 0..2, found 0..3"):
        eng.batch(np.array([[0], [3]]), ["pain_level"])
    with pytest.raises(EvidenceError, match=r"each node once"):
        eng.batch(np.zeros((2, 2), int), ["limp", "limp"])
    with pytest.raises(EvidenceError, match=r"evidence codes: expected integers, found float64"):
        eng.batch(np.array([[0.0], [1.5]]), ["limp"])


def test_missing_cpd_message():
    from pgmpy.models import DiscreteBayesianNetwork

    m = DiscreteBayesianNetwork([("a", "b")])
    with pytest.raises(EvidenceError, match=r"found none for \['a', 'b'\]"):
        Engine(m)


def test_get_engine_caches_and_refreshes(shipped_model):
    from pgmpy.factors.discrete import TabularCPD

    model = shipped_model.copy()
    e1 = get_engine(model)
    assert get_engine(model) is e1
    old = model.get_cpds("knee_effusion")
    new = TabularCPD("knee_effusion", 2, [[0.5, 0.1], [0.5, 0.9]], evidence=["knee_pathology"],
                     evidence_card=[2], state_names=old.state_names)
    model.remove_cpds(old)
    model.add_cpds(new)
    e2 = get_engine(model)
    assert e2 is not e1
    assert e2.posterior({}, ["knee_effusion"])["knee_effusion"][1] != pytest.approx(
        e1.posterior({}, ["knee_effusion"])["knee_effusion"][1])
    from pgmpy.inference import VariableElimination

    ve = VariableElimination(model).query(["knee_effusion"], evidence={"hip_pain": "present"},
                                          show_progress=False)
    got = e2.posterior({"hip_pain": "present"}, ["knee_effusion"])["knee_effusion"]
    np.testing.assert_allclose(got, ve.values, atol=1e-12)
    assert get_engine(model, refresh=True) is not e2


# ----------------------------------------------------------------------------- pgmpy VE
def _ve_posteriors(ve, model, evidence, targets):
    res = ve.query(list(targets), evidence=evidence, joint=False, show_progress=False)
    out = {}
    for t, f in res.items():
        order = [str(s) for s in f.state_names[t]]
        out[t] = np.asarray(f.values, dtype=float), order
    return out


def _compare_with_ve(model, eng, n_sets, k, seed):
    from pgmpy.inference import VariableElimination

    ve = VariableElimination(model)
    rng = np.random.default_rng(seed)
    states = {v: list(eng.states[v]) for v in eng.variables}
    done = 0
    while done < n_sets:
        ev = random_evidence(rng, states, k)
        if eng.log_probability(ev) == -np.inf:
            continue
        targets = [v for v in eng.variables if v not in ev]
        targets = list(rng.choice(targets, size=min(8, len(targets)), replace=False))
        ours = eng.posterior(ev, targets)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            theirs = _ve_posteriors(ve, model, ev, targets)
        for t in targets:
            vals, order = theirs[t]
            mine = np.array([ours[t][eng.state_index[t][s]] for s in order])
            np.testing.assert_allclose(mine, vals, atol=1e-10, err_msg=f"{t} | {ev}")
        done += 1


def test_shipped_model_vs_pgmpy_ve(shipped_model, shipped_engine):
    _compare_with_ve(shipped_model, shipped_engine, n_sets=15, k=6, seed=1)
    _compare_with_ve(shipped_model, shipped_engine, n_sets=5, k=0, seed=2)


def test_alarm_vs_pgmpy_ve(alarm_model):
    _compare_with_ve(alarm_model, Engine(alarm_model), n_sets=12, k=8, seed=3)


def test_alarm_batch_vs_single(alarm_model):
    eng = Engine(alarm_model)
    rng = np.random.default_rng(5)
    cols = list(rng.choice(eng.variables, size=10, replace=False))
    codes = np.column_stack([rng.integers(-1, eng.card[eng.index[c]], 40) for c in cols])
    res = eng.batch(codes, cols, on_impossible="nan")
    for i in range(0, 40, 4):
        ev = {c: eng.states[c][k] for c, k in zip(cols, codes[i]) if k >= 0}
        if not np.isfinite(res.log_evidence[i]):
            assert eng.log_probability(ev) == -np.inf
            continue
        one = eng.posterior(ev)
        for v in eng.variables:
            np.testing.assert_allclose(res.marginals[v][i], one[v], atol=1e-12)


# ----------------------------------------------------------------------------- pyAgrum
def test_shipped_model_vs_pyagrum(shipped_model, shipped_engine, tmp_path):
    gum = pytest.importorskip("pyagrum")
    from kneehip_bn.model.readwrite import export_network

    path = export_network(shipped_model, tmp_path / "knee_hip.bifxml")
    bn = gum.loadBN(str(path))
    ie = gum.LazyPropagation(bn)
    rng = np.random.default_rng(11)
    states = shipped_engine.states
    done = tried = 0
    while done < 50:
        tried += 1
        ev = random_evidence(rng, states, int(rng.integers(0, 10)))
        if shipped_engine.log_probability(ev) == -np.inf:
            continue
        ie.eraseAllEvidence()
        ie.setEvidence(ev)
        ie.makeInference()
        ours = shipped_engine.posterior(ev)
        for v in shipped_engine.variables:
            labels = list(bn.variable(v).labels())
            theirs = np.asarray(ie.posterior(v).tolist())
            mine = np.array([ours[v][shipped_engine.state_index[v][s]] for s in labels])
            np.testing.assert_allclose(mine, theirs, atol=1e-9, err_msg=f"{v} | {ev}")
        done += 1
    assert tried < 200


# ----------------------------------------------------------------------------- large networks
def _chain(n_nodes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    fams = []
    for i in range(n_nodes):
        pa = [f"x{i - 1}"] if i else []
        t = rng.dirichlet(np.ones(2), size=2 if i else 1).T.reshape([2] + [2] * len(pa))
        fams.append((f"x{i}", ["a", "b"], pa, t))
    return fams


def test_more_than_100_variables_rescaling_is_exact():
    """Above 100 variables messages are rescaled against underflow: beliefs stay exact
    (a regression: they used to be off by the scale factor)."""
    from pgmpy.inference import VariableElimination

    fams = _chain(120)
    eng = Engine.from_families(fams)
    ev = {"x119": "a", "x60": "b", "x3": "a"}
    post = eng.posterior(ev)
    ve = VariableElimination(to_pgmpy(fams))
    for v in ["x0", "x30", "x59", "x90", "x118"]:
        np.testing.assert_allclose(post[v], ve.query([v], evidence=ev, show_progress=False).values,
                                   atol=1e-12, err_msg=v)
    for p in post.values():
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
    # the batch path agrees, and so do P(evidence) and the E-step
    cols = ["x119", "x60", "x3", "x10"]
    codes = np.array([[0, 1, 0, -1], [1, -1, -1, 0], [-1, -1, -1, -1]])
    res = eng.batch(codes, cols)
    for i, row in enumerate(codes):
        e = {c: eng.states[c][k] for c, k in zip(cols, row) if k >= 0}
        one = eng.posterior(e)
        for v in ("x0", "x61", "x119"):
            np.testing.assert_allclose(res.marginals[v][i], one[v], atol=1e-12)
        assert res.log_evidence[i] == pytest.approx(eng.log_probability(e), abs=1e-10)
    counts, _, _ = eng.expected_counts(codes, cols)
    want = sum(eng.posterior({c: eng.states[c][k] for c, k in zip(cols, row) if k >= 0})["x61"]
               for row in codes)
    np.testing.assert_allclose(counts["x61"].sum(axis=1), want, atol=1e-10)


@pytest.mark.parametrize("rows_per_chunk", [1, 3, 1000])
def test_batch_chunks_targets_and_forest(rows_per_chunk):
    """Chunking, target subsets and a disconnected network through the batch plan."""
    fams = [*random_dag_families(21, n_nodes=5),
            *[(f"y{v[1:]}", s, [f"y{p[1:]}" for p in ps], t)
              for v, s, ps, t in random_dag_families(22, n_nodes=4)]]
    eng, oracle = Engine.from_families(fams), BruteForce(fams)
    eng.chunk_bytes = eng.bytes_per_row * rows_per_chunk
    rng = np.random.default_rng(0)
    cols = ["x4", "y3", "x1", "y0"]
    codes = np.column_stack([rng.integers(-1, len(oracle.states[c]), 25) for c in cols])
    for targets in (None, ["x0"], ["y2", "x3"], []):
        res = eng.batch(codes, cols, targets=targets, on_impossible="nan")
        assert set(res.marginals) == set(oracle.variables if targets is None else targets)
        for i, row in enumerate(codes):
            ev = {c: oracle.states[c][k] for c, k in zip(cols, row) if k >= 0}
            if oracle.probability(ev) == 0:
                assert res.log_evidence[i] == -np.inf
                continue
            assert res.log_evidence[i] == pytest.approx(math.log(oracle.probability(ev)))
            want = oracle.posterior(ev)
            for t in res.marginals:
                np.testing.assert_allclose(res.marginals[t][i], want[t], atol=TOL)


def test_batch_bad_on_impossible_value(tiny_spec):
    with pytest.raises(ParameterError, match=r"on_impossible: expected one of 'raise', 'nan'"):
        Engine(tiny_spec).batch(np.zeros((1, 1), int), ["limp"], on_impossible="skip")


def test_with_tables_copies_do_not_share_tables(tiny_spec, tiny_oracle):
    """Engines from with_tables share the compiled plans but not the tables."""
    eng = Engine(tiny_spec)
    codes, cols = np.array([[1, -1], [0, 2]]), ["limp", "pain_level"]
    before = eng.batch(codes, cols).marginals["knee_oa"].copy()
    other = eng.with_tables({"knee_oa": np.array([[0.5, 0.5], [0.5, 0.5]])})
    after = other.batch(codes, cols).marginals["knee_oa"]
    assert not np.allclose(before, after)
    np.testing.assert_allclose(eng.batch(codes, cols).marginals["knee_oa"], before)
    fams = [(v, s, p, np.array([[0.5, 0.5], [0.5, 0.5]]) if v == "knee_oa" else t)
            for v, s, p, t in __import__("conftest").tiny_families()]
    want = BruteForce(fams).posterior({"limp": "present"})["knee_oa"]
    np.testing.assert_allclose(after[0], want, atol=TOL)


def test_get_engine_takes_a_name_or_a_path_and_sees_the_file_change(tmp_path):
    """A model given by name or path compiles once per file content; an edited file is a
    different model; anything else is a ParameterError, not an AttributeError."""
    from kneehip_bn import ParameterError, load_spec
    from kneehip_bn.model.yamlio import spec_to_yaml

    by_name = get_engine("knee_hip_basic")
    assert get_engine("knee_hip_basic") is by_name
    ref = Engine(load_spec("knee_hip_basic")).posterior({"knee_pain": "present"})
    got = by_name.posterior({"knee_pain": "present"})
    for v in ref:
        np.testing.assert_allclose(got[v], ref[v], atol=1e-14)
    spec = load_spec("knee_hip_basic")
    path = tmp_path / "m.yaml"
    path.write_text(spec_to_yaml(spec), encoding="utf-8")
    e1 = get_engine(path)
    assert get_engine(str(path)) is e1
    from kneehip_bn.model.edit import set_prior

    edited = set_prior(spec, "age_group", {"under_40": 0.5, "40_to_59": 0.3, "60_plus": 0.2})
    path.write_text(spec_to_yaml(edited), encoding="utf-8")
    e2 = get_engine(path)
    assert e2 is not e1
    assert e2.posterior({}, ["age_group"])["age_group"][0] == pytest.approx(0.5)
    with pytest.raises(ParameterError, match="found int"):
        get_engine(3)


def test_one_query_on_big_cliques_needs_no_scipy_and_batches_still_project_exactly():
    """``kneehip diagnose`` on the second edition (cliques past the dense-projection size)
    answers without importing scipy: the sparse projection is made on the first batch,
    and it sums exactly as a dense 0/1 matrix does."""
    import subprocess
    import sys

    from kneehip_bn.inference.single import Proj

    code = ("import sys, io, contextlib; from kneehip_bn.cli import main; "
            "f = io.StringIO()\n"
            "with contextlib.redirect_stdout(f): rc = main(['diagnose', '-e', 'knee_pain=present'])\n"
            "print(rc, 'scipy' in sys.modules, 'knee_osteoarthritis' in f.getvalue())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "False", "True"]
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 3000, 5000)
    p = Proj(idx, 3000)
    assert p.dense is None and p.sparse is None  # 5000 x 3000 is past the dense size
    x = rng.random((4, 5000))
    ref = np.zeros((4, 3000))
    np.add.at(ref, (slice(None), idx), x)
    np.testing.assert_allclose(p(x), ref, atol=1e-12)
    np.testing.assert_allclose(p(x[:1]), ref[:1], atol=1e-12)
    assert p.sparse is not None
