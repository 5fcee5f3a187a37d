"""The house rules of the package, checked on its source (ARCHITECTURE.md says why).

- the layers (``[tool.importlinter]`` in pyproject.toml) hold: ``lint-imports`` passes;
- no import cycle between the package's modules, counting imports inside functions;
- no subpackage imports the front door (``kneehip_bn/__init__.py``);
- no private name (``_x``) is imported from another module, or read from one;
- imports of the package's own modules sit at module top, except in a module that says
  why on a line of its own: ``# lazy imports: <the measured reason>``;
- no module over ``MAX_MODULE_LINES`` lines, no function over ``MAX_FUNCTION_LINES`` code
  lines outside the numerical kernels, each marked by a comment line
  ``# kernel: <why it reads best whole>`` right above its ``def``.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "kneehip_bn"
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 80

def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(SRC.rglob("*.py")):
        parts = list(p.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _resolve(mod: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".")
    if MODULES[mod].name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(mod: str):
    """(line, target module, imported name or None, at module top) of each own import."""
    tree = ast.parse(MODULES[mod].read_text())
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            tgt = _resolve(mod, node)
            if tgt.split(".")[0] != "kneehip_bn":
                continue
            for a in node.names:
                full = f"{tgt}.{a.name}"
                if full in MODULES:
                    yield node.lineno, full, None, id(node) in top
                else:
                    yield node.lineno, tgt, a.name, id(node) in top
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "kneehip_bn":
                    yield node.lineno, a.name, None, id(node) in top


def _graph() -> dict[str, set[str]]:
    g: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for _, tgt, _, _ in _imports(m):
            if tgt != m and tgt in MODULES:
                g[m].add(tgt)
    return g


@pytest.mark.skipif(shutil.which("lint-imports") is None and not Path(sys.executable).with_name("lint-imports").exists(),
                    reason="import-linter is not installed (pip install '.[test]')")
def test_layers_contract_holds():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    r = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_no_import_cycles():
    import networkx as nx

    g = nx.DiGraph([(a, b) for a, bs in _graph().items() for b in bs if a != "kneehip_bn"])
    cycles = list(nx.simple_cycles(g))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles[:10])


def test_no_subpackage_imports_the_front_door():
    bad = [f"{m}:{ln}" for m in MODULES if m != "kneehip_bn"
           for ln, tgt, _, _ in _imports(m) if tgt == "kneehip_bn"]
    assert not bad, f"import from kneehip_bn (the front door) in {bad}"


def test_no_private_names_across_modules():
    bad = []
    for m in MODULES:
        for ln, tgt, name, _ in _imports(m):
            if name and name.startswith("_") and not name.startswith("__") and tgt != m:
                bad.append(f"{m}:{ln} imports {tgt}.{name}")
        tree = ast.parse(MODULES[m].read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                tgt = _resolve(m, node)
                for a in node.names:
                    if f"{tgt}.{a.name}" in MODULES:
                        aliases[a.asname or a.name] = f"{tgt}.{a.name}"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                bad.append(f"{m}:{node.lineno} reads {aliases[node.value.id]}.{node.attr}")
    assert not bad, f"{len(bad)} private names used across modules:\n" + "\n".join(bad)


def test_own_imports_at_module_top():
    bad = [f"{m}:{ln} imports {tgt}" for m in MODULES if not _says_lazy(m)
           for ln, tgt, _, top in _imports(m) if not top]
    assert not bad, (f"{len(bad)} imports of the package's own modules inside functions "
                     "(move them to the top, or say why on a line '# lazy imports: <measured "
                     "reason>'):\n" + "\n".join(bad))


def _says_lazy(mod: str) -> bool:
    return any(ln.startswith("# lazy imports: ") and len(ln) > 30
               for ln in MODULES[mod].read_text().splitlines())


def _kernel_lines(mod: str) -> set[int]:
    """Line numbers of the ``def`` under each ``# kernel: ...`` comment."""
    lines = MODULES[mod].read_text().splitlines()
    out = set()
    for i, ln in enumerate(lines):
        if ln.strip().startswith("# kernel: ") and len(ln.strip()) > 25:
            j = i + 1
            while j < len(lines) and lines[j].strip().startswith("@"):
                j += 1
            out.add(j + 1)
    return out


def test_module_sizes():
    big = {m: n for m, p in MODULES.items()
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def _function_lengths(mod: str):
    tree = ast.parse(MODULES[mod].read_text())

    def walk(node, prefix):
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = ch.body
                if body and isinstance(body[0], ast.Expr) and isinstance(
                        getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
                    start = body[0].end_lineno + 1 if len(body) > 1 else body[0].lineno
                else:
                    start = body[0].lineno
                yield f"{prefix}{ch.name}", ch.end_lineno - start + 1, ch.lineno
                yield from walk(ch, f"{prefix}{ch.name}.")
            elif isinstance(ch, ast.ClassDef):
                yield from walk(ch, f"{prefix}{ch.name}.")

    yield from walk(tree, "")


def test_function_sizes():
    long = [f"{m}:{f} ({n} lines)" for m in MODULES for f, n, ln in _function_lengths(m)
            if n > MAX_FUNCTION_LINES and ln not in _kernel_lines(m)]
    assert not long, f"functions over {MAX_FUNCTION_LINES} code lines:\n" + "\n".join(long)
