"""Small HTML pieces for Jupyter's rich display (``_repr_html_``) and the HTML report: tables,
figures and images as ``data:`` URIs (so a notebook or a page holds them inline, offline)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from typing import Any

STYLE = "border-collapse:collapse;font-size:.85em"
CELL = "border:1px solid #ddd;padding:2px 7px"


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_uri(fig, dpi: int = 90) -> str:
    """A matplotlib figure as a PNG data URI; the figure is closed (it is not shown again)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return png_uri(buf.getvalue())


def image_uri(img: Any) -> str:
    """An image as a PNG data URI: uint8 (C, H, W) tensor, (H, W[, C]) array or PIL image."""
    from PIL import Image

    if not isinstance(img, Image.Image):
        a = img.permute(1, 2, 0).numpy() if hasattr(img, "permute") else img
        a = a[:, :, 0] if a.ndim == 3 and a.shape[2] == 1 else a[..., :3] if a.ndim == 3 else a
        img = Image.fromarray(a)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return png_uri(buf.getvalue())


def img_tag(uri: str, alt: str, width: int | None = None) -> str:
    size = f" width='{width}'" if width else ""
    return f"<img alt='{html.escape(alt)}' src='{uri}'{size} style='max-width:100%'>"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str | None = None,
          right: Sequence[int] = ()) -> str:
    """An HTML table; cells are escaped (pass numbers already formatted); columns whose index is
    in ``right`` are right-aligned (numbers)."""

    def row(cells: Sequence[Any], tag: str) -> str:
        return "<tr>" + "".join(
            f"<{tag} style='{CELL};text-align:{'right' if i in right else 'left'}'>"
            f"{html.escape(str(c))}</{tag}>" for i, c in enumerate(cells)) + "</tr>"

    head = f"<caption style='text-align:left'>{html.escape(caption)}</caption>" if caption else ""
    body = "".join(row(r, "td") for r in rows)
    return f"<table style='{STYLE}'>{head}<thead>{row(header, 'th')}</thead>{body}</table>"


def bars(items: Sequence[tuple[str, float]], *, width: int = 160) -> str:
    """Horizontal bars for ``(label, fraction in [0, 1])``, best first: a top-5."""
    lines = []
    for label, p in items:
        w = max(1, round(width * min(max(p, 0.0), 1.0)))
        lines.append(f"<div style='display:flex;align-items:center;gap:6px;font-size:.85em'>"
                     f"<span style='display:inline-block;width:{w}px;height:.8em;"
                     f"background:#4c78a8'></span><span>{html.escape(label)} ({p:.2f})</span>"
                     f"</div>")
    return "".join(lines)


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"
