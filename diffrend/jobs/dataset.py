"""Multi-view datasets rendered from a folder of meshes: the work behind
``diffrend render-dataset``.

Each mesh file is loaded as ``diffrend render`` loads it (:func:`.preview.load_for_render`:
textured from its MTL, else its vertex colours, else light grey; centred and scaled to max
|coordinate| 1), seen by :func:`.views.sphere_cameras` (``views`` cameras on a Fibonacci
spiral at distance 2.7, 60 degree FoV) and hard-rasterized once per batch of views. Per mesh
``OUT/NAME/`` holds:

* ``transforms.json``: the cameras (NeRF/Blender axes, :func:`diffrend.io.save_views`), each
  frame with ``mask_path`` and ``depth_file_path``, and ``integer_depth_scale``
  (:data:`DEPTH_SCALE`): :func:`diffrend.io.load_views` and the fit jobs' ``--data`` read
  it, and so does nerfstudio.
* ``images/view_XXX.png``: RGBA, the colour lit by a headlight (``lit``) or the albedo,
  alpha = the mask.
* ``masks/view_XXX.png``: 8-bit, 255 where the mesh covers the pixel centre, 0 elsewhere.
* ``depth/view_XXX.png``: 16-bit; the view-space z of the surface at the pixel centre
  (distance along the optical axis, not along the ray) is ``value * DEPTH_SCALE``; 0 where
  the mask is 0.
* ``normals/view_XXX.png``: 8-bit RGB; the world-space unit normal interpolated from the
  vertex normals is ``2 * value / 255 - 1`` (as wound: the back of an open surface shows
  its normal facing away from the camera); 0 where the mask is 0.
* ``dataset.json``: written last, the completion marker (the source file's size and mtime,
  the settings, the normalisation).

A mesh is rendered into a hidden ``OUT/.NAME.partial`` folder which is renamed to
``OUT/NAME`` once complete, so ``OUT/NAME`` with its ``dataset.json`` is always a whole
dataset: a run killed at any moment leaves complete meshes and a partial folder that the
next run removes. Meshes are shared among the ranks of :mod:`.distributed` (every
``world_size``-th pending mesh); a mesh file that fails to load or render is reported with
its error and skipped.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..io import MultiViewData, save_views
from ..io.atomic import atomic_open, atomic_write_bytes
from ..structures import Meshes
from .distributed import DistContext, shard
from .preview import load_for_render
from .views import render_hard_fragments, sphere_cameras

MESH_EXTENSIONS = (".obj", ".ply", ".off", ".stl", ".glb")
MARKER = "dataset.json"
DEPTH_SCALE = 1e-4  # world units per step of the 16-bit depth PNGs: z up to 6.5535
CAMERA_DIST = 2.7  # camera distance to the origin (the mesh spans max |coordinate| 1)
CAMERA_FOV = 60.0  # degrees
_FORMAT = 1  # version of the per-mesh layout; a marker of another version is re-rendered


@dataclass(frozen=True)
class DatasetSettings:
    """How each mesh is rendered.

    Attributes:
        views: cameras per mesh (:func:`.views.sphere_cameras`, deterministic).
        image_size: side of the square images.
        lit: colour lit by a headlight per camera (else the albedo).
        batch_size: views per rasterizer call (bounds memory).
    """

    views: int = 40
    image_size: int = 256
    lit: bool = True
    batch_size: int = 8

    def __post_init__(self) -> None:
        for name, lo in (("views", 1), ("image_size", 8), ("batch_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {value!r}")
        if not isinstance(self.lit, bool):
            raise ValueError(f"lit must be a bool, got {self.lit!r}")

    def marker_fields(self) -> dict:
        """What a finished mesh's marker must match to be skipped (batch_size is not
        part of the result)."""
        return {"views": self.views, "image_size": self.image_size, "lit": self.lit,
                "camera_dist": CAMERA_DIST, "camera_fov": CAMERA_FOV,
                "depth_scale": DEPTH_SCALE, "format": _FORMAT}


@dataclass
class DatasetSummary:
    """What a :func:`render_dataset` run did (the same on every rank).

    Attributes:
        rendered: output names of the meshes rendered by this run.
        skipped: names already complete from an earlier run.
        failed: ``{"mesh": file, "name": name, "error": message}`` per failed mesh.
        seconds: wall time of the run (rank 0's).
        world_size: number of ranks.
    """

    rendered: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    world_size: int = 1

    @property
    def ok(self) -> bool:
        """No mesh failed."""
        return not self.failed


def find_meshes(folder: str | os.PathLike, patterns: Sequence[str] | None = None) -> list[Path]:
    """The mesh files of ``folder``, sorted (the same list on every rank).

    Args:
        folder: the folder to search.
        patterns: globs relative to ``folder`` (``"*.obj"``, ``"**/*.ply"``); None: the files
            directly in ``folder`` with an extension of :data:`MESH_EXTENSIONS` (any case).

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
        ValueError: a pattern is empty, absolute or leads out of ``folder`` (``..``).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    for pattern in patterns or ():
        if not pattern or Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise ValueError(f"patterns: {pattern!r} must be a glob relative to the folder, "
                             "inside it")
    if patterns is None:
        found = {p for p in root.iterdir() if p.suffix.lower() in MESH_EXTENSIONS}
    else:
        found = {p for pattern in patterns for p in root.glob(pattern)}
    return sorted((p for p in found if p.is_file() and not p.name.startswith(".")),
                  key=lambda p: p.relative_to(root).as_posix())


def output_names(paths: Sequence[Path], folder: str | os.PathLike) -> list[str]:
    """A unique, file-safe output folder name per mesh file: its path relative to ``folder``
    without the extension (``sub/cow.obj`` -> ``sub__cow``), with the extension appended
    when two files would share a name (``cow.obj``, ``cow.ply`` -> ``cow_obj``,
    ``cow_ply``)."""
    root = Path(folder)

    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip(".") or "mesh"

    stems = [safe(p.relative_to(root).with_suffix("").as_posix().replace("/", "__"))
             for p in paths]
    names = [s if stems.count(s) == 1 else f"{s}_{p.suffix.lstrip('.').lower()}"
             for s, p in zip(stems, paths, strict=True)]
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names):
        while name in seen or name == "summary.json":
            name = f"{name}_{i}"
        seen.add(name)
        out.append(name)
    return out


def _source_fields(path: Path) -> dict:
    st = path.stat()
    return {"source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns}


def is_complete(out_dir: str | os.PathLike, source: str | os.PathLike,
                settings: DatasetSettings) -> bool:
    """Whether ``out_dir`` holds a finished dataset of ``source`` made with ``settings``:
    its marker exists, names the same settings, and the source file's size and
    modification time have not changed since."""
    out_dir = Path(out_dir)
    try:
        marker = json.loads((out_dir / MARKER).read_text())
        current = {**settings.marker_fields(), **_source_fields(Path(source))}
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or not (out_dir / "transforms.json").is_file():
        return False
    return all(marker.get(k) == v for k, v in current.items())


@torch.no_grad()
def render_mesh_maps(mesh: Meshes, settings: DatasetSettings) -> dict[str, torch.Tensor]:
    """Colour, mask, depth and normals of one mesh from :func:`.views.sphere_cameras`.

    Args:
        mesh: one textured :class:`~diffrend.structures.Meshes` (e.g. from
            :func:`.preview.load_for_render`).
        settings: views, image size, lighting, batch size.

    Returns:
        ``images (N, S, S, 3)`` in [0, 1], ``masks (N, S, S)`` in {0, 1}, ``depth (N, S, S)``
        view-space z (0 outside the mask), ``normals (N, S, S, 3)`` world-space unit normals
        (0 outside the mask), all float32 on the mesh's device, and ``cameras`` (N
        FoVPerspectiveCameras). No gradients.
    """
    device = mesh.device
    cameras = sphere_cameras(settings.views, dist=CAMERA_DIST, fov=CAMERA_FOV, device=device)
    faces = mesh.faces_packed()
    n_faces = faces.shape[0]
    corner_normals = mesh.verts_normals_packed()[faces]  # (F, 3, 3)
    out: dict[str, list[torch.Tensor]] = {"images": [], "masks": [], "depth": [], "normals": []}
    for start in range(0, settings.views, settings.batch_size):
        idx = list(range(start, min(start + settings.batch_size, settings.views)))
        rgba, frags = render_hard_fragments(mesh, cameras[idx], settings.image_size,
                                            settings.lit)
        p2f = frags.pix_to_face[..., 0]
        hit = p2f >= 0
        # the extended mesh repeats the faces once per view: face f of view v is v*F + f
        corners = corner_normals[(p2f % max(n_faces, 1)).clamp(min=0)]  # (B, S, S, 3, 3)
        normals = (frags.bary_coords[..., 0, :, None] * corners).sum(-2)
        normals = torch.nn.functional.normalize(normals, dim=-1) * hit[..., None]
        out["images"].append(rgba[..., :3].clamp(0, 1))
        out["masks"].append(hit.float())
        out["depth"].append(torch.where(hit, frags.zbuf[..., 0], 0.0))
        out["normals"].append(normals)
    maps = {k: torch.cat(v) for k, v in out.items()}
    maps["cameras"] = cameras
    return maps


def _png(array: np.ndarray, path: Path) -> None:
    with atomic_open(path) as f:
        Image.fromarray(array).save(f, format="PNG")


def _depth_png(depth: np.ndarray, path: Path) -> None:
    """(H, W) float depth -> 16-bit grayscale PNG of ``round(depth / DEPTH_SCALE)``."""
    steps = np.round(depth / DEPTH_SCALE)
    if steps.max(initial=0) > 65535:
        raise ValueError(f"{path.name}: depth {depth.max():.3f} exceeds the 16-bit range "
                         f"({65535 * DEPTH_SCALE:.4f})")
    _png(steps.astype(np.uint16), path)  # Pillow writes uint16 arrays as 16-bit PNG (I;16)


def write_mesh_dataset(source: str | os.PathLike, out_dir: str | os.PathLike,
                       settings: DatasetSettings,
                       device: torch.device | str = "cpu") -> dict:
    """Render ``source`` into ``out_dir`` (the layout of the module docstring).

    The files are written into ``OUT/.NAME.partial`` (an earlier one is removed first),
    the marker last, and the folder is then renamed to ``out_dir``, replacing an earlier
    dataset of this mesh.

    Returns:
        The marker's content.

    Raises:
        ValueError: the mesh cannot be loaded or rendered, or ``out_dir`` exists and is
            not a dataset of this writer (no marker; it is never deleted); anything the
            mesh loaders raise on a broken file.
    """
    source, out_dir = Path(source), Path(out_dir)
    if out_dir.exists() and not (out_dir / MARKER).is_file():
        raise ValueError(f"{out_dir} exists and is not a render-dataset output (no {MARKER});"
                         " move it away")
    start = time.perf_counter()
    stamp = _source_fields(source)  # before loading: a file changed meanwhile is redone
    mesh = load_for_render(source, device=device)
    if mesh.faces_packed().shape[0] == 0:
        raise ValueError(f"{source}: the mesh has no faces")
    maps = render_mesh_maps(mesh, settings)
    partial = out_dir.parent / f".{out_dir.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    data = MultiViewData(images=maps["images"].cpu(), masks=maps["masks"].cpu(),
                         cameras=maps["cameras"].to("cpu"),
                         names=tuple(f"view_{i:03d}" for i in range(settings.views)))
    json_path = save_views(data, partial)
    spec = json.loads(json_path.read_text())
    masks = (maps["masks"].cpu().numpy() * 255).astype(np.uint8)
    depth = maps["depth"].cpu().double().numpy()
    normals = np.round((maps["normals"].cpu().numpy() * 0.5 + 0.5) * 255).astype(np.uint8)
    normals *= masks[..., None] > 0
    for i, frame in enumerate(spec["frames"]):
        stem = Path(frame["file_path"]).stem
        frame["mask_path"] = f"masks/{stem}.png"
        frame["depth_file_path"] = f"depth/{stem}.png"
        _png(masks[i], partial / frame["mask_path"])
        _depth_png(depth[i], partial / frame["depth_file_path"])
        _png(normals[i], partial / "normals" / f"{stem}.png")
    spec["integer_depth_scale"] = DEPTH_SCALE
    atomic_write_bytes(json_path, (json.dumps(spec, indent=2) + "\n").encode("utf-8"))
    marker = {**settings.marker_fields(), **stamp, "source": str(source),
              "faces": int(mesh.faces_packed().shape[0]),
              "verts": int(mesh.verts_packed().shape[0]),
              "normalisation": "bounding box centred at the origin, max |coordinate| 1",
              "seconds": round(time.perf_counter() - start, 3)}
    atomic_write_bytes(partial / MARKER, (json.dumps(marker, indent=2) + "\n").encode())
    if out_dir.exists():  # an earlier dataset of this mesh (checked above: it has a marker)
        shutil.rmtree(out_dir)
    os.replace(partial, out_dir)
    return marker


def _error(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else '(no message)'}"


def render_dataset(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    settings: DatasetSettings,
    ctx: DistContext,
    patterns: Sequence[str] | None = None,
    overwrite: bool = False,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> DatasetSummary:
    """Render every mesh file of ``folder`` into ``out`` (see the module docstring),
    sharing the meshes among the ranks of ``ctx``; every rank must call it.

    Rank 0 lists the meshes and decides which are finished (skipped unless ``overwrite``)
    and sends the list to the others, so all ranks work from one list. The ranks then work
    in rounds of one mesh each, adding up the round's count after it (a mesh that fails is
    caught and counted, so every rank reaches every count). Rank 0 writes
    ``out/summary.json`` at the end.

    Args:
        folder: the mesh files' folder. out: the output folder (created).
        settings: how each mesh is rendered.
        ctx: this process's place in the group (:func:`.distributed.distributed`).
        patterns: globs of mesh files (see :func:`find_meshes`).
        overwrite: re-render meshes that are finished.
        device: where this rank renders.
        progress: called on rank 0 as ``progress(done, total)`` after the listing and
            after every round (done counts skipped, rendered and failed meshes).

    Returns:
        The run's :class:`DatasetSummary` (the same on every rank).

    Raises:
        FileNotFoundError, ValueError: (on every rank) ``folder`` is missing or holds no
            mesh file matching ``patterns``.
    """
    start = time.perf_counter()
    out = Path(out)
    listing: tuple[list[tuple[str, str]], list[str]] | str
    if ctx.is_main:
        try:
            paths = find_meshes(folder, patterns)
            if not paths:
                wanted = ", ".join(patterns) if patterns else ", ".join(MESH_EXTENSIONS)
                raise ValueError(f"{folder}: no mesh files ({wanted})")
            names = output_names(paths, folder)
            pending, skipped = [], []
            for path, name in zip(paths, names, strict=True):
                if not overwrite and is_complete(out / name, path, settings):
                    skipped.append(name)
                else:
                    pending.append((str(path), name))
            listing = (pending, skipped)
        except Exception as e:  # reported on every rank: none may wait for a list in vain
            listing = f"{type(e).__name__}\n{e}"
    else:
        listing = ""
    listing = ctx.broadcast(listing)
    if isinstance(listing, str):
        kind, _, message = listing.partition("\n")
        raise (FileNotFoundError if kind == "FileNotFoundError" else ValueError)(message)
    pending, skipped = listing
    total = len(pending) + len(skipped)
    done = len(skipped)
    if progress and ctx.is_main:
        progress(done, total)

    mine = shard(pending, ctx)
    rendered: list[str] = []
    failed: list[dict] = []
    for round_ in range(math.ceil(len(pending) / ctx.world_size)):
        finished = 0
        if round_ < len(mine):
            source, name = mine[round_]
            try:
                write_mesh_dataset(source, out / name, settings, device=device)
                rendered.append(name)
            except Exception as e:  # a broken mesh file must not stop the run
                failed.append({"mesh": source, "name": name, "error": _error(e)})
                partial = out / f".{name}.partial"
                if partial.exists():
                    shutil.rmtree(partial, ignore_errors=True)
            finished = 1
        done += ctx.sum([finished])[0]
        if progress and ctx.is_main:
            progress(done, total)

    gathered = ctx.gather((rendered, failed))
    summary = DatasetSummary(
        rendered=sorted(n for r, _ in gathered for n in r), skipped=skipped,
        failed=sorted((f for _, fs in gathered for f in fs), key=lambda f: f["name"]),
        seconds=time.perf_counter() - start, world_size=ctx.world_size)
    if ctx.is_main:
        report = {"meshes": total, "rendered": summary.rendered, "skipped": summary.skipped,
                  "failed": summary.failed, "settings": asdict(settings),
                  "world_size": ctx.world_size, "seconds": round(summary.seconds, 3)}
        atomic_write_bytes(out / "summary.json", (json.dumps(report, indent=2) + "\n").encode())
    ctx.barrier()  # summary.json exists on every rank's return
    return summary


__all__ = ["CAMERA_DIST", "CAMERA_FOV", "DEPTH_SCALE", "MARKER", "MESH_EXTENSIONS",
           "DatasetSettings", "DatasetSummary", "find_meshes", "is_complete",
           "output_names", "render_dataset", "render_mesh_maps", "write_mesh_dataset"]
