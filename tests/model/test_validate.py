"""Validation: one test per message (where, expected, found, the hint)."""

from __future__ import annotations

import pytest
from model_files import LIMP_ROWS, load_text, variant

from conftest import TINY_YAML
from kneehip_bn import ModelFileError, validate_spec
from kneehip_bn.model.yamlio import parse_spec


def test_unknown_parent_suggests(tmp_path):
    with pytest.raises(ModelFileError, match=r"nodes\.limp\.parents: expected names of nodes "
                       r"defined in this file, found 'giat'; did you mean 'gait'\?"):
        load_text(tmp_path, variant(("parents: [gait]", "parents: [giat]")))


def test_unknown_source_suggests(tmp_path):
    text = variant(("leak: {p: 0.1, source: guess}", "leak: {p: 0.1, source: gues}"))
    with pytest.raises(ModelFileError, match=r"nodes\.gait\.noisy_or\.leak\.source: expected the "
                       r"id of an entry in `sources`, found 'gues'; did you mean 'guess'\?"):
        load_text(tmp_path, text)


def test_missing_source(tmp_path):
    text = variant(("leak: {p: 0.1, source: guess}", "leak: {p: 0.1}"))
    with pytest.raises(ModelFileError, match=r"every number needs a source"):
        load_text(tmp_path, text)


def test_cycle_is_shown(tmp_path):
    text = variant(
        ("parents: [knee_oa, hip_oa]", "parents: [knee_oa, hip_oa, limp]"),
        ("        - {parent: hip_oa, p: 0.4, source: census}\n",
         "        - {parent: hip_oa, p: 0.4, source: census}\n"
         "        - {parent: limp, p: 0.1, source: guess}\n"))
    with pytest.raises(ModelFileError, match=r"expected a directed acyclic graph, found 'the cycle "
                       r"(gait -> limp -> gait|limp -> gait -> limp)'; remove one"):
        load_text(tmp_path, text)


def test_row_not_summing_to_one_names_node_and_configuration(tmp_path):
    text = variant(("{absent: 0.95, present: 0.05}\n        source: guess\n      - given: {gait",
                    "{absent: 0.95, present: 0.06}\n        source: guess\n      - given: {gait"))
    with pytest.raises(ModelFileError, match=r"nodes\.limp\.table\[0\]\.probabilities: expected "
                       r"probabilities summing to 1 \(within 1e-9\), found 'sum 1\.01 for "
                       r"P\(limp \| gait=absent\)'"):
        load_text(tmp_path, text)


def test_tiny_rounding_error_is_rejected(tmp_path):
    text = variant(("{none: 0.7, mild: 0.2, severe: 0.1}", "{none: 0.7, mild: 0.2, severe: 0.10000001}"))
    with pytest.raises(ModelFileError, match=r"sum 1\.00000001 for P\(pain_level \| knee_oa=absent\)"):
        load_text(tmp_path, text)


def test_missing_parent_configuration(tmp_path):
    text = variant((LIMP_ROWS, LIMP_ROWS.split("      - given: {gait: present}")[0]))
    with pytest.raises(ModelFileError, match=r"nodes\.limp\.table: expected one row per parent "
                       r"configuration, found 'no row for gait=present'"):
        load_text(tmp_path, text)


def test_duplicate_configuration(tmp_path):
    text = variant((LIMP_ROWS, LIMP_ROWS + LIMP_ROWS.split("      - given: {gait: present}")[0]))
    with pytest.raises(ModelFileError, match=r"nodes\.limp\.table\[2\]\.given: expected each "
                       r"parent configuration once, found 'gait=absent again \(first at row 0\)'"):
        load_text(tmp_path, text)


def test_unknown_state_in_given_suggests(tmp_path):
    text = variant(("given: {gait: present}", "given: {gait: presnt}"))
    with pytest.raises(ModelFileError, match=r"nodes\.limp\.table\[1\]\.given\.gait: expected a "
                       r"state of gait.*found 'presnt'; did you mean 'present'\?"):
        load_text(tmp_path, text)


def test_unknown_state_in_probabilities_suggests(tmp_path):
    text = variant(("{none: 0.2, mild: 0.5, severe: 0.3}", "{none: 0.2, mild: 0.5, sever: 0.3}"))
    with pytest.raises(ModelFileError, match=r"pain_level\.table\[1\]\.probabilities: expected one "
                       r"probability per state.*missing \['severe'\], unknown \['sever'\]\"; "
                       r"did you mean 'severe'\?"):
        load_text(tmp_path, text)


def test_noisy_or_on_three_state_node(tmp_path):
    rows = TINY_YAML[TINY_YAML.index("  pain_level:"):]
    new = ("  pain_level:\n    group: finding\n    states: [none, mild, severe]\n"
           "    parents: [knee_oa]\n    noisy_or:\n      leak: {p: 0.1, source: guess}\n"
           "      links:\n        - {parent: knee_oa, p: 0.5, source: guess}\n")
    with pytest.raises(ModelFileError, match=r"nodes\.pain_level\.noisy_or: expected a two-state "
                       r"node for noisy-OR, found \['none', 'mild', 'severe'\]; use a full `table`"):
        load_text(tmp_path, variant((rows, new)))


def test_link_to_a_non_parent(tmp_path):
    text = variant(("- {parent: hip_oa, p: 0.4, source: census}",
                    "- {parent: hip_oa, p: 0.4, source: census}\n"
                    "        - {parent: age, when: old, p: 0.1, source: guess}"))
    with pytest.raises(ModelFileError, match=r"gait\.noisy_or\.links\[2\]\.parent: expected one "
                       r"of the node's parents \['knee_oa', 'hip_oa'\], found 'age'"):
        load_text(tmp_path, text)


def test_missing_link_for_a_parent(tmp_path):
    text = variant(("        - {parent: hip_oa, p: 0.4, source: census}\n", ""))
    with pytest.raises(ModelFileError, match=r"gait\.noisy_or\.links: expected at least one link "
                       r"for parent 'hip_oa', found 'none'; add a link or remove the parent"):
        load_text(tmp_path, text)


@pytest.mark.parametrize("where, old, new, bad", [
    ("gait.noisy_or.links[1].p", "hip_oa, p: 0.4", "hip_oa, p: 1.5", "1.5"),
    ("gait.noisy_or.leak.p", "leak: {p: 0.1", "leak: {p: -0.1", "-0.1"),
    ("pain_level.table[0].probabilities.none", "{none: 0.7, mild: 0.2, severe: 0.1}",
     "{none: 1.1, mild: -0.2, severe: 0.1}", "1.1"),
    ("limp.table[1].probabilities.present", "{absent: 0.3, present: 0.7}",
     "{absent: 0.3, present: '0.7'}", "'0.7'"),
])
def test_probabilities_out_of_range(tmp_path, where, old, new, bad):
    import re

    with pytest.raises(ModelFileError, match=re.escape(
            f"{where}: expected a probability between 0 and 1, found {bad}")):
        load_text(tmp_path, variant((old, new)))


def test_validation_fills_no_defaults_reading_does(tiny_spec):
    """A two-state parent's link may omit ``when`` in a file (reading fills the second
    state); validating a spec built in Python changes nothing and names what is missing."""
    import copy

    import yaml

    data = yaml.safe_load(TINY_YAML)
    links = data["nodes"]["gait"]["noisy_or"]["links"]
    assert any("when" not in ln for ln in links)
    read = parse_spec(data)
    assert all(ln.when == read.nodes[ln.parent].states[1] for ln in read.nodes["gait"].noisy_or.links)
    spec = copy.deepcopy(tiny_spec)
    spec.nodes["gait"].noisy_or.links[0].when = None
    with pytest.raises(ModelFileError, match=r"gait\.noisy_or\.links\[0\]\.when: expected the "
                       r"activating state of .*found None; name the parent state"):
        validate_spec(spec)
    assert spec.nodes["gait"].noisy_or.links[0].when is None


def test_problems_are_records_with_their_lines(tmp_path):
    text = variant(("parents: [gait]", "parents: [giat]"))
    with pytest.raises(ModelFileError) as info:
        load_text(tmp_path, text)
    (rec,) = info.value.records
    assert (rec.where, rec.found, rec.hint) == ("nodes.limp.parents", "'giat'", "did you mean 'gait'?")
    assert info.value.problems == [str(rec)]
    bad = variant(("    parents: [gait]", "    colour: red\n    parents: [gait]"))
    with pytest.raises(ModelFileError, match=r"\(line \d+\)") as info:
        load_text(tmp_path, bad, "b.yaml")
    (rec,) = info.value.records
    assert rec.where == "nodes.limp" and rec.found == "'colour'"
    assert rec.line == 1 + bad.splitlines().index("    colour: red")
