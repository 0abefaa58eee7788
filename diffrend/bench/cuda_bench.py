"""CUDA benchmark of the mesh and points rasterizers: the Triton kernels against the
pure-torch reference.

Run on a machine with a GPU: ``python -m diffrend.bench.cuda_bench`` (``--help`` for options).
Each case runs the whole path (world-space ``Meshes`` -> cameras -> ``MeshRasterizer`` or
``MeshRenderer``; for points, a ``Pointclouds`` sampled on the cow -> ``PointsRasterizer`` or
``PointsRenderer`` with the alpha compositor) on CUDA tensors; times are medians over
repeats after warm-up, measured with CUDA events around each call. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
from collections.abc import Callable

import torch

from .raster_bench import Case, _points_fn, _scene

CASES = (
    # (case, target ms for the Triton backend on an H100, or None)
    (Case("cow 512^2 K=1 fwd", "cow", 512), None),
    (Case("ico_sphere(8) 1024^2 K=1 fwd", "ico8", 1024), 5.0),
    (Case("cow 128^2 K=50 soft fwd+bwd", "cow", 128, 50, 1e-4, True), 2.0),
    (Case("SoftPhong cow 256^2 K=50 fwd+bwd", "cow", 256, 50, 1e-4, True, "soft-phong"), None),
    (Case("points 1M 512^2 K=8 rasterize fwd", "points1000000", 512, 8), None),
    (Case("points 1M 512^2 K=8 alpha render fwd+bwd", "points1000000", 512, 8, None, True,
          "points"), None),
)


def make_fn(case: Case, backend: str, device: torch.device) -> Callable[[], None]:
    """One call of the case on ``device`` with the given rasterizer backend."""
    from ..jobs.preview import make_renderer
    from ..raster import MeshRasterizer, RasterizationSettings

    if case.mesh.startswith("points"):
        return _points_fn(case, backend, device)
    meshes, cameras = _scene(case)
    meshes, cameras = meshes.to(device), cameras.to(device)
    if case.shader is not None:
        renderer = make_renderer(case.shader, case.image_size, sigma=case.sigma or 1e-4,
                                 faces_per_pixel=case.faces_per_pixel, device=device)
        settings = dataclasses.replace(renderer.rasterizer.raster_settings, backend=backend)

        def draw(m):
            return renderer(m, cameras=cameras, raster_settings=settings)
    else:
        blur = 0.0 if case.sigma is None else math.log(1.0 / case.sigma - 1.0) * case.sigma
        rasterizer = MeshRasterizer(cameras, RasterizationSettings(
            image_size=case.image_size, blur_radius=blur, faces_per_pixel=case.faces_per_pixel,
            backend=backend,
        ))

        def draw(m):
            fr = rasterizer(m)
            return fr.zbuf.sum() + fr.bary_coords.sum() + fr.dists.sum()

    if not case.backward:

        def run() -> None:
            with torch.no_grad():
                draw(meshes)

        return run
    verts = meshes.verts_padded().detach()

    def run_backward() -> None:
        v = verts.clone().requires_grad_()
        draw(meshes.update_padded(v)).sum().backward()

    return run_backward


def median_ms(fn: Callable[[], None], repeats: int, warmup: int = 3,
              budget_s: float = 20.0) -> float:
    """Median milliseconds of ``fn`` on the current CUDA stream (CUDA events), after warm-up;
    fewer repeats when one call is slow, so a case stays within about ``budget_s``."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    while len(times) < repeats:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
        if len(times) >= 3 and sum(times) > budget_s * 1e3:
            break
    return statistics.median(times)


def count_stream_syncs(fn: Callable[[], None]) -> int:
    """How many times one call of ``fn`` makes the host wait for the CUDA stream (reads of
    device data, blocking host-to-device copies), counted by CUDA's sync debug mode."""
    import warnings

    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def run(repeats: int = 20, reference: bool = True, echo: Callable[[str], None] = print
        ) -> list[dict]:
    """Time every case; print a markdown table; return the rows."""
    if not torch.cuda.is_available():
        raise SystemExit("cuda_bench needs a CUDA GPU (torch.cuda.is_available() is False)")
    import triton

    dev = torch.device("cuda")
    echo(f"{torch.cuda.get_device_name(dev)}; torch {torch.__version__}; triton "
         f"{triton.__version__}; median of {repeats} after warm-up; ms")
    echo("")
    echo("| case | triton ms | syncs / call | reference ms | reference / triton | "
         "target (triton) |")
    echo("|---|---:|---:|---:|---:|---|")
    rows = []
    for case, target in CASES:
        fn = make_fn(case, "triton", dev)
        ours = median_ms(fn, repeats)
        syncs = count_stream_syncs(fn)
        ref = median_ms(make_fn(case, "reference", dev), repeats) if reference else None
        torch.cuda.empty_cache()
        met = "-" if target is None else f"< {target:g} ms: {'met' if ours < target else 'MISSED'}"
        rows.append({"case": case.name, "triton_ms": ours, "syncs": syncs,
                     "reference_ms": ref, "target_ms": target})
        echo(f"| {case.name} | {ours:.3f} | {syncs} | {'-' if ref is None else f'{ref:.2f}'} | "
             f"{'-' if ref is None else f'{ref / ours:.1f}x'} | {met} |")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-reference", action="store_true",
                        help="time the Triton backend only")
    args = parser.parse_args(argv)
    run(repeats=args.repeats, reference=not args.no_reference)


if __name__ == "__main__":
    main()
