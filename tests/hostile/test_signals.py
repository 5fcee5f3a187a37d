"""Signals mid-write: a real ``kneehip`` subprocess is sent SIGTERM, SIGHUP or SIGINT while
its temporary output file exists. It must exit at once with 128 + the signal's number and
one line, leave no temporary file and no output, and leave an existing output (replaced
with --overwrite) byte-identical."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harden_util import snapshot

pytestmark = pytest.mark.slow


def _popen(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kneehip_bn.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def big_audit(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sig")
    r = subprocess.run([sys.executable, "-m", "kneehip_bn.cli", "simulate", "--model",
                        "knee_hip_basic", "--n", "600000", "--seed", "5", "--missing", "0.1",
                        "--hide", "mechanism", "origin", "-o", "big.csv"], cwd=d,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return d / "big.csv"


def _temp_files(folder: Path, name: str) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(f".{name}.")]


def _kill_when_writing(proc: subprocess.Popen, folder: Path, name: str, sig: int) -> bool:
    """Send ``sig`` once the temporary output exists; True if it was seen in time."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if _temp_files(folder, name):
            time.sleep(0.05)  # well inside the write
            proc.send_signal(sig)
            return True
        time.sleep(0.005)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_batch_interrupted_mid_write(sig, big_audit, tmp_path):
    out = tmp_path / "post.csv"
    before_in = snapshot(big_audit.parent)
    proc = _popen("batch", str(big_audit), "--model", "knee_hip_basic", "--keep",
                  "knee_pain", "-o", str(out), cwd=tmp_path)
    seen = _kill_when_writing(proc, tmp_path, "post.csv", sig)
    _, err = proc.communicate(timeout=120)
    assert seen, "the run ended before its temporary file was seen: make the input larger"
    assert proc.returncode == 128 + sig
    name = "interrupted" if sig == signal.SIGINT else f"interrupted ({signal.Signals(sig).name})"
    assert err.strip().splitlines()[-1].startswith(name), err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []          # no output, no temporary file
    assert snapshot(big_audit.parent) == before_in


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_simulate_interrupted_keeps_the_old_output(sig, tmp_path):
    out = tmp_path / "sim.csv"
    out.write_text("an earlier result\n")
    before = snapshot(tmp_path)
    proc = _popen("simulate", "--model", "knee_hip_basic", "--n", "2000000", "--seed", "1",
                  "-o", str(out), "--overwrite", cwd=tmp_path)
    seen = _kill_when_writing(proc, tmp_path, "sim.csv", sig)
    _, err = proc.communicate(timeout=120)
    assert seen, "the run ended before its temporary file was seen"
    assert proc.returncode == 128 + sig
    assert f"interrupted ({signal.Signals(sig).name}): no output written" in err
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before            # old bytes and mode, no temp left


def test_sigterm_before_writing_is_clean(tmp_path):
    proc = _popen("simulate", "--model", "knee_hip_basic", "--n", "3000000", "--seed", "1",
                  "-o", "s.csv", cwd=tmp_path)
    time.sleep(1.5)  # importing and sampling: nothing written yet
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("finished within 1.5 s on this machine")
    assert proc.returncode == 143 and "Traceback" not in err
    assert not (tmp_path / "s.csv").exists() and not _temp_files(tmp_path, "s.csv")


def test_handlers_are_restored_after_main():
    from kneehip_bn.cli import main

    old = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    assert main(["models", "--json"]) == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == old
