"""Numba CPU kernel of :func:`diffrend.gradients.antialias`'s discrete step: which
neighbouring pixel pairs straddle an outline, and which triangle edge that outline is.

The pure-torch twin is :func:`diffrend.gradients.antialias.outline_pairs_torch` (also the
path on every other device): it runs the walk as some twenty tensor operations per hop over
every pair whose faces differ, most of them pairs inside one surface; this kernel walks each
pair in registers, one parallel pass per image row, and returns the same pairs in the same
order with the same exit edges (the same float64 arithmetic, operation for operation), so the
blend that follows is bit for bit the twin's.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

from ..threads import kernel_lock


@nb.njit(cache=True, inline="always")
def _edge(ax, ay, bx, by, px, py):
    """Edge function of point p against the edge a -> b (the twin's ``_edge``)."""
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


@nb.njit(cache=True)
def _walk(fv, face_sil, face_across, face, pfx, pfy, pox, poy, max_hops):
    """Walk from the front centre towards the other one, across interior edges, until a
    silhouette edge: returns (exit face, its edge index) or (-1, -1) when the segment ends
    first (or the walk leaves the mesh, or takes more than ``max_hops`` triangles)."""
    t_prev = -1.0
    for _ in range(max_hops):
        t_min = 2.0
        k_min = 0
        for k in range(3):
            i, j = (k + 1) % 3, (k + 2) % 3
            ax, ay = fv[face, i, 0], fv[face, i, 1]
            bx, by = fv[face, j, 0], fv[face, j, 1]
            ef = _edge(ax, ay, bx, by, pfx, pfy)
            eo = _edge(ax, ay, bx, by, pox, poy)
            t = 2.0
            if ef * eo < 0.0:
                t = ef / (ef - eo)
                if not (t > t_prev + 1e-9):
                    t = 2.0
            if t < t_min:  # the first of equal minima, as torch's min
                t_min = t
                k_min = k
        if not (t_min <= 1.0):
            return -1, -1
        if face_sil[face, k_min]:
            return face, k_min
        nxt = face_across[face, k_min]
        if nxt < 0:
            return -1, -1
        face = nxt
        t_prev = t_min
    return -1, -1


@nb.njit(parallel=True, cache=True)
def _outline_pairs(p2f, zbuf, fv, faces, face_sil, face_across, xs, ys, along_x, max_hops,
                   front, other, exit_face, which):
    """For every pair (n, row, col) of neighbouring pixels along x (``along_x``) or y, flat
    index ``(n * rows + row) * cols + col`` in the (n, H, W - 1) or (n, H - 1, W) grid:
    ``exit_face`` the outline's face (-1: no outline between the two), ``which`` its edge,
    ``front``/``other`` the flat (n, H, W) pixel indices of the nearer pixel and the other."""
    N, H, W = p2f.shape
    rows = H if along_x else H - 1
    cols = W - 1 if along_x else W
    for nr in nb.prange(N * rows):
        n = nr // rows
        r = nr - n * rows
        for c in range(cols):
            q = nr * cols + c
            exit_face[q] = -1
            rb = r if along_x else r + 1
            cb = c + 1 if along_x else c
            fa = p2f[n, r, c]
            fb = p2f[n, rb, cb]
            if fa == fb or (fa < 0 and fb < 0):
                continue
            za = zbuf[n, r, c] if fa >= 0 else np.inf
            zb = zbuf[n, rb, cb] if fb >= 0 else np.inf
            a = (n * H + r) * W + c
            b = (n * H + rb) * W + cb
            if za <= zb:
                fid, fo = fa, fb
                rf, cf, ro, co = r, c, rb, cb
                front[q], other[q] = a, b
            else:
                fid, fo = fb, fa
                rf, cf, ro, co = rb, cb, r, c
                front[q], other[q] = b, a
            face, k = _walk(fv, face_sil, face_across, fid, xs[cf], ys[rf], xs[co], ys[ro],
                            max_hops)
            if face < 0:
                continue
            e0 = faces[face, (k + 1) % 3]
            e1 = faces[face, (k + 2) % 3]
            # the other pixel's own face sharing the edge: a fold seen edge-on, no outline
            if fo >= 0 and fo != face:
                has0 = faces[fo, 0] == e0 or faces[fo, 1] == e0 or faces[fo, 2] == e0
                has1 = faces[fo, 0] == e1 or faces[fo, 1] == e1 or faces[fo, 2] == e1
                if has0 and has1:
                    continue
            # each edge along one axis only: the one it crosses more steeply
            dx = abs(fv[face, (k + 2) % 3, 0] - fv[face, (k + 1) % 3, 0])
            dy = abs(fv[face, (k + 2) % 3, 1] - fv[face, (k + 1) % 3, 1])
            if (dy >= dx) if along_x else (dx > dy):
                exit_face[q] = face
                which[q] = k


def outline_pairs_cpu(
    pix_to_face: torch.Tensor,
    zbuf: torch.Tensor,
    face_verts_ndc: torch.Tensor,
    faces: torch.Tensor,
    face_sil: torch.Tensor,
    face_across: torch.Tensor,
    xs: torch.Tensor,
    ys: torch.Tensor,
    axis: int,
    max_hops: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The kernel's :func:`~diffrend.gradients.antialias.outline_pairs_torch` (same
    arguments, same result); CPU tensors only. No gradients."""
    n, h, w = pix_to_face.shape
    rows, cols = (h, w - 1) if axis == 2 else (h - 1, w)
    size = max(n * rows * cols, 0)
    front = np.empty(size, np.int64)
    other = np.empty(size, np.int64)
    exit_face = np.empty(size, np.int64)
    which = np.empty(size, np.int64)
    if size:
        fv = face_verts_ndc.detach()[..., :2].double().contiguous().numpy()
        with kernel_lock():  # (see diffrend.threads)
            _outline_pairs(pix_to_face.contiguous().numpy(), zbuf.detach().contiguous().numpy(),
                           fv, faces.contiguous().numpy(), face_sil.contiguous().numpy(),
                           face_across.contiguous().numpy(),
                           xs.detach().double().contiguous().numpy(),
                           ys.detach().double().contiguous().numpy(), axis == 2, max_hops,
                           front, other, exit_face, which)
    sel = np.flatnonzero(exit_face >= 0)
    return (torch.from_numpy(front[sel]), torch.from_numpy(other[sel]),
            torch.from_numpy(exit_face[sel]), torch.from_numpy(which[sel]))
