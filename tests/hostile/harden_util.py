"""Helpers of the hostile-input tests: run the CLI in-process, snapshot files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kneehip_bn.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``kneehip ARGV`` in-process; (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: str | os.PathLike[str]) -> dict[str, tuple[bytes | str, int]]:
    """Every entry under ``folder``: its bytes (or link target) and mode."""
    snap: dict[str, tuple[bytes | str, int]] = {}
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            p = Path(root, name)
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                snap[str(p)] = (os.readlink(p), st.st_mode)
            elif stat.S_ISREG(st.st_mode):
                snap[str(p)] = (p.read_bytes(), st.st_mode)
            else:
                snap[str(p)] = (b"", st.st_mode)
    return snap


def one_line_error(err: str) -> str:
    """The stderr of a failed command: exactly one ``error:`` line, no traceback."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error: "), err
    return lines[0]
