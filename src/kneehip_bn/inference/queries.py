"""Questions to the model: diagnosis, a node's distribution, interventions.

Every function takes ``model`` as a pgmpy ``DiscreteBayesianNetwork``, a
:class:`~kneehip_bn.ModelSpec`, a path to a model file, or ``None`` (the shipped model),
and answers through the compiled engine (:mod:`kneehip_bn.inference.engine`), so no query pays for
pgmpy's variable elimination.

Examples
--------
>>> from kneehip_bn import diagnose, query
>>> dx = diagnose(evidence={"knee_effusion": "present", "joint_line_tenderness": "present"}, model="knee_hip_basic")
>>> dx.origins.index[0]
'knee_pathology'
>>> p_hip = query("hip_pain", do={"knee_pathology": "absent"}, model="knee_hip_basic")
>>> list(p_hip.index)
['absent', 'present']
"""

from __future__ import annotations

import functools
import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kneehip_bn._util.jsonclean import json_clean
from kneehip_bn.errors import EvidenceError, UnknownNameError
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.engine import Engine
from kneehip_bn.model import coerce
from kneehip_bn.model.coerce import model_spec
from kneehip_bn.model.network import cpd_array, network_groups

__all__ = [
    "Diagnosis",
    "as_model",
    "check_do_vs_evidence",
    "diagnose",
    "diagnosis_rows",
    "model_spec",
    "node_groups",
    "on_state",
    "parse_assignments",
    "query",
    "resolve_evidence",
]

Evidence = Mapping[str, str] | Iterable[str] | Iterable[tuple[str, str]] | None

def as_model(model: Any = None) -> Any:
    """Return something the engine compiles: a pgmpy network, a ModelSpec or an Engine.

    :func:`kneehip_bn.model.coerce.as_model` (``None`` is the shipped model, a string or
    path a model file or a shipped model's name), and a compiled :class:`Engine` passes
    through.
    """
    return model if isinstance(model, Engine) else coerce.as_model(model)


def node_groups(model: Any) -> dict[str, str]:
    """``{node: group}`` (context/origin/mechanism/finding/test) of a model."""
    model = as_model(model)
    if hasattr(model, "get_cpds"):
        spec = model.graph.get("kneehip_spec") if hasattr(model, "graph") else None
        if spec is not None:
            return {n: s.group for n, s in spec.nodes.items()}
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
    scope = getattr(engine, "scope", None) or {}
    for k, v in pairs:
        if scope:
            k, v = _apply_scope(engine, scope, k, v, what)
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


_AGE_WORDS = ("child", "paediatric", "pediatric", "adolescent", "teen", "juvenile", "infant")


def _age_bounds(label: str) -> tuple[float, float] | None:
    """Age range of an age-band label: ``under_40``, ``40_to_59``, ``60_plus``, ``18-39``."""
    t = label.lower()
    if m := re.fullmatch(r"(?:under|below|lt)_?(\d+)", t):
        return (0.0, float(m.group(1)))
    if m := re.fullmatch(r"(\d+)_?(?:to|-|_)_?(\d+)", t):
        return (float(m.group(1)), float(m.group(2)) + 1.0)
    if m := re.fullmatch(r"(\d+)_?(?:plus|\+|_and_over|_or_more)", t):
        return (float(m.group(1)), math.inf)
    return None


def _apply_scope(engine: Engine, scope: Mapping[str, Any], k: str, v: Any,
                 what: str) -> tuple[str, Any]:
    """The model's ``scope``: refuse an age below ``min_age``; map ``age=67`` to its band."""
    min_age = scope.get("min_age")
    age_node = scope.get("age_node")
    if min_age is None:
        return k, v
    refer = scope.get("refer") or f"this model describes people aged {min_age} and over"
    text = str(v).strip().lower()
    age_key = k in ("age", "age_years") and k not in engine.index
    if age_key or k == age_node:
        try:
            years = float(text)
        except ValueError:
            years = None
        if years is not None and not math.isfinite(years):
            years = None
        if years is not None:
            if years < float(min_age):
                raise EvidenceError(
                    f"{what}: {k}={v}: expected an age of at least {min_age} years, found "
                    f"{v}; {refer}")
            if age_node in engine.index:
                for state in engine.states[age_node]:
                    b = _age_bounds(state)
                    if b is not None and b[0] <= years < b[1]:
                        return age_node, state
            return k, v
        if k == age_node and age_node in engine.index and v not in engine.state_index[age_node]:
            b = _age_bounds(text)
            if any(w in text for w in _AGE_WORDS) or (b is not None and b[1] <= float(min_age)):
                raise EvidenceError(
                    f"{what}: {k}={v}: expected an adult age band "
                    f"({', '.join(engine.states[age_node])}), found {v}; {refer}")
    return k, v


def red_flags_present(model: Any, evidence: Mapping[str, str]) -> list[str]:
    """The red-flag findings (``red_flag: true`` in the model file) entered as present.

    Examples
    --------
    >>> red_flags_present("knee_hip_basic", {"knee_pain": "present"})
    []
    """
    spec = spec_or_none(model)
    if spec is None:
        return []
    out = []
    for n in spec.red_flags():
        if n in evidence and evidence[n] == on_state(spec.nodes[n].states):
            out.append(n)
    return out


def red_flag_warning(flags: Sequence[str]) -> str:
    """The line every output puts first when a red flag is present (``""`` when none)."""
    if not flags:
        return ""
    return (f"REFER: red flag ({', '.join(flags)}): a red flag means refer for medical "
            "assessment now, whatever the probabilities below say. This is a teaching model, "
            "not a medical device.")


def spec_or_none(model: Any) -> Any:
    """The :class:`~kneehip_bn.ModelSpec` behind a model, or ``None`` if there is none
    (:func:`kneehip_bn.model.coerce.spec_or_none`; a compiled engine has none)."""
    return None if isinstance(model, Engine) else coerce.spec_or_none(model)


@dataclass
class Diagnosis:
    """The answer to "given these findings, how likely is each origin?".

    Attributes
    ----------
    origins : pandas.DataFrame
        One row per origin, ranked by posterior: ``prior``, ``posterior`` (P(present)),
        ``odds_ratio`` (posterior odds / prior odds: how much the findings moved it).
        Built on first use from ``origin_rows`` (``str``, :meth:`to_dict` need no pandas).
    mechanisms : pandas.DataFrame
        ``prior`` and ``posterior`` P(present) of each mechanism (from ``mechanism_rows``).
    evidence, do : dict
        What was given.
    regions : dict
        ``{region: P(at least one of its diagnoses present)}`` (models whose diagnoses name a
        ``region``; empty otherwise).
    red_flags : list of str
        Red-flag findings entered as present: when not empty, refer (see :attr:`warning`).
    explained_by : dict
        ``{finding: {cause: probability}}`` for each present noisy-OR finding: the posterior
        probability that each cause's link (or the leak) is active, i.e. would by itself have
        produced the finding. A finding can have several active causes at once, so these
        need not add up to 1.
    """

    origin_rows: list[tuple[str, float, float, float]]
    """``(origin, prior, posterior, odds_ratio)``, ranked: the numbers :attr:`origins` shows."""
    mechanism_rows: list[tuple[str, float, float]]
    """``(mechanism, prior, posterior)``: the numbers :attr:`mechanisms` shows."""
    evidence: dict[str, str] = field(default_factory=dict)
    do: dict[str, str] = field(default_factory=dict)
    regions: dict[str, float] = field(default_factory=dict)
    red_flags: list[str] = field(default_factory=list)
    explained_by: dict[str, dict[str, float]] = field(default_factory=dict)

    @functools.cached_property
    def origins(self) -> Any:
        """The origins as a DataFrame (index ``origin``; built on first use, so printing a
        diagnosis needs no pandas)."""
        import pandas as pd

        o = pd.DataFrame(self.origin_rows, columns=["origin", "prior", "posterior", "odds_ratio"])
        return o.set_index("origin")

    @functools.cached_property
    def mechanisms(self) -> Any:
        """The mechanisms as a DataFrame (index ``mechanism``; built on first use)."""
        import pandas as pd

        m = pd.DataFrame(self.mechanism_rows, columns=["mechanism", "prior", "posterior"])
        return m.set_index("mechanism")

    @property
    def warning(self) -> str:
        """"REFER: red flag ..." when a red flag is present, else ``""``."""
        return red_flag_warning(self.red_flags)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"origins": [{"name", "prior", "posterior", "odds_ratio"}...],
        "mechanisms": {name: P(present)}, "evidence": {...}, "do": {...}, "regions": {...},
        "red_flags": [...], "explained_by": {finding: {cause: p}}}`` (``"warning"`` first
        when a red flag is present)."""
        return diagnosis_dict(self.evidence, self.do, self.origin_rows, self.mechanism_rows,
                              self._extras())

    def _extras(self) -> dict[str, Any]:
        return {"regions": self.regions, "red_flags": self.red_flags,
                "explained_by": self.explained_by}

    def __str__(self) -> str:
        return format_diagnosis(self.evidence, self.do, self.origin_rows, self.mechanism_rows,
                                self._extras())

    def _repr_html_(self) -> str:
        warn = (f'<p style="color:#b00;font-weight:bold">{html.escape(self.warning)}</p>'
                if self.red_flags else "")
        regions = ("<b>Regions</b> " + ", ".join(
            f"{html.escape(r)} {p:.3f}" for r, p in self.regions.items()) + "<br>"
            if self.regions else "")
        return warn + regions + self._tables_html()

    def _tables_html(self) -> str:
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


def diagnosis_dict(ev, dov, o_rows, m_rows, extras=None) -> dict[str, Any]:
    """The JSON form of a diagnosis from its rows (a red-flag ``warning`` comes first)."""
    extras = extras or {}
    out: dict[str, Any] = {}
    if extras.get("red_flags"):
        out["warning"] = red_flag_warning(extras["red_flags"])
    out.update({
        "origins": [{"name": n, "prior": pr, "posterior": po, "odds_ratio": json_clean(float(r))}
                    for n, pr, po, r in o_rows],
        "mechanisms": {n: po for n, _, po in m_rows},
        "evidence": dict(ev),
        "do": dict(dov),
        "regions": dict(extras.get("regions", {})),
        "red_flags": list(extras.get("red_flags", [])),
        "explained_by": {f: dict(c) for f, c in extras.get("explained_by", {}).items()},
    })
    return out


def format_diagnosis(ev, dov, o_rows, m_rows, extras=None) -> str:
    """The diagnosis as a readable text table (a red-flag warning first)."""
    extras = extras or {}
    lines = []
    if extras.get("red_flags"):
        lines += [red_flag_warning(extras["red_flags"]), ""]
    lines.append(f"Findings: {', '.join(f'{k}={v}' for k, v in ev.items()) or 'none'}")
    if dov:
        lines.append("Interventions: " + ", ".join(f"do({k}={v})" for k, v in dov.items()))
    width = max([24, *(len(n) + 2 for n, *_ in o_rows)])
    lines += ["", f"{'diagnosis':<{width}}{'prior':>8}{'posterior':>11}{'odds x':>9}"]
    for n, pr, po, r in o_rows:
        lines.append(f"{n:<{width}}{pr:>8.3f}{po:>11.3f}{_fmt_or(r):>9}")
    if extras.get("regions"):
        lines += ["", "region (P at least one diagnosis present): " + ", ".join(
            f"{r} {p:.3f}" for r, p in extras["regions"].items())]
    if extras.get("explained_by"):
        lines += ["", "what accounts for each finding present (P that this cause produced it):"]
        for f, causes in extras["explained_by"].items():
            top = sorted(causes.items(), key=lambda kv: -kv[1])
            lines.append(f"  {f}: " + ", ".join(f"{c} {p:.2f}" for c, p in top if p >= 0.005))
    mwidth = max([28, *(len(n) + 2 for n, *_ in m_rows)])
    lines += ["", f"{'mechanism':<{mwidth}}{'prior':>8}{'posterior':>11}"]
    for n, pr, po in m_rows:
        lines.append(f"{n:<{mwidth}}{pr:>8.3f}{po:>11.3f}")
    return "\n".join(lines)


def _fmt_or(x: float) -> str:
    return "inf" if math.isinf(x) else ("n/a" if math.isnan(x) else f"{x:.2f}")


def _odds_ratio(post: float, prior: float) -> float:
    """Posterior odds / prior odds, with inf and NaN where a probability is 0 or 1 (rounding
    a hair past 1 counts as 1)."""
    if 0.0 < post < 1.0 and 0.0 < prior < 1.0:
        return (post / (1.0 - post)) / (prior / (1.0 - prior))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(_odds(np.clip(np.array(post), 0.0, 1.0))
                     / _odds(np.clip(np.array(prior), 0.0, 1.0)))


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
    ...                "femoral_nerve_stretch=positive"], model="knee_hip_basic")
    >>> dx.origins.index[0]
    'lumbar_radiculopathy'
    """
    ev, dov, o_rows, m_rows, extras = diagnosis_rows(evidence, do, model, origins, mechanisms)
    return Diagnosis(o_rows, m_rows, evidence=ev, do=dov, **extras)


def diagnosis_rows(evidence: Evidence = None, do: Evidence = None, model: Any = None,
                   origins: Sequence[str] | None = None,
                   mechanisms: Sequence[str] | None = None) -> tuple:
    """The numbers of :func:`diagnose` as plain rows, for :func:`diagnosis_dict` and
    :func:`format_diagnosis`: ``(evidence, do, origin_rows, mechanism_rows, extras)`` with
    ``origin_rows`` ``(name, prior, posterior, odds_ratio)`` ranked by posterior,
    ``mechanism_rows`` ``(name, prior, posterior)`` and ``extras`` the ``regions``,
    ``red_flags`` and ``explained_by`` of a :class:`Diagnosis`.

    Examples
    --------
    >>> ev, dov, o_rows, m_rows, extras = diagnosis_rows({"knee_effusion": "present"},
    ...                                                 model="knee_hip_basic")
    >>> o_rows[0][0], sorted(extras)
    ('knee_pathology', ['explained_by', 'red_flags', 'regions'])
    """
    m = as_model(model)
    eng = get_engine(m)
    ev = resolve_evidence(eng, evidence)
    dov = resolve_evidence(eng, do, what="do")
    check_do_vs_evidence(ev, dov)
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
        return min(1.0, max(0.0, float(d[n][eng.state_index[n][on_state(eng.states[n])]])))

    o_rows = []
    for n in origins:
        pr, po = p_on(prior, n), p_on(post, n)
        o_rows.append((n, pr, po, _odds_ratio(po, pr)))
    o_rows.sort(key=lambda r: -r[2])  # stable: ties keep the model's order
    m_rows = [(n, p_on(prior, n), p_on(post, n)) for n in mechanisms]
    spec = spec_or_none(m)
    extras = {
        "regions": region_probabilities(eng, spec, ev, dov) if spec is not None else {},
        "red_flags": red_flags_present(spec, ev) if spec is not None else [],
        "explained_by": explained_by(eng, spec, ev, dov) if spec is not None else {},
    }
    return ev, dov, o_rows, m_rows, extras


def region_probabilities(eng: Engine, spec: Any, ev: Mapping[str, str],
                         dov: Mapping[str, str]) -> dict[str, float]:
    """``{region: P(at least one of its diagnoses present | evidence, do)}``.

    Exact: ``1 - P(every diagnosis of the region absent, evidence) / P(evidence)``, two
    propagations per region (a diagnosis that is observed or intervened on counts with its
    given state).
    """
    out: dict[str, float] = {}
    regions = spec.regions()
    if not regions:
        return out
    log_pe = eng.log_probability(ev, do=dov or None)
    for region, diags in regions.items():
        given = {**ev, **dov}
        if any(d in given and given[d] == on_state(eng.states[d]) for d in diags):
            out[region] = 1.0
            continue
        joint = dict(ev)
        for d in diags:
            if d not in given:
                joint[d] = _off_state(eng.states[d])
        lp = eng.log_probability(joint, do=dov or None)
        out[region] = float(min(1.0, max(0.0, 1.0 - math.exp(lp - log_pe))))
    return out


def _off_state(states: Sequence[str]) -> str:
    on = on_state(states)
    for s in ("absent", "negative", "no", "False"):
        if s in states and s != on:
            return s
    return next(s for s in states if s != on)


def explained_by(eng: Engine, spec: Any, ev: Mapping[str, str],
                 dov: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """For each present noisy-OR finding, the posterior probability that each cause produced it.

    A noisy-OR finding is present when at least one of its independent mechanisms fires: the
    leak (``leak``), or the link of a parent in its ``when`` state. Given the parents, the
    finding's own state screens its mechanisms off from every other observation, so

    ``P(link j fired | e) = sum over pa of P(pa | e) * [pa_j = when_j] * p_j / P(present | pa)``

    with ``P(pa | e)`` the joint posterior of the finding's parents (one pass of the engine
    for all findings: :meth:`Engine.family_posteriors`). Exact; tested against enumeration
    of the link switches. Cause keys are parent names (``parent:state`` when a parent has
    links for several states) and ``leak``. A finding can have several active causes at
    once, so the probabilities need not add up to 1.
    """
    present = []
    for f, state in ev.items():
        node = spec.nodes.get(f)
        if node is not None and node.noisy_or is not None and f not in dov \
                and state == node.noisy_or.on_state:
            present.append(f)
    if not present:
        return {}
    fams = eng.family_posteriors(ev, present, do=dov or None)
    out: dict[str, dict[str, float]] = {}
    for f in present:
        node = spec.nodes[f]
        nor = node.noisy_or
        on = node.states.index(nor.on_state)
        parents = eng.parents[f]
        p_on = cpd_array(spec, f)[on]  # P(present | parents), parents in engine order
        q = fams[f][on]                 # P(present, parents | e) = P(parents | e)
        q = q / q.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(p_on > 0, q / p_on, 0.0)
        multi = {p: sum(1 for ln in nor.links if ln.parent == p) > 1 for p in parents}
        causes = {"leak": float(nor.leak.p * w.sum())}
        for ln in nor.links:
            label = f"{ln.parent}:{ln.when}" if multi.get(ln.parent) else ln.parent
            causes[label] = ln.p * _link_sum(eng, w, parents, ln.parent, ln.when)
        out[f] = {k: min(1.0, max(0.0, v)) for k, v in causes.items()}
    return out


def _link_sum(eng: Engine, w: np.ndarray, parents: Sequence[str], parent: str,
              when: str) -> float:
    """Sum of ``w`` (axes: the parents) over the configurations with ``parent = when``."""
    axis = list(parents).index(parent)
    return float(np.take(w, eng.state_index[parent][when], axis=axis).sum())


def check_do_vs_evidence(ev: Mapping[str, str], dov: Mapping[str, str]) -> None:
    """Refuse a node that is both observed (``ev``) and intervened on (``dov``).

    >>> check_do_vs_evidence({"a": "x"}, {"b": "y"})
    """
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
    >>> treated = query("hip_pain", do={"knee_pathology": "absent"}, model="knee_hip_basic")
    >>> without = query("hip_pain", evidence={"knee_pathology": "absent"}, model="knee_hip_basic")
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
    check_do_vs_evidence(ev, dov)
    post = eng.posterior(ev, [variable], do=dov or None)[variable]
    return pd.Series(post, index=pd.Index(eng.states[variable], name="state"), name=variable)
