"""World/view points -> the rasterizers' NDC x, y, for cameras with or without a matrix."""

from __future__ import annotations

from typing import TypeVar

import torch

from ..cameras.base import CamerasBase, try_get_projection_transform
from ..transforms.transform3d import apply_matrix

Batch = TypeVar("Batch")  # Meshes or Pointclouds


def extend_to_cameras(batch: Batch, cameras: CamerasBase, R: torch.Tensor | None,
                      what: str, one: str) -> Batch:
    """The batch seen by the cameras: one mesh or cloud with N cameras is extended to N;
    otherwise the counts must match (or there is one camera).

    Args:
        batch: ``Meshes`` or ``Pointclouds``. R: the per-call rotation override, or None.
        what, one: names for messages ("meshes", "mesh"; "pointclouds", "cloud").

    Raises:
        ValueError: when the batch sizes do not fit.
    """
    n_cam = len(cameras) if R is None else max(len(cameras), R.shape[0])
    if len(batch) == 1 and n_cam > 1:
        batch = batch.extend(n_cam)
    if n_cam not in (1, len(batch)):
        raise ValueError(
            f"cameras has batch size {n_cam} but {what} has {len(batch)}: "
            f"use one camera, one per {one}, or one {one}"
        )
    return batch


def project_view_points(
    cameras: CamerasBase,
    pts_view: torch.Tensor,
    pts_world: torch.Tensor,
    R: torch.Tensor | None = None,
    T: torch.Tensor | None = None,
) -> torch.Tensor:
    """NDC x, y of points seen by ``cameras``.

    Cameras with a projection matrix project the view-space points (and map screen-space
    cameras to NDC). Cameras without one (``FishEyeCameras``: a non-linear lens model)
    project with their own ``transform_points``, from view space, or from world space with
    the ``R``/``T`` overrides when they were built with ``world_coordinates=True``.

    Args:
        pts_view, pts_world: (N, P, 3) the same points in view and world space.

    Returns:
        (N, P, 2), differentiable w.r.t. the points and the camera parameters. With a
        projection matrix, points on the camera plane (view z = 0), which project to
        infinity, get x, y = 1e6 instead (far outside any image, no gradient).
    """
    to_ndc = try_get_projection_transform(cameras, {})
    if to_ndc is None:
        if getattr(cameras, "world_coordinates", False):
            cams = cameras if R is None and T is None else cameras.with_extrinsics(R=R, T=T)
            return cams.transform_points(pts_world)[..., :2]
        return cameras.transform_points(pts_view)[..., :2]
    if not cameras.in_ndc():
        to_ndc = to_ndc.compose(cameras.get_ndc_camera_transform())
    # One homogeneous product; a point on the camera plane (w = 0, or so small that x / w
    # overflows) is divided by 1 instead, so that no inf enters the backward pass, and then
    # parked. NaN input keeps its NaN (z is NaN too) and is reported by the rasterizer.
    out = apply_matrix(pts_view, to_ndc.get_matrix())  # (as Transform3d.transform_points)
    xy, w = out[..., :2], out[..., 3:]
    with torch.no_grad():
        off = (~torch.isfinite(xy / w)).any(-1, keepdim=True) & torch.isfinite(pts_view[..., 2:3])
    xy = (xy / torch.where(off, torch.ones_like(w), w)).to(pts_view.dtype)
    return torch.where(off, torch.full_like(xy, 1e6), xy)


def project_world_points(
    cameras: CamerasBase,
    pts_world: torch.Tensor,
    R: torch.Tensor | None = None,
    T: torch.Tensor | None = None,
) -> torch.Tensor:
    """World points -> the rasterizers' space: NDC x, y and the view-space depth z.

    The same numbers as the world -> view transform followed by
    :func:`project_view_points` (PyTorch3D's order of operations), in one autograd node
    for cameras with a projection matrix: its backward is a few matrix products instead of
    autograd's pass back through every elementwise step (about 35 operations fewer per
    call, which on a GPU are as many kernel launches).

    Args:
        cameras: N cameras (or 1). pts_world: ``(N, P, 3)`` (or batch 1).
        R, T: per-call overrides of the extrinsics.

    Returns:
        ``(B, P, 3)`` (B the larger batch), the dtype of ``pts_world``; differentiable
        w.r.t. the points and the camera parameters (first order). Points on the camera
        plane get x, y = 1e6 and no x, y gradient, as in :func:`project_view_points`.
    """
    to_view = cameras.get_world_to_view_transform(R=R, T=T)
    to_ndc = try_get_projection_transform(cameras, {})
    if to_ndc is None:  # no matrix (fisheye): the camera's own projection
        pts_view = to_view.transform_points(pts_world)
        xy = project_view_points(cameras, pts_view, pts_world, R=R, T=T)
        return torch.cat((xy, pts_view[..., 2:3]), dim=-1)
    if not cameras.in_ndc():
        to_ndc = to_ndc.compose(cameras.get_ndc_camera_transform())
    return _WorldToNdc.apply(pts_world, to_view.get_matrix(), to_ndc.get_matrix())


def _to_batch(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A gradient summed over the batch that ``like`` was broadcast along, in its dtype."""
    if grad.shape[0] != like.shape[0]:
        grad = grad.sum(0, keepdim=True)
    return grad.to(like.dtype)


def _homogeneous(points: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, P, 3) -> (B, 4, P): the rows ``[p, 1]``, transposed, for ``rows^T @ grad``."""
    points = points.to(dtype)
    return torch.cat((points, torch.ones_like(points[..., :1])), -1).transpose(1, 2)


class _WorldToNdc(torch.autograd.Function):
    """``(pts (M, P, 3), view matrix (N1, 4, 4), NDC matrix (N2, 4, 4)) -> (B, P, 3)``: the
    forward is exactly meshes_to_ndc's former sequence of operations; the backward is
    written out (first order only)."""

    @staticmethod
    def forward(ctx, pts: torch.Tensor, m_view: torch.Tensor,  # noqa: D102
                m_ndc: torch.Tensor) -> torch.Tensor:
        hv = apply_matrix(pts, m_view)  # (as Transform3d.transform_points)
        w_view = hv[..., 3:]
        view = (hv[..., :3] / w_view).to(pts.dtype)
        out = apply_matrix(view, m_ndc)
        xy, w = out[..., :2], out[..., 3:]
        # (see project_view_points: a point on the camera plane is parked, finite)
        off = (~torch.isfinite(xy / w)).any(-1, keepdim=True) & torch.isfinite(view[..., 2:3])
        w = torch.where(off, torch.ones_like(w), w)
        xy = (xy / w).to(view.dtype)
        xy = torch.where(off, torch.full_like(xy, 1e6), xy)
        ctx.save_for_backward(pts, m_view, m_ndc, view, w_view, xy, w, off)
        return torch.cat((xy, view[..., 2:3]), dim=-1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        pts, m_view, m_ndc, view, w_view, xy, w, off = ctx.saved_tensors
        need_pts, need_view, need_ndc = ctx.needs_input_grad
        dt = w.dtype  # the NDC product's (promoted) dtype
        g_xy = torch.where(off, 0.0, grad[..., :2].to(dt))
        g_xy = g_xy / w
        g_w = -(g_xy * xy.to(dt)).sum(-1, keepdim=True)
        # d/d (out = [view, 1] @ m_ndc); out's third column (NDC z) is not used
        g_out = torch.cat((g_xy, torch.zeros_like(g_w), g_w), -1)
        g_pts = g_mview = g_mndc = None
        if need_ndc:
            g_mndc = _to_batch(_homogeneous(view, dt) @ g_out, m_ndc)
        if need_pts or need_view:
            g_view = g_out @ m_ndc[:, :3].to(dt).transpose(1, 2)
            g_view[..., 2:3] += grad[..., 2:3].to(dt)  # z is the view depth itself
            dv = w_view.dtype  # the view product's (promoted) dtype
            g_view = g_view.to(dv) / w_view
            g_hv = torch.cat((g_view, -(g_view * view.to(dv)).sum(-1, keepdim=True)), -1)
            if need_pts:
                g_pts = _to_batch(g_hv @ m_view[:, :3].to(dv).transpose(1, 2), pts)
            if need_view:
                g_mview = _to_batch(_homogeneous(pts, dv) @ g_hv, m_view)
        return g_pts, g_mview, g_mndc
