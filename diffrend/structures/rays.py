"""Ray bundles: rays as origins, directions and the distances of points along them.

PyTorch3D's records for implicit rendering and for drawing rays (``diffrend.vis``). A point
at distance ``l`` along a ray is ``origin + l * direction``: the directions need not be unit
vectors, and their length scales the distances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch


class RayBundle(NamedTuple):
    """Rays of a batch, all with the same number of points.

    Attributes:
        origins: (..., 3) ray origins in world coordinates.
        directions: (..., 3) ray directions in world coordinates (any length).
        lengths: (..., P) distances along each ray of its P points.
        xys: (..., 2) the pixel (NDC x, y) each ray goes through.
    """

    origins: torch.Tensor
    directions: torch.Tensor
    lengths: torch.Tensor
    xys: torch.Tensor


@dataclass
class HeterogeneousRayBundle:
    """Rays drawn from several cameras, some cameras more than once.

    Attributes:
        origins, directions, lengths, xys: as in :class:`RayBundle`.
        camera_ids: (C,) int64 ids of the distinct cameras the rays come from, or None.
        camera_counts: (C,) int64 number of rays of each camera in ``camera_ids``, in the
            order of the rays (which are grouped by camera), or None.
    """

    origins: torch.Tensor
    directions: torch.Tensor
    lengths: torch.Tensor
    xys: torch.Tensor
    camera_ids: torch.Tensor | None = None
    camera_counts: torch.Tensor | None = None


def ray_bundle_variables_to_ray_points(
    rays_origins: torch.Tensor, rays_directions: torch.Tensor, rays_lengths: torch.Tensor
) -> torch.Tensor:
    """Points along rays: ``origins[..., None, :] + lengths[..., None] * directions[..., None, :]``.

    Args:
        rays_origins: (..., 3).
        rays_directions: (..., 3).
        rays_lengths: (..., P).

    Returns:
        (..., P, 3) points; differentiable w.r.t. all three inputs.

    Raises:
        ValueError: the last dimensions are not 3, 3 and P, or the leading ones differ.
    """
    for name, t in (("origins", rays_origins), ("directions", rays_directions)):
        if not torch.is_tensor(t) or t.ndim < 1 or t.shape[-1] != 3:
            raise ValueError(f"rays {name} must be a (..., 3) tensor, got "
                             f"{tuple(t.shape) if torch.is_tensor(t) else type(t).__name__}")
    if not torch.is_tensor(rays_lengths) or rays_lengths.ndim < 1:
        raise ValueError("rays lengths must be a (..., P) tensor")
    lead = (rays_origins.shape[:-1], rays_directions.shape[:-1], rays_lengths.shape[:-1])
    if not lead[0] == lead[1] == lead[2]:
        raise ValueError(
            "rays origins, directions and lengths must share their leading dimensions, got "
            f"{tuple(rays_origins.shape)}, {tuple(rays_directions.shape)}, "
            f"{tuple(rays_lengths.shape)}"
        )
    return rays_origins[..., None, :] + rays_lengths[..., :, None] * rays_directions[..., None, :]


def ray_bundle_to_ray_points(ray_bundle: RayBundle | HeterogeneousRayBundle) -> torch.Tensor:
    """(..., P, 3) points of a ray bundle; see :func:`ray_bundle_variables_to_ray_points`."""
    return ray_bundle_variables_to_ray_points(
        ray_bundle.origins, ray_bundle.directions, ray_bundle.lengths
    )


__all__ = [
    "HeterogeneousRayBundle",
    "RayBundle",
    "ray_bundle_to_ray_points",
    "ray_bundle_variables_to_ray_points",
]
