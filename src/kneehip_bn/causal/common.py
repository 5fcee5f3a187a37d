"""What the causal tools share: resolving a case with its red flags, and putting the
referral warning first in a result's text and JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.engine import Engine
from kneehip_bn.inference.queries import (
    Evidence,
    as_model,
    red_flag_warning,
    red_flags_present,
    resolve_evidence,
)

__all__ = ["format_evidence", "setup_case", "text_with_flags", "with_flags"]


def setup_case(evidence: Evidence, model: Any, what: str = "evidence"
               ) -> tuple[Any, Engine, dict[str, str], list[str]]:
    """(model, engine, resolved evidence, red flags present)."""
    m = as_model(model)
    eng = get_engine(m)
    ev = resolve_evidence(eng, evidence, what=what)
    return m, eng, ev, red_flags_present(m, ev)


def with_flags(d: dict[str, Any], flags: Sequence[str]) -> dict[str, Any]:
    """``d`` with ``"warning"`` first (when a red flag is present) and ``"red_flags"``."""
    out: dict[str, Any] = {}
    if flags:
        out["warning"] = red_flag_warning(flags)
    out.update(d)
    out["red_flags"] = list(flags)
    return out


def text_with_flags(text: str, flags: Sequence[str]) -> str:
    """``text`` after the referral warning (when a red flag is present)."""
    return f"{red_flag_warning(flags)}\n\n{text}" if flags else text


def format_evidence(ev: Mapping[str, str]) -> str:
    """``NODE=STATE`` items joined by commas, or ``none``."""
    return ", ".join(f"{k}={v}" for k, v in ev.items()) or "none"
