"""EM: the expert priors updated with audit counts (complete data in closed form).

The model's expert probabilities are a prior; an audit updates them.

**Prior.** Each table's expert probabilities times its strength (the equivalent sample
size, ``spec.strength_of(node)``, overridable per table and globally) are Dirichlet
pseudo-counts ``alpha[x, u] = strength * P_expert(x | u)``, one set per parent
configuration ``u``, exactly as pgmpy's ``DiscreteBayesianEstimator(prior_type="dirichlet",
pseudo_counts=...)`` and its ``fit_update`` use them. A structural zero of the expert
table has pseudo-count zero and stays zero.

**Complete data** (every node observed in every row): the fitted table is
``(counts + alpha) / column sums``, pgmpy's Bayesian estimate, in closed form.

**Missing values and unobserved nodes**: EM over all rows. The E-step groups identical
rows into distinct patterns (one int64 key per row, ``np.unique``) and asks the compiled
engine for the expected family counts of the patterns, weighted by how often each occurs
(:meth:`Engine.expected_counts`); the M-step is the same Dirichlet update with expected
counts. Each iteration maximises the penalised objective

    log P(data | theta) + sum over tables of sum alpha * log theta

(the log-posterior up to a constant), which EM never decreases; iteration stops when its
relative change falls below ``tol``.

**Noisy-OR tables** stay noisy-OR (``noisy_or="keep"``): their leak and links maximise the
same objective, ``sum (N + alpha) * log P_noisyOR(x | u)``, by projected Newton steps in
``w = -log(1 - p)`` (the objective is concave there; :mod:`kneehip_bn.learning.noisy_or`);
or they become full tables (``noisy_or="tabular"``).

**SQUAREM** (Varadhan & Roland 2008, scheme S3) extrapolates two EM steps by the squared
step length; the extrapolated point is kept only when its log-posterior is at least that
of the second EM step, so the recorded log-posterior never decreases.

:func:`run_em` returns a :class:`FitResult` (the parameters, the EM history, the family
counts); :class:`~kneehip_bn.learning.fitter.PriorFitter` writes the fitted model file and
:func:`~kneehip_bn.learning.fit_report.build_fit_report` the report from it.

Examples
--------
>>> from kneehip_bn import load_spec
>>> from kneehip_bn.io.counting import audit_counts
>>> from kneehip_bn.learning.params import build_families
>>> from kneehip_bn.learning.simulate import simulate_audit
>>> spec = load_spec("knee_hip_basic")
>>> counts = audit_counts(simulate_audit(300, seed=0, missing=0.1, model=spec), spec)
>>> res = run_em(spec, build_families(spec, None, {}, set(), "keep"), counts, max_iter=5,
...              tol=1e-6, progress=False)
>>> res.method, res.n_iter <= 5
('em-dirichlet+noisy-or+squarem', True)
>>> bool(res.history["log_posterior"].is_monotonic_increasing)
True
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from kneehip_bn._util.progress import progress_bar
from kneehip_bn._util.runtime import single_blas_thread
from kneehip_bn.errors import DataError, ImpossibleEvidenceError
from kneehip_bn.inference.engine import Engine
from kneehip_bn.io.counts import AuditCounts
from kneehip_bn.learning.impossible import check_possible, check_possible_complete
from kneehip_bn.learning.noisy_or import W_MAX
from kneehip_bn.learning.params import Family, Params, sum_xlogy

__all__ = ["FitResult", "run_em"]


@dataclass
class FitResult:
    """One EM run (or closed-form update): what the fitted file and the report are made of.

    Attributes
    ----------
    params : Params
        The fitted tables (``params.table``), noisy-OR ``w`` (``params.w``) and the
        families (``params.fams``).
    history : pandas.DataFrame
        One row per iteration (see ``PriorFitter.history_``).
    counts : dict of ndarray
        ``{node: (expected) family counts}`` at the last E-step.
    loglik, loglik_expert : float
        Log-likelihood of the counts under the fitted and the expert parameters.
    converged : bool
    n_iter : int
    method : str
        ``"bayes-dirichlet"`` (complete data) or ``"em-dirichlet"``, with ``+noisy-or``
        and ``+squarem`` when they took part.
    complete : bool
        Every node observed in every row (no EM needed).
    """

    params: Params
    history: Any
    counts: dict[str, np.ndarray]
    loglik: float
    loglik_expert: float
    converged: bool
    n_iter: int
    method: str
    complete: bool

    @property
    def families(self) -> list[Family]:
        """The families fitted (one per table)."""
        return self.params.fams


def _family_counts_complete(counts: AuditCounts, fams: list[Family]) -> dict[str, np.ndarray]:
    """Exact family counts when every node is observed in every row (weighted bincount)."""
    col = {c: j for j, c in enumerate(counts.columns)}
    out = {}
    for f in fams:
        fam = [f.name, *f.parents]
        cards = [len(f.states), *f.pcards]
        key = np.zeros(counts.patterns.shape[0], dtype=np.int64)
        for x, k in zip(fam, cards):
            key = key * k + counts.patterns[:, col[x]].astype(np.int64)
        flat = np.bincount(key, weights=counts.counts, minlength=int(np.prod(cards)))
        out[f.name] = flat.reshape(cards)
    return out


def run_em(spec, fams, counts: AuditCounts, *, max_iter: int, tol: float, progress: bool,
           desc: str = "fitting (EM)", accelerate: bool = True, estep: str = "auto"
           ) -> FitResult:
    """EM (SQUAREM-accelerated unless ``accelerate=False``) on pattern counts; the
    closed-form Dirichlet update when every node is observed in every row."""
    import pandas as pd

    with single_blas_thread():
        base = Engine(spec)
        params = Params(fams)
        _check_states(base, counts)
        complete = set(counts.columns) == set(base.variables) and bool(
            counts.patterns.shape[0] == 0 or (counts.patterns >= 0).all())
        has_nor = any(f.kind == "noisy_or" and not f.frozen for f in fams)
        if complete:
            check_possible_complete(counts, fams)
            return _fit_complete(params, counts, has_nor)
        run = _EMRun(base, params, counts, max_iter=max_iter, tol=tol, estep=estep,
                     bar=progress_bar(enabled=progress, desc=desc, total=max_iter, unit="it"))
        try:
            converged = run.iterate(accelerate)
        finally:
            run.bar.close()
        method = ("em-dirichlet" + ("+noisy-or" if has_nor else "")
                  + ("+squarem" if accelerate else ""))
        return FitResult(params, pd.DataFrame(run.rows), run.N, float(run.ll), float(run.ll0),
                         converged, len(run.rows) - 1, method, False)


def _check_states(base, counts: AuditCounts) -> None:
    for c in counts.columns:
        if list(base.states[c]) != list(counts.states[c]):
            raise DataError(f"counts column {c}: states {counts.states[c]} differ from the model's "
                            f"{base.states[c]}: expected counts made with this model")


def _fit_complete(params: Params, counts: AuditCounts, has_nor: bool) -> FitResult:
    """The closed-form update: exact family counts, one M-step."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    N = _family_counts_complete(counts, params.fams)
    ll0 = _complete_loglik(N, params)
    rows.append(_hist(0, ll0, params.log_prior(), None, 0.0))
    t1 = time.perf_counter()
    params.m_step(N)
    rows[-1]["mstep_seconds"] = time.perf_counter() - t1
    ll = _complete_loglik(N, params)
    lp = ll + params.log_prior()
    rows.append(_hist(1, ll, params.log_prior(), _rel(lp, rows[-1]["log_posterior"]),
                      time.perf_counter() - t0))
    method = "bayes-dirichlet" + ("+noisy-or" if has_nor else "")
    return FitResult(params, pd.DataFrame(rows), N, ll, ll0, True, 1, method, True)


class _EMRun:
    """The state of one EM run: parameters, E-step budget, history rows, progress bar."""

    def __init__(self, base, params: Params, counts: AuditCounts, *, max_iter, tol, estep, bar):
        self.base, self.params, self.counts = base, params, counts
        self.max_iter, self.tol, self.estep, self.bar = max_iter, tol, estep, bar
        self.relaxed = any(f.start is not None for f in params.fams)
        self.rows: list[dict[str, Any]] = []
        self.n_e = 0  # E-steps done (the iteration budget)
        self.N: Any = None
        self.ll = self.ll0 = self.lp = math.nan

    def e_step(self, it: int, strict: bool):
        """Expected counts, log-likelihood and log-posterior at the current parameters."""
        t0 = time.perf_counter()
        params, counts = self.params, self.counts
        eng = self.base.with_tables(params.table) if it or self.relaxed else self.base
        try:
            N, ll, _ = eng.expected_counts(counts.patterns, counts.columns, weights=counts.counts,
                                           method=self.estep,
                                           on_impossible="raise" if strict else "nan")
        except ImpossibleEvidenceError as exc:
            if it == 0:  # rows the expert model rules out: name them
                check_possible(self.base, counts)
            # later EM iterations cannot create new zeros where data exist (M-step)
            raise DataError(f"EM iteration {it}: {exc}") from None  # pragma: no cover
        return N, ll, ll + params.log_prior(), time.perf_counter() - t0

    def record(self, ll, lp, prev_lp, secs, step):
        rel = None if prev_lp is None else _rel(lp, prev_lp)
        self.rows.append(_hist(len(self.rows), ll, lp - ll, rel, secs) | {"step": step})
        self.bar.update(1)
        if hasattr(self.bar, "set_postfix"):  # shown at once: an iteration is slower than a redraw
            self.bar.set_postfix({"log_posterior": f"{lp:.8g}",
                                  "change": "-" if rel is None else f"{rel:.2e}"})
        return rel

    def m_step(self, N):
        t1 = time.perf_counter()
        self.params.m_step(N)
        self.rows[-1]["mstep_seconds"] = time.perf_counter() - t1

    def em_step(self) -> bool:
        """One plain EM step (M-step, E-step, recorded); whether the relative change is
        below ``tol``."""
        self.m_step(self.N)
        N, ll, lp_new, secs = self.e_step(self.n_e, True)
        self.n_e += 1
        rel = self.record(ll, lp_new, self.lp, secs, "em")
        self.N, self.ll, self.lp = N, ll, lp_new
        return abs(rel) < self.tol

    def iterate(self, accelerate: bool) -> bool:
        """EM steps, two at a time extrapolated by SQUAREM; whether it converged."""
        self.N, self.ll, self.lp, secs = self.e_step(0, True)
        self.n_e += 1
        self.ll0 = self.ll
        self.record(self.ll, self.lp, None, secs, "start")
        params, max_iter = self.params, self.max_iter
        step_max = 1.0  # SQUAREM's step-length bound (Varadhan & Roland 2008: starts at 1,
        while self.n_e <= max_iter:  # x4 each time a step reaches it, /4 after a rejected step)
            x0 = _snapshot(params)
            if self.em_step():
                return True
            if not accelerate or self.n_e > max_iter:
                continue
            x1 = _snapshot(params)
            if self.em_step():
                return True
            lp2 = self.lp
            if self.n_e > max_iter:
                continue
            x2 = _snapshot(params)
            raw_alpha = _squarem_alpha(x0, x1, x2)
            alpha = min(max(raw_alpha, 1.0), step_max)
            if alpha <= 1.0:  # the extrapolation is the second EM step itself
                if raw_alpha >= step_max:
                    step_max *= 4.0
                continue
            _extrapolate(params, x0, x1, x2, alpha)
            Nx, llx, lpx, secs = self.e_step(self.n_e, False)
            self.n_e += 1
            if np.isfinite(lpx) and lpx >= lp2:
                self.N, self.ll, self.lp = Nx, llx, lpx
                self.record(llx, lpx, lp2, secs, "squarem")
                if alpha >= step_max:
                    step_max *= 4.0
            else:  # the log-posterior would decrease: back to the plain EM step
                _restore(params, x2)
                step_max = max(1.0, step_max / 4.0)
        return False


def _snapshot(params: Params) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return ({k: v.copy() for k, v in params.table.items()},
            {k: v.copy() for k, v in params.w.items()})


def _restore(params: Params, x) -> None:
    params.table = {k: v.copy() for k, v in x[0].items()}
    params.w = {k: v.copy() for k, v in x[1].items()}


def _free_tables(params: Params, x0, x1, x2):
    """(family, mask of the entries positive in all three) of each fitted full table."""
    for f in params.fams:
        if f.frozen or f.kind != "table":
            continue
        yield f, (x0[0][f.name] > 0) & (x1[0][f.name] > 0) & (x2[0][f.name] > 0)


def _squarem_alpha(x0, x1, x2) -> float:
    """SQUAREM's step length ``|r| / |v|`` (scheme S3), ``r = x1 - x0``,
    ``v = x2 - 2 x1 + x0``, in log probabilities (full tables) and ``w`` (noisy-OR)."""
    rr = vv = 0.0
    for name in x0[1]:
        r = x1[1][name] - x0[1][name]
        v = x2[1][name] - 2 * x1[1][name] + x0[1][name]
        rr += float(r @ r)
        vv += float(v @ v)
    for name in x0[0]:
        if name in x0[1]:
            continue
        a, b, c = x0[0][name], x1[0][name], x2[0][name]
        mask = (a > 0) & (b > 0) & (c > 0)
        la, lb, lc = np.log(a[mask]), np.log(b[mask]), np.log(c[mask])
        r, v = lb - la, lc - 2 * lb + la
        rr += float(r @ r)
        vv += float(v @ v)
    if vv <= 0 or not np.isfinite(vv):
        return 1.0
    return math.sqrt(rr / vv)


def _extrapolate(params: Params, x0, x1, x2, alpha: float) -> None:
    """Set ``params`` to ``x0 + 2 alpha r + alpha^2 v`` (log probabilities of full tables,
    renormalised per parent configuration; noisy-OR ``w`` clipped to its domain)."""
    _restore(params, x2)
    for f in params.fams:
        if f.frozen:
            continue
        if f.kind == "noisy_or":
            a, b, c = x0[1][f.name], x1[1][f.name], x2[1][f.name]
            wn = np.clip(a + 2 * alpha * (b - a) + alpha**2 * (c - 2 * b + a), 0.0, W_MAX)
            params.w[f.name] = wn
            params.table[f.name] = f.table_from_w(wn)
            continue
        a, b, c = x0[0][f.name], x1[0][f.name], x2[0][f.name]
        mask = (a > 0) & (b > 0) & (c > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            la, lb, lc = np.log(a), np.log(b), np.log(c)
            x = np.where(mask, la + 2 * alpha * (lb - la) + alpha**2 * (lc - 2 * lb + la),
                         -np.inf)
        top = np.max(x, axis=0, keepdims=True)
        e = np.where(mask, np.exp(x - np.where(np.isfinite(top), top, 0.0)), 0.0)
        rest = np.where(mask, 0.0, c)  # entries not positive throughout keep x2's value
        room = 1.0 - rest.sum(axis=0, keepdims=True)
        tot = e.sum(axis=0, keepdims=True)
        new = np.where(mask, e * room / np.where(tot > 0, tot, 1.0), rest)
        params.table[f.name] = np.where(tot > 0, new, c)


def _complete_loglik(N, params: Params) -> float:
    return sum(sum_xlogy(N[f.name], params.table[f.name]) for f in params.fams)


def _rel(new: float, old: float) -> float:
    return (new - old) / max(abs(old), 1.0)


def _hist(it, ll, lprior, rel, secs) -> dict[str, Any]:
    return {"iteration": it, "loglik": float(ll), "log_prior": float(lprior),
            "log_posterior": float(ll + lprior),
            "rel_change": float("nan") if rel is None else float(rel), "seconds": float(secs),
            "mstep_seconds": float("nan"), "step": "em"}

