"""How the classroom page groups a model's findings: as a clinician examines.

This module is the ONE place the grouping rules live (the page, the API's ``/api/model``
and the tests all read :func:`examination_sections`). They are derived from the model file,
never from a list of node names, so they work for both shipped models and any model file:

1. ``context`` nodes are the context selectors (age, sex, activity ...), not findings.
2. A finding with ``red_flag: true`` goes to **Red flags**.
3. Other ``finding`` nodes that are complaints (a symptom the patient reports: a name
   matching :data:`SYMPTOM_PATTERN`, e.g. ``*_pain``, ``numbness``, ``locking``,
   ``claudication``, ``injury``, ``worse``) go to **History**.
4. Signs seen by watching the patient (:data:`OBSERVATION_PATTERN`: ``gait``, ``limp``,
   ``posture``, ``observed``) go to **Observation**.
5. The remaining findings (signs) and every ``test`` node go to the examination of their
   region: **Knee**, **Hip** or **Spine**, by the first of

   a. the name (:data:`REGION_PATTERNS`, e.g. ``knee``/``patell``/``lachman`` → knee,
      ``hip``/``groin``/``fadir``/``trendelenburg`` → hip, ``lumbar``/``straight_leg``/
      ``slump``/``femoral_nerve``/``reflex`` → spine);
   b. the model: the ``region:`` of the diagnoses (origins) that reach the node through
      the graph, when they all share one region;

   and otherwise **Other findings**.

``origin`` and ``mechanism`` nodes are never entered on the case builder (diagnoses are
what the page infers; mechanisms are usually unobserved) but can be set in *what-if*.

Examples
--------
>>> from kneehip_bn import load_spec
>>> secs = examination_sections(load_spec("knee_hip_basic"))
>>> [s["id"] for s in secs]
['history', 'observation', 'knee', 'hip', 'spine']
>>> "straight_leg_raise" in secs[4]["nodes"]
True
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["OBSERVATION_PATTERN", "REGION_PATTERNS", "SECTION_TITLES", "SYMPTOM_PATTERN",
           "examination_sections", "finding_region"]

#: complaints a patient reports (the history), matched against the node name
SYMPTOM_PATTERN = re.compile(
    r"(pain|ache|numbness|tingling|paraesthesia|locking|catching|giving_way|stiffness"
    r"|claudication|injury|worse|unwell|fever|weight_loss|night)")

#: signs seen by watching the patient stand and walk
OBSERVATION_PATTERN = re.compile(r"(gait|limp|posture|observed)")

#: name patterns of each examination region, tried in this order
REGION_PATTERNS: dict[str, re.Pattern[str]] = {
    "spine": re.compile(r"(lumbar|back|spine|spinal|radiat|nerve|root|straight_leg|slump"
                        r"|reflex|numbness|tingling|claudication|buttock|anterior_thigh)"),
    "hip": re.compile(r"(hip|groin|trochanter|gluteal|fadir|faber|trendelenburg|derotation"
                      r"|single_leg_stance|acetab|labral)"),
    "knee": re.compile(r"(knee|patell|joint_line|menisc|mcmurray|lachman|effusion|squat"
                       r"|stairs|crepitus|locking|twisting|acl|valgus)"),
}

#: section id -> title, in the order the page shows them
SECTION_TITLES = {
    "history": "History (what the patient reports)",
    "observation": "Observation (gait, posture)",
    "knee": "Knee examination",
    "hip": "Hip examination",
    "spine": "Spine and nerve examination",
    "other": "Other findings",
    "red_flags": "Red flags",
}


def _ancestor_regions(spec: Any, node: str) -> set[str]:
    regions: set[str] = set()
    seen: set[str] = set()
    stack = list(spec.nodes[node].parents)
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        ps = spec.nodes[p]
        if ps.group == "origin" and ps.region:
            regions.add(ps.region)
        stack.extend(ps.parents)
    return regions


def finding_region(spec: Any, node: str) -> str | None:
    """The examination region of a finding or test (``knee``, ``hip``, ``spine`` or None).

    By name first (:data:`REGION_PATTERNS`), then by the ``region:`` of the diagnoses above it.

    >>> from kneehip_bn import load_spec
    >>> finding_region(load_spec("knee_hip_basic"), "fadir_test")
    'hip'
    """
    for region, pat in REGION_PATTERNS.items():
        if pat.search(node):
            return region
    regions = _ancestor_regions(spec, node) & {"knee", "hip", "spine"}
    return regions.pop() if len(regions) == 1 else None


def examination_sections(spec: Any) -> list[dict[str, Any]]:
    """The case builder's sections: ``[{"id", "title", "nodes": [...]}]`` (empty ones left out).

    Every ``finding`` and ``test`` node of the model is in exactly one section; the order of
    nodes within a section is the model file's.
    """
    out: dict[str, list[str]] = {k: [] for k in SECTION_TITLES}
    for name, node in spec.nodes.items():
        if node.group not in ("finding", "test"):
            continue
        if node.red_flag:
            out["red_flags"].append(name)
        elif node.group == "finding" and SYMPTOM_PATTERN.search(name):
            out["history"].append(name)
        elif node.group == "finding" and OBSERVATION_PATTERN.search(name):
            out["observation"].append(name)
        else:
            out[finding_region(spec, name) or "other"].append(name)
    return [{"id": k, "title": SECTION_TITLES[k], "nodes": v} for k, v in out.items() if v]
