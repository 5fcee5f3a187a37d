"""Specification -> probability tables: the arrays every other layer computes with.

- :func:`cpd_array`: P(node | parents) of any node as one array;
- :func:`noisy_or_array`: the full table of a noisy-OR node, for its own leak and links or
  for many drawn (leak, links) at once (the credible intervals draw thousands);
- :func:`exact_row`: the one "sums to 1" fix of a distribution computed in floating point
  (edits, EM and the perturbed models of the simulator all write rows through it).

Examples
--------
>>> from kneehip_bn import load_spec
>>> spec = load_spec("knee_hip_basic")
>>> cpd_array(spec, "knee_pathology").shape   # (states, age_group states)
(2, 3)
>>> exact_row(["a", "b", "c"], [0.1, 0.2, 0.7])
{'a': 0.1, 'b': 0.2, 'c': 0.7}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from kneehip_bn.model.spec import ModelSpec, NodeSpec

__all__ = ["cpd_array", "exact_row", "noisy_or_array"]


def noisy_or_array(spec: ModelSpec, node: NodeSpec, leak: Any = None,
                   links: Sequence[Any] | None = None) -> np.ndarray:
    """The full conditional table of a noisy-OR node.

    P(off | u) = (1 - leak) * prod over links active in u of (1 - p_link).

    Parameters
    ----------
    spec : ModelSpec
        Gives the parents' states.
    node : NodeSpec
        A noisy-OR node of ``spec``.
    leak, links : optional
        Drawn values instead of the node's own: ``leak`` an array of ``n`` leaks and
        ``links`` one array of ``n`` probabilities per link of ``node.noisy_or.links``.

    Returns
    -------
    numpy.ndarray
        Shape ``(2, *parent_cards)``, or ``(n, 2, *parent_cards)`` for drawn values (each
        draw's table is exactly the one of a node with that draw's numbers).

    Examples
    --------
    >>> from kneehip_bn import load_spec
    >>> spec = load_spec("knee_hip_basic")
    >>> arr = noisy_or_array(spec, spec.nodes["knee_pain"])
    >>> bool(np.allclose(arr.sum(axis=0), 1.0))
    True
    """
    nor = node.noisy_or
    assert nor is not None
    lead: tuple[int, ...] = () if leak is None else (len(leak),)  # the draws' axis, if any
    if leak is None:
        off_leak: Any = 1.0 - float(nor.leak.p)
        ps: list[Any] = [float(ln.p) for ln in nor.links]
    else:
        off_leak = (1.0 - np.asarray(leak, dtype=float)).reshape(*lead, *[1] * len(node.parents))
        ps = [np.asarray(x, dtype=float) for x in links or ()]
    cards = [len(spec.nodes[p].states) for p in node.parents]
    off = np.empty((*lead, *cards))
    off[...] = off_leak
    for ln, lp in zip(nor.links, ps):
        axis = node.parents.index(ln.parent)
        factor = np.ones((*lead, cards[axis]))
        factor[..., spec.nodes[ln.parent].states.index(ln.when)] = 1.0 - lp
        shape = [*lead] + [1] * len(cards)
        shape[len(lead) + axis] = cards[axis]
        off = off * factor.reshape(shape)
    on = (slice(None),) * len(lead) + (node.states.index(nor.on_state),)
    off_state = (slice(None),) * len(lead) + (1 - on[-1],)
    out = np.empty((*lead, 2, *cards))
    out[on] = 1.0 - off
    out[off_state] = off
    return out


def cpd_array(spec: ModelSpec, node: str | NodeSpec) -> np.ndarray:
    """P(node | parents) as an array of shape ``(card, *parent_cards)``.

    Axes are in the order of ``node.parents``, states in the order of ``states``.
    """
    n = spec.nodes[node] if isinstance(node, str) else node
    if n.noisy_or is not None:
        return noisy_or_array(spec, n)
    cards = [len(spec.nodes[p].states) for p in n.parents]
    out = np.empty([len(n.states), *cards])
    for row in n.table or []:
        idx = tuple(spec.nodes[p].states.index(row.given[p]) for p in n.parents)
        for i, s in enumerate(n.states):
            out[(i, *idx)] = float(row.probabilities[s])
    return out


def exact_row(states: Sequence[str], probs: Iterable[float],
              among: Iterable[str] | None = None) -> dict[str, float]:
    """``{state: p}`` summing to 1: the rounding residue goes to the largest state.

    The largest of ``among`` (default: every state; ties: the first) is replaced by one
    minus the exact (``math.fsum``) sum of the others, so the row sums to 1 up to that
    one rounding, however it was computed.

    Parameters
    ----------
    states : sequence of str
        The node's states, in order.
    probs : iterable of float
        One probability per state, in the order of ``states``.
    among : iterable of str, optional
        Only these states may take the residue (an edit keeps the values it was given).

    Examples
    --------
    >>> row = exact_row(["a", "b", "c"], [0.1, 0.1, 0.1 * 8])
    >>> sum(row.values()) == 1.0, row["c"]
    (True, 0.8)
    """
    vals = [float(x) for x in probs]
    allowed = range(len(vals)) if among is None else [list(states).index(s) for s in among]
    big = max(allowed, key=lambda i: vals[i])
    vals[big] = 1.0 - math.fsum(v for i, v in enumerate(vals) if i != big)
    return dict(zip(states, vals))
