"""The one answer to "what is a model": anything a user may pass, turned into a model.

Every public function takes ``model`` as a :class:`~kneehip_bn.ModelSpec`, a pgmpy
``DiscreteBayesianNetwork``, a model file path, a shipped model's name or ``None`` (the
default shipped model). :func:`as_model` turns that into a spec or a network;
:func:`model_spec` into the specification itself, refusing a network whose tables were
changed after it was built (a stale specification would silently give old numbers).
The inference layer adds one more thing a user may pass, a compiled engine
(:func:`kneehip_bn.inference.queries.as_model`).

Examples
--------
>>> from kneehip_bn.model.coerce import as_model, model_spec
>>> spec = model_spec("knee_hip_basic")
>>> spec.name
'knee_hip_basic'
>>> as_model(spec) is spec
True
"""

from __future__ import annotations

import os
import weakref
from typing import Any

import numpy as np

from kneehip_bn.errors import ParameterError
from kneehip_bn.model.network import network_fingerprint
from kneehip_bn.model.spec import SHIPPED_MODELS, ModelSpec, is_frozen, shipped_model_path
from kneehip_bn.model.tables import cpd_array
from kneehip_bn.model.yamlio import load_spec

__all__ = ["as_model", "model_spec", "spec_or_none", "stale_table"]

_DEFAULT: dict[str, Any] = {}
_BY_FILE: dict[tuple, ModelSpec] = {}  # (real path, inode, size, mtime) -> the spec read
_CHECKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # network -> fingerprint found current


def as_model(model: Any = None) -> Any:
    """A :class:`~kneehip_bn.ModelSpec` or a pgmpy network for anything a user may pass.

    ``None`` is the default shipped model (loaded once per process); a string or path is a
    model file or a shipped model's name, read once while the file is unchanged (the same
    read-only spec is returned, so its compiled engine is reused: a query by name costs
    what a query by spec does); a spec or a network is returned as it is.

    Raises
    ------
    ParameterError
        Anything else.
    """
    if model is None:
        if "spec" not in _DEFAULT:
            _DEFAULT["spec"] = load_spec()
        return _DEFAULT["spec"]
    if isinstance(model, (str, os.PathLike)):
        return _load_cached(model)
    if isinstance(model, ModelSpec) or hasattr(model, "get_cpds"):
        return model
    raise ParameterError(
        f"model: expected a pgmpy DiscreteBayesianNetwork, a ModelSpec, a model file path or "
        f"None, found {type(model).__name__}")


def _load_cached(model: str | os.PathLike[str]) -> ModelSpec:
    """:func:`load_spec`, remembered per file while its path, inode, size and modification
    time stay the same (the last few files). Reading and validating a model file costs
    about 30 ms, a query on its compiled engine under 1 ms."""
    name = os.fspath(model)
    path = shipped_model_path(name) if name in SHIPPED_MODELS else name
    try:
        st = os.stat(path)
    except OSError:
        return load_spec(model)  # its message names what is missing
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)
    spec = _BY_FILE.get(key)
    if spec is None:
        spec = load_spec(model)
        if is_frozen(spec):  # an editable spec is never shared
            while len(_BY_FILE) >= 8:
                _BY_FILE.pop(next(iter(_BY_FILE)))
            _BY_FILE[key] = spec
    return spec


def spec_or_none(model: Any) -> ModelSpec | None:
    """The :class:`~kneehip_bn.ModelSpec` behind a model, or ``None`` if there is none
    (a network built elsewhere). No staleness check: for display and vocabulary only."""
    m = as_model(model)
    if isinstance(m, ModelSpec):
        return m
    spec = m.graph.get("kneehip_spec") if hasattr(m, "graph") else None
    return spec if isinstance(spec, ModelSpec) else None


def stale_table(network: Any, spec: ModelSpec) -> str | None:
    """The first node whose table, parents or states in ``network`` differ from ``spec``
    (``None`` when the network is still the one built from the spec)."""
    nodes = set(map(str, network.nodes()))
    for n in sorted(nodes | set(spec.nodes)):
        if n not in nodes or n not in spec.nodes:
            return n
        cpd = network.get_cpds(n)
        node = spec.nodes[n]
        if cpd is None or sorted(cpd.variables[1:]) != sorted(node.parents):
            return n
        if any(list(cpd.state_names[v]) != list(spec.nodes[v].states) for v in cpd.variables):
            return n
        arr = np.asarray(cpd.values)
        order = [0] + [1 + list(cpd.variables[1:]).index(p) for p in node.parents]
        if not np.array_equal(arr.transpose(order), cpd_array(spec, n)):
            return n
    return None


def model_spec(model: Any = None, where: str = "model") -> ModelSpec:
    """The :class:`~kneehip_bn.ModelSpec` behind anything a user may pass as a model.

    The sampler (``simulate_audit``, ``perturb_model``), the fitter (``PriorFitter``) and
    the structure check read the specification through here. A network is accepted only
    while its tables are still those of its specification: after a CPD was replaced
    (``add_cpds``), edited in place or refitted, this raises a clear error instead of
    silently using the stale specification.

    Raises
    ------
    ParameterError
        A network without a specification, or one whose tables no longer match it.
    """
    m = as_model(model)
    if isinstance(m, ModelSpec):
        return m
    spec = m.graph.get("kneehip_spec") if hasattr(m, "graph") else None
    if not isinstance(spec, ModelSpec):
        raise ParameterError(
            f"{where}: expected a ModelSpec, a model file or a network built by kneehip_bn "
            f"(build_network/load_model), found {type(m).__name__} without a specification")
    fp = network_fingerprint(m)
    if _CHECKED.get(m) == fp:
        return spec
    n = stale_table(m, spec)
    if n is not None:
        raise ParameterError(
            f"{where}: the network's table of '{n}' is no longer the one of the model "
            f"file it was built from (a CPD was replaced, edited or refitted), so its "
            "specification is stale; expected an unchanged network; edit the numbers with "
            "set_prior/set_row/set_link/set_leak on the spec (or kneehip --set) and "
            "build_network again, or pass the spec itself")
    _CHECKED[m] = fp
    return spec
