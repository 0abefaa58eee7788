"""A tiny distributed ``fit_mesh`` for tests/test_fit_distributed.py: run it under
``torchrun`` (or plainly, as one process); rank 0 saves the fitted mesh to OUT.

Usage: ``dist_fit_worker.py OUT [--checkpoint CK] [--stop-after N] [--kill-at N]``: with
CK, checkpoints every step and resumes from it; ``--stop-after``: the callback stops the
fit after N steps; ``--kill-at``: the last rank SIGKILLs itself after N steps, on the
first attempt only (``TORCHELASTIC_RESTART_COUNT`` 0), for torchrun's ``--max-restarts``.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import torch

from diffrend.cli.mesh_job import prepare_inputs
from diffrend.jobs import FitMeshSettings
from diffrend.jobs.distributed import distributed, set_rank_threads
from diffrend.jobs.fit_mesh import FitStep, Stage, fit_mesh

SETTINGS = FitMeshSettings(stages=(Stage(24, 5, 0.05), Stage(32, 5, 0.03)), views_per_step=4,
                           remesh_every=2, snapshot_every=5)


def main(out: str, checkpoint: str | None, stop_after: int | None,
         kill_at: int | None) -> None:
    """Fit the cow's 8 views at 32 px with SETTINGS and seed 3; rank 0 writes verts/faces."""
    inputs = prepare_inputs(None, None, views=8, heldout=0, image_size=32)
    first_try = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
    with distributed("cpu") as ctx:
        set_rank_threads(ctx)
        # The first call imports torch._dynamo and with it torch.distributed.nn.functional,
        # which, imported after the group is made, kept the group and its threads alive
        # into interpreter exit (the fit's first optimizer imports it too); see
        # distributed._import_group_pinning_modules and gloo_threads_after below.
        torch.use_deterministic_algorithms(False)

        def callback(s: FitStep) -> bool:
            if kill_at is not None and first_try and s.step == kill_at \
                    and ctx.rank == ctx.world_size - 1:
                os.kill(os.getpid(), signal.SIGKILL)
            return stop_after is not None and s.step >= stop_after

        result = fit_mesh(inputs.train, settings=SETTINGS, seed=3, progress=False, dist=ctx,
                          checkpoint=checkpoint, checkpoint_every=1,
                          resume=checkpoint is not None, callback=callback)
        is_main, world = ctx.is_main, ctx.world_size
    if is_main:  # (after the group is gone: its worker threads must be gone with it)
        torch.save({"verts": result.mesh.verts_packed(), "faces": result.mesh.faces_packed(),
                    "history": result.history, "remeshes": result.remeshes,
                    "world": world, "steps": result.steps, "stopped": result.stopped,
                    "first_try": first_try, "gloo_threads_after": gloo_threads()}, out)


def gloo_threads() -> int | None:
    """This process's gloo worker threads (Linux: their names in /proc; None elsewhere)."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return None
    names = [(t / "comm").read_text().strip() for t in tasks.iterdir()]
    return sum(n.startswith("pt_gloo") for n in names)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--checkpoint")
    parser.add_argument("--stop-after", type=int)
    parser.add_argument("--kill-at", type=int)
    a = parser.parse_args()
    main(a.out, a.checkpoint, a.stop_after, a.kill_at)
