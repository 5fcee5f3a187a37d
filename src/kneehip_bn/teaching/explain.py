"""Why the model believes what it does: weights of evidence, finding by finding.

:func:`explain` says how much each finding moved each origin (weight of evidence, in the
context of the other findings), the causal path that carries it, and a plain-language
summary. :func:`link_strength` (the causal power of an edge) and :func:`causal_paths` (the
directed paths between two nodes) are the pieces it is built from. Every number comes from
the compiled engine (:func:`~kneehip_bn.inference.cache.get_engine`): the evidence with each
finding left out goes through one batched ``Engine.batch`` call.

Examples
--------
>>> from kneehip_bn.teaching.explain import explain
>>> ex = explain({"knee_effusion": "present", "hip_pain": "present"}, model="knee_hip_basic")
>>> ex.leading[0]
'knee_pathology'
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kneehip_bn._util.graph import directed_paths
from kneehip_bn.errors import UnknownNameError
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.engine import Engine
from kneehip_bn.inference.queries import Evidence, as_model, red_flag_warning, red_flags_present
from kneehip_bn.teaching.common import (
    LN2,
    evidence_codes,
    family_table,
    logit,
    node_label,
    on_index,
    origin_list,
    setup_query,
    states_text,
)

__all__ = ["Explanation", "causal_paths", "explain", "link_strength"]


def link_strength(model: Any, parent: str, child: str) -> float:
    """The causal power of the edge ``parent -> child``.

    The largest, over the states of the other parents and over pairs of states ``a, b`` of
    ``parent``, of ``(P(on | a, rest) - P(on | b, rest)) / (1 - P(on | b, rest))`` ("on" is
    ``present``/``positive``). For a noisy-OR child it is exactly the link probability.

    >>> from kneehip_bn.teaching.explain import link_strength
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
        t = family_table(eng, child)[on_index(eng, child)]  # axes: parents
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

    >>> from kneehip_bn.teaching.explain import causal_paths
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
    return directed_paths(ch, source, target, limit)


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
                score *= float(post[mid][on_index(eng, mid)])
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

    m, eng, ev, dov = setup_query(evidence, do, model)
    olist = [o for o in origin_list(m, eng, origins, strict=True)
             if o not in ev and o not in dov]
    findings = list(ev)
    rows = [ev] + [{k: v for k, v in ev.items() if k != f} for f in findings]
    res = eng.batch(evidence_codes(eng, rows, findings), findings, targets=None, do=dov or None)
    post = {v: res.marginals[v][0] for v in eng.variables}
    prior = eng.posterior({}, do=dov or None) if ev else post

    def p_on(d: Mapping[str, np.ndarray], n: str) -> float:
        return float(d[n][on_index(eng, n)])

    o_rows = []
    for o in olist:
        pr, po = p_on(prior, o), p_on(post, o)
        tot = float(logit(po) - logit(pr))
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
            pw = float(res.marginals[o][i + 1][on_index(eng, o)])
            w = float(logit(po) - logit(pw))
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
    o = node_label(origin)
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
    given = states_text(ev) or "no findings"
    lines.append(f"Findings: {given}" + (f"; interventions: do({states_text(dov)})"
                                          if dov else "") + ".")
    if not o_rows:
        lines.append("Every origin is observed or intervened on: nothing to explain.")
        return "\n".join(lines)
    lead, prior, post, _, ratio = o_rows[0]
    lines.append(
        f"Leading origin: {node_label(lead)}, P = {post:.2f} (prior {prior:.2f}; "
        f"the findings together multiplied its odds {_fmt_factor(ratio)}).")
    if len(o_rows) > 1:
        lines.append("Next: " + ", ".join(f"{node_label(r[0])} {r[2]:.2f}" for r in o_rows[1:4])
                     + ".")
    if not ev:
        lines.append("No findings: every origin is at its prior.")
        return "\n".join(lines)
    for f in ev:
        rows = [r for r in table_rows if r["finding"] == f]
        lr = next(r for r in rows if r["origin"] == lead)
        s = (f"- {node_label(f).capitalize()} = {ev[f]} "
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

