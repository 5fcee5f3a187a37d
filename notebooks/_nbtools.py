"""Shared helpers of the notebook builders (build_*.py): cells, writing, a headless check.

The builders run as scripts from the repository root (``python notebooks/build_X.py``), so
this folder is on ``sys.path`` and they import this module by name.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str):
    """A markdown cell (surrounding blank lines dropped)."""
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    """A code cell (surrounding blank lines dropped)."""
    return new_code_cell(text.strip("\n"))


def write(name: str, cells: list) -> Path:
    """Validate and write ``notebooks/NAME`` without outputs; return its path."""
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    path = HERE / name
    nbformat.write(nb, path)
    return path


def check(paths: list[Path], keep: bool = False) -> None:
    """Run each notebook headless, print its time, figures and errors; stop on an error."""
    import nbclient

    for path in paths:
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(HERE)}}).execute()
        dt = time.perf_counter() - t0
        outs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        errors = [o for o in outs if o.get("output_type") == "error"]
        images = sum(1 for o in outs if "image/png" in o.get("data", {}))
        print(f"{path.name}: {dt:.1f} s, {images} figures, {len(errors)} errors")
        for o in outs:
            if o.get("output_type") == "stream" and "ms" in o.get("text", ""):
                print("   ", o["text"].strip().splitlines()[-1])
        if errors:
            raise SystemExit(f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}")
        if keep:
            nbformat.write(nb, path.with_suffix(".executed.ipynb"))
