"""Export the network to the exchange formats pgmpy writes (GeNIe, Hugin, pyAgrum, pgmpy).

Round trips measured in the tests: BIF (written with full precision) and XMLBIF are
bit-exact; GeNIe XDSL to ~1e-16; Hugin NET keeps 8 decimals (~5e-9). Provenance lives only
in the YAML model file: these formats have no place for it.

For pyAgrum use XMLBIF saved as ``.bifxml`` (exact), or BIF or NET (pyAgrum parses their
numbers to ~1e-8): they give pyAgrum the same posteriors as this package.
XDSL tables are written in GeNIe's layout (the last parent varies fastest), but pyAgrum
3.3's XDSL reader orders multi-parent tables differently, so an XDSL file opened in
pyAgrum gives different answers (measured, not a problem of the file's numbers).

Examples
--------
>>> import tempfile, os
>>> from kneehip_bn.readwrite import export_network
>>> d = tempfile.mkdtemp()
>>> path = export_network(None, os.path.join(d, "knee_hip.bif"))
>>> path.name
'knee_hip.bif'
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import KneeHipError, UnknownNameError

__all__ = ["FORMATS", "export_network", "read_network"]

#: format name -> (file extension, description)
FORMATS = {
    "bif": (".bif", "Bayesian Interchange Format (pgmpy, pyAgrum, GeNIe, many tools)"),
    "xmlbif": (".xml", "XML BIF 0.3 (pgmpy, pyAgrum .bifxml, Weka)"),
    "net": (".net", "Hugin NET (Hugin, pyAgrum; 8 decimals)"),
    "xdsl": (".xdsl", "GeNIe / SMILE XDSL"),
}
_EXT = {".bif": "bif", ".xml": "xmlbif", ".bifxml": "xmlbif", ".xmlbif": "xmlbif",
        ".net": "net", ".xdsl": "xdsl"}


def _format_for(path: Path, fmt: str | None) -> str:
    if fmt is None:
        fmt = _EXT.get(path.suffix.lower())
        if fmt is None:
            raise UnknownNameError.for_name(
                "file extension", path.suffix or "(none)", sorted(_EXT),
                where=f"export to {path}")
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UnknownNameError.for_name("export format", fmt, FORMATS)
    return fmt


def _plain_network(model: Any) -> Any:
    """A copy without our node attributes (some writers choke on non-string properties)."""
    from pgmpy.models import DiscreteBayesianNetwork

    plain = DiscreteBayesianNetwork()
    plain.add_nodes_from(model.nodes)
    plain.add_edges_from(model.edges)
    plain.add_cpds(*[c.copy() for c in model.get_cpds()])
    plain.name = getattr(model, "name", None) or "knee_hip"
    return plain


def export_network(
    model: Any, path: str | os.PathLike[str], format: str | None = None, overwrite: bool = False
) -> Path:
    """Write the network (``None``: the shipped model) as BIF, XMLBIF, Hugin NET or XDSL.

    The format follows the extension unless ``format`` is given. The file is written
    atomically and an existing file is only replaced with ``overwrite=True``.
    """
    from .network import build_network
    from .queries import as_model

    p = Path(path)
    fmt = _format_for(p, format)
    if p.exists() and not overwrite:
        raise FileExistsError(
            f"{p} exists: expected a new file name, found an existing file; pass "
            "overwrite=True (CLI: --overwrite) to replace it")
    m = as_model(model)
    if not hasattr(m, "get_cpds"):
        m = build_network(m)
    net = _plain_network(m)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=FORMATS[fmt][0], dir=p.parent)
    os.close(fd)
    try:
        if fmt == "bif":
            from pgmpy.readwrite import BIFWriter

            w = BIFWriter(net, round_values=None)
            (w.write if hasattr(w, "write") else w.write_bif)(tmp)
        elif fmt == "xmlbif":
            from pgmpy.readwrite import XMLBIFWriter

            w = XMLBIFWriter(net)
            (w.write if hasattr(w, "write") else w.write_xmlbif)(tmp)
        elif fmt == "net":
            from pgmpy.readwrite import NETWriter

            w = NETWriter(net)
            (w.write if hasattr(w, "write") else w.write_net)(tmp)
        else:
            from pgmpy.readwrite import XDSLWriter

            w = XDSLWriter(net)
            (w.write if hasattr(w, "write") else w.write_xdsl)(tmp)
        os.replace(tmp, p)
    except Exception as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, KneeHipError):
            raise
        raise KneeHipError(f"export to {p} as {fmt} failed: {exc}") from exc
    return p


def read_network(path: str | os.PathLike[str], format: str | None = None) -> Any:
    """Read a network written by :func:`export_network` (or any tool) back into pgmpy."""
    from pgmpy.models import DiscreteBayesianNetwork

    p = Path(path)
    fmt = _format_for(p, format)
    if not p.exists():
        raise KneeHipError(f"no such file: expected a {fmt} network at '{p}', found nothing")
    return DiscreteBayesianNetwork.load(str(p), filetype=fmt)
