"""The few graph routines the package needs, without networkx.

networkx is not imported on the query path (it would add to every cold start of the
``kneehip`` command), so the four routines the model, the engine and the teaching tools
use are written here once, each matching the networkx function named in its docstring
(``tests/_util/test_graph_helpers.py`` compares them):

- :func:`topological_order`: parents before children, ties by name;
- :func:`find_cycle`: one directed cycle, or none;
- :func:`maximum_spanning_tree`: Kruskal's maximum spanning forest (the junction tree);
- :func:`directed_paths`: every directed path between two nodes.

Examples
--------
>>> topological_order(["c", "b", "a"], [("c", "a")])
['b', 'c', 'a']
>>> find_cycle({"a": ["c"], "b": ["a"], "c": ["b"]})
['a', 'b', 'c']
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

__all__ = ["directed_paths", "find_cycle", "maximum_spanning_tree", "topological_order"]


def topological_order(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[str]:
    """Parents before children, ties by name (as ``networkx.lexicographical_topological_sort``).

    Parameters
    ----------
    nodes : sequence of str
        Every node, once.
    edges : sequence of (parent, child)

    Raises
    ------
    ValueError
        The graph has a cycle.

    Examples
    --------
    >>> topological_order(["c", "b", "a"], [("c", "a")])
    ['b', 'c', 'a']
    """
    indeg = {v: 0 for v in nodes}
    kids: dict[str, list[str]] = {v: [] for v in nodes}
    for a, b in edges:
        kids[a].append(b)
        indeg[b] += 1
    ready = [v for v, d in indeg.items() if d == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        v = heapq.heappop(ready)
        out.append(v)
        for w in kids[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                heapq.heappush(ready, w)
    if len(out) != len(indeg):
        raise ValueError("the graph has a cycle")
    return out


def find_cycle(parents: Mapping[str, Sequence[str]]) -> list[str]:
    """A directed cycle (nodes in edge order, parent to child) or ``[]``.

    An iterative depth-first search (a deep graph cannot hit the recursion limit); it
    agrees with ``networkx.is_directed_acyclic_graph`` on whether there is a cycle.

    Parameters
    ----------
    parents : mapping of node -> its parents

    Examples
    --------
    >>> find_cycle({"a": ["c"], "b": ["a"], "c": ["b"]})
    ['a', 'b', 'c']
    >>> find_cycle({"a": [], "b": ["a"]})
    []
    """
    kids: dict[str, list[str]] = {n: [] for n in parents}
    for n, ps in parents.items():
        for p in ps:
            kids.setdefault(p, []).append(n)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in kids:
        if state.get(start):
            continue
        path, stack = [start], [iter(kids[start])]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(kids.get(nxt, ())))
    return []


def maximum_spanning_tree(n: int, edges: Sequence[tuple[int, int, float]]
                          ) -> list[tuple[int, int]]:
    """Kruskal's maximum spanning forest of nodes ``0..n-1``.

    The edges come in the order ``networkx.maximum_spanning_tree(g).edges()`` lists them,
    ties broken alike (a stable sort keeps tied edges in their given order).

    Parameters
    ----------
    n : int
        Number of nodes.
    edges : sequence of (i, j, weight)

    Examples
    --------
    >>> maximum_spanning_tree(3, [(0, 1, 1.0), (0, 2, 2.0), (1, 2, 2.0)])
    [(0, 2), (1, 2)]
    """
    root = list(range(n))

    def find(x: int) -> int:
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    adj: dict[int, list[int]] = {i: [] for i in range(n)}
    for i, j, _ in sorted(edges, key=lambda e: -e[2]):  # stable: ties keep their order
        a, b = find(i), find(j)
        if a != b:
            root[a] = b
            adj[i].append(j)
            adj[j].append(i)
    out, seen = [], set()
    for u in range(n):
        for v in adj[u]:
            if v not in seen:
                out.append((u, v))
        seen.add(u)
    return out


def directed_paths(children: Mapping[str, Sequence[str]], source: str, target: str,
                   limit: int = 500) -> list[list[str]]:
    """Every directed path ``source -> ... -> target``, shortest first (at most ``limit``).

    The same paths as ``networkx.all_simple_paths`` on a DAG (in a DAG every directed path
    is simple); ``limit`` stops the search once that many were found.

    Parameters
    ----------
    children : mapping of node -> its children
    source, target : str
    limit : int, default 500

    Examples
    --------
    >>> directed_paths({"a": ["b", "c"], "b": ["c"], "c": []}, "a", "c")
    [['a', 'c'], ['a', 'b', 'c']]
    """
    out: list[list[str]] = []
    stack: list[list[str]] = [[source]]
    while stack and len(out) < limit:
        path = stack.pop()
        for c in children[path[-1]]:
            if c == target:
                out.append([*path, c])
            else:
                stack.append([*path, c])
    return sorted(out, key=len)
