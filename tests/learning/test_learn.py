"""Tests of kneehip_bn.learning.em: Dirichlet update, EM, noisy-OR fitting, shared counts,
fitted model files and batch posteriors.

Oracles: pgmpy's DiscreteBayesianEstimator (dirichlet pseudo_counts) on complete data,
closed-form Dirichlet posteriors typed in here, scipy's optimiser for the noisy-OR
M-step, pgmpy VariableElimination for posteriors and (chain rule) for log-likelihoods,
and the known truth of simulated data (parameter recovery).
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kneehip_bn import (
    DataError,
    ImpossibleEvidenceError,
    NotFittedError,
    UnknownNameError,
    load_spec,
)
from kneehip_bn.errors import ParameterError
from kneehip_bn.inference.engine import Engine
from kneehip_bn.io.counting import audit_counts
from kneehip_bn.io.counts_file import read_counts
from kneehip_bn.learning.batch import batch_posteriors, write_batch_posteriors
from kneehip_bn.learning.fitter import PriorFitter, fit_priors
from kneehip_bn.learning.noisy_or import W_MAX, fit_noisy_or, nor_objective
from kneehip_bn.learning.simulate import forward_sample, perturb_model, simulate_audit
from kneehip_bn.model.tables import cpd_array

warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture(scope="module")
def spec():
    return load_spec("knee_hip_basic")


@pytest.fixture(scope="module")
def incomplete(spec):
    """500 rows, 10% blanks, mechanisms and origins unobserved, a working diagnosis."""
    return simulate_audit(500, seed=21, missing=0.1, diagnosis_noise=0.1, model=spec,
                          hidden=("mechanism", "origin"))


@pytest.fixture(scope="module")
def em_fit(spec, incomplete):
    return PriorFitter(spec, progress=False, holdout=0, max_iter=15, tol=1e-12,
                       dataset_name="sim500").fit(incomplete)


def _pseudo_counts_pgmpy_order(spec, name, strength):
    node = spec.nodes[name]
    arr = cpd_array(spec, node) * strength
    order = sorted(node.parents)  # pgmpy's learned CPDs order parents alphabetically
    perm = [0] + [1 + node.parents.index(p) for p in order]
    return arr.transpose(perm).reshape(arr.shape[0], -1)


def _max_diff_by_state(cpd_a, cpd_b):
    v = cpd_a.variable
    pars = cpd_a.variables[1:]
    worst = 0.0
    for combo in itertools.product(*[cpd_a.state_names[p] for p in pars]):
        for s in cpd_a.state_names[v]:
            kw = {v: s, **dict(zip(pars, combo))}
            worst = max(worst, abs(cpd_a.get_value(**kw) - cpd_b.get_value(**kw)))
    return worst


# ------------------------------------------------------------------ complete data vs pgmpy
@pytest.mark.parametrize("which", ["tiny", "shipped"])
def test_complete_data_matches_pgmpy_bayesian_estimator(which, spec, tiny_spec):
    from pgmpy.parameter_estimator import DiscreteBayesianEstimator

    from kneehip_bn import build_network

    s = tiny_spec if which == "tiny" else spec
    df = forward_sample(3000 if which == "shipped" else 800, seed=4, model=s)
    fit = PriorFitter(s, noisy_or="tabular", progress=False).fit(df)
    assert fit.report_.method == "bayes-dirichlet" and fit.converged_
    pc = {n: _pseudo_counts_pgmpy_order(s, n, s.strength_of(n)) for n in s.nodes}
    est = DiscreteBayesianEstimator(prior_type="dirichlet", pseudo_counts=pc,
                                    state_names=s.state_names())
    ref = build_network(s).copy()
    ref.fit(df.astype(str), estimator=est)
    for cpd in ref.get_cpds():
        assert _max_diff_by_state(cpd, fit.model_.get_cpds(cpd.variable)) < 1e-9, cpd.variable


def test_keep_noisy_or_full_tables_still_match_pgmpy(tiny_spec):
    from pgmpy.parameter_estimator import DiscreteBayesianEstimator

    from kneehip_bn import build_network

    df = forward_sample(600, seed=5, model=tiny_spec)
    fit = PriorFitter(tiny_spec, progress=False).fit(df)
    assert fit.spec_.nodes["gait"].noisy_or is not None  # stayed noisy-OR
    pc = {n: _pseudo_counts_pgmpy_order(tiny_spec, n, tiny_spec.strength_of(n))
          for n in tiny_spec.nodes}
    ref = build_network(tiny_spec).copy()
    ref.fit(df.astype(str), estimator=DiscreteBayesianEstimator(
        prior_type="dirichlet", pseudo_counts=pc, state_names=tiny_spec.state_names()))
    for n in ("age", "knee_oa", "hip_oa", "limp", "pain_level"):
        assert _max_diff_by_state(ref.get_cpds(n), fit.model_.get_cpds(n)) < 1e-9


def test_strength_global_and_per_table(tiny_spec):
    df = forward_sample(400, seed=6, model=tiny_spec)
    counts = df["age"].value_counts().reindex(["young", "old"]).to_numpy(float)
    expert = np.array([0.6, 0.4])
    for kwargs, s in (({}, 10.0), ({"strength": 0}, 0.0), ({"strength": 250}, 250.0),
                      ({"strength": 250, "strengths": {"age": 3}}, 3.0)):
        fit = PriorFitter(tiny_spec, progress=False, **kwargs).fit(df)
        want = (counts + s * expert) / (counts.sum() + s)
        got = [fit.spec_.nodes["age"].table[0].probabilities[k] for k in ("young", "old")]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        assert fit.spec_.nodes["age"].table[0].fitted["strength"] == s
    # hip_oa has its own strength 5 in the file
    fit = PriorFitter(tiny_spec, progress=False).fit(df)
    old = df[df["age"] == "old"]["hip_oa"].value_counts().reindex(["absent", "present"]).to_numpy(float)
    want = (old + 5 * np.array([0.8, 0.2])) / (old.sum() + 5)
    row = next(r for r in fit.spec_.nodes["hip_oa"].table if r.given["age"] == "old")
    np.testing.assert_allclose([row.probabilities["absent"], row.probabilities["present"]], want,
                               atol=1e-12)


def test_frozen_tables_keep_expert_values_and_source(tiny_spec):
    df = forward_sample(300, seed=7, model=tiny_spec)
    fit = PriorFitter(tiny_spec, freeze=["knee_oa", "gait"], progress=False).fit(df)
    assert fit.spec_.nodes["knee_oa"].table == tiny_spec.nodes["knee_oa"].table
    assert fit.spec_.nodes["gait"].noisy_or == tiny_spec.nodes["gait"].noisy_or
    assert fit.spec_.nodes["limp"].table[0].source == "fitted"


# ------------------------------------------------------------------ noisy-OR M-step
def test_noisy_or_m_step_matches_scipy_optimiser():
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    configs = np.array(list(itertools.product([0, 1], repeat=3)))
    D = np.column_stack([np.ones(len(configs)), configs]).astype(float)
    for trial in range(4):
        p_true = rng.uniform(0.05, 0.7, 4)
        off = np.exp(-(D @ -np.log1p(-p_true)))
        n = rng.integers(5, 200, len(configs))
        a_off = rng.binomial(n, off).astype(float) + rng.uniform(0, 3, len(configs))
        a_on = n - a_off + 3.0
        a_on = np.maximum(a_on, 0.0)
        w = fit_noisy_or(D, a_on, a_off, np.full(4, 0.2))
        res = minimize(lambda x, a=a_on, b=a_off: -nor_objective(D, a, b, x), np.full(4, 0.2),
                       method="L-BFGS-B", bounds=[(1e-9, W_MAX)] * 4,
                       options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 5000})
        assert nor_objective(D, a_on, a_off, w) >= -res.fun - 1e-7, trial
        np.testing.assert_allclose(-np.expm1(-w), -np.expm1(-res.x), atol=2e-4)


def test_noisy_or_leak_and_links_fitted_on_complete_data(tiny_spec):
    true = perturb_model(tiny_spec, scale=0.8, seed=2)
    df = forward_sample(30_000, seed=8, model=true)
    fit = PriorFitter(tiny_spec, strength=1, progress=False).fit(df)
    got = fit.spec_.nodes["gait"].noisy_or
    want = true.nodes["gait"].noisy_or
    assert abs(got.leak.p - want.leak.p) < 0.02
    for a, b in zip(got.links, want.links):
        assert abs(a.p - b.p) < 0.03
    assert got.leak.source == "fitted" and got.leak.fitted["expert"] == 0.1


# ------------------------------------------------------------------ EM
def test_em_never_lowers_the_objective(em_fit):
    h = em_fit.history_
    assert len(h) == 16 and not em_fit.converged_  # tol 1e-12: ran all 15 iterations
    lp = h["log_posterior"].to_numpy()
    assert np.all(np.diff(lp) >= -1e-9 * np.abs(lp[:-1]))
    assert lp[-1] > lp[0]
    assert np.allclose(h["log_posterior"], h["loglik"] + h["log_prior"])


def test_em_loglik_matches_pgmpy_chain_rule(em_fit, incomplete, spec):
    """The last log-likelihood in the history is that of the fitted model: check a few
    rows with pgmpy VariableElimination (P(e) by the chain rule)."""
    from pgmpy.inference import VariableElimination

    from kneehip_bn.io.encode import encode_audit

    enc = encode_audit(incomplete, spec)
    eng = Engine(em_fit.spec_)
    res = eng.batch(enc.codes, enc.columns, targets=[])
    assert res.log_evidence.sum() == pytest.approx(em_fit.history_["loglik"].iloc[-1], rel=1e-9)
    ve = VariableElimination(em_fit.model_)
    for i in (0, 7, 123):
        ev = {c: spec.nodes[c].states[int(x)] for c, x in zip(enc.columns, enc.codes[i]) if x >= 0}
        items = list(ev.items())
        logp = 0.0
        for k, (var, state) in enumerate(items):
            q = ve.query([var], evidence=dict(items[:k]), show_progress=False)
            logp += np.log(q.get_value(**{var: state}))
        assert logp == pytest.approx(res.log_evidence[i], abs=1e-9)


def test_structural_zero_survives_em(em_fit):
    rows = em_fit.spec_.nodes["upper_lumbar_root"].table
    zero = next(r for r in rows if r.given["lumbar_radiculopathy"] == "absent")
    assert zero.probabilities == {"absent": 1.0, "present": 0.0}
    assert zero.source == "fitted"  # fitted, and still exactly zero


def test_impossible_rows_are_named(tiny_spec, spec):
    df = forward_sample(50, seed=1, model=spec)
    df.loc[3, "lumbar_radiculopathy"] = "absent"
    df.loc[3, "upper_lumbar_root"] = "present"
    with pytest.raises(DataError) as exc:
        PriorFitter(spec, progress=False).fit(df)
    assert str(exc.value) == (
        "1 audit row(s) in 1 distinct pattern(s) are impossible under the model (probability "
        "zero): they contradict a structural zero P(upper_lumbar_root=present | "
        "lumbar_radiculopathy=absent) = 0 (1 row); first rows 3 (0-based): expected rows the "
        "model allows; check those rows, or rerun with --on-impossible drop (fit the other "
        "rows) or --on-impossible relax (each contradicted zero gets a pseudo-count of 0.5); "
        "in Python on_impossible='drop' or 'relax'")


def test_fitted_spec_provenance_and_files(em_fit, spec, tmp_path):
    s = em_fit.spec_
    for _name, loc, e in s.entries():
        assert e.source == "fitted", loc
        assert set(e.fitted) == {"expert", "expert_source", "dataset", "rows", "strength", "date",
                                 "method"}
        assert e.fitted["dataset"] == "sim500" and e.fitted["rows"] == 500
    leak = s.nodes["knee_pain"].noisy_or.leak
    assert leak.fitted["expert"] == spec.nodes["knee_pain"].noisy_or.leak.p
    assert leak.fitted["expert_source"] == spec.nodes["knee_pain"].noisy_or.leak.source
    assert leak.fitted["method"] == "em-dirichlet+noisy-or+squarem"
    out = em_fit.save(tmp_path / "fitted.yaml")
    back = load_spec(out)
    for n in s.nodes:
        np.testing.assert_array_equal(cpd_array(back, n), cpd_array(s, n))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        em_fit.save(out)
    em_fit.save(out, overwrite=True)
    with pytest.raises(FileExistsError, match="is the input model"):
        em_fit.save(spec.path)
    assert type(em_fit.model_).__name__ == "DiscreteBayesianNetwork" and em_fit.model_.check_model()


def test_tabular_noisy_or_becomes_full_table(tiny_spec):
    df = simulate_audit(300, seed=3, missing=0.1, model=tiny_spec)  # gait hidden
    fit = PriorFitter(tiny_spec, noisy_or="tabular", progress=False, max_iter=5).fit(df)
    node = fit.spec_.nodes["gait"]
    assert node.noisy_or is None and len(node.table) == 4
    r = node.table[0]
    assert r.source == "fitted" and r.fitted["expert_source"].startswith("noisy-OR (")
    assert r.fitted["expert"]["present"] == pytest.approx(0.1)


def test_merged_counts_equal_pooled_rows(spec, incomplete, tmp_path):
    a, b = incomplete.iloc[:230], incomplete.iloc[230:]
    audit_counts(a, spec, dataset="clinic A").save(tmp_path / "a.json")
    audit_counts(b, spec, dataset="clinic B").save(tmp_path / "b.csv")
    kw = dict(progress=False, holdout=0, max_iter=8, tol=1e-12)
    pooled = PriorFitter(spec, **kw).fit(incomplete)
    merged = PriorFitter(spec, **kw).fit([tmp_path / "a.json", tmp_path / "b.csv"])
    np.testing.assert_array_equal(merged.history_["loglik"], pooled.history_["loglik"])
    for n in spec.nodes:
        np.testing.assert_array_equal(cpd_array(merged.spec_, n), cpd_array(pooled.spec_, n))
    assert merged.counts_.n_rows == 500
    assert merged.report_.dataset == "clinic A + clinic B"  # CSV counts now carry their metadata


def test_streamed_parquet_equals_dataframe(spec, incomplete, tmp_path):
    incomplete.to_parquet(tmp_path / "a.parquet")
    kw = dict(progress=False, holdout=0, max_iter=4, tol=1e-12)
    whole = PriorFitter(spec, **kw).fit(incomplete)
    streamed = PriorFitter(spec, chunksize=64, **kw).fit(tmp_path / "a.parquet")
    for n in spec.nodes:
        np.testing.assert_array_equal(cpd_array(streamed.spec_, n), cpd_array(whole.spec_, n))


def test_sqlite_and_mapping_fit(spec, tmp_path):
    import sqlalchemy as sa

    from kneehip_bn.io.mapping import recode_to_audit

    mapping = Path(__file__).resolve().parents[2] / "data" / "example_mapping.yaml"
    df = simulate_audit(200, seed=9, missing=0.1, model=spec, hidden=("mechanism", "origin"))
    coded = recode_to_audit(df, mapping)
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    coded.astype(object).to_sql("audit", eng, index=False)
    eng.dispose()
    kw = dict(progress=False, holdout=0, max_iter=3, tol=1e-12)
    direct = PriorFitter(spec, **kw).fit(df)
    via = PriorFitter(spec, table="audit", mapping=mapping, **kw).fit(
        f"sqlite:///{tmp_path / 'a.db'}")
    for n in spec.nodes:
        np.testing.assert_allclose(cpd_array(via.spec_, n), cpd_array(direct.spec_, n), atol=1e-12)
    assert via.report_.dataset == "Example clinic audit (SYNTHETIC, 500 rows)"


# ------------------------------------------------------------------ parameter recovery
def _weighted_kl(true, fitted, sample):
    out = {}
    for name, node in true.nodes.items():
        P = cpd_array(true, node)
        Q = cpd_array(fitted, fitted.nodes[name])
        K = P.shape[0]
        P2, Q2 = P.reshape(K, -1), Q.reshape(K, -1)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(P2 > 0, P2 * np.log(P2 / Q2), 0.0).sum(axis=0)
        if node.parents:
            key = np.zeros(len(sample), dtype=np.int64)
            for p in node.parents:
                key = key * len(true.nodes[p].states) + sample[p].cat.codes.to_numpy()
            w = np.bincount(key, minlength=kl.size).astype(float)
            w /= w.sum()
        else:
            w = np.ones(1)
        out[name] = float(w @ kl)
    return out


def test_parameter_recovery_complete_data(spec):
    true = perturb_model(spec, scale=0.6, seed=3)
    ref = forward_sample(100_000, seed=99, model=true)
    kls = []
    for n in (300, 3000, 30_000):
        df = forward_sample(n, seed=n, model=true)
        kls.append(_weighted_kl(true, PriorFitter(spec, progress=False).fit(df).spec_, ref))
    for node in spec.nodes:  # every table gets closer to the truth as N grows
        assert kls[2][node] < kls[0][node], node
    assert sum(kls[2].values()) < 0.1 * sum(kls[0].values())
    assert sum(kls[1].values()) < sum(kls[0].values())


@pytest.mark.slow
def test_parameter_recovery_with_missing_values_and_latent_mechanisms(spec):
    true = perturb_model(spec, scale=0.6, seed=3)
    ref = forward_sample(100_000, seed=99, model=true)
    kls = []
    for n in (1000, 8000):
        df = simulate_audit(n, seed=n, missing=0.1, model=true)  # mechanisms hidden
        fit = PriorFitter(spec, strength=5, progress=False, holdout=0, max_iter=40,
                          tol=1e-5).fit(df)
        kls.append(_weighted_kl(true, fit.spec_, ref))
    assert sum(kls[1].values()) < 0.7 * sum(kls[0].values())
    # tables whose family is observed (with blanks) improve one by one
    for node in ("age_group", "activity_level", *spec.group("origin")):
        assert kls[1][node] < kls[0][node], node


def test_em_recovers_latent_mechanism_on_tiny_network(tiny_spec):
    """gait is never observed; with much data its noisy-OR still moves towards the truth."""
    true = perturb_model(tiny_spec, scale=0.8, seed=5)
    ref = forward_sample(50_000, seed=1, model=true)
    kl = []
    for n in (300, 20_000):
        df = simulate_audit(n, seed=n, missing=0.05, model=true)
        fit = PriorFitter(tiny_spec, strength=2, progress=False, holdout=0, tol=1e-9,
                          max_iter=300).fit(df)
        kl.append(_weighted_kl(true, fit.spec_, ref))
    assert sum(kl[1].values()) < 0.5 * sum(kl[0].values())


# ------------------------------------------------------------------ estimator API
def test_not_fitted_errors(tmp_path, incomplete):
    f = PriorFitter(progress=False)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        f.save(tmp_path / "x.yaml")
    with pytest.raises(NotFittedError):
        f.score(incomplete)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"strength": -1}, ParameterError, "strength: expected a number >= 0, found -1"),
    ({"strengths": {"knee_pian": 3}}, UnknownNameError, "did you mean 'knee_pain'"),
    ({"strengths": {"knee_pain": "a"}}, ParameterError, r"strengths\['knee_pain'\]"),
    ({"freeze": ["hip_pian"]}, UnknownNameError, "freeze: unknown node 'hip_pian'"),
    ({"noisy_or": "full"}, ParameterError, "noisy_or: expected 'keep' or 'tabular', found 'full'"),
    ({"max_iter": 0}, ParameterError, "max_iter: expected a positive integer"),
    ({"tol": 0}, ParameterError, "tol: expected a number > 0"),
    ({"holdout": 0.95}, ParameterError, "holdout: expected a number >= 0 and <= 0.9"),
])
def test_bad_parameters(kwargs, exc, match, incomplete):
    with pytest.raises(exc, match=match):
        PriorFitter(model="knee_hip_basic", progress=False, **kwargs).fit(incomplete)


def test_sklearn_style(em_fit, incomplete):
    p = PriorFitter(strength=3).get_params()
    assert p["strength"] == 3 and p["noisy_or"] == "keep"
    assert np.isfinite(em_fit.score(incomplete))
    assert em_fit.score(incomplete) == pytest.approx(em_fit.loglik_ / 500, rel=1e-9)
    assert "PriorFitter(" in repr(em_fit)


def test_fit_priors_shortcut(tiny_spec):
    df = forward_sample(100, seed=2, model=tiny_spec)
    f = fit_priors(df, tiny_spec, strength=4, progress=False, dataset_name="x")
    assert f.spec_.nodes["age"].table[0].fitted["dataset"] == "x"


def test_counts_with_mapping_is_an_error(spec, incomplete):
    c = audit_counts(incomplete, spec)
    with pytest.raises(DataError, match="expected no mapping with counts"):
        PriorFitter(spec, progress=False, mapping={"columns": {}}).fit(c)


def test_counts_from_another_model_rejected(tiny_spec, spec, tmp_path):
    df = forward_sample(50, seed=1, model=tiny_spec)
    audit_counts(df[["limp"]], tiny_spec).save(tmp_path / "t.csv")
    with pytest.raises(DataError, match="made with model 'tiny', not 'knee_hip_basic'"):
        read_counts(tmp_path / "t.csv", spec)


# ------------------------------------------------------------------ batch posteriors
def test_batch_posteriors_match_engine_and_pgmpy(spec, incomplete):
    from pgmpy.inference import VariableElimination

    from kneehip_bn import build_network

    df = incomplete.sample(frac=1.0, random_state=0)  # shuffled index: output keeps it
    post = batch_posteriors(df, spec)
    origins = spec.group("origin")
    assert list(post.columns) == origins and post.index.equals(df.index)
    eng = Engine(spec)
    nodes = [c for c in df.columns if c in spec.nodes]
    for i in df.index[:40]:
        ev = {c: df.loc[i, c] for c in nodes if isinstance(df.loc[i, c], str)}
        p = eng.posterior(ev, targets=origins)
        np.testing.assert_allclose(post.loc[i].to_numpy(), [p[o][1] for o in origins], atol=1e-12)
    ve = VariableElimination(build_network(spec))
    for i in df.index[:3]:
        ev = {c: df.loc[i, c] for c in nodes if isinstance(df.loc[i, c], str)}
        for o in origins:
            q = ve.query([o], evidence=ev, show_progress=False)
            assert q.get_value(**{o: "present"}) == pytest.approx(post.loc[i, o], abs=1e-12)


def test_batch_posteriors_targets_keep_and_states(spec):
    df = pd.DataFrame({"pid": ["a", "b"], "knee_effusion": ["present", None]})
    out = batch_posteriors(df, spec, targets=["activity_level", "knee_pathology"], keep=["pid"])
    assert list(out.columns) == ["pid", "activity_level=low", "activity_level=moderate",
                                 "activity_level=high_impact", "knee_pathology"]
    np.testing.assert_allclose(out.iloc[:, 1:4].sum(axis=1), 1.0)
    with pytest.raises(UnknownNameError, match="did you mean 'knee_pathology'"):
        batch_posteriors(df, spec, targets=["knee_patholgy"], keep=["pid"])


def test_batch_impossible_rows(spec):
    df = pd.DataFrame({"femoral_nerve_stretch": ["positive", None, "negative"],
                       "upper_lumbar_root": ["absent", "present", "present"],
                       "lumbar_radiculopathy": ["absent", "absent", "present"]})
    with pytest.raises(ImpossibleEvidenceError, match=r"^1 audit row\(s\) in 1 distinct "
                       r"pattern\(s\) are impossible.*P\(upper_lumbar_root=present \| "
                       r"lumbar_radiculopathy=absent\) = 0 \(1 row\); first rows 1 \(0-based\)"
                       r".*--on-impossible drop \(blank posteriors and a status column\)"):
        batch_posteriors(df, spec)
    out = batch_posteriors(df, spec, on_impossible="nan")
    assert out.loc[1].isna().all() and out.loc[[0, 2]].notna().all().all()
    with pytest.raises(ParameterError, match="on_impossible: expected one of 'raise', 'error', "
                                           "'nan', 'drop', 'relax', found 'skip'"):
        batch_posteriors(df, spec, on_impossible="skip")


def test_write_batch_posteriors_streams_in_input_order(spec, incomplete, tmp_path):
    incomplete.to_csv(tmp_path / "a.csv", index=False)
    path, n = write_batch_posteriors(tmp_path / "a.csv", tmp_path / "p.csv", spec, chunksize=128)
    assert n == 500
    got = pd.read_csv(path)
    want = batch_posteriors(incomplete, spec)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=0, atol=1e-15)
    with pytest.raises(FileExistsError):
        write_batch_posteriors(tmp_path / "a.csv", tmp_path / "p.csv", spec)
    path, _ = write_batch_posteriors(tmp_path / "a.csv", tmp_path / "p.parquet", spec)
    np.testing.assert_allclose(pd.read_parquet(path).to_numpy(), want.to_numpy(), atol=1e-15)
    bad = incomplete.copy()
    bad["knee_pain"] = bad["knee_pain"].astype(object)
    bad.loc[400, "knee_pain"] = "yes"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"unknown code 'yes' in 1 row \(first rows: 400\)"):
        write_batch_posteriors(tmp_path / "bad.csv", tmp_path / "q.csv", spec, chunksize=128)
    assert not (tmp_path / "q.csv").exists()
    assert not list(tmp_path.glob(".q.csv*"))


def test_noisy_or_gradient_and_hessian_match_finite_differences():
    from kneehip_bn.learning.noisy_or import nor_grad_hess

    rng = np.random.default_rng(3)
    configs = np.array(list(itertools.product([0, 1], repeat=2)))
    D = np.column_stack([np.ones(4), configs]).astype(float)
    a_on, a_off = rng.uniform(1, 20, 4), rng.uniform(1, 20, 4)
    w = np.array([0.1, 0.5, 0.3])
    g, H = nor_grad_hess(D, a_on, a_off, w)
    eps = 1e-5
    for j in range(3):
        e = np.zeros(3)
        e[j] = eps
        fd = (nor_objective(D, a_on, a_off, w + e) - nor_objective(D, a_on, a_off, w - e)) / (2 * eps)
        assert g[j] == pytest.approx(fd, rel=1e-6)
        gp, _ = nor_grad_hess(D, a_on, a_off, w + e)
        gm, _ = nor_grad_hess(D, a_on, a_off, w - e)
        np.testing.assert_allclose(H[:, j], (gp - gm) / (2 * eps), rtol=1e-5)


def test_fit_reports_every_problem_of_a_dataframe(spec, incomplete):
    broken = incomplete.rename(columns={"knee_pain": "knee_pian"})
    broken["fadir_test"] = None
    with pytest.raises(DataError, match=r"did you mean 'knee_pain'.*and 1 more problem") as ei:
        PriorFitter(spec, progress=False).fit(broken)
    kinds = set(ei.value.report.problems["problem"])
    assert kinds == {"unmapped_column", "all_blank"}
