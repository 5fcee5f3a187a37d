"""The one progress bar of every long loop: tqdm when asked for, imported only then.

A disabled bar is a :class:`NoBar`, which has the few methods the loops call, so a run
without a bar never imports tqdm (it is not on the cold-start path of the command).

Examples
--------
>>> bar = progress_bar(enabled=False, desc="rows", total=10)
>>> bar.update(3); bar.close()
>>> [i for i in progress_bar(range(3), enabled=False, desc="draws")]
[0, 1, 2]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["NoBar", "progress_bar"]


class NoBar:
    """Stands in for a disabled tqdm bar: iterates, counts nothing, shows nothing."""

    def __init__(self, iterable: Iterable[Any] | None = None) -> None:
        self.iterable = iterable

    def __iter__(self) -> Iterator[Any]:
        return iter(self.iterable if self.iterable is not None else ())

    def __enter__(self) -> NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Ignored."""

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        """Ignored."""

    def close(self) -> None:
        """Ignored."""


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool | None, desc: str,
                 total: int | None = None, unit: str = "it") -> Any:
    """A tqdm bar (``tqdm.auto``, cleared when done), or a :class:`NoBar` when not ``enabled``.

    Parameters
    ----------
    iterable : iterable, optional
        Wrapped, as ``tqdm(iterable)``; without it, call ``update(n)`` and ``close()``.
    enabled : bool or None
        Show the bar (``None`` and ``False``: no bar).
    desc : str
        The bar's label.
    total : int, optional
        Expected number of steps (default: ``len(iterable)`` when it has one).
    unit : str, default "it"
    """
    if not enabled:
        return NoBar(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False)
