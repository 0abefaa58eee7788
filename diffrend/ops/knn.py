"""K nearest neighbours between batches of padded point clouds (PyTorch3D's ``knn_points``).

Plain torch: the neighbour search runs without gradients, in chunks of query rows so the
(N, rows, P2) distance block stays bounded; the distances to the chosen neighbours are then
recomputed differentiably, which gives the gradients of a KNN kernel (w.r.t. both clouds,
at the selected pairs) without a (N, P1, P2) autograd graph.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

# Upper bound on the bytes of one no-grad distance block.
_CHUNK_BYTES = 64 * 2**20


class KNN(NamedTuple):
    """Result of :func:`knn_points`: ``(dists, idx, knn)``."""

    dists: torch.Tensor
    idx: torch.Tensor
    knn: torch.Tensor | None


def _lengths(name: str, lengths: torch.Tensor | None, n: int, p: int,
             device: torch.device) -> torch.Tensor:
    if lengths is None:
        return torch.full((n,), p, dtype=torch.int64, device=device)
    if not torch.is_tensor(lengths) or tuple(lengths.shape) != (n,) or (
        lengths.is_floating_point()
    ):
        raise ValueError(f"{name}: expected an integer tensor of shape ({n},)")
    return lengths.to(device=device, dtype=torch.int64)


def knn_gather(x: torch.Tensor, idx: torch.Tensor,
               lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Gather rows of ``x`` by neighbour indices.

    Args:
        x: (N, M, U) tensor.
        idx: (N, L, K) int64 indices into the M rows of each batch element.
        lengths: (N,) valid rows of ``x`` per batch element (default M); neighbour slots
            ``k >= lengths[n]`` are filled with 0.

    Returns:
        (N, L, K, U) with ``out[n, l, k] = x[n, idx[n, l, k]]``; differentiable w.r.t. ``x``.
    """
    if x.ndim != 3:
        raise ValueError(f"x: expected shape (N, M, U), got {tuple(x.shape)}")
    if idx.ndim != 3 or idx.shape[0] != x.shape[0]:
        raise ValueError(f"idx: expected shape ({x.shape[0]}, L, K), got {tuple(idx.shape)}")
    n, m, u = x.shape
    _, L, k = idx.shape
    lengths = _lengths("lengths", lengths, n, m, x.device)
    out = x.gather(1, idx.reshape(n, L * k, 1).expand(-1, -1, u)).reshape(n, L, k, u)
    invalid = torch.arange(k, device=x.device)[None] >= lengths[:, None]  # (N, K)
    return out.masked_fill(invalid[:, None, :, None], 0.0)


def knn_points(
    p1: torch.Tensor,
    p2: torch.Tensor,
    lengths1: torch.Tensor | None = None,
    lengths2: torch.Tensor | None = None,
    norm: int = 2,
    K: int = 1,
    version: int = -1,
    return_nn: bool = False,
    return_sorted: bool = True,
) -> KNN:
    """For every point of ``p1``, its ``K`` nearest points of ``p2`` (same batch element).

    Args:
        p1: (N, P1, D) float query points (padded).
        p2: (N, P2, D) float points searched.
        lengths1: (N,) int valid points per cloud of ``p1`` (default P1).
        lengths2: (N,) int valid points per cloud of ``p2`` (default P2).
        norm: 2 (distances are squared Euclidean) or 1 (L1 distances).
        K: number of neighbours.
        version: accepted for PyTorch3D compatibility (selects a CUDA kernel there); ignored.
        return_nn: also return the neighbours' coordinates.
        return_sorted: neighbours by increasing distance (they always are here).

    Returns:
        ``KNN(dists, idx, knn)``: dists (N, P1, K) and idx (N, P1, K) int64, both 0 where
        ``k >= lengths2[n]`` or the query point is padding; knn (N, P1, K, D) or None,
        ``knn_gather(p2, idx, lengths2)`` (as PyTorch3D: padding query rows get row 0).
        ``dists`` and ``knn`` are differentiable w.r.t. ``p1`` and ``p2``; ``idx`` is not.
    """
    del version, return_sorted
    if not torch.is_tensor(p1) or not torch.is_tensor(p2) or p1.ndim != 3 or p2.ndim != 3:
        raise ValueError("p1, p2: expected tensors of shape (N, P, D)")
    if p1.shape[0] != p2.shape[0]:
        raise ValueError("p1 and p2 must have the same batch dimension")
    if p1.shape[2] != p2.shape[2]:
        raise ValueError("p1 and p2 must have the same point dimension")
    if norm not in (1, 2):
        raise ValueError(f"norm: expected 1 or 2, got {norm!r}")
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise ValueError(f"K: expected a positive int, got {K!r}")
    n, P1, _ = p1.shape
    P2 = p2.shape[1]
    lengths1 = _lengths("lengths1", lengths1, n, P1, p1.device)
    lengths2 = _lengths("lengths2", lengths2, n, P2, p1.device)
    idx = torch.zeros((n, P1, K), dtype=torch.int64, device=p1.device)
    kk = min(K, P2)
    if P1 and kk:
        rows = max(1, _CHUNK_BYTES // max(1, n * P2 * p1.element_size()))
        invalid = torch.arange(P2, device=p1.device)[None, None] >= lengths2[:, None, None]
        with torch.no_grad():
            a, b = p1.detach(), p2.detach()
            for s in range(0, P1, rows):
                # pairwise differences (no |x|^2 - 2xy + |y|^2 cancellation) for exact ties
                d = torch.cdist(a[:, s:s + rows], b, p=float(norm),
                                compute_mode="donot_use_mm_for_euclid_dist")
                d = d.masked_fill_(invalid, float("inf"))
                idx[:, s:s + rows, :kk] = d.topk(kk, dim=2, largest=False, sorted=True).indices
    valid = torch.arange(K, device=p1.device)[None, None] < lengths2[:, None, None]
    valid = valid & (torch.arange(P1, device=p1.device)[None, :, None] < lengths1[:, None, None])
    idx = idx.masked_fill(~valid, 0)
    nn = knn_gather(p2, idx, lengths2)
    diff = p1[:, :, None] - nn
    dists = diff.square().sum(3) if norm == 2 else diff.abs().sum(3)
    dists = dists.masked_fill(~valid, 0.0)
    return KNN(dists, idx, nn if return_nn else None)
