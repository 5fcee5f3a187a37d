"""Spark (kneehip_bn.io.spark) in local mode against the in-memory path.

One local session for the module (``local[2]``, web UI off, two shuffle partitions) and
small data. Counts, fits and posteriors from a Spark DataFrame must be identical to those
from the same file read by pandas: the in-memory path is the oracle. Skipped only when
Java (which Spark needs) is absent.
"""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from kneehip_bn import DataError, KneeHipError, cli, load_spec
from kneehip_bn.io.counting import audit_counts
from kneehip_bn.io.counts_file import read_counts
from kneehip_bn.learning.batch import batch_posteriors
from kneehip_bn.learning.fitter import PriorFitter
from kneehip_bn.learning.simulate import simulate_audit
from kneehip_bn.model.tables import cpd_array

pytest.importorskip("pyspark", reason="pyspark (the spark extra) is not installed")
pytestmark = [pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]
if shutil.which("java") is None:  # pragma: no cover - CI installs a headless Java
    pytest.skip("Spark needs Java: no 'java' on PATH", allow_module_level=True)


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    s = (SparkSession.builder.master("local[2]").appName("kneehip_bn-tests")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
         .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def basic():
    return load_spec("knee_hip_basic")


@pytest.fixture(scope="module")
def audit_csv(tmp_path_factory, basic):
    df = simulate_audit(2500, seed=12, missing=0.15, model=basic, hidden=("mechanism",),
                        diagnosis_noise=0.1)
    df.insert(0, "pid", [f"p{i}" for i in range(len(df))])
    path = tmp_path_factory.mktemp("spark") / "audit.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def frames(spark, audit_csv):
    pdf = pd.read_csv(audit_csv)
    sdf = spark.read.csv(str(audit_csv), header=True)
    return pdf, sdf


def _ignore_pid(basic):
    from kneehip_bn.io.mapping import MAPPING_FORMAT, load_mapping

    return load_mapping({"format": MAPPING_FORMAT, "ignore": ["pid"]})


def test_counts_identical(frames, basic):
    pdf, sdf = frames
    mp = _ignore_pid(basic)
    a = audit_counts(pdf, basic, mp)
    b = audit_counts(sdf, basic, mp)
    assert b.columns == a.columns and b.states == a.states and b.n_rows == a.n_rows == 2500
    np.testing.assert_array_equal(b.patterns, a.patterns)
    np.testing.assert_array_equal(b.counts, a.counts)


def test_fit_identical(frames, basic):
    pdf, sdf = frames
    mp = _ignore_pid(basic)
    kw = dict(progress=False, holdout=0, max_iter=30)
    a = PriorFitter(basic, mapping=mp, **kw).fit(pdf)
    b = PriorFitter(basic, mapping=mp, **kw).fit(sdf)
    assert a.n_iter_ == b.n_iter_
    for n in basic.nodes:
        np.testing.assert_array_equal(cpd_array(b.spec_, b.spec_.nodes[n]),
                                      cpd_array(a.spec_, a.spec_.nodes[n]), err_msg=n)


def test_posteriors_identical_and_a_spark_dataframe(frames, basic):
    pdf, sdf = frames
    mp = _ignore_pid(basic)
    want = batch_posteriors(pdf, basic, mp, keep=["pid"])
    got = batch_posteriors(sdf, basic, mp, keep=["pid"])
    assert type(got).__module__.startswith("pyspark.sql")
    got = got.toPandas().set_index("pid").loc[want["pid"]].reset_index()
    assert list(got.columns) == list(want.columns)
    np.testing.assert_array_equal(got.drop(columns="pid").to_numpy(),
                                  want.drop(columns="pid").to_numpy())


def test_unknown_code_message_counts_rows(spark, basic):
    df = pd.DataFrame({"knee_pain": ["present", "maybe", "maybe", "absent", "maybe"],
                       "hip_pain": ["absent", "present", "present", "present", None]})
    sdf = spark.createDataFrame(df.astype(object).where(df.notna(), None))
    with pytest.raises(DataError, match=r"column 'knee_pain' \(node knee_pain\): unknown code "
                                        r"'maybe' in 3 rows; expected one of absent, present"):
        audit_counts(sdf, basic)


def test_batch_drop_status_on_spark(spark, basic):
    df = pd.DataFrame({"pid": ["a", "b", "c"],
                       "upper_lumbar_root": ["absent", "present", "present"],
                       "lumbar_radiculopathy": ["absent", "absent", "present"]})
    sdf = spark.createDataFrame(df)
    from kneehip_bn import ImpossibleEvidenceError

    with pytest.raises(ImpossibleEvidenceError, match=r"P\(upper_lumbar_root=present \| "
                                                      r"lumbar_radiculopathy=absent\) = 0"):
        batch_posteriors(sdf, basic, keep=["pid"])
    got = batch_posteriors(sdf, basic, keep=["pid"], on_impossible="drop").toPandas()
    got = got.set_index("pid").loc[["a", "b", "c"]]
    assert list(got["status"]) == ["ok", "impossible", "ok"]
    assert got.loc["b"].drop("status").isna().all()
    want = batch_posteriors(df, basic, keep=["pid"], on_impossible="drop").set_index("pid")
    np.testing.assert_array_equal(got.drop(columns="status").to_numpy(dtype=float),
                                  want.drop(columns="status").to_numpy(dtype=float))


def test_cli_counts_and_batch_with_spark(spark, audit_csv, basic, tmp_path, capsys):
    out = tmp_path / "c.json"
    assert cli.main(["counts", "--spark", str(audit_csv), "--model", "knee_hip_basic",
                     "--ignore", "pid", "--output", str(out)]) == 0
    c = read_counts(out, basic)
    ref = audit_counts(pd.read_csv(audit_csv), basic, _ignore_pid(basic))
    np.testing.assert_array_equal(c.patterns, ref.patterns)
    np.testing.assert_array_equal(c.counts, ref.counts)
    post = tmp_path / "post.parquet"
    assert cli.main(["batch", "--spark", str(audit_csv), "--model", "knee_hip_basic",
                     "--keep", "pid", "--output", str(post)]) == 0
    got = pd.read_parquet(post).set_index("pid")
    want = batch_posteriors(pd.read_csv(audit_csv), basic, _ignore_pid(basic),
                            keep=["pid"]).set_index("pid")
    np.testing.assert_array_equal(got.loc[want.index].to_numpy(), want.to_numpy())
    capsys.readouterr()
    assert cli.main(["counts", str(audit_csv), "--spark", str(audit_csv), "--model",
                     "knee_hip_basic", "--output", str(tmp_path / "x.json")]) == 1
    assert "expected one of DATA, --counts or --spark, found more than one" in \
        capsys.readouterr().err


def test_missing_pyspark_is_one_clear_line(monkeypatch):
    from kneehip_bn.io import spark as ks

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # as if the extra were absent
    with pytest.raises(KneeHipError, match=r'^Spark: pyspark is not installed: expected the '
                                           r'spark extra; install it with pip install '
                                           r'"kneehip_bn\[spark\]"$'):
        ks.session()


def test_held_out_split_on_the_cluster(frames, basic):
    """A Spark fit with ``holdout`` draws the split on the cluster: the training and
    held-out rows add up to every row, the whole counts equal the unsplit ones, the
    held-out evaluation runs, and the same seed gives the same split."""
    from kneehip_bn.io.spark import spark_counts, spark_split_counts

    pdf, sdf = frames
    mp = _ignore_pid(basic)
    whole, train, test, labels = spark_split_counts(sdf, basic, mp, holdout=0.3, seed=4)
    ref = spark_counts(sdf, basic, mp)
    np.testing.assert_array_equal(whole.patterns, ref.patterns)
    np.testing.assert_array_equal(whole.counts, ref.counts)
    diag = pdf["working_diagnosis"]
    n_test_dx = int(test[2].sum())
    assert labels and 0.2 * diag.notna().sum() < n_test_dx < 0.4 * diag.notna().sum()
    assert train.n_rows + n_test_dx <= 2500 and train.n_rows > 0.6 * 2500
    again = spark_split_counts(sdf, basic, mp, holdout=0.3, seed=4)
    np.testing.assert_array_equal(again[1].counts, train.counts)
    f = PriorFitter(basic, mapping=mp, progress=False, holdout=0.3, seed=4, max_iter=20).fit(sdf)
    assert f.report_.holdout is not None and f.counts_.n_rows == 2500
