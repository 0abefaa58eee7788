"""Fit a coloured point cloud to multi-view images (``diffrend fit-points``).

The cloud starts on the surface of the views' visual hull: random points inside every
training silhouette are rendered from each training camera and the front-most point of
every pixel is kept (the hull's surface as the cameras see it). Each step then renders a
random subset of the training views with the points rasterizer and the alpha compositor and
compares

- the colour (RGB over a black background) with the target images, and
- the coverage (the composited alpha) with the target masks;

positions and colours are optimised together by Adam. The points' radius is set in pixels
of the images.

Under torch.distributed (``dist``, see :mod:`.distributed`) the ranks start from rank 0's
cloud, share out each step's views and sum their gradients and losses in one all-reduce, as
:mod:`.fit_mesh` does: the same fit as one process up to float rounding. (The cloud has a
fixed size: there is no densification or pruning for the ranks to agree on.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..io.views import MultiViewData
from ..modules.points import PointsRenderer
from ..raster import PointsRasterizationSettings, PointsRasterizer
from ..render.compositing import AlphaCompositor
from ..structures import Pointclouds
from .distributed import DistContext, check_views_per_rank
from .framing import object_sphere
from .pictures import to_uint8
from .runner import RunOptions, Snapshots, run
from .views import cameras_focus, check_views, snapshot_indices


@dataclass(frozen=True)
class FitPointsSettings:
    """Settings of :func:`fit_points`.

    Attributes:
        n_points: points in the cloud.
        iters: optimisation steps.
        lr_points, lr_colors: Adam learning rates of positions (scene units) and colours.
        views_per_step: training views rendered per step (a random subset).
        radius_px: point radius in pixels of the images.
        points_per_pixel: K of the rasterizer.
        w_silhouette: weight of the coverage term.
        lr_end: both learning rates fall linearly to this fraction of themselves by the
            last step (quiets the jitter of random view subsets at the end).
        hull_samples: random points tried when carving the visual hull.
        snapshot_every: steps between renders kept for the progress animation (None: ~50).
        snapshot_views: how many views the animation shows.
    """

    n_points: int = 20000
    iters: int = 400
    lr_points: float = 2e-3
    lr_colors: float = 3e-2
    views_per_step: int = 4
    radius_px: float = 1.5
    points_per_pixel: int = 8
    w_silhouette: float = 1.0
    lr_end: float = 0.1
    hull_samples: int = 400000
    snapshot_every: int | None = None
    snapshot_views: int = 4

    def __post_init__(self) -> None:
        for name in ("n_points", "iters", "views_per_step", "points_per_pixel",
                     "hull_samples", "snapshot_views"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("lr_points", "lr_colors", "radius_px"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if not (math.isfinite(self.lr_end) and 0 < self.lr_end <= 1):
            raise ValueError(f"lr_end must be in (0, 1], got {self.lr_end}")
        if not (math.isfinite(self.w_silhouette) and self.w_silhouette >= 0):
            raise ValueError(f"w_silhouette must be >= 0, got {self.w_silhouette}")
        if self.snapshot_every is not None and (not isinstance(self.snapshot_every, int)
                                                or self.snapshot_every < 1):
            raise ValueError(f"snapshot_every must be None or an int >= 1, got "
                             f"{self.snapshot_every!r}")


@dataclass
class FitPointsResult:
    """What :func:`fit_points` returns.

    Attributes:
        points: (P, 3) fitted positions; colors: (P, 3) in [0, 1] (no gradients).
        history: per-step losses; frames: ``(step, (V, S, S, 3) uint8)`` renders of the
            snapshot views; snapshot_views: their indices; steps, stopped, seconds: as in
            :class:`~diffrend.jobs.FitMeshResult`.
    """

    points: torch.Tensor
    colors: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    frames: list[tuple[int, np.ndarray]] = field(default_factory=list)
    snapshot_views: list[int] = field(default_factory=list)
    steps: int = 0
    stopped: str | None = None
    seconds: float = 0.0


def radius_ndc(radius_px: float, image_size: int) -> float:
    """A radius of ``radius_px`` pixels in NDC units (the shorter image side spans 2)."""
    return 2.0 * radius_px / image_size


def render_points(points: torch.Tensor, colors: torch.Tensor, cameras, image_size: int,
                  radius: float, points_per_pixel: int = 8) -> torch.Tensor:
    """RGBA renders (N, S, S, 4) of one cloud from N cameras: alpha compositing of
    ``[colors, 1]`` over black (A is the coverage). Differentiable w.r.t. points (P, 3) and
    colors (P, 3)."""
    features = torch.cat([colors, torch.ones_like(colors[:, :1])], 1)
    cloud = Pointclouds(points=[points], features=[features])
    settings = PointsRasterizationSettings(image_size=image_size, radius=radius,
                                           points_per_pixel=points_per_pixel)
    renderer = PointsRenderer(PointsRasterizer(cameras=cameras, raster_settings=settings),
                              AlphaCompositor())
    return renderer(cloud)


@torch.no_grad()
def hull_surface_points(data: MultiViewData, n_points: int, samples: int,
                        generator: torch.Generator) -> torch.Tensor:
    """Up to ``n_points`` (P, 3) points on the surface of the views' visual hull.

    Random points in a cube around the object (then, densely, in the bounding box of
    those kept) are kept when they fall inside every mask; rendering the kept points from
    each camera and keeping the front-most point of each pixel leaves the surface the
    cameras see. Raises ValueError if the masks leave nothing.

    The cube is centred on :func:`.framing.object_sphere`'s centre (the object, also off
    the cameras' optical axes, as in framed views of real data) with half-side three times
    its radius, at most 0.6 times the median camera distance; where the silhouettes cannot
    place the object (parallel rays) it is centred where the optical axes meet
    (:func:`.views.cameras_focus`) with half-side 0.6 times that distance.
    """
    device = data.images.device
    centre, half_side = _search_cube(data)
    half = torch.full((3,), half_side)
    lo, hi = centre.cpu() - half, centre.cpu() + half
    hull = None
    for _ in range(2):  # the second pass samples the first pass's bounding box, densely
        cand = (lo + torch.rand(samples, 3, generator=generator) * (hi - lo)).to(device)
        kept = cand[_inside_all_masks(data, cand)]
        if kept.shape[0] == 0:
            break
        hull = kept
        pad = (kept.amax(0) - kept.amin(0)).cpu() * 0.05
        lo, hi = kept.amin(0).cpu() - pad, kept.amax(0).cpu() + pad
    if hull is None:
        raise ValueError("the masks' visual hull is empty: no point falls inside every mask")
    s = data.masks.shape[1]
    front = torch.zeros(hull.shape[0], dtype=torch.bool, device=device)
    settings = PointsRasterizationSettings(image_size=s, radius=radius_ndc(0.75, s),
                                           points_per_pixel=1)
    cloud = Pointclouds(points=[hull])
    for i in range(data.masks.shape[0]):
        idx = PointsRasterizer(cameras=data.cameras[[i]], raster_settings=settings)(cloud).idx
        front[idx[idx >= 0]] = True
    surface = hull[front]
    pick = torch.randperm(surface.shape[0], generator=generator)[:n_points].to(device)
    return surface[pick]


def _search_cube(data: MultiViewData) -> tuple[torch.Tensor, float]:
    """Centre (3,) and half-side of the cube :func:`hull_surface_points` samples."""
    try:
        centre, radius = object_sphere(data)
    except ValueError:
        centre, dist = cameras_focus(data.cameras)
        return centre, dist * 0.6  # a 60 degree field of view sees about this far
    centre = centre.float()
    dist = float((data.cameras.get_camera_center().detach().float() - centre)
                 .norm(dim=1).median())
    # 3 radii: the radius is a median over views, so an elongated object can reach past it.
    return centre, min(3.0 * radius, 0.6 * dist)


def _inside_all_masks(data: MultiViewData, points: torch.Tensor) -> torch.Tensor:
    """(P,) bool: the point projects inside every view's mask (and in front of it)."""
    s = data.masks.shape[1]
    keep = torch.ones(points.shape[0], dtype=torch.bool, device=points.device)
    for i in range(data.masks.shape[0]):
        ndc = _project(data.cameras[[i]], points)
        inside = (ndc[:, 2] > 0) & (ndc[:, :2].abs() < 1).all(1)
        # NDC +x is the image's left, +y its top
        col = ((1 - ndc[:, 0]) * s / 2).long().clamp(0, s - 1)
        row = ((1 - ndc[:, 1]) * s / 2).long().clamp(0, s - 1)
        keep &= inside & (data.masks[i][row, col] > 0.5)
    return keep


def _project(cameras, points: torch.Tensor) -> torch.Tensor:
    """(P, 3) NDC x, y and view depth z of world points seen by one camera."""
    view = cameras.get_world_to_view_transform().transform_points(points[None])
    to_ndc = cameras.get_projection_transform()
    if not cameras.in_ndc():
        to_ndc = to_ndc.compose(cameras.get_ndc_camera_transform())
    ndc = to_ndc.transform_points(view)
    return torch.cat([ndc[0, :, :2], view[0, :, 2:3]], 1)


class _PointsFit:
    """The state of a point cloud fit at a step boundary, and its step."""

    def __init__(self, data: MultiViewData, settings: FitPointsSettings, seed: int,
                 dist: DistContext) -> None:
        self.data, self.settings, self.dist = data, settings, dist
        self.radius = radius_ndc(settings.radius_px, data.masks.shape[1])
        self.generator = torch.Generator().manual_seed(seed)
        points = hull_surface_points(data, settings.n_points, settings.hull_samples,
                                     self.generator)
        if dist.active:
            # Rank 0's start and generator state: ranks whose thread counts (or machines)
            # differ could carve a different hull, and the steps must start in agreement.
            start = dist.broadcast((points.cpu(), self.generator.get_state()))
            points = start[0].to(points.device)
            self.generator.set_state(start[1])
        self.points = points.requires_grad_(True)
        self.colors = torch.full_like(self.points, 0.5).requires_grad_(True)
        self.opt = self._optimizer()

    def _optimizer(self) -> torch.optim.Adam:
        return torch.optim.Adam([{"params": [self.points], "lr": self.settings.lr_points},
                                 {"params": [self.colors], "lr": self.settings.lr_colors}])

    def state_dict(self) -> dict:
        return {"points": self.points.detach().cpu(), "colors": self.colors.detach().cpu(),
                "optimizer": self.opt.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        device = self.points.device
        with torch.no_grad():
            self.points.data = state["points"].to(device)
            self.colors.data = state["colors"].to(device)
        self.opt = self._optimizer()
        self.opt.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])

    def render(self, cameras) -> torch.Tensor:
        return render_points(self.points, self.colors, cameras, self.data.masks.shape[1],
                             self.radius, self.settings.points_per_pixel)

    def step(self, i: int) -> dict[str, float]:
        data, settings, dist = self.data, self.settings, self.dist
        # Every rank draws the same views (same generator); each renders its share of them.
        picked = torch.randperm(data.masks.shape[0],
                                generator=self.generator)[: settings.views_per_step]
        idx = picked[dist.rank::dist.world_size]
        sel = idx.to(data.images.device)
        rgba = self.render(data.cameras[idx.tolist()])
        rgb_err = (rgba[..., :3] - data.images[sel]) ** 2
        sil_err = (rgba[..., 3] - data.masks[sel]) ** 2
        if dist.world_size == 1:  # (as before distributed runs existed, to the bit)
            rgb_loss, sil_loss = rgb_err.mean(), sil_err.mean()
        else:  # sums over this rank's pixels over the pixel count of ALL the step's views:
            # the ranks' terms (and gradients) add up to the one-process means
            pixels = picked.numel() * sil_err.shape[1] * sil_err.shape[2]
            rgb_loss, sil_loss = rgb_err.sum() / (3 * pixels), sil_err.sum() / pixels
        loss = rgb_loss + settings.w_silhouette * sil_loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        # One all-reduce per step: the gradients and the loss terms.
        values = torch.stack([v.detach().to(torch.float64) for v in (loss, rgb_loss, sil_loss)])
        if dist.active:
            for p in (self.points, self.colors):
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            dist.sum_tensors_([self.points.grad, self.colors.grad, values])
        frac = 1.0 - (1.0 - settings.lr_end) * i / max(1, settings.iters - 1)
        for group, lr in zip(self.opt.param_groups, (settings.lr_points, settings.lr_colors),
                             strict=True):
            group["lr"] = lr * frac
        self.opt.step()
        with torch.no_grad():
            self.colors.clamp_(0.0, 1.0)
        total, rgb, sil = values.tolist()
        return {"loss": total, "rgb": rgb, "silhouette": sil}

    @torch.no_grad()
    def snapshot(self, views: list[int]) -> np.ndarray:
        return to_uint8(self.render(self.data.cameras[views])[..., :3])


def fit_points(
    data: MultiViewData,
    settings: FitPointsSettings | None = None,
    seed: int = 0,
    callback: Callable[[int, dict[str, float]], bool | None] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    resume: bool = False,
    progress: bool = True,
    dist: DistContext | None = None,
) -> FitPointsResult:
    """Fit point positions and colours to views.

    Args:
        data: N views: images (N, S, S, 3) on black, masks (N, S, S), cameras.
        settings: see :class:`FitPointsSettings`.
        seed: seeds the hull sampling and the random view subsets.
        callback: called after every step with ``(step, losses)``; returning True stops.
        checkpoint, checkpoint_every, resume: as in :func:`~diffrend.jobs.fit_mesh` (a
            resumed run ends where an uninterrupted one does).
        progress: show a progress bar with the live loss.
        dist: the process group (:func:`~.distributed.distributed`; None: this process
            alone). Every rank calls ``fit_points`` with the same arguments and starts from
            rank 0's hull cloud; each step's views are shared out among the ranks (so
            ``settings.views_per_step`` and the number of views must be at least the world
            size) and their gradients and losses summed in one all-reduce: every rank holds
            the same cloud, a one-process run's up to float rounding (the order of the
            sums). Only rank 0 shows the progress bar, renders the snapshots and writes the
            checkpoint; every rank reads it on resume (also one written by another number
            of ranks).

    Returns:
        :class:`FitPointsResult` (on every rank; ``frames`` only on rank 0); Ctrl-C stops
        at the end of a step (``stopped="interrupted"``) with the cloud so far.

    Raises:
        ValueError: empty masks or hull, non-square views, bad settings,
            ``settings.views_per_step`` or the number of views below the world size, a
            checkpoint of another run.
    """
    settings = settings if settings is not None else FitPointsSettings()
    if not isinstance(settings, FitPointsSettings):
        raise ValueError("settings must be a FitPointsSettings")
    n_views, _ = check_views(data)
    dist = dist if dist is not None else DistContext()
    check_views_per_rank(settings.views_per_step, n_views, dist)
    options = RunOptions(checkpoint, checkpoint_every, resume, progress and dist.is_main)
    snap_idx = snapshot_indices(n_views, settings.snapshot_views)
    signature = {"job": "fit_points", "settings": asdict(settings), "seed": seed,
                 "views": tuple(data.images.shape),
                 "masks_sum": round(float(data.masks.double().sum()), 3)}
    job = _PointsFit(data, settings, seed, dist)
    snaps = Snapshots(settings.snapshot_every or max(1, settings.iters // 50),
                      lambda: job.snapshot(snap_idx))
    ran = run(job.step, settings.iters, state=job, signature=signature, options=options,
              desc="fit points", callback=callback, snapshots=snaps, dist=dist)
    return FitPointsResult(points=job.points.detach(), colors=job.colors.detach(),
                           history=ran.history, frames=ran.frames, snapshot_views=snap_idx,
                           steps=ran.steps, stopped=ran.stopped, seconds=ran.seconds)
