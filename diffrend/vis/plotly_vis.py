"""Interactive 3D figures of meshes, point clouds, cameras and ray bundles with plotly.

PyTorch3D's conventions: one 3D subplot (plotly "scene") per key of the dict given to
:func:`plot_scene`, one trace per structure in it, +Y up, equal scales on the three axes.

- ``Meshes`` -> one ``Mesh3d`` trace (the batch joined as one scene). ``TexturesVertex``
  with >= 3 channels gives vertex colours; ``TexturesUV`` and ``TexturesAtlas`` (and any
  textures with ``faces_verts_textures_packed``) give one flat colour per face, the mean
  of the texture over that face's corners (UV) or texel grid (atlas) - plotly has no
  texture maps. Without textures plotly picks the colour.
- ``Pointclouds`` -> one ``Scatter3d`` of markers, coloured by 3 (RGB) or 4 (RGBA)
  feature channels, at most ``pointcloud_max_points`` random points per cloud.
- Cameras (``CamerasBase``) -> one ``Scatter3d`` of lines: :func:`get_camera_wireframe`
  placed at every camera of the batch (camera -> world transform).
- Ray bundles (any object with ``origins`` (..., 3), ``directions`` (..., 3) and
  ``lengths`` (..., P), as PyTorch3D's ``RayBundle`` and ``HeterogeneousRayBundle``) ->
  one line per ray from its nearest to its farthest point, and a ``<name>_points`` trace
  of the points ``origins + lengths * directions``.

plotly is imported when a figure is made; without it these functions raise an ImportError
that names the extra: ``pip install diffrend[vis]``. Nothing here is differentiable:
tensors are detached and copied to the CPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from ..cameras import CamerasBase
from ..shading.textures import TexturesAtlas, TexturesVertex
from ..structures import Meshes, Pointclouds

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

__all__ = [
    "AxisArgs",
    "Lighting",
    "RayBundleLike",
    "Struct",
    "get_camera_wireframe",
    "plot_batch_individually",
    "plot_scene",
]


@runtime_checkable
class RayBundleLike(Protocol):
    """What a ray bundle needs for plotting: ``origins`` and ``directions`` (..., 3) and
    ``lengths`` (..., P), the distances along each ray of its P points. A heterogeneous
    bundle (rays of several cameras, sorted by camera) also has ``camera_counts`` (C,)."""

    origins: torch.Tensor
    directions: torch.Tensor
    lengths: torch.Tensor


Struct = Meshes | Pointclouds | CamerasBase | RayBundleLike


class AxisArgs(NamedTuple):
    """Settings applied to all three axes of every subplot (plotly ``layout.scene.xaxis``
    keys); the defaults hide grid, ticks and labels on a white background."""

    showgrid: bool = False
    zeroline: bool = False
    showline: bool = False
    ticks: str = ""
    showticklabels: bool = False
    backgroundcolor: str = "#fff"
    showaxeslabels: bool = False


class Lighting(NamedTuple):
    """plotly ``Mesh3d.lighting`` of every mesh trace: mostly ambient, no specular."""

    ambient: float = 0.8
    diffuse: float = 1.0
    fresnel: float = 0.0
    specular: float = 0.0
    roughness: float = 0.5
    facenormalsepsilon: float = 1e-6
    vertexnormalsepsilon: float = 1e-12


class _Rays(NamedTuple):
    """One camera's rays cut out of a batched or heterogeneous bundle."""

    origins: torch.Tensor
    directions: torch.Tensor
    lengths: torch.Tensor
    xys: torch.Tensor | None


def _plotly() -> tuple[Any, Any]:
    """``plotly.graph_objects`` and ``plotly.subplots.make_subplots``, or a helpful error."""
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "diffrend.vis.plotly_vis needs plotly: pip install diffrend[vis]"
        ) from e
    return go, make_subplots


def get_camera_wireframe(scale: float = 0.3) -> torch.Tensor:
    """A camera glyph in view space, as one polyline: the centre, a 2 x 1.5 image-plane
    rectangle at depth 2 joined to it, a roof over the rectangle's +Y edge (which way is up)
    and the optical axis to depth 3, all times ``scale``.

    Args:
        scale: size of the glyph (world units per unit above).

    Returns:
        (13, 3) float32 points; consecutive points are joined by lines (every edge once,
        except one drawn twice). Camera space: +Z is the viewing direction, +Y up.
    """
    half_w, half_h, depth = 1.0, 0.75, 2.0
    centre = (0.0, 0.0, 0.0)
    tl, tr = (half_w, half_h, depth), (-half_w, half_h, depth)  # PyTorch3D: +X is left
    bl, br = (half_w, -half_h, depth), (-half_w, -half_h, depth)
    roof = (0.0, half_h + 0.5, depth)
    axis_end = (0.0, 0.0, 3.0)
    path = [axis_end, centre, tl, tr, br, bl, tl, roof, tr, centre, br, bl, centre]
    return torch.tensor(path, dtype=torch.float32) * scale


# ----------------------------------------------------------------------------- helpers


def _is_ray_bundle(struct: Any) -> bool:
    return all(hasattr(struct, a) for a in ("origins", "directions", "lengths"))


def _is_heterogeneous(struct: Any) -> bool:
    return _is_ray_bundle(struct) and getattr(struct, "camera_counts", None) is not None


def _struct_len(struct: Any) -> int:
    """Batch size: cameras/meshes/clouds in the batch, or cameras a ray bundle belongs to."""
    if _is_heterogeneous(struct):
        return len(struct.camera_counts)
    if _is_ray_bundle(struct):
        return 1 if struct.directions.ndim <= 2 else int(struct.directions.shape[0])
    return len(struct)


def _cpu(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to("cpu", torch.float64)


def _rgb_strings(colours: torch.Tensor) -> list[str]:
    """(P, C) colours in [0, 1] (C = 1 grey, 3 RGB, 4 RGBA) -> plotly colour strings."""
    c = _cpu(colours).clamp(0.0, 1.0)
    if c.shape[1] == 1:
        c = c.expand(-1, 3)
    rgb = torch.round(c[:, :3] * 255.0).to(torch.int64).tolist()
    if c.shape[1] == 4:
        return [f"rgba({r},{g},{b},{a:.4g})" for (r, g, b), a in zip(rgb, c[:, 3].tolist(),
                                                                    strict=True)]
    return [f"rgb({r},{g},{b})" for r, g, b in rgb]


def _colour_channels(feats: torch.Tensor | None) -> bool:
    return feats is not None and feats.ndim == 2 and feats.shape[1] in (1, 3, 4)


class _Bounds:
    """Running axis-aligned box of everything plotted in one subplot."""

    def __init__(self) -> None:
        self.lo: torch.Tensor | None = None
        self.hi: torch.Tensor | None = None

    def add(self, points: torch.Tensor) -> None:
        pts = points[torch.isfinite(points).all(dim=1)]
        if pts.shape[0] == 0:
            return
        lo, hi = pts.amin(dim=0), pts.amax(dim=0)
        self.lo = lo if self.lo is None else torch.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else torch.maximum(self.hi, hi)

    def cube(self) -> list[list[float]] | None:
        """[x, y, z] ranges of a cube around the box (equal scales, some margin)."""
        if self.lo is None or self.hi is None:
            return None
        centre = (self.lo + self.hi) / 2
        half = float((self.hi - self.lo).max()) * 0.6
        if half <= 0.0:
            half = 0.5  # a single point
        return [[float(c) - half, float(c) + half] for c in centre]


# ----------------------------------------------------------------------------- traces


def _mesh_trace(go: Any, meshes: Meshes, name: str, lighting: dict[str, float],
                bounds: _Bounds) -> Any:
    verts = _cpu(meshes.verts_packed())
    faces = meshes.faces_packed().detach().cpu()
    kwargs: dict[str, Any] = {}
    tex = meshes.textures
    if isinstance(tex, TexturesVertex):
        feats = tex.verts_features_packed()
        if feats.shape[0] == verts.shape[0] and feats.shape[1] in (1, 3, 4):
            kwargs["vertexcolor"] = _rgb_strings(feats[:, :3] if feats.shape[1] == 4 else feats)
    elif tex is not None and faces.shape[0] > 0:
        if isinstance(tex, TexturesAtlas):
            face_feats = tex.atlas_packed().detach().flatten(1, 2).mean(dim=1)
        elif hasattr(tex, "faces_verts_textures_packed"):
            face_feats = tex.faces_verts_textures_packed().detach().mean(dim=1)
        else:
            face_feats = None
        if face_feats is not None and face_feats.shape[0] == faces.shape[0] and (
            face_feats.shape[1] in (1, 3, 4)
        ):
            feats = face_feats[:, :3] if face_feats.shape[1] == 4 else face_feats
            kwargs["facecolor"] = _rgb_strings(feats)
    if faces.shape[0] > 0:
        # Vertices no face uses are not drawn; keep them out of the axis ranges too.
        bounds.add(verts[torch.unique(faces)])
    v = verts.numpy()
    f = faces.numpy()
    return go.Mesh3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2],
                     lighting=lighting, name=name, **kwargs)


def _random_rows(n: int, k: int) -> torch.Tensor:
    return torch.randperm(n)[:k].sort().values


def _pointcloud_trace(go: Any, clouds: Pointclouds, name: str, max_points: int,
                      marker_size: float, bounds: _Bounds) -> Any:
    points_list = clouds.points_list()
    feats_list = clouds.features_list()
    points, feats = [], []
    for i, pts in enumerate(points_list):
        keep = _random_rows(pts.shape[0], max_points) if pts.shape[0] > max_points else None
        points.append(pts if keep is None else pts[keep.to(pts.device)])
        if feats_list is not None:
            f = feats_list[i]
            feats.append(f if keep is None else f[keep.to(f.device)])
    xyz = _cpu(torch.cat(points)) if points else torch.zeros((0, 3), dtype=torch.float64)
    bounds.add(xyz)
    marker: dict[str, Any] = {"size": marker_size}
    colours = torch.cat(feats) if feats else None
    if _colour_channels(colours) and colours.shape[0] == xyz.shape[0]:
        marker["color"] = _rgb_strings(colours)
    p = xyz.numpy()
    return go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", marker=marker,
                        name=name)


def _polylines(lines: torch.Tensor) -> torch.Tensor:
    """(L, K, 3) polylines -> (L * (K + 1) - 1, 3) with a NaN row between polylines, so that
    plotly draws them as one trace without joining them."""
    gap = torch.full((lines.shape[0], 1, 3), float("nan"), dtype=lines.dtype)
    return torch.cat((lines, gap), dim=1).reshape(-1, 3)[:-1]


def _camera_trace(go: Any, cameras: CamerasBase, name: str, scale: float,
                  bounds: _Bounds) -> Any:
    wire = get_camera_wireframe(scale).to(device=cameras.device, dtype=cameras.dtype)
    to_world = cameras.get_world_to_view_transform().inverse()
    placed = _cpu(to_world.transform_points(wire))
    if placed.ndim == 2:
        placed = placed[None]
    bounds.add(placed.reshape(-1, 3))
    xyz = _polylines(placed).numpy()
    return go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="lines", name=name)


def _ray_traces(go: Any, rays: Any, name: str, max_rays: int, max_points_per_ray: int,
                marker_size: float, line_width: float, bounds: _Bounds) -> list[Any]:
    origins, directions, lengths = rays.origins, rays.directions, rays.lengths
    if origins.shape[-1] != 3 or directions.shape[-1] != 3 or (
        origins.shape[:-1] != lengths.shape[:-1] or directions.shape[:-1] != lengths.shape[:-1]
    ):
        raise ValueError(
            f"{name}: a ray bundle needs origins (..., 3), directions (..., 3) and lengths "
            f"(..., P) over the same rays, got {tuple(origins.shape)}, "
            f"{tuple(directions.shape)}, {tuple(lengths.shape)}"
        )
    o = _cpu(origins).reshape(-1, 3)
    d = _cpu(directions).reshape(-1, 3)
    t = _cpu(lengths).reshape(o.shape[0], -1)
    if o.shape[0] > max_rays:
        keep = _random_rows(o.shape[0], max_rays)
        o, d, t = o[keep], d[keep], t[keep]
    n_rays, n_pts = t.shape
    if n_rays and n_pts:
        ends = torch.stack((t.amin(dim=1), t.amax(dim=1)), dim=1)  # (R, 2)
        segments = o[:, None] + ends[..., None] * d[:, None]  # (R, 2, 3)
        line_xyz = _polylines(segments)
    else:
        line_xyz = torch.zeros((0, 3), dtype=torch.float64)
    if n_pts > max_points_per_ray:
        # An independent random subset of each ray's points.
        cols = torch.rand(n_rays, n_pts).argsort(dim=1)[:, :max_points_per_ray]
        t = torch.gather(t, 1, cols.sort(dim=1).values)
    points = (o[:, None] + t[..., None] * d[:, None]).reshape(-1, 3)
    bounds.add(points)
    lx, px = line_xyz.numpy(), points.numpy()
    return [
        go.Scatter3d(x=lx[:, 0], y=lx[:, 1], z=lx[:, 2], mode="lines",
                     line={"width": line_width}, name=name),
        go.Scatter3d(x=px[:, 0], y=px[:, 1], z=px[:, 2], mode="markers",
                     marker={"size": marker_size}, name=name + "_points"),
    ]


# ----------------------------------------------------------------------------- viewpoint


def _eye_at_up(cameras: CamerasBase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """World-space eye (N, 3), a point straight ahead at distance 1 (N, 3) and the up
    direction (N, 3) of every camera."""
    to_world = cameras.get_world_to_view_transform().inverse()
    probe = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]],
                         dtype=cameras.dtype, device=cameras.device)
    world = _cpu(to_world.transform_points(probe))
    if world.ndim == 2:
        world = world[None]
    eye = world[:, 0]
    return eye, world[:, 1], world[:, 2] - eye


def _to_scene_units(ranges: list[list[float]], point: torch.Tensor,
                    is_position: bool) -> dict[str, float]:
    """World coordinates -> plotly's scene camera coordinates, where the axis ranges span
    [-1, 1] (PyTorch3D's convention); directions are only scaled."""
    out = {}
    for axis, (lo, hi), value in zip("xyz", ranges, point.tolist(), strict=True):
        half = (hi - lo) / 2
        out[axis] = (value - (lo + hi) / 2) / half if is_position else value / half
    return out


# ----------------------------------------------------------------------------- public


def plot_scene(
    plots: Mapping[str, Mapping[str, Struct]],
    *,
    viewpoint_cameras: CamerasBase | None = None,
    ncols: int = 1,
    camera_scale: float = 0.3,
    pointcloud_max_points: int = 20000,
    pointcloud_marker_size: float = 1,
    raybundle_max_rays: int = 20000,
    raybundle_max_points_per_ray: int = 1000,
    raybundle_ray_point_marker_size: float = 1,
    raybundle_ray_line_width: float = 1,
    axis_args: AxisArgs | None = None,
    lighting: Lighting | None = None,
    xaxis: Mapping[str, Any] | None = None,
    yaxis: Mapping[str, Any] | None = None,
    zaxis: Mapping[str, Any] | None = None,
) -> go.Figure:
    """A plotly figure with one 3D subplot per entry of ``plots`` and one trace per structure.

    Batched structures are drawn in one trace each (all meshes of a ``Meshes`` together,
    all cameras of a batch together); see :func:`plot_batch_individually` for one subplot
    per batch element. Axis ranges make a cube around everything in the subplot.

    Args:
        plots: {subplot title: {trace name: Meshes | Pointclouds | cameras | ray bundle}}.
        viewpoint_cameras: cameras to look from: one for every subplot or a single one for
            all (otherwise a warning, and plotly's default view). Default view: +Y up.
        ncols: subplots per row (rows fill left to right).
        camera_scale: size of the camera glyphs (:func:`get_camera_wireframe`).
        pointcloud_max_points: most points drawn per cloud (a random subset beyond).
        pointcloud_marker_size: marker size of point clouds.
        raybundle_max_rays: most rays drawn per bundle (a random subset beyond).
        raybundle_max_points_per_ray: most points drawn per ray (a random subset beyond).
        raybundle_ray_point_marker_size: marker size of ray points.
        raybundle_ray_line_width: line width of rays.
        axis_args: settings for all three axes (default ``AxisArgs()``).
        lighting: lighting of mesh traces (default ``Lighting()``).
        xaxis, yaxis, zaxis: further plotly axis settings per axis, applied last (a
            ``range`` given here replaces the computed one).

    Returns:
        A ``plotly.graph_objects.Figure``; subplot k (0-based, row-major) is layout
        ``scene{k+1}``.

    Raises:
        ImportError: plotly is not installed.
        TypeError: ``plots`` is not a dict of dicts, or a bad ``axis_args``/``lighting``.
        ValueError: no subplots, a bad ``ncols`` or limit, or a structure of another type.
    """
    go, make_subplots = _plotly()
    if not isinstance(plots, Mapping) or not all(isinstance(v, Mapping) for v in plots.values()):
        raise TypeError("plots: expected a dict {subplot title: {trace name: structure}}")
    if len(plots) == 0:
        raise ValueError("plots: expected at least one subplot")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols: expected an int >= 1, got {ncols!r}")
    for arg, value in (("pointcloud_max_points", pointcloud_max_points),
                       ("raybundle_max_rays", raybundle_max_rays),
                       ("raybundle_max_points_per_ray", raybundle_max_points_per_ray)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg}: expected an int >= 1, got {value!r}")
    axis_args = AxisArgs() if axis_args is None else axis_args
    lighting = Lighting() if lighting is None else lighting
    if not isinstance(axis_args, AxisArgs):
        raise TypeError(f"axis_args: expected an AxisArgs, got {type(axis_args).__name__}")
    if not isinstance(lighting, Lighting):
        raise TypeError(f"lighting: expected a Lighting, got {type(lighting).__name__}")
    light = lighting._asdict()
    titles = [str(t) for t in plots]
    n_plots = len(titles)
    ncols_used = min(ncols, n_plots)  # no empty columns (PyTorch3D keeps them)
    nrows = -(-n_plots // ncols_used)
    fig = make_subplots(rows=nrows, cols=ncols_used,
                        specs=[[{"type": "scene"} if r * ncols_used + c < n_plots else None
                                for c in range(ncols_used)] for r in range(nrows)],
                        subplot_titles=titles)

    views = None
    if viewpoint_cameras is not None:
        if not isinstance(viewpoint_cameras, CamerasBase):
            raise TypeError("viewpoint_cameras: expected cameras (CamerasBase), got "
                            f"{type(viewpoint_cameras).__name__}")
        if len(viewpoint_cameras) in (1, n_plots):
            views = _eye_at_up(viewpoint_cameras)
        else:
            warnings.warn(f"viewpoint_cameras: got {len(viewpoint_cameras)} cameras for "
                          f"{n_plots} subplots; expected 1 or {n_plots}; not used",
                          stacklevel=2)

    for k, traces in enumerate(plots.values()):
        row, col = k // ncols_used + 1, k % ncols_used + 1
        bounds = _Bounds()
        for trace_name, struct in traces.items():
            name = str(trace_name)
            if isinstance(struct, Meshes):
                new = [_mesh_trace(go, struct, name, light, bounds)]
            elif isinstance(struct, Pointclouds):
                new = [_pointcloud_trace(go, struct, name, pointcloud_max_points,
                                         pointcloud_marker_size, bounds)]
            elif isinstance(struct, CamerasBase):
                new = [_camera_trace(go, struct, name, camera_scale, bounds)]
            elif _is_ray_bundle(struct):
                new = _ray_traces(go, struct, name, raybundle_max_rays,
                                  raybundle_max_points_per_ray, raybundle_ray_point_marker_size,
                                  raybundle_ray_line_width, bounds)
            else:
                raise ValueError(
                    f"plots[{titles[k]!r}][{name!r}]: expected Meshes, Pointclouds, cameras or "
                    f"a ray bundle, got {type(struct).__name__}"
                )
            for trace in new:
                fig.add_trace(trace, row=row, col=col)

        scene = fig.layout[f"scene{k + 1}"]
        ranges = bounds.cube()
        per_axis = {"xaxis": xaxis, "yaxis": yaxis, "zaxis": zaxis}
        for i, (axis, extra) in enumerate(per_axis.items()):
            settings: dict[str, Any] = dict(axis_args._asdict())
            if ranges is not None:
                settings["range"] = ranges[i]
            settings.update(extra or {})
            scene[axis].update(settings)
        camera: dict[str, Any] = {"up": {"x": 0.0, "y": 1.0, "z": 0.0}}
        final = [scene[a].range for a in per_axis]
        if views is not None and all(r is not None for r in final):
            j = min(k, views[0].shape[0] - 1)
            camera = {
                "eye": _to_scene_units(final, views[0][j], True),
                "center": _to_scene_units(final, views[1][j], True),
                "up": _to_scene_units(final, views[2][j], False),
            }
        scene.update(aspectmode="cube", camera=camera)
    return fig


def _split_rays(rays: Any) -> list[_Rays]:
    """One bundle per camera: the leading batch dimension, or ``camera_counts`` runs of
    rays for a heterogeneous bundle (rays sorted by camera)."""
    xys = getattr(rays, "xys", None)
    fields = (rays.origins, rays.directions, rays.lengths, xys)
    if _is_heterogeneous(rays):
        counts = [int(c) for c in rays.camera_counts.tolist()]
        starts = np.cumsum([0, *counts]).tolist()
        return [_Rays(*(None if f is None else f[a:b] for f in fields))
                for a, b in zip(starts[:-1], starts[1:], strict=True)]
    if rays.directions.ndim <= 2:
        return [_Rays(*fields)]
    n = rays.directions.shape[0]
    return [_Rays(*(None if f is None else f[i] for f in fields)) for i in range(n)]


def _element(struct: Any, index: int) -> Any:
    """Batch element ``index`` of a structure, as a batch of one."""
    if _is_ray_bundle(struct):
        return _split_rays(struct)[index]
    return struct[index]


def plot_batch_individually(
    batched_structs: Struct | Sequence[Struct],
    *,
    viewpoint_cameras: CamerasBase | None = None,
    ncols: int = 1,
    extend_struct: bool = True,
    subplot_titles: Sequence[str] | None = None,
    **kwargs: Any,
) -> go.Figure:
    """One subplot per batch element: subplot i shows element i of every structure.

    Args:
        batched_structs: one structure, or a list of them whose batch sizes are all either
            n or 1 (n subplots). For a ray bundle the batch is its leading dimension, or its
            cameras (``camera_counts``) for a heterogeneous one.
        viewpoint_cameras: as in :func:`plot_scene`.
        ncols: subplots per row.
        extend_struct: structures of batch size 1 are drawn in every subplot (True) or in
            the first only (False).
        subplot_titles: n titles (default "subplot 1", "subplot 2", ...).
        **kwargs: passed on to :func:`plot_scene`.

    Returns:
        The figure of :func:`plot_scene`; in subplot i the trace of structure j (1-based)
        is named ``f"trace{i + 1}-{j}"``.

    Raises:
        ImportError: plotly is not installed.
        ValueError: no structures, an empty batch, batch sizes other than n and 1, or a
            wrong number of (or repeated) titles.
    """
    # PyTorch3D's RayBundle is a NamedTuple: a tuple, but one structure.
    single = _is_ray_bundle(batched_structs) or not isinstance(batched_structs, (list, tuple))
    structs = [batched_structs] if single else list(batched_structs)
    if not structs:
        raise ValueError("batched_structs: nothing to plot")
    for s in structs:
        if not isinstance(s, (Meshes, Pointclouds, CamerasBase)) and not _is_ray_bundle(s):
            raise ValueError("batched_structs: expected Meshes, Pointclouds, cameras or ray "
                             f"bundles, got {type(s).__name__}")
    sizes = [_struct_len(s) for s in structs]
    n = max(sizes)
    if n == 0:
        raise ValueError("batched_structs: every structure has batch size 0")
    bad = [size for size in sizes if size not in (1, n)]
    if bad:
        raise ValueError(f"batched_structs: batch sizes must be {n} or 1, got {sizes}")
    if subplot_titles is None:
        titles = [f"subplot {i + 1}" for i in range(n)]
    else:
        titles = [str(t) for t in subplot_titles]
        if len(titles) != n:
            raise ValueError(f"subplot_titles: expected {n} titles, got {len(titles)}")
        if len(set(titles)) != n:
            raise ValueError("subplot_titles: titles must be distinct (they key the subplots)")
    scenes: dict[str, dict[str, Any]] = {}
    for i, title in enumerate(titles):
        scene: dict[str, Any] = {}
        for j, (s, size) in enumerate(zip(structs, sizes, strict=True)):
            if size == 1 and i > 0 and not extend_struct:
                continue
            scene[f"trace{i + 1}-{j + 1}"] = _element(s, min(i, size - 1))
        scenes[title] = scene
    return plot_scene(scenes, viewpoint_cameras=viewpoint_cameras, ncols=ncols, **kwargs)
