"""model.coerce: the one answer to "what is a model", and its staleness check."""

from __future__ import annotations

import numpy as np
import pytest

import kneehip_bn as kb
from kneehip_bn.errors import KneeHipError, ParameterError
from kneehip_bn.model.coerce import as_model, model_spec, spec_or_none, stale_table

STALE = r"table of '{}' is no longer the one of the model file"


def test_everything_a_user_may_pass_becomes_a_model(tmp_path):
    spec = kb.load_spec("knee_hip_basic")
    net = kb.build_network(spec)
    assert as_model(spec) is spec and as_model(net) is net
    assert as_model("knee_hip_basic").name == "knee_hip_basic"
    assert as_model(None).name == "knee_hip"  # the default shipped model, loaded once
    assert as_model(None) is as_model(None)
    assert model_spec(net) is spec and spec_or_none(net) is spec
    with pytest.raises(ParameterError, match=r"model: expected a pgmpy .* found int"):
        as_model(3)


def test_an_unchanged_network_is_current():
    spec = kb.load_spec("knee_hip_basic")
    assert stale_table(kb.build_network(spec), spec) is None


def test_an_in_place_edit_of_a_cpd_is_seen():
    spec = kb.load_spec("knee_hip_basic")
    net = kb.build_network(spec)
    assert model_spec(net) is spec  # checked once and remembered ...
    cpd = net.get_cpds("knee_effusion")
    cpd.values[...] = cpd.values[::-1].copy()  # ... until the values change in place
    assert stale_table(net, spec) == "knee_effusion"
    with pytest.raises(KneeHipError, match=STALE.format("knee_effusion")):
        model_spec(net)


def test_a_network_built_elsewhere_has_no_spec():
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.models import DiscreteBayesianNetwork

    net = DiscreteBayesianNetwork([("a", "b")])
    net.add_cpds(TabularCPD("a", 2, [[0.5], [0.5]]),
                 TabularCPD("b", 2, np.array([[0.9, 0.2], [0.1, 0.8]]), evidence=["a"], evidence_card=[2]))
    assert spec_or_none(net) is None
    with pytest.raises(KneeHipError, match="without a specification"):
        model_spec(net)


def test_a_model_file_is_read_once_while_it_is_unchanged(tmp_path):
    """A name or path gives the same read-only spec while the file is unchanged (so its
    compiled engine is reused); an edited file is read again and its new numbers used."""
    import os

    from kneehip_bn import diagnose, load_spec, save_spec, set_prior
    from kneehip_bn.model.coerce import as_model

    assert as_model("knee_hip_basic") is as_model("knee_hip_basic")
    path = tmp_path / "m.yaml"
    save_spec(load_spec("knee_hip_basic"), path)
    first = as_model(path)
    assert as_model(str(path)) is first
    p0 = diagnose({}, model=path).origins
    edited = set_prior(load_spec("knee_hip_basic"), "lumbar_radiculopathy", {"present": 0.5})
    save_spec(edited, path, overwrite=True)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a later write
    again = as_model(path)
    assert again is not first
    p1 = diagnose({}, model=path).origins
    row = next(r for r in p1.index if "radicul" in r)
    assert p1.loc[row, "posterior"] == pytest.approx(0.5, abs=1e-9)
    assert p0.loc[row, "posterior"] != pytest.approx(0.5, abs=1e-3)
