"""Tiny distributed ``fit_splat``, ``fit_pose`` and ``evaluate_pose_recovery`` runs for
tests/test_dist_splat_pose.py: run this file under ``torchrun`` (rank 0 saves the results
to OUT), or import :func:`run_all` to get one process's results.

Usage: ``dist_sp_worker.py OUT [--pose-job DIR] [--splat-checkpoint CK]``: with DIR, also
the ``diffrend pose`` job (:func:`~diffrend.cli.pose_job.run_pose_job`, 2 restarts at 32 px)
writes its outputs there; with CK, also the splat fit stopped after 7 steps (by the callback)
leaves its checkpoint there.
"""

from __future__ import annotations

import argparse

import torch

from diffrend import look_at_view_transform
from diffrend.cli.pose_job import run_pose_job
from diffrend.cli.splat_job import initial_points, prepare_splat_inputs
from diffrend.io import default_mesh_path, load_mesh
from diffrend.jobs.distributed import DistContext, distributed, set_rank_threads
from diffrend.jobs.pose import (
    FitPoseSettings,
    evaluate_pose_recovery,
    fit_pose,
    random_rotation_away,
    render_pose_target,
)
from diffrend.jobs.splat import FitSplatSettings, fit_splat
from diffrend.jobs.views import normalize_meshes

# 2 views a step (one per rank), densified at steps 6 and 12 (split and cloned Gaussians).
# The rotations are held (lr_quats tiny): the starting Gaussians are isotropic, so the true
# gradient of their rotations is 0 and the computed one is rounding noise, which Adam (eps
# 1e-15, as 3DGS) turns into full learning-rate steps whose signs follow the order of the
# sums: one process and two ranks would then differ by up to lr_quats per step, for no fault
# of the distribution. Their gradients are still summed (and tested) like the others'.
SPLAT = FitSplatSettings(iters=16, views_per_step=2, sh_degree=1, sh_degree_every=8,
                         lr_quats=1e-10, refine_start=4, refine_stop=14, refine_every=6,
                         reset_every=9, snapshot_every=8)
# 3 finalists over 2 ranks: unequal shares.
POSE = FitPoseSettings(restarts=4, search_steps=12, refine_steps=6, search_size=32,
                       screen_pool=64, finalists=3)
# 1 finalist: rank 1 has none to refine; 3 trials: unequal shares.
EVAL = FitPoseSettings(restarts=2, search_steps=5, refine_steps=3, search_size=32,
                       screen_pool=16, finalists=1)


def run_splat(ctx: DistContext, checkpoint: str | None = None, resume: bool = False,
              stop_after: int | None = None) -> dict:
    """The cow's 6 views at 32 px from 300 surface points, SPLAT, seed 1 (checkpointed
    every step to ``checkpoint``; ``stop_after``: the callback stops after that step)."""
    inputs = prepare_splat_inputs(views=6, heldout=0, image_size=32)
    points, colors = initial_points(inputs, 300, 0)
    r = fit_splat(inputs.views.train, points, colors, SPLAT, seed=1, progress=False, dist=ctx,
                  checkpoint=checkpoint, checkpoint_every=1, resume=resume,
                  callback=None if stop_after is None else lambda step, _: step >= stop_after)
    out = {"means": r.means, "quats": r.quats, "scales": r.scales, "opacities": r.opacities,
           "sh": r.sh, "history": r.history, "refinements": r.refinements,
           "frames": len(r.frames), "steps": r.steps, "stopped": r.stopped}
    # every rank holds the same Gaussians: rank 0 compares the others' with its own
    theirs = ctx.gather(torch.cat([r.means, r.sh.flatten(1), r.opacities[:, None]], 1))
    out["ranks_equal"] = all(torch.equal(t, theirs[0]) for t in theirs)
    return out


def run_pose(ctx: DistContext) -> dict:
    """The cow's 64 px silhouette, the start 90 degrees away, POSE, seed 0."""
    mesh = normalize_meshes(load_mesh(default_mesh_path()))
    R, T = look_at_view_transform(2.7, 20.0, 40.0)
    sil, _ = render_pose_target(mesh, R, T, 64)
    init_R = random_rotation_away(R, 90, 90, torch.Generator().manual_seed(0))
    res = fit_pose(mesh, sil, init_R, T, seed=0, settings=POSE, dist=ctx)
    return {"R": res.R, "T": res.T, "loss": res.loss, "iou": res.iou, "winner": res.winner,
            "history": res.history,
            "restarts": [{k: r[k] for k in ("R0", "R", "loss", "iou", "refined")}
                         for r in res.restarts]}


def run_evaluate(ctx: DistContext) -> dict:
    """3 trials of EVAL on the cow at 48 px."""
    ev = evaluate_pose_recovery(default_mesh_path(), seeds=3, image_size=48, fit_options=EVAL,
                                group=ctx)
    return {k: ev[k] for k in ("errors_deg", "ious", "dist_errors", "success_rate")}


def run_all(ctx: DistContext) -> dict:
    """Every job's result (the same on every rank, but the splat's frames)."""
    return {"world": ctx.world_size, "splat": run_splat(ctx), "pose": run_pose(ctx),
            "evaluate": run_evaluate(ctx)}


def main(out: str, pose_job: str | None, splat_checkpoint: str | None) -> None:
    with distributed("cpu") as ctx:
        set_rank_threads(ctx)
        results = run_all(ctx)
        if splat_checkpoint is not None:
            results["splat_part"] = run_splat(ctx, splat_checkpoint, stop_after=7)
        if pose_job is not None:
            results["pose_job"] = run_pose_job(pose_job, seed=0, image_size=32, restarts=2,
                                               progress=False, echo=lambda m: None, group=ctx)
        if ctx.is_main:
            torch.save(results, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--pose-job")
    parser.add_argument("--splat-checkpoint")
    a = parser.parse_args()
    main(a.out, a.pose_job, a.splat_checkpoint)
