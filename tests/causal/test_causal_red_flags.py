"""Every causal result puts the referral warning first when a red flag is present."""

from __future__ import annotations

from pathlib import Path

import pytest
from scm_oracle import CHAIN_YAML, chain_spec_file


@pytest.fixture
def chain_spec(tmp_path: Path):
    return chain_spec_file(tmp_path)


def test_red_flags_lead_every_text_and_dict(chain_spec, tmp_path):
    import kneehip_bn as kb

    p = tmp_path / "flag.yaml"
    p.write_text(CHAIN_YAML.replace("  t:\n    group: test\n",
                                    "  t:\n    group: test\n    red_flag: true\n"), encoding="utf-8")
    spec = kb.load_spec(p)
    ev = {"d": "present", "t": "positive"}
    results = [kb.counterfactual(ev, do={"b": "absent"}, target="d", model=spec),
               kb.probability_of_causation("d", "b", ev, model=spec),
               kb.shapley(ev, model=spec), kb.flip(ev, "b", model=spec), kb.mpe(ev, model=spec)]
    for r in results:
        assert str(r).startswith("REFER: red flag (t)"), type(r).__name__
        d = r.to_dict()
        assert d["red_flags"] == ["t"] and next(iter(d)) == "warning"
    assert kb.mpe({"d": "present"}, model=spec).to_dict()["red_flags"] == []
