"""``diffrend pose`` end to end: a target view, the pose fit, metrics and the output folder.

The target is a hard render of the mesh (default: the bundled cow) from a random camera
(``--seed``); the fit starts from that camera turned by a random angle in [``--min-deg``,
``--max-deg``]. Outputs (written atomically): ``pose.png`` (target, start, result and their
overlap), ``progress.gif`` (the kept restart's silhouette over the target, step by step),
``restarts.png`` (every restart's final silhouette with its IoU), ``metrics.json``,
``index.html``; with ``--evaluate N`` also ``evaluation.json`` (success rate over N random
trials, as the issue's quality target measures it).

Under torchrun (``group``) the ranks share the restarts and the trials; rank 0 alone draws
and writes the outputs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..cameras import look_at_view_transform
from ..io import default_mesh_path, load_mesh
from ..io.outputs import check_writable, write_gif_frames, write_json, write_png
from ..jobs.distributed import DistContext
from ..jobs.pictures import image_grid, labelled_row, loss_curve, to_uint8
from ..jobs.pose import (
    PoseStep,
    evaluate_pose_recovery,
    fit_pose,
    random_rotation_away,
    render_pose_target,
    rotation_error_degrees,
)
from ..jobs.views import normalize_meshes
from .report import write_index


def overlay(target: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """(H, W, 3) picture of two silhouettes (H, W): target only red, current only blue,
    both white, neither black."""
    t, c = target.float(), current.float()
    return torch.stack([t, t * c, c], dim=-1)



# A recovery counts as a success below this rotation error, as in evaluate_pose_recovery.
SUCCESS_DEG = 5.0


def pose_summary(metrics: dict, image_size: int, seconds: float) -> str:
    """One sentence on whether the run met its target (rotation error below
    ``metrics["success_deg"]``), for index.html and the command's last line."""
    error, start = metrics["rotation_error_deg"], metrics["start_error_deg"]
    target = metrics["success_deg"]
    head = ("Recovered the camera" if error < target
            else "Did NOT recover the camera (target missed)")
    return (f"{head} of a {image_size}x{image_size} silhouette of {metrics['mesh']} from a "
            f"start {start:.0f} degrees away: rotation error {error:.2f} degrees (target: "
            f"below {target:g}), IoU {metrics['iou']:.4f}, {seconds:.1f} s.")


def run_pose_job(
    out: str | os.PathLike,
    mesh_path: str | os.PathLike | None = None,
    seed: int = 0,
    image_size: int = 128,
    dist: float = 2.7,
    min_deg: float = 60.0,
    max_deg: float = 120.0,
    restarts: int = 16,
    evaluate: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    command: str = "diffrend pose",
    echo: Callable[[str], None] = print,
    group: DistContext | None = None,
) -> dict:
    """Recover a random camera of one mesh from its silhouette; write the outputs.

    ``group``: the process group of a job run by torchrun (None: this process alone; not
    named ``dist``, the camera distance): every rank calls with the same arguments, the
    ranks share the restarts (see :func:`~diffrend.jobs.pose.fit_pose`) and the
    ``evaluate`` trials, and rank 0 alone draws and writes the outputs.

    Returns:
        The metrics (rotation error in degrees, translation error, IoU, seconds, the
        ``processes`` that ran the job, and with ``evaluate`` the evaluation's success
        rate); ``{}`` on the ranks other than 0.
    """
    group = group if group is not None else DistContext()
    folder = check_writable(out) if group.is_main else Path(out)
    path = Path(mesh_path) if mesh_path is not None else default_mesh_path()
    mesh = normalize_meshes(load_mesh(path, device=device))
    g = torch.Generator().manual_seed(seed)
    elev = -30.0 + 90.0 * float(torch.rand((), generator=g))
    azim = 360.0 * float(torch.rand((), generator=g))
    R_true, T_true = look_at_view_transform(dist, elev, azim, device=mesh.device)
    target, _ = render_pose_target(mesh, R_true, T_true, image_size)
    init_R = random_rotation_away(R_true.cpu(), min_deg, max_deg, g).to(mesh.device)
    init_T = torch.tensor([[0.0, 0.0, dist]], device=mesh.device)
    steps: list[PoseStep] = []
    result = fit_pose(mesh, target, init_R, init_T, restarts=restarts, seed=seed,
                      callback=steps.append, progress=progress, dist=group)
    # the kept restart's steps, from the ranks that ran them (the callback hears of each
    # rank's own restarts; search and refinement may run it on different ranks)
    kept = [s for s in steps if s.restart == result.winner]
    if group.active:
        parts = group.gather([replace(s, R=s.R.cpu(), T=s.T.cpu()) for s in kept])
        kept = sorted((replace(s, R=s.R.to(mesh.device), T=s.T.to(mesh.device))
                       for part in parts for s in part),
                      key=lambda s: (s.phase == "refine", s.step))
    if not group.is_main:  # the others only share the evaluation's trials
        if evaluate:
            evaluate_pose_recovery(path, seeds=evaluate, image_size=image_size, dist=dist,
                                   min_deg=min_deg, max_deg=max_deg,
                                   fit_options={"restarts": restarts}, group=group)
        return {}
    error = float(rotation_error_degrees(result.R, R_true)[0])
    start_error = float(rotation_error_degrees(init_R, R_true)[0])
    metrics = {"mesh": path.name, "seed": seed, "true_elev": round(elev, 2),
               "true_azim": round(azim, 2), "start_error_deg": round(start_error, 2),
               "rotation_error_deg": round(error, 3),
               "success_deg": SUCCESS_DEG, "recovered": error < SUCCESS_DEG,
               "translation_error": round(float((result.T - T_true).norm()), 4),
               "iou": round(result.iou, 4), "restarts": len(result.restarts),
               "winner": result.winner,
               "winner_source": result.restarts[result.winner]["source"],
               "seconds": round(result.seconds, 2), "processes": group.world_size}

    def sil(R: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        return render_pose_target(mesh, R, T, image_size)[0]

    start = sil(init_R, init_T)
    final = sil(result.R, result.T)
    panels = torch.stack([overlay(target, target), overlay(start, start), overlay(final, final),
                          overlay(target, final)])
    write_png(image_grid(panels, cols=4), folder / "pose.png")
    written = ["pose.png"]
    stride = max(1, len(kept) // 40)
    frames = []
    for s in kept[::stride] + kept[-1:]:
        label = f"{s.phase} step {s.step}  loss {s.loss:.4f}"
        frames.append(labelled_row(to_uint8(overlay(target, sil(s.R, s.T)))[None], label))
    if frames:
        write_gif_frames(frames, folder / "progress.gif")
        written.append("progress.gif")
    tiles = [labelled_row(to_uint8(overlay(target, sil(r["R"], r["T"])))[None],
                          f"#{r['restart']}{' init' if r['source'] == 'init' else ''} "
                          f"IoU {r['iou']:.3f}" + (" *" if r["restart"] == result.winner else ""))
             for r in result.restarts]
    cols = 4
    rows = [np.concatenate(tiles[i:i + cols] + [np.full_like(tiles[0], 255)] *
                           (cols - len(tiles[i:i + cols])), axis=1)
            for i in range(0, len(tiles), cols)]
    write_png(np.concatenate(rows, axis=0), folder / "restarts.png")
    written.append("restarts.png")
    if result.history:
        write_png(loss_curve([{"loss": v} for v in result.history],
                             title="loss of the kept restart (search, then refinement)"),
                  folder / "loss.png")
        written.append("loss.png")
    if evaluate:
        ev = evaluate_pose_recovery(path, seeds=evaluate, image_size=image_size, dist=dist,
                                    min_deg=min_deg, max_deg=max_deg,
                                    fit_options={"restarts": restarts}, progress=progress,
                                    group=group)
        write_json(ev, folder / "evaluation.json")
        written.append("evaluation.json")
        metrics.update(evaluation_trials=evaluate, evaluation_success_rate=ev["success_rate"],
                       evaluation_median_error_deg=round(ev["median_error_deg"], 3),
                       evaluation_median_seconds=round(ev["median_seconds"], 2))
    write_json(metrics, folder / "metrics.json")
    written.append("metrics.json")
    figures = [("pose.png", "target, start, result (white) and result over target (red: "
                "target only, blue: result only)"),
               ("progress.gif", "the kept restart over the target, step by step"),
               ("restarts.png", "every restart's final pose over the target (* kept)"),
               ("loss.png", "loss per step")]
    summary = pose_summary(metrics, image_size, result.seconds) + f" Command: {command}"
    write_index(folder, "diffrend pose", summary, metrics,
                [f for f in figures if f[0] in written], [("metrics.json", "metrics")],
                {"restarts": restarts, "image_size": image_size, "dist": dist,
                 "min_deg": min_deg, "max_deg": max_deg, "seed": seed})
    written.append("index.html")
    echo(f"wrote {folder}/: " + ", ".join(written))
    return metrics
