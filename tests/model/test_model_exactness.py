"""Exactness of every shipped model's answers against two independent oracles.

For each shipped model (``kb.SHIPPED_MODELS``: the basic first edition and the second
edition) and a few dozen seeded random evidence sets (some with interventions), every
answer the public API gives — each diagnosis and mechanism from ``diagnose``, each region
probability it reports, and ``query`` of every other node — is compared, to 1e-9, with

(a) **brute-force enumeration on a subnetwork** (also of P(evidence)): a posterior given evidence depends only on
    the ancestral closure of the query and evidence nodes (barren nodes sum out), so the
    oracle (``tests/oracle.py``, no package code) sums the joint of that closure, with each
    observed node's domain cut to its observed state (which gives the unnormalised joint
    P(x, e) directly) and each intervened node's table replaced by a point mass (graph
    surgery). Closures whose joint would exceed ``MAX_JOINT`` entries are left to (b); the
    test requires that a stated share of answers was enumerated, so it cannot pass by
    skipping everything;
(b) **pyAgrum's LazyPropagation** on the network exported by ``kb.export_network``. The
    1e-9 comparison reads the XML BIF export (``.bifxml``, exact); pyAgrum's plain-BIF
    reader parses numbers to about 3e-8 (``shared/PGMPY_NOTES.md``, measured again in
    :func:`test_pyagrum_plain_bif`), so the ``.bif`` file is checked at 1e-7.

Nothing here names a node: the nodes, states, groups and regions are read from the model
file, so the test applies to whatever nodes a model has.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np
import pytest

import kneehip_bn as kb
from kneehip_bn.errors import ImpossibleEvidenceError
from oracle import BruteForce

gum = pytest.importorskip("pyagrum")

#: every shipped model, plus a work-in-progress model file named by ``$KNEEHIP_V2_MODEL``
#: (the variable ``test_vignettes_v2.py`` reads) when it is a path rather than a name
MODELS = list(kb.SHIPPED_MODELS)
if os.environ.get("KNEEHIP_V2_MODEL") and os.environ["KNEEHIP_V2_MODEL"] not in MODELS:
    MODELS.append(os.environ["KNEEHIP_V2_MODEL"])
N_EVIDENCE = 30          # random evidence sets per model
N_DO = 6                 # of which some also carry interventions
MAX_JOINT = 1 << 20      # largest joint enumerated by brute force (entries)
TOL = 1e-9


# --------------------------------------------------------------------------- model and oracles
class Model:
    """A shipped model with its pgmpy families and its pyAgrum networks (built once)."""

    def __init__(self, name: str, tmp) -> None:
        self.name = name
        self.spec = kb.load_spec(name)
        self.network = kb.build_network(self.spec)
        self.families = {}
        for cpd in self.network.get_cpds():
            names = [str(x) for x in cpd.variables]
            self.families[names[0]] = (
                names[0], [str(s) for s in cpd.state_names[names[0]]], names[1:],
                np.asarray(cpd.values, dtype=float))
        self.states = {v: f[1] for v, f in self.families.items()}
        self.parents = {v: f[2] for v, f in self.families.items()}
        self.groups = {n: s.group for n, s in self.spec.nodes.items()}
        self.regions = self.spec.regions()
        stem = self.spec.name or "model"
        self.bifxml = kb.export_network(self.spec, tmp / f"{stem}.bifxml")
        self.bif = kb.export_network(self.spec, tmp / f"{stem}.bif")
        self.bn = gum.loadBN(str(self.bifxml))


@pytest.fixture(scope="module", params=MODELS, ids=[os.path.basename(m) for m in MODELS])
def model(request, tmp_path_factory):
    return Model(request.param, tmp_path_factory.mktemp("exactness"))


def ancestral_closure(parents: Mapping[str, list[str]], nodes) -> set[str]:
    out, stack = set(), list(nodes)
    while stack:
        v = stack.pop()
        if v not in out:
            out.add(v)
            stack.extend(parents[v])
    return out


def joint_size(m: Model, nodes, fixed) -> int:
    return math.prod(1 if v in fixed else len(m.states[v]) for v in nodes)


def subnetwork_oracle(m: Model, closure: set[str], evidence: Mapping[str, str],
                      do: Mapping[str, str]) -> BruteForce:
    """Brute force on ``closure`` with observed/intervened nodes cut to their one state."""
    fixed = {**evidence, **do}
    fams = []
    for v in closure:
        _, states, parents, table = m.families[v]
        if v in do:  # graph surgery: no parents, a point mass on the set state
            fams.append((v, [do[v]], [], np.ones(1)))
            continue
        if v in evidence:  # the observed state only: the joint becomes P(x, evidence)
            table = np.take(table, [states.index(evidence[v])], axis=0)
            states = [evidence[v]]
        for ax, p in enumerate(parents, start=1):
            if p in fixed:  # a cut parent has one state
                table = np.take(table, [m.states[p].index(fixed[p])], axis=ax)
        fams.append((v, states, parents, table))
    return BruteForce(fams)


def random_case(m: Model, rng: np.random.Generator, with_do: bool):
    """A random evidence set over any nodes (context, diagnoses, mechanisms, findings,
    tests), sometimes with interventions on diagnoses or mechanisms."""
    names = list(m.states)
    k = int(rng.integers(0, 9))
    chosen = rng.choice(len(names), size=min(k, len(names)), replace=False)
    ev = {names[i]: str(rng.choice(m.states[names[i]])) for i in chosen}
    do = {}
    if with_do:
        cands = [v for v in names if m.groups[v] in ("origin", "mechanism") and v not in ev]
        for i in rng.choice(len(cands), size=int(rng.integers(1, 3)), replace=False):
            do[cands[i]] = str(rng.choice(m.states[cands[i]]))
    return ev, do


def cases(m: Model, seed: int = 20261202):
    """``N_EVIDENCE`` possible cases (impossible ones are checked separately and replaced)."""
    rng = np.random.default_rng(seed)
    out, impossible, tries = [], [], 0
    while len(out) < N_EVIDENCE:
        tries += 1
        assert tries < 50 * N_EVIDENCE, "could not draw possible evidence"
        ev, do = random_case(m, rng, with_do=len(out) < N_DO)
        if _log_p(m, ev, do) == -math.inf:
            impossible.append((ev, do))
            continue
        out.append((ev, do))
    return out, impossible


def _log_p(m: Model, ev, do) -> float:
    return kb.get_engine(m.spec).log_probability(ev, do=do or None)


# --------------------------------------------------------------------------- our answers
def our_answers(m: Model, ev, do) -> dict[str, np.ndarray]:
    """Every node's posterior as the public API gives it: ``diagnose`` for diagnoses and
    mechanisms, ``query`` for every other node not observed or intervened on."""
    dx = kb.diagnose(ev, do=do, model=m.spec)
    out: dict[str, np.ndarray] = {}
    reported = {**dx.origins["posterior"].to_dict(), **dx.mechanisms["posterior"].to_dict()}
    for v, p in reported.items():
        st = m.states[v]
        on = kb.inference.queries.on_state(st)
        if len(st) == 2:
            out[v] = np.array([1 - p, p]) if st.index(on) == 1 else np.array([p, 1 - p])
    for v in m.states:
        if v in ev or v in do or v in out:
            continue
        out[v] = kb.query(v, ev, do=do, model=m.spec).to_numpy()
    out["__regions__"] = dict(dx.regions)
    return out


# --------------------------------------------------------------------------- (a) brute force
def test_against_brute_force_on_subnetworks(model):
    m = model
    possible, _ = cases(m)
    checked = total = regions_checked = evidence_checked = 0
    for ev, do in possible:
        ours = our_answers(m, ev, do)
        fixed = {**ev, **do}
        parents = {v: ([] if v in do else m.parents[v]) for v in m.parents}
        base = ancestral_closure(parents, fixed)
        if joint_size(m, base, fixed) <= MAX_JOINT:  # P(evidence) (under do) as well
            want = subnetwork_oracle(m, base, ev, do).probability()
            assert math.exp(_log_p(m, ev, do)) == pytest.approx(want, rel=1e-9, abs=0), (ev, do)
            evidence_checked += 1
        groups: dict[frozenset, list[str]] = {}
        for t in ours:
            if t == "__regions__":
                continue
            if t in fixed:  # reported by diagnose: a point mass on the given state
                want = np.array([float(s == fixed[t]) for s in m.states[t]])
                np.testing.assert_allclose(ours[t], want, atol=TOL, rtol=0, err_msg=t)
                continue
            total += 1
            groups.setdefault(frozenset(base | ancestral_closure(parents, [t])), []).append(t)
        for closure, targets in groups.items():
            if joint_size(m, closure, fixed) > MAX_JOINT:
                continue
            bf = subnetwork_oracle(m, set(closure), ev, do)
            post = bf.posterior(targets=targets)
            for t in targets:
                np.testing.assert_allclose(ours[t], post[t], atol=TOL, rtol=0,
                                           err_msg=f"{m.name}: {t} | {ev} do {do}")
                checked += 1
        # regions: P(at least one diagnosis of the region present) from the oracle's joint
        for region, members in m.regions.items():
            if region not in ours["__regions__"]:
                continue
            closure = base | ancestral_closure(parents, members)
            if joint_size(m, closure, fixed) > MAX_JOINT:
                continue
            bf = subnetwork_oracle(m, closure, ev, do)
            free = [d for d in members if d not in fixed]
            on = {d: m.states[d].index(kb.inference.queries.on_state(m.states[d])) for d in members}
            if any(fixed.get(d) == m.states[d][on[d]] for d in members):
                want = 1.0
            elif not free:
                want = 0.0
            else:
                joint = bf.marginal(free, {})
                idx = tuple(1 - on[d] if len(m.states[d]) == 2 else slice(None) for d in free)
                want = 1.0 - float(np.sum(joint[idx]))
            assert ours["__regions__"][region] == pytest.approx(want, abs=TOL), (
                m.name, region, ev, do)
            regions_checked += 1
    # enough of the answers were enumerated for the comparison to mean something
    share = checked / max(total, 1)
    print(f"{m.name}: {checked} node answers enumerated of {total} ({share:.0%}), "
          f"{regions_checked} region answers, P(evidence) of {evidence_checked} cases")
    assert checked >= 100 and share >= 0.25, (m.name, checked, total)
    assert evidence_checked >= N_EVIDENCE // 2, evidence_checked


def structural_zero_cases(m: Model, limit: int = 5):
    """Evidence on a whole family at a zero table entry (a structural zero): impossible."""
    out = []
    for v, (_, states, parents, table) in m.families.items():
        for idx in zip(*np.nonzero(table == 0.0)):
            ev = {v: states[idx[0]]}
            ev.update({p: m.states[p][i] for p, i in zip(parents, idx[1:])})
            out.append(ev)
            break
        if len(out) >= limit:
            break
    return out


def test_impossible_evidence_agrees(model):
    """Evidence the oracle gives probability zero (random draws, and each structural zero
    entered as evidence) is refused by the API with ImpossibleEvidenceError."""
    m = model
    _, drawn = cases(m)
    impossible = [*drawn[:5], *((ev, {}) for ev in structural_zero_cases(m))]
    if not impossible:
        pytest.skip(f"{m.name}: no structural zero, so no evidence is impossible")
    for ev, do in impossible:
        fixed = {**ev, **do}
        parents = {v: ([] if v in do else m.parents[v]) for v in m.parents}
        closure = ancestral_closure(parents, fixed)
        if joint_size(m, closure, fixed) <= MAX_JOINT:
            assert subnetwork_oracle(m, closure, ev, do).probability() == 0.0, (ev, do)
        with pytest.raises(ImpossibleEvidenceError):
            kb.diagnose(ev, do=do, model=m.spec)


# --------------------------------------------------------------------------- (b) pyAgrum
def _pyagrum_posteriors(bn, ev, do, targets, joint_sets=()):
    """LazyPropagation posteriors; interventions by surgery on a copy of the network."""
    if do:
        bn = gum.BayesNet(bn)
        for v, s in do.items():
            for p in list(bn.parents(v)):
                bn.eraseArc(p, bn.idFromName(v))
            var = bn.variable(v)
            bn.cpt(v).fillWith([1.0 if var.label(i) == s else 0.0
                                for i in range(var.domainSize())])
    ie = gum.LazyPropagation(bn)
    ie.setEvidence({**ev, **do})
    if joint_sets:  # a joint target would otherwise restrict the single-node targets
        ie.addAllTargets()
    for js in joint_sets:
        ie.addJointTarget(set(js))
    ie.makeInference()
    out = {}
    for v in targets:
        var = bn.variable(v)
        p = ie.posterior(v)
        out[v] = {var.label(i): p[{v: var.label(i)}] for i in range(var.domainSize())}
    joints = {}
    for js in joint_sets:
        joints[tuple(js)] = (ie.jointPosterior(set(js)), bn)
    return out, joints


def _compare_pyagrum(m: Model, bn, tol: float) -> int:
    possible, _ = cases(m)
    n = 0
    for ev, do in possible:
        ours = our_answers(m, ev, do)
        targets = [t for t in ours if t != "__regions__" and t not in {**ev, **do}]
        regions = {r: [d for d in mem if d not in {**ev, **do}]
                   for r, mem in m.regions.items() if r in ours["__regions__"]}
        joint_sets = [tuple(v) for v in regions.values() if len(v) >= 2]
        theirs, joints = _pyagrum_posteriors(bn, ev, do, targets, joint_sets)
        for t in targets:
            want = np.array([theirs[t][s] for s in m.states[t]])
            np.testing.assert_allclose(ours[t], want, atol=tol, rtol=0,
                                       err_msg=f"{m.name}: {t} | {ev} do {do}")
            n += 1
        fixed = {**ev, **do}
        for r, free in regions.items():
            members = m.regions[r]
            on = {d: kb.inference.queries.on_state(m.states[d]) for d in members}
            if any(fixed.get(d) == on[d] for d in members):
                want = 1.0
            elif not free:
                want = 0.0
            elif len(free) == 1:
                want = theirs[free[0]][on[free[0]]]
            else:
                pot, _ = joints[tuple(free)]
                off = {d: next(s for s in m.states[d] if s != on[d]) for d in free}
                want = 1.0 - pot[off] if all(len(m.states[d]) == 2 for d in free) else None
            if want is None:
                continue
            assert ours["__regions__"][r] == pytest.approx(want, abs=tol), (m.name, r, ev, do)
            n += 1
    return n


def test_against_pyagrum_lazy_propagation(model):
    n = _compare_pyagrum(model, model.bn, TOL)
    assert n >= N_EVIDENCE * 10, n


def test_pyagrum_plain_bif(model):
    """The plain ``.bif`` export opened in pyAgrum: the same answers to pyAgrum's parsing
    precision (its BIF reader keeps about 3e-8 of each number; the tables it read are
    checked against ours first, so a larger difference is a real disagreement)."""
    bn = gum.loadBN(str(model.bif))
    worst = 0.0
    for v, (_, _states, parents, table) in model.families.items():
        pot = bn.cpt(v)
        dims = [pot.variable(i) for i in reversed(range(pot.nbrDim()))]  # toarray's axes
        names = [d.name() for d in dims]
        arr = np.asarray(pot.toarray())
        for d in dims:
            labels = [d.label(i) for i in range(d.domainSize())]
            assert labels == model.states[d.name()], (v, d.name(), labels)
        ours = np.transpose(table, [[v, *parents].index(n) for n in names])
        worst = max(worst, float(np.max(np.abs(arr - ours))))
    assert worst < 1e-7, worst
    n = _compare_pyagrum(model, bn, 1e-7)
    assert n >= N_EVIDENCE * 10, n
