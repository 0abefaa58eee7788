"""The processes that :mod:`.dist_bench` times: run as a plain process or under ``torchrun``.

``python -m diffrend.bench.dist_worker fit OUT --steps N --views-per-step V --image-size S``
    fits the bundled cow's 20 views for N steps (one 'antialias' stage at S pixels, the
    default fit's last stage, from the visual hull) and writes, on rank 0, each step's
    duration and the size of the step's all-reduce buffer to OUT (JSON).
``python -m diffrend.bench.dist_worker allreduce OUT --numel N --repeats R``
    times ``dist.all_reduce`` of N float64 numbers (the fit's packed buffer) R times and
    writes the durations (rank 0).

The thread counts are the environment's (``OMP_NUM_THREADS``, ``NUMBA_NUM_THREADS``), so the
driver chooses them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def fit_steps(out: Path, steps: int, views_per_step: int, image_size: int) -> None:
    """Time ``steps`` steps of the fit (rank 0 writes ``step_ms`` and ``buffer_numel``)."""
    from ..io import default_mesh_path
    from ..jobs.distributed import distributed, set_rank_threads
    from ..jobs.fit_mesh import FitMeshSettings, Stage, fit_mesh
    from ..jobs.preview import load_for_render
    from ..jobs.views import render_target_views, sphere_cameras
    from ..jobs.warmup import warm_kernels

    # The same 20 lit cow views as `diffrend fit`'s default (bench sits below the CLI).
    train = render_target_views(load_for_render(default_mesh_path()), sphere_cameras(20),
                                image_size, lit=True)
    settings = FitMeshSettings(stages=(Stage(image_size, steps, 0.015,
                                             silhouette="antialias"),),
                               views_per_step=views_per_step, snapshot_every=10**6)
    stamps: list[float] = []
    sizes: list[int] = []

    def callback(s) -> None:
        stamps.append(time.perf_counter())
        sizes.append(int(s.verts.shape[0]))

    with distributed("cpu") as ctx:
        set_rank_threads(ctx)
        warm_kernels(torch.device("cpu"), echo=lambda m: None)
        ctx.barrier()
        start = time.perf_counter()
        fit_mesh(train, settings=settings, seed=0, progress=False, dist=ctx,
                 callback=callback)
        if ctx.is_main:
            times = [1000 * (b - a) for a, b in zip([start, *stamps[:-1]], stamps, strict=True)]
            # per step: u (V, 3) and colours (V, 3) gradients, the remesh error (V), the
            # loss and its terms
            numel = 7 * sizes[-1] + 6
            out.write_text(json.dumps({"step_ms": times, "verts": sizes, "buffer_numel": numel,
                                       "world": ctx.world_size,
                                       "threads": torch.get_num_threads()}))


def allreduce(out: Path, numel: int, repeats: int) -> None:
    """Time ``repeats`` all-reduces of ``numel`` float64 numbers (rank 0 writes ``ms``)."""
    import torch.distributed as dist

    from ..jobs.distributed import distributed

    with distributed("cpu") as ctx:
        if not ctx.active:
            raise SystemExit("allreduce needs torchrun with 2 or more processes")
        buf = torch.ones(numel, dtype=torch.float64)
        for _ in range(3):  # the first collectives set up the connections
            dist.all_reduce(buf)
        times = []
        for _ in range(repeats):
            ctx.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(buf)
            times.append(1000 * (time.perf_counter() - t0))
        if ctx.is_main:
            out.write_text(json.dumps({"ms": times, "world": ctx.world_size, "numel": numel}))


def main(argv: list[str] | None = None) -> None:
    """Parse the command line (see the module docstring) and run the worker."""
    parser = argparse.ArgumentParser(prog="python -m diffrend.bench.dist_worker")
    parser.add_argument("mode", choices=("fit", "allreduce"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--views-per-step", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--numel", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=50)
    a = parser.parse_args(argv)
    if a.mode == "fit":
        fit_steps(a.out, a.steps, a.views_per_step, a.image_size)
    else:
        allreduce(a.out, a.numel, a.repeats)


if __name__ == "__main__":
    main()
