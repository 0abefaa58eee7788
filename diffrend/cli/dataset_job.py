"""``diffrend render-dataset``: the process group, the output folder's lock, the progress bar
and the closing report around :func:`diffrend.jobs.dataset.render_dataset`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

EXIT_PARTIAL = 3  # the run finished but some meshes failed (listed in summary.json)


def run_dataset_job(
    folder: str,
    output: str,
    views: int,
    image_size: int,
    lit: bool,
    batch_size: int,
    patterns: Sequence[str] | None,
    overwrite: bool,
    device: torch.device,
    force: bool,
    echo: Callable[[str], None],
    warn: Callable[[str], None],
) -> int:
    """Run the job on this rank; returns the exit code (0, or :data:`EXIT_PARTIAL` on rank 0
    when some meshes failed).

    Rank 0 holds ``output``'s lock (see :func:`.folder.job_folder`) and tells the other
    ranks whether it got it; rank 0 alone shows the progress bar (meshes finished on all
    ranks) and prints the report. Each rank's thread pools get its share of the cores.

    Raises:
        ValueError, FileNotFoundError: on every rank: the folder is locked or not writable,
            no mesh file matches.
    """
    from tqdm import tqdm

    from ..jobs.dataset import DatasetSettings, render_dataset
    from ..jobs.distributed import distributed, set_rank_threads
    from .folder import job_folder

    settings = DatasetSettings(views=views, image_size=image_size, lit=lit,
                               batch_size=batch_size)
    with distributed(device) as ctx, contextlib.ExitStack() as stack:
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", ctx.local_rank)
        threads = set_rank_threads(ctx)
        error = None
        if ctx.is_main:
            try:
                stack.enter_context(job_folder(output, force=force, notice=warn))
            except (ValueError, FileNotFoundError) as e:
                error = str(e)
        error = ctx.broadcast(error)
        if error is not None:
            raise ValueError(error)
        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = stack.enter_context(tqdm(total=total, desc="render-dataset",
                                               unit="mesh", dynamic_ncols=True))
            bar.update(done - bar.n)

        summary = render_dataset(folder, output, settings, ctx, patterns=patterns,
                                 overwrite=overwrite, device=device, progress=progress)
        if bar is not None:
            bar.close()
        if ctx.is_main:
            n = len(summary.rendered) + len(summary.skipped) + len(summary.failed)
            rate = (f" ({len(summary.rendered) / summary.seconds:.2f} meshes/s)"
                    if summary.rendered and summary.seconds > 0 else "")
            echo(f"{n} meshes: {len(summary.rendered)} rendered, {len(summary.skipped)} "
                 f"already complete, {len(summary.failed)} failed; {summary.seconds:.1f} s "
                 f"on {ctx.world_size} rank(s) x {threads} thread(s){rate}")
            for f in summary.failed:
                warn(f"failed: {f['mesh']}: {f['error']}")
            echo(f"wrote {Path(output)}{os.sep}: one folder per mesh, summary.json")
    # Only rank 0 reports partial success: torchrun stops the other ranks as soon as one
    # exits non-zero, and its own exit code is then 1 whatever the rank's was.
    return 0 if summary.ok or not ctx.is_main else EXIT_PARTIAL


__all__ = ["EXIT_PARTIAL", "run_dataset_job"]
