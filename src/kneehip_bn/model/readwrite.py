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
>>> from kneehip_bn.model.readwrite import export_network
>>> d = tempfile.mkdtemp()
>>> path = export_network(None, os.path.join(d, "knee_hip.bif"))
>>> path.name
'knee_hip.bif'
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from kneehip_bn._util.files import atomic_write, check_new_output
from kneehip_bn.errors import KneeHipError, UnknownNameError
from kneehip_bn.model.coerce import as_model
from kneehip_bn.model.network import build_network

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


#: the pgmpy writer of each format, with the defaults ``DiscreteBayesianNetwork.save`` uses
#: (BIF with full precision: ``round_values=None``). ``save`` itself is not called: its file
#: name's extension wins over ``filetype``, and the format given here must win.
_WRITERS = {
    "bif": ("BIFWriter", {"round_values": None}),
    "xmlbif": ("XMLBIFWriter", {}),
    "net": ("NETWriter", {}),
    "xdsl": ("XDSLWriter", {}),
}
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*\Z")


def _check_names(net: Any, fmt: str) -> None:
    """BIF and NET have no quoting: a name with a space, ``=`` or ``,`` writes a file that
    no reader (pgmpy's included) can read back, so refuse it with the first bad name."""
    if fmt not in ("bif", "net"):
        return
    for cpd in net.get_cpds():
        names = [cpd.variable, *(str(s) for s in cpd.state_names[cpd.variable])]
        for n in names:
            if not _SAFE_NAME.match(str(n)):
                raise KneeHipError(
                    f"export as {fmt}: expected node and state names of letters, digits, "
                    f"'_', '.', '+' or '-', found {str(n)!r} (in node {cpd.variable}); "
                    "rename it in the model file or export as xmlbif")


def export_network(
    model: Any, path: str | os.PathLike[str], format: str | None = None, overwrite: bool = False
) -> Path:
    """Write the network (``None``: the shipped model) as BIF, XMLBIF, Hugin NET or XDSL.

    The format follows the extension unless ``format`` is given. The file is written by
    the one atomic writer (:func:`kneehip_bn._util.files.atomic_write`): an existing file is
    only replaced with ``overwrite=True``, and nothing is left behind on failure.
    """
    import pgmpy.readwrite as prw

    p = Path(path)
    fmt = _format_for(p, format)
    check_new_output(p, overwrite)
    m = as_model(model)
    if not hasattr(m, "get_cpds"):
        m = build_network(m)
    net = _plain_network(m)
    _check_names(net, fmt)
    cls, kwargs = _WRITERS[fmt]

    def write(tmp: str) -> None:
        try:
            getattr(prw, cls)(net, **kwargs).write(tmp)
        except OSError:
            raise
        except Exception as exc:  # a pgmpy writer's own failure, in one line
            raise KneeHipError(f"export to {p} as {fmt} failed: {exc}") from exc

    return atomic_write(p, write, overwrite=overwrite)


def read_network(path: str | os.PathLike[str], format: str | None = None) -> Any:
    """Read a network written by :func:`export_network` (or any tool) back into pgmpy."""
    from pgmpy.models import DiscreteBayesianNetwork

    p = Path(path)
    fmt = _format_for(p, format)
    if not p.exists():
        raise KneeHipError(f"no such file: expected a {fmt} network at '{p}', found nothing")
    return DiscreteBayesianNetwork.load(str(p), filetype=fmt)
