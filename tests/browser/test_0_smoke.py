"""Smoke test of the harness: a plain ipywidgets widget renders in this JupyterLab.

Runs first (file name). If this passes and the dashboard tests fail, the problem is in
bertlab's widget, not in the server, the browser or the widget manager.
"""

from __future__ import annotations

from .labharness import (
    ARTIFACTS,
    open_notebook,
    prompts,
    run_all,
    wait_for,
    wait_kernel_ready,
    write_notebook,
)


def test_ipywidgets_slider_renders_in_jupyterlab(harness, jupyter):
    nb = "smoke.ipynb"
    cell = "import ipywidgets\nipywidgets.IntSlider(value=7, description='smoke')"
    write_notebook(jupyter, nb, [cell])
    page = harness.new_page("smoke")
    open_notebook(page, jupyter.lab_url(nb))
    wait_kernel_ready(page, jupyter, nb)
    run_all(page)
    wait_for(
        lambda: page.locator(".jp-OutputArea-output .widget-slider").count() > 0,
        60,
        "the IntSlider to render in the cell output",
        lambda: f"prompts={prompts(page)}, console={harness.console('smoke')[-5:]}",
    )
    slider = page.locator(".jp-OutputArea-output .widget-slider").first
    assert slider.locator(".widget-label").inner_text() == "smoke"
    assert slider.locator(".widget-readout").inner_text().strip() == "7"
    page.screenshot(path=str(ARTIFACTS / "smoke-ipywidgets.png"))
    jupyter.shutdown_kernel(nb)
