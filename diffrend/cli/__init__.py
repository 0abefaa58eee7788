"""The ``diffrend`` command: argument parsing, output folders (:mod:`.folder`), reports
(:mod:`.report`), how a fitting job runs and writes its outputs (:mod:`.jobrun`) and the
glue that runs each job and writes its files (``*_job.py``).

The library side (the jobs themselves) is :mod:`diffrend.jobs`; the CLI is the top layer:
nothing in the library imports it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

# Only light modules at import time: `diffrend --help` must not wait for torch, trimesh or
# the kernels (each command imports what it needs when it runs).
from ..shader_names import SHADERS as SHADER_NAMES
from .params import SEED, FiniteFloat

if TYPE_CHECKING:
    import torch

    from ..jobs.distributed import DistContext
    from ..structures import Meshes
    from .jobrun import JobRun


class _Main(click.Group):
    """The ``diffrend`` group: under torchrun, a command's error message, once on the
    console, is also written to the process's error file (``TORCHELASTIC_ERROR_FILE``), so
    that ``--nproc``'s report (:func:`.launch.relaunch`) knows what rank 0 has already said
    even when torchrun stops rank 0 before it exits."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.ClickException as e:
            error_file = os.environ.get("TORCHELASTIC_ERROR_FILE")
            if not error_file:
                raise
            shown = io.StringIO()
            e.show(file=shown)
            sys.stderr.write(shown.getvalue())
            sys.stderr.flush()
            # torchelastic's own format (a plain-string message); written after the
            # message is on the console, so its presence means the message was shown
            with contextlib.suppress(OSError):  # (a report's detail, not worth a crash)
                with open(error_file, "w") as f:
                    json.dump({"message": shown.getvalue(), "timestamp": int(time.time())}, f)
            raise click.exceptions.Exit(e.exit_code) from None


@click.group(cls=_Main)
@click.version_option(package_name="diffrend")
def main() -> None:
    """diffrend: a differentiable renderer for PyTorch."""


@main.command()
@click.argument("mesh", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--output", default="out", show_default=True,
              type=click.Path(file_okay=False), help="Folder for render.png, turntable.gif, "
              "shaders.png.")
@click.option("--shader", default="hard-phong", show_default=True,
              type=click.Choice(sorted(SHADER_NAMES)), help="Shader of the grid and GIF.")
@click.option("--views", default=8, show_default=True, type=click.IntRange(1, 1024),
              help="Views in the image grid.")
@click.option("--gif-frames", default=36, show_default=True, type=click.IntRange(0, 1024),
              help="Turntable frames (0: no GIF).")
@click.option("--image-size", default=256, show_default=True, type=click.IntRange(8, 4096))
@click.option("--elev", default=15.0, show_default=True, type=FiniteFloat(),
              help="Camera elevation, degrees.")
@click.option("--dist", default=2.7, show_default=True,
              type=FiniteFloat(min=0.0, min_open=True),
              help="Camera distance to the mesh (normalised to max |coordinate| 1).")
@click.option("--background", nargs=3, type=FiniteFloat(0.0, 1.0),
              default=(1.0, 1.0, 1.0), show_default=True, help="Background RGB in [0, 1].")
@click.option("--light", nargs=3, type=FiniteFloat(), default=(2.0, 2.0, -2.0), show_default=True,
              help="Point light position (world).")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1, 1024),
              help="Views rendered per call.")
@click.option("--force", is_flag=True,
              help="Run even when another diffrend run holds OUTPUT's lock.")
def render(mesh: str | None, output: str, shader: str, views: int, gif_frames: int,
           image_size: int, elev: float, dist: float, background: tuple[float, ...],
           light: tuple[float, ...], batch_size: int, force: bool) -> None:
    """Render MESH (default: the bundled textured cow) around it: an image grid
    (render.png), a turntable (turntable.gif) and five shaders side by side (shaders.png)."""
    from ..io import default_mesh_path
    from ..io.outputs import write_gif, write_png
    from ..jobs.pictures import image_grid
    from ..jobs.preview import COMPARE, load_for_render, orbit_cameras, render_views

    path = mesh or default_mesh_path()
    try:
        meshes = load_for_render(path)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    out = Path(output)
    import torch

    with _job(output, force):
        common = dict(image_size=image_size, background=background, light_location=light,
                      batch_size=batch_size)
        grid = render_views(meshes, orbit_cameras(views, dist=dist, elev=elev), shader, **common)
        write_png(image_grid(grid), out / "render.png")
        written = ["render.png"]
        if gif_frames:
            frames = render_views(meshes, orbit_cameras(gif_frames, dist=dist, elev=elev), shader,
                                  **common)
            write_gif(frames, out / "turntable.gif")
            written.append("turntable.gif")
        one_view = orbit_cameras(8, dist=dist, elev=elev)[[1]]
        side = torch.cat([render_views(meshes, one_view, s, progress=False, **common)
                          for s in COMPARE])
        write_png(image_grid(side, cols=len(COMPARE)), out / "shaders.png")
        written.append("shaders.png (" + ", ".join(COMPARE) + ")")
    click.echo(f"wrote {out}/: " + ", ".join(written) + f" of {Path(path).name}, "
               f"{image_size}x{image_size}")


def _finish(metrics: dict, parts: list[str], what: str, stop: object = None) -> None:
    """Print a job's one-line summary; exit 130 after Ctrl-C (the outputs are written).

    ``stop``: the job's :class:`~diffrend.jobs.checkpoint.StopRequest` (set by a Ctrl-C at
    any moment of the job, also after the last step).
    """
    import sys

    click.echo("; ".join([f"{metrics['steps']} steps in {metrics['seconds']:.1f} s", *parts]))
    if metrics["stopped"] == "interrupted":
        click.echo(f"interrupted: the {what} so far is written; continue with --resume",
                   err=True)
        sys.exit(130)
    if stop:
        click.echo(f"interrupted after the last step: the {what} is complete and written",
                   err=True)
        sys.exit(130)


@contextlib.contextmanager
def _job(output: str, force: bool, resume: bool = False) -> Iterator[Path]:
    """A job's output folder, locked for the block (see :func:`.folder.job_folder`).

    Errors (ValueError, FileNotFoundError) become one-line messages; Ctrl-C that reaches
    here (before a fit's first step, a second Ctrl-C, a job without steps) exits 130:
    every file written is complete (atomic writes), and a checkpoint allows --resume.
    """
    import sys

    from .folder import CHECKPOINT_NAME, job_folder

    try:
        with _one_line_errors(), job_folder(output, force=force, resume=resume,
                                            notice=lambda m: click.echo(m, err=True)) as folder:
            yield folder
    except KeyboardInterrupt:
        hint = ("; continue with --resume" if (Path(output) / CHECKPOINT_NAME).exists()
                else "")
        click.echo(f"interrupted: stopped at once; the files in {output} are complete{hint}",
                   err=True)
        sys.exit(130)


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """ValueError and FileNotFoundError in the block become one-line messages (click's
    ``Error: ...``), not tracebacks."""
    try:
        yield
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e


def _device(name: str) -> torch.device:
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise click.BadParameter(str(e), param_hint="--device") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine", param_hint="--device")
    return device


def _warm_kernels(device: torch.device, points: bool = False, quiet: bool = False) -> None:
    """(see :func:`diffrend.jobs.warmup.warm_kernels`; notices go to stderr, none when
    ``quiet``: the ranks other than 0 of a job under torchrun)"""
    from ..jobs.warmup import warm_kernels

    warm_kernels(device, points=points,
                 echo=(lambda m: None) if quiet else (lambda m: click.echo(m, err=True)))


def _run(seed: int, resume: bool, checkpoint_every: int) -> JobRun:
    """How a fitting command runs its job (this command line, messages to stdout)."""
    import sys

    from .jobrun import JobRun

    return JobRun(seed=seed, resume=resume, checkpoint_every=checkpoint_every,
                  command="diffrend " + " ".join(sys.argv[1:]), echo=click.echo)


def _fit_job_options(command: Callable) -> Callable:
    """The options the fitting jobs (fit, texture, fit-points) share: checkpoints, --resume,
    --allow-outside-paths for --data, and --force for the output folder's lock."""
    options = (
        click.option("--checkpoint-every", default=50, show_default=True,
                     type=click.IntRange(1, 100000), help="Steps between checkpoints."),
        click.option("--resume", is_flag=True,
                     help="Continue from OUTPUT/checkpoint.pt (same arguments: same result); "
                     "without one, say so and start from scratch."),
        click.option("--allow-outside-paths", is_flag=True,
                     help="Let --data's JSON name images and masks outside its folder "
                     "(absolute or ../ paths); refused by default."),
        click.option("--force", is_flag=True,
                     help="Run even when another diffrend run holds OUTPUT's lock."),
    )
    for option in reversed(options):  # (click lists them in the order given here)
        command = option(command)
    return command


MAX_SIDE = 2048  # default --max-side: 24 MP photographs load at 2048 x 1365 (1/9 the memory)


def _max_side_option(command: Callable) -> Callable:
    """``--max-side`` of the jobs that frame ``--data`` views (fit, fit-points)."""
    return click.option(
        "--max-side", default=MAX_SIDE, show_default=True, type=click.IntRange(min=0),
        callback=_check_max_side,
        help="Resample --data views whose longer side exceeds this many pixels to it as "
        "they are read (aspect ratio and cameras kept consistent), before framing: bounds "
        "the memory of large photographs. 0: no cap (raise it for an object that covers "
        "only a small part of big photographs).")(command)


def _check_max_side(ctx: click.Context, param: click.Parameter, value: int) -> int | None:
    """--max-side: 0 -> None (no cap); 1..7 refused (load_views needs >= 8)."""
    if value == 0:
        return None
    if value < 8:
        raise click.BadParameter(f"must be 0 (no cap) or >= 8, got {value}")
    return value


def _rank_device(device: torch.device, ctx: DistContext) -> torch.device:
    """This process's device in a job under torchrun, its thread pools sized to its share
    of the cores (:func:`~diffrend.jobs.distributed.set_rank_threads`): ``cuda`` without an
    index becomes GPU ``LOCAL_RANK`` (one GPU per process); anything else is kept."""
    import torch

    from ..jobs.distributed import set_rank_threads

    set_rank_threads(ctx)
    if device.type == "cuda" and device.index is None and ctx.active:
        return torch.device("cuda", ctx.local_rank)
    return device


def _nproc_options(resumes: bool = True) -> Callable[[Callable], Callable]:
    """``--nproc`` and ``--max-restarts`` of the jobs that run on several processes.

    ``resumes``: the job keeps a checkpoint that restarted processes continue from (False:
    a restart runs the job again from the start; the help says which).
    """
    after = ("they continue from OUTPUT/checkpoint.pt (see --checkpoint-every)." if resumes
             else "the job (no checkpoint) then runs again from the start.")
    options = (
        click.option("--nproc", default=1, show_default=True, type=click.IntRange(1, 1024),
                     help="Processes that share the work (torch.distributed: gloo on the CPU, "
                     "NCCL on CUDA): reruns this command under `python -m "
                     "torch.distributed.run --standalone --nproc-per-node N`."),
        click.option("--max-restarts", default=0, show_default=True,
                     type=click.IntRange(0, 1000),
                     help="With --nproc: restart the processes this many times when one "
                     "fails; " + after),
    )

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _launch(nproc: int, max_restarts: int, max_ranks: int, why: str, resume: bool) -> bool:
    """``--nproc N`` (N > 1): rerun this command under torchrun and exit with its code;
    otherwise check ``--max-restarts`` and return ``resume``, True as well after torchrun
    restarted the processes (they continue from the run's checkpoint).

    Args:
        nproc, max_restarts: the options.
        max_ranks: the most processes the job can use (``why`` says why, in the message).
        why: e.g. "the views rendered per step".
        resume: the ``--resume`` flag.
    """
    from ..jobs.distributed import launched_by_torchrun

    if nproc > 1:
        if launched_by_torchrun():
            raise click.UsageError("--nproc: already running under torchrun (drop --nproc)")
        if nproc > max_ranks:
            raise click.BadParameter(f"at most {max_ranks} ({why})", param_hint="--nproc")
        _relaunch(nproc, max_restarts)
    elif max_restarts:
        raise click.UsageError("--max-restarts needs --nproc N (N > 1), or torchrun's own "
                               "--max-restarts")
    return resume or _env_restarts() > 0


def _env_restarts() -> int:
    """How many times torchrun has restarted this job's processes (0 outside torchrun)."""
    import os

    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    except ValueError:
        return 0


def _relaunch(nproc: int, max_restarts: int) -> None:
    """``--nproc N [--max-restarts K]``: run this command line (less those options) on N
    local processes (:func:`.launch.relaunch`) and exit with its exit code."""
    import sys

    from .launch import relaunch, strip_launch_options

    sys.exit(relaunch(nproc, max_restarts, strip_launch_options(sys.argv[1:]),
                      echo=lambda m: click.echo(m, err=True)))


@main.command()
@click.argument("mesh", required=False, type=click.Path(dir_okay=False))
@click.option("--data", type=click.Path(exists=True),
              help="Fit to real views instead: a folder with transforms.json (NeRF/Blender) "
              "or cameras.json, images and masks.")
@click.option("-o", "--output", default="out/fit", show_default=True,
              type=click.Path(file_okay=False), help="Output folder.")
@click.option("--iters", default=1100, show_default=True, type=click.IntRange(3, 100000),
              help="Optimisation steps in all (split over the coarse-to-fine stages).")
@click.option("--image-size", default=128, show_default=True, type=click.IntRange(16, 1024),
              help="Image size of the last stage (earlier stages are smaller).")
@click.option("--views", default=20, show_default=True, type=click.IntRange(1, 1000),
              help="Training views rendered from the target mesh.")
@click.option("--heldout", default=10, show_default=True, type=click.IntRange(0, 1000),
              help="Held-out views rendered from the target mesh (for the IoU).")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--colors", default="vertex", show_default=True,
              type=click.Choice(["vertex", "texture", "none"]),
              help="Fit per-vertex colours, a UV texture map, or silhouettes only.")
@click.option("--texture-size", default=256, show_default=True, type=click.IntRange(4, 8192),
              help="Side of the texture map (--colors texture).")
@click.option("--init", "init", default="hull", show_default=True, metavar="hull|sphere|MESH",
              help="Starting shape: the visual hull of the training masks (the object's "
              "holes included), an ico-sphere (genus 0) placed on the object from the "
              "silhouettes, or a mesh file in the views' frame (e.g. an earlier fit's "
              "mesh.obj).")
@click.option("--edge-px", default=2.0, show_default=True, type=FiniteFloat(0.25, 64.0),
              help="Target edge length of the remeshed surface, in pixels of each stage's "
              "images (shorter where the error stays high); smaller: more detail, slower.")
@click.option("--remesh-every", default=25, show_default=True, type=click.IntRange(0, 100000),
              help="Steps between remeshes (0: no remeshing; the mesh is subdivided between "
              "stages instead).")
@click.option("--frame", is_flag=True,
              help="Render MESH's views at twice the size and crop each to the object (for "
              "objects that do not fill the view; --data views are always framed).")
@click.option("--views-per-step", default=5, show_default=True, type=click.IntRange(1, 10000),
              help="Training views rendered per step (a random subset); with --nproc N (or "
              "torchrun) at least N: each process renders its share.")
@click.option("--exposure", is_flag=True,
              help="Learn a colour gain per training view (photographs whose exposure or "
              "white balance differ between views); the gains go to metrics.json.")
@click.option("--w-rgb", default=8.0, show_default=True,
              type=FiniteFloat(0.0, 1000.0, min_open=True),
              help="Weight of the colour error against the silhouette error's. The colours' "
              "shading is what digs a cavity that no silhouette shows (a bowl's inside); "
              "lower it for photographs whose colours vary between views more than the "
              "shading explains.")
@click.option("--w-depth", default=0.0, show_default=True, type=FiniteFloat(0.0, 1000.0),
              help="Weight of a depth error (0: off): MESH's training views then come with "
              "depth maps, as from an RGB-D camera; --data's are read from its "
              "transforms.json (depth_file_path, as render-dataset writes them). Digs what "
              "neither silhouettes nor shading show, such as a mug's deep cup.")
@_max_side_option
@_fit_job_options
@_nproc_options()
def fit(mesh: str | None, data: str | None, output: str, iters: int, image_size: int,
        views: int, heldout: int, seed: int, device: str, colors: str, texture_size: int,
        init: str, edge_px: float, remesh_every: int, frame: bool, views_per_step: int,
        exposure: bool, w_rgb: float, w_depth: float, max_side: int | None,
        checkpoint_every: int,
        resume: bool, allow_outside_paths: bool, force: bool, nproc: int,
        max_restarts: int) -> None:
    """Fit a mesh to views of MESH (default: the bundled cow) or of --data, starting from
    their visual hull (see --init): writes mesh.obj/.ply, progress.gif, loss.png,
    final.png, metrics.json and index.html.

    Under `torchrun --nproc-per-node N -m diffrend fit ...` (or with --nproc N) the N
    processes share each step's views; rank 0 writes the files."""
    from dataclasses import replace

    from ..jobs import FitMeshSettings
    from ..jobs.checkpoint import deferred_interrupt
    from ..jobs.distributed import distributed
    from .mesh_job import prepare_inputs, run_fit_job

    dev = _device(device)
    # A bad --init file is a usage error before the output folder is made (and before
    # --nproc starts the processes, so that it is said once; fit_mesh moves the mesh to
    # the views' device).
    init_mesh = None if init in ("hull", "sphere") else _load_init(init, dev)
    # each process renders at least one view a step
    resume = _launch(nproc, max_restarts, views_per_step, "--views-per-step", resume)
    with distributed(dev) as ctx, _ranks_job(ctx, output, force, resume):
        dev = _rank_device(dev, ctx)
        inputs = prepare_inputs(mesh, data, views=views, heldout=heldout,
                                image_size=image_size, device=dev,
                                allow_outside=allow_outside_paths, frame=frame,
                                max_side=max_side, depth=w_depth > 0)
        _warm_kernels(dev, quiet=not ctx.is_main)
        settings = replace(FitMeshSettings().scaled(iters=iters, image_size=image_size),
                           lit=inputs.lit, colors=colors, texture_size=texture_size,
                           texture_levels=min(5, texture_size.bit_length()),
                           init="sphere" if init == "sphere" else "hull", edge_px=edge_px,
                           remesh_every=remesh_every, exposure=exposure,
                           views_per_step=views_per_step, w_rgb=w_rgb, w_depth=w_depth)
        if settings.views_per_step < ctx.world_size:  # every rank says so, none waits
            raise click.UsageError(f"at most {settings.views_per_step} processes (the views "
                                   f"rendered per step, --views-per-step), got "
                                   f"{ctx.world_size}")
        with deferred_interrupt() as stop:  # from the first step to the last file
            metrics = run_fit_job(output, inputs, settings,
                                  replace(_run(seed, resume, checkpoint_every), dist=ctx),
                                  init=init_mesh)
    if not ctx.is_main:
        return
    parts = []
    if "heldout_iou_mean" in metrics:
        parts.append(f"held-out IoU mean {metrics['heldout_iou_mean']:.4f} "
                     f"(min {metrics['heldout_iou_min']:.4f})")
    if "chamfer_normalized" in metrics:
        parts.append(f"chamfer {metrics['chamfer_normalized']:.2e} (surface "
                     f"{metrics['chamfer_surface']:.2e})")
    _finish(metrics, parts, "mesh", stop)


@contextlib.contextmanager
def _ranks_job(ctx: DistContext, output: str, force: bool, resume: bool) -> Iterator[None]:
    """:func:`_job` on rank 0 (it holds the folder's lock); the other ranks learn whether
    rank 0 got it, so that every rank fails with the same message and none waits."""
    if not ctx.active:
        with _job(output, force, resume):
            yield
        return
    with contextlib.ExitStack() as stack:
        error = None
        if ctx.is_main:
            try:
                stack.enter_context(_job(output, force, resume))
            except click.ClickException as e:
                error = e.message
        error = ctx.broadcast(error)
        if error is not None:
            raise click.ClickException(error)
        if not ctx.is_main:  # as rank 0's, in _job: its log ends with the message too
            stack.enter_context(_one_line_errors())
        yield


def _load_init(path: str, device: torch.device) -> Meshes:
    """``fit --init MESH``: the mesh file as it is (in the views' frame); a bad file is a
    usage error."""
    from ..io import load_mesh

    try:
        return load_mesh(path, device=device)
    except (ValueError, FileNotFoundError, OSError) as e:
        raise click.BadParameter(f"expected 'hull', 'sphere' or a mesh file: {e}",
                                 param_hint="--init") from e


@main.command()
@click.argument("mesh", required=False, type=click.Path(dir_okay=False))
@click.option("--data", type=click.Path(exists=True),
              help="Real views (transforms.json / cameras.json folder); MESH is then required "
              "and must be in the cameras' frame.")
@click.option("-o", "--output", default="out/texture", show_default=True,
              type=click.Path(file_okay=False), help="Output folder.")
@click.option("--iters", default=300, show_default=True, type=click.IntRange(1, 100000))
@click.option("--image-size", default=256, show_default=True, type=click.IntRange(16, 2048))
@click.option("--texture-size", default=512, show_default=True,
              type=click.IntRange(4, 8192), help="Side of the recovered texture map.")
@click.option("--views", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--heldout", default=10, show_default=True, type=click.IntRange(0, 1000))
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@_fit_job_options
@_nproc_options()
def texture(mesh: str | None, data: str | None, output: str, iters: int, image_size: int,
            texture_size: int, views: int, heldout: int, seed: int, device: str,
            checkpoint_every: int, resume: bool, allow_outside_paths: bool,
            force: bool, nproc: int, max_restarts: int) -> None:
    """Recover the texture map of MESH (default: the bundled cow, from its own renders)
    from views: writes mesh.obj/.mtl/.png, progress.gif, loss.png, final.png, texture.png,
    metrics.json and index.html.

    Under `torchrun --nproc-per-node N -m diffrend texture ...` (or with --nproc N) the N
    processes share each step's views; rank 0 writes the files."""
    from dataclasses import replace

    from ..jobs.checkpoint import deferred_interrupt
    from ..jobs.distributed import distributed
    from ..jobs.fit_texture import FitTextureSettings
    from .texture_job import prepare_texture_inputs, run_texture_job

    dev = _device(device)
    # each process renders at least one view a step
    resume = _launch(nproc, max_restarts, FitTextureSettings().views_per_step,
                     "the views rendered per step", resume)
    with distributed(dev) as ctx, _ranks_job(ctx, output, force, resume):
        dev = _rank_device(dev, ctx)
        inputs = prepare_texture_inputs(mesh, data, views=views, heldout=heldout,
                                        image_size=image_size, device=dev,
                                        allow_outside=allow_outside_paths)
        _warm_kernels(dev, quiet=not ctx.is_main)
        settings = FitTextureSettings(texture_size=texture_size, iters=iters,
                                      lit=inputs.lit, levels=min(5, texture_size.bit_length()))
        if settings.views_per_step < ctx.world_size:  # every rank says so, none waits
            raise click.UsageError(f"at most {settings.views_per_step} processes (the views "
                                   f"rendered per step), got {ctx.world_size}")
        with deferred_interrupt() as stop:  # from the first step to the last file
            metrics = run_texture_job(output, inputs, settings, data is None,
                                      replace(_run(seed, resume, checkpoint_every), dist=ctx))
    if not ctx.is_main:
        return
    parts = []
    if "heldout_psnr" in metrics:
        parts.append(f"held-out PSNR {metrics['heldout_psnr']:.2f} dB")
    if "texture_psnr_observed" in metrics:
        parts.append(f"texture PSNR {metrics['texture_psnr_observed']:.2f} dB on the "
                     f"{100 * metrics['observed_texels']:.0f}% of texels seen")
    _finish(metrics, parts, "texture", stop)


@main.command()
@click.argument("mesh", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--output", default="out/pose", show_default=True,
              type=click.Path(file_okay=False), help="Output folder.")
@click.option("--seed", default=0, show_default=True, type=SEED,
              help="Picks the true camera and the start.")
@click.option("--image-size", default=128, show_default=True, type=click.IntRange(16, 1024))
@click.option("--min-deg", default=60.0, show_default=True, type=FiniteFloat(0, 180),
              help="Smallest rotation between the start and the true camera.")
@click.option("--max-deg", default=120.0, show_default=True, type=FiniteFloat(0, 180))
@click.option("--restarts", default=16, show_default=True, type=click.IntRange(1, 256))
@click.option("--evaluate", default=0, show_default=True, type=click.IntRange(0, 1000),
              help="Also run this many random trials and report the success rate.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--force", is_flag=True,
              help="Run even when another diffrend run holds OUTPUT's lock.")
@_nproc_options(resumes=False)
def pose(mesh: str | None, output: str, seed: int, image_size: int, min_deg: float,
         max_deg: float, restarts: int, evaluate: int, device: str, force: bool, nproc: int,
         max_restarts: int) -> None:
    """Recover a random camera of MESH (default: the bundled cow) from its silhouette,
    starting MIN-DEG..MAX-DEG away: writes pose.png, progress.gif, restarts.png, loss.png,
    metrics.json and index.html.

    Under `torchrun --nproc-per-node N -m diffrend pose ...` (or with --nproc N, at most
    --restarts) the N processes share the restarts and the --evaluate trials; rank 0
    writes the files. The job keeps no checkpoint (seconds of work): --max-restarts runs
    it again from the start."""
    import sys

    from ..jobs.distributed import distributed
    from .pose_job import run_pose_job

    if min_deg > max_deg:
        raise click.BadParameter("must be <= --max-deg", param_hint="--min-deg")
    dev = _device(device)
    _launch(nproc, max_restarts, restarts, "the restarts optimised together", False)
    with distributed(dev) as ctx, _ranks_job(ctx, output, force, False):
        dev = _rank_device(dev, ctx)
        if restarts < ctx.world_size:  # (plain torchrun) every rank says so, none waits
            raise click.UsageError(f"at most {restarts} processes (the restarts optimised "
                                   f"together), got {ctx.world_size}")
        metrics = run_pose_job(output, mesh, seed=seed, image_size=image_size,
                               min_deg=min_deg, max_deg=max_deg, restarts=restarts,
                               evaluate=evaluate, device=dev,
                               command="diffrend " + " ".join(sys.argv[1:]), echo=click.echo,
                               group=ctx)
    if not ctx.is_main:
        return
    from .pose_job import pose_summary

    line = pose_summary(metrics, image_size, metrics["seconds"]).rstrip(".")
    if evaluate:
        line += (f"; {evaluate} trials: success {100 * metrics['evaluation_success_rate']:.0f}%"
                 f", median error {metrics['evaluation_median_error_deg']:.2f} deg")
    click.echo(line)


@main.command("fit-points")
@click.argument("mesh", required=False, type=click.Path(dir_okay=False))
@click.option("--data", type=click.Path(exists=True),
              help="Folder (or JSON file) of views: transforms.json or cameras.json.")
@click.option("-o", "--output", default="out/fit-points", show_default=True,
              type=click.Path(file_okay=False), help="Output folder.")
@click.option("--points", "n_points", default=20000, show_default=True,
              type=click.IntRange(1, 10_000_000),
              help="At most this many points: the cloud starts as the points of the views' "
              "visual hull that some view sees in front, so fewer may be found (about 19k of "
              "20k with the defaults).")
@click.option("--iters", default=400, show_default=True, type=click.IntRange(1, 100000))
@click.option("--image-size", default=128, show_default=True, type=click.IntRange(16, 2048))
@click.option("--views", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--heldout", default=10, show_default=True, type=click.IntRange(0, 1000))
@click.option("--radius-px", default=1.5, show_default=True, type=FiniteFloat(0.05, 50),
              help="Point radius in pixels.")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--frame", is_flag=True,
              help="Render MESH's views at twice the size and crop each to the object (for "
              "objects that do not fill the view; --data views are always framed).")
@_max_side_option
@_fit_job_options
@_nproc_options()
def fit_points_cmd(mesh: str | None, data: str | None, output: str, n_points: int, iters: int,
                   image_size: int, views: int, heldout: int, radius_px: float, seed: int,
                   device: str, frame: bool, max_side: int | None, checkpoint_every: int,
                   resume: bool, allow_outside_paths: bool, force: bool, nproc: int,
                   max_restarts: int) -> None:
    """Fit a coloured point cloud to views of MESH (default: the bundled cow, rendered
    unlit) or of --data: writes points.ply, progress.gif, loss.png, final.png, metrics.json
    and index.html.

    Under `torchrun --nproc-per-node N -m diffrend fit-points ...` (or with --nproc N) the
    N processes share each step's views; rank 0 writes the files."""
    from dataclasses import replace

    from ..jobs.checkpoint import deferred_interrupt
    from ..jobs.distributed import distributed
    from ..jobs.fit_points import FitPointsSettings
    from .points_job import prepare_points_inputs, run_points_job

    dev = _device(device)
    # each process renders at least one view a step
    resume = _launch(nproc, max_restarts, FitPointsSettings().views_per_step,
                     "the views rendered per step", resume)
    with distributed(dev) as ctx, _ranks_job(ctx, output, force, resume):
        dev = _rank_device(dev, ctx)
        inputs = prepare_points_inputs(mesh, data, views=views, heldout=heldout,
                                       image_size=image_size, device=dev,
                                       allow_outside=allow_outside_paths, frame=frame,
                                       max_side=max_side)
        _warm_kernels(dev, points=True, quiet=not ctx.is_main)
        settings = FitPointsSettings(n_points=n_points, iters=iters, radius_px=radius_px)
        if settings.views_per_step < ctx.world_size:  # every rank says so, none waits
            raise click.UsageError(f"at most {settings.views_per_step} processes (the views "
                                   f"rendered per step), got {ctx.world_size}")
        with deferred_interrupt() as stop:  # from the first step to the last file
            metrics = run_points_job(output, inputs, settings,
                                     replace(_run(seed, resume, checkpoint_every), dist=ctx))
    if not ctx.is_main:
        return
    parts = []
    if "heldout_psnr" in metrics:
        parts.append(f"held-out PSNR {metrics['heldout_psnr']:.2f} dB, IoU "
                     f"{metrics['heldout_iou_mean']:.4f}")
    if "chamfer_normalized" in metrics:
        parts.append(f"chamfer {metrics['chamfer_normalized']:.2e}")
    _finish(metrics, parts, "point cloud", stop)


@main.command()
@click.argument("mesh", required=False, type=click.Path(dir_okay=False))
@click.option("--data", type=click.Path(exists=True),
              help="Real views instead: a COLMAP model folder (cameras/images/points3D, in "
              "it or in sparse/0; its points start the fit), or a folder with "
              "transforms.json or cameras.json.")
@click.option("-o", "--output", default="out/splat", show_default=True,
              type=click.Path(file_okay=False), help="Output folder.")
@click.option("--iters", default=3000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Optimisation steps (--views-per-step training views each).")
@click.option("--image-size", default=256, show_default=True, type=click.IntRange(16, 4096))
@click.option("--views", default=40, show_default=True, type=click.IntRange(1, 10000),
              help="Training views rendered from the target mesh.")
@click.option("--heldout", default=10, show_default=True, type=click.IntRange(0, 10000),
              help="Held-out views rendered from the target mesh (for PSNR and SSIM).")
@click.option("--points", "n_points", default=20000, show_default=True,
              type=click.IntRange(2, 10_000_000),
              help="Starting Gaussians: samples of MESH's surface, or of the views' visual "
              "hull with --data.")
@click.option("--sh-degree", default=3, show_default=True, type=click.IntRange(0, 3),
              help="Highest spherical-harmonic degree of the colours.")
@click.option("--lit", is_flag=True,
              help="Render MESH's views lit by headlights (view-dependent shading) instead of "
              "its albedo.")
@click.option("--views-per-step", default=None, type=click.IntRange(1, 10000),
              help="Training views rendered per step (distinct; the loss is their mean). "
              "Default: 1, or N with --nproc N (one per process). The processes share each "
              "step's views, so N processes need at least N. The same --views-per-step "
              "gives the same fit on any number of processes up to float rounding, which "
              "Adam amplifies over a long run: the same quality, not the same Gaussians.")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@_fit_job_options
@_nproc_options()
def splat(mesh: str | None, data: str | None, output: str, iters: int, image_size: int,
          views: int, heldout: int, n_points: int, sh_degree: int, lit: bool,
          views_per_step: int | None, seed: int, device: str, checkpoint_every: int,
          resume: bool, allow_outside_paths: bool, force: bool, nproc: int,
          max_restarts: int) -> None:
    """Fit 3D Gaussians (Gaussian splatting) to views of MESH (default: the bundled cow)
    or of --data: writes point_cloud.ply, progress.gif, loss.png, final.png, metrics.json
    and index.html.

    Under `torchrun --nproc-per-node N -m diffrend splat ...` (or with --nproc N) the N
    processes share each step's views (--views-per-step, default N) and densify alike;
    rank 0 writes the files."""
    from dataclasses import replace

    from ..jobs.checkpoint import deferred_interrupt
    from ..jobs.distributed import distributed
    from ..jobs.splat import FitSplatSettings
    from .splat_job import prepare_splat_inputs, run_splat_job

    dev = _device(device)
    # each process renders at least one view a step (MESH's training views: --views)
    most = views_per_step or (views if data is None else 1024)
    resume = _launch(nproc, max_restarts, most, "the views rendered per step, "
                     "--views-per-step" if views_per_step else "the training views", resume)
    with distributed(dev) as ctx, _ranks_job(ctx, output, force, resume):
        dev = _rank_device(dev, ctx)
        inputs = prepare_splat_inputs(mesh, data, views=views, heldout=heldout,
                                      image_size=image_size, device=dev, lit=lit,
                                      allow_outside=allow_outside_paths)
        per_step = views_per_step or ctx.world_size
        # every rank says so, none waits
        if per_step < ctx.world_size:
            raise click.UsageError(f"--views-per-step ({per_step}) must be at least the "
                                   f"number of processes ({ctx.world_size})")
        if per_step > len(inputs.views.train):
            raise click.UsageError(f"--views-per-step ({per_step}) must be at most the "
                                   f"training views ({len(inputs.views.train)})")
        # the refinement schedule follows the run's length
        settings = replace(FitSplatSettings().scaled(iters), sh_degree=sh_degree,
                           views_per_step=per_step)
        with deferred_interrupt() as stop:  # from the first step to the last file
            metrics = run_splat_job(output, inputs, settings, n_points,
                                    replace(_run(seed, resume, checkpoint_every), dist=ctx))
    if not ctx.is_main:
        return
    parts = []
    if "heldout_psnr" in metrics:
        parts.append(f"held-out PSNR {metrics['heldout_psnr']:.2f} dB, SSIM "
                     f"{metrics['heldout_ssim']:.4f}")
    _finish(metrics, parts, "Gaussian cloud", stop)


@main.command("render-dataset")
@click.argument("mesh_folder", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", default="out/dataset", show_default=True,
              type=click.Path(file_okay=False),
              help="Output folder: one dataset folder per mesh, and summary.json.")
@click.option("--views", default=40, show_default=True, type=click.IntRange(1, 10000),
              help="Cameras per mesh, spread over a sphere.")
@click.option("--image-size", default=256, show_default=True, type=click.IntRange(8, 4096))
@click.option("--lit/--unlit", default=True, show_default=True,
              help="Colour lit by a headlight per camera, or the albedo.")
@click.option("--pattern", "patterns", multiple=True, metavar="GLOB",
              help="Mesh files to render, a glob relative to MESH_FOLDER (repeatable; "
              "'**/*.obj' searches subfolders). Default: *.obj, *.ply, *.off, *.stl, *.glb "
              "directly in MESH_FOLDER, any case.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1, 1024),
              help="Views rendered per call.")
@click.option("--device", default="cpu", show_default=True,
              help="cpu or cuda (under torchrun each rank takes GPU LOCAL_RANK).")
@click.option("--overwrite", is_flag=True,
              help="Render again the meshes whose datasets are complete (skipped by default).")
@click.option("--force", is_flag=True,
              help="Run even when another diffrend run holds OUTPUT's lock.")
def render_dataset_cmd(mesh_folder: str, output: str, views: int, image_size: int, lit: bool,
                       patterns: tuple[str, ...], batch_size: int, device: str,
                       overwrite: bool, force: bool) -> None:
    """Render every mesh file of MESH_FOLDER into a multi-view dataset: per mesh, images,
    masks, depth and normals with a transforms.json that --data reads; OUTPUT/summary.json
    lists what was rendered, skipped (complete already) and failed. Meshes are shared among
    the processes of `torchrun --nproc-per-node N -m diffrend render-dataset ...`. Exit
    code 3: some meshes failed (the others are written)."""
    import sys

    from .dataset_job import run_dataset_job

    dev = _device(device)
    for pattern in patterns:
        if not pattern or Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise click.BadParameter(f"{pattern!r}: a glob relative to MESH_FOLDER, inside it",
                                     param_hint="--pattern")
    try:
        code = run_dataset_job(mesh_folder, output, views=views, image_size=image_size,
                               lit=lit, batch_size=batch_size, patterns=patterns or None,
                               overwrite=overwrite, device=dev, force=force, echo=click.echo,
                               warn=lambda m: click.echo(m, err=True))
    except KeyboardInterrupt:
        click.echo(f"interrupted: stopped at once; every mesh folder in {output} is "
                   "complete; run again to continue", err=True)
        sys.exit(130)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    sys.exit(code)


@main.command()
@click.option("-o", "--output", default="out/gradlab", show_default=True,
              type=click.Path(file_okay=False), help="Output folder.")
@click.option("--tiny", is_flag=True, help="Seconds-long settings (a smoke test, as in CI).")
@click.option("--full", is_flag=True,
              help="The run of docs/gradients.md (PyTorch3D's tutorial row at 256x256, the "
              "pose job, bigger images): minutes on a GPU, hours on a 2-core CPU.")
@click.option("--parts", default="pictures,accuracy,pose,fit", show_default=True,
              help="Comma-separated subset of pictures, accuracy, pose, fit.")
@click.option("--trials", default=None, type=click.IntRange(1, 1000),
              help="Pose trials per range (default 6; --full: 20; --tiny: 2).")
@click.option("--steps", default=None, type=click.IntRange(1, 100000),
              help="Adam steps per pose trial (default 100; --full: 200, PyTorch3D's "
              "tutorial).")
@click.option("--no-pose-job", is_flag=True, help="Skip diffrend's pose job in the pose table.")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--force", is_flag=True,
              help="Run even when another diffrend run holds OUTPUT's lock.")
def gradlab(output: str, tiny: bool, full: bool, parts: str, trials: int | None,
            steps: int | None, no_pose_job: bool, seed: int, device: str, force: bool) -> None:
    """Compare the gradient methods (soft, hard, antialias, nmr, opendr) on the bundled cow
    and teapot: gradient pictures, gradient accuracy against supersampled finite
    differences, camera-pose recovery and silhouette mesh fitting. Writes report.md,
    results.json and PNG figures into OUTPUT (after each part, so an interrupted run leaves
    a partial report). The defaults take a few minutes on 2 CPU cores."""
    import dataclasses
    import sys

    from ..gradlab import GradlabSettings, run_gradlab

    if tiny and full:
        raise click.BadParameter("choose one of --tiny and --full", param_hint="--full")
    dev = _device(device)
    base = (GradlabSettings.tiny() if tiny else GradlabSettings.full() if full
            else GradlabSettings())
    chosen = tuple(p.strip() for p in parts.split(",") if p.strip())
    changes = {"parts": chosen, "seed": seed}
    if trials is not None:
        changes["pose_trials"] = trials
    if steps is not None:
        changes["pose_steps"] = steps
    if no_pose_job:
        changes["pose_job"] = False
    try:
        settings = dataclasses.replace(base, **changes)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    with _job(output, force):
        run_gradlab(output, settings, device=dev, command="diffrend " + " ".join(sys.argv[1:]),
                    echo=click.echo)


@main.command()
@click.option("--quick", is_flag=True, help="Small sizes and few repeats (a smoke test).")
@click.option("--repeats", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--no-llvmpipe", is_flag=True, help="Skip the OpenGL (Mesa llvmpipe) baseline.")
@click.option("--distributed", is_flag=True,
              help="Instead: steps per second of `diffrend fit` on 1 and 2 processes, and "
              "the cost model of a step (render, fixed per-step work, all-reduce) with its "
              "predictions for more processes (a few minutes).")
@click.option("--busy", is_flag=True,
              help="Time the mesh and point cases while one spinning process per core keeps "
              "the cores busy (llvmpipe under the same load), as on a shared machine.")
def bench(quick: bool, repeats: int, no_llvmpipe: bool, distributed: bool, busy: bool) -> None:
    """Time the rasterizer against Mesa's llvmpipe, and the Gaussian rasterizer against its
    torch twin; print medians and ratios. With --distributed: the distributed fit."""
    from ..bench.raster_bench import run_benchmarks
    from ..bench.splat_bench import run_splat_benchmarks

    if distributed:
        from ..bench.dist_bench import run_dist_benchmark

        if quick:
            run_dist_benchmark(steps=6, image_size=32, views=2, echo=click.echo)
        else:
            run_dist_benchmark(echo=click.echo)
        return
    run_benchmarks(quick=quick, repeats=repeats, llvmpipe=not no_llvmpipe, echo=click.echo,
                   busy=busy)
    if busy:
        return
    click.echo("")
    run_splat_benchmarks(quick=quick, repeats=repeats, echo=click.echo)


__all__ = ["main"]
