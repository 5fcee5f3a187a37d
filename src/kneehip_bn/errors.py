"""One small error hierarchy: every message says where, what was expected, what was found.

All errors derive from :class:`KneeHipError`. Subclasses are also the built-in
exception a Python user would try first (``ValueError``, ``KeyError``), so code written
against plain pandas/pgmpy habits still catches them.

Examples
--------
>>> from kneehip_bn.errors import UnknownNameError
>>> err = UnknownNameError.for_name("node", "hip_pian", ["hip_pain", "knee_pain"])
>>> print(err)
unknown node 'hip_pian': expected one of hip_pain, knee_pain; did you mean 'hip_pain'?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "DataError",
    "EvidenceError",
    "FrozenSpecError",
    "ImpossibleEvidenceError",
    "KneeHipError",
    "ModelFileError",
    "ModelTooLargeError",
    "NotFittedError",
    "OutputExistsError",
    "ParameterError",
    "Problem",
    "UnknownNameError",
    "WriteError",
    "closest",
]


def closest(name: str, choices: Iterable[str]) -> str | None:
    """Return the choice most similar to ``name``, or ``None`` when nothing is close.

    >>> closest("kne_pain", ["knee_pain", "hip_pain"])
    'knee_pain'
    """
    matches = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return matches[0] if matches else None


@dataclass(frozen=True)
class Problem:
    """One problem found in an input: where, what was expected, what was found, a hint.

    The one record of a problem: :class:`ModelFileError` keeps its problems as records
    (``err.records``) and shows each as one line, ``str(problem)``.

    Parameters
    ----------
    where : str
        The place, as a path into the input (``nodes.knee_pain.noisy_or.leak.p``).
    expected : str
        What a valid input has there.
    found : str
        What this input has there, as shown to the user (the model file shows the
        ``repr`` of the value, cut short).
    hint : str, optional
        What to do about it (``did you mean 'present'?``).
    line : int, optional
        The line of the input file, when known.

    Examples
    --------
    >>> print(Problem("nodes.a.states", "unique labels", "['x', 'x']", line=12))
    at nodes.a.states (line 12): expected unique labels, found ['x', 'x']
    """

    where: str
    expected: str
    found: str
    hint: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        at = f"{self.where} (line {self.line})" if self.line else self.where
        msg = f"at {at}: expected {self.expected}, found {self.found}"
        return f"{msg}; {self.hint}" if self.hint else msg


class KneeHipError(Exception):
    """Base class of every error kneehip_bn raises on purpose."""


class ModelFileError(KneeHipError, ValueError):
    """A model file (or model specification) is malformed or inconsistent.

    ``problems`` lists every problem found, each as one readable line; ``records`` holds
    those that came as :class:`Problem` records (every problem of a model file does).
    """

    def __init__(self, problems: Sequence[str | Problem] | str | Problem,
                 source: str | None = None):
        if isinstance(problems, (str, Problem)):
            problems = [problems]
        self.records = [p for p in problems if isinstance(p, Problem)]
        self.problems = [str(p) for p in problems]
        self.source = source
        head = f"model file {source}" if source else "model specification"
        if len(self.problems) == 1:
            msg = f"{head}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            msg = f"{head} has {len(self.problems)} problems:\n{lines}"
        super().__init__(msg)


class UnknownNameError(KneeHipError, KeyError):
    """An unknown node, state, table or column name.

    Unlike a bare ``KeyError`` its ``str()`` is the readable message, not a repr.
    """

    def __init__(self, message: str, name: str | None = None, choices: Sequence[str] = ()):
        self.message = message
        self.name = name
        self.choices = list(choices)
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return self.message

    @classmethod
    def for_name(
        cls, kind: str, name: str, choices: Iterable[str], where: str | None = None
    ) -> UnknownNameError:
        """Build the standard message: unknown KIND 'name', the valid ones, the closest."""
        choices = [str(c) for c in choices]
        if len(choices) > 8:
            choices = sorted(choices)
        shown = ", ".join(choices) if len(choices) <= 40 else ", ".join(choices[:40]) + ", ..."
        guess = closest(name, choices)
        hint = f"did you mean '{guess}'?" if guess else None
        prefix = f"{where}: " if where else ""
        msg = f"{prefix}unknown {kind} '{name}': expected one of {shown}"
        if hint:
            msg += f"; {hint}"
        return cls(msg, name=name, choices=choices)


class EvidenceError(KneeHipError, ValueError):
    """Evidence that cannot be used: conflicting, malformed, or on an intervened node."""


class ImpossibleEvidenceError(EvidenceError):
    """The model gives the evidence probability zero, so no posterior exists.

    Build it with :meth:`for_evidence` (one set of findings) or :meth:`for_rows` (rows of
    a batch), so that every "impossible" reads alike.

    >>> print(ImpossibleEvidenceError.for_rows([3, 7], 10))  # doctest: +NORMALIZE_WHITESPACE
    2 of 10 evidence rows are impossible: they have probability zero under the model,
    first rows 3, 7; expected rows the model allows; check those rows for contradictory
    findings, or pass on_impossible='nan'
    """

    @classmethod
    def for_evidence(cls, evidence: object = None, do: object = None,
                     hint: str = "check for contradictory findings or a zero in a table"
                     ) -> ImpossibleEvidenceError:
        """The error for one set of findings ``{node: state}`` (and interventions ``do``).

        >>> print(ImpossibleEvidenceError.for_evidence({"a": "x"}, {"b": "y"}))
        impossible evidence under do(b=y): the model gives probability zero to a=x; expected findings the model allows; check for contradictory findings or a zero in a table
        """
        ev = ", ".join(f"{k}={v}" for k, v in dict(evidence or {}).items()) or "(none)"
        dov = dict(do or {})
        extra = f" under do({', '.join(f'{k}={v}' for k, v in dov.items())})" if dov else ""
        return cls(f"impossible evidence{extra}: the model gives probability zero to {ev}; "
                   f"expected findings the model allows; {hint}")

    @classmethod
    def for_rows(cls, rows: Sequence[int], n: int, under: str = "the model",
                 hint: str = "check those rows for contradictory findings, or pass "
                             "on_impossible='nan'") -> ImpossibleEvidenceError:
        """The error for the impossible ``rows`` (row numbers) of a batch of ``n`` rows."""
        rows = [int(r) for r in rows]
        first = ", ".join(str(r) for r in rows[:5])
        return cls(f"{len(rows)} of {n} evidence rows are impossible: they have probability "
                   f"zero under {under}, first rows {first}; expected rows the model allows; "
                   f"{hint}")


class DataError(KneeHipError, ValueError):
    """Audit data that cannot be used as given (unknown codes, empty tables, ...)."""

    def __init__(self, message: str, report: object | None = None):
        self.report = report
        super().__init__(message)


class NotFittedError(KneeHipError, AttributeError):
    """An estimator was used before ``fit`` was called."""


class ParameterError(KneeHipError, ValueError):
    """A bad parameter or option value (a seed, a size, ``alpha``, a chunk size...).

    >>> from kneehip_bn.errors import ParameterError
    >>> isinstance(ParameterError("--alpha: expected 0 < alpha < 1, found 2"), ValueError)
    True
    """

    @classmethod
    def check_choice(cls, value: object, where: str, allowed: Sequence[str]) -> str:
        """``value`` when it is one of ``allowed``; otherwise raise the error.

        >>> ParameterError.check_choice("nan", "on_impossible", ("raise", "nan"))
        'nan'
        >>> ParameterError.check_choice("x", "on_impossible", ("raise", "nan"))
        Traceback (most recent call last):
        ...
        kneehip_bn.errors.ParameterError: on_impossible: expected one of 'raise', 'nan', found 'x'
        """
        if value not in allowed:
            raise cls(f"{where}: expected one of {', '.join(map(repr, allowed))}, "
                      f"found {value!r}")
        return str(value)


class OutputExistsError(KneeHipError, FileExistsError):
    """The output file exists and ``overwrite=True`` (CLI: ``--overwrite``) was not given,
    or it appeared while this run was writing. Raised by
    :func:`kneehip_bn._util.files.atomic_write`, the one writer of every output (and by
    ``PriorFitter.save`` for the input model file itself)."""


class WriteError(KneeHipError, OSError):
    """An output could not be written (full disk, permissions, a directory in the way);
    the operating system's reason is in the message and nothing was left half-written."""


class FrozenSpecError(KneeHipError, TypeError):
    """An in-place change of a validated (read-only) :class:`~kneehip_bn.ModelSpec`.

    Edits go through ``set_prior``/``set_row``/``set_link``/``set_leak`` (new specs);
    ``copy.deepcopy(spec)`` gives an editable copy.
    """


class ModelTooLargeError(KneeHipError, MemoryError):
    """Compiling the model would need more memory than the limit allows (the estimate and
    the limit are in the message; ``KNEEHIP_MAX_TABLE_BYTES`` raises the limit)."""
