"""Textures of a ``Meshes`` batch (PyTorch3D's ``TexturesVertex``, ``TexturesUV``,
``TexturesAtlas``) and the plain sampling functions behind them.

Each class holds one texture per mesh of a batch and answers ``sample_textures(fragments,
faces_packed)`` with one C-channel value per (image, row, column, face slot): (N, H, W, K, C),
zero where ``fragments.pix_to_face`` is -1. ``Meshes`` carries the object along through
``extend``, ``__getitem__``, ``clone``, ``detach``, ``to`` and ``join_meshes_as_batch``
(``join_batch``); those return new objects and never change ``self``.

Conventions (PyTorch3D's):

- UV: u grows to the right, v grows UP: (u, v) = (0, 0) is the bottom-left corner of the
  image, (1, 1) the top-right one; row 0 of a map is its top row. Sampling is
  ``torch.nn.functional.grid_sample`` at ``x = 2u - 1, y = 1 - 2v`` with the object's
  ``align_corners`` (True: u = 0 and u = 1 are the centres of the first and last texel
  columns; False: they are the outer edges of those texels), ``sampling_mode`` ("bilinear"
  or "nearest") and ``padding_mode`` for UVs outside the map ("border": clamp, "zeros",
  "reflection", or "wrap": repeat the map with period 1 in u and v, see
  :func:`sample_texture_map`).
- Padded forms of per-mesh index tensors (``faces_uvs``, ``maps_ids``) use -1 for padding,
  as ``Meshes.faces_padded`` does; padded float tensors (``verts_features``, ``atlas``,
  ``verts_uvs``) pad with 0 and, given as input, mean "every mesh has that many rows" (as a
  padded ``verts`` does for ``Meshes``): use lists for batches of meshes of different sizes.

Nothing here keeps state between calls; every tensor is given to or derived in ``__init__``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import torch
import torch.nn.functional as F

from ..ops.transfer import check_on_device
from ..structures.utils import list_to_padded
from .interpolate import interpolate_face_attributes
from .rect_pack import Rectangle, pack_unique_rectangles

__all__ = [
    "TexturesAtlas",
    "TexturesBase",
    "TexturesUV",
    "TexturesVertex",
    "join_textures",
    "sample_texture_atlas",
    "sample_texture_map",
]

PADDING_MODES = ("zeros", "border", "reflection", "wrap")
SAMPLING_MODES = ("bilinear", "nearest")

BatchIndex = int | slice | Sequence[int] | torch.Tensor
T = TypeVar("T", bound="TexturesBase")


class _FragmentsLike(Protocol):
    pix_to_face: torch.Tensor  # (N, H, W, K) int64, -1 = empty
    bary_coords: torch.Tensor  # (N, H, W, K, 3)


# --------------------------------------------------------------------------- functions


def sample_texture_map(
    maps: torch.Tensor,
    uvs: torch.Tensor,
    padding_mode: str = "border",
    align_corners: bool = True,
    sampling_mode: str = "bilinear",
) -> torch.Tensor:
    """Sample one texture image per batch element at UV coordinates (PyTorch3D's convention).

    Args:
        maps: (N, H, W, C) float images; row 0 is the top of the image.
        uvs: (N, ..., 2) float (u, v): u to the right, v up; (0, 0) is the bottom-left corner.
        padding_mode: what UVs outside [0, 1] see: "border" (the nearest edge texel), "zeros",
            "reflection" (mirrored map), or "wrap" (the map repeated with period 1: UVs are
            taken modulo 1 first; with ``align_corners=True`` u = 0 and u = 1 are the same
            texel column, so the map's last row/column is assumed to repeat its first and is
            never blended with it; with ``align_corners=False`` the map is padded circularly
            by one texel, so bilinear sampling blends across the seam).
        align_corners: True: u, v = 0 and 1 are the centres of the edge texels; False: they
            are the outer edges of the edge texels (``grid_sample``'s meaning).
        sampling_mode: "bilinear" or "nearest" (``grid_sample``'s ``mode``).

    Returns:
        (N, ..., C) in ``maps.dtype``. Differentiable w.r.t. ``maps``, and w.r.t. ``uvs`` for
        bilinear sampling (zero gradient for nearest; piecewise smooth: kinks at texel centres
        and, for "wrap", at integer UVs).

    Raises:
        ValueError: on wrong ranks or batch sizes, non-float inputs or unknown modes.
    """
    if not torch.is_tensor(maps) or maps.ndim != 4 or not maps.is_floating_point():
        raise ValueError(f"maps: expected a float tensor (N, H, W, C), got {_describe(maps)}")
    if not torch.is_tensor(uvs) or uvs.ndim < 2 or uvs.shape[-1] != 2:
        raise ValueError(f"uvs: expected a tensor (N, ..., 2), got {_describe(uvs)}")
    if uvs.shape[0] != maps.shape[0]:
        raise ValueError(f"uvs: batch size {uvs.shape[0]} differs from maps' {maps.shape[0]}")
    _check_modes(padding_mode, align_corners, sampling_mode)
    N, H, W, C = maps.shape
    out_shape = (*uvs.shape[:-1], C)
    if N == 0 or uvs[0].numel() == 0:
        return maps.new_zeros(out_shape)
    if H == 0 or W == 0:
        raise ValueError(f"maps: images must not be empty, got shape {tuple(maps.shape)}")
    image = maps.permute(0, 3, 1, 2)  # (N, C, H, W)
    uv = uvs.reshape(N, 1, -1, 2).to(dtype=maps.dtype, device=maps.device)
    mode = padding_mode
    if padding_mode == "wrap":
        uv = uv - torch.floor(uv)
        mode = "border"
        if not align_corners:
            # One texel of the opposite edge on every side, then the same texel centres.
            image = F.pad(image, (1, 1, 1, 1), mode="circular")
            size = uv.new_tensor([W, H])
            uv = (uv * size + 1.0) / (size + 2.0)
    grid = torch.stack((2.0 * uv[..., 0] - 1.0, 1.0 - 2.0 * uv[..., 1]), dim=-1)
    texels = F.grid_sample(
        image, grid, mode=sampling_mode, padding_mode=mode, align_corners=align_corners
    )  # (N, C, 1, P)
    return texels[:, :, 0].transpose(1, 2).reshape(out_shape)


def sample_texture_atlas(
    atlas_packed: torch.Tensor,
    pix_to_face: torch.Tensor,
    bary_coords: torch.Tensor,
) -> torch.Tensor:
    """Look up per-face R x R texel grids by barycentric coordinates (PyTorch3D/SoftRas).

    The triangle of face f is split into R * R small triangles; texel ``atlas[f, i, j]`` is
    the one whose lower cell holds barycentrics (b0, b1) with ``floor(b1 * R) = i`` and
    ``floor(b0 * R) = j``; the upper half of a cell (frac(b0 R) + frac(b1 R) > 1) reads the
    texel mirrored through the centre, ``atlas[f, R-1-i, R-1-j]``. Cell indices are
    clamped to [0, R-1] (barycentrics outside [0, 1] occur with ``blur_radius > 0``).

    Args:
        atlas_packed: (F, R, R, C) texels of the F packed faces.
        pix_to_face: (N, H, W, K) int64 indices into the F faces; -1 = empty.
        bary_coords: (N, H, W, K, 3) barycentrics.

    Returns:
        (N, H, W, K, C); zero where ``pix_to_face`` is -1. Differentiable w.r.t.
        ``atlas_packed``; not w.r.t. ``bary_coords`` (a nearest-texel lookup).
    """
    if not torch.is_tensor(atlas_packed) or atlas_packed.ndim != 4 or (
        atlas_packed.shape[1] != atlas_packed.shape[2]
    ):
        raise ValueError(
            f"atlas_packed: expected a tensor (F, R, R, C), got {_describe(atlas_packed)}"
        )
    _check_fragments(pix_to_face, bary_coords)
    R, C = atlas_packed.shape[1], atlas_packed.shape[3]
    valid = pix_to_face >= 0
    if atlas_packed.shape[0] == 0 or R == 0:
        return atlas_packed.new_zeros((*pix_to_face.shape, C))
    b01 = torch.where(valid[..., None], bary_coords[..., :2], 0.0).detach()
    cell = (b01 * R).to(torch.int64).clamp(0, R - 1)  # truncation, as PyTorch3D
    lower = (b01.sum(-1) * R - cell.sum(-1).to(b01.dtype)) <= 1.0
    cell = torch.where(lower[..., None], cell, R - 1 - cell)
    texels = atlas_packed[pix_to_face.clamp(min=0), cell[..., 1], cell[..., 0]]
    return torch.where(valid[..., None], texels, texels.new_zeros(()))


def join_textures(textures: Sequence[TexturesBase]) -> TexturesBase:
    """Concatenate textures of one class into one batch (``textures[0].join_batch(rest)``).

    Args:
        textures: a non-empty list of texture objects of the same class and settings.

    Returns:
        A texture object of sum(len(t)) meshes; differentiable w.r.t. every input's tensors.
    """
    if isinstance(textures, TexturesBase) or not isinstance(textures, (list, tuple)):
        raise ValueError("textures: expected a list of texture objects")
    if not textures or not all(isinstance(t, TexturesBase) for t in textures):
        raise ValueError("textures: expected a non-empty list of texture objects")
    return textures[0].join_batch(list(textures[1:]))


# --------------------------------------------------------------------------- helpers


def _describe(x: Any) -> str:
    if torch.is_tensor(x):
        return f"{x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def _check_modes(padding_mode: str, align_corners: bool, sampling_mode: str) -> None:
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got {padding_mode!r}")
    if sampling_mode not in SAMPLING_MODES:
        raise ValueError(
            f"sampling_mode: expected one of {SAMPLING_MODES}, got {sampling_mode!r}"
        )
    if not isinstance(align_corners, bool):
        raise ValueError(f"align_corners: expected a bool, got {align_corners!r}")


def _check_fragments(pix_to_face: torch.Tensor, bary_coords: torch.Tensor) -> None:
    if not torch.is_tensor(pix_to_face) or pix_to_face.ndim != 4:
        raise ValueError(
            f"fragments.pix_to_face: expected (N, H, W, K), got {_describe(pix_to_face)}"
        )
    if not torch.is_tensor(bary_coords) or bary_coords.shape != (*pix_to_face.shape, 3):
        raise ValueError(
            f"fragments.bary_coords: expected shape {(*pix_to_face.shape, 3)}, "
            f"got {_describe(bary_coords)}"
        )


def _as_items(x: Any, name: str, item_ndim: int, what: str) -> tuple[list[torch.Tensor], bool]:
    """A list/tuple of tensors of rank ``item_ndim`` or a tensor of rank ``item_ndim + 1``.

    Returns (items, given_padded).
    """
    if isinstance(x, (list, tuple)):
        for i, t in enumerate(x):
            if not torch.is_tensor(t) or t.ndim != item_ndim:
                raise ValueError(f"{name}[{i}]: expected a tensor {what}, got {_describe(t)}")
        return list(x), False
    if torch.is_tensor(x):
        if x.ndim != item_ndim + 1:
            raise ValueError(f"{name}: expected a tensor (N, {what[1:]}, got {_describe(x)}")
        return list(x.unbind(0)), True
    raise ValueError(f"{name}: expected a list of tensors or a tensor, got {type(x).__name__}")


def _check_float(items: Sequence[torch.Tensor], name: str) -> None:
    for i, t in enumerate(items):
        if not t.is_floating_point():
            raise ValueError(f"{name}[{i}]: expected a floating-point tensor, got {t.dtype}")
        if t.numel() and not bool(torch.isfinite(t.detach()).all()):
            raise ValueError(f"{name}[{i}] contains NaN or inf")


def _check_int(items: Sequence[torch.Tensor], name: str) -> list[torch.Tensor]:
    out = []
    for i, t in enumerate(items):
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"{name}[{i}]: expected an integer tensor, got {t.dtype}")
        out.append(t.to(torch.int64))
    return out


def _check_range(items: Sequence[torch.Tensor], sizes: Sequence[int], name: str,
                 target: str) -> None:
    for i, (t, n) in enumerate(zip(items, sizes, strict=True)):
        if t.numel() == 0:
            continue
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"{name}[{i}]: index {bad} out of range for {target}[{i}] with {n} entries"
            )


def _check_devices(groups: Sequence[tuple[str, Sequence[torch.Tensor]]]) -> torch.device:
    device = None
    for name, items in groups:
        for t in items:
            if device is None:
                device = t.device
            elif t.device != device:
                raise ValueError(f"{name}: tensors on {t.device} and {device}; use one device")
    return device if device is not None else torch.device("cpu")


def _check_batch(n: int, counts: Sequence[tuple[str, int]]) -> None:
    for name, m in counts:
        if m != n:
            raise ValueError(f"{name}: batch size {m} differs from the others' {n}")


def _drop_index_padding(faces: torch.Tensor) -> torch.Tensor:
    """(F, ...) integer rows; trailing rows that are all -1 removed."""
    if faces.shape[0] == 0:
        return faces
    keep = (faces != -1).reshape(faces.shape[0], -1).any(dim=1)
    idx = torch.nonzero(keep).flatten()
    return faces[: int(idx[-1]) + 1] if idx.numel() else faces[:0]


def _batch_ids(index: BatchIndex, n: int) -> list[int]:
    """Batch indices picked by an int, slice, list of ints or 1-D int/bool tensor."""
    if isinstance(index, bool):
        raise IndexError(f"cannot index textures with {index!r}")
    if isinstance(index, int):
        if not -n <= index < n:
            raise IndexError(f"texture index {index} out of range for {n} meshes")
        return [index % n]
    if isinstance(index, slice):
        return list(range(n))[index]
    if torch.is_tensor(index):
        if index.ndim != 1 or index.is_floating_point() or index.is_complex():
            raise IndexError(f"expected a 1-D int or bool tensor, got {_describe(index)}")
        if index.dtype == torch.bool:
            if index.shape[0] != n:
                raise IndexError(f"bool index of length {index.shape[0]} for {n} meshes")
            index = torch.nonzero(index).flatten()
        index = index.tolist()
    if isinstance(index, (list, tuple)):
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in index):
            raise IndexError(f"expected integer indices, got {index!r}")
        bad = [i for i in index if not -n <= i < n]
        if bad:
            raise IndexError(f"texture indices {bad} out of range for {n} meshes")
        return [i % n for i in index]
    raise IndexError(f"cannot index textures with {type(index).__name__}")


def _trim_to(items: list[torch.Tensor], counts: list[int], name: str) -> list[torch.Tensor]:
    """Rows [0, counts[i]) of each item: the rest of a padded input is padding."""
    for i, (t, n) in enumerate(zip(items, counts, strict=True)):
        if not 0 <= n <= t.shape[0]:
            raise ValueError(f"{name}: count {n} for mesh {i}, which has {t.shape[0]} rows")
    return [t[:n] for t, n in zip(items, counts, strict=True)]


def _submesh_ids(ids_list: Any, n_meshes: int, name: str) -> list[list[torch.Tensor]]:
    """Per mesh, the 1-D int index tensors of its submeshes (``Meshes.submeshes``' input)."""
    if ids_list is None or len(ids_list) != n_meshes:
        got = "None" if ids_list is None else str(len(ids_list))
        raise IndexError(f"{name}: expected one entry per mesh ({n_meshes}), got {got}")
    out = []
    for n, per_mesh in enumerate(ids_list):
        subs = []
        for ids in per_mesh:
            if not torch.is_tensor(ids) or ids.ndim != 1 or ids.is_floating_point():
                raise ValueError(f"{name}[{n}]: expected 1-D integer tensors, got "
                                 f"{_describe(ids)}")
            subs.append(ids.to(torch.int64))
        out.append(subs)
    return out


def _pad_list(items: Sequence[torch.Tensor], pad_value: float, shape: tuple[int, ...],
              dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Stack items (M_i, ...) into (N, max M_i, ...); ``shape`` is the item shape when N = 0."""
    if not items:
        return torch.zeros((0, *shape), dtype=dtype, device=device)
    return list_to_padded(list(items), pad_value=pad_value)


def _packed(items: Sequence[torch.Tensor], shape: tuple[int, ...], dtype: torch.dtype,
            device: torch.device) -> torch.Tensor:
    if not items:
        return torch.zeros((0, *shape), dtype=dtype, device=device)
    return torch.cat(list(items), dim=0)


def _resize_maps(maps: Sequence[torch.Tensor], align_corners: bool) -> torch.Tensor:
    """Stack maps (..., H_i, W_i, C) resized (bilinear) to the largest H and W (PyTorch3D)."""
    H = max(m.shape[-3] for m in maps)
    W = max(m.shape[-2] for m in maps)
    out = []
    for m in maps:
        if m.shape[-3:-1] != (H, W):
            lead = m.shape[:-3]
            img = m.reshape(-1, *m.shape[-3:]).permute(0, 3, 1, 2)
            img = F.interpolate(img, size=(H, W), mode="bilinear", align_corners=align_corners)
            m = img.permute(0, 2, 3, 1).reshape(*lead, H, W, m.shape[-1])
        out.append(m)
    return torch.stack(out, dim=0)


# --------------------------------------------------------------------------- base


class TexturesBase:
    """What every texture class shares: batch selection, copies, device moves.

    Subclasses implement ``_select(ids)`` (a new object holding meshes ``ids``, in order),
    ``_map(fn)`` (a new object with ``fn`` applied to every tensor), ``join_batch``,
    ``sample_textures`` and ``faces_verts_textures_packed``.
    """

    _N: int
    device: torch.device
    # PyTorch3D's Meshes writes ``valid`` and per-mesh counts into the textures it holds;
    # None until written (then they travel along with the batch operations).
    _valid: torch.Tensor | None = None
    _given_counts: dict[str, list[int]] | None = None

    def __len__(self) -> int:
        """Number of meshes N."""
        return self._N

    # ------------------------------------------------------------ PyTorch3D's mesh hooks

    @property
    def valid(self) -> torch.Tensor:
        """(N,) bool: which meshes of the batch are valid (non-empty). All True unless set;
        PyTorch3D's ``Meshes`` sets it to its own ``valid``. A fresh tensor when unset."""
        if self._valid is not None:
            return self._valid
        return torch.ones(self._N, dtype=torch.bool, device=self.device)

    @valid.setter
    def valid(self, value: torch.Tensor) -> None:
        if not torch.is_tensor(value) or value.shape != (self._N,):
            raise ValueError(f"valid: expected a tensor of shape ({self._N},), got "
                             f"{_describe(value)}")
        self._valid = value.to(dtype=torch.bool)

    def _given_count(self, name: str) -> list[int] | None:
        return None if self._given_counts is None else self._given_counts.get(name)

    def _store_count(self, name: str, counts: Sequence[int] | torch.Tensor) -> list[int]:
        """Record a per-mesh count written by a mesh structure; returns it as a list."""
        if torch.is_tensor(counts):
            counts = counts.tolist()
        counts = [int(c) for c in counts]
        if len(counts) != self._N:
            raise ValueError(f"{name}: expected {self._N} counts, got {len(counts)}")
        self._given_counts = {**(self._given_counts or {}), name: counts}
        return counts

    def _with_extras(self: T, out: T, ids: list[int] | None = None,
                     fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> T:
        """``out`` (a selection ``ids`` of, or ``fn`` applied to, self) given self's
        PyTorch3D-side state: ``valid`` and the counts written by a mesh structure."""
        if self._given_counts:
            out._given_counts = {
                k: v if ids is None else [v[i] for i in ids] for k, v in self._given_counts.items()
            }
        if self._valid is not None:
            if ids is not None:
                idx = torch.tensor(ids, dtype=torch.int64, device=self._valid.device)
                out._valid = self._valid[idx]
            else:
                out._valid = fn(self._valid) if fn is not None else self._valid
        return out

    def isempty(self) -> bool:
        """True when the batch has no meshes or every mesh has no texture entries."""
        raise NotImplementedError

    def _select(self: T, ids: list[int]) -> T:
        raise NotImplementedError

    def _map(self: T, fn: Callable[[torch.Tensor], torch.Tensor]) -> T:
        raise NotImplementedError

    def __getitem__(self: T, index: BatchIndex) -> T:
        """Meshes picked by an int (a batch of one), slice, list of ints or 1-D int/bool tensor.

        Differentiable: the result's tensors are views/gathers of this object's.
        """
        ids = _batch_ids(index, self._N)
        return self._with_extras(self._select(ids), ids=ids)

    def extend(self: T, N: int) -> T:
        """Each mesh's texture ``N`` times in a row (t0, t0, ..., t1, t1, ...), as
        ``Meshes.extend``; gradients from every copy flow back to the originals."""
        if isinstance(N, bool) or not isinstance(N, int) or N <= 0:
            raise ValueError(f"N must be a positive int, got {N!r}")
        ids = [i for i in range(self._N) for _ in range(N)]
        return self._with_extras(self._select(ids), ids=ids)

    def clone(self: T) -> T:
        """Copy with cloned tensors (still differentiable w.r.t. the originals)."""
        return self._with_extras(self._map(torch.Tensor.clone), fn=torch.Tensor.clone)

    def detach(self: T) -> T:
        """Copy with tensors detached from the autograd graph."""
        return self._with_extras(self._map(torch.Tensor.detach), fn=torch.Tensor.detach)

    def to(self: T, device: str | torch.device) -> T:
        """This texture on ``device`` (``self`` if already there). Returns a new object;
        ``self`` is unchanged (PyTorch3D moves in place)."""
        device = torch.empty(0, device=device).device
        if device == self.device:
            return self
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device)

        return self._with_extras(self._map(move), fn=move)

    def cpu(self: T) -> T:
        """This texture on the CPU."""
        return self.to("cpu")

    def cuda(self: T) -> T:
        """This texture on the current CUDA device."""
        return self.to("cuda")

    def join_batch(self: T, textures: Sequence[T]) -> T:
        """``self`` followed by ``textures`` as one batch (for ``join_meshes_as_batch``)."""
        raise NotImplementedError

    def sample_textures(
        self, fragments: _FragmentsLike, faces_packed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N, H, W, K, C) texture values at the rasterized pixels."""
        raise NotImplementedError

    def _check_join(self, textures: Sequence[TexturesBase]) -> list[TexturesBase]:
        if isinstance(textures, TexturesBase) or not isinstance(textures, (list, tuple)):
            raise ValueError("textures: expected a list of texture objects")
        for t in textures:
            if type(t) is not type(self):
                raise ValueError(
                    f"textures: all meshes must have the same type of texture; cannot join "
                    f"{type(t).__name__} to {type(self).__name__}"
                )
            if t.device != self.device:
                raise ValueError(f"textures: on {t.device} and {self.device}; use one device")
        return [self, *textures]

    def _check_sample_batch(self, pix_to_face: torch.Tensor) -> None:
        if pix_to_face.shape[0] != self._N:
            raise ValueError(
                f"fragments: {pix_to_face.shape[0]} images for {self._N} textures "
                "(extend the meshes to the cameras' batch size)"
            )


# --------------------------------------------------------------------------- vertex


class TexturesVertex(TexturesBase):
    """One C-channel feature per vertex, interpolated across faces with barycentrics.

    Attributes:
        device: where the features live.
    """

    def __init__(self, verts_features: Sequence[torch.Tensor] | torch.Tensor) -> None:
        """Args:
            verts_features: N float tensors (V_i, C), or one (N, V, C) tensor (every mesh has
                V vertices). The features need not be colours: any C >= 1.

        Raises:
            ValueError: wrong ranks, different C, non-float or non-finite values, mixed devices.
        """
        items, padded = _as_items(verts_features, "verts_features", 2, "(V, C)")
        _check_float(items, "verts_features")
        if len({t.shape[1] for t in items}) > 1:
            raise ValueError("verts_features: all meshes need the same number of channels C")
        device = _check_devices([("verts_features", items)])
        channels = int(items[0].shape[1]) if items else 3
        dtype = items[0].dtype if items else torch.float32
        self._set(items, verts_features if padded else None, channels, dtype, device)

    def _set(self, items: list[torch.Tensor], padded: torch.Tensor | None, channels: int,
             dtype: torch.dtype, device: torch.device) -> None:
        self._verts_features_list = items
        self._features_padded_in = padded
        self._channels = channels
        self._dtype = dtype
        self.device = device
        self._N = len(items)

    def _trusted(self, items: list[torch.Tensor],
                 padded: torch.Tensor | None = None) -> TexturesVertex:
        out = TexturesVertex.__new__(TexturesVertex)
        device = items[0].device if items else self.device
        out._set(items, padded, self._channels, self._dtype, device)
        return out

    # views
    def verts_features_list(self) -> list[torch.Tensor]:
        """N tensors (V_i, C). Differentiable (the tensors given, or views of them)."""
        return list(self._verts_features_list)

    def verts_features_padded(self) -> torch.Tensor:
        """(N, max V_i, C), zero-padded (the tensor given, if one was). Differentiable."""
        if self._features_padded_in is not None:
            return self._features_padded_in
        return _pad_list(self._verts_features_list, 0.0, (0, self._channels), self._dtype,
                         self.device)

    def verts_features_packed(self) -> torch.Tensor:
        """(sum V_i, C), the rows of every mesh in order. Differentiable."""
        return _packed(self._verts_features_list, (self._channels,), self._dtype, self.device)

    def num_verts_per_mesh(self) -> list[int]:
        """V_i of every mesh."""
        return [int(t.shape[0]) for t in self._verts_features_list]

    def isempty(self) -> bool:
        """True when there are no meshes or no vertices at all."""
        return self._N == 0 or sum(self.num_verts_per_mesh()) == 0

    # batch operations
    def _select(self, ids: list[int]) -> TexturesVertex:
        return self._trusted([self._verts_features_list[i] for i in ids])

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> TexturesVertex:
        items = [fn(t) for t in self._verts_features_list]
        padded = None
        if self._features_padded_in is not None:
            padded = fn(self._features_padded_in)
            items = list(padded.unbind(0))
        return self._trusted(items, padded)

    def join_batch(self, textures: Sequence[TexturesVertex]) -> TexturesVertex:
        """``self`` then ``textures`` (all ``TexturesVertex`` with the same C) as one batch."""
        parts = self._check_join(textures)
        if len({p._channels for p in parts}) > 1:
            raise ValueError("textures: all must have the same number of channels C")
        return self._trusted([t for p in parts for t in p._verts_features_list])

    def join_scene(self) -> TexturesVertex:
        """One mesh holding every mesh's vertices in order (for a joined scene)."""
        return self._trusted([self.verts_features_packed()])

    def check_shapes(self, batch_size: int, max_num_verts: int, max_num_faces: int) -> bool:
        """Whether the padded features are (batch_size, max_num_verts, C)."""
        return tuple(self.verts_features_padded().shape[:2]) == (batch_size, max_num_verts)

    def submeshes(self, vertex_ids_list: Sequence[Sequence[torch.Tensor]],
                  faces_ids_list: Any = None) -> TexturesVertex:
        """The features of submeshes (for ``Meshes.submeshes``).

        Args:
            vertex_ids_list: per mesh, a list of 1-D int tensors: the vertices each of its
                submeshes keeps, in the submesh's vertex order.
            faces_ids_list: unused (features belong to vertices).

        Returns:
            ``TexturesVertex`` of sum(len(v) for v in vertex_ids_list) meshes.
            Differentiable w.r.t. the features.
        """
        per_mesh = _submesh_ids(vertex_ids_list, self._N, "vertex_ids_list")
        items = [f[ids.to(f.device)] for f, subs in zip(self._verts_features_list, per_mesh,
                                                        strict=True) for ids in subs]
        return self._trusted(items)

    # PyTorch3D internals: its tests and Meshes read (and Meshes writes) these.
    @property
    def _verts_features_padded(self) -> torch.Tensor:
        return self.verts_features_padded()

    @property
    def _num_verts_per_mesh(self) -> list[int]:
        return self.num_verts_per_mesh()

    @_num_verts_per_mesh.setter
    def _num_verts_per_mesh(self, counts: Sequence[int] | torch.Tensor) -> None:
        counts = self._store_count("num_verts_per_mesh", counts)
        if self._features_padded_in is not None:
            self._verts_features_list = _trim_to(self._verts_features_list, counts,
                                                 "num_verts_per_mesh")

    @property
    def _num_faces_per_mesh(self) -> list[int] | None:
        return self._given_count("num_faces_per_mesh")

    @_num_faces_per_mesh.setter
    def _num_faces_per_mesh(self, counts: Sequence[int] | torch.Tensor) -> None:
        self._store_count("num_faces_per_mesh", counts)

    # sampling
    def faces_verts_textures_packed(self, faces_packed: torch.Tensor) -> torch.Tensor:
        """Features at the corners of every packed face.

        Args:
            faces_packed: (F, 3) int64 indices into the packed vertices (``Meshes.faces_packed``).

        Returns:
            (F, 3, C); differentiable w.r.t. the features.
        """
        return self.verts_features_packed()[self._check_faces(faces_packed)]

    def _check_faces(self, faces_packed: torch.Tensor | None) -> torch.Tensor:
        if faces_packed is None:
            raise ValueError("faces_packed: TexturesVertex needs the meshes' packed faces")
        if not torch.is_tensor(faces_packed) or faces_packed.ndim != 2 or (
            faces_packed.shape[1] != 3
        ):
            raise ValueError(f"faces_packed: expected (F, 3), got {_describe(faces_packed)}")
        V = sum(self.num_verts_per_mesh())
        if faces_packed.numel() and int(faces_packed.max()) >= V:
            raise ValueError(
                f"faces_packed: vertex index {int(faces_packed.max())} but the textures have "
                f"{V} vertex features (one row per mesh vertex)"
            )
        return faces_packed

    def sample_textures(
        self, fragments: _FragmentsLike, faces_packed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Barycentric interpolation of the corner features of the face at each pixel.

        Args:
            fragments: rasterizer output with ``pix_to_face`` (N, H, W, K) and
                ``bary_coords`` (N, H, W, K, 3).
            faces_packed: (F, 3) the meshes' packed faces (required).

        Returns:
            (N, H, W, K, C); zero where ``pix_to_face`` is -1. Differentiable w.r.t. the
            features and ``fragments.bary_coords``.
        """
        _check_fragments(fragments.pix_to_face, fragments.bary_coords)
        face_feats = self.faces_verts_textures_packed(faces_packed)
        return interpolate_face_attributes(
            fragments.pix_to_face, fragments.bary_coords, face_feats
        )


# --------------------------------------------------------------------------- UV


class TexturesUV(TexturesBase):
    """Texture images sampled at per-face-corner UV coordinates (PyTorch3D's ``TexturesUV``).

    Every mesh has a UV per face corner, ``verts_uvs[faces_uvs[f, j]]``; the UV of a pixel is
    the barycentric blend of its face's three corner UVs, and its value is the texture image
    sampled there (see the module docstring for the convention). Optionally every face picks
    one of M images of its mesh (``maps_ids``).

    Attributes:
        padding_mode, align_corners, sampling_mode: the sampling settings (read-only).
        device: where the tensors live.
    """

    def __init__(
        self,
        maps: torch.Tensor | Sequence[torch.Tensor],
        faces_uvs: torch.Tensor | Sequence[torch.Tensor],
        verts_uvs: torch.Tensor | Sequence[torch.Tensor],
        padding_mode: str = "border",
        align_corners: bool = True,
        sampling_mode: str = "bilinear",
        maps_ids: torch.Tensor | Sequence[torch.Tensor] | None = None,
    ) -> None:
        """Args:
            maps: without ``maps_ids``: (N, H, W, C) float tensor or N tensors (H_i, W_i, C);
                with ``maps_ids``: (N, M, H, W, C) or N tensors (M_i, H_i, W_i, C). Images of
                different sizes are resized (bilinear, this ``align_corners``) to the largest
                H and W, as PyTorch3D does; ``maps_list()`` keeps the originals.
            faces_uvs: N integer tensors (F_i, 3), or (N, F, 3) whose trailing rows of -1 are
                padding; indices into that mesh's ``verts_uvs``. Row f belongs to the mesh's
                face f, so F_i must equal the mesh's face count. Their type and range are
                checked where they are first used (sampling, ``join_scene``, ``submeshes``),
                as PyTorch3D accepts any tensor of that shape here.
            verts_uvs: N float tensors (T_i, 2), or (N, T, 2); (u, v) with v up.
            padding_mode: "border" (default), "zeros", "reflection" or "wrap".
            align_corners: ``grid_sample``'s meaning (default True, as PyTorch3D).
            sampling_mode: "bilinear" (default) or "nearest".
            maps_ids: optional N integer tensors (F_i,), or (N, F) (entries past F_i are
                ignored): the image of each face, in [0, M_i).

        Raises:
            ValueError: naming the argument, on wrong ranks or shapes, batch-size mismatches,
                ``maps_ids`` out of range, non-finite maps or UVs, mixed devices, unknown
                modes (shapes, batch sizes and devices are checked first, as PyTorch3D does).
        """
        _check_modes(padding_mode, align_corners, sampling_mode)
        multi = maps_ids is not None
        map_ndim = 4 if multi else 3
        what = "(M, H, W, C)" if multi else "(H, W, C)"
        if torch.is_tensor(maps) and maps.ndim == 5 and not multi:
            raise ValueError(
                f"maps: got {_describe(maps)}; several maps per mesh need maps_ids"
            )
        # Shapes, batch sizes and devices first, then values (PyTorch3D's order of checks).
        map_items, maps_padded = _as_items(maps, "maps", map_ndim, what)
        faces_items, faces_padded = _as_items(faces_uvs, "faces_uvs", 2, "(F, 3)")
        for i, f in enumerate(faces_items):
            if f.shape[1] != 3:
                raise ValueError(f"faces_uvs[{i}]: expected shape (F, 3), got {tuple(f.shape)}")
        uv_items, uv_padded = _as_items(verts_uvs, "verts_uvs", 2, "(T, 2)")
        for i, v in enumerate(uv_items):
            if v.shape[1] != 2:
                raise ValueError(f"verts_uvs[{i}]: expected shape (T, 2), got {tuple(v.shape)}")
        N = len(faces_items)
        counts = [("verts_uvs", len(uv_items)), ("maps", len(map_items))]
        ids_items = None
        if multi:
            ids_items, ids_padded = _as_items(maps_ids, "maps_ids", 1, "(F,)")
            counts.append(("maps_ids", len(ids_items)))
        _check_batch(N, counts)
        groups = [("verts_uvs", uv_items), ("faces_uvs", faces_items), ("maps", map_items)]
        device = _check_devices([*groups, ("maps_ids", ids_items or [])])
        _check_float(map_items, "maps")
        for i, m in enumerate(map_items):
            if min(m.shape[:-1], default=0) == 0 or m.shape[-1] == 0:
                raise ValueError(f"maps[{i}]: empty image, shape {tuple(m.shape)}")
        if len({m.shape[-1] for m in map_items}) > 1:
            raise ValueError("maps: all images need the same number of channels C")
        _check_float(uv_items, "verts_uvs")
        # Integer faces_uvs become int64 here; their type and range are checked where they
        # are first used (PyTorch3D accepts any faces_uvs when built).
        faces_items = [f if f.is_floating_point() else f.to(torch.int64) for f in faces_items]
        if faces_padded:
            faces_items = [_drop_index_padding(f) for f in faces_items]
        if ids_items is not None:
            ids_items = _check_int(ids_items, "maps_ids")
            for i, (ids, f) in enumerate(zip(ids_items, faces_items, strict=True)):
                if ids.shape[0] < f.shape[0] or (not ids_padded and ids.shape[0] != f.shape[0]):
                    raise ValueError(
                        f"maps_ids[{i}]: {ids.shape[0]} entries for {f.shape[0]} faces"
                    )
            ids_items = [ids[: f.shape[0]] for ids, f in zip(ids_items, faces_items, strict=True)]
            _check_range(ids_items, [m.shape[0] for m in map_items], "maps_ids", "maps")
        self.padding_mode = padding_mode
        self.align_corners = align_corners
        self.sampling_mode = sampling_mode
        if maps_padded:
            padded = maps
        elif map_items:
            if multi:
                M = max(m.shape[0] for m in map_items)
                map_items_m = [F.pad(m, (0, 0, 0, 0, 0, 0, 0, M - m.shape[0]))
                               for m in map_items]
                padded = _resize_maps(map_items_m, align_corners)
            else:
                padded = _resize_maps(map_items, align_corners)
        else:
            padded = torch.zeros((0, *([0] * (map_ndim - 1)), 3), device=device)
        self._set(
            padded, None if maps_padded else list(map_items), faces_items, uv_items,
            verts_uvs if uv_padded else None, ids_items, device,
        )
        self._faces_padded_in = faces_padded

    def _set(self, maps_padded: torch.Tensor, maps_list: list[torch.Tensor] | None,
             faces_uvs: list[torch.Tensor], verts_uvs: list[torch.Tensor],
             verts_uvs_padded: torch.Tensor | None, maps_ids: list[torch.Tensor] | None,
             device: torch.device) -> None:
        self._maps_padded = maps_padded
        self._maps_list = maps_list
        self._faces_uvs_list = faces_uvs
        self._verts_uvs_list = verts_uvs
        self._uvs_padded_in = verts_uvs_padded
        self._maps_ids_list = maps_ids
        self.device = device
        self._N = len(faces_uvs)

    def _trusted(self, maps_padded: torch.Tensor, maps_list: list[torch.Tensor] | None,
                 faces_uvs: list[torch.Tensor], verts_uvs: list[torch.Tensor],
                 maps_ids: list[torch.Tensor] | None,
                 verts_uvs_padded: torch.Tensor | None = None) -> TexturesUV:
        """A new object with these (already valid) parts and this object's settings."""
        out = TexturesUV.__new__(TexturesUV)
        out.padding_mode = self.padding_mode
        out.align_corners = self.align_corners
        out.sampling_mode = self.sampling_mode
        out._set(maps_padded, maps_list, faces_uvs, verts_uvs, verts_uvs_padded, maps_ids,
                 maps_padded.device)
        out._faces_checked = self._faces_checked
        return out

    # faces_uvs as given are checked on first use; the objects derived from a checked one are
    _faces_checked = False
    _faces_padded_in = False

    def _checked_faces_uvs(self) -> list[torch.Tensor]:
        """The int64 faces_uvs, checked (once) to be integers indexing their verts_uvs."""
        if not self._faces_checked:
            for i, f in enumerate(self._faces_uvs_list):
                if f.is_floating_point():
                    raise ValueError(f"faces_uvs[{i}]: expected an integer tensor, got {f.dtype}")
            sizes = [v.shape[0] for v in self._verts_uvs_list]
            if self.device.type == "cuda":
                # no host sync: a device-side assertion per mesh
                for f, n in zip(self._faces_uvs_list, sizes, strict=True):
                    if f.numel():
                        check_on_device((f.min() >= 0) & (f.max() < n),
                                        f"faces_uvs: an index outside [0, {n})")
            else:
                _check_range(self._faces_uvs_list, sizes, "faces_uvs", "verts_uvs")
            self._faces_checked = True
        return self._faces_uvs_list

    # views
    def maps_padded(self) -> torch.Tensor:
        """(N, H, W, C), or (N, M, H, W, C) with ``maps_ids``: the images that are sampled.
        Differentiable w.r.t. the maps given."""
        return self._maps_padded

    def maps_list(self) -> list[torch.Tensor]:
        """N images (H_i, W_i, C) (or (M_i, H_i, W_i, C)) as given (unresized)."""
        if self._maps_list is not None:
            return list(self._maps_list)
        return list(self._maps_padded.unbind(0))

    def faces_uvs_list(self) -> list[torch.Tensor]:
        """N tensors (F_i, 3): int64, or as given when they were not integers."""
        return list(self._faces_uvs_list)

    def faces_uvs_padded(self) -> torch.Tensor:
        """(N, max F_i, 3) int64, padded with -1 (PyTorch3D pads with 0)."""
        return _pad_list(self._faces_uvs_list, -1, (0, 3), torch.int64, self.device)

    def verts_uvs_list(self) -> list[torch.Tensor]:
        """N float tensors (T_i, 2). Differentiable."""
        return list(self._verts_uvs_list)

    def verts_uvs_padded(self) -> torch.Tensor:
        """(N, max T_i, 2), zero-padded (the tensor given, if one was). Differentiable."""
        if self._uvs_padded_in is not None:
            return self._uvs_padded_in
        return _pad_list(self._verts_uvs_list, 0.0, (0, 2), self._maps_padded.dtype,
                         self.device)

    def maps_ids_list(self) -> list[torch.Tensor] | None:
        """N int64 tensors (F_i,) (the image of each face), or None without ``maps_ids``."""
        return None if self._maps_ids_list is None else list(self._maps_ids_list)

    def maps_ids_padded(self) -> torch.Tensor | None:
        """(N, max F_i) int64 padded with -1, or None without ``maps_ids``."""
        if self._maps_ids_list is None:
            return None
        return _pad_list(self._maps_ids_list, -1, (0,), torch.int64, self.device)

    def num_faces_per_mesh(self) -> list[int]:
        """F_i of every mesh."""
        return [int(f.shape[0]) for f in self._faces_uvs_list]

    def faces_verts_uvs_packed(self) -> torch.Tensor:
        """(sum F_i, 3, 2): the UV of every corner of every packed face. Differentiable
        w.r.t. ``verts_uvs``."""
        items = [v[f] for v, f in zip(self._verts_uvs_list, self._checked_faces_uvs(),
                                      strict=True)]
        return _packed(items, (3, 2), self._maps_padded.dtype, self.device)

    def isempty(self) -> bool:
        """True when there are no meshes or no faces at all."""
        return self._N == 0 or sum(self.num_faces_per_mesh()) == 0

    def check_shapes(self, batch_size: int, max_num_verts: int, max_num_faces: int) -> bool:
        """Whether there are ``batch_size`` meshes with ``max_num_faces`` faces at most."""
        return self._N == batch_size and max(self.num_faces_per_mesh(), default=0) == (
            max_num_faces
        )

    def submeshes(self, vertex_ids_list: Any,
                  faces_ids_list: Sequence[Sequence[torch.Tensor]]) -> TexturesUV:
        """The textures of submeshes (for ``Meshes.submeshes``).

        Args:
            vertex_ids_list: unused (UVs belong to face corners).
            faces_ids_list: per mesh, a list of 1-D int tensors: the faces each of its
                submeshes keeps, in order.

        Returns:
            ``TexturesUV`` of sum(len(f) for f in faces_ids_list) meshes: each keeps its
            mesh's image(s) (shared, not copied), the chosen ``faces_uvs`` rows (and
            ``maps_ids``) and only the UVs they use, in their original order (``faces_uvs``
            renumbered). Differentiable w.r.t. the maps and ``verts_uvs``.
        """
        per_mesh = _submesh_ids(faces_ids_list, self._N, "faces_ids_list")
        faces_list = self._checked_faces_uvs()
        src, faces, uvs, ids_out = [], [], [], []
        for n, subs in enumerate(per_mesh):
            for ids in subs:
                ids = ids.to(self.device)
                kept = faces_list[n][ids]
                used, remap = torch.unique(kept, return_inverse=True)
                src.append(n)
                faces.append(remap.reshape(-1, 3))
                uvs.append(self._verts_uvs_list[n][used])
                if self._maps_ids_list is not None:
                    ids_out.append(self._maps_ids_list[n][ids])
        picked = self._select(src)
        out = self._trusted(picked._maps_padded, picked._maps_list, faces, uvs,
                            ids_out if self._maps_ids_list is not None else None)
        out._faces_checked = True
        return out

    # PyTorch3D internals: its tests and Meshes read (and Meshes writes) these.
    @property
    def _faces_uvs_padded(self) -> torch.Tensor:
        return self.faces_uvs_padded()

    @property
    def _verts_uvs_padded(self) -> torch.Tensor:
        return self.verts_uvs_padded()

    @property
    def _maps_ids_padded(self) -> torch.Tensor | None:
        return self.maps_ids_padded()

    @property
    def _num_faces_per_mesh(self) -> list[int]:
        return self.num_faces_per_mesh()

    @_num_faces_per_mesh.setter
    def _num_faces_per_mesh(self, counts: Sequence[int] | torch.Tensor) -> None:
        counts = self._store_count("num_faces_per_mesh", counts)
        if self._faces_padded_in:
            self._faces_uvs_list = _trim_to(self._faces_uvs_list, counts, "num_faces_per_mesh")
            if self._maps_ids_list is not None:
                self._maps_ids_list = _trim_to(self._maps_ids_list, counts,
                                               "num_faces_per_mesh")

    @property
    def _num_verts_per_mesh(self) -> list[int] | None:
        return self._given_count("num_verts_per_mesh")

    @_num_verts_per_mesh.setter
    def _num_verts_per_mesh(self, counts: Sequence[int] | torch.Tensor) -> None:
        # PyTorch3D keeps every verts_uvs row: UVs are not per mesh vertex
        self._store_count("num_verts_per_mesh", counts)

    # batch operations
    def _select(self, ids: list[int]) -> TexturesUV:
        idx = torch.tensor(ids, dtype=torch.int64, device=self.device)
        maps_list = None if self._maps_list is None else [self._maps_list[i] for i in ids]
        if ids and all(i == ids[0] for i in ids):
            # One mesh extended to many views: share its map (a broadcast view, no copy).
            maps = self._maps_padded[ids[0] : ids[0] + 1].expand(
                len(ids), *self._maps_padded.shape[1:]
            )
        else:
            maps = self._maps_padded.index_select(0, idx)
        return self._trusted(
            maps, maps_list,
            [self._faces_uvs_list[i] for i in ids], [self._verts_uvs_list[i] for i in ids],
            None if self._maps_ids_list is None else [self._maps_ids_list[i] for i in ids],
        )

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> TexturesUV:
        def apply(items: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
            return None if items is None else [fn(t) for t in items]

        uv_padded = uvs = None
        if self._uvs_padded_in is not None:
            uv_padded = fn(self._uvs_padded_in)
            uvs = list(uv_padded.unbind(0))
        return self._trusted(
            fn(self._maps_padded), apply(self._maps_list), apply(self._faces_uvs_list),
            uvs if uvs is not None else apply(self._verts_uvs_list),
            apply(self._maps_ids_list), uv_padded,
        )

    def join_batch(self, textures: Sequence[TexturesUV]) -> TexturesUV:
        """``self`` then ``textures`` as one batch.

        All must be ``TexturesUV`` with the same ``padding_mode``, ``align_corners``,
        ``sampling_mode``, channel count and use of ``maps_ids``. Images of different sizes
        are resized to the largest, as in ``__init__``. Differentiable w.r.t. every input.
        """
        parts = self._check_join(textures)
        for name in ("padding_mode", "align_corners", "sampling_mode"):
            if len({getattr(p, name) for p in parts}) > 1:
                raise ValueError(f"textures: all must have the same {name}")
        if len({p._maps_padded.shape[-1] for p in parts}) > 1:
            raise ValueError("textures: all must have the same number of channels C")
        if len({p._maps_ids_list is None for p in parts}) > 1:
            raise ValueError("textures: either all or none must have maps_ids")
        maps_list = [m for p in parts for m in p.maps_list()]
        shapes = {p._maps_padded.shape[1:] for p in parts}
        if len(shapes) == 1:
            padded = torch.cat([p._maps_padded for p in parts], dim=0)
        elif self._maps_ids_list is None:
            padded = _resize_maps(maps_list, self.align_corners)
        else:
            M = max(p._maps_padded.shape[1] for p in parts)
            padded = _resize_maps(
                [F.pad(m, (0, 0, 0, 0, 0, 0, 0, M - m.shape[0])) for m in maps_list],
                self.align_corners,
            )
        keep_list = any(p._maps_list is not None for p in parts)
        out = self._trusted(
            padded, maps_list if keep_list else None,
            [f for p in parts for f in p._faces_uvs_list],
            [v for p in parts for v in p._verts_uvs_list],
            None if self._maps_ids_list is None else [
                i for p in parts for i in p._maps_ids_list],
        )
        out._faces_checked = all(p._faces_checked for p in parts)
        return out

    def join_scene(self) -> TexturesUV:
        """One mesh holding every mesh's faces in order (for a joined scene).

        ``verts_uvs`` are concatenated and ``faces_uvs`` offset. The images:

        - without ``maps_ids``, with padding "border" or "zeros" (PyTorch3D's behaviour): the
          distinct images of ``maps_list()`` (the same tensor used by several meshes counts
          once) are packed into one image (:func:`~diffrend.shading.rect_pack.
          pack_unique_rectangles`; some turned by 90 degrees) and the UVs are mapped into it.
          With ``align_corners=False`` every image gets a one-texel frame (its edge texels
          repeated, or zeros for "zeros" padding) so bilinear sampling inside [0, 1] is
          unchanged; UVs outside [0, 1] see the neighbouring images instead of the padding.
          A single distinct image is kept as it is.
        - with ``maps_ids``, or padding "wrap" / "reflection": the N images (N * M with
          ``maps_ids``) become the images of one mesh, selected per face by ``maps_ids``;
          sampling is unchanged everywhere (PyTorch3D has no such form).

        Differentiable w.r.t. the maps and ``verts_uvs``.
        """
        faces_list = self._checked_faces_uvs()
        offsets = [0]
        for v in self._verts_uvs_list[:-1]:
            offsets.append(offsets[-1] + int(v.shape[0]))
        faces = [_packed([f + o for f, o in zip(faces_list, offsets, strict=True)], (3,),
                         torch.int64, self.device)]
        if self._N > 0 and self._maps_ids_list is None and self.padding_mode in (
            "border", "zeros"
        ):
            single, uvs = self._packed_single_map()
            out = self._trusted(single[None], [single], faces, [uvs], None)
            out._faces_checked = True
            return out
        F_i = self.num_faces_per_mesh()
        if self._maps_ids_list is None:
            maps = self._maps_padded[None]  # (1, N, H, W, C)
            ids = [torch.full((f,), n, dtype=torch.int64, device=self.device)
                   for n, f in enumerate(F_i)]
        else:
            M = self._maps_padded.shape[1]
            maps = self._maps_padded.reshape(1, -1, *self._maps_padded.shape[2:])
            ids = [i + n * M for n, i in enumerate(self._maps_ids_list)]
        uv_dtype = self._maps_padded.dtype
        out = self._trusted(
            maps, None, faces, [_packed(self._verts_uvs_list, (2,), uv_dtype, self.device)],
            [_packed(ids, (), torch.int64, self.device)],
        )
        out._faces_checked = True
        return out

    def _packed_single_map(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The distinct maps packed into one (R, C', C) image, and the (sum T_i, 2) UVs that
        sample it as each mesh sampled its own map (for UVs in [0, 1])."""
        maps = self.maps_list()
        ident: dict[tuple, int] = {}
        frame = 0 if self.align_corners else 1
        rects = []
        for m in maps:
            key = (m.data_ptr(), tuple(m.shape), m.stride(), m.dtype, m.device)
            ident.setdefault(key, len(ident))
            # x runs along rows, y along columns (PyTorch3D's layout)
            rects.append(Rectangle(m.shape[0] + 2 * frame, m.shape[1] + 2 * frame,
                                   ident[key]))
        if len(ident) == 1:
            return maps[0], torch.cat(self._verts_uvs_list, dim=0)
        plan = pack_unique_rectangles(rects)
        R, W = plan.total_size
        single = maps[0].new_zeros((R, W, maps[0].shape[-1]))
        a = 1 if self.align_corners else 0  # grid_sample: index = u * (size - a) - (1 - a) / 2
        new_uvs = []
        for m, loc, uv in zip(maps, plan.locations, self._verts_uvs_list, strict=True):
            src = m.transpose(0, 1) if loc.flipped else m
            h, w = src.shape[0], src.shape[1]
            if loc.is_first:
                block = src
                if frame:
                    pad = "constant" if self.padding_mode == "zeros" else "replicate"
                    block = F.pad(src.permute(2, 0, 1)[None], (1, 1, 1, 1), mode=pad)
                    block = block[0].permute(1, 2, 0)
                single[loc.x : loc.x + block.shape[0], loc.y : loc.y + block.shape[1]] = block
            u, v = uv[:, 0], uv[:, 1]
            if loc.flipped:  # transposed image: (u, v) -> (1 - v, 1 - u)
                u, v = 1.0 - v, 1.0 - u
            row0, col0 = loc.x + frame, loc.y + frame
            u_new = (col0 + u * (w - a)) / (W - a)
            v_new = 1.0 - (row0 + (1.0 - v) * (h - a)) / (R - a)
            new_uvs.append(torch.stack((u_new, v_new), dim=1))
        return single, torch.cat(new_uvs, dim=0)

    # sampling
    def _sample_points(self, uvs: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
        """(N, ..., 2) UVs (and (N, ...) map ids, -1 = none) -> (N, ..., C)."""
        modes = (self.padding_mode, self.align_corners, self.sampling_mode)
        if ids is None:
            return sample_texture_map(self._maps_padded, uvs, *modes)
        out = self._maps_padded.new_zeros((*uvs.shape[:-1], self._maps_padded.shape[-1]))
        for m in torch.unique(ids[ids >= 0]).tolist():
            texels = sample_texture_map(self._maps_padded[:, m], uvs, *modes)
            out = torch.where((ids == m)[..., None], texels, out)
        return out

    def _packed_maps_ids(self) -> torch.Tensor | None:
        if self._maps_ids_list is None:
            return None
        return _packed(self._maps_ids_list, (), torch.int64, self.device)

    def faces_verts_textures_packed(self) -> torch.Tensor:
        """(sum F_i, 3, C): the texture sampled at every corner of every packed face.
        Differentiable w.r.t. the maps and (bilinear) ``verts_uvs``."""
        C = self._maps_padded.shape[-1]
        if self.isempty():
            return self._maps_padded.new_zeros((0, 3, C))
        F_i = self.num_faces_per_mesh()
        Fm = max(F_i)
        corner_uvs = [v[f] for v, f in zip(self._verts_uvs_list, self._checked_faces_uvs(),
                                           strict=True)]
        uvs = _pad_list(corner_uvs, 0.0, (Fm, 3, 2), self._maps_padded.dtype, self.device)
        ids = None
        if self._maps_ids_list is not None:
            ids = _pad_list(self._maps_ids_list, -1, (Fm,), torch.int64, self.device)
            ids = ids[..., None].expand(-1, -1, 3)
        texels = self._sample_points(uvs, ids)  # (N, Fm, 3, C)
        return torch.cat([texels[n, :f] for n, f in enumerate(F_i)], dim=0)

    def sample_textures(
        self, fragments: _FragmentsLike, faces_packed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Sample the maps at each pixel's UV (the barycentric blend of its face's corner UVs).

        Args:
            fragments: rasterizer output with ``pix_to_face`` (N, H, W, K) and
                ``bary_coords`` (N, H, W, K, 3); N must equal ``len(self)``.
            faces_packed: optional (F, 3) packed faces of the meshes, only used to check that
                F equals the number of ``faces_uvs`` rows.

        Returns:
            (N, H, W, K, C); zero where ``pix_to_face`` is -1 (PyTorch3D returns the texel at
            UV (0, 0) there). Differentiable w.r.t. the maps, and for bilinear sampling w.r.t.
            ``verts_uvs`` and ``fragments.bary_coords``.
        """
        pix_to_face, bary = fragments.pix_to_face, fragments.bary_coords
        _check_fragments(pix_to_face, bary)
        self._check_sample_batch(pix_to_face)
        F_total = sum(self.num_faces_per_mesh())
        _check_face_count(faces_packed, F_total, "faces_uvs rows")
        C = self._maps_padded.shape[-1]
        if F_total == 0:
            return self._maps_padded.new_zeros((*pix_to_face.shape, C))
        _check_pix_to_face(pix_to_face, F_total)
        pixel_uvs = interpolate_face_attributes(pix_to_face, bary, self.faces_verts_uvs_packed())
        ids = self._packed_maps_ids()
        valid = pix_to_face >= 0
        if ids is not None:
            ids = torch.where(valid, ids[pix_to_face.clamp(min=0)], -1)
        texels = self._sample_points(pixel_uvs, ids)
        return torch.where(valid[..., None], texels, texels.new_zeros(()))

    def centers_for_image(self, index: int) -> torch.Tensor:
        """Pixel coordinates in mesh ``index``'s (padded) image of its ``verts_uvs``.

        Args:
            index: which mesh.

        Returns:
            (T_i, 2) float (x, y) on the CPU: column and row in ``maps_padded()[index]``,
            computed by sampling a coordinate image with this object's settings (so it
            follows ``align_corners``, padding and sampling mode). Not differentiable.
            PyTorch3D only allows a batch of one here.
        """
        i = _batch_ids(index, self._N)[0]
        H, W = self._maps_padded.shape[-3], self._maps_padded.shape[-2]
        dtype = self._maps_padded.dtype
        xs = torch.arange(W, dtype=dtype, device=self.device).expand(H, W)
        ys = torch.arange(H, dtype=dtype, device=self.device)[:, None].expand(H, W)
        coords = torch.stack((xs, ys), dim=-1)[None]  # (1, H, W, 2)
        with torch.no_grad():
            uv = self._verts_uvs_list[i].detach()[None]
            centers = sample_texture_map(coords, uv, self.padding_mode, self.align_corners,
                                         self.sampling_mode)
        return centers[0].cpu()


def _check_face_count(faces_packed: torch.Tensor | None, expected: int, what: str) -> None:
    if faces_packed is None:
        return
    if not torch.is_tensor(faces_packed) or faces_packed.ndim != 2:
        raise ValueError(f"faces_packed: expected (F, 3), got {_describe(faces_packed)}")
    if faces_packed.shape[0] != expected:
        raise ValueError(
            f"faces_packed: the meshes have {faces_packed.shape[0]} faces but the textures "
            f"have {expected} {what} (one per face, in packed order)"
        )


def _check_pix_to_face(pix_to_face: torch.Tensor, n_faces: int) -> None:
    if not pix_to_face.numel():
        return
    top = pix_to_face.max()
    check_on_device(top < n_faces,
                    f"fragments.pix_to_face: a face index >= the {n_faces} faces the textures "
                    f"cover",
                    lambda: f"fragments.pix_to_face: face {int(top)} but the textures cover "
                            f"{n_faces} faces")


# --------------------------------------------------------------------------- atlas


class TexturesAtlas(TexturesBase):
    """An R x R texel grid per face, looked up by barycentrics (SoftRas; PyTorch3D's
    ``TexturesAtlas``). See :func:`sample_texture_atlas` for the layout.

    Attributes:
        device: where the atlas lives.
    """

    def __init__(self, atlas: Sequence[torch.Tensor] | torch.Tensor) -> None:
        """Args:
            atlas: N float tensors (F_i, R, R, C) with one R and C, or (N, F, R, R, C)
                (every mesh has F faces).

        Raises:
            ValueError: wrong ranks, non-square or differing R, differing C, non-float or
                non-finite values, mixed devices.
        """
        items, padded = _as_items(atlas, "atlas", 4, "(F, R, R, C)")
        for i, a in enumerate(items):
            if a.shape[1] != a.shape[2]:
                raise ValueError(f"atlas[{i}]: texel grid must be square, got {tuple(a.shape)}")
        if len({tuple(a.shape[1:]) for a in items}) > 1:
            raise ValueError("atlas: all meshes need the same R and C")
        _check_float(items, "atlas")
        device = _check_devices([("atlas", items)])
        shape = tuple(items[0].shape[1:]) if items else (0, 0, 3)
        dtype = items[0].dtype if items else torch.float32
        self._set(items, atlas if padded else None, shape, dtype, device)

    def _set(self, items: list[torch.Tensor], padded: torch.Tensor | None,
             shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> None:
        self._atlas_list = items
        self._atlas_padded_in = padded
        self._texel_shape = shape
        self._dtype = dtype
        self.device = device
        self._N = len(items)

    def _trusted(self, items: list[torch.Tensor],
                 padded: torch.Tensor | None = None) -> TexturesAtlas:
        out = TexturesAtlas.__new__(TexturesAtlas)
        device = items[0].device if items else self.device
        out._set(items, padded, self._texel_shape, self._dtype, device)
        return out

    def atlas_list(self) -> list[torch.Tensor]:
        """N tensors (F_i, R, R, C). Differentiable."""
        return list(self._atlas_list)

    def atlas_padded(self) -> torch.Tensor:
        """(N, max F_i, R, R, C), zero-padded (the tensor given, if one was). Differentiable."""
        if self._atlas_padded_in is not None:
            return self._atlas_padded_in
        return _pad_list(self._atlas_list, 0.0, (0, *self._texel_shape), self._dtype,
                         self.device)

    def atlas_packed(self) -> torch.Tensor:
        """(sum F_i, R, R, C). Differentiable."""
        return _packed(self._atlas_list, self._texel_shape, self._dtype, self.device)

    def num_faces_per_mesh(self) -> list[int]:
        """F_i of every mesh."""
        return [int(a.shape[0]) for a in self._atlas_list]

    def isempty(self) -> bool:
        """True when there are no meshes or no faces at all."""
        return self._N == 0 or sum(self.num_faces_per_mesh()) == 0

    def check_shapes(self, batch_size: int, max_num_verts: int, max_num_faces: int) -> bool:
        """Whether the padded atlas is (batch_size, max_num_faces, R, R, C)."""
        return tuple(self.atlas_padded().shape[:2]) == (batch_size, max_num_faces)

    def submeshes(self, vertex_ids_list: Any,
                  faces_ids_list: Sequence[Sequence[torch.Tensor]]) -> TexturesAtlas:
        """The atlases of submeshes (for ``Meshes.submeshes``).

        Args:
            vertex_ids_list: unused (texels belong to faces).
            faces_ids_list: per mesh, a list of 1-D int tensors: the faces each of its
                submeshes keeps, in order.

        Returns:
            ``TexturesAtlas`` of sum(len(f) for f in faces_ids_list) meshes. Differentiable
            w.r.t. the atlas.
        """
        per_mesh = _submesh_ids(faces_ids_list, self._N, "faces_ids_list")
        return self._trusted([a[ids.to(a.device)] for a, subs in zip(self._atlas_list, per_mesh,
                                                                      strict=True)
                              for ids in subs])

    # PyTorch3D internals: its tests and Meshes read (and Meshes writes) these.
    @property
    def _atlas_padded(self) -> torch.Tensor:
        return self.atlas_padded()

    @property
    def _num_faces_per_mesh(self) -> list[int]:
        return self.num_faces_per_mesh()

    @_num_faces_per_mesh.setter
    def _num_faces_per_mesh(self, counts: Sequence[int] | torch.Tensor) -> None:
        counts = self._store_count("num_faces_per_mesh", counts)
        if self._atlas_padded_in is not None:
            self._atlas_list = _trim_to(self._atlas_list, counts, "num_faces_per_mesh")

    @property
    def _num_verts_per_mesh(self) -> list[int] | None:
        return self._given_count("num_verts_per_mesh")

    @_num_verts_per_mesh.setter
    def _num_verts_per_mesh(self, counts: Sequence[int] | torch.Tensor) -> None:
        self._store_count("num_verts_per_mesh", counts)

    def _select(self, ids: list[int]) -> TexturesAtlas:
        return self._trusted([self._atlas_list[i] for i in ids])

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> TexturesAtlas:
        if self._atlas_padded_in is not None:
            padded = fn(self._atlas_padded_in)
            return self._trusted(list(padded.unbind(0)), padded)
        return self._trusted([fn(a) for a in self._atlas_list])

    def join_batch(self, textures: Sequence[TexturesAtlas]) -> TexturesAtlas:
        """``self`` then ``textures`` (all ``TexturesAtlas`` with the same R, C) as one batch."""
        parts = self._check_join(textures)
        if len({p._texel_shape for p in parts if p._N}) > 1:
            raise ValueError("textures: all atlases must have the same R and C")
        return self._trusted([a for p in parts for a in p._atlas_list])

    def join_scene(self) -> TexturesAtlas:
        """One mesh holding every mesh's faces in order (for a joined scene)."""
        return self._trusted([self.atlas_packed()])

    def faces_verts_textures_packed(self) -> torch.Tensor:
        """(sum F_i, 3, C): the texel each face corner reads (barycentrics (1,0,0), (0,1,0),
        (0,0,1)). Differentiable w.r.t. the atlas."""
        a = self.atlas_packed()
        if a.shape[1] == 0:
            return a.new_zeros((a.shape[0], 3, a.shape[-1]))
        return torch.stack((a[:, 0, -1], a[:, -1, 0], a[:, 0, 0]), dim=1)

    def sample_textures(
        self, fragments: _FragmentsLike, faces_packed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The atlas texel under each pixel (:func:`sample_texture_atlas`).

        Args:
            fragments: rasterizer output with ``pix_to_face`` (N, H, W, K) and
                ``bary_coords`` (N, H, W, K, 3); N must equal ``len(self)``.
            faces_packed: optional (F, 3) packed faces, only used to check F.

        Returns:
            (N, H, W, K, C); zero where ``pix_to_face`` is -1. Differentiable w.r.t. the
            atlas, not w.r.t. the barycentrics.
        """
        _check_fragments(fragments.pix_to_face, fragments.bary_coords)
        self._check_sample_batch(fragments.pix_to_face)
        F_total = sum(self.num_faces_per_mesh())
        _check_face_count(faces_packed, F_total, "atlas entries")
        _check_pix_to_face(fragments.pix_to_face, F_total)
        return sample_texture_atlas(
            self.atlas_packed(), fragments.pix_to_face, fragments.bary_coords
        )
