"""The test-shape set (diffrend.io.shapes): every shape builds, is closed, manifold and
outward-oriented where declared, has the declared genus (Euler characteristic) and number of
components, fits the unit box the fit's chamfer is measured in, is coloured by more than one
colour, and is the same from build to build."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from diffrend.io.shapes import ShapeInfo, load_shape, shape_arrays, shape_info, shape_names
from diffrend.shading import TexturesVertex
from diffrend.structures import Meshes

pytest.importorskip("manifold3d")

NAMES = shape_names()


def test_the_set_covers_the_topologies_the_issue_asks_for():
    assert len(NAMES) == len(set(NAMES)) >= 10
    infos = [shape_info(n) for n in NAMES]
    assert {"torus", "double_torus", "cow", "bowl", "chair"} <= set(NAMES)
    assert {i.genus for i in infos} >= {0, 1, 2}
    assert max(i.components for i in infos) >= 3
    assert all(isinstance(i, ShapeInfo) and i.origin for i in infos)


@pytest.mark.parametrize("name", NAMES)
def test_shape_topology_frame_and_colours(name):
    info = shape_info(name)
    mesh = load_shape(name)
    assert isinstance(mesh, Meshes) and len(mesh) == 1
    verts, faces = mesh.verts_packed(), mesh.faces_packed()
    assert verts.dtype == torch.float32 and faces.dtype == torch.int64
    assert bool(torch.isfinite(verts).all())

    # the unit frame of normalized_chamfer / unit_box: box centred, largest |coord| 1
    lo, hi = verts.amin(0), verts.amax(0)
    torch.testing.assert_close((lo + hi) / 2, torch.zeros(3), atol=1e-6, rtol=0)
    assert abs(float(verts.abs().max()) - 1.0) < 1e-6

    # no degenerate faces
    assert bool((faces[:, 0] != faces[:, 1]).all() & (faces[:, 1] != faces[:, 2]).all()
                & (faces[:, 0] != faces[:, 2]).all())
    assert bool((mesh.faces_areas_packed() > 0).all())

    # the Euler characteristic gives the declared genus with the declared components
    v, e, f = len(verts), len(mesh.edges_packed()), len(faces)
    n = v
    edges = mesh.edges_packed().numpy()
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    components = connected_components(graph, directed=False)[0]
    assert components == info.components
    assert v - e + f == info.euler == 2 * (info.components - info.genus)

    if info.watertight:
        # closed manifold: every edge in exactly two faces; consistently oriented: every
        # directed edge once; outwards: positive enclosed volume
        assert bool((torch.bincount(mesh.faces_packed_to_edges_packed().flatten()) == 2).all())
        directed = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        assert torch.unique(directed, dim=0).shape[0] == directed.shape[0]
        tri = verts.double()[faces]
        volume = float(torch.linalg.det(tri).sum()) / 6
        assert volume > 0
        tm = trimesh.Trimesh(verts.numpy(), faces.numpy(), process=False)
        assert tm.is_watertight and tm.is_winding_consistent and tm.is_volume
        assert tm.euler_number == info.euler

    # per-vertex colours in [0, 1], a scheme of several colours (not one grey)
    tex = mesh.textures
    assert isinstance(tex, TexturesVertex)
    colours = tex.verts_features_packed()
    assert colours.shape == verts.shape
    assert bool(((colours >= 0) & (colours <= 1)).all())
    assert len(torch.unique(colours.round(decimals=3), dim=0)) >= 2
    assert float(colours.std(0).max()) > 0.1


def test_colour_schemes_differ_between_shapes():
    means = {n: tuple(np.round(shape_arrays(n)[2].mean(0), 2)) for n in NAMES}
    assert len(set(means.values())) == len(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_builds_are_deterministic(name):
    a, b = shape_arrays(name), shape_arrays(name)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    a[0][:] = 0  # fresh arrays: changing one build leaves the next untouched
    assert np.abs(shape_arrays(name)[0]).max() == 1.0


def test_teapot_and_cow_are_the_bundled_meshes_welded():
    # the teapot's file repeats vertices along its patch seams; the set welds them
    teapot = shape_arrays("teapot")[0]
    assert len(teapot) == 1232 and len(np.unique(teapot.round(6), axis=0)) == len(teapot)
    assert shape_arrays("cow")[0].shape == (2930, 3)


def test_load_shape_device_and_unknown_names():
    mesh = load_shape("torus", device="cpu")
    assert mesh.device == torch.device("cpu")
    with pytest.raises(ValueError, match="name"):
        load_shape("sphere_with_seven_holes")
    with pytest.raises(ValueError, match="name"):
        shape_info("")
