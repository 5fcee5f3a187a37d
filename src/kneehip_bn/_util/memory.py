"""Process-wide memory settings for a short-lived command (``kneehip batch``).

Not called on import, nor by the library: a setting of the whole process belongs to the
program that owns the process.
"""

from __future__ import annotations

import sys

__all__ = ["keep_freed_memory"]


def keep_freed_memory() -> bool:
    """Let glibc keep freed blocks for reuse instead of returning them to the system.

    The batch pass allocates and frees blocks of a few MB thousands of times; by default
    glibc maps each afresh (and the kernel zero-fills every page on first touch), which
    measured 25-30% of the engine's time on a million rows. It is a
    process-wide setting, so only a process that ends after one command (``kneehip
    batch``) should call it: the memory kept is given back at exit.

    Returns
    -------
    bool
        True when the setting was applied (Linux with glibc); elsewhere a no-op.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD: blocks under 32 MB from the heap
        libc.mallopt(-1, 2**30)       # M_TRIM_THRESHOLD: keep up to 1 GB of freed heap
        libc.mallopt(-2, 64 * 2**20)  # M_TOP_PAD: grow the heap 64 MB at a time
    except (OSError, AttributeError):  # pragma: no cover (musl, macOS, Windows)
        return False
    return True
