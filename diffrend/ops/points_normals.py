"""Point-cloud normals and local frames from k-nearest-neighbour covariances.

Inputs are padded (N, P, 3) tensors or any object with ``points_padded()`` and
``num_points_per_cloud()`` (a ``Pointclouds``), so this module needs no structures import.
"""

from __future__ import annotations

from typing import Any

import torch

from .knn import knn_gather, knn_points


def is_pointclouds(pcl: Any) -> bool:
    """True for objects with ``points_padded`` and ``num_points_per_cloud`` (duck typing)."""
    return hasattr(pcl, "points_padded") and hasattr(pcl, "num_points_per_cloud")


def convert_pointclouds_to_tensor(pcl: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded points (N, P, D) and (N,) int64 point counts of a Pointclouds or a tensor.

    A tensor counts as N clouds of P points each.
    """
    if is_pointclouds(pcl):
        return pcl.points_padded(), pcl.num_points_per_cloud()
    if torch.is_tensor(pcl) and pcl.ndim == 3:
        n, p = pcl.shape[:2]
        return pcl, torch.full((n,), p, dtype=torch.int64, device=pcl.device)
    raise ValueError("pointclouds: expected a Pointclouds object or an (N, P, D) tensor")


def wmean(x: torch.Tensor, weight: torch.Tensor | None = None, dim: int | tuple[int, ...] = -2,
          keepdim: bool = True, eps: float = 1e-9) -> torch.Tensor:
    """Mean of ``x`` over ``dim``, weighted by ``weight`` when given.

    Args:
        x: (*, D) tensor.
        weight: None, or non-negative weights broadcastable to ``x.shape[:-1]``.
        dim: dimension(s) averaged over (must not include the last one when weighted).
        keepdim: keep the reduced dimensions.
        eps: lower bound of the weight sum.

    Returns:
        ``mean(x, dim)`` or ``sum(x * w, dim) / max(sum(w, dim), eps)``; differentiable.
    """
    if weight is None:
        return x.mean(dim=dim, keepdim=keepdim)
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if any(d % x.ndim == x.ndim - 1 for d in dims):
        raise ValueError("dim: cannot average over the last (spatial) dimension with weights")
    w = weight[..., None]
    num = (x * w).sum(dim=dims, keepdim=keepdim)
    den = w.sum(dim=dims, keepdim=keepdim).clamp(min=eps)
    return num / den


def get_point_covariances(points_padded: torch.Tensor, num_points_per_cloud: torch.Tensor,
                          neighborhood_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Covariance of each point's ``neighborhood_size`` nearest neighbours (itself included).

    Args:
        points_padded: (N, P, D) float points.
        num_points_per_cloud: (N,) int valid points per cloud.
        neighborhood_size: K.

    Returns:
        covariances (N, P, D, D) (mean outer product of the neighbours about their mean) and
        the neighbours (N, P, K, D); both differentiable w.r.t. the points.
    """
    knn = knn_points(points_padded, points_padded, lengths1=num_points_per_cloud,
                     lengths2=num_points_per_cloud, K=neighborhood_size, return_nn=True).knn
    centered = knn - knn.mean(dim=2, keepdim=True)
    cov = torch.einsum("npki,npkj->npij", centered, centered) / knn.shape[2]
    return cov, knn


def _orient(points: torch.Tensor, knn: torch.Tensor, vecs: torch.Tensor) -> torch.Tensor:
    """Flip each vector so that at least half its neighbours lie on its positive side
    (Tombari et al., ECCV 2010)."""
    proj = ((knn - points[:, :, None]) * vecs[:, :, None]).sum(3)  # (N, P, K)
    n_pos = (proj > 0).sum(2, keepdim=True).to(vecs.dtype)
    flip = n_pos < 0.5 * knn.shape[2]
    return torch.where(flip, -vecs, vecs)


def estimate_pointcloud_local_coord_frames(
    pointclouds: Any,
    neighborhood_size: int = 50,
    disambiguate_directions: bool = True,
    *,
    use_symeig_workaround: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Principal curvatures and local frames of every point from its neighbours' covariance.

    Args:
        pointclouds: (N, P, 3) tensor or a ``Pointclouds``.
        neighborhood_size: K, neighbours per point; every cloud needs more than K points.
        disambiguate_directions: orient the normal and the main direction so most
            neighbours lie on their positive side (otherwise the eigensolver's signs).
        use_symeig_workaround: accepted for PyTorch3D compatibility; ``torch.linalg.eigh``
            is always used.

    Returns:
        curvatures (N, P, 3), the covariance eigenvalues in increasing order, and frames
        (N, P, 3, 3) whose columns are the normal, the secondary and the main direction.
        Differentiable w.r.t. the points (through ``eigh``; not at repeated eigenvalues).
    """
    del use_symeig_workaround
    points, num_points = convert_pointclouds_to_tensor(pointclouds)
    if points.shape[2] != 3:
        raise ValueError("pointclouds: expected points of shape (N, P, 3)")
    if (num_points <= neighborhood_size).any():
        raise ValueError("neighborhood_size: must be smaller than every cloud's point count")
    # remove each cloud's mean first, for a better-conditioned covariance
    mean = points.sum(1) / num_points[:, None].to(points.dtype)
    centered = points - mean[:, None]
    cov, knn = get_point_covariances(centered, num_points, neighborhood_size)
    curvatures, frames = torch.linalg.eigh(cov)
    if disambiguate_directions:
        n = _orient(centered, knn, frames[..., 0])
        z = _orient(centered, knn, frames[..., 2])
        frames = torch.stack([n, torch.linalg.cross(n, z, dim=2), z], dim=3)
    return curvatures, frames


def estimate_pointcloud_normals(
    pointclouds: Any,
    neighborhood_size: int = 50,
    disambiguate_directions: bool = True,
    *,
    use_symeig_workaround: bool = True,
) -> torch.Tensor:
    """Unit normal of every point: the least-variance direction of its K neighbours.

    Args: as :func:`estimate_pointcloud_local_coord_frames`.

    Returns:
        (N, P, 3) normals (padding rows are whatever the padding yields); differentiable
        w.r.t. the points.
    """
    _, frames = estimate_pointcloud_local_coord_frames(
        pointclouds, neighborhood_size, disambiguate_directions,
        use_symeig_workaround=use_symeig_workaround)
    return frames[..., 0]


def masked_gather(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``points[n, idx[n, ...]]`` with -1 entries of ``idx`` giving zeros.

    Args:
        points: (N, P, D) tensor.
        idx: (N, K) or (N, P', K) int64, -1 for "no point".

    Returns:
        (N, K, D) or (N, P', K, D); differentiable w.r.t. ``points``.
    """
    if points.ndim != 3 or idx.ndim not in (2, 3) or idx.shape[0] != points.shape[0]:
        raise ValueError("points (N, P, D) and idx (N, K) or (N, P', K) expected")
    idx3 = idx if idx.ndim == 3 else idx[:, None]
    out = knn_gather(points, idx3.clamp(min=0))
    out = out.masked_fill((idx3 < 0)[..., None], 0.0)
    return out if idx.ndim == 3 else out[:, 0]


def eyes(dim: int, N: int, device: torch.device | None = None,
         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, dim, dim) batch of identity matrices."""
    return torch.eye(dim, device=device, dtype=dtype)[None].repeat(N, 1, 1)
