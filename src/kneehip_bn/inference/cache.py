"""The compiled engine of a model, compiled once and cached on the model's content.

:func:`get_engine` is how every layer above gets an :class:`~kneehip_bn.inference.engine.Engine`
for whatever a user passes as a model (a pgmpy network, a :class:`~kneehip_bn.ModelSpec`, a
shipped model's name, a model file path, ``None`` for the default), without compiling the
same tables twice and without ever answering from stale tables.
"""

from __future__ import annotations

import copy
import os
import weakref
from typing import Any

from kneehip_bn.inference.engine import Engine
from kneehip_bn.model.coerce import as_model
from kneehip_bn.model.network import network_fingerprint
from kneehip_bn.model.spec import ModelSpec, content_key, is_frozen
from kneehip_bn.model.validate import validate_spec

__all__ = ["get_engine"]

_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def get_engine(model: Any, refresh: bool = False) -> Engine:
    """The compiled engine of a network or specification, compiled once and cached.

    The cache is keyed on content, so it never returns stale numbers: for a pgmpy network
    on its CPDs' values, states and edges (an in-place edit of ``cpd.values``, ``add_cpds``
    or ``model.fit`` compiles afresh); for a :class:`~kneehip_bn.ModelSpec` on its nodes,
    states, parents and tables (:func:`kneehip_bn.model.spec.content_key`: cached on a validated,
    read-only spec; an editable ``copy.deepcopy`` is validated and keyed again on every
    call, so an in-place edit is checked and seen). ``refresh=True`` compiles anew anyway.

    ``model`` may also be anything :func:`kneehip_bn.model.coerce.as_model` takes (``None``
    for the shipped default, a shipped model's name, a model file path); an unchanged file
    gives the same spec, so asking again does not compile again.

    >>> get_engine("knee_hip_basic") is get_engine("knee_hip_basic")
    True
    """
    if isinstance(model, Engine):
        return model
    if model is None or isinstance(model, (str, os.PathLike)):
        model = as_model(model)  # one read-only spec per unchanged file: its engine is reused
    if not hasattr(model, "get_cpds") and not isinstance(model, ModelSpec):
        as_model(model)  # a ParameterError naming what was found
    if not hasattr(model, "get_cpds"):  # ModelSpec
        key = content_key(model)
        hit = None if refresh else model.__dict__.get("_engine")
        if isinstance(hit, tuple) and hit[0] == key:
            return hit[1]
        if not is_frozen(model):  # an editable copy, maybe changed in place: check it
            validate_spec(copy.deepcopy(model))  # (a copy: the user's stays editable)
        eng = Engine(model)
        model.__dict__["_engine"] = (key, eng)
        return eng
    fp = network_fingerprint(model)
    hit = None if refresh else _ENGINES.get(model)
    if hit is not None and hit[0] == fp:
        return hit[1]
    eng = Engine(model)
    _ENGINES[model] = (fp, eng)
    return eng
