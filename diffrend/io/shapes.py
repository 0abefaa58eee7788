"""A named set of test shapes of known topology, for tests and for tuning ``diffrend fit``.

Each shape is built procedurally and deterministically (solid modelling with manifold3d's
booleans, which give watertight, manifold results) or read from the bundled meshes (the cow,
the teapot), then put in the frame the fit jobs measure chamfer in: bounding box centred at
the origin, largest |coordinate| 1 (:func:`diffrend.jobs.views.unit_box`). The y axis is up,
as for the cow. Every shape has its own per-vertex colour scheme (a few flat colours by part
or by position), since ``diffrend fit`` matches colours as well as silhouettes.

| name | genus | components | what it tests |
|---|---|---|---|
| `torus` | 1 | 1 | a hole |
| `double_torus` | 2 | 1 | two holes (two tori merged) |
| `mug` | 1 | 1 | a cup (concave) with a thin handle |
| `teapot` | 1 | 1 | the bundled teapot (its handle; vertices welded) |
| `chair` | 1 | 1 | thin parts (legs, posts), a loop in the back |
| `gear` | 1 | 1 | sharp creases (teeth), an axle hole |
| `chamfered_box` | 0 | 1 | flat faces and sharp chamfered edges |
| `bowl` | 0 | 1 | a deep concavity a visual hull cannot see |
| `trio` | 1 | 3 | several components: sphere, box, torus; small in the view |
| `cow` | 0 | 1 | the bundled cow (colours from its texture) |

Why here (``diffrend.io``): a shape is a ``Meshes`` with ``TexturesVertex`` colours
(:mod:`diffrend.shading`, a layer above :mod:`diffrend.structures`) and two shapes are read
from the bundled files with :func:`~diffrend.io.load_obj`; :mod:`diffrend.io` is the lowest
layer that may import both, and so the jobs, the CLI and the tests can all use the set.

manifold3d (the ``shapes`` extra) is imported only when a procedural shape is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..shading import TexturesVertex
from ..structures import Meshes

__all__ = ["ShapeInfo", "load_shape", "shape_arrays", "shape_info", "shape_names"]

_DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class ShapeInfo:
    """What is known about a test shape.

    Attributes:
        name: the shape's name (:func:`shape_names`).
        genus: total genus (sum over the components) of the closed surface.
        components: number of connected components.
        watertight: every edge is shared by exactly two faces (closed, manifold) and the
            faces are consistently oriented, outwards.
        origin: how the shape is built.
    """

    name: str
    genus: int
    components: int
    watertight: bool
    origin: str

    @property
    def euler(self) -> int:
        """The Euler characteristic V - E + F of a closed surface with this topology:
        ``2 * (components - genus)``."""
        return 2 * (self.components - self.genus)


# --------------------------------------------------------------------------- helpers

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]  # verts (V, 3), faces (F, 3), colours (V, 3)


def _m3() -> Any:
    """The manifold3d module, with a clear error when it is missing."""
    try:
        import manifold3d
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the procedural test shapes need manifold3d: "
                          "pip install 'diffrend[shapes]' (or pip install manifold3d)") from e
    return manifold3d


def _rgb(*hexes: str) -> np.ndarray:
    """(K, 3) float colours in [0, 1] from '#rrggbb' strings."""
    return np.array([[int(h[i:i + 2], 16) / 255.0 for i in (1, 3, 5)] for h in hexes])


def _z_up_to_y_up(verts: np.ndarray) -> np.ndarray:
    """Rotate points modelled with z up into the y-up frame of the fit's cameras
    (x, y, z) -> (x, z, -y); a rotation, so faces keep their orientation."""
    return np.stack([verts[:, 0], verts[:, 2], -verts[:, 1]], axis=1)


def _solid(parts: list[tuple[Any, str]], combine: Callable[[list[Any]], Any],
           edge: float = 0.1) -> Arrays:
    """Mesh a solid built from coloured parts; each vertex takes the colour of the part
    that made the first face around it (booleans keep each face's source part).

    Args:
        parts: (manifold3d.Manifold, '#rrggbb') pairs.
        combine: builds the solid from the parts (in the same order), e.g. their union.
        edge: the faces are split (in their planes: the shape does not change) until no
            edge is longer than this, so that per-vertex colours stay flat within a part
            and change only near the part's border.

    Returns:
        (verts (V, 3) float64 with z up, faces (F, 3) int64, colours (V, 3) float64).
    """
    tagged = [m.as_original() for m, _ in parts]
    colour_of = {t.original_id(): _rgb(c)[0] for t, (_, c) in zip(tagged, parts, strict=True)}
    solid = combine(tagged)
    if solid.status().name != "NoError" or solid.is_empty():
        raise RuntimeError(f"building a test shape failed: {solid.status()}")
    mesh = solid.refine_to_length(edge).to_mesh()
    verts = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(mesh.tri_verts, dtype=np.int64)
    run_index = np.asarray(mesh.run_index, dtype=np.int64) // 3
    run_ids = np.asarray(mesh.run_original_id, dtype=np.int64)
    face_colour = np.empty((len(faces), 3))
    for start, stop, oid in zip(run_index[:-1], run_index[1:], run_ids, strict=True):
        face_colour[start:stop] = colour_of.get(int(oid), _rgb("#bbbbbb")[0])
    first = np.full(len(verts), len(faces), dtype=np.int64)
    np.minimum.at(first, faces.ravel(), np.repeat(np.arange(len(faces)), 3))
    return verts, faces, face_colour[first]


def _union(ms: list[Any]) -> Any:
    """The union of manifold3d solids, in order."""
    out = ms[0]
    for m in ms[1:]:
        out = out + m
    return out


def _torus(m3: Any, R: float, r: float, segments: int = 64, tube: int = 24) -> Any:
    """A solid torus around the z axis (manifold3d.Manifold)."""
    circle = m3.CrossSection.circle(r, tube).translate((R, 0.0))
    return m3.Manifold.revolve(circle, segments)


def _sectors(verts: np.ndarray, n: int, palette: np.ndarray) -> np.ndarray:
    """Colour points by which of ``n`` sectors around the z axis they lie in."""
    angle = np.arctan2(verts[:, 1], verts[:, 0]) % (2 * math.pi)
    return palette[(np.floor(angle / (2 * math.pi / n)).astype(np.int64) % n) % len(palette)]


# --------------------------------------------------------------------------- builders


def _build_torus() -> Arrays:
    m3 = _m3()
    mesh = _torus(m3, 1.0, 0.4, 72, 32).to_mesh()
    verts = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(mesh.tri_verts, dtype=np.int64)
    colours = _sectors(verts, 4, _rgb("#e6194b", "#f58231", "#ffe119", "#3cb44b"))
    return verts, faces, colours


def _build_double_torus() -> Arrays:
    m3 = _m3()
    d = 0.75  # the two centre lines cross; the tubes merge into one bridge between the holes
    left = _torus(m3, 1.0, 0.4, 72, 28).translate((-d, 0.0, 0.0))
    right = _torus(m3, 1.0, 0.4, 72, 28).translate((d, 0.0, 0.0))
    return _solid([(left, "#4363d8"), (right, "#f032e6")], _union)


def _build_mug() -> Arrays:
    m3 = _m3()
    M = m3.Manifold
    outer = M.cylinder(1.2, 0.5, 0.5, 64)
    inner = M.cylinder(1.2, 0.43, 0.43, 64).translate((0.0, 0.0, 0.1))
    # the handle: a torus in the xz plane beside the cup, less what would poke inside
    handle = _torus(m3, 0.3, 0.065, 48, 16).rotate((90.0, 0.0, 0.0)).translate((0.55, 0.0, 0.6))
    return _solid([(outer, "#e6194b"), (inner, "#fffac8"), (handle, "#000075")],
                  lambda p: (p[0] + (p[2] - M.cylinder(1.2, 0.45, 0.45, 64))) - p[1])


def _build_chair() -> Arrays:
    M = _m3().Manifold
    seat = M.cube((1.0, 1.0, 0.1), True).translate((0.0, 0.0, 0.55))
    t, h = 0.08, 0.5  # legs: thin square posts
    legs = [M.cube((t, t, h + 0.01), True).translate((sx * 0.44, sy * 0.44, h / 2))
            for sx in (-1, 1) for sy in (-1, 1)]
    posts = [M.cube((t, t, 0.8), True).translate((sx * 0.44, 0.44, 0.95))  # z 0.55..1.35
             for sx in (-1, 1)]
    # the rail ends inside the posts, with no face in a post's plane (clean booleans)
    rail = M.cube((0.9, 0.06, 0.16), True).translate((0.0, 0.44, 1.25))
    parts = [(seat, "#9a6324")] + [(leg, "#808000") for leg in legs]
    parts += [(p, "#aaffc3") for p in posts] + [(rail, "#469990")]
    return _solid(parts, _union)


def _build_gear() -> Arrays:
    m3 = _m3()
    teeth, r_root, r_tip = 12, 0.78, 1.0
    pts = []
    for k in range(teeth):  # a trapezoidal tooth per pitch, anticlockwise
        a = 2 * math.pi * k / teeth
        w = 2 * math.pi / teeth
        for frac, r in ((0.0, r_root), (0.2, r_root), (0.32, r_tip), (0.68, r_tip),
                        (0.8, r_root)):
            pts.append((r * math.cos(a + frac * w), r * math.sin(a + frac * w)))
    profile = m3.CrossSection([pts])
    body = m3.Manifold.extrude(profile, 0.3).translate((0.0, 0.0, -0.15))
    hole = m3.Manifold.cylinder(0.4, 0.25, 0.25, 48).translate((0.0, 0.0, -0.2))
    verts, faces, colours = _solid([(body, "#f58231"), (hole, "#42d4f4")],
                                   lambda p: p[0] - p[1])
    tips = np.hypot(verts[:, 0], verts[:, 1]) > r_root + 1e-4
    colours[tips] = _rgb("#911eb4")[0]
    return verts, faces, colours


def _build_chamfered_box() -> Arrays:
    m3 = _m3()
    c = 0.75  # corner points are permutations of (±1, ±c, ±c): 45-degree chamfers
    pts = sorted({(sx * a, sy * b, sz * e)
                  for a, b, e in ((1, c, c), (c, 1, c), (c, c, 1))
                  for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)})
    box = m3.Manifold.hull_points(np.array(pts, dtype=np.float64)).scale((1.0, 0.8, 0.6))
    mesh = box.refine_to_length(0.1).to_mesh()
    verts = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(mesh.tri_verts, dtype=np.int64)
    # a colour per face direction (the six faces), another for the chamfers; a vertex on a
    # flat face takes that face's colour (flat faces share no vertex)
    normals = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]],
                       verts[faces[:, 2]] - verts[faces[:, 0]])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    axis = np.abs(normals).argmax(axis=1)
    side = (normals[np.arange(len(faces)), axis] > 0).astype(np.int64)
    kind = np.where(np.abs(normals).max(axis=1) > 0.99, 2 * axis + side, 6)
    palette = _rgb("#e6194b", "#3cb44b", "#4363d8", "#ffe119", "#f032e6", "#f58231",
                   "#e0e0e0")
    vertex_kind = np.full(len(verts), 6, dtype=np.int64)
    np.minimum.at(vertex_kind, faces.ravel(), np.repeat(kind, 3))
    return verts, faces, palette[vertex_kind]


def _build_bowl() -> Arrays:
    M = _m3().Manifold
    outer = M.sphere(1.0, 96)
    inner = M.sphere(0.88, 96)
    band = M.cube((2.2, 2.2, 0.93), True).translate((0.0, 0.0, -0.465))  # z in [-0.93, 0]
    verts, faces, colours = _solid([(outer, "#3cb44b"), (inner, "#ffd8b1"), (band, "#e6beff")],
                                   lambda p: (p[0] ^ p[2]) - p[1])
    rim = verts[:, 2] > -1e-6
    colours[rim] = _rgb("#800000")[0]
    return verts, faces, colours


def _build_trio() -> Arrays:
    m3 = _m3()
    M = m3.Manifold
    ball = M.sphere(0.5, 64).translate((-1.35, 0.0, 0.0))
    box = M.cube((0.8, 0.8, 0.8), True).rotate((0.0, 0.0, 30.0)).refine_to_length(0.15)
    ring = _torus(m3, 0.42, 0.16, 64, 20).rotate((60.0, 0.0, 0.0)).translate((1.35, 0.0, 0.0))
    return _solid([(ball, "#ffe119"), (box, "#4363d8"), (ring, "#e6194b")], _union)


def _weld(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge vertices at the same position (to 1e-6) and drop faces that collapse.

    Returns (verts (V', 3), faces (F', 3), index (V,) of each old vertex in the new ones).
    """
    keys = np.round(verts, 6)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep the file's vertex order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    index = rank[inverse.reshape(-1)]
    new_verts = verts[first[order]]
    f = index[faces]
    keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    return new_verts, f[keep], index


def _build_teapot() -> Arrays:
    from .mesh_io import load_obj

    v, f, _ = load_obj(_DATA / "teapot" / "teapot.obj", load_textures=False)
    verts, faces, _ = _weld(v.double().numpy(), f.verts_idx.numpy().astype(np.int64))
    # y is up; the spout points to +x, the handle to -x
    palette = _rgb("#469990", "#f58231", "#911eb4", "#ffe119")  # body, spout, handle, lid
    x, y = verts[:, 0], verts[:, 1]
    part = np.zeros(len(verts), dtype=np.int64)
    part[x > 0.82] = 1
    part[x < -0.78] = 2
    part[y > 0.78] = 3
    # the teapot is y-up already: undo the z-up rotation that load applies to the others
    return _y_up_to_z_up(verts), faces, palette[part]


def _build_cow() -> Arrays:
    from .mesh_io import load_obj

    v, f, aux = load_obj(_DATA / "cow_mesh" / "cow.obj")
    verts = v.double().numpy()
    faces = f.verts_idx.numpy().astype(np.int64)
    # a vertex's colour: its texture at the UV of its first face corner (nearest texel)
    image = next(iter(aux.texture_images.values())).numpy()
    uvs = aux.verts_uvs.numpy()[f.textures_idx.numpy().ravel()]
    h, w = image.shape[:2]
    px = np.clip(np.round(uvs[:, 0] * (w - 1)), 0, w - 1).astype(np.int64)
    py = np.clip(np.round((1 - uvs[:, 1]) * (h - 1)), 0, h - 1).astype(np.int64)
    corner = np.full(len(verts), faces.size, dtype=np.int64)
    np.minimum.at(corner, faces.ravel(), np.arange(faces.size))
    colours = image[py[corner], px[corner], :3].astype(np.float64)
    return _y_up_to_z_up(verts), faces, colours


def _y_up_to_z_up(verts: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_z_up_to_y_up`."""
    return np.stack([verts[:, 0], -verts[:, 2], verts[:, 1]], axis=1)


_SHAPES: dict[str, tuple[ShapeInfo, Callable[[], Arrays]]] = {
    s.name: (s, b) for s, b in (
        (ShapeInfo("torus", 1, 1, True,
                   "manifold3d: a circle (r 0.4) revolved around the axis at R 1; colours "
                   "by quadrant"), _build_torus),
        (ShapeInfo("double_torus", 2, 1, True,
                   "manifold3d: union of two tori (R 1, r 0.4) 1.5 apart, whose tubes "
                   "merge between the two holes; a colour per torus"), _build_double_torus),
        (ShapeInfo("mug", 1, 1, True,
                   "manifold3d: a cylinder less a smaller one (the cup), plus a thin torus "
                   "handle trimmed to the outside; body, inside and handle coloured"),
         _build_mug),
        (ShapeInfo("teapot", 1, 1, True,
                   "the bundled teapot (diffrend/data/teapot), vertices welded; body, "
                   "spout, handle and lid coloured by position"), _build_teapot),
        (ShapeInfo("chair", 1, 1, True,
                   "manifold3d: union of boxes: seat, four thin legs, two back posts and "
                   "a top rail (the loop); a colour per kind of part"), _build_chair),
        (ShapeInfo("gear", 1, 1, True,
                   "manifold3d: a 12-tooth trapezoidal profile extruded, less an axle "
                   "cylinder; body, tooth tips and hole coloured"), _build_gear),
        (ShapeInfo("chamfered_box", 0, 1, True,
                   "manifold3d: convex hull of a cube's 45-degree chamfered corners, "
                   "scaled 1 x 0.8 x 0.6, refined; a colour per face direction"),
         _build_chamfered_box),
        (ShapeInfo("bowl", 0, 1, True,
                   "manifold3d: lower half of a sphere (flat foot) less a smaller "
                   "sphere; outside, inside and rim coloured"), _build_bowl),
        (ShapeInfo("trio", 1, 3, True,
                   "manifold3d: three separate solids: a sphere, a box and a tilted "
                   "torus; a colour each"), _build_trio),
        (ShapeInfo("cow", 0, 1, True,
                   "the bundled cow (diffrend/data/cow_mesh); vertex colours sampled from "
                   "its texture"), _build_cow),
    )
}


def shape_names() -> tuple[str, ...]:
    """The names of the test shapes, in a fixed order."""
    return tuple(_SHAPES)


def shape_info(name: str) -> ShapeInfo:
    """Genus, number of components, watertightness and origin of the shape ``name``.

    Raises:
        ValueError: unknown ``name``.
    """
    if name not in _SHAPES:
        raise ValueError(f"name must be one of {', '.join(_SHAPES)}; got {name!r}")
    return _SHAPES[name][0]


def shape_arrays(name: str) -> Arrays:
    """The shape ``name`` as numpy arrays in the unit frame (y up).

    Returns:
        ``(verts (V, 3) float64, faces (F, 3) int64, colours (V, 3) float64 in [0, 1])``:
        the bounding box is centred at the origin and the largest |coordinate| is 1; faces
        are oriented outwards (anticlockwise seen from outside). Fresh arrays each call,
        identical from call to call.

    Raises:
        ValueError: unknown ``name``.
        ImportError: manifold3d is missing (procedural shapes).
    """
    shape_info(name)
    verts, faces, colours = _SHAPES[name][1]()
    verts = _z_up_to_y_up(verts)
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    centre = (lo + hi) / 2
    scale = max(float(np.abs(verts - centre).max()), 1e-12)
    return ((verts - centre) / scale, np.ascontiguousarray(faces, dtype=np.int64),
            np.clip(colours, 0.0, 1.0))


def load_shape(name: str, device: str | torch.device | None = None) -> Meshes:
    """The test shape ``name`` as one mesh with per-vertex colours (``TexturesVertex``).

    Args:
        name: one of :func:`shape_names`.
        device: where the tensors live (default CPU).

    Returns:
        ``Meshes`` of one mesh: float32 vertices (V, 3) in the unit frame (bounding box
        centred, largest |coordinate| 1, y up), int64 faces (F, 3), colours (V, 3).

    Raises:
        ValueError: unknown ``name``.
    """
    verts, faces, colours = shape_arrays(name)
    device = torch.device(device) if device is not None else torch.device("cpu")
    v = torch.tensor(verts, dtype=torch.float32, device=device)
    c = torch.tensor(colours, dtype=torch.float32, device=device)
    return Meshes([v], [torch.tensor(faces, device=device)], textures=TexturesVertex([c]))
