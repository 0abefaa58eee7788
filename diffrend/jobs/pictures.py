"""Pictures of a job's progress, as uint8 arrays: image grids, labelled rows, loss curves,
progress-animation frames (drawn with Pillow only: no plotting library to install).

Writing them to files is :mod:`diffrend.io.outputs`' job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

_COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
           (140, 86, 75)]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float images in [0, 1] (a tensor of any shape) -> uint8 numpy array."""
    return (images.detach().clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def loss_curve(
    history: Sequence[dict[str, float]],
    keys: Sequence[str] | None = None,
    boundaries: Sequence[int] = (),
    title: str = "loss",
    size: tuple[int, int] = (720, 420),
) -> np.ndarray:
    """A log-scale plot of per-step losses.

    Args:
        history: per step, a dict of named losses (as ``FitMeshResult.history``).
        keys: which losses to draw (default: all keys of the first step).
        boundaries: steps to mark with a vertical line (stage changes).
        title: caption at the top.
        size: (width, height) in pixels.

    Returns:
        (height, width, 3) uint8 image.
    """
    width, height = size
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    left, right, top, bottom = 64, 16, 34, 40
    draw.text((left, 8), title, fill=(0, 0, 0), font=_font(16))
    keys = list(keys if keys is not None else (history[0].keys() if history else []))
    series = {k: np.array([h[k] for h in history if k in h], dtype=np.float64) for k in keys}
    positive = np.concatenate([v[v > 0] for v in series.values()] or [np.ones(1)])
    if positive.size == 0:
        positive = np.ones(1)
    lo = 10 ** math.floor(math.log10(positive.min()))
    hi = 10 ** math.ceil(math.log10(positive.max()))
    hi = hi if hi > lo else lo * 10
    n = max(len(history), 2)
    box = (left, top, width - right, height - bottom)

    def xy(i: float, y: float) -> tuple[float, float]:
        t = (math.log10(max(y, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return (box[0] + (box[2] - box[0]) * i / (n - 1), box[3] - (box[3] - box[1]) * t)

    for e in range(round(math.log10(lo)), round(math.log10(hi)) + 1):
        _, y = xy(0, 10.0**e)
        draw.line([(box[0], y), (box[2], y)], fill=(225, 225, 225))
        draw.text((6, y - 7), f"1e{e}", fill=(80, 80, 80), font=_font(12))
    for b in boundaries:
        x, _ = xy(b, lo)
        draw.line([(x, box[1]), (x, box[3])], fill=(190, 190, 190), width=1)
    draw.rectangle(box, outline=(0, 0, 0))
    for k in range(5):
        step = round(k * (len(history) - 1) / 4) if history else 0
        x, _ = xy(step, lo)
        draw.text((x - 10, box[3] + 6), str(step + 1 if history else 0), fill=(80, 80, 80),
                  font=_font(12))
    draw.text(((box[0] + box[2]) // 2 - 12, height - 18), "step", fill=(0, 0, 0), font=_font(12))
    for j, (name, values) in enumerate(series.items()):
        color = _COLORS[j % len(_COLORS)]
        if len(values) > 1:
            draw.line([xy(i, v) for i, v in enumerate(values)], fill=color, width=2)
        y = box[1] + 8 + 16 * j
        draw.line([(box[2] - 160, y + 7), (box[2] - 140, y + 7)], fill=color, width=3)
        draw.text((box[2] - 134, y), name, fill=color, font=_font(13))
    return np.asarray(img)


def labelled_row(images: np.ndarray, label: str) -> np.ndarray:
    """Images (V, S, S, 3) uint8 side by side with a text strip above: (18 + S, V*S, 3)."""
    v, s = images.shape[0], images.shape[1]
    row = Image.new("RGB", (v * s, s + 18), (255, 255, 255))
    row.paste(Image.fromarray(np.concatenate(list(images), axis=1)), (0, 18))
    ImageDraw.Draw(row).text((4, 2), label, fill=(0, 0, 0), font=_font(13))
    return np.asarray(row)


def progress_frames(targets: np.ndarray, frames: Sequence[tuple[int, np.ndarray]],
                    total: int) -> list[np.ndarray]:
    """Animation frames: targets on top, the renders at each snapshot below.

    Args:
        targets: (V, S, S, 3) uint8 target images.
        frames: ``(step, (V, S, S, 3) uint8)`` renders over time.
        total: the number of steps of the run (for the label).

    Returns:
        One (2 * (S + 18), V * S, 3) uint8 image per snapshot.
    """
    top = labelled_row(targets, "target")
    return [np.concatenate([top, labelled_row(img, f"step {step}/{total}")], axis=0)
            for step, img in frames]


def image_grid(images: torch.Tensor, cols: int | None = None) -> np.ndarray:
    """Tile (N, H, W, C) images in [0, 1] into one (rows*H, cols*W, C) uint8 array."""
    n, h, w, c = images.shape
    cols = cols or (n if n <= 4 else math.ceil(n / math.ceil(n / 4)))
    rows = math.ceil(n / cols)
    grid = np.full((rows * h, cols * w, c), 255, np.uint8)
    arr = (images.clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[r * h : (r + 1) * h, q * w : (q + 1) * w] = arr[i]
    return grid


__all__ = ["image_grid", "labelled_row", "loss_curve", "progress_frames", "to_uint8"]
