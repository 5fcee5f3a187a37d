"""The error hierarchy: built-in bases, the one problem record, the standard messages."""

from __future__ import annotations

import pytest

from kneehip_bn.errors import (
    KneeHipError,
    ModelFileError,
    ParameterError,
    Problem,
    UnknownNameError,
)


def test_problem_renders_where_expected_found_hint_and_line():
    p = Problem("nodes.a.states", "unique labels", "['x', 'x']")
    assert str(p) == "at nodes.a.states: expected unique labels, found ['x', 'x']"
    p = Problem("nodes.a", "a known field", "'colour'", "did you mean 'color'?", line=7)
    assert str(p) == ("at nodes.a (line 7): expected a known field, found 'colour'; "
                      "did you mean 'color'?")
    with pytest.raises(AttributeError):
        p.where = "elsewhere"  # a record, not a builder


def test_model_file_error_lists_its_records():
    one = Problem("format", "'kneehip-bn/1'", "2")
    err = ModelFileError([one, "at name: expected a non-empty string, found None"], source="m.yaml")
    assert err.records == [one]
    assert err.problems == [str(one), "at name: expected a non-empty string, found None"]
    assert str(err).startswith("model file m.yaml has 2 problems:\n  - at format")
    assert str(ModelFileError(one)) == f"model specification: {one}"
    assert isinstance(err, ValueError) and isinstance(err, KneeHipError)


def test_unknown_name_message_and_parameter_error_bases():
    err = UnknownNameError.for_name("node", "hip_pian", ["hip_pain", "knee_pain"], where="evidence")
    assert str(err) == ("evidence: unknown node 'hip_pian': expected one of hip_pain, knee_pain; "
                        "did you mean 'hip_pain'?")
    assert str(UnknownNameError.for_name("node", "zzz", ["a"])) == "unknown node 'zzz': expected one of a"
    assert issubclass(ParameterError, ValueError) and issubclass(ParameterError, KneeHipError)
