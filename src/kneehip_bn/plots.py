"""Figures: the layered network with posteriors inside the nodes, and bar charts.

matplotlib is imported only when a figure is drawn. No Graphviz binary is needed: the
layout is computed here (layers by group, mechanism sub-layers by causal depth, order
within a layer by the barycentre of the parents).

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from kneehip_bn.plots import draw_network
>>> ax = draw_network()
>>> len(ax.patches) > 30
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["GROUP_COLORS", "draw_network", "layered_layout", "plot_origins", "save_figure"]

GROUP_COLORS = {
    "context": "#e0e0e0",
    "origin": "#fdd0a2",
    "mechanism": "#c6dbef",
    "finding": "#c7e9c0",
    "test": "#dadaeb",
}
_GROUP_ORDER = ["context", "origin", "mechanism", "finding", "test"]


def _graph_of(model: Any) -> tuple[dict[str, list[str]], dict[str, str], dict[str, list[str]]]:
    from .engine import get_engine
    from .queries import as_model, node_groups

    m = as_model(model)
    eng = get_engine(m)
    return dict(eng.parents), node_groups(m), dict(eng.states)


def layered_layout(
    parents: Mapping[str, Sequence[str]], groups: Mapping[str, str], max_per_row: int = 9
) -> dict[str, tuple[float, float]]:
    """Positions ``{node: (x, y)}``: one band per group, top to bottom, mechanisms split
    into sub-layers by causal depth, long rows wrapped, order by parent barycentre."""
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

            def d(n: str) -> int:
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
    return pos


def draw_network(
    model: Any = None,
    posteriors: Mapping[str, Sequence[float]] | None = None,
    evidence: Mapping[str, str] | None = None,
    highlight: Sequence[tuple[str, str]] | None = None,
    ax: Any = None,
    title: str | None = None,
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

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

    from .queries import on_state

    parents, groups, states = _graph_of(model)
    pos = layered_layout(parents, groups)
    evidence = dict(evidence or {})
    hl = set(map(tuple, highlight or []))
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    if ax is None:
        width = max(8.0, (max(xs) - min(xs) + 2) * 1.35)
        height = max(5.0, (max(ys) - min(ys) + 2) * 0.95)
        _, ax = plt.subplots(figsize=(width, height))
    bw, bh = 0.9, 0.5
    for child, ps in parents.items():
        for p in ps:
            (x0, y0), (x1, y1) = pos[p], pos[child]
            on = (p, child) in hl
            ax.add_patch(FancyArrowPatch(
                (x0, y0 - bh / 2), (x1, y1 + bh / 2), arrowstyle="-|>", mutation_scale=8,
                color="#d62728" if on else "#9a9a9a", lw=2.2 if on else 0.6,
                alpha=1.0 if on else 0.7, zorder=3 if on else 1,
                connectionstyle="arc3,rad=0.05"))
    for n, (x, y) in pos.items():
        g = groups.get(n, "mechanism")
        observed = n in evidence
        ax.add_patch(FancyBboxPatch(
            (x - bw / 2, y - bh / 2), bw, bh, boxstyle="round,pad=0.02,rounding_size=0.08",
            fc=GROUP_COLORS.get(g, "#ffffff"), ec="black" if observed else "#555555",
            lw=2.0 if observed else 0.6, zorder=2))
        label = n.replace("_", " ")
        ax.text(x, y + 0.12, label, ha="center", va="center", fontsize=6.2, zorder=4,
                wrap=True)
        if observed:
            ax.text(x, y - 0.1, f"= {evidence[n]}", ha="center", va="center", fontsize=6,
                    weight="bold", zorder=4)
        elif posteriors is not None and n in posteriors:
            probs = np.asarray(posteriors[n], dtype=float)
            k = states[n].index(on_state(states[n]))
            p = float(probs[k])
            ax.add_patch(Rectangle((x - bw / 2 + 0.06, y - 0.19), (bw - 0.12), 0.12,
                                   fc="white", ec="#777777", lw=0.4, zorder=3))
            ax.add_patch(Rectangle((x - bw / 2 + 0.06, y - 0.19), (bw - 0.12) * p, 0.12,
                                   fc="#3182bd", ec="none", zorder=3))
            name = on_state(states[n]) if len(states[n]) == 2 else states[n][k]
            ax.text(x, y - 0.02, f"P({name})={p:.2f}", ha="center", va="center",
                    fontsize=5.5, zorder=4)
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_aspect("auto")
    ax.axis("off")
    handles = [Rectangle((0, 0), 1, 1, fc=c, ec="#555555") for c in GROUP_COLORS.values()]
    ax.legend(handles, list(GROUP_COLORS), loc="upper left", fontsize=7, frameon=False,
              ncol=5, bbox_to_anchor=(0, 1.02))
    if title:
        ax.set_title(title, fontsize=10)
    return ax


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


def save_figure(ax_or_fig: Any, path: str | os.PathLike[str], overwrite: bool = True) -> str:
    """Save a figure (PNG, SVG, PDF by extension) and close it; returns the path."""
    import matplotlib.pyplot as plt

    fig = ax_or_fig.figure if hasattr(ax_or_fig, "figure") and not hasattr(ax_or_fig, "savefig") \
        else ax_or_fig
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists: pass --overwrite to replace it")
    fig.savefig(path, bbox_inches="tight", dpi=150)
    plt.close(fig)
    return path
