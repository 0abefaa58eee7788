"""Lights with PyTorch3D's names, defaults and formulas: point, directional and ambient.

A light object is a small holder of batched tensors, every one of shape ``(N, ...)`` with the
same N (each given with batch size 1 or N and broadcast). Its methods are pure functions of
those tensors and of their arguments; nothing is cached or written back. All tensors keep
their autograd history, so gradients flow to whatever tensors the lights were built from.

Shapes used below: ``normals`` and ``points`` are ``(B, ..., 3)`` (for example
``(N, H, W, K, 3)`` per pixel, or ``(P, 3)`` packed), and the lights' batch size must be 1 or
``B``. For packed points of several meshes, first call :meth:`gather_props` with the mesh
index of each point, so that the light batch becomes ``P``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F

# A value for a batched property: a number, nested sequences of numbers, or a tensor.
PropValue = float | Sequence | torch.Tensor
DeviceLike = str | torch.device | None

_T = TypeVar("_T", bound="BatchedProperties")

_NORMALIZE_EPS = 1e-6  # PyTorch3D's eps when renormalising normals and directions


# ----------------------------------------------------------------------------- tensor helpers


def _as_batched_tensors(
    values: Mapping[str, PropValue],
    event_ndims: Mapping[str, int],
    device: DeviceLike,
) -> dict[str, torch.Tensor]:
    """Convert named values to tensors with a leading batch dimension broadcast to a common N.

    Args:
        values: name -> value. A value with exactly ``event_ndims[name]`` dimensions (for a
            colour: ``(C,)``) gets a batch dimension of 1; one with one more is ``(B, ...)``.
        event_ndims: name -> number of trailing (non-batch) dimensions: 1 for colours and
            positions, 0 for scalars per batch element such as shininess.
        device: where the tensors go; None = the device of the first tensor given, else CPU.

    Returns:
        name -> tensor ``(N, ...)``, expanded (a view, so still differentiable w.r.t. the
        input tensors). Python numbers become tensors of the floating dtype promoted from
        the floating tensors given (float32 when none is).

    Raises:
        ValueError: naming the argument, on a wrong number of dimensions, a batch size that
            is neither 1 nor the largest one, or NaN/inf entries.
    """
    tensors_in = [v for v in values.values() if torch.is_tensor(v)]
    if device is None:
        device = tensors_in[0].device if tensors_in else torch.device("cpu")
    device = torch.device(device)
    dtype = torch.float32
    floating = [t.dtype for t in tensors_in if t.is_floating_point()]
    if floating:
        dtype = floating[0]
        for d in floating[1:]:
            dtype = torch.promote_types(dtype, d)

    out: dict[str, torch.Tensor] = {}
    for name, value in values.items():
        if torch.is_tensor(value):
            t = value.to(device=device, dtype=dtype)
        else:
            try:
                t = torch.tensor(value, dtype=dtype, device=device)
            except (TypeError, ValueError, RuntimeError) as err:
                raise ValueError(f"{name} must be numbers or a tensor, got {value!r}") from err
        ev = event_ndims[name]
        if t.ndim == ev:
            t = t.unsqueeze(0)
        elif t.ndim != ev + 1:
            expected = "(N,)" if ev == 0 else "(N, C) or (C,)"
            raise ValueError(f"{name} must have shape {expected}, got {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or inf")
        out[name] = t

    sizes = {name: t.shape[0] for name, t in out.items()}
    n = max(sizes.values(), default=1)
    for name, b in sizes.items():
        if b not in (1, n):
            raise ValueError(
                f"{name} has batch size {b}, which does not broadcast with the others "
                f"(batch sizes: {sizes}); use 1 or {n}"
            )
    return {name: t.expand(n, *t.shape[1:]) for name, t in out.items()}


def _batch_view(t: torch.Tensor, like: torch.Tensor, event_ndim: int, name: str) -> torch.Tensor:
    """View a batched property ``(B, *E)`` so that it broadcasts against ``like``.

    ``like`` is ``(N, ..., *E')``; the result is ``(B, 1, ..., 1, *E)`` with ``like.ndim``
    dimensions in total (when ``event_ndim`` equals the number of trailing dims of ``like`` it
    stands for). A property that already has ``like.ndim`` dimensions (one value per point) is
    returned unchanged.

    Raises:
        ValueError: naming ``name`` when B and N differ and neither is 1.
    """
    total = like.ndim
    if t.ndim == total:
        try:
            torch.broadcast_shapes(t.shape, like.shape)
        except RuntimeError as err:
            raise ValueError(
                f"{name} of shape {tuple(t.shape)} does not broadcast with {tuple(like.shape)}"
            ) from err
        return t
    if t.ndim != event_ndim + 1:
        raise ValueError(f"{name} must be batched (B, ...), got shape {tuple(t.shape)}")
    b, n = t.shape[0], like.shape[0]
    if b != n and 1 not in (b, n):
        raise ValueError(
            f"{name} has batch size {b} but the points have batch size {n}; use 1 or {n} "
            "(for packed points, gather the properties per point first)"
        )
    middle = total - 1 - event_ndim
    if middle < 0:
        raise ValueError(f"points of shape {tuple(like.shape)} have no batch dimension")
    return t.reshape(b, *([1] * middle), *t.shape[1:])


def _check_vectors(x: torch.Tensor, name: str) -> None:
    if not torch.is_tensor(x) or x.ndim < 2 or x.shape[-1] != 3:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"{name} must be a tensor (B, ..., 3), got {shape}")


def _check_same_shape(normals: torch.Tensor, points: torch.Tensor) -> None:
    _check_vectors(normals, "normals")
    _check_vectors(points, "points")
    if normals.shape != points.shape:
        raise ValueError(
            f"normals and points must have the same shape, got {tuple(normals.shape)} and "
            f"{tuple(points.shape)}"
        )


# ----------------------------------------------------------------------------- formulas


def diffuse(normals: torch.Tensor, color: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Lambert's cosine law: ``color * relu(cos(normal, direction))``.

    Args:
        normals: (B, ..., 3) normals (renormalised here, since interpolated ones are not
            unit length; zero normals give zero).
        color: (1, 3) or (B, 3) diffuse colour of the light, or the shape of ``normals``.
        direction: (1, 3) or (B, 3) direction *towards* the light, or the shape of
            ``normals`` (one direction per point, as for point lights); need not be unit.

    Returns:
        (B, ..., 3). Differentiable w.r.t. all three inputs. Normals and direction must be
        in the same coordinate frame.
    """
    _check_vectors(normals, "normals")
    color = _batch_view(color, normals, 1, "color")
    direction = _batch_view(direction, normals, 1, "direction")
    normals = F.normalize(normals, p=2, dim=-1, eps=_NORMALIZE_EPS)
    direction = F.normalize(direction, p=2, dim=-1, eps=_NORMALIZE_EPS)
    cos = F.relu((normals * direction).sum(dim=-1))
    return color * cos[..., None]


def specular(
    points: torch.Tensor,
    normals: torch.Tensor,
    direction: torch.Tensor,
    color: torch.Tensor,
    camera_position: torch.Tensor,
    shininess: torch.Tensor,
) -> torch.Tensor:
    """Phong specular term: ``color * relu(cos(reflected light, view))^shininess``.

    The reflection of the (unit) light direction ``l`` about the (unit) normal ``n`` is
    ``2 (n.l) n - l``; the view direction is from the point to the camera. Points whose
    normal faces away from the light (``n.l <= 0``) get no highlight.

    Args:
        points: (B, ..., 3) positions.
        normals: (B, ..., 3) normals, same shape as ``points`` (renormalised here).
        direction: (1, 3) or (B, 3), or the shape of ``points``: direction towards the light.
        color: (1, 3) or (B, 3) specular colour of the light.
        camera_position: (1, 3) or (B, 3), or the shape of ``points``: the camera centre.
        shininess: a number, a 0-d, (1,) or (B,) tensor: the specular exponent; or
            ``points.shape[:-1]``.

    Returns:
        (B, ..., 3). Differentiable w.r.t. every input (w.r.t. shininess too; where the
        cosine is 0 its gradient is 0).
    """
    _check_same_shape(normals, points)
    color = _batch_view(color, points, 1, "color")
    return color * _cos_and_highlight(points, normals, direction, camera_position,
                                      shininess)[1][..., None]


def _cos_and_highlight(
    points: torch.Tensor,
    normals: torch.Tensor,
    direction: torch.Tensor,
    camera_position: torch.Tensor,
    shininess: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos(normal, light), relu(cos(reflected light, view))^shininess masked to the lit
    side), each (B, ...): what :func:`specular` and :func:`diffuse_and_specular` share."""
    if not torch.is_tensor(shininess):  # a Python number, as PyTorch3D allows
        shininess = torch.tensor(float(shininess), dtype=points.dtype, device=points.device)
    if shininess.ndim == 0:
        shininess = shininess.reshape(1)
    direction = _batch_view(direction, points, 1, "direction")
    camera_position = _batch_view(camera_position, points, 1, "camera_position")
    shininess = _batch_view(shininess, points[..., 0], 0, "shininess")

    normals = F.normalize(normals, p=2, dim=-1, eps=_NORMALIZE_EPS)
    direction = F.normalize(direction, p=2, dim=-1, eps=_NORMALIZE_EPS)
    cos_angle = (normals * direction).sum(dim=-1)
    lit = (cos_angle > 0).to(cos_angle.dtype)  # no highlight on the side away from the light
    view_direction = F.normalize(camera_position - points, p=2, dim=-1, eps=_NORMALIZE_EPS)
    reflect_direction = -direction + 2 * (cos_angle[..., None] * normals)
    alpha = F.relu((view_direction * reflect_direction).sum(dim=-1)) * lit
    return cos_angle, torch.pow(alpha, shininess)


def diffuse_and_specular(
    points: torch.Tensor,
    normals: torch.Tensor,
    direction: torch.Tensor,
    diffuse_color: torch.Tensor,
    specular_color: torch.Tensor,
    camera_position: torch.Tensor,
    shininess: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(diffuse(...), specular(...))`` of one light, each equal to its own function's value,
    with the normals and the light direction normalised once for both (shading calls this:
    on hundreds of thousands of fragments each pass over them counts).

    Args:
        points, normals, camera_position, shininess: as in :func:`specular`.
        direction: as in :func:`specular` (towards the light).
        diffuse_color, specular_color: (1, 3) or (B, 3) colours of the light.

    Returns:
        (diffuse, specular), each (B, ..., 3); differentiable w.r.t. every input.
    """
    _check_same_shape(normals, points)
    diffuse_color = _batch_view(diffuse_color, points, 1, "color")
    specular_color = _batch_view(specular_color, points, 1, "color")
    cos_angle, highlight = _cos_and_highlight(points, normals, direction, camera_position,
                                              shininess)
    return (diffuse_color * F.relu(cos_angle)[..., None],
            specular_color * highlight[..., None])


# ----------------------------------------------------------------------------- holders


class BatchedProperties:
    """Base of lights and materials: named tensors ``(N, ...)`` sharing a batch size N.

    Subclasses list their tensor attributes in ``_props``. Every method returns a new object
    and leaves ``self`` unchanged.
    """

    _props: tuple[str, ...] = ()

    def _set_props(self, tensors: Mapping[str, torch.Tensor]) -> None:
        for name, t in tensors.items():
            setattr(self, name, t)

    def __len__(self) -> int:
        """Batch size N (the largest leading size among the properties)."""
        return max(int(getattr(self, p).shape[0]) for p in self._props)

    @property
    def device(self) -> torch.device:
        """Device of the tensors."""
        return getattr(self, self._props[0]).device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the tensors."""
        return getattr(self, self._props[0]).dtype

    def _map(self: _T, fn: Callable[[torch.Tensor], torch.Tensor]) -> _T:
        out = copy.copy(self)
        for p in self._props:
            setattr(out, p, fn(getattr(self, p)))
        return out

    def clone(self: _T) -> _T:
        """A copy with cloned tensors (still attached to the autograd graph)."""
        return self._map(torch.clone)

    def detach(self: _T) -> _T:
        """A copy with detached tensors."""
        return self._map(torch.Tensor.detach)

    def to(
        self: _T, device: DeviceLike = None, dtype: torch.dtype | None = None
    ) -> _T:
        """A copy on ``device`` and/or with floating dtype ``dtype`` (differentiable)."""
        return self._map(lambda t: t.to(device=device, dtype=dtype))

    def cpu(self: _T) -> _T:
        """A copy on the CPU."""
        return self.to("cpu")

    def cuda(self: _T) -> _T:
        """A copy on the current CUDA device."""
        return self.to("cuda")

    def __getitem__(self: _T, index: int | slice | Sequence[int] | torch.Tensor) -> _T:
        """Select batch elements; an int keeps a batch dimension of 1.

        Properties with batch size 1 are kept as they are (they apply to every element).
        """
        if isinstance(index, int):
            n = len(self)
            if not -n <= index < n:
                raise ValueError(f"index {index} out of range for batch size {n}")
            index = slice(index % n, index % n + 1)
        elif not isinstance(index, slice):
            index = torch.as_tensor(index, device=self.device)
            if index.dtype == torch.bool:
                index = index.nonzero().squeeze(1)
            if index.ndim != 1 or index.dtype not in (torch.int32, torch.int64):
                raise ValueError("index must be an int, a slice, or a 1-D int/bool tensor")
        return self._map(lambda t: t if t.shape[0] == 1 else t[index])

    def gather_props(self: _T, batch_idx: torch.Tensor) -> _T:
        """Per-point properties for packed points: ``prop[batch_idx]`` for each property.

        Args:
            batch_idx: (P,) int64 batch element of each point (for meshes,
                ``meshes.verts_packed_to_mesh_idx()`` or ``faces_packed_to_mesh_idx()``).

        Returns:
            A new object whose properties with batch size N > 1 become ``(P, ...)``; those
            with batch size 1 stay, as they apply to every point. Differentiable.
            (PyTorch3D's ``gather_props`` overwrites ``self``; this one does not.)
        """
        if not torch.is_tensor(batch_idx) or batch_idx.ndim != 1 or batch_idx.is_floating_point():
            raise ValueError("batch_idx must be a 1-D integer tensor (P,)")
        n = len(self)
        if n > 1 and batch_idx.numel() > 0:
            lo, hi = int(batch_idx.min()), int(batch_idx.max())
            if lo < 0 or hi >= n:
                raise ValueError(f"batch_idx must lie in [0, {n}), got [{lo}, {hi}]")
        idx = batch_idx.to(device=self.device, dtype=torch.int64)
        return self._map(lambda t: t if t.shape[0] == 1 else t[idx])

    def extend(self: _T, n: int) -> _T:
        """Repeat each batch element ``n`` times in a row (like ``Meshes.extend``)."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        size = len(self)
        return self._map(
            lambda t: t.expand(size, *t.shape[1:]).repeat_interleave(n, dim=0)
        )

    def __repr__(self) -> str:
        props = ", ".join(f"{p}={tuple(getattr(self, p).shape)}" for p in self._props)
        return f"{type(self).__name__}(N={len(self)}, {props}, device={self.device})"


def _check_colors3(lights: BatchedProperties) -> None:
    for name in ("ambient_color", "diffuse_color", "specular_color"):
        if getattr(lights, name).shape[-1] != 3:
            raise ValueError(
                f"{name} must have shape (N, 3), got {tuple(getattr(lights, name).shape)}"
            )


class _DirectedLight(BatchedProperties):
    """Lights with a direction towards them at each point (``_direction``) and diffuse and
    specular colours: point and directional lights."""

    def _direction(self, points: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def diffuse_and_specular(
        self,
        normals: torch.Tensor,
        points: torch.Tensor,
        camera_position: torch.Tensor,
        shininess: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(self.diffuse(normals, points), self.specular(...))`` in one pass (see
        :func:`diffuse_and_specular`); each (B, ..., 3)."""
        _check_same_shape(normals, points)  # before _direction reads the points
        return diffuse_and_specular(
            points, normals, self._direction(points),
            _batch_view(self.diffuse_color, points, 1, "lights.diffuse_color"),
            _batch_view(self.specular_color, points, 1, "lights.specular_color"),
            camera_position, shininess,
        )


class PointLights(_DirectedLight):
    """Point lights at ``location`` (PyTorch3D's ``PointLights``), one per batch element.

    Attributes (all ``(N, 3)``, differentiable): ambient_color, diffuse_color,
    specular_color, location (world space, the frame of the points shaded).
    """

    _props = ("ambient_color", "diffuse_color", "specular_color", "location")

    def __init__(
        self,
        ambient_color: PropValue = ((0.5, 0.5, 0.5),),
        diffuse_color: PropValue = ((0.3, 0.3, 0.3),),
        specular_color: PropValue = ((0.2, 0.2, 0.2),),
        location: PropValue = ((0.0, 1.0, 0.0),),
        device: DeviceLike = None,
    ) -> None:
        """Each argument is ``(N, 3)``, ``(1, 3)`` or ``(3,)`` (tensor or nested numbers).

        Args:
            ambient_color, diffuse_color, specular_color: RGB colours of the three terms.
            location: xyz position of the light.
            device: None = the device of the tensors given (CPU if none).

        Raises:
            ValueError: naming the argument, on a wrong shape, batch sizes other than 1 and
                N, or NaN/inf.
        """
        self._set_props(
            _as_batched_tensors(
                {
                    "ambient_color": ambient_color,
                    "diffuse_color": diffuse_color,
                    "specular_color": specular_color,
                    "location": location,
                },
                dict.fromkeys(self._props, 1),
                device,
            )
        )
        _check_colors3(self)
        if self.location.shape[-1] != 3:
            raise ValueError(f"location must have shape (N, 3), got {tuple(self.location.shape)}")

    def _direction(self, points: torch.Tensor) -> torch.Tensor:
        """(B, ..., 3) un-normalised direction from each point to the light."""
        return _batch_view(self.location, points, 1, "lights.location") - points

    def diffuse(self, normals: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Diffuse light at ``points`` (B, ..., 3) with ``normals`` (same shape) -> (B, ..., 3).

        Differentiable w.r.t. normals, points, location and diffuse_color.
        """
        _check_same_shape(normals, points)
        color = _batch_view(self.diffuse_color, points, 1, "lights.diffuse_color")
        return diffuse(normals, color, self._direction(points))

    def specular(
        self,
        normals: torch.Tensor,
        points: torch.Tensor,
        camera_position: torch.Tensor,
        shininess: torch.Tensor,
    ) -> torch.Tensor:
        """Specular light -> (B, ..., 3); see :func:`specular` for the argument shapes.

        Differentiable w.r.t. all inputs, location and specular_color.
        """
        _check_same_shape(normals, points)
        color = _batch_view(self.specular_color, points, 1, "lights.specular_color")
        return specular(
            points, normals, self._direction(points), color, camera_position, shininess
        )


class DirectionalLights(_DirectedLight):
    """Directional lights (PyTorch3D's ``DirectionalLights``), one per batch element.

    Attributes (all ``(N, 3)``, differentiable): ambient_color, diffuse_color,
    specular_color, direction (towards the light, need not be unit length).
    """

    _props = ("ambient_color", "diffuse_color", "specular_color", "direction")

    def __init__(
        self,
        ambient_color: PropValue = ((0.5, 0.5, 0.5),),
        diffuse_color: PropValue = ((0.3, 0.3, 0.3),),
        specular_color: PropValue = ((0.2, 0.2, 0.2),),
        direction: PropValue = ((0.0, 1.0, 0.0),),
        device: DeviceLike = None,
    ) -> None:
        """Each argument is ``(N, 3)``, ``(1, 3)`` or ``(3,)``; see :class:`PointLights`.

        Raises:
            ValueError: naming the argument, on a wrong shape, batch sizes other than 1 and
                N, or NaN/inf.
        """
        self._set_props(
            _as_batched_tensors(
                {
                    "ambient_color": ambient_color,
                    "diffuse_color": diffuse_color,
                    "specular_color": specular_color,
                    "direction": direction,
                },
                dict.fromkeys(self._props, 1),
                device,
            )
        )
        _check_colors3(self)
        if self.direction.shape[-1] != 3:
            raise ValueError(
                f"direction must have shape (N, 3), got {tuple(self.direction.shape)}"
            )

    def diffuse(self, normals: torch.Tensor, points: torch.Tensor | None = None) -> torch.Tensor:
        """Diffuse light for ``normals`` (B, ..., 3) -> (B, ..., 3); ``points`` is unused.

        Differentiable w.r.t. normals, direction and diffuse_color.
        """
        if points is not None:
            _check_same_shape(normals, points)
        _check_vectors(normals, "normals")
        color = _batch_view(self.diffuse_color, normals, 1, "lights.diffuse_color")
        direction = _batch_view(self.direction, normals, 1, "lights.direction")
        return diffuse(normals, color, direction)

    def specular(
        self,
        normals: torch.Tensor,
        points: torch.Tensor,
        camera_position: torch.Tensor,
        shininess: torch.Tensor,
    ) -> torch.Tensor:
        """Specular light -> (B, ..., 3); see :func:`specular` for the argument shapes.

        Differentiable w.r.t. all inputs, direction and specular_color.
        """
        _check_same_shape(normals, points)
        color = _batch_view(self.specular_color, points, 1, "lights.specular_color")
        return specular(points, normals, self._direction(points), color, camera_position,
                        shininess)

    def _direction(self, points: torch.Tensor) -> torch.Tensor:
        """(B, ..., 3) direction towards the light for each point (the same for all)."""
        return _batch_view(self.direction, points, 1, "lights.direction")


class AmbientLights(BatchedProperties):
    """Light of the same colour everywhere (PyTorch3D's ``AmbientLights``).

    Attributes:
        ambient_color: (N, C), any number of channels C; differentiable. The default white
            makes shading return the texels times the material's ambient colour.
    """

    _props = ("ambient_color",)

    def __init__(self, *, ambient_color: PropValue | None = None, device: DeviceLike = None):
        """``ambient_color``: ``(N, C)``, ``(1, C)`` or ``(C,)``; None = white ``(1, 3)``.

        Raises:
            ValueError: on a wrong shape or NaN/inf.
        """
        if ambient_color is None:
            ambient_color = ((1.0, 1.0, 1.0),)
        self._set_props(
            _as_batched_tensors({"ambient_color": ambient_color}, {"ambient_color": 1}, device)
        )

    def _zeros(self, points: torch.Tensor) -> torch.Tensor:
        return points.new_zeros((*points.shape[:-1], self.ambient_color.shape[-1]))

    def diffuse(self, normals: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Zeros ``(B, ..., C)``: an ambient light has no diffuse term."""
        _check_same_shape(normals, points)
        return self._zeros(points)

    def specular(
        self,
        normals: torch.Tensor,
        points: torch.Tensor,
        camera_position: torch.Tensor,
        shininess: torch.Tensor,
    ) -> torch.Tensor:
        """Zeros ``(B, ..., C)``: an ambient light has no specular term."""
        _check_same_shape(normals, points)
        return self._zeros(points)
