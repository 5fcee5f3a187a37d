"""Reading and writing the YAML model file.

:func:`load_spec` reads a file with the strict loader of :mod:`kneehip_bn._util.strict_yaml`
(no tags, aliases or duplicate keys; size limits) and :func:`parse_spec` turns the plain
data into a validated :class:`~kneehip_bn.ModelSpec`, one section at a time (header,
sources, nodes). Parsing collects every problem, with the line of each, and fills the
defaults the format allows (a noisy-OR link on a two-state parent may omit ``when``).
:func:`save_spec` writes a specification back, atomically; loading the written file gives
back an equal specification.

Examples
--------
>>> spec = load_spec("knee_hip_basic")
>>> parse_spec(dump_spec(spec)) == spec
True
>>> parse_spec({"format": "kneehip-bn/1", "name": "x", "sources": {}, "nodes": {}})
Traceback (most recent call last):
...
kneehip_bn.errors.ModelFileError: model specification has 2 problems:
  - at sources: expected a mapping of source ids to {citation: ...} or {elicited: ...}, found {}
  - at nodes: expected a mapping of node names to node entries, found {}
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from kneehip_bn._util.files import atomic_write_text
from kneehip_bn._util.strict_yaml import YAMLInputError, load_yaml, unknown_fields
from kneehip_bn.errors import ModelFileError
from kneehip_bn.model.spec import (
    FORMAT,
    GROUPS,
    RESERVED_SOURCES,
    SHIPPED_MODELS,
    FrozenDict,
    FrozenList,
    Leak,
    Link,
    ModelSpec,
    NodeSpec,
    NoisyOr,
    Provenance,
    Source,
    TableRow,
    default_model_path,
    is_number,
    shipped_model_path,
)
from kneehip_bn.model.validate import ProblemList, validate_spec

__all__ = ["dump_spec", "load_spec", "parse_spec", "save_spec", "spec_to_yaml"]


# ----------------------------------------------------------------------------- reading
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
    c = ProblemList(lines)
    if not isinstance(data, Mapping):
        raise ModelFileError(
            f"expected a mapping with keys format, name, sources, nodes; found "
            f"{type(data).__name__}",
            source=source,
        )
    name, ds = _parse_header(data, c)
    sources = _parse_sources(data.get("sources"), c)
    nodes = _parse_nodes(data.get("nodes"), c, source)
    spec = ModelSpec(
        name=str(name or ""), sources=sources, nodes=nodes,
        title=str(data.get("title", "") or ""), description=str(data.get("description", "") or ""),
        population=str(data.get("population", "") or ""), default_strength=float(ds),
        extra={k: v for k, v in data.items() if k == "scope"},
    )
    c.raise_if_any(source)
    _fill_link_states(spec)
    validate_spec(spec, source=source)
    return spec


def _parse_header(data: Mapping[str, Any], c: ProblemList) -> tuple[Any, Any]:
    """The top-level fields: known fields only, ``format``, ``name``, ``default_strength``."""
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
    if not is_number(ds) or ds <= 0:
        c.add("default_strength", "a positive number", ds)
        ds = 10
    return name, ds


def _parse_sources(raw_sources: Any, c: ProblemList) -> dict[str, Source]:
    """``sources:``: each a citation or an elicited rationale (the reserved ids added)."""
    sources: dict[str, Source] = {k: Source(id=k, note=v) for k, v in RESERVED_SOURCES.items()}
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
    return sources


def _parse_nodes(raw_nodes: Any, c: ProblemList, source: str | None) -> dict[str, NodeSpec]:
    """``nodes:``, in file order (at most :data:`MAX_MODEL_NODES`)."""
    nodes: dict[str, NodeSpec] = {}
    if not isinstance(raw_nodes, Mapping) or not raw_nodes:
        c.add("nodes", "a mapping of node names to node entries", raw_nodes)
        raw_nodes = {}
    if len(raw_nodes) > MAX_MODEL_NODES:
        raise ModelFileError(f"at nodes: expected at most {MAX_MODEL_NODES:,} nodes, found "
                             f"{len(raw_nodes):,}", source=source)
    for nname, nd in raw_nodes.items():
        node = _parse_node(nname, nd, c)
        if node is not None:
            nodes[str(nname)] = node
    return nodes


def _parse_node(nname: Any, nd: Any, c: ProblemList) -> NodeSpec | None:
    """One node entry: group, states, parents, strength, roles, and its table."""
    where = f"nodes.{nname}"
    if not isinstance(nd, Mapping):
        c.add(where, "a mapping with group, states, parents and table or noisy_or", nd,
              path=("nodes", nname))
        return None
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
    if strength is not None and (not is_number(strength) or strength <= 0):
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
    return node


def _parse_table(raw: Any, node: NodeSpec, where: str, c: ProblemList,
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


def _parse_noisy_or(raw: Any, node: NodeSpec, where: str, c: ProblemList,
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

def _fill_link_states(spec: ModelSpec) -> None:
    """The format's one default: a link on a two-state parent without ``when`` is
    activated by the parent's second state (validation reports any other missing one)."""
    for node in spec.nodes.values():
        for ln in node.noisy_or.links if node.noisy_or is not None else ():
            parent = spec.nodes.get(ln.parent) if isinstance(ln.parent, str) else None
            if ln.when is None and parent is not None and len(parent.states) == 2:
                ln.when = parent.states[1]


def _plain(x: Any) -> Any:
    """A numpy number as a Python float (so it validates, prints and saves as one)."""
    if isinstance(x, numbers.Real) and not isinstance(x, (int, float)) and is_number(x):
        return float(x)
    return x


def _fields(c: ProblemList, d: Mapping[Any, Any], known: Sequence[str], where: str,
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


# ----------------------------------------------------------------------------- writing
def _entry_dict(e: Provenance, body: dict[str, Any]) -> dict[str, Any]:
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
_Dumper.add_representer(FrozenDict, _flow_small)
_Dumper.add_representer(FrozenList, yaml.SafeDumper.represent_list)


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
