"""The JSON answers behind the classroom page: the CLI's ``--json`` output, from a request body.

Each ``*_json`` function takes the server's fixed model (a :class:`~kneehip_bn.ModelSpec`)
and a request body already decoded from JSON, checks the body's shape (:func:`check_body`),
and calls the SAME library functions, with the same arguments, as the matching ``kneehip``
command in :mod:`kneehip_bn.cli.model` / :mod:`kneehip_bn.cli.teach`, building the same dict: the
numbers are identical to ``kneehip COMMAND --json`` (``tests/test_serve_api.py`` compares them
by running :func:`kneehip_bn.cli.main`).

Body fields mirror the command's options (their ``argparse`` names): ``evidence`` and ``do``
are objects ``{node: state}``, ``set`` a list of ``--set`` edits, and e.g. ``variable``
(query), ``origin`` (explain), ``scenario`` / ``target`` (what-if), ``candidate`` / ``cost``
/ ``top`` (next-test), ``simulate`` / ``seed`` (conflict). A wrong shape raises
:class:`BodyError` with a one-line message (where, expected, found), the same style as the
library's errors.

Examples
--------
>>> from kneehip_bn import load_spec
>>> spec = load_spec("knee_hip_basic")
>>> out = query_json(spec, {"variable": "hip_pain", "do": {"knee_pathology": "absent"}})
>>> sorted(out["distribution"])
['absent', 'present']
>>> try:
...     diagnose_json(spec, {"evidence": ["knee_pain=present"]})
... except BodyError as exc:
...     print(exc)
body.evidence: expected an object {node: state}, found a list
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from threading import Lock
from typing import Any

import numpy as np

from kneehip_bn.errors import EvidenceError, KneeHipError
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.queries import (
    diagnosis_dict,
    diagnosis_rows,
    on_state,
    parse_assignments,
    query,
)
from kneehip_bn.model.edit import apply_overrides
from kneehip_bn.teaching.common import flags_json
from kneehip_bn.teaching.conflict import conflict
from kneehip_bn.teaching.explain import explain
from kneehip_bn.teaching.next_test import next_best_test
from kneehip_bn.teaching.what_if import parse_scenario, what_if

__all__ = [
    "ENDPOINT_FIELDS",
    "MAX_EDITS",
    "MAX_EVIDENCE",
    "MAX_SCENARIOS",
    "MAX_SIMULATE",
    "BodyError",
    "OverrideCache",
    "case_summary_json",
    "check_body",
    "conflict_json",
    "diagnose_json",
    "edited_spec",
    "explain_json",
    "next_test_json",
    "query_json",
    "what_if_json",
]

#: at most this many evidence (or do) entries in one request
MAX_EVIDENCE = 64
#: at most this many ``set`` edits in one request (sliders)
MAX_EDITS = 16
#: at most this many what-if scenarios
MAX_SCENARIOS = 12
#: ``simulate`` of the conflict endpoint at most this (the CLI has no bound; a shared server does)
MAX_SIMULATE = 2000

_COMMON = ("evidence", "do", "set")
#: the fields each endpoint accepts (beyond these, a body is refused, naming the choices)
ENDPOINT_FIELDS: dict[str, tuple[str, ...]] = {
    "diagnose": _COMMON,
    "query": (*_COMMON, "variable"),
    "explain": (*_COMMON, "origin"),
    "what-if": (*_COMMON, "scenario", "scenarios", "target"),
    "next-test": (*_COMMON, "candidate", "cost", "top"),
    "conflict": (*_COMMON, "simulate", "seed"),
    "case": _COMMON,
    "graph": _COMMON,
}


class BodyError(KneeHipError, ValueError):
    """A request body of the wrong shape (a field missing, unknown, or of the wrong type)."""


def _kind(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "a boolean"
    if isinstance(x, (int, float)):
        return "a number"
    if isinstance(x, str):
        return "a string"
    if isinstance(x, list):
        return "a list"
    if isinstance(x, dict):
        return "an object"
    return type(x).__name__


def _assignments(body: Mapping[str, Any], key: str) -> dict[str, str]:
    v = body.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise BodyError(f"body.{key}: expected an object {{node: state}}, found {_kind(v)}")
    if len(v) > MAX_EVIDENCE:
        raise BodyError(f"body.{key}: expected at most {MAX_EVIDENCE} entries, found {len(v)}")
    for k, s in v.items():
        if not isinstance(s, str):
            raise BodyError(f"body.{key}.{k}: expected a state name (a string), found {_kind(s)}")
    return dict(v)


def _strings(body: Mapping[str, Any], key: str, limit: int) -> list[str] | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise BodyError(f"body.{key}: expected a list of strings, found {_kind(v)}"
                        + ("" if not isinstance(v, list) else " with a non-string item"))
    if len(v) > limit:
        raise BodyError(f"body.{key}: expected at most {limit} items, found {len(v)}")
    return list(v)


def _int(body: Mapping[str, Any], key: str, default: int | None) -> int | None:
    v = body.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise BodyError(f"body.{key}: expected an integer, found {_kind(v)}")
    return v


def check_body(body: Any, endpoint: str) -> dict[str, Any]:
    """Check a decoded body's top-level shape for ``endpoint``; return it as a dict.

    >>> check_body({"evidence": {}, "modle": 1}, "diagnose")
    Traceback (most recent call last):
    ...
    kneehip_bn.serve.api.BodyError: body: unknown field 'modle': expected one of evidence, do, set
    """
    if not isinstance(body, dict):
        raise BodyError(f"body: expected a JSON object such as {{\"evidence\": {{...}}}}, "
                        f"found {_kind(body)}")
    allowed = ENDPOINT_FIELDS[endpoint]
    for k in body:
        if k == "model":
            raise BodyError("body.model: the model is fixed when the server starts "
                            "(kneehip serve --model ...); expected no 'model' field")
        if k not in allowed:
            raise BodyError(f"body: unknown field '{k}': expected one of {', '.join(allowed)}")
    return body


class OverrideCache:
    """The server's model with ``set`` edits applied, the last ``size`` edit lists kept.

    A slider on the page sends the same few edits again and again; each distinct list of
    edits is applied (:func:`~kneehip_bn.model.edit.apply_overrides`) and compiled once.
    """

    def __init__(self, spec: Any, size: int = 64, results: int = 512) -> None:
        self.spec = spec
        self.size = size
        self.results = results
        self._cache: OrderedDict[tuple[str, ...], Any] = OrderedDict()
        self._memo: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = Lock()

    def memo(self, key: tuple, make: Callable[[], Any]) -> Any:
        """``make()`` once per ``key`` (the last ``results`` kept): answers are pure
        functions of the request, so students building the same case share them."""
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        value = make()
        with self._lock:
            self._memo[key] = value
            while len(self._memo) > self.results:
                self._memo.popitem(last=False)
        return value

    def get(self, edits: list[str] | None) -> Any:
        """The spec with ``edits`` applied (the base spec for none)."""
        if not edits:
            return self.spec
        key = tuple(edits)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        spec = apply_overrides(self.spec, list(edits))
        with self._lock:
            self._cache[key] = spec
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return spec


def edited_spec(models: OverrideCache, body: Mapping[str, Any]) -> Any:
    """The spec of a checked body: the server's model with the body's ``set`` edits."""
    return models.get(_strings(body, "set", MAX_EDITS))


def _setup(models: OverrideCache, body: Any, endpoint: str):
    body = check_body(body, endpoint)
    ev = _assignments(body, "evidence")
    dov = _assignments(body, "do")
    spec = edited_spec(models, body)
    return body, spec, ev, dov


def case_key(body: Mapping[str, Any]) -> tuple:
    """A hashable key of a checked body's case (evidence, do, edits)."""
    return (tuple(sorted((body.get("evidence") or {}).items())),
            tuple(sorted((body.get("do") or {}).items())), tuple(body.get("set") or ()))


def explanation(models: OverrideCache, body: Any, endpoint: str = "explain") -> Any:
    """The :func:`~kneehip_bn.teaching.explain.explain` object of a body (memoised per case)."""
    body, spec, ev, dov = _setup(models, body, endpoint)
    origins = _strings(body, "origin", 64)
    key = ("explain", case_key(body), tuple(origins) if origins is not None else None)
    return models.memo(key, lambda: explain(ev, model=spec, origins=origins, do=dov))


# ------------------------------------------------------------------------ the CLI's --json
def diagnose_json(models: OverrideCache | Any, body: Any) -> dict[str, Any]:
    """``kneehip diagnose --json`` (as :func:`kneehip_bn.cli.model.cmd_diagnose`)."""
    _, spec, ev, dov = _setup(_models(models), body, "diagnose")
    return diagnosis_dict(*diagnosis_rows(ev, dov, spec, None, None))


def query_json(models: OverrideCache | Any, body: Any) -> dict[str, Any]:
    """``kneehip query VARIABLE --json`` (as :func:`kneehip_bn.cli.model.cmd_query`)."""
    body, spec, ev, dov = _setup(_models(models), body, "query")
    node = body.get("variable")
    if not isinstance(node, str):
        raise BodyError("body.variable: expected the name of the node to query (a string), "
                        f"found {_kind(node) if 'variable' in body else 'no variable field'}")
    s = query(node, ev, do=dov, model=spec)
    return {"variable": node, "distribution": {k: float(v) for k, v in s.items()}}


def explain_json(models: OverrideCache | Any, body: Any) -> dict[str, Any]:
    """``kneehip explain --json`` (as :func:`kneehip_bn.cli.teach.cmd_explain`)."""
    return explanation(_models(models), body).to_dict()


def what_if_json(models: OverrideCache | Any, body: Any) -> dict[str, Any]:
    """``kneehip what-if --json`` (as :func:`kneehip_bn.cli.teach.cmd_what_if`).

    ``scenario`` is a list of the CLI's scenario strings (``"treated:do=knee_pathology=absent"``);
    ``scenarios`` the same as an object ``{name: {"add": {...}, "remove": [...], "do": {...},
    "context": {...}, "set": [...]}}`` (:func:`~kneehip_bn.teaching.what_if.what_if`'s form).
    """
    body, spec, ev, dov = _setup(_models(models), body, "what-if")
    scenarios: dict[str, Any] = {}
    for text in _strings(body, "scenario", MAX_SCENARIOS) or []:
        name, sc = parse_scenario(text)
        if name in scenarios or name == "base":
            raise EvidenceError(f"scenario '{text}': expected a new name, found '{name}' "
                                "used twice (or 'base', the name of the base case)")
        scenarios[name] = sc
    structured = body.get("scenarios")
    if structured is not None:
        if not isinstance(structured, dict):
            raise BodyError(f"body.scenarios: expected an object {{name: scenario}}, found "
                            f"{_kind(structured)}")
        if len(structured) + len(scenarios) > MAX_SCENARIOS:
            raise BodyError(f"body.scenarios: expected at most {MAX_SCENARIOS} scenarios, found "
                            f"{len(structured) + len(scenarios)}")
        for name, sc in structured.items():
            if name in scenarios:
                raise EvidenceError(f"scenario '{name}': expected a new scenario name, found "
                                    "it twice")
            _check_scenario_edits(name, sc)
            scenarios[name] = sc
    df = what_if(ev, scenarios, model=spec, targets=_strings(body, "target", 64), do=dov)
    desc = df.attrs["descriptions"]
    return {
        **flags_json(df), "evidence": df.attrs["evidence"], "do": df.attrs["do"],
        "targets": [{"target": t, "state": df.attrs["states"][t]} for t in df.index],
        "scenarios": [{"name": c, "description": desc[c],
                       "values": {t: float(v) for t, v in df[c].items()}}
                      for c in df.columns],
    }


def _check_scenario_edits(name: str, sc: Any) -> None:
    if isinstance(sc, dict):
        edits = sc.get("set")
        if isinstance(edits, list) and len(edits) > MAX_EDITS:
            raise BodyError(f"body.scenarios.{name}.set: expected at most {MAX_EDITS} edits, "
                            f"found {len(edits)}")


def next_test_json(models: OverrideCache | Any, body: Any) -> list[dict[str, Any]]:
    """``kneehip next-test --json`` (as :func:`kneehip_bn.cli.teach.cmd_next_test`)."""
    models = _models(models)
    body, spec, ev, dov = _setup(models, body, "next-test")
    costs: dict[str, float] = {}
    for k, v in parse_assignments(_strings(body, "cost", 64) or [], what="--cost"):
        try:
            costs[k] = float(v)
        except ValueError:
            raise EvidenceError(f"--cost {k}={v}: expected a positive number after '=', "
                                f"found '{v}'") from None
    cands = _strings(body, "candidate", 256)
    key = ("next-test", case_key(body), tuple(cands) if cands is not None else None,
           tuple(sorted(costs.items())))
    df = models.memo(key, lambda: next_best_test(ev, model=spec, candidates=cands,
                                                          costs=costs, do=dov))
    top = _int(body, "top", None)
    if top is not None and top < 1:
        raise EvidenceError(f"--top: expected a positive number, found {top}")
    return [{"finding": str(n), "expected_information_gain": float(r[
        "expected_information_gain"]), **{k: r[k] for k in df.columns
                                           if k != "expected_information_gain"}}
            for n, r in df.iterrows()]


def conflict_json(models: OverrideCache | Any, body: Any) -> dict[str, Any]:
    """``kneehip conflict --json`` (as :func:`kneehip_bn.cli.teach.cmd_conflict`)."""
    models = _models(models)
    body, spec, ev, dov = _setup(models, body, "conflict")
    n_sim = _int(body, "simulate", 0) or 0
    seed = _int(body, "seed", 0) or 0
    if n_sim < 0:
        raise EvidenceError(f"--simulate: expected a number >= 0, found {n_sim}")
    if n_sim > MAX_SIMULATE:
        raise BodyError(f"body.simulate: expected at most {MAX_SIMULATE} simulated cases on a "
                        f"shared server, found {n_sim}; run `kneehip conflict --simulate "
                        f"{n_sim}` locally for more")
    key = ("conflict", case_key(body), n_sim, seed)
    return models.memo(key, lambda: conflict(ev, spec, do=dov, n_sim=n_sim,
                                                      seed=seed)).to_dict()


# ------------------------------------------------------------------------ the page's extras
def region_probabilities(spec: Any, ev: Mapping[str, str], dov: Mapping[str, str]) -> dict:
    """P(at least one diagnosis of the region is present | evidence, do) for each region.

    ``1 - P(every diagnosis of the region absent | e) = 1 - exp(log P(e, all absent) -
    log P(e))``, two engine passes per region (``{}`` for a model without ``region:``).
    """
    eng = get_engine(spec)
    regions = spec.regions() if hasattr(spec, "regions") else {}
    if not regions:
        return {}
    log_pe = eng.log_probability(ev, do=dov or None)
    out = {}
    for region, dxs in regions.items():
        off: dict[str, str] = {}
        fixed = False
        for d in dxs:
            st = eng.states[d]
            absent = next(s for s in st if s != on_state(st))
            where = ev.get(d, dov.get(d))
            if where is not None:
                fixed = fixed or where != absent
                continue
            off[d] = absent
        if fixed:
            out[region] = 1.0
            continue
        lp = eng.log_probability({**ev, **off}, do=dov or None)
        out[region] = float(max(0.0, 1.0 - math.exp(lp - log_pe))) if np.isfinite(lp) else 1.0
    return out


def case_summary_json(models: OverrideCache | Any, body: Any) -> dict[str, Any]:
    """What the page shows beside the ranked diagnoses: region probabilities, the red-flag
    findings present (``spec.red_flags()`` observed in their present state) and the warning.

    ``regions``, ``red_flags`` and ``warning`` are those of ``kneehip diagnose --json`` when
    it reports them (the library's own); computed here only for a ``diagnose`` that does not.
    """
    _, spec, ev, dov = _setup(_models(models), body, "case")
    dx = diagnosis_dict(*diagnosis_rows(ev, dov, spec, None, None))
    regions = dx.get("regions")
    if regions is None:
        regions = region_probabilities(spec, ev, dov)
    flags = dx.get("red_flags")
    if flags is None:
        flags = [f for f in spec.red_flags()
                 if ev.get(f) == on_state(spec.nodes[f].states)]
    warning = dx.get("warning")
    if flags and not warning:
        warning = (f"REFER: red flag ({', '.join(flags)}): a red-flag finding needs prompt "
                   "medical assessment, whatever the probabilities")
    return {"regions": regions, "red_flags": flags, "warning": warning, "scope": spec.scope}


def _models(m: OverrideCache | Any) -> OverrideCache:
    return m if isinstance(m, OverrideCache) else OverrideCache(m)


#: endpoint name -> the function answering it
HANDLERS: dict[str, Callable[[Any, Any], Any]] = {
    "diagnose": diagnose_json,
    "query": query_json,
    "explain": explain_json,
    "what-if": what_if_json,
    "next-test": next_test_json,
    "conflict": conflict_json,
    "case": case_summary_json,
}
