"""A tiny distributed ``fit_mesh`` for tests/test_fit_distributed.py: run it under
``torchrun`` (or plainly, as one process); rank 0 saves the fitted mesh to OUT.

Usage: ``dist_fit_worker.py OUT [CHECKPOINT [STOP_AFTER]]``: with CHECKPOINT, checkpoints
every step and resumes from it; with STOP_AFTER, the callback stops the fit after that many
steps (of the whole run)."""

from __future__ import annotations

import sys

import torch

from diffrend.cli.mesh_job import prepare_inputs
from diffrend.jobs import FitMeshSettings
from diffrend.jobs.distributed import distributed, set_rank_threads
from diffrend.jobs.fit_mesh import Stage, fit_mesh

SETTINGS = FitMeshSettings(stages=(Stage(24, 5, 0.05), Stage(32, 5, 0.03)), views_per_step=4,
                           remesh_every=2, snapshot_every=5)


def main(out: str, checkpoint: str | None = None, stop_after: int | None = None) -> None:
    """Fit the cow's 8 views at 32 px with SETTINGS and seed 3; rank 0 writes verts/faces."""
    stop = None if stop_after is None else (lambda s: s.step >= stop_after)
    inputs = prepare_inputs(None, None, views=8, heldout=0, image_size=32)
    with distributed("cpu") as ctx:
        set_rank_threads(ctx)
        result = fit_mesh(inputs.train, settings=SETTINGS, seed=3, progress=False, dist=ctx,
                          checkpoint=checkpoint, checkpoint_every=1,
                          resume=checkpoint is not None, callback=stop)
        if ctx.is_main:
            torch.save({"verts": result.mesh.verts_packed(), "faces": result.mesh.faces_packed(),
                        "history": result.history, "remeshes": result.remeshes,
                        "world": ctx.world_size, "steps": result.steps,
                        "stopped": result.stopped}, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None,
         int(sys.argv[3]) if len(sys.argv) > 3 else None)
