"""Camera helpers: batching camera objects, turning cameras on the spot, eye/at/up recovery."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..transforms.transform3d import Transform3d
from .base import CamerasBase, _shape

__all__ = ["camera_to_eye_at_up", "join_cameras_as_batch", "rotate_on_spot"]


def camera_to_eye_at_up(
    world_to_view_transform: Transform3d,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eye, look-at point and up vector of cameras, inverting ``look_at_view_transform``.

    ``look_at_view_transform(eye=eye, at=at, up=up)`` with the results gives back the same
    world-to-view transform.

    Args:
        world_to_view_transform: Transform3d of N cameras' extrinsics (e.g.
            ``cameras.get_world_to_view_transform()``).

    Returns:
        ``eye`` ``(N, 3)`` camera centres, ``at`` ``(N, 3)`` points one unit in front of the
        cameras, ``up`` ``(N, 3)`` unit vectors along the cameras' +Y, all in world space;
        differentiable w.r.t. the transform's matrix.
    """
    if not isinstance(world_to_view_transform, Transform3d):
        raise TypeError(
            "world_to_view_transform must be a Transform3d; "
            f"got {type(world_to_view_transform).__name__}"
        )
    view_to_world = world_to_view_transform.inverse()
    m = view_to_world.get_matrix()
    # In view space the camera sits at the origin looking along +Z with +Y up.
    local = torch.tensor(
        [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=m.dtype, device=m.device
    )
    world = view_to_world.transform_points(local).reshape(-1, 3, 3)
    eye, at, up_point = world.unbind(1)
    return eye, at, up_point - eye


def rotate_on_spot(
    R: torch.Tensor, T: torch.Tensor, rotation: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn cameras in place: same centre, world-to-view rotation ``R @ rotation^T``.

    With row vectors, ``rotation`` (e.g. from ``axis_angle_to_matrix``) turns the view: a
    rotation about +Y by a negative angle looks left, about +X by a negative angle looks
    down, about +Z rolls the camera.

    Args:
        R: ``(3, 3)`` or ``(N, 3, 3)`` world-to-view rotations.
        T: ``(3,)`` or ``(N, 3)`` translations (``X_view = X_world @ R + T``).
        rotation: ``(3, 3)`` or ``(n, 3, 3)``; batches of 1 broadcast, otherwise n == N.

    Returns:
        ``R`` ``(max(N, n), 3, 3)`` and ``T`` ``(max(N, n), 3)``; differentiable.
    """
    R = R[None] if torch.is_tensor(R) and R.dim() == 2 else R
    T = T[None] if torch.is_tensor(T) and T.dim() == 1 else T
    rotation = rotation[None] if torch.is_tensor(rotation) and rotation.dim() == 2 else rotation
    for name, value, trailing in (("R", R, (3, 3)), ("T", T, (3,)), ("rotation", rotation, (3, 3))):
        if not torch.is_tensor(value) or tuple(value.shape[1:]) != trailing:
            want = "(N" + "".join(f", {s}" for s in trailing) + ")"
            raise ValueError(f"{name} must have shape {want}; got {_shape(value)}")
    n = max(R.shape[0], T.shape[0], rotation.shape[0])
    if any(b not in (1, n) for b in (R.shape[0], T.shape[0], rotation.shape[0])):
        raise ValueError(
            f"batch sizes must be equal or 1; got R {R.shape[0]}, T {T.shape[0]}, "
            f"rotation {rotation.shape[0]}"
        )
    rot_t = rotation.transpose(1, 2)
    new_R = R @ rot_t
    # The centre C = -T @ R^T is unchanged: T' = -C @ R' = T @ rotation^T.
    new_T = (T[:, None, :] @ rot_t)[:, 0]
    return new_R.expand(n, 3, 3), new_T.expand(n, 3)


def join_cameras_as_batch(cameras_list: Sequence[CamerasBase]) -> CamerasBase:
    """One camera object holding all the cameras of the list, in order.

    Args:
        cameras_list: non-empty sequence of cameras of one type, on one device, with equal
            non-tensor settings (``in_ndc``, ``degrees``, distortion switches, ...) and the
            same optional parameters present (``K``, ``image_size``).

    Returns:
        Cameras of that type with batch ``sum(len(c))``; tensors are concatenated along the
        batch dimension (differentiable w.r.t. the inputs' tensors).

    Raises:
        ValueError: when the cameras cannot be joined (the message says why).
    """
    cams = list(cameras_list)
    if not cams:
        raise ValueError("cameras_list must not be empty")
    if not all(isinstance(c, CamerasBase) for c in cams):
        raise ValueError("cameras in cameras_list must inherit from CamerasBase")
    c0 = cams[0]
    if not all(type(c) is type(c0) for c in cams[1:]):
        raise ValueError("All cameras must be of the same type")
    if not all(c.device == c0.device for c in cams[1:]):
        raise ValueError("All cameras in the batch must be on the same device")
    params = [c._params() for c in cams]
    joined = {}
    for key, first in params[0].items():
        values = [p[key] for p in params]
        # Name the attribute as it is stored (in_ndc lives in _in_ndc), as PyTorch3D does.
        attr = key if key in c0.__dict__ else f"_{key}"
        present = [v is not None for v in values]
        if not any(present):
            joined[key] = None
        elif not all(present):
            raise ValueError(f"Attribute {attr} is inconsistently present")
        elif torch.is_tensor(first):
            if any(tuple(v.shape[1:]) != tuple(first.shape[1:]) for v in values):
                raise ValueError(
                    f"Attribute {attr} has different shapes: {[tuple(v.shape) for v in values]}"
                )
            joined[key] = torch.cat(values, 0)
        elif all(v == first for v in values):
            joined[key] = first
        else:
            raise ValueError(f"Attribute {attr} is not constant across inputs")
    return type(c0)(**joined, device=c0.device)
