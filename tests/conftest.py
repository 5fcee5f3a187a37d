"""Shared fixtures: a tiny hand-worked network, the shipped model, oracles, Hypothesis profile.

The tiny network (``tiny_spec``), written in the model-file format::

            age                      context   (young 0.6 / old 0.4)
           /    \\
      knee_oa   hip_oa               origins   (present: 0.1 / 0.4 by age; 0.05 / 0.2 by age)
        |  \\    /
        |   gait                     mechanism (noisy-OR: leak 0.1, knee_oa 0.5, hip_oa 0.4)
        |     |
   pain_level limp                   findings  (pain_level: 3 states none/mild/severe)

Tables::

    P(age)                      young 0.6, old 0.4
    P(knee_oa=present | age)    young 0.10, old 0.40
    P(hip_oa=present | age)     young 0.05, old 0.20
    P(gait=absent | k, h)       = 0.9 * (0.5 if knee_oa) * (0.6 if hip_oa)
                                  -> present: 0.10 (k0 h0), 0.55 (k1 h0), 0.46 (k0 h1), 0.73 (k1 h1)
    P(limp=present | gait)      absent 0.05, present 0.70
    P(pain_level | knee_oa)     absent (0.7, 0.2, 0.1), present (0.2, 0.5, 0.3)

Hand-worked posteriors (by hand, not with our code; re-derived with fractions in
tests/inference/test_engine.py::test_tiny_hand_worked):

1. P(knee_oa=present) = 0.6*0.1 + 0.4*0.4 = 0.22.
2. P(knee_oa=present | pain_level=severe) = 0.22*0.3 / (0.22*0.3 + 0.78*0.1) = 0.066/0.144 = 11/24.
3. Given age=old and gait=present, the four (knee, hip) weights are
   0.6*0.8*0.10=0.048, 0.4*0.8*0.55=0.176, 0.6*0.2*0.46=0.0552, 0.4*0.2*0.73=0.0584
   (sum 0.3376), so P(hip_oa=present | old, gait) = 0.1136/0.3376 = 71/211 = 0.3365.
   Adding knee_oa=present explains the gait away:
   P(hip_oa | old, gait, knee_oa) = 0.2*0.73 / (0.2*0.73 + 0.8*0.55) = 0.146/0.586 = 73/293 = 0.2491.
4. do(knee_oa=present): P(gait=present) = sum over age of P(age) * sum over hip of
   P(hip | age) * P(gait | k1, hip) = 0.89*0.55 + 0.11*0.73 = 0.5698 (P(hip_oa) = 0.11), and
   P(age=old) stays 0.4 (observing knee_oa=present would give 0.16/0.22 = 8/11).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from oracle import BruteForce

settings.register_profile(
    "fast", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

REPO = Path(__file__).resolve().parents[1]
EVIDENCE_MD = REPO.parent / "shared" / "clinical" / "evidence.md"

TINY_YAML = """\
# the tiny test network (see tests/conftest.py)
format: kneehip-bn/1
name: tiny
title: "Tiny test network"
default_strength: 10
sources:
  census: {citation: "Made-up census 2020", evidence_id: P1}
  guess: {elicited: "A number chosen for the hand-worked test cases"}
nodes:
  age:
    group: context
    states: [young, old]
    table:
      probabilities: {young: 0.6, old: 0.4}
      source: census
  knee_oa:
    group: origin
    states: [absent, present]
    parents: [age]
    table:
      - given: {age: young}
        probabilities: {absent: 0.9, present: 0.1}
        source: census
      - given: {age: old}
        probabilities: {absent: 0.6, present: 0.4}
        source: census
  hip_oa:
    group: origin
    states: [absent, present]
    parents: [age]
    strength: 5
    table:
      - given: {age: young}
        probabilities: {absent: 0.95, present: 0.05}
        source: guess
      - given: {age: old}
        probabilities: {absent: 0.8, present: 0.2}
        source: guess
        note: "older hips"
  gait:
    group: mechanism
    states: [absent, present]
    parents: [knee_oa, hip_oa]
    noisy_or:
      leak: {p: 0.1, source: guess}
      links:
        - {parent: knee_oa, when: present, p: 0.5, source: guess}
        - {parent: hip_oa, p: 0.4, source: census}
  limp:
    group: finding
    states: [absent, present]
    parents: [gait]
    table:
      - given: {gait: absent}
        probabilities: {absent: 0.95, present: 0.05}
        source: guess
      - given: {gait: present}
        probabilities: {absent: 0.3, present: 0.7}
        source: guess
  pain_level:
    group: finding
    states: [none, mild, severe]
    parents: [knee_oa]
    table:
      - given: {knee_oa: absent}
        probabilities: {none: 0.7, mild: 0.2, severe: 0.1}
        source: guess
      - given: {knee_oa: present}
        probabilities: {none: 0.2, mild: 0.5, severe: 0.3}
        source: guess
"""


def tiny_families() -> list[tuple[str, list[str], list[str], np.ndarray]]:
    """The tiny network's tables typed in by hand (not through our parser)."""
    ab = ["absent", "present"]
    gait_on = np.array([[0.10, 0.46], [0.55, 0.73]])  # [knee, hip]
    return [
        ("age", ["young", "old"], [], np.array([0.6, 0.4])),
        ("knee_oa", ab, ["age"], np.array([[0.9, 0.6], [0.1, 0.4]])),
        ("hip_oa", ab, ["age"], np.array([[0.95, 0.8], [0.05, 0.2]])),
        ("gait", ab, ["knee_oa", "hip_oa"], np.stack([1 - gait_on, gait_on])),
        ("limp", ab, ["gait"], np.array([[0.95, 0.3], [0.05, 0.7]])),
        ("pain_level", ["none", "mild", "severe"], ["knee_oa"],
         np.array([[0.7, 0.2], [0.2, 0.5], [0.1, 0.3]])),
    ]


@pytest.fixture
def tiny_yaml_path(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY_YAML, encoding="utf-8")
    return p


@pytest.fixture
def tiny_spec(tiny_yaml_path: Path):
    from kneehip_bn import load_spec

    return load_spec(tiny_yaml_path)


@pytest.fixture(scope="session")
def tiny_oracle() -> BruteForce:
    return BruteForce(tiny_families())


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """The hand-worked network ``MINI`` of ``tests/teaching/mini.py`` as a model file (the
    teaching tests; ``mini`` is importable from their folder)."""
    from mini import mini_spec

    return mini_spec(tmp_path_factory)


@pytest.fixture(scope="module")
def bf():
    """The brute-force oracle of ``MINI``."""
    from mini import mini_families

    return BruteForce(mini_families())


@pytest.fixture(scope="session")
def shipped_spec():
    """The basic edition (five origins): the vocabulary most tests were written in."""
    from kneehip_bn import load_spec

    return load_spec("knee_hip_basic")


@pytest.fixture(scope="session")
def shipped_model(shipped_spec):
    from kneehip_bn import build_network

    return build_network(shipped_spec)


@pytest.fixture(scope="session")
def shipped_engine(shipped_spec):
    from kneehip_bn import Engine

    return Engine(shipped_spec)


@pytest.fixture(scope="session")
def alarm_model():
    """ALARM (37 nodes, ships inside pgmpy), with the columns of HREKG and HRSAT
    renormalised: they sum to 1 - 1e-7, and VariableElimination (which prunes barren nodes)
    and a junction tree (which multiplies every table) then differ by ~1e-8."""
    import warnings

    from pgmpy.utils import get_example_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = get_example_model("alarm")
    for cpd in model.get_cpds():
        vals = cpd.get_values()
        cpd.values = (vals / vals.sum(axis=0, keepdims=True)).reshape(cpd.values.shape)
    assert model.check_model()
    return model


@pytest.fixture
def broken_yaml_path(tmp_path: Path) -> Path:
    """The tiny model with a parent name misspelled."""
    p = tmp_path / "broken.yaml"
    p.write_text(TINY_YAML.replace("parents: [gait]", "parents: [giat]"), encoding="utf-8")
    return p
