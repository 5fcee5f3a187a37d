"""What every ``kneehip`` command shares: options, checks at the door, output, errors.

- :func:`common_parents`: the parent parsers ``--model/--set``, ``-e/--do``, ``--json``
  and ``--plot`` that the commands combine;
- :func:`check_options`: every number and string checked before any work, one line each
  (:data:`INT_OPTIONS`, :data:`FLOAT_OPTIONS`);
- :func:`load_for_cli`, :func:`emit_json`, :func:`check_output`,
  :func:`check_plot_option` and :func:`save_plot`: the steps of a handler;
- :func:`report_error`: an exception becomes one ``error: ...`` line and an exit status.

>>> parents = common_parents()
>>> sorted(parents)
['evidence', 'json', 'model', 'plot']
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import sys
from collections.abc import Iterator
from typing import Any

from kneehip_bn._util.files import Terminated, check_new_output
from kneehip_bn._util.jsonclean import json_clean
from kneehip_bn.errors import KneeHipError, ParameterError
from kneehip_bn.io.csv_source import MAX_LINE_ENV
from kneehip_bn.model.edit import apply_overrides
from kneehip_bn.model.yamlio import load_spec
from kneehip_bn.teaching.plots import figure_format, save_figure

__all__ = [
    "EXIT_BROKEN_PIPE", "EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "FLOAT_OPTIONS", "INT_OPTIONS",
    "MAX_SIMULATE_ROWS", "add_overwrite", "check_options", "check_output", "check_plot_option",
    "common_parents", "emit_json", "line_limit", "load_for_cli", "quiet_stdout", "report_error",
    "save_plot",
]

#: exit status of a command that answered
EXIT_OK = 0
#: exit status of every failure reported as one ``error: ...`` line
EXIT_ERROR = 1
#: exit status of a usage error (argparse's own)
EXIT_USAGE = 2
#: exit status when standard output was closed early (``kneehip sources | head -1``):
#: 128 + SIGPIPE, as other Unix tools end; a signal N (SIGINT, SIGTERM, SIGHUP) is 128 + N
EXIT_BROKEN_PIPE = 141


# ---------------------------------------------------------------------- options
def common_parents() -> dict[str, argparse.ArgumentParser]:
    """The parent parsers: ``model`` (--model, --set), ``evidence`` (-e, --do), ``json``
    and ``plot``."""
    model = argparse.ArgumentParser(add_help=False)
    g = model.add_argument_group("model")
    g.add_argument("--model", metavar="PATH|NAME", default=None,
                   help="model file, or a shipped model's name (knee_hip, the default; "
                        "knee_hip_basic); `kneehip models` lists them")
    g.add_argument("--set", dest="overrides", metavar="EDIT", action="append", default=[],
                   help="change a number for this run: NODE=P, NODE.STATE=P, "
                        "NODE[PARENT=STATE].STATE=P, NODE.leak=P, NODE.link.PARENT[:STATE]=P "
                        "(repeatable)")
    evidence = argparse.ArgumentParser(add_help=False)
    e = evidence.add_argument_group("evidence")
    e.add_argument("-e", "--evidence", metavar="NAME=STATE", action="append", default=[],
                   help="an observed finding, test or context (repeatable)")
    e.add_argument("--do", metavar="NAME=STATE", action="append", default=[],
                   help="an intervention: set NAME to STATE by graph surgery (repeatable)")
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="print machine-readable JSON")
    plot = argparse.ArgumentParser(add_help=False)
    plot.add_argument("--plot", metavar="PATH", default=None,
                      help="also save a figure (PNG, SVG or PDF by extension)")
    return {"model": model, "evidence": evidence, "json": out, "plot": plot}


def add_overwrite(p: argparse.ArgumentParser, help: str = "replace an existing --plot file",
                  ) -> None:
    """Add ``--overwrite`` to ``p``."""
    p.add_argument("--overwrite", action="store_true", help=help)


#: largest ``simulate --n`` (about 0.3 GB of memory per million patients)
MAX_SIMULATE_ROWS = 10_000_000
#: option -> (smallest, largest, what it is) for whole-number options of every command
INT_OPTIONS: dict[str, tuple[int, int, str]] = {
    "seed": (0, 2**64 - 1, "a random seed (a whole number from 0 to 2**64 - 1)"),
    "n": (1, MAX_SIMULATE_ROWS, f"a number of patients from 1 to {MAX_SIMULATE_ROWS:,} "
                                "(larger synthetic audits: several runs with other seeds)"),
    "chunksize": (1, 100_000_000, "a number of rows read at a time, from 1 to 100,000,000"),
    "draws": (0, 10_000_000, "a number of draws from 0 to 10,000,000"),
    "simulate": (0, 10_000_000, "a number of simulated cases from 0 to 10,000,000"),
    "top": (1, 1_000_000, "a positive number of rows to show"),
    "max_iter": (1, 1_000_000, "a positive number of EM iterations"),
    "max_given": (0, 64, "a conditioning-set size from 0 to 64"),
    "min_count": (1, 2**63 - 1, "a whole number of rows of at least 1"),
    "threads": (1, 2**31 - 1, "a positive number"),
    "port": (1, 65535, "a port between 1 and 65535"),
    "max_line_bytes": (1, 10**15 - 1, "a positive whole number of bytes (under 10**15)"),
}
#: option -> (low, high, low included, high included, what it is) for number options
FLOAT_OPTIONS: dict[str, tuple[float, float, bool, bool, str]] = {
    "alpha": (0.0, 1.0, False, False, "a false discovery rate with 0 < alpha < 1"),
    "holdout": (0.0, 1.0, True, False, "a fraction of rows held out, 0 <= holdout < 1"),
    "missing": (0.0, 1.0, True, True, "a fraction of blank cells from 0 to 1"),
    "diagnosis_noise": (0.0, 1.0, True, True, "an error rate from 0 to 1"),
    "tol": (0.0, float("inf"), False, False, "a positive tolerance"),
    "strength": (0.0, float("inf"), False, False, "a positive equivalent sample size"),
}
_OPTION_NAMES = {"overrides": "--set", "evidence": "-e/--evidence", "data": "DATA",
                 "model_file": "MODEL", "node": "NODE"}


def _option(dest: str, args: argparse.Namespace) -> str:
    if dest == "node" and getattr(args, "command", None) != "query":
        return "--node"
    return _OPTION_NAMES.get(dest, "--" + dest.replace("_", "-"))


def check_options(args: argparse.Namespace) -> None:
    """Numbers and strings checked at the door, for every command, before any work.

    Seeds, sizes, fractions and rates must be in range (:data:`INT_OPTIONS`,
    :data:`FLOAT_OPTIONS`), numbers finite, and no option or argument an empty string;
    a problem is a :class:`~kneehip_bn.errors.ParameterError` naming the option.

    >>> check_options(argparse.Namespace(command="fit", alpha=1.5))
    Traceback (most recent call last):
    ...
    kneehip_bn.errors.ParameterError: --alpha: expected a false discovery rate with 0 < alpha < 1, found 1.5
    """
    for dest, value in vars(args).items():
        if dest in ("func", "command") or value is None or isinstance(value, bool):
            continue
        opt = _option(dest, args)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and not v.strip():
                raise ParameterError(f"{opt}: expected a value, found an empty string")
        if dest in INT_OPTIONS and isinstance(value, int):
            lo, hi, what = INT_OPTIONS[dest]
            if not lo <= value <= hi:
                found = str(value) if len(str(value)) <= 30 else f"a {len(str(value))}-digit number"
                raise ParameterError(f"{opt}: expected {what}, found {found}")
        if dest in FLOAT_OPTIONS and isinstance(value, (int, float)):
            lo, hi, lo_in, hi_in, what = FLOAT_OPTIONS[dest]
            ok = math.isfinite(value) and (lo <= value if lo_in else lo < value) and \
                (value <= hi if hi_in else value < hi)
            if not ok:
                raise ParameterError(f"{opt}: expected {what}, found {value:g}")


@contextlib.contextmanager
def line_limit(args: argparse.Namespace) -> Iterator[None]:
    """``--max-line-bytes`` in force for the command: the audit readers' documented
    environment variable (``KNEEHIP_MAX_LINE_BYTES``) set while it runs, then restored."""
    value = getattr(args, "max_line_bytes", None)
    if value is None:
        yield
        return
    old = os.environ.get(MAX_LINE_ENV)
    os.environ[MAX_LINE_ENV] = str(value)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(MAX_LINE_ENV, None)
        else:
            os.environ[MAX_LINE_ENV] = old


# ---------------------------------------------------------------------- handler steps
def load_for_cli(args: argparse.Namespace) -> Any:
    """The ModelSpec named by ``--model`` with ``--set`` overrides applied."""
    spec = load_spec(args.model)
    if getattr(args, "overrides", None):
        spec = apply_overrides(spec, args.overrides)
    return spec


def emit_json(obj: Any) -> None:
    """Print JSON (NaN/inf become null)."""
    print(json.dumps(json_clean(obj), indent=2))


def check_output(path: str, overwrite: bool, option: str = "--output") -> None:
    """Fail before any work when the writer would refuse ``path`` (it checks again)."""
    if path == "":
        raise ParameterError(f"{option}: expected a file name, found an empty string")
    check_new_output(path, overwrite)


def check_plot_option(args: argparse.Namespace, option: str = "plot") -> None:
    """``--plot`` (or another figure option): a known figure extension, and a new file
    unless ``--overwrite``, checked before any work so that nothing is half done."""
    path = getattr(args, option, None)
    if path is None:
        return
    figure_format(path, "--" + option if option == "plot" else "--output")
    check_new_output(path, getattr(args, "overwrite", False))


def save_plot(fig: Any, path: str, overwrite: bool = False, dpi: int = 130) -> None:
    """Save a figure with the one atomic writer, close it, and say so on stderr."""
    save_figure(fig, path, overwrite=overwrite, dpi=dpi)
    print(f"figure written to {path}", file=sys.stderr)


def pyplot() -> Any:
    """``matplotlib.pyplot``, on the Agg backend unless pyplot is already in use."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------------- errors
def quiet_stdout() -> None:
    """Point stdout at /dev/null so that Python's flush at exit cannot fail again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):  # pragma: no cover (no real stdout)
        pass


def _error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return EXIT_ERROR


def _print_other_problems(exc: Exception) -> None:
    """After the first line, list the other errors an audit report holds (one per line)."""
    report = getattr(exc, "report", None)
    errors = getattr(report, "errors", None)
    if errors is None or len(errors) < 2:
        return
    for msg in list(errors["message"])[1:]:
        print(f"  also: {msg}", file=sys.stderr)


def _os_error(exc: OSError) -> int:
    if exc.errno == errno.EPIPE:
        quiet_stdout()
        return EXIT_BROKEN_PIPE
    name = exc.filename if exc.filename is not None else None
    if name is None and exc.errno == errno.ENOSPC:
        quiet_stdout()
        return _error("cannot write the output: no space left on the device (standard "
                      "output?)")
    why = exc.strerror or str(exc)
    return _error(f"{name}: {why}" if name is not None else why)


def report_error(exc: BaseException) -> int:
    """Print the one line that says what went wrong (stderr); return the exit status.

    A :class:`~kneehip_bn.errors.KneeHipError` is its message (with ``  also: ...`` lines
    for the other problems of an audit report); an ``OSError`` names the file; an
    interruption says that no output was written (status 128 + the signal); anything
    else is a bug, still one line, pointing at ``KNEEHIP_DEBUG=1``.
    """
    if isinstance(exc, KeyboardInterrupt):
        if isinstance(exc, Terminated):
            print(f"interrupted ({exc}): no output written", file=sys.stderr)
            return 128 + exc.signum
        print("interrupted: no output written", file=sys.stderr)
        return 130
    if isinstance(exc, KneeHipError):
        code = _error(str(exc))
        _print_other_problems(exc)
        return code
    if isinstance(exc, OSError):
        return _os_error(exc)
    if isinstance(exc, MemoryError):
        return _error("out of memory: the model or the data is too large for this machine "
                      "(see KNEEHIP_MAX_TABLE_BYTES and --chunksize)")
    if isinstance(exc, RecursionError):
        return _error("the input is nested too deeply to process")
    return _error(f"unexpected {type(exc).__name__}: {str(exc)[:300]} (this is a bug in "
                  "kneehip_bn: please report it; KNEEHIP_DEBUG=1 shows the traceback)")
