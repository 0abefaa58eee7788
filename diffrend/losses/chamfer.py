"""Chamfer distance between batches of point clouds (PyTorch3D's ``chamfer_distance``).

Nearest neighbours are found without gradients, in chunks of rows of ``x`` so that the
(N, rows, P2) distance block stays under ``_CHUNK_BYTES``; the distances to the chosen
neighbours are then recomputed differentiably. This gives the same gradients as PyTorch3D's
KNN (d dist / d x and d dist / d y at the selected pair) without a (N, P1, P2) graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..structures import Pointclouds

# Upper bound on the bytes of one no-grad distance block; tests shrink it to force chunking.
_CHUNK_BYTES = 64 * 2**20

BATCH_REDUCTIONS = ("mean", "sum")
POINT_REDUCTIONS = ("mean", "sum", "max")

Clouds = torch.Tensor | Sequence[torch.Tensor] | Pointclouds


def _check_reductions(batch_reduction: str | None, point_reduction: str | None) -> None:
    if batch_reduction is not None and batch_reduction not in BATCH_REDUCTIONS:
        raise ValueError(
            f"batch_reduction must be one of {BATCH_REDUCTIONS} or None, got "
            f"{batch_reduction!r}"
        )
    if point_reduction is not None and point_reduction not in POINT_REDUCTIONS:
        raise ValueError(
            f"point_reduction must be one of {POINT_REDUCTIONS} or None, got "
            f"{point_reduction!r}"
        )
    if point_reduction is None and batch_reduction is not None:
        raise ValueError("batch_reduction must be None when point_reduction is None")


def _handle_input(
    points: Clouds, lengths: torch.Tensor | None, normals: Clouds | None, name: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Padded (N, P, D) points, (N,) int64 lengths and padded normals or None."""
    if isinstance(points, Pointclouds):
        # as PyTorch3D: the cloud's own lengths and normals replace the arguments
        points, lengths, normals = (
            points.points_padded(), points.num_points_per_cloud(), points.normals_padded())
    elif isinstance(points, (list, tuple)):
        if lengths is not None:
            raise ValueError(f"{name}_lengths: must be None when {name} is a list of tensors")
        if not all(torch.is_tensor(p) and p.ndim == 2 for p in points) or not points:
            raise ValueError(f"{name}: expected Pointclouds objects or torch.Tensor of shape "
                             "(N, P, D), or a non-empty list of (P_i, D) tensors")
        lengths = torch.tensor([p.shape[0] for p in points], device=points[0].device)
        points = torch.nn.utils.rnn.pad_sequence(list(points), batch_first=True)
        if isinstance(normals, (list, tuple)):
            normals = torch.nn.utils.rnn.pad_sequence(list(normals), batch_first=True)
    if not torch.is_tensor(points) or points.ndim != 3:
        raise ValueError(
            f"{name}: Expected points to be of shape (N, P, D) (Pointclouds objects or "
            f"torch.Tensor, or a list of (P_i, D) tensors), got "
            f"{tuple(points.shape) if torch.is_tensor(points) else type(points).__name__}"
        )
    if not points.is_floating_point():
        raise ValueError(f"{name}: expected a floating point tensor, got {points.dtype}")
    N, P, _ = points.shape
    if lengths is None:
        lengths = torch.full((N,), P, dtype=torch.int64, device=points.device)
    else:
        if not torch.is_tensor(lengths) or tuple(lengths.shape) != (N,) or (
            lengths.is_floating_point()
        ):
            raise ValueError(f"{name}_lengths: Expected lengths to be of shape ({N},) (integers)")
        if N and (int(lengths.min()) < 0 or int(lengths.max()) > P):
            raise ValueError(f"{name}_lengths: values must lie in [0, {P}]")
        lengths = lengths.to(device=points.device, dtype=torch.int64)
    valid = torch.arange(P, device=points.device)[None] < lengths[:, None]
    if not torch.isfinite(points[valid]).all():
        raise ValueError(f"{name}: contains NaN or inf")
    if normals is not None:
        if not torch.is_tensor(normals) or normals.ndim != 3 or normals.shape[:2] != (N, P):
            raise ValueError(f"{name}_normals: Expected normals to be of shape ({N}, {P}, 3)")
        if not torch.isfinite(normals[valid]).all():
            raise ValueError(f"{name}_normals: contains NaN or inf")
    return points, lengths, normals


def _nearest_idx(
    x: torch.Tensor, y: torch.Tensor, y_lengths: torch.Tensor, norm: int,
    chunk_bytes: int | None = None,
) -> torch.Tensor:
    """(N, P1) int64 index of the nearest valid point of ``y`` for every point of ``x``.

    Nearest in the L``norm`` sense; 0 where ``y`` has no valid point. Not differentiable.
    """
    chunk_bytes = _CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    N, P1, _ = x.shape
    P2 = y.shape[1]
    idx = torch.zeros((N, P1), dtype=torch.int64, device=x.device)
    if P1 == 0 or P2 == 0:
        return idx
    rows = max(1, chunk_bytes // max(1, N * P2 * x.element_size()))
    invalid = torch.arange(P2, device=x.device)[None, None] >= y_lengths[:, None, None]
    with torch.no_grad():
        x, y = x.detach(), y.detach()
        for s in range(0, P1, rows):
            # The pairwise-difference mode is exact (no |x|^2 - 2xy + |y|^2 cancellation),
            # so near-ties are resolved like a brute-force search would.
            d = torch.cdist(x[:, s:s + rows], y, p=float(norm),
                            compute_mode="donot_use_mm_for_euclid_dist")
            idx[:, s:s + rows] = d.masked_fill_(invalid, float("inf")).argmin(dim=2)
    return idx


def _gather(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """t (N, P2, C), idx (N, P1) -> (N, P1, C); zeros when P2 = 0 (no point to gather:
    the callers mask those distances to 0, as for clouds whose lengths are 0)."""
    if t.shape[1] == 0:
        return t.new_zeros(idx.shape[0], idx.shape[1], t.shape[2])
    return t.gather(1, idx[..., None].expand(-1, -1, t.shape[2]))


def _single_direction(
    x: torch.Tensor, y: torch.Tensor, x_lengths: torch.Tensor, y_lengths: torch.Tensor,
    x_normals: torch.Tensor | None, y_normals: torch.Tensor | None,
    weights: torch.Tensor | None, point_reduction: str | None, norm: int, abs_cosine: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Distance from every point of x to its nearest neighbour in y, reduced per cloud."""
    N, P1, _ = x.shape
    return_normals = x_normals is not None and y_normals is not None
    x_pad = torch.arange(P1, device=x.device)[None] >= x_lengths[:, None]  # (N, P1)
    no_y = (y_lengths == 0)[:, None]  # PyTorch3D's KNN leaves these distances at 0

    idx = _nearest_idx(x, y, y_lengths, norm)
    diff = x - _gather(y, idx)
    # KNN distances: squared Euclidean for norm=2, L1 for norm=1 (PyTorch3D's convention).
    cham_x = diff.square().sum(2) if norm == 2 else diff.abs().sum(2)
    cham_x = cham_x.masked_fill(x_pad | no_y, 0.0)
    if weights is not None:
        cham_x = cham_x * weights.view(N, 1)

    cham_norm_x = None
    if return_normals:
        near = _gather(y_normals, idx).masked_fill(no_y[..., None], 0.0)
        cos = F.cosine_similarity(x_normals, near, dim=2, eps=1e-6)
        cham_norm_x = (1 - (cos.abs() if abs_cosine else cos)).masked_fill(x_pad, 0.0)
        if weights is not None:
            cham_norm_x = cham_norm_x * weights.view(N, 1)

    if point_reduction == "max":
        cham_x = cham_x.max(1).values if P1 else cham_x.new_zeros(N)
    elif point_reduction is not None:
        div = x_lengths.clamp(min=1).to(cham_x.dtype) if point_reduction == "mean" else 1.0
        cham_x = cham_x.sum(1) / div
        if cham_norm_x is not None:
            cham_norm_x = cham_norm_x.sum(1) / div
    return cham_x, cham_norm_x


def _batch_reduce(
    loss: torch.Tensor, loss_normals: torch.Tensor | None, weights: torch.Tensor | None,
    batch_reduction: str | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    if batch_reduction is None:
        return loss, loss_normals
    N = loss.shape[0]
    loss = loss.sum()
    loss_normals = None if loss_normals is None else loss_normals.sum()
    if batch_reduction == "mean":
        if weights is None:
            div: float | torch.Tensor = max(N, 1)
        else:
            wsum = weights.sum()
            div = wsum if wsum > 0 else 1.0
        loss = loss / div
        loss_normals = None if loss_normals is None else loss_normals / div
    return loss, loss_normals


def chamfer_distance(
    x: Clouds,
    y: Clouds,
    x_lengths: torch.Tensor | None = None,
    y_lengths: torch.Tensor | None = None,
    x_normals: Clouds | None = None,
    y_normals: Clouds | None = None,
    weights: torch.Tensor | None = None,
    batch_reduction: str | None = "mean",
    point_reduction: str | None = "mean",
    norm: int = 2,
    single_directional: bool = False,
    abs_cosine: bool = True,
) -> tuple[torch.Tensor | tuple, torch.Tensor | tuple | None]:
    """Chamfer distance between two batches of point clouds, with PyTorch3D's semantics.

    For each point of ``x`` the distance to its nearest point of ``y`` (squared Euclidean
    for ``norm=2``, L1 for ``norm=1``), reduced over points, plus the same from ``y`` to
    ``x`` unless ``single_directional``. With normals, the normal term is
    ``1 - |cos|`` (``1 - cos`` if not ``abs_cosine``) between each point's normal and
    its nearest neighbour's.

    Args:
        x: (N, P1, D) float points (padded), a list of N tensors (P1_i, D), or a
            ``Pointclouds`` (then its lengths and normals replace ``x_lengths``/``x_normals``).
        y: (N, P2, D) float points, a list of N tensors (P2_i, D), or a ``Pointclouds``.
        x_lengths: (N,) int number of valid points per cloud of ``x`` (default: all P1).
        y_lengths: (N,) int, same for ``y``.
        x_normals: (N, P1, 3) normals of ``x`` (or a list), optional.
        y_normals: (N, P2, 3) normals of ``y`` (or a list), optional.
        weights: (N,) non-negative per-cloud weights, optional.
        batch_reduction: "mean" (weighted mean when ``weights``), "sum" or None.
        point_reduction: "mean", "sum", "max" (no normals allowed) or None (then
            ``batch_reduction`` must be None, and per-point (N, P1) / (N, P2) tensors are
            returned as a pair when not ``single_directional``).
        norm: 1 or 2.
        single_directional: only the x -> y term.
        abs_cosine: ignore normal orientation in the normal term.

    Returns:
        ``(loss, loss_normals)``: scalars, (N,) or per-point tensors according to the
        reductions; ``loss_normals`` is None unless both normals are given. Differentiable
        w.r.t. ``x``, ``y``, the normals and ``weights`` (not w.r.t. the neighbour choice).
    """
    _check_reductions(batch_reduction, point_reduction)
    if norm not in (1, 2):
        raise ValueError(f"norm: Support for 1 or 2 norm. Got {norm!r}")
    if point_reduction == "max" and (x_normals is not None or y_normals is not None):
        raise ValueError('x_normals/y_normals: must be None when point_reduction is "max"')
    x, x_lengths, x_normals = _handle_input(x, x_lengths, x_normals, "x")
    y, y_lengths, y_normals = _handle_input(y, y_lengths, y_normals, "y")
    N, _, D = x.shape
    if y.shape[0] != N or y.shape[2] != D:
        raise ValueError(f"y: expected shape ({N}, P2, {D}) to match x, got {tuple(y.shape)}")
    if x.device != y.device or x.dtype != y.dtype:
        raise ValueError(f"y: {y.dtype} on {y.device} but x is {x.dtype} on {x.device}")
    if weights is not None:
        if not torch.is_tensor(weights) or tuple(weights.shape) != (N,):
            raise ValueError(f"weights: expected shape ({N},)")
        if not (weights >= 0).all():
            raise ValueError("weights: cannot be negative")
        if weights.sum() == 0.0:
            # Keep the graph to x and weights (PyTorch3D does the same), value 0.
            zero = x.sum((1, 2)) * weights * 0.0
            if batch_reduction is not None:
                zero = zero.sum()
            return zero, zero

    args = (weights, point_reduction, norm, abs_cosine)
    cham_x, cham_norm_x = _single_direction(
        x, y, x_lengths, y_lengths, x_normals, y_normals, *args
    )
    if single_directional:
        loss, loss_normals = cham_x, cham_norm_x
    else:
        cham_y, cham_norm_y = _single_direction(
            y, x, y_lengths, x_lengths, y_normals, x_normals, *args
        )
        if point_reduction == "max":
            loss, loss_normals = torch.maximum(cham_x, cham_y), None
        elif point_reduction is not None:
            loss = cham_x + cham_y
            loss_normals = None if cham_norm_x is None else cham_norm_x + cham_norm_y
        else:
            # Per-point terms of the two directions have different lengths: a pair.
            return (cham_x, cham_y), (
                None if cham_norm_x is None else (cham_norm_x, cham_norm_y)
            )
    return _batch_reduce(loss, loss_normals, weights, batch_reduction)
