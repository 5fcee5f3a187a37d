"""The specification's vocabulary and the shipped models."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EVIDENCE_MD, REPO
from kneehip_bn import (
    UnknownNameError,
    load_spec,
    validate_spec,
)


def test_node_and_group_lookup_errors(tiny_spec):
    with pytest.raises(UnknownNameError, match=r"unknown node 'hip_ao'.*did you mean 'hip_oa'"):
        tiny_spec.node("hip_ao")
    with pytest.raises(UnknownNameError, match=r"unknown group 'orgin'.*did you mean 'origin'"):
        tiny_spec.group("orgin")


def test_shipped_model_is_valid_and_fully_sourced(shipped_spec):
    assert validate_spec(shipped_spec) is shipped_spec
    assert len(shipped_spec.nodes) == 31
    for g, n in {"context": 2, "origin": 5, "mechanism": 8, "finding": 12, "test": 4}.items():
        assert len(shipped_spec.group(g)) == n, g
    for rec in shipped_spec.provenance():
        assert rec["source_kind"] in ("citation", "elicited"), rec
        assert rec["source_text"], rec
    for sid, src in shipped_spec.sources.items():
        if sid in ("user", "fitted"):
            continue
        assert bool(src.citation) != bool(src.elicited), sid
    used = {e.source for _, _, e in shipped_spec.entries()}
    assert used <= set(shipped_spec.sources)


def test_shipped_evidence_ids_exist_in_evidence_md(shipped_spec):
    import re

    try:
        text = EVIDENCE_MD.read_text(encoding="utf-8")
    except OSError:
        pytest.skip(f"{EVIDENCE_MD} not readable")
    defined = set(re.findall(r"^\|\s*([PXMTR]\d+)\s*\|", text, flags=re.M))
    assert len(defined) > 50
    cited = set()
    for sid, src in shipped_spec.sources.items():
        ids = re.findall(r"\b([PXMTR]\d+)\b", str(src.evidence_id or ""))
        cited.update((sid, i) for i in ids)
    assert cited
    missing = sorted(f"{sid}: {i}" for sid, i in cited if i not in defined)
    assert not missing, missing


def test_shipped_model_loads_from_an_installed_layout(tmp_path):
    """Install layout without a build backend: the package plus kneehip_bn/data/knee_hip.yaml
    (what pyproject's force-include puts in the wheel); load_spec() must find it there."""
    import shutil
    import subprocess
    import sys
    import tomllib

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = cfg["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include == {"models/knee_hip.yaml": "kneehip_bn/data/knee_hip.yaml",
                       "models/knee_hip_basic.yaml": "kneehip_bn/data/knee_hip_basic.yaml"}
    site = tmp_path / "site"
    shutil.copytree(REPO / "src" / "kneehip_bn", site / "kneehip_bn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (site / "kneehip_bn" / "data").mkdir()
    for src, dst in include.items():
        shutil.copy(REPO / src, site / dst)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import kneehip_bn.model.spec as s; import kneehip_bn.model.yamlio as y; "
            "p = s.default_model_path(); spec = y.load_spec(); print(p); print(len(spec.nodes)); "
            "print(s.shipped_model_path('knee_hip_basic'))")
    out = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    path, n, basic = out.stdout.split()
    assert Path(path) == site / "kneehip_bn" / "data" / "knee_hip.yaml"
    assert int(n) == len(load_spec().nodes)
    assert Path(basic) == site / "kneehip_bn" / "data" / "knee_hip_basic.yaml"
