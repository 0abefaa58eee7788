"""Blending of the K faces found at each pixel into an RGBA image (PyTorch3D's semantics).

- :func:`hard_rgb_blend`: colour of the nearest face, background where no face; alpha 1/0.
- :func:`sigmoid_alpha_blend`: SoftRas silhouette, ``alpha = 1 - prod_k(1 - sigmoid(-d_k/sigma))``.
- :func:`softmax_rgb_blend`: SoftRas colour aggregation, a softmax over faces by inverse
  depth with a background term, and the SoftRas silhouette as alpha.
- :func:`coverage_probability`: SoftRas's per-face coverage probability with its options
  (distance Euclidean or barycentric, probability sigmoid or Gaussian), which
  ``BlendParams`` selects for both soft blends.

The soft blends dispatch to fused Numba kernels (:mod:`diffrend.render.blend_kernels`) for CPU
tensors, and to the pure-torch ``*_reference`` functions (same signature, differentiable by
autograd, runnable in float64) everywhere else. The kernels reproduce the references'
values and gradients; they exist because the references keep several ``(N, H, W, K)`` and
``(N, H, W, K, 3)`` temporaries alive for backward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..ops.transfer import host_tensor
from ..raster import Fragments
from .compact import scatter_colors

__all__ = [
    "ALPHA_AGGREGATIONS",
    "BlendParams",
    "DISTANCE_FUNCTIONS",
    "PROBABILITY_FUNCTIONS",
    "coverage_probability",
    "hard_rgb_blend",
    "sigmoid_alpha_blend",
    "sigmoid_alpha_blend_reference",
    "softmax_rgb_blend",
    "softmax_rgb_blend_packed",
    "softmax_rgb_blend_reference",
]

_EPS = 1e-10  # PyTorch3D's floor for z_inv_max and for the background weight
DISTANCE_FUNCTIONS = ("euclidean", "barycentric")
PROBABILITY_FUNCTIONS = ("sigmoid", "gaussian")
ALPHA_AGGREGATIONS = ("prod", "sum")
_KERNEL_DTYPES = (torch.float32, torch.float64)


def _check_positive(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not v > 0.0 or v == float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def _check_background(background_color: torch.Tensor | Sequence[float]) -> None:
    # C entries, one per colour channel: 3 for RGB; PyTorch3D blends any channel count.
    if isinstance(background_color, torch.Tensor):
        if background_color.ndim != 1 or background_color.shape[0] < 1:
            raise ValueError(
                "background_color must be a (C,) tensor (C = 3 for RGB), got a tensor of "
                f"shape {tuple(background_color.shape)}"
            )
        # (checked on the CPU only: on a GPU the check would wait for the device each call)
        if background_color.device.type == "cpu" and not bool(
                torch.isfinite(background_color.detach()).all()):
            raise ValueError(f"background_color contains NaN or inf: {background_color!r}")
        return
    try:
        n = len(background_color)
    except TypeError:
        raise ValueError(
            f"background_color must be a (C,) tensor or C numbers (C = 3 for RGB), got "
            f"{background_color!r}"
        ) from None
    if n < 1:
        raise ValueError(f"background_color must have at least 1 entry, got {background_color!r}")
    try:
        finite = all(math.isfinite(float(c)) for c in background_color)
    except (TypeError, ValueError):
        raise ValueError(f"background_color must hold numbers, got {background_color!r}") from None
    if not finite:
        raise ValueError(f"background_color contains NaN or inf: {background_color!r}")


@dataclass(frozen=True)
class BlendParams:
    """Settings of the blending functions (PyTorch3D's names and defaults).

    Attributes:
        sigma: width of the sigmoid that turns the signed squared distance to a face into a
            coverage probability (SoftRas). Smaller => sharper edges. Must be > 0.
        gamma: temperature of the softmax over inverse depth. Smaller => the nearest face
            dominates more; larger => faces are more transparent. Must be > 0.
        background_color: one entry per colour channel: RGB as 3 numbers or a (3,) tensor
            (C numbers for C-channel colours). A tensor that requires grad
            receives gradients from :func:`hard_rgb_blend` and :func:`softmax_rgb_blend`.
        distance: SoftRas's pixel-to-face distance ``d`` (negative inside): "euclidean"
            (PyTorch3D's, the squared screen distance ``fragments.dists``) or
            "barycentric" (SoftRas's alternative, the squared smallest barycentric
            coordinate: a distance measured in units of the triangle's size; needs
            unclipped ``bary_coords``, the rasterizer's default).
        probability: how ``d`` becomes a coverage probability: "sigmoid" (SoftRas,
            ``sigmoid(-d / sigma)``) or "gaussian" (1 inside, ``exp(-d / sigma)`` outside,
            as DIB-R: no gradient from inside the face).
        alpha: silhouette aggregation of the K probabilities: "prod" (SoftRas's logical or,
            ``1 - prod(1 - D)``) or "sum" (``min(1, sum D)``).

    The soft blends use the Numba kernels only for the defaults (PyTorch3D's behaviour);
    other choices run the pure-torch path.

    Raises:
        ValueError: sigma or gamma not > 0, an empty or non-1-D background_color, or
            an unknown distance, probability or alpha.
    """

    sigma: float = 1e-4
    gamma: float = 1e-4
    background_color: torch.Tensor | Sequence[float] = (1.0, 1.0, 1.0)
    distance: str = "euclidean"
    probability: str = "sigmoid"
    alpha: str = "prod"

    def __post_init__(self) -> None:
        _check_positive("sigma", self.sigma)
        _check_positive("gamma", self.gamma)
        _check_background(self.background_color)
        for name, allowed in (("distance", DISTANCE_FUNCTIONS),
                              ("probability", PROBABILITY_FUNCTIONS),
                              ("alpha", ALPHA_AGGREGATIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"BlendParams.{name} must be one of {allowed}, got "
                                 f"{getattr(self, name)!r}")


def _soft_options(blend_params) -> tuple[str, str, str]:
    """(distance, probability, alpha) of blend params; PyTorch3D's own BlendParams (which
    lacks these fields) gets the defaults."""
    return (getattr(blend_params, "distance", "euclidean"),
            getattr(blend_params, "probability", "sigmoid"),
            getattr(blend_params, "alpha", "prod"))


def _is_default(blend_params) -> bool:
    return _soft_options(blend_params) == ("euclidean", "sigmoid", "prod")


def coverage_probability(
    fragments: Fragments, blend_params: BlendParams, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """SoftRas's probability (N, H, W, K) that each listed face covers the pixel.

    With ``d`` the signed squared distance chosen by ``blend_params.distance`` (negative
    inside the face), the probability is ``sigmoid(-d / sigma)`` or, for "gaussian",
    ``exp(-max(d, 0) / sigma)``; 0 for empty slots (``pix_to_face < 0``). Faces farther than
    the rasterizer's ``blur_radius`` are not listed, so set it where the probability is
    negligible (PyTorch3D's ``sigma * log(1 / eps - 1)`` for the sigmoid, ``sigma *
    log(1 / eps)`` for the Gaussian; for "barycentric", Euclidean candidates cover every
    face whose barycentric probability matters as long as faces are under 1 NDC unit tall).

    Args:
        fragments: rasterizer output; ``pix_to_face`` and ``dists`` or ``bary_coords``.
        blend_params: ``sigma``, ``distance``, ``probability``.
        dtype: result dtype (default: that of ``fragments.dists``).

    Returns:
        (N, H, W, K) in [0, 1]; differentiable w.r.t. ``fragments.dists`` (Euclidean) or
        ``fragments.bary_coords`` (barycentric).
    """
    sigma = _check_positive("blend_params.sigma", blend_params.sigma)
    distance, probability, _ = _soft_options(blend_params)
    mask = fragments.pix_to_face >= 0
    if distance == "euclidean":
        d = fragments.dists
    else:
        bary = fragments.bary_coords
        if not isinstance(bary, torch.Tensor) or bary.shape != (*mask.shape, 3):
            raise ValueError("distance='barycentric' needs fragments.bary_coords of shape "
                             f"(N, H, W, K, 3) = {(*mask.shape, 3)}")
        w_min = bary.min(dim=-1).values
        d = -torch.sign(w_min) * w_min * w_min
    if dtype is not None:
        d = d.to(dtype)
    if probability == "sigmoid":
        prob = torch.sigmoid(-d / sigma)
    else:
        prob = torch.exp(-d.clamp(min=0.0) / sigma)
    return prob * mask


def _alpha(prob: torch.Tensor, how: str) -> torch.Tensor:
    """Silhouette (N, H, W) from probabilities (N, H, W, K)."""
    if how == "sum":
        return prob.sum(dim=-1).clamp(max=1.0)
    return 1.0 - torch.prod(1.0 - prob, dim=-1)


def _background(blend_params: BlendParams, colors: torch.Tensor) -> torch.Tensor:
    """(C,) background in colors' dtype and device (differentiable if given as a tensor).

    Raises:
        ValueError: the background's channel count differs from colors' (..., C).
    """
    bg = blend_params.background_color
    _check_background(bg)
    if isinstance(bg, torch.Tensor):
        out = bg.to(device=colors.device, dtype=colors.dtype)
    else:
        out = host_tensor(bg, colors.dtype, colors.device)
    if out.shape[0] != colors.shape[-1]:
        raise ValueError(
            f"background_color has {out.shape[0]} entries but the colours have "
            f"{colors.shape[-1]} channels; give one entry per channel"
        )
    return out


def _check_inputs(
    colors: torch.Tensor, fragments: Fragments, need: tuple[str, ...]
) -> tuple[int, int, int, int]:
    """Validate colors against fragments.pix_to_face and the named fragment fields."""
    p2f = getattr(fragments, "pix_to_face", None)
    if not isinstance(p2f, torch.Tensor) or p2f.dim() != 4:
        raise ValueError(
            "fragments.pix_to_face must be an (N, H, W, K) tensor, got "
            f"{tuple(p2f.shape) if isinstance(p2f, torch.Tensor) else type(p2f).__name__}"
        )
    if p2f.dtype.is_floating_point or p2f.dtype == torch.bool or p2f.is_complex():
        raise ValueError(f"fragments.pix_to_face must hold integers, got {p2f.dtype}")
    N, H, W, K = p2f.shape
    if K < 1:
        raise ValueError("fragments.pix_to_face must have K >= 1 faces per pixel, got K = 0")
    if not isinstance(colors, torch.Tensor) or not colors.dtype.is_floating_point:
        raise ValueError(
            "colors must be a floating-point (N, H, W, K, C) tensor, got "
            f"{colors.dtype if isinstance(colors, torch.Tensor) else type(colors).__name__}"
        )
    if colors.ndim != 5 or tuple(colors.shape[:4]) != (N, H, W, K) or colors.shape[4] < 1:
        raise ValueError(
            f"colors must have shape (N, H, W, K, C) = {(N, H, W, K)} + (C,) to match "
            f"fragments.pix_to_face, got {tuple(colors.shape)}"
        )
    for name in need:
        t = getattr(fragments, name, None)
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"fragments.{name} must be an (N, H, W, K) tensor, got {t!r}")
        if t.shape != p2f.shape:
            raise ValueError(
                f"fragments.{name} must have the shape of fragments.pix_to_face "
                f"{tuple(p2f.shape)}, got {tuple(t.shape)}"
            )
    return N, H, W, K


def _check_clip(
    znear: float | torch.Tensor, zfar: float | torch.Tensor, n: int, check_values: bool = True
) -> tuple[float | torch.Tensor, float | torch.Tensor]:
    """Validate znear/zfar: numbers or (N,) / (1,) / scalar tensors with znear < zfar.

    ``check_values=False`` skips the finiteness and order checks of tensors (each a host
    sync on a GPU) for callers whose values are already checked (perspective cameras).
    """
    out = []
    for name, z in (("znear", znear), ("zfar", zfar)):
        if isinstance(z, torch.Tensor):
            if z.dim() > 1 or (z.dim() == 1 and z.shape[0] not in (1, n)):
                raise ValueError(
                    f"{name} must be a number or a tensor of shape (N,) = ({n},), "
                    f"got shape {tuple(z.shape)}"
                )
            if not z.dtype.is_floating_point:
                z = z.double()
        else:
            try:
                z = float(z)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a number or an (N,) tensor, got {z!r}") from None
            if not np.isfinite(z):
                raise ValueError(f"{name} must be finite, got {z}")
        out.append(z)
    zn, zf = out
    tensors = [z for z in out if isinstance(z, torch.Tensor)]
    if not tensors:
        ok = zn < zf
    elif not check_values:
        return zn, zf
    else:
        # One host sync for all the checks; the message is worked out only on failure.
        dev = tensors[0].device
        checks = [torch.isfinite(z).all().to(dev) for z in tensors]
        ok = bool(torch.stack([*checks, torch.as_tensor(zn < zf).all().to(dev)]).all())
        if not ok:
            for name, z in (("znear", zn), ("zfar", zf)):
                if isinstance(z, torch.Tensor) and not bool(torch.isfinite(z).all()):
                    raise ValueError(f"{name} must be finite, got {z}")
    if not ok:
        raise ValueError(f"znear must be < zfar, got znear={znear}, zfar={zfar}")
    return zn, zf


def _use_kernel(*tensors: torch.Tensor) -> bool:
    return all(t.device.type == "cpu" and t.dtype in _KERNEL_DTYPES for t in tensors)


def hard_rgb_blend(
    colors: torch.Tensor, fragments: Fragments, blend_params: BlendParams
) -> torch.Tensor:
    """Colour of the nearest face (k = 0), or the background where no face covers the pixel.

    Args:
        colors: (N, H, W, K, C) colour of each of the K faces at each pixel (C = 3 for RGB).
        fragments: rasterizer output; only ``pix_to_face`` (N, H, W, K) is used.
        blend_params: only ``background_color`` is used.

    Returns:
        (N, H, W, C + 1) colour and alpha (RGBA for RGB) in colors' dtype: colour =
        ``colors[..., 0, :]`` where ``pix_to_face[..., 0] >= 0`` else the background;
        A = 1.0 there, 0.0 on background (PyTorch3D >= 0.7's convention). Differentiable
        w.r.t. colors (k = 0 slot of covered pixels) and a background_color tensor; not
        w.r.t. fragments.

    Raises:
        ValueError: colors does not match fragments.pix_to_face; bad background_color.
    """
    _check_inputs(colors, fragments, ())
    background = _background(blend_params, colors)
    covered = (fragments.pix_to_face[..., 0] >= 0).to(colors.device)  # (N, H, W)
    rgb = torch.where(covered[..., None], colors[..., 0, :], background)
    return torch.cat([rgb, covered.to(colors.dtype)[..., None]], dim=-1)


def sigmoid_alpha_blend_reference(
    colors: torch.Tensor, fragments: Fragments, blend_params: BlendParams
) -> torch.Tensor:
    """Pure-torch :func:`sigmoid_alpha_blend` (the oracle, and the path off CPU).

    Same arguments, result and gradients as :func:`sigmoid_alpha_blend`.
    """
    _check_inputs(colors, fragments, ("dists",))
    prob = coverage_probability(fragments, blend_params, colors.dtype)
    alpha = _alpha(prob, _soft_options(blend_params)[2])
    return torch.cat([colors[..., 0, :], alpha[..., None]], dim=-1)


def sigmoid_alpha_blend(
    colors: torch.Tensor, fragments: Fragments, blend_params: BlendParams
) -> torch.Tensor:
    """SoftRas silhouette: alpha from the distances of the K faces, RGB of the nearest face.

    ``prob_k = sigmoid(-dists_k / sigma)`` for faces present (``pix_to_face >= 0``), 0 for
    empty slots; ``A = 1 - prod_k (1 - prob_k)``; ``RGB = colors[..., 0, :]`` (no background,
    as in PyTorch3D). Uses the Numba kernel (first-order differentiable, saves only dists and
    pix_to_face) for CPU float32/float64 tensors, else :func:`sigmoid_alpha_blend_reference`.
    ``blend_params``' SoftRas options (distance, probability, alpha) other than these
    defaults are computed by :func:`coverage_probability` in torch.

    Args:
        colors: (N, H, W, K, C) colour of each of the K faces at each pixel (C = 3 for RGB).
        fragments: rasterizer output; ``pix_to_face`` and ``dists`` (N, H, W, K) are used.
        blend_params: only ``sigma`` (> 0) is used.

    Returns:
        (N, H, W, C + 1) colour and alpha (RGBA for RGB) in colors' dtype. Differentiable
        w.r.t. colors (k = 0 slot) and fragments.dists; not w.r.t. pix_to_face.

    Raises:
        ValueError: shapes of colors / fragments.dists do not match fragments.pix_to_face;
            blend_params.sigma not > 0.
    """
    _check_inputs(colors, fragments, ("dists",))
    sigma = _check_positive("blend_params.sigma", blend_params.sigma)
    dists = fragments.dists.to(colors.dtype)
    if not (_is_default(blend_params) and _use_kernel(colors, dists)):
        return sigmoid_alpha_blend_reference(colors, fragments, blend_params)
    from .blend_kernels import sigmoid_alpha_cpu

    alpha = sigmoid_alpha_cpu(dists, fragments.pix_to_face.to(torch.int64), sigma)
    return torch.cat([colors[..., 0, :], alpha[..., None]], dim=-1)


def softmax_rgb_blend_reference(
    colors: torch.Tensor,
    fragments: Fragments,
    blend_params: BlendParams,
    znear: float | torch.Tensor = 1.0,
    zfar: float | torch.Tensor = 100.0,
    *,
    check_clip_values: bool = True,
) -> torch.Tensor:
    """Pure-torch :func:`softmax_rgb_blend` (the oracle, and the path off CPU).

    Same arguments, result and gradients as :func:`softmax_rgb_blend`; also differentiable
    w.r.t. znear/zfar tensors.
    """
    N = _check_inputs(colors, fragments, ("dists", "zbuf"))[0]
    sigma = _check_positive("blend_params.sigma", blend_params.sigma)
    gamma = _check_positive("blend_params.gamma", blend_params.gamma)
    znear, zfar = _check_clip(znear, zfar, N, check_clip_values)
    background = _background(blend_params, colors)
    if isinstance(znear, torch.Tensor):
        znear = znear.to(colors.device, colors.dtype).reshape(-1, 1, 1, 1)
    if isinstance(zfar, torch.Tensor):
        zfar = zfar.to(colors.device, colors.dtype).reshape(-1, 1, 1, 1)
    del sigma  # (checked; coverage_probability uses it)
    mask = fragments.pix_to_face >= 0
    zbuf = fragments.zbuf.to(colors.dtype)

    prob = coverage_probability(fragments, blend_params, colors.dtype)  # (N, H, W, K)
    z_inv = (zfar - zbuf) / (zfar - znear) * mask  # (N, H, W, K), larger = nearer
    z_inv_max = torch.max(z_inv, dim=-1).values[..., None].clamp(min=_EPS)
    weights_num = prob * torch.exp((z_inv - z_inv_max) / gamma)  # exponent <= 0
    delta = torch.exp((_EPS - z_inv_max) / gamma).clamp(min=_EPS)  # background weight
    denom = weights_num.sum(dim=-1, keepdim=True) + delta  # (N, H, W, 1), >= 1e-10
    weighted = (weights_num[..., None] * colors).sum(dim=-2)  # (N, H, W, C)
    rgb = (weighted + delta * background) / denom
    return torch.cat([rgb, _alpha(prob, _soft_options(blend_params)[2])[..., None]], dim=-1)


def softmax_rgb_blend(
    colors: torch.Tensor,
    fragments: Fragments,
    blend_params: BlendParams,
    znear: float | torch.Tensor = 1.0,
    zfar: float | torch.Tensor = 100.0,
    *,
    check_clip_values: bool = True,
) -> torch.Tensor:
    """SoftRas colour aggregation (Liu et al. 2019), exactly as PyTorch3D computes it.

    With ``m_k = pix_to_face_k >= 0``::

        prob_k    = sigmoid(-dists_k / sigma) * m_k
        z_inv_k   = (zfar - zbuf_k) / (zfar - znear) * m_k
        z_max     = max(max_k z_inv_k, 1e-10)
        w_k       = prob_k * exp((z_inv_k - z_max) / gamma)
        delta     = max(exp((1e-10 - z_max) / gamma), 1e-10)
        RGB       = (sum_k w_k colors_k + delta * background) / (sum_k w_k + delta)
        A         = 1 - prod_k (1 - prob_k)

    (``prob_k`` and ``A`` follow ``blend_params``' SoftRas options when they are not these
    defaults; see :func:`coverage_probability`.)

    Uses the fused Numba kernel for CPU float32/float64 tensors (which saves only its inputs
    for backward and is differentiable to first order), else
    :func:`softmax_rgb_blend_reference`. A znear/zfar tensor that requires grad also selects
    the reference (the kernel treats them as constants).

    Args:
        colors: (N, H, W, K, C) colour of each of the K faces at each pixel (C = 3 for RGB).
        fragments: rasterizer output; ``pix_to_face``, ``dists`` and ``zbuf`` (N, H, W, K).
        blend_params: ``sigma`` > 0, ``gamma`` > 0, ``background_color``.
        znear, zfar: depth range of the camera, numbers or (N,) tensors; znear < zfar.
        check_clip_values: False skips checking that znear/zfar tensors are finite and
            ordered (a host sync on a GPU), for values checked already (cameras).

    Returns:
        (N, H, W, C + 1) colour and alpha (RGBA for RGB) in colors' dtype. Differentiable
        w.r.t. colors, fragments.dists, fragments.zbuf and a background_color tensor; not
        w.r.t. pix_to_face.

    Raises:
        ValueError: shapes of colors / fragments.dists / fragments.zbuf do not match
            fragments.pix_to_face; sigma or gamma not > 0; znear >= zfar or a badly shaped
            znear/zfar; background_color without one entry per channel.
    """
    return _softmax_rgb_blend(colors, None, fragments, blend_params, znear, zfar,
                              check_clip_values)


def softmax_rgb_blend_packed(
    colors: torch.Tensor,
    keep: torch.Tensor,
    where: tuple[torch.Tensor, torch.Tensor],
    fragments: Fragments,
    blend_params: BlendParams,
    znear: float | torch.Tensor = 1.0,
    zfar: float | torch.Tensor = 100.0,
    *,
    check_clip_values: bool = True,
) -> torch.Tensor:
    """:func:`softmax_rgb_blend` of colours given only where ``keep`` is set, the layout
    :func:`~diffrend.render.compact.compact_fragments` makes: equal to blending
    ``scatter_colors(colors, where, ...)`` (colour zero at the other slots), without
    building the dense (N, H, W, K, C) colours or their gradient. The Numba kernel reads
    the packed colours directly; other cases scatter them and call
    :func:`softmax_rgb_blend`.

    Args:
        colors: (N, M, 1, 1, C) packed colours (padding rows are ignored).
        keep: (N, H, W, K) bool, the kept slots, all with ``pix_to_face >= 0``.
        where: ``compact_fragments``' (source, dest) index of the kept slots.
        fragments, blend_params, znear, zfar, check_clip_values: as in
            :func:`softmax_rgb_blend`.

    Returns:
        (N, H, W, C + 1), differentiable w.r.t. colors, fragments.dists, fragments.zbuf and
        a background_color tensor.
    """
    p2f = getattr(fragments, "pix_to_face", None)
    if not isinstance(p2f, torch.Tensor) or p2f.ndim != 4:
        raise ValueError("fragments.pix_to_face must be an (N, H, W, K) tensor")
    shape = tuple(p2f.shape)
    if not isinstance(keep, torch.Tensor) or keep.shape != shape or keep.dtype != torch.bool:
        got = f"{keep.dtype} {tuple(keep.shape)}" if isinstance(keep, torch.Tensor) else keep
        raise ValueError(f"keep must be a bool tensor of shape {shape}, got {got}")
    if (not isinstance(colors, torch.Tensor) or colors.ndim != 5 or colors.shape[0] != shape[0]
            or colors.shape[2:4] != (1, 1)):
        got = tuple(colors.shape) if isinstance(colors, torch.Tensor) else type(colors).__name__
        raise ValueError(f"colors must be packed (N, M, 1, 1, C) with N = {shape[0]}, got {got}")
    return _softmax_rgb_blend(colors, (keep, where), fragments, blend_params, znear, zfar,
                              check_clip_values)


def _softmax_rgb_blend(
    colors: torch.Tensor,
    packing: tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]] | None,
    fragments: Fragments,
    blend_params: BlendParams,
    znear: float | torch.Tensor,
    zfar: float | torch.Tensor,
    check_clip_values: bool,
) -> torch.Tensor:
    """Checks, then the kernel or the reference; ``packing`` = (keep, where) for packed
    colours (:func:`softmax_rgb_blend_packed`), None for dense ones."""
    dense_like = colors
    if packing is not None:  # (pix_to_face checked by the caller) checked as the dense
        shape = tuple(fragments.pix_to_face.shape)  # colours they stand for: a 0-size view
        dense_like = colors.new_empty(()).expand(*shape, colors.shape[-1])
    N = _check_inputs(dense_like, fragments, ("dists", "zbuf"))[0]
    sigma = _check_positive("blend_params.sigma", blend_params.sigma)
    gamma = _check_positive("blend_params.gamma", blend_params.gamma)
    zn, zf = _check_clip(znear, zfar, N, check_clip_values)
    clip_grad = any(isinstance(z, torch.Tensor) and z.requires_grad for z in (zn, zf))
    dists = fragments.dists.to(colors.dtype)
    zbuf = fragments.zbuf.to(colors.dtype)
    # the kernel is written for RGB; other channel counts take the pure-torch path
    if (clip_grad or colors.shape[-1] != 3
            or not (_is_default(blend_params) and _use_kernel(colors, dists, zbuf))):
        if packing is not None:
            colors = scatter_colors(colors, packing[1], shape)
        return softmax_rgb_blend_reference(colors, fragments, blend_params, znear, zfar,
                                           check_clip_values=check_clip_values)
    from .blend_kernels import per_image, softmax_blend_cpu, softmax_blend_packed_cpu

    args = (fragments.pix_to_face.to(torch.int64), _background(blend_params, colors),
            per_image(zn, N), per_image(zf, N), sigma, gamma)
    if packing is None:
        return softmax_blend_cpu(colors, dists, zbuf, *args)
    keep, (source, dest) = packing
    return softmax_blend_packed_cpu(colors, keep, _first_rows(source, dest, shape), dists, zbuf,
                                    *args)


def _first_rows(source: torch.Tensor, dest: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """(N * H * W,) int64: the packed row of each pixel's first kept slot (any value for a
    pixel with none), from compact_fragments' (source, dest) of the T kept slots. O(T + P):
    counts the kept slots per pixel rather than reading the (N, H, W, K) mask."""
    N, H, W, K = shape
    pixel = source // K
    counts = torch.bincount(pixel, minlength=N * H * W)
    first = counts.cumsum(0) - counts  # rank among all kept slots
    if dest.numel():  # plus the image's padding before it: dest - rank, the same per image
        shift = torch.zeros(N, dtype=torch.int64)
        shift[pixel // (H * W)] = dest - torch.arange(dest.numel())
        first += shift.repeat_interleave(H * W)
    return first
