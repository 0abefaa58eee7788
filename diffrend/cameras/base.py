"""CamerasBase: what every camera shares, with PyTorch3D's conventions.

Spaces (PyTorch3D's): world and view are right-handed with +Y up; ``X_view = X_world @ R + T``
(row vectors); the camera looks along +Z in view space. NDC has +X left, +Y up, and the
shorter image side spans [-1, 1]. Screen space has +X right, +Y down, origin at the top-left
corner of the image, in pixels.

A camera is a batch of N cameras. The constructor converts every argument to a tensor, adds a
batch dimension to unbatched values and broadcasts batches of 1 to N; every result is plain
torch, so it is differentiable w.r.t. whichever constructor tensors require grad (R, T, fov,
focal length, ...). As in PyTorch3D, the projection parameters can be overridden per call by
keyword (``get_projection_transform(fov=...)``, ``transform_points(pts, R=..., znear=...)``;
other keywords are ignored, so renderer keyword arguments can be passed through), and
extrinsics passed to ``get_full_projection_transform`` (and so to ``transform_points*`` and
``unproject_points``) are stored on the camera: later steps of a render, such as lighting, then
see the same camera. ``get_world_to_view_transform``/``get_camera_center`` use per-call
extrinsics without storing them (PyTorch3D stores there too). A user-given 4x4 projection
matrix ``K`` (column-vector convention, PyTorch3D's) replaces the parametric projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..transforms.transform3d import Transform3d

__all__ = [
    "CamerasBase",
    "get_ndc_to_screen_transform",
    "get_screen_to_ndc_transform",
    "get_world_to_view_transform",
    "try_get_projection_transform",
]

Device = str | torch.device
BatchFloat = float | Sequence[float] | torch.Tensor
ImageSize = Sequence[int] | Sequence[Sequence[int]] | torch.Tensor

_R0 = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
_R_DEFAULT = (_R0,)  # (1, 3, 3)
_T_DEFAULT = ((0.0, 0.0, 0.0),)  # (1, 3)


# ----------------------------------------------------------------------------- input handling


def common_dtype(*values: Any) -> torch.dtype:
    """The promoted dtype of the floating tensors among ``values``; float32 if there are none."""
    dtype = None
    for v in values:
        if torch.is_tensor(v) and v.is_floating_point():
            dtype = v.dtype if dtype is None else torch.promote_types(dtype, v.dtype)
    return dtype or torch.float32


def batch_tensors(
    dtype: torch.dtype, device: Device, **specs: tuple[Any, tuple[int, ...]]
) -> tuple[int, dict[str, torch.Tensor]]:
    """Convert named values to tensors of shape ``(N, *trailing)`` with one shared N.

    ``specs[name] = (value, trailing)``: the value may be a Python scalar/sequence, numpy
    array or tensor, of shape ``trailing`` (a batch dimension is added) or
    ``(B, *trailing)``. Batches of 1 broadcast to the largest; values must be finite.
    Tensors keep their autograd graph (only dtype/device conversions are applied).

    Raises:
        ValueError naming the argument on a wrong shape, a batch mismatch or a non-finite value.
    """
    out: dict[str, torch.Tensor] = {}
    for name, (value, trailing) in specs.items():
        try:
            t = torch.as_tensor(value, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} could not be converted to a tensor: {err}") from None
        if t.dim() == len(trailing):
            t = t[None]
        if t.dim() != len(trailing) + 1 or tuple(t.shape[1:]) != trailing:
            want = "(N" + "".join(f", {s}" for s in trailing) + ")"
            raise ValueError(f"{name} must have shape {want}; got {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} must be finite")
        out[name] = t
    sizes = {name: t.shape[0] for name, t in out.items()}
    n = max(sizes.values(), default=1)
    bad = {name: s for name, s in sizes.items() if s not in (1, n)}
    if bad:
        raise ValueError(f"batch sizes must be equal or 1; got {sizes}")
    return n, {name: t.expand((n,) + tuple(t.shape[1:])) for name, t in out.items()}


def _check_extrinsics(R: torch.Tensor, T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate (N, 3, 3) / (N, 3) tensors and broadcast a batch of 1."""
    if not torch.is_tensor(R) or R.dim() != 3 or tuple(R.shape[1:]) != (3, 3):
        raise ValueError(f"R must be a tensor of shape (N, 3, 3); got {_shape(R)}")
    if not torch.is_tensor(T) or T.dim() != 2 or T.shape[1] != 3:
        raise ValueError(f"T must be a tensor of shape (N, 3); got {_shape(T)}")
    n = max(R.shape[0], T.shape[0])
    if R.shape[0] not in (1, n) or T.shape[0] not in (1, n):
        raise ValueError(f"R and T batch sizes must match; got {R.shape[0]} and {T.shape[0]}")
    return R.expand(n, 3, 3), T.expand(n, 3)


def _shape(x: Any) -> Any:
    return tuple(x.shape) if torch.is_tensor(x) else type(x).__name__


def matrix_from_k(
    entries: dict[tuple[int, int], torch.Tensor | float], like: torch.Tensor
) -> Transform3d:
    """A Transform3d from a column-vector 4x4 ``K`` given by its non-zero entries.

    ``entries[(i, j)]`` is ``K[:, i, j]`` as an ``(N,)`` tensor (or a float); ``like`` is an
    ``(N,)`` tensor giving batch, dtype and device. The stored row-vector matrix is ``K^T``.
    """
    zero = torch.zeros_like(like)
    flat = [entries.get((i, j), zero) for i in range(4) for j in range(4)]
    flat = [v if torch.is_tensor(v) else torch.full_like(like, v) for v in flat]
    K = torch.stack(flat, -1).reshape(-1, 4, 4)
    return Transform3d(matrix=K.transpose(1, 2))


# ----------------------------------------------------------------------------- free functions


def get_world_to_view_transform(R: torch.Tensor, T: torch.Tensor) -> Transform3d:
    """The world-to-view transform ``X_view = X_world @ R + T``.

    Args:
        R: ``(N, 3, 3)`` rotations (row-vector convention).
        T: ``(N, 3)`` translations. A batch of 1 broadcasts against the other.

    Returns:
        Transform3d with matrix ``[[R, 0], [T, 1]]`` ``(N, 4, 4)``; differentiable w.r.t. R, T.
    """
    R, T = _check_extrinsics(R, T)
    dtype = torch.promote_types(R.dtype, T.dtype)
    R, T = R.to(dtype), T.to(dtype)
    top = torch.cat((R, torch.zeros_like(R[:, :, :1])), 2)
    bottom = torch.cat((T, torch.ones_like(T[:, :1])), 1)[:, None]
    return Transform3d(matrix=torch.cat((top, bottom), 1))


def _image_size_tensor(cameras: CamerasBase, image_size: ImageSize | None) -> torch.Tensor:
    if image_size is None:
        image_size = cameras.get_image_size()
    if image_size is None:
        raise ValueError("image_size=(height, width) is required for the NDC <-> screen transform")
    size = torch.as_tensor(image_size, dtype=cameras.dtype, device=cameras.device).reshape(-1, 2)
    if size.shape[0] not in (1, len(cameras)):
        raise ValueError(f"image_size must have batch 1 or {len(cameras)}; got {size.shape[0]}")
    if not bool((size > 0).all()):
        raise ValueError("image_size must be positive")
    return size


def get_ndc_to_screen_transform(
    cameras: CamerasBase, with_xyflip: bool = False, image_size: ImageSize | None = None
) -> Transform3d:
    """NDC -> screen: ``x_s = s * x_ndc - W / 2`` (same for y with H), ``s = min(H, W) / 2``.

    With ``with_xyflip`` x and y are then negated, giving pixel coordinates with +X right,
    +Y down, origin at the top-left corner (no half-pixel offset, as in PyTorch3D).

    Args:
        cameras: gives dtype/device and the default ``image_size``.
        with_xyflip: negate x and y after scaling.
        image_size: ``(H, W)``, ``((H, W),)`` or ``(N, 2)``; defaults to the cameras'.

    Returns:
        Transform3d with batch 1 or N. Not differentiable w.r.t. the image size.
    """
    size = _image_size_tensor(cameras, image_size)
    h, w = size.unbind(1)
    s = size.min(1).values / 2.0
    sign = -1.0 if with_xyflip else 1.0
    return matrix_from_k(
        {
            (0, 0): sign * s,
            (1, 1): sign * s,
            (0, 3): -sign * w / 2,
            (1, 3): -sign * h / 2,
            (2, 2): 1.0,
            (3, 3): 1.0,
        },
        like=s,
    )


def get_screen_to_ndc_transform(
    cameras: CamerasBase, with_xyflip: bool = False, image_size: ImageSize | None = None
) -> Transform3d:
    """Inverse of :func:`get_ndc_to_screen_transform` (same arguments), written out exactly."""
    size = _image_size_tensor(cameras, image_size)
    h, w = size.unbind(1)
    inv_s = 2.0 / size.min(1).values
    sign = -1.0 if with_xyflip else 1.0
    return matrix_from_k(
        {
            (0, 0): sign * inv_s,
            (1, 1): sign * inv_s,
            (0, 3): inv_s * w / 2,
            (1, 3): inv_s * h / 2,
            (2, 2): 1.0,
            (3, 3): 1.0,
        },
        like=inv_s,
    )


# ----------------------------------------------------------------------------- base class

# Keywords that PyTorch3D's methods accept besides the projection parameters: consumed by the
# base class, never treated as projection overrides.
_NOT_INTRINSIC = frozenset({"R", "T", "K", "image_size", "in_ndc", "device"})


def projection_from_k(K: torch.Tensor, n: int) -> Transform3d:
    """Transform3d of a user-given column-vector projection matrix ``K`` ``(n, 4, 4)``."""
    if not torch.is_tensor(K) or K.dim() != 3 or tuple(K.shape[1:]) != (4, 4):
        raise ValueError(f"K must be a tensor of shape (N, 4, 4); got {_shape(K)}")
    if K.shape[0] not in (1, n):
        raise ValueError(f"K must have batch 1 or {n}; got {K.shape[0]}")
    return Transform3d(matrix=K.transpose(1, 2))


class CamerasBase:
    """A batch of N cameras: extrinsics ``R (N, 3, 3)``, ``T (N, 3)`` plus a projection.

    Subclasses define :meth:`_projection` (view -> NDC, or -> screen when ``in_ndc()`` is
    False, from the camera's own parameters), :meth:`is_perspective`, :meth:`in_ndc`,
    :meth:`_params` (the constructor arguments, used by ``clone``/``to``/``__getitem__``/
    overrides) and ``_OVERRIDABLE`` (the parameters a call may override by keyword).
    ``K`` is the optional user-given ``(N, 4, 4)`` projection matrix (None when absent).
    """

    R: torch.Tensor
    T: torch.Tensor
    K: torch.Tensor | None = None
    _OVERRIDABLE: tuple[str, ...] = ()

    # -- to be provided by subclasses

    def _projection(self) -> Transform3d:
        """View -> projection space from the camera's own parameters, batch N."""
        raise NotImplementedError(f"{type(self).__name__} has no projection matrix")

    def is_perspective(self) -> bool:
        """Whether the projection divides by depth."""
        raise NotImplementedError

    def in_ndc(self) -> bool:
        """Whether the projection maps to NDC (True) or to screen pixels (False)."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- shared

    def __len__(self) -> int:
        return self.R.shape[0]

    @property
    def _N(self) -> int:  # noqa: N802 - PyTorch3D's attribute name
        """The batch size (PyTorch3D's attribute)."""
        return len(self)

    @property
    def device(self) -> torch.device:
        """Device of the camera tensors."""
        return self.R.device

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the camera tensors."""
        return self.R.dtype

    def get_znear(self) -> torch.Tensor | None:
        """Near plane ``(N,)`` for cameras that have one, else None."""
        return None

    def get_image_size(self) -> torch.Tensor | None:
        """``(N, 2)`` ``(height, width)`` if the camera was given an image size, else None."""
        return None

    def get_projection_transform(self, **kwargs: Any) -> Transform3d:
        """View -> projection space (NDC, or screen for ``in_ndc() == False``), batch N.

        Args:
            kwargs: optional per-call values of the projection parameters (e.g. ``fov``,
                ``znear``, ``focal_length``; see the class) or ``K`` ``(N, 4, 4)``, a
                column-vector projection matrix used as is. Overrides are validated like the
                constructor's and not stored; other keywords are ignored.

        Returns:
            Transform3d ``(N, 4, 4)`` (row-vector matrices); differentiable w.r.t. the
            camera's parameters (or the overrides).

        Raises:
            NotImplementedError: for cameras without a projection matrix (fisheye).
        """
        K = kwargs.get("K", self.K)
        if K is not None:
            return projection_from_k(K, len(self))
        return self._with_overrides(kwargs)._projection()

    def _with_overrides(self, kwargs: dict[str, Any]) -> CamerasBase:
        """``self``, or a temporary copy with the projection parameters found in ``kwargs``."""
        overrides = {k: kwargs[k] for k in self._OVERRIDABLE if k in kwargs}
        if not overrides:
            return self
        return type(self)(**{**self._params(), **overrides}, device=self.device)

    def _store_extrinsics(self, R: torch.Tensor | None, T: torch.Tensor | None) -> None:
        """Keep per-call extrinsics on the camera, as PyTorch3D does."""
        if R is None and T is None:
            return
        R, T = _check_extrinsics(self.R if R is None else R, self.T if T is None else T)
        if R.shape[0] == len(self):
            self.R, self.T = R, T
        else:
            # The batch grew from 1: rebuild so every parameter has the new batch size.
            grown = type(self)(**{**self._params(), "R": R, "T": T}, device=self.device)
            self.__dict__.update(grown.__dict__)

    def get_world_to_view_transform(self, **kwargs: Any) -> Transform3d:
        """World -> view, ``X_view = X_world @ R + T``.

        Args:
            kwargs: optional per-call ``R`` ``(N, 3, 3)`` and/or ``T`` ``(N, 3)``, not stored
                (PyTorch3D stores them here too; diffrend's rasterizers pass per-call
                extrinsics through this method and keep the camera unchanged). Other
                keywords are ignored.

        Returns:
            Transform3d ``(N, 4, 4)``; differentiable w.r.t. R and T.
        """
        R, T = kwargs.get("R"), kwargs.get("T")
        if R is None and T is None:
            return get_world_to_view_transform(self.R, self.T)
        return get_world_to_view_transform(self.R if R is None else R, self.T if T is None else T)

    def get_full_projection_transform(self, **kwargs: Any) -> Transform3d:
        """World -> projection space (world-to-view composed with the projection).

        Args:
            kwargs: ``R``/``T``, which are stored on the camera (PyTorch3D's behaviour, so
                later steps such as lighting see the same camera), and projection overrides
                (see :meth:`get_projection_transform`, not stored).
        """
        self._store_extrinsics(kwargs.get("R"), kwargs.get("T"))
        w2v = get_world_to_view_transform(self.R, self.T)
        return w2v.compose(self.get_projection_transform(**kwargs))

    def transform_points(
        self, points: torch.Tensor, eps: float | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """World points -> projection space (NDC, or screen if ``in_ndc()`` is False).

        Args:
            points: ``(P, 3)`` or ``(N, P, 3)`` world points.
            eps: clamp of the homogeneous divisor (see ``Transform3d.transform_points``).
            kwargs: extrinsics and projection overrides, as for
                :meth:`get_full_projection_transform`.

        Returns:
            Same shape rules as ``Transform3d.transform_points``; z is the projected depth
            (e.g. ``f1 + f2 / z_view`` for FoV perspective, ``1 / z_view`` for
            ``PerspectiveCameras``). Differentiable w.r.t. points and camera tensors.
        """
        return self.get_full_projection_transform(**kwargs).transform_points(points, eps=eps)

    def get_ndc_camera_transform(self, **kwargs: Any) -> Transform3d:
        """Projection space -> NDC: identity for NDC cameras.

        For screen-space cameras, moves the principal point (given in image coordinates,
        +X right +Y down) to PyTorch3D's convention and scales pixels to NDC; depth unchanged.

        Args:
            kwargs: optional ``image_size`` overriding the camera's, and projection
                overrides (they move the principal point).
        """
        if self.in_ndc():
            return Transform3d(dtype=self.dtype, device=self.device)
        pp = self.get_principal_point(**kwargs)
        fix = matrix_from_k(
            {
                (0, 0): 1.0,
                (1, 1): 1.0,
                (2, 2): 1.0,
                (3, 3): 1.0,
                (0, 3): -2.0 * pp[:, 0],
                (1, 3): -2.0 * pp[:, 1],
            },
            like=pp[:, 0],
        )
        return fix.compose(get_screen_to_ndc_transform(self, False, kwargs.get("image_size")))

    def get_principal_point(self, **kwargs: Any) -> torch.Tensor:
        """``(N, 2)`` principal point, for cameras that have one."""
        raise NotImplementedError(f"{type(self).__name__} has no principal point")

    def transform_points_ndc(
        self, points: torch.Tensor, eps: float | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """World points -> PyTorch3D NDC (+X left, +Y up, shorter side in [-1, 1]).

        Args and returns as :meth:`transform_points`; ``image_size=`` overrides the camera's
        (used only by screen-space cameras).
        """
        transform = self.get_full_projection_transform(**kwargs)
        if not self.in_ndc():
            transform = transform.compose(self.get_ndc_camera_transform(**kwargs))
        return transform.transform_points(points, eps=eps)

    def transform_points_screen(
        self,
        points: torch.Tensor,
        eps: float | None = None,
        with_xyflip: bool = True,
        **kwargs: Any,
    ) -> torch.Tensor:
        """World points -> screen pixels (+X right, +Y down, origin top-left) and depth.

        Args:
            points: ``(P, 3)`` or ``(N, P, 3)``.
            eps: clamp of the homogeneous divisor.
            with_xyflip: False keeps NDC's axis directions (PyTorch3D's option).
            kwargs: ``image_size`` ``(H, W)`` (or ``((H, W),)``, ``(N, 2)``), defaulting to the
                camera's and required when the camera has none; extrinsics and projection
                overrides as for :meth:`transform_points`.

        Returns:
            Same shape as :meth:`transform_points`; z as in NDC. Differentiable w.r.t. points
            and camera tensors.
        """
        ndc = self.transform_points_ndc(points, eps, **kwargs)
        to_screen = get_ndc_to_screen_transform(self, with_xyflip, kwargs.get("image_size"))
        return to_screen.transform_points(ndc, eps=eps)

    def get_camera_center(self, **kwargs: Any) -> torch.Tensor:
        """Camera centres in world space ``(N, 3)`` (``-T @ R^-1``); differentiable.

        ``R``/``T`` keywords are used for this call, as for :meth:`get_world_to_view_transform`.
        """
        return self.get_world_to_view_transform(**kwargs).inverse().get_matrix()[:, 3, :3]

    def unproject_points(
        self,
        xy_depth: torch.Tensor,
        world_coordinates: bool = True,
        scaled_depth_input: bool = False,
        from_ndc: bool = False,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Inverse of :meth:`transform_points`: projection-space xy plus depth -> 3D.

        Args:
            xy_depth: ``(P, 3)`` or ``(N, P, 3)``: x, y in projection space (NDC or screen)
                and a depth.
            world_coordinates: return world points (True) or view-space points (False).
            scaled_depth_input: the depth is already the projected z that
                :meth:`transform_points` returns; otherwise it is the view-space z.
            from_ndc: x, y are in NDC even for a screen-space camera.
            kwargs: extrinsics and projection overrides, as for :meth:`transform_points`.

        Returns:
            Points with the shape rules of ``Transform3d.transform_points``. Differentiable.
        """
        if not torch.is_tensor(xy_depth) or xy_depth.dim() not in (2, 3) or xy_depth.shape[-1] != 3:
            raise ValueError(
                f"xy_depth must have shape (P, 3) or (N, P, 3); got {_shape(xy_depth)}"
            )
        if world_coordinates:
            to_cam = self.get_full_projection_transform(**kwargs)
        else:
            to_cam = self.get_projection_transform(**kwargs)
        if from_ndc and not self.in_ndc():
            to_cam = to_cam.compose(self.get_ndc_camera_transform(**kwargs))
        xyz = xy_depth if xy_depth.dim() == 3 else xy_depth[None]
        if not scaled_depth_input:
            # Every projection here maps view z alone to (z_h, w) = (a z + b, c z + d).
            m = self.get_projection_transform(**kwargs).get_matrix()[:, None]
            z = xyz[..., 2:3]
            zs = (m[..., 2, 2:3] * z + m[..., 3, 2:3]) / (m[..., 2, 3:4] * z + m[..., 3, 3:4])
            xyz = torch.cat((xyz[..., :2].expand(zs.shape[:-1] + (2,)), zs), -1)
        out = to_cam.inverse().transform_points(xyz)
        if xy_depth.dim() == 2 and out.shape[0] == 1:
            out = out[0]
        return out

    # -- copies

    def with_extrinsics(
        self, R: torch.Tensor | None = None, T: torch.Tensor | None = None
    ) -> CamerasBase:
        """New cameras with ``R`` (N, 3, 3) and/or ``T`` (N, 3) replaced (self unchanged).

        The batch may grow from 1 to N with them; the other parameters broadcast.
        """
        if R is not None or T is not None:
            R, T = _check_extrinsics(self.R if R is None else R, self.T if T is None else T)
        else:
            R, T = self.R, self.T
        return type(self)(**{**self._params(), "R": R, "T": T}, device=self.device)

    def clone(self) -> CamerasBase:
        """A copy with cloned tensors (gradients still flow to the originals)."""
        params = {k: v.clone() if torch.is_tensor(v) else v for k, v in self._params().items()}
        return type(self)(**params, device=self.device)

    def to(self, device: Device) -> CamerasBase:
        """The cameras on ``device``, as a new object (``self`` is unchanged)."""
        return type(self)(**self._params(), device=device)

    def cpu(self) -> CamerasBase:
        """The cameras on the CPU, as a new object."""
        return self.to("cpu")

    def cuda(self, device: Device | None = None) -> CamerasBase:
        """The cameras on a CUDA device (default the current one), as a new object."""
        return self.to("cuda" if device is None else device)

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> CamerasBase:
        """Select cameras of the batch: int, slice, list of ints, long or bool tensor.

        Raises:
            ValueError on another index type or a boolean mask of the wrong length;
            IndexError on an index out of range.
        """
        n = len(self)
        ok = isinstance(index, (int, slice, list, tuple)) and not isinstance(index, bool)
        if isinstance(index, (list, tuple)):
            ok = all(isinstance(i, int) and not isinstance(i, bool) for i in index)
        elif torch.is_tensor(index):
            ok = index.dtype in (torch.bool, torch.long, torch.int32)
        if not ok:
            raise ValueError(
                "Invalid index type, expected int, slice, list of ints or a bool/long tensor; "
                f"got {type(index).__name__}"
                + (f" of {index.dtype}" if torch.is_tensor(index) else "")
            )
        if isinstance(index, int):
            index = [index]
        if isinstance(index, (list, tuple)):
            index = torch.tensor(index, dtype=torch.long, device=self.device)
        if torch.is_tensor(index) and index.dtype == torch.bool:
            if index.shape != (n,):
                raise ValueError(
                    f"boolean index of shape {tuple(index.shape)} does not match cameras "
                    f"(batch {n})"
                )
        elif (
            torch.is_tensor(index)
            and index.numel()
            and not bool(((index >= -n) & (index < n)).all())
        ):
            raise IndexError(f"Index {index.tolist()} is out of bounds for {n} cameras")
        params = {k: v[index] if torch.is_tensor(v) else v for k, v in self._params().items()}
        return type(self)(**params, device=self.device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(N={len(self)}, dtype={self.dtype}, device={self.device})"


def try_get_projection_transform(
    cameras: CamerasBase, cameras_kwargs: dict[str, Any]
) -> Transform3d | None:
    """The cameras' projection transform, or None for cameras without one (fisheye).

    Args:
        cameras: any cameras.
        cameras_kwargs: keyword arguments for ``get_projection_transform`` (overrides).
    """
    try:
        return cameras.get_projection_transform(**cameras_kwargs)
    except NotImplementedError:
        return None
