"""The fit metrics' chamfer estimators: sample-to-sample (normalized_chamfer) has a floor of
about 2A/(pi N) on identical surfaces; sample-to-surface (surface_chamfer) does not."""

import math

import pytest
import torch

from diffrend.jobs.metrics import normalized_chamfer, surface_chamfer
from diffrend.structures import Meshes, ico_sphere


def _unit_sphere() -> Meshes:
    return ico_sphere(4)


def _area(mesh: Meshes) -> float:
    v, f = mesh.verts_packed(), mesh.faces_packed()
    tri = v[f]
    return float(torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]).norm(dim=1)
                 .sum() / 2)


def test_identical_surfaces_sample_floor_vs_surface():
    sphere = _unit_sphere()  # already centred with max |coordinate| 1: the unit frame
    n = 2000
    floor = 2 * _area(sphere) / (math.pi * n)  # E[d^2] of Poisson samples, both ways
    sampled = normalized_chamfer(sphere, sphere, num_samples=n)
    assert sampled == pytest.approx(floor, rel=0.2)
    surface = surface_chamfer(sphere, sphere, num_samples=n, dense_samples=200_000)
    # what is left is the dense sampling's own floor, 2A/(pi 200k)
    assert surface < 2 * 2 * _area(sphere) / (math.pi * 200_000)
    assert surface < sampled / 20


def test_scaled_sphere_distance():
    sphere = _unit_sphere()
    grown = Meshes([sphere.verts_packed() * 1.05], [sphere.faces_packed()])
    # every point is about 0.05 from the other surface, in both directions: 2 * 0.05^2
    value = surface_chamfer(grown, sphere, num_samples=3000, dense_samples=200_000)
    assert value == pytest.approx(2 * 0.05**2, rel=0.05)
    # measured in the reference's unit frame: scaling both changes nothing
    big = Meshes([sphere.verts_packed() * 3], [sphere.faces_packed()])
    big_grown = Meshes([grown.verts_packed() * 3], [sphere.faces_packed()])
    assert surface_chamfer(big_grown, big, num_samples=3000, dense_samples=200_000) == \
        pytest.approx(value, rel=0.05)


def test_deterministic_and_validated():
    sphere = _unit_sphere()
    a = surface_chamfer(sphere, sphere, num_samples=500, dense_samples=20_000, seed=3)
    b = surface_chamfer(sphere, sphere, num_samples=500, dense_samples=20_000, seed=3)
    assert a == b
    with pytest.raises(ValueError, match="num_samples"):
        surface_chamfer(sphere, sphere, num_samples=0)
    with pytest.raises(ValueError, match="dense_samples"):
        surface_chamfer(sphere, sphere, dense_samples=2.5)
