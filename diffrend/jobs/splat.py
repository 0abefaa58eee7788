"""Fit 3D Gaussians to multi-view images (``diffrend splat``): 3D Gaussian splatting
(Kerbl et al. 2023) with gsplat's conventions and default strategy, on diffrend's
rasterizer (:func:`diffrend.splat.rasterization`).

The Gaussians start at given points (samples of a mesh's surface, a COLMAP model's points,
or the visual hull's surface), isotropic, as large as the mean distance to their three
nearest neighbours, 10% opaque. Each step renders ``views_per_step`` random training views
(one by default) and compares them with the targets by ``(1 - ssim_lambda) * L1 +
ssim_lambda * (1 - SSIM)``, averaged over the views; Adam moves every
parameter with its own learning rate (positions scaled by the scene's size and decaying
exponentially). Between ``refine_start`` and ``refine_stop`` the density is adapted every
``refine_every`` steps (:mod:`.densify`); spherical-harmonic bands are switched on one by one.

Under torch.distributed (``dist``, see :mod:`.distributed`) the ranks share out each step's
views and sum, in one all-reduce, the gradients, the losses and the densification
statistics (each Gaussian's screen-space gradient sum and view count): every rank then
takes the same densify/prune/reset decisions (their randomness comes from the job's
generator, which every rank seeds alike and draws from alike) and holds the same Gaussians.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..cameras import viewmats_and_intrinsics
from ..io.views import MultiViewData
from ..losses import ssim
from ..ops import knn_points
from ..splat import rasterization
from ..splat.sh import SH_C0  # the degree-0 basis: colour = SH_C0 * sh0 + 0.5
from .densify import PARAM_NAMES, densify_and_prune, reset_opacities
from .distributed import DistContext, check_views_per_rank
from .pictures import to_uint8
from .runner import RunOptions, Snapshots, run
from .views import snapshot_indices


@dataclass(frozen=True)
class FitSplatSettings:
    """Settings of :func:`fit_splat` (gsplat's defaults, scaled to a short run).

    Attributes:
        iters: optimisation steps.
        views_per_step: training views rendered per step (distinct, drawn at random; the
            loss is their mean and each view adds to the densification statistics, as
            gsplat's batches do). With several processes they are shared out among them.
        sh_degree: the highest spherical-harmonic degree (0-3).
        sh_degree_every: steps between switching on the next SH band.
        init_opacity: opacity of the starting Gaussians.
        lr_means: learning rate of the positions, times the scene scale; it decays
            exponentially to ``lr_means_end`` times itself by the last step.
        lr_scales, lr_quats, lr_opacities, lr_sh0, lr_shN: the other learning rates (log
            scales, quaternions, opacity logits, SH coefficients).
        ssim_lambda: weight of the D-SSIM term.
        refine_start, refine_stop, refine_every: when the density is adapted.
        reset_every: steps between opacity resets (0: never).
        grow_grad2d, grow_scale3d, prune_opacity, prune_scale3d: see
            :func:`.densify.densify_and_prune`.
        max_gaussians: growth stops at this many Gaussians.
        tile_size: the rasterizer's tile side in pixels.
        snapshot_every: steps between the renders of the progress animation (None: ~50).
        snapshot_views: how many training views the animation shows.
    """

    iters: int = 3000
    views_per_step: int = 1
    sh_degree: int = 3
    sh_degree_every: int = 500
    init_opacity: float = 0.1
    lr_means: float = 1.6e-4
    lr_means_end: float = 0.01
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 2.5e-3
    lr_shN: float = 2.5e-3 / 20
    ssim_lambda: float = 0.2
    refine_start: int = 300
    refine_stop: int = 2000
    refine_every: int = 100
    reset_every: int = 0
    grow_grad2d: float = 2e-4
    grow_scale3d: float = 0.01
    prune_opacity: float = 0.005
    prune_scale3d: float = 0.1
    max_gaussians: int = 300_000
    tile_size: int = 16
    snapshot_every: int | None = None
    snapshot_views: int = 4

    def __post_init__(self) -> None:
        for name in ("iters", "views_per_step", "sh_degree_every", "refine_every",
                     "max_gaussians", "tile_size", "snapshot_views"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("refine_start", "refine_stop", "reset_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if self.sh_degree not in (0, 1, 2, 3):
            raise ValueError(f"sh_degree must be 0, 1, 2 or 3, got {self.sh_degree!r}")
        for name in ("lr_means", "lr_scales", "lr_quats", "lr_opacities", "lr_sh0", "lr_shN",
                     "grow_grad2d", "grow_scale3d", "prune_scale3d"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        for name in ("init_opacity", "lr_means_end", "prune_opacity"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < 1):
                raise ValueError(f"{name} must be in (0, 1), got {value!r}")
        if not (isinstance(self.ssim_lambda, int | float) and 0 <= self.ssim_lambda <= 1):
            raise ValueError(f"ssim_lambda must be in [0, 1], got {self.ssim_lambda!r}")
        if self.snapshot_every is not None and (not isinstance(self.snapshot_every, int)
                                                or self.snapshot_every < 1):
            raise ValueError(f"snapshot_every must be None or an int >= 1, got "
                             f"{self.snapshot_every!r}")

    def scaled(self, iters: int) -> FitSplatSettings:
        """The same settings for a run of ``iters`` steps: the SH and refinement schedule
        stretched or shrunk in proportion (refining at most every ``refine_every`` steps)."""
        scale = iters / self.iters
        return replace(
            self, iters=iters, sh_degree_every=max(1, round(self.sh_degree_every * scale)),
            refine_start=round(self.refine_start * scale),
            refine_stop=round(self.refine_stop * scale),
            refine_every=max(1, round(self.refine_every * min(1.0, scale))))


@dataclass
class FitSplatResult:
    """What :func:`fit_splat` returns.

    Attributes:
        means: (N, 3) centres of the fitted Gaussians (no gradients, like the rest).
        quats: (N, 4) unit wxyz rotations.
        scales: (N, 3) linear scales.
        opacities: (N,) in [0, 1].
        sh: (N, K, 3) SH coefficients, K = (sh_degree + 1)^2.
        history: per-step losses (and the Gaussian count).
        frames, snapshot_views, steps, stopped, seconds: as :class:`~diffrend.jobs.FitMeshResult`.
        refinements: per refinement, the step and the cloned/split/pruned counts.
    """

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    sh: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    frames: list[tuple[int, np.ndarray]] = field(default_factory=list)
    snapshot_views: list[int] = field(default_factory=list)
    steps: int = 0
    stopped: str | None = None
    seconds: float = 0.0
    refinements: list[dict[str, int]] = field(default_factory=list)


def scene_scale(cameras) -> float:
    """1.1 times the largest distance of a camera centre from their mean (gsplat's)."""
    centres = cameras.get_camera_center().detach().double()
    return 1.1 * float((centres - centres.mean(0)).norm(dim=1).max().clamp(min=1e-6))


def initial_gaussians(points: torch.Tensor, colors: torch.Tensor | None, sh_degree: int,
                      init_opacity: float) -> dict[str, torch.Tensor]:
    """Starting parameters (see :mod:`.densify`) at ``points`` (P, 3): isotropic, the scale
    the mean distance to the three nearest neighbours, identity rotations, the colours
    (P, 3) in [0, 1] (grey without them) as the SH DC term, no higher bands.

    Raises:
        ValueError: fewer than 2 points, or NaN/inf points.
    """
    if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] < 2:
        raise ValueError(f"points must have shape (P, 3) with P >= 2, got "
                         f"{tuple(points.shape)}")
    if not torch.isfinite(points).all():
        raise ValueError("points hold NaN or inf")
    p = points.detach().float()
    k = min(4, p.shape[0])
    d2 = knn_points(p[None], p[None], K=k).dists[0, :, 1:]  # (the first is the point)
    dist = d2.clamp(min=1e-12).sqrt().mean(-1).clamp(min=1e-7)
    n = p.shape[0]
    rgb = colors.detach().float().clamp(0, 1) if colors is not None else torch.full_like(p, 0.5)
    quats = torch.zeros(n, 4, device=p.device)
    quats[:, 0] = 1.0
    return {
        "means": p.clone(),
        "scales": dist.log()[:, None].repeat(1, 3),
        "quats": quats,
        "opacities": torch.full((n,), math.log(init_opacity / (1 - init_opacity)),
                                device=p.device),
        "sh0": ((rgb - 0.5) / SH_C0)[:, None, :],
        "shN": torch.zeros(n, (sh_degree + 1) ** 2 - 1, 3, device=p.device),
    }


def render_gaussians(params: dict[str, torch.Tensor], viewmats: torch.Tensor,
                     Ks: torch.Tensor, width: int, height: int, sh_degree: int,
                     tile_size: int = 16) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Render the Gaussians (parameters as in :mod:`.densify`) from C cameras
    (``viewmats`` (C, 4, 4), ``Ks`` (C, 3, 3)) over black: ``(rgb (C, H, W, 3),
    alpha (C, H, W, 1), meta)``, differentiable w.r.t. every parameter; SH bands above
    ``sh_degree`` are ignored."""
    sh = torch.cat([params["sh0"], params["shN"]], 1)
    return rasterization(
        params["means"], params["quats"], params["scales"].exp(),
        torch.sigmoid(params["opacities"]), sh, viewmats, Ks, width, height,
        sh_degree=sh_degree, tile_size=tile_size)


class _SplatFit:
    """The state of a Gaussian fit at a step boundary, and its step."""

    def __init__(self, data: MultiViewData, points: torch.Tensor, colors: torch.Tensor | None,
                 settings: FitSplatSettings, seed: int, dist: DistContext) -> None:
        self.data, self.settings, self.dist = data, settings, dist
        self.height, self.width = data.images.shape[1:3]
        self.viewmats, self.Ks = viewmats_and_intrinsics(data.cameras, self.height, self.width)
        self.viewmats, self.Ks = self.viewmats.detach(), self.Ks.detach()
        self.scene_scale = scene_scale(data.cameras)
        self.generator = torch.Generator().manual_seed(seed)
        self.params = initial_gaussians(points.to(data.images.device), colors,
                                        settings.sh_degree, settings.init_opacity)
        self.opt = self._optimizer()
        self._reset_stats()
        self.refinements: list[dict[str, int]] = []

    def _optimizer(self) -> torch.optim.Adam:
        s = self.settings
        lrs = {"means": s.lr_means * self.scene_scale, "scales": s.lr_scales,
               "quats": s.lr_quats, "opacities": s.lr_opacities, "sh0": s.lr_sh0,
               "shN": s.lr_shN}
        for k in PARAM_NAMES:
            self.params[k] = self.params[k].detach().requires_grad_(True)
        # eps 1e-15 as 3DGS: the SH and opacity gradients are tiny
        return torch.optim.Adam([{"params": [self.params[k]], "lr": lrs[k], "name": k}
                                 for k in PARAM_NAMES], eps=1e-15)

    def _reset_stats(self) -> None:
        n = self.params["means"].shape[0]
        self.grad2d = torch.zeros(n, device=self.params["means"].device)
        self.count = torch.zeros(n, device=self.params["means"].device)

    def state_dict(self) -> dict:
        return {"params": {k: v.detach().cpu() for k, v in self.params.items()},
                "optimizer": self.opt.state_dict(), "generator": self.generator.get_state(),
                "grad2d": self.grad2d.cpu(), "count": self.count.cpu(),
                "refinements": list(self.refinements)}

    def load_state_dict(self, state: dict) -> None:
        device = self.data.images.device
        self.params = {k: v.to(device) for k, v in state["params"].items()}
        self.opt = self._optimizer()
        self.opt.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.grad2d, self.count = state["grad2d"].to(device), state["count"].to(device)
        self.refinements = list(state["refinements"])

    def degree(self, step: int) -> int:
        return min(self.settings.sh_degree, step // self.settings.sh_degree_every)

    def _pick_views(self) -> torch.Tensor:
        """The step's training views, (views_per_step,) int64, the same on every rank (the
        same generator, drawn alike)."""
        n_views, k = len(self.data.images), self.settings.views_per_step
        if k == 1:  # one draw, as before views_per_step existed (the same runs)
            return torch.randint(n_views, (1,), generator=self.generator)
        return torch.randperm(n_views, generator=self.generator)[:k]

    def step(self, i: int) -> dict[str, float]:
        s, data, dist = self.settings, self.data, self.dist
        picked = self._pick_views()
        k = picked.numel()
        mine = picked[dist.rank::dist.world_size].tolist()  # this rank's share (>= 1 view)
        # This rank's share of the mean over the step's views: the ranks' terms (and their
        # gradients) add up to it (times 1.0 alone: the one-process sums are unchanged).
        share = len(mine) / k
        rgb, _alpha, meta = render_gaussians(
            self.params, self.viewmats[mine], self.Ks[mine], self.width, self.height,
            self.degree(i), s.tile_size)
        means2d = meta["means2d"]
        means2d.retain_grad()
        target = data.images[mine]
        l1 = (rgb - target).abs().mean() * share
        d_ssim = (1.0 - ssim(rgb, target)) * share
        loss = (1.0 - s.ssim_lambda) * l1 + s.ssim_lambda * d_ssim
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        # means lr: exponential decay from lr_means to lr_means * lr_means_end
        frac = i / max(1, s.iters - 1)
        self.opt.param_groups[0]["lr"] = (s.lr_means * self.scene_scale
                                          * s.lr_means_end ** frac)
        params = [self.params[name] for name in PARAM_NAMES]
        if dist.active:  # (every parameter reaches the render: a grad is there anyway)
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
        shared = [p.grad for p in params if p.grad is not None]
        stats = i < s.refine_stop
        if stats:
            grad2d, count = self._step_stats(means2d, meta["radii"], k)
            shared += [grad2d, count]
        # the losses as float32 (their dtype): a float64 value would double the buffer
        values = torch.stack([loss.detach(), l1.detach(), d_ssim.detach()]).float()
        shared.append(values)
        # One all-reduce per step: gradients, densification statistics and losses.
        dist.sum_tensors_(shared)
        if stats:
            self.grad2d += grad2d
            self.count += count
        self.opt.step()
        step = i + 1
        if s.refine_start < step < s.refine_stop and step % s.refine_every == 0:
            after_reset = s.reset_every > 0 and step > s.reset_every
            counts = densify_and_prune(
                self.params, self.opt, self.grad2d, self.count, self.scene_scale,
                s.grow_grad2d, s.grow_scale3d, s.prune_opacity,
                s.prune_scale3d if after_reset else None, s.max_gaussians, self.generator)
            self.refinements.append({"step": step, **counts})
            self._reset_stats()
        if s.reset_every > 0 and step % s.reset_every == 0 and step < s.refine_stop:
            reset_opacities(self.params, self.opt, 2 * s.prune_opacity)
        loss_v, l1_v, d_ssim_v = values.tolist()
        return {"loss": loss_v, "l1": l1_v, "dssim": d_ssim_v,
                "gaussians": float(self.params["means"].shape[0])}

    @torch.no_grad()
    def _step_stats(self, means2d: torch.Tensor, radii: torch.Tensor, k: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's part of the step's densification statistics: per Gaussian, (N,) the
        summed norms of its 2D means' gradients over the rendered views that see it, and
        (N,) how many of them see it.

        Args:
            means2d: (C, N, 2) the rendered views' 2D means (their ``.grad`` after backward).
            radii: (C, N, 2) their pixel radii (0: not seen).
            k: the step's view count over all ranks.
        """
        n = self.params["means"].shape[0]
        zeros = torch.zeros(n, device=self.grad2d.device, dtype=self.grad2d.dtype)
        if means2d.grad is None:
            return zeros, zeros.clone()
        # gsplat's normalisation: pixels / (half the image), times the step's view count
        # (the loss is the views' mean; gsplat scales by its batch size alike)
        g = means2d.grad * torch.tensor([self.width / 2 * k, self.height / 2 * k],
                                        device=means2d.device)
        seen = (radii > 0).reshape(*g.shape[:2], -1).any(-1)  # (C, N)
        grad2d = torch.where(seen, g.norm(dim=-1), torch.zeros_like(g[..., 0])).sum(0)
        return grad2d.to(zeros.dtype), seen.sum(0).to(zeros.dtype)

    @torch.no_grad()
    def render(self, views: list[int], degree: int | None = None) -> torch.Tensor:
        """(V, H, W, 3) renders of training views ``views``."""
        deg = self.settings.sh_degree if degree is None else degree
        return render_gaussians(self.params, self.viewmats[views], self.Ks[views],
                                self.width, self.height, deg, self.settings.tile_size)[0]

    def snapshot(self, views: list[int]) -> np.ndarray:
        return to_uint8(self.render(views).clamp(0, 1))


def fit_splat(
    data: MultiViewData,
    points: torch.Tensor,
    colors: torch.Tensor | None = None,
    settings: FitSplatSettings | None = None,
    seed: int = 0,
    callback: Callable[[int, dict[str, float]], bool | None] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    progress: bool = True,
    dist: DistContext | None = None,
) -> FitSplatResult:
    """Fit 3D Gaussians to views.

    Args:
        data: N views: images (N, H, W, 3) on black, cameras (FoVPerspectiveCameras or
            PerspectiveCameras); the masks are not used.
        points: (P, 3) starting positions, P >= 2; colors: (P, 3) in [0, 1] or None.
        settings: see :class:`FitSplatSettings`.
        seed: seeds the view order and the splits.
        callback: called after every step with ``(step, losses)``; returning True stops.
        checkpoint, checkpoint_every, resume: as :func:`~diffrend.jobs.fit_mesh` (a resumed
            run ends where an uninterrupted one does, bit for bit on the CPU).
        progress: show a progress bar with the live loss.
        dist: the process group (:func:`~.distributed.distributed`; None: this process
            alone). Every rank calls ``fit_splat`` with the same arguments; each step's
            views are shared out among the ranks (``settings.views_per_step`` must be at
            least the world size) and one all-reduce sums the gradients, losses and
            densification statistics, so every rank densifies alike and holds the same
            Gaussians: a one-process run's with the same ``views_per_step`` up to float
            rounding (the order of the sums). Adam (eps 1e-15, as 3DGS) amplifies that
            rounding where a gradient is only rounding noise (the rotations of isotropic
            Gaussians), so long runs agree in quality rather than Gaussian by Gaussian.
            Only rank 0 shows the progress bar, renders the snapshots and writes the
            checkpoint; every rank reads it on resume (on any number of ranks).

    Returns:
        :class:`FitSplatResult` (on every rank; ``frames`` only on rank 0); Ctrl-C stops
        at the end of a step (``stopped="interrupted"``) with the Gaussians so far.

    Raises:
        ValueError: bad views, points or settings (``views_per_step`` above the training
            views or below the world size), a checkpoint of another run.
    """
    settings = settings if settings is not None else FitSplatSettings()
    if not isinstance(settings, FitSplatSettings):
        raise ValueError("settings must be a FitSplatSettings")
    if not isinstance(data, MultiViewData):
        raise ValueError("data must be a MultiViewData (see diffrend.io.load_views)")
    if not torch.isfinite(data.images).all():
        raise ValueError("data.images hold NaN or inf")
    n_views = data.images.shape[0]
    if colors is not None and colors.shape != points.shape:
        raise ValueError(f"colors must have the shape of points {tuple(points.shape)}, got "
                         f"{tuple(colors.shape)}")
    if settings.views_per_step > n_views:
        raise ValueError(f"settings.views_per_step ({settings.views_per_step}) must be at "
                         f"most the number of training views ({n_views})")
    dist = dist if dist is not None else DistContext()
    check_views_per_rank(settings.views_per_step, n_views, dist)
    options = RunOptions(checkpoint, checkpoint_every, resume, progress and dist.is_main)
    snap_idx = snapshot_indices(n_views, settings.snapshot_views)
    signature = {"job": "fit_splat", "settings": asdict(settings), "seed": seed,
                 "views": tuple(data.images.shape),
                 "images_sum": round(float(data.images.double().sum()), 3),
                 "points": tuple(points.shape),
                 "points_sum": round(float(points.double().sum()), 4)}
    job = _SplatFit(data, points, colors, settings, seed, dist)
    snaps = Snapshots(settings.snapshot_every or max(1, settings.iters // 50),
                      lambda: job.snapshot(snap_idx))
    ran = run(job.step, settings.iters, state=job, signature=signature, options=options,
              desc="splat", callback=callback, snapshots=snaps, dist=dist)
    p = job.params
    quats = p["quats"].detach()
    return FitSplatResult(
        means=p["means"].detach(), quats=quats / quats.norm(dim=-1, keepdim=True),
        scales=p["scales"].detach().exp(), opacities=torch.sigmoid(p["opacities"].detach()),
        sh=torch.cat([p["sh0"], p["shN"]], 1).detach(), history=ran.history,
        frames=ran.frames, snapshot_views=snap_idx, steps=ran.steps, stopped=ran.stopped,
        seconds=ran.seconds, refinements=list(job.refinements))
