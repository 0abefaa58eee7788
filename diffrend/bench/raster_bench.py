"""``diffrend bench``: the mesh rasterizer timed side by side with Mesa's llvmpipe.

Each case renders one scene with diffrend (the whole path: world-space ``Meshes`` ->
cameras -> ``MeshRasterizer``) and, in the same run, with OpenGL's software rasterizer
drawing face ids, depth and barycentrics into float targets with readback. Reported:
median milliseconds over repeats, the ratio diffrend / llvmpipe, and peak memory measured
in a fresh subprocess (RSS growth during the call). The two renderers' calls alternate (one
of each per repeat), so a change in the machine's load while a case runs (other tenants of a
shared machine) slows both alike instead of only the one timed at that moment.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Case:
    """One benchmark scene."""

    name: str
    mesh: str  # "cow", "ico<level>", or "points<count>" (sampled on the cow, coloured)
    image_size: int
    faces_per_pixel: int = 1
    sigma: float | None = None  # soft rasterization: blur = log(1/sigma - 1) * sigma
    backward: bool = False
    shader: str | None = None  # full render with this shader (textured cow) instead, or
    # "antialias": diffrend fit's renderer (jobs.views.AntialiasRenderer)
    views: int = 1  # cameras in one call (time reported per view)


FULL = (
    Case("cow 512^2 K=1 fwd", "cow", 512),
    Case("ico_sphere(6) 512^2 K=1 fwd", "ico6", 512),
    Case("ico_sphere(8) 1024^2 K=1 fwd", "ico8", 1024),
    Case("cow 128^2 K=50 soft fwd+bwd", "cow", 128, 50, 1e-4, True),
    Case("SoftPhong cow 256^2 K=50 fwd+bwd", "cow", 256, 50, 1e-4, True, "soft-phong"),
    Case("HardPhong cow 512^2 fwd+bwd", "cow", 512, 1, None, True, "hard-phong"),
    Case("SoftSilhouette cow 256^2 K=50, 1 view", "cow", 256, 50, 1e-4, False, "silhouette"),
    Case("SoftSilhouette cow 256^2 K=50, 20 views (per view)", "cow", 256, 50, 1e-4, False,
         "silhouette", 20),
    Case("fit step: antialiased Phong cow 128^2, 5 views fwd+bwd (per view)", "cow", 128, 1,
         None, True, "antialias", 5),
    Case("points 1M 512^2 K=8 rasterize fwd", "points1000000", 512, 8),
    Case("points 1M 512^2 K=8 alpha render fwd+bwd", "points1000000", 512, 8, None, True,
         "points"),
)
QUICK = (
    Case("cow 128^2 K=1 fwd", "cow", 128),
    Case("ico_sphere(4) 128^2 K=1 fwd", "ico4", 128),
    Case("cow 64^2 K=50 soft fwd+bwd", "cow", 64, 50, 1e-4, True),
    Case("SoftPhong cow 64^2 K=50 fwd+bwd", "cow", 64, 50, 1e-4, True, "soft-phong"),
    Case("points 100k 128^2 K=8 alpha render fwd+bwd", "points100000", 128, 8, None, True,
         "points"),
)


def _scene(case: Case):
    from ..cameras import FoVPerspectiveCameras, look_at_view_transform
    from ..jobs.preview import load_for_render
    from ..structures import ico_sphere

    if case.mesh.startswith("points"):
        meshes = _cloud(int(case.mesh[6:]))
    elif case.mesh == "cow":
        meshes = load_for_render(_default_mesh())
    else:
        meshes = ico_sphere(int(case.mesh[3:]))
    azim = torch.linspace(30.0, 390.0, case.views + 1)[:-1] if case.views > 1 else 30.0
    R, T = look_at_view_transform(dist=2.7, elev=10.0, azim=azim)
    return meshes, FoVPerspectiveCameras(R=R, T=T)


def _cloud(n: int):
    """``n`` coloured points on the cow's surface (a ``Pointclouds``; seeded)."""
    from ..jobs.preview import load_for_render
    from ..losses import sample_points_from_meshes
    from ..structures import Pointclouds

    g = torch.Generator().manual_seed(0)
    points = sample_points_from_meshes(load_for_render(_default_mesh()), n, generator=g)[0]
    colors = torch.rand(n, 3, generator=g)
    return Pointclouds(points=[points], features=[colors])


def _points_fn(case: Case, backend: str = "auto",
               device: torch.device | str = "cpu") -> Callable[[], None]:
    """Rasterize (K nearest, radius one pixel) or render with the alpha compositor, on
    ``device`` with the given rasterizer backend."""
    from ..modules.points import PointsRenderer
    from ..raster import PointsRasterizationSettings, PointsRasterizer
    from ..render.compositing import AlphaCompositor
    from ..structures import Pointclouds

    cloud, cameras = _scene(case)
    cloud, cameras = cloud.to(device), cameras.to(device)
    settings = PointsRasterizationSettings(image_size=case.image_size,
                                           radius=2.0 / case.image_size,
                                           points_per_pixel=case.faces_per_pixel,
                                           backend=backend)
    rasterizer = PointsRasterizer(cameras=cameras, raster_settings=settings)
    if case.shader is None:
        def run() -> None:
            with torch.no_grad():
                rasterizer(cloud)

        return run
    renderer = PointsRenderer(rasterizer, AlphaCompositor())
    points, colors = cloud.points_packed().detach(), cloud.features_packed().detach()

    def run_backward() -> None:
        p, c = points.clone().requires_grad_(), colors.clone().requires_grad_()
        renderer(Pointclouds(points=[p], features=[c])).sum().backward()

    return run_backward


def _default_mesh() -> str:
    from ..io import default_mesh_path

    return str(default_mesh_path())


def _diffrend_fn(case: Case) -> Callable[[], None]:
    from ..jobs.preview import make_renderer
    from ..raster import MeshRasterizer, RasterizationSettings

    if case.mesh.startswith("points"):
        return _points_fn(case)
    meshes, cameras = _scene(case)
    if case.shader == "antialias":  # diffrend fit's last stage: hard Phong, antialiased
        from ..jobs.views import AntialiasRenderer

        antialiased = AntialiasRenderer(case.image_size, "cpu")

        def draw(m):
            sil, rgb = antialiased(m, cameras)
            return sil.sum() + rgb.sum()
    elif case.shader is not None:
        renderer = make_renderer(case.shader, case.image_size, sigma=case.sigma or 1e-4,
                                 faces_per_pixel=case.faces_per_pixel)

        def draw(m):
            return renderer(m, cameras=cameras)
    else:
        blur = 0.0 if case.sigma is None else math.log(1.0 / case.sigma - 1.0) * case.sigma
        rasterizer = MeshRasterizer(cameras, RasterizationSettings(
            image_size=case.image_size, blur_radius=blur, faces_per_pixel=case.faces_per_pixel
        ))

        def draw(m):
            fr = rasterizer(m)
            return fr.zbuf.sum() + fr.bary_coords.sum() + fr.dists.sum()

    if not case.backward:
        # The fragments themselves, as llvmpipe's side ends at its read-back: no reduction
        # over them (the three sums a backward needs took 0.15-0.2 ms of the cow's 512^2
        # call, measured; until 2026-12-07 they were timed here too).
        render = rasterizer if case.shader is None else draw

        def run() -> None:
            with torch.no_grad():
                render(meshes)

        return run
    verts = meshes.verts_padded().detach()

    def run_backward() -> None:
        v = verts.clone().requires_grad_()
        draw(meshes.update_padded(v)).sum().backward()

    return run_backward


def _llvmpipe_fn(case: Case) -> Callable[[], None]:
    from ..raster import meshes_to_ndc
    from .llvmpipe import LlvmpipeRasterizer

    meshes, cameras = _scene(case)
    ndc = meshes_to_ndc(meshes, cameras).verts_packed().detach().numpy()
    faces = meshes.faces_packed().numpy()
    gl = LlvmpipeRasterizer(ndc, faces, case.image_size, case.image_size)
    return lambda: gl.render()


def _median_ms(fn: Callable[[], None], repeats: int, warmup: int = 2) -> float:
    """Median milliseconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    return _paired_median_ms([fn], repeats, warmup)[0]


def _paired_median_ms(fns: list[Callable[[], None]], repeats: int,
                      warmup: int = 2) -> list[float]:
    """Median milliseconds of each function, calling them in turn: repeat i times the i-th
    call of every function, one after the other (interleaved, not one block per function)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return [statistics.median(t) * 1e3 for t in times]


def _peak_memory_mb(case: Case) -> float | None:
    """Peak RSS growth (MB) during one diffrend call, in a fresh process after a warm-up call
    (:func:`peak_memory_mb`)."""
    return peak_memory_mb(
        "from diffrend.bench.raster_bench import Case, _diffrend_fn\n"
        f"fn = _diffrend_fn(Case(**json.loads({json.dumps(json.dumps(case.__dict__))})))\n")


def peak_memory_mb(setup: str, timeout: float = 600) -> float | None:
    """Peak RSS growth (MB) during one call of ``fn``, which the Python code ``setup`` defines
    (``json`` is imported before it), in a fresh process after a warm-up call; None if the
    process fails.

    Freed heap is returned to the system (``malloc_trim``) and the kernel's peak-RSS counter
    reset (``/proc/self/clear_refs``) just before the call.
    """
    code = (
        "import json\n"
        + setup
        + "from diffrend.bench.raster_bench import _status_mb\n"
        "fn()\n"
        "import ctypes; ctypes.CDLL('libc.so.6').malloc_trim(0)\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "base = _status_mb('VmRSS')\n"
        "fn()\n"
        "print(json.dumps(_status_mb('VmHWM') - base))\n"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=timeout, check=True)
        return float(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (e.g. VmRSS, VmHWM) in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise ValueError(f"{field} not in /proc/self/status")


def run_benchmarks(
    quick: bool = False,
    repeats: int = 10,
    llvmpipe: bool = True,
    echo: Callable[[str], None] = print,
    busy: bool = False,
) -> list[dict]:
    """Run the cases; print a markdown table; return the rows as dicts.

    ``busy``: time every case (diffrend and llvmpipe alike) while one spinning process per
    core keeps the cores busy (:func:`.busy.busy_cores`); peak memory is then not measured.
    """
    cases = QUICK if quick else FULL
    repeats = min(repeats, 3) if quick else repeats
    if busy:
        from .busy import busy_cores

        with busy_cores() as procs:
            echo(f"busy mode: {len(procs)} spinning process(es) share the cores")
            return _run_cases(cases, repeats, llvmpipe, echo, memory=False)
    return _run_cases(cases, repeats, llvmpipe, echo, memory=not quick)


def _run_cases(cases: tuple[Case, ...], repeats: int, llvmpipe: bool,
               echo: Callable[[str], None], memory: bool) -> list[dict]:
    rows = []
    echo(f"torch threads: {torch.get_num_threads()}; repeats: {repeats}; medians in ms")
    echo("| case | diffrend ms | llvmpipe ms | ratio | diffrend peak MB |")
    echo("|---|---:|---:|---:|---:|")
    for case in cases:
        gl_fn = None
        if (llvmpipe and not case.backward and case.shader is None
                and not case.mesh.startswith("points")):
            try:
                gl_fn = _llvmpipe_fn(case)
            except RuntimeError as e:  # no EGL here: say so, keep going
                echo(f"(llvmpipe unavailable: {e})")
                llvmpipe = False
        if gl_fn is None:
            ours, gl = _median_ms(_diffrend_fn(case), repeats), None
        else:
            ours, gl = _paired_median_ms([_diffrend_fn(case), gl_fn], repeats)
        ours /= case.views
        mem = _peak_memory_mb(case) if memory else None
        row = {"case": case.name, "diffrend_ms": ours, "llvmpipe_ms": gl,
               "ratio": None if gl is None else ours / gl, "peak_mb": mem}
        rows.append(row)
        echo(
            f"| {case.name} | {ours:.1f} | {'-' if gl is None else f'{gl:.1f}'} | "
            f"{'-' if gl is None else f'{ours / gl:.2f}x'} | "
            f"{'-' if mem is None else f'{mem:.0f}'} |"
        )
    return rows
