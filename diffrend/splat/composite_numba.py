"""Numba CPU kernels of the splat compositor: forward and backward, one parallel task per tile.

The arithmetic is float64 whatever the inputs' dtype (float32 inputs are widened when read,
outputs narrowed when written), so a float32 call computes what the float64 torch twin
computes on the widened inputs. Each task first copies its tile's list of Gaussians into
contiguous float64 rows, then composites its pixels. Forward keeps, per pixel, the final
transmittance and the index of the last contributing intersection (as gsplat does). Backward
walks each pixel's list from that entry back to the front, recovering T before each entry by
dividing by 1 - alpha, and adds each pixel's terms into per-intersection gradient rows: each
intersection belongs to one tile and each tile to one task, so no two threads write the same
row; the rows are then summed per Gaussian by :func:`scatter_gaussian_grads` (deterministic).
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


@nb.njit(cache=True, inline="always")
def _sigmas(par, px, py, i0, i1, sig):
    """sig[i] = sigma of entry i at pixel centre (px, py), for i in [i0, i1): no branch, so
    LLVM vectorises it (the backward's first pass; the forward, which may stop early, computes
    sigma entry by entry with the same expression, so both get the same values)."""
    mx = par[0]
    my = par[1]
    ca = par[2]
    cb = par[3]
    cc = par[4]
    for i in range(i0, i1):
        dx = px - mx[i]
        dy = py - my[i]
        sig[i] = 0.5 * (ca[i] * dx * dx + cc[i] * dy * dy) + cb[i] * dx * dy


@nb.njit(parallel=True, cache=True, fastmath=False)
def composite_forward(means2d, conics, colors, opacities, tile_start, flatten_ids,
                      n_ty, n_tx, ts, out_color, out_t, out_last):
    """Composite every pixel of every tile.

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
    for tid in nb.prange(n_tiles):
        cam, r0, c0, r1, c1 = _tile_box(tid, n_ty, n_tx, ts, H, W)
        j0 = tile_start[tid]
        j1 = tile_start[tid + 1]
        L = j1 - j0
        par, col = _gather_tile(means2d, conics, colors, opacities, flatten_ids, j0, j1)
        mx = par[0]
        my = par[1]
        ca = par[2]
        cb = par[3]
        cc = par[4]
        op = par[5]
        cut = par[6]
        acc = np.empty(D, np.float64)
        for r in range(r0, r1):
            py = r + 0.5
            for c in range(c0, c1):
                px = c + 0.5
                acc[:] = 0.0
                T = 1.0
                last = -1
                for i in range(L):
                    dx = px - mx[i]
                    dy = py - my[i]
                    sigma = 0.5 * (ca[i] * dx * dx + cc[i] * dy * dy) + cb[i] * dx * dy
                    if not (sigma >= 0.0) or sigma > cut[i]:
                        continue
                    alpha = min(ALPHA_MAX, op[i] * np.exp(-sigma))
                    if not (alpha >= ALPHA_MIN):
                        continue
                    t_next = T * (1.0 - alpha)
                    if t_next <= T_MIN:
                        break
                    w = alpha * T
                    for k in range(D):
                        acc[k] += w * col[i, k]
                    T = t_next
                    last = i
                for k in range(D):
                    out_color[cam, r, c, k] = acc[k]
                out_t[cam, r, c] = T
                out_last[cam, r, c] = j0 + last


@nb.njit(parallel=True, cache=True, fastmath=False)
def composite_backward(means2d, conics, colors, opacities, tile_start, flatten_ids,
                       n_ty, n_tx, ts, backgrounds, out_t, out_last, v_color, v_alpha,
                       g_mean, g_conic, g_color, g_opac):
    """Gradients of every intersection, back to front along each pixel's list.

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
    for tid in nb.prange(n_tiles):
        cam, r0, c0, r1, c1 = _tile_box(tid, n_ty, n_tx, ts, H, W)
        j0 = tile_start[tid]
        j1 = tile_start[tid + 1]
        par, col = _gather_tile(means2d, conics, colors, opacities, flatten_ids, j0, j1)
        mx = par[0]
        my = par[1]
        op = par[5]
        cut = par[6]
        sig = np.empty(j1 - j0, np.float64)
        behind = np.empty(D, np.float64)  # colour of everything behind the current entry
        vc = np.empty(D, np.float64)
        for r in range(r0, r1):
            py = r + 0.5
            for c in range(c0, c1):
                px = c + 0.5
                T_fin = out_t[cam, r, c]
                T = T_fin
                va_fin = np.float64(v_alpha[cam, r, c]) * T_fin
                for k in range(D):
                    behind[k] = T_fin * np.float64(backgrounds[cam, k])
                    vc[k] = v_color[cam, r, c, k]
                n_walk = out_last[cam, r, c] - j0 + 1
                _sigmas(par, px, py, 0, n_walk, sig)
                for i in range(n_walk - 1, -1, -1):
                    sigma = sig[i]
                    if not (sigma >= 0.0) or sigma > cut[i]:
                        continue
                    vis = np.exp(-sigma)
                    raw = op[i] * vis
                    alpha = min(ALPHA_MAX, raw)
                    if not (alpha >= ALPHA_MIN):
                        continue
                    inv = 1.0 / (1.0 - alpha)
                    T = T * inv  # T before this entry
                    w = alpha * T
                    # d colour / d alpha = colour T - (what is behind) / (1 - alpha);
                    # d (1 - T_fin) / d alpha = T_fin / (1 - alpha).
                    v_a = va_fin * inv
                    j = j0 + i
                    for k in range(D):
                        g_color[j, k] += w * vc[k]
                        v_a += vc[k] * (col[i, k] * T - behind[k] * inv)
                        behind[k] += w * col[i, k]
                    if raw <= ALPHA_MAX:  # the clamp passes no gradient
                        dx = px - mx[i]
                        dy = py - my[i]
                        ca = par[2, i]
                        cb = par[3, i]
                        cc = par[4, i]
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
    return (
        scatter_gaussian_grads(torch.from_numpy(g_mean), ids, G).to(dtype).reshape(C, N, 2),
        scatter_gaussian_grads(torch.from_numpy(g_conic), ids, G).to(dtype).reshape(C, N, 3),
        scatter_gaussian_grads(torch.from_numpy(g_color), ids, G).to(dtype).reshape(C, N, D),
        scatter_gaussian_grads(torch.from_numpy(g_opac), ids, G).to(dtype).reshape(C, N),
    )


def scatter_gaussian_grads(rows: torch.Tensor, flatten_ids: torch.Tensor, n: int) -> torch.Tensor:
    """Sum per-intersection gradient rows (M, ...) into per-Gaussian rows (n, ...) by
    ``flatten_ids`` (M,) int64 (CPU ``index_add_`` runs in order: deterministic)."""
    out = rows.new_zeros((n, *rows.shape[1:]))
    return out.index_add_(0, flatten_ids, rows)
