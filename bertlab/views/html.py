"""``to_html``: the dashboard as one self-contained HTML file (no server, no network).

The file embeds the built front end (``bertlab/static/dashboard.js``, plotly.js and the CSS
included) and the run's widget state (``protocol.state``), and renders it with the same code as
the live widget (``renderStandalone`` in ``js/src/standalone.js``). It opens from ``file://``
on a machine with no internet.

All run text (class names, findings, notes, the title) is data: it is embedded as JSON inside
a ``<script type="application/json">`` element with ``<``, ``>`` and ``&`` escaped as ``\\u``
sequences, and the front end inserts it with ``textContent``, so it is never parsed as HTML.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

from bertlab.run import Run
from bertlab.views import protocol
from bertlab.views.dashboard import STATIC

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ margin: 0; padding: 16px; font-family: system-ui, sans-serif; background: #fff; }}
</style>
</head>
<body>
<div id="bertlab-report"></div>
<script type="application/json" id="bertlab-state">{state}</script>
<script type="application/octet-stream" id="bertlab-bundle">{bundle}</script>
<script type="module">
const text = (id) => document.getElementById(id).textContent;
const bytes = (b64) => Uint8Array.from(atob(b64.trim()), (c) => c.charCodeAt(0));
const state = JSON.parse(text("bertlab-state"));
if (state.snapshot != null) state.snapshot = bytes(state.snapshot).buffer;
const code = new Blob([bytes(text("bertlab-bundle"))], {{ type: "text/javascript" }});
const url = URL.createObjectURL(code);
const mod = await import(url);
mod.renderStandalone(document.getElementById("bertlab-report"), state);
</script>
</body>
</html>
"""


def _script_json(value: object) -> str:
    """JSON that cannot end its ``<script>`` element or open a tag or entity."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(state: dict, title: str) -> str:
    """A standalone page that renders ``state`` (a run's widget state, or a comparison's
    ``{"kind": "compare", "runs": [...]}``) with the built front end."""
    bundle_path = STATIC / "dashboard.js"
    if not bundle_path.exists():
        raise FileNotFoundError(
            f"{bundle_path} is missing: the front end was not built "
            "(pip install -e . builds it; or: cd js && npm ci && npm run build)"
        )
    state = dict(state, title=title)
    if isinstance(state.get("snapshot"), bytes):
        state["snapshot"] = base64.b64encode(state["snapshot"]).decode("ascii")
    return _TEMPLATE.format(
        title=html.escape(title),
        state=_script_json(state),
        bundle=base64.b64encode(bundle_path.read_bytes()).decode("ascii"),
    )


def render_html(run: Run, title: str | None = None) -> str:
    """The standalone HTML report of ``run`` as a string."""
    model_class = run.meta.get("model", {}).get("model_class") or "run"
    title = title or f"bertlab report: {model_class}"
    return render_page(protocol.state(run, title=title), title)


def write_page(path: str | os.PathLike, state: dict, title: str) -> Path:
    """Write `render_page` to ``path`` (atomically); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_page(state, title), encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_html(run: Run, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write the standalone HTML report of ``run`` to ``path`` (atomically); returns the path."""
    model_class = run.meta.get("model", {}).get("model_class") or "run"
    title = title or f"bertlab report: {model_class}"
    return write_page(path, protocol.state(run, title=title), title)
