"""Run the docstring examples of every module of the installed package (numpydoc examples
must stay runnable)."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

import kneehip_bn

#: every module of every subpackage (``__main__`` modules run the CLI on import: skipped)
MODULES = [*sorted(m.name for m in pkgutil.walk_packages(kneehip_bn.__path__, prefix="kneehip_bn.")
                   if not m.name.endswith("__main__")), "kneehip_bn"]


def test_every_subpackage_is_walked():
    assert {"kneehip_bn.inference.engine", "kneehip_bn.model.spec", "kneehip_bn.io.counts",
            "kneehip_bn.learning.em", "kneehip_bn.teaching.plots", "kneehip_bn.serve.app"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
    if name in WITH_EXAMPLES:
        assert result.attempted > 0, f"{name} lost its docstring examples"


#: modules whose docstrings must keep runnable examples (the public API's homes)
WITH_EXAMPLES = {"kneehip_bn", "kneehip_bn.inference.queries", "kneehip_bn.model.coerce"}
