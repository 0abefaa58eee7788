"""Numba CPU kernels of the Pulsar-style sphere renderer: pair listing, blending forward and
blending backward.

The renderer works on flat lists of (pixel, sphere) pairs grouped by pixel (CSR offsets):

* :func:`list_pairs` expands each sphere's conservative pixel box into pairs (one parallel
  task per sphere writing its own slice: exact counts first, so nothing is ever dropped and
  there is no per-tile capacity), then groups them by pixel with a stable sort, so each
  pixel lists its spheres in drawing order.
* :func:`composite_forward` (one task per pixel) blends the listed hits with a running-max
  (stable) softmax, and tracks the ``n_track`` nearest hits for the forward info.
* :func:`composite_backward` (one task per pixel) writes the gradient of each pair's weight
  factor, exponent and colour into that pair's own slot; the caller sums them into spheres
  with a torch scatter-add (index_add), so accumulation is race-free and deterministic.

The per-pair geometry (closeness, intersection depth) is torch code shared with the twin
(:func:`..pulsar_reference.pair_terms`), differentiated by autograd.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

from ..threads import kernel_lock

FEPS = 1e-6


@nb.njit(parallel=True, cache=True, fastmath=False)
def _expand_boxes(x0, x1, y0, y1, start, width, pix, sph):
    for s in nb.prange(x0.shape[0]):
        k = start[s]
        for y in range(y0[s], y1[s] + 1):
            for x in range(x0[s], x1[s] + 1):
                pix[k] = y * width + x
                sph[k] = s
                k += 1


def list_pairs(
    boxes: torch.Tensor, order: torch.Tensor, width: int, height: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (pixel, sphere) pairs inside the spheres' pixel boxes, grouped by pixel.

    Args:
        boxes: (N, 4) int64 inclusive pixel box (x0, x1, y0, y1) per sphere, already clipped
            to the image; an empty box has x1 < x0 or y1 < y0.
        order: (N,) int64 drawing order (sphere indices, nearest first).
        width, height: image size.

    Returns:
        pix: (M,) int64 pixel index, ascending; sph: (M,) int64 sphere index, in drawing
        order within each pixel; offsets: (H * W + 1,) int64 start of each pixel's pairs.
        Not differentiable.
    """
    b = boxes[order]
    nx = (b[:, 1] - b[:, 0] + 1).clamp_min(0)
    ny = (b[:, 3] - b[:, 2] + 1).clamp_min(0)
    count = nx * ny
    start = torch.cumsum(count, 0) - count
    total = int(count.sum())
    pix = np.empty(total, np.int64)
    rank = np.empty(total, np.int64)
    bn = b.numpy()
    with kernel_lock():  # (see diffrend.threads)
        _expand_boxes(
            np.ascontiguousarray(bn[:, 0]),
            np.ascontiguousarray(bn[:, 1]),
            np.ascontiguousarray(bn[:, 2]),
            np.ascontiguousarray(bn[:, 3]),
            start.numpy(),
            width,
            pix,
            rank,
        )
    pix_t = torch.from_numpy(pix)
    # Stable: within a pixel, pairs stay in drawing order.
    by_pix = torch.sort(pix_t, stable=True).indices
    pix_t = pix_t[by_pix]
    sph_t = order[torch.from_numpy(rank)[by_pix]]
    offsets = torch.zeros(width * height + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.bincount(pix_t, minlength=width * height), 0)
    return pix_t, sph_t, offsets


@nb.njit(parallel=True, cache=True, fastmath=False)
def _composite_fwd(offsets, hit, a, e, col, bg_col, bg_e, depth, sph, cpi, n_track,
                   image, m_out, d_out, n_hits, track_id, track_depth, max_cpi):
    n_pix = offsets.shape[0] - 1
    n_ch = bg_col.shape[0]
    for p in nb.prange(n_pix):
        m = bg_e
        for k in range(offsets[p], offsets[p + 1]):
            if hit[k] and e[k] > m:
                m = e[k]
        w_bg = np.exp(bg_e - m)
        den = w_bg
        for c in range(n_ch):
            image[p, c] = w_bg * bg_col[c]
        count = 0
        mc = -1.0
        for k in range(offsets[p], offsets[p + 1]):
            if not hit[k]:
                continue
            w = a[k] * np.exp(e[k] - m)
            den += w
            for c in range(n_ch):
                image[p, c] += w * col[k, c]
            count += 1
            if cpi[k] > mc:
                mc = cpi[k]
            # Insertion into the sorted list of the nearest hits (later ties go after).
            pos = min(count - 1, n_track)
            while pos > 0 and track_depth[p, pos - 1] > depth[k]:
                pos -= 1
            if pos < n_track:
                for j in range(n_track - 1, pos, -1):
                    track_depth[p, j] = track_depth[p, j - 1]
                    track_id[p, j] = track_id[p, j - 1]
                track_depth[p, pos] = depth[k]
                track_id[p, pos] = sph[k]
        inv = 1.0 / max(den, FEPS)
        for c in range(n_ch):
            image[p, c] *= inv
        m_out[p] = m
        d_out[p] = den
        n_hits[p] = count
        max_cpi[p] = mc


def composite_forward(
    offsets: torch.Tensor,
    hit: torch.Tensor,
    a: torch.Tensor,
    e: torch.Tensor,
    col: torch.Tensor,
    bg_col: torch.Tensor,
    bg_exponent: float,
    depth: torch.Tensor,
    sph: torch.Tensor,
    cpi: torch.Tensor,
    n_track: int,
) -> tuple[torch.Tensor, ...]:
    """Blend each pixel's listed hits (values only; see :class:`..pulsar.Composite` for the
    autograd glue).

    Args:
        offsets: (P + 1,) int64 pixel groups; hit: (M,) bool; a, e: (M,) weight factor and
            exponent; col: (M, K) features; bg_col: (K,); bg_exponent: float;
        depth: (M,) intersection depth; sph: (M,) int64 sphere index; cpi: (M,) closest
            possible depth of the pair's sphere; n_track: nearest hits to report.

    Returns:
        image (P, K), m (P,), den (P,), n_hits (P,) int64, track_id (P, n_track) int64 (-1:
        none), track_depth (P, n_track) (-1: none), max_cpi (P,) (-1: no hit); all in the
        dtype of ``a``. Not differentiable here.
    """
    n_pix = offsets.shape[0] - 1
    dt = a.dtype
    k_ch = bg_col.shape[0]
    image = torch.empty((n_pix, k_ch), dtype=dt)
    m = torch.empty(n_pix, dtype=dt)
    den = torch.empty(n_pix, dtype=dt)
    n_hits = torch.empty(n_pix, dtype=torch.int64)
    track_id = torch.full((n_pix, n_track), -1, dtype=torch.int64)
    track_depth = torch.full((n_pix, n_track), np.inf, dtype=dt)
    max_cpi = torch.empty(n_pix, dtype=dt)
    with kernel_lock():
        _composite_fwd(
            offsets.numpy(), hit.numpy(), a.contiguous().numpy(), e.contiguous().numpy(),
            col.contiguous().numpy(), bg_col.to(dt).contiguous().numpy(), float(bg_exponent),
            depth.to(dt).contiguous().numpy(), sph.numpy(), cpi.to(dt).contiguous().numpy(),
            n_track, image.numpy(), m.numpy(), den.numpy(), n_hits.numpy(), track_id.numpy(),
            track_depth.numpy(), max_cpi.numpy(),
        )
    track_depth = torch.where(track_id < 0, torch.full_like(track_depth, -1.0), track_depth)
    return image, m, den, n_hits, track_id, track_depth, max_cpi


@nb.njit(parallel=True, cache=True, fastmath=False)
def _composite_bwd(offsets, hit, a, e, col, bg_col, bg_e, image, m_in, den_in, grad,
                   grad_a, grad_e, grad_col, grad_bg_w):
    n_pix = offsets.shape[0] - 1
    n_ch = bg_col.shape[0]
    for p in nb.prange(n_pix):
        den = den_in[p]
        m = m_in[p]
        if den < FEPS:
            # The floor of the weight sum is active: the image is num / FEPS.
            inv = 1.0 / FEPS
            g_img = 0.0
        else:
            inv = 1.0 / den
            g_img = 0.0
            for c in range(n_ch):
                g_img += grad[p, c] * image[p, c]
        # d image / d w_k = (col_k - image) / den (or col_k / FEPS under the floor).
        w_bg = np.exp(bg_e - m)
        gbg = 0.0
        for c in range(n_ch):
            gbg += grad[p, c] * bg_col[c]
        grad_bg_w[p] = w_bg * inv  # d image_c / d bg_col_c
        for k in range(offsets[p], offsets[p + 1]):
            if not hit[k]:
                grad_a[k] = 0.0
                grad_e[k] = 0.0
                for c in range(n_ch):
                    grad_col[k, c] = 0.0
                continue
            ex = np.exp(e[k] - m)
            w = a[k] * ex
            g_w = 0.0
            for c in range(n_ch):
                g_w += grad[p, c] * col[k, c]
                grad_col[k, c] = grad[p, c] * w * inv
            g_w = (g_w - g_img) * inv
            grad_a[k] = g_w * ex
            grad_e[k] = g_w * w


def composite_backward(
    offsets: torch.Tensor,
    hit: torch.Tensor,
    a: torch.Tensor,
    e: torch.Tensor,
    col: torch.Tensor,
    bg_col: torch.Tensor,
    bg_exponent: float,
    image: torch.Tensor,
    m: torch.Tensor,
    den: torch.Tensor,
    grad_image: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair gradients of the blend (the inputs and outputs of :func:`composite_forward`).

    Returns:
        grad_a (M,), grad_e (M,), grad_col (M, K): each pair's own gradient (sum them into
        spheres with index_add); grad_bg_weight (P,): d image[p, c] / d bg_col[c].
    """
    dt = a.dtype
    n_pix = offsets.shape[0] - 1
    grad_a = torch.empty_like(a)
    grad_e = torch.empty_like(e)
    grad_col = torch.empty_like(col)
    grad_bg_w = torch.empty(n_pix, dtype=dt)
    with kernel_lock():
        _composite_bwd(
            offsets.numpy(), hit.numpy(), a.contiguous().numpy(), e.contiguous().numpy(),
            col.contiguous().numpy(), bg_col.to(dt).contiguous().numpy(), float(bg_exponent),
            image.contiguous().numpy(), m.contiguous().numpy(), den.contiguous().numpy(),
            grad_image.to(dt).contiguous().numpy(), grad_a.numpy(), grad_e.numpy(),
            grad_col.numpy(), grad_bg_w.numpy(),
        )
    return grad_a, grad_e, grad_col, grad_bg_w
