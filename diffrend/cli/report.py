"""Pages of a job's results: ``index.html`` tying its pictures, metrics and files together.

The pictures are drawn by :mod:`diffrend.jobs.pictures` and every file is written by
:mod:`diffrend.io.outputs` (atomically: an interrupted job never leaves a half-written
output).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path

from ..io.outputs import write_text


def write_index(
    folder: str | os.PathLike,
    title: str,
    summary: str,
    metrics: dict,
    figures: Sequence[tuple[str, str]],
    files: Sequence[tuple[str, str]],
    settings: dict,
) -> Path:
    """Write ``index.html`` tying a job's outputs together.

    Args:
        folder: the output folder (figures and files are relative paths in it).
        title, summary: heading and one paragraph of text.
        metrics: name -> value, shown as a table.
        figures: (relative path, caption) of images to show.
        files: (relative path, description) of other outputs to link.
        settings: the job's settings, shown folded.

    Returns:
        The path of the written page.
    """
    esc = html.escape

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, list) and v and all(isinstance(x, float) for x in v):
            return ", ".join(f"{x:.3f}" for x in v)
        return str(v)

    rows = "\n".join(f"<tr><th>{esc(str(k))}</th><td>{esc(fmt(v))}</td></tr>"
                     for k, v in metrics.items())
    figs = "\n".join(f'<figure><img src="{esc(p)}" alt="{esc(c)}"><figcaption>{esc(c)}'
                     f"</figcaption></figure>" for p, c in figures)
    links = "\n".join(f'<li><a href="{esc(p)}">{esc(p)}</a>: {esc(d)}</li>' for p, d in files)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse}}th,td{{border:1px solid #ccc;padding:4px 10px;text-align:left}}
img{{max-width:100%;image-rendering:pixelated}}figure{{margin:1.5em 0}}</style></head>
<body><h1>{esc(title)}</h1><p>{esc(summary)}</p>
<h2>Metrics</h2><table>{rows}</table>
<h2>Figures</h2>{figs}
<h2>Files</h2><ul>{links}</ul>
<details><summary>Settings</summary><pre>{esc(json.dumps(settings, indent=2))}</pre></details>
</body></html>
"""
    path = Path(folder) / "index.html"
    write_text(page, path)
    return path


__all__ = ["write_index"]
