"""Independent oracles for the tests: brute-force enumeration and random networks.

Nothing here uses :mod:`kneehip_bn`: the oracle builds the full joint distribution with
numpy broadcasting and answers every question by summing it, so it shares no code (and no
bugs) with the junction-tree engine. It is only usable on small networks (the joint has
``prod(cards)`` entries; :func:`random_network` keeps that below ``max_joint``).

Families are ``(variable, states, parents, table)`` with ``table`` of shape
``(card, *parent_cards)`` and parents in table-axis order: the input of
``Engine.from_families`` and of :func:`to_pgmpy`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Family = tuple[str, list[str], list[str], np.ndarray]


class BruteForce:
    """Exact answers by enumerating the joint distribution.

    Parameters
    ----------
    families : list of (variable, states, parents, table)
        One conditional table per variable, ``table[s, p1, p2, ...] = P(var=s | parents)``.
    """

    def __init__(self, families: Sequence[Family]) -> None:
        self.families = [(str(v), [str(s) for s in st], [str(p) for p in pa], np.asarray(t, float))
                         for v, st, pa, t in families]
        self.variables = [f[0] for f in self.families]
        self.axis = {v: i for i, v in enumerate(self.variables)}
        self.states = {f[0]: f[1] for f in self.families}
        self.parents = {f[0]: f[2] for f in self.families}
        self.table = {f[0]: f[3] for f in self.families}
        self.card = [len(self.states[v]) for v in self.variables]

    @classmethod
    def from_pgmpy(cls, model: Any) -> BruteForce:
        """Families read from a pgmpy network's TabularCPDs."""
        fams = []
        for cpd in model.get_cpds():
            names = [str(x) for x in cpd.variables]
            fams.append((names[0], [str(s) for s in cpd.state_names[names[0]]], names[1:],
                         np.asarray(cpd.values, dtype=float)))
        return cls(fams)

    def _factor(self, var: str, table: np.ndarray, parents: Sequence[str]) -> np.ndarray:
        """``table`` over (var, *parents) broadcast to the joint's axes."""
        fam = [var, *parents]
        order = np.argsort([self.axis[x] for x in fam])
        arr = np.transpose(table, order)
        shape = [1] * len(self.variables)
        for x in fam:
            shape[self.axis[x]] = self.card[self.axis[x]]
        return arr.reshape(shape)

    def joint(
        self,
        evidence: Mapping[str, str] | None = None,
        do: Mapping[str, str] | None = None,
        virtual_evidence: Mapping[str, Sequence[float]] | None = None,
    ) -> np.ndarray:
        """The unnormalised joint P(x, evidence) (with do(): on the mutilated network)."""
        j = np.ones(self.card)
        do = dict(do or {})
        for v in self.variables:
            if v in do:
                point = np.zeros(len(self.states[v]))
                point[self.states[v].index(do[v])] = 1.0
                j = j * self._factor(v, point, [])
            else:
                j = j * self._factor(v, self.table[v], self.parents[v])
        for v, s in (evidence or {}).items():
            ind = np.zeros(len(self.states[v]))
            ind[self.states[v].index(s)] = 1.0
            j = j * self._factor(v, ind, [])
        for v, lik in (virtual_evidence or {}).items():
            j = j * self._factor(v, np.asarray(lik, dtype=float), [])
        return j

    def probability(self, evidence=None, do=None, virtual_evidence=None) -> float:
        """P(evidence) (for virtual evidence: the likelihood-weighted sum)."""
        return float(self.joint(evidence, do, virtual_evidence).sum())

    def marginal(self, targets: Sequence[str], evidence=None, do=None,
                 virtual_evidence=None) -> np.ndarray:
        """P(targets | evidence), an array with one axis per target (in ``targets`` order)."""
        j = self.joint(evidence, do, virtual_evidence)
        z = j.sum()
        if z == 0:
            raise ZeroDivisionError("impossible evidence")
        keep = [self.axis[t] for t in targets]
        out = j.sum(axis=tuple(i for i in range(j.ndim) if i not in keep))
        # out has the kept axes in ascending joint order; reorder to the requested order
        asc = sorted(keep)
        return np.transpose(out, [asc.index(k) for k in keep]) / z

    def posterior(self, evidence=None, targets=None, do=None, virtual_evidence=None):
        """``{node: P(node | evidence)}`` for every target (default: all variables)."""
        targets = self.variables if targets is None else targets
        j = self.joint(evidence, do, virtual_evidence)
        z = j.sum()
        if z == 0:
            raise ZeroDivisionError("impossible evidence")
        out = {}
        for t in targets:
            a = self.axis[t]
            out[t] = j.sum(axis=tuple(i for i in range(j.ndim) if i != a)) / z
        return out

    def family_posterior(self, var: str, evidence=None) -> np.ndarray:
        """P(var, *parents | evidence) shaped like the CPD table (card, *parent_cards)."""
        return self.marginal([var, *self.parents[var]], evidence)


def random_dag_families(
    seed: int,
    n_nodes: int | None = None,
    max_parents: int = 3,
    max_card: int = 4,
    alpha: float = 1.0,
    zero_prob: float = 0.0,
    max_joint: int = 20_000,
) -> list[Family]:
    """A random DAG with random CPTs (Dirichlet(alpha) columns), seedable.

    Nodes ``x0, x1, ...`` are in topological order; node ``i`` draws up to ``max_parents``
    parents among the earlier nodes; cards are 2..``max_card``; the joint stays below
    ``max_joint`` entries. ``zero_prob`` puts structural zeros into the tables (each entry
    zeroed with that probability, never a whole column), so some evidence is impossible.
    """
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 9)) if n_nodes is None else n_nodes
    fams: list[Family] = []
    cards: list[int] = []
    joint = 1
    for i in range(n):
        card = int(rng.integers(2, max_card + 1))
        while joint * card > max_joint and card > 2:
            card -= 1
        if joint * card > max_joint:
            break
        joint *= card
        k = int(rng.integers(0, min(i, max_parents) + 1))
        parents = sorted(rng.choice(i, size=k, replace=False).tolist()) if k else []
        rng.shuffle(parents)  # parents in arbitrary (not sorted) table order
        pc = [cards[p] for p in parents]
        cols = rng.dirichlet(np.full(card, alpha), size=int(np.prod(pc, dtype=int)))  # (cols, card)
        if zero_prob:
            mask = rng.random(cols.shape) < zero_prob
            mask[np.arange(cols.shape[0]), rng.integers(0, card, cols.shape[0])] = False
            cols = np.where(mask, 0.0, cols)
            cols = cols / cols.sum(axis=1, keepdims=True)
        table = cols.T.reshape([card, *pc])
        fams.append((f"x{i}", [f"s{j}" for j in range(card)], [f"x{p}" for p in parents], table))
        cards.append(card)
    return fams


def to_pgmpy(families: Sequence[Family]) -> Any:
    """A checked pgmpy ``DiscreteBayesianNetwork`` with the given tables (state names kept)."""
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.models import DiscreteBayesianNetwork

    states = {f[0]: list(f[1]) for f in families}
    model = DiscreteBayesianNetwork()
    model.add_nodes_from(f[0] for f in families)
    model.add_edges_from((p, f[0]) for f in families for p in f[2])
    cpds = []
    for v, st, pa, t in families:
        cpds.append(TabularCPD(
            variable=v, variable_card=len(st), values=np.asarray(t).reshape(len(st), -1),
            evidence=list(pa) or None, evidence_card=[len(states[p]) for p in pa] or None,
            state_names={v: list(st)} | {p: states[p] for p in pa}))
    model.add_cpds(*cpds)
    assert model.check_model()
    return model


def random_network(seed: int, **kwargs: Any) -> Any:
    """A random pgmpy network (see :func:`random_dag_families` for the options)."""
    return to_pgmpy(random_dag_families(seed, **kwargs))


def random_evidence(rng: np.random.Generator, states: Mapping[str, Sequence[str]],
                    k: int, exclude: Sequence[str] = ()) -> dict[str, str]:
    """``k`` random nodes (not in ``exclude``) with a random state each."""
    names = [v for v in states if v not in exclude]
    k = min(k, len(names))
    chosen = rng.choice(len(names), size=k, replace=False) if k else []
    return {names[i]: str(rng.choice(states[names[i]])) for i in chosen}
