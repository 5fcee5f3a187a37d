"""The one writer of every output file: atomic, no silent overwrite, no leftovers.

:func:`atomic_write` is used for model files, posteriors, counts, exports, reports and
figures. It

- **refuses to overwrite** an existing path unless ``overwrite=True`` (CLI:
  ``--overwrite``), raising :class:`~kneehip_bn.errors.OutputExistsError` (the only
  place that raises it);
- **re-checks at the moment of replacing**: without ``overwrite`` the finished temporary
  file is *hard-linked* to the output name, which fails if the name exists, so two runs
  writing one file can never silently replace each other (the second is refused and
  nothing of the first is lost). On a file system without hard links it falls back to
  reserving the name with ``O_CREAT | O_EXCL`` and then renaming over the reservation;
- **writes regular files only**: an existing symlink, device, FIFO or directory is
  refused as "exists" without ``overwrite``; with ``overwrite=True`` a symlink is
  written *through* (its target file is replaced, the link stays) and a device or FIFO
  is written *into* (never replaced by a regular file), and a note on stderr says so; a
  directory is always refused;
- **keeps the mode**: a new file gets ``0o666`` minus the umask (as ``open()`` would give
  it, not ``mkstemp``'s ``0o600``); a replaced file keeps its own mode;
- **never leaves a partial output**: the content goes to a temporary file next to the
  output (``.NAME.XXXXXXXX.tmp.EXT``), is flushed to disk, then linked or renamed; the
  temporary file is removed on any exit: an exception, ``KeyboardInterrupt``, and
  SIGTERM/SIGHUP once :func:`install_signal_handlers` has turned them into an exception
  (the ``kneehip`` command does this). :func:`remove_leftovers` removes any temporary file
  still open (the CLI calls it on its way out).

Examples
--------
>>> import os, tempfile
>>> from kneehip_bn._util.files import atomic_write, atomic_write_text
>>> d = tempfile.mkdtemp()
>>> p = atomic_write_text(os.path.join(d, "a.txt"), "hello\\n")
>>> atomic_write_text(p, "again\\n")
Traceback (most recent call last):
...
kneehip_bn.errors.OutputExistsError: ... exists: expected a new file name, found an existing file; pass --overwrite (in Python: overwrite=True) to replace it
>>> _ = atomic_write(p, lambda tmp: open(tmp, "w").write("again\\n"), overwrite=True)
>>> open(p).read()
'again\\n'
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kneehip_bn.errors import KneeHipError, OutputExistsError, WriteError

__all__ = [
    "Terminated",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_new_output",
    "install_signal_handlers",
    "remove_leftovers",
    "restore_signal_handlers",
]

_LIVE: set[str] = set()  # temporary files being written (removed on any exit)
_LOCK = threading.Lock()
_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO,
                errno.EFBIG, errno.EISDIR, errno.ENOENT, errno.ENOTDIR}
_NO_LINK = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK, errno.EXDEV,
            getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


_KINDS = ((stat.S_ISREG, "file"), (stat.S_ISLNK, "symbolic link"),
          (stat.S_ISDIR, "directory"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "FIFO (named pipe)"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "special file")


def _exists_error(p: Path, kind: str) -> OutputExistsError:
    return OutputExistsError(
        f"{p} exists: expected a new file name, found an existing {kind}; pass "
        "--overwrite (in Python: overwrite=True) to replace it")


def _lstat(p: Path) -> os.stat_result | None:
    try:
        return os.lstat(p)
    except FileNotFoundError:
        return None


def check_new_output(path: str | os.PathLike[str], overwrite: bool = False) -> None:
    """Fail early (before any work) when :func:`atomic_write` would refuse ``path``.

    The same rules and messages as the writer; the writer checks again when it replaces.
    """
    p = Path(path)
    st = _lstat(p)
    if st is None:
        return
    if not overwrite:
        raise _exists_error(p, _kind(st.st_mode))
    real = Path(os.path.realpath(p))
    rst = _lstat(real)
    if rst is not None and stat.S_ISDIR(rst.st_mode):
        raise KneeHipError(f"{p}: expected a file name for the output, found a directory")


def _umask_mode() -> int:
    with _LOCK:  # os.umask can only be read by setting it
        old = os.umask(0o022)
        os.umask(old)
    return 0o666 & ~old


def _note(msg: str) -> None:
    print(f"note: {msg}", file=sys.stderr)


def atomic_write(
    path: str | os.PathLike[str],
    write_fn: Callable[[str], Any],
    overwrite: bool = False,
) -> Path:
    """Write an output file through ``write_fn(temp_path)`` atomically; return its path.

    Parameters
    ----------
    path
        The output file.
    write_fn
        Called with the path of a fresh temporary file next to ``path`` (same extension,
        so writers that look at it pick the right format); it writes the whole content
        there (it may reopen the path with ``open(tmp, "w")``, pyarrow, matplotlib...).
    overwrite
        Replace an existing file (see the module docstring for symlinks and devices).

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is false, or another program created it while
        this one was writing (nothing is replaced then).
    KneeHipError
        ``path`` is a directory.
    WriteError
        The file system refused the write (full disk, permissions: the operating
        system's reason is in the message); an ``OSError`` too.
    """
    p = Path(path)
    st = _lstat(p)
    target = p
    if st is not None:
        if not overwrite:
            raise _exists_error(p, _kind(st.st_mode))
        if stat.S_ISLNK(st.st_mode):
            target = Path(os.path.realpath(p))
            _note(f"{p} is a symbolic link: writing its target {target} (the link stays)")
            st = _lstat(target)
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise KneeHipError(f"{p}: expected a file name for the output, found a directory")
        if st is not None and not stat.S_ISREG(st.st_mode):
            _note(f"{target} is a {_kind(st.st_mode)}: writing into it (not replacing it)")
            return _write_special(p, target, write_fn)
    mode = (st.st_mode & 0o7777) if st is not None else _umask_mode()
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix,
                                   dir=parent)
    except OSError as exc:
        raise _os_error(p, exc) from None
    with _LOCK:
        _LIVE.add(tmp)
    try:
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        try:
            write_fn(tmp)
        except OSError as exc:  # the disk's refusal in one line; other errors as they are
            if exc.errno in _DISK_ERRORS and not isinstance(exc, KneeHipError):
                raise _os_error(p, exc) from exc
            raise
        try:
            _fsync(tmp)
            if overwrite:
                os.replace(tmp, target)
            else:
                _link_new(tmp, target, p)
        except OutputExistsError:
            raise
        except OSError as exc:
            raise _os_error(p, exc) from exc
    finally:
        with _LOCK:
            _LIVE.discard(tmp)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return p


def _link_new(tmp: str, target: Path, shown: Path) -> None:
    """Give ``tmp`` the name ``target`` only if nothing has that name (atomically)."""
    raced = OutputExistsError(
        f"{shown} was created by another program while this one was writing it: expected a "
        "new file name, found an existing file; nothing was replaced (pass --overwrite, in "
        "Python overwrite=True, to replace it)")
    try:
        os.link(tmp, target)
        return
    except FileExistsError:
        raise raced from None
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
    # no hard links here: reserve the name, then rename over the reservation
    try:
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise raced from None
    os.close(fd)
    os.replace(tmp, target)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_special(shown: Path, target: Path, write_fn: Callable[[str], Any]) -> Path:
    """Write into a device or FIFO the user named with ``overwrite=True``."""
    try:
        write_fn(str(target))
    except OSError as exc:
        if exc.errno in _DISK_ERRORS and not isinstance(exc, KneeHipError):
            raise _os_error(shown, exc) from exc
        raise
    return shown


def _os_error(p: Path, exc: OSError) -> WriteError:
    why = exc.strerror or str(exc)
    err = WriteError(f"cannot write {p}: {why}; nothing was written there")
    err.errno = exc.errno
    return err


def atomic_write_text(path: str | os.PathLike[str], text: str, overwrite: bool = False,
                      encoding: str = "utf-8") -> Path:
    """Write text atomically (:func:`atomic_write` rules)."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding=encoding, newline="") as fh:
            fh.write(text)

    return atomic_write(path, write, overwrite=overwrite)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes,
                       overwrite: bool = False) -> Path:
    """Write bytes atomically (:func:`atomic_write` rules)."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return atomic_write(path, write, overwrite=overwrite)


def remove_leftovers() -> list[str]:
    """Remove the temporary files of writes still under way (e.g. in a thread when the
    process is told to stop); returns their paths."""
    with _LOCK:
        live = sorted(_LIVE)
        _LIVE.clear()
    for t in live:
        try:
            os.unlink(t)
        except OSError:
            pass
    return live


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so that cleanup code runs.

    A ``KeyboardInterrupt`` subclass: every ``except BaseException``/``finally`` that
    cleans up after Ctrl-C also cleans up after these. ``signum`` is the signal.
    """

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def install_signal_handlers() -> dict[int, Any]:
    """Turn SIGTERM and SIGHUP into :class:`Terminated` (main thread only; once: a second
    signal during cleanup is ignored so that the cleanup finishes).

    Returns the previous handlers, for :func:`restore_signal_handlers`.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: Any) -> None:
        for s in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        raise Terminated(signum)

    old = {}
    for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if s is not None:
            old[s] = signal.signal(s, handler)
    return old


def restore_signal_handlers(old: dict[int, Any]) -> None:
    """Put back the handlers :func:`install_signal_handlers` replaced."""
    for s, h in old.items():
        signal.signal(s, h if h is not None else signal.SIG_DFL)
