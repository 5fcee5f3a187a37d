"""The network picture of :func:`kneehip_bn.teaching.plots.show_inference`, written directly as SVG.

Same layout (:func:`~kneehip_bn.teaching.plots.layered_layout`), same colours
(:data:`~kneehip_bn.teaching.plots.GROUP_COLORS`), same content as ``draw_network``: each node a
rounded box of its group's colour with its name, the observed state (``= present``,
``do = absent``, outlined; dashed for an intervention) or a bar and ``P(present)=0.42``;
edges as arrows, the paths carrying the evidence to the leading diagnosis thick and red
(:meth:`~kneehip_bn.teaching.explain.Explanation.highlight_edges`, as ``show_inference``), the
edges into an intervened node dotted; the legend and title.

Why not matplotlib's SVG backend: a picture through ``show_inference`` and
``savefig(format="svg")`` takes seconds, far from "within a blink" for a room of students;
writing the same elements as text takes about a millisecond (the figures are in
``benchmarks/results/serve.md``). ``tests/serve/test_serve_api.py`` checks this
picture against ``draw_network``'s (same nodes, same positions, same highlighted edges, same
probabilities). Each element carries ``data-node`` / ``data-edge`` attributes for tests.

>>> from kneehip_bn import load_spec
>>> svg = network_svg(load_spec("knee_hip_basic"), {"knee_effusion": "present"})
>>> svg.startswith("<svg") and 'data-node="knee_effusion"' in svg
True
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from kneehip_bn.inference.queries import on_state
from kneehip_bn.teaching.explain import explain
from kneehip_bn.teaching.plots import GROUP_COLORS, HIGHLIGHT_COLOR, graph_of, layered_layout

__all__ = ["network_svg"]

_BW, _BH = 0.92, 0.62           # box size in layout units (as draw_network)
_SX, _SY = 1.45 * 72, 1.05 * 72  # px per layout unit (draw_network's inches per unit x 72)


def _wrap(label: str, width: int = 15) -> list[str]:
    return textwrap.wrap(label, width=width, break_long_words=False)[:3] or [label]


def network_svg(spec: Any, evidence: Mapping[str, str] | None = None,
                do: Mapping[str, str] | None = None, *, explanation: Any = None,
                top: int = 1, min_factor: float = 1.25) -> str:
    """The network with every node's posterior inside it, as an SVG document (text).

    Parameters
    ----------
    spec : ModelSpec
    evidence, do : dict, optional
        The case (validated by :func:`~kneehip_bn.teaching.explain.explain`).
    explanation : Explanation, optional
        ``explain(evidence, model=spec, do=do)`` if already computed (it gives the
        posteriors and the highlighted paths).
    top, min_factor : as :func:`~kneehip_bn.teaching.plots.show_inference`.
    """
    ex = explanation if explanation is not None else explain(evidence or {}, model=spec, do=do)
    parents, groups, states = graph_of(spec)
    pos = layered_layout(parents, groups)
    ev, dov = dict(ex.evidence), dict(ex.do)
    hl = set(map(tuple, ex.highlight_edges(top=top, min_factor=min_factor)))
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    x0, x1 = min(xs) - 0.8, max(xs) + 0.8
    y0, y1 = min(ys) - 0.6, max(ys) + 0.75
    title_h, legend_h = 46, 30
    legend = _legend_items(bool(ev), bool(dov), bool(hl))
    legend_w = sum(w for _, _, w in legend) + 20
    width = max((x1 - x0) * _SX, legend_w)
    pad = (width - (x1 - x0) * _SX) / 2  # a small network is centred under its legend
    height = (y1 - y0) * _SY + title_h + legend_h

    def X(x: float) -> float:
        return (x - x0) * _SX + pad

    def Y(y: float) -> float:
        return (y1 - y) * _SY + title_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
           f'width="{width:.0f}" height="{height:.0f}" style="width:100%;max-width:{width * 1.4:.0f}px" '
           'font-family="DejaVu Sans, sans-serif" '
           'role="img" aria-label="the network with posterior probabilities">',
           '<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'fill="#a0a0a0"/></marker><marker id="h" viewBox="0 0 10 10" refX="10" refY="5" '
           f'markerWidth="5" markerHeight="5" orient="auto-start-reverse"><path d="M0,0 L10,5 '
           f'L0,10 z" fill="{HIGHLIGHT_COLOR}"/></marker></defs>']
    out += _title(ex, ev, dov, width)
    out += _edges(parents, pos, hl, dov, X, Y)
    out += [_node(n, x, y, groups.get(n, "mechanism"), states[n], ev, dov, ex.posteriors, X, Y)
            for n, (x, y) in pos.items()]
    out.append(_legend(legend, width, height - legend_h + 8))
    out.append("</svg>")
    return "\n".join(out)


def _title(ex: Any, ev: Mapping[str, str], dov: Mapping[str, str], width: float) -> list[str]:
    """The findings and the leading origin, centred on top."""
    out = []
    lead = ex.leading[0] if ex.leading else None
    t1 = "Findings: " + (", ".join(f"{k}={v}" for k, v in ev.items()) or "none")
    if dov:
        t1 += "; do(" + ", ".join(f"{k}={v}" for k, v in dov.items()) + ")"
    lines = textwrap.wrap(t1, 160)[:2]
    if lead is not None:
        lines.append(f"leading origin: {lead.replace('_', ' ')} "
                     f"P={float(ex.origins.loc[lead, 'posterior']):.2f}")
    for i, line in enumerate(lines[-3:]):
        out.append(f'<text x="{width / 2:.1f}" y="{14 + 14 * i}" text-anchor="middle" '
                   f'font-size="12">{html.escape(line)}</text>')
    return out


def _edges(parents: Mapping[str, Any], pos: Mapping[str, Any], hl: set,
           dov: Mapping[str, str], X: Callable, Y: Callable) -> list[str]:
    """One line per edge: highlighted ones thick and red, edges into ``do`` nodes dotted."""
    out = []
    for child, ps in parents.items():
        for p in ps:
            (ax, ay), (bx, by) = pos[p], pos[child]
            on = (p, child) in hl
            dash = ' stroke-dasharray="2,3"' if child in dov else ""
            style = (f'stroke="{HIGHLIGHT_COLOR}" stroke-width="2.6" marker-end="url(#h)"' if on
                     else 'stroke="#a0a0a0" stroke-width="0.8" stroke-opacity="0.6" '
                          'marker-end="url(#a)"')
            mark = ' data-highlight="1"' if on else ""
            out.append(f'<line data-edge="{p}->{child}"{mark} '
                       f'x1="{X(ax):.1f}" y1="{Y(ay - _BH / 2):.1f}" x2="{X(bx):.1f}" '
                       f'y2="{Y(by + _BH / 2):.1f}" {style}{dash}/>')
    return out


def _node(n: str, x: float, y: float, g: str, states: list[str], ev: Mapping[str, str],
          dov: Mapping[str, str], posteriors: Mapping[str, Any], X: Callable,
          Y: Callable) -> str:
    """One node's box with its name and its observed (or ``do``) state or posterior bar."""
    observed, forced = n in ev, n in dov
    marked = observed or forced
    attrs = [f'data-node="{n}"', f'data-group="{g}"']
    dashed = ' stroke-dasharray="5,3"' if forced else ""
    body = [f'<rect x="{X(x - _BW / 2):.1f}" y="{Y(y + _BH / 2):.1f}" '
            f'width="{_BW * _SX:.1f}" height="{_BH * _SY:.1f}" rx="6" '
            f'fill="{GROUP_COLORS.get(g, "#ffffff")}" '
            f'stroke="{"black" if marked else "#555555"}" '
            f'stroke-width="{2.2 if marked else 0.6}"'
            f'{dashed}/>']
    name_lines = _wrap(n.replace("_", " "))
    size, step = (10, 11) if len(name_lines) < 3 else (9, 9)  # 3 lines: keep off the bar
    top_y = Y(y + 0.13) - step / 2 * (len(name_lines) - 1) - (1 if len(name_lines) == 3 else 0)
    for i, line in enumerate(name_lines):
        body.append(f'<text x="{X(x):.1f}" y="{top_y + step * i + 3.5:.1f}" '
                    f'text-anchor="middle" font-size="{size}">{html.escape(line)}</text>')
    if marked:
        val = ev[n] if observed else dov[n]
        attrs.append(f'data-observed="{html.escape(val)}"')
        body.append(f'<text x="{X(x):.1f}" y="{Y(y - 0.17) + 3.5:.1f}" text-anchor="middle" '
                    f'font-size="10" font-weight="bold">{"do " if forced else ""}= '
                    f'{html.escape(val)}</text>')
    elif n in posteriors:
        probs = np.asarray(posteriors[n], dtype=float)
        k = states.index(on_state(states))
        p = float(probs[k])
        attrs.append(f'data-p="{p!r}"')
        bx0, by0 = X(x - _BW / 2 + 0.07), Y(y - 0.26 + 0.09)
        bw = (_BW - 0.14) * _SX
        body.append(f'<rect x="{bx0:.1f}" y="{by0:.1f}" width="{bw:.1f}" '
                    f'height="{0.09 * _SY:.1f}" fill="white" stroke="#777777" '
                    'stroke-width="0.4"/>')
        body.append(f'<rect x="{bx0:.1f}" y="{by0:.1f}" width="{bw * p:.1f}" '
                    f'height="{0.09 * _SY:.1f}" fill="#3182bd"/>')
        label = on_state(states) if len(states) == 2 else states[k]
        body.append(f'<text x="{X(x):.1f}" y="{Y(y - 0.1) + 3:.1f}" text-anchor="middle" '
                    f'font-size="9">P({html.escape(label)})={p:.2f}</text>')
    return f'<g {" ".join(attrs)}><title>{html.escape(n)}</title>{"".join(body)}</g>'


def _legend_items(ev: bool, dov: bool, hl: bool) -> list[tuple[str, str, float]]:
    items: list[tuple[str, str]] = [
        (f'<rect width="14" height="10" fill="{c}" stroke="#555555" stroke-width="0.6"/>', g)
        for g, c in GROUP_COLORS.items()]
    if ev:
        items.append(('<rect width="14" height="10" fill="white" stroke="black" '
                      'stroke-width="2"/>', "observed"))
    if dov:
        items.append(('<rect width="14" height="10" fill="white" stroke="black" '
                      'stroke-width="2" stroke-dasharray="4,2"/>', "intervened (do)"))
    if hl:
        items.append((f'<line x1="0" y1="5" x2="14" y2="5" stroke="{HIGHLIGHT_COLOR}" '
                      'stroke-width="2.6"/>', "path carrying the evidence"))
    return [(sym, lab, 24 + 6.2 * len(lab) + 14) for sym, lab in items]


def _legend(items: list[tuple[str, str, float]], width: float, y: float) -> str:
    x = (width - sum(w for _, _, w in items)) / 2
    parts = ['<g data-legend="1" font-size="10">']
    for sym, lab, w in items:
        parts.append(f'<g transform="translate({x:.1f},{y:.1f})">{sym}'
                     f'<text x="20" y="9">{html.escape(lab)}</text></g>')
        x += w
    parts.append("</g>")
    return "".join(parts)
