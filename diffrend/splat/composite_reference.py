"""The pure-torch twin of the splat compositor (:func:`.composite.rasterize_to_pixels`).

Differentiable by autograd in every floating input. Tiles are processed in chunks: each
chunk gathers its tiles' intersection lists padded to the chunk's longest list, evaluates
every (pixel, entry) pair at once, and expresses the per-pixel rules (skip, early
termination) as masks on a cumulative product, so there is no Python loop over pixels or
entries. A chunk holds at most ``max_elements`` (pixel, entry) pairs (at least one tile).
"""

from __future__ import annotations

import torch

ALPHA_MAX = 0.999  # alpha is clamped here so that T never reaches 0 (and 1 - alpha divides)
ALPHA_MIN = 1.0 / 255.0  # entries fainter than this are skipped
T_MIN = 1e-4  # a pixel stops before the entry that would take its transmittance to this


def tile_ranges(isect_offsets: torch.Tensor, n_isects: int) -> torch.Tensor:
    """The (start, end) of every tile's list, tiles in (camera, row, column) order.

    Args:
        isect_offsets: (C, TH, TW) int, the first intersection of each tile.
        n_isects: M, the number of intersections (the last tile's list ends there).

    Returns:
        (C * TH * TW, 2) int64. Not differentiable.
    """
    starts = isect_offsets.reshape(-1).to(torch.int64)
    ends = torch.cat([starts[1:], starts.new_tensor([n_isects])])
    return torch.stack([starts, ends], dim=1)


def _chunks(counts: list[int], n_pixels: int, max_elements: int) -> list[tuple[int, int, int]]:
    """Consecutive tile ranges (t0, t1, longest list) whose padded size fits the budget."""
    out = []
    t0, longest = 0, 0
    for t, n in enumerate(counts):
        grown = max(longest, n, 1)
        if t > t0 and (t - t0 + 1) * n_pixels * grown > max_elements:
            out.append((t0, t, longest))
            t0, grown = t, max(n, 1)
        longest = grown
    if t0 < len(counts):
        out.append((t0, len(counts), longest))
    return out


def _composite_chunk(
    ranges: torch.Tensor,
    longest: int,
    pix: torch.Tensor,
    means2d: torch.Tensor,
    conics: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    flatten_ids: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Colours (B, P, D) and final transmittance (B, P) of B tiles.

    ``ranges`` (B, 2) are the tiles' list bounds, ``pix`` (B, P, 2) their pixel centres;
    the Gaussian tables and ``flatten_ids`` end with the padding entry.
    """
    slot = torch.arange(longest, device=ranges.device)
    j = ranges[:, :1] + slot  # (B, L) intersection index
    used = j < ranges[:, 1:]  # padding is masked out
    g = flatten_ids[torch.where(used, j, flatten_ids.shape[0] - 1)]  # (the padding entry)

    mean = means2d[g]  # (B, L, 2)
    con = conics[g]  # (B, L, 3)
    d = pix[:, :, None, :] - mean[:, None, :, :]  # (B, P, L, 2)
    dx, dy = d[..., 0], d[..., 1]
    a, b, c = (con[:, None, :, k] for k in range(3))
    sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
    covers = (sigma >= 0.0) & used[:, None, :]  # (also False for NaN)
    # exp of a negative sigma may overflow: it is masked, so give it a harmless value.
    raw = opacities[g][:, None, :] * torch.exp(-torch.where(covers, sigma, 0.0))
    alpha = torch.clamp(raw, max=ALPHA_MAX)
    valid = covers & (alpha >= ALPHA_MIN)

    # Early termination: the first valid entry whose T_next <= T_MIN stops the pixel, and T
    # never grows, so the contributing entries are exactly the valid ones with T_next > T_MIN.
    with torch.no_grad():
        t_next = torch.cumprod(1.0 - torch.where(valid, alpha, 0.0), dim=-1)
        contrib = valid & (t_next > T_MIN)
    a_c = torch.where(contrib, alpha, 0.0)
    t_after = torch.cumprod(1.0 - a_c, dim=-1)  # (B, P, L)
    t_before = torch.cat([torch.ones_like(t_after[..., :1]), t_after[..., :-1]], dim=-1)
    weight = a_c * t_before
    rgb = torch.einsum("bpl,bld->bpd", weight, colors[g])
    return rgb, t_after[..., -1]


def rasterize_to_pixels_reference(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    image_width: int,
    image_height: int,
    tile_size: int,
    isect_offsets: torch.Tensor,
    flatten_ids: torch.Tensor,
    backgrounds: torch.Tensor | None = None,
    max_elements: int = 1 << 21,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Front-to-back alpha compositing of depth-sorted 2D Gaussians, in torch (the twin of
    the Numba kernels; inputs are assumed checked by :func:`.composite.rasterize_to_pixels`).

    Pixel (x, y) has centre (x + 0.5, y + 0.5). Per pixel, over its tile's list in order:
    sigma = 0.5 (a dx^2 + c dy^2) + b dx dy with d = centre - mean; skip if sigma < 0;
    alpha = min(0.999, opacity exp(-sigma)); skip if alpha < 1/255; stop before the entry
    whose T (1 - alpha) <= 1e-4; otherwise add colour alpha T and multiply T by 1 - alpha.

    Args:
        means2d: (C, N, 2) pixel-space centres.
        conics: (C, N, 3) upper triangle (a, b, c) of the inverse 2D covariances.
        colors: (C, N, D) colours (any number of channels).
        opacities: (C, N) in [0, 1].
        image_width, image_height: W, H in pixels.
        tile_size: the tile edge in pixels; TH = ceil(H / tile_size), TW = ceil(W / ...).
        isect_offsets: (C, TH, TW) int, the first intersection of each tile.
        flatten_ids: (M,) int, the Gaussian (c * N + n) of each intersection, each tile's
            list front to back.
        backgrounds: (C, D) colour behind the Gaussians, or None (black).
        max_elements: how many (pixel, entry) pairs one chunk of tiles may hold (memory).

    Returns:
        render_colors: (C, H, W, D) and render_alphas: (C, H, W, 1) = 1 - final T.
        Differentiable in means2d, conics, colors, opacities and backgrounds.
    """
    C, N = means2d.shape[:2]
    D = colors.shape[-1]
    ts = tile_size
    TH, TW = isect_offsets.shape[1:]
    device, dtype = means2d.device, means2d.dtype
    ranges = tile_ranges(isect_offsets, flatten_ids.shape[0])
    counts = (ranges[:, 1] - ranges[:, 0]).clamp(min=0).tolist()
    flat_ids = flatten_ids.to(torch.int64)

    # Pixel centres of every tile, (C * TH * TW, ts * ts, 2); the image is cropped at the end.
    iy, ix = torch.meshgrid(
        torch.arange(ts, device=device), torch.arange(ts, device=device), indexing="ij"
    )
    local = torch.stack([ix.reshape(-1), iy.reshape(-1)], dim=-1).to(dtype) + 0.5
    ty, tx = torch.meshgrid(
        torch.arange(TH, device=device), torch.arange(TW, device=device), indexing="ij"
    )
    origin = torch.stack([tx.reshape(-1), ty.reshape(-1)], dim=-1).to(dtype) * ts
    pix = (origin[:, None, :] + local[None]).repeat(C, 1, 1)

    # Padding entries point at an extra all-zero Gaussian (index C * N), out of the graph's
    # way even when a real Gaussian holds NaN; the id list gets an extra entry for them too.
    flat_ids = torch.cat([flat_ids, flat_ids.new_tensor([C * N])])
    m2 = torch.cat([means2d.reshape(C * N, 2), means2d.new_zeros(1, 2)])
    con = torch.cat([conics.reshape(C * N, 3), conics.new_zeros(1, 3)])
    col = torch.cat([colors.reshape(C * N, D), colors.new_zeros(1, D)])
    op = torch.cat([opacities.reshape(C * N), opacities.new_zeros(1)])
    rgbs, ts_final = [], []
    for t0, t1, longest in _chunks(counts, ts * ts, max_elements):
        rgb, t_fin = _composite_chunk(
            ranges[t0:t1], longest, pix[t0:t1], m2, con, col, op, flat_ids
        )
        rgbs.append(rgb)
        ts_final.append(t_fin)
    rgb = torch.cat(rgbs).reshape(C, TH, TW, ts, ts, D)
    t_fin = torch.cat(ts_final).reshape(C, TH, TW, ts, ts)
    rgb = rgb.permute(0, 1, 3, 2, 4, 5).reshape(C, TH * ts, TW * ts, D)
    t_fin = t_fin.permute(0, 1, 3, 2, 4).reshape(C, TH * ts, TW * ts)
    rgb = rgb[:, :image_height, :image_width]
    t_fin = t_fin[:, :image_height, :image_width, None]
    if backgrounds is not None:
        rgb = rgb + t_fin * backgrounds[:, None, None, :]
    return rgb, 1.0 - t_fin
