"""kneehip_bn: a Bayesian network of co-occurring knee and hip pain.

A teaching and research model, not a medical device. The clinical knowledge lives in
``models/knee_hip.yaml`` (every number with its source); this package loads it into a
real pgmpy ``DiscreteBayesianNetwork``, answers diagnosis and what-if questions through a
compiled junction-tree engine, and fits the priors to clinical audit data.

Examples
--------
>>> from kneehip_bn import diagnose
>>> diagnose({"knee_effusion": "present"}).origins.index[0]
'knee_pathology'
"""

from .engine import Engine, get_engine
from .errors import (
    DataError,
    EvidenceError,
    ImpossibleEvidenceError,
    KneeHipError,
    ModelFileError,
    NotFittedError,
    UnknownNameError,
)
from .network import build_network, load_model
from .queries import Diagnosis, diagnose, query
from .readwrite import export_network, read_network
from .spec import (
    ModelSpec,
    apply_overrides,
    load_spec,
    save_spec,
    set_leak,
    set_link,
    set_prior,
    set_row,
    validate_spec,
)

# --- learning: audit data, fitting, simulation, batch posteriors (cli_learn) ---

# --- teaching: explanations, what-if, next test, conflict, sensitivity (cli_teach) ---
# isort: split
from .explain import Conflict, Explanation, conflict, explain, next_best_test, what_if
from .plots import show_inference
from .sensitivity import credible_intervals, sensitivity

__version__ = "0.1.0"

__all__ = [
    "Conflict",
    "DataError",
    "Diagnosis",
    "Engine",
    "EvidenceError",
    "Explanation",
    "ImpossibleEvidenceError",
    "KneeHipError",
    "ModelFileError",
    "ModelSpec",
    "NotFittedError",
    "UnknownNameError",
    "__version__",
    "apply_overrides",
    "build_network",
    "conflict",
    "credible_intervals",
    "diagnose",
    "explain",
    "export_network",
    "get_engine",
    "load_model",
    "load_spec",
    "next_best_test",
    "query",
    "read_network",
    "save_spec",
    "sensitivity",
    "set_leak",
    "set_link",
    "set_prior",
    "set_row",
    "show_inference",
    "validate_spec",
    "what_if",
]
