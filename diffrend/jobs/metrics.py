"""How good a fit is: silhouette IoU on held-out views, chamfer distance to a known mesh,
PSNR."""

from __future__ import annotations

import math

import torch

from ..cameras import CamerasBase
from ..losses import chamfer_distance, sample_points_from_meshes, silhouette_iou
from ..raster import MeshRasterizer, RasterizationSettings
from ..structures import Meshes
from .views import unit_box


@torch.no_grad()
def silhouettes(mesh: Meshes, cameras: CamerasBase, image_size: int,
                batch_size: int = 10) -> torch.Tensor:
    """Hard silhouettes (N, S, S) in {0, 1} of one mesh seen by N cameras."""
    rasterizer = MeshRasterizer(raster_settings=RasterizationSettings(image_size=image_size))
    out = []
    for start in range(0, len(cameras), batch_size):
        idx = list(range(start, min(start + batch_size, len(cameras))))
        fragments = rasterizer(mesh.extend(len(idx)), cameras=cameras[idx])
        out.append((fragments.pix_to_face[..., 0] >= 0).float())
    return torch.cat(out)


def heldout_iou(mesh: Meshes, cameras: CamerasBase, masks: torch.Tensor) -> torch.Tensor:
    """Silhouette IoU of one mesh against target masks (N, S, S), per view: (N,)."""
    if masks.ndim != 3 or masks.shape[0] != len(cameras) or masks.shape[1] != masks.shape[2]:
        raise ValueError(f"masks must have shape ({len(cameras)}, S, S), got "
                         f"{tuple(masks.shape)}")
    return silhouette_iou(silhouettes(mesh, cameras, masks.shape[1]), masks)


@torch.no_grad()
def normalized_chamfer(mesh: Meshes, reference: Meshes, num_samples: int = 10000,
                       seed: int = 0) -> float:
    """Symmetric chamfer distance (mean squared, both directions summed) between surface
    samples, in the frame where ``reference`` is centred with max |coordinate| 1.

    Both meshes are moved by the same similarity (the reference's), so a fit in the
    reference's frame is measured in units of the reference's size.
    """
    ref = reference.verts_packed()
    centre, scale = unit_box(ref[None])
    centre, scale = centre[0, 0], scale[0]

    def normalise(m: Meshes) -> Meshes:
        return Meshes([(m.verts_packed() - centre) / scale], [m.faces_packed()])

    g = torch.Generator(device=ref.device).manual_seed(seed)
    a = sample_points_from_meshes(normalise(mesh), num_samples, generator=g)
    b = sample_points_from_meshes(normalise(reference), num_samples, generator=g)
    return float(chamfer_distance(a, b)[0])


@torch.no_grad()
def surface_chamfer(mesh: Meshes, reference: Meshes, num_samples: int = 10000,
                    dense_samples: int = 1_000_000, seed: int = 0) -> float:
    """Symmetric chamfer distance between the two *surfaces*: the mean squared distance
    from ``num_samples`` points on each surface to the other surface, both directions
    summed, in the frame of :func:`normalized_chamfer` (``reference`` centred, max
    |coordinate| 1).

    :func:`normalized_chamfer` matches samples to samples, so even two identical surfaces
    score about ``2 A / (pi N)`` (``A`` the area in the unit frame, ``N`` the samples): with
    10,000 samples, 4.9e-4 on the cow and 1.1e-3 on the mug, more than a 1e-3 target
    allows. Here each sample is matched against ``dense_samples`` points of the other
    surface, which leaves a floor of ``2 A / (pi dense_samples)`` (under 2e-5 on the
    test shapes at the default 10^6), so the figure measures the shapes' difference.

    Args:
        mesh, reference: single meshes (the first of a batch is used).
        num_samples: query points per surface.
        dense_samples: points per surface that the queries are matched against.
        seed: seed of the sampling (the result is deterministic).

    Returns:
        The chamfer distance (a float >= 0); not differentiable (a metric).
    """
    from scipy.spatial import cKDTree

    for name, value in (("num_samples", num_samples), ("dense_samples", dense_samples)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    ref = reference.verts_packed()
    centre, scale = unit_box(ref[None])
    centre, scale = centre[0, 0], scale[0]
    g = torch.Generator(device=ref.device).manual_seed(seed)
    meshes = [Meshes([(m.verts_list()[0] - centre) / scale], [m.faces_list()[0]])
              for m in (mesh, reference)]
    queries = [sample_points_from_meshes(m, num_samples, generator=g)[0].double().cpu()
               .numpy() for m in meshes]
    total = 0.0
    for q, other in zip(queries, reversed(meshes), strict=True):
        dense = sample_points_from_meshes(other, dense_samples, generator=g)[0]
        dist = cKDTree(dense.double().cpu().numpy()).query(q)[0]
        total += float((dist**2).mean())
    return total


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio in dB of a mean squared error of values in [0, 1]
    (inf for a perfect match)."""
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)
