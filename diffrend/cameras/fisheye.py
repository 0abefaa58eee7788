"""Fisheye cameras: PyTorch3D's FishEyeCameras model (radial, tangential, thin-prism).

The projection is not a matrix, so these cameras have no ``get_projection_transform``
(``try_get_projection_transform`` returns None) and project points directly.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .base import (
    _R_DEFAULT,
    _T_DEFAULT,
    CamerasBase,
    Device,
    ImageSize,
    _shape,
    batch_tensors,
    common_dtype,
    get_ndc_to_screen_transform,
)

__all__ = ["FishEyeCameras"]

_EPS = 1e-10  # |x/z, y/z| below this is the optical axis (PyTorch3D's threshold)
_NEWTON_ITERS = 50  # PyTorch3D's iteration count for the inverse distortions


def _radial_poly(theta_sq: torch.Tensor, radial: torch.Tensor) -> torch.Tensor:
    """``1 + sum_i k_i theta^(2 i + 2)`` for ``radial`` ``(..., K)``."""
    powers = torch.cumprod(theta_sq[..., None].expand(*theta_sq.shape, radial.shape[-1]), -1)
    return 1.0 + (powers * radial).sum(-1)


def _distort(
    xr: torch.Tensor,
    tangential: torch.Tensor,
    thin_prism: torch.Tensor,
    use_tangential: bool,
    use_thin_prism: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tangential and thin-prism terms of ``xr`` ``(..., 2)`` and their Jacobian ``(..., 2, 2)``.

    Returns ``(delta, J)`` with ``uv = base + delta`` and ``J = d(xr + delta) / d xr``.
    """
    x, y = xr.unbind(-1)
    rd2 = x * x + y * y
    zero = torch.zeros_like(x)
    dx, dy = zero, zero
    j00, j01, j10, j11 = torch.ones_like(x), zero, zero, torch.ones_like(x)
    if use_tangential:
        p0, p1 = tangential.unbind(-1)
        dot2 = 2.0 * (x * p0 + y * p1)
        dx = dx + dot2 * x + rd2 * p0
        dy = dy + dot2 * y + rd2 * p1
        off = 2.0 * (x * p1 + y * p0)
        j00 = j00 + 6.0 * x * p0 + 2.0 * y * p1
        j11 = j11 + 6.0 * y * p1 + 2.0 * x * p0
        j01 = j01 + off
        j10 = j10 + off
    if use_thin_prism:
        s0, s1, s2, s3 = thin_prism.unbind(-1)
        dx = dx + s0 * rd2 + s1 * rd2 * rd2
        dy = dy + s2 * rd2 + s3 * rd2 * rd2
        gx = 2.0 * (s0 + 2.0 * s1 * rd2)
        gy = 2.0 * (s2 + 2.0 * s3 * rd2)
        j00, j01 = j00 + gx * x, j01 + gx * y
        j10, j11 = j10 + gy * x, j11 + gy * y
    jac = torch.stack((torch.stack((j00, j01), -1), torch.stack((j10, j11), -1)), -2)
    return torch.stack((dx, dy), -1), jac


class FishEyeCameras(CamerasBase):
    """Pinhole cameras with radial, tangential and thin-prism distortion (PyTorch3D's model).

    For a view-space point ``(X, Y, Z)``: ``a, b = X / Z, Y / Z``, ``r = |(a, b)|``,
    ``theta = atan(r)``, and the radially distorted point is
    ``(x_r, y_r) = theta (1 + k_0 theta^2 + k_1 theta^4 + ...) / r * (a, b)`` (an
    equidistant fisheye when all ``k_i`` are 0). With ``rd2 = x_r^2 + y_r^2``::

        tangential = (2 x_r (p0 x_r + p1 y_r) + rd2 p0, 2 y_r (p0 x_r + p1 y_r) + rd2 p1)
        thin_prism = (s0 rd2 + s1 rd2^2, s2 rd2 + s3 rd2^2)
        uv = base + tangential + thin_prism,  projected = f * uv + principal_point

    where ``base`` is ``(x_r, y_r)``, or ``(a, b)`` with ``use_radial=False`` (the other two
    terms still use ``(x_r, y_r)``, as in PyTorch3D). Points behind the camera project like
    their mirror image through the centre. The projected z is a constant 1.

    Rendering: a rasterizer projects only the mesh vertices and joins them with straight
    edges, while the true image of a straight 3D edge under this projection is curved. With
    strong distortion (wide fields of view, large coefficients) the rendered triangles
    therefore differ visibly from the true image; subdivide the mesh (e.g.
    ``SubdivideMeshes``) so that edges are short on screen.

    Args:
        focal_length: scalar, ``(N,)`` or ``(N, 1)`` (square pixels).
        principal_point: ``(N, 2)`` (or ``(2,)``).
        radial_params: ``(N, K)`` coefficients ``k_0 .. k_{K-1}``, any K >= 1 (PyTorch3D
            uses 6).
        tangential_params: ``(N, 2)`` ``p0, p1``.
        thin_prism_params: ``(N, 4)`` ``s0 .. s3``.
        R, T: ``(N, 3, 3)``, ``(N, 3)`` extrinsics, ``X_view = X @ R + T``.
        world_coordinates: whether :meth:`transform_points` takes world points (True) or
            view-space points (False, PyTorch3D's default: R and T are then not applied).
        use_radial, use_tangential, use_thin_prism: switch the three terms.
        device: where the tensors live.
        image_size: optional ``(N, 2)`` or ``(H, W)``, used by ``transform_points_screen``.

    The projection is differentiable w.r.t. points and every parameter tensor; the
    unprojection (Newton iterations) is differentiable too.
    ``is_perspective()`` is False and ``in_ndc()`` True, as in PyTorch3D.
    """

    _OVERRIDABLE = (
        "focal_length",
        "principal_point",
        "radial_params",
        "tangential_params",
        "thin_prism_params",
    )

    def __init__(
        self,
        focal_length: Any = ((1.0,),),
        principal_point: Any = ((0.0, 0.0),),
        radial_params: Any = ((0.0,) * 6,),
        tangential_params: Any = ((0.0, 0.0),),
        thin_prism_params: Any = ((0.0, 0.0, 0.0, 0.0),),
        R: torch.Tensor | Any = _R_DEFAULT,
        T: torch.Tensor | Any = _T_DEFAULT,
        world_coordinates: bool = False,
        use_radial: bool = True,
        use_tangential: bool = True,
        use_thin_prism: bool = True,
        device: Device = "cpu",
        image_size: ImageSize | None = None,
    ) -> None:
        args = (focal_length, principal_point, radial_params, tangential_params)
        dtype = common_dtype(*args, thin_prism_params, R, T)
        f = torch.as_tensor(focal_length, dtype=dtype, device=device)
        if f.dim() == 1:
            f = f[:, None]  # (N,) -> (N, 1); a scalar gets its batch in batch_tensors
        k = torch.as_tensor(radial_params, dtype=dtype, device=device)
        if k.dim() not in (1, 2) or k.shape[-1] < 1:
            raise ValueError(f"radial_params must have shape (N, K), K >= 1; got {tuple(k.shape)}")
        specs: dict[str, tuple[Any, tuple[int, ...]]] = {
            "focal_length": (f if f.dim() else f.reshape(1), (1,)),
            "principal_point": (principal_point, (2,)),
            "radial_params": (k, (k.shape[-1],)),
            "tangential_params": (tangential_params, (2,)),
            "thin_prism_params": (thin_prism_params, (4,)),
            "R": (R, (3, 3)),
            "T": (T, (3,)),
        }
        if image_size is not None:
            specs["image_size"] = (image_size, (2,))
        _, t = batch_tensors(dtype, device, **specs)
        if image_size is not None and not bool((t["image_size"] >= 1).all()):
            raise ValueError("image_size values must be >= 1")
        self.focal_length = t["focal_length"]
        self.principal_point = t["principal_point"]
        self.radial_params = t["radial_params"]
        self.tangential_params = t["tangential_params"]
        self.thin_prism_params = t["thin_prism_params"]
        self.R, self.T = t["R"], t["T"]
        self.image_size = t.get("image_size")
        self.world_coordinates = bool(world_coordinates)
        self.use_radial = bool(use_radial)
        self.use_tangential = bool(use_tangential)
        self.use_thin_prism = bool(use_thin_prism)

    def _params(self) -> dict[str, Any]:
        return {
            "focal_length": self.focal_length,
            "principal_point": self.principal_point,
            "radial_params": self.radial_params,
            "tangential_params": self.tangential_params,
            "thin_prism_params": self.thin_prism_params,
            "R": self.R,
            "T": self.T,
            "world_coordinates": self.world_coordinates,
            "use_radial": self.use_radial,
            "use_tangential": self.use_tangential,
            "use_thin_prism": self.use_thin_prism,
            "image_size": self.image_size,
        }

    @property
    def focal(self) -> torch.Tensor:
        """``(N, 1)`` focal lengths (PyTorch3D's attribute name)."""
        return self.focal_length

    def is_perspective(self) -> bool:
        """False, as in PyTorch3D (the projection is not a perspective division)."""
        return False

    def in_ndc(self) -> bool:
        """True: the projection's units are those of focal length and principal point."""
        return True

    def get_principal_point(self, **kwargs: Any) -> torch.Tensor:
        """``(N, 2)`` principal points (or the ``principal_point`` override)."""
        return self._with_overrides(kwargs).principal_point

    def get_image_size(self) -> torch.Tensor | None:
        """``(N, 2)`` ``(height, width)``, or None if not given."""
        return self.image_size

    # -- shapes

    def _batched(self, points: torch.Tensor, name: str) -> tuple[torch.Tensor, bool]:
        """``(P, 3)``/``(M, P, 3)`` -> ``(B, P, 3)`` and whether the input was unbatched."""
        if not torch.is_tensor(points) or points.dim() not in (2, 3) or points.shape[-1] != 3:
            raise ValueError(f"{name} must have shape (P, 3) or (M, P, 3); got {_shape(points)}")
        n = len(self)
        if points.dim() == 3 and points.shape[0] not in (1, n) and n != 1:
            raise ValueError(
                f"{name} of shape {tuple(points.shape)} does not broadcast with {n} cameras: "
                "use (P, 3), (1, P, 3) or a batch equal to the cameras'"
            )
        return (points if points.dim() == 3 else points[None]), points.dim() == 2

    def _unbatch(self, out: torch.Tensor, unbatched: bool) -> torch.Tensor:
        return out[0] if unbatched and out.shape[0] == 1 else out

    # -- projection

    def transform_points(
        self, points: torch.Tensor, eps: float | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """Project points to the image (pixels or NDC, in the units of focal length).

        Args:
            points: ``(P, 3)`` or ``(M, P, 3)`` view-space points (world points if the camera
                has ``world_coordinates=True``). M must be 1 or N unless N is 1.
            eps: if given, |z| is clamped to at least eps before dividing.
            kwargs: ``R``/``T`` (stored, as by other cameras' ``transform_points``; applied
                only with ``world_coordinates``) and per-call values of the intrinsic
                parameters (not stored).

        Returns:
            ``(P, 3)`` for unbatched points and one camera, else ``(max(M, N), P, 3)``:
            projected x, y and a constant z of 1. Differentiable.
        """
        pts, unbatched = self._batched(points, "points")
        cam = self._with_overrides(kwargs)
        self._store_extrinsics(kwargs.get("R"), kwargs.get("T"))
        if self.world_coordinates:
            pts = self.get_world_to_view_transform().transform_points(pts, eps=eps)
        pts = pts.to(cam.dtype)
        z = pts[..., 2:3]
        if eps is not None:
            sign = torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))
            z = torch.where(z.abs() < eps, sign * eps, z)
        ab = pts[..., :2] / z
        r2 = (ab * ab).sum(-1)
        axis = r2 < _EPS * _EPS
        r = torch.sqrt(torch.where(axis, torch.ones_like(r2), r2))
        theta = torch.atan(r)
        ratio = torch.where(axis, torch.ones_like(r), theta / r)
        theta_sq = torch.where(axis, torch.zeros_like(r), theta * theta)
        radial = cam.radial_params[:, None, :]
        xr = (_radial_poly(theta_sq, radial) * ratio)[..., None] * ab
        delta, _ = _distort(
            xr,
            cam.tangential_params[:, None, :],
            cam.thin_prism_params[:, None, :],
            self.use_tangential,
            self.use_thin_prism,
        )
        uv = (xr if self.use_radial else ab) + delta
        xy = cam.focal_length[:, None, :] * uv + cam.principal_point[:, None, :]
        out = torch.cat((xy, torch.ones_like(xy[..., :1])), -1)
        return self._unbatch(out, unbatched)

    def transform_points_ndc(
        self, points: torch.Tensor, eps: float | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """Same as :meth:`transform_points` (the camera is in NDC)."""
        return self.transform_points(points, eps=eps, **kwargs)

    def transform_points_screen(
        self,
        points: torch.Tensor,
        eps: float | None = None,
        with_xyflip: bool = True,
        **kwargs: Any,
    ) -> torch.Tensor:
        """:meth:`transform_points` mapped from NDC to pixels (``image_size=`` or the camera's)."""
        ndc = self.transform_points(points, eps=eps, **kwargs)
        to_screen = get_ndc_to_screen_transform(self, with_xyflip, kwargs.get("image_size"))
        return to_screen.transform_points(ndc, eps=eps)

    def unproject_points(
        self,
        xy_depth: torch.Tensor,
        world_coordinates: bool = True,
        scaled_depth_input: bool = False,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Image points plus depth -> 3D points, inverting the distortion by Newton's method.

        Args:
            xy_depth: ``(P, 3)`` or ``(M, P, 3)``: projected x, y and the view-space depth z.
            world_coordinates: return world points when the camera has
                ``world_coordinates=True`` (the frame :meth:`transform_points` reads);
                otherwise, and always for cameras with ``world_coordinates=False``, view-space
                points.
            scaled_depth_input: the third value is the projected z of
                :meth:`transform_points`, which carries no depth: the points are then put on
                the plane z = 1 (PyTorch3D's output for every input).
            kwargs: ``R``/``T`` and intrinsic overrides, as for :meth:`transform_points`.

        Returns:
            Shapes as :meth:`transform_points`. As in PyTorch3D the radial model is always
            inverted, so for ``use_radial=False`` this is not the inverse of the projection.
            Differentiable (through the unrolled iterations).
        """
        xyd, unbatched = self._batched(xy_depth, "xy_depth")
        cam = self._with_overrides(kwargs)
        xyd = xyd.to(cam.dtype)
        uv = (xyd[..., :2] - cam.principal_point[:, None, :]) / cam.focal_length[:, None, :]
        tangential = cam.tangential_params[:, None, :]
        thin_prism = cam.thin_prism_params[:, None, :]
        xr = uv
        if self.use_tangential or self.use_thin_prism:
            for _ in range(_NEWTON_ITERS):
                delta, jac = _distort(
                    xr, tangential, thin_prism, self.use_tangential, self.use_thin_prism
                )
                res = uv - (xr + delta)
                (a, b), (c, d) = jac.unbind(-2)[0].unbind(-1), jac.unbind(-2)[1].unbind(-1)
                det = a * d - b * c
                det = torch.where(det.abs() < _EPS, torch.full_like(det, _EPS), det)
                r0, r1 = res.unbind(-1)
                xr = xr + torch.stack((d * r0 - b * r1, a * r1 - c * r0), -1) / det[..., None]
        rho = torch.linalg.vector_norm(xr, dim=-1)
        theta = self._theta_from_rho(cam.radial_params[:, None, :], rho)
        axis = rho < _EPS
        rho_safe = torch.where(axis, torch.ones_like(rho), rho)
        scale = torch.where(axis, torch.ones_like(rho), torch.tan(theta) / rho_safe)
        depth = torch.ones_like(rho) if scaled_depth_input else xyd[..., 2]
        view = torch.cat((scale[..., None] * xr, torch.ones_like(rho)[..., None]), -1)
        view = view * depth[..., None]
        if world_coordinates and self.world_coordinates:
            self._store_extrinsics(kwargs.get("R"), kwargs.get("T"))
            view = self.get_world_to_view_transform().inverse().transform_points(view)
        return self._unbatch(view, unbatched)

    @staticmethod
    def _theta_from_rho(radial: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """Solve ``theta (1 + sum_i k_i theta^(2i+2)) = rho`` for theta in [0, pi/2)."""
        orders = 2.0 * torch.arange(radial.shape[-1], dtype=rho.dtype, device=rho.device) + 3.0
        theta = rho
        limit = 0.999 * math.pi / 2.0
        for _ in range(_NEWTON_ITERS):
            theta_sq = theta * theta
            powers = torch.cumprod(
                theta_sq[..., None].expand(*theta_sq.shape, radial.shape[-1]), -1
            )
            value = theta * (1.0 + (powers * radial).sum(-1))
            slope = 1.0 + (orders * powers * radial).sum(-1)
            ok = slope.abs() > _EPS
            step = (rho - value) / torch.where(ok, slope, torch.ones_like(slope))
            theta = (theta + torch.where(ok, step, torch.zeros_like(step))).clamp(0.0, limit)
        return theta
