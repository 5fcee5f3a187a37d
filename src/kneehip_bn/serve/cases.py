"""The teaching case library: small YAML files an educator writes.

A file holds ``format: kneehip-cases/1`` and a list ``cases``; each case::

    - id: hip_oa_as_knee_pain          # unique, letters/digits/_
      model: knee_hip_basic            # the model whose vocabulary it uses
      title: "Knee pain that is not the knee"
      story: "A 68-year-old retired teacher ..."   # what the student reads first
      source: "classic vignette: hip OA referring to the knee (X1-X6)"
      context: {age_group: 60_plus}    # shown at the start
      steps:                           # revealed one at a time; the student commits a
        - reveal: {knee_pain: present} #   guess before the model's answer is shown
          prompt: "What do you suspect?"
        - reveal: {hip_internal_rotation_limited: present, fadir_test: positive}
      answer: hip_pathology            # the diagnosis a clinician expects to lead
      teaching_point: "Hip disease often presents as knee pain ..."

A server shows the cases whose ``model`` is its model's name. Every name and state is
checked against that model when the server starts: a problem in an educator's file stops
the start with one clear line; a shipped case that does not fit (written for another edition
of a model of the same name) is left out and reported (``skipped``; ``kneehip serve`` prints
one line about them). YAML is read with a safe loader that also refuses duplicate keys.

Examples
--------
>>> from kneehip_bn import load_spec
>>> lib = load_case_library(load_spec("knee_hip_basic"))
>>> len(lib["cases"]) >= 12
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from kneehip_bn._util.strict_yaml import YAMLInputError, load_yaml
from kneehip_bn.errors import KneeHipError, ModelFileError, UnknownNameError

__all__ = ["CASE_FORMAT", "load_case_file", "load_case_library", "shipped_case_files"]

CASE_FORMAT = "kneehip-cases/1"
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CASE_KEYS = {"id", "model", "title", "story", "source", "context", "steps", "answer",
              "teaching_point"}
_STEP_KEYS = {"reveal", "prompt", "note"}


def shipped_case_files() -> list[Path]:
    """The case library files shipped inside the package (``kneehip_bn/serve/cases``)."""
    folder = resources.files(__package__).joinpath("cases")
    return sorted(Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml"))


def load_case_file(path: str | Path) -> list[dict[str, Any]]:
    """Read one case file (the strict loader of :mod:`kneehip_bn._util.strict_yaml`) and check its shape.

    Raises
    ------
    ModelFileError
        With the file and the place of the first problem.
    """
    p = Path(path)
    where = str(p)
    try:  # the one strict loader: no aliases, duplicate keys or tags, sizes bounded
        data = load_yaml(p, what="case file").data
    except YAMLInputError as exc:
        raise ModelFileError(str(exc), source=where) from None
    if not isinstance(data, Mapping) or data.get("format") != CASE_FORMAT:
        raise ModelFileError(f"format: expected '{CASE_FORMAT}' at the top of a case file, "
                             f"found {data.get('format') if isinstance(data, Mapping) else data!r}",
                             source=where)
    cases = data.get("cases")
    if not isinstance(cases, list) or not cases:
        raise ModelFileError("cases: expected a non-empty list of cases", source=where)
    out = []
    for i, c in enumerate(cases):
        at = f"cases[{i}]"
        if not isinstance(c, Mapping):
            raise ModelFileError(f"{at}: expected a mapping, found {type(c).__name__}",
                                 source=where)
        unknown = sorted(set(c) - _CASE_KEYS)
        if unknown:
            raise ModelFileError(f"{at}: unknown key '{unknown[0]}': expected one of "
                                 f"{', '.join(sorted(_CASE_KEYS))}", source=where)
        for k in ("id", "model", "title", "story", "answer"):
            if not isinstance(c.get(k), str) or not c.get(k):
                raise ModelFileError(f"{at}.{k}: expected a non-empty string, found "
                                     f"{c.get(k)!r}", source=where)
        if not _ID.match(c["id"]):
            raise ModelFileError(f"{at}.id: expected letters, digits and _, found "
                                 f"'{c['id']}'", source=where)
        steps = c.get("steps")
        if not isinstance(steps, list) or not steps:
            raise ModelFileError(f"{at}.steps: expected a non-empty list", source=where)
        for j, s in enumerate(steps):
            if not isinstance(s, Mapping) or not isinstance(s.get("reveal"), Mapping) \
                    or not s["reveal"]:
                raise ModelFileError(f"{at}.steps[{j}]: expected a mapping with a non-empty "
                                     "'reveal: {node: state}'", source=where)
            extra = sorted(set(s) - _STEP_KEYS)
            if extra:
                raise ModelFileError(f"{at}.steps[{j}]: unknown key '{extra[0]}': expected "
                                     f"one of {', '.join(sorted(_STEP_KEYS))}", source=where)
        if c.get("context") is not None and not isinstance(c["context"], Mapping):
            raise ModelFileError(f"{at}.context: expected a mapping {{node: state}}",
                                 source=where)
        out.append({**c, "file": p.name, "context": dict(c.get("context") or {}),
                    "steps": [{"reveal": {str(k): str(v) for k, v in s["reveal"].items()},
                               "prompt": s.get("prompt"), "note": s.get("note")}
                              for s in steps]})
    return out


def _check_against_model(case: Mapping[str, Any], spec: Any) -> None:
    where = f"{case['file']}: case '{case['id']}'"
    seen: dict[str, str] = {}

    def check(items: Mapping[str, str], at: str) -> None:
        for k, v in items.items():
            node = spec.nodes.get(k)
            if node is None:
                raise UnknownNameError.for_name("node", k, spec.nodes, where=f"{where}, {at}")
            if v not in node.states:
                raise UnknownNameError.for_name(f"state of {k}", v, node.states,
                                                where=f"{where}, {at}")
            if k in seen:
                raise ModelFileError(f"{where}, {at}: {k} revealed twice; expected each "
                                     "finding once per case")
            seen[k] = v

    check(case["context"], "context")
    for j, s in enumerate(case["steps"]):
        check(s["reveal"], f"steps[{j}]")
    if case["answer"] not in spec.group("origin"):
        raise UnknownNameError.for_name("diagnosis", case["answer"], spec.group("origin"),
                                        where=f"{where}, answer")


def load_case_library(spec: Any, extra: Iterable[str | Path] = (), shipped: bool = True
                      ) -> dict[str, Any]:
    """The cases for this model: shipped ones tagged with its name, plus ``extra`` files.

    Cases in ``extra`` files must all be for this model (an educator's own file is checked
    whole); shipped cases for other models are left for servers of those models, and
    counted in ``other_models``.

    Returns
    -------
    dict
        ``{"model": name, "cases": [...], "other_models": {name: count}, "skipped": [...]}``;
        ``skipped`` lists shipped cases tagged with this model's name that do not fit this
        model file (another edition of it), each with the reason.
    """
    cases: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    other: dict[str, int] = {}
    ids: set[str] = set()
    files = [(f, True) for f in (shipped_case_files() if shipped else [])]
    files += [(Path(f), False) for f in extra]
    for f, is_shipped in files:
        for c in load_case_file(f):
            if c["model"] != spec.name:
                if is_shipped:
                    other[c["model"]] = other.get(c["model"], 0) + 1
                    continue
                raise ModelFileError(f"case '{c['id']}': model: expected '{spec.name}' (the "
                                     f"server's model), found '{c['model']}'", source=str(f))
            try:
                _check_against_model(c, spec)
            except KneeHipError as exc:
                if not is_shipped:
                    raise
                # a shipped case written for another edition of a model of this name (the
                # second edition of knee_hip before it lands, or an older file): reported
                # in "skipped" (`kneehip serve` prints one line about them)
                skipped.append({"id": c["id"], "file": c["file"], "reason": str(exc)})
                continue
            if c["id"] in ids:
                raise ModelFileError(f"case '{c['id']}': id used twice: expected unique ids",
                                     source=str(f))
            ids.add(c["id"])
            cases.append(c)
    return {"model": spec.name, "cases": cases, "other_models": other, "skipped": skipped}
