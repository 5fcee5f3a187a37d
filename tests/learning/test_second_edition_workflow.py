"""The research workflow on the second edition (``knee_hip``): the shipped synthetic audit
drawn from it validates, counts, fits and is scored, and the answers agree with the
independent single-query path (``diagnose``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kneehip_bn as kb

AUDIT = Path(__file__).resolve().parents[2] / "data" / "synthetic_audit_knee_hip.csv"


@pytest.fixture(scope="module")
def spec():
    return kb.load_spec("knee_hip")


@pytest.fixture(scope="module")
def audit():
    return pd.read_csv(AUDIT)


def test_shipped_audit_validates_against_the_second_edition(spec, audit):
    rep = kb.validate_audit(audit, spec)
    assert rep.ok, str(rep)
    assert len(audit) == 2000 and "working_diagnosis" in audit.columns
    assert set(audit.columns) - {"working_diagnosis"} <= set(spec.nodes)
    assert not set(audit.columns) & set(spec.group("origin") + spec.group("mechanism"))


def test_counts_equal_the_rows(spec, audit, tmp_path):
    c = kb.audit_counts(audit, spec, dataset="synthetic v2")
    assert c.n_rows == len(audit) and c.counts.sum() == len(audit)
    c.save(tmp_path / "c.json")
    back = kb.read_counts(tmp_path / "c.json", spec)
    assert back.n_rows == c.n_rows and np.array_equal(back.patterns, c.patterns)


def test_fit_on_the_second_edition_never_lowers_the_log_posterior(spec, audit):
    fitter = kb.PriorFitter(spec, progress=False, holdout=0, max_iter=4, tol=1e-12,
                            dataset_name="v2 sample")
    fitter.fit(audit.drop(columns="working_diagnosis").head(600))
    lp = fitter.history_["log_posterior"].to_numpy()
    assert len(lp) >= 2 and (np.diff(lp) >= -1e-9 * np.abs(lp[:-1])).all()
    kb.validate_spec(fitter.spec_)
    fitted = [r for r in fitter.spec_.provenance() if r["fitted"]]
    assert fitted, "no number was fitted"


def test_batch_posteriors_agree_with_diagnose(spec, audit):
    rows = audit.drop(columns="working_diagnosis").head(25)
    post = kb.batch_posteriors(rows, spec)
    for i in (0, 7, 19):
        ev = {k: v for k, v in rows.iloc[i].items() if isinstance(v, str)}
        dx = kb.diagnose(ev, model=spec)
        for d in spec.group("origin"):
            assert post.loc[i, d] == pytest.approx(dx.origins.loc[d, "posterior"], abs=1e-10)
