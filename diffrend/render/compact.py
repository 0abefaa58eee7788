"""Shade only the fragments blending can see.

Shading costs O(N*H*W*K) tensor work, but blending reads far fewer entries: hard blending
only the nearest face of covered pixels; SoftRas colour blending weighs face k by
``exp((z_inv_k - z_inv_max) / gamma)``, which for faces more than ~28 gamma behind the
nearest one is below 1e-12 of the front face's weight. So the renderer compacts the entries
that matter into a flat (N, M, 1, 1) fragments record and shades those. Hard and sigmoid
blending get the colours scattered back (zeros elsewhere); the CPU softmax kernel reads them
packed (:func:`~diffrend.render.blend.softmax_rgb_blend_packed`). Blending still sees every
entry's coverage and depth, so alpha and the softmax denominator stay exact. What is left
out changes the colour by less than 1e-12 relative (softmax) or not at all (hard,
silhouette).
"""

from __future__ import annotations

import math

import torch

from ..raster import Fragments

SOFTMAX_CUTOFF = 1e-12  # relative weight below which a face's colour is not shaded


@torch.no_grad()
def visible_entries(
    blend: str,
    fragments: Fragments,
    gamma: float = 1e-4,
    znear: float | torch.Tensor = 1.0,
    zfar: float | torch.Tensor = 100.0,
) -> torch.Tensor:
    """(N, H, W, K) bool: the entries whose colour the blending function uses.

    Args:
        blend: "hard", "sigmoid" (both read only k = 0) or "softmax".
        fragments: rasterizer output.
        gamma, znear, zfar: the softmax blending's parameters.
    """
    p2f = fragments.pix_to_face
    valid = p2f >= 0
    if blend in ("hard", "sigmoid"):
        first = torch.zeros_like(valid)
        first[..., 0] = valid[..., 0]
        return first
    if blend != "softmax":
        raise ValueError(f"blend must be 'hard', 'sigmoid' or 'softmax', got {blend!r}")
    zbuf = fragments.zbuf
    if (zbuf.device.type == "cpu" and zbuf.dtype in (torch.float32, torch.float64)
            and isinstance(gamma, (int, float)) and gamma > 0):
        # one Numba pass instead of six over (N, H, W, K) (float64 arithmetic: a slot at the
        # cutoff may fall either way, which changes the colour by < 1e-12 relative)
        from .blend_kernels import per_image, softmax_keep_cpu

        n = p2f.shape[0]
        return softmax_keep_cpu(zbuf, p2f.to(torch.int64), per_image(znear, n),
                                per_image(zfar, n), gamma, SOFTMAX_CUTOFF)
    zn, zf = (_per_image(z, zbuf) for z in (znear, zfar))
    z_inv = torch.where(valid, (zf - zbuf) / (zf - zn), torch.full_like(zbuf, -torch.inf))
    z_max = z_inv.amax(dim=-1, keepdim=True)
    # log of the depth factor relative to the nearest face; prob <= 1 only lowers it.
    log_rel = (z_inv - z_max) / gamma
    return valid & (log_rel >= math.log(SOFTMAX_CUTOFF))


def _per_image(z: float | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
    """A number as it is (no host-to-device copy); a tensor as (N or 1, 1, 1, 1)."""
    if isinstance(z, torch.Tensor):
        return z.to(dtype=like.dtype, device=like.device).reshape(-1, 1, 1, 1)
    return float(z)


def compact_fragments(
    fragments: Fragments, keep: torch.Tensor
) -> tuple[Fragments, tuple[torch.Tensor, torch.Tensor]]:
    """Gather the kept entries of each image into a flat (N, M, 1, 1) fragments record.

    Args:
        fragments: (N, H, W, K) fields (``dists`` may be None, and stays None).
        keep: (N, H, W, K) bool.

    Returns:
        (compact, where): ``compact`` has M = the largest kept count over images (padding
        has pix_to_face -1), the kept entries of image n in (h, w, k) order at the front of
        row n. ``where`` = (source, dest), (T,) int64 each: the flat (N * H * W * K) index of
        every kept entry and its flat (N * M) index in ``compact``, for
        :func:`scatter_colors`. Differentiable w.r.t. zbuf, bary_coords and dists.
    """
    N = keep.shape[0]
    counts = keep.flatten(1).sum(1)
    # The sizes are data-dependent: one host read (a CUDA sync) gives them all, and
    # nonzero_static, told the total, then needs none of its own.
    host_counts = counts.tolist()
    M = max(max(host_counts, default=0), 1)
    source = _nonzero(keep.reshape(-1), sum(host_counts))
    padded = any(c != M for c in host_counts)  # never so for one image
    dest = torch.arange(source.numel(), device=keep.device)
    if padded:
        n = source // keep[0].numel()
        dest += n * M - (torch.cumsum(counts, 0) - counts)[n]

    def pack(x: torch.Tensor | None, fill: float) -> torch.Tensor | None:
        if x is None:  # e.g. no dists from an OpenGL-style rasterizer
            return None
        rest = x.shape[4:]
        picked = x.reshape(-1, *rest).index_select(0, source)
        if not padded:
            return picked.reshape(N, M, 1, 1, *rest)
        out = x.new_full((N * M, *rest), fill)
        return out.index_copy(0, dest, picked).reshape(N, M, 1, 1, *rest)

    compact = Fragments(
        pix_to_face=pack(fragments.pix_to_face, -1),
        zbuf=pack(fragments.zbuf, -1.0),
        bary_coords=pack(fragments.bary_coords, -1.0),
        dists=pack(fragments.dists, -1.0),
    )
    return compact, (source, dest)


def _nonzero(mask: torch.Tensor, total: int) -> torch.Tensor:
    """``torch.nonzero(mask)`` of a 1-d mask as (total,) indices, when the count is known."""
    try:
        return torch.nonzero_static(mask, size=total)[:, 0]
    except (RuntimeError, NotImplementedError):  # devices/versions without nonzero_static
        return torch.nonzero(mask)[:, 0]


def scatter_colors(
    colors: torch.Tensor, where: tuple[torch.Tensor, torch.Tensor], shape: tuple[int, ...]
) -> torch.Tensor:
    """Put compact colours (N, M, 1, 1, C) back at their (N, H, W, K) places; zeros elsewhere.

    Args:
        colors: (N, M, 1, 1, C) as :func:`compact_fragments` lays them out.
        where: its (source, dest) indices.
        shape: (N, H, W, K).

    Returns:
        (N, H, W, K, C); differentiable w.r.t. ``colors``.
    """
    source, dest = where
    C = colors.shape[-1]
    picked = colors.reshape(-1, C).index_select(0, dest)
    out = colors.new_zeros((math.prod(shape), C))
    return out.index_copy_(0, source, picked).reshape(*shape, C)  # in place: no copy
