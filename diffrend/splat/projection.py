"""Projection of 3D Gaussians to 2D image-space Gaussians (EWA splatting), gsplat's conventions.

Cameras are OpenCV's (x right, y down, z forward), given as world-to-camera ``viewmats``
(C, 4, 4) and intrinsics ``Ks`` (C, 3, 3). A Gaussian is a mean, a wxyz quaternion (not
necessarily unit) and three linear scales; its covariance is R S S^T R^T.

The 2D covariance is J W Sigma W^T J^T (W the camera rotation, J the projection's Jacobian at
the mean), dilated by ``eps2d`` pixels^2 so that no splat is thinner than about a pixel. Pure
torch, vectorised over cameras and Gaussians, differentiable end to end.
"""

from __future__ import annotations

import torch

CAMERA_MODELS = ("pinhole", "ortho")

# gsplat's 2D extent: alpha = opacity * exp(-m^2 / 2) drops below 1/255 (the compositor's
# cut-off) at m = sqrt(2 ln 255) = 3.329 standard deviations, so nothing visible lies outside.
EXTENT_SIGMAS = 3.33

# How far outside the image a mean may sit before the perspective Jacobian stops following it:
# 30 % of the half field of view, as gsplat does, so that splats far off-screen stay bounded.
FOV_MARGIN = 0.3

MAX_RADIUS = 2.0**30


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """Rotation matrices of wxyz quaternions, normalised here.

    Args:
        quats: (..., 4) wxyz, any non-zero length (differentiable).

    Returns:
        (..., 3, 3) rotation matrices, differentiable in ``quats``.
    """
    q = quats / torch.linalg.vector_norm(quats, dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rows = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*quats.shape[:-1], 3, 3)


def covariances_3d(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """World-space covariances R S S^T R^T.

    Args:
        quats: (N, 4) wxyz quaternions (normalised here).
        scales: (N, 3) linear standard deviations along the Gaussian's axes.

    Returns:
        (N, 3, 3) symmetric covariances, differentiable in ``quats`` and ``scales``.
    """
    m = quat_to_rotmat(quats) * scales[..., None, :]  # R S: scale the columns
    return m @ m.transpose(-1, -2)


def project_gaussians(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    calc_compensations: bool = False,
    camera_model: str = "pinhole",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Projects N 3D Gaussians into C cameras (EWA splatting with gsplat's conventions).

    Args:
        means: (N, 3) world-space centres.
        quats: (N, 4) wxyz rotations, normalised here; a zero quaternion raises.
        scales: (N, 3) linear scales (standard deviations).
        viewmats: (C, 4, 4) world-to-camera matrices (OpenCV: x right, y down, z forward).
        Ks: (C, 3, 3) intrinsics [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels.
        width, height: the image size in pixels.
        eps2d: the dilation added to each 2D covariance's diagonal (pixels^2).
        near_plane, far_plane: Gaussians whose camera depth is not strictly between are culled.
        radius_clip: Gaussians whose 2D extent is at most this many pixels (on both axes) are
            culled.
        calc_compensations: also return sqrt(det(cov2d) / det(cov2d + eps2d I)), the opacity
            factor of gsplat's "antialiased" mode.
        camera_model: "pinhole" (perspective) or "ortho" (orthographic: x_pix = fx x + cx).

    Returns:
        radii: (C, N, 2) int32 half extents in pixels along x and y (ceil of 3.33 sigma per
            axis); both 0 where the Gaussian is culled (depth outside the planes, a degenerate
            2D covariance, too small, or entirely off the image).
        means2d: (C, N, 2) projected centres in pixels (pixel (x, y) has centre (x+.5, y+.5)).
        depths: (C, N) camera-space z.
        conics: (C, N, 3) (a, b, c) of the inverse dilated 2D covariance [[a, b], [b, c]].
        compensations: (C, N), or None unless ``calc_compensations``.
        All float outputs are finite for culled Gaussians too, and differentiable in
        ``means``, ``quats``, ``scales`` and ``viewmats`` (``Ks`` is treated as data but is
        differentiable as well); ``radii`` is not differentiable.

    Raises:
        ValueError: malformed shapes, a zero quaternion, or an unknown ``camera_model``.
    """
    n = means.shape[0] if means.dim() == 2 else -1
    if means.dim() != 2 or means.shape[-1] != 3:
        raise ValueError(f"means must have shape (N, 3), got {tuple(means.shape)}")
    if quats.shape != (n, 4):
        raise ValueError(f"quats must have shape ({n}, 4), got {tuple(quats.shape)}")
    if scales.shape != (n, 3):
        raise ValueError(f"scales must have shape ({n}, 3), got {tuple(scales.shape)}")
    if viewmats.dim() != 3 or viewmats.shape[1:] != (4, 4):
        raise ValueError(f"viewmats must have shape (C, 4, 4), got {tuple(viewmats.shape)}")
    c = viewmats.shape[0]
    if Ks.shape != (c, 3, 3):
        raise ValueError(f"Ks must have shape ({c}, 3, 3), got {tuple(Ks.shape)}")
    if camera_model not in CAMERA_MODELS:
        raise ValueError(f"camera_model must be one of {CAMERA_MODELS}, got {camera_model!r}")
    if n and bool((quats == 0).all(dim=-1).any()):
        raise ValueError("quats must be non-zero (a zero quaternion has no rotation)")

    # The 2D covariance is F F^T with F = J W R S (2 x 3): positive semi-definite by
    # construction, and cheaper than forming the 3 x 3 covariances.
    rs = quat_to_rotmat(quats) * scales[:, None, :]  # (N, 3, 3): R S scales R's columns
    rot = viewmats[:, :3, :3]  # (C, 3, 3)
    means_c = torch.einsum("cij,nj->cni", rot, means) + viewmats[:, None, :3, 3]  # (C, N, 3)

    depths = means_c[..., 2]
    in_depth = (depths > near_plane) & (depths < far_plane)
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # (C, 1)
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tx, ty = means_c[..., 0], means_c[..., 1]
    w_x, w_y, w_z = rot[:, None, 0], rot[:, None, 1], rot[:, None, 2]  # rows of W: (C, 1, 3)
    if camera_model == "pinhole":
        # Culled Gaussians may sit at z = 0: project them at z = 1 so that every output (and
        # every gradient) stays finite; they are masked out by radii = 0 anyway.
        tz = torch.where(in_depth, depths, torch.ones_like(depths))
        means2d = torch.stack((fx * tx / tz + cx, fy * ty / tz + cy), dim=-1)
        # The Jacobian is evaluated at a mean clamped to a little beyond the field of view.
        lim_x_pos = (width - cx) / fx + FOV_MARGIN * (0.5 * width / fx)
        lim_x_neg = cx / fx + FOV_MARGIN * (0.5 * width / fx)
        lim_y_pos = (height - cy) / fy + FOV_MARGIN * (0.5 * height / fy)
        lim_y_neg = cy / fy + FOV_MARGIN * (0.5 * height / fy)
        u = torch.minimum(torch.maximum(tx / tz, -lim_x_neg), lim_x_pos)
        v = torch.minimum(torch.maximum(ty / tz, -lim_y_neg), lim_y_pos)
        # J = [[fx/z, 0, -fx u/z], [0, fy/z, -fy v/z]], so the rows of J W are:
        jw_x = (fx / tz)[..., None] * (w_x - u[..., None] * w_z)  # (C, N, 3)
        jw_y = (fy / tz)[..., None] * (w_y - v[..., None] * w_z)
    else:
        means2d = torch.stack((fx * tx + cx, fy * ty + cy), dim=-1)
        jw_x = (fx[..., None] * w_x).expand(c, n, 3)
        jw_y = (fy[..., None] * w_y).expand(c, n, 3)
    f = torch.stack((jw_x, jw_y), dim=-2) @ rs  # (C, N, 2, 3)
    f_x, f_y = f[..., 0, :], f[..., 1, :]
    a = (f_x * f_x).sum(-1)  # cov2d = [[a, b], [b, d]]
    b = (f_x * f_y).sum(-1)
    d = (f_y * f_y).sum(-1)
    det_raw = a * d - b * b
    a, d = a + eps2d, d + eps2d
    det = a * d - b * b
    valid = in_depth & (det > 0)
    det_safe = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack((d / det_safe, -b / det_safe, a / det_safe), dim=-1)
    compensations = None
    if calc_compensations:
        ratio = torch.where(valid, det_raw / det_safe, torch.zeros_like(det_raw))
        # sqrt has an infinite slope at 0: keep the gradient finite for flat Gaussians.
        compensations = torch.sqrt(ratio.clamp_min(1e-30)) * (ratio > 0)

    # Radii: 3.33 sigma along each axis (the exact bounding box of the visible ellipse).
    ext = EXTENT_SIGMAS * torch.sqrt(torch.stack((a, d), dim=-1).detach().clamp_min(0))
    big = ext.amax(dim=-1) > radius_clip
    m2 = means2d.detach()
    on_image = (
        (m2[..., 0] + ext[..., 0] > 0)
        & (m2[..., 0] - ext[..., 0] < width)
        & (m2[..., 1] + ext[..., 1] > 0)
        & (m2[..., 1] - ext[..., 1] < height)
    )
    keep = valid & big & on_image & torch.isfinite(ext).all(dim=-1)
    # Far wider than any image, still an int32: the tile range is clamped to the image later.
    ext = torch.ceil(ext.clamp(max=MAX_RADIUS))
    radii = torch.where(keep[..., None], ext, torch.zeros_like(ext)).to(torch.int32)
    return radii, means2d, depths, conics, compensations
