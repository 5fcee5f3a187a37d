"""Counterfactuals, PN/PS, Shapley values, flips and MPE against independent oracles.

The structural oracle below (:class:`SCMOracle`) enumerates every exogenous configuration of
a small network written out by hand in this file: each noisy-OR link and leak its own
Bernoulli switch, each full table either the comonotone coupling (one uniform per node, the
state whose cumulative interval holds it) or independent noise per parent configuration
(one independent draw per row). It computes a counterfactual as the ratio of two sums over
the configurations consistent with the evidence; it shares no code with kneehip_bn.

The chain network (``CHAIN_YAML``)::

      a (low/mid/high)     b (absent/present)      roots
          \\  \\           /   |
           \\   c  (noisy-OR: leak .05, a=mid .3, a=high .6, b .5)
            \\  |  \\       |
             \\ |   d  (noisy-OR: leak .1, c .7, b .2)
               e  (full table, 3 states, parents a, c)
"""


from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

CHAIN_YAML = """\
format: kneehip-bn/1
name: chain
title: "Chain test network"
default_strength: 10
sources:
  g: {elicited: "test numbers"}
nodes:
  a:
    group: context
    states: [low, mid, high]
    table: {probabilities: {low: 0.5, mid: 0.3, high: 0.2}, source: g}
  b:
    group: origin
    states: [absent, present]
    table: {probabilities: {absent: 0.7, present: 0.3}, source: g}
  h:
    group: origin
    states: [absent, present]
    table: {probabilities: {absent: 0.8, present: 0.2}, source: g}
  c:
    group: mechanism
    states: [absent, present]
    parents: [a, b]
    noisy_or:
      leak: {p: 0.05, source: g}
      links:
        - {parent: a, when: mid, p: 0.3, source: g}
        - {parent: a, when: high, p: 0.6, source: g}
        - {parent: b, when: present, p: 0.5, source: g}
  d:
    group: finding
    states: [absent, present]
    parents: [c, b, h]
    noisy_or:
      leak: {p: 0.1, source: g}
      links:
        - {parent: c, when: present, p: 0.7, source: g}
        - {parent: b, when: present, p: 0.2, source: g}
        - {parent: h, when: present, p: 0.6, source: g}
  e:
    group: finding
    states: [none, some, much]
    parents: [a, c]
    table:
      - {given: {a: low, c: absent}, probabilities: {none: 0.5, some: 0.3, much: 0.2}, source: g}
      - {given: {a: low, c: present}, probabilities: {none: 0.2, some: 0.3, much: 0.5}, source: g}
      - {given: {a: mid, c: absent}, probabilities: {none: 0.2, some: 0.6, much: 0.2}, source: g}
      - {given: {a: mid, c: present}, probabilities: {none: 0.2, some: 0.3, much: 0.5}, source: g}
      - {given: {a: high, c: absent}, probabilities: {none: 0.5, some: 0.3, much: 0.2}, source: g}
      - {given: {a: high, c: present}, probabilities: {none: 0.2, some: 0.6, much: 0.2}, source: g}
  t:
    group: test
    states: [negative, positive]
    parents: [h]
    noisy_or:
      leak: {p: 0.1, source: g}
      links:
        - {parent: h, when: present, p: 0.7, source: g}
"""

AB = ["absent", "present"]


def chain_mechanisms() -> dict:
    """The chain network's mechanisms, typed in by hand (not read through our parser)."""
    e = np.array([[[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]], [[0.2, 0.6, 0.2], [0.2, 0.3, 0.5]],
                  [[0.5, 0.3, 0.2], [0.2, 0.6, 0.2]]])  # [a, c, state]
    return {
        "a": ("root", ["low", "mid", "high"], [0.5, 0.3, 0.2]),
        "b": ("root", AB, [0.7, 0.3]),
        "h": ("root", AB, [0.8, 0.2]),
        "c": ("noisy_or", AB, 0.05, [("a", 1, 0.3), ("a", 2, 0.6), ("b", 1, 0.5)]),
        "d": ("noisy_or", AB, 0.1, [("c", 1, 0.7), ("b", 1, 0.2), ("h", 1, 0.6)]),
        "e": ("table", ["none", "some", "much"], ["a", "c"], np.moveaxis(e, 2, 0)),
        "t": ("noisy_or", ["negative", "positive"], 0.1, [("h", 1, 0.7)]),
    }


def tiny_mechanisms() -> dict:
    """The conftest tiny network (gait a noisy-OR), by hand."""
    return {
        "age": ("root", ["young", "old"], [0.6, 0.4]),
        "knee_oa": ("table", AB, ["age"], np.array([[0.9, 0.6], [0.1, 0.4]])),
        "hip_oa": ("table", AB, ["age"], np.array([[0.95, 0.8], [0.05, 0.2]])),
        "gait": ("noisy_or", AB, 0.1, [("knee_oa", 1, 0.5), ("hip_oa", 1, 0.4)]),
        "limp": ("table", AB, ["gait"], np.array([[0.95, 0.3], [0.05, 0.7]])),
        "pain_level": ("table", ["none", "mild", "severe"], ["knee_oa"],
                       np.array([[0.7, 0.2], [0.2, 0.5], [0.1, 0.3]])),
    }


class SCMOracle:
    """Exact counterfactuals by enumerating every exogenous configuration."""

    def __init__(self, mechs: dict, coupling: str = "comonotone") -> None:
        self.mechs = mechs
        self.order = list(mechs)  # written in topological order
        self.states = {n: m[1] for n, m in mechs.items()}
        self.options = {n: self._options(n, coupling) for n in self.order}

    def _options(self, n: str, coupling: str) -> list[tuple[object, float]]:
        m = self.mechs[n]
        if m[0] == "root":
            return [(i, p) for i, p in enumerate(m[2]) if p > 0]
        if m[0] == "noisy_or":
            k = len(m[3]) + 1
            ps = [m[2]] + [ln[2] for ln in m[3]]
            return [(bits, math.prod(p if b else 1 - p for b, p in zip(bits, ps)))
                    for bits in itertools.product([0, 1], repeat=k)]
        table = m[3]
        cols = table.reshape(table.shape[0], -1)
        if coupling == "independent":  # one independent draw per parent configuration
            out = []
            for choice in itertools.product(range(cols.shape[0]), repeat=cols.shape[1]):
                w = math.prod(cols[s, j] for j, s in enumerate(choice))
                if w > 0:
                    out.append((choice, w))
            return out
        cuts = sorted({0.0, 1.0, *[float(x) for x in np.cumsum(cols, axis=0)[:-1].ravel()]})
        return [((lo + hi) / 2, hi - lo) for lo, hi in itertools.pairwise(cuts) if hi - lo > 1e-15]

    def value(self, n: str, u: object, vals: dict) -> int:
        m = self.mechs[n]
        if m[0] == "root":
            return int(u)  # type: ignore[arg-type]
        if m[0] == "noisy_or":
            on = bool(u[0]) or any(u[i + 1] and vals[p] == w  # type: ignore[index]
                                   for i, (p, w, _) in enumerate(m[3]))
            return 1 if on else 0
        table = m[3]
        cfg = tuple(vals[p] for p in m[2])
        if isinstance(u, tuple):
            return int(u[int(np.ravel_multi_index(cfg, table.shape[1:]))]) if cfg else int(u[0])
        cum = np.cumsum(table[(slice(None), *cfg)])
        return int(min(np.searchsorted(cum, u, side="right"), len(cum) - 1))

    def worlds(self, do: dict[str, int]):
        """Yield (weight, factual values, counterfactual values)."""
        names = self.order
        for combo in itertools.product(*[self.options[n] for n in names]):
            w = math.prod(o[1] for o in combo)
            fact: dict[str, int] = {}
            cf: dict[str, int] = {}
            for n, (u, _) in zip(names, combo):
                fact[n] = self.value(n, u, fact)
                cf[n] = do[n] if n in do else self.value(n, u, cf)
            yield w, fact, cf

    def counterfactual(self, evidence: dict[str, str], do: dict[str, str], target: str):
        di = {k: self.states[k].index(v) for k, v in do.items()}
        ei = {k: self.states[k].index(v) for k, v in evidence.items()}
        num = np.zeros(len(self.states[target]))
        for w, fact, cf in self.worlds(di):
            if all(fact[k] == v for k, v in ei.items()):
                num[cf[target]] += w
        if num.sum() == 0:
            raise ZeroDivisionError("impossible evidence")
        return num / num.sum()


def chain_spec_file(tmp_path: Path):
    """``CHAIN_YAML`` written to ``tmp_path`` and loaded (a test module's ``chain_spec``)."""
    from kneehip_bn import load_spec

    p = tmp_path / "chain.yaml"
    p.write_text(CHAIN_YAML, encoding="utf-8")
    return load_spec(p)


def cpd(spec, n):
    """P(n | parents) of a model file, through kneehip_bn (for the BruteForce oracle)."""
    from kneehip_bn.model.network import cpd_array

    return cpd_array(spec, n)
