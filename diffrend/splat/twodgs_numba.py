"""Numba CPU kernels of the surfel (2DGS) compositor: forward and backward, one parallel task
per tile, float64 arithmetic whatever the inputs' dtype.

The per-pixel rule is :mod:`.twodgs_reference`'s, computed with the same operations in the same
order (ray-plane intersection as a cross product, the filter's bound, the alpha rules). Each
task walks its pixels one at a time along the tile's list (as gsplat's CUDA kernel does; the
tile/task layout and the per-intersection gradient rows are :mod:`.composite_numba`'s). The
features are the colours with the camera-space normals appended (F = D + 3 channels). Forward
keeps per pixel the final T, the last contributing intersection, the median intersection and
the sum of w z (for the distortion's backward). Backward walks each pixel's list from its last
entry to the front, recovering T before each entry by dividing by 1 - alpha; each intersection
belongs to one tile and each tile to one task, so its gradient row has one writer.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

from ..threads import kernel_lock  # (sets Numba's threading layer before any launch)
from .composite_numba import _spread_stride, _tile_box
from .composite_reference import ALPHA_MAX, ALPHA_MIN, T_MIN
from .twodgs_reference import DET_REL, FILTER_INV_SQUARE, MEDIAN_T

# Slack on the footprint boxes (pixels, and relative): a box only chooses which pixels run the
# exact test, so it must never be tighter than that test, whatever the rounding.
_BOX_SLACK = 1e-3
_BOX_REL = 1e-9


@nb.njit(cache=True)
def _gather(means2d, rts, feats, opacities, depths, flatten_ids, j0, j1):
    """(L, 19) float64 rows of a tile's list: mean x, y, ray transform (9, row-major),
    opacity, depth, the sigma beyond which alpha < 1/255 for sure (-1 when the opacity is 0),
    a box x0, x1, y0, y1 outside which it is lit nowhere, and the |det T| below which the
    disc's term is not used (see :data:`.twodgs_reference.DET_REL`); and the (L, F)
    features.

    The box joins the filter's disc with the box of the image of the disc u^2 + v^2 <= 2 cut
    (the dual conic T diag(r^2, r^2, -1) T^T, as :func:`.twodgs.project_surfels` does); it is
    infinite where that disc reaches the camera plane."""
    L = j1 - j0
    F = feats.shape[1]
    par = np.empty((L, 19), np.float64)
    fe = np.empty((L, F), np.float64)
    for i in range(L):
        g = flatten_ids[j0 + i]
        par[i, 0] = means2d[g, 0]
        par[i, 1] = means2d[g, 1]
        for k in range(9):
            par[i, 2 + k] = rts[g, k]
        op = np.float64(opacities[g])
        par[i, 11] = op
        par[i, 12] = depths[g]
        for k in range(F):
            fe[i, k] = feats[g, k]
        cut = np.log(op / ALPHA_MIN) + 1e-6 if op > 0.0 else -1.0
        par[i, 13] = cut
        x0 = -np.inf
        x1 = np.inf
        y0 = -np.inf
        y1 = np.inf
        if cut >= 0.0:
            rf = np.sqrt(2.0 * cut / FILTER_INV_SQUARE)
            mx = par[i, 0]
            my = par[i, 1]
            r2 = 2.0 * cut
            a0, a1, a2 = par[i, 2], par[i, 3], par[i, 4]
            b0, b1, b2 = par[i, 5], par[i, 6], par[i, 7]
            w0, w1, w2 = par[i, 8], par[i, 9], par[i, 10]
            q22 = r2 * (w0 * w0 + w1 * w1) - w2 * w2
            if q22 < 0.0:
                q00 = r2 * (a0 * a0 + a1 * a1) - a2 * a2
                q02 = r2 * (a0 * w0 + a1 * w1) - a2 * w2
                q11 = r2 * (b0 * b0 + b1 * b1) - b2 * b2
                q12 = r2 * (b0 * w0 + b1 * w1) - b2 * w2
                cx = q02 / q22
                cy = q12 / q22
                hx = np.sqrt(max(cx * cx - q00 / q22, 0.0))
                hy = np.sqrt(max(cy * cy - q11 / q22, 0.0))
                x0 = min(cx - hx, mx - rf)
                x1 = max(cx + hx, mx + rf)
                y0 = min(cy - hy, my - rf)
                y1 = max(cy + hy, my + rf)
                sx = _BOX_SLACK + _BOX_REL * (abs(x0) + abs(x1))
                sy = _BOX_SLACK + _BOX_REL * (abs(y0) + abs(y1))
                x0 -= sx
                x1 += sx
                y0 -= sy
                y1 += sy
        n0 = np.sqrt(par[i, 2] * par[i, 2] + par[i, 5] * par[i, 5] + par[i, 8] * par[i, 8])
        n1 = np.sqrt(par[i, 3] * par[i, 3] + par[i, 6] * par[i, 6] + par[i, 9] * par[i, 9])
        n2 = np.sqrt(par[i, 4] * par[i, 4] + par[i, 7] * par[i, 7] + par[i, 10] * par[i, 10])
        par[i, 18] = DET_REL * (n0 * n1 * n2)
        par[i, 14] = x0
        par[i, 15] = x1
        par[i, 16] = y0
        par[i, 17] = y1
    return par, fe


@nb.njit(cache=True, inline="always")
def _outside(par, i, px, py):
    """Whether pixel (px, py) lies outside entry i's box (False for NaN boxes: the exact test
    decides) or the entry cannot reach 1/255 anywhere."""
    return (par[i, 13] < 0.0 or px < par[i, 14] or px > par[i, 15] or py < par[i, 16]
            or py > par[i, 17])


@nb.njit(cache=True, inline="always")
def _sigma(par, i, px, py):
    """sigma, whether the 3D term was taken, u, v, zeta_z, h_u, h_v of entry i at a pixel."""
    a0, a1, a2 = par[i, 2], par[i, 3], par[i, 4]
    b0, b1, b2 = par[i, 5], par[i, 6], par[i, 7]
    w0, w1, w2 = par[i, 8], par[i, 9], par[i, 10]
    hu0 = px * w0 - a0
    hu1 = px * w1 - a1
    hu2 = px * w2 - a2
    hv0 = py * w0 - b0
    hv1 = py * w1 - b1
    hv2 = py * w2 - b2
    z0 = hu1 * hv2 - hu2 * hv1
    z1 = hu2 * hv0 - hu0 * hv2
    z2 = hu0 * hv1 - hu1 * hv0
    c0 = a1 * b2 - a2 * b1
    c1 = a2 * b0 - a0 * b2
    c2 = a0 * b1 - a1 * b0
    det = w0 * c0 + w1 * c1 + w2 * c2
    dx = px - par[i, 0]
    dy = py - par[i, 1]
    s2 = FILTER_INV_SQUARE * (dx * dx + dy * dy)
    u = 0.0
    v = 0.0
    took3 = False
    s = s2
    if z2 * det > 0.0 and abs(det) > par[i, 18]:
        u = z0 / z2
        v = z1 / z2
        s3 = u * u + v * v
        if s3 <= s2:
            s = s3
            took3 = True
    return 0.5 * s, took3, u, v, z2, hu0, hu1, hu2, hv0, hv1, hv2, dx, dy


@nb.njit(parallel=True, cache=True, fastmath=False)
def forward_kernel(means2d, rts, feats, opacities, depths, tile_start, flatten_ids, n_ty, n_tx,
                   ts, distloss, out_feat, out_t, out_last, out_median, out_median_id,
                   out_distort, out_acc_wd):
    """Composite every pixel of every tile (see the module's docstring).

    Args:
        means2d (G, 2), rts (G, 9), feats (G, F), opacities (G,), depths (G,): G = C * N.
        tile_start: (C * TH * TW + 1,) int64 list bounds; flatten_ids: (M,) int64.
        n_ty, n_tx, ts: the tile grid and edge; distloss: whether to compute the distortion.
        out_feat (C, H, W, F), out_t, out_median, out_distort, out_acc_wd (C, H, W) float64,
        out_last, out_median_id (C, H, W) int64 (-1 when none): written.
    """
    H = out_feat.shape[1]
    W = out_feat.shape[2]
    F = out_feat.shape[3]
    n_tiles = tile_start.shape[0] - 1
    stride = _spread_stride(n_tiles)
    for q in nb.prange(n_tiles):
        tid = (q * stride) % n_tiles
        cam, r0, c0, r1, c1 = _tile_box(tid, n_ty, n_tx, ts, H, W)
        j0 = tile_start[tid]
        j1 = tile_start[tid + 1]
        par, fe = _gather(means2d, rts, feats, opacities, depths, flatten_ids, j0, j1)
        acc = np.empty(F, np.float64)
        for r in range(r0, r1):
            for c in range(c0, c1):
                px = c + 0.5
                py = r + 0.5
                T = 1.0
                for k in range(F):
                    acc[k] = 0.0
                last = -1
                med = 0.0
                med_id = -1
                dist = 0.0
                acc_wd = 0.0
                for i in range(j1 - j0):
                    if _outside(par, i, px, py):
                        continue
                    res = _sigma(par, i, px, py)
                    sigma = res[0]
                    if not (sigma >= 0.0) or sigma > par[i, 13]:
                        continue
                    alpha = min(ALPHA_MAX, par[i, 11] * np.exp(-sigma))
                    if not (alpha >= ALPHA_MIN):
                        continue
                    t_next = T * (1.0 - alpha)
                    if t_next <= T_MIN:
                        break
                    w = alpha * T
                    for k in range(F):
                        acc[k] += w * fe[i, k]
                    d = par[i, 12]
                    if distloss:
                        dist += 2.0 * (w * d * (1.0 - T) - w * acc_wd)
                    acc_wd += w * d
                    if T > MEDIAN_T:
                        med = d
                        med_id = j0 + i
                    last = i
                    T = t_next
                for k in range(F):
                    out_feat[cam, r, c, k] = acc[k]
                out_t[cam, r, c] = T
                out_last[cam, r, c] = j0 + last
                out_median[cam, r, c] = med
                out_median_id[cam, r, c] = med_id
                out_distort[cam, r, c] = dist
                out_acc_wd[cam, r, c] = acc_wd


@nb.njit(parallel=True, cache=True, fastmath=False)
def backward_kernel(means2d, rts, feats, opacities, depths, tile_start, flatten_ids, n_ty, n_tx,
                    ts, backgrounds, out_t, out_last, out_median_id, out_acc_wd, v_feat,
                    v_alpha, v_distort, v_median, distloss, g_mean, g_rt, g_feat, g_opac,
                    g_depth):
    """Gradients of every intersection, back to front along each pixel's list.

    Args:
        means2d ... ts: as :func:`forward_kernel`; backgrounds: (C, F) (zeros past the
            colours, and zeros when there is none).
        out_t, out_last, out_median_id, out_acc_wd: the forward's (C, H, W) outputs.
        v_feat (C, H, W, F), v_alpha, v_distort, v_median (C, H, W): the outputs' gradients.
        g_mean (M, 2), g_rt (M, 9), g_feat (M, F), g_opac (M,), g_depth (M,): float64 zeros,
            added to per intersection.
    """
    H = out_t.shape[1]
    W = out_t.shape[2]
    F = feats.shape[1]
    n_tiles = tile_start.shape[0] - 1
    stride = _spread_stride(n_tiles)
    for q in nb.prange(n_tiles):
        tid = (q * stride) % n_tiles
        cam, r0, c0, r1, c1 = _tile_box(tid, n_ty, n_tx, ts, H, W)
        j0 = tile_start[tid]
        j1 = tile_start[tid + 1]
        par, fe = _gather(means2d, rts, feats, opacities, depths, flatten_ids, j0, j1)
        behind = np.empty(F, np.float64)
        vf = np.empty(F, np.float64)
        for r in range(r0, r1):
            for c in range(c0, c1):
                px = c + 0.5
                py = r + 0.5
                T_fin = out_t[cam, r, c]
                T = T_fin
                va_fin = np.float64(v_alpha[cam, r, c]) * T_fin
                for k in range(F):
                    behind[k] = T_fin * backgrounds[cam, k]
                    vf[k] = v_feat[cam, r, c, k]
                mid = out_median_id[cam, r, c]
                if mid >= 0:
                    g_depth[mid] += v_median[cam, r, c]
                vd = np.float64(v_distort[cam, r, c]) if distloss else 0.0
                wd_total = out_acc_wd[cam, r, c]
                w_after = 0.0  # sum of w over the contributing entries behind
                wd_after = 0.0  # sum of w z over them
                behind_d = 0.0  # sum of dD/dw w over them
                for i in range(out_last[cam, r, c] - j0, -1, -1):
                    if _outside(par, i, px, py):
                        continue
                    res = _sigma(par, i, px, py)
                    sigma = res[0]
                    if not (sigma >= 0.0) or sigma > par[i, 13]:
                        continue
                    vis = np.exp(-sigma)
                    raw = par[i, 11] * vis
                    alpha = min(ALPHA_MAX, raw)
                    if not (alpha >= ALPHA_MIN):
                        continue
                    j = j0 + i
                    inv = 1.0 / (1.0 - alpha)
                    T = T * inv  # T before this entry
                    w = alpha * T
                    v_a = va_fin * inv
                    for k in range(F):
                        g_feat[j, k] += w * vf[k]
                        v_a += vf[k] * (fe[i, k] * T - behind[k] * inv)
                        behind[k] += w * fe[i, k]
                    if distloss:
                        d = par[i, 12]
                        s_before = 1.0 - T
                        wd_before = wd_total - wd_after - w * d
                        gw = 2.0 * (d * s_before - wd_before) + 2.0 * (wd_after - d * w_after)
                        g_depth[j] += vd * 2.0 * w * (s_before - w_after)
                        v_a += vd * (gw * T - behind_d * inv)
                        behind_d += gw * w
                        w_after += w
                        wd_after += w * d
                    if raw <= ALPHA_MAX:  # the clamp passes no gradient
                        g_opac[j] += v_a * vis
                        v_sigma = -v_a * raw
                        if res[1]:
                            u = res[2]
                            v = res[3]
                            z2 = res[4]
                            hu0, hu1, hu2 = res[5], res[6], res[7]
                            hv0, hv1, hv2 = res[8], res[9], res[10]
                            # d sigma / d zeta for sigma = 0.5 (u^2 + v^2), u = z0 / z2 ...
                            gz0 = v_sigma * u / z2
                            gz1 = v_sigma * v / z2
                            gz2 = -v_sigma * (u * u + v * v) / z2
                            # zeta = h_u x h_v: d/dh_u = h_v x g, d/dh_v = g x h_u
                            du0 = hv1 * gz2 - hv2 * gz1
                            du1 = hv2 * gz0 - hv0 * gz2
                            du2 = hv0 * gz1 - hv1 * gz0
                            dv0 = gz1 * hu2 - gz2 * hu1
                            dv1 = gz2 * hu0 - gz0 * hu2
                            dv2 = gz0 * hu1 - gz1 * hu0
                            g_rt[j, 0] -= du0
                            g_rt[j, 1] -= du1
                            g_rt[j, 2] -= du2
                            g_rt[j, 3] -= dv0
                            g_rt[j, 4] -= dv1
                            g_rt[j, 5] -= dv2
                            g_rt[j, 6] += px * du0 + py * dv0
                            g_rt[j, 7] += px * du1 + py * dv1
                            g_rt[j, 8] += px * du2 + py * dv2
                        else:
                            # sigma = 0.5 FILTER_INV_SQUARE |pixel - mean|^2
                            g_mean[j, 0] -= v_sigma * FILTER_INV_SQUARE * res[11]
                            g_mean[j, 1] -= v_sigma * FILTER_INV_SQUARE * res[12]


def _tile_start(isect_offsets: torch.Tensor, n_isects: int) -> np.ndarray:
    starts = isect_offsets.detach().reshape(-1).to(torch.int64).numpy()
    return np.append(starts, np.int64(n_isects))


def _np(t: torch.Tensor, *shape: int) -> np.ndarray:
    return t.detach().reshape(*shape).contiguous().numpy()


def forward(
    means2d: torch.Tensor,
    ray_transforms: torch.Tensor,
    feats: torch.Tensor,
    opacities: torch.Tensor,
    depths: torch.Tensor,
    image_width: int,
    image_height: int,
    tile_size: int,
    isect_offsets: torch.Tensor,
    flatten_ids: torch.Tensor,
    distloss: bool,
) -> tuple[torch.Tensor, ...]:
    """Run :func:`forward_kernel` on CPU tensors (not differentiable; see
    :class:`.twodgs._KernelComposite2DGS`).

    Args: means2d (C, N, 2), ray_transforms (C, N, 3, 3), feats (C, N, F) (colours then
        normals), opacities (C, N), depths (C, N); the image size, tile size and lists.

    Returns:
        feats (C, H, W, F) in the inputs' dtype; t_final, median, distort, acc_wd (C, H, W)
        float64; last, median_ids (C, H, W) int64.
    """
    C, N = means2d.shape[:2]
    F = feats.shape[-1]
    TH, TW = isect_offsets.shape[1:]
    G = C * N
    shape = (C, image_height, image_width)
    out_feat = np.empty(shape + (F,), np.float64)
    out_t = np.empty(shape, np.float64)
    out_last = np.empty(shape, np.int64)
    out_median = np.empty(shape, np.float64)
    out_median_id = np.empty(shape, np.int64)
    out_distort = np.empty(shape, np.float64)
    out_acc_wd = np.empty(shape, np.float64)
    with kernel_lock():  # (see diffrend.threads)
        forward_kernel(
            _np(means2d, G, 2), _np(ray_transforms, G, 9), _np(feats, G, F),
            _np(opacities, G), _np(depths, G), _tile_start(isect_offsets, flatten_ids.shape[0]),
            flatten_ids.detach().to(torch.int64).contiguous().numpy(), TH, TW, tile_size,
            distloss, out_feat, out_t, out_last, out_median, out_median_id, out_distort,
            out_acc_wd,
        )
    dtype = means2d.dtype
    return (torch.from_numpy(out_feat).to(dtype), torch.from_numpy(out_t),
            torch.from_numpy(out_last), torch.from_numpy(out_median),
            torch.from_numpy(out_median_id), torch.from_numpy(out_distort),
            torch.from_numpy(out_acc_wd))


def backward(
    means2d: torch.Tensor,
    ray_transforms: torch.Tensor,
    feats: torch.Tensor,
    opacities: torch.Tensor,
    depths: torch.Tensor,
    tile_size: int,
    isect_offsets: torch.Tensor,
    flatten_ids: torch.Tensor,
    backgrounds: torch.Tensor | None,
    t_final: torch.Tensor,
    last: torch.Tensor,
    median_ids: torch.Tensor,
    acc_wd: torch.Tensor,
    v_feats: torch.Tensor,
    v_alphas: torch.Tensor,
    v_distort: torch.Tensor | None,
    v_median: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """Run :func:`backward_kernel` and sum each intersection's rows into its surfel.

    Args: the forward's inputs and outputs; backgrounds (C, D) or None; v_feats
        (C, H, W, F), v_alphas, v_distort (or None), v_median (C, H, W, 1).

    Returns:
        Gradients of means2d (C, N, 2), ray_transforms (C, N, 3, 3), feats (C, N, F),
        opacities (C, N) and depths (C, N), in the inputs' dtype.
    """
    C, N = means2d.shape[:2]
    F = feats.shape[-1]
    TH, TW = isect_offsets.shape[1:]
    G = C * N
    M = flatten_ids.shape[0]
    H, W = t_final.shape[1:]
    ids = flatten_ids.detach().to(torch.int64).contiguous()
    bg = np.zeros((C, F), np.float64)
    if backgrounds is not None:
        bg[:, : backgrounds.shape[1]] = backgrounds.detach().numpy()
    zeros = np.zeros((C, H, W), np.float64)
    g_mean = np.zeros((M, 2), np.float64)
    g_rt = np.zeros((M, 9), np.float64)
    g_feat = np.zeros((M, F), np.float64)
    g_opac = np.zeros(M, np.float64)
    g_depth = np.zeros(M, np.float64)
    with kernel_lock():
        backward_kernel(
            _np(means2d, G, 2), _np(ray_transforms, G, 9), _np(feats, G, F),
            _np(opacities, G), _np(depths, G), _tile_start(isect_offsets, M), ids.numpy(),
            TH, TW, tile_size, bg, t_final.numpy(), last.numpy(), median_ids.numpy(),
            acc_wd.numpy(), _np(v_feats.to(torch.float64), C, H, W, F),
            _np(v_alphas.to(torch.float64), C, H, W),
            zeros if v_distort is None else _np(v_distort.to(torch.float64), C, H, W),
            _np(v_median.to(torch.float64), C, H, W), v_distort is not None,
            g_mean, g_rt, g_feat, g_opac, g_depth,
        )
    dtype = means2d.dtype

    def per_surfel(rows: np.ndarray, *shape: int) -> torch.Tensor:
        out = torch.zeros((G,) + rows.shape[1:], dtype=torch.float64)
        out.index_add_(0, ids, torch.from_numpy(rows))
        return out.to(dtype).reshape(C, N, *shape)

    return (per_surfel(g_mean, 2), per_surfel(g_rt, 3, 3), per_surfel(g_feat, F),
            per_surfel(g_opac), per_surfel(g_depth))
