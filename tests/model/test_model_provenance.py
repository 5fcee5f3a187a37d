"""Provenance of every number in both shipped models (``knee_hip`` and ``knee_hip_basic``).

- every source that a number names exists in the model's ``sources:`` (no missing source);
- every cited source carries an ``evidence_id`` whose IDs are all row IDs of
  ``shared/clinical/evidence.md`` (skipped, with the reason, when that file is absent, as in
  a CI run without ``shared/``), and none of them is a MEM-tagged (unverified) row;
- every ``elicited`` source has a one-line rationale;
- the counts of free parameters (one per two-state row, k - 1 per k-state row, one per
  noisy-OR leak or link) that are cited or elicited, per node group.

``python tests/model/test_model_provenance.py`` prints the counts table for both models (the table
in docs/readme/model2.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import kneehip_bn as kb

MODELS = ("knee_hip", "knee_hip_basic")
GROUPS = ("context", "origin", "mechanism", "finding", "test")
ID_RE = re.compile(r"\b([PXMT]\d+)\b")
ROW_RE = re.compile(r"^\|\s*([PXMT]\d+)\s*\|", flags=re.M)


def evidence_path() -> Path | None:
    """``shared/clinical/evidence.md`` beside the repository or beside one of its parents
    (a clone has ``shared/`` next to it; a worktree under ``wt/`` finds it one level up)."""
    repo = Path(__file__).resolve().parents[2]
    for base in (repo, *repo.parents):
        p = base / "shared" / "clinical" / "evidence.md"
        if p.is_file():
            return p
    return None


def evidence_rows(text: str) -> tuple[set[str], set[str]]:
    """(all row IDs, MEM-tagged row IDs) of evidence.md."""
    rows, mem = set(), set()
    for line in text.splitlines():
        m = ROW_RE.match(line)
        if m:
            rows.add(m.group(1))
            if "**MEM**" in line:
                mem.add(m.group(1))
    return rows, mem


def provenance_counts(spec) -> dict[str, dict[str, int]]:
    """``{group: {"cited": n, "elicited": n, "other": n}}`` over free parameters."""
    out = {g: {"cited": 0, "elicited": 0, "other": 0} for g in GROUPS}
    for name, _, entry in spec.entries():
        node = spec.nodes[name]
        n_free = len(node.states) - 1 if hasattr(entry, "probabilities") else 1
        src = spec.sources.get(entry.source)
        kind = {"citation": "cited", "elicited": "elicited"}.get(src.kind if src else "", "other")
        out.setdefault(node.group, {"cited": 0, "elicited": 0, "other": 0})[kind] += n_free
    return out


@pytest.fixture(scope="module", params=MODELS)
def spec(request):
    return kb.load_spec(request.param)


@pytest.fixture(scope="module")
def evidence():
    p = evidence_path()
    if p is None:
        pytest.skip("shared/clinical/evidence.md not found beside the repository (CI without "
                    "shared/): evidence IDs cannot be checked")
    return evidence_rows(p.read_text(encoding="utf-8"))


def test_every_number_names_an_existing_source(spec):
    missing = [(loc, e.source) for _, loc, e in spec.entries() if e.source not in spec.sources]
    assert not missing, missing


def test_every_cited_evidence_id_is_a_row_of_evidence_md(spec, evidence):
    rows, _ = evidence
    assert len(rows) > 100  # the file was parsed, not an empty match
    bad = []
    for sid, src in spec.sources.items():
        if src.kind != "citation":
            continue
        ids = ID_RE.findall(str(src.evidence_id or ""))
        if not ids:
            bad.append(f"{sid}: no evidence_id")
        bad.extend(f"{sid}: {i} is not a row of evidence.md" for i in ids if i not in rows)
    assert not bad, bad


def test_no_cited_number_rests_on_an_unverified_mem_row(spec, evidence):
    _, mem = evidence
    assert mem >= {"T2", "T13", "T20", "T39"}  # the parser sees the tags
    used = {e.source for _, _, e in spec.entries()}
    bad = [f"{sid}: {i}" for sid in used if spec.sources[sid].kind == "citation"
           for i in ID_RE.findall(str(spec.sources[sid].evidence_id or "")) if i in mem]
    assert not bad, bad


def test_every_elicited_source_has_a_one_line_rationale(spec):
    bad = []
    for sid, src in spec.sources.items():
        if src.kind != "elicited":
            continue
        text = str(src.elicited or "").strip()
        if len(text) < 20 or "\n" in text:
            bad.append(f"{sid}: {text!r}")
    assert not bad, bad


def test_counts_add_up_to_every_free_parameter(spec):
    counts = provenance_counts(spec)
    total = sum(len(spec.nodes[n].states) - 1 if hasattr(e, "probabilities") else 1
                for n, _, e in spec.entries())
    assert sum(sum(c.values()) for c in counts.values()) == total
    assert sum(c["other"] for c in counts.values()) == 0  # no user/fitted numbers shipped
    assert sum(c["cited"] for c in counts.values()) > 0


if __name__ == "__main__":
    for name in MODELS:
        c = provenance_counts(kb.load_spec(name))
        print(f"\n{name}\n| group | cited | elicited |\n|---|---|---|")
        for g in GROUPS:
            print(f"| {g} | {c[g]['cited']} | {c[g]['elicited']} |")
        tc = sum(v["cited"] for v in c.values())
        te = sum(v["elicited"] for v in c.values())
        print(f"| **all** | **{tc}** ({tc / (tc + te):.0%}) | **{te}** |")
