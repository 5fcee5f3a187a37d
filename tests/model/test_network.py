"""Specification -> pgmpy network: noisy-OR expansion by hand, CPDs by state label."""

from __future__ import annotations

import numpy as np
import pytest

from kneehip_bn import build_network, load_model
from kneehip_bn.model.network import network_groups


def test_build_network_is_a_real_checked_pgmpy_network(tiny_spec):
    from pgmpy.models import DiscreteBayesianNetwork

    model = build_network(tiny_spec)
    assert isinstance(model, DiscreteBayesianNetwork)
    assert model.check_model()
    assert set(model.edges()) == {("age", "knee_oa"), ("age", "hip_oa"), ("knee_oa", "gait"),
                                  ("hip_oa", "gait"), ("gait", "limp"), ("knee_oa", "pain_level")}
    assert model.nodes["knee_oa"]["group"] == "origin"
    assert model.graph["kneehip_spec"] is tiny_spec
    assert model.name == "tiny"
    # compare by state label (never by column position)
    cpd = model.get_cpds("gait")
    assert cpd.state_names["gait"] == ["absent", "present"]
    assert cpd.get_value(gait="present", knee_oa="present", hip_oa="absent") == pytest.approx(0.55)
    assert cpd.get_value(gait="present", knee_oa="absent", hip_oa="present") == pytest.approx(0.46)
    pl = model.get_cpds("pain_level")
    assert pl.get_value(pain_level="mild", knee_oa="present") == 0.5
    for cpd in model.get_cpds():
        np.testing.assert_allclose(cpd.get_values().sum(axis=0), 1.0, atol=1e-12)


def test_network_groups_falls_back_to_graph_position(tiny_spec):
    model = build_network(tiny_spec)
    assert network_groups(model)["pain_level"] == "finding"
    for n in model.nodes:
        del model.nodes[n]["group"]
    g = network_groups(model)
    assert g["age"] == "origin" and g["gait"] == "mechanism" and g["limp"] == "finding"


def test_shipped_model_checks(shipped_model):
    assert shipped_model.check_model()
    assert len(shipped_model.nodes) == 31
    for cpd in shipped_model.get_cpds():
        np.testing.assert_allclose(cpd.get_values().sum(axis=0), 1.0, atol=1e-9,
                                   err_msg=cpd.variable)
    # the structural zero of the shipped model
    cpd = shipped_model.get_cpds("upper_lumbar_root")
    assert cpd.get_value(upper_lumbar_root="present", lumbar_radiculopathy="absent") == 0.0


def test_load_model_default_is_the_shipped_file():
    m = load_model()
    assert m.graph["kneehip_spec"].name == "knee_hip"
    assert load_model("knee_hip_basic").graph["kneehip_spec"].name == "knee_hip_basic"
