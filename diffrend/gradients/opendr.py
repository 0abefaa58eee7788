"""OpenDR's edge gradient (Loper & Black 2014), written from the paper.

The forward image is a hard render. The backward pass treats the image as content that
moves with the surface: if the surface point seen at pixel p moves on screen by ``du``, the
image there changes by ``-grad_I . du``. OpenDR estimates ``grad_I`` with image-space finite
differences and applies this rule at boundary pixels (where the visible surface changes:
outlines and occlusion boundaries), and gets ``du`` from the projection: the point at p has
barycentric coordinates ``b`` in its triangle, so moving corner k by ``dv`` moves it by
``b_k dv``. Inside surfaces the image's own gradient (through barycentrics, shading and
textures) is used unchanged.

Here ``grad_I`` is the central difference ``(I[x + 1] - I[x - 1]) / 2`` per pixel step along
x and y. A pixel is on a boundary along an axis when a neighbour shows a face that shares no
edge with its own (or the background). The boundary belongs to the nearest of those faces:
a pixel behind it (or background) takes that face, with the barycentric coordinates of its
centre in that face's projection (extrapolated just outside it). For a straight edge the
two pixels on either side of it carry half of the step each, so their sum moves a row's
coverage by one pixel per pixel of edge motion, as the exact derivative does.
"""

from __future__ import annotations

import torch

from ..raster.tiles import pixel_centers_torch
from .antialias import check_image, hard_silhouette
from .nmr import _projected


def _barycentric_2d(tri: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Screen-space barycentrics (P, 3) of points p (P, 2) in triangles tri (P, 3, 2)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = torch.where(den.abs() > 1e-12, den, torch.full_like(den, 1e-12))
    w1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    w2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    return torch.stack([1 - w1 - w2, w1, w2], 1)


def _shifted(t: torch.Tensor, dim: int, offset: int) -> torch.Tensor:
    """t[..., i + offset, ...] along ``dim`` (1: rows, 2: columns); past the image's edge the
    edge pixel itself: what lies outside the view is unknown, so the border is no outline
    (a surface covering the whole view gets no gradient from it)."""
    first, last = t.narrow(dim, 0, 1), t.narrow(dim, t.shape[dim] - 1, 1)
    return torch.cat([first, t, last], dim).narrow(dim, 1 + offset, t.shape[dim])


def _separated(fa: torch.Tensor, fb: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Whether faces fa and fb (same shape, -1: none) differ and share no edge."""
    if faces.shape[0] == 0:  # an empty mesh: background everywhere, no outline
        return torch.zeros_like(fa, dtype=torch.bool)
    va, vb = faces[fa.clamp(min=0)], faces[fb.clamp(min=0)]
    shared = (va[..., :, None] == vb[..., None, :]).sum((-1, -2))
    return (fa != fb) & ((fa < 0) | (fb < 0) | (shared < 2))


class _OpenDR(torch.autograd.Function):
    @staticmethod
    def forward(ctx, face_verts_ndc, image, pix_to_face, zbuf, faces):
        ctx.save_for_backward(face_verts_ndc, image.detach(), pix_to_face, zbuf, faces)
        return image.clone()

    @staticmethod
    def backward(ctx, grad):
        face_verts_ndc, image, p2f, zbuf, faces = ctx.saved_tensors
        n, h, w, _ = image.shape
        xy = face_verts_ndc[..., :2].detach()
        ys, xs = pixel_centers_torch(h, w, xy.dtype, xy.device)
        out = torch.zeros_like(face_verts_ndc)
        image = image.to(grad.dtype)
        depth = torch.where(p2f >= 0, zbuf.to(xy.dtype), torch.inf)
        with torch.no_grad():
            for axis in (0, 1):  # 0: x (along columns of a row), 1: y (along rows)
                dim = 2 if axis == 0 else 1
                step = float((xs[0] - xs[1]).abs() if axis == 0 else (ys[0] - ys[1]).abs())
                # d I / d(NDC coordinate): index order runs against the NDC axis.
                d_img = (_shifted(image, dim, -1) - _shifted(image, dim, 1)) / (2.0 * step)
                owner, owner_z = torch.where(p2f >= 0, p2f, -1), depth
                boundary = torch.zeros_like(p2f, dtype=torch.bool)
                for offset in (-1, 1):
                    nb = _shifted(p2f, dim, offset)
                    nz = _shifted(depth, dim, offset)
                    sep = _separated(p2f, nb, faces)
                    boundary |= sep
                    nearer = sep & (nz < owner_z)
                    owner = torch.where(nearer, nb, owner)
                    owner_z = torch.where(nearer, nz, owner_z)
                change = (grad * d_img).sum(-1)  # <grad, dI/du>, (N, H, W)
                use = boundary & (owner >= 0) & (change != 0)
                if not bool(use.any()):
                    continue
                nn_, rr, cc = use.nonzero(as_tuple=True)
                f = owner[nn_, rr, cc]
                p = torch.stack([xs[cc], ys[rr]], 1)
                bary = _barycentric_2d(xy[f], p)  # (P, 3)
                # Moving the content by du changes I by -dI/du du; corner k moves it by b_k.
                coeff = -change[nn_, rr, cc][:, None] * bary
                out[..., axis].index_put_((f[:, None].expand(-1, 3),
                                           torch.arange(3, device=f.device).expand(
                                               f.shape[0], 3)),
                                          coeff, accumulate=True)
        return out, grad, None, None, None


def opendr(image: torch.Tensor, pix_to_face: torch.Tensor, zbuf: torch.Tensor,
           face_verts_ndc: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """A hard-rendered image whose backward pass adds OpenDR's boundary gradient.

    Args:
        image: (N, H, W, C) hard render (e.g. ``HardPhongShader``'s RGBA, or a silhouette).
        pix_to_face: (N, H, W) int64 visible face per pixel (-1: background).
        zbuf: (N, H, W) its depth (which side of a boundary is in front).
        face_verts_ndc: (F, 3, 3) packed faces' vertices in NDC (x, y used).
        faces: (F, 3) int64 packed vertex indices (faces sharing an edge make no boundary).

    Returns:
        (N, H, W, C) equal to ``image``; its gradient passes to ``image`` unchanged and
        gives ``face_verts_ndc`` OpenDR's gradient (x and y; none for z).

    Raises:
        ValueError: shapes that do not match.
    """
    check_image(image, pix_to_face, zbuf, face_verts_ndc, faces)
    return _OpenDR.apply(face_verts_ndc, image, pix_to_face, zbuf, faces)


def opendr_silhouette_faces(face_verts_ndc: torch.Tensor,
                            pix_to_face: torch.Tensor,
                            faces: torch.Tensor | None = None,
                            zbuf: torch.Tensor | None = None) -> torch.Tensor:
    """Hard silhouette (N, H, W) whose backward pass gives ``face_verts_ndc`` (F, 3, 3)
    OpenDR's gradient (x, y; none for z). ``pix_to_face``: (N, H, W) int64, -1 background;
    ``faces`` (F, 3): the vertex indices (None: every face on its own); ``zbuf`` (N, H, W):
    the depths, which decide the face that gets the gradient where two faces that share no
    vertex meet next to the outline (None: each pixel's own face, as if all were at one
    depth)."""
    sil = hard_silhouette(face_verts_ndc, pix_to_face)
    if faces is None:
        n_faces = face_verts_ndc.shape[0]
        faces = torch.arange(3 * n_faces, device=pix_to_face.device).reshape(n_faces, 3)
    zbuf = torch.zeros_like(sil) if zbuf is None else zbuf
    return opendr(sil[..., None], pix_to_face, zbuf, face_verts_ndc, faces)[..., 0]


def opendr_render(image: torch.Tensor, fragments, meshes, cameras) -> torch.Tensor:
    """:func:`opendr` for a renderer's output (arguments as
    :func:`~diffrend.gradients.nmr_render`): differentiable w.r.t. the image (unchanged),
    and by OpenDR's rule w.r.t. the vertices and camera parameters."""
    fv, faces, _ = _projected(meshes, cameras)
    return opendr(image, fragments.pix_to_face[..., 0], fragments.zbuf[..., 0], fv, faces)


def opendr_silhouette(fragments, meshes, cameras) -> torch.Tensor:
    """Hard silhouettes (N, H, W) with OpenDR's backward pass (see the module docstring);
    differentiable w.r.t. the vertices and cameras. Arguments as
    :func:`~diffrend.gradients.nmr_silhouette`."""
    fv, faces, _ = _projected(meshes, cameras)
    return opendr_silhouette_faces(fv, fragments.pix_to_face[..., 0], faces,
                                   fragments.zbuf[..., 0])
