"""Conversions between the list, padded and packed forms of batched tensors.

All functions are plain torch ops and differentiable w.r.t. the floating-point data they
move (indices are never differentiable).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def list_to_padded(
    x: Sequence[torch.Tensor],
    pad_size: Sequence[int] | None = None,
    pad_value: float = 0.0,
    equisized: bool = False,
) -> torch.Tensor:
    """Stack tensors of different sizes into one padded tensor.

    Args:
        x: N tensors of the same ndim, dtype and device, e.g. N tensors of shape (M_i, D).
        pad_size: the size of each padded item, e.g. (M, D); at least as large as every item
            along every dimension. Default: the largest size along each dimension.
        pad_value: value of the padding.
        equisized: the caller promises that all items have the same shape (just stacks).

    Returns:
        (N, *pad_size) tensor; differentiable w.r.t. every item of ``x``.
    """
    if len(x) == 0:
        raise ValueError("x: list_to_padded needs at least one tensor")
    if equisized:
        return torch.stack(list(x), 0)
    # an empty 1-D item (torch.tensor([])) stands for an empty item of any ndim
    ndim = max(y.ndim for y in x)
    x = [y.new_zeros([0] * ndim) if y.ndim == 1 and y.numel() == 0 else y for y in x]
    if any(y.ndim != ndim for y in x):
        raise ValueError("x: all tensors must have the same number of dimensions")
    if pad_size is None:
        pad_size = [max(y.shape[d] for y in x) for d in range(ndim)]
    elif len(pad_size) != ndim:
        raise ValueError(f"pad_size: Pad size must contain target size for all {ndim} "
                         f"dimensions, got {len(pad_size)} sizes")
    for y in x:
        if any(s > p for s, p in zip(y.shape, pad_size, strict=True)):
            raise ValueError(f"pad_size {tuple(pad_size)} is smaller than an item {tuple(y.shape)}")
    out = x[0].new_full((len(x), *pad_size), pad_value)
    for i, y in enumerate(x):
        if y.numel() > 0:
            out[(i, *(slice(0, s) for s in y.shape))] = y
    return out


def padded_to_list(
    x: torch.Tensor, split_size: Sequence[int | Sequence[int]] | None = None
) -> list[torch.Tensor]:
    """Split a padded tensor into a list, trimming the padding.

    Args:
        x: (N, M, ...) padded tensor.
        split_size: N entries, each an int (valid rows of the item, default all M) or a
            sequence of sizes along the item's leading dimensions.

    Returns:
        list of N views ``x[i, :s0, :s1, ...]``; differentiable.
    """
    if x.ndim < 2:
        raise ValueError(f"x: expected a padded tensor (N, M, ...), got shape {tuple(x.shape)}")
    items = list(x.unbind(0))
    if split_size is None:
        return items
    if len(split_size) != len(items):
        raise ValueError(f"split_size: expected {len(items)} sizes, got {len(split_size)}")
    out = []
    for y, size in zip(items, split_size, strict=True):
        if isinstance(size, int) or (torch.is_tensor(size) and size.ndim == 0):
            out.append(y[: int(size)])
        else:
            out.append(y[tuple(slice(0, int(d)) for d in size)])
    return out


def padded_to_packed(
    x: torch.Tensor, split_size: Sequence[int] | None = None, pad_value: float | None = None
) -> torch.Tensor:
    """Concatenate the valid rows of a padded tensor.

    Args:
        x: (N, M) or (N, M, K) padded tensor.
        split_size: N ints, valid rows per item.
        pad_value: instead of ``split_size``: drop the rows whose values all equal it (for
            (N, M), the single values equal to it). With neither, all rows are kept (a
            reshape).

    Returns:
        (sum(split_size),) or (sum(split_size), K) tensor; differentiable w.r.t. ``x``.
    """
    if x.ndim not in (2, 3):
        raise ValueError(f"x: Supports only (N, M) and (N, M, K) tensors, got shape "
                         f"{tuple(x.shape)}")
    if split_size is not None and pad_value is not None:
        raise ValueError("split_size, pad_value: Only one of them may be given")
    n, m = x.shape[:2]
    if split_size is None:
        packed = x.reshape(n * m, *x.shape[2:])
        if pad_value is None:
            return packed
        keep = packed != pad_value
        return packed[keep.any(-1) if packed.ndim == 2 else keep]
    if len(split_size) != n:
        raise ValueError(f"split_size: must be of same length as inputs first dimension "
                         f"({n}), got {len(split_size)}")
    if not all(isinstance(s, int) or (torch.is_tensor(s) and s.ndim == 0) for s in split_size):
        raise ValueError("split_size: only 1-dimensional sizes (one int per item) supported")
    sizes = torch.as_tensor([int(v) for v in split_size], dtype=torch.int64, device=x.device)
    mask = torch.arange(m, device=x.device)[None, :] < sizes[:, None]
    return x[mask]


def packed_to_list(x: torch.Tensor, split_size: Sequence[int]) -> list[torch.Tensor]:
    """Split a packed tensor (sum(M_i), ...) into N views of shape (M_i, ...); differentiable."""
    sizes = [int(s) for s in split_size]
    if sum(sizes) != x.shape[0]:
        raise ValueError(f"split_size sums to {sum(sizes)} but x has {x.shape[0]} rows")
    return list(x.split(sizes, 0))


def list_to_packed(
    x: Sequence[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate a list of tensors (M_i, ...) and describe where each one went.

    Returns:
        packed: (sum(M_i), ...) concatenation; differentiable.
        num_items: (N,) int64, M_i.
        item_packed_first_idx: (N,) int64, row of packed where item i starts.
        item_packed_to_list_idx: (sum(M_i),) int64, the item each packed row belongs to.
    """
    if len(x) == 0:
        raise ValueError("x: list_to_packed needs at least one tensor")
    device = x[0].device
    num_items = torch.tensor([len(y) for y in x], dtype=torch.int64, device=device)
    first_idx = torch.cumsum(num_items, 0) - num_items
    to_list = torch.repeat_interleave(torch.arange(len(x), device=device), num_items)
    return torch.cat(list(x), 0), num_items, first_idx, to_list


def unique_edges(faces: torch.Tensor, num_verts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique undirected edges of triangles, in PyTorch3D's order.

    Args:
        faces: (F, 3) int64 vertex indices in [0, num_verts).
        num_verts: number of vertices (for hashing an edge into one int64).

    Returns:
        edges: (E, 2) int64, each row (v0, v1) with v0 < v1, sorted by (v0, v1).
        faces_to_edges: (F, 3) int64; column i is the edge opposite vertex i of the face,
            i.e. edges (v1, v2), (v2, v0), (v0, v1).
        Not differentiable (indices).
    """
    n_faces = faces.shape[0]
    # (3F, 2): all the edges opposite vertex 0, then vertex 1, then vertex 2.
    e = torch.cat([faces[:, [1, 2]], faces[:, [2, 0]], faces[:, [0, 1]]], 0)
    e, _ = e.sort(dim=1)
    v = max(int(num_verts), 1)
    hashed = e[:, 0] * v + e[:, 1]
    u, inverse = torch.unique(hashed, return_inverse=True)
    edges = torch.stack([u // v, u % v], dim=1)
    return edges, inverse.reshape(3, n_faces).t()
