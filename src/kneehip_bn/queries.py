"""Questions to the model: diagnosis, a node's distribution, interventions.

Every function takes ``model`` as a pgmpy ``DiscreteBayesianNetwork``, a
:class:`~kneehip_bn.ModelSpec`, a path to a model file, or ``None`` (the shipped model),
and answers through the compiled engine (:mod:`kneehip_bn.engine`), so no query pays for
pgmpy's variable elimination.

Examples
--------
>>> from kneehip_bn import diagnose, query
>>> dx = diagnose(evidence={"knee_effusion": "present", "joint_line_tenderness": "present"})
>>> dx.origins.index[0]
'knee_pathology'
>>> p_hip = query("hip_pain", do={"knee_pathology": "absent"})
>>> list(p_hip.index)
['absent', 'present']
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import Engine, get_engine
from .errors import EvidenceError, KneeHipError, UnknownNameError

__all__ = [
    "Diagnosis",
    "as_model",
    "diagnose",
    "model_spec",
    "node_groups",
    "on_state",
    "parse_assignments",
    "query",
    "resolve_evidence",
]

Evidence = Mapping[str, str] | Iterable[str] | Iterable[tuple[str, str]] | None

_DEFAULT: dict[str, Any] = {}


def as_model(model: Any = None) -> Any:
    """Return something the engine compiles: a pgmpy network or a ModelSpec.

    ``None`` is the shipped model (loaded once per process); a string or path is a model
    file.
    """
    from .spec import ModelSpec, load_spec

    if model is None:
        if "spec" not in _DEFAULT:
            _DEFAULT["spec"] = load_spec()
        return _DEFAULT["spec"]
    if isinstance(model, (str, os.PathLike)):
        return load_spec(model)
    if isinstance(model, (ModelSpec, Engine)) or hasattr(model, "get_cpds"):
        return model
    raise KneeHipError(
        f"model: expected a pgmpy DiscreteBayesianNetwork, a ModelSpec, a model file path or "
        f"None, found {type(model).__name__}")


_CHECKED: Any = None  # WeakKeyDictionary: network -> fingerprint when found current


def model_spec(model: Any = None, where: str = "model") -> Any:
    """The :class:`~kneehip_bn.ModelSpec` behind anything a user may pass as a model.

    The one place that turns a spec, a model file, a shipped model's name, ``None`` or a
    network built by :func:`~kneehip_bn.build_network` into the specification that the
    sampler (``simulate_audit``, ``perturb_model``), the fitter (``PriorFitter``) and the
    structure check read. A network is accepted only while its tables are still those of
    its specification: after a CPD was replaced (``add_cpds``), edited in place or refitted,
    this raises a clear error instead of silently using the stale specification.

    Raises
    ------
    KneeHipError
        A network without a specification, or one whose tables no longer match it.
    """
    import weakref

    from .engine import _fingerprint
    from .network import cpd_array
    from .spec import ModelSpec

    global _CHECKED
    m = as_model(model)
    if isinstance(m, ModelSpec):
        return m
    spec = m.graph.get("kneehip_spec") if hasattr(m, "graph") else None
    if spec is None:
        raise KneeHipError(
            f"{where}: expected a ModelSpec, a model file or a network built by kneehip_bn "
            f"(build_network/load_model), found {type(m).__name__} without a specification")
    if _CHECKED is None:
        _CHECKED = weakref.WeakKeyDictionary()
    fp = _fingerprint(m)
    if _CHECKED.get(m) == fp:
        return spec
    eng = get_engine(m)
    for n in sorted(set(eng.variables) | set(spec.nodes)):
        ok = (n in eng.index and n in spec.nodes and list(eng.parents[n]) == list(spec.nodes[n].parents)
              and list(eng.states[n]) == list(spec.nodes[n].states))
        if ok:
            fam, arr = eng.factors[eng.index[n]]
            order = [eng.index[n]] + [eng.index[q] for q in eng.parents[n]]
            ok = np.array_equal(arr.transpose([fam.index(x) for x in order]), cpd_array(spec, n))
        if not ok:
            raise KneeHipError(
                f"{where}: the network's table of '{n}' is no longer the one of the model "
                f"file it was built from (a CPD was replaced, edited or refitted), so its "
                "specification is stale; expected an unchanged network; edit the numbers with "
                "set_prior/set_row/set_link/set_leak on the spec (or kneehip --set) and "
                "build_network again, or pass the spec itself")
    _CHECKED[m] = fp
    return spec


def node_groups(model: Any) -> dict[str, str]:
    """``{node: group}`` (context/origin/mechanism/finding/test) of a model."""
    model = as_model(model)
    if hasattr(model, "get_cpds"):
        spec = model.graph.get("kneehip_spec") if hasattr(model, "graph") else None
        if spec is not None:
            return {n: s.group for n, s in spec.nodes.items()}
        from .network import network_groups

        return network_groups(model)
    if isinstance(model, Engine):
        return {v: ("origin" if not model.parents[v] else "finding") for v in model.variables}
    return {n: s.group for n, s in model.nodes.items()}


def on_state(states: Sequence[str]) -> str:
    """The state that means "present" for a node: ``present``/``positive`` if there is one,
    otherwise the last state."""
    for s in ("present", "positive", "yes", "True"):
        if s in states:
            return s
    return states[-1]


def parse_assignments(items: Iterable[str], what: str = "evidence") -> list[tuple[str, str]]:
    """Parse ``["knee_pain=present", ...]`` into pairs, with a clear error for bad items."""
    out = []
    for item in items:
        if not isinstance(item, str) or item.count("=") != 1:
            raise EvidenceError(
                f"{what} '{item}': expected NAME=STATE (e.g. knee_pain=present), found "
                f"{'no' if '=' not in str(item) else 'more than one'} '='")
        k, v = (x.strip() for x in item.split("="))
        if not k or not v:
            raise EvidenceError(f"{what} '{item}': expected NAME=STATE with both parts non-empty")
        out.append((k, v))
    return out


def resolve_evidence(engine: Engine, evidence: Evidence, what: str = "evidence") -> dict[str, str]:
    """Validate evidence against the engine's nodes and states.

    Accepts a mapping, ``"name=state"`` strings or ``(name, state)`` pairs. The same node
    given twice with different states is an error; unknown names and states get the valid
    choices and the closest match.
    """
    if evidence is None:
        return {}
    if isinstance(evidence, Mapping):
        pairs = [(str(k), v) for k, v in evidence.items()]
    else:
        items = list(evidence)
        pairs = parse_assignments(items, what) if all(isinstance(i, str) for i in items) else [
            tuple(i) for i in items]
    out: dict[str, str] = {}
    for k, v in pairs:
        if k not in engine.index:
            raise UnknownNameError.for_name("node", k, engine.variables, where=what)
        if not isinstance(v, str):
            v = str(v)
        if v not in engine.state_index[k]:
            raise UnknownNameError.for_name(f"state of {k}", v, engine.states[k], where=what)
        if k in out and out[k] != v:
            raise EvidenceError(
                f"{what}: {k} given twice with different states, found {k}={out[k]} and "
                f"{k}={v}; expected one state per node")
        out[k] = v
    return out


@dataclass
class Diagnosis:
    """The answer to "given these findings, how likely is each origin?".

    Attributes
    ----------
    origins : pandas.DataFrame
        One row per origin, ranked by posterior: ``prior``, ``posterior`` (P(present)),
        ``odds_ratio`` (posterior odds / prior odds: how much the findings moved it).
    mechanisms : pandas.DataFrame
        ``prior`` and ``posterior`` P(present) of each mechanism.
    evidence, do : dict
        What was given.
    """

    origins: Any
    mechanisms: Any
    evidence: dict[str, str] = field(default_factory=dict)
    do: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"origins": [{"name", "prior", "posterior", "odds_ratio"}...],
        "mechanisms": {name: P(present)}, "evidence": {...}, "do": {...}}``."""
        return diagnosis_dict(self.evidence, self.do, *self._rows())

    def _rows(self) -> tuple[list[tuple], list[tuple]]:
        o = [(n, float(r.prior), float(r.posterior), float(r.odds_ratio))
             for n, r in self.origins.iterrows()]
        m = [(n, float(r.prior), float(r.posterior)) for n, r in self.mechanisms.iterrows()]
        return o, m

    def __str__(self) -> str:
        return format_diagnosis(self.evidence, self.do, *self._rows())

    def _repr_html_(self) -> str:
        try:  # pandas' Styler needs jinja2, which is not a dependency
            return (
                "<b>Origins</b>" + self.origins.style.format(
                    {"prior": "{:.3f}", "posterior": "{:.3f}", "odds_ratio": "{:.2f}"}).bar(
                    subset=["posterior"], vmin=0, vmax=1, color="#9ecae1").to_html()
                + "<b>Mechanisms</b>" + self.mechanisms.style.format("{:.3f}").to_html()
            )
        except (AttributeError, ImportError):
            return ("<b>Origins</b>" + self.origins.to_html(float_format="{:.3f}".format)
                    + "<b>Mechanisms</b>" + self.mechanisms.to_html(float_format="{:.3f}".format))


def diagnosis_dict(ev, dov, o_rows, m_rows) -> dict[str, Any]:
    """The JSON form of a diagnosis from its rows."""
    return {
        "origins": [{"name": n, "prior": pr, "posterior": po, "odds_ratio": _json_num(r)}
                    for n, pr, po, r in o_rows],
        "mechanisms": {n: po for n, _, po in m_rows},
        "evidence": dict(ev),
        "do": dict(dov),
    }


def format_diagnosis(ev, dov, o_rows, m_rows) -> str:
    """The diagnosis as a readable text table."""
    lines = [f"Findings: {', '.join(f'{k}={v}' for k, v in ev.items()) or 'none'}"]
    if dov:
        lines.append("Interventions: " + ", ".join(f"do({k}={v})" for k, v in dov.items()))
    lines += ["", f"{'origin':<24}{'prior':>8}{'posterior':>11}{'odds x':>9}"]
    for n, pr, po, r in o_rows:
        lines.append(f"{n:<24}{pr:>8.3f}{po:>11.3f}{_fmt_or(r):>9}")
    lines += ["", f"{'mechanism':<28}{'prior':>8}{'posterior':>11}"]
    for n, pr, po in m_rows:
        lines.append(f"{n:<28}{pr:>8.3f}{po:>11.3f}")
    return "\n".join(lines)


def _fmt_or(x: float) -> str:
    return "inf" if math.isinf(x) else ("n/a" if math.isnan(x) else f"{x:.2f}")


def _json_num(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def _odds(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return p / (1.0 - p)


def diagnose(
    evidence: Evidence = None,
    *,
    do: Evidence = None,
    model: Any = None,
    origins: Sequence[str] | None = None,
    mechanisms: Sequence[str] | None = None,
) -> Diagnosis:
    """Rank the origins by posterior probability given findings (and interventions).

    Parameters
    ----------
    evidence : dict or list of "NAME=STATE"
        Observed findings, tests or context.
    do : dict, optional
        Interventions, e.g. ``{"knee_pathology": "absent"}`` ("if the knee were treated").
    model : DiscreteBayesianNetwork, ModelSpec, path or None
        The model (``None``: the shipped model).
    origins, mechanisms : list of str, optional
        Override the nodes reported (default: the model's ``origin`` / ``mechanism`` groups).

    Returns
    -------
    Diagnosis
        ``.origins`` (ranked DataFrame with prior, posterior, odds_ratio) and ``.mechanisms``.

    Examples
    --------
    >>> from kneehip_bn import diagnose
    >>> dx = diagnose(["low_back_pain=present", "radiating_leg_pain=present",
    ...                "femoral_nerve_stretch=positive"])
    >>> dx.origins.index[0]
    'lumbar_radiculopathy'
    """
    import pandas as pd

    ev, dov, o_rows, m_rows = _diagnose_rows(evidence, do, model, origins, mechanisms)
    o = pd.DataFrame(o_rows, columns=["origin", "prior", "posterior", "odds_ratio"])
    o = o.set_index("origin")
    mech = pd.DataFrame(m_rows, columns=["mechanism", "prior", "posterior"]).set_index("mechanism")
    return Diagnosis(origins=o, mechanisms=mech, evidence=ev, do=dov)


def _diagnose_rows(evidence, do, model, origins, mechanisms):
    """The numbers of a diagnosis as plain rows (no pandas: the CLI prints these)."""
    m = as_model(model)
    eng = get_engine(m)
    ev = resolve_evidence(eng, evidence)
    dov = resolve_evidence(eng, do, what="do")
    _check_do_vs_evidence(ev, dov)
    groups = node_groups(m)
    origins = list(origins) if origins is not None else [n for n, g in groups.items() if g == "origin"]
    mechanisms = (list(mechanisms) if mechanisms is not None
                  else [n for n, g in groups.items() if g == "mechanism"])
    for n in [*origins, *mechanisms]:
        if n not in eng.index:
            raise UnknownNameError.for_name("node", n, eng.variables)
    prior = eng.prior_marginals()
    post = eng.posterior(ev, origins + mechanisms, do=dov or None)

    def p_on(d: Mapping[str, np.ndarray], n: str) -> float:
        return float(d[n][eng.state_index[n][on_state(eng.states[n])]])

    o_rows = []
    for n in origins:
        pr, po = p_on(prior, n), p_on(post, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = float(_odds(np.array(po)) / _odds(np.array(pr)))
        o_rows.append((n, pr, po, ratio))
    o_rows.sort(key=lambda r: -r[2])  # stable: ties keep the model's order
    m_rows = [(n, p_on(prior, n), p_on(post, n)) for n in mechanisms]
    return ev, dov, o_rows, m_rows


def _check_do_vs_evidence(ev: Mapping[str, str], dov: Mapping[str, str]) -> None:
    both = sorted(set(ev) & set(dov))
    if both:
        raise EvidenceError(
            f"{both[0]} is both observed and intervened on: expected each node in either "
            "evidence or do, found it in both; drop it from one (an intervention already "
            "fixes its state)")


def query(
    variable: str,
    evidence: Evidence = None,
    *,
    do: Evidence = None,
    model: Any = None,
) -> Any:
    """The distribution of one node given evidence and/or interventions.

    Parameters
    ----------
    variable : str
        Node name.
    evidence : dict or list of "NAME=STATE", optional
        Observations (conditioning).
    do : dict or list of "NAME=STATE", optional
        Interventions (graph surgery, as pgmpy's ``CausalInference.query(do=...)``).
    model : optional
        As in :func:`diagnose`.

    Returns
    -------
    pandas.Series
        Probabilities indexed by state, named after the variable.

    Examples
    --------
    >>> from kneehip_bn import query
    >>> treated = query("hip_pain", do={"knee_pathology": "absent"})
    >>> without = query("hip_pain", evidence={"knee_pathology": "absent"})
    >>> round(float(treated.sum()), 12), round(float(without.sum()), 12)
    (1.0, 1.0)
    """
    import pandas as pd

    m = as_model(model)
    eng = get_engine(m)
    if variable not in eng.index:
        raise UnknownNameError.for_name("node", variable, eng.variables)
    ev = resolve_evidence(eng, evidence)
    dov = resolve_evidence(eng, do, what="do")
    _check_do_vs_evidence(ev, dov)
    post = eng.posterior(ev, [variable], do=dov or None)[variable]
    return pd.Series(post, index=pd.Index(eng.states[variable], name="state"), name=variable)
