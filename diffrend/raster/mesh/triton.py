"""Triton backend of the mesh rasterizer: binning, kernel launches.

Same contract as :mod:`.numba` (and :mod:`.reference`). Faces are binned into T x T pixel
tiles by two small Triton kernels and a sort, counting before filling, so no per-tile
budget exists to overflow; the only host synchronisation per forward call reads the number
of (tile, face) entries (and the number of NaN faces) to size the list. Results do not
depend on the tile size or the number of warps.
The forward kernel keeps each pixel's K-best list in 8 register slots and fills longer
lists in rounds (:mod:`.triton_kernels`), so registers do not grow with K and one default
launch serves every K: 8 x 8 pixel tiles, 2 warps (one pixel per thread).
The kernels (:mod:`.triton_kernels`) compute in the dtype of the face vertices (float32 or
float64; other float dtypes are computed in float32). Devices: as :mod:`..triton_shared`.
"""

from __future__ import annotations

import torch
import triton

from .. import triton_shared as ts
from ..fragments import RasterParams, empty_fragment_buffers
from ..tiles import pixel_centers_torch, tile_grid
from . import triton_kernels as tk


def bin_faces(
    face_verts: torch.Tensor,
    face_mesh: torch.Tensor,
    n_meshes: int,
    params: RasterParams,
    tile: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """List, for each (image, tile), the faces whose pixel range touches it.

    Two small Triton kernels (per-face setup, then each face writes its entries at its
    offset in face order) and a stable sort by tile, so faces stay ascending per tile.

    Args:
        face_verts: (F, 3, 3) screen-space faces, float32 or float64, contiguous.
        face_mesh: (F,) int64 (-1 = skip).
        n_meshes: N. params: image size, blur radius, culling. tile: tile side in pixels.

    Returns:
        tile_start: (N * TY * TX + 1,) int64 offsets into ``tile_faces``.
        tile_faces: (total,) int32 face indices, ascending within each tile.
        tile_verts: (total, 9) the vertices of each entry's face, so that the kernel reads
            a tile's faces in memory order rather than through the index.
        ok: (F,) bool, whether each face is rasterized at all (area, depth, culling).

    Raises:
        ValueError: if a face has a NaN or inf coordinate.
    """
    H, W = params.image_size
    dev = face_verts.device
    F = face_verts.shape[0]
    n_ty, n_tx = tile_grid(H, W, tile)
    n_tiles = n_meshes * n_ty * n_tx
    fv = face_verts.detach().reshape(F, 9)
    per_face = torch.empty((6, max(F, 1)), dtype=torch.int32, device=dev)
    count, nan, ok, r0, c0, ntx = per_face
    if F:
        tk.face_setup_kernel[(triton.cdiv(F, ts.SETUP_BLOCK),)](
            fv, face_mesh, count, nan, ok, r0, c0, ntx,
            F, n_meshes, H, W, params.blur_radius**0.5, *ts.pixel_range_args(H, W),
            TILE=tile, CULL=params.cull_backfaces, BLOCK=ts.SETUP_BLOCK,
            enable_fp_fusion=False,
        )
    count, nan, ok = count[:F], nan[:F], ok[:F]
    tile_start, tile_faces = ts.fill_tiles(face_mesh, count, nan, r0, c0, ntx, n_ty, n_tx,
                                        n_tiles, tile, "face",
                                        "face_verts has NaN or inf coordinates in {} faces")
    tile_verts = fv[tile_faces.long()]
    return tile_start, tile_faces, tile_verts, ok.bool()


def rasterize_forward(
    face_verts: torch.Tensor,
    face_mesh: torch.Tensor,
    n_meshes: int,
    neighbor: torch.Tensor,
    params: RasterParams,
    tile: int | None = None,
    num_warps: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Triton forward. Same contract as :func:`.reference.rasterize_reference` (no autograd).

    Args:
        face_verts: (F, 3, 3) float CUDA tensor (CPU under ``TRITON_INTERPRET=1``).
        face_mesh: (F,) int64 mesh index of each face (-1 = not rasterized).
        neighbor: (F,) int64 the other half of a clipped face, or -1.
        tile: tile side in pixels, a power of two (results do not depend on it).
        num_warps: warps per forward program (default
            :func:`..triton_shared.num_warps_for`). The program holds max(T*T,
            32 * num_warps) lanes, the extra ones idle, so that each thread
            owns its own pixels (none is replicated across threads).

    Returns:
        As :func:`.numba.rasterize_forward`, on the device of ``face_verts``.
    """
    H, W = params.image_size
    K = params.faces_per_pixel
    dev = face_verts.device
    dtype = face_verts.dtype
    cdt = ts.compute_dtype(dtype)
    tile = ts.check_tile(tile)
    fv = face_verts.detach().to(cdt).contiguous()
    tile_start, tile_faces, tile_verts, ok = bin_faces(fv, face_mesh, n_meshes, params, tile)
    # The other half of a clipped face matters only where it is rasterized itself.
    has_nb = neighbor >= 0
    nb = torch.where(has_nb & ok[neighbor.clamp(min=0)], neighbor, -1).to(torch.int32)
    p2f, zbuf, bary, dists = empty_fragment_buffers(n_meshes, H, W, K, cdt, dev, bary=True)
    if p2f.numel():
        ys, xs = pixel_centers_torch(H, W, cdt, dev)
        blur = params.blur_radius
        # filled on the device (torch.tensor from a list would copy from the host and
        # synchronise); a tensor rather than scalar arguments keeps float64 precision
        consts = torch.full((2,), blur, dtype=cdt, device=dev)
        consts[1:].fill_(blur**0.5)  # (item assignment would copy a host scalar)
        n_ty, n_tx = tile_grid(H, W, tile)
        if tile_faces.numel() == 0:  # a valid pointer, never read
            tile_faces = torch.zeros(1, dtype=torch.int32, device=dev)
            tile_verts = torch.zeros((1, 9), dtype=cdt, device=dev)
        if fv.numel() == 0:
            fv = torch.zeros((1, 3, 3), dtype=cdt, device=dev)
            nb = torch.full((1,), -1, dtype=torch.int32, device=dev)
        warps = num_warps or ts.num_warps_for(tile)
        slots = min(K, ts.SLOTS)
        tk.raster_forward_kernel[(n_meshes * n_ty * n_tx,)](
            fv, nb, tile_start, tile_faces, tile_verts, ys, xs, consts, p2f, zbuf, bary, dists,
            H, W, n_ty, n_tx, K, -(-K // slots),
            T=tile, BLOCK=max(tile * tile, 32 * warps), S=slots, BLUR=blur > 0.0,
            PERSP=params.perspective_correct, CLIP=params.clip_barycentric_coords,
            num_warps=warps, enable_fp_fusion=ts.FUSE,
        )
    return p2f, zbuf.to(dtype), bary.to(dtype), dists.to(dtype)


def rasterize_backward(
    face_verts: torch.Tensor,
    pix_to_face: torch.Tensor,
    grad_zbuf: torch.Tensor,
    grad_bary: torch.Tensor,
    grad_dists: torch.Tensor,
    params: RasterParams,
) -> torch.Tensor:
    """Triton backward: gradient (F, 3, 3) of face_verts from the three output gradients
    (``params``: the forward's; its perspective correction and clipping).

    Accumulates with atomic adds (summation order not deterministic in float), unless
    ``torch.are_deterministic_algorithms_enabled()``: then per-slot terms are written and
    summed by ``index_add_`` (deterministic, more memory: (N*H*W*K, 9)).
    """
    N, H, W, K = pix_to_face.shape
    F = face_verts.shape[0]
    M = pix_to_face.numel()
    if M == 0 or F == 0:
        return torch.zeros_like(face_verts)
    cdt, fv, p2f, ys, xs, (gz, gb, gd) = ts.backward_inputs(
        face_verts, pix_to_face, (grad_zbuf, grad_bary, grad_dists))
    out, atomic = ts.gradient_buffer(F, M, 9, cdt, fv.device)
    # float64 at two (pixel, k) entries per thread needs more than 255 registers and spills
    # (sm_90, python -m diffrend.bench.triton_compile); one entry per thread does not
    block = ts.BACKWARD_BLOCK if cdt == torch.float32 else ts.BACKWARD_BLOCK // 2
    tk.raster_backward_kernel[(triton.cdiv(M, block),)](
        fv, p2f, gz, gb, gd, ys, xs, out, M, H, W, K,
        BLOCK=block, PERSP=bool(params.perspective_correct),
        CLIP=bool(params.clip_barycentric_coords), ATOMIC=atomic, enable_fp_fusion=ts.FUSE,
    )
    return ts.sum_gradient(out, atomic, p2f, F).view(F, 3, 3).to(face_verts.dtype)
