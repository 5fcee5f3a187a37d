"""The model file: YAML <-> a validated, editable specification with provenance.

A :class:`ModelSpec` is the declarative form of the network: nodes, states, parents,
probability tables (full tables keyed by state labels, or noisy-OR with a leak), and the
source of every number. It is read with :func:`load_spec` (the strict loader of :mod:`kneehip_bn._util.strict_yaml`),
checked by :func:`validate_spec`, edited with :func:`set_prior`, :func:`set_row`,
:func:`set_link` and :func:`set_leak` (each returns a *new* spec and records the edit),
and written back with :func:`save_spec` (atomically, never over an existing file unless
``overwrite=True``).

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
"""

from __future__ import annotations

import copy
import datetime as _dt
import itertools
import math
import numbers
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from kneehip_bn._util.files import atomic_write_text
from kneehip_bn._util.graph import find_cycle
from kneehip_bn._util.strict_yaml import YAMLInputError, load_yaml, unknown_fields
from kneehip_bn.errors import FrozenSpecError, ModelFileError, UnknownNameError, closest

__all__ = [
    "FORMAT",
    "GROUPS",
    "RESERVED_SOURCES",
    "SHIPPED_MODELS",
    "Leak",
    "Link",
    "ModelSpec",
    "NodeSpec",
    "NoisyOr",
    "Source",
    "TableRow",
    "apply_overrides",
    "atomic_write_text",
    "default_model_path",
    "dump_spec",
    "load_spec",
    "parse_spec",
    "save_spec",
    "set_leak",
    "set_link",
    "set_prior",
    "set_row",
    "shipped_model_path",
    "validate_spec",
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


class _FrozenDict(dict):
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


class _FrozenList(list):
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


class _Freezable:
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
    if isinstance(v, _Freezable):
        _freeze(v)
        return v
    if isinstance(v, dict) and not isinstance(v, _FrozenDict):
        return _FrozenDict({k: _freeze_value(x) for k, x in v.items()})
    if isinstance(v, list) and not isinstance(v, _FrozenList):
        return _FrozenList(_freeze_value(x) for x in v)
    return v


def _freeze(obj: _Freezable) -> None:
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
class Source(_Freezable):
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
class _Provenance(_Freezable):
    source: str
    note: str | None = None
    edited: dict[str, Any] | None = None
    fitted: dict[str, Any] | None = None


@dataclass
class TableRow(_Provenance):
    """One distribution of a full table: P(node | given) for one parent configuration."""

    given: dict[str, str] = field(default_factory=dict)
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass
class Link(_Provenance):
    """A noisy-OR link: P(parent alone, in state ``when``, switches the node on) = ``p``."""

    parent: str = ""
    when: str = ""
    p: float = 0.0


@dataclass
class Leak(_Provenance):
    """The noisy-OR leak: P(node on | no modelled cause active)."""

    p: float = 0.0


@dataclass
class NoisyOr(_Freezable):
    """A noisy-OR table with a leak, one link per active parent state."""

    on_state: str
    leak: Leak
    links: list[Link]


@dataclass
class NodeSpec(_Freezable):
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
class ModelSpec(_Freezable):
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

    def entries(self) -> Iterator[tuple[str, str, _Provenance]]:
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


# ----------------------------------------------------------------------------- reading
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


def _model_file(path: str | os.PathLike[str] | None) -> Path:
    """A shipped model's name (no directory, no suffix) or a file path -> the file's path."""
    if path is None:
        return default_model_path()
    text = os.fspath(path)
    if text in SHIPPED_MODELS and not Path(text).exists():
        return shipped_model_path(text)
    return Path(text)


def load_spec(path: str | os.PathLike[str] | None = None) -> ModelSpec:
    """Read and validate a model file (``None``: the shipped model; a shipped model's name,
    such as ``"knee_hip_basic"``, loads that shipped model).

    Raises
    ------
    ModelFileError
        The file is missing, is not a regular UTF-8 text file, is not valid YAML, uses YAML
        tags, aliases or duplicate keys, has a field no model file has (the closest known
        field is named), is over the size limits of :mod:`kneehip_bn._util.strict_yaml`, or fails
        validation; the message lists every problem with its location.
    """
    if path is not None and os.fspath(path) == "":
        raise ModelFileError("expected a model file path or a shipped model name "
                             f"({', '.join(SHIPPED_MODELS)}), found an empty string")
    p = _model_file(path)
    if not p.exists() and not p.is_symlink():
        raise ModelFileError(
            f"no such file: expected a YAML model file or a shipped model name "
            f"({', '.join(SHIPPED_MODELS)}), found nothing at '{p}'; "
            "`kneehip models` lists the shipped models",
            source=str(p),
        )
    try:
        doc = load_yaml(p, what="model file")  # the one strict loader (kneehip_bn._util.strict_yaml)
    except YAMLInputError as exc:
        raise ModelFileError(str(exc), source=str(p)) from None
    spec = parse_spec(doc.data, source=str(p), lines=doc.lines)
    object.__setattr__(spec, "path", str(p))
    return spec


def _is_number(x: Any) -> bool:
    """A finite real number: Python or numpy (``np.float32`` probabilities are numbers)."""
    return (isinstance(x, numbers.Real) and not isinstance(x, (bool, np_bool_types()))
            and math.isfinite(x))


def _plain(x: Any) -> Any:
    """A numpy number as a Python float (so it validates, prints and saves as one)."""
    if isinstance(x, numbers.Real) and not isinstance(x, (int, float)) and _is_number(x):
        return float(x)
    return x


def np_bool_types() -> tuple[type, ...]:
    np = sys.modules.get("numpy")  # numpy is not imported just for this check
    return (np.bool_,) if np is not None else ()


class _Collector:
    def __init__(self, lines: Mapping[tuple[Any, ...], int] | None = None) -> None:
        self.problems: list[str] = []
        self.lines = lines or {}

    def add(self, where: str, expected: str, found: Any, hint: str | None = None,
            path: tuple[Any, ...] | None = None) -> None:
        line = self.lines.get(path) if path is not None else None
        at = f"{where} (line {line})" if line else where
        msg = f"at {at}: expected {expected}, found {_found(found)}"
        if hint:
            msg += f"; {hint}"
        self.problems.append(msg)


def _found(x: Any, limit: int = 200) -> str:
    """``repr`` of a found value, cut short (a hostile value must not make a huge line)."""
    r = repr(x)
    return r if len(r) <= limit else r[:limit] + f"... ({len(r):,} characters)"


def _fields(c: _Collector, d: Mapping[Any, Any], known: Sequence[str], where: str,
            path: tuple[Any, ...]) -> None:
    """An error for each unknown field of ``d``, naming the closest known field."""
    for k, hint in unknown_fields(d, known):
        c.add(where, "a known field (" + ", ".join(known) + ")", k, hint, (*path, k))


def _prov_fields(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "source": d.get("source"),
        "note": d.get("note"),
        "edited": d.get("edited"),
        "fitted": d.get("fitted"),
    }


_ENTRY_KEYS = ("source", "note", "edited", "fitted")
#: the fields a model file may have, by place (an unknown field is an error)
TOP_FIELDS = ("format", "name", "title", "description", "population", "default_strength",
              "scope", "sources", "nodes")
NODE_FIELDS = ("group", "description", "states", "parents", "strength", "table", "noisy_or",
               "region", "red_flag")
SOURCE_FIELDS = ("citation", "elicited", "evidence_id", "note")
ROW_FIELDS = ("given", "probabilities", *_ENTRY_KEYS)
NOISY_OR_FIELDS = ("on_state", "leak", "links")
LINK_FIELDS = ("parent", "when", "p", *_ENTRY_KEYS)
LEAK_FIELDS = ("p", *_ENTRY_KEYS)
SCOPE_FIELDS = ("min_age", "age_node", "refer")
#: most nodes in one model file
MAX_MODEL_NODES = 10_000


def parse_spec(data: Any, source: str | None = None, *,
               lines: Mapping[tuple[Any, ...], int] | None = None) -> ModelSpec:
    """Turn a plain mapping (from YAML) into a validated :class:`ModelSpec`.

    Every problem is collected and reported together in one :class:`ModelFileError`;
    ``lines`` (from :func:`kneehip_bn._util.strict_yaml.load_yaml`) adds the line of each. A field
    that no model file has is an error naming the closest known field.
    """
    c = _Collector(lines)
    if not isinstance(data, Mapping):
        raise ModelFileError(
            f"expected a mapping with keys format, name, sources, nodes; found "
            f"{type(data).__name__}",
            source=source,
        )
    _fields(c, data, TOP_FIELDS, "the top level", ())
    if isinstance(data.get("scope"), Mapping):
        _fields(c, data["scope"], SCOPE_FIELDS, "scope", ("scope",))
    fmt = data.get("format")
    if fmt != FORMAT:
        c.add("format", f"'{FORMAT}'", fmt)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        c.add("name", "a non-empty string", name)
    ds = data.get("default_strength", 10)
    if not _is_number(ds) or ds <= 0:
        c.add("default_strength", "a positive number", ds)
        ds = 10

    # sources
    sources: dict[str, Source] = {k: Source(id=k, note=v) for k, v in RESERVED_SOURCES.items()}
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, Mapping) or not raw_sources:
        c.add("sources", "a mapping of source ids to {citation: ...} or {elicited: ...}", raw_sources)
        raw_sources = {}
    for sid, s in raw_sources.items():
        where = f"sources.{sid}"
        if sid in RESERVED_SOURCES:
            continue
        if not isinstance(s, Mapping):
            c.add(where, "a mapping with `citation` or `elicited`", s, path=("sources", sid))
            continue
        _fields(c, s, SOURCE_FIELDS, where, ("sources", sid))
        cit, eli = s.get("citation"), s.get("elicited")
        if bool(cit) == bool(eli):
            c.add(where, "exactly one of `citation` (text) or `elicited` (one-line rationale)",
                  sorted(k for k in s if k in ("citation", "elicited")) or "neither")
        extra = {k: v for k, v in s.items() if k not in ("citation", "elicited", "evidence_id", "note")}
        sources[str(sid)] = Source(
            id=str(sid), citation=cit, elicited=eli, evidence_id=s.get("evidence_id"),
            note=s.get("note"), extra=extra,
        )

    # nodes
    raw_nodes = data.get("nodes")
    nodes: dict[str, NodeSpec] = {}
    if not isinstance(raw_nodes, Mapping) or not raw_nodes:
        c.add("nodes", "a mapping of node names to node entries", raw_nodes)
        raw_nodes = {}
    if len(raw_nodes) > MAX_MODEL_NODES:
        raise ModelFileError(f"at nodes: expected at most {MAX_MODEL_NODES:,} nodes, found "
                             f"{len(raw_nodes):,}", source=source)
    for nname, nd in raw_nodes.items():
        where = f"nodes.{nname}"
        if not isinstance(nd, Mapping):
            c.add(where, "a mapping with group, states, parents and table or noisy_or", nd,
                  path=("nodes", nname))
            continue
        _fields(c, nd, NODE_FIELDS, where, ("nodes", nname))
        group = nd.get("group")
        if group not in GROUPS:
            c.add(f"{where}.group", "one of " + ", ".join(GROUPS), group)
        states = nd.get("states")
        if (not isinstance(states, list) or len(states) < 2
                or not all(isinstance(s, str) and s for s in states)):
            c.add(f"{where}.states", "a list of at least two state labels (strings)", states,
                  "quote labels that YAML reads as booleans or numbers, e.g. 'yes'")
            states = []
        elif len(set(states)) != len(states):
            c.add(f"{where}.states", "unique labels", states)
        parents = nd.get("parents", []) or []
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            c.add(f"{where}.parents", "a list of node names", parents)
            parents = []
        elif len(set(parents)) != len(parents):
            c.add(f"{where}.parents", "each parent once", parents)
        strength = nd.get("strength")
        if strength is not None and (not _is_number(strength) or strength <= 0):
            c.add(f"{where}.strength", "a positive number (equivalent sample size)", strength)
            strength = None
        extra = {k: v for k, v in nd.items() if k in ("region", "red_flag")}
        node = NodeSpec(
            name=str(nname), group=str(group), states=list(states), parents=list(parents),
            description=str(nd.get("description", "") or ""), strength=strength, extra=extra,
        )
        has_t, has_n = "table" in nd, "noisy_or" in nd
        if has_t == has_n:
            c.add(where, "exactly one of `table` or `noisy_or`",
                  "both" if has_t else "neither")
        elif has_t:
            node.table = _parse_table(nd["table"], node, where, c, ("nodes", nname, "table"))
        else:
            node.noisy_or = _parse_noisy_or(nd["noisy_or"], node, where, c,
                                            ("nodes", nname, "noisy_or"))
        nodes[str(nname)] = node

    spec = ModelSpec(
        name=str(name or ""), sources=sources, nodes=nodes,
        title=str(data.get("title", "") or ""), description=str(data.get("description", "") or ""),
        population=str(data.get("population", "") or ""), default_strength=float(ds),
        extra={k: v for k, v in data.items() if k == "scope"},
    )
    if c.problems:
        raise ModelFileError(c.problems, source=source)
    validate_spec(spec, source=source)
    return spec


def _parse_table(raw: Any, node: NodeSpec, where: str, c: _Collector,
                 path: tuple[Any, ...] = ()) -> list[TableRow]:
    where = f"{where}.table"
    if isinstance(raw, Mapping):
        raw_rows = [raw]
    elif isinstance(raw, list):
        raw_rows = raw
    else:
        c.add(where, "a mapping {probabilities, source} or a list of rows", raw)
        return []
    rows = []
    for i, r in enumerate(raw_rows):
        w = f"{where}[{i}]" if isinstance(raw, list) else where
        rpath = (*path, i) if isinstance(raw, list) else path
        if not isinstance(r, Mapping):
            c.add(w, "a row {given, probabilities, source}", r, path=rpath)
            continue
        _fields(c, r, ROW_FIELDS, w, rpath)
        given = r.get("given", {}) or {}
        probs = r.get("probabilities")
        if not isinstance(given, Mapping):
            c.add(f"{w}.given", "a mapping parent -> state", given)
            given = {}
        if not isinstance(probs, Mapping):
            c.add(f"{w}.probabilities", "a mapping state -> probability", probs)
            probs = {}
        rows.append(TableRow(
            given={str(k): v for k, v in given.items()},
            probabilities={str(k): _plain(v) for k, v in probs.items()}, **_prov_fields(r),
        ))
    return rows


def _parse_noisy_or(raw: Any, node: NodeSpec, where: str, c: _Collector,
                    path: tuple[Any, ...] = ()) -> NoisyOr | None:
    where = f"{where}.noisy_or"
    if not isinstance(raw, Mapping):
        c.add(where, "a mapping {leak, links}", raw, path=path)
        return None
    _fields(c, raw, NOISY_OR_FIELDS, where, path)
    on_state = raw.get("on_state", node.states[1] if len(node.states) > 1 else None)
    lk = raw.get("leak")
    if not isinstance(lk, Mapping):
        c.add(f"{where}.leak", "a mapping {p, source}", lk, path=(*path, "leak"))
        lk = {}
    _fields(c, lk, LEAK_FIELDS, f"{where}.leak", (*path, "leak"))
    leak = Leak(p=_plain(lk.get("p")), **_prov_fields(lk))
    links = []
    raw_links = raw.get("links")
    if not isinstance(raw_links, list):
        c.add(f"{where}.links", "a list of {parent, when, p, source}", raw_links)
        raw_links = []
    for i, ln in enumerate(raw_links):
        if not isinstance(ln, Mapping):
            c.add(f"{where}.links[{i}]", "a mapping {parent, when, p, source}", ln,
                  path=(*path, "links", i))
            continue
        _fields(c, ln, LINK_FIELDS, f"{where}.links[{i}]", (*path, "links", i))
        links.append(Link(parent=ln.get("parent"), when=ln.get("when"), p=_plain(ln.get("p")),
                          **_prov_fields(ln)))
    return NoisyOr(on_state=on_state, leak=leak, links=links)


# ----------------------------------------------------------------------------- validation
def validate_spec(spec: ModelSpec, source: str | None = None) -> ModelSpec:
    """Check a specification's consistency; raise one :class:`ModelFileError` listing all problems.

    Checks: parents and sources exist (with the closest name suggested), the graph has no
    cycle (the cycle is shown), each full table covers every parent configuration exactly
    once with distributions over the node's states summing to 1 within 1e-9, noisy-OR nodes
    are two-state with probabilities in [0, 1] and a link for every parent.
    """
    c = _Collector()
    names = list(spec.nodes)
    for name, node in spec.nodes.items():
        where = f"nodes.{name}"
        for p in node.parents:
            if p not in spec.nodes:
                g = closest(p, names)
                c.add(f"{where}.parents", "names of nodes defined in this file", p,
                      f"did you mean '{g}'?" if g else "define that node or remove the parent")
            if p == name:
                c.add(f"{where}.parents", "no self-loop", p)
    # cycles
    cyc = find_cycle({n: [p for p in s.parents if p in spec.nodes]
                      for n, s in spec.nodes.items()})
    if cyc:
        path = " -> ".join([*cyc, cyc[0]])
        c.add("nodes (parents)", "a directed acyclic graph", f"the cycle {path}",
              "remove one of these parent links")
    for node in spec.nodes.values():
        if any(p not in spec.nodes for p in node.parents):
            continue
        if node.table is not None:
            _check_table(spec, node, c)
        elif node.noisy_or is not None:
            _check_noisy_or(spec, node, c)
    _check_roles(spec, c)
    for _, loc, e in spec.entries():
        if not isinstance(e.source, str) or not e.source:
            c.add(f"{loc}.source", "the id of an entry in `sources`", e.source,
                  "every number needs a source (a citation id or an elicited rationale)")
        elif e.source not in spec.sources:
            g2 = closest(e.source, spec.sources)
            c.add(f"{loc}.source", "the id of an entry in `sources`", e.source,
                  f"did you mean '{g2}'?" if g2 else "add it under `sources:`")
    if c.problems:
        raise ModelFileError(c.problems, source=source or spec.path)
    _freeze(spec)  # validated: read-only from here on (edits return new specs)
    return spec


def _configs(spec: ModelSpec, parents: Sequence[str]) -> list[tuple[str, ...]]:
    return list(itertools.product(*(spec.nodes[p].states for p in parents)))


def _check_prob(c: _Collector, where: str, p: Any) -> bool:
    if not _is_number(p) or not 0.0 <= p <= 1.0:
        c.add(where, "a probability between 0 and 1", p)
        return False
    return True


def _check_table(spec: ModelSpec, node: NodeSpec, c: _Collector) -> None:
    where = f"nodes.{node.name}.table"
    seen: dict[tuple[str, ...], int] = {}
    for i, row in enumerate(node.table or []):
        w = f"{where}[{i}]"
        if set(row.given) != set(node.parents):
            c.add(f"{w}.given", f"exactly the parents {node.parents}", sorted(row.given))
            continue
        bad = False
        for p, st in row.given.items():
            if st not in spec.nodes[p].states:
                g = closest(str(st), spec.nodes[p].states)
                c.add(f"{w}.given.{p}", f"a state of {p}: {spec.nodes[p].states}", st,
                      f"did you mean '{g}'?" if g else None)
                bad = True
        if bad:
            continue
        key = tuple(row.given[p] for p in node.parents)
        if key in seen:
            c.add(f"{w}.given", "each parent configuration once",
                  f"{_fmt_given(row.given)} again (first at row {seen[key]})")
        seen[key] = i
        if set(row.probabilities) != set(node.states):
            missing = [s for s in node.states if s not in row.probabilities]
            extra = [s for s in row.probabilities if s not in node.states]
            hint = None
            if extra:
                g = closest(extra[0], node.states)
                hint = f"did you mean '{g}'?" if g else None
            c.add(f"{w}.probabilities", f"one probability per state {node.states}",
                  f"missing {missing}, unknown {extra}", hint)
            continue
        ok = all(_check_prob(c, f"{w}.probabilities.{s}", v) for s, v in row.probabilities.items())
        if ok:
            total = math.fsum(row.probabilities.values())
            if abs(total - 1.0) > SUM_TOL:
                c.add(f"{w}.probabilities", "probabilities summing to 1 (within 1e-9)",
                      f"sum {total:.12g} for P({node.name} | {_fmt_given(row.given) or 'no parents'})",
                      "adjust one value so the row sums to exactly 1")
    if not node.parents and len(node.table or []) != 1:
        c.add(where, "one distribution (the node has no parents)", f"{len(node.table or [])} rows")
        return
    missing = [k for k in _configs(spec, node.parents) if k not in seen]
    if missing and node.parents:
        shown = "; ".join(_fmt_given(dict(zip(node.parents, k))) for k in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        c.add(where, "one row per parent configuration", f"no row for {shown}{more}")


def _fmt_given(given: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in given.items())


def _check_noisy_or(spec: ModelSpec, node: NodeSpec, c: _Collector) -> None:
    nor = node.noisy_or
    assert nor is not None
    where = f"nodes.{node.name}.noisy_or"
    if len(node.states) != 2:
        c.add(where, "a two-state node for noisy-OR", node.states, "use a full `table` instead")
        return
    if nor.on_state not in node.states:
        c.add(f"{where}.on_state", f"one of {node.states}", nor.on_state)
    _check_prob(c, f"{where}.leak.p", nor.leak.p)
    used: dict[tuple[str, str], int] = {}
    for i, ln in enumerate(nor.links):
        w = f"{where}.links[{i}]"
        if ln.parent not in node.parents:
            g = closest(str(ln.parent), node.parents)
            c.add(f"{w}.parent", f"one of the node's parents {node.parents}", ln.parent,
                  f"did you mean '{g}'?" if g else "add it to `parents`")
            continue
        pstates = spec.nodes[ln.parent].states
        if ln.when is None:
            if len(pstates) != 2:
                c.add(f"{w}.when", f"the activating state of {ln.parent} (one of {pstates})",
                      None, "`when` may only be omitted for two-state parents")
                continue
            ln.when = pstates[1]
        if ln.when not in pstates:
            g = closest(str(ln.when), pstates)
            c.add(f"{w}.when", f"a state of {ln.parent}: {pstates}", ln.when,
                  f"did you mean '{g}'?" if g else None)
            continue
        if (ln.parent, ln.when) in used:
            c.add(w, "each parent state in at most one link",
                  f"{ln.parent}={ln.when} again (first at links[{used[(ln.parent, ln.when)]}])")
        used[(ln.parent, ln.when)] = i
        _check_prob(c, f"{w}.p", ln.p)
    for p in node.parents:
        if not any(k[0] == p for k in used):
            c.add(f"{where}.links", f"at least one link for parent '{p}'", "none",
                  "add a link or remove the parent")


def _check_roles(spec: ModelSpec, c: _Collector) -> None:
    """``region`` on diagnoses, ``red_flag`` on two-state findings, the ``scope`` block."""
    for name, node in spec.nodes.items():
        where = f"nodes.{name}"
        if "region" in node.extra and (node.group != "origin" or not isinstance(
                node.extra["region"], str) or not node.extra["region"]):
            c.add(f"{where}.region", "a region name (a string) on an origin node",
                  node.extra["region"] if node.group == "origin" else f"group {node.group}")
        if "red_flag" in node.extra:
            flag = node.extra["red_flag"]
            if not isinstance(flag, bool):
                c.add(f"{where}.red_flag", "true or false", flag)
            elif flag and (node.group not in ("finding", "test") or len(node.states) != 2):
                c.add(f"{where}.red_flag", "a two-state finding or test",
                      f"group {node.group} with {len(node.states)} states")
    if "scope" not in spec.extra:
        return
    sc = spec.extra["scope"]
    if not isinstance(sc, Mapping):
        c.add("scope", "a mapping with min_age, age_node and refer", sc)
        return
    unknown = set(sc) - {"min_age", "age_node", "refer"}
    if unknown:
        c.add("scope", "only min_age, age_node, refer", sorted(unknown))
    if "min_age" in sc and (not _is_number(sc["min_age"]) or sc["min_age"] < 0):
        c.add("scope.min_age", "a non-negative number of years", sc["min_age"])
    if "age_node" in sc and sc["age_node"] not in spec.nodes:
        g = closest(str(sc["age_node"]), list(spec.nodes))
        c.add("scope.age_node", "a node of this model", sc["age_node"],
              f"did you mean '{g}'?" if g else None)
    if "refer" in sc and not isinstance(sc["refer"], str):
        c.add("scope.refer", "a one-line message (string)", sc["refer"])


# ----------------------------------------------------------------------------- writing
def _entry_dict(e: _Provenance, body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    out["source"] = e.source
    for k in ("note", "edited", "fitted"):
        v = getattr(e, k)
        if v is not None:
            out[k] = v
    return out


def dump_spec(spec: ModelSpec) -> dict[str, Any]:
    """The specification as plain data (what :func:`save_spec` writes as YAML)."""
    out: dict[str, Any] = {"format": spec.format, "name": spec.name}
    for k in ("title", "description", "population"):
        if getattr(spec, k):
            out[k] = getattr(spec, k)
    out["default_strength"] = _num(spec.default_strength)
    out.update(spec.extra)
    srcs: dict[str, Any] = {}
    for sid, s in spec.sources.items():
        if sid in RESERVED_SOURCES:
            continue
        d: dict[str, Any] = {"citation": s.citation} if s.citation else {"elicited": s.elicited}
        if s.evidence_id is not None:
            d["evidence_id"] = s.evidence_id
        if s.note is not None:
            d["note"] = s.note
        d.update(s.extra)
        srcs[sid] = d
    out["sources"] = srcs
    nodes: dict[str, Any] = {}
    for name, n in spec.nodes.items():
        d = {"group": n.group}
        if n.description:
            d["description"] = n.description
        d["states"] = list(n.states)
        if n.parents:
            d["parents"] = list(n.parents)
        if n.strength is not None:
            d["strength"] = _num(n.strength)
        d.update(n.extra)
        if n.noisy_or is not None:
            nor = n.noisy_or
            nd: dict[str, Any] = {}
            if nor.on_state != n.states[1]:
                nd["on_state"] = nor.on_state
            nd["leak"] = _entry_dict(nor.leak, {"p": _num(nor.leak.p)})
            nd["links"] = [
                _entry_dict(ln, {"parent": ln.parent, "when": ln.when, "p": _num(ln.p)})
                for ln in nor.links
            ]
            d["noisy_or"] = nd
        else:
            rows = [
                _entry_dict(r, ({"given": dict(r.given)} if n.parents else {})
                            | {"probabilities": {k: _num(v) for k, v in r.probabilities.items()}})
                for r in n.table or []
            ]
            d["table"] = rows if n.parents else rows[0]
        nodes[name] = d
    out["nodes"] = nodes
    return out


def _num(x: float) -> float | int:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15 and x not in (0.0, 1.0):
        return int(x)
    return x


class _Dumper(yaml.SafeDumper):
    pass


def _flow_small(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    flow = len(data) <= 4 and all(not isinstance(v, (dict, list)) for v in data.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)


_Dumper.add_representer(dict, _flow_small)
_Dumper.add_representer(_FrozenDict, _flow_small)
_Dumper.add_representer(_FrozenList, yaml.SafeDumper.represent_list)


def spec_to_yaml(spec: ModelSpec) -> str:
    """The specification as YAML text (floats written with full precision)."""
    return yaml.dump(dump_spec(spec), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     width=100, default_flow_style=False)


def save_spec(spec: ModelSpec, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Validate and write a specification as YAML, atomically.

    Refuses to replace an existing file unless ``overwrite=True``. Loading the written file
    gives back an equal specification (same numbers, same sources).
    """
    validate_spec(spec)
    header = (
        "# kneehip_bn model file (format kneehip-bn/1; field reference: models/README.md)\n"
        "# Teaching and research model, not a medical device.\n"
    )
    return atomic_write_text(path, header + spec_to_yaml(spec), overwrite=overwrite)


# ----------------------------------------------------------------------------- editing
def _today() -> str:
    return _dt.date.today().isoformat()


def _mark_edit(entry: _Provenance, previous: Any) -> None:
    if entry.source != "user":  # keep the original provenance through repeated edits
        entry.edited = {"previous": previous, "previous_source": entry.source, "date": _today()}
    else:
        entry.edited = dict(entry.edited or {}, date=_today())
    entry.source = "user"


def _complete(node: NodeSpec, probs: Mapping[str, float] | float, old: Mapping[str, float]):
    """Fill a partial distribution: the other states keep their proportions."""
    if not isinstance(probs, Mapping):
        if len(node.states) != 2:
            raise ModelFileError(
                f"at nodes.{node.name}: expected a mapping state -> probability for a node "
                f"with {len(node.states)} states, found the single number {probs!r}"
            )
        probs = {node.states[1]: probs}
    for s, v in probs.items():
        if s not in node.states:
            raise UnknownNameError.for_name(f"state of {node.name}", s, node.states)
        if not _is_number(v) or not 0 <= v <= 1:
            raise ModelFileError(
                f"at nodes.{node.name}: expected a probability between 0 and 1 for state "
                f"'{s}', found {v!r}")
    given_total = math.fsum(probs.values())
    rest = [s for s in node.states if s not in probs]
    if not rest:
        if abs(given_total - 1) > SUM_TOL:
            raise ModelFileError(
                f"at nodes.{node.name}: expected probabilities summing to 1, found sum "
                f"{given_total:.12g}")
        return {s: float(probs[s]) for s in node.states}
    if given_total > 1 + SUM_TOL:
        raise ModelFileError(
            f"at nodes.{node.name}: expected the given probabilities to sum to at most 1, "
            f"found {given_total:.12g}")
    old_rest = math.fsum(old[s] for s in rest)
    out = {s: float(probs[s]) for s in probs}
    for s in rest:
        share = old[s] / old_rest if old_rest > 0 else 1.0 / len(rest)
        out[s] = (1.0 - given_total) * share
    # exact sum: put rounding residue on the largest remaining state
    big = max(rest, key=lambda s: out[s])
    out[big] = 1.0 - math.fsum(v for s, v in out.items() if s != big)
    return {s: out[s] for s in node.states}


def _check_given(spec: ModelSpec, node: NodeSpec, given: Mapping[str, str] | None) -> dict:
    given = dict(given or {})
    for p, st in given.items():
        if p not in node.parents:
            raise UnknownNameError.for_name(f"parent of {node.name}", p, node.parents)
        if st not in spec.nodes[p].states:
            raise UnknownNameError.for_name(f"state of {p}", st, spec.nodes[p].states)
    return given


def set_row(
    spec: ModelSpec,
    node: str,
    given: Mapping[str, str] | None,
    probabilities: Mapping[str, float] | float,
) -> ModelSpec:
    """Set the rows of a full table matching ``given`` (a partial configuration matches all
    rows that agree with it); return a new specification.

    ``probabilities`` may name only some states: the others keep their proportions. For a
    two-state node a single number is P(second state).

    >>> from kneehip_bn import load_spec, set_row
    >>> s = set_row(load_spec("knee_hip_basic"), "knee_pathology", {"age_group": "60_plus"}, {"present": 0.4})
    >>> [r.probabilities["present"] for r in s.nodes["knee_pathology"].table
    ...  if r.given["age_group"] == "60_plus"][0]
    0.4
    """
    new = copy.deepcopy(spec)
    n = new.node(node)
    if n.table is None:
        raise ModelFileError(
            f"at nodes.{node}: expected a full table to set a row, found a noisy-OR table; "
            "use set_link or set_leak")
    given = _check_given(new, n, given)
    hit = 0
    for row in n.table:
        if all(row.given.get(k) == v for k, v in given.items()):
            old = dict(row.probabilities)
            row.probabilities = _complete(n, probabilities, old)
            _mark_edit(row, old)
            hit += 1
    assert hit, "validated spec has a row for every configuration"
    return validate_spec(new)


def set_prior(
    spec: ModelSpec,
    node: str,
    probabilities: Mapping[str, float] | float,
    given: Mapping[str, str] | None = None,
) -> ModelSpec:
    """Set P(node) (every row, or the rows matching ``given``); return a new specification.

    For an origin with parents (e.g. ``age_group``) and no ``given``, every row gets the
    new value: the node then no longer depends on those parents.

    >>> from kneehip_bn import load_spec, set_prior
    >>> s = set_prior(load_spec("knee_hip_basic"), "lumbar_radiculopathy", {"present": 0.05})
    >>> {r.probabilities["present"] for r in s.nodes["lumbar_radiculopathy"].table}
    {0.05}
    """
    return set_row(spec, node, given, probabilities)


def set_link(
    spec: ModelSpec, node: str, parent: str, p: float, when: str | None = None
) -> ModelSpec:
    """Set a noisy-OR link probability; return a new specification.

    >>> from kneehip_bn import load_spec, set_link
    >>> s = set_link(load_spec("knee_hip_basic"), "knee_pain", "knee_pathology", 0.6)
    >>> [ln.p for ln in s.nodes["knee_pain"].noisy_or.links if ln.parent == "knee_pathology"]
    [0.6]
    """
    new = copy.deepcopy(spec)
    n = new.node(node)
    if n.noisy_or is None:
        raise ModelFileError(
            f"at nodes.{node}: expected a noisy-OR table to set a link, found a full table; "
            "use set_row")
    if parent not in n.parents:
        raise UnknownNameError.for_name(f"parent of {node}", parent, n.parents)
    links = [ln for ln in n.noisy_or.links if ln.parent == parent]
    if when is not None:
        links = [ln for ln in links if ln.when == when]
        if not links:
            raise UnknownNameError.for_name(
                f"linked state of {parent} in {node}", when,
                [ln.when for ln in n.noisy_or.links if ln.parent == parent])
    elif len(links) > 1:
        raise ModelFileError(
            f"at nodes.{node}.noisy_or.links: expected one link for parent '{parent}', found "
            f"{len(links)} (states {[ln.when for ln in links]}); pass when=STATE")
    if not _is_number(p) or not 0 <= p <= 1:
        raise ModelFileError(f"at nodes.{node}: expected a link probability in [0, 1], found {p!r}")
    _mark_edit(links[0], links[0].p)
    links[0].p = float(p)
    return validate_spec(new)


def set_leak(spec: ModelSpec, node: str, p: float) -> ModelSpec:
    """Set a noisy-OR leak probability; return a new specification.

    >>> from kneehip_bn import load_spec, set_leak
    >>> set_leak(load_spec("knee_hip_basic"), "knee_pain", 0.1).nodes["knee_pain"].noisy_or.leak.p
    0.1
    """
    new = copy.deepcopy(spec)
    n = new.node(node)
    if n.noisy_or is None:
        raise ModelFileError(
            f"at nodes.{node}: expected a noisy-OR table to set a leak, found a full table; "
            "use set_row")
    if not _is_number(p) or not 0 <= p <= 1:
        raise ModelFileError(f"at nodes.{node}: expected a leak probability in [0, 1], found {p!r}")
    _mark_edit(n.noisy_or.leak, n.noisy_or.leak.p)
    n.noisy_or.leak.p = float(p)
    return validate_spec(new)


def apply_overrides(spec: ModelSpec, overrides: Sequence[str]) -> ModelSpec:
    """Apply ``--set`` style edits; return a new specification (each edit marked ``user``).

    Forms (``P`` is a probability):

    - ``NODE=P``: P(second state) of a two-state table node, every row
      (e.g. ``lumbar_radiculopathy=0.05``);
    - ``NODE.STATE=P``: P(NODE=STATE), every row, other states rescaled;
    - ``NODE[PARENT=STATE,...].STATE=P``: only the rows matching the parent states;
    - ``NODE.leak=P``: a noisy-OR leak;
    - ``NODE.link.PARENT=P`` or ``NODE.link.PARENT:STATE=P``: a noisy-OR link.

    >>> from kneehip_bn import load_spec
    >>> from kneehip_bn.model.spec import apply_overrides
    >>> s = apply_overrides(load_spec("knee_hip_basic"), ["knee_pain.leak=0.1", "knee_pathology[age_group=60_plus].present=0.4"])
    >>> s.nodes["knee_pain"].noisy_or.leak.p
    0.1
    """
    for item in overrides:
        spec = _apply_one(spec, item)
    return spec


def _apply_one(spec: ModelSpec, item: str) -> ModelSpec:
    usage = ("expected NODE=P, NODE.STATE=P, NODE[PARENT=STATE].STATE=P, NODE.leak=P or "
             "NODE.link.PARENT[:STATE]=P")
    if "=" not in item:
        raise ModelFileError(f"override '{item}': {usage}, found no '='")
    lhs, _, rhs = item.rpartition("=")
    try:
        p = float(rhs)
    except ValueError:
        raise ModelFileError(f"override '{item}': expected a probability after the last '=', "
                             f"found '{rhs}'") from None
    given: dict[str, str] = {}
    if "[" in lhs:
        head, _, rest = lhs.partition("[")
        inner, _, tail = rest.partition("]")
        for part in filter(None, (x.strip() for x in inner.split(","))):
            if "=" not in part:
                raise ModelFileError(f"override '{item}': expected PARENT=STATE inside [], "
                                     f"found '{part}'")
            k, _, v = part.partition("=")
            if k.strip() in given:
                raise ModelFileError(f"override '{item}': expected each parent once inside [], "
                                     f"found '{k.strip()}' twice")
            given[k.strip()] = v.strip()
        lhs = head + tail
    parts = lhs.split(".")
    node = parts[0]
    n = spec.node(node)
    if len(parts) == 1:
        return set_row(spec, node, given, p)
    if parts[1] == "leak" and len(parts) == 2:
        return set_leak(spec, node, p)
    if parts[1] == "link" and len(parts) == 3:
        parent, _, when = parts[2].partition(":")
        return set_link(spec, node, parent, p, when=when or None)
    if len(parts) == 2:
        state = parts[1]
        if state not in n.states:
            raise UnknownNameError.for_name(f"state of {node}", state, n.states,
                                            where=f"override '{item}'")
        return set_row(spec, node, given, {state: p})
    raise ModelFileError(f"override '{item}': {usage}")
