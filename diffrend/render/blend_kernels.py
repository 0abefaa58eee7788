"""Numba CPU kernels of the SoftRas blending functions, with their autograd glue.

Each blend is one ``torch.autograd.Function`` whose forward and backward are a single
parallel pass over pixels. Only the inputs are saved for backward; every per-face
intermediate (probabilities, depth weights, normaliser) is recomputed per pixel in
registers, so no ``(N, H, W, K)`` temporary outlives the forward call. Arithmetic is
done in float64 whatever the input dtype; results are written in the input dtype.

The pure-torch versions in :mod:`diffrend.render.blend` (``*_reference``) are the oracle: these
kernels reproduce their values and their autograd gradients, including PyTorch3D's
``max``/``clamp`` subgradients (the gradient of ``z_inv_max`` goes to the first maximal
entry, and passes a clamp only where its input is >= the floor).

Both kernels compile once per dtype and are cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch
from torch.autograd.function import once_differentiable

from ..threads import kernel_lock

EPS = 1e-10  # PyTorch3D's floor for z_inv_max and for the background weight delta
_CHUNK = 2  # image rows per scheduling chunk: balances empty and covered regions


@nb.njit(cache=True, inline="always")
def _sigmoid_aux(x):
    """exp(-|x|): the one transcendental that :func:`_sigmoid_from_aux` needs."""
    return math.exp(-abs(x))


@nb.njit(cache=True, inline="always")
def _sigmoid_from_aux(x, t):
    """(sigmoid(x), sigmoid(-x)) from t = exp(-|x|); accurate and overflow-free for any x."""
    r = 1.0 / (1.0 + t)
    tr = t * r
    return (r, tr) if x >= 0.0 else (tr, r)


@nb.njit(cache=True, inline="always")
def _scan(zbuf, p2f, p, K, zf, inv_zrange, idx):
    """One pass over pixel p's K slots. Partitions the slot indices into idx, branch-free (so
    random masks cost no mispredictions): the ``count`` valid slots in ascending order at the
    front, the empty ones at the back. Also finds PyTorch3D's z_inv_max before clamping
    (empty slots count as 0) and its first argmax. Returns (count, z_inv_max, argmax)."""
    m = -np.inf
    kstar = 0
    cnt = 0
    for k in range(K):
        valid = p2f[p, k] >= 0
        idx[cnt] = k
        idx[K - 1 - k + cnt] = k  # empty slots fill idx from the back
        cnt += valid
        zi = (zf - zbuf[p, k]) * inv_zrange if valid else 0.0
        if zi > m:
            m = zi
            kstar = k
    return cnt, m, kstar


@nb.njit(cache=True, inline="always")
def _color_index(packed, keep, p, k, c):
    """(row of the colours array that slot k of pixel p reads, or -1 for colour zero; the next
    packed row). Dense colours: row ``c + k``, with c = p * K. Packed colours: the kept slots
    of pixel p in ascending k hold rows c, c + 1, ...; a valid slot that is not kept has
    colour zero (see diffrend.render.compact)."""
    if not packed:
        return c + k, c
    if keep[p, k]:
        return c, c + 1
    return -1, c


@nb.njit(parallel=True, cache=True)
def _softmax_forward(colors, dists, zbuf, p2f, bg, znear, zfar, width, hw, sigma, gamma,
                     packed, keep, first, out):
    # colors: (rows, 3); first[p]: the row of pixel p's first colour (see _color_index).
    P, K = dists.shape
    inv_sigma = 1.0 / sigma
    inv_gamma = 1.0 / gamma
    for row in nb.prange(P // max(width, 1)):
        idx = np.empty(K, np.int64)
        n = row * width // hw
        zf = zfar[n]
        inv_zrange = 1.0 / (zf - znear[n])
        for p in range(row * width, (row + 1) * width):
            cnt, m, _ = _scan(zbuf, p2f, p, K, zf, inv_zrange, idx)
            m = max(m, EPS)
            delta = max(math.exp((EPS - m) * inv_gamma), EPS)
            s = delta
            c0 = delta * bg[0]
            c1 = delta * bg[1]
            c2 = delta * bg[2]
            trans = 1.0  # prod_k (1 - prob_k)
            c = first[p]
            for j in range(cnt):
                k = idx[j]
                x = -dists[p, k] * inv_sigma
                pk, qk = _sigmoid_from_aux(x, _sigmoid_aux(x))
                trans *= qk
                w = pk * math.exp(((zf - zbuf[p, k]) * inv_zrange - m) * inv_gamma)
                s += w
                ci, c = _color_index(packed, keep, p, k, c)
                if ci >= 0:
                    c0 += w * colors[ci, 0]
                    c1 += w * colors[ci, 1]
                    c2 += w * colors[ci, 2]
            inv_s = 1.0 / s
            out[p, 0] = c0 * inv_s
            out[p, 1] = c1 * inv_s
            out[p, 2] = c2 * inv_s
            out[p, 3] = 1.0 - trans


@nb.njit(parallel=True, cache=True)
def _softmax_backward(
    colors, dists, zbuf, p2f, bg, znear, zfar, width, hw, sigma, gamma, packed, keep, first,
    grad_out, want_colors, grad_colors, grad_dists, grad_zbuf, bg_weight,
):
    # grad_dists / grad_zbuf double as scratch for exp(-|x|) / exp((z_inv - z_max) / gamma)
    # between the recomputing pass and the gradient pass (each pixel owns its own slots).
    # Packed colours: grad_colors (rows, 3) comes zeroed and only kept slots' rows are set.
    P, K = dists.shape
    inv_sigma = 1.0 / sigma
    inv_gamma = 1.0 / gamma
    for row in nb.prange(P // max(width, 1)):
        idx = np.empty(K, np.int64)
        n = row * width // hw
        zf = zfar[n]
        inv_zrange = 1.0 / (zf - znear[n])
        for p in range(row * width, (row + 1) * width):
            cnt, mraw, kstar = _scan(zbuf, p2f, p, K, zf, inv_zrange, idx)
            for j in range(cnt, K):  # empty slots (listed after the valid ones in idx)
                k = idx[j]
                grad_dists[p, k] = 0.0
                grad_zbuf[p, k] = 0.0
                if want_colors and not packed:
                    ci = first[p] + k
                    grad_colors[ci, 0] = 0.0
                    grad_colors[ci, 1] = 0.0
                    grad_colors[ci, 2] = 0.0
            m = max(mraw, EPS)
            draw = math.exp((EPS - m) * inv_gamma)
            delta = max(draw, EPS)
            # Recompute the forward sums.
            s = delta
            c0 = delta * bg[0]
            c1 = delta * bg[1]
            c2 = delta * bg[2]
            trans = 1.0
            c = first[p]
            for j in range(cnt):
                k = idx[j]
                x = -dists[p, k] * inv_sigma
                t = _sigmoid_aux(x)
                pk, qk = _sigmoid_from_aux(x, t)
                trans *= qk
                e = math.exp(((zf - zbuf[p, k]) * inv_zrange - m) * inv_gamma)
                grad_dists[p, k] = t
                grad_zbuf[p, k] = e
                w = pk * e
                s += w
                ci, c = _color_index(packed, keep, p, k, c)
                if ci >= 0:
                    c0 += w * colors[ci, 0]
                    c1 += w * colors[ci, 1]
                    c2 += w * colors[ci, 2]
            inv_s = 1.0 / s
            r0 = c0 * inv_s
            r1 = c1 * inv_s
            r2 = c2 * inv_s
            g0 = grad_out[p, 0]
            g1 = grad_out[p, 1]
            g2 = grad_out[p, 2]
            ga_trans = grad_out[p, 3] * trans  # (d loss / d alpha) * prod_j (1 - prob_j)
            bg_weight[p] = delta * inv_s
            gm = 0.0  # gradient w.r.t. the clamped z_inv_max
            c = first[p]
            for j in range(cnt):
                k = idx[j]
                pk, qk = _sigmoid_from_aux(-dists[p, k] * inv_sigma, grad_dists[p, k])
                ws = pk * grad_zbuf[p, k] * inv_s  # normalised weight w_k / s, in [0, 1]
                ci, c = _color_index(packed, keep, p, k, c)
                ck0 = ck1 = ck2 = 0.0
                if ci >= 0:
                    ck0 = colors[ci, 0]
                    ck1 = colors[ci, 1]
                    ck2 = colors[ci, 2]
                    if want_colors:
                        grad_colors[ci, 0] = g0 * ws
                        grad_colors[ci, 1] = g1 * ws
                        grad_colors[ci, 2] = g2 * ws
                # (d loss / d w_k) * w_k, with d loss / d w_k = sum_c g_c (colors_kc - rgb_c) / s
                gww = (g0 * (ck0 - r0) + g1 * (ck1 - r1) + g2 * (ck2 - r2)) * ws
                # d w_k / d dists_k = -w_k (1 - prob_k) / sigma; the alpha channel adds
                # d(1 - prod_j (1 - prob_j)) / d dists_k = -prob_k prod_j (1 - prob_j) / sigma.
                grad_dists[p, k] = -(gww * qk + ga_trans * pk) * inv_sigma
                gzi = gww * inv_gamma  # (d loss / d w_k) * (d w_k / d z_inv_k)
                gm -= gzi
                grad_zbuf[p, k] = -gzi * inv_zrange
            if draw >= EPS:  # delta is unclamped, so it depends on z_inv_max too
                gdelta = g0 * (bg[0] - r0) + g1 * (bg[1] - r1) + g2 * (bg[2] - r2)
                gm -= gdelta * inv_s * draw * inv_gamma
            if mraw >= EPS and p2f[p, kstar] >= 0:  # clamp and max pass the gradient
                grad_zbuf[p, kstar] -= gm * inv_zrange


@nb.njit(cache=True, inline="always")
def _valid_slots(p2f, p, K, idx):
    cnt = 0
    for k in range(K):
        idx[cnt] = k
        cnt += p2f[p, k] >= 0
    return cnt


@nb.njit(parallel=True, cache=True)
def _sigmoid_forward(dists, p2f, width, sigma, out):
    P, K = dists.shape
    inv_sigma = 1.0 / sigma
    for row in nb.prange(P // max(width, 1)):
        idx = np.empty(K, np.int64)
        for p in range(row * width, (row + 1) * width):
            trans = 1.0
            for j in range(_valid_slots(p2f, p, K, idx)):
                x = -dists[p, idx[j]] * inv_sigma
                trans *= _sigmoid_from_aux(x, _sigmoid_aux(x))[1]
            out[p] = 1.0 - trans


@nb.njit(parallel=True, cache=True)
def _sigmoid_backward(dists, p2f, width, sigma, grad_alpha, grad_dists):
    # grad_dists doubles as scratch for exp(-|x|) between the two passes.
    P, K = dists.shape
    inv_sigma = 1.0 / sigma
    for row in nb.prange(P // max(width, 1)):
        idx = np.empty(K, np.int64)
        for p in range(row * width, (row + 1) * width):
            for k in range(K):
                grad_dists[p, k] = 0.0
            cnt = _valid_slots(p2f, p, K, idx)
            trans = 1.0
            for j in range(cnt):
                k = idx[j]
                x = -dists[p, k] * inv_sigma
                t = _sigmoid_aux(x)
                grad_dists[p, k] = t
                trans *= _sigmoid_from_aux(x, t)[1]
            # d(1 - prod_j q_j) / d dists_k = -prob_k * prod_j q_j / sigma (exact, no division)
            scale = -grad_alpha[p] * trans * inv_sigma
            for j in range(cnt):
                k = idx[j]
                x = -dists[p, k] * inv_sigma
                grad_dists[p, k] = scale * _sigmoid_from_aux(x, grad_dists[p, k])[0]


@nb.njit(parallel=True, cache=True)
def _softmax_keep(zbuf, p2f, znear, zfar, width, hw, log_cutoff_gamma, keep):
    # keep[p, k]: slot k is valid and its depth weight exp((z_inv_k - z_inv_max) / gamma) is
    # at least the cutoff, i.e. z_inv_k - z_inv_max >= log(cutoff) * gamma.
    P, K = p2f.shape
    for row in nb.prange(P // max(width, 1)):
        n = row * width // hw
        zf = zfar[n]
        inv_zrange = 1.0 / (zf - znear[n])
        for p in range(row * width, (row + 1) * width):
            m = -np.inf
            for k in range(K):
                if p2f[p, k] >= 0:
                    m = max(m, (zf - zbuf[p, k]) * inv_zrange)
            for k in range(K):
                keep[p, k] = (p2f[p, k] >= 0
                              and (zf - zbuf[p, k]) * inv_zrange - m >= log_cutoff_gamma)


def softmax_keep_cpu(
    zbuf: torch.Tensor, pix_to_face: torch.Tensor, znear: np.ndarray, zfar: np.ndarray,
    gamma: float, cutoff: float,
) -> torch.Tensor:
    """(N, H, W, K) bool: the valid slots whose softmax depth weight relative to the
    pixel's nearest face is at least ``cutoff`` (float64 arithmetic). No argument checks.

    Args:
        zbuf: (N, H, W, K) float32/float64. pix_to_face: (N, H, W, K) int64.
        znear, zfar: (N,) float64 numpy arrays, znear < zfar. gamma, cutoff: > 0.
    """
    N, H, W, K = pix_to_face.shape
    keep = torch.empty((N, H, W, K), dtype=torch.bool)
    with kernel_lock(), nb.parallel_chunksize(_CHUNK):  # (lock: see diffrend.threads)
        _softmax_keep(_np(zbuf).reshape(-1, K), _np(pix_to_face).reshape(-1, K), znear, zfar,
                      W, H * W, math.log(cutoff) * gamma, keep.numpy().reshape(-1, K))
    return keep


def per_image(z: float | torch.Tensor, n: int) -> np.ndarray:
    """A clip depth (a number, or a tensor of 1 or n values) as the (n,) float64 array the
    kernels take per image."""
    t = torch.as_tensor(z, dtype=torch.float64).detach().cpu().reshape(-1)
    return np.ascontiguousarray(t.expand(n).numpy())


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


class _SoftmaxBlend(torch.autograd.Function):
    @staticmethod
    def forward(ctx, colors, dists, zbuf, pix_to_face, background, znear, zfar, sigma, gamma,
                keep, first):
        # colors: (N, H, W, K, 3) dense, or packed rows (..., 3) with keep (N, H, W, K) and
        # first (N * H * W,) int64 (see _color_index); keep and first are None when dense.
        N, H, W, K = pix_to_face.shape
        packed = keep is not None
        out = torch.empty((N, H, W, 4), dtype=colors.dtype)
        with kernel_lock(), nb.parallel_chunksize(_CHUNK):  # (lock: see diffrend.threads)
            _softmax_forward(
                _np(colors).reshape(-1, 3), _np(dists).reshape(-1, K),
                _np(zbuf).reshape(-1, K), _np(pix_to_face).reshape(-1, K),
                _np(background).astype(np.float64), znear, zfar, W, H * W,
                sigma, gamma, packed, _keep_np(keep, K), _first_np(first, N * H * W, K),
                out.numpy().reshape(-1, 4),
            )
        ctx.save_for_backward(colors, dists, zbuf, pix_to_face, background, keep, first)
        ctx.znear, ctx.zfar, ctx.sigma, ctx.gamma = znear, zfar, sigma, gamma
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        colors, dists, zbuf, pix_to_face, background, keep, first = ctx.saved_tensors
        N, H, W, K = pix_to_face.shape
        packed = keep is not None
        want_colors = ctx.needs_input_grad[0]
        if not want_colors:
            grad_colors = torch.empty((1, 3), dtype=colors.dtype)
        elif packed:  # rows of no kept slot (padding) get no gradient
            grad_colors = torch.zeros(colors.shape, dtype=colors.dtype)
        else:
            grad_colors = torch.empty(colors.shape, dtype=colors.dtype)
        grad_dists = torch.empty(dists.shape, dtype=dists.dtype)
        grad_zbuf = torch.empty(zbuf.shape, dtype=zbuf.dtype)
        bg_weight = torch.empty((N, H, W), dtype=torch.float64)
        with kernel_lock(), nb.parallel_chunksize(_CHUNK):  # (lock: see diffrend.threads)
            _softmax_backward(
                _np(colors).reshape(-1, 3), _np(dists).reshape(-1, K),
                _np(zbuf).reshape(-1, K), _np(pix_to_face).reshape(-1, K),
                _np(background).astype(np.float64), ctx.znear, ctx.zfar, W, H * W,
                ctx.sigma, ctx.gamma, packed, _keep_np(keep, K), _first_np(first, N * H * W, K),
                _np(grad_out).reshape(-1, 4), want_colors, grad_colors.numpy().reshape(-1, 3),
                grad_dists.numpy().reshape(-1, K), grad_zbuf.numpy().reshape(-1, K),
                bg_weight.numpy().reshape(-1),
            )
        grad_bg = None
        if ctx.needs_input_grad[4]:
            grad_bg = torch.einsum("nhw,nhwc->c", bg_weight, grad_out[..., :3].double())
            grad_bg = grad_bg.to(background.dtype)
        return (
            grad_colors if want_colors else None,
            grad_dists if ctx.needs_input_grad[1] else None,
            grad_zbuf if ctx.needs_input_grad[2] else None,
            None, grad_bg, None, None, None, None, None, None,
        )


def _keep_np(keep: torch.Tensor | None, K: int) -> np.ndarray:
    """keep as a (P, K) bool array; a (1, 1) placeholder when colours are dense."""
    return np.zeros((1, 1), np.bool_) if keep is None else _np(keep).reshape(-1, K)


def _first_np(first: torch.Tensor | None, P: int, K: int) -> np.ndarray:
    """Each pixel's first colour row: given when packed, p * K when dense (made per call, so
    the dense blend saves nothing but its inputs)."""
    return np.arange(0, P * K, K, dtype=np.int64) if first is None else _np(first)


class _SigmoidAlpha(torch.autograd.Function):
    @staticmethod
    def forward(ctx, dists, pix_to_face, sigma):
        N, H, W, K = pix_to_face.shape
        alpha = torch.empty((N, H, W), dtype=dists.dtype)
        with kernel_lock(), nb.parallel_chunksize(_CHUNK):  # (lock: see diffrend.threads)
            _sigmoid_forward(
                _np(dists).reshape(-1, K), _np(pix_to_face).reshape(-1, K), W, sigma,
                alpha.numpy().reshape(-1),
            )
        ctx.save_for_backward(dists, pix_to_face)
        ctx.sigma = sigma
        return alpha

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_alpha):
        dists, pix_to_face = ctx.saved_tensors
        W, K = pix_to_face.shape[-2:]
        grad_dists = torch.empty(dists.shape, dtype=dists.dtype)
        with kernel_lock(), nb.parallel_chunksize(_CHUNK):  # (lock: see diffrend.threads)
            _sigmoid_backward(
                _np(dists).reshape(-1, K), _np(pix_to_face).reshape(-1, K), W, ctx.sigma,
                _np(grad_alpha).reshape(-1), grad_dists.numpy().reshape(-1, K),
            )
        return grad_dists, None, None


def softmax_blend_cpu(
    colors: torch.Tensor,
    dists: torch.Tensor,
    zbuf: torch.Tensor,
    pix_to_face: torch.Tensor,
    background: torch.Tensor,
    znear: np.ndarray,
    zfar: np.ndarray,
    sigma: float,
    gamma: float,
) -> torch.Tensor:
    """SoftRas colour blend on CPU tensors (Numba forward and backward). No argument checks.

    Args:
        colors: (N, H, W, K, 3) float32/float64.
        dists, zbuf: (N, H, W, K), same dtype as colors.
        pix_to_face: (N, H, W, K) int64; slots < 0 are ignored.
        background: (3,) same dtype as colors.
        znear, zfar: (N,) float64 numpy arrays, znear < zfar (not differentiable).
        sigma, gamma: > 0.

    Returns:
        (N, H, W, 4) RGBA in colors' dtype; differentiable w.r.t. colors, dists, zbuf and
        background (first-order only).
    """
    return _SoftmaxBlend.apply(
        colors, dists, zbuf, pix_to_face, background, znear, zfar, float(sigma), float(gamma),
        None, None,
    )


def softmax_blend_packed_cpu(
    colors: torch.Tensor,
    keep: torch.Tensor,
    first: torch.Tensor,
    dists: torch.Tensor,
    zbuf: torch.Tensor,
    pix_to_face: torch.Tensor,
    background: torch.Tensor,
    znear: np.ndarray,
    zfar: np.ndarray,
    sigma: float,
    gamma: float,
) -> torch.Tensor:
    """:func:`softmax_blend_cpu` with the colours of the kept slots only. No argument checks.

    Args:
        colors: (R, 3) rows (any leading shape that flattens to rows), float32/float64.
        keep: (N, H, W, K) bool, a subset of ``pix_to_face >= 0``: the slots that have a
            colour; the other valid slots count with colour zero.
        first: (N * H * W,) int64 row of each pixel's first kept slot; its kept slots, in
            ascending k, are that row and the next ones.
        dists, zbuf, pix_to_face, background, znear, zfar, sigma, gamma: as there.

    Returns:
        (N, H, W, 4) RGBA, equal to the dense blend of the colours scattered to their slots;
        differentiable w.r.t. colors, dists, zbuf and background (first order only).
    """
    return _SoftmaxBlend.apply(
        colors, dists, zbuf, pix_to_face, background, znear, zfar, float(sigma), float(gamma),
        keep, first,
    )


def sigmoid_alpha_cpu(dists: torch.Tensor, pix_to_face: torch.Tensor, sigma: float) -> torch.Tensor:
    """SoftRas silhouette ``1 - prod_k(1 - sigmoid(-dists/sigma))`` on CPU (Numba). No checks.

    Args:
        dists: (N, H, W, K) float32/float64.
        pix_to_face: (N, H, W, K) int64; slots < 0 are ignored.
        sigma: > 0.

    Returns:
        (N, H, W) alpha in dists' dtype; differentiable w.r.t. dists (first-order only).
    """
    return _SigmoidAlpha.apply(dists, pix_to_face, float(sigma))
