"""The teaching tests' network ``MINI`` (model-file form) and its tables typed in by hand
(``mini_families``, the oracle's input; noisy-OR tables written out with their formula, not
through our code)::

        ctx                      context  (a 0.7 / b 0.3)
         |
         o1 ------> o3           origins  (o1 by ctx: 0.2 / 0.4; o2 0.3; o3 | o1: 0.1 / 0.5)
         | \\        |  \\
         |  m <- o2 |   t1       m: noisy-OR leak 0.05, o1 0.6, o2 0.3;  t1 (test) | o3
         | / \\   |  \\ |          z | o2: structural zero (z absent when o2 absent)
        f1   f2  z  f3          f1 | o1, m;  f2 | m, o3;  f3 (none/mild/severe) | o2
                 |
                 t2              t2 (test) | z
"""

from __future__ import annotations

import math

import numpy as np

from kneehip_bn import load_spec
from oracle import BruteForce

MINI = """\
format: kneehip-bn/1
name: mini
default_strength: 10
sources:
  s: {elicited: "numbers made up for the tests"}
nodes:
  ctx:
    group: context
    states: [a, b]
    table: {probabilities: {a: 0.7, b: 0.3}, source: s}
  o1:
    group: origin
    states: [absent, present]
    parents: [ctx]
    table:
      - {given: {ctx: a}, probabilities: {absent: 0.8, present: 0.2}, source: s}
      - {given: {ctx: b}, probabilities: {absent: 0.6, present: 0.4}, source: s}
  o2:
    group: origin
    states: [absent, present]
    table: {probabilities: {absent: 0.7, present: 0.3}, source: s}
  o3:
    group: origin
    states: [absent, present]
    parents: [o1]
    table:
      - {given: {o1: absent}, probabilities: {absent: 0.9, present: 0.1}, source: s}
      - {given: {o1: present}, probabilities: {absent: 0.5, present: 0.5}, source: s}
  m:
    group: mechanism
    states: [absent, present]
    parents: [o1, o2]
    noisy_or:
      leak: {p: 0.05, source: s}
      links:
        - {parent: o1, p: 0.6, source: s}
        - {parent: o2, p: 0.3, source: s}
  z:
    group: mechanism
    states: [absent, present]
    parents: [o2]
    table:
      - {given: {o2: absent}, probabilities: {absent: 1.0, present: 0.0}, source: s}
      - {given: {o2: present}, probabilities: {absent: 0.6, present: 0.4}, source: s}
  f1:
    group: finding
    states: [absent, present]
    parents: [o1, m]
    noisy_or:
      leak: {p: 0.1, source: s}
      links:
        - {parent: o1, p: 0.7, source: s}
        - {parent: m, p: 0.4, source: s}
  f2:
    group: finding
    states: [absent, present]
    parents: [m, o3]
    noisy_or:
      leak: {p: 0.05, source: s}
      links:
        - {parent: m, p: 0.5, source: s}
        - {parent: o3, p: 0.6, source: s}
  f3:
    group: finding
    states: [none, mild, severe]
    parents: [o2]
    table:
      - {given: {o2: absent}, probabilities: {none: 0.6, mild: 0.3, severe: 0.1}, source: s}
      - {given: {o2: present}, probabilities: {none: 0.2, mild: 0.3, severe: 0.5}, source: s}
  t1:
    group: test
    states: [negative, positive]
    parents: [o3]
    noisy_or:
      leak: {p: 0.2, source: s}
      links:
        - {parent: o3, p: 0.7, source: s}
  t2:
    group: test
    states: [negative, positive]
    parents: [z]
    noisy_or:
      leak: {p: 0.05, source: s}
      links:
        - {parent: z, p: 0.9, source: s}
"""

ORIGINS = ["o1", "o2", "o3"]
AB = ["absent", "present"]
NP = ["negative", "positive"]


def nor(leak: float, *ps: float) -> np.ndarray:
    """Noisy-OR table (2, 2, ..., 2): P(off | u) = (1 - leak) * prod over active links (1 - p)."""
    k = len(ps)
    off = np.full([2] * k, 1.0 - leak)
    for j, p in enumerate(ps):
        shape = [1] * k
        shape[j] = 2
        off = off * np.array([1.0, 1.0 - p]).reshape(shape)
    return np.stack([off, 1.0 - off])


def mini_families(m_leak: float = 0.05):
    return [
        ("ctx", ["a", "b"], [], np.array([0.7, 0.3])),
        ("o1", AB, ["ctx"], np.array([[0.8, 0.6], [0.2, 0.4]])),
        ("o2", AB, [], np.array([0.7, 0.3])),
        ("o3", AB, ["o1"], np.array([[0.9, 0.5], [0.1, 0.5]])),
        ("m", AB, ["o1", "o2"], nor(m_leak, 0.6, 0.3)),
        ("z", AB, ["o2"], np.array([[1.0, 0.6], [0.0, 0.4]])),
        ("f1", AB, ["o1", "m"], nor(0.1, 0.7, 0.4)),
        ("f2", AB, ["m", "o3"], nor(0.05, 0.5, 0.6)),
        ("f3", ["none", "mild", "severe"], ["o2"], np.array([[0.6, 0.2], [0.3, 0.3], [0.1, 0.5]])),
        ("t1", NP, ["o3"], nor(0.2, 0.7)),
        ("t2", NP, ["z"], nor(0.05, 0.9)),
    ]


def on(node: str) -> int:
    """Index of the "on" state: present/positive (second), or the last state (f3: severe)."""
    return 2 if node == "f3" else 1


def logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def p_on(bf: BruteForce, node: str, evidence, do=None) -> float:
    return float(bf.marginal([node], evidence, do=do)[on(node)])


def entropy(p: np.ndarray) -> float:
    p = np.asarray(p, dtype=float).ravel()
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


CASES = [
    {"f1": "present", "f2": "present"},
    {"f1": "present", "f3": "severe", "t1": "negative"},
    {"ctx": "b", "f2": "present", "t2": "positive", "f3": "mild"},
    {"f1": "absent", "f2": "present", "t1": "positive", "f3": "none"},
]


def mini_spec(tmp_path_factory) -> object:
    """``MINI`` written to a temporary model file and loaded (a test module's fixture)."""
    p = tmp_path_factory.mktemp("mini") / "mini.yaml"
    p.write_text(MINI, encoding="utf-8")
    return load_spec(p)
