"""What the researcher sees after fitting: the fit report.

:class:`FitReport` (``PriorFitter().fit(...).report_``, built by :func:`build_fit_report`
from a :class:`~kneehip_bn.learning.em.FitResult`) holds, per table, the expert and
fitted probabilities with 95% credible intervals, the tables where the audit most
disagrees with the expert prior, the log-likelihood before and after fitting and, when
held-out evaluation was asked for (:mod:`kneehip_bn.learning.holdout`), held-out accuracy
of each origin before and after. It prints as text, converts to a dict / JSON, and draws a
figure.

How to read the surprise
------------------------
For a table with expert pseudo-counts ``alpha_u = strength * P_expert(. | u)`` and (expected)
audit counts ``N_u`` in each parent configuration ``u``, the surprise is

    S = - sum_u log DirMult(N_u | alpha_u)

the negative log probability of the audit's counts under the expert's prior predictive
distribution (in nats; larger = more surprising). Because S grows with the number of rows,
it is compared with its own distribution when the expert is right: counts are drawn from
the prior predictive (theta ~ Dirichlet(alpha_u), counts ~ Multinomial(n_u, theta)) and
``p_value`` is the fraction of draws at least as surprising (``z`` is S standardised by
those draws). A small p-value says the audit is unlikely under the expert table at its
stated strength: either the expert number or its strength deserves a second look. With
missing values the counts are EM's expected counts, so the test is approximate (imputed
counts are less variable than real ones).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kneehip_bn._util.files import atomic_write_text
from kneehip_bn._util.jsonclean import json_clean
from kneehip_bn.inference.queries import on_state
from kneehip_bn.io.counts import AuditCounts
from kneehip_bn.learning.em import FitResult
from kneehip_bn.learning.holdout import HoldoutResult
from kneehip_bn.learning.noisy_or import nor_laplace_sd
from kneehip_bn.teaching.plots import save_figure

__all__ = ["FitReport", "build_fit_report", "dirichlet_multinomial_logpmf"]


# ============================================================================ statistics
def dirichlet_multinomial_logpmf(counts: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """log DirMult(counts | alpha) along axis 0 (states), one value per column.

    Real-valued (expected) counts are allowed (gamma functions); states with ``alpha = 0``
    and ``counts = 0`` (structural zeros) contribute nothing.

    >>> float(np.exp(dirichlet_multinomial_logpmf(np.array([1.0, 0.0]), np.array([1.0, 1.0]))))
    0.5
    """
    from scipy.special import gammaln

    counts = np.asarray(counts, float)
    alpha = np.asarray(alpha, float)
    n = counts.sum(axis=0)
    a0 = alpha.sum(axis=0)
    pos = alpha > 0
    term = np.where(pos, gammaln(counts + np.where(pos, alpha, 1.0)) - gammaln(np.where(pos, alpha, 1.0)), 0.0)
    term = term - np.where(pos | (counts > 0), gammaln(counts + 1.0), 0.0)
    return gammaln(n + 1.0) + gammaln(a0) - gammaln(n + a0) + term.sum(axis=0)


def _surprise(N: np.ndarray, alpha: np.ndarray, rng: np.random.Generator, draws: int = 1000):
    """(surprise, expected surprise, sd, Monte Carlo p-value) of counts under the prior."""
    K = N.shape[0]
    Nc = N.reshape(K, -1)
    Ac = alpha.reshape(K, -1)
    keep = Ac.sum(axis=0) > 0
    if not keep.any():
        return math.nan, math.nan, math.nan, math.nan
    Nc, Ac = Nc[:, keep], Ac[:, keep]
    s_obs = -float(dirichlet_multinomial_logpmf(Nc, Ac).sum())
    n_u = np.rint(Nc.sum(axis=0)).astype(np.int64)
    g = rng.gamma(np.broadcast_to(Ac.T, (draws, *Ac.T.shape)))  # (draws, U, K); shape 0 -> 0
    theta = g / g.sum(axis=2, keepdims=True)
    sim = rng.multinomial(n_u[None, :], theta)  # (draws, U, K)
    s_sim = -dirichlet_multinomial_logpmf(np.moveaxis(sim, 2, 0).reshape(K, -1),
                                          np.repeat(Ac[:, None, :], draws, axis=1).reshape(K, -1))
    s_sim = s_sim.reshape(draws, -1).sum(axis=1)
    mean, sd = float(s_sim.mean()), float(s_sim.std())
    p = (1.0 + float((s_sim >= s_obs).sum())) / (draws + 1.0)
    return s_obs, mean, sd, p


# ============================================================================ report
@dataclass
class FitReport:
    """The account of one fit: what changed, where the data disagree, how well it predicts.

    Attributes
    ----------
    tables : pandas.DataFrame
        One row per fitted number: ``node``, ``kind`` (table/noisy_or), ``parameter``
        (``P(state | given)``, ``leak`` or ``link parent=state``), ``expert``, ``fitted``,
        ``ci_low``/``ci_high`` (95% credible interval: Beta marginal of the Dirichlet
        posterior for tables, Laplace approximation on ``-log(1-p)`` for noisy-OR),
        ``n`` (audit rows, expected when imputed, informing it), ``change``, ``frozen``.
        Two-state tables list only P(present/positive).
    surprise : pandas.DataFrame
        One row per table, most surprising first: ``surprise`` (nats), ``expected``,
        ``z``, ``p_value`` (see the module docstring), ``max_change``.
    loglik_expert, loglik_fitted : float
        Log-likelihood of the audit under the expert and the fitted model.
    holdout : pandas.DataFrame or None
        Per origin and model (expert / fitted on the training rows): ``n``, ``prevalence``
        (working-diagnosis rate), ``mean_predicted``, ``log_loss``, ``brier``, ``auc``.
    calibration : pandas.DataFrame or None
        Binned predicted vs observed rates on the held-out rows.
    history : pandas.DataFrame
        EM iterations.
    audit : AuditReport
        The validation report of the data.
    """

    model_name: str
    dataset: str
    n_rows: int
    n_patterns: int
    columns: list[str]
    method: str
    converged: bool
    n_iter: int
    tol: float
    seconds: float
    loglik_expert: float
    loglik_fitted: float
    tables: Any
    surprise: Any
    history: Any
    audit: Any = None
    holdout: Any = None
    calibration: Any = None
    holdout_info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    # -------------------------------------------------------------- text
    def __str__(self) -> str:
        lines = [f"Fit of model '{self.model_name}' to {self.dataset}: {self.n_rows} rows "
             f"({self.n_patterns} distinct patterns), {len(self.columns)} observed columns",
             f"Method: {_method_text(self.method)}; "
             + (f"converged after {self.n_iter} iteration(s) (tol {self.tol:g})" if self.converged
                else f"NOT converged after {self.n_iter} iterations (tol {self.tol:g}): "
                     "raise max_iter"),
             f"Log-likelihood: expert {self.loglik_expert:.2f} ({self.loglik_expert / max(self.n_rows, 1):.4f} "
             f"per row) -> fitted {self.loglik_fitted:.2f} "
             f"({self.loglik_fitted / max(self.n_rows, 1):.4f} per row)", ""]
        lines.append("Tables where the audit most disagrees with the expert prior "
                 "(surprise = -log P(counts | expert Dirichlet); p = Monte Carlo tail probability):")
        lines.append(f"  {'table':<30}{'strength':>9}{'rows':>10}{'surprise':>10}{'expected':>10}"
                 f"{'z':>7}{'p':>8}{'max change':>11}")
        for _, r in self.surprise.head(8).iterrows():
            lines.append(f"  {r['node']:<30}{r['strength']:>9g}{r['rows']:>10.0f}{r['surprise']:>10.1f}"
                     f"{r['expected']:>10.1f}{r['z']:>7.1f}{r['p_value']:>8.3f}{r['max_change']:>11.3f}")
        lines += ["", "Largest changes (expert -> fitted, 95% credible interval):"]
        t = self.tables[~self.tables["frozen"]]
        t = t.reindex(t["change"].abs().sort_values(ascending=False).index).head(12)
        for _, r in t.iterrows():
            lines.append(f"  {r['node']:<30}{_short(r['parameter'], 64):<65}{r['expert']:7.3f} -> "
                     f"{r['fitted']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]  n={r['n']:.0f}")
        if self.holdout is not None:
            info = self.holdout_info
            lines += ["", f"Held-out accuracy ({info.get('test_rows', 0):.0f} test rows with a working "
                      f"diagnosis, {100 * info.get('fraction', 0):.0f}% split, seed "
                      f"{info.get('seed')}; label = working diagnosis names the origin; fitted model "
                      "trained on the other rows):",
                  f"  {'origin':<24}{'rate':>6}{'log loss':>20}{'Brier':>18}{'AUC':>16}",
                  f"  {'':<30}{'expert':>10}{'fitted':>9}{'expert':>9}{'fitted':>9}{'expert':>8}"
                  f"{'fitted':>8}"]
            h = self.holdout.set_index(["origin", "model"])
            for o in dict.fromkeys(self.holdout["origin"]):
                e, f = h.loc[(o, "expert")], h.loc[(o, "fitted")]
                lines.append(f"  {o:<24}{e['prevalence']:>6.3f}{e['log_loss']:>10.4f}{f['log_loss']:>9.4f}"
                         f"{e['brier']:>9.4f}{f['brier']:>9.4f}{e['auc']:>8.3f}{f['auc']:>8.3f}")
        for n in self.notes:
            lines += ["", "Note: " + n]
        return "\n".join(lines)

    def _repr_html_(self) -> str:  # pragma: no cover - notebook display
        from html import escape

        return "<pre>" + escape(str(self)) + "</pre>"

    # -------------------------------------------------------------- data
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN become None)."""
        def recs(df):
            return None if df is None else [
                {k: json_clean(v) for k, v in r.items()} for r in df.to_dict(orient="records")]

        return {
            "model": self.model_name, "dataset": self.dataset, "rows": self.n_rows,
            "distinct_patterns": self.n_patterns, "columns": list(self.columns),
            "method": self.method, "converged": self.converged, "iterations": self.n_iter,
            "tol": self.tol, "seconds": self.seconds,
            "loglik": {"expert": json_clean(self.loglik_expert), "fitted": json_clean(self.loglik_fitted)},
            "tables": recs(self.tables), "surprise": recs(self.surprise),
            "history": recs(self.history), "holdout": recs(self.holdout),
            "holdout_info": {k: json_clean(v) for k, v in self.holdout_info.items()},
            "calibration": recs(self.calibration), "notes": list(self.notes),
        }

    def to_json(self, path: str | os.PathLike[str] | None = None, overwrite: bool = False) -> str:
        """The report as JSON text; also written (atomically) to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            atomic_write_text(path, text, overwrite=overwrite)
        return text

    # -------------------------------------------------------------- figure
    def plot(self, path: str | os.PathLike[str] | None = None, fig: Any = None,
             overwrite: bool = False) -> Any:
        """A 2x2 figure: expert vs fitted with intervals, surprise, EM history, calibration.

        Returns the matplotlib Figure (saved to ``path`` when given, by the one atomic
        writer: never over an existing file unless ``overwrite=True``).
        """
        import matplotlib.pyplot as plt

        if fig is None:
            fig = plt.figure(figsize=(13, 10))
        axes = fig.subplots(2, 2)
        ax = axes[0, 0]
        t = self.tables[~self.tables["frozen"]]
        for kind, color in (("table", "#1f77b4"), ("noisy_or", "#d62728")):
            s = t[t["kind"] == kind]
            if len(s):
                ax.errorbar(s["expert"], s["fitted"],
                            yerr=[(s["fitted"] - s["ci_low"]).clip(lower=0),
                                  (s["ci_high"] - s["fitted"]).clip(lower=0)],
                            fmt="o", ms=3, alpha=0.7, color=color, elinewidth=0.7,
                            label="full table" if kind == "table" else "noisy-OR leak/link")
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
        ax.set(xlabel="expert probability", ylabel="fitted (95% credible interval)",
               title="Expert vs fitted", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
        ax.legend(loc="upper left", fontsize=8)
        ax = axes[0, 1]
        s = self.surprise.head(12).iloc[::-1]
        vals = -np.log10(s["p_value"].astype(float))
        ax.barh(s["node"], vals, color=np.where(s["p_value"] < 0.05, "#d62728", "#9ecae1"))
        ax.axvline(-math.log10(0.05), color="grey", ls="--", lw=1)
        ax.set(xlabel="-log10 p (surprise under the expert prior)",
               title="Where the audit disagrees with the expert")
        ax.tick_params(axis="y", labelsize=8)
        ax = axes[1, 0]
        h = self.history
        ax.plot(h["iteration"], h["log_posterior"] - h["log_posterior"].iloc[0], marker=".",
                label="log-posterior (objective)")
        ax.plot(h["iteration"], h["loglik"] - h["loglik"].iloc[0], marker=".",
                label="log-likelihood")
        ax.set(xlabel="EM iteration", ylabel="gain over the expert model (nats)",
               title="Fitting history")
        ax.legend(fontsize=8)
        ax = axes[1, 1]
        if self.calibration is not None and len(self.calibration):
            c = self.calibration
            for model, style in (("expert", "--"), ("fitted", "-")):
                d = c[(c["model"] == model) & (c["weight"] > 0)]
                agg = d.groupby("bin").apply(
                    lambda g: _pred_obs(np.average(g["mean_predicted"], weights=g["weight"]),
                                        np.average(g["observed"], weights=g["weight"])),
                    include_groups=False)
                ax.plot(agg["pred"], agg["obs"], style, marker="o", label=model)
            ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":")
            ax.set(xlabel="predicted P(origin present)", ylabel="rate of that working diagnosis",
                   title="Held-out calibration (all origins pooled)", xlim=(0, 1), ylim=(0, 1))
            ax.legend(fontsize=8)
        else:
            ax.axis("off")
            ax.text(0.5, 0.5, "no working-diagnosis column:\nno held-out accuracy",
                    ha="center", va="center")
        fig.suptitle(f"{self.model_name} fitted to {self.dataset} ({self.n_rows} rows)")
        fig.tight_layout()
        if path is not None:
            save_figure(fig, path, overwrite=overwrite, dpi=110, close=False)
        return fig


def _pred_obs(pred, obs):
    import pandas as pd

    return pd.Series({"pred": pred, "obs": obs})


def _method_text(m: str) -> str:
    base = ("EM, MAP with Dirichlet pseudo-counts = strength x expert table" if m.startswith("em")
            else "closed-form Dirichlet update (complete data), pseudo-counts = strength x expert")
    return base + ("; noisy-OR leak/links by Newton steps" if "noisy-or" in m else "")


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _table_rows(fams, params, N) -> list[dict[str, Any]]:
    from scipy.stats import beta

    rows = []
    for f in fams:
        theta = params.table[f.name]
        if f.kind == "noisy_or":
            A = N[f.name] + f.alpha
            a_on, a_off = A[f.on_idx].reshape(-1), A[1 - f.on_idx].reshape(-1)
            w = params.w[f.name]
            sd = (nor_laplace_sd(f.design, a_on, a_off, w) if not f.frozen
                  else np.full(w.shape, np.nan))
            ncol = N[f.name].sum(axis=0).reshape(-1)
            p_exp = -np.expm1(-f.w_expert)
            p_fit = -np.expm1(-w)
            lo = -np.expm1(-np.maximum(w - 1.96 * sd, 0.0))
            hi = -np.expm1(-np.minimum(w + 1.96 * sd, 700.0))
            names = ["leak"] + [f"link {lab}" for lab in f.link_labels]
            for j, nm in enumerate(names):
                rows.append({"node": f.name, "kind": "noisy_or", "parameter": nm, "given": "",
                             "state": f.states[f.on_idx], "expert": float(p_exp[j]),
                             "fitted": float(p_fit[j]), "ci_low": float(lo[j]),
                             "ci_high": float(hi[j]), "n": float(f.design[:, j] @ ncol),
                             "strength": f.strength, "frozen": f.frozen})
            continue
        K = len(f.states)
        A = N[f.name] + f.alpha
        a = A.reshape(K, -1)
        a0 = a.sum(axis=0)
        show = [f.states.index(on_state(f.states))] if K == 2 else list(range(K))
        configs = list(np.ndindex(*f.pcards)) if f.pcards else [()]
        ncol = N[f.name].reshape(K, -1).sum(axis=0)
        for u, idx in enumerate(configs):
            given = ", ".join(f"{p}={f.parent_states[p][i]}" for p, i in zip(f.parents, idx))
            for k in show:
                ak, bk = a[k, u], a0[u] - a[k, u]
                if f.frozen:
                    lo = hi = math.nan
                elif ak <= 0:
                    lo = hi = 0.0
                elif bk <= 0:
                    lo = hi = 1.0
                else:
                    lo, hi = (float(x) for x in beta.ppf([0.025, 0.975], ak, bk))
                st = f.states[k]
                rows.append({"node": f.name, "kind": "table",
                             "parameter": f"P({st} | {given})" if given else f"P({st})",
                             "given": given, "state": st,
                             "expert": float(f.expert.reshape(K, -1)[k, u]),
                             "fitted": float(theta.reshape(K, -1)[k, u]), "ci_low": lo,
                             "ci_high": hi, "n": float(ncol[u]), "strength": f.strength,
                             "frozen": f.frozen})
    return rows


def build_fit_report(result: FitResult, spec: Any, counts: AuditCounts, *, dataset: str,
                     audit: Any = None, tol: float = math.nan, seconds: float = math.nan,
                     holdout: HoldoutResult | None = None) -> FitReport:
    """Assemble the :class:`FitReport` of one fit.

    Parameters
    ----------
    result : FitResult
        The EM run (:func:`~kneehip_bn.learning.em.run_em`).
    spec : ModelSpec
        The expert model.
    counts : AuditCounts
        The counts the fit used.
    dataset : str
        The data's name.
    audit : AuditReport, optional
        The validation report of the data.
    tol, seconds : float
        The EM tolerance and the time the fit took (shown in the report).
    holdout : HoldoutResult, optional
        Held-out accuracy (:func:`~kneehip_bn.learning.holdout.evaluate_holdout`).
    """
    import pandas as pd

    res = result
    fams = res.families
    tables = pd.DataFrame(_table_rows(fams, res.params, res.counts))
    tables["change"] = tables["fitted"] - tables["expert"]
    surprise = _surprise_table(fams, res.counts, tables)
    notes = []
    if not res.complete:
        notes.append("with blanks or unobserved nodes the counts behind the credible intervals "
                     "and the surprise are EM's expected counts: intervals are somewhat too "
                     "narrow where much is imputed, and the surprise test is approximate.")
    ho, cal, info = (None, None, {}) if holdout is None else (
        holdout.table, holdout.calibration, holdout.info)
    return FitReport(
        model_name=spec.name, dataset=dataset, n_rows=int(counts.n_rows),
        n_patterns=int(counts.patterns.shape[0]), columns=list(counts.columns),
        method=res.method, converged=res.converged, n_iter=res.n_iter, tol=float(tol),
        seconds=float(seconds), loglik_expert=float(res.loglik_expert),
        loglik_fitted=float(res.loglik), tables=tables, surprise=surprise, history=res.history,
        audit=audit, holdout=ho, calibration=cal, holdout_info=info, notes=notes)


def _surprise_table(fams, N, tables) -> Any:
    """One row per table, most surprising first (see the module docstring)."""
    import pandas as pd

    rng = np.random.default_rng(12345)
    srows = []
    for f in fams:
        s, mean, sd, p = _surprise(N[f.name], f.alpha, rng)
        t = tables[tables["node"] == f.name]
        srows.append({"node": f.name, "kind": f.kind, "strength": f.strength,
                      "rows": float(N[f.name].sum()), "surprise": s, "expected": mean,
                      "z": (s - mean) / sd if sd and sd > 0 else math.nan, "p_value": p,
                      "max_change": float(t["change"].abs().max()) if len(t) else 0.0,
                      "frozen": f.frozen})
    return pd.DataFrame(srows).sort_values(["p_value", "z"], ascending=[True, False],
                                           na_position="last").reset_index(drop=True)
