"""Triton backend of the mesh rasterizer: GPU binning in torch, kernel launches.

Same contract as :mod:`.cpu` (and :mod:`.reference`). Faces are binned into T x T pixel
tiles with torch ops, counting before filling, so no per-tile budget exists to overflow; the
only host synchronisation per forward call reads the number of (tile, face) entries (and
the number of NaN faces) to size the list. Results do not depend on the tile size.
The kernels (:mod:`.triton_kernels`) compute in the dtype of the face vertices (float32 or
float64; other float dtypes are computed in float32).

Runs on CUDA tensors, or on CPU tensors in Triton's interpreter (``TRITON_INTERPRET=1`` set
before triton is first imported; slow, for tests).
"""

from __future__ import annotations

import torch
import triton

from . import triton_kernels as tk
from .fragments import RasterParams
from .grid import pixel_centers_torch
from .pixel_math import KEPS

BACKWARD_BLOCK = 256


def tile_size(faces_per_pixel: int) -> int:
    """Pixels per tile side: large tiles for small K; the K-best list of every pixel of a
    tile lives in registers, so T*T*K is kept near 4096 entries."""
    kp = triton_next_pow2(faces_per_pixel)
    if kp <= 4:
        return 16
    if kp <= 64:
        return 8
    if kp <= 256:
        return 4
    if kp <= 1024:
        return 2
    return 1


def triton_next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def _index_range(lo: torch.Tensor, hi: torch.Tensor, first: float, step: float, size: int):
    """binning._index_range over tensors (float64): inclusive (i0, i1), i0 > i1 if empty."""
    a = (first - hi) / step
    b = (first - lo) / step
    empty = ~((a < size + 1.0) & (b > -2.0))  # also catches NaN
    i0 = torch.ceil(a - 1e-3).clamp(0, size).nan_to_num(0).to(torch.int64)
    i1 = torch.floor(b + 1e-3).clamp(-1, size - 1).nan_to_num(-1).to(torch.int64)
    return i0, i1, empty


def bin_faces_torch(
    face_verts: torch.Tensor,
    face_mesh: torch.Tensor,
    n_meshes: int,
    params: RasterParams,
    tile: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """List, for each (image, tile), the faces whose pixel range touches it.

    Args:
        face_verts: (F, 3, 3) screen-space faces. face_mesh: (F,) int64 (-1 = skip).
        n_meshes: N. params: image size, blur radius, culling. tile: tile side in pixels.

    Returns:
        tile_start: (N * TY * TX + 1,) int64 offsets into ``tile_faces``.
        tile_faces: (total,) int32 face indices, ascending within each tile.
        tile_verts: (total, 9) the vertices of each entry's face, so that the kernel reads
            a tile's faces in memory order rather than through the index.
        ok: (F,) bool, whether each face is rasterized at all (area, depth, culling).

    Raises:
        ValueError: if a face has a NaN coordinate.
    """
    H, W = params.image_size
    dev = face_verts.device
    F = face_verts.shape[0]
    n_ty, n_tx = -(-H // tile), -(-W // tile)
    n_tiles = n_meshes * n_ty * n_tx
    fv = face_verts.detach()
    x0, y0, x1, y1, x2, y2 = (fv[:, i, j] for i in range(3) for j in range(2))
    area = (x0 - x1) * (y2 - y1) - (y0 - y1) * (x2 - x1)
    nan = torch.isnan(fv).flatten(1).any(dim=1)
    ok = (
        (face_mesh >= 0) & (face_mesh < n_meshes) & ~nan
        & (fv[:, :, 2].amin(dim=1) >= KEPS) & (area.abs() > KEPS)
    )
    if params.cull_backfaces:
        ok &= area >= 0
    # Pixel ranges in float64 like binning.face_pixel_ranges (conservative by 1e-3 pixel;
    # the kernel repeats the exact bounding-box test per pixel).
    radius = params.blur_radius**0.5
    xy = fv[:, :, :2].double()
    lo = xy.amin(dim=1) - radius
    hi = xy.amax(dim=1) + radius
    ys, xs = pixel_centers_torch(H, W, torch.float64, "cpu")
    ystep = float(ys[0] - ys[H - 1]) / (H - 1) if H > 1 else 1.0
    xstep = float(xs[0] - xs[W - 1]) / (W - 1) if W > 1 else 1.0
    r0, r1, ey = _index_range(lo[:, 1], hi[:, 1], float(ys[0]), ystep, H)
    c0, c1, ex = _index_range(lo[:, 0], hi[:, 0], float(xs[0]), xstep, W)
    ok &= ~ey & ~ex & (r0 <= r1) & (c0 <= c1)
    ty0, tx0 = r0 // tile, c0 // tile
    nty = (r1 // tile - ty0 + 1).clamp(min=0)
    ntx = (c1 // tile - tx0 + 1).clamp(min=0)
    n_entries = torch.where(ok, nty * ntx, 0)
    # The one host synchronisation: the size of the entry list, and NaN faces to report.
    total, n_nan = torch.stack((n_entries.sum(), nan.sum())).tolist()
    if n_nan:
        raise ValueError(f"face_verts has NaN coordinates in {n_nan} faces")
    face = torch.repeat_interleave(
        torch.arange(F, device=dev), n_entries, output_size=total
    )
    first = torch.cumsum(n_entries, 0) - n_entries
    j = torch.arange(total, device=dev) - first[face]
    w = ntx[face]
    t = (
        face_mesh[face] * (n_ty * n_tx)
        + (ty0[face] + j // w) * n_tx
        + (tx0[face] + j % w)
    )
    # Entries come in face order; a stable sort by tile keeps faces ascending per tile.
    t, order = torch.sort(t, stable=True)
    tile_faces = face[order].to(torch.int32)
    tile_start = torch.zeros(n_tiles + 1, dtype=torch.int64, device=dev)
    tile_start[1:] = torch.cumsum(torch.bincount(t, minlength=n_tiles), 0)
    tile_verts = fv.reshape(F, 9)[tile_faces.long()]
    return tile_start, tile_faces, tile_verts, ok


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def rasterize_forward(
    face_verts: torch.Tensor,
    face_mesh: torch.Tensor,
    n_meshes: int,
    neighbor: torch.Tensor,
    params: RasterParams,
    tile: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Triton forward. Same contract as :func:`.reference.rasterize_reference` (no autograd).

    Args:
        face_verts: (F, 3, 3) float CUDA tensor (CPU under ``TRITON_INTERPRET=1``).
        face_mesh: (F,) int64 mesh index of each face (-1 = not rasterized).
        neighbor: (F,) int64 the other half of a clipped face, or -1.
        tile: tile side in pixels, a power of two (default from K, :func:`tile_size`).

    Returns:
        pix_to_face (N, H, W, K) int64, zbuf (N, H, W, K), bary_coords (N, H, W, K, 3),
        dists (N, H, W, K), in the dtype of ``face_verts``; -1 where empty.
    """
    H, W = params.image_size
    K = params.faces_per_pixel
    dev = face_verts.device
    dtype = face_verts.dtype
    cdt = _compute_dtype(dtype)
    tile = tile_size(K) if tile is None else tile
    if tile < 1 or tile & (tile - 1):
        raise ValueError(f"tile must be a power of two, got {tile}")
    fv = face_verts.detach().to(cdt).contiguous()
    tile_start, tile_faces, tile_verts, ok = bin_faces_torch(fv, face_mesh, n_meshes, params, tile)
    # The other half of a clipped face matters only where it is rasterized itself.
    has_nb = neighbor >= 0
    nb = torch.where(has_nb & ok[neighbor.clamp(min=0)], neighbor, -1).to(torch.int32)
    p2f = torch.empty((n_meshes, H, W, K), dtype=torch.int64, device=dev)
    zbuf = torch.empty((n_meshes, H, W, K), dtype=cdt, device=dev)
    bary = torch.empty((n_meshes, H, W, K, 3), dtype=cdt, device=dev)
    dists = torch.empty((n_meshes, H, W, K), dtype=cdt, device=dev)
    if p2f.numel():
        ys, xs = pixel_centers_torch(H, W, cdt, dev)
        blur = params.blur_radius
        consts = torch.tensor([blur, blur**0.5], dtype=cdt, device=dev)
        n_ty, n_tx = -(-H // tile), -(-W // tile)
        if tile_faces.numel() == 0:  # a valid pointer, never read
            tile_faces = torch.zeros(1, dtype=torch.int32, device=dev)
            tile_verts = torch.zeros((1, 9), dtype=cdt, device=dev)
        if fv.numel() == 0:
            fv = torch.zeros((1, 3, 3), dtype=cdt, device=dev)
            nb = torch.full((1,), -1, dtype=torch.int32, device=dev)
        kp = triton_next_pow2(K)
        tk.raster_forward_kernel[(n_meshes * n_ty * n_tx,)](
            fv, nb, tile_start, tile_faces, tile_verts, ys, xs, consts, p2f, zbuf, bary, dists,
            H, W, n_ty, n_tx, K,
            T=tile, KP=kp, BLUR=blur > 0.0, PERSP=params.perspective_correct,
            CLIP=params.clip_barycentric_coords,
            num_warps=4 if tile * tile * kp <= 1024 else 8,
        )
    return p2f, zbuf.to(dtype), bary.to(dtype), dists.to(dtype)


def rasterize_backward(
    face_verts: torch.Tensor,
    pix_to_face: torch.Tensor,
    grad_zbuf: torch.Tensor,
    grad_bary: torch.Tensor,
    grad_dists: torch.Tensor,
    perspective_correct: bool,
    clip_barycentric_coords: bool,
) -> torch.Tensor:
    """Triton backward: gradient (F, 3, 3) of face_verts from the three output gradients.

    Accumulates with atomic adds (summation order not deterministic in float), unless
    ``torch.are_deterministic_algorithms_enabled()``: then per-slot terms are written and
    summed by ``index_add_`` (deterministic, more memory: (N*H*W*K, 9)).
    """
    N, H, W, K = pix_to_face.shape
    dev = face_verts.device
    dtype = face_verts.dtype
    cdt = _compute_dtype(dtype)
    F = face_verts.shape[0]
    M = pix_to_face.numel()
    if M == 0 or F == 0:
        return torch.zeros_like(face_verts)
    fv = face_verts.detach().to(cdt).contiguous()
    ys, xs = pixel_centers_torch(H, W, cdt, dev)
    p2f = pix_to_face.contiguous()
    gz, gb, gd = (g.detach().to(cdt).contiguous() for g in (grad_zbuf, grad_bary, grad_dists))
    atomic = not torch.are_deterministic_algorithms_enabled()
    out = torch.zeros((F, 9) if atomic else (M, 9), dtype=cdt, device=dev)
    grid = (triton.cdiv(M, BACKWARD_BLOCK),)
    tk.raster_backward_kernel[grid](
        fv, p2f, gz, gb, gd, ys, xs, out, M, H, W, K,
        BLOCK=BACKWARD_BLOCK, PERSP=bool(perspective_correct),
        CLIP=bool(clip_barycentric_coords), ATOMIC=atomic,
    )
    if not atomic:
        grad = torch.zeros((F, 9), dtype=cdt, device=dev)
        grad.index_add_(0, p2f.view(-1).clamp(min=0), out)
        out = grad
    return out.view(F, 3, 3).to(dtype)
