"""The one strict YAML loader for model files, mappings and counts files.

``yaml.safe_load`` never runs code, but it accepts things a hand-written data file
should never contain and a hostile one uses: aliases (a nine-level "billion laughs" of a
few hundred bytes expands to gigabytes once printed), duplicate keys (the last one wins
without a word), integers of thousands of digits (a traceback in ``int()``), binary or
non-UTF-8 bytes. :func:`load_yaml` reads a file (or text) and refuses each of these with
one line naming where:

- **aliases and merge keys are refused** (not capped): ``*name`` and ``<<:`` are an error
  naming the line. Data files here never need them, and refusing is simpler to reason
  about than a cap. Anchors alone (``&name`` with no alias) are harmless and accepted;
- **duplicate keys** are an error naming both lines;
- **sizes are bounded**: file bytes (:data:`MAX_FILE_BYTES`), string length
  (:data:`MAX_STRING`), number of YAML nodes (:data:`MAX_NODES`), nesting depth
  (:data:`MAX_DEPTH`) and integer digits (:data:`MAX_INT_DIGITS`);
- **only plain data**: mappings, lists, strings, numbers, booleans, null and dates; any
  other tag (``!!python/object``, ``!!binary``, ``!custom``) is refused;
- **text only**: a file with NUL bytes, or that is not UTF-8, or that is not a regular
  file (``/dev/zero``, a FIFO, a directory) is refused before it is parsed.

The libyaml parser is used when available (the same events as the pure-Python one,
about five times faster); the document is composed into a node graph first (linear in
the file's size, aliases share a node) and only then turned into Python objects here, so
nothing is expanded before it is checked.

:func:`unknown_fields` is the helper the model-file and mapping parsers use to turn a
misspelt field into an error with the closest known field.

Examples
--------
>>> from kneehip_bn._util.strict_yaml import load_yaml, YAMLInputError
>>> doc = load_yaml(text="a: 1\\nb: [x, y]\\n")
>>> doc.data
{'a': 1, 'b': ['x', 'y']}
>>> doc.line("b")
2
>>> try:
...     load_yaml(text="a: 1\\na: 2\\n")
... except YAMLInputError as exc:
...     print(exc)
duplicate key 'a' at line 2 (first at line 1): expected each key once in a mapping
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from kneehip_bn.errors import KneeHipError, closest

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_INT_DIGITS",
    "MAX_NODES",
    "MAX_STRING",
    "YAMLDoc",
    "YAMLInputError",
    "load_yaml",
    "read_text_file",
    "unknown_fields",
]

#: largest file read (bytes); a model file of the shipped kind is ~100 kB
MAX_FILE_BYTES = 64 * 2**20
#: longest string scalar (characters)
MAX_STRING = 100_000
#: most YAML nodes (scalars, lists, mappings) in one document
MAX_NODES = 2_000_000
#: deepest nesting of lists/mappings
MAX_DEPTH = 64
#: most digits in an integer (Python refuses over 4300 in ``int()`` with a traceback)
MAX_INT_DIGITS = 100

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_T = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_T + t for t in ("null", "bool", "int", "float", "str", "timestamp")}


class YAMLInputError(KneeHipError, ValueError):
    """A YAML data file that cannot be read safely or unambiguously.

    ``line`` is the 1-based line of the problem when known. Callers re-raise it as their
    own error class (:class:`~kneehip_bn.errors.ModelFileError`,
    :class:`~kneehip_bn.errors.DataError`) with the file's name in front.
    """

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        super().__init__(message)


@dataclass
class YAMLDoc:
    """A loaded document: ``data`` (plain Python) and the line of every key and item."""

    data: Any
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict, repr=False)

    def line(self, *path: Any) -> int | None:
        """1-based line of the value at ``path`` (keys and list indices), or ``None``."""
        return self.lines.get(tuple(path))


def read_text_file(path: str | os.PathLike[str], what: str = "file",
                   max_bytes: int | None = None) -> str:
    """The text of a regular UTF-8 file of at most ``max_bytes`` bytes, or a clear error.

    Refuses devices, FIFOs and directories (``--model /dev/zero``), files with NUL bytes
    (binary), bytes that are not UTF-8 (naming the byte offset and line), and files over
    the size limit. A UTF-8 byte-order mark is dropped.

    The message does not repeat the path: callers put the file's name in front.

    >>> read_text_file("/dev/zero", "model file")
    Traceback (most recent call last):
    ...
    kneehip_bn._util.strict_yaml.YAMLInputError: expected a regular model file, found a character device
    """
    limit = MAX_FILE_BYTES if max_bytes is None else int(max_bytes)
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise YAMLInputError("no such file") from None
    except OSError as exc:
        raise YAMLInputError(f"cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else
                "a character device" if stat.S_ISCHR(st.st_mode) else
                "a block device" if stat.S_ISBLK(st.st_mode) else
                "a FIFO (pipe)" if stat.S_ISFIFO(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise YAMLInputError(f"expected a regular {what}, found {kind}")
    if st.st_size > limit:
        raise YAMLInputError(f"expected a {what} of at most {limit:,} bytes, found "
                             f"{st.st_size:,} bytes")
    try:
        with open(p, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise YAMLInputError(f"cannot read it ({exc.strerror})") from None
    if len(raw) > limit:  # grew while we looked
        raise YAMLInputError(f"expected a {what} of at most {limit:,} bytes, found more")
    return decode_text(raw, what)


def decode_text(raw: bytes, what: str = "file") -> str:
    """UTF-8 text of ``raw`` (BOM dropped), refusing NUL bytes and invalid UTF-8."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise YAMLInputError(f"expected a text (YAML) {what}, found a NUL byte at "
                             f"offset {nul} (line {line}): this looks like a binary file", line)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YAMLInputError(
            f"expected UTF-8 text, found the byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start} (line {line}); save the file as UTF-8", line) from None
    return text[1:] if text.startswith("\ufeff") else text


def load_yaml(path: str | os.PathLike[str] | None = None, *, text: str | None = None,
              what: str = "file", max_bytes: int | None = None) -> YAMLDoc:
    """Read one YAML document strictly (see the module docstring for what is refused).

    Parameters
    ----------
    path
        The file to read (a regular UTF-8 file), or ``None`` with ``text``.
    text
        YAML text instead of a file.
    what
        What the file is, for messages (``"model file"``, ``"mapping file"``).
    max_bytes
        Largest file accepted (default :data:`MAX_FILE_BYTES`).

    Returns
    -------
    YAMLDoc
        ``data`` (plain dicts, lists, str, int, float, bool, None, dates) and ``lines``.

    Raises
    ------
    YAMLInputError
        One line: where (line, column), what was expected, what was found.
    """
    if text is None:
        if path is None:
            raise TypeError("load_yaml needs a path or text=")
        text = read_text_file(path, what, max_bytes)
    elif len(text) > (MAX_FILE_BYTES if max_bytes is None else max_bytes):
        raise YAMLInputError(f"expected a {what} of at most {MAX_FILE_BYTES:,} characters, "
                             f"found {len(text):,}")
    if "\x00" in text:
        raise YAMLInputError(f"expected a text (YAML) {what}, found a NUL character")
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.composer.ComposerError as exc:  # e.g. an alias to an unknown anchor
        raise _yaml_error(exc, what) from None
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, what) from None
    except RecursionError:
        raise YAMLInputError(f"expected a {what} nested at most {MAX_DEPTH} levels deep, "
                             "found deeper nesting") from None
    doc = YAMLDoc(data=None)
    if node is None:
        return doc
    doc.data = _Builder(doc.lines, what, text).build(node)
    return doc


def _yaml_error(exc: yaml.YAMLError, what: str) -> YAMLInputError:
    mark = getattr(exc, "problem_mark", None)
    at = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if len(problem) > 200:
        problem = problem[:200] + "..."
    return YAMLInputError(f"not valid YAML at {at}: {problem}; check indentation and quoting "
                          "there", mark.line + 1 if mark else None)


class _Builder:
    """Turn a composed node graph into plain Python, checking as it goes."""

    def __init__(self, lines: dict[tuple[Any, ...], int], what: str, text: str):
        self.text = text
        self.lines = lines
        self.what = what
        self.seen: set[int] = set()
        self.count = 0
        self.scalar = yaml.constructor.SafeConstructor()

    def fail(self, node: yaml.Node, msg: str) -> YAMLInputError:
        line = node.start_mark.line + 1
        return YAMLInputError(f"line {line}, column {node.start_mark.column + 1}: {msg}", line)

    def build(self, root: yaml.Node) -> Any:
        # iterative (no recursion limit): a stack of (node, path, setter)
        out: list[Any] = [None]
        stack: list[tuple[yaml.Node, tuple[Any, ...], Any, Any]] = [(root, (), out, 0)]
        while stack:
            node, path, parent, key = stack.pop()
            if id(node) in self.seen:
                raise self._alias_error(node)
            self.seen.add(id(node))
            self.count += 1
            if self.count > MAX_NODES:
                raise self.fail(node, f"expected at most {MAX_NODES:,} YAML values, found more")
            if len(path) > MAX_DEPTH:
                raise self.fail(node, f"expected nesting at most {MAX_DEPTH} levels deep, "
                                      "found deeper")
            self.lines[path] = node.start_mark.line + 1
            if isinstance(node, yaml.MappingNode):
                if node.tag != _T + "map":
                    raise self._tag_error(node)
                value: dict[Any, Any] = {}
                parent[key] = value
                first: dict[Any, int] = {}
                items = []
                for knode, vnode in node.value:
                    if knode.tag == _T + "merge":
                        raise self.fail(knode, "expected plain YAML, found a merge key (<<); "
                                               "write the keys out in full")
                    if not isinstance(knode, yaml.ScalarNode):
                        raise self.fail(knode, "expected a plain key (text or number), found "
                                               "a list or mapping used as a key")
                    k = self._scalar(knode)
                    try:
                        hash(k)
                    except TypeError:  # pragma: no cover (scalars are hashable)
                        raise self.fail(knode, "expected a hashable key") from None
                    kl = knode.start_mark.line + 1
                    if k in first:
                        raise YAMLInputError(
                            f"duplicate key '{_short(k)}' at line {kl} (first at line "
                            f"{first[k]}): expected each key once in a mapping", kl)
                    first[k] = kl
                    value[k] = None
                    items.append((vnode, (*path, k), value, k))
                stack.extend(reversed(items))
            elif isinstance(node, yaml.SequenceNode):
                if node.tag != _T + "seq":
                    raise self._tag_error(node)
                seq: list[Any] = [None] * len(node.value)
                parent[key] = seq
                stack.extend(reversed([(v, (*path, i), seq, i) for i, v in enumerate(node.value)]))
            else:
                parent[key] = self._scalar(node)
        return out[0]

    def _tag_error(self, node: yaml.Node) -> YAMLInputError:
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        tag = node.tag.replace(_T, "!!")
        return YAMLInputError(
            f"unsafe or unknown YAML tag at line {line}, column {col}: expected plain YAML "
            f"(mappings, lists, numbers, strings), found {_short(tag)}; data files never "
            "contain Python objects", line)

    def _alias_error(self, node: yaml.Node) -> YAMLInputError:
        """The first alias's own line (found again in the event stream: a rare path)."""
        line = col = None
        with contextlib.suppress(yaml.YAMLError):
            for ev in yaml.parse(self.text, Loader=_Loader):
                if isinstance(ev, yaml.AliasEvent):
                    line, col = ev.start_mark.line + 1, ev.start_mark.column + 1
                    break
        at = f"line {line}, column {col}" if line else f"line {node.start_mark.line + 1}"
        return YAMLInputError(f"{at}: expected plain YAML without aliases, found an alias "
                              "(*name); write the value out in full", line)

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag not in _SCALAR_TAGS:
            raise self._tag_error(node)
        v = node.value
        if len(v) > MAX_STRING:
            raise self.fail(node, f"expected a value of at most {MAX_STRING:,} characters, "
                                  f"found {len(v):,}")
        if node.tag == _T + "int":
            digits = len(v.lstrip("+-").replace("_", ""))
            if digits > MAX_INT_DIGITS:
                raise self.fail(node, f"expected an integer of at most {MAX_INT_DIGITS} "
                                      f"digits, found one of {digits} digits")
        try:
            out = self.scalar.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            raise self.fail(node, f"expected a valid {node.tag.rsplit(':', 1)[-1]}, found "
                                  f"{_short(v)!r} ({exc})") from None
        if isinstance(out, float) and not math.isfinite(out) \
                and not any(t in v.lower() for t in ("inf", "nan")):  # 1e999 -> inf silently
            raise self.fail(node, f"expected a finite number, found {_short(v)} (out of range)")
        return out


def _short(x: Any, n: int = 60) -> str:
    s = str(x)
    return s if len(s) <= n else s[:n] + "..."


def unknown_fields(d: Mapping[Any, Any], known: Iterable[str]) -> list[tuple[str, str]]:
    """The keys of ``d`` not in ``known``, each with a hint naming the closest known field.

    Returns ``[(key, hint), ...]`` in the mapping's order; the hint is
    ``"did you mean 'x'?"`` or the list of known fields.

    >>> unknown_fields({"group": "origin", "strenght": 5}, ["group", "strength", "states"])
    [('strenght', "did you mean 'strength'?")]
    """
    known = list(known)
    out = []
    for k in d:
        if k in known:
            continue
        g = closest(str(k), known)
        out.append((str(k), f"did you mean '{g}'?" if g else
                    "known fields: " + ", ".join(known)))
    return out
