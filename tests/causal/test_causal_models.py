"""The causal tools on every shipped model (no node names assumed: the case is built from the
model's own groups), checked by invariants that hold for any model: counterfactuals with no
evidence equal do(), Shapley efficiency, every flip re-applied and re-queried, MPE no better
than the joint allows, red flags first."""

from __future__ import annotations

import math

import numpy as np
import pytest

import kneehip_bn as kb
from kneehip_bn.inference.queries import on_state


def _case(spec):
    findings = [n for n, s in spec.nodes.items() if s.group == "finding" and not s.red_flag]
    ev = {f: on_state(spec.nodes[f].states) for f in findings[:4]}
    dx = kb.diagnose(ev, model=spec).origins
    return ev, list(dx.index)


@pytest.fixture(scope="module", params=kb.SHIPPED_MODELS)
def model(request):
    return kb.load_spec(request.param)


def test_counterfactual_invariants(model):
    from kneehip_bn.causal.counterfactuals import structural_model

    ev, ranked = _case(model)
    cause = ranked[0]
    scm = structural_model(model)
    finding = next((f for f in ev if f in scm.descendants([cause])), None)
    if finding is None:
        pytest.skip("no present finding downstream of the leading diagnosis")
    off = next(s for s in model.nodes[cause].states if s != on_state(model.nodes[cause].states))
    cf = kb.counterfactual(ev, do={cause: off}, target=finding, model=model)
    assert cf.factual[on_state(model.nodes[finding].states)] == pytest.approx(1.0)
    assert cf.counterfactual.sum() == pytest.approx(1.0)
    pop = kb.query(finding, do={cause: off}, model=model)
    none = kb.counterfactual({}, do={cause: off}, target=finding, model=model)
    np.testing.assert_allclose(none.counterfactual.to_numpy(), pop.to_numpy(), atol=1e-10)
    pc = kb.probability_of_causation(finding, cause, ev, model=model)
    assert 0 <= pc.pn <= 1 and (math.isnan(pc.ps) or 0 <= pc.ps <= 1)
    assert pc.pn == pytest.approx(1 - float(kb.counterfactual(
        {**ev, cause: on_state(model.nodes[cause].states)}, do={cause: off}, target=finding,
        model=model).counterfactual[on_state(model.nodes[finding].states)]), abs=1e-12)
    if pc.bounds is not None:
        assert pc.bounds["pn"][0] - 1e-9 <= pc.bounds["pn_model"] <= pc.bounds["pn"][1] + 1e-9
        assert pc.bounds["ps"][0] - 1e-9 <= pc.bounds["ps_model"] <= pc.bounds["ps"][1] + 1e-9


def test_shapley_efficiency_and_flip_verified(model):
    ev, ranked = _case(model)
    sh = kb.shapley(ev, model=model)
    gap = sh.values.sum() - (sh.total - sh.base)
    assert float(gap.abs().max()) < 1e-9
    dx = kb.diagnose(ev, model=model).origins
    np.testing.assert_allclose(1 / (1 + np.exp(-sh.total[dx.index])), dx["posterior"], atol=1e-10)
    rival = ranked[1]
    fl = kb.flip(ev, rival, goal="threshold", model=model, max_findings=2)
    want = not fl.met_now  # reach P >= 0.5, or (when it holds already) fall below it
    assert fl.met_now == (float(dx.loc[rival, "posterior"]) >= 0.5)
    for s in fl.parameters["set"]:
        post = kb.diagnose(ev, model=kb.apply_overrides(model, [s])).origins
        assert (float(post.loc[rival, "posterior"]) >= 0.5) == want, s
    for change in fl.findings:
        ev2 = {**ev, **{c["node"]: c["to"] for c in change}}
        post = kb.diagnose(ev2, model=model).origins
        assert (float(post.loc[rival, "posterior"]) >= 0.5) == want


def test_mpe_consistent(model):
    ev, _ = _case(model)
    r = kb.mpe(ev, model=model)
    assert 0 < r.second_probability <= r.probability <= 1
    eng = kb.get_engine(model)
    # the best assignment's probability, recomputed as P(all nodes) / P(evidence)
    full = {**ev, **r.assignment}
    assert math.exp(eng.log_probability(full) - eng.log_probability(ev)) == pytest.approx(
        r.probability, rel=1e-9)
    assert math.exp(eng.log_probability({**ev, **r.second}) - eng.log_probability(ev)) == \
        pytest.approx(r.second_probability, rel=1e-9)


def test_red_flag_first_when_the_model_has_them(model):
    flags = model.red_flags()
    if not flags:
        pytest.skip("this model has no red-flag findings")
    ev, _ranked = _case(model)
    ev[flags[0]] = on_state(model.nodes[flags[0]].states)
    r = kb.mpe(ev, model=model)
    assert str(r).startswith("REFER: red flag") and r.to_dict()["red_flags"] == [flags[0]]
