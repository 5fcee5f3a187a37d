"""kneehip_bn: a Bayesian network of co-occurring knee and hip pain (teaching/research)."""

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
from .spec import (
    ModelSpec,
    load_spec,
    save_spec,
    set_leak,
    set_link,
    set_prior,
    set_row,
    validate_spec,
)

__version__ = "0.1.0"
