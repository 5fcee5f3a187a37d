"""The one progress bar: tqdm only when enabled, a silent stand-in otherwise."""

from __future__ import annotations

import subprocess
import sys

from kneehip_bn._util.progress import NoBar, progress_bar


def test_disabled_bar_is_silent_and_iterates(capsys):
    bar = progress_bar(enabled=False, desc="rows", total=3)
    assert isinstance(bar, NoBar)
    bar.update(2)
    bar.set_postfix({"x": 1})
    bar.close()
    assert list(progress_bar(range(3), enabled=None, desc="draws")) == [0, 1, 2]
    assert capsys.readouterr() == ("", "")


def test_enabled_bar_is_tqdm_and_counts(capsys):
    from tqdm.auto import tqdm

    bar = progress_bar(enabled=True, desc="rows", total=4, unit="rows")
    assert isinstance(bar, tqdm)
    bar.update(4)
    assert bar.n == 4 and bar.unit == "rows"
    bar.close()
    assert list(progress_bar(range(2), enabled=True, desc="draws")) == [0, 1]


def test_disabled_bar_does_not_import_tqdm():
    code = ("import sys; from kneehip_bn._util.progress import progress_bar; "
            "list(progress_bar(range(2), enabled=False, desc='x')); print('tqdm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
