"""Target edge lengths for remeshing during a fit (diffrend.jobs.adaptive)."""

from __future__ import annotations

import math

import pytest
import torch

from diffrend.jobs import render_target_views, sphere_cameras
from diffrend.jobs.adaptive import pixels_per_unit, target_edge_lengths, vertex_errors
from diffrend.shading import TexturesVertex
from diffrend.structures import Meshes, ico_sphere


@pytest.fixture(scope="module")
def sphere() -> Meshes:
    m = ico_sphere(3)
    return Meshes([m.verts_packed() * 0.6], [m.faces_packed()],
                  textures=TexturesVertex([torch.ones_like(m.verts_packed())]))


def test_vertex_errors_sample_where_the_vertex_projects(sphere):
    cams = sphere_cameras(4)
    masks = render_target_views(sphere, cams, 48).masks  # (4, 48, 48)
    verts = sphere.verts_packed()
    inside = vertex_errors(masks, verts, cams)
    assert inside.shape == (verts.shape[0],)
    # every vertex of the sphere projects into its silhouette; those near the outline of a
    # view (a sphere 19 px wide: many) read about half there, through the 3 x 3 blur
    assert inside.min() > 0.4 and inside.mean() > 0.7
    # far outside the sphere: the samples miss the silhouettes
    assert vertex_errors(masks, verts * 3.0, cams).mean() < 0.2
    # only the right half of the images is wrong: the vertices there, seen in screen x
    half = torch.zeros_like(masks)
    half[..., 24:] = 1.0
    err = vertex_errors(half[:1], verts, cams[[0]])
    xs = cams[[0]].transform_points_screen(verts[None], image_size=((48, 48),))[0, :, 0]
    assert err[xs > 27].min() > 0.99 and err[xs < 21].max() < 1e-6
    top = torch.zeros_like(masks)
    top[..., :24, :] = 1.0  # rows from the top: screen y grows downwards
    err = vertex_errors(top[:1], verts, cams[[0]])
    ys = cams[[0]].transform_points_screen(verts[None], image_size=((48, 48),))[0, :, 1]
    assert err[ys < 21].min() > 0.99 and err[ys > 27].max() < 1e-6


def test_pixels_per_unit_matches_the_pinhole(sphere):
    cams = sphere_cameras(3, dist=2.7, fov=60.0)
    edges = sphere.edges_packed()
    ppu = pixels_per_unit(sphere.verts_packed(), edges, cams, 128)
    # focal length in pixels over the depth of the near half of the sphere
    focal = 64.0 / math.tan(math.radians(30.0))
    assert focal / 2.7 * 0.8 < ppu < focal / (2.7 - 0.6) * 1.1
    assert pixels_per_unit(sphere.verts_packed(), edges, cams, 256) == pytest.approx(2 * ppu,
                                                                                     rel=1e-3)


def test_target_edge_lengths(sphere):
    verts, faces = sphere.verts_packed(), sphere.faces_packed()
    uniform = target_edge_lengths(verts, faces, px_per_unit=50.0, edge_px=2.0)
    torch.testing.assert_close(uniform, torch.full_like(uniform, 0.04))
    errors = torch.zeros(verts.shape[0])
    errors[:10] = 1.0
    refined = target_edge_lengths(verts, faces, 50.0, 2.0, errors, refine=2.0)
    assert refined[:10].max() < 0.021 and refined[10:].min() == pytest.approx(0.04)
    # the budget scales every target by one factor
    budget = target_edge_lengths(verts, faces, 50.0, 2.0, errors, refine=2.0, max_faces=100)
    factor = budget / refined
    assert factor.min() > 1.5 and torch.allclose(factor, factor[0].expand_as(factor))
    area = 4 * math.pi * 0.6**2
    assert area / (math.sqrt(3) / 4 * budget[20] ** 2) < 110
    # no error anywhere: uniform
    torch.testing.assert_close(target_edge_lengths(verts, faces, 50.0, 2.0, errors * 0), uniform)


@pytest.mark.parametrize("kwargs, match", [
    ({"px_per_unit": 0.0}, "px_per_unit"), ({"edge_px": float("nan")}, "edge_px"),
    ({"refine": 0.5}, "refine"),
])
def test_target_edge_lengths_bad_input(sphere, kwargs, match):
    args = {"px_per_unit": 50.0, "edge_px": 2.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        target_edge_lengths(sphere.verts_packed(), sphere.faces_packed(), **args)


def test_vertex_errors_bad_cameras(sphere):
    with pytest.raises(ValueError, match="cameras"):
        vertex_errors(torch.zeros(2, 8, 8), sphere.verts_packed(), sphere_cameras(3))
