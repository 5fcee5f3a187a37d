"""Process-wide runtime settings the numerical code asks for.

Examples
--------
>>> with single_blas_thread():
...     pass
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["single_blas_thread"]


def single_blas_thread() -> Any:
    """A context manager that limits BLAS to one thread while the engine runs: its many
    small matrix products are 2-5x slower with OpenBLAS threads competing on a busy 2-core
    machine (threadpoolctl ships with scikit-learn, a pgmpy dependency; without it, no
    limit)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
