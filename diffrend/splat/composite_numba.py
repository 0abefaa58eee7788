"""Numba CPU kernels of the splat compositor: forward and backward, one parallel task per tile.

The arithmetic is float64 whatever the inputs' dtype (float32 inputs are widened when read,
outputs narrowed when written), so a float32 call computes what the float64 torch twin
computes on the widened inputs. Each task first copies its tile's list of Gaussians into
contiguous float64 rows, then composites its pixels entry by entry: each entry updates only
the pixels of a conservative bound of its footprint, and per pixel the operations and their
order are those of a walk along the list, so the results are the same to the bit. Forward
keeps, per pixel, the final transmittance and the index of the last contributing
intersection (as gsplat does). Backward goes from each pixel's last entry back to the front,
recovering T before each entry by dividing by 1 - alpha, and adds each pixel's terms into
per-intersection gradient rows: each intersection belongs to one tile and each tile to one
task, so no two threads write the same row; the rows are then summed per Gaussian by
:func:`scatter_gaussian_grads` (deterministic).
Both kernels compile once per dtype and are cached on disk.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

from ..threads import kernel_lock  # (sets Numba's threading layer before any launch)
from .composite_reference import ALPHA_MAX, ALPHA_MIN, T_MIN


@nb.njit(cache=True, inline="always")
def _tile_box(tid, n_ty, n_tx, ts, H, W):
    """Camera, first row, first column, last row + 1, last column + 1 of tile ``tid``."""
    cam = tid // (n_ty * n_tx)
    rem = tid - cam * n_ty * n_tx
    ty = rem // n_tx
    tx = rem - ty * n_tx
    r0 = ty * ts
    c0 = tx * ts
    return cam, r0, c0, min(r0 + ts, H), min(c0 + ts, W)


_SPREAD = 7919  # a prime: k -> k * 7919 mod n is a permutation unless 7919 divides n


@nb.njit(cache=True, inline="always")
def _spread_stride(n_tiles):
    """The stride of the tiles' visiting order: prange hands each thread a contiguous run
    of tasks, and a run of tiles in raster order is one band of the image, where the busy
    tiles (the object) may all fall in one thread's band; a large prime stride spreads
    every run over the whole image."""
    return 1 if n_tiles % _SPREAD == 0 else _SPREAD


@nb.njit(cache=True)
def _gather_tile(means2d, conics, colors, opacities, flatten_ids, j0, j1):
    """The float64 parameters of a tile's list, in list order: (7, L) mean x, mean y, conic a,
    b, c, opacity and the sigma beyond which alpha < 1/255 for sure; (L, D) colours."""
    L = j1 - j0
    D = colors.shape[1]
    par = np.empty((7, L), np.float64)
    col = np.empty((L, D), np.float64)
    for i in range(L):
        g = flatten_ids[j0 + i]
        par[0, i] = means2d[g, 0]
        par[1, i] = means2d[g, 1]
        par[2, i] = conics[g, 0]
        par[3, i] = conics[g, 1]
        par[4, i] = conics[g, 2]
        op = np.float64(opacities[g])
        par[5, i] = op
        # op exp(-sigma) < 1/255 beyond log(255 op); the margin leaves rounding to the exact
        # test, so this only saves exp() calls and never changes a decision.
        par[6, i] = np.log(op / ALPHA_MIN) + 1e-6 if op > 0.0 else -1.0
        for k in range(D):
            col[i, k] = colors[g, k]
    return par, col


# Relative and absolute slack on the cut-off when bounding an entry's footprint, and one more
# pixel each side: the bounds only choose which pixels run the exact test, so they must never
# be tighter than that test, whatever the rounding.
_BOUND_SLACK = 1e-9
_FAR = 1e9


@nb.njit(cache=True, inline="always")
def _clamp_range(lo, hi, first, end):
    """Integer pixels [floor(lo) - 1, floor(hi) + 2) clipped to [first, end); lo, hi finite or
    +-inf (clamped before the int conversion)."""
    a = int(np.floor(max(min(lo, _FAR), -_FAR))) - 1
    b = int(np.floor(max(min(hi, _FAR), -_FAR))) + 2
    return max(a, first), min(b, end)


@nb.njit(cache=True, inline="always")
def _rows(mx, my, ca, cb, cc, cut, r0, r1):
    """Rows [ra, rb) of the tile where entry (mean, conic, cut) can pass the exact test
    sigma <= cut: |dy| <= sqrt(2 cut a / det) for a positive-definite conic (the minimum of
    sigma over dx); the whole tile otherwise. Also returns whether the bound applies."""
    det = ca * cc - cb * cb
    cutm = cut * (1.0 + _BOUND_SLACK) + _BOUND_SLACK
    if ca > 0.0 and det > 0.0 and np.isfinite(cutm) and np.isfinite(mx) and np.isfinite(my):
        ry = np.sqrt(2.0 * cutm * ca / det)
        if np.isfinite(ry):
            ra, rb = _clamp_range(my - ry - 0.5, my + ry - 0.5, r0, r1)
            return ra, rb, True
    return r0, r1, False


@nb.njit(cache=True, inline="always")
def _cols(mx, dy, ca, cb, cc, cut, bounded, c0, c1):
    """Columns [ca_, cb_) of a row at offset dy where the entry can pass sigma <= cut: the
    roots of 0.5 a dx^2 + b dy dx + 0.5 c dy^2 = cut (slackened), or the whole row."""
    if not bounded:
        return c0, c1
    cutm = cut * (1.0 + _BOUND_SLACK) + _BOUND_SLACK
    disc = 2.0 * ca * cutm - (ca * cc - cb * cb) * dy * dy
    root = np.sqrt(max(disc, 0.0))
    lo = (-cb * dy - root) / ca
    hi = (-cb * dy + root) / ca
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return c0, c1
    return _clamp_range(mx + lo - 0.5, mx + hi - 0.5, c0, c1)


@nb.njit(parallel=True, cache=True, fastmath=False)
def composite_forward(means2d, conics, colors, opacities, tile_start, flatten_ids,
                      n_ty, n_tx, ts, out_color, out_t, out_last):
    """Composite every pixel of every tile.

    Entry-major: each entry of the tile's list, front to back, updates the pixels of its
    footprint (a conservative bound of where sigma <= its cut-off; the exact test still
    decides), skipping pixels that have terminated. Each pixel sees the same operations in
    the same order as a per-pixel walk of the list, so results are the same to the bit, but
    the work follows the Gaussians' areas instead of list length x tile area.

    Args:
        means2d: (G, 2), conics: (G, 3), colors: (G, D), opacities: (G,) with G = C * N.
        tile_start: (C * TH * TW + 1,) int64 list bounds of each tile.
        flatten_ids: (M,) int64 Gaussian of each intersection.
        n_ty, n_tx, ts: the tile grid (TH, TW) and the tile edge.
        out_color: (C, H, W, D) written (inputs' dtype), without background.
        out_t: (C, H, W) float64 final transmittance, written.
        out_last: (C, H, W) int64 index of the last contributing intersection (its tile's
            start - 1 when none), written.
    """
    H = out_color.shape[1]
    W = out_color.shape[2]
    D = out_color.shape[3]
    n_tiles = tile_start.shape[0] - 1
    stride = _spread_stride(n_tiles)
    for q in nb.prange(n_tiles):
        tid = (q * stride) % n_tiles
        cam, r0, c0, r1, c1 = _tile_box(tid, n_ty, n_tx, ts, H, W)
        j0 = tile_start[tid]
        j1 = tile_start[tid + 1]
        L = j1 - j0
        par, col = _gather_tile(means2d, conics, colors, opacities, flatten_ids, j0, j1)
        tw = c1 - c0
        npx = (r1 - r0) * tw
        T = np.ones(npx, np.float64)
        acc = np.zeros((npx, D), np.float64)
        last = np.full(npx, -1, np.int64)
        done = np.zeros(npx, np.bool_)
        n_done = 0
        for i in range(L):
            if n_done == npx:
                break
            mx = par[0, i]
            my = par[1, i]
            ca = par[2, i]
            cb = par[3, i]
            cc = par[4, i]
            op = par[5, i]
            cut = par[6, i]
            if cut < 0.0:  # opacity 0: sigma >= 0 > cut everywhere
                continue
            ra, rb, bounded = _rows(mx, my, ca, cb, cc, cut, r0, r1)
            for r in range(ra, rb):
                py = r + 0.5
                dy = py - my
                cs, ce = _cols(mx, dy, ca, cb, cc, cut, bounded, c0, c1)
                for c in range(cs, ce):
                    p = (r - r0) * tw + (c - c0)
                    if done[p]:
                        continue
                    dx = (c + 0.5) - mx
                    sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if not (sigma >= 0.0) or sigma > cut:
                        continue
                    alpha = min(ALPHA_MAX, op * np.exp(-sigma))
                    if not (alpha >= ALPHA_MIN):
                        continue
                    t_next = T[p] * (1.0 - alpha)
                    if t_next <= T_MIN:
                        done[p] = True
                        n_done += 1
                        continue
                    w = alpha * T[p]
                    for k in range(D):
                        acc[p, k] += w * col[i, k]
                    T[p] = t_next
                    last[p] = i
        for r in range(r0, r1):
            for c in range(c0, c1):
                p = (r - r0) * tw + (c - c0)
                for k in range(D):
                    out_color[cam, r, c, k] = acc[p, k]
                out_t[cam, r, c] = T[p]
                out_last[cam, r, c] = j0 + last[p]


@nb.njit(parallel=True, cache=True, fastmath=False)
def composite_backward(means2d, conics, colors, opacities, tile_start, flatten_ids,
                       n_ty, n_tx, ts, backgrounds, out_t, out_last, v_color, v_alpha,
                       g_mean, g_conic, g_color, g_opac):
    """Gradients of every intersection, back to front along each pixel's list.

    Entry-major like :func:`composite_forward`, from the tile's last entry to its first; each
    pixel keeps its own T and colour-behind, so it sees the same operations in the same order
    as a per-pixel backward walk, and each entry's rows get their pixels' terms in row-major
    order (the same sums, to the bit).

    Args:
        means2d ... ts: as :func:`composite_forward`.
        backgrounds: (C, D) (zeros when there is none).
        out_t, out_last: the forward's (C, H, W) final T and last contributing entry.
        v_color: (C, H, W, D), v_alpha: (C, H, W) gradients of the outputs.
        g_mean: (M, 2), g_conic: (M, 3), g_color: (M, D), g_opac: (M,) float64 zeros, to
            which each intersection's gradient is added (rows of one tile by one task).
    """
    H = out_t.shape[1]
    W = out_t.shape[2]
    D = colors.shape[1]
    n_tiles = tile_start.shape[0] - 1
    stride = _spread_stride(n_tiles)
    for q in nb.prange(n_tiles):
        tid = (q * stride) % n_tiles
        cam, r0, c0, r1, c1 = _tile_box(tid, n_ty, n_tx, ts, H, W)
        j0 = tile_start[tid]
        j1 = tile_start[tid + 1]
        par, col = _gather_tile(means2d, conics, colors, opacities, flatten_ids, j0, j1)
        tw = c1 - c0
        npx = (r1 - r0) * tw
        T = np.empty(npx, np.float64)
        va_fin = np.empty(npx, np.float64)
        lastp = np.empty(npx, np.int64)
        behind = np.empty((npx, D), np.float64)  # colour of everything behind the entry
        vc = np.empty((npx, D), np.float64)
        n_walk = 0
        for r in range(r0, r1):
            for c in range(c0, c1):
                p = (r - r0) * tw + (c - c0)
                T_fin = out_t[cam, r, c]
                T[p] = T_fin
                va_fin[p] = np.float64(v_alpha[cam, r, c]) * T_fin
                lastp[p] = out_last[cam, r, c] - j0
                n_walk = max(n_walk, lastp[p] + 1)
                for k in range(D):
                    behind[p, k] = T_fin * np.float64(backgrounds[cam, k])
                    vc[p, k] = v_color[cam, r, c, k]
        for i in range(n_walk - 1, -1, -1):
            mx = par[0, i]
            my = par[1, i]
            ca = par[2, i]
            cb = par[3, i]
            cc = par[4, i]
            op = par[5, i]
            cut = par[6, i]
            if cut < 0.0:
                continue
            j = j0 + i
            ra, rb, bounded = _rows(mx, my, ca, cb, cc, cut, r0, r1)
            for r in range(ra, rb):
                py = r + 0.5
                dy = py - my
                cs, ce = _cols(mx, dy, ca, cb, cc, cut, bounded, c0, c1)
                for c in range(cs, ce):
                    p = (r - r0) * tw + (c - c0)
                    if i > lastp[p]:
                        continue
                    dx = (c + 0.5) - mx
                    sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if not (sigma >= 0.0) or sigma > cut:
                        continue
                    vis = np.exp(-sigma)
                    raw = op * vis
                    alpha = min(ALPHA_MAX, raw)
                    if not (alpha >= ALPHA_MIN):
                        continue
                    inv = 1.0 / (1.0 - alpha)
                    T[p] = T[p] * inv  # T before this entry
                    w = alpha * T[p]
                    # d colour / d alpha = colour T - (what is behind) / (1 - alpha);
                    # d (1 - T_fin) / d alpha = T_fin / (1 - alpha).
                    v_a = va_fin[p] * inv
                    for k in range(D):
                        g_color[j, k] += w * vc[p, k]
                        v_a += vc[p, k] * (col[i, k] * T[p] - behind[p, k] * inv)
                        behind[p, k] += w * col[i, k]
                    if raw <= ALPHA_MAX:  # the clamp passes no gradient
                        g_opac[j] += v_a * vis
                        v_sigma = -v_a * raw
                        g_conic[j, 0] += 0.5 * v_sigma * dx * dx
                        g_conic[j, 1] += v_sigma * dx * dy
                        g_conic[j, 2] += 0.5 * v_sigma * dy * dy
                        g_mean[j, 0] -= v_sigma * (ca * dx + cb * dy)
                        g_mean[j, 1] -= v_sigma * (cb * dx + cc * dy)


def _tile_start(isect_offsets: torch.Tensor, n_isects: int) -> np.ndarray:
    """(C * TH * TW + 1,) int64 list bounds of every tile, from the (C, TH, TW) offsets."""
    starts = isect_offsets.detach().reshape(-1).to(torch.int64).numpy()
    return np.append(starts, np.int64(n_isects))


def forward(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    image_width: int,
    image_height: int,
    tile_size: int,
    isect_offsets: torch.Tensor,
    flatten_ids: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run :func:`composite_forward` on CPU tensors (not differentiable; see
    :mod:`.composite`).

    Args: as :func:`.composite.rasterize_to_pixels` (means2d (C, N, 2), conics (C, N, 3),
        colors (C, N, D), opacities (C, N), one float dtype; offsets (C, TH, TW)).

    Returns:
        colors: (C, H, W, D) without background (inputs' dtype); t_final: (C, H, W) float64;
        last: (C, H, W) int64 last contributing intersection of each pixel.
    """
    C, N = means2d.shape[:2]
    D = colors.shape[-1]
    TH, TW = isect_offsets.shape[1:]
    G = C * N
    out_color = np.empty((C, image_height, image_width, D), colors.detach().numpy().dtype)
    out_t = np.empty((C, image_height, image_width), np.float64)
    out_last = np.empty((C, image_height, image_width), np.int64)
    with kernel_lock():  # (see diffrend.threads)
        composite_forward(
            means2d.detach().reshape(G, 2).contiguous().numpy(),
            conics.detach().reshape(G, 3).contiguous().numpy(),
            colors.detach().reshape(G, D).contiguous().numpy(),
            opacities.detach().reshape(G).contiguous().numpy(),
            _tile_start(isect_offsets, flatten_ids.shape[0]),
            flatten_ids.detach().to(torch.int64).contiguous().numpy(),
            TH, TW, tile_size, out_color, out_t, out_last,
        )
    return torch.from_numpy(out_color), torch.from_numpy(out_t), torch.from_numpy(out_last)


def backward(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    tile_size: int,
    isect_offsets: torch.Tensor,
    flatten_ids: torch.Tensor,
    backgrounds: torch.Tensor | None,
    t_final: torch.Tensor,
    last: torch.Tensor,
    v_colors: torch.Tensor,
    v_alphas: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run :func:`composite_backward` and sum each intersection's gradient into its Gaussian.

    Args:
        means2d ... flatten_ids: the forward's inputs; backgrounds: (C, D) or None.
        t_final, last: the (C, H, W) outputs of :func:`forward`.
        v_colors: (C, H, W, D), v_alphas: (C, H, W, 1) gradients of the outputs.

    Returns:
        Gradients of means2d (C, N, 2), conics (C, N, 3), colors (C, N, D), opacities (C, N)
        in the inputs' dtype (the background's is computed by the caller).
    """
    C, N = means2d.shape[:2]
    D = colors.shape[-1]
    TH, TW = isect_offsets.shape[1:]
    G = C * N
    M = flatten_ids.shape[0]
    ids = flatten_ids.detach().to(torch.int64).contiguous()
    if backgrounds is None:
        bg = np.zeros((C, D), np.float64)
    else:
        bg = backgrounds.detach().contiguous().numpy()
    g_mean = np.zeros((M, 2), np.float64)
    g_conic = np.zeros((M, 3), np.float64)
    g_color = np.zeros((M, D), np.float64)
    g_opac = np.zeros(M, np.float64)
    with kernel_lock():  # (see diffrend.threads)
        composite_backward(
            means2d.detach().reshape(G, 2).contiguous().numpy(),
            conics.detach().reshape(G, 3).contiguous().numpy(),
            colors.detach().reshape(G, D).contiguous().numpy(),
            opacities.detach().reshape(G).contiguous().numpy(),
            _tile_start(isect_offsets, M),
            ids.numpy(),
            TH, TW, tile_size, bg, t_final.numpy(), last.numpy(),
            v_colors.detach().contiguous().numpy(),
            v_alphas.detach().reshape(v_alphas.shape[:3]).contiguous().numpy(),
            g_mean, g_conic, g_color, g_opac,
        )
    dtype = means2d.dtype
    s_mean = np.zeros((G, 2), np.float64)
    s_conic = np.zeros((G, 3), np.float64)
    s_color = np.zeros((G, D), np.float64)
    s_opac = np.zeros(G, np.float64)
    with kernel_lock():
        scatter_gaussian_grads(ids.numpy(), g_mean, g_conic, g_color, g_opac,
                               s_mean, s_conic, s_color, s_opac)
    return (
        torch.from_numpy(s_mean).to(dtype).reshape(C, N, 2),
        torch.from_numpy(s_conic).to(dtype).reshape(C, N, 3),
        torch.from_numpy(s_color).to(dtype).reshape(C, N, D),
        torch.from_numpy(s_opac).to(dtype).reshape(C, N),
    )


@nb.njit(cache=True, fastmath=False)
def scatter_gaussian_grads(flatten_ids, g_mean, g_conic, g_color, g_opac,
                           s_mean, s_conic, s_color, s_opac):
    """Add the per-intersection gradient rows (M, ...) into the per-Gaussian rows (G, ...)
    of the zero-initialised ``s_*`` by ``flatten_ids`` (M,) int64, in intersection order
    (serial: deterministic, the sums of an in-order ``index_add_``, in one pass for all
    four)."""
    D = g_color.shape[1]
    for j in range(flatten_ids.shape[0]):
        g = flatten_ids[j]
        s_mean[g, 0] += g_mean[j, 0]
        s_mean[g, 1] += g_mean[j, 1]
        s_conic[g, 0] += g_conic[j, 0]
        s_conic[g, 1] += g_conic[j, 1]
        s_conic[g, 2] += g_conic[j, 2]
        for k in range(D):
            s_color[g, k] += g_color[j, k]
        s_opac[g] += g_opac[j]
