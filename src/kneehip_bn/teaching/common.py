"""What the teaching tools share: resolving a case, the origins to rank, the engine's code
matrix and family tables, and the red-flag attributes of a teaching table.

The causal tools (:mod:`kneehip_bn.causal`) and the classroom server (:mod:`kneehip_bn.serve`)
use these too, so they are public names of this module (not of the package's API).

:func:`logit` and the entropy of :mod:`kneehip_bn.teaching.next_test` are written with numpy
rather than taken from ``scipy.special.logit`` / ``scipy.stats.entropy`` (they give the same
numbers, ``tests/teaching/test_common.py``): these paths load no scipy, and importing
``scipy.special`` costs 0.08 s and ``scipy.stats`` 0.49 s on the cold start of
``kneehip explain`` / ``kneehip next-test``.

Examples
--------
>>> from kneehip_bn import get_engine, load_spec
>>> from kneehip_bn.teaching.common import evidence_codes, states_text
>>> eng = get_engine(load_spec("knee_hip_basic"))
>>> states_text({"knee_pain": "present", "hip_pain": "absent"})
'knee_pain=present, hip_pain=absent'
>>> evidence_codes(eng, [{"knee_pain": "present"}, {}], ["knee_pain"]).tolist()
[[1], [-1]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kneehip_bn.errors import KneeHipError, UnknownNameError
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.engine import Engine
from kneehip_bn.inference.queries import (
    Evidence,
    as_model,
    check_do_vs_evidence,
    node_groups,
    on_state,
    red_flag_warning,
    red_flags_present,
    resolve_evidence,
)

__all__ = [
    "LN2",
    "evidence_codes",
    "family_table",
    "flag_attrs",
    "flags_json",
    "group_nodes",
    "logit",
    "node_label",
    "on_index",
    "origin_list",
    "setup_query",
    "states_text",
]

LN2 = math.log(2.0)


def setup_query(evidence: Evidence, do: Evidence, model: Any
                ) -> tuple[Any, Engine, dict[str, str], dict[str, str]]:
    """(model, engine, resolved evidence, resolved ``do``) of a teaching query; the
    evidence and the interventions must not name the same node."""
    m = as_model(model)
    eng = get_engine(m)
    ev = resolve_evidence(eng, evidence)
    dov = resolve_evidence(eng, do, what="do")
    check_do_vs_evidence(ev, dov)
    return m, eng, ev, dov


def flag_attrs(df: Any, model: Any, ev: Mapping[str, str]) -> None:
    """Red flags of a teaching table: ``attrs["red_flags"]`` and ``attrs["warning"]``."""
    flags = red_flags_present(model, ev)
    df.attrs["red_flags"] = flags
    df.attrs["warning"] = red_flag_warning(flags)


def flags_json(df: Any) -> dict[str, Any]:
    """``{"warning": ..., "red_flags": [...]}`` of a teaching table (the warning only when
    a red flag is present), as the CLI's and the classroom page's JSON carry it."""
    flags = list(df.attrs.get("red_flags", []))
    return ({"warning": df.attrs["warning"]} if flags else {}) | {"red_flags": flags}


def on_index(eng: Engine, node: str) -> int:
    """Index of the node's "on" state (``present``/``positive``) in the engine."""
    return eng.state_index[node][on_state(eng.states[node])]


def node_label(node: str) -> str:
    """The node's name for a sentence (``knee_pain`` -> ``knee pain``)."""
    return node.replace("_", " ")


def group_nodes(m: Any, eng: Engine, group: str) -> list[str]:
    """The model's nodes of ``group`` (e.g. ``"origin"``), in the model's order."""
    groups = node_groups(m)
    return [n for n in groups if groups[n] == group and n in eng.index]


def origin_list(m: Any, eng: Engine, origins: Sequence[str] | None,
                strict: bool = False) -> list[str]:
    """The origins to rank (default: the model's origin group). ``strict``: each one
    given must be an origin of the model (``explain --origin knee_pain`` is an error
    naming the origins, not "every origin is observed")."""
    if origins is None:
        out = group_nodes(m, eng, "origin")
        if not out:
            raise KneeHipError("model: expected nodes in the group 'origin', found none; "
                               "pass origins=[...] explicitly")
        return out
    out = []
    for o in origins:
        if o not in eng.index:
            raise UnknownNameError.for_name("node", o, eng.variables, where="origins")
        known = group_nodes(m, eng, "origin") if strict else []
        if known and o not in known:
            raise UnknownNameError.for_name("origin", o, known, where="origins")
        out.append(o)
    return out


def evidence_codes(eng: Engine, rows: Sequence[Mapping[str, str]],
                   columns: Sequence[str]) -> np.ndarray:
    """Evidence rows (dicts) as the engine's code matrix (-1 = not observed)."""
    codes = np.full((len(rows), len(columns)), -1, dtype=np.intp)
    for i, row in enumerate(rows):
        for j, c in enumerate(columns):
            if c in row:
                codes[i, j] = eng.state_index[c][row[c]]
    return codes


def logit(p: np.ndarray | float) -> np.ndarray:
    """``log(p / (1 - p))``, elementwise (``inf`` at 1, ``-inf`` at 0), as
    ``scipy.special.logit``."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p) - np.log1p(-p)


def family_table(eng: Engine, var: str) -> np.ndarray:
    """P(var | parents) from the engine, shape (card, *parent_cards) in eng.parents order."""
    fam, arr = eng.factors[eng.index[var]]
    order = [eng.index[var]] + [eng.index[p] for p in eng.parents[var]]
    return arr.transpose([fam.index(x) for x in order])


def states_text(d: Mapping[str, str]) -> str:
    """``NODE=STATE`` items joined by commas."""
    return ", ".join(f"{k}={v}" for k, v in d.items())

