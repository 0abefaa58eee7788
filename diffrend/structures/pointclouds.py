"""``Pointclouds``: a batch of point clouds with list, padded and packed views (PyTorch3D's API).

Three per-point fields share one layout: points (3 channels), optional normals (3) and
optional features (C). Each field is stored in the one form it was last given in (list,
padded or packed) and the other forms are derived on demand and cached per field (a field's
cache is replaced whenever that field changes). The layout (number of points per cloud,
index maps) never changes after construction. Every view is differentiable w.r.t. the
tensors the object was built from; index maps are not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..ops.points_normals import estimate_pointcloud_normals
from ..ops.transfer import host_tensor
from .utils import padded_to_list

_FIELDS = ("points", "normals", "features")


class _Field:
    """One per-point field: the source form plus cached derived forms (internal)."""

    __slots__ = ("cache", "src")

    def __init__(self, kind: str, value: Any) -> None:
        self.src = kind
        self.cache: dict[str, Any] = {kind: value}

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> _Field:
        v = self.cache[self.src]
        return _Field(self.src, [fn(t) for t in v] if self.src == "list" else fn(v))


def _shape(x: Any) -> Any:
    return tuple(x.shape) if torch.is_tensor(x) else type(x).__name__


def _check_list(
    name: str, items: Sequence[Any], width: int | None, counts: list[int] | None
) -> list[torch.Tensor]:
    """Validate a list of (P_i, D) float tensors; width None = any D (the same for all)."""
    if counts is not None and len(items) != len(counts):
        raise ValueError(
            f"{name}: expected {len(counts)} tensors (one per cloud), got {len(items)}"
        )
    out: list[torch.Tensor | None] = []
    for i, t in enumerate(items):
        # PyTorch3D's forms of "nothing" for an empty item: torch.tensor([]) (shape (0,)),
        # and None for the normals/features of an empty cloud; both become (0, D) below
        if (t is None and counts is not None and counts[i] == 0) or (
            torch.is_tensor(t) and t.shape == (0,)
        ):
            out.append(None)
            continue
        if not torch.is_tensor(t) or t.ndim != 2 or (width is not None and t.shape[1] != width):
            want = f"(P, {width})" if width is not None else "(P, C)"
            raise ValueError(f"{name}[{i}]: expected a tensor of shape {want}, got {_shape(t)}")
        if not t.dtype.is_floating_point:
            raise ValueError(f"{name}[{i}]: expected a floating-point tensor, got {t.dtype}")
        if counts is not None and t.shape[0] != counts[i]:
            raise ValueError(
                f"{name}[{i}]: has {t.shape[0]} rows but cloud {i} has {counts[i]} points"
            )
        out.append(t)
    if any(t is None for t in out):
        like = next((t for t in out if t is not None), None)
        c = width if width is not None else (0 if like is None else like.shape[1])
        if like is None:
            like = next(t for t in items if torch.is_tensor(t)) if any(
                torch.is_tensor(t) for t in items) else torch.zeros(0)
        out = [like.new_zeros((0, c)) if t is None else t for t in out]
    if out:
        if len({t.shape[1] for t in out}) > 1:
            raise ValueError(f"{name}: all tensors must have the same number of channels, got "
                             f"{sorted({t.shape[1] for t in out})}")
        if len({t.device for t in out}) > 1:
            raise ValueError(f"{name}: all tensors must be on the same device")
        if len({t.dtype for t in out}) > 1:
            raise ValueError(f"{name}: all tensors must have the same dtype")
    return out


def _check_padded(name: str, x: torch.Tensor, width: int | None, n: int | None,
                  p: int | None) -> torch.Tensor:
    """Validate a padded (N, P, D) float tensor against the expected sizes (None = any)."""
    if x.ndim != 3 or (width is not None and x.shape[2] != width):
        want = f"(N, P, {width})" if width is not None else "(N, P, C)"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{name}: expected a floating-point tensor, got {x.dtype}")
    if n is not None and (x.shape[0], x.shape[1]) != (n, p):
        raise ValueError(
            f"{name}: expected shape ({n}, {p}, ...) to match the points, got {tuple(x.shape)}"
        )
    return x


def _check_finite(name: str, x: torch.Tensor | Sequence[torch.Tensor]) -> None:
    items = [x] if torch.is_tensor(x) else list(x)
    if not items:
        return
    flags = torch.stack([torch.isfinite(t).all() for t in items]).tolist()
    for i, ok in enumerate(flags):
        if not ok:
            where = name if torch.is_tensor(x) else f"{name}[{i}]"
            raise ValueError(f"{where} contains NaN or inf values")


class Pointclouds:
    """A batch of N point clouds of different sizes (PyTorch3D's ``Pointclouds``).

    Three views of each per-point field: list (N tensors (P_i, D)), padded ((N, max P_i, D),
    zero-padded) and packed ((sum P_i, D)). Fields: points (D = 3), normals (D = 3, optional),
    features (D = C, optional). All views are differentiable w.r.t. the tensors given; the
    index maps are not. Empty clouds (P_i = 0) and an empty batch (N = 0) are allowed.
    """

    def __init__(
        self,
        points: Sequence[torch.Tensor] | torch.Tensor,
        normals: Sequence[torch.Tensor] | torch.Tensor | None = None,
        features: Sequence[torch.Tensor] | torch.Tensor | None = None,
    ) -> None:
        """Build a batch from lists or padded tensors.

        Args:
            points: list of N float tensors (P_i, 3), or a float tensor (N, P, 3) (then every
                cloud has P points).
            normals: None, a list of N tensors (P_i, 3) or a padded tensor (N, max P_i, 3).
            features: None, a list of N tensors (P_i, C) or a padded tensor (N, max P_i, C).

        Raises:
            ValueError: naming the argument, on wrong shapes or dtypes, NaN/inf points,
                normals or features, normals or features whose point counts differ from
                the points', features of different widths, or tensors on different devices.
        """
        if isinstance(points, (list, tuple)):
            pts = _check_list("points", points, 3, None)
            _check_finite("points", pts)
            counts = [int(t.shape[0]) for t in pts]
            device = pts[0].device if pts else torch.device("cpu")
            dtype = pts[0].dtype if pts else torch.float32
            field = _Field("list", pts)
        elif torch.is_tensor(points):
            _check_padded("points", points, 3, None, None)
            _check_finite("points", points)
            counts = [int(points.shape[1])] * int(points.shape[0])
            device, dtype = points.device, points.dtype
            field = _Field("padded", points)
        else:
            raise ValueError(
                f"points: expected a list of (P, 3) tensors or an (N, P, 3) tensor, "
                f"got {type(points).__name__}"
            )
        self._setup(counts, device, dtype, {"points": field})
        for name, value in (("normals", normals), ("features", features)):
            # as PyTorch3D: a batch without any point has no normals or features
            if value is not None and not self.isempty():
                self._fields[name] = self._parse_aux(name, value)

    # ------------------------------------------------------------------ construction

    def _setup(self, counts: list[int], device: torch.device, dtype: torch.dtype,
               fields: dict[str, _Field]) -> None:
        self._N = len(counts)
        self._num_points = counts
        self._P = max(counts, default=0)
        self._device = torch.device(device)
        self._dtype = dtype
        self._fields = fields
        self._topo: dict[str, torch.Tensor] = {}

    def _parse_aux(self, name: str, value: Any) -> _Field:
        width = 3 if name == "normals" else None
        if isinstance(value, (list, tuple)):
            items = _check_list(name, value, width, self._num_points)  # (None -> (0, D))
            devices = {t.device for t in items}
            field = _Field("list", items)
            checked: torch.Tensor | list[torch.Tensor] = items
        elif torch.is_tensor(value):
            _check_padded(name, value, width, self._N, self._P)
            devices = {value.device}
            field = _Field("padded", value)
            checked = value
        else:
            raise ValueError(f"{name}: expected a list of tensors or a padded tensor, "
                             f"got {type(value).__name__}")
        if devices and devices != {self._device}:
            raise ValueError(f"{name} is on {devices.pop()}, points on {self._device}")
        _check_finite(name, checked)  # (a NaN feature would composite NaN pixels)
        return field

    @classmethod
    def _trusted(cls, points: list[torch.Tensor], normals: list[torch.Tensor] | None,
                 features: list[torch.Tensor] | None, device: torch.device,
                 dtype: torch.dtype) -> Pointclouds:
        """Build from already validated lists."""
        out = cls.__new__(cls)
        fields = {"points": _Field("list", points)}
        if normals is not None:
            fields["normals"] = _Field("list", normals)
        if features is not None:
            fields["features"] = _Field("list", features)
        out._setup([int(p.shape[0]) for p in points], device, dtype, fields)
        return out

    def _copy(self, fields: dict[str, _Field], device: torch.device | None = None) -> Pointclouds:
        out = self.__class__.__new__(self.__class__)
        out._setup(list(self._num_points), device or self._device, self._dtype, fields)
        if device is None or device == self._device:
            # the same dict (layout only): what one copy computes, the others reuse
            out._topo = self._topo
        return out

    # ------------------------------------------------------------------ basic info

    def __len__(self) -> int:
        """Number of clouds N."""
        return self._N

    def __repr__(self) -> str:
        return (f"Pointclouds(N={self._N}, points={self._num_points}, "
                f"normals={'normals' in self._fields}, features={self.num_features}, "
                f"device={self._device})")

    @property
    def device(self) -> torch.device:
        """Device of every tensor of the batch."""
        return self._device

    @property
    def equisized(self) -> bool:
        """True when all clouds have the same number of points."""
        return len(set(self._num_points)) <= 1

    @property
    def valid(self) -> torch.Tensor:
        """(N,) bool: the cloud has at least one point."""
        return self.num_points_per_cloud() > 0

    @property
    def num_features(self) -> int | None:
        """C, the number of feature channels, or None without features."""
        if "features" not in self._fields:
            return None
        f = self._fields["features"]
        v = f.cache[f.src]
        if f.src == "list":
            return int(v[0].shape[1]) if v else 0
        return int(v.shape[-1])

    def isempty(self) -> bool:
        """True when the batch has no clouds or no points at all."""
        return self._N == 0 or sum(self._num_points) == 0

    # ------------------------------------------------------------------ layout

    def _topo_get(self, key: str, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        if key not in self._topo:
            self._topo[key] = make()
        return self._topo[key]

    def num_points_per_cloud(self) -> torch.Tensor:
        """(N,) int64 number of points of each cloud."""
        return self._topo_get("num", lambda: host_tensor(self._num_points, torch.int64,
                                                         self._device))

    def cloud_to_packed_first_idx(self) -> torch.Tensor:
        """(N,) int64 index in the packed views of each cloud's first point."""
        def make() -> torch.Tensor:
            counts = self.num_points_per_cloud()
            return torch.cumsum(counts, 0) - counts
        return self._topo_get("first", make)

    def packed_to_cloud_idx(self) -> torch.Tensor:
        """(sum P_i,) int64 cloud index of each packed point."""
        # output_size (known on the host): repeat_interleave would otherwise read it back
        return self._topo_get("owner", lambda: torch.repeat_interleave(
            torch.arange(self._N, device=self._device), self.num_points_per_cloud(),
            output_size=sum(self._num_points)))

    def padded_to_packed_idx(self) -> torch.Tensor:
        """(sum P_i,) int64: ``points_packed() == points_padded().reshape(-1, 3)[idx]``."""
        def make() -> torch.Tensor:
            owner = self.packed_to_cloud_idx()
            rows = torch.arange(owner.shape[0], device=self._device)
            return rows - self.cloud_to_packed_first_idx()[owner] + owner * self._P
        return self._topo_get("pad_idx", make)

    # ------------------------------------------------------------------ views

    def _packed(self, name: str) -> torch.Tensor | None:
        field = self._fields.get(name)
        if field is None:
            return None
        if "packed" not in field.cache:
            if "list" in field.cache:
                items = field.cache["list"]
                width = 3 if name != "features" else (self.num_features or 0)
                field.cache["packed"] = (torch.cat(items, 0) if items else torch.zeros(
                    (0, width), dtype=self._dtype, device=self._device))
            else:
                padded = field.cache["padded"]
                flat = padded.reshape(-1, padded.shape[-1])
                field.cache["packed"] = flat if self.equisized else flat[
                    self.padded_to_packed_idx()]
        return field.cache["packed"]

    def _list(self, name: str) -> list[torch.Tensor] | None:
        field = self._fields.get(name)
        if field is None:
            return None
        if "list" not in field.cache:
            if "padded" in field.cache:
                field.cache["list"] = (padded_to_list(field.cache["padded"], self._num_points)
                                       if self._N else [])
            else:
                field.cache["list"] = list(self._packed(name).split(self._num_points, 0))
        return field.cache["list"]

    def _padded(self, name: str) -> torch.Tensor | None:
        field = self._fields.get(name)
        if field is None:
            return None
        if "padded" not in field.cache:
            packed = self._packed(name)
            width = packed.shape[-1]
            if self._N and "list" in field.cache and self.equisized:
                field.cache["padded"] = torch.stack(field.cache["list"], 0)
            else:
                out = packed.new_zeros((self._N * self._P, width))
                out = out.index_copy(0, self.padded_to_packed_idx(), packed)
                field.cache["padded"] = out.reshape(self._N, self._P, width)
        return field.cache["padded"]

    def points_list(self) -> list[torch.Tensor]:
        """List of N tensors (P_i, 3); differentiable."""
        return self._list("points")

    def points_padded(self) -> torch.Tensor:
        """(N, max P_i, 3) points, zero-padded; differentiable."""
        return self._padded("points")

    def points_packed(self) -> torch.Tensor:
        """(sum P_i, 3) points of all clouds, concatenated; differentiable."""
        return self._packed("points")

    def normals_list(self) -> list[torch.Tensor] | None:
        """List of N tensors (P_i, 3), or None without normals; differentiable."""
        return self._list("normals")

    def normals_padded(self) -> torch.Tensor | None:
        """(N, max P_i, 3) normals, zero-padded, or None; differentiable."""
        return self._padded("normals")

    def normals_packed(self) -> torch.Tensor | None:
        """(sum P_i, 3) normals, or None; differentiable."""
        return self._packed("normals")

    def features_list(self) -> list[torch.Tensor] | None:
        """List of N tensors (P_i, C), or None without features; differentiable."""
        return self._list("features")

    def features_padded(self) -> torch.Tensor | None:
        """(N, max P_i, C) features, zero-padded, or None; differentiable."""
        return self._padded("features")

    def features_packed(self) -> torch.Tensor | None:
        """(sum P_i, C) features, or None; differentiable."""
        return self._packed("features")

    def get_cloud(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None,
                                             torch.Tensor | None]:
        """Points (P_i, 3), normals (P_i, 3) or None and features (P_i, C) or None of cloud
        ``index``."""
        if isinstance(index, bool) or not isinstance(index, int) or not (
            -self._N <= index < self._N
        ):
            raise ValueError(f"index: expected an int in [0, {self._N}), got {index!r}")
        normals, features = self.normals_list(), self.features_list()
        return (
            self.points_list()[index],
            None if normals is None else normals[index],
            None if features is None else features[index],
        )

    def get_bounding_boxes(self) -> torch.Tensor:
        """(N, 3, 2) per-cloud [min, max] of each coordinate (zeros for empty clouds).

        Differentiable w.r.t. the extreme points.
        """
        if self._P == 0:
            return torch.zeros((self._N, 3, 2), dtype=self._dtype, device=self._device)
        pp = self.points_padded()
        counts = self.num_points_per_cloud()
        mask = (torch.arange(self._P, device=self._device)[None] < counts[:, None])[..., None]
        inf = torch.tensor(float("inf"), dtype=pp.dtype, device=self._device)
        lo = torch.where(mask, pp, inf).amin(1)
        hi = torch.where(mask, pp, -inf).amax(1)
        empty = (counts == 0)[:, None]
        return torch.stack([lo.masked_fill(empty, 0.0), hi.masked_fill(empty, 0.0)], dim=2)

    # ------------------------------------------------------------------ updates

    def _with_points(self, kind: str, value: torch.Tensor) -> Pointclouds:
        fields = dict(self._fields)
        fields["points"] = _Field(kind, value)
        out = self._copy(fields)
        out._dtype = value.dtype
        return out

    def offset(self, offsets_packed: torch.Tensor) -> Pointclouds:
        """A new batch with ``offsets_packed`` added to the points.

        Args:
            offsets_packed: (sum P_i, 3), or (3,) added to every point.

        Returns:
            ``Pointclouds`` (normals and features kept); differentiable w.r.t. the points and
            the offsets.
        """
        packed = self.points_packed()
        if not torch.is_tensor(offsets_packed):
            raise ValueError("offsets_packed must be a tensor")
        if offsets_packed.shape not in ((3,), packed.shape):
            raise ValueError(f"offsets_packed: expected shape (3,) or {tuple(packed.shape)}, "
                             f"got {tuple(offsets_packed.shape)}")
        if offsets_packed.device != self._device:
            raise ValueError(f"offsets_packed is on {offsets_packed.device}, "
                             f"points on {self._device}")
        return self._with_points("packed", packed + offsets_packed)

    def offset_(self, offsets_packed: torch.Tensor) -> Pointclouds:
        """In-place :meth:`offset` (replaces the stored points tensor; autograd-safe)."""
        new = self.offset(offsets_packed)
        self._fields, self._dtype = new._fields, new._dtype
        return self

    def scale(self, scale: float | torch.Tensor) -> Pointclouds:
        """A new batch with each cloud's points multiplied by a scalar or a per-cloud (N,)
        scale; differentiable w.r.t. the points and ``scale``."""
        scale_t = torch.as_tensor(scale, dtype=self._dtype, device=self._device)
        if scale_t.ndim == 0:
            scale_t = scale_t.expand(self._N)
        if scale_t.shape != (self._N,):
            raise ValueError(f"scale: expected a scalar or shape ({self._N},), "
                             f"got {tuple(scale_t.shape)}")
        per_point = scale_t[self.packed_to_cloud_idx()][:, None]
        return self._with_points("packed", self.points_packed() * per_point)

    def scale_(self, scale: float | torch.Tensor) -> Pointclouds:
        """In-place :meth:`scale`."""
        new = self.scale(scale)
        self._fields, self._dtype = new._fields, new._dtype
        return self

    def update_padded(
        self,
        new_points_padded: torch.Tensor,
        new_normals_padded: torch.Tensor | None = None,
        new_features_padded: torch.Tensor | None = None,
    ) -> Pointclouds:
        """A new ``Pointclouds`` with these padded points (and optionally normals, features).

        Args:
            new_points_padded: (N, max P_i, 3) float tensor; values in the padding are
                ignored. Not checked for NaN (the per-step path of optimisation and
                projection; the rasterizer checks its input).
            new_normals_padded: None (keep the normals) or (N, max P_i, 3).
            new_features_padded: None (keep the features) or (N, max P_i, C).

        Returns:
            ``Pointclouds`` with this one's layout; differentiable w.r.t. the new tensors.
        """
        news = (("new_points_padded", new_points_padded, "points", 3),
                ("new_normals_padded", new_normals_padded, "normals", 3),
                ("new_features_padded", new_features_padded, "features", None))
        fields = dict(self._fields)
        for arg, value, name, width in news:
            if value is None:
                continue
            if not torch.is_tensor(value):
                raise ValueError(f"{arg} must be a tensor")
            _check_padded(arg, value, width, self._N, self._P)
            if value.device != self._device:
                raise ValueError(f"{arg} is on {value.device}, points on {self._device}")
            fields[name] = _Field("padded", value)
        out = self._copy(fields)
        out._dtype = new_points_padded.dtype
        return out

    # ------------------------------------------------------------------ copies, batches

    def _map_all(self, fn: Callable[[torch.Tensor], torch.Tensor],
                 device: torch.device | None = None) -> Pointclouds:
        return self._copy({k: f.map(fn) for k, f in self._fields.items()}, device)

    def clone(self) -> Pointclouds:
        """Deep copy (tensors cloned; still differentiable w.r.t. the originals)."""
        return self._map_all(torch.Tensor.clone)

    def detach(self) -> Pointclouds:
        """Copy whose tensors are detached from the autograd graph."""
        return self._map_all(torch.Tensor.detach)

    def to(self, device: str | torch.device, copy: bool = False) -> Pointclouds:
        """This batch on ``device`` (self if already there and ``copy`` is False)."""
        device = torch.empty(0, device=device).device  # resolves "cuda" to "cuda:0"
        if device == self._device:
            return self.clone() if copy else self
        return self._map_all(lambda t: t.to(device), device)

    def cpu(self) -> Pointclouds:
        """This batch on the CPU."""
        return self.to("cpu")

    def cuda(self) -> Pointclouds:
        """This batch on the current CUDA device."""
        return self.to("cuda")

    def _select(self, ids: list[int]) -> Pointclouds:
        lists = {name: self._list(name) for name in _FIELDS}
        pick = {k: None if v is None else [v[i] for i in ids] for k, v in lists.items()}
        return self._trusted(pick["points"], pick["normals"], pick["features"], self._device,
                             self._dtype)

    def __getitem__(self, index: int | slice | list[int] | torch.Tensor) -> Pointclouds:
        """Select clouds by int, slice, list of ints or a 1-D int/bool tensor (no copy)."""
        if isinstance(index, bool):
            raise IndexError(index)
        if isinstance(index, int):
            if not -self._N <= index < self._N:
                raise IndexError(f"cloud index {index} out of range for {self._N} clouds")
            ids = [index % self._N]
        elif isinstance(index, slice):
            ids = list(range(self._N))[index]
        elif isinstance(index, (list, tuple)) or torch.is_tensor(index):
            if torch.is_tensor(index):
                if index.ndim != 1 or index.dtype.is_floating_point or index.dtype.is_complex:
                    raise IndexError(f"expected a 1-D int or bool tensor, got {index.dtype} "
                                     f"of shape {tuple(index.shape)}")
                if index.dtype == torch.bool:
                    if index.shape[0] != self._N:
                        raise IndexError(f"bool index of length {index.shape[0]} for {self._N}")
                    index = index.nonzero().flatten()
                index = index.tolist()
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in index):
                raise IndexError(f"expected integer indices, got {index!r}")
            bad = [i for i in index if not -self._N <= i < self._N]
            if bad:
                raise IndexError(f"cloud indices {bad} out of range for {self._N} clouds")
            ids = [i % self._N for i in index]
        else:
            raise IndexError(f"cannot index Pointclouds with {type(index).__name__}")
        return self._select(ids)

    def split(self, split_sizes: Sequence[int]) -> list[Pointclouds]:
        """Split into consecutive batches of the given sizes (like ``torch.split``)."""
        if not all(isinstance(s, int) and s >= 0 for s in split_sizes):
            raise ValueError(f"split_sizes: expected non-negative ints, got {split_sizes!r}")
        if sum(split_sizes) != self._N:
            raise ValueError(f"split_sizes sum to {sum(split_sizes)}, not {self._N}")
        starts = [sum(split_sizes[:i]) for i in range(len(split_sizes))]
        return [self[s : s + n] for s, n in zip(starts, split_sizes, strict=True)]

    def extend(self, N: int) -> Pointclouds:
        """A batch holding each cloud ``N`` times in a row (c0, c0, ..., c1, c1, ...).

        Tensors are cloned, so gradients from every copy flow back to the originals.
        """
        if isinstance(N, bool) or not isinstance(N, int) or N <= 0:
            raise ValueError(f"N must be a positive int, got {N!r}")
        lists = {name: self._list(name) for name in _FIELDS}
        rep = {k: None if v is None else [t.clone() for t in v for _ in range(N)]
               for k, v in lists.items()}
        return self._trusted(rep["points"], rep["normals"], rep["features"], self._device,
                             self._dtype)

    def subsample(self, max_points: int | Sequence[int] | torch.Tensor) -> Pointclouds:
        """Keep at most ``max_points`` random points of each cloud (without replacement).

        Args:
            max_points: an int for every cloud, or N ints (a list or an (N,) tensor).

        Returns:
            ``self`` when no cloud exceeds its limit, else a new ``Pointclouds`` whose
            normals and features follow the kept points; differentiable w.r.t. the kept
            rows. Uses torch's global random generator.
        """
        if isinstance(max_points, int) and not isinstance(max_points, bool):
            limits = [max_points] * self._N
        else:
            limits = [int(m) for m in max_points]
            if len(limits) != self._N:
                raise ValueError(f"max_points: expected {self._N} values, got {len(limits)}")
        if any(m < 0 for m in limits):
            raise ValueError("max_points: must be non-negative")
        if all(p <= m for p, m in zip(self._num_points, limits, strict=True)):
            return self
        keep = [None if p <= m else torch.randperm(p, device=self._device)[:m]
                for p, m in zip(self._num_points, limits, strict=True)]
        lists = {name: self._list(name) for name in _FIELDS}
        pick = {k: None if v is None else [t if i is None else t[i] for t, i in
                                           zip(v, keep, strict=True)]
                for k, v in lists.items()}
        return self._trusted(pick["points"], pick["normals"], pick["features"], self._device,
                             self._dtype)

    def inside_box(self, box: torch.Tensor) -> torch.Tensor:
        """Which packed points lie in an axis-aligned box (bounds included).

        Args:
            box: (2, 3) [min; max] for every cloud, or (N, 2, 3) (or (1, 2, 3)) per cloud.

        Returns:
            (sum P_i,) bool. Not differentiable.
        """
        if not torch.is_tensor(box) or box.ndim not in (2, 3) or box.shape[-2:] != (2, 3):
            raise ValueError("box: Input box must be of shape (2, 3) or (N, 2, 3)")
        if box.ndim == 3 and box.shape[0] not in (1, self._N):
            raise ValueError(f"box: Input box dimension is {box.shape[0]}, not 1 or {self._N} "
                             "(the number of clouds)")
        if (box[..., 0, :] > box[..., 1, :]).any():
            raise ValueError("box: Input box is invalid: min values larger than max values")
        points = self.points_packed()
        box = box.to(device=self._device, dtype=points.dtype)
        if box.ndim == 3 and box.shape[0] == self._N and self._N > 1:
            box = box[self.packed_to_cloud_idx()]
        else:
            box = box.reshape(1, 2, 3)
        return ((points >= box[:, 0]) & (points <= box[:, 1])).all(dim=1)

    def estimate_normals(self, neighborhood_size: int = 50,
                         disambiguate_directions: bool = True,
                         assign_to_self: bool = False,
                         *, use_symeig_workaround: bool = True) -> torch.Tensor:
        """Per-point normals from the covariance of the ``neighborhood_size`` nearest
        neighbours (see :func:`diffrend.ops.estimate_pointcloud_normals`).

        Args:
            neighborhood_size: K; every cloud needs more than K points.
            disambiguate_directions: orient each normal towards the side most of its
                neighbours lie on.
            assign_to_self: also store them as this object's normals.
            use_symeig_workaround: accepted for PyTorch3D compatibility; ignored.

        Returns:
            (N, max P_i, 3) normals, padded; differentiable w.r.t. the points.
        """
        normals = estimate_pointcloud_normals(
            self, neighborhood_size, disambiguate_directions,
            use_symeig_workaround=use_symeig_workaround)
        if assign_to_self:
            self._fields["normals"] = _Field("padded", normals)
        return normals

    # ------------------------------------------------------------------ PyTorch3D internals
    # PyTorch3D code and tests reach into these private members; they map onto the caches.

    def _compute_packed(self, refresh: bool = False) -> None:
        """Fill the packed views (``refresh`` recomputes them from the source form)."""
        for f in self._fields.values():
            if refresh and f.src != "packed":
                f.cache.pop("packed", None)
        for name in self._fields:
            self._packed(name)

    def _compute_padded(self, refresh: bool = False) -> None:
        """Fill the padded views (``refresh`` recomputes them from the source form)."""
        for f in self._fields.values():
            if refresh and f.src != "padded":
                f.cache.pop("padded", None)
        for name in self._fields:
            self._padded(name)

    def _cached(self, name: str, kind: str) -> Any:
        f = self._fields.get(name)
        return None if f is None else f.cache.get(kind)

    _points_list = property(lambda self: self._cached("points", "list"))
    _points_packed = property(lambda self: self._cached("points", "packed"))
    _points_padded = property(lambda self: self._cached("points", "padded"))
    _normals_list = property(lambda self: self._cached("normals", "list"))
    _normals_packed = property(lambda self: self._cached("normals", "packed"))
    _normals_padded = property(lambda self: self._cached("normals", "padded"))
    _features_list = property(lambda self: self._cached("features", "list"))
    _features_packed = property(lambda self: self._cached("features", "packed"))
    _features_padded = property(lambda self: self._cached("features", "padded"))
    _num_points_per_cloud = property(lambda self: self.num_points_per_cloud())


def join_pointclouds_as_batch(pointclouds: Sequence[Pointclouds]) -> Pointclouds:
    """Concatenate several ``Pointclouds`` into one batch (the clouds in order).

    All must be on one device and either all have normals (features) or none.
    Differentiable w.r.t. every input's tensors.
    """
    if isinstance(pointclouds, Pointclouds) or not isinstance(pointclouds, (list, tuple)):
        raise ValueError("pointclouds: Wrong first argument: expected a list of Pointclouds")
    if not pointclouds or not all(isinstance(p, Pointclouds) for p in pointclouds):
        raise ValueError("pointclouds: expected a non-empty list of Pointclouds")
    if len({p.device for p in pointclouds}) > 1:
        raise ValueError("pointclouds: all Pointclouds must be on the same device")
    out: dict[str, list[torch.Tensor] | None] = {}
    for name in _FIELDS:
        has = [name in p._fields for p in pointclouds]
        if any(has) and not all(has):
            raise ValueError(f"pointclouds: some have {name} and some set to None")
        out[name] = [t for p in pointclouds for t in p._list(name)] if all(has) else None
    if out["features"] and len({t.shape[1] for t in out["features"]}) > 1:
        raise ValueError("pointclouds: all must have the same number of features")
    first = pointclouds[0]
    return Pointclouds._trusted(out["points"], out["normals"], out["features"], first.device,
                                first._dtype)


def join_pointclouds_as_scene(pointclouds: Pointclouds | Sequence[Pointclouds]) -> Pointclouds:
    """Merge every cloud of a batch (or of a list of batches) into one cloud.

    Args:
        pointclouds: a ``Pointclouds`` or a list of them (joined as by
            :func:`join_pointclouds_as_batch` first).

    Returns:
        ``Pointclouds`` of one cloud (the input itself when it already holds one); normals
        and features are kept when present. Differentiable w.r.t. the inputs.
    """
    if not isinstance(pointclouds, Pointclouds):
        pointclouds = join_pointclouds_as_batch(pointclouds)
    if len(pointclouds) == 1:
        return pointclouds
    pick = {name: pointclouds._packed(name) for name in _FIELDS}
    return Pointclouds._trusted(
        [pick["points"]], None if pick["normals"] is None else [pick["normals"]],
        None if pick["features"] is None else [pick["features"]], pointclouds.device,
        pointclouds._dtype)
