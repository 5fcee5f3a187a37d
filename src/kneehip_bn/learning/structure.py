"""The structure check: do the audit's columns obey the independencies the graph implies?

For every pair of observed, non-adjacent nodes that some set of observed nodes
d-separates, :func:`check_structure` finds a minimal such set and tests the independence
on the complete cases (a G-test stratified by the conditioning set), with
Benjamini-Hochberg correction over all tests. Violations are hints of missing arrows (or
of a common cause the graph lacks).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kneehip_bn.errors import ParameterError
from kneehip_bn.io.encode import EncodedAudit, encode_audit
from kneehip_bn.model.coerce import as_model, model_spec

__all__ = ["check_structure", "g_test"]


def g_test(x, y, z, cx, cy, nz):
    """Stratified G-test of x independent of y given z (codes); (G, dof, chi2, n)."""
    n = x.shape[0]
    tab = np.bincount((z * cx + x) * cy + y, minlength=nz * cx * cy).reshape(nz, cx, cy)
    tz = tab.sum(axis=(1, 2))
    tab = tab[tz > 0]
    tz = tz[tz > 0]
    rx = tab.sum(axis=2)
    ry = tab.sum(axis=1)
    E = rx[:, :, None] * ry[:, None, :] / tz[:, None, None]
    pos = tab > 0
    G = 2.0 * float(np.sum(tab[pos] * np.log(tab[pos] / E[pos])))
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2 = float(np.nansum(np.where(E > 0, (tab - E) ** 2 / E, 0.0)))
    dof = int(np.sum(((rx > 0).sum(axis=1) - 1) * ((ry > 0).sum(axis=1) - 1)))
    return G, max(dof, 0), chi2, n


def check_structure(
    data: Any,
    model: Any = None,
    mapping: Any = None,
    *,
    alpha: float = 0.05,
    max_given: int = 4,
    table: str | None = None,
    sql: str | None = None,
) -> Any:
    """Test the conditional independencies the graph implies among the observed columns.

    For every pair of observed, non-adjacent nodes that some set of observed nodes
    d-separates (the observed ancestors of the pair do whenever any observed set does), a
    minimal such set is found and the independence is tested on the rows where all the
    involved columns are recorded (complete cases): a G-test stratified by the
    conditioning set, with Benjamini-Hochberg correction over all tests. Violations are
    hints of missing arrows (or of a common cause the graph lacks).

    Parameters
    ----------
    data : DataFrame, path, URL or EncodedAudit
        The audit (validated as for fitting).
    model, mapping : optional
        As in :class:`~kneehip_bn.learning.fitter.PriorFitter`.
    alpha : float, default 0.05
        False discovery rate for ``violated`` (0 < alpha < 1).
    max_given : int, default 4
        Pairs needing a larger conditioning set are not tested (too few rows per stratum);
        their number is in ``result.attrs["skipped_large_given"]``.

    Returns
    -------
    pandas.DataFrame
        One row per test: ``x``, ``y``, ``given``, ``n_rows`` (complete cases used),
        ``g_stat``, ``dof``, ``p_value``, ``q_value`` (BH), ``cmi`` (conditional mutual
        information, nats), ``cramers_v``, ``violated`` and ``hint``; violated first.

    Raises
    ------
    ParameterError
        ``alpha`` outside (0, 1) or ``max_given`` not a whole number >= 0.

    Examples
    --------
    >>> from kneehip_bn.learning.simulate import simulate_audit
    >>> res = check_structure(simulate_audit(2000, seed=0))
    >>> {"x", "y", "given", "n_rows", "p_value", "q_value", "violated"} <= set(res.columns)
    True
    """
    import networkx as nx  # networkx and scipy only when a check runs (not on cold start)

    _check_args(alpha, max_given)
    spec = model_spec(model)
    enc = data if isinstance(data, EncodedAudit) else encode_audit(data, as_model(spec), mapping,
                                                                    table=table, sql=sql)
    g = _graph(spec)
    obs = list(enc.columns)
    col = {c: j for j, c in enumerate(obs)}
    card = dict(zip(obs, enc.cards))
    anc = {c: nx.ancestors(g, c) for c in obs}
    order = {n: i for i, n in enumerate(spec.nodes)}
    rows = []
    skipped = 0
    for i, a in enumerate(obs):
        for b in obs[i + 1:]:
            if g.has_edge(a, b) or g.has_edge(b, a):
                continue
            z = _separator(g, a, b, sorted(((anc[a] | anc[b]) & set(obs)) - {a, b}, key=order.get))
            if z is None:
                continue
            if len(z) > max_given:
                skipped += 1
                continue
            rows.append(_test_pair(enc.codes, [col[a], col[b], *(col[v] for v in z)],
                                   [card[v] for v in (a, b, *z)], a, b, z))
    out = _results(rows, alpha)
    out.attrs["skipped_large_given"] = skipped
    out.attrs["alpha"] = alpha
    out.attrs["rows"] = enc.n_rows
    return out


def _check_args(alpha: Any, max_given: Any) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ParameterError(f"check_structure alpha: expected a false discovery rate, "
                             f"0 < alpha < 1, found {alpha!r}")
    if isinstance(max_given, bool) or not isinstance(max_given, (int, np.integer)) or max_given < 0:
        raise ParameterError(f"check_structure max_given: expected a whole number >= 0, found "
                             f"{max_given!r}")


def _graph(spec: Any) -> Any:
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(spec.nodes)
    g.add_edges_from((p, c) for c, s in spec.nodes.items() for p in s.parents)
    return g


def _separator(g: Any, a: str, b: str, z0: list[str]) -> list[str] | None:
    """A minimal set of ``z0`` that d-separates ``a`` and ``b`` (greedy: members dropped
    while it still separates), or None when ``z0`` itself does not."""
    import networkx as nx

    if not nx.is_d_separator(g, {a}, {b}, set(z0)):
        return None
    z = list(z0)
    for v in list(z0):
        trial = [u for u in z if u != v]
        if nx.is_d_separator(g, {a}, {b}, set(trial)):
            z = trial
    return z


def _test_pair(codes: np.ndarray, idx: list[int], cards: list[int], a: str, b: str,
               z: list[str]) -> dict[str, Any]:
    """The G-test of ``a`` and ``b`` given ``z`` on the rows recording all of them."""
    from scipy.stats import chi2 as chi2_dist

    sub = codes[:, idx]
    mask = (sub >= 0).all(axis=1)
    sub = sub[mask].astype(np.int64)
    zkey = np.zeros(sub.shape[0], dtype=np.int64)
    nz = 1
    for j, k in enumerate(cards[2:]):
        zkey = zkey * k + sub[:, 2 + j]
        nz *= k
    if sub.shape[0] == 0:
        G, dof, x2, n = 0.0, 0, 0.0, 0
    else:
        G, dof, x2, n = g_test(sub[:, 0], sub[:, 1], zkey, cards[0], cards[1], nz)
    p = float(chi2_dist.sf(G, dof)) if dof > 0 else 1.0
    k = min(cards[0], cards[1]) - 1
    return {"x": a, "y": b, "given": ", ".join(z), "n_rows": int(n), "g_stat": G, "dof": dof,
            "p_value": p, "cmi": G / (2 * n) if n else 0.0,
            "cramers_v": math.sqrt(x2 / (n * k)) if n and k > 0 else 0.0}


def _results(rows: list[dict[str, Any]], alpha: float) -> Any:
    """The tests as a DataFrame with q-values, ``violated`` and a hint; violated first."""
    import pandas as pd
    from scipy.stats import false_discovery_control

    out = pd.DataFrame(rows, columns=["x", "y", "given", "n_rows", "g_stat", "dof", "p_value",
                                      "cmi", "cramers_v"])
    p = out["p_value"].to_numpy(float)
    # Benjamini-Hochberg (scipy; statsmodels' fdr_bh agrees to 1e-12, tested)
    out["q_value"] = false_discovery_control(p) if p.size else p
    out["violated"] = out["q_value"] < alpha
    out["hint"] = np.where(
        out["violated"],
        "dependent in the data although the graph separates them"
        + np.where(out["given"] != "", " given " + out["given"], "")
        + ": consider an arrow between " + out["x"] + " and " + out["y"] + " or a common cause",
        "")
    out = out.sort_values(["violated", "p_value"], ascending=[False, True]).reset_index(drop=True)
    return out[["x", "y", "given", "n_rows", "g_stat", "dof", "p_value", "q_value", "cmi",
                "cramers_v", "violated", "hint"]]
