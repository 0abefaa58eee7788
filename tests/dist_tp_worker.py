"""Tiny distributed ``fit_texture`` and ``fit_points`` runs for
tests/test_dist_texture_points.py: run it under ``torchrun`` (or call :func:`fits` in one
process); rank 0 saves the results to OUT.

Usage: ``dist_tp_worker.py OUT CKDIR``: fits the texture and the cloud with TEXTURE and
POINTS (seed 3), then fits the cloud again, stopped by the callback after STOP_AFTER steps
with a checkpoint CKDIR/points.pt (for a resume on another number of processes).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from diffrend.cli.points_job import prepare_points_inputs
from diffrend.cli.texture_job import prepare_texture_inputs
from diffrend.jobs.distributed import DistContext, distributed, set_rank_threads
from diffrend.jobs.fit_points import FitPointsSettings, fit_points
from diffrend.jobs.fit_texture import FitTextureSettings, fit_texture

TEXTURE = FitTextureSettings(texture_size=32, iters=8, levels=3, views_per_step=3,
                             snapshot_every=4)
POINTS = FitPointsSettings(n_points=800, iters=8, views_per_step=3, hull_samples=20000,
                           snapshot_every=4)
SEED = 3
STOP_AFTER = 4


def texture_inputs():
    """The cow's 6 views at 32 px (its own texture, lit)."""
    return prepare_texture_inputs(views=6, heldout=0, image_size=32)


def points_inputs():
    """The cow's 6 unlit views at 32 px."""
    return prepare_points_inputs(views=6, heldout=0, image_size=32)


def _digest(*tensors: torch.Tensor) -> str:
    """Bytes' hash of the tensors (equal on two ranks only if they hold the same bits)."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def fits(ctx: DistContext, ckdir: Path) -> dict:
    """Run the three fits on this rank; returns what the tests compare (on every rank)."""
    views = texture_inputs()
    tex = fit_texture(views.train, views.target, TEXTURE, seed=SEED, progress=False, dist=ctx)
    data = points_inputs().train
    pts = fit_points(data, POINTS, seed=SEED, progress=False, dist=ctx)
    part = fit_points(data, POINTS, seed=SEED, progress=False, dist=ctx,
                      checkpoint=ckdir / "points.pt", checkpoint_every=1,
                      callback=lambda step, _: step >= STOP_AFTER)
    return {"world": ctx.world_size,
            "texture": tex.texture, "observed": tex.observed, "texture_history": tex.history,
            "texture_frames": len(tex.frames),
            "points": pts.points, "colors": pts.colors, "points_history": pts.history,
            "points_frames": len(pts.frames),
            "part_steps": part.steps, "part_stopped": part.stopped,
            # every rank's parameters, to check that they hold the same bits
            "digests": ctx.gather((_digest(tex.texture, tex.observed),
                                   _digest(pts.points, pts.colors)))}


def main(out: str, ckdir: str) -> None:
    with distributed("cpu") as ctx:
        set_rank_threads(ctx)
        result = fits(ctx, Path(ckdir))
        if ctx.is_main:
            torch.save(result, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("ckdir")
    a = parser.parse_args()
    main(a.out, a.ckdir)
