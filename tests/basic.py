"""The basic edition (``knee_hip_basic``: five origins), named explicitly by the tests written in
its vocabulary (``knee_pathology``, ``hip_pathology``, ``lumbar_radiculopathy``, ...)."""

from __future__ import annotations

from collections.abc import Sequence

BASIC = "knee_hip_basic"


def _commands_with_model() -> set[str]:
    import argparse

    from kneehip_bn.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name for name, p in sub.choices.items()
            if any("--model" in a.option_strings for a in p._actions)}


_WITH_MODEL: set[str] = set()


def basic_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--model knee_hip_basic`` added when the command takes a model and none
    is named."""
    argv = list(argv)
    if not _WITH_MODEL:
        _WITH_MODEL.update(_commands_with_model())
    if argv and argv[0] in _WITH_MODEL and "--model" not in argv and not any(
            a.startswith("--model=") for a in argv):
        argv[1:1] = ["--model", BASIC]
    return argv


def main_basic(argv: Sequence[str]) -> int:
    """``kneehip ARGV`` on the basic edition (see :func:`basic_argv`)."""
    from kneehip_bn.cli import main

    return main(basic_argv(argv))
