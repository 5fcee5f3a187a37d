"""Small model files for the tests: TINY_YAML with one change, written and loaded."""

from __future__ import annotations

from pathlib import Path

from conftest import TINY_YAML
from kneehip_bn import load_spec


def variant(*pairs: tuple[str, str]) -> str:
    """TINY_YAML with each ``old`` replaced by ``new`` (each ``old`` must occur once)."""
    text = TINY_YAML
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def load_text(tmp_path: Path, text: str, name: str = "m.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return load_spec(p)


LIMP_ROWS = """      - given: {gait: absent}
        probabilities: {absent: 0.95, present: 0.05}
        source: guess
      - given: {gait: present}
        probabilities: {absent: 0.3, present: 0.7}
        source: guess
"""
