"""The Gaussian rasterizer in ``diffrend bench``: :func:`diffrend.splat.rasterization`
timed forward+backward with the Numba kernels and, in the same run, with the pure-torch
twin (``backend="reference"``) where the twin fits in memory; peak memory in a fresh
subprocess as for the mesh cases.

The scene: N Gaussians on the cow's surface (seeded), isotropic-ish (random rotations,
scales about the spacing of N points on that surface), opacities in [0.3, 0.9], colours as
SH coefficients of the given degree, seen by one camera at distance 2.7 looking at the
origin (as the mesh cases).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SplatCase:
    """One Gaussian benchmark scene."""

    name: str
    n: int
    image_size: int
    sh_degree: int = 3
    twin: bool = False  # also time the torch twin (small scenes: it pads every tile's list)


FULL = (
    SplatCase("Gaussians 10k SH3 128^2 fwd+bwd", 10_000, 128, twin=True),
    SplatCase("Gaussians 100k SH3 512^2 fwd+bwd", 100_000, 512),
    SplatCase("Gaussians 1M SH3 512^2 fwd+bwd", 1_000_000, 512),
)
QUICK = (SplatCase("Gaussians 10k SH3 128^2 fwd+bwd", 10_000, 128, twin=True),)


def scene(n: int, sh_degree: int, image_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """The benchmark's Gaussians and camera as ``rasterization``'s arguments (no grads)."""
    from ..cameras import FoVPerspectiveCameras, look_at_view_transform, viewmats_and_intrinsics
    from ..io import default_mesh_path
    from ..jobs.preview import load_for_render
    from ..losses import sample_points_from_meshes
    from ..splat.sh import SH_C0

    g = torch.Generator().manual_seed(seed)
    cow = load_for_render(str(default_mesh_path()))
    means = sample_points_from_meshes(cow, n, generator=g)[0]
    area = float(cow.faces_areas_packed().sum())
    spacing = math.sqrt(area / n)
    scales = spacing * (0.3 + 0.4 * torch.rand(n, 3, generator=g))
    k = (sh_degree + 1) ** 2
    sh = 0.2 * torch.randn(n, k, 3, generator=g)
    sh[:, 0] = (torch.rand(n, 3, generator=g) - 0.5) / SH_C0
    R, T = look_at_view_transform(dist=2.7, elev=10.0, azim=30.0)
    viewmats, Ks = viewmats_and_intrinsics(FoVPerspectiveCameras(R=R, T=T), image_size,
                                           image_size)
    return {"means": means, "quats": torch.randn(n, 4, generator=g), "scales": scales,
            "opacities": 0.3 + 0.6 * torch.rand(n, generator=g), "colors": sh,
            "viewmats": viewmats, "Ks": Ks}


def splat_fn(case: SplatCase, backend: str = "auto") -> Callable[[], None]:
    """One forward+backward of the case's render (sum of colours and alphas) with
    ``backend``."""
    from ..splat import rasterization

    s = scene(case.n, case.sh_degree, case.image_size)
    leaves = ("means", "quats", "scales", "opacities", "colors")

    def run() -> None:
        p = {k: s[k].clone().requires_grad_(True) for k in leaves}
        rgb, alpha, _ = rasterization(
            p["means"], p["quats"], p["scales"], p["opacities"], p["colors"], s["viewmats"],
            s["Ks"], case.image_size, case.image_size, sh_degree=case.sh_degree,
            backend=backend)
        (rgb.sum() + alpha.sum()).backward()

    return run


def _peak_memory_mb(case: SplatCase) -> float | None:
    """Peak RSS growth (MB) during one forward+backward, in a fresh process after a warm-up
    call (:func:`diffrend.bench.raster_bench.peak_memory_mb`)."""
    from .raster_bench import peak_memory_mb

    return peak_memory_mb(
        "from diffrend.bench.splat_bench import SplatCase, splat_fn\n"
        f"fn = splat_fn(SplatCase(**json.loads({json.dumps(json.dumps(case.__dict__))})))\n",
        timeout=900)


def run_splat_benchmarks(quick: bool, repeats: int, echo: Callable[[str], None] = print
                         ) -> list[dict]:
    """Time the Gaussian cases (Numba and, where marked, the torch twin); print a markdown
    table; return the rows."""
    from .raster_bench import _median_ms

    cases = QUICK if quick else FULL
    echo("| Gaussian case | Numba ms | torch twin ms | twin / Numba | peak MB |")
    echo("|---|---:|---:|---:|---:|")
    rows = []
    for case in cases:
        reps = max(1, min(repeats, 3 if case.n >= 1_000_000 else repeats))
        ours = _median_ms(splat_fn(case), reps, warmup=1)
        twin = _median_ms(splat_fn(case, "reference"), max(1, min(reps, 3)), warmup=1) \
            if case.twin else None
        mem = None if quick else _peak_memory_mb(case)
        rows.append({"case": case.name, "numba_ms": ours, "twin_ms": twin,
                     "twin_ratio": None if twin is None else twin / ours, "peak_mb": mem})
        echo(f"| {case.name} | {ours:.1f} | {'-' if twin is None else f'{twin:.1f}'} | "
             f"{'-' if twin is None else f'{twin / ours:.1f}x'} | "
             f"{'-' if mem is None else f'{mem:.0f}'} |")
    return rows
