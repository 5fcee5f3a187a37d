"""The ``kneehip`` command: parse, call the public API, print.

Every command takes ``--model PATH`` (default: the shipped model) and ``--set`` overrides
for one run. Errors print one readable line (``error: ...``) and exit with status 1;
usage errors exit with status 2. Set ``KNEEHIP_DEBUG=1`` to see a traceback.

The commands live in one module per group, each with ``add_commands(subparsers,
parents)``: :mod:`~kneehip_bn.cli.model` (diagnose, query, export, graph, validate,
sources, models), :mod:`~kneehip_bn.cli.learn` (fit, check, batch, simulate, counts,
merge-counts), :mod:`~kneehip_bn.cli.teach` (explain, what-if, next-test, sensitivity,
conflict), :mod:`~kneehip_bn.cli.causal` (counterfactual, cause, flip, mpe) and
:mod:`~kneehip_bn.cli.serve` (serve). What they share (parent parsers, the checks at the
door, JSON output, the error lines) is in :mod:`~kneehip_bn.cli._common`.

Cold start: the command modules import the package's own modules at their top (the front
door ``kneehip_bn/__init__.py`` has loaded them already, so this costs nothing); pandas and
matplotlib are imported inside the handlers that use them, because each takes about as
long again as the whole ``kneehip diagnose`` start (pandas) or two to three times as long
(``matplotlib.pyplot``; measured with ``python -X importtime``); only ``kneehip serve``
imports starlette (:mod:`~kneehip_bn.cli.serve`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from kneehip_bn._util.files import (
    install_signal_handlers,
    remove_leftovers,
    restore_signal_handlers,
)
from kneehip_bn._util.text import DISCLAIMER
from kneehip_bn._util.version import __version__
from kneehip_bn.cli import causal, learn, model, serve, teach
from kneehip_bn.cli._common import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    check_options,
    common_parents,
    line_limit,
    quiet_stdout,
    report_error,
)

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

#: the command groups, in the order ``kneehip --help`` lists their commands
COMMAND_GROUPS = (model, learn, teach, causal, serve)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(
        prog="kneehip",
        description="Probabilistic reasoning about co-occurring knee and hip pain with a "
                    "Bayesian network built from published evidence.\n\n" + DISCLAIMER,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: kneehip diagnose -e knee_pain=present -e hip_pain=present "
               "-e knee_effusion=present",
    )
    p.add_argument("--version", action="version", version=f"kneehip_bn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    parents = common_parents()
    for group in COMMAND_GROUPS:
        group.add_commands(sub, parents)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kneehip`` command; returns the exit status.

    Every failure is one ``error: ...`` line on stderr and exit status 1 (usage errors:
    argparse's message and status 2). Stdout closed early (``kneehip sources | head -1``)
    ends quietly with status 141 as other Unix tools do; a full disk on stdout is one
    line; SIGINT, SIGTERM and SIGHUP remove any temporary output file and exit with 130,
    143 and 129. ``KNEEHIP_DEBUG=1`` shows the traceback instead.
    """
    old_handlers = install_signal_handlers()
    debug = bool(os.environ.get("KNEEHIP_DEBUG"))
    try:
        args = build_parser().parse_args(argv)
        check_options(args)
        with line_limit(args):
            code = int(args.func(args) or EXIT_OK)
            sys.stdout.flush()  # a broken pipe or full disk shows here, not at exit
        return code
    except BrokenPipeError:
        quiet_stdout()
        if debug:
            raise
        return EXIT_BROKEN_PIPE
    except (KeyboardInterrupt, Exception) as exc:
        if debug:
            raise
        return report_error(exc)
    finally:
        remove_leftovers()
        restore_signal_handlers(old_handlers)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
