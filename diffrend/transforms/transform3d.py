"""A small batched 3D transform with PyTorch3D's ``Transform3d`` semantics.

Matrices act on ROW vectors: a point ``p`` (3,) becomes ``[p, 1] @ M`` followed by the
homogeneous divide, so ``M = [[R, 0], [t, 1]]`` with the translation in the last row.
``a.compose(b)`` applies ``a`` first, then ``b`` (matrix ``A @ B``).

Unlike PyTorch3D the composed matrix is stored eagerly (no list of pending transforms) and
an object never changes after construction; every method returns a new object. Everything is
plain torch, so gradients flow to whatever tensors built the matrix.

Batch rule (as in PyTorch3D): a transform of batch ``N`` and points of batch ``M`` combine
when ``N == M`` or one of them is 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .rotations import _axis_rotation

__all__ = ["Rotate", "RotateAxisAngle", "Scale", "Transform3d", "Translate"]

Device = str | torch.device
_Scalarish = float | int | Sequence[float] | torch.Tensor


def _broadcast_bmm(a: torch.Tensor, b: torch.Tensor, name: str = "points") -> torch.Tensor:
    """(M, P, K) @ (N, K, K) -> (max(M, N), P, K), broadcasting a batch of 1."""
    if a.shape[0] != b.shape[0] and a.shape[0] != 1 and b.shape[0] != 1:
        raise ValueError(
            f"batch size of {name} ({a.shape[0]}) and of the transform ({b.shape[0]}) "
            "must be equal or one of them 1"
        )
    n = max(a.shape[0], b.shape[0])
    dtype = torch.promote_types(a.dtype, b.dtype)
    a = a.to(dtype).expand(n, -1, -1)
    b = b.to(dtype).expand(n, -1, -1)
    return torch.bmm(a, b)


class Transform3d:
    """A batch of N 3D transforms stored as row-vector 4x4 matrices ``(N, 4, 4)``.

    Args:
        dtype: dtype of the identity when ``matrix`` is None.
        device: device of the identity when ``matrix`` is None.
        matrix: ``(4, 4)`` or ``(N, 4, 4)``; used as is (no copy), so the transform is
            differentiable w.r.t. it. Its dtype and device win over ``dtype``/``device``.
    """

    def __init__(
        self,
        dtype: torch.dtype = torch.float32,
        device: Device = "cpu",
        matrix: torch.Tensor | None = None,
    ) -> None:
        if matrix is None:
            matrix = torch.eye(4, dtype=dtype, device=device)[None]
        if not torch.is_tensor(matrix):
            raise ValueError(f"matrix must be a torch.Tensor; got {type(matrix).__name__}")
        if matrix.dim() not in (2, 3) or tuple(matrix.shape[-2:]) != (4, 4):
            raise ValueError(
                f"matrix must have shape (4, 4) or (N, 4, 4); got {tuple(matrix.shape)}"
            )
        self._matrix = matrix.reshape(-1, 4, 4)

    @property
    def device(self) -> torch.device:
        """Device of the matrix."""
        return self._matrix.device

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the matrix."""
        return self._matrix.dtype

    def __len__(self) -> int:
        return self._matrix.shape[0]

    def __getitem__(self, index: int | slice | list[int] | torch.Tensor) -> Transform3d:
        """Select transforms of the batch (an int keeps the batch dimension)."""
        if isinstance(index, int):
            index = [index]
        return Transform3d(matrix=self._matrix[index])

    def get_matrix(self) -> torch.Tensor:
        """The ``(N, 4, 4)`` row-vector matrices. Do not modify the result in place."""
        return self._matrix

    def compose(self, *others: Transform3d) -> Transform3d:
        """Apply ``self`` first, then each of ``others`` in order; batches broadcast."""
        matrix = self._matrix
        for other in others:
            if not isinstance(other, Transform3d):
                raise ValueError(
                    f"can only compose Transform3d objects; got {type(other).__name__}"
                )
            matrix = _broadcast_bmm(matrix, other.get_matrix(), name="the first transform")
        return Transform3d(matrix=matrix)

    def inverse(self, invert_composed: bool = False) -> Transform3d:
        """The inverse transform (matrix inverse; differentiable).

        ``invert_composed`` is accepted for PyTorch3D compatibility and has no effect, since the
        matrix is always stored composed.
        """
        return Transform3d(matrix=torch.linalg.inv(self._matrix))

    def stack(self, *others: Transform3d) -> Transform3d:
        """Concatenate the batches of ``self`` and ``others``."""
        return Transform3d(matrix=torch.cat([self._matrix] + [o.get_matrix() for o in others], 0))

    def transform_points(self, points: torch.Tensor, eps: float | None = None) -> torch.Tensor:
        """Transform points, with the homogeneous divide.

        Args:
            points: ``(P, 3)`` or ``(M, P, 3)``.
            eps: if not None, the homogeneous coordinate ``w`` is replaced by
                ``(sign(w) + (w == 0)) * max(|w|, eps)`` before dividing (so ``w == 0``
                becomes ``+eps``), which keeps gradients finite near the camera plane.

        Returns:
            ``(P, 3)`` when the transform has batch 1 and points are 2D, else
            ``(max(N, M), P, 3)``; dtype of ``points``. Differentiable w.r.t. points and
            the matrix.
        """
        if not torch.is_tensor(points) or points.dim() not in (2, 3) or points.shape[-1] != 3:
            shape = tuple(points.shape) if torch.is_tensor(points) else type(points).__name__
            raise ValueError(f"points must have shape (P, 3) or (N, P, 3); got {shape}")
        batch = points if points.dim() == 3 else points[None]
        homo = torch.cat((batch, torch.ones_like(batch[..., :1])), -1)
        out = _broadcast_bmm(homo, self._matrix)
        denom = out[..., 3:]
        if eps is not None:
            sign = denom.sign() + (denom == 0).to(denom.dtype)
            denom = sign * denom.abs().clamp_min(eps)
        out = (out[..., :3] / denom).to(points.dtype)
        if out.shape[0] == 1 and points.dim() == 2:
            out = out[0]
        return out

    def transform_normals(self, normals: torch.Tensor) -> torch.Tensor:
        """Transform normals by the inverse transpose of the 3x3 block (no normalisation).

        Args:
            normals: ``(P, 3)`` or ``(M, P, 3)``.

        Returns:
            Same shape rules as :meth:`transform_points`. Differentiable.
        """
        if not torch.is_tensor(normals) or normals.dim() not in (2, 3) or normals.shape[-1] != 3:
            shape = tuple(normals.shape) if torch.is_tensor(normals) else type(normals).__name__
            raise ValueError(f"normals must have shape (P, 3) or (N, P, 3); got {shape}")
        inv_t = torch.linalg.inv(self._matrix[:, :3, :3]).transpose(1, 2)
        batch = normals if normals.dim() == 3 else normals[None]
        out = _broadcast_bmm(batch, inv_t, name="normals").to(normals.dtype)
        if out.shape[0] == 1 and normals.dim() == 2:
            out = out[0]
        return out

    def translate(
        self, x: _Scalarish, y: _Scalarish | None = None, z: _Scalarish | None = None
    ) -> Transform3d:
        """``self`` followed by :class:`Translate` ``(x, y, z)``."""
        return self.compose(Translate(x, y, z, dtype=self.dtype, device=self.device))

    def scale(
        self, x: _Scalarish, y: _Scalarish | None = None, z: _Scalarish | None = None
    ) -> Transform3d:
        """``self`` followed by :class:`Scale` ``(x, y, z)``."""
        return self.compose(Scale(x, y, z, dtype=self.dtype, device=self.device))

    def rotate(self, R: torch.Tensor) -> Transform3d:
        """``self`` followed by :class:`Rotate` ``(R)`` (row-vector convention)."""
        return self.compose(Rotate(R, dtype=self.dtype, device=self.device))

    def rotate_axis_angle(
        self, angle: _Scalarish, axis: str = "X", degrees: bool = True
    ) -> Transform3d:
        """``self`` followed by :class:`RotateAxisAngle`."""
        return self.compose(
            RotateAxisAngle(angle, axis, degrees, dtype=self.dtype, device=self.device)
        )

    def clone(self) -> Transform3d:
        """A copy with a cloned matrix (gradients still flow to the original)."""
        return Transform3d(matrix=self._matrix.clone())

    def to(
        self, device: Device, copy: bool = False, dtype: torch.dtype | None = None
    ) -> Transform3d:
        """The transform on ``device`` (and ``dtype``); a new object, ``self`` is unchanged."""
        matrix = self._matrix.to(device=device, dtype=dtype or self.dtype, copy=copy)
        return Transform3d(matrix=matrix)

    def cpu(self) -> Transform3d:
        """``self.to("cpu")``."""
        return self.to("cpu")

    def cuda(self) -> Transform3d:
        """``self.to("cuda")``."""
        return self.to("cuda")

    def __repr__(self) -> str:
        return f"Transform3d(N={len(self)}, dtype={self.dtype}, device={self.device})"


def _resolve(
    value: object, dtype: torch.dtype | None, device: Device | None
) -> tuple[torch.dtype, Device]:
    """dtype/device for a constructor: explicit ones win, else those of a tensor input."""
    if torch.is_tensor(value):
        dtype = dtype or (value.dtype if value.is_floating_point() else torch.float32)
        device = device or value.device
    return dtype or torch.float32, device or "cpu"


def _coord(c: _Scalarish, dtype: torch.dtype, device: Device, name: str) -> torch.Tensor:
    t = torch.as_tensor(c, dtype=dtype, device=device)
    if t.dim() > 1:
        raise ValueError(
            f"{name} components must be scalars or 1D tensors; got shape {tuple(t.shape)}"
        )
    return t.reshape(-1)


def _xyz(
    x: _Scalarish,
    y: _Scalarish | None,
    z: _Scalarish | None,
    dtype: torch.dtype,
    device: Device,
    name: str,
    singleton: bool,
) -> torch.Tensor:
    """Parse PyTorch3D's (N, 3) / (x, y, z) / single-value inputs into an (N, 3) tensor."""
    if torch.is_tensor(x) and x.dim() == 2:
        if x.shape[1] != 3 or y is not None or z is not None:
            raise ValueError(
                f"{name}: a 2D input must be (N, 3) with y and z None; got {tuple(x.shape)}"
            )
        return x.to(dtype=dtype, device=device)
    if y is None and z is None:
        if not singleton:
            raise ValueError(f"{name}: give an (N, 3) tensor or all of x, y, z")
        y = z = x
    if y is None or z is None:
        raise ValueError(f"{name}: give both y and z, or neither")
    cols = [_coord(c, dtype, device, name) for c in (x, y, z)]
    n = max(c.shape[0] for c in cols)
    if any(c.shape[0] not in (1, n) for c in cols):
        raise ValueError(f"{name}: non-broadcastable sizes {[c.shape[0] for c in cols]}")
    return torch.stack([c.expand(n) for c in cols], 1)


class Translate(Transform3d):
    """Translation ``p -> p + t``.

    ``Translate(xyz)`` with ``xyz`` ``(N, 3)``, or ``Translate(x, y, z)`` with scalars or
    ``(N,)`` tensors broadcast together. Differentiable w.r.t. the inputs.
    """

    def __init__(
        self,
        x: _Scalarish,
        y: _Scalarish | None = None,
        z: _Scalarish | None = None,
        dtype: torch.dtype | None = None,
        device: Device | None = None,
    ) -> None:
        dtype, device = _resolve(x, dtype, device)
        t = _xyz(x, y, z, dtype, device, "Translate", singleton=False)
        eye = torch.eye(4, dtype=dtype, device=device)[None].expand(t.shape[0], 4, 4)
        top = eye[:, :3]
        bottom = torch.cat((t, torch.ones_like(t[:, :1])), 1)[:, None]
        super().__init__(matrix=torch.cat((top, bottom), 1))


class Scale(Transform3d):
    """Per-axis scaling ``p -> p * s``.

    ``Scale(s)`` with a scalar, ``(N,)`` (uniform) or ``(N, 3)``; or ``Scale(x, y, z)``.
    Differentiable w.r.t. the inputs.
    """

    def __init__(
        self,
        x: _Scalarish,
        y: _Scalarish | None = None,
        z: _Scalarish | None = None,
        dtype: torch.dtype | None = None,
        device: Device | None = None,
    ) -> None:
        dtype, device = _resolve(x, dtype, device)
        s = _xyz(x, y, z, dtype, device, "Scale", singleton=True)
        super().__init__(matrix=torch.diag_embed(torch.cat((s, torch.ones_like(s[:, :1])), 1)))


class Rotate(Transform3d):
    """Rotation by matrices ``R`` acting on row vectors: ``p -> p @ R``.

    Args:
        R: ``(3, 3)`` or ``(N, 3, 3)``; not checked for orthonormality (as in PyTorch3D
            unless its debug env var is set). Differentiable w.r.t. ``R``.
        orthogonal_tol: accepted for PyTorch3D compatibility; unused.
    """

    def __init__(
        self,
        R: torch.Tensor,
        dtype: torch.dtype | None = None,
        device: Device | None = None,
        orthogonal_tol: float = 1e-5,
    ) -> None:
        if not torch.is_tensor(R) or R.dim() not in (2, 3) or tuple(R.shape[-2:]) != (3, 3):
            shape = tuple(R.shape) if torch.is_tensor(R) else type(R).__name__
            raise ValueError(f"R must have shape (3, 3) or (N, 3, 3); got {shape}")
        dtype, device = _resolve(R, dtype, device)
        R = R.reshape(-1, 3, 3).to(dtype=dtype, device=device)
        zeros = R.new_zeros(R.shape[0], 3, 1)
        top = torch.cat((R, zeros), 2)
        bottom = torch.eye(4, dtype=dtype, device=device)[3:].expand(R.shape[0], 1, 4)
        super().__init__(matrix=torch.cat((top, bottom), 1))


class RotateAxisAngle(Rotate):
    """Rotation about a coordinate axis, counter-clockwise for positive angles.

    Args:
        angle: scalar or ``(N,)``; degrees if ``degrees`` else radians. Differentiable.
        axis: ``"X"``, ``"Y"`` or ``"Z"`` (same for the whole batch).
    """

    def __init__(
        self,
        angle: _Scalarish,
        axis: str = "X",
        degrees: bool = True,
        dtype: torch.dtype | None = None,
        device: Device | None = None,
    ) -> None:
        if not isinstance(axis, str) or axis.upper() not in ("X", "Y", "Z"):
            raise ValueError(f"axis must be one of 'X', 'Y', 'Z'; got {axis!r}")
        dtype, device = _resolve(angle, dtype, device)
        a = _coord(angle, dtype, device, "angle")
        if degrees:
            a = a * (math.pi / 180.0)
        # _axis_rotation is for column vectors; transpose for row vectors.
        super().__init__(
            _axis_rotation(axis.upper(), a).transpose(1, 2), dtype=dtype, device=device
        )
