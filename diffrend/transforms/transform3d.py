"""A small batched 3D transform with PyTorch3D's ``Transform3d`` semantics.

Matrices act on ROW vectors: a point ``p`` (3,) becomes ``[p, 1] @ M`` followed by the
homogeneous divide, so ``M = [[R, 0], [t, 1]]`` with the translation in the last row.
``a.compose(b)`` applies ``a`` first, then ``b`` (matrix ``A @ B``).

As in PyTorch3D, composition is lazy: an object holds its own matrix ``_matrix`` and the list
``_transforms`` of transforms applied after it, and :meth:`Transform3d.get_matrix` multiplies
them out on each call (so batch mismatches surface there, not in ``compose``). Methods never
modify ``self``; they return new objects. Everything is plain torch, so gradients flow to
whatever tensors built the matrices.

Batch rule (as in PyTorch3D): a transform of batch ``N`` and points of batch ``M`` combine
when ``N == M`` or one of them is 1.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch

from .rotations import _axis_rotation
from .se3 import se3_log_map

__all__ = ["Rotate", "RotateAxisAngle", "Scale", "Transform3d", "Translate", "apply_matrix"]

Device = str | torch.device
_Scalarish = float | int | Sequence[float] | torch.Tensor
_Index = int | slice | list[int] | torch.Tensor


def _joint_batch(a: torch.Tensor, b: torch.Tensor, name: str) -> int:
    """max(M, N) of ``a`` (M, ...) and the transform's ``b`` (N, ...): equal, or one is 1."""
    if a.shape[0] != b.shape[0] and a.shape[0] != 1 and b.shape[0] != 1:
        raise ValueError(
            f"batch size of {name} ({a.shape[0]}) and of the transform ({b.shape[0]}) "
            "must be equal or one of them 1"
        )
    return max(a.shape[0], b.shape[0])


def _broadcast_bmm(a: torch.Tensor, b: torch.Tensor, name: str = "points") -> torch.Tensor:
    """(M, P, K) @ (N, K, K) -> (max(M, N), P, K), broadcasting a batch of 1."""
    n = _joint_batch(a, b, name)
    dtype = torch.promote_types(a.dtype, b.dtype)
    a = a.to(dtype).expand(n, -1, -1)
    b = b.to(dtype).expand(n, -1, -1)
    return torch.bmm(a, b)


# torch's grain size (at::internal::GRAIN_SIZE): elementwise ops on fewer elements run on the
# calling thread
_GRAIN = 32768


def apply_matrix(points: torch.Tensor, matrix: torch.Tensor, name: str = "points"
                 ) -> torch.Tensor:
    """Row points ``[p, 1]`` times 4x4 matrices, before any homogeneous divide.

    Equal, up to float rounding, to ``cat((points, 1), -1) @ matrix``, without the
    concatenated copy. On the CPU, up to 8,192 points per batch item, the product is
    summed elementwise, on the calling thread for one item: a matrix product of a few thousand
    points wakes torch's thread pool (MKL's GEMM), which cost ~0.1 ms per product with
    ``OMP_WAIT_POLICY=PASSIVE`` (set by ``import diffrend``) on 2 cores, against ~0.03 ms
    for the elementwise sum; more points use one ``baddbmm`` (3.5x faster than the product
    with the concatenated copy for 655k points).

    Args:
        points: (M, P, 3).
        matrix: (N, 4, 4), N == M or one of them 1.
        name: what ``points`` is called in the batch-size error.

    Returns:
        (max(M, N), P, 4) in the promoted dtype; differentiable w.r.t. both.
    """
    n = _joint_batch(points, matrix, name)
    dtype = torch.promote_types(points.dtype, matrix.dtype)
    points, matrix = points.to(dtype), matrix.to(dtype)
    # (chosen by the device and the points per batch item, not the batch: a batch of
    # renders and a loop over them then round alike; on a GPU, where no thread pool
    # wakes, the one product is fewer kernel launches)
    if points.device.type == "cpu" and points.shape[1] * 4 <= _GRAIN:
        # row i of the matrix scales coordinate i (unbind: one backward op for the three)
        x, y, z = points[..., None].unbind(-2)  # (M, P, 1) each
        m0, m1, m2, m3 = matrix[:, None].unbind(-2)  # (N, 1, 4) each
        # (broadcasting gives the batch max(M, N))
        return torch.addcmul(torch.addcmul(torch.addcmul(m3, x, m0), y, m1), z, m2)
    return torch.baddbmm(matrix[:, 3:4].expand(n, -1, -1), points.expand(n, -1, -1),
                         matrix[:, :3].expand(n, -1, -1))


def _make_device(device: Device) -> torch.device:
    """``torch.device`` of ``device``, with a bare ``"cuda"`` resolved to the current GPU."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    return device


class Transform3d:
    """A batch of N 3D transforms as row-vector 4x4 matrices, composed lazily.

    Args:
        dtype: dtype of the identity when ``matrix`` is None.
        device: device of the identity when ``matrix`` is None.
        matrix: ``(4, 4)`` or ``(N, 4, 4)``; used as is (a view, no copy), so the transform is
            differentiable w.r.t. it. Its dtype and device win over ``dtype``/``device``.

    Attributes:
        _matrix: ``(N, 4, 4)`` this object's own matrix (applied first).
        _transforms: transforms composed after it, applied in order by :meth:`get_matrix`.
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
        self._transforms: list[Transform3d] = []

    @property
    def device(self) -> torch.device:
        """Device of the own matrix."""
        return self._matrix.device

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the own matrix."""
        return self._matrix.dtype

    def __len__(self) -> int:
        return self.get_matrix().shape[0]

    def __getitem__(self, index: _Index) -> Transform3d:
        """Select transforms of the batch; an int keeps the batch dimension.

        ``index`` is anything that indexes a tensor's first dimension (int, slice, list of
        ints, bool or integer tensor); other types raise IndexError. The matrices are not
        cloned. ``Translate``, ``Scale`` and ``Rotate`` return their own type.
        """
        if isinstance(index, int):
            index = [index]
        return self._from_matrix(self.get_matrix()[index])

    def _from_matrix(self, matrix: torch.Tensor) -> Transform3d:
        """A transform of this kind with composed matrix ``matrix`` (used by indexing)."""
        return Transform3d(matrix=matrix)

    def get_matrix(self) -> torch.Tensor:
        """The ``(N, 4, 4)`` composed matrices: ``_matrix`` times each of ``_transforms``.

        Raises ValueError when two batch sizes differ and neither is 1. Always a new tensor
        (never ``_matrix`` itself), so writing into it leaves the transform unchanged.
        """
        if not self._transforms:
            return self._matrix.clone()
        matrix = self._matrix
        for other in self._transforms:
            matrix = _broadcast_bmm(matrix, other.get_matrix(), name="the first transform")
        return matrix

    def get_se3_log(self, eps: float = 1e-4, cos_bound: float = 1e-4) -> torch.Tensor:
        """``(N, 6)`` SE(3) logarithms ``[log_translation | log_rotation]`` of the transforms.

        See :func:`diffrend.transforms.se3_log_map`; raises ValueError when the transform is
        not rigid (last column not ``(0, 0, 0, 1)``). Differentiable.
        """
        return se3_log_map(self.get_matrix(), eps, cos_bound)

    def compose(self, *others: Transform3d) -> Transform3d:
        """Apply ``self`` first, then each of ``others`` in order; batches broadcast.

        Lazy: the matrices are multiplied by :meth:`get_matrix`.
        """
        for other in others:
            if not isinstance(other, Transform3d):
                raise ValueError(
                    f"can only compose Transform3d objects; got {type(other).__name__}"
                )
        out = Transform3d(matrix=self._matrix)
        out._transforms = self._transforms + list(others)
        return out

    def _inverse_matrix(self) -> torch.Tensor:
        """Inverse of the own ``_matrix`` (subclasses use their closed forms)."""
        return torch.linalg.inv(self._matrix)

    def inverse(self, invert_composed: bool = False) -> Transform3d:
        """The inverse transform. Differentiable.

        Args:
            invert_composed: if True, invert the composed matrix; else invert each stored
                transform (in closed form for ``Translate``/``Scale``/``Rotate``) and compose
                them in reverse order.
        """
        if invert_composed:
            return Transform3d(matrix=torch.linalg.inv(self.get_matrix()))
        own_inverse = Transform3d(matrix=self._inverse_matrix())
        if not self._transforms:
            return own_inverse
        inverses = [t.inverse() for t in reversed(self._transforms)]
        return inverses[0].compose(*inverses[1:], own_inverse)

    def stack(self, *others: Transform3d) -> Transform3d:
        """Concatenate the batches of ``self`` and ``others`` (composed matrices)."""
        for other in others:
            if not isinstance(other, Transform3d):
                raise ValueError(f"can only stack Transform3d objects; got {type(other).__name__}")
        matrices = [t.get_matrix() for t in (self, *others)]
        return Transform3d(matrix=torch.cat(matrices, 0))

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
            the matrices.
        """
        if not torch.is_tensor(points) or points.dim() not in (2, 3) or points.shape[-1] != 3:
            shape = tuple(points.shape) if torch.is_tensor(points) else type(points).__name__
            raise ValueError(f"points must have shape (P, 3) or (N, P, 3); got {shape}")
        batch = points if points.dim() == 3 else points[None]
        out = apply_matrix(batch, self.get_matrix())
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
        inv_t = torch.linalg.inv(self.get_matrix()[:, :3, :3]).transpose(1, 2)
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

    def rotate(self, R: torch.Tensor, orthogonal_tol: float = 1e-5) -> Transform3d:
        """``self`` followed by :class:`Rotate` ``(R)`` (row-vector convention)."""
        return self.compose(
            Rotate(R, dtype=self.dtype, device=self.device, orthogonal_tol=orthogonal_tol)
        )

    def rotate_axis_angle(
        self, angle: _Scalarish, axis: str = "X", degrees: bool = True
    ) -> Transform3d:
        """``self`` followed by :class:`RotateAxisAngle`."""
        return self.compose(
            RotateAxisAngle(angle, axis, degrees, dtype=self.dtype, device=self.device)
        )

    def clone(self) -> Transform3d:
        """A deep copy of the same class: own and composed matrices are cloned.

        Gradients still flow to the tensors that built the original.
        """
        out = copy.copy(self)
        out._matrix = self._matrix.clone()
        out._transforms = [t.clone() for t in self._transforms]
        return out

    def to(
        self, device: Device, copy: bool = False, dtype: torch.dtype | None = None
    ) -> Transform3d:
        """The transform on ``device`` with ``dtype`` (default: unchanged).

        Returns ``self`` when nothing changes and ``copy`` is False (like ``Tensor.to``);
        otherwise a clone with every stored matrix converted.
        """
        device = _make_device(device)
        dtype = self.dtype if dtype is None else dtype
        unchanged = _make_device(self.device) == device and self.dtype == dtype
        if unchanged and not copy:
            return self
        out = self.clone()
        if unchanged:
            return out
        out._matrix = out._matrix.to(device=device, dtype=dtype)
        out._transforms = [t.to(device, dtype=dtype) for t in out._transforms]
        return out

    def cpu(self) -> Transform3d:
        """``self.to("cpu")``."""
        return self.to("cpu")

    def cuda(self) -> Transform3d:
        """``self.to("cuda")``."""
        return self.to("cuda")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(N={self._matrix.shape[0]}, composed={len(self._transforms)}, "
            f"dtype={self.dtype}, device={self.device})"
        )


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
    ``(N,)`` tensors broadcast together. Differentiable w.r.t. the inputs. Indexing and
    :meth:`inverse` keep the closed form (indexing returns a ``Translate``).
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

    def _inverse_matrix(self) -> torch.Tensor:
        m = self._matrix
        return torch.cat((m[:, :3], torch.cat((-m[:, 3:, :3], m[:, 3:, 3:]), 2)), 1)

    def _from_matrix(self, matrix: torch.Tensor) -> Transform3d:
        return Translate(matrix[:, 3, :3])


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

    def _inverse_matrix(self) -> torch.Tensor:
        return torch.diag_embed(1.0 / torch.diagonal(self._matrix, dim1=1, dim2=2))

    def _from_matrix(self, matrix: torch.Tensor) -> Transform3d:
        return Scale(torch.diagonal(matrix, dim1=1, dim2=2)[:, :3])


class Rotate(Transform3d):
    """Rotation by matrices ``R`` acting on row vectors: ``p -> p @ R``.

    Args:
        R: ``(3, 3)`` or ``(N, 3, 3)``; not checked for orthonormality (as in PyTorch3D
            unless its debug env var is set), but :meth:`inverse` assumes it (it transposes).
            Differentiable w.r.t. ``R``.
        orthogonal_tol: accepted for PyTorch3D compatibility; unused.

    Indexing returns a ``Rotate`` (also for :class:`RotateAxisAngle`).
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

    def _inverse_matrix(self) -> torch.Tensor:
        # Orthonormal R with no translation: the 4x4 inverse is the transpose.
        return self._matrix.transpose(1, 2)

    def _from_matrix(self, matrix: torch.Tensor) -> Transform3d:
        # Also for RotateAxisAngle, whose constructor takes angles, not matrices.
        return Rotate(matrix[:, :3, :3])


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
