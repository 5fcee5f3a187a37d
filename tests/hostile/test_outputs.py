"""Hostile and careless outputs: the one writer (kneehip_bn._util.files.atomic_write).

Each case asserts the exit status, the message, and that the inputs and every existing
output are byte-identical afterwards (same bytes, same mode, links still links).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from harden_util import one_line_error, run, snapshot

from kneehip_bn._util import files as _files
from kneehip_bn._util.files import atomic_write, atomic_write_text
from kneehip_bn.errors import KneeHipError, OutputExistsError, WriteError
from kneehip_bn.model.readwrite import export_network, read_network

BASIC = ["--model", "knee_hip_basic"]
EXISTS = r"exists: expected a new file name, found an existing (file|symbolic link)"


@pytest.fixture
def audit_csv(tmp_path_factory):
    d = tmp_path_factory.mktemp("audit")
    p = d / "audit.csv"
    import kneehip_bn as kb

    kb.simulate_audit(300, seed=4, model="knee_hip_basic").to_csv(p, index=False)
    return p


def _commands(audit):
    """(argv writing OUT, ...) for every command that writes a file."""
    return {
        "diagnose --plot": ["diagnose", *BASIC, "-e", "knee_pain=present", "--plot", "OUT.png"],
        "explain --plot": ["explain", *BASIC, "-e", "knee_pain=present", "--plot", "OUT.png"],
        "conflict --plot": ["conflict", *BASIC, "-e", "knee_pain=present", "--plot", "OUT.svg"],
        "export": ["export", *BASIC, "-o", "OUT.bif"],
        "graph": ["graph", *BASIC, "-o", "OUT.png"],
        "simulate": ["simulate", *BASIC, "--n", "10", "--seed", "1", "-o", "OUT.csv"],
        "batch": ["batch", str(audit), *BASIC, "-o", "OUT.csv"],
        "counts": ["counts", str(audit), *BASIC, "-o", "OUT.json"],
        "fit": ["fit", str(audit), *BASIC, "-o", "OUT.yaml", "--quiet"],
        "fit --plot": ["fit", str(audit), *BASIC, "-o", "NEW.yaml", "--plot", "OUT.png",
                       "--quiet"],
        "fit --report": ["fit", str(audit), *BASIC, "-o", "NEW.yaml", "--report", "OUT.json",
                         "--quiet"],
    }


@pytest.mark.parametrize("cmd", ["diagnose --plot", "explain --plot", "conflict --plot",
                                 "export", "graph", "simulate", "batch", "counts", "fit",
                                 "fit --plot", "fit --report"])
def test_every_writer_refuses_an_existing_file(cmd, audit_csv, tmp_path, capsys):
    argv = _commands(audit_csv)[cmd]
    out_name = next(a for a in argv if a.startswith("OUT."))
    out = tmp_path / out_name
    out.write_text("my notes\n")
    os.chmod(out, 0o644)
    argv = [str(out) if a == out_name else str(tmp_path / a) if a == "NEW.yaml" else a
            for a in argv]
    before, before_in = snapshot(tmp_path), snapshot(audit_csv.parent)
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert "pass --overwrite" in one_line_error(err)
    assert f"{out} exists: expected a new file name, found an existing file" in err
    assert snapshot(tmp_path) == before          # nothing written, NEW.yaml included
    assert snapshot(audit_csv.parent) == before_in


def test_overwrite_replaces_and_keeps_the_mode(tmp_path, capsys):
    out = tmp_path / "m.bif"
    out.write_text("old\n")
    os.chmod(out, 0o664)
    code, outp, _ = run(capsys, "export", *BASIC, "-o", out, "--overwrite")
    assert code == 0 and f"wrote {out}" in outp
    assert stat.S_IMODE(out.stat().st_mode) == 0o664
    assert read_network(out).check_model()
    assert [p.name for p in tmp_path.iterdir()] == ["m.bif"]  # no temp left


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_new_files_get_the_umask_mode(mask, mode, tmp_path):
    old = os.umask(mask)
    try:
        p = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == mode


def test_a_file_created_while_writing_is_never_replaced(tmp_path):
    out = tmp_path / "post.csv"

    def slow_writer(tmp):  # another run finishes first, while this one writes
        with open(tmp, "w") as fh:
            fh.write("mine\n")
        out.write_text("the other run's result\n")

    with pytest.raises(OutputExistsError, match=r"was created by another program while this "
                                                r"one was writing it.*nothing was replaced"):
        atomic_write(out, slow_writer)
    assert out.read_text() == "the other run's result\n"
    assert [p.name for p in tmp_path.iterdir()] == ["post.csv"]


def test_without_hard_links_the_name_is_reserved_exclusively(tmp_path, monkeypatch):
    import errno

    def no_link(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    p = atomic_write_text(tmp_path / "a.txt", "one")
    assert p.read_text() == "one"
    out = tmp_path / "b.txt"

    def racer(tmp):
        open(tmp, "w").write("mine")
        out.write_text("theirs")

    with pytest.raises(OutputExistsError, match="created by another program"):
        atomic_write(out, racer)
    assert out.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_a_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "x.csv"

    def boom(tmp):
        open(tmp, "w").write("half a table")
        raise RuntimeError("the writer broke")

    with pytest.raises(RuntimeError, match="the writer broke"):
        atomic_write(out, boom)
    assert list(tmp_path.iterdir()) == []
    out.write_text("kept\n")
    with pytest.raises(RuntimeError):
        atomic_write(out, boom, overwrite=True)
    assert out.read_text() == "kept\n" and [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_symlink_refused_then_written_through(tmp_path, capsys):
    real = tmp_path / "real.bif"
    real.write_text("old\n")
    link = tmp_path / "link.bif"
    link.symlink_to(real)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "export", *BASIC, "-o", link)
    assert code == 1 and "found an existing symbolic link" in one_line_error(err)
    assert snapshot(tmp_path) == before
    code, _, err = run(capsys, "export", *BASIC, "-o", link, "--overwrite")
    assert code == 0
    assert f"note: {link} is a symbolic link: writing its target {real} (the link stays)" in err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert read_network(real).check_model()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_device_is_written_into_never_replaced(tmp_path, capsys):
    before = os.stat("/dev/full")
    code, _, err = run(capsys, "export", *BASIC, "-o", "/dev/full", "--format", "bif")
    assert code == 1 and "found an existing character device" in one_line_error(err)
    code, _, err = run(capsys, "export", *BASIC, "-o", "/dev/full", "--format", "bif",
                       "--overwrite")
    assert code == 1
    assert "note: /dev/full is a character device: writing into it (not replacing it)" in err
    assert "error: cannot write /dev/full: No space left on device" in err
    after = os.stat("/dev/full")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    with pytest.raises(WriteError, match="No space left on device"):
        export_network("knee_hip_basic", "/dev/full", format="bif", overwrite=True)


def test_a_directory_is_never_an_output(tmp_path, capsys):
    d = tmp_path / "out.bif"
    d.mkdir()
    for extra in ([], ["--overwrite"]):
        code, _, err = run(capsys, "export", *BASIC, "-o", d, *extra)
        assert code == 1
        assert "out.bif" in one_line_error(err)
    assert d.is_dir() and list(d.iterdir()) == []


@pytest.mark.parametrize("argv,pattern", [
    (["diagnose", "--plot", "x.jpg2"], r"--plot x.jpg2: expected a figure file name ending in "
                                       r".*found '.jpg2'; did you mean '.jpg'\?"),
    (["graph", "-o", "net.gif"], r"--output net.gif: expected a figure file name"),
    (["explain", "-e", "knee_pain=present", "--plot", "why"], r"found no extension"),
    (["simulate", "--n", "5", "-o", "x.xlsx"], r"--output x.xlsx: expected a .csv or .parquet"),
    (["counts", "a.csv", "-o", "c.yaml"], r"--output c.yaml: expected a .json, .csv or .parquet"),
])
def test_output_formats_checked_before_any_work(argv, pattern, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv, *BASIC)
    assert code == 1
    import re

    assert re.search(pattern, one_line_error(err)), err
    assert list(tmp_path.iterdir()) == []


def test_fit_with_a_bad_plot_name_writes_no_model(audit_csv, tmp_path, capsys):
    out = tmp_path / "fitted.yaml"
    code, _, err = run(capsys, "fit", audit_csv, *BASIC, "-o", out, "--plot",
                       tmp_path / "fit.jpg2", "--quiet")
    assert code == 1 and "expected a figure file name" in one_line_error(err)
    assert list(tmp_path.iterdir()) == []


def _kneehip(*args, **kw):
    return subprocess.run([sys.executable, "-m", "kneehip_bn.cli", *args], capture_output=True,
                          text=True, timeout=120, **kw)


def test_broken_pipe_is_a_quiet_exit(tmp_path):
    cmd = f"{sys.executable} -m kneehip_bn.cli sources --model knee_hip_basic | head -1"
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 141
    assert len(r.stdout.splitlines()) == 1
    assert r.stderr == ""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_stdout_on_a_full_disk_is_one_line():
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "kneehip_bn.cli", "sources", *BASIC],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.splitlines() == ["error: cannot write the output: no space left on the "
                                     "device (standard output?)"]


def test_debug_shows_the_traceback(tmp_path):
    r = _kneehip("simulate", "--n", "5", "--seed", "-1", "-o", str(tmp_path / "s.csv"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: --seed: expected a random seed")
    r = _kneehip("simulate", "--n", "5", "--seed", "-1", "-o", str(tmp_path / "s.csv"),
                 env={**os.environ, "KNEEHIP_DEBUG": "1"})
    assert r.returncode == 1 and "Traceback" in r.stderr and "ParameterError" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_remove_leftovers_cleans_live_temp_files(tmp_path):
    seen = []

    def writer(tmp):
        seen.append(tmp)
        assert _files.remove_leftovers() == [tmp]  # as the CLI does on its way out
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "a.txt", writer)
    assert seen and not os.path.exists(seen[0]) and list(tmp_path.iterdir()) == []


def test_errors_are_the_builtin_kinds():
    assert issubclass(OutputExistsError, FileExistsError)
    assert issubclass(OutputExistsError, KneeHipError)
    assert issubclass(WriteError, OSError)
