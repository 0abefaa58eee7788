"""Splatting blend (Cole et al. 2021, "Differentiable Surface Rendering via
Non-Differentiable Sampling"), PyTorch3D's ``SplatterBlender``.

Every rasterized layer k of pixel p splats its colour onto the 3x3 pixels around it with a
Gaussian weight of the distance between its screen position and each target's centre. The
rasterizer (not differentiable) puts every position exactly on its pixel centre, so the
forward image is a fixed blur of the shaded colours; but the positions are barycentric
interpolations of the vertices, so gradients of the weights reach the vertices: silhouette
and occlusion edges get gradients without a differentiable rasterizer.

Per target pixel q the splats are sorted into three occlusion buffers by depth: those from
the surface q shows, those in front of it and those behind it. Each buffer is normalised by
its total weight (when above 1) and the buffers are composited front to back over the
background colour.

Directions: ``SPLAT_OFFSETS[d] = (dx, dy)``, in ``itertools.product((-1, 0, 1), repeat=2)``
order; direction d of target pixel (h, w) is the splatting pixel (h + dy, w + dx). Screen
positions are PyTorch3D's screen coordinates without the xy flip (``with_xyflip=False``):
there x and y grow opposite to w and h, so the splat of direction d lands at distance
``|centre(p) - position(p) + offset_d|`` from the target's centre.

The stages are separate functions so they can be tested (and are re-exported under
PyTorch3D's private names); :func:`splat_blend` runs them all.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.transfer import host_tensor

if TYPE_CHECKING:
    from ..cameras.base import CamerasBase
    from .blend import BlendParams

__all__ = [
    "SPLAT_OFFSETS",
    "SplatterBlender",
    "accumulate_splats",
    "compose_splat_layers",
    "prepare_splat_inputs",
    "shift_splats",
    "splat_blend",
    "splat_colors_and_weights",
    "splat_kernel_normalization",
    "splat_occlusion_layers",
    "splat_shift_indices",
    "splat_screen_positions",
]

SPLAT_OFFSETS = tuple(itertools.product((-1, 0, 1), repeat=2))  # 9 x (dx, dy)
# Cole et al. Sec. 3.3.1: the kernel sums to 1 + eps, so a pixel covered all around gets a
# weight above 1, and its normalisation (by the weight) passes gradients on.
_KERNEL_EPS = 0.05
_CHANNELS = 5  # RGBA and weight


def _offsets(device: torch.device | str | None = None) -> torch.Tensor:
    return torch.tensor(SPLAT_OFFSETS, dtype=torch.long, device=device)


def _check(name: str, t: object, ndim: int, last: int | tuple[int, ...] | None = None) -> None:
    if not torch.is_tensor(t):
        raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
    lasts = (last,) if isinstance(last, int) else last
    if t.ndim != ndim or (lasts is not None and t.shape[-1] not in lasts):
        want = f"{ndim} dims" + (f" with last size in {lasts}" if lasts else "")
        raise ValueError(f"{name} must have {want}, got shape {tuple(t.shape)}")


def splat_shift_indices(
    shape: Sequence[int], device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Constants of the splatting of one (N, H, W, K) fragment shape.

    Returns:
        ``(rows, cols, offsets)``: ``rows`` (N, H, W + 2, K, 9, 5) and ``cols``
        (N, H, W, K, 9, 5) int64 gather indices into splats padded by one pixel on each
        side (first rows, then columns), such that gathering puts at each target pixel the
        splat of direction d from pixel (h + dy, w + dx); ``offsets`` (9, 2) is
        :data:`SPLAT_OFFSETS`. ``rows`` and ``cols`` are broadcast views (no memory).
    """
    if len(shape) != 4 or any(int(s) < 1 for s in shape):
        raise ValueError(f"shape must be 4 positive sizes (N, H, W, K), got {tuple(shape)}")
    n, h, w, k = (int(s) for s in shape)
    offsets = _offsets(device)
    # In the padded tensor, row h + 1 + dy is the splatting pixel of target row h.
    rows = torch.arange(h, device=device).view(1, h, 1, 1, 1, 1) + (offsets[:, 1] + 1).view(
        1, 1, 1, 1, 9, 1)
    cols = torch.arange(w, device=device).view(1, 1, w, 1, 1, 1) + (offsets[:, 0] + 1).view(
        1, 1, 1, 1, 9, 1)
    return (rows.expand(n, h, w + 2, k, 9, _CHANNELS), cols.expand(n, h, w, k, 9, _CHANNELS),
            offsets)


def splat_screen_positions(
    points: torch.Tensor, cameras: CamerasBase, image_size: tuple[int, int]
) -> torch.Tensor:
    """World points (N, H, W, K, 3) -> screen positions (N, H, W, K, 3): x, y in pixels
    without PyTorch3D's xy flip (see the module doc), z as in NDC. Differentiable w.r.t.
    points and the camera tensors."""
    _check("points", points, 5, 3)
    n = points.shape[0]
    screen = cameras.transform_points_screen(points.reshape(n, -1, 3), image_size=image_size,
                                             with_xyflip=False)
    return screen.reshape(points.shape)


def prepare_splat_inputs(
    points: torch.Tensor,
    colors: torch.Tensor,
    cameras: CamerasBase | None,
    background_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Screen positions and RGBA colours of the fragments, background entries neutralised.

    Args:
        points: (N, H, W, K, 3) world positions of the fragments (cameras given) or their
            screen positions (cameras None, see :func:`splat_screen_positions`).
        colors: (N, H, W, K, 3) RGB (alpha 1) or (N, H, W, K, 4) RGBA.
        cameras: projects ``points`` to the screen, or None.
        background_mask: (N, H, W, K) bool, True where no face was rasterized.

    Returns:
        ``(positions, rgba)``: (N, H, W, K, 3) screen positions, 1.0 on the background
        (z = 1 is the far plane, so background never links occlusion layers); (N, H, W, K, 4)
        colours, 0 on the background (alpha 0: it does not splat, but is splatted onto).
        Differentiable w.r.t. points, colors and the camera tensors.
    """
    _check("points", points, 5, 3)
    _check("colors", colors, 5, (3, 4))
    _check("background_mask", background_mask, 4)
    shape = tuple(points.shape[:4])
    if tuple(colors.shape[:4]) != shape or tuple(background_mask.shape) != shape:
        raise ValueError(f"points {tuple(points.shape)}, colors {tuple(colors.shape)} and "
                         f"background_mask {tuple(background_mask.shape)} must share (N, H, W, K)")
    if cameras is not None:
        points = splat_screen_positions(points, cameras, (shape[1], shape[2]))
    if colors.shape[-1] == 3:
        colors = torch.cat((colors, torch.ones_like(colors[..., :1])), dim=-1)
    bg = background_mask.to(torch.bool)[..., None]
    positions = torch.where(bg, torch.ones_like(points), points)
    rgba = torch.where(bg, torch.zeros_like(colors), colors)
    return positions, rgba


def splat_kernel_normalization(offsets: torch.Tensor, sigma: float = 0.5) -> torch.Tensor:
    """Scalar factor that makes the 3x3 Gaussian kernel of std ``sigma`` (pixels) sum to
    1 + eps (eps = 0.05) on the pixel grid. ``offsets``: (9, 2) directions.

    Raises:
        ValueError: sigma not > 0.
    """
    if not sigma > 0:
        raise ValueError(f"Only positive standard deviations make sense: sigma must be > 0, "
                         f"got {sigma}")
    d2 = (offsets.to(torch.float64) ** 2).sum(dim=1)
    return (1.0 + _KERNEL_EPS) / torch.exp(-d2 / (2.0 * sigma**2)).sum()


def splat_occlusion_layers(depth: torch.Tensor) -> torch.Tensor:
    """Which layer of each neighbour splats onto the surface a pixel shows.

    For target pixel q and direction d (splatting pixel p, see the module doc): if q's top
    layer is closest in depth to p's layer j (and closer than p's top layer is to any layer
    of q), p's layer j is on q's surface, layers above j are in front of it, layers below
    behind: the result is +j. If instead p's top layer is closest to q's layer j, p is
    entirely behind q's surface: -j.

    Args:
        depth: (N, H, W, K) depth of each layer (1.0, the far plane, for the background).

    Returns:
        (N, H, W, 9) int64. Not differentiable.
    """
    _check("depth", depth, 4)
    n, h, w, k = depth.shape
    q = depth.detach().permute(0, 3, 1, 2)  # (N, K, H, W)
    # unfold lists the 3x3 neighbours row-major, (dy, dx); reorder them to SPLAT_OFFSETS
    # (dx, dy) so that direction d here is the same pixel as in the splatting.
    p = F.unfold(q, kernel_size=3, padding=1).view(n, k, 3, 3, h, w)
    p = p.transpose(2, 3).reshape(n, k, 9, h, w)
    q = q.view(n, k, 1, h, w)
    # p's layer nearest q's top layer, and q's layer nearest p's top layer.
    p_dist, p_layer = (p - q[:, :1]).abs().min(dim=1)  # (N, 9, H, W)
    q_dist, q_layer = (p[:, :1] - q).abs().min(dim=1)
    layers = torch.where(q_dist < p_dist, -q_layer, p_layer)
    return layers.permute(0, 2, 3, 1)


def splat_colors_and_weights(
    pixel_coords_screen: torch.Tensor,
    colors: torch.Tensor,
    sigma: float,
    offsets: torch.Tensor,
) -> torch.Tensor:
    """What each fragment splats in each of the 9 directions.

    Args:
        pixel_coords_screen: (N, H, W, K, 2+) screen positions (x, y used).
        colors: (N, H, W, K, 4) RGBA; alpha scales the weights.
        sigma: Gaussian std in pixels (> 0).
        offsets: (9, 2) directions (:data:`SPLAT_OFFSETS`).

    Returns:
        (N, H, W, K, 9, 5): per direction the weighted colour ``weight * RGBA`` and the
        weight ``alpha * norm * exp(-|centre - position + offset|^2 / (2 sigma^2))``.
        Differentiable w.r.t. positions (through the distance; floor has no gradient) and
        colors.
    """
    _check("pixel_coords_screen", pixel_coords_screen, 5)
    _check("colors", colors, 5, 4)
    xy = pixel_coords_screen[..., :2]
    norm = splat_kernel_normalization(offsets, sigma).to(xy.dtype)
    # Position relative to its pixel centre: zero in the forward pass.
    to_centre = (torch.floor(xy) + 0.5 - xy).unsqueeze(-2)  # (N, H, W, K, 1, 2)
    d2 = ((to_centre + offsets.to(xy)) ** 2).sum(dim=-1)  # (N, H, W, K, 9)
    weights = (colors[..., 3:4] * norm * torch.exp(-d2 / (2.0 * sigma**2))).unsqueeze(-1)
    return torch.cat((weights * colors.unsqueeze(-2), weights), dim=-1)


def shift_splats(splats: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Move each direction's splats onto their target pixels.

    Args:
        splats: (N, H, W, K, 9, 5) from :func:`splat_colors_and_weights`, indexed by the
            splatting pixel.
        rows, cols: the gather indices of :func:`splat_shift_indices` for this shape.

    Returns:
        (N, H, W, K, 9, 5) indexed by the target pixel; zero where the splatting pixel is
        outside the image. Differentiable w.r.t. splats.
    """
    _check("splats", splats, 6, _CHANNELS)
    padded = F.pad(splats, (0, 0, 0, 0, 0, 0, 1, 1, 1, 1))  # (N, H+2, W+2, K, 9, 5)
    return torch.gather(torch.gather(padded, 1, rows), 2, cols)


def accumulate_splats(
    occlusion_layers: torch.Tensor, splats: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum the splats landing on each pixel into front, surface and back buffers.

    Args:
        occlusion_layers: (N, H, W, 9) from :func:`splat_occlusion_layers`: the splatting
            layer on the target's surface; layers above it are in front, below behind.
        splats: (N, H, W, K, 9, 5) from :func:`shift_splats`.

    Returns:
        ``(colors, weights)``: (N, H, W, 4, 3) summed weighted RGBA and (N, H, W, 1, 3)
        summed weights; the last dim is (front, surface, back). Differentiable w.r.t.
        splats.
    """
    _check("splats", splats, 6, _CHANNELS)
    _check("occlusion_layers", occlusion_layers, 4, 9)
    k = splats.shape[3]
    layer = torch.arange(k, device=splats.device).view(1, 1, 1, k, 1)
    link = occlusion_layers.unsqueeze(3)  # (N, H, W, 1, 9)
    buffers = torch.stack((layer < link, layer == link, layer > link), dim=-1).to(splats.dtype)
    summed = torch.einsum("nhwkdc,nhwkdb->nhwcb", splats, buffers)  # (N, H, W, 5, 3)
    return summed[..., :4, :], summed[..., 4:, :]


def compose_splat_layers(
    background_color: torch.Tensor,
    colors: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Normalise the three buffers and composite them front to back over the background.

    Args:
        background_color: (3,) RGB.
        colors: (N, H, W, 4, 3) summed weighted RGBA per buffer (front, surface, back).
        weights: (N, H, W, 1, 3) summed weights per buffer.

    Returns:
        (N, H, W, 4) premultiplied RGBA; the background has alpha 0. Differentiable w.r.t.
        all three inputs.
    """
    _check("colors", colors, 5, 3)
    _check("weights", weights, 5, 3)
    # Weights above 1 are normalised away; below 1 (an edge) they stay as coverage.
    layers = colors / weights.clamp(min=1.0)
    bg = background_color.to(layers)
    out = torch.cat((bg, bg.new_zeros(1))).expand(layers.shape[:-1])
    for i in (2, 1, 0):  # back, surface, front; colours are already premultiplied by alpha
        out = layers[..., i] + (1.0 - layers[..., 3:4, i]) * out
    return out


def _background_tensor(
    background_color: torch.Tensor | Sequence[float], like: torch.Tensor
) -> torch.Tensor:
    if torch.is_tensor(background_color):
        bg = background_color.to(device=like.device, dtype=like.dtype)
    else:
        bg = host_tensor(tuple(float(c) for c in background_color), like.dtype, like.device)
    if bg.shape != (3,):
        raise ValueError(f"background_color must have 3 entries (RGB), got shape "
                         f"{tuple(bg.shape)}")
    return bg


def splat_blend(
    colors: torch.Tensor,
    positions: torch.Tensor,
    background_mask: torch.Tensor,
    sigma: float = 0.5,
    background_color: torch.Tensor | Sequence[float] = (1.0, 1.0, 1.0),
    cameras: CamerasBase | None = None,
    indices: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Images from rasterized layers by splatting (Cole et al. 2021).

    Args:
        colors: (N, H, W, K, 3) RGB or (N, H, W, K, 4) RGBA shaded colours.
        positions: (N, H, W, K, 3) screen positions (x, y, z; see the module doc), or world
            positions when ``cameras`` is given. They must be barycentric interpolations of
            the vertices for the gradients to reach them.
        background_mask: (N, H, W, K) bool, True where no face was rasterized.
        sigma: Gaussian std in pixels (PyTorch3D uses 0.5).
        background_color: RGB, 3 numbers or a (3,) tensor.
        cameras: projects world ``positions`` to the screen; None: they are screen positions.
        indices: :func:`splat_shift_indices` of this shape, to reuse them.

    Returns:
        (N, H, W, 4) premultiplied RGBA, alpha 0 on the background. Differentiable w.r.t.
        colors, positions (x, y only; depth only sorts the splats), the camera tensors and a
        background_color tensor; not w.r.t. the mask.

    Raises:
        ValueError: shapes that do not match, sigma not > 0, background not 3 values.
    """
    positions, rgba = prepare_splat_inputs(positions, colors, cameras, background_mask)
    shape = tuple(positions.shape[:4])
    if indices is None:
        indices = splat_shift_indices(shape, positions.device)
    rows, cols, offsets = indices
    if tuple(cols.shape[:4]) != shape:
        raise ValueError(f"indices are for shape {tuple(cols.shape[:4])}, the inputs are {shape}")
    bg = _background_tensor(background_color, rgba)
    layers = splat_occlusion_layers(positions[..., 2])
    splats = shift_splats(splat_colors_and_weights(positions, rgba, sigma, offsets), rows, cols)
    summed_colors, summed_weights = accumulate_splats(layers, splats)
    return compose_splat_layers(bg, summed_colors, summed_weights)


class SplatterBlender(nn.Module):
    """PyTorch3D's splatting blender: :func:`splat_blend` with its constants kept.

    Args:
        input_shape: (N, H, W, K) of the fragments; other shapes work too (their constants
            are computed when first seen).
        device: where the constants live.
    """

    def __init__(self, input_shape: Sequence[int], device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self._indices = splat_shift_indices(self.input_shape, device)

    @property
    def crop_ids_h(self) -> torch.Tensor:
        """(N, H, W + 2, K, 9, 5) row gather indices (PyTorch3D's attribute name)."""
        return self._indices[0]

    @property
    def crop_ids_w(self) -> torch.Tensor:
        """(N, H, W, K, 9, 5) column gather indices (PyTorch3D's attribute name)."""
        return self._indices[1]

    @property
    def offsets(self) -> torch.Tensor:
        """(9, 2) directions (:data:`SPLAT_OFFSETS`)."""
        return self._indices[2]

    def _indices_for(self, shape: tuple[int, ...], device: torch.device):
        rows = self._indices[0]
        if tuple(rows.shape[:2]) + tuple(self._indices[1].shape[2:4]) != shape or (
                rows.device != device):
            self._indices = splat_shift_indices(shape, device)
        return self._indices

    def to(self, *args, **kwargs) -> SplatterBlender:  # noqa: D102 - nn.Module's signature
        super().to(*args, **kwargs)
        device = torch.empty(0).to(*args, **kwargs).device
        self._indices = splat_shift_indices(self.input_shape, device)
        return self

    def forward(
        self,
        colors: torch.Tensor,
        pixel_coords_cameras: torch.Tensor,
        cameras: CamerasBase,
        background_mask: torch.Tensor,
        blend_params: BlendParams,
    ) -> torch.Tensor:
        """Splat-blended images (N, H, W, 4).

        Args:
            colors: (N, H, W, K, 3) shaded RGB.
            pixel_coords_cameras: (N, H, W, K, 3) world positions of the fragments
                (PyTorch3D's name), barycentric interpolations of the vertices.
            cameras: the cameras that rasterized them.
            background_mask: (N, H, W, K) bool, True where no face was rasterized.
            blend_params: ``sigma`` (Gaussian std in pixels, 0.5) and ``background_color``.

        Returns:
            As :func:`splat_blend`.
        """
        _check("colors", colors, 5, (3, 4))
        shape = tuple(colors.shape[:4])
        return splat_blend(colors, pixel_coords_cameras, background_mask, blend_params.sigma,
                           blend_params.background_color, cameras=cameras,
                           indices=self._indices_for(shape, colors.device))
