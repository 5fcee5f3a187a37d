"""Figures are checked for content: the boxes, edges, highlighted paths, bar counts, bar
lengths and labels that a student would read, not only that they draw."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_hex

from basic import BASIC
from conftest import tiny_families
from kneehip_bn import (
    conflict,
    credible_intervals,
    diagnose,
    explain,
    get_engine,
    next_best_test,
    sensitivity,
    what_if,
)
from kneehip_bn.teaching.plots import (
    HIGHLIGHT_COLOR,
    draw_network,
    layered_layout,
    plot_conflict,
    plot_credible_intervals,
    plot_explanation,
    plot_next_test,
    plot_origins,
    plot_tornado,
    plot_what_if,
    save_figure,
    show_inference,
)
from oracle import BruteForce

TINY_EDGES = {("age", "knee_oa"), ("age", "hip_oa"), ("knee_oa", "gait"), ("hip_oa", "gait"),
              ("gait", "limp"), ("knee_oa", "pain_level")}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def edges_of(ax) -> dict[tuple[str, str], object]:
    out = {}
    for p in ax.patches:
        gid = p.get_gid() or ""
        if gid.startswith("edge:"):
            a, b = gid[5:].split("->")
            out[(a, b)] = p
    return out


def boxes_of(ax) -> dict[str, object]:
    return {p.get_gid()[5:]: p for p in ax.patches if (p.get_gid() or "").startswith("node:")}


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_draw_network_content(tiny_spec):
    bf = BruteForce(tiny_families())
    ev = {"limp": "present"}
    post = get_engine(tiny_spec).posterior(ev)
    ax = draw_network(tiny_spec, posteriors=post, evidence=ev,
                      highlight=[("knee_oa", "gait"), ("gait", "limp")])
    assert set(boxes_of(ax)) == {"age", "knee_oa", "hip_oa", "gait", "limp", "pain_level"}
    edges = edges_of(ax)
    assert set(edges) == TINY_EDGES
    red = {e for e, p in edges.items()
           if to_hex(p.get_edgecolor()) == HIGHLIGHT_COLOR and p.get_linewidth() > 2}
    assert red == {("knee_oa", "gait"), ("gait", "limp")}
    # the observed node is outlined and shows its state; the others show their posterior
    assert boxes_of(ax)["limp"].get_linewidth() > 2
    assert boxes_of(ax)["gait"].get_linewidth() < 1
    assert "= present" in texts(ax)
    p_knee = bf.marginal(["knee_oa"], ev)[1]
    assert f"P(present)={p_knee:.2f}" in texts(ax)
    p_old = bf.marginal(["age"], ev)[1]  # no present state: the last state is shown
    assert f"P(old)={p_old:.2f}" in texts(ax)
    labels = [t for t in ax.get_legend().get_texts()]
    assert "path carrying the evidence" in [t.get_text() for t in labels]


def test_draw_network_marks_interventions(tiny_spec):
    ax = draw_network(tiny_spec, do={"gait": "present"})
    assert boxes_of(ax)["gait"].get_linestyle() == "--"
    edges = edges_of(ax)
    cut = {e for e, p in edges.items() if p.get_linestyle() == ":"}
    assert cut == {("knee_oa", "gait"), ("hip_oa", "gait")}
    assert "do = present" in texts(ax)


def test_layered_layout(shipped_spec):
    parents = {n: list(s.parents) for n, s in shipped_spec.nodes.items()}
    groups = {n: s.group for n, s in shipped_spec.nodes.items()}
    pos = layered_layout(parents, groups)
    assert len(set(pos.values())) == len(pos)  # no two nodes at the same place
    order = ["context", "origin", "mechanism", "finding", "test"]
    for a, b in itertools.pairwise(order):
        assert min(pos[n][1] for n in pos if groups[n] == a) > max(
            pos[n][1] for n in pos if groups[n] == b), (a, b)
    # mechanism sub-layers follow causal depth
    assert pos["altered_gait"][1] > pos["hip_joint_stress"][1]
    assert pos["weight_shift"][1] > pos["contralateral_hip_overload"][1]


def test_show_inference_highlights_the_explanation_paths():
    ev = {"knee_effusion": "present", "knee_pain": "present", "antalgic_gait_observed": "present"}
    ax = show_inference(ev, model=BASIC)
    ex = explain(ev, model=BASIC)
    want = set(ex.highlight_edges())
    assert ("knee_pathology", "knee_effusion") in want
    red = {e for e, p in edges_of(ax).items() if p.get_linewidth() > 2}
    assert red == want
    assert ex.leading[0].replace("_", " ") in ax.get_title()
    p_hip = float(ex.posteriors["hip_pathology"][1])
    assert f"P(present)={p_hip:.2f}" in texts(ax)
    for n in ev:
        assert boxes_of(ax)[n].get_linewidth() > 2
    # top=2 adds the second origin's paths
    ax2 = show_inference(ev, top=2, model=BASIC)
    red2 = {e for e, p in edges_of(ax2).items() if p.get_linewidth() > 2}
    assert red2 == set(ex.highlight_edges(top=2)) and red2 >= red


def test_plot_origins_keeps_working():
    dx = diagnose({"knee_pain": "present"}, model=BASIC)
    ax = plot_origins(dx)
    assert len(ax.patches) == 2 * len(dx.origins)


def test_plot_explanation_bars():
    ev = {"knee_effusion": "present", "hip_pain": "present", "low_back_pain": "absent"}
    ex = explain(ev, model=BASIC)
    ax = plot_explanation(ex, origin="hip_pathology")
    t = ex.table[ex.table["origin"] == "hip_pathology"]
    assert len(ax.patches) == len(ev)
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx(t["woe"].tolist())
    for p, w in zip(ax.patches, widths):
        assert to_hex(p.get_facecolor()) == (HIGHLIGHT_COLOR if w > 0 else "#3182bd")
    ticks = sorted(zip([p.get_y() for p in ax.patches], [x.get_text() for x in
                                                          ax.get_yticklabels()]))
    assert [lab for _, lab in ticks][::-1] == [
        "knee effusion = present", "hip pain = present", "low back pain = absent"]
    assert "hip pathology" in ax.get_title()


def test_plot_what_if_bars():
    df = what_if({"knee_pain": "present", "hip_pain": "present"},
                 {"treated": {"do": {"knee_pathology": "absent"}, "remove": ["hip_pain"]},
                  "effusion": {"add": {"knee_effusion": "present"}}},
                 targets=["hip_pain", "knee_pathology", "hip_pathology"], model=BASIC)
    ax = plot_what_if(df)
    assert len(ax.patches) == df.size == 9
    assert sorted(p.get_width() for p in ax.patches) == pytest.approx(sorted(df.to_numpy().ravel()))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "base" and legend[1].startswith("treated: ")
    assert "do(knee_pathology=absent)" in legend[1]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["hip pain", "knee pathology",
                                                            "hip pathology"]


def test_plot_tornado_bars(tiny_spec):
    s = sensitivity("knee_oa", evidence={"limp": "present"}, model=tiny_spec)
    ax = plot_tornado(s, top=5)
    assert len(ax.patches) == 10
    base = s.attrs["posterior"]
    lows, highs = ax.patches[:5], ax.patches[5:]
    assert [p.get_width() for p in lows] == pytest.approx((s["posterior_lo"].head(5) - base).tolist())
    assert [p.get_width() for p in highs] == pytest.approx((s["posterior_hi"].head(5) - base).tolist())
    labels = [t.get_text().split()[0] for t in ax.get_yticklabels()]
    assert labels == list(s.index[:5])
    assert f"{base:.2f}" in ax.get_title()


def test_plot_next_test_conflict_and_intervals(tiny_spec):
    nbt = next_best_test({"knee_pain": "present"}, model=BASIC)
    ax = plot_next_test(nbt, top=4)
    assert [p.get_width() for p in ax.patches] == pytest.approx(
        nbt["expected_information_gain"].head(4).tolist())
    assert ax.get_yticklabels()[0].get_text() == nbt.index[0].replace("_", " ")
    assert ax.patches[0].get_y() > ax.patches[-1].get_y()  # best on top

    c = conflict({"low_back_pain": "present", "knee_effusion": "present"}, BASIC)
    ax = plot_conflict(c)
    assert [p.get_width() for p in ax.patches] == pytest.approx(c.contributions["contribution"].tolist())
    assert ("CONFLICT" in ax.get_title()) == c.flagged

    ci = credible_intervals({"limp": "present"}, model=tiny_spec, n_draws=30, progress=False)
    ax = plot_credible_intervals(ci)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["knee oa", "hip oa"]
    crosses = next(ln for ln in ax.lines if ln.get_marker() == "x")
    assert list(crosses.get_xdata()) == pytest.approx(ci["posterior"].tolist())


@pytest.mark.parametrize("ext", ["png", "svg"])
def test_save_figure(tmp_path, tiny_spec, ext):
    ax = draw_network(tiny_spec)
    path = save_figure(ax, tmp_path / f"net.{ext}")
    data = (tmp_path / f"net.{ext}").read_bytes()
    assert path.endswith(ext) and len(data) > 1000
    assert (b"<svg" in data) if ext == "svg" else data[:4] == b"\x89PNG"
    with pytest.raises(FileExistsError):
        save_figure(draw_network(tiny_spec), tmp_path / f"net.{ext}", overwrite=False)


def test_plot_explanation_unknown_origin():
    ex = explain({"knee_pain": "present"}, model=BASIC)
    with pytest.raises(KeyError, match="did you mean 'hip_pathology'"):
        plot_explanation(ex, origin="hip_pathologyy")
    assert np.isfinite(ex.table["woe"]).all()
