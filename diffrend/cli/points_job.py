"""``diffrend fit-points`` end to end: views of a mesh (or real views), the point cloud fit,
metrics and the output folder.

Outputs (written atomically): ``points.ply`` (positions and colours), ``progress.gif``,
``loss.png``, ``final.png`` (held-out views: targets over renders), ``metrics.json``,
``index.html`` and ``checkpoint.pt``.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch

from ..io import save_points_ply
from ..io.outputs import write_gif_frames, write_json, write_png
from ..jobs.fit_points import (
    FitPointsResult,
    FitPointsSettings,
    fit_points,
    radius_ndc,
    render_points,
)
from ..jobs.metrics import psnr
from ..jobs.pictures import image_grid, loss_curve, progress_frames, to_uint8
from ..jobs.views import unit_box
from ..losses import chamfer_distance, sample_points_from_meshes
from .jobrun import JobRun, fit_and_write
from .mesh_job import FitInputs, prepare_inputs
from .report import write_index


def prepare_points_inputs(
    mesh: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    views: int = 20,
    heldout: int = 10,
    image_size: int = 128,
    device: str | torch.device = "cpu",
    allow_outside: bool = False,
    frame: bool = False,
    max_side: int | None = None,
) -> FitInputs:
    """:func:`~diffrend.cli.mesh_job.prepare_inputs` with ``mesh``'s views rendered unlit,
    so that each point's colour is the surface's (a cloud's colours do not change with the
    view). Default mesh: the bundled cow. ``data``'s views are framed to ``image_size``
    (:func:`~diffrend.jobs.framing.frame_views`), after capping their longer side at
    ``max_side``; ``frame``: ``mesh``'s views are rendered at twice ``image_size`` and
    framed the same way."""
    return prepare_inputs(mesh, data, views=views, heldout=heldout, image_size=image_size,
                          device=device, lit=False, allow_outside=allow_outside, frame=frame,
                          max_side=max_side)


def evaluate_points(result: FitPointsResult, inputs: FitInputs,
                    settings: FitPointsSettings) -> dict:
    """Held-out PSNR and coverage IoU, and (with a target mesh) the chamfer distance from
    the points to its surface in the frame where the mesh has max |coordinate| 1."""
    metrics: dict = {"source": inputs.source, "points": int(result.points.shape[0]),
                     "steps": result.steps, "stopped": result.stopped,
                     "seconds": round(result.seconds, 2)}
    if inputs.heldout is not None:
        h = inputs.heldout
        size = h.images.shape[1]
        with torch.no_grad():
            img = render_points(result.points, result.colors, h.cameras, size,
                                radius_ndc(settings.radius_px, size),
                                settings.points_per_pixel)
        mse = float(((img[..., :3] - h.images) ** 2).mean())
        cover = img[..., 3] > 0.5
        target = h.masks > 0.5
        iou = ((cover & target).flatten(1).sum(1) / (cover | target).flatten(1).sum(1)
               .clamp(min=1))
        metrics.update(heldout_views=len(h), heldout_psnr=round(psnr(mse), 3),
                       heldout_iou_mean=round(float(iou.mean()), 4),
                       heldout_iou_min=round(float(iou.min()), 4))
    if inputs.target is not None:
        verts = inputs.target.verts_packed()
        centre, scale = unit_box(verts[None])
        centre, scale = centre[0, 0], scale[0]
        g = torch.Generator(device=verts.device).manual_seed(0)
        surf = sample_points_from_meshes(inputs.target, 20000, generator=g)
        pts = result.points.to(verts.device)[None]
        metrics["chamfer_normalized"] = float(chamfer_distance(
            (pts - centre) / scale, (surf - centre) / scale)[0])
    return metrics


def write_points_outputs(out: Path, result: FitPointsResult, inputs: FitInputs,
                         metrics: dict, settings: FitPointsSettings, command: str) -> list[str]:
    """Write the cloud, pictures, metrics and index.html; returns the file names."""
    save_points_ply(out / "points.ply", result.points, result.colors)
    written, figures = ["points.ply"], []
    if result.frames:
        targets = to_uint8(inputs.train.images[result.snapshot_views])
        write_gif_frames(progress_frames(targets, result.frames, settings.iters),
                         out / "progress.gif")
        written.append("progress.gif")
        figures.append(("progress.gif", "training views: targets (top), the cloud so far "
                        "(bottom)"))
    if result.history:
        write_png(loss_curve(result.history, title="loss per step"), out / "loss.png")
        written.append("loss.png")
        figures.append(("loss.png", "colour and coverage errors per step"))
    if inputs.heldout is not None:
        h = inputs.heldout
        shown = list(range(min(6, len(h))))
        size = h.images.shape[1]
        with torch.no_grad():
            fit = render_points(result.points, result.colors, h.cameras[shown], size,
                                radius_ndc(settings.radius_px, size),
                                settings.points_per_pixel)[..., :3]
        write_png(image_grid(torch.cat([h.images[shown], fit.clamp(0, 1)]), cols=len(shown)),
                  out / "final.png")
        written.append("final.png")
        figures.append(("final.png", "held-out views: targets (top), the cloud (bottom)"))
    write_json(metrics, out / "metrics.json")
    written.append("metrics.json")
    summary = (f"Fitted {result.points.shape[0]} coloured points to {len(inputs.train)} views "
               f"of {inputs.source} in {result.steps} steps ({metrics['seconds']:.0f} s). "
               f"Command: {command}")
    files = [("points.ply", "the point cloud with colours"), ("metrics.json", "metrics")]
    write_index(out, "diffrend fit-points", summary, metrics, figures, files,
                asdict(settings))
    written.append("index.html")
    return written


def run_points_job(out: str | os.PathLike, inputs: FitInputs, settings: FitPointsSettings,
                   run: JobRun) -> dict:
    """Fit the cloud, measure and write everything into ``out``; returns the metrics
    (``{}`` on the ranks other than 0 of a distributed run: rank 0 alone writes)."""
    return fit_and_write(
        out, run,
        lambda ck: fit_points(inputs.train, settings=settings, seed=run.seed, checkpoint=ck,
                              checkpoint_every=run.checkpoint_every, resume=run.resume,
                              progress=run.progress, dist=run.dist),
        lambda result: evaluate_points(result, inputs, settings),
        lambda folder, result, metrics: write_points_outputs(folder, result, inputs, metrics,
                                                             settings, run.command))
