"""The one-page HTML report of ``monaicxr predict``: a sortable table and a detail section per image.

The page is self-contained (opened from a mail attachment or a USB stick, it shows everything): images are
inlined as base64 PNG thumbnails (``data:`` URIs), the style is inline CSS and sorting is a few lines of inline
JavaScript (click a column heading; click again to reverse). Nothing is fetched from anywhere.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

__all__ = ["write_predict_report", "thumbnail_uri"]

TABLE_THUMB = 96
DETAIL_THUMB = 320

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:middle}
th{background:#eee;cursor:pointer;user-select:none}th:hover{background:#ddd}
tr.skipped td{background:#fde8e8}td.warn{color:#a15c00}.note{color:#a15c00}
section.detail{border-top:1px solid #ccc;margin-top:1em;padding-top:.5em}
section.detail img{margin-right:1em;image-rendering:pixelated}
"""

_JS = """
document.querySelectorAll('#results th').forEach((th, i) => th.addEventListener('click', () => {
  const tb = th.closest('table').tBodies[0], rows = Array.from(tb.rows), up = th.dataset.dir !== 'up';
  th.dataset.dir = up ? 'up' : 'down';
  const key = r => { const v = r.cells[i].dataset.v ?? r.cells[i].textContent.trim(), n = Number(v);
    return v === '' ? -Infinity : isNaN(n) ? v.toLowerCase() : n; };
  rows.sort((a, b) => { const x = key(a), y = key(b);
    return typeof x === typeof y ? (x > y) - (x < y) : (typeof x === 'number' ? -1 : 1); });
  if (!up) rows.reverse();
  rows.forEach(r => tb.appendChild(r));
}));
"""


def thumbnail_uri(path: str | Path, size: int) -> str:
    """A ``data:image/png;base64,...`` URI of the PNG at ``path`` shrunk to fit ``size`` x ``size``."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((size, size))
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(out: Path, rel: str, size: int, alt: str) -> str:
    if not rel or not (out / rel).is_file():
        return ""
    return f'<img src="{thumbnail_uri(out / rel, size)}" alt="{html.escape(alt)}" title="{html.escape(rel)}">'


def _top_probability(row: dict, class_cols: Sequence[str]) -> str:
    values = [float(row[c]) for c in class_cols if row.get(c) not in (None, "")]
    return f"{max(values):.3f}" if values else ""


def write_predict_report(path: str | Path, rows: Sequence[dict], columns: Sequence[str], summary: dict) -> Path:
    """Write ``report.html`` for the rows of ``predictions.csv`` (``warnings`` as a list) and the run summary.

    Image paths in the rows are relative to the report's folder, which holds them.
    """
    path = Path(path)
    out = path.parent
    e = html.escape
    class_cols = [c for c in columns if c.startswith("p_")]
    heads = ["#", "overlay", "file", "status", "predicted class", "probability", "lung area",
             "infected (both lungs)", "severity", "warnings / reason"]  # fmt: skip
    body = []
    details = []
    for i, r in enumerate(rows, 1):
        notes = "; ".join([*r["warnings"], *([r["reason"]] if r.get("reason") else [])])
        cells = [
            f'<td data-v="{i}"><a href="#img{i}">{i}</a></td>' if r["status"] == "predicted" else f"<td>{i}</td>",
            f"<td>{_img(out, r.get('overlay', ''), TABLE_THUMB, 'overlay of ' + r['file'])}</td>",
            f"<td>{e(r['file'])}</td>",
            f"<td>{e(r['status'])}</td>",
            f"<td>{e(r.get('predicted_class', ''))}</td>",
            f"<td>{_top_probability(r, class_cols)}</td>",
            f"<td>{e(r.get('lung_area_fraction', ''))}</td>",
            f"<td>{e(r.get('infected_fraction_total', ''))}</td>",
            f"<td>{e(r.get('severity_total', ''))}</td>",
            f'<td class="warn">{e(notes)}</td>',
        ]
        body.append(f'<tr class="{e(r["status"])}">' + "".join(cells) + "</tr>")
        if r["status"] != "predicted":
            continue
        fields = "".join(
            f"<tr><th>{e(c)}</th><td>{e('; '.join(r[c]) if c == 'warnings' else str(r.get(c, '')))}</td></tr>"
            for c in columns
            if r.get(c) not in (None, "", [])
        )
        pictures = _img(out, r.get("overlay", ""), DETAIL_THUMB, "overlay") + _img(
            out, r.get("gradcam", ""), DETAIL_THUMB, "Grad-CAM saliency"
        )
        details.append(
            f'<section class="detail" id="img{i}"><h3>{i}. {e(r["file"])}</h3><div>{pictures}</div>'
            f'<table class="fields">{fields}</table></section>'
        )
    models = "".join(
        f"<li>{e(role)}: {e(m['bundle'])} ({e(Path(m['weights']).name)})"
        + (f", {e(m['calibration'])}, Grad-CAM layer {e(str(m['gradcam_layer']))}" if "calibration" in m else "")
        + "</li>"
        for role, m in summary["models"].items()
    )
    notes = "".join(f'<li class="note">{e(n)}</li>' for n in summary.get("notes", []))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>monaicxr predict report</title><style>{_CSS}</style></head>
<body>
<h1>monaicxr predict</h1>
<p><b>Research only, not a medical device.</b> {e(summary["line"])}.</p>
<ul>{models}{notes}</ul>
<table id="results"><thead><tr>{"".join(f"<th>{e(h)}</th>" for h in heads)}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody></table>
{chr(10).join(details)}
<script>{_JS}</script>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
