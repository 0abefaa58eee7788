"""Neural Mesh Renderer's edge gradient (Kato et al. 2018), written from the paper.

The forward image is a hard render. Its pixels are step functions of each vertex coordinate:
pixel p changes from ``I_before`` to ``I_after`` when moving vertex k by ``dx`` brings a
silhouette edge of one of its faces across p's centre. NMR's backward pass uses the finite
slope ``(I_after - I_before) / dx`` of that step for every pixel of the row (for x; of the
column, for y) that the edge can sweep, but only where the step would lower the loss
(``<upstream gradient, I_after - I_before> < 0``). The gradient thus reaches pixels far from
the outline (decaying as 1 / distance), unlike antialiasing.

Here, for each silhouette edge of a front-facing triangle (boundary edges, or edges whose
neighbour faces away, i.e. outlines and occluding contours; see
:func:`~diffrend.gradients.antialias`) crossing a pixel line at ``x_e``, with the edge's
vertices weighted ``(1 - lambda, lambda)`` at that line:

- pixels on the outer side that the triangle would cover (background, or a surface behind
  the edge): ``I_after`` is the colour of the pixel just inside the edge, ``dx = (x_p -
  x_e) / w_k``;
- pixels on the inner side where this triangle is the visible one: ``I_after`` is the
  colour of the pixel just outside the edge (what the triangle hides), ``dx`` likewise.

Distances are clamped to at least half a pixel so the slope stays finite. The image's own
gradient (w.r.t. colours, textures, lights) passes through unchanged.
"""

from __future__ import annotations

import torch

from ..raster.tiles import pixel_centers_torch
from .antialias import _edge_topology, check_image, hard_silhouette


def _line_values(t: torch.Tensor, img: torch.Tensor, line: torch.Tensor, axis: int):
    """Values of t (N, H, W, ...) along pixel line ``line`` of image ``img``: (P, M, ...)."""
    return t[img, line, :] if axis == 0 else t[img, :, line]


def _sweeps(face_verts, face_image, edges, image, p2f, zbuf, grad, centers_along,
            centers_across, axis):
    """Gradient (F, 3) w.r.t. one screen coordinate of each face corner, from edges
    sweeping along ``axis`` (0: x, sweeping pixel rows; 1: y, sweeping columns)."""
    n_faces = face_verts.shape[0]
    out = torch.zeros(n_faces, 3, dtype=grad.dtype, device=grad.device)
    f_idx, e_idx = edges
    if f_idx.numel() == 0:
        return out
    ia, ib = (e_idx + 1) % 3, (e_idx + 2) % 3
    a, b, c = face_verts[f_idx, ia], face_verts[f_idx, ib], face_verts[f_idx, e_idx]
    u, v = axis, 1 - axis  # u: the swept coordinate, v: the one that picks the line
    lo, hi = torch.minimum(a[:, v], b[:, v]), torch.maximum(a[:, v], b[:, v])
    hit = (centers_across[None, :] >= lo[:, None]) & (centers_across[None, :] < hi[:, None])
    e_sel, l_sel = hit.nonzero(as_tuple=True)
    if e_sel.numel() == 0:
        return out
    av, bv = a[e_sel], b[e_sel]
    lam = (centers_across[l_sel] - av[:, v]) / (bv[:, v] - av[:, v])
    cross = av[:, u] + lam * (bv[:, u] - av[:, u])  # (P,) where the edge meets the line
    z_edge = av[:, 2] + lam * (bv[:, 2] - av[:, 2])
    # Which way is outside: the edge function is positive or negative on the third corner's
    # side, and moving +x changes it by -(b - a)_y, moving +y by +(b - a)_x.
    ab = bv[:, :2] - av[:, :2]
    cv = c[e_sel, :2] - av[:, :2]
    side_c = ab[:, 0] * cv[:, 1] - ab[:, 1] * cv[:, 0]
    d_edge = -ab[:, 1] if u == 0 else ab[:, 0]
    outside = torch.where(torch.sign(d_edge) == torch.sign(side_c), -1.0, 1.0).to(grad.dtype)
    img = face_image[f_idx[e_sel]]
    delta = centers_along[None, :] - cross[:, None]  # (P, M) signed offset from the edge
    step = (centers_along[0] - centers_along[1]).abs()
    dist = delta.abs().clamp(min=0.5 * step)
    is_out = torch.sign(delta) == outside[:, None]
    s_vals = _line_values(p2f, img, l_sel, axis)  # (P, M)
    z_vals = _line_values(zbuf, img, l_sel, axis)
    i_vals = _line_values(image, img, l_sel, axis)  # (P, M, C)
    g_vals = _line_values(grad, img, l_sel, axis)
    # The colours on either side of the crossing: what a swept pixel becomes.
    big = torch.finfo(delta.dtype).max
    near_in = torch.where(is_out, big, delta.abs()).argmin(1)
    near_out = torch.where(is_out, delta.abs(), big).argmin(1)
    rows = torch.arange(i_vals.shape[0], device=grad.device)
    c_in, c_out = i_vals[rows, near_in], i_vals[rows, near_out]  # (P, C)
    fid = f_idx[e_sel][:, None]
    covers = is_out & (s_vals != fid) & ((s_vals < 0) | (z_vals > z_edge[:, None]))
    uncovers = ~is_out & (s_vals == fid)
    after = torch.where(is_out[..., None], c_in[:, None], c_out[:, None])
    change = ((after - i_vals) * g_vals).sum(-1)  # <grad, I_after - I_before>, (P, M)
    use = (covers | uncovers) & (change < 0)
    # Displacement of the edge that reaches the pixel: +outside * dist to cover an outer
    # pixel, -outside * dist to uncover an inner one.
    disp = torch.where(is_out, outside[:, None], -outside[:, None]) * dist
    contrib = torch.where(use, change / disp, 0.0).sum(1)  # (P,) per unit weight
    out.index_put_((f_idx[e_sel], ia[e_sel]), contrib * (1.0 - lam), accumulate=True)
    out.index_put_((f_idx[e_sel], ib[e_sel]), contrib * lam, accumulate=True)
    return out


class _NMR(torch.autograd.Function):
    @staticmethod
    def forward(ctx, face_verts_ndc, image, pix_to_face, zbuf, face_image, faces):
        ctx.save_for_backward(face_verts_ndc, image.detach(), pix_to_face, zbuf, face_image,
                              faces)
        return image.clone()

    @staticmethod
    def backward(ctx, grad):
        face_verts_ndc, image, p2f, zbuf, face_image, faces = ctx.saved_tensors
        n, h, w, _ = image.shape
        fv = face_verts_ndc.detach()
        xy = fv[..., :2]
        with torch.no_grad():
            sil, _ = _edge_topology(face_verts_ndc, faces)
            d1, d2 = xy[:, 1] - xy[:, 0], xy[:, 2] - xy[:, 0]
            facing = torch.sign(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0])
            visible = p2f[p2f >= 0]
            front = torch.sign(facing[visible].sum()) if visible.numel() else 1.0
            keep = sil & (facing == front)[:, None]
            edges = keep.nonzero(as_tuple=True)
            ys, xs = pixel_centers_torch(h, w, xy.dtype, xy.device)
            args = (image.to(grad.dtype), p2f, zbuf.to(xy.dtype), grad)
            gx = _sweeps(fv, face_image, edges, *args, xs, ys, 0)
            gy = _sweeps(fv, face_image, edges, *args, ys, xs, 1)
            g = torch.zeros_like(face_verts_ndc)
            g[..., 0], g[..., 1] = gx, gy
        return g, grad, None, None, None, None


def nmr(image: torch.Tensor, pix_to_face: torch.Tensor, zbuf: torch.Tensor,
        face_verts_ndc: torch.Tensor, faces: torch.Tensor,
        face_image: torch.Tensor) -> torch.Tensor:
    """A hard-rendered image whose backward pass adds NMR's edge gradient.

    Args:
        image: (N, H, W, C) hard render (e.g. ``HardPhongShader``'s RGBA, or a silhouette).
        pix_to_face: (N, H, W) int64 visible face per pixel (-1: background).
        zbuf: (N, H, W) its depth (decides whether an edge would cover a pixel).
        face_verts_ndc: (F, 3, 3) packed faces' vertices in NDC (x, y; z the view depth).
        faces: (F, 3) int64 packed vertex indices (for the edge topology).
        face_image: (F,) int64 image each face is drawn into.

    Returns:
        (N, H, W, C) equal to ``image``; its gradient passes to ``image`` unchanged and
        gives ``face_verts_ndc`` NMR's gradient (x and y; none for z).

    Raises:
        ValueError: shapes that do not match.
    """
    check_image(image, pix_to_face, zbuf, face_verts_ndc, faces, face_image)
    return _NMR.apply(face_verts_ndc, image, pix_to_face, zbuf, face_image, faces)


def nmr_silhouette_faces(face_verts_ndc: torch.Tensor, pix_to_face: torch.Tensor,
                         face_image: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Hard silhouette (N, H, W) of ``pix_to_face`` (N, H, W) with :func:`nmr`'s backward
    pass into ``face_verts_ndc`` (F, 3, 3); ``face_image`` (F,), ``faces`` (F, 3)."""
    sil = hard_silhouette(face_verts_ndc, pix_to_face)
    return nmr(sil[..., None], pix_to_face, torch.zeros_like(sil), face_verts_ndc, faces,
               face_image)[..., 0]


def _projected(meshes, cameras):
    from ..raster.mesh import meshes_to_ndc

    projected = meshes_to_ndc(meshes, cameras)
    faces = projected.faces_packed()
    return projected.verts_packed()[faces], faces, projected.faces_packed_to_mesh_idx()


def nmr_render(image: torch.Tensor, fragments, meshes, cameras) -> torch.Tensor:
    """:func:`nmr` for a renderer's output: a hard-rendered ``image`` (N, H, W, C) with the
    ``fragments`` it came from and the ``meshes`` and ``cameras`` that were rendered.

    Differentiable w.r.t. the image (unchanged), and by NMR's rule w.r.t. the mesh vertices
    and the camera parameters.
    """
    fv, faces, face_image = _projected(meshes, cameras)
    return nmr(image, fragments.pix_to_face[..., 0], fragments.zbuf[..., 0], fv, faces,
               face_image)


def nmr_silhouette(fragments, meshes, cameras) -> torch.Tensor:
    """Hard silhouettes (N, H, W) whose backward pass follows NMR's rule.

    Args:
        fragments: a hard rasterization (``faces_per_pixel`` >= 1; k = 0 is used).
        meshes, cameras: what was rasterized (N meshes, or one mesh and N cameras).

    Returns:
        (N, H, W) silhouettes in {0, 1}; differentiable w.r.t. the vertices and cameras by
        NMR's approximate gradient.
    """
    fv, faces, face_image = _projected(meshes, cameras)
    return nmr_silhouette_faces(fv, fragments.pix_to_face[..., 0], face_image, faces)
