"""The visual hull of multi-view silhouettes: a starting shape with the right topology.

Space carving: a voxel is kept when its centre projects inside the mask of every view that
sees it (in front of the camera, inside the image), and at least a given fraction of the
views see it. The hull contains the object and has its holes wherever some view sees
through them (a torus from above, a mug's handle from the side), which an ico-sphere start
cannot grow: the fit's smooth deformations never change the genus.

:func:`carve_hull` carves twice: a coarse 48^3 pass over a box around where the cameras
look (:func:`~diffrend.jobs.views.cameras_focus`) finds the object, then a fine pass on its
bounding box. :func:`hull_mesh` turns the voxels into a smooth closed surface of a chosen
face count (scikit-image's marching cubes, trimesh's Taubin smoothing, fast-simplification's
quadric decimation, keeping the Euler characteristic). :func:`visual_hull` does both for a
:class:`~diffrend.io.MultiViewData` and checks the result. Nothing here is differentiable,
and everything is deterministic (a resumed fit rebuilds the same hull).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..cameras import CamerasBase
from ..io.views import MultiViewData
from ..structures import Meshes
from .views import cameras_focus

__all__ = ["carve_hull", "hull_mesh", "mask_coverage", "visual_hull"]

COARSE = 48  # voxels per side of the pass that finds the object
_PAD = 2  # coarse voxels around the object's box in the fine pass
_CHUNK = 1 << 16  # voxel centres projected at a time (x N views)
_MIN_COVERAGE = 0.8  # of the median mask (consistent cameras: 0.99+; shuffled: 0.2-0.75)


def _check_masks(masks: torch.Tensor, cameras: CamerasBase) -> None:
    if not torch.is_tensor(masks) or masks.dim() != 3:
        raise ValueError(f"masks must be an (N, H, W) tensor, got "
                         f"{getattr(masks, 'shape', type(masks).__name__)}")
    if not isinstance(cameras, CamerasBase) or len(cameras) != masks.shape[0]:
        raise ValueError(f"cameras must be {masks.shape[0]} cameras (one per mask)")
    if not bool(torch.isfinite(masks).all()):
        raise ValueError("masks hold NaN or inf")


def _carve(masks: torch.Tensor, cameras: CamerasBase, origin: np.ndarray, voxel: float,
           res: int, min_views: int) -> np.ndarray:
    """(res, res, res) bool: voxel centres ``origin + voxel * (i, j, k)`` kept by the masks
    (N, 1, H, W), less the phantoms (see :func:`_main_parts`); see :func:`carve_hull`."""
    n, _, h, w = masks.shape
    device, dtype = masks.device, masks.dtype
    axis = torch.arange(res, dtype=torch.float64)
    to_view = cameras.get_world_to_view_transform()
    perspective = cameras.is_perspective()
    keep = torch.empty(res ** 3, dtype=torch.bool)
    seen_by = torch.empty(res ** 3, dtype=torch.int16)
    ii, jj, kk = torch.meshgrid(axis, axis, axis, indexing="ij")
    grid = torch.stack([ii.flatten(), jj.flatten(), kk.flatten()], 1)
    base = torch.as_tensor(origin, dtype=torch.float64)
    for start in range(0, res ** 3, _CHUNK):
        pts = (base + voxel * grid[start:start + _CHUNK]).to(device=device, dtype=dtype)
        screen = cameras.transform_points_screen(pts, image_size=(h, w))  # (N, P, 3)
        x, y = screen[..., 0], screen[..., 1]
        seen = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        if perspective:  # in front of the camera (behind it the projection mirrors)
            seen &= to_view.transform_points(pts)[..., 2] > 0
        uv = torch.stack([2 * x / w - 1, 2 * y / h - 1], -1).nan_to_num(2.0, 2.0, 2.0)
        inside = F.grid_sample(masks, uv[:, :, None].clamp(-2, 2), mode="bilinear",
                               padding_mode="zeros", align_corners=False)[:, 0, :, 0] >= 0.5
        count = seen.sum(0)
        keep[start:start + _CHUNK] = ((inside | ~seen).all(0) & (count >= min_views)).cpu()
        seen_by[start:start + _CHUNK] = count.cpu().to(torch.int16)
    shape = (res, res, res)
    return _main_parts(keep.reshape(shape).numpy(), seen_by.reshape(shape).numpy())


def _main_parts(keep: np.ndarray, seen_by: np.ndarray, min_frac: float = 0.01,
                seen_frac: float = 0.9) -> np.ndarray:
    """The kept voxels less phantoms and specks.

    With few views, cones of some views also meet away from the object, where the other
    views do not see (outside their images): phantoms that pass ``min_views`` but that
    fewer views see than see the object. A connected part is kept when the mean number of
    views that see its voxels is at least ``seen_frac`` of the best part's, and it has at
    least ``min_frac`` of the largest such part's voxels (and 8).
    """
    from scipy import ndimage

    labels, n = ndimage.label(keep)
    if n <= 1:
        return keep
    index = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(keep, labels, index)
    seen = ndimage.mean(seen_by, labels, index)
    good = seen >= seen_frac * seen.max()
    big = sizes >= max(8, min_frac * sizes[good].max())
    return np.isin(labels, index[good & big])


def _footprint_px(cameras: CamerasBase, centre: torch.Tensor, radius: float,
                  size: tuple[int, int]) -> int:
    """Pixels spanned by ``radius`` at ``centre``, across the image plane of the median
    view."""
    right = cameras.R[:, :, 0].detach()  # each view's x axis in world coordinates
    pts = torch.stack([centre.expand_as(right), centre + radius * right], 1)  # (N, 2, 3)
    screen = cameras.transform_points_screen(pts.to(cameras.dtype), image_size=size)
    px = (screen[:, 1, :2] - screen[:, 0, :2]).norm(dim=1).nan_to_num(0.0)
    # The median view: a camera at (or near) the centre would ask for the whole image.
    return min(math.ceil(float(px.median())), max(size) // 8)


def carve_hull(
    masks: torch.Tensor,
    cameras: CamerasBase,
    resolution: int = 128,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    min_views_frac: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Carve the visual hull of ``masks`` seen by ``cameras`` into a voxel grid.

    A voxel is kept when its centre projects inside the mask (bilinear sample >= 0.5) of
    every view that sees it, seen meaning inside the image and, for perspective cameras, in
    front of the camera; and when at least ``min_views_frac`` of the views see it (points
    few cameras see are unconstrained). Without ``bounds``, a coarse 48^3 pass over the cube
    of half-side the median camera distance around :func:`~.views.cameras_focus`'s centre
    (masks dilated by a coarse voxel's footprint, so thin parts are not lost) finds the
    object's box, and the fine pass covers that box padded by two coarse voxels. In both
    passes, connected parts that markedly fewer views see than see the best part (phantoms:
    where a few cameras' cones meet outside the other views' images) and specks under 1% of
    the largest part are dropped.

    Args:
        masks: (N, H, W) silhouettes in [0, 1].
        cameras: the N cameras of the masks.
        resolution: voxels per side R of the fine grid (a cube of cubic voxels).
        bounds: ``(lo (3,), hi (3,))`` world box of the fine pass (skips the coarse one).
        min_views_frac: fraction in (0, 1] of the views that must see a kept voxel.

    Returns:
        ``(occupancy (R, R, R) float32 numpy in {0, 1}, origin (3,), voxel_size)``: voxel
        ``[i, j, k]``'s centre is ``origin + voxel_size * (i, j, k)`` (world x, y, z); all
        zeros when nothing is carved. No gradients.

    Raises:
        ValueError: bad shapes, counts or bounds.
    """
    _check_masks(masks, cameras)
    if not isinstance(resolution, int) or not 8 <= resolution <= 512:
        raise ValueError(f"resolution must be an int in [8, 512], got {resolution!r}")
    if not (isinstance(min_views_frac, int | float) and 0 < min_views_frac <= 1):
        raise ValueError(f"min_views_frac must be in (0, 1], got {min_views_frac!r}")
    n, h, w = masks.shape
    min_views = max(1, math.ceil(min_views_frac * n - 1e-9))
    masks = masks.detach()[:, None].float()
    cameras = cameras.to(masks.device)
    if bounds is None:
        centre, dist = cameras_focus(cameras)
        centre = centre.double().cpu()
        voxel = 2 * dist / COARSE
        origin = (centre - dist + voxel / 2).numpy()
        grow = _footprint_px(cameras, centre.to(masks), voxel * math.sqrt(3) / 2, (h, w))
        dilated = F.max_pool2d(masks, 2 * grow + 1, stride=1, padding=grow) if grow else masks
        coarse = _carve(dilated, cameras, origin, voxel, COARSE, min_views)
        if not coarse.any():  # nothing to refine: an empty grid over the whole box
            voxel = 2 * dist / resolution
            return (np.zeros((resolution,) * 3, np.float32),
                    (centre - dist + voxel / 2).numpy(), voxel)
        idx = np.argwhere(coarse)
        lo = origin + voxel * (idx.min(0) - 0.5 - _PAD)
        hi = origin + voxel * (idx.max(0) + 0.5 + _PAD)
    else:
        lo, hi = (np.asarray(b, dtype=np.float64).reshape(3) for b in bounds)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (hi > lo).all()):
            raise ValueError("bounds must be finite (lo, hi) with hi > lo on every axis")
    side = float((hi - lo).max())
    voxel = side / resolution
    origin = (lo + hi) / 2 - side / 2 + voxel / 2
    fine = _carve(masks, cameras, origin, voxel, resolution, min_views)
    return fine.astype(np.float32), origin, voxel


def mask_coverage(occupancy: np.ndarray, origin: np.ndarray, voxel_size: float,
                  masks: torch.Tensor, cameras: CamerasBase) -> torch.Tensor:
    """How much of each mask the occupied voxels explain: the fraction of the mask's pixels
    (>= 0.5) that some voxel projects to (voxels drawn a voxel wide).

    A hull carved from consistent cameras covers nearly all of every mask (it contains the
    object); cameras that do not match the masks carve a few scattered voxels that cover
    little.

    Returns:
        (N,) float in [0, 1] (1 for an empty mask). No gradients.
    """
    n, h, w = masks.shape
    hits = torch.zeros(n, h * w, dtype=torch.bool)
    idx = np.argwhere(occupancy > 0.5)
    if len(idx) == 0:
        return torch.zeros(n)
    pts_all = torch.as_tensor(origin + voxel_size * idx, dtype=torch.float64)
    perspective = cameras.is_perspective()
    to_view = cameras.get_world_to_view_transform()
    views = torch.arange(n)[:, None]
    for start in range(0, len(pts_all), _CHUNK):
        pts = pts_all[start:start + _CHUNK].to(device=masks.device, dtype=masks.dtype)
        screen = cameras.transform_points_screen(pts, image_size=(h, w)).cpu()
        x, y = screen[..., 0].nan_to_num(-1.0), screen[..., 1].nan_to_num(-1.0)
        seen = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        if perspective:
            seen &= to_view.transform_points(pts)[..., 2].cpu() > 0
        flat = (y.clamp(0, h - 1).long() * w + x.clamp(0, w - 1).long())
        hits[views.expand_as(flat)[seen], flat[seen]] = True
    centre = pts_all.mean(0).to(masks)
    grow = _footprint_px(cameras, centre, voxel_size, (h, w))
    drawn = hits.reshape(n, 1, h, w).float()
    if grow:
        drawn = F.max_pool2d(drawn, 2 * grow + 1, stride=1, padding=grow)
    inside = masks.detach().cpu() >= 0.5
    covered = (drawn[:, 0] > 0) & inside
    area = inside.flatten(1).sum(1)
    return torch.where(area > 0, covered.flatten(1).sum(1) / area.clamp(min=1), 1.0)


def _euler(verts: np.ndarray, faces: np.ndarray) -> int:
    """V - E + F over the vertices that faces use."""
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    n_edges = len(np.unique(edges, axis=0))
    return len(np.unique(faces)) - n_edges + len(faces)


def _closed_manifold(faces: np.ndarray) -> bool:
    """Every edge shared by exactly two faces, in opposite directions; no degenerate face."""
    if ((faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2])
            | (faces[:, 2] == faces[:, 0])).any():
        return False
    directed = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    if len(np.unique(directed, axis=0)) != len(directed):
        return False  # an edge used twice in the same direction: flipped or non-manifold
    undirected = np.sort(directed, axis=1)
    _, counts = np.unique(undirected, axis=0, return_counts=True)
    return bool((counts == 2).all())


def _compact(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    used, inverse = np.unique(faces, return_inverse=True)
    return verts[used], inverse.reshape(faces.shape)


def _decimate(verts: np.ndarray, faces: np.ndarray,
              target: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadric decimation to about ``target`` faces keeping a closed manifold with the same
    Euler characteristic; gentler targets are tried when a collapse changed the topology,
    and the input is returned when none keeps it."""
    import fast_simplification

    euler = _euler(verts, faces)
    goal = target
    while goal < len(faces) * 0.95:
        v, f = fast_simplification.simplify(verts, faces.astype(np.int32),
                                            target_reduction=1.0 - goal / len(faces))
        v, f = _compact(np.asarray(v, np.float64), np.asarray(f, np.int64))
        if _closed_manifold(f) and _euler(v, f) == euler:
            return v, f
        goal = math.ceil(goal * 1.5)
    return verts, faces


def _clean_voxels(occupancy: np.ndarray, min_frac: float = 0.01) -> np.ndarray:
    """Occupied voxels without specks (components under ``min_frac`` of the largest, or of
    fewer than 8 voxels) and without enclosed voids."""
    from scipy import ndimage

    occ = occupancy > 0.5
    labels, n = ndimage.label(occ)
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        big = np.flatnonzero(sizes >= max(8, min_frac * sizes.max())) + 1
        occ = np.isin(labels, big)
    return ndimage.binary_fill_holes(occ)


def hull_mesh(occupancy: np.ndarray | torch.Tensor, origin: np.ndarray, voxel_size: float,
              faces: int = 1280) -> tuple[np.ndarray, np.ndarray]:
    """A smooth closed surface of about ``faces`` faces around the occupied voxels.

    Specks (components under 1% of the largest) and enclosed voids are dropped; the voxels
    are blurred (Gaussian, sigma one voxel) and scikit-image's marching cubes takes the 0.5
    level; Taubin smoothing (trimesh) removes the voxel steps without shrinking;
    fast-simplification decimates to about ``faces`` faces, with gentler targets when a
    collapse would change the Euler characteristic; and vertices move out half a voxel along
    their normals (the blur rounds corners and thins thin parts, and a start that covers the
    silhouettes is what the fit wants).

    Args:
        occupancy: (R, R, R) occupancy in [0, 1] (as :func:`carve_hull` returns).
        origin: (3,) centre of voxel ``[0, 0, 0]``. voxel_size: side of a voxel.
        faces: target face count (>= 20); a mesh that has fewer keeps them.

    Returns:
        ``(verts (V, 3) float64, faces (F, 3) int64)``: closed, faces oriented outwards.
        Deterministic; no gradients.

    Raises:
        ValueError: no occupied voxels, or only parts too thin for the blur.
    """
    import trimesh
    from scipy import ndimage
    from skimage.measure import marching_cubes

    if not isinstance(faces, int) or faces < 20:
        raise ValueError(f"faces must be an int >= 20, got {faces!r}")
    if not (math.isfinite(voxel_size) and voxel_size > 0):
        raise ValueError(f"voxel_size must be > 0, got {voxel_size!r}")
    occ = np.asarray(occupancy.detach().cpu() if torch.is_tensor(occupancy) else occupancy)
    if occ.ndim != 3:
        raise ValueError(f"occupancy must be (R, R, R), got shape {occ.shape}")
    occ = _clean_voxels(occ)
    if not occ.any():
        raise ValueError("occupancy has no occupied voxel")
    pad = 4  # room for the blur, so the surface closes inside the grid
    volume = ndimage.gaussian_filter(np.pad(occ, pad).astype(np.float64), sigma=1.0)
    if volume.max() <= 0.5:
        raise ValueError("occupancy: the hull is too thin for its voxels (raise resolution)")
    verts, tris, _, _ = marching_cubes(volume, 0.5, spacing=(voxel_size,) * 3,
                                       allow_degenerate=False)
    verts = verts + np.asarray(origin, np.float64) - pad * voxel_size
    mesh = trimesh.Trimesh(verts, tris.astype(np.int64), process=False)
    mesh.merge_vertices()  # (marching cubes already shares them; this is a safety net)
    if mesh.volume < 0:  # orient outwards (anticlockwise seen from outside)
        mesh.invert()
    trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=0.53, iterations=10)
    v, f = _decimate(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64),
                     faces)
    normals = np.asarray(trimesh.Trimesh(v, f, process=False).vertex_normals)
    return v + 0.5 * voxel_size * normals, f


def visual_hull(data: MultiViewData, faces: int = 1280, resolution: int | None = None,
                min_views_frac: float = 0.5) -> Meshes:
    """The visual hull of ``data``'s masks as a mesh of about ``faces`` faces.

    Args:
        data: N views: masks (N, H, W) and cameras (the images are not used).
        faces: target face count (see :func:`hull_mesh`).
        resolution: voxels per side of the fine grid (see :func:`carve_hull`); None:
            twice the image side, within [48, 128] (finer voxels than the pixels see add
            time, not detail).
        min_views_frac: fraction of the views that must see a kept voxel.

    Returns:
        ``Meshes`` of one closed float32 mesh on the masks' device, in the cameras' world
        frame, no textures. Deterministic; no gradients.

    Raises:
        ValueError: not a MultiViewData; masks all empty; a hull that carves to nothing
            (cameras inconsistent with the masks); a camera inside the hull; bad counts.
    """
    if not isinstance(data, MultiViewData):
        raise ValueError("data must be a MultiViewData (see diffrend.io.load_views)")
    if not bool((data.masks > 0.5).any()):
        raise ValueError("data.masks are all empty (no pixel >= 0.5): nothing to carve")
    if resolution is None:
        resolution = min(128, max(48, 2 * max(data.masks.shape[1:])))
    occ, origin, voxel = carve_hull(data.masks, data.cameras, resolution,
                                    min_views_frac=min_views_frac)
    coverage = mask_coverage(occ, origin, voxel, data.masks, data.cameras)
    if not occ.any() or float(coverage.median()) < _MIN_COVERAGE:
        what = ("is empty" if not occ.any() else
                f"covers only {100 * float(coverage.median()):.0f}% of the median mask")
        raise ValueError(
            f"data: the visual hull {what}: few points project inside the masks of all the "
            "views that see them, so the cameras are inconsistent with the masks (wrong "
            "poses, axis convention or view order?)")
    centres = data.cameras.get_camera_center().detach().double().cpu().numpy()
    idx = np.floor((centres - origin) / voxel + 0.5).astype(np.int64)
    res = occ.shape[0]
    for i, ijk in enumerate(idx):
        if (ijk >= 0).all() and (ijk < res).all() and occ[tuple(ijk)] > 0.5:
            raise ValueError(
                f"data.cameras: camera {i} is inside the visual hull (is the camera inside "
                f"the object, or its mask full?); the hull needs cameras outside the object")
    verts, tris = hull_mesh(occ, origin, voxel, faces)
    device = data.masks.device
    return Meshes([torch.tensor(verts, dtype=torch.float32, device=device)],
                  [torch.tensor(tris, dtype=torch.int64, device=device)])
