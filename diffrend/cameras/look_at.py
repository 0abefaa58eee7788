"""Look-at camera placement (PyTorch3D's ``look_at_view_transform`` and helpers).

Inputs broadcast against each other: scalars and ``(N,)`` values for distances/angles,
``(3,)``, ``(1, 3)`` or ``(N, 3)`` for points/directions; batches of 1 broadcast to N.
Results are plain torch, differentiable w.r.t. every tensor input.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .base import BatchFloat, Device, batch_tensors, common_dtype

__all__ = ["camera_position_from_spherical_angles", "look_at_rotation", "look_at_view_transform"]

Vec3 = Any  # (3,), ((x, y, z),), (N, 3) sequences or tensors

_NORMALIZE_EPS = 1e-5  # PyTorch3D's eps for the axis normalisations
_PARALLEL_TOL = 5e-3  # |x axis| below this: `up` is parallel to the viewing direction


def camera_position_from_spherical_angles(
    distance: BatchFloat,
    elevation: BatchFloat,
    azimuth: BatchFloat,
    degrees: bool = True,
    device: Device = "cpu",
) -> torch.Tensor:
    """Camera positions on a sphere around the origin.

    ``x = d cos(elev) sin(azim)``, ``y = d sin(elev)``, ``z = d cos(elev) cos(azim)``.

    Args:
        distance, elevation, azimuth: scalars or ``(N,)``; angles in degrees if ``degrees``.
        degrees: angle unit.
        device: device of the result.

    Returns:
        ``(N, 3)`` positions; differentiable w.r.t. tensor inputs.
    """
    dtype = common_dtype(distance, elevation, azimuth)
    _, t = batch_tensors(
        dtype, device, distance=(distance, ()), elevation=(elevation, ()), azimuth=(azimuth, ())
    )
    return _spherical(t["distance"], t["elevation"], t["azimuth"], degrees)


def _spherical(
    dist: torch.Tensor, elev: torch.Tensor, azim: torch.Tensor, degrees: bool
) -> torch.Tensor:
    if degrees:
        elev = elev * (math.pi / 180.0)
        azim = azim * (math.pi / 180.0)
    x = dist * torch.cos(elev) * torch.sin(azim)
    y = dist * torch.sin(elev)
    z = dist * torch.cos(elev) * torch.cos(azim)
    return torch.stack((x, y, z), 1)


def _look_at_rotation(eye: torch.Tensor, at: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """(N, 3) each, already broadcast -> (N, 3, 3) world-to-view rotations."""
    forward = at - eye
    if not bool((torch.linalg.vector_norm(forward, dim=1) > 0).all()):
        raise ValueError("camera position and `at` must differ")
    z = F.normalize(forward, eps=_NORMALIZE_EPS, dim=1)
    cross = torch.cross(up, z, dim=1)
    x = F.normalize(cross, eps=_NORMALIZE_EPS, dim=1)
    parallel = (x.abs() <= _PARALLEL_TOL).all(1, keepdim=True)
    if bool(parallel.any()):
        # `up` is (nearly) parallel to the viewing direction. While up x z is not exactly
        # zero its direction is still defined, only the eps-clamped normalisation shrank it:
        # use it at full length (PyTorch3D's fallback gives the same axis). When it is zero
        # the roll is undefined: use the world axis least aligned with z as the up vector
        # (PyTorch3D returns a degenerate matrix there).
        norm = torch.linalg.vector_norm(cross, dim=1, keepdim=True)
        exact = norm > 0
        x_dir = cross / torch.where(exact, norm, torch.ones_like(norm))
        axis = F.one_hot(z.abs().argmin(1), 3).to(z.dtype)
        x_axis = F.normalize(torch.cross(axis, z, dim=1), eps=_NORMALIZE_EPS, dim=1)
        x = torch.where(parallel, torch.where(exact, x_dir, x_axis), x)
    y = F.normalize(torch.cross(z, x, dim=1), eps=_NORMALIZE_EPS, dim=1)
    # Columns are the camera axes in world coordinates, so X_view = X_world @ R.
    return torch.stack((x, y, z), 2)


def look_at_rotation(
    camera_position: Vec3,
    at: Vec3 = ((0.0, 0.0, 0.0),),
    up: Vec3 = ((0.0, 1.0, 0.0),),
    device: Device = "cpu",
) -> torch.Tensor:
    """World-to-view rotations of cameras at ``camera_position`` looking at ``at``.

    The view z axis points from the camera to ``at``; view x is ``up x z`` (so +X is the
    camera's left, PyTorch3D's convention); view y completes a right-handed frame.

    Args:
        camera_position, at, up: ``(3,)``, ``(1, 3)`` or ``(N, 3)``, broadcast together.
        device: device of the result.

    Returns:
        ``R`` ``(N, 3, 3)`` with ``X_view = X_world @ R + T``; differentiable.

    Raises:
        ValueError: on bad shapes, non-finite values or a camera placed at ``at``.
    """
    dtype = common_dtype(camera_position, at, up)
    _, t = batch_tensors(
        dtype, device, camera_position=(camera_position, (3,)), at=(at, (3,)), up=(up, (3,))
    )
    return _look_at_rotation(t["camera_position"], t["at"], t["up"])


def look_at_view_transform(
    dist: BatchFloat = 1.0,
    elev: BatchFloat = 0.0,
    azim: BatchFloat = 0.0,
    degrees: bool = True,
    eye: Vec3 | None = None,
    at: Vec3 = ((0.0, 0.0, 0.0),),
    up: Vec3 = ((0.0, 1.0, 0.0),),
    device: Device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``R, T`` of cameras looking at ``at``, with ``X_view = X_world @ R + T``.

    The camera sits at ``at + (d cos(elev) sin(azim), d sin(elev), d cos(elev) cos(azim))``,
    or at ``eye`` when given (then dist/elev/azim are ignored).

    Args:
        dist, elev, azim: scalars or ``(N,)``; angles in degrees if ``degrees``. ``elev`` is the
            angle above the y = 0 plane, ``azim`` the angle from +Z towards +X.
        degrees: angle unit.
        eye: optional camera positions ``(3,)``, ``(1, 3)`` or ``(N, 3)``.
        at: look-at points, ``(3,)``, ``(1, 3)`` or ``(N, 3)``.
        up: world up directions, same shapes.
        device: device of the results.

    Returns:
        ``R`` ``(N, 3, 3)`` and ``T`` ``(N, 3)``; differentiable w.r.t. every tensor input.
    """
    if eye is not None:
        dtype = common_dtype(eye, at, up)
        _, t = batch_tensors(dtype, device, eye=(eye, (3,)), at=(at, (3,)), up=(up, (3,)))
        eye_t = t["eye"]
    else:
        dtype = common_dtype(dist, elev, azim, at, up)
        _, t = batch_tensors(
            dtype,
            device,
            dist=(dist, ()),
            elev=(elev, ()),
            azim=(azim, ()),
            at=(at, (3,)),
            up=(up, (3,)),
        )
        eye_t = _spherical(t["dist"], t["elev"], t["azim"], degrees) + t["at"]
    R = _look_at_rotation(eye_t, t["at"], t["up"])
    T = -(eye_t[:, None, :] @ R)[:, 0]
    return R, T
