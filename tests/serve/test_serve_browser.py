"""The classroom page in a real browser: Chromium (system package) driven by Playwright.

A uvicorn server runs on a free loopback port in a thread; the test clicks as a student
would and compares what the page shows with ``kneehip ... --json`` for the same case
(:func:`kneehip_bn.cli.main`). Screenshots of the main views go to pytest's tmp dir (their
paths are printed; ``docs/make_screenshots.py`` makes the README's picture).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")

from playwright.sync_api import sync_playwright  # noqa: E402

from kneehip_bn.cli import main  # noqa: E402
from kneehip_bn.serve.background import running_server  # noqa: E402

BASIC = "knee_hip_basic"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def basic_url():
    with running_server(BASIC) as url:
        yield url


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=30000)
    settle(page)
    page.js_errors = errors
    return page


def settle(page):
    page.wait_for_function("document.body.dataset.busy === '0'", timeout=30000)


def click(page, node, state):
    page.click(f'#sections button[data-node="{node}"][data-state="{state}"]')
    settle(page)


def shown_diagnoses(page):
    return page.eval_on_selector_all(
        "#diagnoses .dx", "els => els.map(e => [e.dataset.origin, Number(e.dataset.posterior),"
                          " Number(e.dataset.prior), e.querySelector('.posterior').textContent])")


def cli_json(capsys, *argv):
    capsys.readouterr()
    assert main([*argv, "--model", BASIC, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def shot(page, tmp_path: Path, name: str) -> Path:
    p = tmp_path / f"{name}.png"
    page.screenshot(path=str(p), full_page=True)
    print(f"screenshot: {p}")
    return p


def test_build_a_case_by_clicking(browser, basic_url, capsys, tmp_path):
    page = open_page(browser, basic_url)
    assert "knee_hip_basic" in page.inner_text("#model-line")
    assert "NOT a medical device" in page.inner_text("#disclaimer")
    before = shown_diagnoses(page)[0][0]
    page.select_option("#ctx-age_group", "40_to_59")
    settle(page)
    for node, state in [("low_back_pain", "present"), ("radiating_leg_pain", "present"),
                        ("femoral_nerve_stretch", "positive")]:
        click(page, node, state)
    rows = shown_diagnoses(page)
    assert rows[0][0] == "lumbar_radiculopathy" != before
    ev = {"age_group": "40_to_59", "low_back_pain": "present",
          "radiating_leg_pain": "present", "femoral_nerve_stretch": "positive"}
    ref = cli_json(capsys, "diagnose", *[x for k, v in ev.items() for x in ("-e", f"{k}={v}")])
    assert [r[0] for r in rows] == [o["name"] for o in ref["origins"]]
    for (_name, post, prior, text), o in zip(rows, ref["origins"]):
        assert post == o["posterior"] and prior == o["prior"]  # exactly the CLI's numbers
        assert text == f"{o['posterior']:.3f}"
    # why and what next are filled; the network shows the observed finding
    assert "lumbar radiculopathy" in page.inner_text("#summary")
    nt = cli_json(capsys, "next-test", *[x for k, v in ev.items() for x in ("-e", f"{k}={v}")])
    first = page.get_attribute("#next-test-table tr[data-finding]", "data-finding")
    assert first == nt[0]["finding"]
    assert page.get_attribute('#graph g[data-node="femoral_nerve_stretch"]',
                              "data-observed") == "positive"
    shot(page, tmp_path, "case_builder")
    # "not examined" removes the finding again
    page.click('#sections button[data-node="femoral_nerve_stretch"][data-state=""]')
    settle(page)
    assert page.get_attribute('#graph g[data-node="femoral_nerve_stretch"]', "data-p")
    assert page.js_errors == []
    page.close()


def test_what_if_and_slider(browser, basic_url, capsys, tmp_path):
    page = open_page(browser, basic_url)
    for node, state in [("knee_pain", "present"), ("hip_pain", "present"),
                        ("knee_effusion", "present")]:
        click(page, node, state)
    page.click("#tab-whatif")
    settle(page)
    page.select_option("#do-node", "knee_pathology")
    page.select_option("#do-state", "absent")
    page.click("#do-add")
    settle(page)
    page.check('input[data-absent="knee_effusion"]')
    settle(page)
    cells = page.eval_on_selector_all(
        "#whatif-result td[data-scenario]",
        "els => els.map(e => [e.closest('tr').dataset.target, e.dataset.scenario, "
        "Number(e.dataset.value)])")
    got = {(t, s): v for t, s, v in cells}
    ref = cli_json(capsys, "what-if", "-e", "knee_pain=present", "-e", "hip_pain=present",
                   "-e", "knee_effusion=present", "--scenario",
                   "intervention:do=knee_pathology=absent", "--scenario",
                   "if_no_knee_effusion:add=knee_effusion=absent")
    want = {(t, s["name"]): s["values"][t] for s in ref["scenarios"] for t in s["values"]}
    assert got == want
    assert got[("knee_pathology", "intervention")] == 0.0
    # a slider for a number of the model moves the posterior live; reset brings it back
    base = dict((r[0], r[1]) for r in shown_diagnoses(page))
    idx = page.eval_on_selector_all(
        "#num-select option", "els => els.findIndex(e => e.textContent.startsWith("
                              "'knee_pain.link.hip_pathology:present '))")
    assert idx >= 0
    page.select_option("#num-select", str(idx))
    page.click("#num-add")
    settle(page)
    slider = page.locator("#sliders input[type=range]").first
    key = slider.get_attribute("data-set")
    slider.evaluate("(e) => { e.value = '0.6'; e.dispatchEvent(new Event('input')); }")
    settle(page)
    moved = dict((r[0], r[1]) for r in shown_diagnoses(page))
    ref2 = cli_json(capsys, "diagnose", "-e", "knee_pain=present", "-e", "hip_pain=present",
                    "-e", "knee_effusion=present", "--set", f"{key}=0.6")
    assert moved == {o["name"]: o["posterior"] for o in ref2["origins"]}
    assert moved["hip_pathology"] > base["hip_pathology"]
    shot(page, tmp_path, "what_if")
    page.click("#num-reset")
    settle(page)
    assert dict((r[0], r[1]) for r in shown_diagnoses(page)) == base
    assert page.js_errors == []
    page.close()


def test_teaching_mode_gates_the_answer(browser, basic_url, tmp_path):
    page = open_page(browser, basic_url)
    page.click("#tab-teach")
    settle(page)
    n = page.locator("#case-select option").count()
    assert n >= 12
    page.select_option("#case-select", label="Knee pain that is not the knee")
    page.click("#case-start")
    settle(page)
    assert page.is_visible("#gate") and "gated" in page.get_attribute("#results", "class")
    assert page.is_disabled('#sections button[data-node="knee_pain"][data-state="present"]')
    shot(page, tmp_path, "teaching_gated")
    steps = 0
    while True:
        page.select_option("#guess", "hip_pathology")
        page.click("#commit")
        assert not page.is_visible("#gate")
        steps += 1
        if page.locator("#next-step").count() == 0:
            break
        page.click("#next-step")
        settle(page)
        assert page.is_visible("#gate")
    assert steps == 3
    assert "Expected diagnosis: hip pathology" in page.inner_text("#answer")
    assert shown_diagnoses(page)[0][0] == "hip_pathology"
    shot(page, tmp_path, "teaching_answer")
    assert page.js_errors == []
    page.close()


def test_red_flag_warning_and_errors(browser, tmp_path, capsys):
    from test_serve_api import _red_flag_model

    model = _red_flag_model(tmp_path)
    with running_server(str(model)) as url:
        page = open_page(browser, url)
        assert page.is_hidden("#redflag")
        assert page.locator('fieldset[data-section="red_flags"]').count() == 1
        click(page, "night_pain", "present")
        assert page.is_visible("#redflag")
        capsys.readouterr()
        assert main(["diagnose", "--model", str(model), "-e", "night_pain=present",
                     "--json"]) == 0
        warning = json.loads(capsys.readouterr().out).get("warning")
        shown = page.inner_text("#redflag")
        assert shown.startswith("REFER: red flag") and "night_pain" in shown
        if warning:  # the library's own warning, word for word
            assert shown == warning
        assert page.is_visible("#regions-box")
        shot(page, tmp_path, "red_flag")
        click(page, "night_pain", "absent")
        assert page.is_hidden("#redflag")
        # an error from the API is shown as the CLI's one line, never a trace
        page.evaluate("() => { state.evidence = {limp: 'present', limpp: 'present'}; "
                      "schedule(); }")
        settle(page)
        assert page.is_visible("#error")
        assert page.inner_text("#error").startswith("error: evidence: unknown node 'limpp'")
        assert "Traceback" not in page.inner_text("#error")
        assert page.js_errors == []
        page.close()
