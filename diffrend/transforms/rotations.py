"""Conversions between rotation representations (PyTorch3D's conventions).

Conventions:

- Rotation matrices returned here act on COLUMN vectors (``R @ p``), as in PyTorch3D's
  ``rotation_conversions``; to rotate row vectors use ``p @ R.transpose(-1, -2)``.
  (``Transform3d``/``Rotate`` and the cameras use row vectors; see ``transform3d.py``.)
- Quaternions are ``(w, x, y, z)``: real part first. "Standard" quaternions have ``w >= 0``.
- Axis-angle vectors ``v`` have direction = axis and norm = angle in radians
  (counter-clockwise, right-handed).
- Euler angles are in radians; ``convention`` is three letters from ``XYZ`` such as
  ``"XYZ"`` (Tait-Bryan) or ``"ZYZ"`` (proper Euler), and the matrix is
  ``R = R_c0(a0) @ R_c1(a1) @ R_c2(a2)``.

Every function takes any number of leading batch dimensions ``...`` and is differentiable
by autograd w.r.t. its tensor input (plain torch ops); small-angle cases use Taylor series so
gradients stay finite at exactly zero rotation.

The functions compile with ``torch.jit.script`` (as PyTorch3D's do), which is why the helpers
below avoid generators, ``zip(strict=...)`` and tuple shape arithmetic.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "axis_angle_to_matrix",
    "axis_angle_to_quaternion",
    "euler_angles_to_matrix",
    "matrix_to_axis_angle",
    "matrix_to_euler_angles",
    "matrix_to_quaternion",
    "matrix_to_rotation_6d",
    "quaternion_apply",
    "quaternion_invert",
    "quaternion_multiply",
    "quaternion_raw_multiply",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "random_quaternions",
    "random_rotation",
    "random_rotations",
    "rotation_6d_to_matrix",
    "standardize_quaternion",
]

# Below a squared angle of 1e-6 the Taylor series (to 4th order) are exact to float64 precision.
# The threshold is written inline: TorchScript cannot read module-level floats.


def _check_last_dims(x: torch.Tensor, shape: list[int], name: str) -> None:
    # isinstance is a static True under TorchScript; it catches non-tensors in eager mode.
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor")
    n = len(shape)
    if x.dim() < n or list(x.shape[x.dim() - n :]) != shape:
        want = "(..., " + ", ".join([str(s) for s in shape]) + ")"
        raise ValueError(f"{name} must have shape {want}; got {list(x.shape)}")


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt(max(x, 0)) with a zero (not infinite) gradient where x <= 0."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), 0.0)


def _hat(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrices: (..., 3) -> (..., 3, 3) with hat(v) @ u == cross(v, u)."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack((o, -z, y, z, o, -x, -y, x, o), -1).reshape(list(v.shape) + [3])


def quaternion_to_matrix(quaternions: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from quaternions.

    Args:
        quaternions: ``(..., 4)`` real part first; need not be normalised (the result is the
            rotation of the normalised quaternion).

    Returns:
        ``(..., 3, 3)`` rotation matrices (column-vector convention). Differentiable.
    """
    _check_last_dims(quaternions, [4], "quaternions")
    w, x, y, z = quaternions.unbind(-1)
    s = 2.0 / (quaternions * quaternions).sum(-1)
    entries = (
        1 - s * (y * y + z * z),
        s * (x * y - z * w),
        s * (x * z + y * w),
        s * (x * y + z * w),
        1 - s * (x * x + z * z),
        s * (y * z - x * w),
        s * (x * z - y * w),
        s * (y * z + x * w),
        1 - s * (x * x + y * y),
    )
    return torch.stack(entries, -1).reshape(list(quaternions.shape[:-1]) + [3, 3])


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Quaternions from rotation matrices.

    Each of the four components is solved for from the diagonal, and the other three follow
    from the off-diagonal entries divided by the largest one (best conditioned choice).

    Args:
        matrix: ``(..., 3, 3)`` rotation matrices (column-vector convention).

    Returns:
        ``(..., 4)`` standard quaternions (real part first, ``w >= 0``). Differentiable
        (a.e.; the choice of the pivot component is discrete).
    """
    _check_last_dims(matrix, [3, 3], "matrix")
    m = matrix.reshape(list(matrix.shape[:-2]) + [9])
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.unbind(-1)
    # 4 * (w^2, x^2, y^2, z^2) from the diagonal; abs_q = 2 * |q_i|.
    abs_q = _safe_sqrt(
        torch.stack(
            (
                1.0 + m00 + m11 + m22,
                1.0 + m00 - m11 - m22,
                1.0 - m00 + m11 - m22,
                1.0 - m00 - m11 + m22,
            ),
            -1,
        )
    )
    # Row i is (4 q_i) * q, i.e. the quaternion scaled by 4 q_i.
    scaled = torch.stack(
        (
            torch.stack((abs_q[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01), -1),
            torch.stack((m21 - m12, abs_q[..., 1] ** 2, m10 + m01, m02 + m20), -1),
            torch.stack((m02 - m20, m10 + m01, abs_q[..., 2] ** 2, m12 + m21), -1),
            torch.stack((m10 - m01, m20 + m02, m21 + m12, abs_q[..., 3] ** 2), -1),
        ),
        -2,
    )
    # The floor only guards candidates that are never picked.
    candidates = scaled / (2.0 * abs_q.clamp_min(0.1))[..., None]
    pick = abs_q.argmax(-1)[..., None, None].expand(list(abs_q.shape[:-1]) + [1, 4])
    return standardize_quaternion(torch.gather(candidates, -2, pick).squeeze(-2))


def standardize_quaternion(quaternions: torch.Tensor) -> torch.Tensor:
    """Flip quaternions so that the real part is non-negative.

    Args:
        quaternions: ``(..., 4)`` real part first.

    Returns:
        ``(..., 4)``, same rotation, ``w >= 0``. Differentiable.
    """
    _check_last_dims(quaternions, [4], "quaternions")
    return torch.where(quaternions[..., :1] < 0, -quaternions, quaternions)


def quaternion_raw_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a * b`` (no standardisation); broadcasts like torch.

    Args:
        a, b: ``(..., 4)`` quaternions, real part first.

    Returns:
        ``(..., 4)``. Differentiable w.r.t. both.
    """
    _check_last_dims(a, [4], "a")
    _check_last_dims(b, [4], "b")
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        -1,
    )


def quaternion_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Composition of rotations: the standard quaternion of ``a * b`` (apply b, then a).

    Args:
        a, b: ``(..., 4)`` quaternions, real part first; broadcast against each other.

    Returns:
        ``(..., 4)`` with ``w >= 0``. Differentiable w.r.t. both.
    """
    return standardize_quaternion(quaternion_raw_multiply(a, b))


def quaternion_invert(quaternion: torch.Tensor) -> torch.Tensor:
    """Inverse rotation of unit quaternions (the conjugate).

    Args:
        quaternion: ``(..., 4)`` unit quaternions, real part first.

    Returns:
        ``(..., 4)``. Differentiable.
    """
    _check_last_dims(quaternion, [4], "quaternion")
    return torch.cat((quaternion[..., :1], -quaternion[..., 1:]), -1)


def quaternion_apply(quaternion: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    """Rotate 3D points by unit quaternions (``q p q^-1``); broadcasts like torch.

    Args:
        quaternion: ``(..., 4)`` unit quaternions, real part first.
        point: ``(..., 3)`` points.

    Returns:
        ``(..., 3)`` rotated points. Differentiable w.r.t. both.
    """
    _check_last_dims(quaternion, [4], "quaternion")
    _check_last_dims(point, [3], "point")
    p = torch.cat((torch.zeros_like(point[..., :1]), point), -1)
    out = quaternion_raw_multiply(
        quaternion_raw_multiply(quaternion, p), quaternion_invert(quaternion)
    )
    return out[..., 1:]


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """Quaternions from axis-angle vectors.

    Args:
        axis_angle: ``(..., 3)``; direction is the axis, norm the angle in radians.

    Returns:
        ``(..., 4)`` unit quaternions ``(cos(t/2), sin(t/2) * axis)``, real part first.
        Differentiable, with finite gradients at zero angle.
    """
    _check_last_dims(axis_angle, [3], "axis_angle")
    t2 = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = t2 < 1e-6
    t = torch.sqrt(torch.where(small, torch.ones_like(t2), t2))
    w = torch.where(small, 1 - t2 / 8 + t2 * t2 / 384, torch.cos(t / 2))
    s = torch.where(small, 0.5 - t2 / 48 + t2 * t2 / 3840, torch.sin(t / 2) / t)
    return torch.cat((w, axis_angle * s), -1)


def quaternion_to_axis_angle(quaternions: torch.Tensor) -> torch.Tensor:
    """Axis-angle vectors from quaternions.

    Args:
        quaternions: ``(..., 4)`` unit quaternions, real part first.

    Returns:
        ``(..., 3)`` axis-angle vectors; the angle is in ``[0, pi]`` for standard
        quaternions (``w >= 0``). Differentiable, with finite gradients at zero angle.
    """
    _check_last_dims(quaternions, [4], "quaternions")
    xyz = quaternions[..., 1:]
    n = torch.linalg.vector_norm(xyz, dim=-1, keepdim=True)
    half = torch.atan2(n, quaternions[..., :1])
    # angle / sin(angle / 2) = 2 * half / sin(half); sinc(0) = 1 keeps it finite at zero.
    return xyz / (0.5 * torch.sinc(half / math.pi))


def axis_angle_to_matrix(axis_angle: torch.Tensor, fast: bool = False) -> torch.Tensor:
    """Rotation matrices from axis-angle vectors (Rodrigues' formula).

    Args:
        axis_angle: ``(..., 3)``; direction is the axis, norm the angle in radians.
        fast: accepted for PyTorch3D compatibility (its direct Rodrigues path); this function
            always uses Rodrigues' formula, so both values give the same result.

    Returns:
        ``(..., 3, 3)`` rotation matrices (column-vector convention). Differentiable, with
        finite gradients at zero angle.
    """
    _check_last_dims(axis_angle, [3], "axis_angle")
    t2 = (axis_angle * axis_angle).sum(-1)[..., None, None]
    small = t2 < 1e-6
    # The unused branch must stay finite too, or its 0 * inf gradient becomes NaN.
    t2_safe = torch.where(small, torch.ones_like(t2), t2)
    t = torch.sqrt(t2_safe)
    a = torch.where(small, 1 - t2 / 6 + t2 * t2 / 120, torch.sin(t) / t)
    b = torch.where(small, 0.5 - t2 / 24 + t2 * t2 / 720, (1 - torch.cos(t)) / t2_safe)
    k = _hat(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * k + b * (k @ k)


def matrix_to_axis_angle(matrix: torch.Tensor, fast: bool = False) -> torch.Tensor:
    """Axis-angle vectors from rotation matrices (via quaternions, robust near pi).

    Args:
        matrix: ``(..., 3, 3)`` rotation matrices (column-vector convention).
        fast: accepted for PyTorch3D compatibility (its Rodrigues-based path); the quaternion
            path is used either way since it is already cheap and well conditioned near pi.

    Returns:
        ``(..., 3)`` axis-angle vectors with angle in ``[0, pi]``. Differentiable.
    """
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def _axis_index(letter: str) -> int:
    if letter == "X":
        return 0
    if letter == "Y":
        return 1
    if letter == "Z":
        return 2
    raise ValueError(f"convention letters must be X, Y or Z; got '{letter}'")


def _check_convention(convention: str) -> None:
    if not isinstance(convention, str) or len(convention) != 3:
        raise ValueError(f"convention must be a string of 3 letters; got '{convention}'")
    for letter in convention:
        _axis_index(letter)
    if convention[1] == convention[0] or convention[1] == convention[2]:
        raise ValueError(f"convention must not repeat its middle axis; got '{convention}'")


def _axis_rotation(axis: str, angle: torch.Tensor) -> torch.Tensor:
    """Rotation by ``angle`` (...) about one coordinate axis: (..., 3, 3), column vectors."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == "X":
        flat = (one, zero, zero, zero, c, -s, zero, s, c)
    elif axis == "Y":
        flat = (c, zero, s, zero, one, zero, -s, zero, c)
    elif axis == "Z":
        flat = (c, -s, zero, s, c, zero, zero, zero, one)
    else:
        raise ValueError(f"axis must be 'X', 'Y' or 'Z'; got '{axis}'")
    return torch.stack(flat, -1).reshape(list(angle.shape) + [3, 3])


def euler_angles_to_matrix(euler_angles: torch.Tensor, convention: str) -> torch.Tensor:
    """Rotation matrices from Euler angles.

    Args:
        euler_angles: ``(..., 3)`` angles in radians, in the order of ``convention``.
        convention: e.g. ``"XYZ"``; the matrix is ``R_c0(a0) @ R_c1(a1) @ R_c2(a2)``.

    Returns:
        ``(..., 3, 3)`` rotation matrices (column-vector convention). Differentiable
        w.r.t. ``euler_angles``.
    """
    _check_last_dims(euler_angles, [3], "euler_angles")
    _check_convention(convention)
    angles = euler_angles.unbind(-1)
    m0 = _axis_rotation(convention[0], angles[0])
    m1 = _axis_rotation(convention[1], angles[1])
    m2 = _axis_rotation(convention[2], angles[2])
    return m0 @ m1 @ m2


def matrix_to_euler_angles(matrix: torch.Tensor, convention: str) -> torch.Tensor:
    """Euler angles from rotation matrices (inverse of :func:`euler_angles_to_matrix`).

    Args:
        matrix: ``(..., 3, 3)`` rotation matrices (column-vector convention).
        convention: e.g. ``"XYZ"`` or ``"ZYZ"``.

    Returns:
        ``(..., 3)`` angles in radians: first and last in ``(-pi, pi]``, the middle one in
        ``[-pi/2, pi/2]`` (Tait-Bryan) or ``[0, pi]`` (proper Euler). Differentiable away
        from gimbal lock.
    """
    _check_last_dims(matrix, [3, 3], "matrix")
    _check_convention(convention)
    i0 = _axis_index(convention[0])
    i1 = _axis_index(convention[1])
    i2 = _axis_index(convention[2])
    if i0 != i2:  # Tait-Bryan: i0, i1, i2 are a permutation of 0, 1, 2.
        sign = 1.0 if (i1 - i0) % 3 == 1 else -1.0  # +1 for cyclic order (XYZ, YZX, ZXY)
        middle = torch.asin((sign * matrix[..., i0, i2]).clamp(-1.0, 1.0))
        first = torch.atan2(-sign * matrix[..., i1, i2], matrix[..., i2, i2])
        last = torch.atan2(-sign * matrix[..., i0, i1], matrix[..., i0, i0])
    else:  # proper Euler: k is the axis not in the convention.
        k = 3 - i0 - i1
        sign = 1.0 if (i1 - i0) % 3 == 1 else -1.0
        middle = torch.acos(matrix[..., i0, i0].clamp(-1.0, 1.0))
        first = torch.atan2(matrix[..., i1, i0], -sign * matrix[..., k, i0])
        last = torch.atan2(matrix[..., i0, i1], sign * matrix[..., i0, k])
    return torch.stack((first, middle, last), -1)


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from the continuous 6D representation (Zhou et al., CVPR 2019).

    The two 3-vectors are Gram-Schmidt orthonormalised and become the first two ROWS.

    Args:
        d6: ``(..., 6)``.

    Returns:
        ``(..., 3, 3)`` rotation matrices. Differentiable.
    """
    _check_last_dims(d6, [6], "d6")
    b1 = F.normalize(d6[..., :3], dim=-1)
    a2 = d6[..., 3:]
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), -2)


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """6D representation of rotation matrices: their first two rows, flattened.

    Args:
        matrix: ``(..., 3, 3)``.

    Returns:
        ``(..., 6)``, a new tensor (never a view of ``matrix``). Differentiable.
    """
    _check_last_dims(matrix, [3, 3], "matrix")
    return matrix[..., :2, :].clone().reshape(list(matrix.shape[:-2]) + [6])


def random_quaternions(
    n: int,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Uniformly distributed random rotations as standard unit quaternions.

    Args:
        n: number of quaternions.
        dtype, device: of the result (torch defaults when None).
        generator: optional random generator.

    Returns:
        ``(n, 4)`` unit quaternions with ``w >= 0``. Not differentiable (random).
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int; got {n}")
    # TorchScript's randn takes a torch.device only.
    if isinstance(device, str):
        device = torch.device(device)
    q = torch.randn([n, 4], dtype=dtype, device=device, generator=generator)
    return standardize_quaternion(F.normalize(q, dim=-1))


def random_rotations(
    n: int,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Uniformly distributed random rotation matrices.

    Args:
        n: number of matrices.
        dtype, device: of the result (torch defaults when None).
        generator: optional random generator.

    Returns:
        ``(n, 3, 3)`` rotation matrices. Not differentiable (random).
    """
    return quaternion_to_matrix(random_quaternions(n, dtype, device, generator))


def random_rotation(
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One uniformly distributed random rotation matrix.

    Args:
        dtype, device: of the result (torch defaults when None).
        generator: optional random generator.

    Returns:
        ``(3, 3)`` rotation matrix. Not differentiable (random).
    """
    return random_rotations(1, dtype, device, generator)[0]
