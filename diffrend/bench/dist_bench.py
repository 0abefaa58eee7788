"""``diffrend bench --distributed``: steps per second of ``diffrend fit`` on 1 and 2
processes, and a cost model of the step that predicts other process counts.

The model (Amdahl's law with a collective): a step of the fit with ``V`` views per step on
``N`` processes costs

    T(N) = a + b * ceil(V / N) + c(N, bytes)

- ``a``: what every process does once per step whatever its share of views: the smooth
  parameterisation's solve and its backward, the regularisers, the Adam step, Python;
- ``b``: one view's render, loss and backward (each process renders ``ceil(V / N)``);
- ``c``: the step's one all-reduce of the packed gradients (``7 x vertices`` float64
  numbers: the two (V, 3) gradients, the remesh errors, the loss terms); 0 for ``N = 1``.

``a`` and ``b`` are fitted (least squares) to one process's median step times at 1..V views
per step, with the threads each of the ``N`` processes gets; ``c`` is timed with
``N`` gloo processes on the buffer the fit sends. The measured ``N``-process steps check the
prediction. On GPUs ``b`` shrinks far more than ``a`` (the render is the parallel part),
and NCCL's ring all-reduce costs about ``2 (N-1)/N * bytes / bandwidth + 2 (N-1) *
latency``; :func:`speedup_table` gives the predicted speedups for a range of ``a / b``.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StepModel:
    """``T(N) = fixed_ms + per_view_ms * ceil(views / N) + allreduce_ms`` (module docstring).

    Attributes:
        fixed_ms: ``a``, the per-step cost every process pays.
        per_view_ms: ``b``, the cost of one view (render, loss, backward).
    """

    fixed_ms: float
    per_view_ms: float

    def step_ms(self, views: int, ranks: int, allreduce_ms: float = 0.0) -> float:
        """Predicted step time (ms) with ``views`` views per step on ``ranks`` processes."""
        if views < 1 or ranks < 1:
            raise ValueError(f"views and ranks must be >= 1, got {views}, {ranks}")
        return (self.fixed_ms + self.per_view_ms * math.ceil(views / ranks)
                + (allreduce_ms if ranks > 1 else 0.0))


def fit_model(views: Sequence[int], step_ms: Sequence[float]) -> StepModel:
    """Least-squares line ``step_ms = a + b * views`` through one process's step times.

    Args:
        views: views per step of each measurement (at least two different values).
        step_ms: the median step time (ms) of each.

    Raises:
        ValueError: fewer than two distinct view counts, or lengths that differ.
    """
    if len(views) != len(step_ms) or len(set(views)) < 2:
        raise ValueError("need step times for at least two different views per step")
    n = len(views)
    mx, my = sum(views) / n, sum(step_ms) / n
    sxx = sum((x - mx) ** 2 for x in views)
    b = sum((x - mx) * (y - my) for x, y in zip(views, step_ms, strict=True)) / sxx
    return StepModel(fixed_ms=my - b * mx, per_view_ms=b)


def ring_allreduce_ms(nbytes: float, ranks: int, latency_us: float = 10.0,
                      bandwidth_gb_s: float = 150.0) -> float:
    """A ring all-reduce's time (ms): ``2 (N-1)/N * bytes / bandwidth + 2 (N-1) * latency``.

    The defaults are assumptions for one node of NVLink-connected GPUs under NCCL (bus
    bandwidth of the order of 150 GB/s, about 10 us per hop), not measurements.
    """
    if ranks <= 1:
        return 0.0
    seconds = (2 * (ranks - 1) / ranks * nbytes / (bandwidth_gb_s * 1e9)
               + 2 * (ranks - 1) * latency_us * 1e-6)
    return 1000 * seconds


def speedup_table(ratios: Sequence[float], views: int, ranks: Sequence[int],
                  nbytes: float) -> list[dict]:
    """Predicted speedups ``T(1) / T(N)`` for fixed-to-per-view ratios ``a / b``.

    Args:
        ratios: values of ``a / b`` (the per-step cost in units of one view's cost).
        views: views per step (at least the largest ``ranks`` to use them all).
        ranks: process counts.
        nbytes: the all-reduce's buffer size; its time is :func:`ring_allreduce_ms` taken
            relative to ``b = 1 ms`` (a GPU render of one 128 px view is of that order).

    Returns:
        One row per ratio: ``{"a/b": r, N: speedup, ...}``.
    """
    rows = []
    for r in ratios:
        model = StepModel(fixed_ms=r, per_view_ms=1.0)
        t1 = model.step_ms(views, 1)
        row: dict = {"a/b": r}
        for n in ranks:
            row[n] = t1 / model.step_ms(views, n, ring_allreduce_ms(nbytes, n))
        rows.append(row)
    return rows


def _worker(args: list[str], out: Path, threads: int, ranks: int = 1,
            timeout: float = 900) -> dict:
    """Run :mod:`.dist_worker` (under torchrun when ``ranks > 1``) with ``threads`` threads
    per process; returns its JSON."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={ranks}"] if ranks > 1 else [sys.executable])
    cmd = [*launch, "-m", "diffrend.bench.dist_worker", *args[:1], str(out), *args[1:]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def _median_step(result: dict, skip: int) -> float:
    """Median step time (ms) after the first ``skip`` steps (warm-up)."""
    return statistics.median(result["step_ms"][skip:])


def run_dist_benchmark(steps: int = 24, image_size: int = 128, views: int = 5,
                       ranks: int = 2, echo: Callable[[str], None] = print) -> dict:
    """Measure the fit's steps at 1 and ``ranks`` processes and fit the cost model.

    Args:
        steps: steps per measurement (the first quarter is dropped as warm-up).
        image_size: the stage's image size.
        views: views per step (the default fit's 5).
        ranks: processes of the distributed run (2 on this project's CI machines).
        echo: where the tables go.

    Returns:
        The figures: ``one`` and ``many`` (measured median step ms), ``model`` (a, b in ms),
        ``allreduce_ms``, ``predicted_ms`` (for ``ranks``), and ``speedups`` (the model's
        predictions for 1, 2, 4, 8 processes with 8 views per step).
    """
    from ..jobs.distributed import cpu_cores

    if steps < 4:
        raise ValueError(f"steps must be >= 4, got {steps}")
    if not 1 <= views <= 64 or ranks < 2 or ranks > views:
        raise ValueError(f"need 2 <= ranks <= views <= 64, got ranks {ranks}, views {views}")
    cores = cpu_cores()
    each = max(1, cores // ranks)
    skip = max(1, steps // 4)
    common = ["--steps", str(steps), "--image-size", str(image_size)]
    with tempfile.TemporaryDirectory(prefix="diffrend-distbench-") as tmp:
        folder = Path(tmp)
        per_view = {}
        for v in range(1, views + 1):  # the model's a and b, with one process's threads
            r = _worker(["fit", *common, "--views-per-step", str(v)], folder / f"v{v}.json",
                        each)
            per_view[v] = _median_step(r, skip)
        one = _worker(["fit", *common, "--views-per-step", str(views)], folder / "one.json",
                      cores)
        many = _worker(["fit", *common, "--views-per-step", str(views)],
                       folder / "many.json", each, ranks=ranks)
        numel = int(many["buffer_numel"])
        ar = _worker(["allreduce", "--numel", str(numel), "--repeats", "50"],
                     folder / "ar.json", each, ranks=ranks)
    model = fit_model(list(per_view), list(per_view.values()))
    allreduce_ms = statistics.median(ar["ms"])
    one_ms, many_ms = _median_step(one, skip), _median_step(many, skip)
    predicted = model.step_ms(views, ranks, allreduce_ms)
    echo(f"## diffrend fit: {views} views per step at {image_size} px, the cow "
         f"({cores} cores; medians of {steps - skip} steps)")
    echo("")
    echo("| processes | threads each | step ms | steps/s | model ms |")
    echo("|---|---|---|---|---|")
    echo(f"| 1 | {cores} | {one_ms:.1f} | {1000 / one_ms:.2f} | |")
    echo(f"| {ranks} | {each} | {many_ms:.1f} | {1000 / many_ms:.2f} | {predicted:.1f} |")
    echo("")
    echo(f"model (one process, {each} thread(s)): a = {model.fixed_ms:.1f} ms per step, "
         f"b = {model.per_view_ms:.1f} ms per view; measured: "
         + ", ".join(f"{v} view(s) {t:.1f} ms" for v, t in per_view.items()))
    echo(f"all-reduce of {numel} float64 ({8 * numel / 1e6:.2f} MB) on {ranks} gloo "
         f"processes: {allreduce_ms:.2f} ms")
    echo(f"predicted {ranks}-process step: {predicted:.1f} ms; measured {many_ms:.1f} ms "
         f"({100 * (many_ms - predicted) / predicted:+.0f}%)")
    # (noise can make the fitted a slightly negative: the ratio is then taken as 0)
    cpu_ratio = max(0.0, model.fixed_ms) / model.per_view_ms if model.per_view_ms > 0 else 0.0
    ratios = sorted({round(cpu_ratio, 2), 1.0, 4.0, 16.0})
    table = speedup_table(ratios, 8, (1, 2, 4, 8), 8.0 * numel)
    echo("")
    echo("predicted speedup T(1)/T(N), 8 views per step, NCCL ring all-reduce (assumed "
         "150 GB/s, 10 us per hop), b = 1 ms:")
    echo("")
    echo("| a / b | N=1 | N=2 | N=4 | N=8 |")
    echo("|---|---|---|---|---|")
    for row in table:
        mark = " (this CPU)" if row["a/b"] == round(cpu_ratio, 2) else ""
        echo(f"| {row['a/b']:g}{mark} | " + " | ".join(f"{row[n]:.2f}" for n in (1, 2, 4, 8))
             + " |")
    return {"one_ms": one_ms, "many_ms": many_ms, "ranks": ranks, "cores": cores,
            "model": {"fixed_ms": model.fixed_ms, "per_view_ms": model.per_view_ms},
            "per_view_ms": per_view, "allreduce_ms": allreduce_ms, "buffer_numel": numel,
            "predicted_ms": predicted, "speedups": table}


__all__ = ["StepModel", "fit_model", "ring_allreduce_ms", "run_dist_benchmark",
           "speedup_table"]
