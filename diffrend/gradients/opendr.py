"""OpenDR's silhouette gradient (Loper & Black 2014), written from the paper.

The forward image is the hard silhouette. The backward pass treats the image as content that
moves with the surface: if the surface point seen at pixel p moves on screen by ``du``, the
image there changes by ``-grad_I . du``. OpenDR estimates ``grad_I`` with image-space finite
differences, which are non-zero only on the boundary, and gets ``du`` from the projection:
the point at p has barycentric coordinates ``b`` in its triangle, so moving corner k by
``dv`` moves it by ``b_k dv``.

Here ``grad_I`` is the central difference ``(I[x + 1] - I[x - 1]) / 2`` per pixel step along
x and y. A boundary pixel that no triangle covers takes the triangle of its covered
neighbour (the one the difference runs towards), with the barycentric coordinates of its
centre in that triangle's projection (extrapolated just outside it). For a straight edge the
two pixels on either side of it carry half of the step each, so their sum moves a row's
coverage by one pixel per pixel of edge motion, as the exact derivative does.
"""

from __future__ import annotations

import torch

from ..raster.grid import pixel_centers_torch
from .antialias import hard_silhouette


def _barycentric_2d(tri: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Screen-space barycentrics (P, 3) of points p (P, 2) in triangles tri (P, 3, 2)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = torch.where(den.abs() > 1e-12, den, torch.full_like(den, 1e-12))
    w1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    w2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    return torch.stack([1 - w1 - w2, w1, w2], 1)


class _OpenDRSilhouette(torch.autograd.Function):
    @staticmethod
    def forward(ctx, face_verts_ndc, silhouette, pix_to_face):
        ctx.save_for_backward(face_verts_ndc, silhouette, pix_to_face)
        return silhouette.clone()

    @staticmethod
    def backward(ctx, grad):
        face_verts_ndc, sil, p2f = ctx.saved_tensors
        n, h, w = sil.shape
        xy = face_verts_ndc[..., :2].detach()
        ys, xs = pixel_centers_torch(h, w, xy.dtype, xy.device)
        out = torch.zeros_like(face_verts_ndc)
        with torch.no_grad():
            for axis in (0, 1):  # 0: x (along columns of a row), 1: y (along rows)
                dim = 2 if axis == 0 else 1
                step = float((xs[0] - xs[1]).abs() if axis == 0 else (ys[0] - ys[1]).abs())
                pad = torch.nn.functional.pad(sil, (1, 1, 0, 0) if axis == 0 else (0, 0, 1, 1))
                fpad = torch.nn.functional.pad(p2f, (1, 1, 0, 0) if axis == 0 else (0, 0, 1, 1),
                                               value=-1)
                lo = pad.narrow(dim, 0, sil.shape[dim])  # index - 1: larger NDC coordinate
                hi = pad.narrow(dim, 2, sil.shape[dim])  # index + 1: smaller coordinate
                # d I / d(NDC coordinate): index order runs against the NDC axis.
                d_img = (lo - hi) / (2.0 * step)
                face = p2f.clone()
                f_lo = fpad.narrow(dim, 0, sil.shape[dim])
                f_hi = fpad.narrow(dim, 2, sil.shape[dim])
                face = torch.where(face >= 0, face, torch.where(f_lo >= 0, f_lo, f_hi))
                use = (d_img != 0) & (face >= 0) & (grad != 0)
                if not bool(use.any()):
                    continue
                nn_, rr, cc = use.nonzero(as_tuple=True)
                f = face[nn_, rr, cc]
                p = torch.stack([xs[cc], ys[rr]], 1)
                bary = _barycentric_2d(xy[f], p)  # (P, 3)
                # Moving the content by du changes I by -dI/du du; corner k moves it by b_k.
                coeff = -(grad[nn_, rr, cc] * d_img[nn_, rr, cc])[:, None] * bary
                out[..., axis].index_put_((f[:, None].expand(-1, 3),
                                           torch.arange(3).expand(f.shape[0], 3)),
                                          coeff, accumulate=True)
        return out, None, None


def opendr_silhouette_faces(face_verts_ndc: torch.Tensor,
                            pix_to_face: torch.Tensor) -> torch.Tensor:
    """Hard silhouette (N, H, W) whose backward pass gives ``face_verts_ndc`` (F, 3, 3)
    OpenDR's gradient (x, y; none for z). ``pix_to_face``: (N, H, W) int64, -1 background."""
    silhouette = hard_silhouette(face_verts_ndc, pix_to_face)
    return _OpenDRSilhouette.apply(face_verts_ndc, silhouette, pix_to_face)


def opendr_silhouette(fragments, meshes, cameras) -> torch.Tensor:
    """Hard silhouettes (N, H, W) with OpenDR's backward pass (see the module docstring);
    differentiable w.r.t. the vertices and cameras. Arguments as
    :func:`~diffrend.gradients.nmr_silhouette`."""
    from ..raster.rasterizer import meshes_to_ndc

    projected = meshes_to_ndc(meshes, cameras)
    faces = projected.faces_packed()
    return opendr_silhouette_faces(projected.verts_packed()[faces],
                                   fragments.pix_to_face[..., 0])
