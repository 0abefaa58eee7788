"""Rendering a mesh file for people to look at: the work behind ``diffrend render``.

Loads a mesh (with its texture when the file has one), normalises it, puts cameras around
it and renders with any shader, in batches with a progress bar. The CLI tiles the renders
(:func:`~diffrend.jobs.pictures.image_grid`) and writes them
(:mod:`diffrend.io.outputs`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from ..cameras import FoVPerspectiveCameras, look_at_view_transform
from ..io import load_mesh, load_objs_as_meshes
from ..modules.mesh import MeshRenderer, MeshShader
from ..raster import MeshRasterizer, RasterizationSettings
from ..render.blend import BlendParams
from ..shader_names import COMPARE, SHADERS  # noqa: F401 - COMPARE re-exported
from ..shading import Materials, PointLights, TexturesVertex
from ..structures import Meshes
from .views import normalize_meshes


def load_for_render(path: str | os.PathLike, device: torch.device | str = "cpu") -> Meshes:
    """One mesh, textured from its MTL for OBJ files; otherwise a uniform light grey."""
    path = Path(path)
    if path.suffix.lower() == ".obj":
        meshes = load_objs_as_meshes([path], device=device)
    else:
        meshes = load_mesh(path, device=device)
    if meshes.textures is None:
        colors = _vertex_colors(path, meshes.verts_packed().shape[0])
        if colors is None:
            colors = torch.full_like(meshes.verts_packed(), 0.8)  # light grey
        meshes = Meshes(verts=meshes.verts_list(), faces=meshes.faces_list(),
                        textures=TexturesVertex([colors.to(meshes.verts_packed())]))
    return normalize_meshes(meshes)


def _vertex_colors(path: Path, n_verts: int) -> torch.Tensor | None:
    """(V, 3) per-vertex RGB in [0, 1] that a PLY (red/green/blue) or an OBJ (``v x y z r g
    b``, as ``save_obj(verts_colors=...)`` and MeshLab write) holds, or None.

    The mesh loaders return geometry only; both keep the file's vertex order, so the i-th
    colour here is the i-th vertex there. Colours on only some OBJ vertices, or a count that
    differs from ``n_verts``, give None (drawn grey) rather than a shifted colouring.
    """
    ext = path.suffix.lower()
    if ext == ".ply":
        from ..io.ply_io import _load_ply

        colors = _load_ply(path).verts_colors
    elif ext == ".obj":
        rows = []
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            for line in f:
                words = line.split("#", 1)[0].split()
                if words[:1] != ["v"]:
                    continue
                if len(words) != 7:
                    return None
                try:
                    rows.append([float(w) for w in words[4:]])
                except ValueError:  # load_obj already accepted the geometry: just draw grey
                    return None
        colors = torch.tensor(rows, dtype=torch.float32) if rows else None
    else:
        return None
    if colors is None or colors.shape != (n_verts, 3):
        return None
    if not bool(torch.isfinite(colors).all()):
        return None
    return colors.clamp(0.0, 1.0)


def orbit_cameras(
    n_views: int, dist: float = 2.7, elev: float = 15.0, fov: float = 60.0,
    device: torch.device | str = "cpu",
) -> FoVPerspectiveCameras:
    """``n_views`` perspective cameras evenly spaced in azimuth around the origin."""
    azim = torch.linspace(0.0, 360.0, n_views + 1)[:-1]
    R, T = look_at_view_transform(dist=dist, elev=elev, azim=azim, device=device)
    return FoVPerspectiveCameras(R=R, T=T, fov=fov, device=device)


def make_renderer(
    shader: str,
    image_size: int,
    background: Sequence[float] = (1.0, 1.0, 1.0),
    light_location: Sequence[float] = (2.0, 2.0, -2.0),
    sigma: float = 1e-4,
    faces_per_pixel: int = 20,
    device: torch.device | str = "cpu",
) -> MeshRenderer:
    """A renderer for one of :data:`SHADERS` (cameras are given per call)."""
    if shader not in SHADERS:
        raise ValueError(f"shader must be one of {sorted(SHADERS)}, got {shader!r}")
    shading, blend, soft = SHADERS[shader]
    settings = RasterizationSettings(
        image_size=image_size,
        blur_radius=math.log(1.0 / sigma - 1.0) * sigma if soft else 0.0,
        faces_per_pixel=faces_per_pixel if soft else 1,
    )
    lights = PointLights(location=(tuple(light_location),), device=device)
    blend_params = BlendParams(sigma=sigma, gamma=1e-4, background_color=tuple(background))
    return MeshRenderer(
        MeshRasterizer(raster_settings=settings),
        MeshShader(shading, blend, device, lights=lights, materials=Materials(device=device),
                   blend_params=blend_params),
    )


def to_rgb(images: torch.Tensor, shader: str, background: Sequence[float]) -> torch.Tensor:
    """Displayable (N, H, W, 3) in [0, 1] from a renderer's output.

    Silhouettes show alpha as grey on the background; depth is mapped to grey, nearer
    brighter, over the covered depth range.
    """
    bg = torch.tensor(background, dtype=images.dtype)
    if shader == "silhouette":
        a = images[..., 3:4]
        return a * 0.15 + (1 - a) * bg
    if shader == "depth":
        z = images[..., 0]
        covered = z < z.max()  # background holds zfar
        if covered.any():
            lo, hi = z[covered].min(), z[covered].max()
            g = 1.0 - 0.8 * (z - lo) / (hi - lo).clamp(min=1e-6)
        else:
            g = torch.zeros_like(z)
        return torch.where(covered[..., None], g[..., None].expand(*z.shape, 3), bg)
    return images[..., :3].clamp(0, 1)


@torch.no_grad()
def render_views(
    meshes: Meshes,
    cameras: FoVPerspectiveCameras,
    shader: str,
    image_size: int,
    background: Sequence[float] = (1.0, 1.0, 1.0),
    light_location: Sequence[float] = (2.0, 2.0, -2.0),
    batch_size: int = 8,
    progress: bool = True,
) -> torch.Tensor:
    """Render one mesh from every camera, ``batch_size`` views per call.

    Returns:
        (N, H, W, 3) images in [0, 1] (a preview: no gradients).
    """
    renderer = make_renderer(shader, image_size, background, light_location)
    out = []
    batches = range(0, len(cameras), batch_size)
    for start in tqdm(batches, desc=f"render {shader}", unit="batch",
                      disable=not progress or len(batches) < 2):
        cams = cameras[list(range(start, min(start + batch_size, len(cameras))))]
        out.append(to_rgb(renderer(meshes, cameras=cams), shader, background))
    return torch.cat(out)


__all__ = ["COMPARE", "SHADERS", "load_for_render", "make_renderer", "orbit_cameras",
           "render_views", "to_rgb"]
