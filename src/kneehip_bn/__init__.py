"""kneehip_bn: a Bayesian network of co-occurring knee and hip pain.

A teaching and research model, not a medical device. The clinical knowledge lives in
``models/knee_hip.yaml`` (every number with its source); this package loads it into a
real pgmpy ``DiscreteBayesianNetwork``, answers diagnosis and what-if questions through a
compiled junction-tree engine, and fits the priors to clinical audit data.

Examples
--------
>>> from kneehip_bn import diagnose
>>> diagnose({"knee_effusion": "present"}, model="knee_hip_basic").origins.index[0]
'knee_pathology'
"""

from kneehip_bn.errors import (
    DataError,
    EvidenceError,
    ImpossibleEvidenceError,
    KneeHipError,
    ModelFileError,
    NotFittedError,
    OutputExistsError,
    ParameterError,
    UnknownNameError,
)
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.engine import Engine
from kneehip_bn.inference.queries import Diagnosis, diagnose, query
from kneehip_bn.model.edit import apply_overrides, set_leak, set_link, set_prior, set_row
from kneehip_bn.model.network import build_network, load_model
from kneehip_bn.model.readwrite import export_network, read_network
from kneehip_bn.model.spec import SHIPPED_MODELS, ModelSpec, shipped_model_path
from kneehip_bn.model.validate import validate_spec
from kneehip_bn.model.yamlio import load_spec, save_spec

# --- learning: audit data, fitting, simulation, batch posteriors (cli_learn) ---
# isort: split
from kneehip_bn.io.audit_report import AuditReport
from kneehip_bn.io.counting import audit_counts
from kneehip_bn.io.counts import AuditCounts, merge_counts
from kneehip_bn.io.counts_file import read_counts
from kneehip_bn.io.encode import encode_audit, validate_audit
from kneehip_bn.io.mapping import load_mapping
from kneehip_bn.io.sources import read_audit
from kneehip_bn.learning.batch import batch_posteriors
from kneehip_bn.learning.fit_report import FitReport
from kneehip_bn.learning.fitter import PriorFitter, fit_priors
from kneehip_bn.learning.simulate import simulate_audit
from kneehip_bn.learning.structure import check_structure

# --- teaching: explanations, what-if, next test, conflict, sensitivity (cli_teach) ---
# isort: split
from kneehip_bn.teaching.conflict import Conflict, conflict
from kneehip_bn.teaching.explain import Explanation, explain
from kneehip_bn.teaching.next_test import next_best_test
from kneehip_bn.teaching.plots import show_inference
from kneehip_bn.teaching.robustness import credible_intervals, sensitivity
from kneehip_bn.teaching.what_if import what_if

# --- causal: counterfactuals, PN/PS, Shapley values, flips, MPE (cli_causal) ---
# isort: split
from kneehip_bn._util.version import __version__
from kneehip_bn.causal.attribution import shapley
from kneehip_bn.causal.counterfactuals import counterfactual, probability_of_causation
from kneehip_bn.causal.flips import flip
from kneehip_bn.causal.maxproduct import mpe

__all__ = [
    "SHIPPED_MODELS",
    "AuditCounts",
    "AuditReport",
    "Conflict",
    "DataError",
    "Diagnosis",
    "Engine",
    "EvidenceError",
    "Explanation",
    "FitReport",
    "ImpossibleEvidenceError",
    "KneeHipError",
    "ModelFileError",
    "ModelSpec",
    "NotFittedError",
    "OutputExistsError",
    "ParameterError",
    "PriorFitter",
    "UnknownNameError",
    "__version__",
    "apply_overrides",
    "audit_counts",
    "batch_posteriors",
    "build_network",
    "check_structure",
    "conflict",
    "counterfactual",
    "credible_intervals",
    "diagnose",
    "encode_audit",
    "explain",
    "export_network",
    "fit_priors",
    "flip",
    "get_engine",
    "load_mapping",
    "load_model",
    "load_spec",
    "merge_counts",
    "mpe",
    "next_best_test",
    "probability_of_causation",
    "query",
    "read_audit",
    "read_counts",
    "read_network",
    "save_spec",
    "sensitivity",
    "set_leak",
    "set_link",
    "set_prior",
    "set_row",
    "shapley",
    "shipped_model_path",
    "show_inference",
    "simulate_audit",
    "validate_audit",
    "validate_spec",
    "what_if",
]
