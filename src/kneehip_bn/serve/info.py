"""What the page needs to know about the server's model.

:func:`model_info` is ``GET /api/model``: name, title, version, the disclaimer, every node
(group, states, region, red flag), the case builder's sections (:mod:`.layout`), and every
number of the model as a slider in the CLI's ``--set`` form.

Examples
--------
>>> from kneehip_bn import load_spec
>>> info = model_info(load_spec("knee_hip_basic"))
>>> info["name"], info["teaching_model"]
('knee_hip_basic', True)
>>> any(n["set"] == "knee_pain.leak" for n in info["numbers"])
True
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from kneehip_bn._util.text import DISCLAIMER
from kneehip_bn._util.version import __version__
from kneehip_bn.inference.queries import on_state
from kneehip_bn.model.spec import Leak, Link, TableRow
from kneehip_bn.serve.layout import examination_sections

__all__ = ["model_info", "slider_numbers"]


def _given_text(given: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in given.items())


def slider_numbers(spec: Any) -> list[dict[str, Any]]:
    """Every number of the model with the ``--set`` edit that changes it.

    ``set`` is the edit without ``=P`` (the page appends the slider's value): ``NODE.leak``,
    ``NODE.link.PARENT:STATE``, ``NODE.STATE`` (a root table) or ``NODE[PARENT=STATE,...].STATE``
    (one row of a table). Two-state tables list only the "present" state (the other is
    1 - p).
    """
    out = []
    for name, _loc, e in spec.entries():
        node = spec.nodes[name]
        base = {"node": name, "group": node.group, "source": e.source}
        if isinstance(e, Leak):
            out.append({**base, "set": f"{name}.leak", "what": "leak", "given": "",
                        "value": float(e.p)})
        elif isinstance(e, Link):
            out.append({**base, "set": f"{name}.link.{e.parent}:{e.when}",
                        "what": f"link from {e.parent}={e.when}", "given": "",
                        "value": float(e.p)})
        elif isinstance(e, TableRow):
            states = list(e.probabilities)
            shown = [on_state(node.states)] if len(node.states) == 2 else states
            head = f"{name}[{_given_text(e.given)}]" if e.given else name
            for st in shown:
                if st not in e.probabilities:
                    continue
                out.append({**base, "set": f"{head}.{st}", "what": f"P({st})",
                            "given": _given_text(e.given), "value": float(e.probabilities[st])})
    return out


def model_info(spec: Any) -> dict[str, Any]:
    """``GET /api/model``: everything the page shows about the model (no numbers inferred)."""
    digest = None
    if spec.path and Path(spec.path).is_file():
        digest = hashlib.sha256(Path(spec.path).read_bytes()).hexdigest()[:12]
    nodes = {}
    for n, s in spec.nodes.items():
        nodes[n] = {"group": s.group, "states": list(s.states), "on": on_state(s.states),
                    "parents": list(s.parents), "description": s.description,
                    "region": s.region, "red_flag": s.red_flag}
    return {
        "name": spec.name, "title": spec.title, "description": spec.description,
        "population": spec.population, "format": spec.format,
        "version": spec.extra.get("version"), "file_sha256": digest,
        "package_version": __version__, "teaching_model": True,
        "disclaimer": DISCLAIMER, "nodes": nodes,
        "context": spec.group("context"), "origins": spec.group("origin"),
        "mechanisms": spec.group("mechanism"), "sections": examination_sections(spec),
        "regions": spec.regions(), "red_flags": spec.red_flags(), "scope": spec.scope,
        "numbers": slider_numbers(spec),
    }
