"""Compiling a network into junction trees: the steps both passes share.

Moralise (each family joined), triangulate (greedy min-fill, ties by table size), join
the maximal cliques into a junction tree (maximum spanning tree on separator size),
contract small neighbouring cliques, orient the tree from a root (one breadth-first
search) and fill each clique with the product of the conditional tables assigned to it
(:func:`clique_tables`, where ``do()`` surgery replaces a node's table by a point mass).

The single-query pass (:mod:`kneehip_bn.inference.single`), the row pass
(:mod:`kneehip_bn.inference.rows`) and the shared-message pass
(:mod:`kneehip_bn.inference.shared`) are built from these pieces. Nothing here imports
networkx: :func:`topological_order` and :func:`maximum_spanning_tree` give the same
answers as networkx's (tested) without its 0.2 s import on every cold start.

Examples
--------
>>> import numpy as np
>>> card = np.array([2, 2, 2])  # a chain 0 -> 1 -> 2
>>> cliques = triangulate(moral_graph([(0,), (0, 1), (1, 2)], 3), card)
>>> sets, edges = junction_tree(cliques, card)
>>> nbrs = {i: [b for a, b in edges if a == i] + [a for a, b in edges if b == i]
...         for i in range(len(sets))}
>>> parent, order = orient(nbrs, 0, len(sets))
>>> [sorted(c) for c in sets], parent, depths(parent, order)
([[0, 1], [1, 2]], [-1, 0], [0, 1])
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from kneehip_bn._util.graph import maximum_spanning_tree, topological_order
from kneehip_bn.errors import ModelTooLargeError, ParameterError

__all__ = [
    "MAX_COMPILE_BYTES",
    "check_compile_memory",
    "children_of",
    "clique_tables",
    "clique_tree",
    "compile_bytes",
    "depths",
    "junction_tree",
    "max_compile_bytes",
    "maximum_spanning_tree",
    "merge_cliques",
    "moral_graph",
    "orient",
    "topological_order",
    "triangulate",
]

#: default limit of the memory a compilation may need (clique tables and their index
#: maps); override with the environment variable ``KNEEHIP_MAX_TABLE_BYTES`` (bytes, or
#: with a K/M/G suffix) or ``Engine(model, max_table_bytes=...)``
MAX_COMPILE_BYTES = 2 * 2**30


def max_compile_bytes() -> int:
    """The compile memory limit in force: ``KNEEHIP_MAX_TABLE_BYTES`` or the default.

    >>> import os
    >>> os.environ["KNEEHIP_MAX_TABLE_BYTES"] = "512M"
    >>> max_compile_bytes()
    536870912
    >>> del os.environ["KNEEHIP_MAX_TABLE_BYTES"]
    """
    raw = os.environ.get("KNEEHIP_MAX_TABLE_BYTES", "").strip()
    if not raw:
        return MAX_COMPILE_BYTES
    mult = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(raw[-1].upper(), 1)
    digits = raw[:-1] if mult > 1 else raw
    try:
        value = int(float(digits) * mult)
    except ValueError:
        value = -1
    if value <= 0:
        raise ParameterError(f"KNEEHIP_MAX_TABLE_BYTES: expected a positive number of bytes "
                             f"(e.g. 4G, 512M, 1000000), found {raw!r}")
    return value


def compile_bytes(cliques: Sequence[Sequence[int]], card: np.ndarray) -> int:
    """Estimated memory (bytes) of compiling these cliques: per table entry 8 bytes for
    the table, one index per variable (the state grid) and four more index maps (home,
    separators, families), all 8-byte, and as many again for the temporaries of building
    them (measured: water, 3.7M entries, peaks at ~0.7 GB). Computed before anything is
    allocated."""
    return sum(8 * math.prod(int(card[v]) for v in c) * (2 * len(c) + 6) for c in cliques)


def check_compile_memory(cliques: Sequence[frozenset[int]], card: np.ndarray,
                         names: Sequence[str], cap: int | None) -> None:
    """Refuse, before allocating, a model whose clique tables would not fit the limit
    (``cap`` bytes; ``None``: :func:`max_compile_bytes`).

    Raises
    ------
    ModelTooLargeError
        Naming the largest clique's nodes and how to raise the limit.
    """
    cap = max_compile_bytes() if cap is None else int(cap)
    need = compile_bytes(cliques, card)
    if need <= cap:
        return
    sizes = [math.prod(int(card[v]) for v in c) for c in cliques]
    big = cliques[int(np.argmax(sizes))]
    joined = ", ".join(sorted(names[v] for v in big))
    raise ModelTooLargeError(
        f"model: compiling it would need about {_gib(need)} ({sum(sizes):,} clique-table "
        f"entries; the largest clique, {max(sizes):,} entries, joins {len(big)} nodes: "
        f"{joined}), over the limit of {_gib(cap)}; if this machine has the memory, raise "
        "the limit (KNEEHIP_MAX_TABLE_BYTES=8G, or Engine(model, max_table_bytes=...)); "
        "otherwise use a model with fewer states or parents on those nodes")


def moral_graph(families: Sequence[Sequence[int]], n: int) -> dict[int, set[int]]:
    """The moral graph of ``n`` variables: each family (a node and its parents) joined."""
    adj: dict[int, set[int]] = {i: set() for i in range(n)}
    for fam in families:
        for a, b in itertools.combinations(fam, 2):
            adj[a].add(b)
            adj[b].add(a)
    return adj


def orient(nbrs: Mapping[int, list[int]], root: int, k: int) -> tuple[list[int], list[int]]:
    """Parent pointers and a top-down (breadth-first) order of a tree of ``k`` cliques from
    ``root``; other components (a disconnected network) hang from the root through an
    empty separator."""
    parent = [-1] * k
    order: list[int] = []
    seen: set[int] = set()
    for start in (root, *range(k)):  # the root's component first, then any others
        if start in seen:
            continue
        seen.add(start)
        parent[start] = -1 if start == root else root
        comp = [start]
        for x in comp:  # breadth first
            for d in nbrs[x]:
                if d not in seen:
                    seen.add(d)
                    parent[d] = x
                    comp.append(d)
        order.extend(comp)
    return parent, order


def depths(parent: Sequence[int], order: Sequence[int]) -> list[int]:
    """Depth of each clique below the root, from :func:`orient`'s parents and order."""
    depth = [0] * len(parent)
    for c in order[1:]:
        depth[c] = depth[parent[c]] + 1
    return depth


def children_of(parent: Sequence[int], order: Sequence[int]) -> list[list[int]]:
    """Each clique's children, in top-down order."""
    children: list[list[int]] = [[] for _ in range(len(parent))]
    for c in order[1:]:
        children[parent[c]].append(c)
    return children


def clique_tables(clique_vars: Sequence[tuple[int, ...]], card: np.ndarray,
                  factors: Sequence[tuple[tuple[int, ...], np.ndarray]],
                  factor_home: Sequence[int],
                  do: Mapping[int, int] | None = None) -> list[np.ndarray]:
    """Each clique's table (shape: its variables' cards, ascending variables): the product
    of the conditional tables assigned to it, multiplied in variable order.

    ``factors[v]`` is ``(family, table)`` with the family's variables ascending and the
    table's axes in that order; ``factor_home[v]`` the clique it is assigned to. ``do``
    (``{variable: state}``) is graph surgery: the node's table becomes a point mass on the
    state, its parents cut off.

    Examples
    --------
    >>> import numpy as np
    >>> f = [((0,), np.array([0.3, 0.7])), ((0, 1), np.array([[0.9, 0.1], [0.2, 0.8]]))]
    >>> t = clique_tables([(0, 1)], np.array([2, 2]), f, [0, 0])
    >>> t[0].round(2).tolist()
    [[0.27, 0.03], [0.14, 0.56]]
    >>> clique_tables([(0, 1)], np.array([2, 2]), f, [0, 0], do={0: 1})[0].tolist()
    [[0.0, 0.0], [0.2, 0.8]]
    """
    shapes = [tuple(int(card[x]) for x in vs) for vs in clique_vars]
    out = [np.ones(s) for s in shapes]
    for v, (fam, arr) in enumerate(factors):
        h = factor_home[v]
        if do and v in do:  # graph surgery: a point mass, the parents cut off
            point = np.zeros(int(card[v]))
            point[do[v]] = 1.0
            out[h] = out[h] * point.reshape(_bshape(clique_vars[h], card, (v,)))
        else:
            out[h] = out[h] * arr.reshape(_bshape(clique_vars[h], card, fam))
    return out


def _bshape(vs: Sequence[int], card: np.ndarray, keep: Sequence[int] | set[int]
            ) -> tuple[int, ...]:
    return tuple(int(card[x]) if x in keep else 1 for x in vs)


def triangulate(adj: dict[int, set[int]], card: np.ndarray) -> list[frozenset[int]]:
    """Greedy min-fill elimination (ties: smallest clique table); the maximal cliques."""
    adj = {v: set(n) for v, n in adj.items()}
    remaining = set(adj)
    cliques: list[frozenset[int]] = []
    while remaining:
        best, best_key = -1, None
        for v in sorted(remaining):
            nb = adj[v]
            fill = sum(1 for a, b in itertools.combinations(nb, 2) if b not in adj[a])
            weight = math.prod(int(card[u]) for u in nb) * int(card[v])
            key = (fill, weight)
            if best_key is None or key < best_key:
                best, best_key = v, key
        nb = adj[best]
        cliques.append(frozenset(nb | {best}))
        for a, b in itertools.combinations(nb, 2):
            adj[a].add(b)
            adj[b].add(a)
        for u in nb:
            adj[u].discard(best)
        del adj[best]
        remaining.discard(best)
    uniq = list(dict.fromkeys(cliques))
    return [c for c in uniq if not any(c < d for d in uniq)]


def junction_tree(
    cliques: list[frozenset[int]], card: np.ndarray, leaves: frozenset[int] | None = None
) -> tuple[list[set[int]], list[tuple[int, int]]]:
    """A maximum spanning tree on separator size (a junction tree).

    With ``leaves`` (the network's childless variables), ties between equally large
    separators are broken against cliques that hold leaves, so that evidence-only cliques
    end up as leaves of the tree rather than between the cliques queries need.
    """
    scale = 4.0 * (len(card) + 1)  # total penalty < 1: separator size still decides
    edges = []
    for i, j in itertools.combinations(range(len(cliques)), 2):
        sep = cliques[i] & cliques[j]
        if sep:
            pen = 0.0 if leaves is None else len((cliques[i] | cliques[j]) & leaves) / scale
            edges.append((i, j, len(sep) - pen))
    return [set(c) for c in cliques], maximum_spanning_tree(len(cliques), edges)


def merge_cliques(cliques, edges, card, max_states):
    """Contract tree edges while the merged clique stays within ``max_states`` entries.

    Contracting an edge of a junction tree keeps the running-intersection property.
    """
    cl = {i: set(c) for i, c in enumerate(cliques)}
    ed = {frozenset(e) for e in edges}

    def size(s):
        return math.prod(int(card[v]) for v in s)

    while True:
        best = None
        for e in ed:
            a, b = tuple(e)
            u = cl[a] | cl[b]
            s = size(u)
            if s <= max_states and (best is None or s < best[0]):
                best = (s, a, b)
        if best is None:
            break
        _, a, b = best
        cl[a] |= cl.pop(b)
        new = set()
        for e in ed:
            x, y = tuple(e)
            x, y = (a if x == b else x), (a if y == b else y)
            if x != y:
                new.add(frozenset((x, y)))
        ed = new
    keys = sorted(cl)
    remap = {k: i for i, k in enumerate(keys)}
    return [cl[k] for k in keys], [tuple(remap[x] for x in e) for e in ed]


def clique_tree(families: Sequence[Sequence[int]], card: np.ndarray, max_states: int, *,
                leaves: frozenset[int] | None = None, names: Sequence[str] | None = None,
                cap: int | None = None) -> tuple[list[set[int]], dict[int, list[int]]]:
    """Families -> moral graph -> min-fill triangulation -> junction tree -> merged cliques:
    the clique sets and each clique's neighbours, the one pipeline of both compilations.

    ``leaves`` as for :func:`junction_tree`; with ``names`` the triangulated cliques are
    first checked against the memory cap ``cap`` (:func:`check_compile_memory`).
    """
    cliques = triangulate(moral_graph(families, len(card)), card)
    if names is not None:
        check_compile_memory(cliques, card, names, cap)
    sets, edges = junction_tree(cliques, card, leaves=leaves)
    sets, edges = merge_cliques(sets, edges, card, max_states)
    nbrs: dict[int, list[int]] = {i: [] for i in range(len(sets))}
    for a, b in edges:
        nbrs[a].append(b)
        nbrs[b].append(a)
    return sets, nbrs


def _gib(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.2f} GiB"
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n:,} bytes"
