"""``diffrend gradlab``: run the lab's experiments and write the report.

:func:`run_gradlab` runs the parts named in :class:`GradlabSettings` (pictures, accuracy,
pose, fit) and writes into one folder: ``report.md`` (tables, figures, the settings and the
command), ``results.json``, and PNG figures.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..cameras import FoVPerspectiveCameras
from ..io.outputs import check_writable, write_json, write_png, write_text
from ..jobs.views import sphere_cameras
from ..structures import Meshes
from . import report
from .accuracy import accuracy_units, gradient_accuracy
from .fitting import fit_figure, fit_silhouettes, make_setup
from .methods import MethodSpec, default_methods, tutorial_method
from .perturb import smooth_field
from .pictures import method_picture, picture_figure, true_picture
from .pose import draw_trials, recover_poses
from .scenes import load_scene_mesh

PARTS = ("pictures", "accuracy", "pose", "fit")


@dataclass(frozen=True)
class GradlabSettings:
    """What the lab runs. The defaults finish in a few minutes on a 2-core CPU;
    :meth:`full` is the run of docs/gradients.md (about 7 minutes on an H100, hours on a
    2-core CPU), :meth:`tiny` CI's smoke run.

    Attributes:
        parts: which experiments to run (a subset of :data:`PARTS`).
        picture_scene, picture_size, picture_factor: the gradient pictures' mesh, image side
            and supersampling of the truth.
        accuracy_scenes, accuracy_size, accuracy_views, accuracy_directions, accuracy_factor:
            the accuracy experiment (per scene: N views, P random directions
            per kind, truth supersampled ``factor x factor``).
        pose_scene, pose_trials, pose_steps, pose_size: the pose experiment (trials from the
            same starts for every method; Adam steps; the methods' image side).
        pose_ranges: (min, max) start angles in degrees, one experiment per range.
        pose_tutorial: also run PyTorch3D's tutorial setting (soft, K = 100) on the ranges
            starting 60 degrees or more away; at 256 x 256 it costs about 1.5 s per trial
            and step on 2 CPU cores, so only :meth:`full` runs it at its real size.
        tutorial_size: image side of PyTorch3D's tutorial setting (its 256).
        pose_job: also run diffrend's pose job (:func:`~diffrend.jobs.fit_pose`, screened
            restarts) on the trials of the widest range (about 30 s per trial on 2 cores).
        fit_scene, fit_size, fit_steps, fit_views, fit_level: silhouette-only mesh fitting.
        seed: seeds every random choice.
    """

    parts: tuple[str, ...] = PARTS
    picture_scene: str = "cow"
    picture_size: int = 16
    picture_factor: int = 16
    accuracy_scenes: tuple[str, ...] = ("cow", "teapot")
    accuracy_size: int = 32
    accuracy_views: int = 2
    accuracy_directions: int = 8
    accuracy_factor: int = 8
    pose_scene: str = "teapot"
    pose_trials: int = 6
    pose_steps: int = 100
    pose_size: int = 48
    pose_ranges: tuple[tuple[float, float], ...] = ((20.0, 40.0), (60.0, 120.0))
    pose_tutorial: bool = False
    tutorial_size: int = 256
    pose_job: bool = False
    fit_scene: str = "cow"
    fit_size: int = 48
    fit_steps: int = 200
    fit_views: int = 8
    fit_level: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [p for p in self.parts if p not in PARTS]
        if bad or not self.parts:
            raise ValueError(f"parts must be a non-empty subset of {PARTS}, got {self.parts}")
        for name in ("picture_size", "picture_factor", "accuracy_size", "accuracy_views",
                     "accuracy_directions", "accuracy_factor", "pose_trials", "pose_steps",
                     "pose_size", "tutorial_size", "fit_size", "fit_steps", "fit_views"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        for lo, hi in self.pose_ranges:
            if not 0 <= lo <= hi <= 180:
                raise ValueError(f"pose_ranges must hold 0 <= min <= max <= 180, got "
                                 f"{(lo, hi)}")

    @staticmethod
    def full() -> GradlabSettings:
        """The run of docs/gradients.md: bigger images, more directions, trials and steps,
        PyTorch3D's tutorial row at 256 x 256 and the pose job (meant for a GPU)."""
        return GradlabSettings(picture_size=32, picture_factor=32, accuracy_size=64,
                               accuracy_views=4, accuracy_directions=24, accuracy_factor=16,
                               pose_trials=20, pose_steps=200, pose_size=64,
                               pose_tutorial=True, pose_job=True, fit_size=64, fit_steps=400,
                               fit_views=16, fit_level=3)

    @staticmethod
    def tiny() -> GradlabSettings:
        """Seconds-long settings that still run every part (CI's smoke run)."""
        return GradlabSettings(picture_size=8, picture_factor=4, accuracy_scenes=("cow",),
                               accuracy_size=16, accuracy_views=1, accuracy_directions=3,
                               accuracy_factor=4, pose_trials=2, pose_steps=3, pose_size=16,
                               pose_ranges=((60.0, 120.0),), pose_tutorial=True,
                               tutorial_size=32, pose_job=False, fit_size=16, fit_steps=3,
                               fit_views=4, fit_level=1)


def _views(n: int, device: torch.device, dtype: torch.dtype) -> FoVPerspectiveCameras:
    c = sphere_cameras(n, dist=3.0, offset=0.3, device=device)
    return FoVPerspectiveCameras(R=c.R.to(dtype), T=c.T.to(dtype), fov=60.0, device=device)


def _as(mesh: Meshes, dtype: torch.dtype) -> Meshes:
    return Meshes([mesh.verts_packed().to(dtype)], [mesh.faces_packed()])


def _pose_job_row(mesh: Meshes, trials, size: int, seed: int, bar: tqdm) -> dict:
    """diffrend's pose job on the same trials, in the rows' format (``bar`` is advanced
    per trial and closed)."""
    from ..jobs.pose import fit_pose
    from .pose import _cameras, angle_deg

    errors, t0 = [], time.perf_counter()
    for i in range(trials.targets.shape[0]):
        tgt = trials.targets[i : i + 1].float().to(mesh.device)
        start = trials.starts[i : i + 1].float().to(mesh.device)
        ref = MethodSpec("hard", "hard", size).render(mesh, _cameras(tgt, 60.0))[0]
        init = _cameras(start, 60.0)
        result = fit_pose(mesh, ref, init.R, init.T, fov=60.0, seed=seed + i)
        centre = -(result.T[:, None, :] @ result.R.transpose(1, 2))[:, 0]  # -T R^T
        errors.append(float(angle_deg(centre.double().cpu(), trials.targets[i : i + 1])[0]))
        bar.update(1)
    bar.close()
    seconds = time.perf_counter() - t0
    n = len(errors)
    ok = [e < 5.0 for e in errors]
    return {"method": "diffrend pose job (16 screened restarts)", "image_size": size,
            "trials": n, "converged": int(sum(ok)),
            "median_error_deg": float(torch.tensor(errors).median()),
            "median_steps_to_converge": None, "seconds_per_trial": seconds / n}


def run_gradlab(
    output: str | Path,
    settings: GradlabSettings = GradlabSettings(),  # noqa: B008 - frozen, immutable
    device: torch.device | str = "cpu",
    command: str = "diffrend gradlab",
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> dict:
    """Run the lab; write ``report.md``, ``results.json`` and figures into ``output``.

    Args:
        output: folder (created).
        settings: what to run.
        device: where to render (a CUDA device uses the Triton kernels).
        command: the command line, recorded in the report.
        echo: where progress lines go.
        progress: show progress bars.

    Returns:
        The results (as written to results.json).
    """

    out = Path(output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output must be a folder, got {out}")
    check_writable(out)
    device = torch.device(device)
    s = settings
    results: dict = {"settings": asdict(s), "device": _device_name(device),
                     "command": command, "seconds": {}, "missing": list(s.parts)}
    figures: list[str] = []

    def bar(desc: str, total: int) -> tqdm:
        # One bar per part, counted in its smallest steps (pixels, finite differences,
        # Adam steps), so the ETA is measured on the part's own work.
        return tqdm(total=total, desc=desc, disable=not progress, leave=False,
                    smoothing=0.1, dynamic_ncols=True)

    def done(part: str, t0: float) -> None:
        results["seconds"][part] = time.perf_counter() - t0
        results["missing"].remove(part)
        _write(out, results)  # a later interruption keeps what is finished

    try:
        if "pictures" in s.parts:
            t0 = time.perf_counter()
            mesh = _as(load_scene_mesh(s.picture_scene, device), torch.float64)
            cam = _views(1, device, torch.float64)
            u = smooth_field(mesh, torch.Generator().manual_seed(s.seed)).to(device)
            specs = default_methods(s.picture_size)
            with bar("gradient pictures (pixels)", s.picture_size**2 * len(specs)) as b:
                pics = {"truth (supersampled)": true_picture(mesh, cam, u, s.picture_size,
                                                             s.picture_factor)}
                for spec in specs:
                    pics[spec.label] = method_picture(spec, mesh, cam, u, s.picture_size,
                                                      progress=b.update)
            cover = MethodSpec("hard", "hard").render(mesh, cam, s.picture_size)[0].cpu()
            pics_np = {k: v.numpy() for k, v in pics.items()}
            write_png(picture_figure(pics_np, cover.numpy()), out / "gradient_pictures.png")
            figures.append("gradient_pictures.png")
            truth = pics["truth (supersampled)"]
            results["pictures"] = [
                {"method": k, "cosine_to_truth": _cos(v, truth)} for k, v in pics.items()]
            done("pictures", t0)

        if "accuracy" in s.parts:
            t0 = time.perf_counter()
            rows = []
            specs = default_methods(s.accuracy_size)
            units = accuracy_units(s.accuracy_directions, len(specs))
            with bar("gradient accuracy", units * len(s.accuracy_scenes)) as b:
                for scene in s.accuracy_scenes:
                    mesh = _as(load_scene_mesh(scene, device), torch.float64)
                    rows += gradient_accuracy(
                        scene, mesh, _views(s.accuracy_views, device, torch.float64), specs,
                        s.accuracy_size, s.accuracy_directions, s.accuracy_factor,
                        seed=s.seed, progress=b.update)
            results["accuracy"] = [r.as_dict() for r in rows]
            done("accuracy", t0)

        if "pose" in s.parts:
            t0 = time.perf_counter()
            mesh = load_scene_mesh(s.pose_scene, device)
            specs = [m for m in default_methods(s.pose_size) if "blur" not in m.label]
            results["pose"] = []
            for lo, hi in s.pose_ranges:
                trials = draw_trials(s.pose_trials, min_deg=lo, max_deg=hi, seed=s.seed)
                tutorial = s.pose_tutorial and hi >= 60
                run_specs = ([tutorial_method(s.tutorial_size)] if tutorial else []) + specs
                rows = []
                with bar(f"pose {lo:.0f}-{hi:.0f} deg (trial steps)",
                         len(run_specs) * s.pose_trials * s.pose_steps) as b:
                    for spec in run_specs:
                        rows.append(recover_poses(mesh, spec, trials, steps=s.pose_steps,
                                                  progress=b.update).as_dict())
                if s.pose_job and hi >= 60:
                    rows.append(_pose_job_row(mesh, trials, 2 * s.pose_size, s.seed,
                                              bar("diffrend pose job (trials)",
                                                  s.pose_trials)))
                results["pose"].append({"min_deg": lo, "max_deg": hi, "rows": rows})
            done("pose", t0)

        if "fit" in s.parts:
            t0 = time.perf_counter()
            reference = load_scene_mesh(s.fit_scene, device)
            setup = make_setup(reference, s.fit_size, views=s.fit_views)
            rows, meshes = [], {}
            specs = default_methods(s.fit_size)
            with bar("mesh fitting (steps)", len(specs) * s.fit_steps) as b:
                for spec in specs:
                    row, mesh = fit_silhouettes(spec, reference, setup, steps=s.fit_steps,
                                                level=s.fit_level, seed=s.seed,
                                                progress=b.update)
                    rows.append(row.as_dict())
                    meshes[spec.label] = mesh
            write_png(fit_figure(meshes, setup), out / "fit_silhouettes.png")
            figures.append("fit_silhouettes.png")
            results["fit"] = rows
            done("fit", t0)
    except KeyboardInterrupt:
        results["interrupted"] = True
        _write(out, results)
        echo(f"interrupted: wrote a partial {out}/report.md (missing: "
             f"{', '.join(results['missing'])})")
        raise

    _write(out, results)
    echo(f"wrote {out}/" + ", ".join(["report.md", "results.json", *figures]))
    return results


def _write(out: Path, results: dict) -> None:
    write_json(results, out / "results.json")
    write_text(report.markdown(results), out / "report.md")


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = float(a.norm()), float(b.norm())
    return float((a * b).sum()) / (na * nb) if na > 0 and nb > 0 else 0.0


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return (f"CPU: {platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} threads (torch {torch.__version__})")


