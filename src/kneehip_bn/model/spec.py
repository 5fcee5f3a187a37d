"""The model file's vocabulary: the specification dataclasses and the format's constants.

A :class:`ModelSpec` is the declarative form of the network: nodes, states, parents,
probability tables (full tables keyed by state labels, or noisy-OR with a leak), and the
source of every number. Around it, one module per job:

- :mod:`kneehip_bn.model.yamlio` reads (:func:`~kneehip_bn.model.yamlio.load_spec`, with
  the strict loader of :mod:`kneehip_bn._util.strict_yaml`) and writes
  (:func:`~kneehip_bn.model.yamlio.save_spec`: atomically, never over an existing file
  unless ``overwrite=True``) the YAML file;
- :mod:`kneehip_bn.model.validate` checks a specification
  (:func:`~kneehip_bn.model.validate.validate_spec`), which makes it read-only;
- :mod:`kneehip_bn.model.edit` edits it (``set_prior``, ``set_row``, ``set_link``,
  ``set_leak``, ``apply_overrides``: each returns a *new* spec and records the edit);
- :mod:`kneehip_bn.model.tables` turns it into probability arrays.

The file format is documented field by field in ``models/README.md``.

Examples
--------
>>> from kneehip_bn import load_spec, set_prior
>>> spec = load_spec("knee_hip_basic")   # the basic edition (five origins)
>>> spec.nodes["knee_pathology"].group
'origin'
>>> edited = set_prior(spec, "lumbar_radiculopathy", 0.05)
>>> edited.nodes["lumbar_radiculopathy"].table[0].source
'user'
>>> spec.nodes["knee_pathology"].group = "finding"
Traceback (most recent call last):
...
kneehip_bn.errors.FrozenSpecError: a validated ModelSpec is read-only: ...
"""

from __future__ import annotations

import copy
import math
import numbers
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from kneehip_bn.errors import FrozenSpecError, UnknownNameError

__all__ = [
    "DIAGNOSIS_COLUMN",
    "FORMAT",
    "GROUPS",
    "NO_DIAGNOSIS",
    "RESERVED_SOURCES",
    "SHIPPED_MODELS",
    "SUM_TOL",
    "Leak",
    "Link",
    "ModelSpec",
    "NodeSpec",
    "NoisyOr",
    "Provenance",
    "Source",
    "TableRow",
    "content_key",
    "default_model_path",
    "freeze",
    "is_frozen",
    "is_number",
    "shipped_model_path",
]

FORMAT = "kneehip-bn/1"
GROUPS = ("context", "origin", "mechanism", "finding", "test")
RESERVED_SOURCES = {
    "user": "set by a user edit (see the entry's `edited` field for the previous value)",
    "fitted": "updated from audit data (see the entry's `fitted` field for the expert value)",
}
SUM_TOL = 1e-9


# ----------------------------------------------------------------------------- read-only
_READ_ONLY = ("a validated ModelSpec is read-only: edit it with set_prior, set_row, set_link, "
              "set_leak or apply_overrides (each returns a new, validated spec), or take "
              "copy.deepcopy(spec) for an editable copy (checked again when it is used)")


def _read_only(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise FrozenSpecError(_READ_ONLY)


class FrozenDict(dict):
    """A dict that refuses changes; ``copy.deepcopy`` gives a plain, editable dict."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        return {copy.deepcopy(k, memo): copy.deepcopy(v, memo) for k, v in self.items()}

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))


class FrozenList(list):
    """A list that refuses changes; ``copy.deepcopy`` gives a plain, editable list."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = extend = insert = pop = remove = clear = sort = reverse = _read_only

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(v, memo) for v in self]

    def __copy__(self) -> list[Any]:
        return list(self)

    def __reduce__(self) -> Any:
        return (list, (list(self),))


class Freezable:
    """Dataclass mixin: read-only once validated (``_frozen``); a deep copy is editable.

    Private keys (``_frozen``, the engine cache, the content key) are never copied or
    pickled.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise FrozenSpecError(_READ_ONLY)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self.__dict__.get("_frozen"):
            raise FrozenSpecError(_READ_ONLY)
        object.__delattr__(self, name)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            if not k.startswith("_"):
                new.__dict__[k] = copy.deepcopy(v, memo)
        return new

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _freeze_value(v: Any) -> Any:
    if isinstance(v, Freezable):
        freeze(v)
        return v
    if isinstance(v, dict) and not isinstance(v, FrozenDict):
        return FrozenDict({k: _freeze_value(x) for k, x in v.items()})
    if isinstance(v, list) and not isinstance(v, FrozenList):
        return FrozenList(_freeze_value(x) for x in v)
    return v


def freeze(obj: Freezable) -> None:
    """Make a spec object and everything in it read-only, in place."""
    if obj.__dict__.get("_frozen"):
        return
    for k, v in list(obj.__dict__.items()):
        if not k.startswith("_"):
            obj.__dict__[k] = _freeze_value(v)
    obj.__dict__["_frozen"] = True


def is_frozen(spec: Any) -> bool:
    """True for a validated (read-only) specification."""
    return bool(getattr(spec, "__dict__", {}).get("_frozen"))


def content_key(spec: ModelSpec) -> int:
    """A key of what the engine computes from: node order, states, parents, tables.

    Cached on a read-only (validated) spec; recomputed every time for an editable copy,
    so an in-place edit is always seen. In-process only (Python's ``hash``), used to key
    the engine cache (:func:`kneehip_bn.get_engine`).
    """
    hit = spec.__dict__.get("_content_key")
    if hit is not None:
        return hit
    parts: list[Any] = [float(spec.default_strength)]
    for name, n in spec.nodes.items():
        if n.noisy_or is not None:
            nor = n.noisy_or
            body: Any = ("nor", nor.on_state, nor.leak.p,
                         tuple((ln.parent, ln.when, ln.p) for ln in nor.links))
        else:
            body = tuple((tuple(r.given.items()), tuple(r.probabilities.items()))
                         for r in n.table or ())
        parts.append((name, n.group, tuple(n.states), tuple(n.parents), n.strength, body))
    key = hash(tuple(parts))
    if is_frozen(spec):
        spec.__dict__["_content_key"] = key
    return key


# ----------------------------------------------------------------------------- dataclasses
@dataclass
class Source(Freezable):
    """Where a number comes from: a citation (with evidence ID) or an elicited rationale."""

    id: str
    citation: str | None = None
    elicited: str | None = None
    evidence_id: str | None = None
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``'citation'``, ``'elicited'`` or ``'reserved'``."""
        if self.id in RESERVED_SOURCES:
            return "reserved"
        return "citation" if self.citation else "elicited"

    def describe(self) -> str:
        """One line naming the source, for reports."""
        if self.id in RESERVED_SOURCES:
            return RESERVED_SOURCES[self.id]
        if self.citation:
            return self.citation
        return f"elicited: {self.elicited}"

#: name of the clinician's working-diagnosis column (values: origin names or ``none``)
DIAGNOSIS_COLUMN = "working_diagnosis"
#: the working-diagnosis label for "no origin diagnosed"
NO_DIAGNOSIS = "none"


@dataclass
class Provenance(Freezable):
    source: str
    note: str | None = None
    edited: dict[str, Any] | None = None
    fitted: dict[str, Any] | None = None


@dataclass
class TableRow(Provenance):
    """One distribution of a full table: P(node | given) for one parent configuration."""

    given: dict[str, str] = field(default_factory=dict)
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass
class Link(Provenance):
    """A noisy-OR link: P(parent alone, in state ``when``, switches the node on) = ``p``."""

    parent: str = ""
    when: str = ""
    p: float = 0.0


@dataclass
class Leak(Provenance):
    """The noisy-OR leak: P(node on | no modelled cause active)."""

    p: float = 0.0


@dataclass
class NoisyOr(Freezable):
    """A noisy-OR table with a leak, one link per active parent state."""

    on_state: str
    leak: Leak
    links: list[Link]


@dataclass
class NodeSpec(Freezable):
    """One node: its group, states, parents and table (full or noisy-OR)."""

    name: str
    group: str
    states: list[str]
    parents: list[str] = field(default_factory=list)
    description: str = ""
    strength: float | None = None
    table: list[TableRow] | None = None
    noisy_or: NoisyOr | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``'table'`` or ``'noisy_or'``."""
        return "noisy_or" if self.noisy_or is not None else "table"

    @property
    def region(self) -> str | None:
        """Body region of a diagnosis (``region:`` in the file: knee, hip, spine, serious...)."""
        r = self.extra.get("region")
        return None if r is None else str(r)

    @property
    def red_flag(self) -> bool:
        """True for a red-flag finding (``red_flag: true``): present means refer."""
        return self.extra.get("red_flag") is True


@dataclass
class ModelSpec(Freezable):
    """The whole model file, validated and read-only. Edit through the ``set_*`` functions
    (each returns a new spec); ``copy.deepcopy(spec)`` is an editable copy, validated again
    when the engine compiles it."""

    name: str
    sources: dict[str, Source]
    nodes: dict[str, NodeSpec]
    title: str = ""
    description: str = ""
    population: str = ""
    default_strength: float = 10.0
    format: str = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)
    path: str | None = field(default=None, compare=False)

    # convenience -----------------------------------------------------------------
    def node(self, name: str) -> NodeSpec:
        """Return a node, or raise :class:`UnknownNameError` naming the closest node."""
        try:
            return self.nodes[name]
        except KeyError:
            raise UnknownNameError.for_name("node", name, self.nodes) from None

    def group(self, group: str) -> list[str]:
        """Names of the nodes in one group, in file order.

        >>> from kneehip_bn import load_spec
        >>> load_spec("knee_hip_basic").group("origin")[:2]
        ['knee_pathology', 'hip_pathology']
        """
        if group not in GROUPS:
            raise UnknownNameError.for_name("group", group, GROUPS)
        return [n for n, s in self.nodes.items() if s.group == group]

    @property
    def scope(self) -> dict[str, Any]:
        """The model's ``scope:`` block (``min_age``, ``age_node``, ``refer``), or ``{}``."""
        sc = self.extra.get("scope")
        return dict(sc) if isinstance(sc, Mapping) else {}

    def regions(self) -> dict[str, list[str]]:
        """``{region: [diagnoses]}`` of the origin nodes that name a ``region``, file order."""
        out: dict[str, list[str]] = {}
        for n, s in self.nodes.items():
            if s.group == "origin" and s.region:
                out.setdefault(s.region, []).append(n)
        return out

    def red_flags(self) -> list[str]:
        """Names of the red-flag findings, file order."""
        return [n for n, s in self.nodes.items() if s.red_flag]

    def strength_of(self, node: str) -> float:
        """The node's equivalent sample size (its own ``strength`` or the default)."""
        s = self.node(node).strength
        return float(self.default_strength if s is None else s)

    def state_names(self) -> dict[str, list[str]]:
        """``{node: [states]}`` in pgmpy's ``state_names`` form."""
        return {n: list(s.states) for n, s in self.nodes.items()}

    def entries(self) -> Iterator[tuple[str, str, Provenance]]:
        """Yield ``(node, location, entry)`` for every number-carrying entry."""
        for name, node in self.nodes.items():
            if node.noisy_or is not None:
                yield name, f"nodes.{name}.noisy_or.leak", node.noisy_or.leak
                for i, link in enumerate(node.noisy_or.links):
                    yield name, f"nodes.{name}.noisy_or.links[{i}]", link
            else:
                for i, row in enumerate(node.table or []):
                    yield name, f"nodes.{name}.table[{i}]", row

    def provenance(self) -> list[dict[str, Any]]:
        """Every number with its source, as records (``pandas.DataFrame(spec.provenance())``)."""
        out = []
        for name, loc, e in self.entries():
            src = self.sources.get(e.source)
            if isinstance(e, TableRow):
                for state, p in e.probabilities.items():
                    out.append(_prov_record(name, loc, e, src, state, p, e.given))
            elif isinstance(e, Link):
                out.append(_prov_record(name, loc, e, src, f"link {e.parent}={e.when}", e.p, {}))
            else:
                out.append(_prov_record(name, loc, e, src, "leak", e.p, {}))
        return out


def _prov_record(name, loc, e, src, what, p, given) -> dict[str, Any]:
    return {
        "node": name,
        "location": loc,
        "what": what,
        "given": ", ".join(f"{k}={v}" for k, v in given.items()),
        "value": p,
        "source": e.source,
        "source_kind": src.kind if src else "missing",
        "source_text": src.describe() if src else "",
        "edited": e.edited is not None,
        "fitted": e.fitted is not None,
    }


# ----------------------------------------------------------------------------- shipped models
SHIPPED_MODELS: tuple[str, ...] = ("knee_hip", "knee_hip_basic")
"""Names of the models shipped with the package (``load_spec(name)``, ``--model name``)."""


def shipped_model_path(name: str = "knee_hip") -> Path:
    """Path of a shipped model file by name (``knee_hip``, the default, or ``knee_hip_basic``).

    Installed, it is package data (``kneehip_bn/data/NAME.yaml``, a copy of
    ``models/NAME.yaml`` made by the build); in a source checkout it is
    ``models/NAME.yaml`` itself.

    Examples
    --------
    >>> shipped_model_path("knee_hip_basic").name
    'knee_hip_basic.yaml'
    """
    if name not in SHIPPED_MODELS:
        raise UnknownNameError.for_name("shipped model", name, SHIPPED_MODELS)
    packaged = Path(str(resources.files("kneehip_bn") / "data" / f"{name}.yaml"))
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parents[3] / "models" / f"{name}.yaml"


def default_model_path() -> Path:
    """Path of the default shipped model file (``knee_hip``, the second edition)."""
    return shipped_model_path("knee_hip")


# ----------------------------------------------------------------------------- numbers
def is_number(x: Any) -> bool:
    """A finite real number: Python or numpy (``np.float32`` probabilities are numbers)."""
    return (isinstance(x, numbers.Real) and not isinstance(x, (bool, np_bool_types()))
            and math.isfinite(x))


def np_bool_types() -> tuple[type, ...]:
    """numpy's boolean type, if numpy is loaded (a ``np.bool_`` is not a number here)."""
    np = sys.modules.get("numpy")  # numpy is not imported just for this check
    return (np.bool_,) if np is not None else ()
