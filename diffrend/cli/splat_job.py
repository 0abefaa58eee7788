"""``diffrend splat`` end to end: views of a mesh (or real views), the Gaussian fit, metrics
and the output folder.

Outputs (written atomically): ``point_cloud.ply`` (the Gaussians in the 3DGS PLY layout,
which the usual viewers open), ``progress.gif``, ``loss.png``, ``final.png`` (held-out views:
targets over renders), ``metrics.json`` (held-out PSNR and SSIM), ``index.html`` and
``checkpoint.pt``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..cameras import viewmats_and_intrinsics
from ..io import GaussianCloud, colmap_views, is_colmap_folder, load_colmap, save_gaussian_ply
from ..io.outputs import write_gif_frames, write_json, write_png
from ..jobs.fit_points import hull_surface_points
from ..jobs.metrics import psnr
from ..jobs.pictures import image_grid, loss_curve, progress_frames, to_uint8
from ..jobs.splat import FitSplatResult, FitSplatSettings, fit_splat
from ..losses import sample_points_from_meshes, ssim
from ..splat import rasterization
from .jobrun import JobRun, fit_and_write
from .mesh_job import FitInputs, prepare_inputs
from .report import write_index


@dataclass(frozen=True)
class SplatInputs:
    """What the splat job fits: the views, and the starting points when the data has them.

    Attributes:
        views: training and held-out views (see :class:`~diffrend.cli.mesh_job.FitInputs`).
        points: (P, 3) a COLMAP model's sparse points, or None (then
            :func:`initial_points` samples the target mesh or the visual hull).
        colors: (P, 3) their colours in [0, 1], or None.
    """

    views: FitInputs
    points: torch.Tensor | None = None
    colors: torch.Tensor | None = None


def prepare_splat_inputs(
    mesh: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    views: int = 40,
    heldout: int = 10,
    image_size: int = 256,
    device: str | torch.device = "cpu",
    lit: bool = False,
    allow_outside: bool = False,
) -> SplatInputs:
    """Training and held-out views for the splat job.

    A COLMAP folder (``data`` holding ``cameras.bin``/``.txt``, or ``sparse/0``): its
    images with the longer side resampled to ``image_size``, every eighth view held out
    (the first included: the 3DGS convention), its sparse points as the start. Otherwise as
    :func:`~diffrend.cli.mesh_job.prepare_inputs`: a mesh's views (default the bundled cow)
    rendered ``lit`` or unlit over black, or a folder's views framed to ``image_size``.
    """
    if data is not None and is_colmap_folder(data):
        if mesh is not None:
            raise ValueError("give either a target mesh or --data, not both")
        scene = load_colmap(data, device="cpu")
        all_views = colmap_views(scene, max_side=image_size).to(device)
        n = len(all_views)
        held = list(range(0, n, 8)) if n >= 2 else []
        train = [i for i in range(n) if i not in held]
        fit_inputs = FitInputs(all_views.subset(train),
                               all_views.subset(held) if held else None, None,
                               Path(data).name, lit=False)
        points = scene.points.to(device) if scene.points.shape[0] >= 2 else None
        return SplatInputs(fit_inputs, points,
                           scene.colors.to(device) if points is not None else None)
    return SplatInputs(prepare_inputs(mesh, data, views=views, heldout=heldout,
                                      image_size=image_size, device=device, lit=lit,
                                      allow_outside=allow_outside))


def initial_points(inputs: SplatInputs, n_points: int, seed: int
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Starting points (P, 3) and colours (P, 3) or None: the data's own points (a COLMAP
    model's), else samples of the target mesh's surface with its colours, else the surface
    of the training views' visual hull (grey)."""
    if inputs.points is not None:
        return inputs.points, inputs.colors
    g = torch.Generator().manual_seed(seed)
    target = inputs.views.target
    if target is not None:
        pts, cols = sample_points_from_meshes(target, n_points, return_textures=True,
                                              generator=g)
        return pts[0], cols[0, :, :3].clamp(0, 1)
    return hull_surface_points(inputs.views.train, n_points, 400_000, g), None


@torch.no_grad()
def render_result(result: FitSplatResult, cameras, height: int, width: int,
                  sh_degree: int) -> torch.Tensor:
    """(N, H, W, 3) renders of the fitted Gaussians from N cameras over black."""
    viewmats, Ks = viewmats_and_intrinsics(cameras, height, width)
    out = []
    for i in range(len(cameras)):
        rgb, _, _ = rasterization(result.means, result.quats, result.scales,
                                  result.opacities, result.sh, viewmats[i:i + 1],
                                  Ks[i:i + 1], width, height, sh_degree=sh_degree)
        out.append(rgb.clamp(0, 1))
    return torch.cat(out)


def evaluate_splat(result: FitSplatResult, inputs: FitInputs, sh_degree: int) -> dict:
    """Held-out PSNR (of the mean squared error over all held-out pixels) and SSIM, the
    Gaussian count, steps and time."""
    metrics: dict = {"source": inputs.source, "gaussians": int(result.means.shape[0]),
                     "steps": result.steps, "stopped": result.stopped,
                     "seconds": round(result.seconds, 2)}
    if inputs.heldout is not None:
        h = inputs.heldout
        img = render_result(result, h.cameras, h.images.shape[1], h.images.shape[2], sh_degree)
        mse = ((img - h.images) ** 2).flatten(1).mean(1)
        metrics.update(heldout_views=len(h), heldout_psnr=round(psnr(float(mse.mean())), 3),
                       heldout_psnr_min=round(psnr(float(mse.max())), 3),
                       heldout_ssim=round(float(ssim(img, h.images)), 4))
    return metrics


def write_splat_outputs(out: Path, result: FitSplatResult, inputs: FitInputs, metrics: dict,
                        settings: FitSplatSettings, command: str) -> list[str]:
    """Write the Gaussians, pictures, metrics and index.html; returns the file names."""
    cloud = GaussianCloud(means=result.means.cpu(), quats=result.quats.cpu(),
                          scales=result.scales.cpu(), opacities=result.opacities.cpu(),
                          sh=result.sh.cpu())
    save_gaussian_ply(out / "point_cloud.ply", cloud)
    written, figures = ["point_cloud.ply"], []
    if result.frames:
        targets = to_uint8(inputs.train.images[result.snapshot_views])
        write_gif_frames(progress_frames(targets, result.frames, settings.iters),
                         out / "progress.gif")
        written.append("progress.gif")
        figures.append(("progress.gif", "training views: targets (top), the Gaussians so far "
                        "(bottom)"))
    if result.history:
        curves = [{k: v for k, v in r.items() if k != "gaussians"} for r in result.history]
        write_png(loss_curve(curves, title="loss per step"), out / "loss.png")
        written.append("loss.png")
        figures.append(("loss.png", "L1 and D-SSIM per step"))
    if inputs.heldout is not None:
        h = inputs.heldout
        shown = list(range(min(6, len(h))))
        fit = render_result(result, h.cameras[shown], h.images.shape[1], h.images.shape[2],
                            settings.sh_degree)
        write_png(image_grid(torch.cat([h.images[shown], fit]), cols=len(shown)),
                  out / "final.png")
        written.append("final.png")
        figures.append(("final.png", "held-out views: targets (top), the Gaussians (bottom)"))
    write_json(metrics, out / "metrics.json")
    written.append("metrics.json")
    summary = (f"Fitted {result.means.shape[0]} Gaussians to {len(inputs.train)} views of "
               f"{inputs.source} in {result.steps} steps ({metrics['seconds']:.0f} s). "
               f"Command: {command}")
    files = [("point_cloud.ply", "the Gaussians (3DGS PLY layout)"),
             ("metrics.json", "metrics")]
    write_index(out, "diffrend splat", summary, metrics, figures, files, asdict(settings))
    written.append("index.html")
    return written


def run_splat_job(out: str | os.PathLike, splat_inputs: SplatInputs,
                  settings: FitSplatSettings, n_points: int, run: JobRun) -> dict:
    """Fit the Gaussians, measure and write everything into ``out``; returns the metrics."""
    points, colors = initial_points(splat_inputs, n_points, run.seed)
    inputs = splat_inputs.views
    return fit_and_write(
        out, run,
        lambda ck: fit_splat(inputs.train, points, colors, settings=settings, seed=run.seed,
                             checkpoint=ck, checkpoint_every=run.checkpoint_every,
                             resume=run.resume, progress=run.progress, dist=run.dist),
        lambda result: evaluate_splat(result, inputs, settings.sh_degree),
        lambda folder, result, metrics: write_splat_outputs(folder, result, inputs, metrics,
                                                            settings, run.command))
