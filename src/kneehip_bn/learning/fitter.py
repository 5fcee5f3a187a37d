"""The estimator: :class:`PriorFitter` (scikit-learn style) and :func:`fit_priors`.

``PriorFitter(...).fit(data)`` reads the audit (:mod:`kneehip_bn.learning.scan`), screens
the rows the expert model rules out (:mod:`kneehip_bn.learning.impossible`), runs EM
(:mod:`kneehip_bn.learning.em`), writes the fitted model file (every fitted number keeps
its expert value and source) and builds the report
(:mod:`kneehip_bn.learning.fit_report`). Held-out evaluation runs only when asked for
(``holdout=0.25``: EM runs a second time, on the training rows;
:mod:`kneehip_bn.learning.holdout`).

Examples
--------
>>> from kneehip_bn.learning.simulate import simulate_audit
>>> audit = simulate_audit(300, seed=0, missing=0.1, model="knee_hip_basic")
>>> fitter = PriorFitter(progress=False, max_iter=5, model="knee_hip_basic").fit(audit)
>>> fitter.spec_.nodes["knee_pain"].noisy_or.leak.source
'fitted'
>>> bool(fitter.history_["log_posterior"].is_monotonic_increasing)
True
"""

from __future__ import annotations

import copy
import datetime as _dt
import inspect
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kneehip_bn.errors import (
    DataError,
    KneeHipError,
    NotFittedError,
    OutputExistsError,
    ParameterError,
    UnknownNameError,
    closest,
)
from kneehip_bn.inference.engine import Engine
from kneehip_bn.learning.em import run_em
from kneehip_bn.learning.fit_report import build_fit_report
from kneehip_bn.learning.holdout import HoldoutResult, evaluate_holdout
from kneehip_bn.learning.impossible import (
    RELAX_PSEUDO_COUNT,
    check_on_impossible,
    drop_patterns,
    find_impossible,
    first_rows,
    relax_families,
)
from kneehip_bn.learning.params import Params, build_families, plain_number
from kneehip_bn.learning.scan import Scan, as_counts_list, scan_audit, scan_source
from kneehip_bn.model.coerce import model_spec
from kneehip_bn.model.network import build_network
from kneehip_bn.model.spec import TableRow
from kneehip_bn.model.tables import exact_row
from kneehip_bn.model.validate import validate_spec
from kneehip_bn.model.yamlio import save_spec

__all__ = ["PriorFitter", "fit_priors"]


def _fitted_spec(spec, fams, params: Params, meta: dict[str, Any]):
    """The model file with the fitted numbers, each marked ``source: fitted`` with a
    ``fitted`` record of the expert value, the dataset, rows, date and method."""
    new = copy.deepcopy(spec)
    for f in fams:
        if f.frozen:
            continue
        node = new.nodes[f.name]
        info = dict(meta, strength=plain_number(f.strength))
        relaxed = [{"given": dict(e.given), "state": e.state, "pseudo_count": RELAX_PSEUDO_COUNT,
                    "rows": plain_number(e.rows)} for e in f.relaxed]
        if relaxed and (f.kind == "noisy_or" or node.table is None):
            info["relaxed"] = relaxed  # structural zeros given a pseudo-count by the fit
        if f.kind == "noisy_or":
            nor = node.noisy_or
            p = -np.expm1(-params.w[f.name])
            _mark_fitted(nor.leak, float(nor.leak.p), info)
            nor.leak.p = float(p[0])
            for ln, pj in zip(nor.links, p[1:]):
                _mark_fitted(ln, float(ln.p), info)
                ln.p = float(pj)
            continue
        theta = params.table[f.name]
        if node.table is not None:
            for row in node.table:
                idx = tuple(new.nodes[q].states.index(row.given[q]) for q in node.parents)
                old = dict(row.probabilities)
                mine = [r for r in relaxed if r["given"] == dict(row.given)]
                _mark_fitted(row, old, dict(info, relaxed=mine) if mine else info)
                row.probabilities = exact_row(node.states, theta[(slice(None), *idx)])
        else:  # noisy-OR turned into a full table
            nor = node.noisy_or
            srcs = sorted({nor.leak.source, *(ln.source for ln in nor.links)})
            expert_source = "noisy-OR (" + ", ".join(srcs) + ")"
            rows = []
            for idx in np.ndindex(*f.pcards) if f.pcards else [()]:
                given = {q: new.nodes[q].states[i] for q, i in zip(node.parents, idx)}
                expert = {s: float(f.expert[(k, *idx)]) for k, s in enumerate(node.states)}
                r = TableRow(source="fitted", given=given,
                             probabilities=exact_row(node.states, theta[(slice(None), *idx)]))
                r.fitted = dict(info, expert=expert, expert_source=expert_source)
                rows.append(r)
            node.table = rows
            node.noisy_or = None
    return validate_spec(new)


def _mark_fitted(entry, expert, info) -> None:
    entry.fitted = dict(info, expert=expert, expert_source=entry.source)
    entry.source = "fitted"


class PriorFitter:
    """Update the expert priors of a model with clinical audit data (scikit-learn style).

    Parameters
    ----------
    model : ModelSpec, path, pgmpy network built by kneehip_bn, or None
        The expert model (default: the shipped model).
    strength : float, optional
        Equivalent sample size for every table (overrides the model file's strengths).
        ``0`` means no prior (maximum likelihood where data exist).
    strengths : dict, optional
        ``{node: equivalent sample size}`` per table (wins over ``strength``).
    freeze : sequence of str
        Tables kept at their expert values.
    noisy_or : {"keep", "tabular"}
        Keep noisy-OR tables noisy-OR (fit leak and links) or turn them into full tables.
    max_iter : int, default 200
        EM iterations at most.
    tol : float, default 1e-6
        Stop when the relative change of the penalised log-likelihood (log-posterior) is
        below this.
    progress : bool, default True
        tqdm progress bars.
    holdout : float, optional
        Held-out evaluation, asked for explicitly (default None: none). When the audit
        records a working diagnosis, this fraction of rows (chosen with ``seed``) is held
        out, EM runs a second time on the other rows, and the expert model and that
        training fit are compared on the held-out rows (``report_.holdout``). ``0`` or
        None: no split and one EM run. ``kneehip fit`` asks for 0.25.
    seed : int, default 0
        Seed of the train/test split.
    chunksize : int, default 500000
        Rows read at a time (files are streamed; memory does not grow with rows).
    accelerate : bool, default True
        SQUAREM (Varadhan & Roland 2008, scheme S3): after two EM steps the parameters
        (log probabilities of full tables, noisy-OR ``w``) are extrapolated by the squared
        step length ``alpha = |r| / |v|``, bounded by a step limit that starts at 1, grows
        x4 whenever a step reaches it and shrinks /4 after a rejected step; the
        extrapolated point is kept only if its log-posterior is at least that of the
        second EM step, else the plain EM step is kept. The recorded log-posterior never
        decreases. ``False``: plain EM.
    estep : {"auto", "shared", "rows"}
        How the E-step's expected counts are computed (:meth:`Engine.expected_counts`):
        ``"shared"`` through the shared-message pass (every clique's work once per
        distinct sub-pattern of the audit), ``"rows"`` through the row-by-row junction
        tree, ``"auto"`` shared for 4096 patterns or more. ``accelerate=False,
        estep="rows"`` is the fitting path before version 0.4 (kept to check the new one).
    on_impossible : {"error", "drop", "relax"}
        Rows the expert model gives probability zero (they contradict a structural zero):
        ``"error"`` stops with how many rows contradict which table entry, the first row
        numbers and the two other options; ``"drop"`` fits the other rows and records the
        number dropped (:attr:`report_`, the fitted file's ``fitted.dropped_rows``);
        ``"relax"`` gives each contradicted zero the pseudo-count
        :data:`RELAX_PSEUDO_COUNT` (so the data can move it off zero) and records it in the
        fitted file (``fitted.relaxed``).
    mapping : path, dict or AuditMapping, optional
        Column/code translation of the audit (see :func:`kneehip_bn.io.mapping.load_mapping`).
    dataset_name : str, optional
        Recorded in the fitted model (default: the mapping's ``dataset`` or file name).
    table, sql : str, optional
        The table or the one read-only query, with an SQLAlchemy URL as data.

    The data source (``mapping``, ``dataset_name``, ``table``, ``sql``) is a constructor
    parameter, so that :meth:`fit` takes only the data, :meth:`get_params` /
    :meth:`set_params` cover everything, and ``type(f)(**f.get_params())`` is a clone
    (scikit-learn's ``clone`` convention).

    Attributes
    ----------
    spec_ : ModelSpec
        The fitted model specification (fitted numbers have source ``fitted`` and a
        ``fitted`` record of the expert value).
    model_ : pgmpy.models.DiscreteBayesianNetwork
        The fitted network.
    history_ : pandas.DataFrame
        Per iteration: ``loglik``, ``log_prior``, ``log_posterior`` (of the parameters at
        the start of the iteration), ``rel_change``, ``seconds`` (E-step) and
        ``mstep_seconds`` (the M-step that follows).
    report_ : FitReport
        Expert vs fitted tables with credible intervals, surprise, held-out accuracy.
    counts_ : AuditCounts
        The sufficient statistics the fit used.
    result_ : FitResult
        The EM run the fitted model and the report are made of.
    impossible_ : ImpossibleRows or None
        The rows the expert model rules out, when there were any.
    n_iter_, converged_ : int, bool

    Examples
    --------
    >>> from kneehip_bn.learning.simulate import simulate_audit
    >>> audit = simulate_audit(500, seed=2, missing=0.1, model="knee_hip_basic")
    >>> f = PriorFitter(strength=50, progress=False, max_iter=3, model="knee_hip_basic",
    ...                 dataset_name="demo").fit(audit)
    >>> sorted(f.spec_.nodes["age_group"].table[0].fitted)[:3]
    ['dataset', 'date', 'expert']
    >>> f.spec_.nodes["knee_pain"].noisy_or.leak.fitted["dataset"]
    'demo'
    >>> clone = type(f)(**f.get_params())
    >>> clone.set_params(strength=20).strength, f.strength
    (20, 50)
    """

    def __init__(
        self,
        model: Any = None,
        strength: float | None = None,
        strengths: Mapping[str, float] | None = None,
        freeze: Sequence[str] = (),
        noisy_or: str = "keep",
        max_iter: int = 200,
        tol: float = 1e-6,
        progress: bool = True,
        holdout: float | None = None,
        seed: int | None = 0,
        chunksize: int = 500_000,
        accelerate: bool = True,
        estep: str = "auto",
        on_impossible: str = "error",
        mapping: Any = None,
        dataset_name: str | None = None,
        table: str | None = None,
        sql: str | None = None,
    ) -> None:
        self.model = model
        self.strength = strength
        self.strengths = strengths
        self.freeze = freeze
        self.noisy_or = noisy_or
        self.max_iter = max_iter
        self.tol = tol
        self.progress = progress
        self.holdout = holdout
        self.seed = seed
        self.chunksize = chunksize
        self.accelerate = accelerate
        self.estep = estep
        self.on_impossible = on_impossible
        self.mapping = mapping
        self.dataset_name = dataset_name
        self.table = table
        self.sql = sql

    # -------------------------------------------------------------- parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        """The constructor's parameters, in order (scikit-learn's ``_get_param_names``)."""
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self"
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters (scikit-learn convention): ``type(f)(**f.get_params())``
        is an unfitted copy."""
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params: Any) -> PriorFitter:
        """Set constructor parameters (scikit-learn convention); checked at once (the node
        names in ``strengths``/``freeze`` when the model is known, at :meth:`fit`).

        Raises
        ------
        ParameterError
            An unknown parameter name or a value out of range (nothing is changed).
        """
        names = self._param_names()
        for k in params:
            if k not in names:
                hint = closest(k, names)
                raise ParameterError(
                    f"PriorFitter.set_params: unknown parameter {k!r}: expected one of "
                    f"{', '.join(names)}" + (f"; did you mean {hint!r}?" if hint else ""))
        old = {k: getattr(self, k) for k in params}
        self.__dict__.update(params)
        try:
            self._check_values()
        except KneeHipError:
            self.__dict__.update(old)
            raise
        return self

    def _check_values(self) -> None:
        """Every parameter that can be checked without the model."""
        def number(name, v, lo, hi=math.inf, lo_open=False):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (
                v > lo if lo_open else v >= lo) and v <= hi
            if not ok:
                rng = f"{'>' if lo_open else '>='} {lo}" + (f" and <= {hi}" if hi < math.inf else "")
                raise ParameterError(f"PriorFitter {name}: expected a number {rng}, found {v!r}")

        if self.strength is not None:
            number("strength", self.strength, 0)
        for k, v in dict(self.strengths or {}).items():
            number(f"strengths[{k!r}]", v, 0)
        if self.noisy_or not in ("keep", "tabular"):
            raise ParameterError(f"PriorFitter noisy_or: expected 'keep' or 'tabular', found "
                                 f"{self.noisy_or!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ParameterError(f"PriorFitter max_iter: expected a positive integer, found "
                                 f"{self.max_iter!r}")
        number("tol", self.tol, 0, lo_open=True)
        if self.holdout is not None:
            number("holdout", self.holdout, 0, 0.9)
        if self.estep not in ("auto", "shared", "rows"):
            raise ParameterError(f"PriorFitter estep: expected 'auto', 'shared' or 'rows', found "
                                 f"{self.estep!r}")
        if not isinstance(self.accelerate, bool):
            raise ParameterError(f"PriorFitter accelerate: expected True or False, found "
                                 f"{self.accelerate!r}")
        check_on_impossible(self.on_impossible, "PriorFitter on_impossible")

    def _check_params(self, spec) -> tuple[dict[str, float], set[str]]:
        """The parameters checked against the model: (strengths, frozen tables)."""
        strengths = dict(self.strengths or {})
        for k in strengths:
            if k not in spec.nodes:
                raise UnknownNameError.for_name("node", k, spec.nodes, where="PriorFitter strengths")
        freeze = [self.freeze] if isinstance(self.freeze, str) else list(self.freeze or ())
        for k in freeze:
            if k not in spec.nodes:
                raise UnknownNameError.for_name("node", k, spec.nodes, where="PriorFitter freeze")
        self._check_values()
        return strengths, set(freeze)

    # -------------------------------------------------------------- fit
    def fit(self, X: Any, y: None = None, **source: Any) -> PriorFitter:
        """Fit the priors to an audit.

        Parameters
        ----------
        X : DataFrame, path, SQLAlchemy URL, Spark DataFrame, EncodedAudit, AuditCounts or list of AuditCounts/paths
            The audit rows (validated and encoded with ``mapping``; files are streamed; a
            Spark DataFrame is counted by ``groupBy`` on the cluster, see
            :mod:`kneehip_bn.io.spark`) or shared counts (several are merged; a counts path
            is read with :func:`~kneehip_bn.io.counts_file.read_counts`).
        y : None
            Not used (the working diagnosis, when recorded, is a column of the audit).
        **source
            Refused with a ParameterError that says where they go: the data source
            (``mapping``, ``dataset_name``, ``table``, ``sql``) is given to the constructor.

        Returns
        -------
        self
        """
        if y is not None or source:
            found = ", ".join(source) if source else "a second argument"
            raise ParameterError(
                f"PriorFitter.fit: expected fit(data) only, found {found}; the data source "
                "(mapping, dataset_name, table, sql) is given to the constructor: "
                f"PriorFitter({next(iter(source), 'mapping')}=...).fit(data)")
        spec = model_spec(self.model)
        strengths, freeze = self._check_params(spec)
        fams = build_families(spec, self.strength, strengths, freeze, self.noisy_or)
        t0 = time.perf_counter()
        scan = scan_source(X, spec, self.mapping, self.dataset_name, self.table, self.sql,
                           holdout=float(self.holdout or 0.0), seed=self.seed,
                           chunksize=int(self.chunksize), progress=bool(self.progress))
        notes = self._screen(X, scan, spec, fams, freeze)
        counts = scan.counts
        res = run_em(spec, fams, counts, max_iter=self.max_iter, tol=self.tol,
                     progress=self.progress, accelerate=self.accelerate, estep=self.estep)
        meta = {"dataset": scan.dataset, "rows": int(counts.n_rows),
                "date": _dt.date.today().isoformat(), "method": res.method}
        if self.impossible_ is not None and self.on_impossible == "drop":
            meta["dropped_rows"] = plain_number(self.impossible_.rows)
        self.spec_ = _fitted_spec(spec, fams, res.params, meta)
        self.model_ = build_network(self.spec_)
        self.history_ = res.history
        self.n_iter_ = res.n_iter
        self.converged_ = res.converged
        self.counts_ = counts
        self.loglik_ = res.loglik
        self.expert_spec_ = spec
        self.result_ = res
        holdout = self._evaluate_holdout(spec, fams, scan)
        self.report_ = build_fit_report(
            res, spec, counts, dataset=scan.dataset, audit=scan.report, tol=float(self.tol),
            seconds=time.perf_counter() - t0, holdout=holdout)
        self.report_.notes.extend(notes)
        return self

    def _screen(self, X, scan: Scan, spec, fams, freeze) -> list[str]:
        """Find the rows the expert model rules out and apply ``on_impossible`` (error,
        drop them from the scan, or relax the families' zeros); the report's notes."""
        bad = find_impossible(scan.counts, spec)
        self.impossible_ = bad
        if bad is None:
            return []
        if self.on_impossible == "error":
            bad.first_rows = first_rows(X, spec, self.mapping, self.table, self.sql,
                                        int(self.chunksize), scan.counts, bad.patterns)
            raise DataError(bad.message())
        if self.on_impossible == "drop":
            scan.counts = drop_patterns(scan.counts, bad.patterns)
            if scan.train is not None:
                tb = find_impossible(scan.train, spec)
                if tb is not None:
                    scan.train = drop_patterns(scan.train, tb.patterns)
            return [f"on_impossible='drop': {plain_number(bad.rows)} row(s) in "
                    f"{bad.patterns.size} pattern(s) the expert model rules out were "
                    "left out of the fit (" + "; ".join(map(str, bad.entries[:4])) + ")"]
        frozen = sorted({e.node for e in bad.entries} & freeze)
        if frozen:
            raise ParameterError(
                f"on_impossible='relax': the contradicted zeros are in frozen tables "
                f"{frozen}: expected unfrozen tables; remove them from freeze, or use "
                "on_impossible='drop'")
        relax_families(fams, bad.entries)
        return [f"on_impossible='relax': {len(bad.entries)} structural zero(s) "
                f"contradicted by {plain_number(bad.rows)} row(s) got a pseudo-count of "
                f"{RELAX_PSEUDO_COUNT:g}: " + "; ".join(map(str, bad.entries[:4]))]

    def _evaluate_holdout(self, spec, fams, scan: Scan) -> HoldoutResult | None:
        """With ``holdout`` asked for and a split made: EM on the training rows, then the
        expert and that fit compared on the test rows."""
        if scan.train is None or scan.test is None:
            return None
        train_fit = run_em(spec, fams, scan.train, max_iter=self.max_iter, tol=self.tol,
                           progress=False, accelerate=self.accelerate, estep=self.estep)
        return evaluate_holdout(spec, train_fit, scan.test, scan.diagnosis_labels,
                                list(scan.counts.columns), fraction=float(self.holdout),
                                seed=self.seed)

    # -------------------------------------------------------------- fitted API
    def __getattr__(self, name: str) -> Any:
        # only called for missing attributes: fitted ones (trailing "_") before fit()
        if name.endswith("_") and not name.startswith("__"):
            raise NotFittedError(f"this PriorFitter is not fitted yet ({name} is set by fit): "
                                 "call fit(data) first")
        raise AttributeError(f"'PriorFitter' object has no attribute '{name}'")

    def _check_fitted(self) -> None:
        if "spec_" not in self.__dict__:
            raise NotFittedError("this PriorFitter is not fitted yet: call fit(data) first")

    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the fitted model file (atomically; refuses to overwrite unless asked)."""
        self._check_fitted()
        if self.expert_spec_.path and Path(path).resolve() == Path(self.expert_spec_.path).resolve() \
                and not overwrite:
            raise OutputExistsError(f"{path} is the input model: expected a new file name; pass "
                                  "overwrite=True (CLI: --overwrite) to replace it")
        return save_spec(self.spec_, path, overwrite=overwrite)

    def score(self, X: Any, y: None = None) -> float:
        """Mean log-likelihood per row of ``X`` (read with this fitter's ``mapping``) under
        the fitted model."""
        self._check_fitted()
        c = as_counts_list(X, self.spec_)
        counts = c[0] if c else scan_audit(X, self.spec_, self.mapping, table=None, sql=None,
                                           dataset=None, holdout=0.0, seed=0,
                                           chunksize=int(self.chunksize), progress=False).counts
        res = Engine(self.spec_).batch(counts.patterns, counts.columns, targets=[],
                                       on_impossible="nan")
        return float(np.dot(counts.counts, res.log_evidence) / counts.counts.sum())

    def __repr__(self) -> str:
        return f"PriorFitter(strength={self.strength!r}, noisy_or={self.noisy_or!r}, tol={self.tol!r})"


def fit_priors(data: Any, model: Any = None, mapping: Any = None, **kwargs: Any) -> PriorFitter:
    """Shortcut: ``PriorFitter(model, mapping=mapping, **kwargs).fit(data)``.

    >>> from kneehip_bn.learning.simulate import simulate_audit
    >>> f = fit_priors(simulate_audit(200, seed=1), progress=False)
    >>> f.converged_
    True
    """
    return PriorFitter(model=model, mapping=mapping, **kwargs).fit(data)
