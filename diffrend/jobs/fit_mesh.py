"""Fit a mesh (shape and per-vertex colour) to multi-view silhouettes and images.

The job behind ``diffrend fit``. An ico-sphere (or a given mesh) is deformed, coarse to
fine: each stage renders at a larger image size, and the mesh is subdivided between stages
so the early stages move few vertices far and the late ones add detail. Each step renders a
random subset of the training views with a soft rasterizer and compares

- the soft silhouette (``1 - prod(1 - D)``, SoftRas's aggregate) with the target masks, and
- the colour of the nearest face (Phong-lit per-vertex colours) with the target images.

Vertices are optimised through the smooth ("large steps") parameterisation of
:mod:`.smooth_param`, which keeps the surface smooth with no hand-tuned regularisers;
PyTorch3D's regularisers (Laplacian, edge length, normal consistency) can be added by weight.

The soft silhouette's blur is set in pixels (``blur_px``), not as a raw sigma: a blur that is
wide compared with the faces makes pixels inside the shape hold more than
``faces_per_pixel`` faces, whose truncated union stays below 1, and biases the fit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..io.views import MultiViewData
from ..losses import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from ..modules.mesh import MeshShader
from ..raster import MeshRasterizer, RasterizationSettings
from ..render.blend import BlendParams
from ..shading import Materials, TexturesUV, TexturesVertex
from ..structures import Meshes, ico_sphere, subdivide_meshes
from .checkpoint import deferred_interrupt, deterministic, load_checkpoint, save_checkpoint
from .fit_texture import pyramid_texture
from .report import to_uint8
from .scene import cameras_focus, headlights, render_hard, unlit
from .smooth_param import SmoothVertexParam
from .uv import sphere_uvs


@dataclass(frozen=True)
class Stage:
    """One stage of the coarse-to-fine schedule.

    Attributes:
        image_size: side of the rendered (and target) images in this stage.
        iters: optimisation steps.
        lr: Adam learning rate of the smooth vertex parameters.
        subdivide: split every face into four before the stage starts.
    """

    image_size: int
    iters: int
    lr: float
    subdivide: bool = False


DEFAULT_STAGES = (
    Stage(64, 150, 0.05),
    Stage(96, 150, 0.03, subdivide=True),
    Stage(128, 400, 0.015, subdivide=True),
)


@dataclass(frozen=True)
class FitMeshSettings:
    """Settings of :func:`fit_mesh`; the defaults fit the bundled cow in about 1.5 minutes
    on two CPU cores.

    Attributes:
        stages: the coarse-to-fine schedule.
        init_level: ico-sphere level of the starting mesh (when no mesh is given).
        init_radius: radius of the starting sphere; None: a quarter of the median camera
            distance (the object then fills about half of each view).
        views_per_step: training views rendered per step (a random subset).
        smooth: lambda of the smooth parameterisation (0: plain per-vertex steps).
        lr_end: the vertex learning rate falls linearly within each stage to this fraction
            of the stage's ``lr`` (steps shrink as the fit settles; 1: constant).
        colors: what carries colour: ``"vertex"`` (per-vertex colours), ``"texture"`` (a UV
            texture map: the sphere's longitude/latitude layout, see :mod:`.uv`, as a
            pyramid of images like :mod:`.fit_texture`'s) or ``"none"`` (silhouettes only).
        color_lr: Adam learning rate of the colours.
        texture_size, texture_levels: side and pyramid levels of the texture map
            (``colors="texture"``).
        lit: the targets are lit by :func:`~diffrend.jobs.scene.headlights` (rendered
            targets); False: unlit (photographs: colours are then albedo times lighting).
        blur_px: soft silhouette blur radius, in pixels of each stage's image.
        faces_per_pixel: K of the soft rasterizer.
        w_silhouette, w_rgb: weights of the mean squared silhouette and colour errors.
        w_laplacian, w_edge, w_normal: weights of PyTorch3D's uniform Laplacian smoothing,
            edge length and normal consistency regularisers (0 by default: the smooth
            parameterisation regularises).
        snapshot_every: steps between the renders kept for the progress animation (None:
            about 50 renders over the run).
        snapshot_views: how many training views those renders show.
    """

    stages: tuple[Stage, ...] = DEFAULT_STAGES
    init_level: int = 2
    init_radius: float | None = None
    views_per_step: int = 5
    smooth: float = 10.0
    lr_end: float = 0.3
    colors: str = "vertex"
    color_lr: float = 0.02
    texture_size: int = 256
    texture_levels: int = 5
    lit: bool = True
    blur_px: float = 1.0
    faces_per_pixel: int = 20
    w_silhouette: float = 1.0
    w_rgb: float = 1.0
    w_laplacian: float = 0.0
    w_edge: float = 0.0
    w_normal: float = 0.0
    snapshot_every: int | None = None
    snapshot_views: int = 4

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("stages must hold at least one Stage")
        for i, s in enumerate(self.stages):
            if not isinstance(s, Stage):
                raise ValueError(f"stages[{i}] must be a Stage, got {type(s).__name__}")
            if not (isinstance(s.image_size, int) and 8 <= s.image_size <= 4096):
                raise ValueError(f"stages[{i}].image_size must be an int in [8, 4096]")
            if not (isinstance(s.iters, int) and s.iters >= 1):
                raise ValueError(f"stages[{i}].iters must be an int >= 1")
            if not (math.isfinite(s.lr) and s.lr > 0):
                raise ValueError(f"stages[{i}].lr must be > 0")
        for name in ("views_per_step", "faces_per_pixel", "snapshot_every", "snapshot_views"):
            value = getattr(self, name)
            if name == "snapshot_every" and value is None:
                continue
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.colors not in ("vertex", "texture", "none"):
            raise ValueError(f"colors must be 'vertex', 'texture' or 'none', got "
                             f"{self.colors!r}")
        if not (isinstance(self.texture_size, int) and 4 <= self.texture_size <= 8192):
            raise ValueError(f"texture_size must be an int in [4, 8192], got "
                             f"{self.texture_size!r}")
        if not (isinstance(self.texture_levels, int) and self.texture_levels >= 1
                and self.texture_size >> (self.texture_levels - 1) >= 1):
            raise ValueError(f"texture_levels must be an int in [1, log2(texture_size) + 1], "
                             f"got {self.texture_levels!r}")
        if not isinstance(self.init_level, int) or not 0 <= self.init_level <= 6:
            raise ValueError(f"init_level must be an int in [0, 6], got {self.init_level!r}")
        for name in ("smooth", "color_lr", "w_silhouette", "w_rgb", "w_laplacian", "w_edge",
                     "w_normal"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (math.isfinite(self.lr_end) and 0 < self.lr_end <= 1):
            raise ValueError(f"lr_end must be in (0, 1], got {self.lr_end}")
        if not (math.isfinite(self.blur_px) and 0 < self.blur_px <= 16):
            raise ValueError(f"blur_px must be in (0, 16], got {self.blur_px}")
        if self.init_radius is not None and not (math.isfinite(self.init_radius)
                                                 and self.init_radius > 0):
            raise ValueError(f"init_radius must be > 0, got {self.init_radius}")

    def scaled(self, iters: int | None = None, image_size: int | None = None) -> FitMeshSettings:
        """The same schedule with ``iters`` steps in all and ``image_size`` as the last
        stage's size (earlier stages keep their proportions)."""
        stages = self.stages
        if iters is not None:
            if iters < len(stages):
                raise ValueError(f"iters must be >= the number of stages ({len(stages)})")
            total = sum(s.iters for s in stages)
            counts = [max(1, round(s.iters * iters / total)) for s in stages]
            counts[-1] = max(1, iters - sum(counts[:-1]))
            stages = tuple(replace(s, iters=c) for s, c in zip(stages, counts, strict=True))
        if image_size is not None:
            last = stages[-1].image_size
            stages = tuple(replace(s, image_size=max(8, round(s.image_size * image_size / last)))
                           for s in stages)
        return replace(self, stages=stages)


@dataclass
class FitStep:
    """What the callback of :func:`fit_mesh` receives after every step.

    ``verts (V, 3)``, ``faces (F, 3)`` and ``colors`` are detached current values:
    ``colors`` is (V, 3) vertex colours, or the (T, T, 3) texture map with
    ``colors="texture"``.
    """

    step: int
    total: int
    stage: int
    losses: dict[str, float]
    verts: torch.Tensor
    faces: torch.Tensor
    colors: torch.Tensor


@dataclass
class FitMeshResult:
    """What :func:`fit_mesh` returns.

    Attributes:
        mesh: the fitted mesh, with ``TexturesVertex`` colours, or ``TexturesUV`` with
            ``colors="texture"`` (no gradients).
        history: per step, the weighted total ``"loss"`` and each term.
        frames: ``(step, (V, S, S, 3) uint8)`` renders of the snapshot views over time.
        snapshot_views: indices (into the training views) of the views in ``frames``.
        steps: steps done (the schedule's total unless stopped).
        stopped: None (finished), ``"interrupted"`` (Ctrl-C) or ``"callback"``.
        seconds: wall time of this call (not counting earlier runs of a resumed job).
    """

    mesh: Meshes
    history: list[dict[str, float]] = field(default_factory=list)
    frames: list[tuple[int, np.ndarray]] = field(default_factory=list)
    snapshot_views: list[int] = field(default_factory=list)
    steps: int = 0
    stopped: str | None = None
    seconds: float = 0.0


def sigma_for_blur(blur_px: float, image_size: int) -> tuple[float, float]:
    """SoftRas sigma whose probability falls to 1e-4-ish at ``blur_px`` pixels.

    Returns:
        ``(sigma, blur_radius)`` with ``blur_radius = (2 * blur_px / image_size)**2`` (squared
        NDC distance, the rasterizer's unit) and ``sigma * log(1 / sigma - 1) = blur_radius``
        (PyTorch3D's relation between the two).
    """
    r2 = (2.0 * blur_px / image_size) ** 2
    sigma = 1e-4
    for _ in range(60):  # fixed point of sigma = r2 / log(1/sigma - 1): a contraction
        sigma = r2 / math.log(1.0 / sigma - 1.0)
    return sigma, r2


def initial_mesh(data: MultiViewData, settings: FitMeshSettings) -> Meshes:
    """The starting ico-sphere, centred where the cameras look."""
    centre, dist = cameras_focus(data.cameras)
    radius = settings.init_radius if settings.init_radius is not None else 0.25 * dist
    sphere = ico_sphere(settings.init_level, device=data.images.device)
    return sphere.update_padded(sphere.verts_padded() * radius + centre.to(data.images.device))


def _signature(data: MultiViewData, settings: FitMeshSettings, seed: int,
               init: Meshes) -> dict:
    return {
        "job": "fit_mesh",
        "settings": asdict(settings),
        "seed": seed,
        "views": tuple(data.images.shape),
        "masks_sum": round(float(data.masks.double().sum()), 3),
        "init_verts": tuple(init.verts_packed().shape),
    }


class _Renderer:
    """The two shaders of a step over one soft rasterization (rebuilt per stage)."""

    def __init__(self, settings: FitMeshSettings, image_size: int, device: torch.device):
        sigma, r2 = sigma_for_blur(settings.blur_px, image_size)
        self.rasterizer = MeshRasterizer(raster_settings=RasterizationSettings(
            image_size=image_size, blur_radius=r2, faces_per_pixel=settings.faces_per_pixel))
        self.silhouette = MeshShader("silhouette", "sigmoid", device,
                                     blend_params=BlendParams(sigma=sigma, gamma=1e-4))
        self.color = MeshShader("phong", "hard", device, materials=Materials(device=device),
                                blend_params=BlendParams(background_color=(0.0, 0.0, 0.0)))
        self.lit = settings.lit
        self.with_colors = settings.colors != "none"

    def __call__(self, mesh: Meshes, cameras) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Soft silhouettes (B, S, S) and, when fitting colours, colours (B, S, S, 3)."""
        meshes = mesh.extend(len(cameras))
        fragments = self.rasterizer(meshes, cameras=cameras)
        sil = self.silhouette(fragments, meshes, cameras=cameras)[..., 3]
        if not self.with_colors:
            return sil, None
        lights = headlights(cameras) if self.lit else unlit(mesh.device)
        rgb = self.color(fragments, meshes, cameras=cameras, lights=lights)[..., :3]
        return sil, rgb


def _textures(colors: torch.Tensor, levels: list[torch.Tensor], uvs: tuple | None, size: int,
              detach: bool = False) -> TexturesVertex | TexturesUV:
    """The fit's colours: vertex colours (V, 3), or the pyramid texture on ``uvs``."""
    if uvs is None:
        return TexturesVertex([colors.detach() if detach else colors])
    tex = pyramid_texture(levels, size)
    return TexturesUV([tex.detach() if detach else tex], [uvs[1]], [uvs[0]])


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W, C) -> (N, size, size, C), area-averaged (antialiased targets)."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    x = images.permute(0, 3, 1, 2)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="area" if size <
                                        images.shape[1] else "bilinear", align_corners=None)
    return x.permute(0, 2, 3, 1).contiguous()


@torch.no_grad()
def render_mesh_views(mesh: Meshes, cameras, image_size: int, lit: bool) -> torch.Tensor:
    """Hard Phong renders (N, S, S, 3) in [0, 1] of one textured mesh (previews, frames)."""
    return render_hard(mesh, cameras, image_size, lit)[0][..., :3].clamp(0, 1)


def fit_mesh(
    data: MultiViewData,
    init: Meshes | None = None,
    settings: FitMeshSettings | None = None,
    seed: int = 0,
    callback: Callable[[FitStep], bool | None] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    resume: bool = False,
    progress: bool = True,
) -> FitMeshResult:
    """Deform a mesh to match multi-view silhouettes (and colours).

    Args:
        data: N training views: images (N, H, W, 3), masks (N, H, W), cameras. Images are
            resized to each stage's size (area averaging); square images expected.
        init: one starting mesh (default: an ico-sphere where the cameras look, see
            :class:`FitMeshSettings`). Its colours, if any, are not used.
        settings: the schedule and loss weights (default :class:`FitMeshSettings()`).
        seed: seeds the random view subsets (a torch.Generator on the CPU: the same seed
            gives the same run on any machine with the same torch).
        callback: called after every step with a :class:`FitStep`; returning True stops
            the fit (the result then says ``stopped="callback"``).
        checkpoint: file for checkpoints (every ``checkpoint_every`` steps, at the end and
            when stopped); None: no checkpoints.
        resume: continue from ``checkpoint`` when it exists (same data, settings and seed
            required: the result is then the same as an uninterrupted run's, bit for bit on
            the CPU; the fit runs with torch's deterministic algorithms for that).
        progress: show a progress bar with the live loss.

    Returns:
        :class:`FitMeshResult`. Ctrl-C during the fit stops it at the end of the current
        step (a second Ctrl-C stops at once); the result then holds the mesh so far and
        ``stopped="interrupted"``, and the checkpoint (when given) is up to date.

    Raises:
        ValueError: bad data (empty masks in every view, non-square images), settings,
            init mesh, or a checkpoint from a different run.
    """
    settings = settings if settings is not None else FitMeshSettings()
    if not isinstance(settings, FitMeshSettings):
        raise ValueError("settings must be a FitMeshSettings")
    if not isinstance(data, MultiViewData):
        raise ValueError("data must be a MultiViewData (see diffrend.io.load_views)")
    n_views, height, width = data.masks.shape
    if height != width:
        raise ValueError(f"data: images must be square, got {height}x{width}")
    if not bool((data.masks.flatten(1).amax(1) > 0).any()):
        raise ValueError("data.masks are empty in every view: nothing to fit")
    if not (torch.isfinite(data.images).all() and torch.isfinite(data.masks).all()):
        raise ValueError("data.images / data.masks hold NaN or inf")
    if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be an int >= 1, got {checkpoint_every!r}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    device = data.images.device
    if init is None:
        init = initial_mesh(data, settings)
    elif not isinstance(init, Meshes) or len(init) != 1 or init.isempty():
        raise ValueError("init must be one non-empty mesh")
    if not torch.isfinite(init.verts_packed()).all():
        raise ValueError("init has NaN or inf vertices")
    init = init.to(device)

    stages = settings.stages
    total = sum(s.iters for s in stages)
    n_snap = min(settings.snapshot_views, n_views)
    snap_idx = [round(i * n_views / n_snap) for i in range(n_snap)]
    snap_size = stages[-1].image_size
    snap_every = settings.snapshot_every or max(1, total // 50)
    signature = _signature(data, settings, seed, init)
    generator = torch.Generator().manual_seed(seed)

    # The state at a step boundary: everything an uninterrupted run would hold there.
    verts = init.verts_packed().detach().clone()
    faces = init.faces_packed().clone()
    colors = torch.full_like(verts, 0.5)
    # Each vertex's direction on the starting sphere: the texture layout (colors="texture").
    dirs = verts - verts.mean(0)
    dirs = dirs / dirs.norm(dim=1, keepdim=True).clamp(min=1e-12)
    texture_mode = settings.colors == "texture"
    tsize = settings.texture_size
    levels = [torch.zeros(3, max(1, tsize >> i), max(1, tsize >> i), device=device)
              for i in range(settings.texture_levels)] if texture_mode else []
    if levels:
        levels[-1].fill_(0.5)  # start grey, in the coarsest level
    stage_idx, stage_step, step = 0, 0, 0
    u: torch.Tensor | None = None
    opt_state = None
    history: list[dict[str, float]] = []
    frames: list[tuple[int, np.ndarray]] = []
    if resume and checkpoint is not None and Path(checkpoint).exists():
        ck = load_checkpoint(checkpoint, signature)
        stage_idx, stage_step, step = ck["stage"], ck["stage_step"], ck["step"]
        faces, colors, u = ck["faces"].to(device), ck["colors"].to(device), ck["u"].to(device)
        verts, dirs = ck["verts"].to(device), ck["dirs"].to(device)
        levels = [lv.to(device) for lv in ck["levels"]]
        opt_state, history, frames = ck["optimizer"], ck["history"], ck["frames"]
        generator.set_state(ck["generator"])

    def state_dict(param_u: torch.Tensor, opt: torch.optim.Optimizer) -> dict:
        return {"signature": signature, "stage": stage_idx, "stage_step": stage_step,
                "step": step, "faces": faces.cpu(), "colors": colors.detach().cpu(),
                "u": param_u.detach().cpu(), "verts": verts.detach().cpu(),
                "dirs": dirs.cpu(), "levels": [lv.detach().cpu() for lv in levels],
                "optimizer": opt.state_dict(), "generator": generator.get_state(),
                "history": history, "frames": frames}

    start_time = time.perf_counter()
    stopped: str | None = None
    bar = tqdm(total=total, initial=step, desc="fit", unit="step", disable=not progress,
               dynamic_ncols=True)
    snapshot_cams = data.cameras[snap_idx]
    with deferred_interrupt() as stop, deterministic():
        while stage_idx < len(stages) and stopped is None:
            stage = stages[stage_idx]
            if stage_step == 0:  # a fresh stage: subdivide, new parameters and optimizer
                if stage.subdivide:
                    sub, feats = subdivide_meshes(Meshes([verts], [faces]),
                                                  torch.cat([colors.detach(), dirs], 1))
                    verts, faces = sub.verts_packed(), sub.faces_packed()
                    colors, dirs = feats[:, :3], feats[:, 3:]
                    dirs = dirs / dirs.norm(dim=1, keepdim=True).clamp(min=1e-12)
            # Depends on the topology only: rebuilt identically when a run resumes mid-stage.
            param = SmoothVertexParam(Meshes([verts], [faces]), settings.smooth)
            if stage_step == 0:
                u = param.to_params(verts)
                opt_state = None
            u = u.detach().clone().requires_grad_(True)
            colors = colors.detach().clone().requires_grad_(settings.colors == "vertex")
            levels = [lv.detach().clone().requires_grad_(True) for lv in levels]
            uvs = sphere_uvs(dirs, faces) if texture_mode else None
            groups = [{"params": [u], "lr": stage.lr}]
            if settings.colors != "none":
                groups.append({"params": levels if texture_mode else [colors],
                               "lr": settings.color_lr})
            opt = torch.optim.Adam(groups)
            if opt_state is not None:
                opt.load_state_dict(opt_state)
                opt_state = None
            renderer = _Renderer(settings, stage.image_size, device)
            masks = _resize(data.masks[..., None], stage.image_size)[..., 0]
            images = _resize(data.images, stage.image_size)

            while stage_step < stage.iters:
                frac = stage_step / max(1, stage.iters - 1)
                opt.param_groups[0]["lr"] = stage.lr * (1.0 - (1.0 - settings.lr_end) * frac)
                idx = torch.randperm(n_views, generator=generator)[: settings.views_per_step]
                idx = idx.to(device)
                cams = data.cameras[idx.tolist()]
                verts_now = param.to_verts(u)
                mesh = Meshes([verts_now], [faces], textures=_textures(colors, levels, uvs, tsize))
                sil, rgb = renderer(mesh, cams)
                terms = {"silhouette": ((sil - masks[idx]) ** 2).mean()}
                weights = {"silhouette": settings.w_silhouette}
                if rgb is not None:
                    terms["rgb"] = ((rgb - images[idx]) ** 2).mean()
                    weights["rgb"] = settings.w_rgb
                geometry = Meshes([verts_now], [faces])
                for name, w, fn in (
                    ("laplacian", settings.w_laplacian, mesh_laplacian_smoothing),
                    ("edge", settings.w_edge, mesh_edge_loss),
                    ("normal", settings.w_normal, mesh_normal_consistency),
                ):
                    if w > 0:
                        terms[name] = fn(geometry)
                        weights[name] = w
                loss = sum(weights[k] * v for k, v in terms.items())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    colors.clamp_(0.0, 1.0)  # (the texture's pyramid clamps its sum)
                    verts = param.to_verts(u).detach()
                stage_step += 1
                step += 1
                record = {"loss": float(loss.detach()),
                          **{k: float(v.detach()) for k, v in terms.items()}}
                history.append(record)
                bar.update(1)
                bar.set_postfix(stage=stage_idx, loss=f"{record['loss']:.4f}",
                                sil=f"{record['silhouette']:.4f}")
                if step % snap_every == 0 or step == total:
                    shown = Meshes([verts], [faces],
                                   textures=_textures(colors, levels, uvs, tsize, True))
                    frames.append((step, to_uint8(render_mesh_views(
                        shown, snapshot_cams, snap_size, settings.lit))))
                shown_colors = (pyramid_texture(levels, tsize).detach() if texture_mode
                                else colors.detach())
                if callback is not None and callback(FitStep(
                        step, total, stage_idx, record, verts, faces, shown_colors)):
                    stop.reason = stop.reason or "callback"
                if stop:
                    stopped = stop.reason
                if checkpoint is not None and (step % checkpoint_every == 0 or stopped
                                               or step == total):
                    save_checkpoint(state_dict(u, opt), checkpoint)
                if stopped:
                    break
            if stopped is None:
                stage_idx += 1
                stage_step = 0
    bar.close()
    if texture_mode:
        with torch.no_grad():
            uvs = sphere_uvs(dirs, faces)
            final_textures = TexturesUV([pyramid_texture(levels, tsize).detach()], [uvs[1]],
                                        [uvs[0]])
    else:
        final_textures = TexturesVertex([colors.detach()])
    fitted = Meshes([verts.detach()], [faces], textures=final_textures)
    return FitMeshResult(mesh=fitted, history=history, frames=frames,
                         snapshot_views=snap_idx, steps=step, stopped=stopped,
                         seconds=time.perf_counter() - start_time)

