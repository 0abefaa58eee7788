"""The CUDA benchmark's render paths on small scenes, with the Triton backend.

For checks that must run every path but cannot afford the benchmark's scenes: the host-sync
tests (Triton's interpreter on CPU tensors, or CUDA) and the ahead-of-time compile check
(:mod:`.triton_compile`). Each path is one call: forward, or forward and backward.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from .raster_bench import Case, _points_fn

# The paths :mod:`.cuda_bench` times (hard raster, soft raster, SoftPhong, points raster and
# render) and the silhouette renderer.
PATHS = ("hard raster", "soft raster fwd+bwd", "SoftPhong textured fwd+bwd",
         "silhouette fwd+bwd", "points raster", "points alpha render fwd+bwd")
# Variants that compile other kernel specialisations (float64, the deterministic backward).
VARIANTS = ("soft raster float64 fwd+bwd", "soft raster deterministic fwd+bwd",
            "points float64 fwd+bwd")


def _textured_sphere():
    from ..shading import TexturesUV
    from ..structures import ico_sphere

    mesh = ico_sphere(1)
    v = mesh.verts_packed()
    uv = torch.stack((torch.atan2(v[:, 0], v[:, 2]) / (2 * torch.pi) + 0.5,
                      torch.asin(v[:, 1].clamp(-1, 1)) / torch.pi + 0.5), dim=1)
    tex = TexturesUV(torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(0)),
                     faces_uvs=[mesh.faces_packed()], verts_uvs=[uv])
    return mesh.__class__(verts=[v], faces=[mesh.faces_packed()], textures=tex)


def _faces_call(device: torch.device, dtype: torch.dtype, deterministic: bool
                ) -> Callable[[], None]:
    """Soft rasterization of random faces through the functional core, fwd+bwd."""
    from ..raster import rasterize_faces

    g = torch.Generator().manual_seed(0)
    fv = torch.rand(12, 3, 3, generator=g, dtype=torch.float64) * 1.6 - 0.8
    fv[..., 2] = fv[..., 2].abs() + 0.5
    fv = fv.to(device=device, dtype=dtype)
    face_mesh = torch.zeros(12, dtype=torch.int64, device=device)

    def fwd_bwd() -> None:
        v = fv.clone().requires_grad_()
        previous = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(deterministic)
        try:
            fr = rasterize_faces(v, face_mesh, 1, 16, blur_radius=1e-3, faces_per_pixel=8,
                                 perspective_correct=True, clip_barycentric_coords=True,
                                 backend="triton")
            (fr.zbuf.sum() + fr.bary_coords.sum() + fr.dists.sum()).backward()
        finally:
            torch.use_deterministic_algorithms(previous)
    return fwd_bwd


def _points64_call(device: torch.device) -> Callable[[], None]:
    from ..raster import rasterize_points_packed

    g = torch.Generator().manual_seed(0)
    pts = torch.rand(200, 3, generator=g, dtype=torch.float64) * 2 - 1
    pts[:, 2] += 2.0
    pts = pts.to(device)
    cloud = torch.zeros(200, dtype=torch.int64, device=device)

    def fwd_bwd() -> None:
        p = pts.clone().requires_grad_()
        fr = rasterize_points_packed(p, cloud, 1, 16, radius=0.2, points_per_pixel=4,
                                     backend="triton")
        (fr.zbuf.sum() + fr.dists.sum()).backward()
    return fwd_bwd


def small_call(name: str, device: torch.device | str) -> Callable[[], None]:
    """One call of the named path (one of ``PATHS + VARIANTS``) on ``device`` with the Triton
    backend: a 42-face textured sphere or 400 points, 16-24 pixels square, K <= 8."""
    from ..cameras import FoVPerspectiveCameras, look_at_view_transform
    from ..jobs.preview import make_renderer
    from ..raster import MeshRasterizer, RasterizationSettings

    device = torch.device(device)
    if name not in PATHS + VARIANTS:
        raise ValueError(f"name must be one of {PATHS + VARIANTS}, got {name!r}")
    if name == "soft raster float64 fwd+bwd":
        return _faces_call(device, torch.float64, deterministic=False)
    if name == "soft raster deterministic fwd+bwd":
        return _faces_call(device, torch.float32, deterministic=True)
    if name == "points float64 fwd+bwd":
        return _points64_call(device)
    if name.startswith("points"):
        shader = "points" if "render" in name else None
        return _points_fn(Case(name, "points400", 16, 8, None, shader is not None, shader),
                          "triton", device)
    R, T = look_at_view_transform(dist=2.7, elev=10.0, azim=30.0)
    cameras = FoVPerspectiveCameras(R=R, T=T, device=device)
    mesh = _textured_sphere().to(device)
    verts = mesh.verts_padded().detach()
    if name == "hard raster":
        rasterizer = MeshRasterizer(cameras, RasterizationSettings(image_size=24,
                                                                   backend="triton"))

        def hard() -> None:
            with torch.no_grad():
                rasterizer(mesh)
        return hard
    if name == "soft raster fwd+bwd":
        rasterizer = MeshRasterizer(cameras, RasterizationSettings(
            image_size=16, blur_radius=1e-3, faces_per_pixel=8, backend="triton"))

        def draw(m):
            fr = rasterizer(m)
            return fr.zbuf.sum() + fr.bary_coords.sum() + fr.dists.sum()
    else:
        shader = "soft-phong" if name.startswith("SoftPhong") else "silhouette"
        renderer = make_renderer(shader, 16, faces_per_pixel=8, device=device)
        settings = dataclasses.replace(renderer.rasterizer.raster_settings, backend="triton")

        def draw(m):
            return renderer(m, cameras=cameras, raster_settings=settings).sum()

    def fwd_bwd() -> None:
        v = verts.clone().requires_grad_()
        draw(mesh.update_padded(v)).backward()
    return fwd_bwd
