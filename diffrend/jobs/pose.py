"""Camera pose recovery from one image: find R, T that make a known mesh look like a target.

The camera is parameterised around the object: the rotation as ``R = exp(w) @ R_start``
(left-multiplied, so it turns the object about its own origin and the object stays where
``T`` puts it), the translation as ``(tx / tz, ty / tz, log tz)`` (image-plane offset and log
distance: one learning rate fits all three).

Silhouette fitting has many local minima (the teapot's spout and handle make it only nearly
mirror-symmetric, and from many views a wrong pose covers ~85-90% of the right silhouette),
and a gradient run finds the right one only from within ~30-45 degrees. So
:func:`fit_pose` works in phases:

1. screen: render a pool of uniformly random rotations (hard, 32 pixels, one batched call)
   and keep the best-matching ones, spread apart, as restarts (restart 0 is the given start);
2. search: optimise all restarts at once (one batched soft render per step) on small images
   with a wide blur;
3. refine the few restarts with the lowest search loss at the target's resolution with a
   narrow blur, and keep the one whose hard silhouette best matches the target. (Ranked
   before refining, the hard IoU misleads: the search's blur biases the distance by a few
   percent, which costs the right pose more IoU than a wrong pose has lost.)

Under torch.distributed (``dist``, see :mod:`.distributed`) the ranks share the work: the
screening's pool, the restarts of the search and the finalists of the refinement (each pose
is optimised on its own, by Adam, elementwise: a rank's share moves as it would in one
process), and gather the losses and poses so that every rank picks the same finalists and
winner. :func:`evaluate_pose_recovery` shares its trials likewise.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from ..cameras import FoVPerspectiveCameras, look_at_view_transform
from ..raster import MeshRasterizer, RasterizationSettings
from ..shading import TexturesVertex
from ..structures import Meshes
from ..transforms import random_rotations, so3_exp_map, so3_log_map
from .distributed import DistContext
from .runner import RunOptions, run
from .views import SoftSilhouetteRenderer, normalize_meshes, render_hard, resize_images


@dataclass
class PoseStep:
    """What the callback of :func:`fit_pose` receives: one restart after one step.

    ``R (1, 3, 3)`` and ``T (1, 3)`` (detached) are the pose this step rendered and ``loss``
    its loss (the step's update comes after). ``phase`` is "search" or "refine"; ``step``
    counts from 0 in each phase.
    """

    restart: int
    step: int
    loss: float
    R: torch.Tensor
    T: torch.Tensor
    phase: str


@dataclass
class PoseResult:
    """What :func:`fit_pose` returns.

    Attributes:
        R: (1, 3, 3) best rotation (world-to-view, row vectors: ``X_view = X @ R + T``).
        T: (1, 3) its translation.
        loss: soft loss of (R, T) at the target's resolution.
        iou: hard silhouette IoU of (R, T) against the target (thresholded at 0.5).
        history: loss per step of the kept run: its search steps (on the small images),
            then its refinement.
        restarts: per restart, a dict: ``restart`` (index), ``source`` ("init" or
            "screened"), ``R0`` (1, 3, 3) / ``T0`` (1, 3) its start, ``R`` / ``T`` its final
            pose, ``loss`` its final loss (at full resolution when ``refined``, else its last
            search loss), ``iou`` its final hard IoU at full resolution, ``refined``.
        winner: index (into ``restarts``) of the kept restart.
        stopped: True when the callback stopped the fit early.
        seconds: wall time of the call.
    """

    R: torch.Tensor
    T: torch.Tensor
    loss: float
    iou: float
    history: list[float] = field(default_factory=list)
    restarts: list[dict] = field(default_factory=list)
    winner: int = 0
    stopped: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class FitPoseSettings:
    """Settings of :func:`fit_pose`: its keyword arguments of the same names (see there),
    as one value (what :func:`evaluate_pose_recovery` passes to every trial and reports)."""

    restarts: int = 16
    search_steps: int = 60
    refine_steps: int = 40
    lr: float = 0.05
    search_size: int = 64
    screen_pool: int = 1024
    min_sep_deg: float = 20.0
    search_blur_px: float = 1.0
    refine_blur_px: float = 0.25
    faces_per_pixel: int = 50
    w_rgb: float = 1.0
    finalists: int = 4

    def __post_init__(self) -> None:
        for name, low in (("restarts", 1), ("search_steps", 0), ("refine_steps", 0),
                          ("search_size", 8), ("screen_pool", 1), ("faces_per_pixel", 1),
                          ("finalists", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if self.screen_pool < self.restarts - 1:
            raise ValueError(f"screen_pool must be >= restarts - 1 ({self.restarts - 1}), got "
                             f"{self.screen_pool}")
        for name in ("lr", "search_blur_px", "refine_blur_px"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        w_rgb = self.w_rgb
        if not (isinstance(w_rgb, int | float) and math.isfinite(w_rgb) and w_rgb >= 0):
            raise ValueError(f"w_rgb must be a finite number >= 0, got {w_rgb!r}")
        sep = self.min_sep_deg
        if not (isinstance(sep, int | float) and 0 <= sep <= 180):
            raise ValueError(f"min_sep_deg must be in [0, 180], got {sep!r}")


# ---------------------------------------------------------------------------------------------
# Rotations


def _check_rotations(R: object, name: str, n: int | None = None) -> torch.Tensor:
    if not torch.is_tensor(R) or R.ndim != 3 or tuple(R.shape[1:]) != (3, 3):
        shape = tuple(R.shape) if torch.is_tensor(R) else type(R).__name__
        raise ValueError(f"{name} must be a (N, 3, 3) tensor, got {shape}")
    if n is not None and R.shape[0] != n:
        raise ValueError(f"{name} must hold {n} rotation(s), got {R.shape[0]}")
    if not torch.isfinite(R).all():
        raise ValueError(f"{name} holds NaN or inf")
    eye = torch.eye(3, dtype=R.dtype, device=R.device)
    if (R @ R.transpose(1, 2) - eye).abs().amax() > 1e-3 or (torch.linalg.det(R) < 0).any():
        raise ValueError(f"{name} must hold rotation matrices (orthonormal, det +1)")
    return R


def rotation_error_degrees(R1: torch.Tensor, R2: torch.Tensor) -> torch.Tensor:
    """Geodesic angle between rotations, in degrees.

    Computed as the norm of ``log(R1 @ R2^T)`` in float64, which (unlike ``acos`` of the
    trace) stays accurate for small angles.

    Args:
        R1, R2: (N, 3, 3) rotation matrices.

    Returns:
        (N,) angles in [0, 180]. Not differentiable (a metric).
    """
    R1 = _check_rotations(R1, "R1")
    R2 = _check_rotations(R2, "R2", R1.shape[0])
    with torch.no_grad():
        rel = R1.double() @ R2.double().transpose(1, 2)
        return torch.rad2deg(so3_log_map(rel).norm(dim=1)).to(R1.dtype)


def random_rotation_away(
    R: torch.Tensor,
    min_deg: float,
    max_deg: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``R`` turned by a random rotation: uniform random axis, angle uniform in
    ``[min_deg, max_deg]``.

    The rotation is applied on the object side (``Q @ R``), so the object turns about its
    origin; the geodesic distance to ``R`` is the drawn angle either way.

    Args:
        R: (1, 3, 3) rotation.
        min_deg, max_deg: angle range in degrees, ``0 <= min_deg <= max_deg <= 180``.
        generator: random source (CPU); None: torch's global one.

    Returns:
        (1, 3, 3) rotation at geodesic distance in ``[min_deg, max_deg]`` from ``R``.
    """
    R = _check_rotations(R, "R", 1)
    if not (0.0 <= min_deg <= max_deg <= 180.0):
        raise ValueError(f"min_deg, max_deg must satisfy 0 <= min_deg <= max_deg <= 180, got "
                         f"{min_deg}, {max_deg}")
    axis = torch.randn(3, generator=generator, dtype=torch.float64)
    axis = axis / axis.norm().clamp(min=1e-12)
    u = float(torch.rand((), generator=generator, dtype=torch.float64))
    angle = math.radians(min_deg + (max_deg - min_deg) * u)
    Q = so3_exp_map((axis * angle)[None])
    return (Q @ R.double()).to(R.dtype)


# ---------------------------------------------------------------------------------------------
# Rendering


def _grey(mesh: Meshes) -> Meshes:
    """The mesh with a uniform light grey ``TexturesVertex`` when it has no textures."""
    if mesh.textures is not None:
        return mesh
    grey = torch.full_like(mesh.verts_packed(), 0.8)
    return Meshes(verts=mesh.verts_list(), faces=mesh.faces_list(),
                  textures=TexturesVertex([grey]))


def _cameras(R: torch.Tensor, T: torch.Tensor, fov: float) -> FoVPerspectiveCameras:
    return FoVPerspectiveCameras(R=R, T=T, fov=fov, device=R.device)


def _hard_silhouettes(mesh: Meshes, R: torch.Tensor, T: torch.Tensor,
                      size: tuple[int, int], fov: float) -> torch.Tensor:
    """(N, H, W) binary silhouettes of one mesh from N cameras (no gradients)."""
    rasterizer = MeshRasterizer(raster_settings=RasterizationSettings(image_size=size))
    # Views in chunks: extend() copies the mesh per view.
    chunk = max(1, 4_000_000 // max(1, int(mesh.num_faces_per_mesh()[0])))
    out = []
    with torch.no_grad():
        for i in range(0, R.shape[0], chunk):
            r, t = R[i : i + chunk], T[i : i + chunk]
            fragments = rasterizer(mesh.extend(r.shape[0]), cameras=_cameras(r, t, fov))
            out.append((fragments.pix_to_face[..., 0] >= 0).to(R.dtype))
    return torch.cat(out)


def render_pose_target(
    mesh: Meshes,
    R: torch.Tensor,
    T: torch.Tensor,
    image_size: int | tuple[int, int],
    fov: float = 60.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard render of one mesh from one camera: the target of a pose fit.

    Args:
        mesh: one mesh; without textures it is drawn light grey.
        R: (1, 3, 3) world-to-view rotation; T: (1, 3) translation.
        image_size: side of a square image, or (H, W).
        fov: vertical field of view in degrees.

    Returns:
        ``(silhouette (H, W) in {0, 1}, rgb (H, W, 3))``: the colour is Phong shading lit by
        a point light at the camera, on black. No gradients.
    """
    _check_mesh(mesh)
    R = _check_rotations(R, "R", 1)
    T = _check_translation(T, "T")
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
        raise ValueError(f"image_size must be an int or (H, W) of ints >= 1, got {image_size!r}")
    if not (isinstance(fov, int | float) and 0 < fov < 180):
        raise ValueError(f"fov must be in (0, 180) degrees, got {fov!r}")
    with torch.no_grad():
        rgba, pix_to_face = render_hard(_grey(mesh), _cameras(R, T, fov), size, lit=True)
        rgb = rgba[0, ..., :3]
        sil = (pix_to_face[0, ..., 0] >= 0).to(rgb.dtype)
    return sil, rgb.clamp(0, 1)


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(H, W, C) -> (h, w, C), area-averaged when shrinking (a soft, antialiased target)."""
    return resize_images(image[None], size)[0]


def _losses(sil: torch.Tensor, target: torch.Tensor, rgb: torch.Tensor | None,
            target_rgb: torch.Tensor | None, w_rgb: float) -> torch.Tensor:
    """Per-view loss (N,): soft IoU loss of the silhouettes (+ ``w_rgb`` * colour MSE).

    IoU is scale-free: the same weight for small and large silhouettes (MSE fitted no
    better in our tests).
    """
    inter = (sil * target).flatten(1).sum(1)
    union = (sil + target - sil * target).flatten(1).sum(1)
    loss = 1.0 - (inter + 1e-6) / (union + 1e-6)
    if rgb is not None and target_rgb is not None:
        loss = loss + w_rgb * (rgb - target_rgb).square().flatten(1).mean(1)
    return loss


def _iou(masks: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N,) IoU of binary masks (N, H, W) with a target (H, W) thresholded at 0.5."""
    t = target > 0.5
    m = masks > 0.5
    inter = (m & t).flatten(1).sum(1).to(masks.dtype)
    union = (m | t).flatten(1).sum(1).clamp(min=1).to(masks.dtype)
    return inter / union


# ---------------------------------------------------------------------------------------------
# Parameterisation


def _t_to_params(T: torch.Tensor) -> torch.Tensor:
    """(N, 3) translations -> (tx / tz, ty / tz, log tz)."""
    return torch.stack((T[:, 0] / T[:, 2], T[:, 1] / T[:, 2], T[:, 2].log()), dim=1)


def _params_to_t(p: torch.Tensor) -> torch.Tensor:
    z = p[:, 2].exp()
    return torch.stack((p[:, 0] * z, p[:, 1] * z, z), dim=1)


class _Poses:
    """N camera poses being optimised: ``R = exp(w) @ R0``, ``T`` from ``(x, y, log z)``."""

    def __init__(self, R0: torch.Tensor, T0: torch.Tensor) -> None:
        self.R0 = R0.detach().clone()
        self.w = torch.zeros(R0.shape[0], 3, dtype=R0.dtype, device=R0.device,
                             requires_grad=True)
        self.t = _t_to_params(T0.detach()).clone().requires_grad_(True)

    def params(self) -> list[torch.Tensor]:
        return [self.w, self.t]

    def RT(self) -> tuple[torch.Tensor, torch.Tensor]:
        return so3_exp_map(self.w) @ self.R0, _params_to_t(self.t)


# ---------------------------------------------------------------------------------------------
# Fitting


def _check_mesh(mesh: object) -> None:
    if not isinstance(mesh, Meshes) or len(mesh) != 1 or mesh.isempty():
        raise ValueError("mesh must be one non-empty Meshes")
    if not torch.isfinite(mesh.verts_packed()).all():
        raise ValueError("mesh has NaN or inf vertices")


def _check_translation(T: object, name: str) -> torch.Tensor:
    if not torch.is_tensor(T) or tuple(T.shape) != (1, 3):
        shape = tuple(T.shape) if torch.is_tensor(T) else type(T).__name__
        raise ValueError(f"{name} must be a (1, 3) tensor, got {shape}")
    if not torch.isfinite(T).all():
        raise ValueError(f"{name} holds NaN or inf")
    if float(T[0, 2]) <= 0:
        raise ValueError(f"{name}: the object's origin must be in front of the camera "
                         f"(T[0, 2] > 0), got {float(T[0, 2])}")
    return T


def _screen_size(full: tuple[int, int], side: int) -> tuple[int, int]:
    """(h, w) with the larger side ``side`` (never above ``full``), aspect kept."""
    scale = min(1.0, side / max(full))
    return max(8, round(full[0] * scale)), max(8, round(full[1] * scale))


def _starts(mesh: Meshes, target: torch.Tensor, init_R: torch.Tensor, init_T: torch.Tensor,
            restarts: int, pool: int, min_sep_deg: float, fov: float,
            generator: torch.Generator, dist: DistContext) -> tuple[torch.Tensor, list[str]]:
    """Starting rotations (restarts, 3, 3): the init, then the best of ``pool`` uniformly
    random rotations by hard IoU against ``target``, at least ``min_sep_deg`` apart.

    The init's translation is kept for all: the object stays where the init puts it. The
    ranks of ``dist`` render a block of the pool each (the same starts on every rank).
    """
    if restarts == 1:
        return init_R, ["init"]
    cand = random_rotations(pool, dtype=init_R.dtype, generator=generator).to(init_R.device)
    ious = _shared_ious(mesh, cand, init_T.expand(pool, 3), target, fov, dist)
    cand = cand[torch.argsort(ious, descending=True, stable=True)]
    max_cos = math.cos(math.radians(min_sep_deg))

    def far_from(R: torch.Tensor) -> torch.Tensor:  # cos(angle) = (trace(A B^T) - 1) / 2
        return (torch.einsum("nij,ij->n", cand, R) - 1) / 2 <= max_cos

    free = far_from(init_R[0])
    unused = torch.ones(pool, dtype=torch.bool, device=cand.device)
    picked = []
    while len(picked) < restarts - 1:
        # greedy: the best-matching candidate not too close to those chosen; when the
        # spacing leaves none, the best unused one
        idx = torch.nonzero(free & unused)
        idx = idx if len(idx) else torch.nonzero(unused)
        if not len(idx):
            break
        i = int(idx[0])
        picked.append(i)
        unused[i] = False
        free &= far_from(cand[i])
    starts = torch.cat((init_R, cand[picked]))
    return starts, ["init"] + ["screened"] * len(picked)


def _shared_ious(mesh: Meshes, R: torch.Tensor, T: torch.Tensor, target: torch.Tensor,
                 fov: float, dist: DistContext) -> torch.Tensor:
    """(N,) hard-silhouette IoU with ``target`` (h, w) of the mesh seen from N cameras
    (``R`` (N, 3, 3), ``T`` (N, 3)); each rank renders a contiguous block of them and every
    rank gets all N (each view's silhouette is its own: the same values as one process)."""
    size = tuple(target.shape)
    if not dist.active:
        return _iou(_hard_silhouettes(mesh, R, T, size, fov), target)
    n = R.shape[0]
    per = -(-n // dist.world_size)
    lo, hi = min(n, dist.rank * per), min(n, (dist.rank + 1) * per)
    part = (_iou(_hard_silhouettes(mesh, R[lo:hi], T[lo:hi], size, fov), target).cpu()
            if hi > lo else torch.zeros(0, dtype=R.dtype))
    return torch.cat(dist.gather(part)).to(R.device)


def _merge(dist: DistContext, ids: list[int], n: int, R: torch.Tensor, T: torch.Tensor,
           history: list[list[float]], *columns: list[float]
           ) -> tuple[torch.Tensor, torch.Tensor, list[list[float]], list[list[float]]]:
    """Every rank's share of N poses merged, in order, on every rank.

    Args:
        ids: this rank's rows, in [0, n) (each row is one rank's).
        R: (len(ids), 3, 3) and T: (len(ids), 3) their poses; history: per step, their
            losses; columns: per-row values (lists of len(ids)).

    Returns:
        ``(R (n, 3, 3), T (n, 3), history (per step, n values), [each column, n values])``;
        alone, the arguments as they are.
    """
    if not dist.active:
        return R, T, history, list(columns)
    parts = dist.gather((ids, R.cpu(), T.cpu(), history, columns))
    R_all = torch.zeros((n, 3, 3), dtype=R.dtype)
    T_all = torch.zeros((n, 3), dtype=T.dtype)
    steps = len(history)  # the same on every rank: they stop together
    hist_all = [[0.0] * n for _ in range(steps)]
    cols_all = [[0.0] * n for _ in columns]
    for part_ids, part_R, part_T, part_hist, part_cols in parts:
        if not part_ids:
            continue
        R_all[part_ids], T_all[part_ids] = part_R, part_T
        for step, values in enumerate(part_hist):
            for i, v in zip(part_ids, values, strict=True):
                hist_all[step][i] = v
        for col, values in zip(cols_all, part_cols, strict=True):
            for i, v in zip(part_ids, values, strict=True):
                col[i] = v
    return R_all.to(R.device), T_all.to(T.device), hist_all, cols_all


class _PosePhase:
    """One phase of a pose fit: Adam on N poses at once (Adam is elementwise: each pose
    moves as if alone), one batched soft render per step.

    ``keep_best``: the result is each pose's lowest-loss value (the refinement) rather than
    its last (the search). With no poses (a rank without a share) its steps do nothing.
    """

    def __init__(self, mesh: Meshes, renderer: SoftSilhouetteRenderer, fov: float,
                 target: torch.Tensor, target_rgb: torch.Tensor | None, w_rgb: float,
                 R0: torch.Tensor, T0: torch.Tensor, lr: float, keep_best: bool) -> None:
        self.mesh, self.renderer, self.fov = mesh, renderer, fov
        self.target, self.target_rgb, self.w_rgb = target, target_rgb, w_rgb
        self.poses = _Poses(R0, T0)
        self.opt = torch.optim.Adam(self.poses.params(), lr=lr)
        self.keep_best = keep_best
        self.history: list[list[float]] = []
        self.best_loss = torch.full((R0.shape[0],), math.inf, dtype=R0.dtype, device=R0.device)
        self.best_R, self.best_T = R0.detach().clone(), T0.detach().clone()
        self.R, self.T = self.best_R, self.best_T  # the poses the last step rendered

    def step(self, i: int) -> dict[str, float]:
        if self.R.shape[0] == 0:  # still steps: the ranks agree on stopping after each
            self.history.append([])
            return {"loss": math.inf}
        R, T = self.poses.RT()
        sil, rgb = self.renderer(self.mesh, _cameras(R, T, self.fov))
        losses = _losses(sil, self.target, rgb, self.target_rgb, self.w_rgb)
        self.opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.opt.step()
        self.R, self.T, values = R.detach(), T.detach(), losses.detach()
        better = values < self.best_loss
        self.best_loss = torch.where(better, values, self.best_loss)
        self.best_R[better], self.best_T[better] = self.R[better], self.T[better]
        self.history.append(values.tolist())
        return {"loss": min(self.history[-1])}

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(R (N, 3, 3), T (N, 3))``: each pose's best (refinement) or last value."""
        if self.keep_best or self.R.shape[0] == 0:
            return self.best_R, self.best_T
        with torch.no_grad():
            R, T = self.poses.RT()
        return R.detach(), T.detach()


def _optimise(phase: _PosePhase, steps: int, name: str, ids: list[int],
              callback: Callable[[PoseStep], bool | None] | None,
              bar: tqdm, dist: DistContext) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Run ``steps`` steps of ``phase`` (``ids``: the restart numbers of its poses); the
    ranks of ``dist`` stop at the same step when a callback stops one.

    Returns:
        ``(R (N, 3, 3), T (N, 3), stopped by the callback)``.
    """
    def each_restart(done: int, record: dict[str, float]) -> bool:
        values, stop = phase.history[-1], False
        for i, restart in enumerate(ids):  # every restart hears of every step
            if callback(PoseStep(restart, done - 1, values[i], phase.R[i : i + 1],
                                 phase.T[i : i + 1], name)):
                stop = True
        return stop

    # No checkpoints (seconds of work) and no deferred Ctrl-C: it interrupts at once.
    options = RunOptions(deterministic=False, defer_interrupt=False)
    ran = run(phase.step, steps, options=options, bar=bar,
              callback=None if callback is None else each_restart,
              postfix=lambda record: {"phase": name, "loss": f"{record['loss']:.4f}"},
              dist=dist)
    R, T = phase.result()
    return R, T, ran.stopped is not None


def fit_pose(
    mesh: Meshes,
    target_silhouette: torch.Tensor,
    init_R: torch.Tensor,
    init_T: torch.Tensor,
    target_rgb: torch.Tensor | None = None,
    fov: float = 60.0,
    restarts: int = 16,
    search_steps: int = 60,
    refine_steps: int = 40,
    lr: float = 0.05,
    seed: int = 0,
    callback: Callable[[PoseStep], bool | None] | None = None,
    progress: bool = False,
    search_size: int = 64,
    screen_pool: int = 1024,
    min_sep_deg: float = 20.0,
    search_blur_px: float = 1.0,
    refine_blur_px: float = 0.25,
    faces_per_pixel: int = 50,
    w_rgb: float = 1.0,
    finalists: int = 4,
    settings: FitPoseSettings | None = None,
    dist: DistContext | None = None,
) -> PoseResult:
    """Recover the camera (R, T) from which ``mesh`` looks like the target image.

    Args:
        mesh: one mesh (a constant), e.g. normalised to max |coordinate| 1.
        target_silhouette: (H, W) mask in [0, 1] (not all empty).
        init_R: (1, 3, 3) starting world-to-view rotation; init_T: (1, 3) translation with
            ``T[0, 2] > 0`` (the object's origin in front of the camera). Restart 0 starts
            here; the other restarts keep ``init_T`` with other rotations.
        target_rgb: optional (H, W, 3) colour image on black, lit like
            :func:`render_pose_target` (a point light at the camera); adds ``w_rgb`` times
            the colour MSE to the loss. An untextured mesh is drawn light grey.
        fov: vertical field of view of the camera, degrees.
        restarts: starts optimised together in the search (>= 1).
        search_steps: Adam steps of every restart, at ``search_size``.
        refine_steps: Adam steps of the finalists at the target's resolution.
        lr: Adam learning rate of the search (radians for the rotation; image-plane offset
            and log distance for the translation); the refinement uses ``lr / 4``.
        seed: seeds the random rotations screened for the restarts.
        callback: called with a :class:`PoseStep` for every restart after every step;
            returning True stops the fit (the best pose so far is returned, unrefined if
            stopped in the search).
        progress: show a progress bar.
        search_size: larger side of the images of the search (small is fast and smooth).
        screen_pool: random rotations rendered (hard, at 32 pixels) to choose the restarts.
        min_sep_deg: least angle between two screened restarts (keeps them diverse).
        search_blur_px, refine_blur_px: soft-silhouette blur radius in pixels of each
            phase's images. A wide blur reaches further in the search; a narrow one biases
            the refined pose less (blurred edges make the object look larger, and the fit
            then moves the camera away).
        faces_per_pixel: K of the soft rasterizer. Keep it large for small faces: the K
            nearest faces within the blur must include the ones covering the pixel, or the
            silhouette's interior drops below 1 in speckles and the loss misleads the fit.
        w_rgb: weight of the colour term.
        finalists: restarts (lowest search loss) refined, together; the one with the best
            hard IoU is kept.
        settings: all of ``restarts`` .. ``finalists`` as one :class:`FitPoseSettings`;
            when given, those keyword arguments are not used.
        dist: the process group (:func:`~.distributed.distributed`; None: this process
            alone). Every rank calls ``fit_pose`` with the same arguments; the ranks render
            a share of the screening pool each, optimise a share of the restarts (at least
            one each: ``restarts`` must be at least the world size) and of the finalists,
            and gather the losses and poses: every rank returns the same result, a
            one-process run's up to float rounding (the restarts rendered in smaller
            batches). The callback hears of this rank's restarts only; only rank 0 shows
            the progress bar.

    Returns:
        :class:`PoseResult` (the same on every rank).

    Raises:
        ValueError: naming the bad argument.
    """
    if settings is None:
        settings = FitPoseSettings(
            restarts=restarts, search_steps=search_steps, refine_steps=refine_steps, lr=lr,
            search_size=search_size, screen_pool=screen_pool, min_sep_deg=min_sep_deg,
            search_blur_px=search_blur_px, refine_blur_px=refine_blur_px,
            faces_per_pixel=faces_per_pixel, w_rgb=w_rgb, finalists=finalists)
    elif not isinstance(settings, FitPoseSettings):
        raise ValueError("settings must be a FitPoseSettings")
    return _fit_pose(mesh, target_silhouette, init_R, init_T, target_rgb, fov, seed, callback,
                     progress, settings, dist)


def _fit_pose(
    mesh: Meshes, t: torch.Tensor, init_R: torch.Tensor, init_T: torch.Tensor,
    target_rgb: torch.Tensor | None, fov: float, seed: int,
    callback: Callable[[PoseStep], bool | None] | None, progress: bool,
    settings: FitPoseSettings, dist: DistContext | None = None,
) -> PoseResult:
    """:func:`fit_pose` with its settings in one dataclass."""
    start_time = time.perf_counter()
    _check_mesh(mesh)
    if not torch.is_tensor(t) or t.ndim != 2 or min(t.shape) < 8:
        shape = tuple(t.shape) if torch.is_tensor(t) else type(t).__name__
        raise ValueError(f"target_silhouette must be a (H, W) tensor with H, W >= 8, got {shape}")
    if not torch.isfinite(t).all() or t.min() < 0 or t.max() > 1:
        raise ValueError("target_silhouette must hold values in [0, 1]")
    if not bool((t > 0.5).any()):
        raise ValueError("target_silhouette is empty (no pixel > 0.5): nothing to fit")
    device, dtype = mesh.device, mesh.verts_packed().dtype
    init_R = _check_rotations(init_R, "init_R", 1).to(device, dtype)
    init_T = _check_translation(init_T, "init_T").to(device, dtype)
    if target_rgb is not None:
        if not torch.is_tensor(target_rgb) or tuple(target_rgb.shape) != (*t.shape, 3):
            shape = tuple(target_rgb.shape) if torch.is_tensor(target_rgb) else type(
                target_rgb).__name__
            raise ValueError(f"target_rgb must be a (H, W, 3) tensor matching "
                             f"target_silhouette {tuple(t.shape)}, got {shape}")
        if not torch.isfinite(target_rgb).all():
            raise ValueError("target_rgb holds NaN or inf")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if not (isinstance(fov, int | float) and 0 < fov < 180):
        raise ValueError(f"fov must be in (0, 180) degrees, got {fov!r}")

    s = settings
    restarts, w_rgb = s.restarts, s.w_rgb
    dist = dist if dist is not None else DistContext()
    if restarts < dist.world_size:
        raise ValueError(f"restarts ({restarts}) must be at least the number of processes "
                         f"({dist.world_size}): each optimises at least one")
    with_rgb = target_rgb is not None and w_rgb > 0
    if with_rgb:
        mesh = _grey(mesh)
        target_rgb = target_rgb.to(device, dtype)
    else:
        target_rgb = None
    full = tuple(t.shape)
    target = t.to(device, dtype)
    generator = torch.Generator().manual_seed(seed)
    small = _screen_size(full, s.search_size)
    finalists = min(s.finalists, restarts)
    bar = tqdm(total=s.search_steps + s.refine_steps, desc="fit pose", unit="step",
               disable=not (progress and dist.is_main), dynamic_ncols=True)

    def soft(size: tuple[int, int], blur_px: float) -> SoftSilhouetteRenderer:
        return SoftSilhouetteRenderer(size, blur_px, s.faces_per_pixel, device, with_rgb)

    # 1. screen: choose the starts
    screen = _screen_size(full, 32)
    starts, sources = _starts(mesh, _resize(target[..., None], screen)[..., 0], init_R, init_T,
                              restarts, s.screen_pool, s.min_sep_deg, fov, generator, dist)
    # 2. search: all restarts at once on small images (each rank its share of them)
    mine = list(range(restarts))[dist.rank::dist.world_size]
    search = _PosePhase(mesh, soft(small, s.search_blur_px), fov,
                        _resize(target[..., None], small)[..., 0],
                        None if target_rgb is None else _resize(target_rgb, small), w_rgb,
                        starts[mine], init_T.expand(len(mine), 3), s.lr, keep_best=False)
    R, T, stopped = _optimise(search, s.search_steps, "search", mine, callback, bar, dist)
    ious = _iou(_hard_silhouettes(mesh, R, T, full, fov), target).tolist()
    R, T, search_hist, (ious,) = _merge(dist, mine, restarts, R, T, search.history, ious)
    last = search_hist[-1] if search_hist else [0.0] * restarts
    runs = [{"restart": i, "source": sources[i], "R0": starts[i : i + 1].clone(),
             "T0": init_T.clone(), "R": R[i : i + 1].clone(), "T": T[i : i + 1].clone(),
             "loss": last[i], "iou": ious[i], "refined": False} for i in range(restarts)]
    # 3. refine the finalists (lowest search loss) at full resolution, together (each rank
    # its share: positions ``mine`` in ``keep``)
    keep = sorted(range(restarts), key=lambda i: last[i])[:finalists]
    mine = list(range(len(keep)))[dist.rank::dist.world_size]
    R, T = R[keep][mine], T[keep][mine]
    renderer = soft(full, s.refine_blur_px)
    refine_hist: list[list[float]] = []
    if not stopped and s.refine_steps > 0:
        refine = _PosePhase(mesh, renderer, fov, target, target_rgb, w_rgb, R, T, s.lr / 4,
                            keep_best=True)
        R, T, stopped = _optimise(refine, s.refine_steps, "refine", [keep[j] for j in mine],
                                  callback, bar, dist)
        refine_hist = refine.history
    bar.close()
    # 4. pick by hard IoU at full resolution once refined (it then judges the pose, not the
    # search's blur); unrefined, the search loss ranked them.
    losses: list[float] = []
    ious = []
    if mine:
        with torch.no_grad():
            sil, rgb = renderer(mesh, _cameras(R, T, fov))
            losses = _losses(sil, target, rgb, target_rgb, w_rgb).tolist()
            ious = _iou(_hard_silhouettes(mesh, R, T, full, fov), target).tolist()
    R, T, refine_hist, (losses, ious) = _merge(dist, mine, len(keep), R, T, refine_hist,
                                               losses, ious)
    if refine_hist:
        for j, i in enumerate(keep):
            runs[i].update(R=R[j : j + 1].clone(), T=T[j : j + 1].clone(), loss=losses[j],
                           iou=ious[j], refined=True)
    j = max(range(len(keep)), key=lambda j: (round(ious[j], 4), -losses[j])) if refine_hist else 0
    winner = keep[j]
    history = [h[winner] for h in search_hist] + [h[j] for h in refine_hist]
    return PoseResult(R=R[j : j + 1].clone(), T=T[j : j + 1].clone(), loss=losses[j],
                      iou=ious[j], history=history, restarts=runs, winner=winner,
                      stopped=stopped, seconds=time.perf_counter() - start_time)


# ---------------------------------------------------------------------------------------------
# Evaluation


def evaluate_pose_recovery(
    mesh_path: str | Path,
    seeds: int = 20,
    first_seed: int = 0,
    image_size: int = 128,
    dist: float = 2.7,
    init_dist: float | None = None,
    fov: float = 60.0,
    min_deg: float = 60.0,
    max_deg: float = 120.0,
    success_deg: float = 5.0,
    progress: bool = False,
    fit_options: FitPoseSettings | dict | None = None,
    group: DistContext | None = None,
) -> dict:
    """How often :func:`fit_pose` recovers a random camera from a silhouette.

    Per seed: a camera at ``dist`` with elevation uniform in [-30, 60] and azimuth in
    [0, 360) degrees looks at the normalised mesh; its hard silhouette (``image_size``
    square) is the target; the fit starts from the true rotation turned by a random angle in
    [``min_deg``, ``max_deg``], at distance ``init_dist`` (default ``dist``).

    Args:
        mesh_path: mesh file (loaded with :func:`~diffrend.io.load_mesh`, normalised).
        seeds: number of trials (seeds ``first_seed`` .. ``first_seed + seeds - 1``; each seeds
            both the random camera and the fit).
        image_size: side of the target images.
        dist, fov: the true cameras' distance and field of view (degrees).
        init_dist: the fits' starting distance (None: ``dist``).
        min_deg, max_deg: range of the starting rotation error, degrees.
        success_deg: a fit with rotation error below this succeeds.
        progress: print one line per trial.
        fit_options: the fits' :class:`FitPoseSettings`, or a dict of its fields (the
            keyword arguments of :func:`fit_pose` but ``seed`` and ``fov``, which are the
            trial's), e.g. ``{"restarts": 8}``.
        group: the process group (:func:`~.distributed.distributed`; None: this process
            alone; not named ``dist``, the cameras' distance). Every rank calls with the
            same arguments; each runs every ``world_size``-th trial (one process a trial)
            and every rank returns all the trials' results, the same as one process's but
            for the times. With ``progress`` rank 0 prints its trials' lines as they end,
            the others' after them.

    Returns:
        ``{"success_rate", "median_error_deg", "median_seconds", "errors_deg", "seconds",
        "ious", "dist_errors", "settings"}``: the lists hold per trial the rotation error
        (degrees), the wall time of ``fit_pose`` (the first trial's includes any Numba
        compilation), the final hard IoU and the translation error ``|T - T_true|``;
        ``settings`` the evaluation's and the fits' settings.
    """
    from ..io import load_mesh

    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1, got {seeds!r}")
    settings = _pose_settings(fit_options)
    mesh = normalize_meshes(load_mesh(mesh_path))
    init_dist = dist if init_dist is None else init_dist
    group = group if group is not None else DistContext()
    trials = list(range(first_seed, first_seed + seeds))
    rows: dict[int, tuple[float, float, float, float, str]] = {}
    for seed in trials[group.rank::group.world_size]:
        g = torch.Generator().manual_seed(10_000 + seed)
        elev = -30.0 + 90.0 * float(torch.rand((), generator=g))
        azim = 360.0 * float(torch.rand((), generator=g))
        R_true, T_true = look_at_view_transform(dist, elev, azim)
        target, _ = render_pose_target(mesh, R_true, T_true, image_size, fov)
        init_R = random_rotation_away(R_true, min_deg, max_deg, g)
        init_T = torch.tensor([[0.0, 0.0, init_dist]])
        t0 = time.perf_counter()
        res = _fit_pose(mesh, target, init_R, init_T, None, fov, seed, None, False, settings)
        secs = time.perf_counter() - t0
        error = float(rotation_error_degrees(res.R, R_true)[0])
        line = (f"seed {seed:2d}: elev {elev:5.1f} azim {azim:5.1f} error "
                f"{error:6.2f} deg iou {res.iou:.3f} {secs:.1f} s "
                f"(winner {res.winner}, {res.restarts[res.winner]['source']})")
        rows[seed] = (error, secs, res.iou, float((res.T - T_true).norm()), line)
        if progress and group.is_main:
            print(line, flush=True)
    if group.active:  # every rank gets every trial's row
        mine = set(rows)
        for part in group.gather(rows):
            rows.update(part)
        if progress and group.is_main:
            for seed in trials:
                if seed not in mine:
                    print(rows[seed][4], flush=True)
    errors, seconds, ious, dist_errors = ([rows[seed][k] for seed in trials]
                                          for k in range(4))
    return {
        "success_rate": sum(e < success_deg for e in errors) / seeds,
        "median_error_deg": statistics.median(errors),
        "median_seconds": statistics.median(seconds),
        "errors_deg": [round(e, 3) for e in errors],
        "seconds": [round(s, 2) for s in seconds],
        "ious": [round(i, 4) for i in ious],
        "dist_errors": [round(d, 4) for d in dist_errors],
        "settings": {"seeds": seeds, "first_seed": first_seed, "image_size": image_size,
                     "dist": dist, "init_dist": init_dist, "fov": fov, "min_deg": min_deg,
                     "max_deg": max_deg, "success_deg": success_deg, "fit": asdict(settings)},
    }


def _pose_settings(fit_options: FitPoseSettings | dict | None) -> FitPoseSettings:
    """``fit_options`` of :func:`evaluate_pose_recovery` as a :class:`FitPoseSettings`."""
    if isinstance(fit_options, FitPoseSettings):
        return fit_options
    fit_options = dict(fit_options or {})
    for name in ("seed", "fov"):
        if name in fit_options:
            raise ValueError(f"fit_options: {name} is set per trial, not passed through")
    fields = set(FitPoseSettings.__dataclass_fields__)
    unknown = sorted(set(fit_options) - fields)
    if unknown:
        raise ValueError(f"fit_options: unknown setting(s) {unknown}; known: {sorted(fields)}")
    return FitPoseSettings(**fit_options)
