"""Recover a UV texture map for a known mesh from views of it (``diffrend texture``).

The mesh and its UVs are fixed; only the texels change. Each step renders a random subset of
the views with a hard rasterizer (the geometry is known, so there is no silhouette to move)
and compares colours inside the target masks. Texels are found through bilinear texture
sampling, whose gradient reaches only the four texels around each sample: a texel that no
pixel samples never changes, and a texture much finer than the pixels that see it learns as
a sparse speckle. The texture is therefore the sum of a pyramid of images at halving
resolutions (each upsampled to full size): coarse levels fill in what the pixels do not
sample, fine levels add detail where they do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..io.views import MultiViewData
from ..shading import TexturesUV
from ..structures import Meshes
from .checkpoint import deferred_interrupt, deterministic, load_checkpoint, save_checkpoint
from .report import to_uint8
from .scene import render_hard


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


def pyramid_texture(levels: list[torch.Tensor], size: int) -> torch.Tensor:
    """Sum of pyramid levels ``(3, s_l, s_l)`` upsampled to ``(size, size, 3)``, in [0, 1].

    Differentiable w.r.t. every level. The clamp to [0, 1] passes gradients straight through:
    a plain clamp gives a texel whose sum left [0, 1] zero gradient in that channel, and the
    channel then stays stuck (a grey texel pushed past white stays tinted).
    """
    total = 0
    for level in levels:
        up = level[None] if level.shape[-1] == size else F.interpolate(
            level[None], size=(size, size), mode="bilinear", align_corners=False)
        total = total + up
    total = total[0].permute(1, 2, 0)
    return total + (total.clamp(0.0, 1.0) - total).detach()


def _uvs(mesh: Meshes) -> tuple[torch.Tensor, torch.Tensor]:
    tex = mesh.textures
    if not isinstance(tex, TexturesUV):
        raise ValueError("mesh must carry TexturesUV (its verts_uvs and faces_uvs give the "
                         "texture layout); load it with diffrend.io.load_objs_as_meshes")
    return tex.verts_uvs_list()[0], tex.faces_uvs_list()[0]


def _with_texture(mesh: Meshes, texture: torch.Tensor, uvs: tuple) -> Meshes:
    return Meshes(mesh.verts_list(), mesh.faces_list(),
                  textures=TexturesUV([texture], [uvs[1]], [uvs[0]]))


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

    Returns:
        :class:`FitTextureResult`; Ctrl-C stops at the end of a step (``stopped=
        "interrupted"``) with the texture so far.

    Raises:
        ValueError: mesh without UVs, empty masks, non-square views, bad settings, a
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
    n_views, height, width = data.masks.shape
    if height != width:
        raise ValueError(f"data: images must be square, got {height}x{width}")
    if not bool((data.masks.flatten(1).amax(1) > 0).any()):
        raise ValueError("data.masks are empty in every view: nothing to fit")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    device = data.images.device
    mesh = mesh.to(device)
    size = settings.texture_size
    n_snap = min(settings.snapshot_views, n_views)
    snap_idx = [round(i * n_views / n_snap) for i in range(n_snap)]
    snap_every = settings.snapshot_every or max(1, settings.iters // 50)
    signature = {"job": "fit_texture", "settings": asdict(settings), "seed": seed,
                 "views": tuple(data.images.shape),
                 "masks_sum": round(float(data.masks.double().sum()), 3),
                 "mesh": (tuple(mesh.verts_packed().shape), tuple(uvs[0].shape))}
    generator = torch.Generator().manual_seed(seed)
    levels = [torch.zeros(3, max(1, size >> i), max(1, size >> i), device=device)
              for i in range(settings.levels)]
    levels[-1].fill_(0.5)  # start grey, all in the coarsest level
    levels = [lv.requires_grad_(True) for lv in levels]
    opt = torch.optim.Adam(levels, lr=settings.lr)
    step, history, frames = 0, [], []
    observed = torch.zeros(size, size, dtype=torch.bool, device=device)
    if resume and checkpoint is not None and Path(checkpoint).exists():
        ck = load_checkpoint(checkpoint, signature)
        with torch.no_grad():
            for lv, saved in zip(levels, ck["levels"], strict=True):
                lv.copy_(saved)
        opt.load_state_dict(ck["optimizer"])
        generator.set_state(ck["generator"])
        step, history, frames = ck["step"], ck["history"], ck["frames"]
        observed = ck["observed"].to(device)

    def save() -> None:
        save_checkpoint({"signature": signature, "step": step, "levels": [
            lv.detach().cpu() for lv in levels], "optimizer": opt.state_dict(),
            "generator": generator.get_state(), "history": history, "frames": frames,
            "observed": observed.cpu()}, checkpoint)

    start = time.perf_counter()
    stopped = None
    bar = tqdm(total=settings.iters, initial=step, desc="texture", unit="step",
               disable=not progress, dynamic_ncols=True)
    with deferred_interrupt() as stop, deterministic():
        while step < settings.iters:
            idx = torch.randperm(n_views, generator=generator)[: settings.views_per_step]
            cams = data.cameras[idx.tolist()]
            texture = pyramid_texture(levels, size)
            rgba = render_hard(_with_texture(mesh, texture, uvs), cams, height, settings.lit)[0]
            mask = data.masks[idx.to(device)][..., None]
            err = ((rgba[..., :3] - data.images[idx.to(device)]) ** 2 * mask).sum()
            loss = err / (mask.sum() * 3).clamp(min=1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():  # texels some pixel sampled: the finest level's gradient
                observed |= (levels[0].grad.abs().sum(0) > 0)
            opt.step()
            step += 1
            record = {"loss": float(loss.detach())}
            history.append(record)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.5f}")
            if step % snap_every == 0 or step == settings.iters:
                with torch.no_grad():
                    shown = _with_texture(mesh, pyramid_texture(levels, size), uvs)
                    img = render_hard(shown, data.cameras[snap_idx], height, settings.lit)[0]
                frames.append((step, to_uint8(img[..., :3])))
            if callback is not None and callback(step, record):
                stop.reason = stop.reason or "callback"
            stopped = stop.reason
            if checkpoint is not None and (step % checkpoint_every == 0 or stopped
                                           or step == settings.iters):
                save()
            if stopped:
                break
    bar.close()
    with torch.no_grad():
        texture = pyramid_texture(levels, size).detach()
    return FitTextureResult(texture=texture, mesh=_with_texture(mesh, texture, uvs),
                            observed=observed, history=history, frames=frames,
                            snapshot_views=snap_idx, steps=step, stopped=stopped,
                            seconds=time.perf_counter() - start)


def render_textured(mesh: Meshes, cameras, image_size: int, lit: bool) -> torch.Tensor:
    """Hard Phong renders (N, S, S, 3) of a UV-textured mesh (previews, metrics)."""
    from .fit_mesh import render_mesh_views

    return render_mesh_views(mesh, cameras, image_size, lit)
