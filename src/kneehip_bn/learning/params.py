"""The fitter's view of a model: one family per table, and the current parameters.

A :class:`Family` holds a table's expert probabilities, its strength (the equivalent
sample size) and, for a noisy-OR table kept noisy-OR, the design matrix of its leak and
links (see :mod:`kneehip_bn.learning.noisy_or`). Its Dirichlet pseudo-counts are
``alpha = strength * expert`` (plus the pseudo-counts of structural zeros relaxed by
``on_impossible="relax"``). :class:`Params` holds the current table of every family and
does the M-step: ``(counts + alpha) / column sums`` for a full table, the noisy-OR Newton
step for a noisy-OR one.

Examples
--------
>>> from kneehip_bn import load_spec
>>> spec = load_spec("knee_hip_basic")
>>> fams = build_families(spec, 10.0, {}, set(), "keep")
>>> age = next(f for f in fams if f.name == "age_group")
>>> float(age.alpha.sum()), age.kind
(10.0, 'table')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kneehip_bn.learning.noisy_or import W_MAX, fit_noisy_or
from kneehip_bn.model.tables import cpd_array

__all__ = ["Family", "Params", "build_families", "plain_number", "sum_xlogy"]


@dataclass
class Family:
    """One conditional table as the fitter sees it."""

    name: str
    states: list[str]
    parents: list[str]
    pcards: list[int]
    kind: str  # "table" or "noisy_or"
    expert: np.ndarray  # (card, *pcards)
    strength: float
    frozen: bool
    design: np.ndarray | None = None  # noisy-OR: (n_configs, 1 + n_links), leak first
    on_idx: int = 1
    w_expert: np.ndarray | None = None
    parent_states: dict[str, list[str]] = field(default_factory=dict)
    link_labels: list[str] = field(default_factory=list)
    extra: np.ndarray | None = None    # pseudo-counts added to relaxed structural zeros
    start: np.ndarray | None = None    # starting table when some zeros are relaxed
    w_start: np.ndarray | None = None
    relaxed: list[Any] = field(default_factory=list)  # the ZeroEntry objects relaxed

    @property
    def alpha(self) -> np.ndarray:
        """Dirichlet pseudo-counts: strength x expert table (plus relaxed zeros')."""
        a = self.strength * self.expert
        return a if self.extra is None else a + self.extra

    def table_from_w(self, w: np.ndarray) -> np.ndarray:
        """The implied noisy-OR table for parameters ``w = -log(1 - p)``."""
        off = np.exp(-(self.design @ w)).reshape(self.pcards)
        out = np.empty([2, *self.pcards])
        out[self.on_idx] = 1.0 - off
        out[1 - self.on_idx] = off
        return out


def build_families(spec, strength, strengths, freeze, noisy_or) -> list[Family]:

    fams = []
    for name, node in spec.nodes.items():
        s = strengths.get(name, strength if strength is not None else spec.strength_of(name))
        pcards = [len(spec.nodes[p].states) for p in node.parents]
        expert = cpd_array(spec, node)
        fam = Family(name=name, states=list(node.states), parents=list(node.parents),
                      pcards=pcards, kind="table", expert=expert, strength=float(s),
                      frozen=name in freeze,
                      parent_states={p: list(spec.nodes[p].states) for p in node.parents})
        if node.noisy_or is not None and noisy_or == "keep":
            nor = node.noisy_or
            fam.kind = "noisy_or"
            fam.on_idx = node.states.index(nor.on_state)
            configs = np.indices(pcards).reshape(len(pcards), -1).T if pcards else np.zeros((1, 0), int)
            cols = [np.ones(configs.shape[0])]
            ps = [float(nor.leak.p)]
            for ln in nor.links:
                j = node.parents.index(ln.parent)
                k = spec.nodes[ln.parent].states.index(ln.when)
                cols.append((configs[:, j] == k).astype(float))
                ps.append(float(ln.p))
            fam.design = np.stack(cols, axis=1)
            fam.link_labels = [f"{ln.parent}={ln.when}" for ln in nor.links]
            with np.errstate(divide="ignore"):  # a link of p = 1: w = inf, capped at W_MAX
                fam.w_expert = np.minimum(-np.log1p(-np.minimum(np.array(ps), 1.0 - 1e-300)), W_MAX)
        fams.append(fam)
    return fams


def sum_xlogy(a: np.ndarray, t: np.ndarray) -> float:
    """sum a * log t with 0 * log 0 = 0 (and -inf where a > 0 = t).

    ``scipy.special.xlogy(a, t).sum()`` agrees to the last bit or two but not exactly (it
    sums the zeros too, and its log differs from numpy's in the last ulp); the EM history
    and SQUAREM's accept test compare these sums, so the fitted numbers would move. Kept
    (``tests/learning/test_params.py`` compares them).
    """
    pos = a > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(a[pos] * np.log(t[pos])))

class Params:
    """Current tables of every family (and noisy-OR parameters)."""

    def __init__(self, fams: list[Family]):
        self.fams = fams
        self.table = {f.name: (f.expert if f.start is None else f.start).copy() for f in fams}
        self.w = {f.name: (f.w_expert if f.w_start is None else f.w_start).copy()
                  for f in fams if f.kind == "noisy_or"}

    def log_prior(self) -> float:
        return sum(sum_xlogy(f.alpha, self.table[f.name]) for f in self.fams)

    def m_step(self, counts: Mapping[str, np.ndarray]) -> None:
        for f in self.fams:
            if f.frozen:
                continue
            A = counts[f.name] + f.alpha
            if f.kind == "table":
                tot = A.sum(axis=0, keepdims=True)
                with np.errstate(invalid="ignore", divide="ignore"):
                    new = np.where(tot > 0, A / np.where(tot > 0, tot, 1.0), self.table[f.name])
                self.table[f.name] = new
            else:
                a_on = A[f.on_idx].reshape(-1)
                a_off = A[1 - f.on_idx].reshape(-1)
                w = fit_noisy_or(f.design, a_on, a_off, self.w[f.name])
                self.w[f.name] = w
                self.table[f.name] = f.table_from_w(w)



def plain_number(x: float) -> float | int:
    """``x`` as an int when it is a whole number (as the model file writes it)."""
    return int(x) if float(x).is_integer() else float(x)
