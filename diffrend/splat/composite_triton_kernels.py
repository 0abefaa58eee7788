"""Triton kernels of the splat compositor: forward and backward, one program per tile.

A program holds its tile's pixels as a one-dimensional block (one value per pixel; colours
as a (pixels, channels) block) and walks the tile's depth-sorted list in chunks of CHUNK
entries, each entry's parameters loaded once as scalars and broadcast over the pixels. The
rule is gsplat's, as in :mod:`.composite_reference` (the same expressions in the same order,
launched without fused multiply-adds, so the skip and stop decisions round like the twin's).
Arithmetic is in the inputs' dtype (float32 or float64). Thresholds are compared as
tensors of that dtype (``tl.zeros_like(x) + ALPHA_MIN``) and the in-list test of an entry
is kept out of per-pixel masks (an entry past the list loads opacity 0, so it never
passes): Triton 3.9's interpreter otherwise gives float32 masks non-boolean data.

Forward: per pixel, the colour, the final transmittance and the index of the last
contributing intersection (its tile's start - 1 when none). The walk over the list stops
early, after a chunk, once every pixel of the tile has stopped.

Backward: the walk goes from the tile's latest last-contributing entry back to its start,
recovering T before each entry by dividing by 1 - alpha (alpha <= 0.999, so it divides).
Each entry's gradient, summed over the tile's pixels, is written to that intersection's row:
an intersection belongs to one tile and a tile to one program, so no row is written twice
and no atomics are needed; the host sums rows per Gaussian by ``flatten_ids``.
Host code and launches: :mod:`.composite_triton`.
"""

from __future__ import annotations

import triton
import triton.language as tl

ALPHA_MAX: tl.constexpr = tl.constexpr(0.999)  # (the values of .composite_reference)
ALPHA_MIN: tl.constexpr = tl.constexpr(1.0 / 255.0)
T_MIN: tl.constexpr = tl.constexpr(1e-4)


@triton.jit
def _tile_pixels(pid, n_ty, n_tx, H, W, TS: tl.constexpr, BLOCK: tl.constexpr):
    """Camera (int64), flat (C, H, W) pixel index (int64), in-image mask and pixel-centre
    offsets (row, column as int32) of the pixels of tile ``pid`` (the block's tail, past
    TS * TS, is masked)."""
    per_cam = n_ty * n_tx
    cam = pid // per_cam
    rem = pid - cam * per_cam
    ty = rem // n_tx
    tx = rem - ty * n_tx
    offs = tl.arange(0, BLOCK)
    r = ty * TS + offs // TS
    c = tx * TS + offs % TS
    valid = (offs < TS * TS) & (r < H) & (c < W)
    cam = cam.to(tl.int64)
    pix = (cam * H + r) * W + c
    return cam, pix, valid, r, c


@triton.jit
def _entry(means_ptr, conics_ptr, opac_ptr, ids_ptr, j, inb):
    """Gaussian index (int64) and parameters of intersection ``j`` (zeros when not ``inb``)."""
    g = tl.load(ids_ptr + j, mask=inb, other=0).to(tl.int64)
    mx = tl.load(means_ptr + 2 * g, mask=inb, other=0.0)
    my = tl.load(means_ptr + 2 * g + 1, mask=inb, other=0.0)
    ca = tl.load(conics_ptr + 3 * g, mask=inb, other=0.0)
    cb = tl.load(conics_ptr + 3 * g + 1, mask=inb, other=0.0)
    cc = tl.load(conics_ptr + 3 * g + 2, mask=inb, other=0.0)
    op = tl.load(opac_ptr + g, mask=inb, other=0.0)
    return g, mx, my, ca, cb, cc, op


@triton.jit
def composite_forward_kernel(
    means_ptr,  # (G, 2) G = C * N, compute dtype
    conics_ptr,  # (G, 3)
    colors_ptr,  # (G, D)
    opac_ptr,  # (G,)
    tile_start_ptr,  # (C * TH * TW + 1,) int64 list bounds of each tile
    ids_ptr,  # (M,) int64 Gaussian of each intersection
    out_color_ptr,  # (C, H, W, D) written, without background
    out_t_ptr,  # (C, H, W) final transmittance, written
    out_last_ptr,  # (C, H, W) int64 last contributing intersection, written
    H, W, n_ty, n_tx, D,
    TS: tl.constexpr, BLOCK: tl.constexpr, D_PAD: tl.constexpr, CHUNK: tl.constexpr,
):
    pid = tl.program_id(0)
    cam, pix, valid, r, c = _tile_pixels(pid, n_ty, n_tx, H, W, TS, BLOCK)
    fdt = means_ptr.dtype.element_ty
    px = c.to(fdt) + 0.5
    py = r.to(fdt) + 0.5
    start = tl.load(tile_start_ptr + pid)
    end = tl.load(tile_start_ptr + pid + 1)
    dk = tl.arange(0, D_PAD)
    dmask = dk < D
    acc = tl.zeros((BLOCK, D_PAD), dtype=fdt)
    T = tl.zeros((BLOCK,), dtype=fdt) + 1.0
    last = tl.zeros((BLOCK,), dtype=tl.int64) + (start - 1)
    active = valid
    n_active = tl.sum(active.to(tl.int32), axis=0)
    j0 = start
    while (j0 < end) & (n_active > 0):
        for k in tl.static_range(CHUNK):
            j = j0 + k
            inb = j < end
            g, mx, my, ca, cb, cc, op = _entry(means_ptr, conics_ptr, opac_ptr, ids_ptr, j,
                                               inb)
            dx = px - mx
            dy = py - my
            sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
            # (False for NaN; an entry past the list has opacity 0, so it never passes)
            covers = (sigma >= tl.zeros_like(sigma)) & active
            # exp of a negative sigma may overflow: it is masked, so give it a harmless value
            raw = op * tl.exp(-tl.where(covers, sigma, 0.0))
            amax = tl.zeros_like(raw) + ALPHA_MAX
            alpha = tl.where(raw > amax, amax, raw)
            ok = covers & (alpha >= tl.zeros_like(alpha) + ALPHA_MIN)
            t_next = T * (1.0 - alpha)
            stop = ok & (t_next <= tl.zeros_like(t_next) + T_MIN)
            contrib = ok & (t_next > tl.zeros_like(t_next) + T_MIN)
            w = tl.where(contrib, alpha * T, 0.0)
            col = tl.load(colors_ptr + g * D + dk, mask=dk < tl.where(inb, D, 0), other=0.0)
            acc += w[:, None] * col[None, :]
            T = tl.where(contrib, t_next, T)
            last = tl.where(contrib, j, last)
            active = active & ~stop
        j0 += CHUNK
        n_active = tl.sum(active.to(tl.int32), axis=0)
    out2 = pix[:, None] * D + dk[None, :]
    tl.store(out_color_ptr + out2, acc, mask=valid[:, None] & dmask[None, :])
    tl.store(out_t_ptr + pix, T, mask=valid)
    tl.store(out_last_ptr + pix, last, mask=valid)


@triton.jit
def composite_backward_kernel(
    means_ptr, conics_ptr, colors_ptr, opac_ptr, tile_start_ptr, ids_ptr,  # as the forward
    bg_ptr,  # (C, D) backgrounds (zeros when there are none)
    t_ptr,  # (C, H, W) the forward's final transmittance
    last_ptr,  # (C, H, W) int64 the forward's last contributing intersection
    v_color_ptr,  # (C, H, W, D) gradient of the colours
    v_alpha_ptr,  # (C, H, W) gradient of the alphas
    g_mean_ptr,  # (M, 2) per-intersection gradient rows, zeros, written
    g_conic_ptr,  # (M, 3)
    g_color_ptr,  # (M, D)
    g_opac_ptr,  # (M,)
    H, W, n_ty, n_tx, D,
    TS: tl.constexpr, BLOCK: tl.constexpr, D_PAD: tl.constexpr, CHUNK: tl.constexpr,
):
    pid = tl.program_id(0)
    cam, pix, valid, r, c = _tile_pixels(pid, n_ty, n_tx, H, W, TS, BLOCK)
    fdt = means_ptr.dtype.element_ty
    px = c.to(fdt) + 0.5
    py = r.to(fdt) + 0.5
    start = tl.load(tile_start_ptr + pid)
    dk = tl.arange(0, D_PAD)
    dmask = dk < D
    m2 = valid[:, None] & dmask[None, :]
    T = tl.load(t_ptr + pix, mask=valid, other=1.0)
    last = tl.load(last_ptr + pix, mask=valid, other=0)
    last = tl.where(valid, last, start - 1)
    va_fin = tl.load(v_alpha_ptr + pix, mask=valid, other=0.0) * T
    vc = tl.load(v_color_ptr + pix[:, None] * D + dk[None, :], mask=m2, other=0.0)
    bg = tl.load(bg_ptr + cam * D + dk, mask=dmask, other=0.0)
    behind = T[:, None] * bg[None, :]  # colour of everything behind the current entry
    j0 = tl.max(last, axis=0)
    while j0 >= start:
        for k in tl.static_range(CHUNK):
            j = j0 - k
            inb = j >= start
            g, mx, my, ca, cb, cc, op = _entry(means_ptr, conics_ptr, opac_ptr, ids_ptr, j,
                                               inb)
            dx = px - mx
            dy = py - my
            sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
            covers = (sigma >= tl.zeros_like(sigma)) & (j <= last)  # (past the list: opacity 0)
            vis = tl.exp(-tl.where(covers, sigma, 0.0))
            raw = op * vis
            amax = tl.zeros_like(raw) + ALPHA_MAX
            alpha = tl.where(raw > amax, amax, raw)
            # every entry that passes the tests before a pixel's last one contributed
            use = covers & (alpha >= tl.zeros_like(alpha) + ALPHA_MIN)
            inv = 1.0 / (1.0 - tl.where(use, alpha, 0.0))
            T = tl.where(use, T * inv, T)  # T before this entry
            w = tl.where(use, alpha * T, 0.0)
            col = tl.load(colors_ptr + g * D + dk, mask=dk < tl.where(inb, D, 0), other=0.0)
            g_col = tl.sum(w[:, None] * vc, axis=0)
            # d colour / d alpha = colour T - (what is behind) / (1 - alpha);
            # d (1 - T_fin) / d alpha = T_fin / (1 - alpha).
            v_a = va_fin * inv + tl.sum(
                vc * (col[None, :] * T[:, None] - behind * inv[:, None]), axis=1)
            behind += w[:, None] * col[None, :]
            grad = use & (raw <= amax)  # the clamp passes no gradient
            v_a = tl.where(grad, v_a, 0.0)
            v_sigma = -v_a * raw
            g_op = tl.sum(tl.where(grad, v_a * vis, 0.0), axis=0)
            g_c0 = tl.sum(tl.where(grad, 0.5 * v_sigma * dx * dx, 0.0), axis=0)
            g_c1 = tl.sum(tl.where(grad, v_sigma * dx * dy, 0.0), axis=0)
            g_c2 = tl.sum(tl.where(grad, 0.5 * v_sigma * dy * dy, 0.0), axis=0)
            g_m0 = tl.sum(tl.where(grad, -v_sigma * (ca * dx + cb * dy), 0.0), axis=0)
            g_m1 = tl.sum(tl.where(grad, -v_sigma * (cb * dx + cc * dy), 0.0), axis=0)
            jr = tl.where(inb, j, 0).to(tl.int64)
            tl.store(g_color_ptr + jr * D + dk, g_col, mask=dk < tl.where(inb, D, 0))
            tl.store(g_opac_ptr + jr, g_op, mask=inb)
            tl.store(g_conic_ptr + 3 * jr, g_c0, mask=inb)
            tl.store(g_conic_ptr + 3 * jr + 1, g_c1, mask=inb)
            tl.store(g_conic_ptr + 3 * jr + 2, g_c2, mask=inb)
            tl.store(g_mean_ptr + 2 * jr, g_m0, mask=inb)
            tl.store(g_mean_ptr + 2 * jr + 1, g_m1, mask=inb)
        j0 -= CHUNK
