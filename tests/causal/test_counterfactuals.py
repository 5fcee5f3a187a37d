"""Counterfactuals and the probability of causation (PN, PS) against the exogenous
enumeration of ``scm_oracle.SCMOracle``, and against pyAgrum where the definitions match."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scm_oracle import (
    AB,
    SCMOracle,
    chain_mechanisms,
    chain_spec_file,
    cpd,
    tiny_mechanisms,
)

from oracle import BruteForce, random_dag_families, to_pgmpy


@pytest.fixture
def chain_spec(tmp_path: Path):
    return chain_spec_file(tmp_path)


CHAIN_CASES = [
    ({"d": "present"}, {"b": "absent"}, "d"),
    ({"d": "present", "e": "much"}, {"b": "absent"}, "e"),
    ({"d": "present", "a": "high"}, {"a": "low"}, "d"),
    ({"e": "some", "t": "positive", "d": "present"}, {"b": "present"}, "d"),
    ({"d": "absent", "b": "absent"}, {"b": "present"}, "d"),
    ({"d": "present", "e": "none"}, {"a": "mid", "b": "absent"}, "e"),
    ({"d": "present"}, {"c": "absent"}, "d"),
    ({"d": "present", "b": "present"}, {"h": "present"}, "c"),  # c not affected by h
]


@pytest.mark.parametrize("evidence,do,target", CHAIN_CASES)
def test_counterfactual_matches_exogenous_enumeration_chain(chain_spec, evidence, do, target):
    from kneehip_bn import counterfactual

    oracle = SCMOracle(chain_mechanisms())
    r = counterfactual(evidence, do=do, target=target, model=chain_spec)
    np.testing.assert_allclose(r.counterfactual.to_numpy(), oracle.counterfactual(evidence, do, target),
                               atol=1e-12)
    bf = BruteForce([(n, list(s.states), list(s.parents), cpd(chain_spec, n))
                     for n, s in chain_spec.nodes.items()])
    np.testing.assert_allclose(r.factual.to_numpy(), bf.marginal([target], evidence), atol=1e-12)

TINY_CASES = [
    ({"limp": "present"}, {"knee_oa": "absent"}, "limp"),
    ({"limp": "present", "pain_level": "severe"}, {"knee_oa": "absent"}, "gait"),
    ({"limp": "present", "age": "old"}, {"hip_oa": "present"}, "limp"),
    ({"pain_level": "mild"}, {"knee_oa": "present"}, "pain_level"),
    ({"limp": "absent", "pain_level": "none"}, {"age": "old"}, "limp"),
]


@pytest.mark.parametrize("evidence,do,target", TINY_CASES)
def test_counterfactual_matches_exogenous_enumeration_tiny(tiny_spec, evidence, do, target):
    from kneehip_bn import counterfactual

    oracle = SCMOracle(tiny_mechanisms())
    r = counterfactual(evidence, do=do, target=target, model=tiny_spec)
    np.testing.assert_allclose(r.counterfactual.to_numpy(),
                               oracle.counterfactual(evidence, do, target), atol=1e-12)


def test_counterfactual_is_not_the_interventional_answer(chain_spec):
    """Abduction matters: for this patient the answer differs from P(d | do(b=absent))."""
    from kneehip_bn import counterfactual, query

    r = counterfactual({"d": "present"}, do={"b": "absent"}, target="d", model=chain_spec)
    pop = query("d", do={"b": "absent"}, model=chain_spec)
    assert abs(float(r.counterfactual["present"]) - float(pop["present"])) > 0.05
    # with no evidence the counterfactual is the interventional distribution
    r0 = counterfactual({}, do={"b": "absent"}, target="d", model=chain_spec)
    np.testing.assert_allclose(r0.counterfactual.to_numpy(), pop.to_numpy(), atol=1e-12)


def test_counterfactual_on_pgmpy_network_uses_noisy_or_reading(chain_spec):
    """A pgmpy network built from the file keeps the noisy-OR reading (tables match)."""
    from kneehip_bn import build_network, counterfactual

    net = build_network(chain_spec)
    a = counterfactual({"d": "present"}, do={"b": "absent"}, target="d", model=net)
    b = counterfactual({"d": "present"}, do={"b": "absent"}, target="d", model=chain_spec)
    np.testing.assert_allclose(a.counterfactual.to_numpy(), b.counterfactual.to_numpy(), atol=1e-12)


def test_counterfactual_random_networks_full_tables():
    """Networks without a model file: every table read with the comonotone coupling."""
    from kneehip_bn import counterfactual

    rng = np.random.default_rng(5)
    for seed in range(4):
        fams = random_dag_families(seed, n_nodes=5, max_parents=2, max_card=3, max_joint=200)
        net = to_pgmpy(fams)
        mechs = {}
        for v, st, pa, t in fams:
            mechs[v] = ("root", st, list(t)) if not pa else ("table", st, pa, t)
        oracle = SCMOracle(mechs)
        names = [f[0] for f in fams]
        states = {f[0]: f[1] for f in fams}
        target = names[-1]
        cause = names[0]
        ev = {names[-2]: str(rng.choice(states[names[-2]]))} if len(names) > 2 else {}
        do = {cause: states[cause][0]}
        try:
            want = oracle.counterfactual(ev, do, target)
        except ZeroDivisionError:
            continue
        got = counterfactual(ev, do=do, target=target, model=net)
        np.testing.assert_allclose(got.counterfactual.to_numpy(), want, atol=1e-10)


# ----------------------------------------------------------------------------- PN / PS
def _oracle_pn_ps(oracle: SCMOracle, ev: dict, cause: str, finding: str):
    on, off = "present", "absent"
    pn = oracle.counterfactual({**ev, cause: on}, {cause: off}, finding)[0]
    ev_s = {k: v for k, v in ev.items() if k != finding}
    ps = oracle.counterfactual({**ev_s, cause: off, finding: off}, {cause: on}, finding)[1]
    return pn, ps


@pytest.mark.parametrize("ev", [{"d": "present"}, {"d": "present", "e": "much"},
                                {"d": "present", "a": "high", "t": "negative"}])
def test_pn_ps_match_twin_enumeration(chain_spec, ev):
    from kneehip_bn import probability_of_causation

    pc = probability_of_causation("d", "b", ev, model=chain_spec)
    pn, ps = _oracle_pn_ps(SCMOracle(chain_mechanisms()), ev, "b", "d")
    assert pc.pn == pytest.approx(pn, abs=1e-12)
    assert pc.ps == pytest.approx(ps, abs=1e-12)
    bf = BruteForce([(n, list(s.states), list(s.parents), cpd(chain_spec, n))
                     for n, s in chain_spec.nodes.items()])
    assert pc.p_cause_present == pytest.approx(float(bf.marginal(["b"], ev)[1]), abs=1e-12)
    assert pc.bounds is None  # noisy-OR all the way: point-identified
    assert pc.explanation.startswith("Given these findings, the d ")


def test_pn_bounds_hold_for_every_coupling(tiny_spec):
    """Full tables between cause and finding: the Tian-Pearl bounds must contain the PN of
    the comonotone coupling (ours) and of independent noise per row (another SCM with the
    same tables), computed by enumeration."""
    from kneehip_bn import probability_of_causation

    ev = {"age": "old", "limp": "present"}
    pc = probability_of_causation("limp", "knee_oa", ev, model=tiny_spec)
    assert pc.bounds is not None and "limp" in pc.bounds["full_tables"]
    assert pc.bounds["context"] == {"age": "old"}
    como = SCMOracle(tiny_mechanisms(), "comonotone")
    indep = SCMOracle(tiny_mechanisms(), "independent")
    pn_c, ps_c = _oracle_pn_ps(como, ev, "knee_oa", "limp")
    pn_i, ps_i = _oracle_pn_ps(indep, ev, "knee_oa", "limp")
    assert pc.pn == pytest.approx(pn_c, abs=1e-12)
    assert pc.ps == pytest.approx(ps_c, abs=1e-12)
    assert abs(pn_c - pn_i) > 1e-3  # the coupling matters here
    lo, hi = pc.bounds["pn"]
    slo, shi = pc.bounds["ps"]
    for pn, ps in ((pn_c, ps_c), (pn_i, ps_i)):  # the context is all the evidence but limp
        assert lo - 1e-12 <= pn <= hi + 1e-12
        assert slo - 1e-12 <= ps <= shi + 1e-12
    assert pc.bounds["pn_model"] == pytest.approx(pn_c, abs=1e-12)
    # monotone coupling: PN at the lower bound (Tian-Pearl: identified under monotonicity)
    assert pc.bounds["pn_model"] == pytest.approx(lo, abs=1e-9)


def test_pn_errors(chain_spec):
    from kneehip_bn import EvidenceError, probability_of_causation

    with pytest.raises(EvidenceError, match="expected it present in the evidence"):
        probability_of_causation("d", "b", {"e": "much"}, model=chain_spec)
    with pytest.raises(EvidenceError, match="the cause cannot have produced"):
        probability_of_causation("d", "b", {"d": "present", "b": "absent"}, model=chain_spec)

# ----------------------------------------------------------------------------- pyAgrum
def _explicit_scm_bn(mechs):
    """The explicit-noise SCM as a pyAgrum BN: each node's exogenous noise a root (one
    categorical node holding every switch of a noisy-OR), every other node deterministic."""
    import pyagrum as gum

    bn = gum.BayesNet("scm")
    orc = SCMOracle(mechs)
    for n, m in mechs.items():
        if m[0] == "root":
            bn.add(gum.LabelizedVariable(n, n, list(m[1])))
            continue
        opts = orc.options[n]
        u = f"U_{n}"
        bn.add(gum.LabelizedVariable(u, u, [f"u{i}" for i in range(len(opts))]))
        bn.add(gum.LabelizedVariable(n, n, list(m[1])))
    for n, m in mechs.items():
        if m[0] == "root":
            bn.cpt(n).fillWith([float(x) for x in m[2]])
            continue
        u = f"U_{n}"
        pars = [ln[0] for ln in m[3]] if m[0] == "noisy_or" else list(m[2])
        pars = list(dict.fromkeys(pars))
        for p in pars:
            bn.addArc(p, n)
        bn.addArc(u, n)
        opts = orc.options[n]
        bn.cpt(u).fillWith([w for _, w in opts])
        cpt = bn.cpt(n)
        for pv in itertools.product(*[range(len(mechs[p][1])) for p in pars]):
            for k, (uu, _) in enumerate(opts):
                vals = dict(zip(pars, pv))
                s = orc.value(n, uu, vals)
                inst = {p: int(x) for p, x in vals.items()}
                inst[u] = k
                for st in range(len(m[1])):
                    cpt[{**inst, n: st}] = 1.0 if st == s else 0.0
    return bn




def _factorised_abduction(orc, ev, do, tgt):
    """Abduction by each exogenous root's own posterior (as pyAgrum does)."""
    di = {k: orc.states[k].index(v) for k, v in do.items()}
    ei = {k: orc.states[k].index(v) for k, v in ev.items()}
    names = orc.order
    combos = list(itertools.product(*[range(len(orc.options[n])) for n in names]))
    post = {n: np.zeros(len(orc.options[n])) for n in names}
    for combo in combos:
        w = np.prod([orc.options[n][k][1] for n, k in zip(names, combo)])
        fact = {}
        for n, k in zip(names, combo):
            fact[n] = orc.value(n, orc.options[n][k][0], fact)
        if all(fact[k] == v for k, v in ei.items()):
            for n, k in zip(names, combo):
                post[n][k] += w
    for n in names:
        post[n] /= post[n].sum()
    out = np.zeros(len(orc.states[tgt]))
    for combo in combos:
        w = np.prod([post[n][k] for n, k in zip(names, combo)])
        cf = {}
        for n, k in zip(names, combo):
            cf[n] = di[n] if n in di else orc.value(n, orc.options[n][k][0], cf)
        out[cf[tgt]] += w
    return out


def test_counterfactual_against_pyagrum_where_definitions_match(chain_spec):
    """pyAgrum's counterfactual (twin network, abduction = each parentless node's prior
    replaced by its own posterior) on the explicit-noise SCM. When the evidence makes the
    exogenous roots independent (every parent of the observed nodes observed) it is the exact
    counterfactual and equals ours. Otherwise it drops the posterior dependence between the
    roots: it then equals the factorised-abduction oracle, and differs from ours (and from
    the exact enumeration)."""
    gum = pytest.importorskip("pyagrum")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import pyagrum.causal as csl
    from kneehip_bn import counterfactual

    mechs = chain_mechanisms()
    cm = gum.CausalModel(_explicit_scm_bn(mechs))
    orc = SCMOracle(mechs)

    def pyagrum_cf(ev, do, tgt):
        t = csl.counterfactual(cm, profile=ev, on=tgt, whatif=set(do), values=do)
        return np.asarray(t.tolist(), dtype=float)

    ev = {"a": "high", "b": "present", "h": "absent", "c": "present", "d": "present"}
    ours = counterfactual(ev, do={"c": "absent"}, target="d", model=chain_spec)
    np.testing.assert_allclose(pyagrum_cf(ev, {"c": "absent"}, "d"),
                               ours.counterfactual.to_numpy(), atol=1e-9)
    ev = {"d": "present"}
    ours = counterfactual(ev, do={"b": "absent"}, target="d", model=chain_spec)
    pa = pyagrum_cf(ev, {"b": "absent"}, "d")
    np.testing.assert_allclose(pa, _factorised_abduction(orc, ev, {"b": "absent"}, "d"), atol=1e-9)
    assert abs(pa[1] - float(ours.counterfactual["present"])) > 0.1


# ----------------------------------------------------------------------------- properties
@pytest.mark.parametrize("evidence", [{"d": "present"}, {"e": "much", "t": "positive"},
                                      {"d": "absent", "e": "none", "a": "mid"}])
def test_consistency_do_what_was_seen_changes_nothing(chain_spec, evidence):
    """Counterfactual consistency: imagining the state the patient actually has gives the
    factual posterior, for every target."""
    from kneehip_bn import counterfactual, query

    for cause, state in (("b", "present"), ("h", "absent"), ("c", "present")):
        ev = {**evidence, cause: state}
        for target in ("c", "d", "e"):
            if target == cause:
                continue
            r = counterfactual(ev, do={cause: state}, target=target, model=chain_spec)
            np.testing.assert_allclose(r.counterfactual.to_numpy(),
                                       query(target, ev, model=chain_spec).to_numpy(), atol=1e-12)

@pytest.mark.parametrize("seed", range(5))
def test_counterfactual_random_noisy_or_networks(seed):
    """Random small networks mixing noisy-OR nodes (links on multi-state parents included)
    and full tables, written as a model file, against the exogenous enumeration."""
    from kneehip_bn import counterfactual
    from kneehip_bn.model.spec import parse_spec

    rng = np.random.default_rng(100 + seed)
    nodes, mechs = {}, {}
    names = ["n0", "n1", "n2", "n3", "n4"]
    for i, n in enumerate(names):
        states = ["s0", "s1", "s2"] if i == 0 else AB
        if i < 2:
            p = rng.dirichlet(np.ones(len(states)))
            p[-1] = 1 - p[:-1].sum()
            nodes[n] = {"group": "origin", "states": states,
                        "table": {"probabilities": dict(zip(states, p.tolist())), "source": "g"}}
            mechs[n] = ("root", states, p.tolist())
            continue
        parents = sorted(rng.choice(i, size=min(i, 2), replace=False).tolist())
        pnames = [names[j] for j in parents]
        if i != 3:  # noisy-OR, one link per 'on' state of each parent
            links, mlinks = [], []
            for pn in pnames:
                pst = nodes[pn]["states"]
                for w in range(1, len(pst)):
                    q = float(rng.uniform(0.1, 0.9))
                    links.append({"parent": pn, "when": pst[w], "p": q, "source": "g"})
                    mlinks.append((pn, w, q))
            leak = float(rng.uniform(0.02, 0.3))
            nodes[n] = {"group": "finding", "states": AB, "parents": pnames,
                        "noisy_or": {"leak": {"p": leak, "source": "g"}, "links": links}}
            mechs[n] = ("noisy_or", AB, leak, mlinks)
        else:  # a full table
            cards = [len(nodes[p]["states"]) for p in pnames]
            table = np.empty((2, *cards))
            rows = []
            for cfg in itertools.product(*[range(c) for c in cards]):
                q = float(rng.uniform(0.05, 0.95))
                table[(0, *cfg)], table[(1, *cfg)] = 1 - q, q
                rows.append({"given": {p: nodes[p]["states"][k] for p, k in zip(pnames, cfg)},
                             "probabilities": {"absent": 1 - q, "present": q}, "source": "g"})
            nodes[n] = {"group": "mechanism", "states": AB, "parents": pnames, "table": rows}
            mechs[n] = ("table", AB, pnames, table)
    spec = parse_spec({"format": "kneehip-bn/1", "name": f"r{seed}", "sources": {
        "g": {"elicited": "random test numbers"}}, "nodes": nodes})
    oracle = SCMOracle(mechs)
    ev = {"n4": "present"}
    for do in ({"n0": "s0"}, {"n1": "absent"}, {"n2": "absent"}):
        for target in ("n3", "n4"):
            want = oracle.counterfactual(ev, do, target)
            got = counterfactual(ev, do=do, target=target, model=spec)
            np.testing.assert_allclose(got.counterfactual.to_numpy(), want, atol=1e-12)
