"""Gradient pictures: the change of every pixel each method predicts for one vertex motion.

For a smooth displacement field ``u`` of the vertices, the picture of a method is
``dS_p / dt`` of its silhouette ``S`` at ``verts + t u``, for every pixel ``p`` (one backward
pass per pixel, so small images). The truth is the central finite difference of a
supersampled render. NMR's rule depends on the loss (it keeps only the steps that would
lower it), so its picture is the sum of its two one-sided answers, for ``+S_p`` and
``-S_p``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..cameras import CamerasBase
from ..gradients import supersampled_silhouette
from ..structures import Meshes
from .methods import MethodSpec


def method_picture(spec: MethodSpec, mesh: Meshes, cameras: CamerasBase, u: torch.Tensor,
                   size: int, progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """(S, S) per-pixel derivative of ``spec``'s silhouette along ``u`` (V, 3), one view.

    ``progress`` is called with the number of pixels done (one backward pass each), S * S
    in all.
    """
    t = torch.zeros((), dtype=mesh.verts_packed().dtype, device=mesh.device,
                    requires_grad=True)
    moved = Meshes([mesh.verts_packed() + t * u.to(t.dtype)], [mesh.faces_packed()])
    sil = spec.render(moved, cameras, size)[0]
    out = torch.zeros(size, size, dtype=torch.float64)
    if not sil.requires_grad:
        if progress is not None:
            progress(size * size)
        return out
    flat = sil.reshape(-1)
    signs = (1.0, -1.0) if spec.method == "nmr" else (1.0,)
    for p in range(flat.numel()):
        for sign in signs:
            (g,) = torch.autograd.grad(sign * flat[p], t, retain_graph=True, allow_unused=True)
            if g is not None:
                out.view(-1)[p] += sign * float(g)
        if progress is not None:
            progress(1)
    return out


@torch.no_grad()
def true_picture(mesh: Meshes, cameras: CamerasBase, u: torch.Tensor, size: int,
                 factor: int = 32, eps: float = 5e-3) -> torch.Tensor:
    """(S, S) central finite difference along ``u`` of the supersampled silhouette."""
    def at(h: float) -> torch.Tensor:
        moved = Meshes([mesh.verts_packed() + h * u.to(mesh.verts_packed().dtype)],
                       [mesh.faces_packed()])
        return supersampled_silhouette(moved, cameras, size, factor=factor)[0].double().cpu()

    return (at(eps) - at(-eps)) / (2 * eps)


def _diverging(values: np.ndarray, scale: float, cover: np.ndarray) -> np.ndarray:
    """Blue (negative) - white - red (positive) colours over a light grey silhouette."""
    x = np.clip(values / max(scale, 1e-12), -1.0, 1.0)[..., None]
    base = np.where(cover[..., None] > 0.5, 0.85, 1.0) * np.ones(3)
    red, blue = np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.25, 0.8])
    rgb = np.where(x > 0, base * (1 - x) + red * x, base * (1 + x) - blue * x)
    return (rgb * 255 + 0.5).astype(np.uint8)


def picture_figure(pictures: dict[str, np.ndarray], cover: np.ndarray, zoom: int = 4
                   ) -> np.ndarray:
    """One labelled panel per entry, all on the truth's colour scale: (H, W, 3) uint8.

    The first entry sets the scale (the 99th percentile of its magnitude).
    """
    first = next(iter(pictures.values()))
    nz = np.abs(first[first != 0])
    scale = float(np.percentile(nz, 99)) if nz.size else 1.0
    panels = []
    for label, pic in pictures.items():
        img = Image.fromarray(_diverging(pic, scale, cover)).resize(
            (pic.shape[1] * zoom, pic.shape[0] * zoom), Image.NEAREST)
        panel = Image.new("RGB", (img.width, img.height + 18), (255, 255, 255))
        panel.paste(img, (0, 18))
        ImageDraw.Draw(panel).text((3, 3), label[:22], fill=(0, 0, 0))
        panels.append(np.asarray(panel))
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    row = [p for panel in panels for p in (panel, gap)][:-1]
    return np.concatenate(row, axis=1)
