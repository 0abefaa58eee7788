"""Fit a mesh (shape and per-vertex colour) to multi-view silhouettes and images.

The job behind ``diffrend fit``. The visual hull of the masks (:mod:`.visual_hull`; or an
ico-sphere, or a given mesh) is deformed, coarse to fine: each stage renders at a larger
image size, so the early stages move few vertices far and the late ones add detail. The
resolution follows the images: every ``remesh_every`` steps, and at each stage's start, the
surface is remeshed (:func:`~diffrend.ops.remesh`) toward edges of ``edge_px`` pixels,
shorter where the silhouette and colour errors stay high (:mod:`.adaptive`), within a face
budget per pixel; with ``remesh_every=0`` the stages' ``subdivide`` flags set it instead.
Each step renders a
random subset of the training views and compares

- the silhouette with the target masks: in the early stages SoftRas's soft silhouette
  (``1 - prod(1 - D)``: a wide basin, but its outline sits about 0.3 px inside the masks'),
  in the last one the hard silhouette antialiased at the outline (nvdiffrast's method:
  unbiased, one pixel of reach), see :class:`Stage`; and
- the colour of the nearest face (Phong-lit per-vertex colours) with the target images.

Vertices are optimised through the smooth ("large steps") parameterisation of
:mod:`.smooth_param`, which keeps the surface smooth with no hand-tuned regularisers;
PyTorch3D's regularisers (Laplacian, edge length, normal consistency) can be added by weight.

Under torch.distributed (``dist``, see :mod:`.distributed`) the ranks share out each step's
views and sum their gradients, image errors and losses in one all-reduce: the same fit as
one process up to float rounding (docs/howto/distributed.md says why not DDP).

The soft silhouette's blur is set in pixels (``blur_px``), not as a raw sigma: a blur that is
wide compared with the faces makes pixels inside the shape hold more than
``faces_per_pixel`` faces, whose truncated union stays below 1, and biases the fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..io.views import MultiViewData
from ..losses import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from ..ops import map_vertex_attributes, remesh
from ..shading import TexturesUV, TexturesVertex
from ..structures import Meshes, ico_sphere, subdivide_meshes
from .adaptive import pixels_per_unit, target_edge_lengths, vertex_errors
from .distributed import DistContext, check_views_per_rank
from .framing import object_sphere
from .pictures import to_uint8
from .pyramid import grey_pyramid, pyramid_texture
from .runner import RunOptions, Snapshots, run
from .smooth_param import SmoothVertexParam
from .uv import sphere_uvs
from .views import (
    AntialiasRenderer,
    SoftSilhouetteRenderer,
    cameras_focus,
    check_views,
    render_depth,
    render_mesh_views,
    resize_depth,
    resize_images,
    sigma_for_blur,  # noqa: F401 - re-exported (it was defined here)
    snapshot_indices,
)
from .visual_hull import visual_hull


@dataclass(frozen=True)
class Stage:
    """One stage of the coarse-to-fine schedule.

    Attributes:
        image_size: side of the rendered (and target) images in this stage.
        iters: optimisation steps.
        lr: Adam learning rate of the smooth vertex parameters.
        subdivide: split every face into four before the stage starts.
        silhouette: how the stage renders: ``"soft"``, SoftRas's blurred silhouettes
            (:class:`~.views.SoftSilhouetteRenderer`: gradients reach a blur radius from
            the outline, a wide basin, but the outline settles about 0.3 px inside the
            masks'), or ``"antialias"``, the hard render antialiased at the outline
            (:class:`~.views.AntialiasRenderer`: unbiased, gradients one pixel wide; for
            the last stage, once the soft stages have brought the outline close).
    """

    image_size: int
    iters: int
    lr: float
    subdivide: bool = False
    silhouette: str = "soft"


# The last stage starts with large steps and decays 13x to its end (lr_end): a cavity that
# the visual hull closes (the bowl's) is dug by the shading alone, slowly, and mostly in this
# stage (bowl surface chamfer 3.1e-2 with lr 0.015 decaying to 30%, 1.6e-2 with this; the
# other test shapes, which end at the same step size, within their targets either way). Its
# 800 steps dig further than 400 did (bowl 4.1e-3 -> 1.5e-3, the rest within their targets)
# in the time 400 took before the antialiased step's kernel halved its cost (docs/shapes.md).
DEFAULT_STAGES = (
    Stage(64, 150, 0.05),
    Stage(96, 150, 0.03, subdivide=True),
    Stage(128, 800, 0.06, subdivide=True, silhouette="antialias"),
)


@dataclass(frozen=True)
class FitMeshSettings:
    """Settings of :func:`fit_mesh`; the defaults fit the bundled cow in about 1.5 minutes
    on two CPU cores.

    Attributes:
        stages: the coarse-to-fine schedule.
        init: the starting mesh when none is given: ``"hull"``, the visual hull of the
            training masks (:mod:`.visual_hull`: the object's topology, holes included,
            which the fit's smooth deformations cannot change), or ``"sphere"``, an
            ico-sphere (genus 0) placed on the object by its silhouettes (see
            :func:`initial_mesh`).
        hull_faces: about how many faces the visual hull start has (``init="hull"``). The
            default schedule subdivides twice (x16): 320 ends, like the level-2 sphere, at
            about 5120 faces; a 1280-face start ends at 20480, more than the 128x128
            silhouettes hold, and crumples (cow: chamfer 4.0e-3 against 7.7e-4).
        init_level: ico-sphere level of the starting sphere (``init="sphere"``).
        init_radius: radius of the starting sphere; None: the object's (from the
            silhouettes), at most a quarter of the median camera distance.
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
        lit: the targets are lit by :func:`~diffrend.jobs.views.headlights` (rendered
            targets); False: unlit (photographs: colours are then albedo times lighting).
        exposure: learn a gain per training view and colour channel (initialised to 1,
            their geometric mean over the views held at 1) that multiplies the rendered
            colours before the colour loss: photographs whose exposure or white balance
            differ between views then do not pull the shared colours (and, through the
            shading, the surface) to a compromise. Costs 3 numbers per view; see
            :attr:`FitMeshResult.view_gains`.
        blur_px: soft silhouette blur radius, in pixels of each stage's image.
        faces_per_pixel: K of the soft rasterizer.
        w_silhouette, w_rgb: weights of the mean squared silhouette and colour errors. The
            colour's 8 lets the shading dig a cavity that the silhouettes leave closed
            (the test bowl's surface chamfer with the default stages: 1.5e-3 at weight 4,
            8.9e-4 at 6, 5.4e-4 at 8; see docs/shapes.md for the sweeps).
        w_depth: weight of the mean absolute depth error over the pixels that both the fit
            and the target cover (0: off). Needs ``fit_mesh(..., depth=...)``: depth maps
            of the training views (an RGB-D capture, or :func:`.views.render_target_depth`
            of a mesh). Depth digs what neither silhouettes nor shading under the
            headlights do: the test mug's deep cup (surface chamfer 1.2e-2 without, 1.2e-4
            at weight 1; docs/shapes.md).
        w_laplacian, w_edge, w_normal: weights of PyTorch3D's uniform Laplacian smoothing,
            edge length and normal consistency regularisers (0 by default: the smooth
            parameterisation regularises).
        snapshot_every: steps between the renders kept for the progress animation (None:
            about 50 renders over the run).
        snapshot_views: how many training views those renders show.
        remesh_every: steps between continuous remeshes of the surface (0: never; the
            stages' ``subdivide`` then sets the resolution). With remeshing, every stage
            starts with a remesh to its own image size instead of a subdivision, and each
            remesh sets edges of ``edge_px`` pixels, shorter where the error stays high (see
            :mod:`.adaptive`).
        edge_px: target edge length, in pixels of the current stage's images.
        refine: where the image error is largest, edges are ``1 / refine`` of ``edge_px``.
        face_budget: at most this many faces per pixel of the current stage's image
            (``face_budget * S**2``): the resolution grows with the image size.
    """

    stages: tuple[Stage, ...] = DEFAULT_STAGES
    init: str = "hull"
    hull_faces: int = 320
    init_level: int = 2
    init_radius: float | None = None
    views_per_step: int = 5
    smooth: float = 10.0
    lr_end: float = 0.075
    colors: str = "vertex"
    color_lr: float = 0.02
    texture_size: int = 256
    texture_levels: int = 5
    lit: bool = True
    exposure: bool = False
    blur_px: float = 1.0
    faces_per_pixel: int = 20
    w_silhouette: float = 1.0
    w_rgb: float = 8.0
    w_depth: float = 0.0
    w_laplacian: float = 0.0
    w_edge: float = 0.0
    w_normal: float = 0.0
    snapshot_every: int | None = None
    snapshot_views: int = 4
    remesh_every: int = 25
    edge_px: float = 2.0
    refine: float = 2.0
    face_budget: float = 0.5

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
            if s.silhouette not in ("soft", "antialias"):
                raise ValueError(f"stages[{i}].silhouette must be 'soft' or 'antialias', "
                                 f"got {s.silhouette!r}")
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
        if not isinstance(self.exposure, bool):
            raise ValueError(f"exposure must be True or False, got {self.exposure!r}")
        if self.init not in ("hull", "sphere"):
            raise ValueError(f"init must be 'hull' or 'sphere', got {self.init!r}")
        if not (isinstance(self.hull_faces, int) and 20 <= self.hull_faces <= 1_000_000):
            raise ValueError(f"hull_faces must be an int in [20, 1000000], got "
                             f"{self.hull_faces!r}")
        if not isinstance(self.init_level, int) or not 0 <= self.init_level <= 6:
            raise ValueError(f"init_level must be an int in [0, 6], got {self.init_level!r}")
        for name in ("smooth", "color_lr", "w_silhouette", "w_rgb", "w_depth", "w_laplacian",
                     "w_edge", "w_normal"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (math.isfinite(self.lr_end) and 0 < self.lr_end <= 1):
            raise ValueError(f"lr_end must be in (0, 1], got {self.lr_end}")
        if not (math.isfinite(self.blur_px) and 0 < self.blur_px <= 16):
            raise ValueError(f"blur_px must be in (0, 16], got {self.blur_px}")
        if not (isinstance(self.remesh_every, int) and self.remesh_every >= 0):
            raise ValueError(f"remesh_every must be an int >= 0, got {self.remesh_every!r}")
        if not (math.isfinite(self.edge_px) and 0.25 <= self.edge_px <= 64):
            raise ValueError(f"edge_px must be in [0.25, 64], got {self.edge_px}")
        if not (math.isfinite(self.refine) and 1 <= self.refine <= 8):
            raise ValueError(f"refine must be in [1, 8], got {self.refine}")
        if not (math.isfinite(self.face_budget) and 0 < self.face_budget <= 16):
            raise ValueError(f"face_budget must be in (0, 16], got {self.face_budget}")
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
        remeshes: remeshes done over the whole run (``settings.remesh_every``).
        view_gains: ``(N, 3)`` the learned per-view colour gains (``settings.exposure``;
            None without), in the training views' order; their geometric mean is 1.
    """

    mesh: Meshes
    history: list[dict[str, float]] = field(default_factory=list)
    frames: list[tuple[int, np.ndarray]] = field(default_factory=list)
    snapshot_views: list[int] = field(default_factory=list)
    steps: int = 0
    stopped: str | None = None
    seconds: float = 0.0
    remeshes: int = 0
    view_gains: torch.Tensor | None = None


def initial_mesh(data: MultiViewData, settings: FitMeshSettings) -> Meshes:
    """The starting mesh of ``settings.init``: the visual hull of ``data`` (about
    ``settings.hull_faces`` faces, see :func:`.visual_hull.visual_hull`), or an ico-sphere
    placed on the object. Deterministic (a resumed fit rebuilds it).

    The sphere's centre is :func:`.framing.object_sphere`'s, where the rays through the
    silhouettes' centres meet: the object, also when it is off the cameras' optical axes
    (framed views of real data, whose principal points are far from the object). Its
    radius is ``settings.init_radius``, else the smaller of the object sphere's radius and
    a quarter of the median camera distance to the centre (an object far from the cameras
    gets a sphere its size; a nearby one, a sphere that fills about half of each view).
    Where the silhouettes cannot place the object (non-square views, parallel rays) the
    sphere sits where the optical axes meet (:func:`.views.cameras_focus`).

    Raises:
        ValueError: the hull cannot be carved (empty masks, cameras inconsistent with the
            masks, a camera inside the object).
    """
    if settings.init == "hull":
        return visual_hull(data, faces=settings.hull_faces)
    device = data.images.device
    try:
        centre, object_radius = object_sphere(data)
        centre = centre.float()
        dist = float((data.cameras.get_camera_center().detach().float() - centre)
                     .norm(dim=1).median())
        radius = min(object_radius, 0.25 * dist)
    except ValueError:  # the silhouettes cannot place it: where the optical axes meet
        centre, dist = cameras_focus(data.cameras)
        radius = 0.25 * dist
    if settings.init_radius is not None:
        radius = settings.init_radius
    sphere = ico_sphere(settings.init_level, device=device)
    return sphere.update_padded(sphere.verts_padded() * radius + centre.to(device))


def _signature(data: MultiViewData, settings: FitMeshSettings, seed: int,
               init: Meshes, depth: torch.Tensor | None = None) -> dict:
    signature = {
        "job": "fit_mesh",
        "settings": asdict(settings),
        "seed": seed,
        "views": tuple(data.images.shape),
        "masks_sum": round(float(data.masks.double().sum()), 3),
        "init_verts": tuple(init.verts_packed().shape),
    }
    if depth is not None:  # (absent without depth: earlier runs' checkpoints still match)
        signature["depth_sum"] = round(float(depth.double().clamp(min=0).sum()), 3)
    return signature


def _check_depth(depth: torch.Tensor | None, data: MultiViewData,
                 settings: FitMeshSettings) -> torch.Tensor | None:
    """``depth`` checked against the views and ``settings.w_depth``, on the views' device
    (None when the term is off)."""
    if depth is None:
        if settings.w_depth > 0:
            raise ValueError("settings.w_depth > 0 needs depth: (N, H, W) depth maps of the "
                             "training views (see diffrend.jobs.render_target_depth)")
        return None
    if not torch.is_tensor(depth) or tuple(depth.shape) != tuple(data.masks.shape):
        shape = tuple(depth.shape) if torch.is_tensor(depth) else type(depth).__name__
        raise ValueError(f"depth must have the masks' shape {tuple(data.masks.shape)}, got "
                         f"{shape}")
    if not depth.is_floating_point() or not bool(torch.isfinite(depth).all()):
        raise ValueError("depth must be a float tensor with no NaN or inf (<= 0 marks "
                         "pixels without the object)")
    if settings.w_depth == 0:
        return None  # given but unused: the run is the same as without it
    largest = max(s.image_size for s in settings.stages)
    if largest > min(depth.shape[1:]):
        raise ValueError(f"depth maps of {tuple(depth.shape[1:])} pixels cannot be shrunk to "
                         f"the {largest}-pixel stage: give maps at least the stages' size")
    return depth.to(device=data.images.device, dtype=data.images.dtype)


def _textures(colors: torch.Tensor, levels: list[torch.Tensor], uvs: tuple | None, size: int,
              detach: bool = False) -> TexturesVertex | TexturesUV:
    """The fit's colours: vertex colours (V, 3), or the pyramid texture on ``uvs``."""
    if uvs is None:
        return TexturesVertex([colors.detach() if detach else colors])
    tex = pyramid_texture(levels, size)
    return TexturesUV([tex.detach() if detach else tex], [uvs[1]], [uvs[0]])


def _unit_dirs(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)


class _MeshFit:
    """The state of a mesh fit at a step boundary, and its step.

    The state is the current mesh (``verts``, ``faces``), its colours (per-vertex
    ``colors`` or the texture ``levels``), each vertex's direction on the starting sphere
    (``dirs``, the texture layout) and where in the schedule the fit is (``stage``,
    ``stage_step``). The smooth parameters ``u``, the optimizer and the renderer of the
    current stage are built from it at the stage's first step (or at the first step after a
    resume, where ``u`` and the optimizer's moments come from the checkpoint).
    """

    def __init__(self, data: MultiViewData, init: Meshes, settings: FitMeshSettings,
                 seed: int, dist: DistContext | None = None,
                 depth: torch.Tensor | None = None) -> None:
        self.data, self.settings = data, settings
        self.depth = depth  # (N, H, W) target depth maps (settings.w_depth), or None
        self.depths: torch.Tensor | None = None  # depth at the current stage's size
        self.dist = dist if dist is not None else DistContext()
        device = data.images.device
        self.generator = torch.Generator().manual_seed(seed)
        self.verts = init.verts_packed().detach().clone()
        self.faces = init.faces_packed().clone()
        self.colors = torch.full_like(self.verts, 0.5)
        # log gains per training view (settings.exposure), centred when used
        self.log_gains = torch.zeros(data.images.shape[0], 3, dtype=self.verts.dtype,
                                     device=device)
        self.dirs = _unit_dirs(self.verts - self.verts.mean(0))
        self.texture_mode = settings.colors == "texture"
        self.levels = (grey_pyramid(settings.texture_size, settings.texture_levels, device)
                       if self.texture_mode else [])
        self.stage, self.stage_step = 0, 0
        self.shown_stage = 0  # the stage of the last step done (for the callback)
        self.u = torch.empty(0)
        self.opt: torch.optim.Adam | None = None
        self.opt_state: dict | None = None  # a checkpoint's, loaded when the stage is built
        # Per-vertex image error summed over the steps since the last remesh (and how many).
        self.err_sum = torch.zeros(self.verts.shape[0], dtype=self.verts.dtype, device=device)
        self.err_steps = 0
        self.remeshes = 0

    def state_dict(self) -> dict:
        return {"stage": self.stage, "stage_step": self.stage_step,
                "faces": self.faces.cpu(), "colors": self.colors.detach().cpu(),
                "u": self.u.detach().cpu(), "verts": self.verts.detach().cpu(),
                "dirs": self.dirs.cpu(), "levels": [lv.detach().cpu() for lv in self.levels],
                "optimizer": self.opt.state_dict() if self.opt is not None else None,
                "generator": self.generator.get_state(), "err_sum": self.err_sum.cpu(),
                "err_steps": self.err_steps, "remeshes": self.remeshes,
                "log_gains": self.log_gains.detach().cpu()}

    def load_state_dict(self, state: dict) -> None:
        device = self.data.images.device
        self.stage, self.stage_step = state["stage"], state["stage_step"]
        self.faces, self.colors = state["faces"].to(device), state["colors"].to(device)
        self.u, self.verts = state["u"].to(device), state["verts"].to(device)
        self.dirs = state["dirs"].to(device)
        self.levels = [lv.to(device) for lv in state["levels"]]
        self.opt_state = state["optimizer"]
        self.generator.set_state(state["generator"])
        self.err_sum, self.err_steps = state["err_sum"].to(device), state["err_steps"]
        self.remeshes = state["remeshes"]
        self.log_gains = state["log_gains"].to(device)
        stages = self.settings.stages
        if self.stage < len(stages) and self.stage_step >= stages[self.stage].iters:
            self.stage, self.stage_step = self.stage + 1, 0  # saved at a stage's end

    def _start_stage(self) -> None:
        """Parameters, optimizer, renderer and targets of the current stage."""
        settings, stage = self.settings, self.settings.stages[self.stage]
        if self.stage_step == 0 and settings.remesh_every > 0:  # a fresh stage: remesh
            self._remesh(stage.image_size)
        elif self.stage_step == 0 and stage.subdivide:  # a fresh stage: subdivide
            sub, feats = subdivide_meshes(Meshes([self.verts], [self.faces]),
                                          torch.cat([self.colors.detach(), self.dirs], 1))
            self.verts, self.faces = sub.verts_packed(), sub.faces_packed()
            self.colors, self.dirs = feats[:, :3], _unit_dirs(feats[:, 3:])
        # Depends on the topology only: rebuilt identically when a run resumes mid-stage.
        self.param = SmoothVertexParam(Meshes([self.verts], [self.faces]), settings.smooth)
        if self.stage_step == 0:
            self.u = self.param.to_params(self.verts)
            self.opt_state = None
        self.u = self.u.detach().clone().requires_grad_(True)
        self.colors = self.colors.detach().clone().requires_grad_(settings.colors == "vertex")
        self.levels = [lv.detach().clone().requires_grad_(True) for lv in self.levels]
        use_gains = self.uses_gains
        self.log_gains = self.log_gains.detach().clone().requires_grad_(use_gains)
        self.uvs = sphere_uvs(self.dirs, self.faces) if self.texture_mode else None
        groups = [{"params": [self.u], "lr": stage.lr}]
        if settings.colors != "none":
            groups.append({"params": self.levels if self.texture_mode else [self.colors],
                           "lr": settings.color_lr})
        if use_gains:
            groups.append({"params": [self.log_gains], "lr": settings.color_lr})
        self.opt = torch.optim.Adam(groups)
        if self.opt_state is not None:
            self.opt.load_state_dict(self.opt_state)
            self.opt_state = None
        device, with_rgb = self.data.images.device, settings.colors != "none"
        self.renderer = (
            AntialiasRenderer(stage.image_size, device, with_rgb=with_rgb, lit=settings.lit)
            if stage.silhouette == "antialias" else
            SoftSilhouetteRenderer(stage.image_size, settings.blur_px,
                                   settings.faces_per_pixel, device, with_rgb=with_rgb,
                                   lit=settings.lit))
        self.masks = resize_images(self.data.masks[..., None], stage.image_size)[..., 0]
        self.images = resize_images(self.data.images, stage.image_size)
        self.depths = (resize_depth(self.depth, stage.image_size)
                       if settings.w_depth > 0 else None)

    def _remesh(self, image_size: int) -> None:
        """Remesh toward ``edge_px``-pixel edges at ``image_size`` (shorter where the error
        summed since the last remesh is high), carrying colours, texture directions, the
        smooth parameters and the optimizer's moments over to the new vertices."""
        settings = self.settings
        edges = Meshes([self.verts], [self.faces]).edges_packed()
        ppu = pixels_per_unit(self.verts, edges, self.data.cameras, image_size)
        errors = self.err_sum / self.err_steps if self.err_steps else None
        target = target_edge_lengths(self.verts, self.faces, ppu, settings.edge_px, errors,
                                     settings.refine,
                                     max(64, round(settings.face_budget * image_size**2)))
        verts, faces, vmap = remesh(self.verts, self.faces, target)
        old = {"u": self.u, "colors": self.colors}  # the optimizer's tensors, if it has them
        self.verts, self.faces = verts, faces
        self.colors = map_vertex_attributes(self.colors.detach(), vmap).clamp(0.0, 1.0)
        self.dirs = _unit_dirs(map_vertex_attributes(self.dirs, vmap))
        self.err_sum = torch.zeros_like(verts[:, 0])
        self.err_steps = 0
        self.remeshes += 1
        if self.opt is None:  # a stage's start: _start_stage builds the rest
            return
        self.param = SmoothVertexParam(Meshes([verts], [faces]), settings.smooth)
        self.u = self.param.to_params(verts).requires_grad_(True)
        self.colors = self.colors.requires_grad_(settings.colors == "vertex")
        new = {"u": self.u, "colors": self.colors}
        for group in self.opt.param_groups:
            for k, p in enumerate(group["params"]):
                name = next((n for n, q in old.items() if q is p), None)
                if name is None:
                    continue
                group["params"][k] = new[name]
                state = self.opt.state.pop(p, None)
                if state:  # Adam's moments, averaged like the vertices (sq stays >= 0)
                    self.opt.state[new[name]] = {
                        key: (map_vertex_attributes(val, vmap) if key.startswith("exp_avg")
                              else val) for key, val in state.items()}
        if self.texture_mode:
            self.uvs = sphere_uvs(self.dirs, self.faces)

    def textures(self, detach: bool = False) -> TexturesVertex | TexturesUV:
        return _textures(self.colors, self.levels, self.uvs, self.settings.texture_size,
                         detach)

    def step(self, i: int) -> dict[str, float]:
        settings, stage = self.settings, self.settings.stages[self.stage]
        if self.opt is None:
            self._start_stage()
        if self._remesh_due(stage):  # (also right after a resume: the run is the same)
            self._remesh(stage.image_size)
        frac = self.stage_step / max(1, stage.iters - 1)
        self.opt.param_groups[0]["lr"] = stage.lr * (1.0 - (1.0 - settings.lr_end) * frac)
        n_views = self.data.masks.shape[0]
        # Every rank draws the same views (same generator); each renders its share of them.
        picked = torch.randperm(n_views, generator=self.generator)[: settings.views_per_step]
        ranks = self.dist.world_size
        idx = picked[self.dist.rank::ranks].to(self.data.images.device)
        cams = self.data.cameras[idx.tolist()]
        verts_now = self.param.to_verts(self.u)
        mesh = Meshes([verts_now], [self.faces], textures=self.textures())
        sil, rgb = self.renderer(mesh, cams)
        # Sums over this rank's pixels over the whole step's pixel count: the ranks' terms
        # (and their gradients) add up to the mean over all the step's views.
        pixels = picked.numel() * sil.shape[-1] * sil.shape[-2]
        terms = {"silhouette": ((sil - self.masks[idx]) ** 2).sum() / pixels}
        weights = {"silhouette": settings.w_silhouette}
        if rgb is not None:
            if self.log_gains.requires_grad:
                rgb = rgb * self.view_gains()[idx][:, None, None, :]
            terms["rgb"] = ((rgb - self.images[idx]) ** 2).sum() / (3 * pixels)
            weights["rgb"] = settings.w_rgb
        geometry = Meshes([verts_now], [self.faces])
        if self.depths is not None:
            # Hard depth, one face a pixel: its gradient moves the surface along the view
            # rays wherever both surfaces are seen (the outline is the silhouettes' job).
            z = render_depth(geometry, cams, stage.image_size)
            z_target = self.depths[idx]
            both = ((z > 0) & (z_target > 0)).to(z.dtype)
            terms["depth"] = ((z - z_target).abs() * both).sum() / pixels
            weights["depth"] = settings.w_depth
        for name, w, fn in (
            ("laplacian", settings.w_laplacian, mesh_laplacian_smoothing),
            ("edge", settings.w_edge, mesh_edge_loss),
            ("normal", settings.w_normal, mesh_normal_consistency),
        ):
            if w > 0:
                terms[name] = fn(geometry) / ranks  # every rank adds its share of it
                weights[name] = w
        loss = sum(weights[k] * v for k, v in terms.items())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        # One all-reduce per step: the gradients, this step's image errors and the loss terms.
        params = [p for group in self.opt.param_groups for p in group["params"]]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        shared = [p.grad for p in params]
        if settings.remesh_every > 0:  # where the views disagree: detail for the next remesh
            with torch.no_grad():
                err = (sil - self.masks[idx]).abs()
                if rgb is not None:
                    err = err + (rgb - self.images[idx]).abs().mean(-1)
                # vertex_errors is a mean over the views given: weighted to the step's mean
                step_err = vertex_errors(err, verts_now, cams)
                if ranks > 1:
                    step_err = step_err * (idx.numel() / picked.numel())
            shared.append(step_err)
        values = torch.stack([v.detach().to(torch.float64) for v in (loss, *terms.values())])
        shared.append(values)
        self.dist.sum_tensors_(shared)
        if settings.remesh_every > 0:
            self.err_sum += step_err
            self.err_steps += 1
        self.opt.step()
        with torch.no_grad():
            self.colors.clamp_(0.0, 1.0)  # (the texture's pyramid clamps its sum)
            self.verts = self.param.to_verts(self.u).detach()
        self.shown_stage = self.stage
        self.stage_step += 1
        if self.stage_step == stage.iters:  # the next step starts the next stage
            self.stage, self.stage_step = self.stage + 1, 0
            self.opt = None
        sums = values.tolist()
        return {"loss": sums[0], **dict(zip(terms, sums[1:], strict=True))}

    @property
    def uses_gains(self) -> bool:
        """Whether per-view exposure gains are learned (``exposure``, with colours)."""
        return self.settings.exposure and self.settings.colors != "none"

    def view_gains(self) -> torch.Tensor:
        """(N, 3) per-view colour gains, geometric mean 1 (differentiable in log_gains)."""
        return torch.exp(self.log_gains - self.log_gains.mean(0))

    def _remesh_due(self, stage: Stage) -> bool:
        """A remesh every ``remesh_every`` steps of a stage, but none so late that fewer than
        ``remesh_every`` steps remain to settle the new vertices."""
        every = self.settings.remesh_every
        return (every > 0 and self.stage_step > 0 and self.stage_step % every == 0
                and self.stage_step + every <= stage.iters)

    def shown_colors(self) -> torch.Tensor:
        """The colours as :class:`FitStep` shows them: (V, 3), or the (T, T, 3) texture."""
        if self.texture_mode:
            return pyramid_texture(self.levels, self.settings.texture_size).detach()
        return self.colors.detach()

    @torch.no_grad()
    def snapshot(self, views: list[int]) -> np.ndarray:
        shown = Meshes([self.verts], [self.faces], textures=self.textures(detach=True))
        return to_uint8(render_mesh_views(shown, self.data.cameras[views],
                                          self.settings.stages[-1].image_size,
                                          self.settings.lit))

    @torch.no_grad()
    def result_mesh(self) -> Meshes:
        if self.texture_mode:
            uvs = sphere_uvs(self.dirs, self.faces)
            textures = TexturesUV([pyramid_texture(self.levels, self.settings.texture_size)
                                   .detach()], [uvs[1]], [uvs[0]])
        else:
            textures = TexturesVertex([self.colors.detach()])
        return Meshes([self.verts.detach()], [self.faces], textures=textures)


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
    dist: DistContext | None = None,
    depth: torch.Tensor | None = None,
) -> FitMeshResult:
    """Deform a mesh to match multi-view silhouettes (and colours, and depth).

    Args:
        data: N training views: images (N, H, W, 3), masks (N, H, W), cameras. Images are
            resized to each stage's size (area averaging); square images expected.
        init: one starting mesh (default: the visual hull of the masks, or an ico-sphere
            where the cameras look, as ``settings.init`` says). Its colours, if any, are not
            used.
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
        dist: the process group (:func:`~.distributed.distributed`; None: this process
            alone). Every rank calls ``fit_mesh`` with the same arguments; each step's views
            are shared out among the ranks (``settings.views_per_step`` must be at least
            the world size), the gradients, image errors and losses summed over them, so
            every rank holds the same parameters, and the result is a one-process run's up
            to float rounding (the order of the sums). Only rank 0 shows the progress bar,
            renders the snapshots and writes the checkpoint; every rank reads it on resume.
        depth: (N, H, W) view-space depth of the training views at the images' size, <= 0
            where the object is absent (an RGB-D capture, or
            :func:`.views.render_target_depth` of a mesh): the target of the
            ``settings.w_depth`` term, which needs it. Shrunk to each stage's size by
            :func:`.views.resize_depth`. Not differentiated.

    Returns:
        :class:`FitMeshResult` (on every rank; ``frames`` only on rank 0). Ctrl-C during
        the fit stops it at the end of the current step (a second Ctrl-C stops at once);
        the result then holds the mesh so far and ``stopped="interrupted"``, and the
        checkpoint (when given) is up to date.

    Raises:
        ValueError: bad data (empty masks in every view, non-square images, cameras that
            carve an empty hull or sit inside it), settings, init mesh, or a checkpoint from
            a different run.
    """
    settings = settings if settings is not None else FitMeshSettings()
    if not isinstance(settings, FitMeshSettings):
        raise ValueError("settings must be a FitMeshSettings")
    n_views, _ = check_views(data)
    depth = _check_depth(depth, data, settings)
    dist = dist if dist is not None else DistContext()
    check_views_per_rank(settings.views_per_step, n_views, dist)
    options = RunOptions(checkpoint, checkpoint_every, resume, progress and dist.is_main)
    if init is None:
        init = initial_mesh(data, settings)
    elif not isinstance(init, Meshes) or len(init) != 1 or init.isempty():
        raise ValueError("init must be one non-empty mesh")
    if not torch.isfinite(init.verts_packed()).all():
        raise ValueError("init has NaN or inf vertices")
    init = init.to(data.images.device)

    total = sum(s.iters for s in settings.stages)
    snap_idx = snapshot_indices(n_views, settings.snapshot_views)
    job = _MeshFit(data, init, settings, seed, dist, depth)

    def step_callback(step: int, record: dict[str, float]) -> bool | None:
        return callback(FitStep(step, total, job.shown_stage, record, job.verts, job.faces,
                                job.shown_colors()))

    def postfix(record: dict[str, float]) -> dict:
        return {"stage": job.shown_stage, "loss": f"{record['loss']:.4f}",
                "sil": f"{record['silhouette']:.4f}"}

    snaps = Snapshots(settings.snapshot_every or max(1, total // 50),
                      lambda: job.snapshot(snap_idx))
    ran = run(job.step, total, state=job,
              signature=_signature(data, settings, seed, init, depth),
              options=options, desc="fit", callback=None if callback is None else step_callback,
              postfix=postfix, snapshots=snaps, dist=dist)
    return FitMeshResult(mesh=job.result_mesh(), history=ran.history, frames=ran.frames,
                         snapshot_views=snap_idx, steps=ran.steps, stopped=ran.stopped,
                         seconds=ran.seconds, remeshes=job.remeshes,
                         view_gains=job.view_gains().detach() if job.uses_gains else None)
