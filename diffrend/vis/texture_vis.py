"""Looking at a ``TexturesUV`` map: the texture image of one mesh with its UV points drawn on it.

For debugging UV layouts (does the map line up with the coordinates?). Every ``verts_uvs``
row is drawn, referenced by a face or not, at the pixel that sampling reads for it
(:meth:`TexturesUV.centers_for_image`), so the drawing follows the texture's
``align_corners`` and padding settings. ``texturesuv_image_PIL`` needs only Pillow;
``texturesuv_image_matplotlib`` needs matplotlib (``pip install diffrend[vis]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..shading.textures import TexturesUV

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["texturesuv_image_PIL", "texturesuv_image_matplotlib"]


def _image_and_centers(
    texture: TexturesUV, texture_index: int, subsample: int | None,
    generator: torch.Generator | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, C) float image in [0, 1] and the (P, 2) pixel (x, y) of the UV points to draw."""
    if not isinstance(texture, TexturesUV):
        raise TypeError(f"texture: expected a TexturesUV, got {type(texture).__name__}")
    n = len(texture)
    if isinstance(texture_index, bool) or not isinstance(texture_index, int) or not (
        -n <= texture_index < n
    ):
        raise ValueError(f"texture_index: expected an int in [-{n}, {n}), got {texture_index!r}")
    if subsample is not None and (
        isinstance(subsample, bool) or not isinstance(subsample, int) or subsample < 0
    ):
        raise ValueError(f"subsample: expected None or an int >= 0, got {subsample!r}")
    maps = texture.maps_padded()
    if maps.ndim != 4:
        # With maps_ids a mesh has several images; which one a UV point belongs to depends
        # on the faces that use it, so there is no single picture to draw on.
        raise ValueError("texture: textures with maps_ids (several images per mesh) are not "
                         "supported")
    image = maps[texture_index].detach().to("cpu", torch.float32).clamp(0.0, 1.0).numpy()
    centers = texture.centers_for_image(texture_index).to(torch.float64)
    if subsample is not None and centers.shape[0] > subsample:
        keep = torch.randperm(centers.shape[0], generator=generator)[:subsample]
        centers = centers[keep]
    return image, centers.numpy()


def texturesuv_image_PIL(
    texture: TexturesUV,
    *,
    texture_index: int = 0,
    radius: float = 1,
    color: Any = "red",
    subsample: int | None = 10000,
    generator: torch.Generator | None = None,
) -> Image.Image:
    """The texture image of one mesh as a PIL image, with a disc drawn at every UV point.

    Args:
        texture: the textures of a batch of meshes (without ``maps_ids``).
        texture_index: which mesh of the batch.
        radius: disc radius in pixels; below 1, only the pixel nearest each point.
        color: any colour PIL understands ("red", "#00ff00", (0, 0, 255)).
        subsample: draw at most this many UV points, chosen at random (None: all).
        generator: random generator for that choice (default: torch's global one).

    Returns:
        An image of the map's size (H, W): mode "RGB" for 1 or 3 channels, "RGBA" for 4;
        values are clamped to [0, 1] and scaled to 0..255. Not differentiable.

    Raises:
        TypeError: ``texture`` is not a ``TexturesUV``.
        ValueError: bad ``texture_index`` or ``subsample``, textures with ``maps_ids``, or
            a channel count other than 1, 3 or 4.
    """
    image, centers = _image_and_centers(texture, texture_index, subsample, generator)
    channels = image.shape[-1]
    if channels not in (1, 3, 4):
        raise ValueError(f"texture: expected maps with 1, 3 or 4 channels, got {channels}")
    pixels = np.rint(image * 255.0).astype(np.uint8)
    if channels == 1:
        # Grey maps become RGB so that coloured discs can be drawn on them.
        pixels = np.repeat(pixels, 3, axis=-1)
    out = Image.fromarray(pixels)  # (H, W, 3) -> "RGB", (H, W, 4) -> "RGBA"
    draw = ImageDraw.Draw(out)
    for x, y in centers.tolist():
        if radius < 1:
            # PIL draws tiny ellipses as nothing or 2 x 2 blocks: mark the pixel itself.
            draw.point((round(x), round(y)), fill=color)
        else:
            draw.ellipse([(x - radius, y - radius), (x + radius, y + radius)], fill=color)
    return out


def texturesuv_image_matplotlib(
    texture: TexturesUV,
    *,
    texture_index: int = 0,
    radius: float = 1,
    color: Any = (1.0, 0.0, 0.0),
    subsample: int | None = 10000,
    origin: str = "upper",
    ax: Axes | None = None,
    generator: torch.Generator | None = None,
) -> Axes:
    """Show the texture image of one mesh with matplotlib, with a circle at every UV point.

    Args:
        texture: the textures of a batch of meshes (without ``maps_ids``).
        texture_index: which mesh of the batch.
        radius: circle radius in pixels (image coordinates).
        color: any colour matplotlib understands.
        subsample: draw at most this many UV points, chosen at random (None: all).
        origin: "upper" (row 0 at the top, as :func:`texturesuv_image_PIL`) or "lower", as
            for ``imshow``; the circles follow the image either way.
        ax: the axes to draw into (default: ``plt.gca()``).
        generator: random generator for the subsampling (default: torch's global one).

    Returns:
        The axes drawn into. Circles are not clipped, so UVs outside the map stay visible.

    Raises:
        ImportError: matplotlib is not installed.
        TypeError, ValueError: as :func:`texturesuv_image_PIL`, or a bad ``origin``.
    """
    if origin not in ("upper", "lower"):
        raise ValueError(f"origin: expected 'upper' or 'lower', got {origin!r}")
    try:
        import matplotlib.pyplot as plt
        from matplotlib.collections import PatchCollection
        from matplotlib.patches import Circle
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "texturesuv_image_matplotlib needs matplotlib: pip install diffrend[vis]"
        ) from e
    image, centers = _image_and_centers(texture, texture_index, subsample, generator)
    if ax is None:
        ax = plt.gca()
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], origin=origin, cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(image, origin=origin)
    circles = [Circle((x, y), radius) for x, y in centers.tolist()]
    ax.add_collection(PatchCollection(circles, facecolor=color, edgecolor="none",
                                      clip_on=False))
    return ax
