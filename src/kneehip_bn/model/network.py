"""Specification -> a real pgmpy ``DiscreteBayesianNetwork`` (noisy-OR with leak expanded).

pgmpy's own ``NoisyORCPD`` is binary with fixed ``'True'/'False'`` labels and has no leak,
so noisy-OR tables are expanded here into ``TabularCPD`` objects with our state labels.

Examples
--------
>>> from kneehip_bn import load_model
>>> model = load_model("knee_hip_basic")
>>> type(model).__name__
'DiscreteBayesianNetwork'
>>> model.nodes["knee_pathology"]["group"]
'origin'
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from kneehip_bn.errors import ModelFileError
from kneehip_bn.model.spec import ModelSpec
from kneehip_bn.model.tables import cpd_array
from kneehip_bn.model.yamlio import load_spec

if TYPE_CHECKING:  # pgmpy is imported lazily: its import is slow and off the query path
    from pgmpy.models import DiscreteBayesianNetwork

__all__ = ["build_network", "load_model", "network_fingerprint", "network_groups",
           "validation_summary"]


def build_network(spec: ModelSpec) -> DiscreteBayesianNetwork:
    """Build and check the pgmpy network of a specification.

    Node attributes carry ``group`` and ``description``; ``model.graph["kneehip_spec"]``
    keeps the specification the network was built from (for provenance and editing).
    """
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.models import DiscreteBayesianNetwork

    model = DiscreteBayesianNetwork()
    model.add_nodes_from(spec.nodes)
    model.add_edges_from((p, n) for n, s in spec.nodes.items() for p in s.parents)
    cpds = []
    for name, n in spec.nodes.items():
        arr = cpd_array(spec, n)
        cpds.append(
            TabularCPD(
                variable=name,
                variable_card=len(n.states),
                values=arr.reshape(len(n.states), -1),
                evidence=list(n.parents) or None,
                evidence_card=[len(spec.nodes[p].states) for p in n.parents] or None,
                state_names={name: list(n.states)} | {p: list(spec.nodes[p].states) for p in n.parents},
            )
        )
    model.add_cpds(*cpds)
    try:
        model.check_model()
    except ValueError as exc:  # pragma: no cover - the spec validation is stricter
        raise ModelFileError(f"pgmpy rejected the network: {exc}", source=spec.path) from None
    for name, n in spec.nodes.items():
        model.nodes[name]["group"] = n.group
        model.nodes[name]["description"] = n.description
    model.graph["kneehip_spec"] = spec
    model.name = spec.name
    return model


def load_model(path: str | os.PathLike[str] | None = None) -> DiscreteBayesianNetwork:
    """Load a model file (default: the shipped model) as a checked pgmpy network.

    >>> from kneehip_bn import load_model
    >>> load_model().check_model()
    True
    """
    return build_network(load_spec(path))


def network_fingerprint(model: Any) -> tuple:
    """What the engine computes from a pgmpy network: each CPD (object, variables, state
    names object) and its *values* (their bytes, so an in-place ``cpd.values[...] = x`` is
    seen), and the edges."""
    return (*((c.variable, id(c), id(c.values), id(c.state_names), tuple(c.variables),
               hash(c.values.tobytes())) for c in model.get_cpds()),
            tuple(sorted(map(tuple, model.edges()))))


def network_groups(model: Any) -> dict[str, str]:
    """``{node: group}`` of a network; nodes without a group attribute get one from the
    graph (roots are origins, leaves findings, the rest mechanisms)."""
    out = {}
    for n in model.nodes:
        g = model.nodes[n].get("group") if hasattr(model, "nodes") else None
        if g is None:
            if not list(model.predecessors(n)):
                g = "origin"
            elif not list(model.successors(n)):
                g = "finding"
            else:
                g = "mechanism"
        out[n] = g
    return out


def validation_summary(spec: ModelSpec) -> dict[str, Any]:
    """What ``kneehip validate`` reports of a valid model: its file, nodes, edges, numbers
    and how many numbers each kind of source gives. Builds the pgmpy network, so pgmpy's
    ``check_model()`` has passed when this returns.

    >>> from kneehip_bn import load_spec
    >>> s = validation_summary(load_spec("knee_hip_basic"))
    >>> s["valid"], s["nodes"] > 20, sum(s["sources"].values()) == s["numbers"]
    (True, True, True)
    """
    model = build_network(spec)  # pgmpy's check_model() runs here
    provenance = spec.provenance()
    kinds: dict[str, int] = {}
    for rec in provenance:
        kinds[rec["source_kind"]] = kinds.get(rec["source_kind"], 0) + 1
    return {"file": spec.path, "valid": True, "nodes": len(spec.nodes),
            "edges": model.number_of_edges(), "numbers": len(provenance), "sources": kinds}
