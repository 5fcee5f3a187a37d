"""Figures: the layered network with posteriors inside the nodes, and bar charts.

matplotlib is imported only when a figure is drawn. No Graphviz binary is needed: the
layout is computed here (layers by group, mechanism sub-layers by causal depth, order
within a layer by the barycentre of the parents).

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from kneehip_bn.teaching.plots import draw_network
>>> ax = draw_network(model="knee_hip_basic")
>>> len(ax.patches) > 30
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kneehip_bn._util.files import atomic_write
from kneehip_bn.errors import ParameterError, UnknownNameError, closest
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.queries import as_model, node_groups, on_state
from kneehip_bn.teaching.explain import explain

__all__ = [
    "FIGURE_FORMATS",
    "GROUP_COLORS",
    "draw_network",
    "figure_format",
    "graph_of",
    "layered_layout",
    "plot_conflict",
    "plot_credible_intervals",
    "plot_explanation",
    "plot_next_test",
    "plot_origins",
    "plot_tornado",
    "plot_what_if",
    "save_figure",
    "show_inference",
]

GROUP_COLORS = {
    "context": "#e0e0e0",
    "origin": "#fdd0a2",
    "mechanism": "#c6dbef",
    "finding": "#c7e9c0",
    "test": "#dadaeb",
}
_GROUP_ORDER = ["context", "origin", "mechanism", "finding", "test"]
HIGHLIGHT_COLOR = "#d62728"


def graph_of(model: Any) -> tuple[dict[str, list[str]], dict[str, str], dict[str, list[str]]]:
    """(parents, groups, states) of a model: what a picture of the network needs."""
    m = as_model(model)
    eng = get_engine(m)
    return dict(eng.parents), node_groups(m), dict(eng.states)


def layered_layout(
    parents: Mapping[str, Sequence[str]], groups: Mapping[str, str], max_per_row: int = 9,
    sweeps: int = 4,
) -> dict[str, tuple[float, float]]:
    """Positions ``{node: (x, y)}``: one band per group, top to bottom, mechanisms split
    into sub-layers by causal depth, long rows wrapped; the order within each row is
    refined by barycentre sweeps (down: mean position of the parents; up: of the children)
    and the order with the fewest edge crossings is kept."""
    rows: list[list[str]] = []
    pos: dict[str, tuple[float, float]] = {}

    def bary(n: str) -> float:
        xs = [pos[p][0] for p in parents[n] if p in pos]
        return float(np.mean(xs)) if xs else 0.0

    def place(row: list[str]) -> None:
        r = len(rows)
        rows.append(row)
        w = len(row)
        for i, n in enumerate(row):
            pos[n] = ((i - (w - 1) / 2) * 1.0, -r * 1.0)

    for g in _GROUP_ORDER:
        members = [n for n in parents if groups.get(n) == g]
        if not members:
            continue
        if g == "mechanism":
            depth: dict[str, int] = {}

            def d(n: str, depth: dict[str, int] = depth) -> int:
                if n not in depth:
                    ps = [p for p in parents[n] if groups.get(p) == "mechanism"]
                    depth[n] = 1 + max((d(p) for p in ps), default=-1)
                return depth[n]

            for k in range(max(d(n) for n in members) + 1):
                place(sorted((n for n in members if d(n) == k), key=bary))
        else:
            members = sorted(members, key=bary)  # barycentre against the rows above
            for i in range(0, len(members), max_per_row):
                place(members[i:i + max_per_row])
    return _refine(rows, parents, pos, sweeps)


def _refine(rows: list[list[str]], parents: Mapping[str, Sequence[str]],
            pos: dict[str, tuple[float, float]], sweeps: int) -> dict[str, tuple[float, float]]:
    """Barycentre sweeps over the rows; keep the layout with the fewest crossings."""
    children: dict[str, list[str]] = {n: [] for n in parents}
    for c, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(c)
    edges = [(p, c) for c, ps in parents.items() for p in ps]

    def layout(rs: list[list[str]]) -> dict[str, tuple[float, float]]:
        return {n: ((i - (len(r) - 1) / 2) * 1.0, -ri * 1.0)
                for ri, r in enumerate(rs) for i, n in enumerate(r)}

    def crossings(ps: dict[str, tuple[float, float]]) -> int:
        segs = [(ps[a], ps[b]) for a, b in edges]
        count = 0
        for i in range(len(segs)):
            (ax0, ay0), (ax1, ay1) = segs[i]
            for j in range(i + 1, len(segs)):
                (bx0, by0), (bx1, by1) = segs[j]
                if len({segs[i][0], segs[i][1], segs[j][0], segs[j][1]}) < 4:
                    continue
                # only pairs spanning the same rows can be compared by their end order
                if (ay0, ay1) == (by0, by1) and (ax0 - bx0) * (ax1 - bx1) < 0:
                    count += 1
        return count

    best_rows = [list(r) for r in rows]
    best = layout(best_rows)
    best_c = crossings(best)
    cur = [list(r) for r in rows]
    for s in range(sweeps):
        order = range(1, len(cur)) if s % 2 == 0 else range(len(cur) - 2, -1, -1)
        for ri in order:
            ps = layout(cur)
            nbrs = parents if s % 2 == 0 else children

            def key(n: str, ps=ps, nbrs=nbrs) -> float:
                xs = [ps[m][0] for m in nbrs.get(n, []) if m in ps]
                return float(np.mean(xs)) if xs else ps[n][0]

            cur[ri] = sorted(cur[ri], key=key)
        ps = layout(cur)
        c = crossings(ps)
        if c < best_c:
            best_c, best, best_rows = c, ps, [list(r) for r in cur]
    return best


def _wrap(label: str, width: int = 15) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(label, width=width, break_long_words=False)[:3]) or label


def draw_network(
    model: Any = None,
    posteriors: Mapping[str, Sequence[float]] | None = None,
    evidence: Mapping[str, str] | None = None,
    highlight: Sequence[tuple[str, str]] | None = None,
    ax: Any = None,
    title: str | None = None,
    do: Mapping[str, str] | None = None,
) -> Any:
    """Draw the network in layers (context, origins, mechanisms, findings, tests).

    Parameters
    ----------
    model : optional
        A pgmpy network, ModelSpec, model path, or ``None`` for the shipped model.
    posteriors : dict, optional
        ``{node: probabilities}``; each node then shows a bar with P(present) inside it.
    evidence : dict, optional
        Observed nodes are outlined in black and show the observed state.
    highlight : list of (parent, child), optional
        Edges drawn thick and red (e.g. the paths that carry the evidence).
    ax : matplotlib Axes, optional
    title : str, optional
    do : dict, optional
        Intervened nodes: dashed outline, ``do = state``, and their incoming edges dotted
        (graph surgery cuts them).

    Returns
    -------
    matplotlib.axes.Axes
        Edge arrows have the gid ``"edge:PARENT->CHILD"`` and node boxes ``"node:NAME"``
        (handy for checking a figure's content).
    """
    import matplotlib.pyplot as plt

    parents, groups, states = graph_of(model)
    pos = layered_layout(parents, groups)
    evidence = dict(evidence or {})
    do = dict(do or {})
    hl = set(map(tuple, highlight or []))
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    if ax is None:
        width = max(8.0, (max(xs) - min(xs) + 2) * 1.45)
        height = max(5.0, (max(ys) - min(ys) + 2) * 1.05)
        _, ax = plt.subplots(figsize=(width, height))
    _draw_edges(ax, parents, pos, hl, do)
    _draw_nodes(ax, pos, groups, states, evidence, do, posteriors)
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.75)
    ax.set_aspect("auto")
    ax.axis("off")
    _draw_legend(ax, evidence, do, hl)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


_BOX_W, _BOX_H = 0.92, 0.62  # node box size, in layout units


def _draw_edges(ax: Any, parents: Mapping[str, Sequence[str]], pos: Mapping[str, Any],
                hl: set, do: Mapping[str, str]) -> None:
    """One arrow per edge: highlighted ones thick and red, edges into ``do`` nodes dotted."""
    from matplotlib.patches import FancyArrowPatch

    bh = _BOX_H
    for child, ps in parents.items():
        for p in ps:
            (x0, y0), (x1, y1) = pos[p], pos[child]
            on = (p, child) in hl
            cut = child in do
            arrow = FancyArrowPatch(
                (x0, y0 - bh / 2), (x1, y1 + bh / 2), arrowstyle="-|>",
                mutation_scale=11 if on else 8,
                color=HIGHLIGHT_COLOR if on else "#a0a0a0", lw=2.6 if on else 0.6,
                alpha=0.95 if on else 0.6, zorder=1.5 if on else 1,
                linestyle=":" if cut else "-", connectionstyle="arc3,rad=0.04",
                shrinkA=0, shrinkB=1)
            arrow.set_gid(f"edge:{p}->{child}")
            ax.add_patch(arrow)


def _draw_nodes(ax: Any, pos: Mapping[str, Any], groups: Mapping[str, str],
                states: Mapping[str, Sequence[str]], evidence: Mapping[str, str],
                do: Mapping[str, str], posteriors: Mapping[str, Sequence[float]] | None) -> None:
    """One box per node, with its observed (or ``do``) state or a bar of its posterior."""
    from matplotlib.patches import FancyBboxPatch, Rectangle

    bw, bh = _BOX_W, _BOX_H
    for n, (x, y) in pos.items():
        g = groups.get(n, "mechanism")
        observed, forced = n in evidence, n in do
        box = FancyBboxPatch(
            (x - bw / 2, y - bh / 2), bw, bh, boxstyle="round,pad=0.02,rounding_size=0.08",
            fc=GROUP_COLORS.get(g, "#ffffff"),
            ec="black" if (observed or forced) else "#555555",
            lw=2.2 if (observed or forced) else 0.6, linestyle="--" if forced else "-",
            zorder=2)
        box.set_gid(f"node:{n}")
        ax.add_patch(box)
        ax.text(x, y + 0.13, _wrap(n.replace("_", " ")), ha="center", va="center",
                fontsize=6.3, zorder=4, linespacing=0.95)
        if observed or forced:
            val = evidence[n] if observed else do[n]
            ax.text(x, y - 0.17, f"{'do ' if forced else ''}= {val}", ha="center",
                    va="center", fontsize=6.3, weight="bold", zorder=4)
        elif posteriors is not None and n in posteriors:
            probs = np.asarray(posteriors[n], dtype=float)
            k = states[n].index(on_state(states[n]))
            p = float(probs[k])
            ax.add_patch(Rectangle((x - bw / 2 + 0.07, y - 0.26), (bw - 0.14), 0.09,
                                   fc="white", ec="#777777", lw=0.4, zorder=3))
            ax.add_patch(Rectangle((x - bw / 2 + 0.07, y - 0.26), (bw - 0.14) * p, 0.09,
                                   fc="#3182bd", ec="none", zorder=3))
            name = on_state(states[n]) if len(states[n]) == 2 else states[n][k]
            ax.text(x, y - 0.1, f"P({name})={p:.2f}", ha="center", va="center",
                    fontsize=5.8, zorder=4)


def _draw_legend(ax: Any, evidence: Mapping[str, str], do: Mapping[str, str], hl: set) -> None:
    """The group colours, and the outlines and edges the figure uses."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    handles: list[Any] = [Rectangle((0, 0), 1, 1, fc=c, ec="#555555")
                          for c in GROUP_COLORS.values()]
    labels = list(GROUP_COLORS)
    if evidence:
        handles.append(Rectangle((0, 0), 1, 1, fc="white", ec="black", lw=2.2))
        labels.append("observed")
    if do:
        handles.append(Rectangle((0, 0), 1, 1, fc="white", ec="black", lw=2.2, ls="--"))
        labels.append("intervened (do)")
    if hl:
        handles.append(Line2D([0], [0], color=HIGHLIGHT_COLOR, lw=2.6))
        labels.append("path carrying the evidence")
    ax.legend(handles, labels, loc="upper center", fontsize=7, frameon=False,
              ncol=len(labels), bbox_to_anchor=(0.5, 0.0))


def show_inference(
    evidence: Mapping[str, str] | Sequence[str] | None = None,
    model: Any = None,
    ax: Any = None,
    *,
    do: Mapping[str, str] | Sequence[str] | None = None,
    top: int = 1,
    min_factor: float = 1.25,
    title: str | None = None,
) -> Any:
    """The network with every node's posterior inside it and the evidence paths in red.

    In the spirit of pyAgrum's ``showInference``: posteriors come from the compiled
    engine; findings are outlined; the causal paths that carry each finding to the leading
    origin(s) (:meth:`kneehip_bn.teaching.explain.Explanation.highlight_edges`: findings that moved
    the odds at least ``min_factor``-fold) are highlighted.

    Parameters
    ----------
    evidence : dict or list of "NAME=STATE"
    model : optional
    ax : matplotlib Axes, optional
    do : dict, optional
        Interventions (dashed outline; their incoming edges dotted).
    top : int
        Highlight the paths to this many leading origins.
    min_factor : float
        Only findings that moved an origin's odds at least this many-fold (up or down).
    title : str, optional
        Default: the findings and the leading origin.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from kneehip_bn.teaching.plots import show_inference
    >>> ax = show_inference({"knee_effusion": "present", "hip_pain": "present"}, model="knee_hip_basic")
    >>> any(p.get_gid() == "edge:knee_pathology->knee_effusion" and p.get_linewidth() > 2
    ...     for p in ax.patches)
    True
    """
    ex = explain(evidence, model=model, do=do)
    if title is None:
        lead = ex.leading[0] if ex.leading else None
        import textwrap

        title = "Findings: " + (", ".join(f"{k}={v}" for k, v in ex.evidence.items()) or "none")
        if ex.do:
            title += "; do(" + ", ".join(f"{k}={v}" for k, v in ex.do.items()) + ")"
        title = "\n".join(textwrap.wrap(title, 140))
        if lead is not None:
            title += (f"\nleading origin: {lead.replace('_', ' ')} "
                      f"P={float(ex.origins.loc[lead, 'posterior']):.2f}")
    return draw_network(model, posteriors=ex.posteriors, evidence=ex.evidence,
                        highlight=ex.highlight_edges(top=top, min_factor=min_factor), ax=ax,
                        title=title, do=ex.do)


def plot_origins(diagnosis: Any, ax: Any = None) -> Any:
    """Prior vs posterior P(present) of each origin as paired horizontal bars."""
    import matplotlib.pyplot as plt

    o = diagnosis.origins
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.5 * len(o) + 1.2))
    y = np.arange(len(o))[::-1]
    ax.barh(y + 0.18, o["prior"], height=0.36, color="#bdbdbd", label="prior")
    ax.barh(y - 0.18, o["posterior"], height=0.36, color="#3182bd", label="posterior")
    for yi, p in zip(y, o["posterior"]):
        ax.text(min(p + 0.01, 0.93), yi - 0.18, f"{p:.2f}", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels([n.replace("_", " ") for n in o.index])
    ax.set_xlim(0, 1)
    ax.set_xlabel("P(present)")
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_explanation(explanation: Any, origin: str | None = None, ax: Any = None,
                     unit: str = "nats") -> Any:
    """Weight of evidence of each finding for one origin (default: the leading one) as
    horizontal bars: red raises the odds, blue lowers them; labels give the odds factor.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from kneehip_bn import explain
    >>> from kneehip_bn.teaching.plots import plot_explanation
    >>> ax = plot_explanation(explain({"knee_effusion": "present", "hip_pain": "present"}, model="knee_hip_basic"))
    >>> len(ax.patches)
    2
    """
    import matplotlib.pyplot as plt

    if origin is None:
        if not explanation.leading:
            raise ValueError("plot_explanation: no unobserved origin to show")
        origin = explanation.leading[0]
    t = explanation.table[explanation.table["origin"] == origin]
    if t.empty:
        raise UnknownNameError.for_name("origin", origin, list(explanation.leading))
    col = "woe" if unit == "nats" else "woe_bits"
    vals = t[col].to_numpy(dtype=float)
    labels = [f"{f.replace('_', ' ')} = {s}" for f, s in zip(t["finding"], t["state"])]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(t) + 1.4))
    y = np.arange(len(t))[::-1]
    finite = np.where(np.isfinite(vals), vals, 0.0)
    ax.barh(y, finite, color=[HIGHLIGHT_COLOR if v > 0 else "#3182bd" for v in finite],
            height=0.6)
    for yi, v, fac in zip(y, finite, t["odds_factor"]):
        txt = "x inf" if not np.isfinite(fac) else f"x{fac:.2f}"
        ax.text(v, yi, f" {txt} ", va="center", ha="left" if v >= 0 else "right", fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    lim = max(1.0, float(np.abs(finite).max(initial=0)) * 1.35)
    ax.set_xlim(-lim, lim)
    ax.set_xlabel(f"weight of evidence for {origin.replace('_', ' ')} "
                  f"({'ln' if unit == 'nats' else 'log2'} odds ratio)")
    post = float(explanation.origins.loc[origin, "posterior"])
    ax.set_title(f"Why {origin.replace('_', ' ')}? (P = {post:.2f})", fontsize=10)
    return ax


def plot_what_if(df: Any, ax: Any = None) -> Any:
    """Grouped horizontal bars: one group per target, one bar per scenario.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from kneehip_bn import what_if
    >>> from kneehip_bn.teaching.plots import plot_what_if
    >>> df = what_if({"knee_pain": "present"}, {"treated": {"do": {"knee_pathology": "absent"}}}, model="knee_hip_basic")
    >>> len(plot_what_if(df).patches) == df.size
    True
    """
    import matplotlib.pyplot as plt

    n_t, n_s = df.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.35 * n_t * n_s + 1.6))
    cmap = plt.get_cmap("tab10")
    h = 0.8 / max(n_s, 1)
    y0 = np.arange(n_t)[::-1].astype(float)
    for j, col in enumerate(df.columns):
        ys = y0 + 0.4 - h * (j + 0.5)
        vals = df[col].to_numpy(dtype=float)
        ax.barh(ys, vals, height=h * 0.92, color="#9e9e9e" if col == "base" else cmap(j % 10),
                label=col)
        for yi, v in zip(ys, vals):
            ax.text(min(v + 0.01, 0.9), yi, f"{v:.2f}", va="center", fontsize=7)
    ax.set_yticks(y0)
    ax.set_yticklabels([str(i).replace("_", " ") for i in df.index])
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability (present / positive, or the state named)")
    desc = df.attrs.get("descriptions", {})
    handles, labels = ax.get_legend_handles_labels()
    labels = [f"{lab}: {desc[lab]}" if lab in desc and lab != "base" else lab for lab in labels]
    ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12),
              frameon=False, ncol=1)
    ax.set_title("What if ...", fontsize=10)
    return ax


def plot_tornado(sens: Any, top: int = 15, ax: Any = None) -> Any:
    """Tornado chart of a one-way sensitivity table (:func:`kneehip_bn.teaching.robustness`): for
    the ``top`` parameters with the largest swing, the posterior at the low and high end
    of each parameter's range, around the current posterior.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from kneehip_bn import sensitivity
    >>> from kneehip_bn.teaching.plots import plot_tornado
    >>> ax = plot_tornado(sensitivity("knee_pathology", evidence={"knee_pain": "present"}, model="knee_hip_basic"), top=5)
    >>> len(ax.patches)
    10
    """
    import matplotlib.pyplot as plt

    s = sens.head(top)
    base = float(sens.attrs.get("posterior", s["posterior"].iloc[0] if len(s) else 0.0))
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.38 * len(s) + 1.5))
    y = np.arange(len(s))[::-1]
    lo = s["posterior_lo"].to_numpy(dtype=float)
    hi = s["posterior_hi"].to_numpy(dtype=float)
    ax.barh(y, lo - base, left=base, color="#6baed6", height=0.6, label="parameter at low end")
    ax.barh(y, hi - base, left=base, color="#fd8d3c", height=0.6, label="parameter at high end")
    ax.axvline(base, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{n}  [{r.lo:.2g}-{r.hi:.2g}]" for n, r in s.iterrows()], fontsize=7)
    target = sens.attrs.get("target", "target")
    state = sens.attrs.get("state", "")
    ax.set_xlabel(f"P({target}={state} | evidence)")
    ax.set_title(f"Sensitivity of P({target}={state}) = {base:.2f}", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return ax


def plot_next_test(nbt: Any, top: int = 12, ax: Any = None) -> Any:
    """Expected information gain (bits) of the best candidate tests, highest on top.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from kneehip_bn import next_best_test
    >>> from kneehip_bn.teaching.plots import plot_next_test
    >>> len(plot_next_test(next_best_test({"knee_pain": "present"}, model="knee_hip_basic"), top=4).patches)
    4
    """
    import matplotlib.pyplot as plt

    s = nbt.head(top)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.38 * len(s) + 1.4))
    y = np.arange(len(s))[::-1]
    ax.barh(y, s["expected_information_gain"], color="#31a354", height=0.6)
    for yi, (_, r) in zip(y, s.iterrows()):
        ax.text(r["expected_information_gain"], yi,
                f" {r['expected_information_gain']:.3f} bits, P(change lead)="
                f"{r['p_change_leading']:.2f}", va="center", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels([str(n).replace("_", " ") for n in s.index])
    ent = nbt.attrs.get("entropy_bits")
    ax.set_xlim(0, max(float(np.max(s["expected_information_gain"].to_numpy(), initial=0.0)) * 1.8,
                       1e-3))
    ax.set_xlabel("expected information gain about the origins (bits)")
    ax.set_title("Next best test" + (f" (uncertainty now {ent:.2f} bits)" if ent else ""),
                 fontsize=10)
    return ax


def plot_conflict(c: Any, ax: Any = None) -> Any:
    """Per-finding contributions to Jensen's conflict measure (positive: surprising given
    the other findings), with conf(e) and its simulated tail probability in the title.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from kneehip_bn import conflict
    >>> from kneehip_bn.teaching.plots import plot_conflict
    >>> len(plot_conflict(conflict({"knee_pain": "present", "low_back_pain": "present"}, model="knee_hip_basic")).patches)
    2
    """
    import matplotlib.pyplot as plt

    df = c.contributions
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(df) + 1.4))
    y = np.arange(len(df))[::-1]
    v = df["contribution"].to_numpy(dtype=float)
    ax.barh(y, v, color=[HIGHLIGHT_COLOR if x > 0 else "#3182bd" for x in v], height=0.6)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{n.replace('_', ' ')} = {r['state']}" for n, r in df.iterrows()])
    ax.set_xlabel("log2 P(finding) / P(finding | the other findings)  (bits)")
    title = f"conf(e) = {c.conflict:+.2f} bits" + (" - CONFLICT" if c.flagged else "")
    if c.p_value is not None:
        title += f"; simulated P(conf >= this) = {c.p_value:.3f}"
    ax.set_title(title, fontsize=10)
    return ax


def plot_credible_intervals(ci: Any, ax: Any = None) -> Any:
    """Posterior of each origin with the interval from parameter uncertainty
    (:func:`kneehip_bn.credible_intervals`): median and interval, expert value as a cross.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from kneehip_bn import credible_intervals
    >>> from kneehip_bn.teaching.plots import plot_credible_intervals
    >>> ci = credible_intervals({"knee_pain": "present"}, n_draws=10, progress=False, model="knee_hip_basic")
    >>> len(plot_credible_intervals(ci).get_yticklabels()) == len(ci)
    True
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(ci) + 1.4))
    y = np.arange(len(ci))[::-1]
    med = ci["median"].to_numpy(dtype=float)
    err = np.vstack([med - ci["lo"].to_numpy(dtype=float), ci["hi"].to_numpy(dtype=float) - med])
    ax.errorbar(med, y, xerr=err, fmt="o", color="#3182bd", capsize=4,
                label=f"median and {round(100 * ci.attrs.get('level', 0.95))}% interval")
    ax.plot(ci["posterior"], y, "x", color="black", label="with the expert numbers")
    ax.set_yticks(y)
    ax.set_yticklabels([str(n).replace("_", " ") for n in ci.index])
    ax.set_xlim(0, 1)
    ax.set_xlabel("P(present | evidence)")
    ax.set_title(f"Parameter uncertainty ({ci.attrs.get('n_draws', '?')} draws)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return ax


#: figure formats by file extension (matplotlib's writers; JPEG and TIFF through Pillow)
FIGURE_FORMATS = ("png", "svg", "pdf", "svgz", "eps", "ps", "jpg", "jpeg", "tif", "tiff")


def figure_format(path: str | os.PathLike[str], option: str = "--plot") -> str:
    """The figure format of ``path`` from its extension, or a :class:`ParameterError`.

    Called before any work, so that a bad name fails at once and nothing is written.

    >>> figure_format("why.svg")
    'svg'
    >>> figure_format("x.jpg2")
    Traceback (most recent call last):
    ...
    kneehip_bn.errors.ParameterError: --plot x.jpg2: expected a figure file name ending in .png, .svg, .pdf, .svgz, .eps, .ps, .jpg, .jpeg, .tif or .tiff, found '.jpg2'; did you mean '.jpg'?
    """
    text = os.fspath(path)
    ext = os.path.splitext(text)[1].lstrip(".").lower()
    if not text:
        raise ParameterError(f"{option}: expected a figure file name, found an empty string")
    if ext not in FIGURE_FORMATS:
        known = ", ".join(f".{f}" for f in FIGURE_FORMATS[:-1]) + f" or .{FIGURE_FORMATS[-1]}"
        g = closest(ext, FIGURE_FORMATS) if ext else None
        raise ParameterError(
            f"{option} {text}: expected a figure file name ending in {known}, found "
            + (f"'.{ext}'" if ext else "no extension") + (f"; did you mean '.{g}'?" if g else ""))
    return ext


def save_figure(ax_or_fig: Any, path: str | os.PathLike[str], overwrite: bool = False,
                dpi: int = 150, close: bool = True) -> str:
    """Save a figure (format by extension: :data:`FIGURE_FORMATS`) with the one atomic
    writer (:func:`kneehip_bn._util.files.atomic_write`: never over an existing file unless
    ``overwrite=True``, nothing half-written left behind) and close it; returns the path.
    """
    import matplotlib.pyplot as plt

    fig = ax_or_fig.figure if hasattr(ax_or_fig, "figure") and not hasattr(ax_or_fig, "savefig") \
        else ax_or_fig
    path = os.fspath(path)
    fmt = figure_format(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, bbox_inches="tight",
                                                   dpi=dpi), overwrite=overwrite)
    finally:
        if close:
            plt.close(fig)
    return path
