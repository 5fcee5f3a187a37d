"""Fast EM (issue 12): the shared-message E-step, SQUAREM, and data that contradict the model.

Oracles: brute-force enumeration of the joint (``oracle.BruteForce``) for the expected
family counts; the row-by-row junction tree pass (``method="rows"``, no shared messages)
on the shipped models; today's plain EM (``accelerate=False, estep="rows"``) for the fit;
closed-form Dirichlet updates typed in here for the relaxed and dropped fits on complete
data.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kneehip_bn import DataError, ImpossibleEvidenceError, KneeHipError, load_spec
from kneehip_bn.errors import ParameterError
from kneehip_bn.inference.engine import Engine
from kneehip_bn.io.counting import audit_counts
from kneehip_bn.learning.batch import batch_posteriors, write_batch_posteriors
from kneehip_bn.learning.fitter import PriorFitter
from kneehip_bn.learning.impossible import (
    RELAX_PROBABILITY,
    RELAX_PSEUDO_COUNT,
    find_impossible,
    screen_counts,
)
from kneehip_bn.learning.simulate import forward_sample, simulate_audit
from kneehip_bn.model.tables import cpd_array
from oracle import BruteForce, random_dag_families

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


@pytest.fixture(scope="module")
def basic():
    return load_spec("knee_hip_basic")


# ---------------------------------------------------------------- expected counts
def _brute_counts(oracle, codes, cols, w):
    out = {v: np.zeros([len(oracle.states[v])] + [len(oracle.states[p]) for p in oracle.parents[v]])
           for v in oracle.variables}
    ll = 0.0
    for row, wt in zip(codes, w):
        ev = {c: oracle.states[c][k] for c, k in zip(cols, row) if k >= 0}
        p = oracle.probability(ev)
        if p == 0:
            continue
        ll += wt * math.log(p)
        for v in oracle.variables:
            out[v] += wt * oracle.family_posterior(v, ev)
    return out, ll


@given(seed=SEEDS)
@settings(max_examples=25, deadline=None)
def test_shared_expected_counts_vs_brute_force(seed):
    """Random networks with structural zeros, random observed columns with blanks, random
    weights: every family's expected counts and the log-likelihood are exact."""
    fams = random_dag_families(seed, zero_prob=0.1)
    rng = np.random.default_rng(seed)
    oracle, eng = BruteForce(fams), Engine.from_families(fams)
    names = oracle.variables
    cols = [str(c) for c in rng.permutation(names)[: int(rng.integers(1, len(names) + 1))]]
    base = np.column_stack([rng.integers(0, len(oracle.states[c]), 30) for c in cols])
    codes = np.where(rng.random(base.shape) < 0.3, -1, base)
    w = rng.integers(1, 20, codes.shape[0]).astype(float)
    N, ll, lp = eng.expected_counts(codes, cols, weights=w, method="shared", on_impossible="nan")
    want, want_ll = _brute_counts(oracle, codes, cols, w)
    ok = np.isfinite(lp)
    for v in names:
        np.testing.assert_allclose(N[v], want[v], atol=1e-9 * w.sum(), rtol=0, err_msg=v)
    assert float(np.dot(w[ok], lp[ok])) == pytest.approx(want_ll, abs=1e-9 * w.sum())
    if ok.all():
        assert ll == pytest.approx(want_ll, abs=1e-9 * w.sum())
    else:
        assert ll == -math.inf
        with pytest.raises(ImpossibleEvidenceError, match="have probability zero"):
            eng.expected_counts(codes, cols, weights=w, method="shared")


@pytest.mark.parametrize("model", ["knee_hip_basic", "knee_hip"])
def test_shared_expected_counts_vs_row_pass_on_shipped_models(model):
    spec = load_spec(model)
    df = simulate_audit(6000, seed=4, missing=0.15, model=spec, hidden=("mechanism", "origin"))
    c = audit_counts(df, spec)
    eng = Engine(spec)
    assert c.patterns.shape[0] >= 4096  # "auto" takes the shared pass here
    n1, ll1, lp1 = eng.expected_counts(c.patterns, c.columns, weights=c.counts, method="rows")
    n2, ll2, lp2 = eng.expected_counts(c.patterns, c.columns, weights=c.counts, method="auto")
    np.testing.assert_allclose(lp2, lp1, atol=1e-10, rtol=0)
    assert ll2 == pytest.approx(ll1, rel=1e-13)
    for v in n1:
        np.testing.assert_allclose(n2[v], n1[v], atol=1e-8, rtol=0, err_msg=v)
        assert n2[v].sum() == pytest.approx(6000, rel=1e-12)


def test_expected_counts_bad_method(basic):
    with pytest.raises(Exception, match="method: expected 'auto', 'shared' or 'rows', found 'x'"):
        Engine(basic).expected_counts(np.zeros((1, 1), int), ["knee_pain"], method="x")


# ---------------------------------------------------------------- SQUAREM
@pytest.fixture(scope="module")
def latent_audit(basic):
    return simulate_audit(1500, seed=8, missing=0.1, model=basic, hidden=("mechanism", "origin"))


def _tables(spec):
    return {n: cpd_array(spec, spec.nodes[n]) for n in spec.nodes}


def _max_diff(a, b):
    ta, tb = _tables(a.spec_), _tables(b.spec_)
    return max(float(np.abs(ta[n] - tb[n]).max()) for n in ta)


def test_squarem_matches_plain_em_and_never_decreases(basic, latent_audit):
    """Plain EM and SQUAREM reach the same optimum (tol 1e-9); SQUAREM in under half the
    iterations, its log-posterior never decreasing and never below plain EM's."""
    kw = dict(progress=False, holdout=0, max_iter=3000, tol=1e-9)
    old = PriorFitter(basic, accelerate=False, **kw).fit(latent_audit)
    new = PriorFitter(basic, **kw).fit(latent_audit)
    for f in (old, new):
        assert f.converged_
        assert f.history_["log_posterior"].is_monotonic_increasing
    assert set(new.history_["step"]) == {"start", "em", "squarem"}
    assert set(old.history_["step"]) == {"start", "em"}
    assert new.n_iter_ < old.n_iter_ / 2
    lp_old, lp_new = old.history_["log_posterior"].iloc[-1], new.history_["log_posterior"].iloc[-1]
    assert lp_new >= lp_old - 1e-9 * abs(lp_old)
    assert lp_new == pytest.approx(lp_old, rel=1e-7)
    # latent origins leave flat directions: both stop within EM's tolerance of the optimum
    assert _max_diff(old, new) < 5e-3


def test_squarem_at_default_tolerance_matches_todays_em(basic, latent_audit):
    """Today's path (plain EM, row-by-row E-step, tol 1e-6) against the default fit."""
    kw = dict(progress=False, holdout=0)
    old = PriorFitter(basic, accelerate=False, estep="rows", **kw).fit(latent_audit)
    new = PriorFitter(basic, **kw).fit(latent_audit)
    lp_old, lp_new = old.history_["log_posterior"].iloc[-1], new.history_["log_posterior"].iloc[-1]
    assert lp_new >= lp_old - 1e-6 * abs(lp_old)
    assert lp_new == pytest.approx(lp_old, rel=1e-5)
    assert _max_diff(old, new) < 0.05
    assert new.spec_.nodes["knee_pain"].noisy_or.leak.fitted["method"] == \
        "em-dirichlet+noisy-or+squarem"
    assert old.spec_.nodes["knee_pain"].noisy_or.leak.fitted["method"] == "em-dirichlet+noisy-or"


def test_plain_em_same_numbers_either_e_step(basic):
    df = simulate_audit(1500, seed=9, missing=0.1, model=basic, hidden=("mechanism",))
    kw = dict(progress=False, holdout=0, accelerate=False, tol=1e-8)
    a = PriorFitter(basic, estep="rows", **kw).fit(df)
    b = PriorFitter(basic, estep="shared", **kw).fit(df)
    assert a.n_iter_ == b.n_iter_ > 5
    # the two E-steps round differently (1e-12 relative per step), compounding over steps
    np.testing.assert_allclose(a.history_["log_posterior"], b.history_["log_posterior"],
                               rtol=1e-10)
    assert _max_diff(a, b) < 1e-6


def test_em_progress_bar_shows_iteration_log_posterior_and_change(basic, capsys):
    df = simulate_audit(300, seed=2, missing=0.1, model=basic)
    PriorFitter(basic, holdout=0, max_iter=3, progress=True).fit(df)
    err = capsys.readouterr().err
    assert "fitting (EM)" in err and "log_posterior=" in err and "change=" in err


@pytest.mark.parametrize("kw, match", [
    ({"estep": "fast"}, "estep: expected 'auto', 'shared' or 'rows', found 'fast'"),
    ({"accelerate": "yes"}, "accelerate: expected True or False, found 'yes'"),
    ({"on_impossible": "skip"}, "on_impossible: expected one of 'error', 'drop', 'relax', "
                                "found 'skip'"),
])
def test_bad_fit_options(basic, kw, match):
    with pytest.raises(ParameterError, match=match):
        PriorFitter(basic, progress=False, **kw).fit(pd.DataFrame({"knee_pain": ["present"]}))


# ---------------------------------------------------------------- impossible rows
def _contradicting(spec, n=200, seed=1, bad_rows=(3, 7, 11)):
    """Complete rows; ``bad_rows`` have a root finding without its origin (a structural zero
    of the five-origin model: upper_lumbar_root is absent without lumbar_radiculopathy)."""
    df = forward_sample(n, seed=seed, model=spec)
    for r in bad_rows:
        df.loc[r, "lumbar_radiculopathy"] = "absent"
        df.loc[r, "upper_lumbar_root"] = "present"
    return df


def test_error_names_table_rows_and_flags(basic):
    df = _contradicting(basic)
    with pytest.raises(DataError) as exc:
        PriorFitter(basic, progress=False, holdout=0).fit(df)
    assert str(exc.value) == (
        "3 audit row(s) in 3 distinct pattern(s) are impossible under the model (probability "
        "zero): they contradict a structural zero P(upper_lumbar_root=present | "
        "lumbar_radiculopathy=absent) = 0 (3 rows); first rows 3, 7, 11 (0-based): expected "
        "rows the model allows; check those rows, or rerun with --on-impossible drop (fit the "
        "other rows) or --on-impossible relax (each contradicted zero gets a pseudo-count of "
        "0.5); in Python on_impossible='drop' or 'relax'")


def test_find_impossible_entries(basic):
    df = _contradicting(basic)
    bad = find_impossible(audit_counts(df, basic), basic)
    assert bad is not None and bad.rows == 3
    assert [e.to_dict() for e in bad.entries] == [
        {"node": "upper_lumbar_root", "given": {"lumbar_radiculopathy": "absent"},
         "state": "present", "rows": 3.0}]


def test_drop_equals_fit_without_the_rows(basic):
    df = _contradicting(basic)
    kw = dict(progress=False, holdout=0, strength=20)
    dropped = PriorFitter(basic, on_impossible="drop", dataset_name="d", **kw).fit(df)
    clean = PriorFitter(basic, dataset_name="d", **kw).fit(df.drop(index=[3, 7, 11]))
    a, b = _tables(dropped.spec_), _tables(clean.spec_)
    for n in a:
        np.testing.assert_array_equal(a[n], b[n], err_msg=n)
    leak = dropped.spec_.nodes["knee_pain"].noisy_or.leak
    assert leak.fitted["dropped_rows"] == 3 and leak.fitted["rows"] == 197
    assert dropped.report_.n_rows == 197
    assert any(n.startswith("on_impossible='drop': 3 row(s) in 3 pattern(s)")
               for n in dropped.report_.notes)


def test_relax_gives_the_zero_a_pseudo_count(basic):
    """Complete data: the relaxed row is (counts + strength * expert + 0.5) / total,
    in closed form."""
    df = _contradicting(basic)
    s = 20.0
    f = PriorFitter(basic, on_impossible="relax", progress=False, holdout=0, strength=s,
                    noisy_or="tabular").fit(df)
    node = f.spec_.nodes["upper_lumbar_root"]
    row = next(r for r in node.table if r.given == {"lumbar_radiculopathy": "absent"})
    mask = df["lumbar_radiculopathy"] == "absent"
    n_present = int((mask & (df["upper_lumbar_root"] == "present")).sum())
    n_absent = int((mask & (df["upper_lumbar_root"] == "absent")).sum())
    assert n_present == 3
    expert = cpd_array(basic, basic.nodes["upper_lumbar_root"])
    k = basic.nodes["lumbar_radiculopathy"].states.index("absent")
    ia = basic.nodes["upper_lumbar_root"].states.index("absent")
    a_present = n_present + RELAX_PSEUDO_COUNT  # expert zero: s * 0 = 0
    a_absent = n_absent + s * expert[ia, k]
    assert row.probabilities["present"] == pytest.approx(a_present / (a_present + a_absent),
                                                         rel=1e-12)
    assert row.fitted["relaxed"] == [{"given": {"lumbar_radiculopathy": "absent"},
                                      "state": "present", "pseudo_count": RELAX_PSEUDO_COUNT,
                                      "rows": 3}]
    other = next(r for r in node.table if r.given != {"lumbar_radiculopathy": "absent"})
    assert "relaxed" not in other.fitted
    assert any("on_impossible='relax'" in n for n in f.report_.notes)


def test_relax_with_blanks_runs_em_and_moves_off_zero(basic):
    df = simulate_audit(800, seed=5, missing=0.1, model=basic, hidden=("mechanism",))
    for r in (1, 2):
        df.loc[r, "lumbar_radiculopathy"] = "absent"
        df.loc[r, "upper_lumbar_root"] = "present"
    f = PriorFitter(basic, on_impossible="relax", progress=False, holdout=0).fit(df)
    assert f.history_["log_posterior"].is_monotonic_increasing
    row = next(r for r in f.spec_.nodes["upper_lumbar_root"].table
               if r.given == {"lumbar_radiculopathy": "absent"})
    assert row.probabilities["present"] > 0


def test_relax_refuses_frozen_table(basic):
    with pytest.raises(KneeHipError, match=r"contradicted zeros are in frozen tables "
                                           r"\['upper_lumbar_root'\]"):
        PriorFitter(basic, on_impossible="relax", freeze=["upper_lumbar_root"],
                    progress=False, holdout=0).fit(_contradicting(basic))


def test_screen_counts_modes(basic):
    c = audit_counts(_contradicting(basic), basic)
    with pytest.raises(DataError, match=r"^3 counted row\(s\) in 3 distinct pattern"):
        screen_counts(c, basic, "error")
    kept, bad = screen_counts(c, basic, "drop")
    assert kept.n_rows == 197 and kept.counts.sum() == 197 and bad.rows == 3
    assert find_impossible(kept, basic) is None
    same, bad2 = screen_counts(c, basic, "relax")
    assert same is c and bad2.rows == 3


def _batch_frame():
    return pd.DataFrame({"femoral_nerve_stretch": ["positive", None, "negative", None],
                         "upper_lumbar_root": ["absent", "present", "present", "present"],
                         "lumbar_radiculopathy": ["absent", "absent", "present", "absent"]})


def test_batch_drop_blanks_and_status(basic):
    df = _batch_frame()
    out = batch_posteriors(df, basic, on_impossible="drop")
    assert list(out["status"]) == ["ok", "impossible", "ok", "impossible"]
    assert out.loc[[1, 3]].drop(columns="status").isna().all().all()
    ref = batch_posteriors(df.loc[[0, 2]], basic)
    pd.testing.assert_frame_equal(out.loc[[0, 2]].drop(columns="status"), ref)


def test_batch_relax_matches_brute_force_on_relaxed_model(basic):
    df = _batch_frame()
    out = batch_posteriors(df, basic, on_impossible="relax")
    assert list(out["status"]) == ["ok", "relaxed", "ok", "relaxed"]
    eng = Engine(basic)
    t = cpd_array(basic, basic.nodes["upper_lumbar_root"]).copy()
    k = basic.nodes["lumbar_radiculopathy"].states.index("absent")
    ip = basic.nodes["upper_lumbar_root"].states.index("present")
    t[ip, k] = RELAX_PROBABILITY
    t[:, k] /= t[:, k].sum()
    fams = []
    for name in eng.variables:
        n = basic.nodes[name]
        table = t if name == "upper_lumbar_root" else cpd_array(basic, n)
        fams.append((name, n.states, n.parents, table))
    # brute force over the network cut to the ancestors of the evidence and targets
    from kneehip_bn.inference.queries import node_groups

    origins = [n for n, g in node_groups(basic).items() if g == "origin"]
    need = set(origins) | set(df.columns)
    stack = list(need)
    while stack:
        for p in basic.nodes[stack.pop()].parents:
            if p not in need:
                need.add(p)
                stack.append(p)
    oracle = BruteForce([f for f in fams if f[0] in need])
    for r in (1, 3):
        ev = {c: v for c, v in df.loc[r].items() if isinstance(v, str)}
        post = oracle.posterior(ev, origins)
        for o in origins:
            on = basic.nodes[o].states.index("present")
            assert out.loc[r, o] == pytest.approx(post[o][on], abs=1e-12), (r, o)


def test_write_batch_drop_writes_blank_cells_and_status(basic, tmp_path):
    src = tmp_path / "a.csv"
    _batch_frame().to_csv(src, index=False)
    path, n = write_batch_posteriors(src, tmp_path / "p.csv", basic, on_impossible="drop")
    lines = path.read_text().splitlines()
    assert n == 4 and lines[0].endswith(",status")
    assert lines[2] == ",,,,,impossible" and lines[4] == ",,,,,impossible"
    got = pd.read_csv(path)
    ref = batch_posteriors(_batch_frame(), basic, on_impossible="drop")
    np.testing.assert_array_equal(got.drop(columns="status").to_numpy(),
                                  ref.drop(columns="status").to_numpy())
    with pytest.raises(ImpossibleEvidenceError, match=r"first rows 1, 3 \(0-based\)"):
        write_batch_posteriors(src, tmp_path / "q.csv", basic)


def test_complete_rows_on_a_structural_zero_name_the_zero_and_the_ways_forward(shipped_spec):
    """Fully observed rows go through the closed-form fit: one landing on a structural zero
    is refused with the same wording as the EM path (the zero, its rows, the flags)."""
    from kneehip_bn import DataError
    from kneehip_bn.io.counting import audit_counts
    from kneehip_bn.learning.em import run_em
    from kneehip_bn.learning.params import build_families
    from kneehip_bn.learning.simulate import simulate_audit

    df = simulate_audit(300, seed=4, model=shipped_spec, missing=0.0, hidden=())
    df.loc[[5, 9], "lumbar_radiculopathy"] = "absent"
    df.loc[[5, 9], "upper_lumbar_root"] = "present"
    counts = audit_counts(df, shipped_spec)
    assert (counts.patterns >= 0).all() and set(counts.columns) == set(shipped_spec.nodes)
    fams = build_families(shipped_spec, 50.0, {}, (), "auto")
    with pytest.raises(DataError, match=(
            r"^2 audit row\(s\) in 2 distinct pattern\(s\) are impossible .*"
            r"P\(upper_lumbar_root=present \| lumbar_radiculopathy=absent\) = 0 \(2 rows\).*"
            r"--on-impossible drop .*--on-impossible relax")):
        run_em(shipped_spec, fams, counts, max_iter=5, tol=1e-8, progress=False)
