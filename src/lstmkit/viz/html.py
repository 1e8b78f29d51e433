"""Self-contained HTML pages: one file with its style, script and data inlined.

A page must open from disk (file://) in any browser with no network, so nothing is fetched:
the template's ``{{style}}``, ``{{script}}`` and ``{{data}}`` markers are replaced by the
package's CSS and JavaScript files and by the page's data as JSON in a
``<script type="application/json" id="data">`` element (read with ``JSON.parse``). Large
float arrays travel as base64 of little-endian float32 (:func:`float32_base64`), which the
page turns back into a ``Float32Array`` without loss.
"""

from __future__ import annotations

import base64
import html
import json
from importlib import resources
from pathlib import Path

import numpy as np

from lstmkit.lm.checkpoint import write_atomic


def asset(package: str, name: str) -> str:
    """The text of a file shipped inside ``package`` (e.g. ``lstmkit.viz.assets``)."""
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def float32_base64(values: np.ndarray) -> str:
    """``values`` as little-endian float32 bytes, base64-encoded; row-major order."""
    array = np.ascontiguousarray(values, dtype="<f4")
    if not np.isfinite(array).all():
        raise ValueError("a page's arrays must be finite; the trace has NaN or infinity")
    return base64.b64encode(array.tobytes()).decode("ascii")


def json_for_script(data: object) -> str:
    """JSON that is safe inside a <script> element: '</' cannot close it early."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text.replace("</", "<\\/")


ERROR_BANNER = """<div id="page-error" role="alert" hidden style="background:#ffebe9;color:#82071e;\
padding:8px 16px;font:14px sans-serif;border-bottom:1px solid #ff818266"></div>
<script>
// a script error would leave a blank or frozen page; say what broke instead
window.addEventListener("error", function (e) {
  var banner = document.getElementById("page-error");
  banner.textContent = "This page hit an error in this browser: " + e.message;
  banner.hidden = false;
});
</script>"""
"""Put first in every page's body, before the page's own script can fail."""


def render(template: str, *, title: str, style: str, script: str, data: object) -> str:
    """The template with its markers filled (``title`` HTML-escaped) and
    :data:`ERROR_BANNER` right after the opening ``<body>`` tag."""
    if template.count("<body>") != 1:
        raise ValueError("the page template must have exactly one plain <body> tag")
    filled = template.replace("<body>", "<body>\n" + ERROR_BANNER, 1)
    for marker, value in (
        ("{{title}}", html.escape(title)),
        ("{{style}}", style),
        ("{{data}}", json_for_script(data)),
        ("{{script}}", script),  # last: the script may itself contain marker-like text
    ):
        if marker not in filled:
            raise ValueError(f"the page template has no {marker} marker")
        filled = filled.replace(marker, value, 1)
    return filled


def write_page(path: Path, page: str) -> Path:
    """Write ``page`` to ``path`` atomically (a reader never sees half a page)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, page.encode("utf-8"))
    return path
