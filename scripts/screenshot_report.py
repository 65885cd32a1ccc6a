"""Screenshot a standalone bertlab HTML report (``watch.to_html`` / ``bertlab demo``) in Chromium.

Used for the README's picture of the real MiniLM / BBC News run:

    .venv/bin/bertlab demo
    .venv/bin/python scripts/screenshot_report.py out/demo-broken.html docs/demo-report.png \\
        --finding single-class

It opens the file from ``file://`` in Debian's Chromium (``/usr/bin/chromium``, driven by
Playwright with no browser download), optionally clicks one finding in the sidebar so that its
panel, highlighted steps and fix are shown, and saves a PNG of the dashboard.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a bertlab HTML report")
    parser.add_argument("png", type=Path, help="where to save the screenshot")
    parser.add_argument("--finding", help="code of the finding to open in the sidebar")
    parser.add_argument("--panel", help="panel to show (overview, gradients, outputs, ...)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=860)
    args = parser.parse_args(argv)
    if not args.report.is_file():
        parser.error(f"no such report: {args.report}")

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.report.resolve().as_uri())
        page.wait_for_selector(".bertlab-dashboard .bertlab-chart[data-points]", timeout=30_000)
        if args.panel:
            page.click(f'button.bertlab-tab[data-panel="{args.panel}"]')
        if args.finding:
            page.click(f'.bertlab-finding[data-code="{args.finding}"]')
            page.wait_for_selector(".bertlab-finding-detail", timeout=10_000)
        page.wait_for_timeout(1500)  # let plotly finish its transitions
        args.png.parent.mkdir(parents=True, exist_ok=True)
        page.locator(".bertlab-dashboard").screenshot(path=str(args.png))
        browser.close()
    print("wrote", args.png, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
