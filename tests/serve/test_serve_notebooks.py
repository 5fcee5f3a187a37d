"""The notebooks' install line and what it installs (issue 14).

- The ``notebooks`` extra in ``pyproject.toml`` holds every third-party module the notebooks
  import that the package itself does not depend on, plus ``jupyterlab`` (to open them).
- The README tells users ``pip install ".[notebooks]"`` and ``jupyter lab notebooks/``, and
  every ``pip install ".[EXTRA]"`` it shows names an extra that exists. (Until the lead pastes
  ``docs/readme/serve.md`` into the README, the lines are looked for in either.)
- ``04_explorer`` without ipywidgets prints what to install and runs to the end without an
  error (the widgets import is blocked in the kernel).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _req_name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def _notebook_imports() -> set[str]:
    nbformat = pytest.importorskip("nbformat")
    mods: set[str] = set()
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            src = "\n".join(line for line in cell.source.splitlines()
                            if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(src)):
                if isinstance(node, ast.Import):
                    mods.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    mods.add(node.module.split(".")[0])
    return mods


def _distributions(module: str) -> set[str]:
    return {d.lower().replace("_", "-")
            for d in metadata.packages_distributions().get(module, [])}


def test_notebooks_extra_covers_what_the_notebooks_import():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert "notebooks" in extras
    in_extra = {_req_name(r) for r in extras["notebooks"]}
    core = {_req_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert "jupyterlab" in in_extra  # `jupyter lab notebooks/` needs it
    kernel_provided = {"IPython", "ipykernel", "matplotlib_inline"}  # come with jupyterlab
    missing = []
    imports = _notebook_imports()
    assert "ipywidgets" in imports  # the explorer: the reason the extra exists
    for mod in sorted(imports):
        if mod in sys.stdlib_module_names or mod == "kneehip_bn" or mod in kernel_provided:
            continue
        dists = _distributions(mod) or {mod.lower().replace("_", "-")}
        if not dists & (in_extra | core):
            missing.append(f"{mod} (distribution {', '.join(sorted(dists))})")
    assert not missing, f"imported by the notebooks but in neither the notebooks extra nor " \
                        f"the dependencies: {missing}"


def _docs_text() -> str:
    docs = [REPO / "README.md", *sorted((REPO / "docs" / "readme").glob("*.md"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in docs if p.exists())


def test_readme_notebook_install_line():
    text = _docs_text()
    assert re.search(r'pip install (-q )?"\.\[notebooks\]"', text), \
        'expected the line pip install ".[notebooks]" in the README'
    assert "jupyter lab notebooks/" in text
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    for extra in re.findall(r'pip install (?:-q )?"(?:\.|kneehip_bn)\[([a-z_,]+)\]"', text):
        for name in extra.split(","):
            assert name in extras, f"the README installs the extra '{name}', not in pyproject"


@pytest.mark.slow
def test_explorer_without_ipywidgets_says_what_to_install():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = REPO / "notebooks" / "04_explorer.ipynb"
    nb = nbformat.read(path, as_version=4)
    block = nbformat.v4.new_code_cell("import sys\nsys.modules['ipywidgets'] = None  # as if "
                                      "it were not installed")
    nb.cells.insert(0, block)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{errors[0].get('ename')}: {errors[0].get('evalue')}"
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert 'pip install ".[notebooks]"' in text
    assert "need ipywidgets" in text
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images  # the default case is still drawn
