"""What the ``kneehip`` commands share (:mod:`kneehip_bn.cli._common`): the checks at the
door, the error lines and exit statuses, and the parser every command group adds to."""

from __future__ import annotations

import argparse
import errno
import os

import pytest

from basic import main_basic
from kneehip_bn.cli import EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_OK, EXIT_USAGE, build_parser
from kneehip_bn.cli._common import check_options, line_limit, report_error
from kneehip_bn.errors import DataError, ParameterError

COMMANDS = [
    "diagnose", "query", "export", "graph", "validate", "sources", "models",
    "fit", "check", "batch", "simulate", "counts", "merge-counts",
    "explain", "what-if", "next-test", "sensitivity", "conflict",
    "counterfactual", "cause", "flip", "mpe", "serve",
]


def test_every_command_group_adds_its_commands_in_order():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == COMMANDS
    assert (EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_BROKEN_PIPE) == (0, 1, 2, 141)


@pytest.mark.parametrize("argv, message", [
    (["serve", "--port", "0"], "--port: expected a port between 1 and 65535, found 0"),
    (["serve", "--port", "70000"], "--port: expected a port between 1 and 65535, found 70000"),
    (["counts", "a.csv", "--output", "c.json", "--min-count", "0"],
     "--min-count: expected a whole number of rows of at least 1, found 0"),
    (["counts", "a.csv", "--output", "c.json", "--threads", "0"],
     "--threads: expected a positive number, found 0"),
    (["batch", "a.csv", "--output", "p.csv", "--max-line-bytes", "0"],
     "--max-line-bytes: expected a positive whole number of bytes (under 10**15), found 0"),
    (["check", "a.csv", "--alpha", "nan"],
     "--alpha: expected a false discovery rate with 0 < alpha < 1, found nan"),
    (["next-test", "--top", "0"], "--top: expected a positive number of rows to show, found 0"),
    (["conflict", "--simulate", "-1"],
     "--simulate: expected a number of simulated cases from 0 to 10,000,000, found -1"),
    (["diagnose", "--plot", ""], "--plot: expected a value, found an empty string"),
])
def test_numbers_are_checked_at_the_door(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a.csv does not exist: the option is refused first
    assert main_basic(argv) == 1
    assert capsys.readouterr().err == f"error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_check_options_names_the_option():
    with pytest.raises(ParameterError, match=r"^--seed: expected a random seed .*found -1$"):
        check_options(argparse.Namespace(command="simulate", seed=-1))
    with pytest.raises(ParameterError, match="found a 40-digit number"):
        check_options(argparse.Namespace(command="simulate", seed=10**39))
    with pytest.raises(ParameterError, match=r"^NODE: expected a value"):
        check_options(argparse.Namespace(command="query", node=" "))
    check_options(argparse.Namespace(command="fit", seed=0, alpha=None, quiet=True))


def test_line_limit_sets_the_variable_only_while_the_command_runs(monkeypatch):
    monkeypatch.setenv("KNEEHIP_MAX_LINE_BYTES", "77")
    with line_limit(argparse.Namespace(max_line_bytes=4096)):
        assert os.environ["KNEEHIP_MAX_LINE_BYTES"] == "4096"
    assert os.environ["KNEEHIP_MAX_LINE_BYTES"] == "77"
    monkeypatch.delenv("KNEEHIP_MAX_LINE_BYTES")
    with pytest.raises(RuntimeError), line_limit(argparse.Namespace(max_line_bytes=10)):
        raise RuntimeError
    assert "KNEEHIP_MAX_LINE_BYTES" not in os.environ
    with line_limit(argparse.Namespace()):
        assert "KNEEHIP_MAX_LINE_BYTES" not in os.environ


@pytest.mark.parametrize("exc, code, line", [
    (DataError("audit file a.csv: bad"), 1, "error: audit file a.csv: bad"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "x.csv"), 1,
     "error: x.csv: No such file or directory"),
    (MemoryError(), 1, "error: out of memory: the model or the data is too large for this "
                       "machine (see KNEEHIP_MAX_TABLE_BYTES and --chunksize)"),
    (RecursionError(), 1, "error: the input is nested too deeply to process"),
    (KeyboardInterrupt(), 130, "interrupted: no output written"),
    (ZeroDivisionError("boom"), 1, "error: unexpected ZeroDivisionError: boom (this is a bug in "
                                   "kneehip_bn: please report it; KNEEHIP_DEBUG=1 shows the "
                                   "traceback)"),
])
def test_report_error_is_one_line_and_a_status(exc, code, line, capsys):
    assert report_error(exc) == code
    out = capsys.readouterr()
    assert out.err == line + "\n" and out.out == ""
