"""``keep_freed_memory``: a process-wide setting, so tested in a process of its own."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt (Linux)")
def test_keep_freed_memory_applies_on_linux():
    code = "from kneehip_bn._util.memory import keep_freed_memory; print(keep_freed_memory())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in ("True", "False")  # False on a Linux without glibc (musl)
