"""How fragile is a conclusion? One-way sensitivity and parameter-uncertainty intervals.

- :func:`sensitivity`: every number of the model (each table entry, noisy-OR link and leak)
  moved on its own. A posterior is a ratio of two functions that are linear in any one
  parameter (the other states of a table row keep their proportions), so two evaluations
  give the exact curve: the derivative at the current value and the posterior at both
  ends of the parameter's plausible range, ranked for a tornado chart.
- :func:`credible_intervals`: every table drawn from its uncertainty (rows from
  Dirichlet(strength x expert probabilities), links and leaks from
  Beta(strength x p, strength x (1 - p))), giving each origin's posterior median and
  interval.

Both reuse the compiled junction tree (:meth:`Engine.with_tables`): a parameter setting
costs one engine pass, not a recompilation.

Examples
--------
>>> from kneehip_bn.teaching.robustness import sensitivity
>>> s = sensitivity("knee_pathology", evidence={"knee_pain": "present"}, model="knee_hip_basic")
>>> s.index[0] in set(s.index)
True
>>> bool((s["swing"].diff().dropna() <= 1e-12).all())
True
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kneehip_bn._util.progress import progress_bar
from kneehip_bn.errors import (
    EvidenceError,
    ImpossibleEvidenceError,
    ParameterError,
    UnknownNameError,
)
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.engine import Engine
from kneehip_bn.inference.queries import Evidence, as_model, on_state
from kneehip_bn.model.spec import ModelSpec
from kneehip_bn.model.tables import cpd_array, noisy_or_array
from kneehip_bn.teaching.common import (
    evidence_codes,
    family_table,
    flag_attrs,
    origin_list,
    setup_query,
    states_text,
)

__all__ = [
    "Parameter",
    "beta_interval",
    "credible_intervals",
    "model_parameters",
    "parameters_of",
    "sensitivity",
]

_TINY = 1e-12


@dataclass
class Parameter:
    """One number of a model, and the table it gives when set to ``x`` (``table(x)``)."""

    name: str  # the --set form of the left-hand side
    node: str
    kind: str  # "row", "link", "leak"
    given: str
    value: float
    strength: float
    source: str
    table: Callable[[float], np.ndarray]


def _row_setter(base: np.ndarray, idx: tuple[int, ...], j: int) -> Callable[[float], np.ndarray]:
    """P(state j | parents = idx) := x, the other states of the row keep their proportions
    (as :func:`~kneehip_bn.set_row`)."""
    col = base[(slice(None), *idx)].copy()
    others = np.arange(len(col)) != j
    rest = float(col[others].sum())

    def f(x: float) -> np.ndarray:
        new = col.copy()
        new[j] = x
        new[others] = (1.0 - x) * (col[others] / rest if rest > 0 else 1.0 / others.sum())
        arr = base.copy()
        arr[(slice(None), *idx)] = new
        return arr

    return f


def _spec_params(spec: Any) -> list[Parameter]:
    out: list[Parameter] = []
    for name, node in spec.nodes.items():
        s = spec.strength_of(name)
        binary = len(node.states) == 2
        if node.noisy_or is not None:
            nor = node.noisy_or

            def leak_fn(x: float, node=node, nor=nor) -> np.ndarray:
                n2 = dataclasses.replace(node, noisy_or=dataclasses.replace(
                    nor, leak=dataclasses.replace(nor.leak, p=float(x))))
                return noisy_or_array(spec, n2)

            out.append(Parameter(f"{name}.leak", name, "leak", "", float(nor.leak.p), s,
                              nor.leak.source, leak_fn))
            for i, ln in enumerate(nor.links):

                def link_fn(x: float, i=i, node=node, nor=nor) -> np.ndarray:
                    links = list(nor.links)
                    links[i] = dataclasses.replace(links[i], p=float(x))
                    n2 = dataclasses.replace(node, noisy_or=dataclasses.replace(nor, links=links))
                    return noisy_or_array(spec, n2)

                several = sum(1 for x in nor.links if x.parent == ln.parent) > 1
                label = f"{name}.link.{ln.parent}" + (f":{ln.when}" if several else "")
                out.append(Parameter(label, name, "link", f"{ln.parent}={ln.when}", float(ln.p), s,
                                  ln.source, link_fn))
            continue
        base = cpd_array(spec, node)
        for row in node.table or []:
            idx = tuple(spec.nodes[p].states.index(row.given[p]) for p in node.parents)
            given = ",".join(f"{p}={row.given[p]}" for p in node.parents)
            states = [on_state(node.states)] if binary else list(node.states)
            for st in states:
                j = node.states.index(st)
                label = f"{name}[{given}].{st}" if node.parents else f"{name}.{st}"
                out.append(Parameter(label, name, "row", given, float(row.probabilities[st]), s,
                                  row.source, _row_setter(base, idx, j)))
    return out


def _engine_params(eng: Engine, strength: float) -> list[Parameter]:
    out: list[Parameter] = []
    for name in eng.variables:
        base = family_table(eng, name).copy()
        states = eng.states[name]
        chosen = [on_state(states)] if len(states) == 2 else list(states)
        pstates = [eng.states[p] for p in eng.parents[name]]
        for idx in itertools.product(*[range(len(s)) for s in pstates]):
            given = ",".join(f"{p}={pstates[k][i]}"
                             for k, (p, i) in enumerate(zip(eng.parents[name], idx)))
            for st in chosen:
                j = states.index(st)
                label = f"{name}[{given}].{st}" if given else f"{name}.{st}"
                out.append(Parameter(label, name, "row", given, float(base[(j, *idx)]), strength,
                                  "", _row_setter(base, idx, j)))
    return out


def model_parameters(model: Any = None, strength: float = 10.0) -> Any:
    """Every number of a model as a DataFrame (``parameter`` in ``--set`` form, node, kind,
    given, value, strength, source).

    For a ModelSpec (or a model file) the numbers are the file's: table row entries
    (P(present) only for two-state nodes), noisy-OR links and leaks, each with its
    equivalent sample size. For a pgmpy network every CPD entry is a parameter with
    ``strength``.

    >>> from kneehip_bn.teaching.robustness import model_parameters
    >>> p = model_parameters(model="knee_hip_basic")
    >>> float(p.loc["knee_pain.link.knee_pathology", "value"])
    0.084
    """
    import pandas as pd

    m = as_model(model)
    params = parameters_of(m, get_engine(m), strength)
    return pd.DataFrame([{"parameter": p.name, "node": p.node, "kind": p.kind, "given": p.given,
                          "value": p.value, "strength": p.strength, "source": p.source}
                         for p in params]).set_index("parameter")


def parameters_of(m: Any, eng: Engine, strength: float) -> list[Parameter]:
    """Every number of a model (see :func:`model_parameters`): the model file's when ``m`` is
    a ModelSpec, else every CPD entry of ``eng`` with equivalent sample size ``strength``."""
    if isinstance(m, ModelSpec):
        return _spec_params(m)
    return _engine_params(eng, strength)


def beta_interval(x: float, strength: float, level: float) -> tuple[float, float]:
    """The central ``level`` interval of Beta(strength x, strength (1 - x)); ``(x, x)`` at 0
    and 1.

    Through ``scipy.special.betaincinv``, which is what ``scipy.stats.beta.ppf`` computes (the
    same numbers, ``tests/teaching/test_robustness.py``): ``scipy.special`` imports in 0.08 s,
    ``scipy.stats`` in 0.49 s.

    >>> from kneehip_bn.teaching.robustness import beta_interval
    >>> lo, hi = beta_interval(0.2, 10.0, 0.95)
    >>> bool(0 < lo < 0.2 < hi < 1)
    True
    """
    if x <= 0 or x >= 1:
        return x, x
    from scipy.special import betaincinv

    a, b = strength * x, strength * (1 - x)
    lo, hi = betaincinv(a, b, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _interval(p: Parameter, interval: str | float, level: float) -> tuple[float, float]:
    x = p.value
    if interval == "beta":
        return beta_interval(x, p.strength, level)
    f = float(interval)
    return max(0.0, x * (1 - f)), min(1.0, x * (1 + f))


def _leading_origin(m: Any, eng: Engine, ev: Any, dov: Any) -> str:
    """The unobserved diagnosis with the highest posterior (the default sensitivity target)."""
    cands = [o for o in origin_list(m, eng, None) if o not in ev and o not in dov]
    if not cands:
        raise EvidenceError("target: expected a node to examine (--target), found no "
                            "unobserved diagnosis to default to")
    post = eng.posterior(ev, cands, do=dov or None)
    return max(cands, key=lambda o: float(post[o][eng.state_index[o][on_state(eng.states[o])]]))


def sensitivity(
    target: str | None = None,
    state: str | None = None,
    evidence: Evidence = None,
    model: Any = None,
    *,
    do: Evidence = None,
    interval: str | float = "beta",
    level: float = 0.95,
    strength: float = 10.0,
    parameters: Sequence[str] | None = None,
) -> Any:
    """One-way sensitivity of ``P(target = state | evidence)`` to every parameter.

    Each parameter ``x`` moves on its own (the other states of its table row keep their
    proportions). ``P(target, evidence)`` and ``P(evidence)`` are linear in ``x``, so the
    posterior is ``(a + b x) / (c + d x)``: two engine passes give the exact curve, its
    derivative at the current value, and the posterior at both ends of ``[lo, hi]`` (the
    curve is monotone, so these are its extremes).

    Parameters
    ----------
    target : str, optional
        The node whose posterior is examined (default: the diagnosis that leads given the
        evidence).
    state : str, optional
        Its state (default: ``present``/``positive``).
    evidence : dict or list of "NAME=STATE"
    model : optional
        ModelSpec / model path / ``None`` (parameters are the file's numbers), or a pgmpy
        network (every CPD entry, with ``strength``).
    do : dict, optional
    interval : "beta" or float
        ``"beta"``: the central ``level`` interval of Beta(strength x p, strength x (1 - p))
        with the table's equivalent sample size (the marginal of its Dirichlet row);
        a float ``f``: ``[p (1 - f), p (1 + f)]`` clipped to [0, 1].
    level : float
        Coverage of the Beta interval.
    strength : float
        Equivalent sample size for networks without a model file.
    parameters : list of str, optional
        Only these parameters (``--set`` forms, e.g. ``"knee_pain.leak"``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``parameter`` (its ``--set`` form), ranked by ``swing``: ``node``,
        ``kind``, ``given``, ``value``, ``lo``, ``hi``, ``source``, ``derivative``
        (d posterior / d parameter), ``posterior`` (now), ``posterior_lo``,
        ``posterior_hi`` (at lo and hi), ``swing`` (|posterior_hi - posterior_lo|).
        Draw it with :func:`kneehip_bn.teaching.plots.plot_tornado`.

    Examples
    --------
    >>> from kneehip_bn import sensitivity
    >>> s = sensitivity("lumbar_radiculopathy", evidence={"low_back_pain": "present"}, model="knee_hip_basic")
    >>> float(s.loc["low_back_pain.link.lumbar_radiculopathy", "derivative"]) > 0
    True
    """
    import pandas as pd

    m, eng, ev, dov = setup_query(evidence, do, model)
    if target is None:
        target = _leading_origin(m, eng, ev, dov)
    if target not in eng.index:
        raise UnknownNameError.for_name("node", target, eng.variables, where="target")
    if target in ev or target in dov:
        raise EvidenceError(f"target {target}: expected an unobserved node, found it "
                            f"{'observed' if target in ev else 'intervened on'}")
    state = on_state(eng.states[target]) if state is None else state
    if state not in eng.state_index[target]:
        raise UnknownNameError.for_name(f"state of {target}", state, eng.states[target])
    if interval != "beta":
        try:
            f = float(interval)
        except (TypeError, ValueError):
            raise ParameterError(f"interval: expected 'beta' or a fraction such as 0.2, found "
                               f"{interval!r}") from None
        if not 0 < f:
            raise ParameterError(f"interval: expected a positive fraction, found {interval!r}")
    if not 0 < level < 1:
        raise ParameterError(f"level: expected a probability between 0 and 1, found {level!r}")
    k = eng.state_index[target][state]
    params = parameters_of(m, eng, strength)
    if parameters is not None:
        names = {p.name: p for p in params}
        for n in parameters:
            if n not in names:
                raise UnknownNameError.for_name("parameter", n, names, where="parameters")
        params = [names[n] for n in parameters]
    cols = list(ev)
    codes = evidence_codes(eng, [ev], cols)

    def run(e: Engine) -> tuple[float, float]:
        r = e.batch(codes, cols, targets=[target], do=dov or None, on_impossible="nan")
        return float(r.log_evidence[0]), float(r.marginals[target][0, k])

    lpe0, post0 = run(eng)
    if not math.isfinite(lpe0):
        raise ImpossibleEvidenceError.for_evidence(ev, dov)
    rows = []
    for p in params:
        x0 = p.value
        x1 = x0 + 0.5 * (1 - x0) if x0 < 0.5 else 0.5 * x0
        lpe1, post1 = run(eng.with_tables({p.node: p.table(x1)}))
        d1 = math.exp(lpe1 - lpe0) if math.isfinite(lpe1) else 0.0
        n1 = post1 * d1 if d1 > 0 else 0.0
        dn = (n1 - post0) / (x1 - x0)  # numerator N(x) = post0 + dn (x - x0), N(x0) = post0
        dd = (d1 - 1.0) / (x1 - x0)  # denominator D(x) = 1 + dd (x - x0)

        def curve(x: float, dn=dn, dd=dd, x0=x0) -> float:
            den = 1.0 + dd * (x - x0)
            return (post0 + dn * (x - x0)) / den if den > 1e-300 else math.nan

        lo, hi = _interval(p, interval, level)
        plo, phi = curve(lo), curve(hi)
        rows.append({
            "parameter": p.name, "node": p.node, "kind": p.kind, "given": p.given,
            "value": x0, "lo": lo, "hi": hi, "source": p.source,
            "derivative": dn - post0 * dd, "posterior": post0,
            "posterior_lo": plo, "posterior_hi": phi, "swing": abs(phi - plo),
        })
    df = pd.DataFrame(rows).set_index("parameter")
    df["_abs"] = df["derivative"].abs()
    df = df.sort_values(["swing", "_abs"], ascending=False, kind="stable").drop(columns="_abs")
    df.attrs.update(target=target, state=state, evidence=dict(ev), do=dict(dov),
                    posterior=post0, interval=interval, level=level)
    flag_attrs(df, m, ev)
    return df


# ----------------------------------------------------------------------------- uncertainty
def _draw_tables(m: Any, eng: Engine, n: int, rng: np.random.Generator,
                 strength: float | None, default_strength: float) -> list[dict[str, np.ndarray]]:
    """``n`` random sets of tables (one dict per draw)."""
    spec = m if isinstance(m, ModelSpec) else None
    draws: list[dict[str, np.ndarray]] = [{} for _ in range(n)]

    def beta(p: float, s: float) -> np.ndarray:
        if p <= 0 or p >= 1:
            return np.full(n, p)
        return np.clip(rng.beta(s * p, s * (1 - p), size=n), _TINY, 1 - _TINY)

    def dirichlet_tables(base: np.ndarray, s: float) -> np.ndarray:
        card = base.shape[0]
        cols = base.reshape(card, -1)
        alpha = s * np.broadcast_to(cols, (n, *cols.shape))
        pos = alpha > 0
        g = rng.standard_gamma(np.where(pos, alpha, 1.0)) * pos
        tot = g.sum(axis=1, keepdims=True)
        g = np.where(tot > 0, g / np.where(tot > 0, tot, 1.0), cols)
        g = np.where(pos, np.maximum(g, _TINY), 0.0)  # no accidental zeros from underflow
        return (g / g.sum(axis=1, keepdims=True)).reshape(n, *base.shape)

    names = list(spec.nodes) if spec is not None else list(eng.variables)
    for name in names:
        if spec is not None:
            node = spec.nodes[name]
            s = float(strength) if strength is not None else spec.strength_of(name)
            if node.noisy_or is not None:
                nor = node.noisy_or
                tabs = _noisy_or_tables(spec, node, beta(float(nor.leak.p), s),
                                        [beta(float(ln.p), s) for ln in nor.links])
                for d in range(n):
                    draws[d][name] = tabs[d]
                continue
            base = cpd_array(spec, node)
        else:
            s = float(strength) if strength is not None else default_strength
            base = family_table(eng, name)
        tabs = dirichlet_tables(base, s)
        for d in range(n):
            draws[d][name] = tabs[d]
    return draws


def _noisy_or_tables(spec: Any, node: Any, leaks: np.ndarray,
                     links: Sequence[np.ndarray]) -> np.ndarray:
    """Noisy-OR tables for many (leak, links) draws at once, shape (n, 2, *parent_cards)
    (:func:`~kneehip_bn.model.tables.noisy_or_array` with drawn values)."""
    return noisy_or_array(spec, node, leak=leaks, links=links)


def credible_intervals(
    evidence: Evidence = None,
    model: Any = None,
    n_draws: int = 200,
    seed: int = 0,
    *,
    targets: Sequence[str] | None = None,
    do: Evidence = None,
    level: float = 0.95,
    strength: float | None = None,
    default_strength: float = 10.0,
    progress: bool = True,
) -> Any:
    """How much each origin's posterior moves when every table varies within its uncertainty.

    Each draw replaces every table: full-table rows from Dirichlet(strength x expert
    probabilities), noisy-OR links and leaks from Beta(strength x p, strength x (1 - p))
    (structural zeros and ones stay fixed), with the table's equivalent sample size
    (``strength`` in the model file). The posterior is recomputed on the same compiled
    junction tree.

    Parameters
    ----------
    evidence : dict or list of "NAME=STATE"
    model : optional
    n_draws : int
        Number of parameter draws.
    seed : int
        Random seed (the result is reproducible).
    targets : list of str, optional
        Nodes reported (default: the origins), as P(present/positive).
    do : dict, optional
    level : float
        Coverage of the reported interval.
    strength : float, optional
        Use this equivalent sample size for every table instead of the file's.
    default_strength : float
        Equivalent sample size for networks without a model file.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    pandas.DataFrame
        Indexed by target: ``posterior`` (with the expert numbers), ``mean``, ``median``,
        ``lo``, ``hi`` (the central ``level`` interval), ``sd``; the draws are in
        ``df.attrs["draws"]`` (``{target: [posterior per draw]}``; NaN where a draw made the
        evidence impossible), e.g. ``pandas.DataFrame(df.attrs["draws"])``.

    Examples
    --------
    >>> from kneehip_bn import credible_intervals
    >>> ci = credible_intervals({"knee_effusion": "present"}, n_draws=20, progress=False, model="knee_hip_basic")
    >>> bool((ci["lo"] <= ci["median"]).all() and (ci["median"] <= ci["hi"]).all())
    True
    """
    import pandas as pd

    m, eng, ev, dov = setup_query(evidence, do, model)
    tl = origin_list(m, eng, targets)
    if n_draws < 1:
        raise ParameterError(f"n_draws: expected a positive number, found {n_draws!r}")
    if not 0 < level < 1:
        raise ParameterError(f"level: expected a probability between 0 and 1, found {level!r}")
    if strength is not None and not strength > 0:
        raise ParameterError(f"strength: expected a positive number, found {strength!r}")
    ks = [eng.state_index[t][on_state(eng.states[t])] for t in tl]
    point = eng.posterior(ev, targets=tl, do=dov or None)
    rng = np.random.default_rng(seed)
    tables = _draw_tables(m, eng, int(n_draws), rng, strength, default_strength)
    out = np.full((int(n_draws), len(tl)), np.nan)
    for d in progress_bar(range(int(n_draws)), enabled=progress, desc="parameter draws"):
        try:
            post = eng.with_tables(tables[d]).posterior(ev, targets=tl, do=dov or None)
        except ImpossibleEvidenceError:
            continue
        out[d] = [post[t][k] for t, k in zip(tl, ks)]
    ok = ~np.isnan(out).any(axis=1)
    good = out[ok]
    if not len(good):
        raise ImpossibleEvidenceError(
            f"impossible evidence under every parameter draw: each of the {int(n_draws)} draws gives "
            f"probability zero to {states_text(ev) or '(none)'}; expected findings the drawn "
            "tables allow; check for findings that need a rare table entry, or lower the "
            "strength of the tables they rely on")
    q = np.quantile(good, [(1 - level) / 2, 0.5, (1 + level) / 2], axis=0)
    df = pd.DataFrame({
        "posterior": [float(point[t][k]) for t, k in zip(tl, ks)],
        "mean": good.mean(axis=0), "median": q[1], "lo": q[0], "hi": q[2],
        "sd": good.std(axis=0, ddof=1) if len(good) > 1 else np.zeros(len(tl)),
    }, index=pd.Index(tl, name="target"))
    # plain lists: pandas compares attrs when combining frames (no arrays or frames there)
    df.attrs["draws"] = {t: out[:, j].tolist() for j, t in enumerate(tl)}
    df.attrs.update(level=level, n_draws=int(n_draws), n_failed=int((~ok).sum()),
                    evidence=dict(ev), do=dict(dov), seed=seed)
    flag_attrs(df, m, ev)
    return df

