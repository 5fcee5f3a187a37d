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

MODULES = [*sorted(m.name for m in pkgutil.iter_modules(kneehip_bn.__path__, prefix="kneehip_bn.")), "kneehip_bn"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
