"""Triton backend of the mesh rasterizer: binning, kernel launches.

Same contract as :mod:`.cpu` (and :mod:`.reference`). Faces are binned into T x T pixel
tiles by two small Triton kernels and a sort, counting before filling, so no per-tile
budget exists to overflow; the only host synchronisation per forward call reads the number
of (tile, face) entries (and the number of NaN faces) to size the list. Results do not
depend on the tile size or the number of warps.
The forward kernel keeps each pixel's K-best list in 8 register slots and fills longer
lists in rounds (:mod:`.triton_kernels`), so registers do not grow with K and one default
launch serves every K: 8 x 8 pixel tiles, 2 warps (one pixel per thread).
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
from .grid import pixel_centers_ndc, pixel_centers_torch

TILE = 8  # pixels per tile side (T*T = 64 pixels = the 64 threads of num_warps=2)
SLOTS = 8  # K-best slots held in registers per pixel; larger K runs in rounds of 8
BACKWARD_BLOCK = 256
SETUP_BLOCK = 256  # faces per program of the binning kernels
# Fused multiply-adds in the mesh kernels, as measured and tested on the GPU. Every launch
# names it: Triton's default flips from on (up to 3.9) to off (3.10), which would change
# rounding and speed with the Triton release. The binning kernels and the points forward
# never fuse: their comparisons must equal the reference's.
FUSE = True


def num_warps_for(tile: int) -> int:
    """Warps per forward program: one pixel per thread (T*T / 32), between 1 and 4. Below
    T = 8 a program has fewer pixels than the 32 threads of one warp; the kernel then pads
    its block with idle lanes (see :func:`rasterize_forward`) rather than let Triton
    replicate pixels across threads."""
    return max(1, min(4, tile * tile // 32))


def fill_tiles(owner: torch.Tensor, count: torch.Tensor, bad: torch.Tensor,
               r0: torch.Tensor, c0: torch.Tensor, ntx: torch.Tensor, n_ty: int, n_tx: int,
               n_tiles: int, tile: int, item: str, bad_message: str
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The (tile, item) lists from the per-item counts of a setup kernel (faces or points).

    Args:
        owner: (I,) image of each item (-1: none); count: (I,) int32 tiles each item
            touches; bad: (I,) int32 non-zero for items to report; r0, c0, ntx: (I,) int32
            first tile row/column and tiles per row of each item's box.
        n_ty, n_tx, n_tiles: tiles per image side and in all; tile: T.
        item: "face" or "point" (messages); bad_message: ValueError text, ``{}`` = count.

    Returns:
        ``(tile_start (n_tiles + 1,) int64, tile_items (total,) int32)``, items ascending
        within each tile. The one host synchronisation reads the total and the bad count.
    """
    dev = count.device
    last = torch.cumsum(count, 0, dtype=torch.int64)
    total, n_bad = torch.stack((last[-1:].sum(), bad.sum(dtype=torch.int64))).tolist()
    if n_bad:
        raise ValueError(bad_message.format(n_bad))
    if n_tiles >= 2**31 or total >= 2**31:
        raise ValueError(f"too many tiles or (tile, {item}) entries ({n_tiles}, {total})")
    key = torch.empty(total, dtype=torch.int32, device=dev)
    items = torch.empty(total, dtype=torch.int32, device=dev)
    n_items = count.shape[0]
    if total:
        # each item writes its (tile, item) entries at its offset, in item order
        tk.face_entries_kernel[(triton.cdiv(n_items, SETUP_BLOCK),)](
            owner, count, (last - count).to(torch.int32), r0, c0, ntx, key, items,
            n_items, n_ty, n_tx, TILE=tile, BLOCK=SETUP_BLOCK, enable_fp_fusion=False,
        )
    # a stable sort by tile keeps items ascending within a tile
    key, order = torch.sort(key, stable=True)
    tile_start = torch.searchsorted(
        key, torch.arange(n_tiles + 1, dtype=torch.int32, device=dev)
    )
    return tile_start, items[order]


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
    n_ty, n_tx = -(-H // tile), -(-W // tile)
    n_tiles = n_meshes * n_ty * n_tx
    fv = face_verts.detach().reshape(F, 9)
    per_face = torch.empty((6, max(F, 1)), dtype=torch.int32, device=dev)
    count, nan, ok, r0, c0, ntx = per_face
    ys, xs = pixel_centers_ndc(H, W)
    ystep = float(ys[0] - ys[H - 1]) / (H - 1) if H > 1 else 1.0
    xstep = float(xs[0] - xs[W - 1]) / (W - 1) if W > 1 else 1.0
    if F:
        tk.face_setup_kernel[(triton.cdiv(F, SETUP_BLOCK),)](
            fv, face_mesh, count, nan, ok, r0, c0, ntx,
            F, n_meshes, H, W, params.blur_radius**0.5, float(ys[0]), ystep, float(xs[0]),
            xstep, TILE=tile, CULL=params.cull_backfaces, BLOCK=SETUP_BLOCK,
            enable_fp_fusion=False,
        )
    count, nan, ok = count[:F], nan[:F], ok[:F]
    tile_start, tile_faces = fill_tiles(face_mesh, count, nan, r0, c0, ntx, n_ty, n_tx,
                                        n_tiles, tile, "face",
                                        "face_verts has NaN or inf coordinates in {} faces")
    tile_verts = fv[tile_faces.long()]
    return tile_start, tile_faces, tile_verts, ok.bool()


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


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
        num_warps: warps per forward program (default :func:`num_warps_for`). The program
            holds max(T*T, 32 * num_warps) lanes, the extra ones idle, so that each thread
            owns its own pixels (none is replicated across threads).

    Returns:
        pix_to_face (N, H, W, K) int64, zbuf (N, H, W, K), bary_coords (N, H, W, K, 3),
        dists (N, H, W, K), in the dtype of ``face_verts``; -1 where empty.
    """
    H, W = params.image_size
    K = params.faces_per_pixel
    dev = face_verts.device
    dtype = face_verts.dtype
    cdt = _compute_dtype(dtype)
    tile = TILE if tile is None else tile
    if tile < 1 or tile & (tile - 1):
        raise ValueError(f"tile must be a power of two, got {tile}")
    fv = face_verts.detach().to(cdt).contiguous()
    tile_start, tile_faces, tile_verts, ok = bin_faces(fv, face_mesh, n_meshes, params, tile)
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
        # filled on the device (torch.tensor from a list would copy from the host and
        # synchronise); a tensor rather than scalar arguments keeps float64 precision
        consts = torch.full((2,), blur, dtype=cdt, device=dev)
        consts[1:].fill_(blur**0.5)  # (item assignment would copy a host scalar)
        n_ty, n_tx = -(-H // tile), -(-W // tile)
        if tile_faces.numel() == 0:  # a valid pointer, never read
            tile_faces = torch.zeros(1, dtype=torch.int32, device=dev)
            tile_verts = torch.zeros((1, 9), dtype=cdt, device=dev)
        if fv.numel() == 0:
            fv = torch.zeros((1, 3, 3), dtype=cdt, device=dev)
            nb = torch.full((1,), -1, dtype=torch.int32, device=dev)
        warps = num_warps or num_warps_for(tile)
        slots = min(K, SLOTS)
        tk.raster_forward_kernel[(n_meshes * n_ty * n_tx,)](
            fv, nb, tile_start, tile_faces, tile_verts, ys, xs, consts, p2f, zbuf, bary, dists,
            H, W, n_ty, n_tx, K, -(-K // slots),
            T=tile, BLOCK=max(tile * tile, 32 * warps), S=slots, BLUR=blur > 0.0,
            PERSP=params.perspective_correct, CLIP=params.clip_barycentric_coords,
            num_warps=warps, enable_fp_fusion=FUSE,
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
    out, atomic = gradient_buffer(F, M, 9, cdt, dev)
    # float64 at two (pixel, k) entries per thread needs more than 255 registers and spills
    # (sm_90, python -m diffrend.bench.triton_compile); one entry per thread does not
    block = BACKWARD_BLOCK if cdt == torch.float32 else BACKWARD_BLOCK // 2
    tk.raster_backward_kernel[(triton.cdiv(M, block),)](
        fv, p2f, gz, gb, gd, ys, xs, out, M, H, W, K,
        BLOCK=block, PERSP=bool(perspective_correct),
        CLIP=bool(clip_barycentric_coords), ATOMIC=atomic, enable_fp_fusion=FUSE,
    )
    return sum_gradient(out, atomic, p2f, F).view(F, 3, 3).to(dtype)


def gradient_buffer(n_items: int, n_slots: int, width: int, dtype: torch.dtype,
                    device: torch.device) -> tuple[torch.Tensor, bool]:
    """The zeroed buffer a backward kernel writes into, and whether it adds atomically:
    (n_items, width) for atomic adds (summation order not deterministic in float), or
    (n_slots, width) per-slot terms when ``torch.are_deterministic_algorithms_enabled()``."""
    atomic = not torch.are_deterministic_algorithms_enabled()
    return torch.zeros((n_items if atomic else n_slots, width), dtype=dtype,
                       device=device), atomic


def sum_gradient(out: torch.Tensor, atomic: bool, index: torch.Tensor,
                 n_items: int) -> torch.Tensor:
    """(n_items, width) gradient from :func:`gradient_buffer`'s buffer after the kernel:
    per-slot terms summed by ``index_add_`` over ``index`` (N, H, W, K) (deterministic)."""
    if atomic:
        return out
    grad = out.new_zeros((n_items, out.shape[1]))
    return grad.index_add_(0, index.reshape(-1).clamp(min=0), out)
