"""Teaching tools: why the model believes what it does, what-if, what to ask next, conflict.

Every number here comes from the compiled engine (:func:`~kneehip_bn.inference.engine.get_engine`):
a whole family of related queries (the evidence with each finding left out, every joint
state of the origins, simulated cases) goes through one batched ``Engine.batch`` call.

- :func:`explain`: how much each finding moved each origin (weight of evidence, in the
  context of the other findings), the causal path that carries it, and a plain-language
  summary.
- :func:`what_if`: several scenarios side by side (findings added or removed, context
  changed, interventions ``do``, edited priors).
- :func:`next_best_test`: which unobserved finding or test is expected to tell the most
  about the origins (mutual information, in bits), with costs.
- :func:`conflict`: Jensen's conflict measure, flagging atypical or contradictory cases.

Parameter sensitivity and uncertainty are in :mod:`kneehip_bn.teaching.robustness`.

Examples
--------
>>> from kneehip_bn.teaching.reasoning import explain, next_best_test
>>> ex = explain({"knee_effusion": "present", "hip_pain": "present"}, model="knee_hip_basic")
>>> ex.leading[0]
'knee_pathology'
>>> nbt = next_best_test({"knee_pain": "present"}, model="knee_hip_basic")
>>> bool((nbt["expected_information_gain"].diff().dropna() <= 1e-12).all())
True
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kneehip_bn.errors import (
    EvidenceError,
    ImpossibleEvidenceError,
    KneeHipError,
    ParameterError,
    UnknownNameError,
)
from kneehip_bn.inference.engine import Engine, get_engine
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
from kneehip_bn.inference.sampling import forward_sample

__all__ = [
    "SCENARIO_ACTIONS",
    "Conflict",
    "Explanation",
    "causal_paths",
    "conflict",
    "explain",
    "flags_json",
    "link_strength",
    "next_best_test",
    "parse_scenario",
    "what_if",
]

#: what a what-if scenario may do, in the order it is applied
SCENARIO_ACTIONS = ("remove", "context", "add", "do", "set")
LN2 = math.log(2.0)
_EPS = 1e-300
#: conflict (bits) above which findings are flagged: rounding noise (~1e-15) is not conflict
CONFLICT_TOL = 1e-9


# ----------------------------------------------------------------------------- helpers
def _setup(evidence: Evidence, do: Evidence, model: Any):
    m = as_model(model)
    eng = get_engine(m)
    ev = resolve_evidence(eng, evidence)
    dov = resolve_evidence(eng, do, what="do")
    check_do_vs_evidence(ev, dov)
    return m, eng, ev, dov


def _flag_attrs(df: Any, model: Any, ev: Mapping[str, str]) -> None:
    """Red flags of a teaching table: ``attrs["red_flags"]`` and ``attrs["warning"]``."""
    flags = red_flags_present(model, ev)
    df.attrs["red_flags"] = flags
    df.attrs["warning"] = red_flag_warning(flags)


def flags_json(df: Any) -> dict[str, Any]:
    """``{"warning": ..., "red_flags": [...]}`` of a teaching table (the warning only when
    a red flag is present), as the CLI's and the classroom page's JSON carry it."""
    flags = list(df.attrs.get("red_flags", []))
    return ({"warning": df.attrs["warning"]} if flags else {}) | {"red_flags": flags}


def _on(eng: Engine, node: str) -> int:
    return eng.state_index[node][on_state(eng.states[node])]


def _label(node: str) -> str:
    return node.replace("_", " ")


def _group_nodes(m: Any, eng: Engine, group: str) -> list[str]:
    groups = node_groups(m)
    return [n for n in groups if groups[n] == group and n in eng.index]


def _origin_list(m: Any, eng: Engine, origins: Sequence[str] | None,
                 strict: bool = False) -> list[str]:
    """The origins to rank (default: the model's origin group). ``strict``: each one
    given must be an origin of the model (``explain --origin knee_pain`` is an error
    naming the origins, not "every origin is observed")."""
    if origins is None:
        out = _group_nodes(m, eng, "origin")
        if not out:
            raise KneeHipError("model: expected nodes in the group 'origin', found none; "
                               "pass origins=[...] explicitly")
        return out
    out = []
    for o in origins:
        if o not in eng.index:
            raise UnknownNameError.for_name("node", o, eng.variables, where="origins")
        known = _group_nodes(m, eng, "origin") if strict else []
        if known and o not in known:
            raise UnknownNameError.for_name("origin", o, known, where="origins")
        out.append(o)
    return out


def _codes(eng: Engine, rows: Sequence[Mapping[str, str]], columns: Sequence[str]) -> np.ndarray:
    """Evidence rows (dicts) as the engine's code matrix (-1 = not observed)."""
    codes = np.full((len(rows), len(columns)), -1, dtype=np.intp)
    for i, row in enumerate(rows):
        for j, c in enumerate(columns):
            if c in row:
                codes[i, j] = eng.state_index[c][row[c]]
    return codes


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p) - np.log1p(-p)


def _family_table(eng: Engine, var: str) -> np.ndarray:
    """P(var | parents) from the engine, shape (card, *parent_cards) in eng.parents order."""
    fam, arr = eng.factors[eng.index[var]]
    order = [eng.index[var]] + [eng.index[p] for p in eng.parents[var]]
    return arr.transpose([fam.index(x) for x in order])


def _states_text(d: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items())


# ----------------------------------------------------------------------------- paths
def link_strength(model: Any, parent: str, child: str) -> float:
    """The causal power of the edge ``parent -> child``.

    The largest, over the states of the other parents and over pairs of states ``a, b`` of
    ``parent``, of ``(P(on | a, rest) - P(on | b, rest)) / (1 - P(on | b, rest))`` ("on" is
    ``present``/``positive``). For a noisy-OR child it is exactly the link probability.

    >>> from kneehip_bn.teaching.reasoning import link_strength
    >>> round(link_strength("knee_hip_basic", "knee_pathology", "knee_effusion"), 3)
    0.409
    """
    m = model if isinstance(model, Engine) else as_model(model)
    eng = get_engine(m)
    return _link_strength(eng, parent, child)


# per-engine caches (an engine from Engine.with_tables is a new object with its own tables)
_STRENGTHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CHILDREN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _link_strength(eng: Engine, parent: str, child: str) -> float:
    cache = _STRENGTHS.setdefault(eng, {})
    key = (parent, child)
    if key not in cache:
        if parent not in eng.parents.get(child, []):
            raise UnknownNameError.for_name(f"parent of {child}", parent, eng.parents[child])
        t = _family_table(eng, child)[_on(eng, child)]  # axes: parents
        ax = eng.parents[child].index(parent)
        p_on = np.moveaxis(t, ax, 0).reshape(t.shape[ax], -1)
        a, b = p_on[:, None, :], p_on[None, :, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            power = np.where(1.0 - b > 1e-12, (a - b) / (1.0 - b), 0.0)
        cache[key] = float(np.clip(np.nanmax(power), 0.0, 1.0)) if power.size else 0.0
    return cache[key]


def _children(eng: Engine) -> dict[str, list[str]]:
    ch: dict[str, list[str]] = {v: [] for v in eng.variables}
    for v, ps in eng.parents.items():
        for p in ps:
            ch[p].append(v)
    return ch


def causal_paths(model: Any, source: str, target: str, limit: int = 500) -> list[list[str]]:
    """Every directed path ``source -> ... -> target`` in the network (at most ``limit``).

    >>> from kneehip_bn.teaching.reasoning import causal_paths
    >>> ["knee_pathology", "altered_gait", "hip_joint_stress", "hip_pain"] in causal_paths(
    ...     "knee_hip_basic", "knee_pathology", "hip_pain")
    True
    """
    m = model if isinstance(model, Engine) else as_model(model)
    eng = get_engine(m)
    for n in (source, target):
        if n not in eng.index:
            raise UnknownNameError.for_name("node", n, eng.variables)
    return _paths(eng, source, target, limit)


def _paths(eng: Engine, source: str, target: str, limit: int = 500) -> list[list[str]]:
    ch = _CHILDREN.get(eng)
    if ch is None:
        ch = _CHILDREN[eng] = _children(eng)
    out: list[list[str]] = []
    stack: list[list[str]] = [[source]]
    while stack and len(out) < limit:
        path = stack.pop()
        for c in ch[path[-1]]:
            if c == target:
                out.append([*path, c])
            else:
                stack.append([*path, c])
    return sorted(out, key=len)


def _best_path(eng: Engine, origin: str, finding: str, post: Mapping[str, np.ndarray],
               do: Mapping[str, str]) -> tuple[list[str] | None, float, str]:
    """The path that carries ``finding``'s evidence to ``origin`` (see :func:`explain`).

    Returns (path, score, direction) with direction 'effect' (origin -> finding), 'cause'
    (finding -> origin) or 'none'.
    """
    for direction, (a, b) in (("effect", (origin, finding)), ("cause", (finding, origin))):
        paths = _paths(eng, a, b)
        if not paths:
            continue
        best, best_score = None, -1.0
        for path in paths:
            score = 1.0
            for u, v in itertools.pairwise(path):
                score *= 0.0 if v in do else _link_strength(eng, u, v)
            for mid in path[1:-1]:
                score *= float(post[mid][_on(eng, mid)])
            if score > best_score + 1e-15:  # ties: the shorter path (paths sorted by length)
                best, best_score = path, score
        return best, best_score, direction
    return None, 0.0, "none"


def _path_text(path: Sequence[str] | None) -> str:
    return " -> ".join(path) if path else ""


# ----------------------------------------------------------------------------- explain
@dataclass
class Explanation:
    """Why the model ranks the origins as it does, finding by finding.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (finding, origin): ``finding``, ``state``, ``origin``, ``posterior``
        (P(origin present | all findings)), ``posterior_without`` (leaving this finding out),
        ``woe`` (weight of evidence in natural-log odds, nats), ``woe_bits``,
        ``odds_factor`` (= exp(woe): how many-fold the finding multiplied the odds),
        ``path`` (the causal path that carries it, ``a -> b -> c``), ``path_score`` and
        ``direction`` ('effect': origin -> finding, 'cause': finding -> origin, 'none').
    origins : pandas.DataFrame
        Per origin, ranked: ``prior``, ``posterior``, ``total_woe`` (logit posterior -
        logit prior, nats), ``odds_ratio``.
    summary : str
        Generated sentences a student can read.
    paths : dict
        ``{(finding, origin): [nodes...]}`` (``None`` when no directed path links them).
    posteriors : dict
        Every node's posterior given all findings (for pictures).
    leading : list of str
        The origins by decreasing posterior.
    """

    table: Any
    origins: Any
    summary: str
    paths: dict[tuple[str, str], list[str] | None]
    posteriors: dict[str, np.ndarray]
    leading: list[str]
    evidence: dict[str, str] = field(default_factory=dict)
    do: dict[str, str] = field(default_factory=dict)
    red_flags: list[str] = field(default_factory=list)

    @property
    def warning(self) -> str:
        """"REFER: red flag ..." when a red-flag finding is present, else ``""``."""
        return red_flag_warning(self.red_flags)

    def woe(self, unit: str = "nats") -> Any:
        """Weights of evidence as a findings x origins DataFrame (``unit``: nats or bits)."""
        if unit not in ("nats", "bits"):
            raise UnknownNameError.for_name("unit", unit, ["nats", "bits"])
        col = "woe" if unit == "nats" else "woe_bits"
        return self.table.pivot(index="finding", columns="origin", values=col).reindex(
            index=list(self.evidence), columns=[o for o in self.leading
                                                 if o in set(self.table["origin"])])

    def highlight_edges(self, origins: Sequence[str] | None = None, top: int = 1,
                        min_factor: float = 1.25) -> list[tuple[str, str]]:
        """The edges of the paths that carry the evidence to the leading origin(s).

        Paths of findings that moved an origin's odds at least ``min_factor``-fold (up or
        down); ``origins`` defaults to the ``top`` leading ones.
        """
        chosen = list(origins) if origins is not None else self.leading[:top]
        thr = math.log(min_factor)
        edges: list[tuple[str, str]] = []
        for _, r in self.table.iterrows():
            if r["origin"] in chosen and abs(r["woe"]) >= thr:
                path = self.paths.get((r["finding"], r["origin"]))
                if path:
                    for e in itertools.pairwise(path):
                        if e not in edges:
                            edges.append(e)
        return edges

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``weights`` are the table's records; WoE in nats and bits)."""
        head = {"warning": self.warning} if self.red_flags else {}
        return {
            **head, "red_flags": list(self.red_flags),
            "evidence": dict(self.evidence), "do": dict(self.do),
            "units": "woe: natural log of the odds ratio (nats); woe_bits: log2",
            "origins": [{"name": n, **{k: float(v) for k, v in r.items()}}
                        for n, r in self.origins.iterrows()],
            "weights": self.table.to_dict(orient="records"),
            "summary": self.summary,
        }

    def __str__(self) -> str:
        import pandas as pd

        head = f"{self.warning}\n\n" if self.red_flags else ""
        if self.table.empty:
            return head + self.summary
        t = self.table[self.table["origin"].isin(self.leading[:3])]
        cols = ["finding", "state", "origin", "posterior_without", "posterior", "odds_factor",
                "woe", "path"]
        with pd.option_context("display.width", 200, "display.max_colwidth", 80,
                               "display.max_rows", 200):
            body = t[cols].to_string(index=False, float_format=lambda x: f"{x:.3g}")
        return f"{head}{self.summary}\n\n{body}"

    def _repr_html_(self) -> str:
        import html

        summary = "<br>".join(html.escape(s) for s in self.summary.splitlines())
        if self.red_flags:
            summary = f'<b style="color:#b00">{html.escape(self.warning)}</b><br>' + summary
        if self.table.empty:
            return f"<p>{summary}</p>"
        t = self.table[self.table["origin"].isin(self.leading[:3])]
        fmt = {"posterior": "{:.3f}", "posterior_without": "{:.3f}", "woe": "{:+.2f}",
               "woe_bits": "{:+.2f}", "odds_factor": "{:.2f}", "path_score": "{:.3f}"}
        try:  # pandas' Styler needs jinja2, which is not a dependency
            body = t.style.format(fmt).hide(axis="index").background_gradient(
                subset=["woe"], cmap="RdBu_r", vmin=-3, vmax=3).to_html()
        except (AttributeError, ImportError):
            body = t.to_html(index=False, float_format="{:.3f}".format)
        return f"<p>{summary}</p>" + body


def explain(
    evidence: Evidence,
    model: Any = None,
    origins: Sequence[str] | None = None,
    *,
    do: Evidence = None,
) -> Explanation:
    """How much each finding moved each origin, through which causal path, in words.

    Weight of evidence of finding ``f`` for origin ``o`` in the context of the other
    findings ``e``: ``WoE = logit P(o | e) - logit P(o | e without f)`` in natural logs
    (nats; ``woe_bits`` = WoE / ln 2). ``exp(WoE)`` is the factor by which the finding
    multiplied the odds of the origin. The weights need not add up to the total change
    from the prior (findings interact).

    The path that carries a finding to an origin is, among the directed paths
    ``origin -> ... -> finding``, the one with the largest score = product of the causal
    powers of its edges (:func:`link_strength`: for noisy-OR links, the link probability)
    times the posterior probability that each intermediate mechanism is present. When the
    finding is a cause of the origin (e.g. age), the paths ``finding -> ... -> origin`` are
    used; when no directed path exists the finding acts through shared causes or
    "explaining away" and no path is given.

    Parameters
    ----------
    evidence : dict or list of "NAME=STATE"
        The findings (context and tests too).
    model : optional
        pgmpy network, ModelSpec, model path, or ``None`` (the shipped model).
    origins : list of str, optional
        Origins to explain (default: the model's ``origin`` group; observed ones skipped).
    do : dict, optional
        Interventions held fixed throughout.

    Returns
    -------
    Explanation

    Examples
    --------
    >>> from kneehip_bn import explain
    >>> ex = explain({"knee_effusion": "present", "joint_line_tenderness": "present"}, model="knee_hip_basic")
    >>> row = ex.table.query("finding == 'knee_effusion' and origin == 'knee_pathology'")
    >>> float(row["odds_factor"].iloc[0]) > 3
    True
    >>> row["path"].iloc[0]
    'knee_pathology -> knee_effusion'
    """
    import pandas as pd

    m, eng, ev, dov = _setup(evidence, do, model)
    olist = [o for o in _origin_list(m, eng, origins, strict=True)
             if o not in ev and o not in dov]
    findings = list(ev)
    rows = [ev] + [{k: v for k, v in ev.items() if k != f} for f in findings]
    res = eng.batch(_codes(eng, rows, findings), findings, targets=None, do=dov or None)
    post = {v: res.marginals[v][0] for v in eng.variables}
    prior = eng.posterior({}, do=dov or None) if ev else post

    def p_on(d: Mapping[str, np.ndarray], n: str) -> float:
        return float(d[n][_on(eng, n)])

    o_rows = []
    for o in olist:
        pr, po = p_on(prior, o), p_on(post, o)
        tot = float(_logit(po) - _logit(pr))
        o_rows.append((o, pr, po, tot, math.exp(tot) if tot < 700 else math.inf))
    o_rows.sort(key=lambda r: -r[2])
    leading = [r[0] for r in o_rows]
    odf = pd.DataFrame(o_rows, columns=["origin", "prior", "posterior", "total_woe",
                                        "odds_ratio"]).set_index("origin")
    table_rows = []
    paths: dict[tuple[str, str], list[str] | None] = {}
    for i, f in enumerate(findings):
        for o in leading:
            po = p_on(post, o)
            pw = float(res.marginals[o][i + 1][_on(eng, o)])
            w = float(_logit(po) - _logit(pw))
            path, score, direction = _best_path(eng, o, f, post, dov)
            paths[(f, o)] = path
            table_rows.append({
                "finding": f, "state": ev[f], "origin": o, "posterior": po,
                "posterior_without": pw, "woe": w, "woe_bits": w / LN2,
                "odds_factor": _exp(w), "path": _path_text(path), "path_score": score,
                "direction": direction,
            })
    cols = ["finding", "state", "origin", "posterior", "posterior_without", "woe", "woe_bits",
            "odds_factor", "path", "path_score", "direction"]
    table = pd.DataFrame(table_rows, columns=cols)
    summary = _summary(ev, dov, o_rows, table_rows)
    return Explanation(table=table, origins=odf, summary=summary, paths=paths,
                       posteriors=post, leading=leading, evidence=ev, do=dov,
                       red_flags=red_flags_present(m, ev))


def _exp(w: float) -> float:
    if math.isnan(w):
        return math.nan
    return math.inf if w > 700 else math.exp(w)


def _moved_text(factor: float, origin: str, p_without: float, p_with: float) -> str:
    o = _label(origin)
    if math.isnan(factor):
        verb = f"left {o} undetermined"
    elif math.isinf(factor):
        verb = f"made {o} certain"
    elif factor == 0:
        verb = f"ruled out {o}"
    elif factor >= 1.1:
        verb = f"raised the odds of {o} {factor:.1f}-fold"
    elif factor <= 1 / 1.1:
        verb = f"lowered the odds of {o} {1 / factor:.1f}-fold"
    else:
        verb = f"barely changed the odds of {o} (x{factor:.2f})"
    digits = 2
    while digits < 5 and f"{p_without:.{digits}f}" == f"{p_with:.{digits}f}" and p_with != p_without:
        digits += 1
    return f"{verb} ({p_without:.{digits}f} without it, {p_with:.{digits}f} with it)"


def _summary(ev: Mapping[str, str], dov: Mapping[str, str], o_rows: Sequence[tuple],
             table_rows: Sequence[Mapping[str, Any]]) -> str:
    """Plain-language sentences from the rows of an explanation (no pandas: fast)."""
    lines = []
    given = _states_text(ev) or "no findings"
    lines.append(f"Findings: {given}" + (f"; interventions: do({_states_text(dov)})"
                                          if dov else "") + ".")
    if not o_rows:
        lines.append("Every origin is observed or intervened on: nothing to explain.")
        return "\n".join(lines)
    lead, prior, post, _, ratio = o_rows[0]
    lines.append(
        f"Leading origin: {_label(lead)}, P = {post:.2f} (prior {prior:.2f}; "
        f"the findings together multiplied its odds {_fmt_factor(ratio)}).")
    if len(o_rows) > 1:
        lines.append("Next: " + ", ".join(f"{_label(r[0])} {r[2]:.2f}" for r in o_rows[1:4])
                     + ".")
    if not ev:
        lines.append("No findings: every origin is at its prior.")
        return "\n".join(lines)
    for f in ev:
        rows = [r for r in table_rows if r["finding"] == f]
        lr = next(r for r in rows if r["origin"] == lead)
        s = (f"- {_label(f).capitalize()} = {ev[f]} "
             + _moved_text(lr["odds_factor"], lead, lr["posterior_without"], lr["posterior"]))
        if lr["direction"] == "effect" and lr["path"]:
            s += f", through {lr['path']}"
        elif lr["direction"] == "cause" and lr["path"]:
            s += f", as a cause: {lr['path']}"
        else:
            s += " (no causal path: it acts through shared causes or explaining away)"
        other = [r for r in rows if r["origin"] != lead and not math.isnan(r["woe"])]
        if other:
            big = max(other, key=lambda r: abs(r["woe"]))
            if abs(big["woe"]) > max(abs(lr["woe"]), math.log(1.5)):
                s += "; it mostly " + _moved_text(big["odds_factor"], big["origin"],
                                                 big["posterior_without"], big["posterior"])
        lines.append(s + ".")
    lines.append(
        "Weight of evidence = ln odds(origin | all findings) - ln odds(origin | all but this "
        "one), in nats (x1.44 for bits); findings interact, so the weights need not add up "
        "to the total. Teaching model, not a medical device.")
    return "\n".join(lines)


def _fmt_factor(x: float) -> str:
    if math.isinf(x):
        return "infinitely"
    if x >= 1:
        return f"{x:.1f}-fold"
    return f"by {x:.2f} (a {1 / x:.1f}-fold drop)" if x > 0 else "to zero"


# ----------------------------------------------------------------------------- what-if
def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    if isinstance(x, Mapping):
        return [f"{k}={v}" for k, v in x.items()]
    return list(x)


def _spec_for_edit(m: Any, eng: Engine, where: str) -> Any:
    from kneehip_bn.model.network import cpd_array
    from kneehip_bn.model.spec import ModelSpec

    if isinstance(m, ModelSpec):
        return m
    spec = m.graph.get("kneehip_spec") if hasattr(m, "graph") else None
    if spec is not None and all(
            np.allclose(cpd_array(spec, n), _family_table(eng, n)) for n in spec.nodes):
        return spec
    raise KneeHipError(
        f"{where}: edited priors ('set') need the model file form (a ModelSpec), found a "
        f"{type(m).__name__} whose tables are not those of a model file; pass "
        "model=load_spec(PATH) or a spec")


def what_if(
    base_evidence: Evidence = None,
    scenarios: Mapping[str, Mapping[str, Any] | str] | None = None,
    model: Any = None,
    targets: Sequence[str] | None = None,
    *,
    do: Evidence = None,
) -> Any:
    """Compare scenarios side by side: findings added or removed, context, do(), edited priors.

    Parameters
    ----------
    base_evidence : dict or list of "NAME=STATE"
        The case every scenario starts from (column ``base``).
    scenarios : dict
        ``{name: {"add": {...}, "remove": [...], "context": {...}, "do": {...},
        "set": ["NODE.leak=0.1", ...]}}``, applied in the order remove, context, add, do,
        set. ``add`` observes findings (replacing a node's state if already observed);
        ``remove`` forgets observed findings; ``context`` changes context nodes (age,
        activity); ``do`` intervenes (graph surgery: "if the knee pathology were treated");
        ``set`` edits priors for this scenario only (:func:`~kneehip_bn.apply_overrides`
        forms). A value may also be a scenario string (``"add=knee_effusion=present"``,
        see :func:`parse_scenario`).
    model : optional
        As in :func:`~kneehip_bn.diagnose`.
    targets : list of str, optional
        Rows: nodes (P(present/positive)) or ``"NODE=STATE"`` (default: the origins).
        An observed target shows 1 or 0: remove it in a scenario to ask how likely it
        would be.
    do : dict, optional
        Interventions of the base case (kept in every scenario).

    Returns
    -------
    pandas.DataFrame
        Rows = targets, columns = ``base`` then the scenarios, values = probabilities;
        ``df.attrs["descriptions"]`` says what each scenario did. Draw it with
        :func:`kneehip_bn.teaching.plots.plot_what_if`.

    Examples
    --------
    >>> from kneehip_bn import what_if
    >>> df = what_if({"knee_pain": "present", "hip_pain": "present"},
    ...              {"treated": {"do": {"knee_pathology": "absent"}, "remove": ["hip_pain"]},
    ...               "no_knee_path": {"add": {"knee_pathology": "absent"},
    ...                                "remove": ["hip_pain"]}},
    ...              targets=["hip_pain", "hip_pathology"], model="knee_hip_basic")
    >>> list(df.columns)
    ['base', 'treated', 'no_knee_path']
    >>> round(float(df.loc["hip_pain", "base"]), 9)   # observed in the base case
    1.0
    """
    import pandas as pd

    from kneehip_bn.model.spec import apply_overrides

    m = as_model(model)
    eng = get_engine(m)
    base_ev = resolve_evidence(eng, base_evidence, what="base evidence")
    base_do = resolve_evidence(eng, do, what="do")
    check_do_vs_evidence(base_ev, base_do)
    rows = _parse_targets(eng, m, targets)
    groups = node_groups(m)
    cases: dict[str, tuple[dict, dict, Any, str]] = {"base": (base_ev, base_do, m, "base case")}
    for name, sc in (scenarios or {}).items():
        name = str(name)
        where = f"scenario '{name}'"
        if name in cases:
            raise EvidenceError(f"{where}: expected a new scenario name, found it twice "
                                "(or named 'base', which is the base case)")
        if isinstance(sc, str):
            sc = parse_scenario(f"{name}:{sc}")[1]
        if not isinstance(sc, Mapping):
            raise EvidenceError(f"{where}: expected a dict with keys {', '.join(SCENARIO_ACTIONS)}"
                                f", found {type(sc).__name__}")
        for k in sc:
            if k not in SCENARIO_ACTIONS:
                raise UnknownNameError.for_name("scenario action", str(k), SCENARIO_ACTIONS,
                                                where=where)
        ev = dict(base_ev)
        desc = []
        for n in _as_list(sc.get("remove")):
            if n not in ev:
                if n not in eng.index:
                    raise UnknownNameError.for_name("node", n, eng.variables,
                                                    where=f"{where}, remove")
                raise EvidenceError(
                    f"{where}, remove: expected an observed node of the base evidence "
                    f"({', '.join(ev) or 'none'}), found '{n}' not observed")
            del ev[n]
            desc.append(f"remove {n}")
        ctx = resolve_evidence(eng, _as_list(sc.get("context")), what=f"{where}, context")
        for n in ctx:
            if groups.get(n) != "context":
                raise EvidenceError(
                    f"{where}, context: expected a context node "
                    f"({', '.join(n for n, g in groups.items() if g == 'context') or 'none'}), "
                    f"found '{n}' (group {groups.get(n)}); use add=... for findings")
        ev.update(ctx)
        if ctx:
            desc.append(f"context {_states_text(ctx)}")
        add = resolve_evidence(eng, _as_list(sc.get("add")), what=f"{where}, add")
        ev.update(add)
        if add:
            desc.append(f"add {_states_text(add)}")
        dov = dict(base_do)
        new_do = resolve_evidence(eng, _as_list(sc.get("do")), what=f"{where}, do")
        dov.update(new_do)
        if new_do:
            desc.append(f"do({_states_text(new_do)})")
        mm = m
        edits = [str(x) for x in _as_list(sc.get("set"))]
        if edits:
            mm = apply_overrides(_spec_for_edit(m, eng, where), edits)
            desc.append("set " + ", ".join(edits))
        try:
            check_do_vs_evidence(ev, dov)
        except EvidenceError as exc:
            raise EvidenceError(f"{where}: {exc}") from None
        cases[name] = (ev, dov, mm, "; ".join(desc) or "same as base")
    data: dict[str, list[float]] = {}
    for name, (ev, dov, mm, _) in cases.items():
        e2 = get_engine(mm)
        try:
            post = e2.posterior(ev, targets=sorted({n for _, n, _ in rows}), do=dov or None)
        except ImpossibleEvidenceError as exc:
            raise ImpossibleEvidenceError(f"scenario '{name}': {exc}") from None
        data[name] = [float(post[n][e2.state_index[n][s]]) for _, n, s in rows]
    df = pd.DataFrame(data, index=pd.Index([lab for lab, _, _ in rows], name="target"))
    df.attrs["descriptions"] = {k: v[3] for k, v in cases.items()}
    _flag_attrs(df, m, base_ev)
    df.attrs["evidence"] = dict(base_ev)
    df.attrs["do"] = dict(base_do)
    df.attrs["states"] = {lab: s for lab, _, s in rows}
    return df


def _parse_targets(eng: Engine, m: Any, targets: Sequence[str] | None):
    if targets is None:
        targets = _origin_list(m, eng, None)
    rows = []
    for t in targets:
        node, _, state = str(t).partition("=")
        node, state = node.strip(), state.strip()
        if node not in eng.index:
            raise UnknownNameError.for_name("node", node, eng.variables, where="targets")
        if state:
            if state not in eng.state_index[node]:
                raise UnknownNameError.for_name(f"state of {node}", state, eng.states[node],
                                                where="targets")
            rows.append((f"{node}={state}", node, state))
        else:
            rows.append((node, node, on_state(eng.states[node])))
    return rows


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside square brackets (``NODE[A=x,B=y].s=0.1`` stays whole)."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [s.strip() for s in out if s.strip()]


def parse_scenario(text: str) -> tuple[str, dict[str, list[str]]]:
    """Parse the command-line form of a scenario.

    ``NAME:ACTION=ITEMS[;ACTION=ITEMS...]`` where ACTION is ``add``, ``remove``,
    ``context``, ``do`` or ``set``, and ITEMS a comma-separated list: ``NODE=STATE`` items
    (add, context, do), node names (remove) or ``--set`` edits (set).

    >>> from kneehip_bn.teaching.reasoning import parse_scenario
    >>> parse_scenario("treated:do=knee_pathology=absent;remove=hip_pain")
    ('treated', {'do': ['knee_pathology=absent'], 'remove': ['hip_pain']})
    >>> parse_scenario("older:context=age_group=60_plus;set=knee_pain.leak=0.1")[1]["set"]
    ['knee_pain.leak=0.1']
    """
    usage = ("expected NAME:ACTION=ITEMS[;ACTION=ITEMS], ACTION one of "
             f"{', '.join(SCENARIO_ACTIONS)} (e.g. \"treated:do=knee_osteoarthritis=absent\")")
    if not isinstance(text, str) or ":" not in text:
        raise EvidenceError(f"scenario '{text}': {usage}, found no ':' after the name")
    name, _, body = text.partition(":")
    name = name.strip()
    if not name:
        raise EvidenceError(f"scenario '{text}': {usage}, found an empty name")
    parts = _split_top(body, ";")
    if not parts:
        raise EvidenceError(f"scenario '{text}': {usage}, found no action")
    out: dict[str, list[str]] = {}
    for part in parts:
        action, eq, items = part.partition("=")
        action = action.strip()
        if not eq:
            raise EvidenceError(f"scenario '{name}': {usage}, found '{part}' without '='")
        if action not in SCENARIO_ACTIONS:
            raise UnknownNameError.for_name("scenario action", action, SCENARIO_ACTIONS,
                                            where=f"scenario '{name}'")
        vals = _split_top(items, ",")
        if not vals:
            raise EvidenceError(f"scenario '{name}': expected items after '{action}=', "
                                "found none")
        if action in ("add", "context", "do"):
            for v in vals:
                if v.count("=") != 1:
                    raise EvidenceError(f"scenario '{name}', {action}: expected NODE=STATE, "
                                        f"found '{v}'")
        out.setdefault(action, []).extend(vals)
    return name, out


# ----------------------------------------------------------------------------- joint origins
def _origin_joint(eng: Engine, ev: Mapping[str, str], dov: Mapping[str, str],
                  origins: Sequence[str], targets: Sequence[str]):
    """P(origin configuration | e) for every configuration of ``origins`` and
    P(target | e, configuration), from one batched pass.

    Returns (configs (n_cfg, n_origins) state indices, weights (n_cfg,), marginals
    {target: (n_cfg, card)}).
    """
    cards = [int(eng.card[eng.index[o]]) for o in origins]
    configs = np.array(list(itertools.product(*[range(c) for c in cards])), dtype=np.intp)
    configs = configs.reshape(-1, len(origins))
    cols = list(ev) + list(origins)
    base = np.array([eng.state_index[k][v] for k, v in ev.items()], dtype=np.intp)
    codes = np.hstack([np.broadcast_to(base, (len(configs), len(base))), configs])
    res = eng.batch(codes, cols, targets=list(targets) or None, do=dov or None,
                    on_impossible="nan")
    lp = res.log_evidence
    if not np.isfinite(lp).any():
        raise ImpossibleEvidenceError(
            f"impossible evidence: the model gives probability zero to {_states_text(ev)}; "
            "expected findings the model allows; check for contradictory findings")
    w = np.exp(lp - lp[np.isfinite(lp)].max())
    w[~np.isfinite(lp)] = 0.0
    w = w / w.sum()
    margs = {t: np.nan_to_num(res.marginals[t], nan=0.0) for t in targets}
    return configs, w, margs


def _entropy_bits(p: np.ndarray, axis: int | None = None) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0), axis=axis)


def _leader(configs: np.ndarray, weights: np.ndarray, on_idx: np.ndarray) -> int:
    """Index of the origin with the highest marginal P(on) under a joint over configs."""
    if weights.sum() <= 0:
        return -1
    marg = ((configs == on_idx[None, :]) * weights[:, None]).sum(axis=0) / weights.sum()
    return int(np.argmax(marg))


def next_best_test(
    evidence: Evidence = None,
    model: Any = None,
    candidates: Sequence[str] | None = None,
    costs: Mapping[str, float] | None = None,
    *,
    do: Evidence = None,
    origins: Sequence[str] | None = None,
) -> Any:
    """Rank unobserved findings and tests by the information they are expected to give.

    Expected information gain of a candidate ``F``: the mutual information, in bits,
    between ``F`` and the joint state of the (unobserved) origins ``O`` given the current
    evidence ``e``: ``I(F; O | e) = H(O | e) - sum_f P(f | e) H(O | e, f)``. The joint
    posterior over the origins (32 states for five two-state origins) and ``P(F | e, o)``
    for every candidate come from one batched engine pass with each origin configuration
    added as evidence.

    Parameters
    ----------
    evidence : dict or list of "NAME=STATE"
    model : optional
    candidates : list of str, optional
        Default: every unobserved node of the groups ``finding`` and ``test``.
    costs : dict, optional
        ``{candidate: cost}`` (positive; missing ones cost 1) for the ``gain_per_cost``
        column.
    do : dict, optional
        Interventions.
    origins : list of str, optional
        The diagnostic targets (default: the ``origin`` group).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``finding``, highest gain first: ``expected_information_gain`` (bits),
        ``p_on`` (P(present/positive | e)), ``p_change_leading`` (probability that observing
        it changes the leading origin), ``leading_if_on``, ``leading_if_not_on``, ``cost``,
        ``gain_per_cost``. ``df.attrs["entropy_bits"]`` is H(O | e), the most any test can
        give; ``df.attrs["leading"]`` the current leading origin.

    Examples
    --------
    >>> from kneehip_bn import next_best_test
    >>> nbt = next_best_test({"low_back_pain": "present", "radiating_leg_pain": "present"}, model="knee_hip_basic")
    >>> nbt.index[0] in {"leg_numbness_tingling", "straight_leg_raise", "hip_pain", "knee_pain",
    ...                  "femoral_nerve_stretch", "fadir_test", "hip_internal_rotation_limited"}
    True
    """
    import pandas as pd

    m, eng, ev, dov = _setup(evidence, do, model)
    olist = [o for o in _origin_list(m, eng, origins, strict=True)
             if o not in ev and o not in dov]
    if candidates is None:
        groups = node_groups(m)
        cands = [n for n in groups if groups[n] in ("finding", "test") and n in eng.index
                 and n not in ev and n not in dov]
    else:
        cands = []
        for c in candidates:
            if c not in eng.index:
                raise UnknownNameError.for_name("node", c, eng.variables, where="candidates")
            if c in ev or c in dov:
                raise EvidenceError(f"candidates: expected an unobserved node, found '{c}' "
                                    f"already {'observed' if c in ev else 'intervened on'}")
            cands.append(c)
    costs = dict(costs or {})
    for k, v in costs.items():
        if k not in cands:
            raise UnknownNameError.for_name("candidate", k, cands, where="costs")
        if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
            raise EvidenceError(f"costs: expected a positive number for {k}, found {v!r}")
    if not olist:
        raise EvidenceError("next_best_test: expected at least one unobserved origin, found "
                            "every origin observed or intervened on")
    configs, w, margs = _origin_joint(eng, ev, dov, olist, cands)
    h_o = float(_entropy_bits(w))
    on_idx = np.array([_on(eng, o) for o in olist])
    lead0 = _leader(configs, w, on_idx)
    rows = []
    for c in cands:
        joint = w[:, None] * margs[c]  # P(o, f | e)
        pf = joint.sum(axis=0)
        h_cond = sum(pf[f] * _entropy_bits(joint[:, f] / pf[f]) for f in range(len(pf))
                     if pf[f] > 0)
        gain = max(0.0, h_o - float(h_cond))
        k = _on(eng, c)
        leaders = [_leader(configs, joint[:, f], on_idx) for f in range(len(pf))]
        p_change = float(sum(pf[f] for f in range(len(pf)) if pf[f] > 0 and leaders[f] != lead0))
        not_on = joint.sum(axis=1) - joint[:, k]
        cost = float(costs.get(c, 1.0))
        rows.append({
            "finding": c, "expected_information_gain": gain, "p_on": float(pf[k]),
            "p_change_leading": p_change,
            "leading_if_on": olist[leaders[k]] if pf[k] > 0 else None,
            "leading_if_not_on": (olist[_leader(configs, not_on, on_idx)]
                                  if not_on.sum() > 0 else None),
            "cost": cost, "gain_per_cost": gain / cost,
        })
    cols = ["finding", "expected_information_gain", "p_on", "p_change_leading",
            "leading_if_on", "leading_if_not_on", "cost", "gain_per_cost"]
    df = pd.DataFrame(rows, columns=cols).set_index("finding")
    df = df.sort_values("expected_information_gain", ascending=False, kind="stable")
    df.attrs["entropy_bits"] = h_o
    df.attrs["leading"] = olist[lead0] if lead0 >= 0 else None
    df.attrs["evidence"] = dict(ev)
    df.attrs["origins"] = olist
    _flag_attrs(df, m, ev)
    return df


# ----------------------------------------------------------------------------- conflict
@dataclass
class Conflict:
    """Jensen's conflict measure of a set of findings.

    Attributes
    ----------
    conflict : float
        ``conf(e) = log2(prod_i P(e_i) / P(e))`` in bits. Positive: the findings are less
        likely together than if they were independent (an atypical or contradictory case);
        negative: they support each other.
    contributions : pandas.DataFrame
        Per finding: ``prior`` P(e_i), ``given_rest`` P(e_i | other findings),
        ``contribution`` = log2(P(e_i) / P(e_i | rest)) = conf(e) - conf(e without e_i),
        positive when the finding is surprising given the others.
    p_value : float or None
        Share of cases simulated from the model (same findings observed) whose conflict is
        at least as high (``None`` unless ``n_sim > 0``).
    simulated : ndarray or None
        The simulated conflict values.
    """

    conflict: float
    contributions: Any
    evidence: dict[str, str]
    do: dict[str, str]
    p_value: float | None = None
    simulated: np.ndarray | None = None
    red_flags: list[str] = field(default_factory=list)

    @property
    def warning(self) -> str:
        """"REFER: red flag ..." when a red-flag finding is present, else ``""``."""
        return red_flag_warning(self.red_flags)

    @property
    def flagged(self) -> bool:
        """True when conf(e) > :data:`CONFLICT_TOL` bits (the findings disagree with each
        other); rounding noise of a few 1e-16 bits never flips the verdict."""
        return self.conflict > CONFLICT_TOL

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        head = {"warning": self.warning} if self.red_flags else {}
        return {**head, "red_flags": list(self.red_flags),
                "conflict_bits": self.conflict, "flagged": self.flagged,
                "p_value": self.p_value, "evidence": dict(self.evidence), "do": dict(self.do),
                "contributions": self.contributions.reset_index().to_dict(orient="records")}

    def __str__(self) -> str:
        verdict = ("CONFLICT: the findings are less likely together than apart (atypical or "
                   "contradictory case)" if self.flagged else
                   "no conflict: the findings support each other")
        lines = [self.warning, ""] if self.red_flags else []
        lines.append(f"conf(e) = {self.conflict:+.3f} bits -> {verdict}.")
        if self.p_value is not None:
            lines.append(f"Share of {len(self.simulated)} cases simulated from the model with at "
                         f"least this conflict: {self.p_value:.3f}.")
        lines.append("")
        labs = [f"{n}={r['state']}" for n, r in self.contributions.iterrows()]
        w = max([len(x) for x in labs] + [8]) + 2
        lines.append(f"{'finding':<{w}}{'P(e_i)':>9}{'P(e_i|rest)':>13}{'bits':>8}")
        for lab, (_, r) in zip(labs, self.contributions.iterrows()):
            lines.append(f"{lab:<{w}}{r['prior']:>9.3f}{r['given_rest']:>13.3f}"
                         f"{r['contribution']:>+8.2f}")
        lines.append("bits = log2 P(e_i) / P(e_i | the other findings): positive when a finding "
                     "is surprising given the rest.")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        head = html.escape(str(self).split("\n")[0])
        fmt = {"prior": "{:.3f}", "given_rest": "{:.3f}", "contribution": "{:+.2f}"}
        try:  # pandas' Styler needs jinja2, which is not a dependency
            body = self.contributions.style.format(fmt).to_html()
        except (AttributeError, ImportError):
            body = self.contributions.to_html(float_format="{:.3f}".format)
        return f"<p>{head}</p>" + body


def conflict(
    evidence: Evidence,
    model: Any = None,
    *,
    do: Evidence = None,
    n_sim: int = 0,
    seed: int = 0,
) -> Conflict:
    """Jensen's conflict measure ``conf(e) = log2(prod_i P(e_i) / P(e))`` with per-finding
    contributions and, optionally, its tail probability among simulated cases.

    Parameters
    ----------
    evidence : dict or list of "NAME=STATE"
    model : optional
    do : dict, optional
        Interventions (all probabilities are then under the intervention).
    n_sim : int, default 0
        Simulate this many cases from the model, observe the same nodes, and report the
        share whose conflict is at least as high (``p_value``).
    seed : int
        Random seed of the simulation.

    Examples
    --------
    >>> from kneehip_bn import conflict
    >>> c = conflict({"knee_pain": "present", "knee_effusion": "present"}, model="knee_hip_basic")
    >>> c.flagged
    False
    """
    import pandas as pd

    if isinstance(n_sim, bool) or not isinstance(n_sim, (int, np.integer)) or n_sim < 0:
        raise ParameterError(f"conflict: n_sim: expected a whole number of simulated cases "
                             f">= 0, found {n_sim!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"conflict: seed: expected a whole number >= 0, found {seed!r}")
    m, eng, ev, dov = _setup(evidence, do, model)
    if not ev:
        raise EvidenceError("conflict: expected at least one finding, found none")
    names = list(ev)
    rows = [ev] + [{k: v for k, v in ev.items() if k != f} for f in names]
    res = eng.batch(_codes(eng, rows, names), names, targets=names, do=dov or None,
                    on_impossible="nan")
    lp = res.log_evidence / LN2  # bits
    if not np.isfinite(lp[0]):
        raise ImpossibleEvidenceError(
            f"impossible evidence: the model gives probability zero to {_states_text(ev)}; "
            "the conflict measure needs findings the model allows")
    prior = eng.posterior({}, targets=names, do=dov or None)
    lpi = np.array([math.log2(max(float(prior[n][eng.state_index[n][ev[n]]]), _EPS))
                    for n in names])
    conf = float(lpi.sum() - lp[0])
    contrib = lpi + lp[1:] - lp[0]
    if len(names) == 1:  # conf of one finding is 0 by definition (log2 P(e)/P(e))
        conf, contrib = 0.0, np.zeros(1)
    df = pd.DataFrame({
        "state": [ev[n] for n in names],
        "prior": np.exp2(lpi),
        "given_rest": np.exp2(lp[0] - lp[1:]),
        "contribution": contrib,
    }, index=pd.Index(names, name="finding"))
    out = Conflict(conflict=conf, contributions=df, evidence=ev, do=dov,
                   red_flags=red_flags_present(m, ev))
    if n_sim and n_sim > 0:
        rng = np.random.default_rng(seed)
        sample = forward_sample(eng, int(n_sim), rng, dov)
        codes = sample[:, [eng.index[n] for n in names]]
        sim = eng.batch(codes, names, targets=names[:1], do=dov or None, on_impossible="nan")
        pri = {n: np.log2(np.maximum(prior[n], _EPS)) for n in names}
        sim_l = sum(pri[n][codes[:, j]] for j, n in enumerate(names))
        conf_sim = sim_l - sim.log_evidence / LN2
        if len(names) == 1:
            conf_sim = np.zeros_like(conf_sim)
        out.simulated = conf_sim
        out.p_value = float(np.mean(conf_sim >= conf - CONFLICT_TOL))
    return out
