"""Compile (or load from Numba's disk cache) the jobs' kernels before a progress bar starts."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path

import torch

# Modules with the Numba kernels that the jobs run (compiled on first use, cached on disk).
KERNEL_MODULES = (
    "diffrend.raster.numba_shared", "diffrend.raster.mesh.numba", "diffrend.raster.gather",
    "diffrend.raster.points.numba", "diffrend.render.blend_kernels",
)


def warm_kernels(device: torch.device, points: bool = False,
                 echo: Callable[[str], None] = print) -> None:
    """Run the jobs' kernels once on a tiny scene before the job's progress bar starts.

    On a cold Numba cache (a fresh install) compiling takes tens of seconds; without this
    the first step of the bar took it silently and the bar's ETA extrapolated it (56
    minutes, measured). Says so first when the cache is cold; a warm cache loads in about a
    second.
    """
    if device.type != "cpu":
        return
    cold = False
    for name in KERNEL_MODULES:
        module = importlib.import_module(name)
        for f in vars(module).values():
            cache = getattr(f, "_cache", None)
            index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
            inlined = getattr(f, "targetoptions", {}).get("inline") == "always"  # not cached
            if index is not None and not inlined and not Path(index).exists():
                cold = True
    t0 = time.perf_counter()
    if cold:
        echo("compiling kernels (first run only, about 15-60 s)...")
    from ..cameras import FoVPerspectiveCameras
    from ..modules.mesh import MeshShader
    from ..raster import MeshRasterizer, RasterizationSettings
    from ..shading import TexturesVertex
    from ..structures import Meshes, ico_sphere

    sphere = ico_sphere(1)
    verts = sphere.verts_packed().clone().requires_grad_(True)
    mesh = Meshes([verts], [sphere.faces_packed()],
                  textures=TexturesVertex([torch.full_like(verts, 0.5)]))
    cameras = FoVPerspectiveCameras(T=torch.tensor([[0.0, 0.0, 3.0]]))
    loss = 0.0
    for blur, k in ((0.0, 1), (1e-4, 4)):
        fragments = MeshRasterizer(cameras=cameras, raster_settings=RasterizationSettings(
            image_size=16, blur_radius=blur, faces_per_pixel=k))(mesh)
        for shading, blend in (("phong", "hard" if k == 1 else "softmax"),
                               ("silhouette", "hard" if k == 1 else "sigmoid")):
            loss = loss + MeshShader(shading, blend)(fragments, mesh, cameras=cameras).sum()
    if points:
        from ..modules.points import PointsRenderer
        from ..raster import PointsRasterizationSettings, PointsRasterizer
        from ..render.compositing import AlphaCompositor
        from ..structures import Pointclouds

        cloud = Pointclouds(points=[verts], features=[torch.full_like(verts, 0.5)])
        loss = loss + PointsRenderer(
            PointsRasterizer(cameras=cameras, raster_settings=PointsRasterizationSettings(
                image_size=16, radius=0.05, points_per_pixel=4)), AlphaCompositor())(cloud).sum()
    loss.backward()
    if cold:
        echo(f"compiled in {time.perf_counter() - t0:.0f} s (cached for later runs)")
