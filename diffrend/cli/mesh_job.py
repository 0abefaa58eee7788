"""``diffrend fit`` end to end: inputs, the fit, metrics and the output folder.

Inputs are either a target mesh (default: the bundled cow), from which training and
held-out views are rendered, or a folder of real views (:func:`~diffrend.io.load_views`),
of which every tenth is held out. Outputs (all written atomically):

- ``mesh.obj`` / ``mesh.ply``: the fitted mesh with per-vertex colours;
- ``progress.gif``: targets above, the fit below, over the steps;
- ``loss.png``: the loss terms per step (log scale, stage changes marked);
- ``final.png``: held-out targets above the fit's renders of the same views;
- ``metrics.json``: held-out silhouette IoU, chamfer distance (when the target is a mesh),
  time and steps;
- ``index.html``: all of the above on one page;
- ``checkpoint.pt``: the state for ``--resume``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..cameras import CamerasBase
from ..io import load_depth, load_views, save_obj, save_ply
from ..io.outputs import write_gif_frames, write_json, write_png
from ..io.views import MultiViewData
from ..jobs.fit_mesh import FitMeshResult, FitMeshSettings, fit_mesh
from ..jobs.framing import frame_depth, frame_views
from ..jobs.metrics import heldout_iou, normalized_chamfer, surface_chamfer
from ..jobs.pictures import image_grid, loss_curve, progress_frames, to_uint8
from ..jobs.preview import load_for_render
from ..jobs.views import (
    render_mesh_views,
    render_target_depth,
    render_target_views,
    resize_depth,
    sphere_cameras,
)
from ..shading import TexturesUV
from ..structures import Meshes
from .jobrun import JobRun, fit_and_write
from .report import write_index


@dataclass
class FitInputs:
    """What a fit runs on.

    Attributes:
        train: training views. heldout: views kept out of the fit for the metrics (may be
        None). target: the mesh the views were rendered from (None for real data).
        source: a short description (file name). lit: the views are lit by headlights
        (rendered) rather than unknown lights (photographs). train_depth: (N, S, S)
        depth maps of the training views (when asked for), -1 where there is none, else
        None.
    """

    train: MultiViewData
    heldout: MultiViewData | None
    target: Meshes | None
    source: str
    lit: bool
    train_depth: torch.Tensor | None = None


def prepare_inputs(
    mesh: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    views: int = 20,
    heldout: int = 10,
    image_size: int = 128,
    device: str | torch.device = "cpu",
    lit: bool = True,
    allow_outside: bool = False,
    frame: bool = False,
    max_side: int | None = None,
    depth: bool = False,
) -> FitInputs:
    """Training and held-out views from a target mesh or a folder of views.

    Views are square ``image_size x image_size``. A folder's views (any size and aspect
    ratio) are loaded at their own size (all of them at once, on the CPU) and framed
    (:func:`~diffrend.jobs.framing.frame_views`): each view is cut to a square around its
    silhouette plus a 10% margin, composited onto black outside the silhouette (the fit
    renders onto black, so a photograph's background stays out of the colour loss) and
    resampled, with cameras to match; an object far from the camera or off-centre thus
    still fills the fit's images.

    Args:
        mesh: target mesh file (rendered from ``views`` cameras spread over a sphere, and
            ``heldout`` other cameras); default: the bundled cow when ``data`` is None.
        data: a folder (or JSON file) readable by :func:`~diffrend.io.load_views`; every
            tenth view is held out (none when there are fewer than 5 views).
        views, heldout: numbers of rendered views (``mesh`` only).
        image_size: side of the square images (``data``'s views are framed to it).
        device: where the views live.
        lit: render ``mesh``'s views lit by headlights (True) or unlit, the albedo (for
            view-independent colours such as a point cloud's).
        allow_outside: let ``data`` name images and masks outside its folder (absolute or
            ``../`` paths); refused by default.
        frame: ``mesh`` only: render the views at twice ``image_size`` and frame them to
            ``image_size`` (the object fills each view), as a folder's views always are.
        max_side: ``data`` only: views whose longer side exceeds this are resampled to it
            as they are read (:func:`~diffrend.io.load_views`), before framing: bounds the
            memory large photographs take. None: native size.
        depth: also the training views' depth maps (``train_depth``), for
            ``FitMeshSettings.w_depth``: ``mesh``'s rendered, as an RGB-D capture would
            give them; ``data``'s read from its transforms.json
            (:func:`~diffrend.io.load_depth`) and framed with the views
            (:func:`~diffrend.jobs.framing.frame_depth`).

    Raises:
        ValueError: both ``mesh`` and ``data`` given, bad files, out-of-range counts.
    """
    from ..io import default_mesh_path

    if mesh is not None and data is not None:
        raise ValueError("give either a target mesh or --data, not both")
    if not isinstance(views, int) or views < 1:
        raise ValueError(f"views must be an int >= 1, got {views!r}")
    if not isinstance(heldout, int) or heldout < 0:
        raise ValueError(f"heldout must be an int >= 0, got {heldout!r}")
    if data is not None:
        # Native size: framing then gives the object all of image_size, however small it
        # is in the photograph (the views are freed once framed).
        loaded = load_views(data, allow_outside=allow_outside, max_side=max_side)
        all_views = frame_views(loaded, size=image_size).to(device)
        n = len(all_views)
        held = list(range(5, n, 10)) if n >= 5 else []
        train = [i for i in range(n) if i not in held]
        train_depth = None
        if depth:
            maps = _views_depth(data, loaded, allow_outside)
            train_depth = frame_depth(maps[train], loaded.masks[train], image_size).to(device)
        return FitInputs(all_views.subset(train), all_views.subset(held) if held else None,
                         None, Path(data).name, lit=False, train_depth=train_depth)
    path = Path(mesh) if mesh is not None else default_mesh_path()
    target = load_for_render(path, device=device)

    def render(cameras: CamerasBase) -> MultiViewData:
        if not frame:
            return render_target_views(target, cameras, image_size, lit=lit)
        return frame_views(render_target_views(target, cameras, 2 * image_size, lit=lit),
                           size=image_size)

    train = render(sphere_cameras(views, device=device))
    held = render(sphere_cameras(heldout, offset=0.25, device=device)) if heldout else None
    # (the framed views' cameras see the object as the framed images do)
    train_depth = render_target_depth(target, train.cameras, image_size) if depth else None
    return FitInputs(train, held, target, path.name, lit=lit, train_depth=train_depth)


def _views_depth(data: str | os.PathLike, views: MultiViewData,
                 allow_outside: bool) -> torch.Tensor:
    """``data``'s depth maps (:func:`~diffrend.io.load_depth`) at the size ``views`` were
    loaded at: shrunk with them when ``max_side`` shrank the views (same aspect ratio).

    Returns:
        (N, H, W) depth, <= 0 where there is none.
    """
    maps = load_depth(data, allow_outside=allow_outside)
    if maps.shape[0] != len(views):
        raise ValueError(f"{data}: {maps.shape[0]} depth maps for {len(views)} views")
    (h, w), (dh, dw) = views.masks.shape[1:], maps.shape[1:]
    # load_views keeps the aspect ratio when it shrinks (sides rounded to whole pixels)
    if (dh, dw) != (h, w) and (dh < h or dw < w or abs(round(dw * h / dh) - w) > 1):
        raise ValueError(f"{data}: the depth maps are {dw}x{dh} pixels, the images "
                         f"{views.masks.shape[2]}x{views.masks.shape[1]}: they must match")
    return resize_depth(maps, (h, w))


def evaluate(result: FitMeshResult, inputs: FitInputs) -> dict:
    """Metrics of a fit: held-out IoU (mean, min, per view), chamfer, steps, time."""
    metrics: dict = {"source": inputs.source, "steps": result.steps,
                     "stopped": result.stopped, "seconds": round(result.seconds, 2),
                     "verts": int(result.mesh.verts_packed().shape[0]),
                     "faces": int(result.mesh.faces_packed().shape[0]),
                     "remeshes": result.remeshes}
    if result.view_gains is not None:  # (N, 3) per training view, geometric mean 1
        metrics["view_gains"] = [[round(float(g), 4) for g in row] for row in result.view_gains]
    if inputs.heldout is not None:
        iou = heldout_iou(result.mesh, inputs.heldout.cameras, inputs.heldout.masks)
        metrics.update(heldout_views=len(iou), heldout_iou_mean=float(iou.mean()),
                       heldout_iou_min=float(iou.min()),
                       heldout_iou=[round(float(x), 4) for x in iou])
    if inputs.target is not None:
        metrics["chamfer_normalized"] = normalized_chamfer(result.mesh, inputs.target)
        metrics["chamfer_surface"] = surface_chamfer(result.mesh, inputs.target)
    return metrics


def write_outputs(out: Path, result: FitMeshResult, inputs: FitInputs, metrics: dict,
                  settings: FitMeshSettings, command: str) -> list[str]:
    """Write the fitted mesh, pictures, metrics and index.html into ``out``; returns the
    written file names."""
    verts, faces = result.mesh.verts_packed(), result.mesh.faces_packed()
    tex = result.mesh.textures
    if isinstance(tex, TexturesUV):  # OBJ + MTL + PNG; PLY has no standard texture
        save_obj(out / "mesh.obj", verts, faces, verts_uvs=tex.verts_uvs_list()[0],
                 faces_uvs=tex.faces_uvs_list()[0], texture_map=tex.maps_padded()[0])
        written = ["mesh.obj", "mesh.mtl", "mesh.png"]
    else:
        colors = tex.verts_features_packed()
        save_obj(out / "mesh.obj", verts, faces, verts_colors=colors)
        save_ply(out / "mesh.ply", verts, faces, verts_colors=colors)
        written = ["mesh.obj", "mesh.ply"]
    size = settings.stages[-1].image_size
    figures = []
    if result.frames:
        targets = to_uint8(torch.nn.functional.interpolate(
            inputs.train.images[result.snapshot_views].permute(0, 3, 1, 2), size=(size, size),
            mode="area").permute(0, 2, 3, 1))
        write_gif_frames(progress_frames(targets, result.frames, sum(
            s.iters for s in settings.stages)), out / "progress.gif")
        written.append("progress.gif")
        figures.append(("progress.gif", "training views: targets (top) and the fit (bottom) "
                        "over the steps"))
    if result.history:
        bounds, acc = [], 0
        for s in settings.stages[:-1]:
            acc += s.iters
            bounds.append(acc)
        write_png(loss_curve(result.history, boundaries=bounds,
                             title="loss per step (grey lines: stage changes)"), out / "loss.png")
        written.append("loss.png")
        figures.append(("loss.png", "loss terms per step"))
    if inputs.heldout is not None:
        shown = list(range(min(6, len(inputs.heldout))))
        cams = inputs.heldout.cameras[shown]
        fit = render_mesh_views(result.mesh, cams, inputs.heldout.images.shape[1], inputs.lit)
        grid = torch.cat([inputs.heldout.images[shown], fit])
        write_png(image_grid(grid, cols=len(shown)), out / "final.png")
        written.append("final.png")
        figures.append(("final.png", "held-out views: targets (top), the fit (bottom)"))
    write_json(metrics, out / "metrics.json")
    written.append("metrics.json")
    summary = (f"Fitted to {len(inputs.train)} views of {inputs.source} in {result.steps} "
               f"steps ({metrics['seconds']:.0f} s). Command: {command}")
    files = ([("mesh.obj", "fitted mesh with its texture (mesh.mtl, mesh.png)")]
             if "mesh.png" in written else
             [("mesh.obj", "fitted mesh, per-vertex colours"), ("mesh.ply", "the same, PLY")])
    files.append(("metrics.json", "metrics"))
    shown_metrics = {k: v for k, v in metrics.items() if k != "heldout_iou"}
    write_index(out, "diffrend fit", summary, shown_metrics, figures, files, asdict(settings))
    written.append("index.html")
    return written


def run_fit_job(out: str | os.PathLike, inputs: FitInputs, settings: FitMeshSettings,
                run: JobRun, init: Meshes | None = None) -> dict:
    """Fit, measure and write everything into ``out`` (see
    :func:`~diffrend.cli.jobrun.fit_and_write`); returns the metrics.

    ``init``: the starting mesh, in the views' frame (None: ``settings.init``'s hull or
    sphere)."""
    return fit_and_write(
        out, run,
        lambda ck: fit_mesh(inputs.train, init=init, settings=settings, seed=run.seed,
                            checkpoint=ck,
                            checkpoint_every=run.checkpoint_every, resume=run.resume,
                            progress=run.progress, dist=run.dist, depth=inputs.train_depth),
        lambda result: evaluate(result, inputs),
        lambda folder, result, metrics: write_outputs(folder, result, inputs, metrics,
                                                      settings, run.command))
