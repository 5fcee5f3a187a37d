"""Tests of kneehip_bn.learning.fitter: PriorFitter as scikit-learn users expect it
(get_params / set_params from the signature, clone, the data source in the constructor,
a public FitResult the report is built from)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from kneehip_bn.errors import KneeHipError, ParameterError
from kneehip_bn.learning.em import FitResult
from kneehip_bn.learning.fit_report import build_fit_report
from kneehip_bn.learning.fitter import PriorFitter, fit_priors
from kneehip_bn.learning.simulate import simulate_audit


@pytest.fixture(scope="module")
def audit():
    return simulate_audit(400, seed=2, missing=0.1, model="knee_hip_basic")


@pytest.fixture(scope="module")
def fitted(audit):
    return PriorFitter("knee_hip_basic", strength=30, progress=False, max_iter=4,
                       dataset_name="clinic A").fit(audit)


def test_get_params_is_the_signature():
    names = [p for p in inspect.signature(PriorFitter.__init__).parameters if p != "self"]
    f = PriorFitter(strength=3, mapping={"columns": {}}, table="t")
    p = f.get_params()
    assert list(p) == names
    assert p["strength"] == 3 and p["table"] == "t" and p["holdout"] is None


def test_clone_and_set_params(fitted):
    clone = type(fitted)(**fitted.get_params())
    assert clone.get_params() == fitted.get_params() and "spec_" not in clone.__dict__
    assert clone.set_params(strength=10, max_iter=2) is clone
    assert clone.strength == 10 and fitted.strength == 30


@pytest.mark.parametrize("kwargs, match", [
    ({"strenght": 1}, r"unknown parameter 'strenght': expected one of model, strength, .*; "
                      r"did you mean 'strength'\?"),
    ({"tol": -1}, r"PriorFitter tol: expected a number > 0, found -1"),
    ({"holdout": 0.95}, r"holdout: expected a number >= 0 and <= 0.9"),
    ({"strengths": {"knee_pain": -2}}, r"strengths\['knee_pain'\]"),
    ({"on_impossible": "skip"}, r"on_impossible: expected one of"),
])
def test_set_params_checks_and_changes_nothing_on_error(kwargs, match):
    f = PriorFitter(strength=5)
    before = f.get_params()
    with pytest.raises(ParameterError, match=match) as err:
        f.set_params(max_iter=7, **kwargs)
    assert isinstance(err.value, ValueError) and isinstance(err.value, KneeHipError)
    assert f.get_params() == before


def test_the_data_source_is_a_constructor_parameter(fitted, audit):
    assert fitted.report_.dataset == "clinic A"
    assert fitted.spec_.nodes["age_group"].table[0].fitted["dataset"] == "clinic A"
    with pytest.raises(ParameterError, match=r"expected fit\(data\) only, found a second "
                                             r"argument; .*PriorFitter\(mapping=\.\.\.\)"):
        PriorFitter("knee_hip_basic", progress=False).fit(audit, {"columns": {}})
    with pytest.raises(ParameterError, match=r"found dataset_name; .*constructor: "
                                             r"PriorFitter\(dataset_name=\.\.\.\)\.fit\(data\)"):
        PriorFitter("knee_hip_basic", progress=False).fit(audit, dataset_name="clinic A")
    same = fit_priors(audit, "knee_hip_basic", strength=30, progress=False, max_iter=4,
                      dataset_name="clinic A")
    assert same.loglik_ == fitted.loglik_


def test_fit_result_is_public_and_the_report_is_built_from_it(fitted):
    res = fitted.result_
    assert isinstance(res, FitResult)
    assert res.n_iter == fitted.n_iter_ and res.loglik == fitted.loglik_
    assert [f.name for f in res.families] == list(fitted.expert_spec_.nodes)
    rep = build_fit_report(res, fitted.expert_spec_, fitted.counts_, dataset="clinic A",
                           tol=fitted.tol)
    old = fitted.report_
    assert rep.tables.equals(old.tables) and rep.surprise.equals(old.surprise)
    assert rep.loglik_fitted == old.loglik_fitted and rep.holdout is None
    assert np.isfinite(rep.loglik_expert)


def test_a_file_is_counted_where_it_lives_and_fits_as_its_rows(tmp_path, monkeypatch,
                                                               shipped_spec):
    """Without a held-out split, a Parquet file is counted by DuckDB (no row through
    Python) and the fit equals the fit of the same rows as a DataFrame or a CSV file (both
    streamed), with the same blanks reported; with a split and a working-diagnosis column
    its rows are streamed instead."""
    import kneehip_bn.learning.scan as scan_mod
    from kneehip_bn import PriorFitter
    from kneehip_bn.learning.simulate import simulate_audit

    df = simulate_audit(3000, seed=8, missing=0.15, model=shipped_spec, diagnosis_noise=0.2)
    path = tmp_path / "audit.parquet"
    df.to_parquet(path, index=False)
    df.to_csv(tmp_path / "audit.csv", index=False)
    streamed = []
    real = scan_mod.scan_audit
    monkeypatch.setattr(scan_mod, "scan_audit", lambda *a, **k: streamed.append(1) or real(*a, **k))
    kw = dict(model=shipped_spec, progress=False, max_iter=30, tol=1e-9)
    f_file = PriorFitter(**kw).fit(path)
    assert not streamed
    f_rows = PriorFitter(**kw).fit(df)
    assert streamed  # the DataFrame is read row by row
    assert f_file.counts_.n_rows == f_rows.counts_.n_rows == 3000
    for node in shipped_spec.nodes:
        np.testing.assert_allclose(f_file.model_.get_cpds(node).values,
                                   f_rows.model_.get_cpds(node).values, atol=1e-9, err_msg=node)
    a = f_file.report_.audit.columns.set_index("column")
    b = f_rows.report_.audit.columns.set_index("column")
    nodes = b.index[b["role"] == "node"]
    assert (a.loc[nodes, "blank"] == b.loc[nodes, "blank"]).all()
    streamed.clear()
    PriorFitter(**kw, holdout=0.25, seed=1).fit(path)
    assert streamed  # a held-out split of a file with a diagnosis column: rows streamed
    streamed.clear()
    f_csv = PriorFitter(**kw).fit(tmp_path / "audit.csv")
    assert streamed  # one plain CSV: pyarrow's stream (measured faster than DuckDB)
    for node in shipped_spec.nodes:
        np.testing.assert_allclose(f_csv.model_.get_cpds(node).values,
                                   f_file.model_.get_cpds(node).values, atol=1e-9, err_msg=node)
