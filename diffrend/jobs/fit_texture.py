"""Recover a UV texture map for a known mesh from views of it (``diffrend texture``).

The mesh and its UVs are fixed; only the texels change. Each step renders a random subset of
the views with a hard rasterizer (the geometry is known, so there is no silhouette to move)
and compares colours inside the target masks. The texture is a pyramid of images at halving
resolutions (see :mod:`.pyramid`: bilinear sampling reaches only the texels next to each
sample; the coarse levels fill in the rest).

Under torch.distributed (``dist``, see :mod:`.distributed`) the ranks share out each step's
views and sum their gradients and loss in one all-reduce, as :mod:`.fit_mesh` does: the same
fit as one process up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..io.views import MultiViewData
from ..shading import TexturesUV
from ..structures import Meshes
from .distributed import DistContext, check_views_per_rank
from .pictures import to_uint8
from .pyramid import grey_pyramid, pyramid_texture
from .runner import RunOptions, Snapshots, run
from .views import check_views, render_hard, render_mesh_views, snapshot_indices


@dataclass(frozen=True)
class FitTextureSettings:
    """Settings of :func:`fit_texture`.

    Attributes:
        texture_size: side of the square texture map to recover.
        iters: optimisation steps.
        lr: Adam learning rate of the pyramid levels.
        levels: pyramid levels (1: plain texels).
        views_per_step: views rendered per step (a random subset).
        lit: the views are lit by headlights (rendered targets); False: unlit, the texture is
            then the colour seen (albedo times the unknown lighting).
        snapshot_every: steps between renders kept for the progress animation (None: ~50).
        snapshot_views: how many views the animation shows.
    """

    texture_size: int = 512
    iters: int = 300
    lr: float = 0.03
    levels: int = 5
    views_per_step: int = 5
    lit: bool = True
    snapshot_every: int | None = None
    snapshot_views: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.texture_size, int) or not 4 <= self.texture_size <= 8192:
            raise ValueError(f"texture_size must be an int in [4, 8192], got "
                             f"{self.texture_size!r}")
        for name in ("iters", "levels", "views_per_step", "snapshot_views"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.snapshot_every is not None and (not isinstance(self.snapshot_every, int)
                                                or self.snapshot_every < 1):
            raise ValueError(f"snapshot_every must be None or an int >= 1, got "
                             f"{self.snapshot_every!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.texture_size >> (self.levels - 1) < 1:
            raise ValueError(f"levels={self.levels} halves texture_size={self.texture_size} "
                             "below one texel")


@dataclass
class FitTextureResult:
    """What :func:`fit_texture` returns.

    Attributes:
        texture: (T, T, 3) recovered texture map in [0, 1] (no gradients).
        mesh: the input mesh with this texture (``TexturesUV``).
        observed: (T, T) bool, texels that some view's pixels sampled (the rest is filled
            in by the coarse pyramid levels only).
        history, frames, snapshot_views, steps, stopped, seconds: as in
            :class:`~diffrend.jobs.FitMeshResult`.
    """

    texture: torch.Tensor
    mesh: Meshes
    observed: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    frames: list[tuple[int, np.ndarray]] = field(default_factory=list)
    snapshot_views: list[int] = field(default_factory=list)
    steps: int = 0
    stopped: str | None = None
    seconds: float = 0.0


def _uvs(mesh: Meshes) -> tuple[torch.Tensor, torch.Tensor]:
    tex = mesh.textures
    if not isinstance(tex, TexturesUV):
        raise ValueError("mesh must carry TexturesUV (its verts_uvs and faces_uvs give the "
                         "texture layout); load it with diffrend.io.load_objs_as_meshes")
    return tex.verts_uvs_list()[0], tex.faces_uvs_list()[0]


def _with_texture(mesh: Meshes, texture: torch.Tensor, uvs: tuple) -> Meshes:
    return Meshes(mesh.verts_list(), mesh.faces_list(),
                  textures=TexturesUV([texture], [uvs[1]], [uvs[0]]))


class _TextureFit:
    """The state of a texture fit at a step boundary, and its step."""

    def __init__(self, data: MultiViewData, mesh: Meshes, uvs: tuple,
                 settings: FitTextureSettings, seed: int, dist: DistContext) -> None:
        self.data, self.mesh, self.uvs, self.settings = data, mesh, uvs, settings
        self.dist = dist
        device = data.images.device
        self.size = settings.texture_size
        self.generator = torch.Generator().manual_seed(seed)
        self.levels = [lv.requires_grad_(True)
                       for lv in grey_pyramid(self.size, settings.levels, device)]
        self.opt = torch.optim.Adam(self.levels, lr=settings.lr)
        self.observed = torch.zeros(self.size, self.size, dtype=torch.bool, device=device)

    def state_dict(self) -> dict:
        return {"levels": [lv.detach().cpu() for lv in self.levels],
                "optimizer": self.opt.state_dict(), "generator": self.generator.get_state(),
                "observed": self.observed.cpu()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for lv, saved in zip(self.levels, state["levels"], strict=True):
                lv.copy_(saved)
        self.opt.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.observed = state["observed"].to(self.observed.device)

    def textured(self) -> Meshes:
        return _with_texture(self.mesh, pyramid_texture(self.levels, self.size), self.uvs)

    def step(self, i: int) -> dict[str, float]:
        data, n_views = self.data, self.data.masks.shape[0]
        # Every rank draws the same views (same generator); each renders its share of them.
        picked = torch.randperm(n_views, generator=self.generator)[: self.settings.views_per_step]
        idx = picked[self.dist.rank::self.dist.world_size]
        cams = data.cameras[idx.tolist()]
        rgba = render_hard(self.textured(), cams, data.masks.shape[1], self.settings.lit)[0]
        sel = idx.to(data.images.device)
        mask = data.masks[sel][..., None]
        err = ((rgba[..., :3] - data.images[sel]) ** 2 * mask).sum()
        # This rank's error over the masked pixels of ALL the step's views: the ranks'
        # losses (and gradients) add up to the one-process mean.
        every = data.masks[picked.to(sel.device)]
        loss = err / (every.sum() * 3).clamp(min=1)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        # One all-reduce per step: the levels' gradients and the loss.
        if self.dist.active:  # (alone, a level without gradient stays out of Adam's step)
            for lv in self.levels:
                if lv.grad is None:
                    lv.grad = torch.zeros_like(lv)
        value = loss.detach().to(torch.float64).reshape(1)
        self.dist.sum_tensors_([*(lv.grad for lv in self.levels if lv.grad is not None),
                                value])
        with torch.no_grad():  # texels some pixel sampled: the finest level's (summed) gradient
            self.observed |= (self.levels[0].grad.abs().sum(0) > 0)
        self.opt.step()
        return {"loss": float(value)}

    @torch.no_grad()
    def snapshot(self, views: list[int]) -> np.ndarray:
        img = render_hard(self.textured(), self.data.cameras[views], self.data.masks.shape[1],
                          self.settings.lit)[0]
        return to_uint8(img[..., :3])


def fit_texture(
    data: MultiViewData,
    mesh: Meshes,
    settings: FitTextureSettings | None = None,
    seed: int = 0,
    callback: Callable[[int, dict[str, float]], bool | None] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    resume: bool = False,
    progress: bool = True,
    dist: DistContext | None = None,
) -> FitTextureResult:
    """Recover the texture map of ``mesh`` (its geometry and UVs fixed) from views.

    Args:
        data: N views: images (N, S, S, 3), masks (N, S, S), cameras of the mesh's frame.
        mesh: one mesh with ``TexturesUV`` (its map is ignored; its UV layout is used).
        settings: see :class:`FitTextureSettings`.
        seed: seeds the random view subsets.
        callback: called after every step with ``(step, losses)``; returning True stops.
        checkpoint, checkpoint_every, resume: as in :func:`~diffrend.jobs.fit_mesh` (a
            resumed run ends bit for bit where an uninterrupted one does, on the CPU).
        progress: show a progress bar with the live loss.
        dist: the process group (:func:`~.distributed.distributed`; None: this process
            alone). Every rank calls ``fit_texture`` with the same arguments; each step's
            views are shared out among the ranks (so ``settings.views_per_step`` and the
            number of views must be at least the world size) and their gradients and
            losses summed in one all-reduce: every rank holds the same texture, a
            one-process run's up to float rounding (the order of the sums). Only rank 0
            shows the progress bar, renders the snapshots and writes the checkpoint; every
            rank reads it on resume (also one written by another number of ranks).

    Returns:
        :class:`FitTextureResult` (on every rank; ``frames`` only on rank 0); Ctrl-C stops
        at the end of a step (``stopped="interrupted"``) with the texture so far.

    Raises:
        ValueError: mesh without UVs, empty masks, non-square views, bad settings,
            ``settings.views_per_step`` or the number of views below the world size, a
            checkpoint of another run.
    """
    settings = settings if settings is not None else FitTextureSettings()
    if not isinstance(settings, FitTextureSettings):
        raise ValueError("settings must be a FitTextureSettings")
    if not isinstance(data, MultiViewData):
        raise ValueError("data must be a MultiViewData (see diffrend.io.load_views)")
    if not isinstance(mesh, Meshes) or len(mesh) != 1 or mesh.isempty():
        raise ValueError("mesh must be one non-empty mesh")
    uvs = _uvs(mesh)
    n_views, _ = check_views(data)
    dist = dist if dist is not None else DistContext()
    check_views_per_rank(settings.views_per_step, n_views, dist)
    options = RunOptions(checkpoint, checkpoint_every, resume, progress and dist.is_main)
    mesh = mesh.to(data.images.device)
    snap_idx = snapshot_indices(n_views, settings.snapshot_views)
    signature = {"job": "fit_texture", "settings": asdict(settings), "seed": seed,
                 "views": tuple(data.images.shape),
                 "masks_sum": round(float(data.masks.double().sum()), 3),
                 "mesh": (tuple(mesh.verts_packed().shape), tuple(uvs[0].shape))}
    job = _TextureFit(data, mesh, uvs, settings, seed, dist)
    snaps = Snapshots(settings.snapshot_every or max(1, settings.iters // 50),
                      lambda: job.snapshot(snap_idx))
    ran = run(job.step, settings.iters, state=job, signature=signature, options=options,
              desc="texture", callback=callback, snapshots=snaps, dist=dist)
    with torch.no_grad():
        texture = pyramid_texture(job.levels, settings.texture_size).detach()
    return FitTextureResult(texture=texture, mesh=_with_texture(mesh, texture, uvs),
                            observed=job.observed, history=ran.history, frames=ran.frames,
                            snapshot_views=snap_idx, steps=ran.steps, stopped=ran.stopped,
                            seconds=ran.seconds)


def render_textured(mesh: Meshes, cameras, image_size: int, lit: bool) -> torch.Tensor:
    """Hard Phong renders (N, S, S, 3) of a UV-textured mesh (previews, metrics)."""
    return render_mesh_views(mesh, cameras, image_size, lit)


__all__ = ["FitTextureResult", "FitTextureSettings", "fit_texture", "pyramid_texture",
           "render_textured"]
