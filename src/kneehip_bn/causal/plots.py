"""Figures of the causal tools: counterfactual bars, Shapley waterfall, flip distances.

matplotlib is imported inside each function (it costs a second at start-up). Each returns
the matplotlib ``Axes`` it drew on.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from kneehip_bn import counterfactual
>>> from kneehip_bn.causal.plots import plot_counterfactual
>>> cf = counterfactual({"hip_pain": "present", "knee_effusion": "present"},
...                     do={"knee_pathology": "absent"}, target="hip_pain", model="knee_hip_basic")
>>> len(plot_counterfactual(cf).patches)
4
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kneehip_bn.errors import UnknownNameError

__all__ = ["plot_counterfactual", "plot_flip", "plot_shapley"]

_NOTE = "teaching model, not a medical device"


def _axes(ax: Any, size: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=size)
    return ax


def _note(ax: Any) -> None:
    ax.annotate(_NOTE, xy=(1, 0), xycoords="axes fraction", xytext=(0, -38),
                textcoords="offset points", ha="right", va="top", fontsize=7, color="grey")


def plot_counterfactual(cf: Any, ax: Any = None) -> Any:
    """Bars of P(target = each state): factual (given the findings) beside counterfactual
    (had the intervention held, same patient)."""
    ax = _axes(ax, (6.5, 3.8))
    states = list(cf.factual.index)
    x = np.arange(len(states))
    do = ", ".join(f"{k}={v}" for k, v in cf.do.items())
    b1 = ax.bar(x - 0.2, cf.factual.to_numpy(), 0.38, color="#9ecae1", label="factual: as seen")
    b2 = ax.bar(x + 0.2, cf.counterfactual.to_numpy(), 0.38, color="#fd8d3c",
                label=f"counterfactual: had {do}")
    for bars in (b1, b2):
        for r in bars:
            ax.annotate(f"{r.get_height():.2f}", (r.get_x() + r.get_width() / 2, r.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(states)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel(f"P({cf.target})")
    ax.set_title(f"{cf.target} for this patient, as seen and had {do}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    _note(ax)
    return ax


def plot_shapley(sh: Any, diagnosis: str | None = None, ax: Any = None) -> Any:
    """Waterfall of the Shapley values of one diagnosis: from the log-odds given the context
    alone, each finding's share (largest first), to the log-odds given every finding; the
    top axis reads the same positions as probabilities."""
    d = diagnosis or str(sh.values.columns[0])
    if d not in sh.values.columns:
        raise UnknownNameError.for_name("diagnosis", d, list(sh.values.columns))
    vals = sh.values[d].sort_values(key=lambda s: -s.abs())

    def to_p(z: Any) -> Any:
        return 1 / (1 + np.exp(-np.asarray(z, dtype=float)))

    def to_z(p: Any) -> Any:
        p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
        return np.log(p) - np.log1p(-p)

    base, total = float(sh.base[d]), float(sh.total[d])
    ax = _axes(ax, (8, 0.42 * (len(vals) + 2) + 1.6))
    labels = ["context alone", *vals.index, "all findings"]
    y = np.arange(len(labels))[::-1]
    ax.barh(y[0], base, color="#bdbdbd", height=0.6)
    run = base
    for i, v in enumerate(vals.to_numpy(dtype=float), start=1):
        ax.barh(y[i], v, left=run, height=0.6, color="#d7301f" if v > 0 else "#2171b5")
        ax.annotate(f"{v:+.2f}", (run + v, y[i]), xytext=(3 if v > 0 else -3, 0),
                    textcoords="offset points", va="center", ha="left" if v > 0 else "right",
                    fontsize=7)
        run += v
    ax.barh(y[-1], total, color="#525252", height=0.6)
    for yy, z in ((y[0], base), (y[-1], total)):
        ax.annotate(f"{z:+.2f} (P = {float(to_p(z)):.2f})", (z, yy), xytext=(3 if z >= 0 else -3, 0),
                    textcoords="offset points", va="center", ha="left" if z >= 0 else "right",
                    fontsize=7)
    ax.axvline(0, color="black", lw=0.6)
    ends = np.concatenate([[0.0, base, total], base + np.cumsum(vals.to_numpy(dtype=float))])
    pad = 0.18 * max(float(ends.max() - ends.min()), 1.0)
    ax.set_xlim(float(ends.min()) - pad, float(ends.max()) + pad)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel(f"log-odds of {d} (nats)")
    lo, hi = ax.get_xlim()
    top = ax.secondary_xaxis("top", functions=(to_p, to_z))
    ticks = [p for p in (0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99)
             if lo <= math.log(p / (1 - p)) <= hi]
    top.set_xticks(ticks)
    top.set_xlabel(f"P({d})", fontsize=8)
    ax.set_title(f"Shapley values of the findings for {d} ({sh.method})", fontsize=10)
    _note(ax)
    return ax


def plot_flip(fl: Any, top: int = 15, ax: Any = None) -> Any:
    """Distance of each number that could flip the conclusion, in units of its 95% credible
    interval (1 = the edge: left of the dashed line, the value needed is plausible)."""
    p = fl.parameters.head(top)
    ax = _axes(ax, (8.5, 0.38 * max(len(p), 1) + 1.8))
    if not len(p):
        ax.text(0.5, 0.5, "no single number can reach the goal", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    y = np.arange(len(p))[::-1]
    d = p["interval_distance"].to_numpy(dtype=float)
    finite = np.isfinite(d)
    shown = np.where(finite, d, np.nanmax(np.where(finite, d, np.nan)) * 1.2 if finite.any() else 1)
    ax.barh(y, shown, color=np.where(d <= 1, "#31a354", "#fd8d3c"), height=0.6)
    ax.axvline(1.0, color="black", ls="--", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{r['parameter']}: {r['current']:.3g} -> {r['needed']:.3g}"
                        for _, r in p.iterrows()], fontsize=7)
    ax.set_xlabel("distance in the 95% credible interval (1 = its edge)")
    ax.set_title(f"Single numbers that reach: {fl.goal}", fontsize=10)
    _note(ax)
    return ax
