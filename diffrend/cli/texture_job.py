"""``diffrend texture`` end to end: views of a textured mesh (or real views and the mesh),
the texture fit, metrics and the output folder.

Outputs (written atomically): ``mesh.obj`` + ``mesh.mtl`` + ``mesh.png`` (the recovered
texture), ``progress.gif``, ``loss.png``, ``final.png`` (held-out views: targets over
renders), ``texture.png`` (recovered beside the true texture, when known), ``metrics.json``,
``index.html`` and ``checkpoint.pt``.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from ..io import load_objs_as_meshes, load_views, save_obj
from ..io.outputs import write_gif_frames, write_json, write_png
from ..jobs.fit_texture import FitTextureResult, FitTextureSettings, fit_texture
from ..jobs.metrics import psnr
from ..jobs.pictures import image_grid, loss_curve, progress_frames, to_uint8
from ..jobs.preview import load_for_render
from ..jobs.views import render_mesh_views, render_target_views, sphere_cameras
from ..shading import TexturesUV
from .jobrun import JobRun, fit_and_write
from .mesh_job import FitInputs
from .report import write_index


def prepare_texture_inputs(
    mesh: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    views: int = 20,
    heldout: int = 10,
    image_size: int = 256,
    device: str | torch.device = "cpu",
    allow_outside: bool = False,
) -> FitInputs:
    """Views to fit a texture to, and the mesh (with UVs) in ``FitInputs.target``.

    Without ``data``, views are rendered from ``mesh`` (default: the bundled cow) with its
    own texture, after normalising it; the fit then starts from grey. With ``data``, ``mesh``
    (an OBJ with UVs, in the cameras' frame: not normalised) is required. ``allow_outside``
    lets ``data`` name images outside its folder (see :func:`~diffrend.io.load_views`).

    Raises:
        ValueError: no UVs in the mesh, ``data`` without a mesh, bad files.
    """
    from ..io import default_mesh_path

    if data is not None:
        if mesh is None:
            raise ValueError("--data needs the MESH (an OBJ with UVs in the cameras' frame)")
        target = load_objs_as_meshes([mesh], device=device)
        if not isinstance(target.textures, TexturesUV):
            raise ValueError(missing_texture_message(mesh))
        all_views = load_views(data, image_size=image_size,
                               allow_outside=allow_outside).to(device)
        n = len(all_views)
        held = list(range(5, n, 10)) if n >= 5 else []
        train = [i for i in range(n) if i not in held]
        return FitInputs(all_views.subset(train), all_views.subset(held) if held else None,
                         target, Path(data).name, lit=False)
    path = Path(mesh) if mesh is not None else default_mesh_path()
    target = load_for_render(path, device=device)
    if not isinstance(target.textures, TexturesUV):
        raise ValueError(missing_texture_message(path))
    train = render_target_views(target, sphere_cameras(views, device=device), image_size)
    held = (render_target_views(target, sphere_cameras(heldout, offset=0.25, device=device),
                                image_size) if heldout else None)
    return FitInputs(train, held, target, path.name, lit=True)


def missing_texture_message(path: str | os.PathLike) -> str:
    """Why ``path`` gives no UV texture, naming what is missing: the UVs (``vt``), the
    material (``mtllib`` / ``usemtl``, or the MTL file), or the texture image (``map_Kd``, or
    its file)."""
    import warnings

    from ..io import load_obj

    path = Path(path)
    need = "a texture fit needs an OBJ with UVs, a material and its texture image"
    if path.suffix.lower() != ".obj":
        return f"{path}: {path.suffix or 'this'} files carry no UV texture here; {need}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, _, aux = load_obj(path, load_textures=True)
    said = [str(w.message).replace("; loading without it", "") for w in caught]
    if aux.verts_uvs is None:
        return f"{path}: no UVs (no 'vt' lines); {need}"
    if aux.material_colors is None:
        mtl = [m for m in said if "material file" in m]
        what = mtl[0] if mtl else f"{path}: no material (no 'mtllib' line)"
        return f"{what}; {need}"
    image = [m for m in said if "texture image" in m]
    if image:
        return f"{image[0]}; {need}"
    return (f"{path}: its material has no texture image (no 'map_Kd' in the MTL file); "
            f"{need}")


def evaluate_texture(result: FitTextureResult, inputs: FitInputs, known_texture: bool) -> dict:
    """Held-out PSNR (inside the masks) and, with a known texture, texture PSNR on the
    texels the views observed."""
    metrics: dict = {"source": inputs.source, "steps": result.steps, "stopped": result.stopped,
                     "seconds": round(result.seconds, 2),
                     "texture_size": int(result.texture.shape[0]),
                     "observed_texels": round(float(result.observed.float().mean()), 4)}
    if inputs.heldout is not None:
        h = inputs.heldout
        img = render_mesh_views(result.mesh, h.cameras, h.images.shape[1], inputs.lit)
        m = h.masks[..., None]
        mse = float(((img - h.images) ** 2 * m).sum() / (m.sum() * 3).clamp(min=1))
        metrics.update(heldout_views=len(h), heldout_psnr=round(psnr(mse), 3))
    if known_texture:
        truth = _true_texture(inputs, result.texture.shape[0])
        obs = result.observed
        if bool(obs.any()):
            mse = float(((result.texture - truth) ** 2)[obs].mean())
            metrics["texture_psnr_observed"] = round(psnr(mse), 3)
    return metrics


def _true_texture(inputs: FitInputs, size: int) -> torch.Tensor:
    """The target's texture map resampled to (size, size, 3) (area average)."""
    truth = inputs.target.textures.maps_padded()[0]
    return F.interpolate(truth.permute(2, 0, 1)[None], size=(size, size),
                         mode="area")[0].permute(1, 2, 0)



def write_texture_outputs(out: Path, result: FitTextureResult, inputs: FitInputs,
                          metrics: dict, settings: FitTextureSettings, known_texture: bool,
                          command: str) -> list[str]:
    """Write the textured mesh, pictures, metrics and index.html; returns the file names."""
    tex = result.mesh.textures
    save_obj(out / "mesh.obj", result.mesh.verts_packed(), result.mesh.faces_packed(),
             verts_uvs=tex.verts_uvs_list()[0], faces_uvs=tex.faces_uvs_list()[0],
             texture_map=result.texture)
    written = ["mesh.obj", "mesh.mtl", "mesh.png"]
    figures = []
    if result.frames:
        targets = to_uint8(inputs.train.images[result.snapshot_views])
        write_gif_frames(progress_frames(targets, result.frames, settings.iters),
                         out / "progress.gif")
        written.append("progress.gif")
        figures.append(("progress.gif", "training views: targets (top), renders with the "
                        "texture so far (bottom)"))
    if result.history:
        write_png(loss_curve(result.history, title="colour error per step"), out / "loss.png")
        written.append("loss.png")
        figures.append(("loss.png", "mean squared colour error inside the masks"))
    if inputs.heldout is not None:
        shown = list(range(min(6, len(inputs.heldout))))
        h = inputs.heldout
        fit = render_mesh_views(result.mesh, h.cameras[shown], h.images.shape[1], inputs.lit)
        write_png(image_grid(torch.cat([h.images[shown], fit]), cols=len(shown)),
                  out / "final.png")
        written.append("final.png")
        figures.append(("final.png", "held-out views: targets (top), the fit (bottom)"))
    if known_texture:
        size = result.texture.shape[0]
        truth = _true_texture(inputs, size)
        write_png(image_grid(torch.stack([result.texture, truth]), cols=2), out / "texture.png")
        written.append("texture.png")
        figures.append(("texture.png", "recovered texture (left), true texture (right)"))
    write_json(metrics, out / "metrics.json")
    written.append("metrics.json")
    summary = (f"Recovered a {result.texture.shape[0]}^2 texture from {len(inputs.train)} "
               f"views of {inputs.source} in {result.steps} steps ({metrics['seconds']:.0f} s)."
               f" Command: {command}")
    files = [("mesh.obj", "the mesh with the recovered texture (mesh.mtl, mesh.png)"),
             ("metrics.json", "metrics")]
    write_index(out, "diffrend texture", summary, metrics, figures, files, asdict(settings))
    written.append("index.html")
    return written


def run_texture_job(out: str | os.PathLike, inputs: FitInputs, settings: FitTextureSettings,
                    known_texture: bool, run: JobRun) -> dict:
    """Fit the texture, measure and write everything into ``out``; returns the metrics
    (``{}`` on the ranks other than 0 of a distributed run: rank 0 alone writes)."""
    return fit_and_write(
        out, run,
        lambda ck: fit_texture(inputs.train, inputs.target, settings=settings, seed=run.seed,
                               checkpoint=ck, checkpoint_every=run.checkpoint_every,
                               resume=run.resume, progress=run.progress, dist=run.dist),
        lambda result: evaluate_texture(result, inputs, known_texture),
        lambda folder, result, metrics: write_texture_outputs(
            folder, result, inputs, metrics, settings, known_texture, run.command))
