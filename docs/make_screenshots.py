"""Make the README's classroom picture: ``docs/img/classroom.png``.

Starts the classroom server (the shipped default, ``knee_hip``) on a free loopback port, opens it in
headless Chromium (``/usr/bin/chromium``, Playwright), builds a case by clicking as a student
would, and saves the page. Run from the repository root::

    python docs/make_screenshots.py              # writes docs/img/classroom.png
    python docs/make_screenshots.py --out /tmp/x.png --model knee_hip

Needs the ``serve`` and ``test`` extras (starlette, uvicorn, playwright) and Chromium.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASE = [("age_group", "60_plus"), ("knee_pain", "present"), ("hip_pain", "present"),
        ("groin_pain", "present"), ("knee_effusion", "absent"),
        ("hip_internal_rotation_limited", "present")]  # nodes a model lacks are skipped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="knee_hip")
    ap.add_argument("--out", default=str(HERE / "img" / "classroom.png"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from kneehip_bn.serve.background import running_server

    with running_server(args.model) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "/")
        page.wait_for_function("document.body.dataset.ready === '1'")
        for node, state in CASE:
            if page.locator(f'[data-node="{node}"]').count() == 0:
                continue  # a model without this node
            if page.locator(f"#ctx-{node}").count():
                page.select_option(f"#ctx-{node}", state)
            else:
                page.click(f'#sections button[data-node="{node}"][data-state="{state}"]')
            page.wait_for_function("document.body.dataset.busy === '0'")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":  # the server's worker process imports this file: keep the guard
    sys.exit(main())
