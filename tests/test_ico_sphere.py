"""ico_sphere and subdivide_meshes: counts, unit radius, outward winding, closed manifold,
PyTorch3D's vertex/face order, speed at level 8; subdivision of heterogeneous batches."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from conftest import GOLDEN

from diffrend.structures import Meshes, ico_sphere, subdivide_meshes


@pytest.mark.parametrize("level", range(6))
def test_counts_radius_winding_manifold(level):
    m = ico_sphere(level)
    verts, faces = m.verts_packed(), m.faces_packed()
    assert verts.shape == (10 * 4**level + 2, 3) and verts.dtype == torch.float32
    assert faces.shape == (20 * 4**level, 3)
    assert m.edges_packed().shape == (30 * 4**level, 2)  # Euler: V - E + F = 2
    torch.testing.assert_close(verts.norm(dim=1), torch.ones(len(verts)), atol=1e-6, rtol=0)
    centroids = verts[faces].mean(dim=1)
    # outward: the face normal (v1 - v0) x (v2 - v0) points away from the origin
    assert ((m.faces_normals_packed() * centroids).sum(1) > 0).all()
    # closed and consistently oriented: every undirected edge in exactly two faces, and
    # every directed edge exactly once
    uses = torch.bincount(m.faces_packed_to_edges_packed().flatten())
    assert (uses == 2).all()
    directed = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    assert torch.unique(directed, dim=0).shape[0] == directed.shape[0]
    # vertex normals of a sphere point along the position
    torch.testing.assert_close(m.verts_normals_packed(), verts, atol=0.2 / 2**level, rtol=0)


def test_level0_is_pytorch3d_icosahedron():
    m = ico_sphere(0)
    a, b = 0.5257, 0.8507
    expected = torch.tensor([[-a, b, 0], [a, b, 0], [-a, -b, 0], [a, -b, 0]])
    expected = expected / expected.norm(dim=1, keepdim=True)
    torch.testing.assert_close(m.verts_packed()[:4], expected)
    assert m.faces_packed()[:3].tolist() == [[0, 11, 5], [0, 5, 1], [0, 1, 7]]


def test_level3_faces_match_pytorch3d_golden():
    path = GOLDEN / "mesh_losses_ico3.npz"
    if not path.exists():
        pytest.skip("PyTorch3D goldens not available")
    with np.load(path) as g:
        faces = g["faces"]
    # the golden's vertices are perturbed for the loss tests, its faces are PyTorch3D's
    np.testing.assert_array_equal(ico_sphere(3).faces_packed().numpy(), faces)


def test_level8_is_fast_and_right():
    start = time.perf_counter()
    m = ico_sphere(8)
    elapsed = time.perf_counter() - start
    assert m.faces_packed().shape == (1_310_720, 3)
    assert m.verts_packed().shape == (655_362, 3)
    assert elapsed < 15.0  # about 1 s on 2 CPU threads; a Python loop over faces takes minutes


def test_device_and_bad_level():
    assert ico_sphere(1, device="cpu").device == torch.device("cpu")
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="level"):
            ico_sphere(bad)


def test_subdivide_heterogeneous_batch_matches_one_by_one():
    tet_v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], requires_grad=True)
    tet_f = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    ico = ico_sphere(1)
    empty_v, empty_f = torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64)
    batch = Meshes(
        [tet_v, empty_v, ico.verts_packed()], [tet_f, empty_f, ico.faces_packed()]
    )
    feats = torch.arange(float(4 + 42)).reshape(-1, 1).repeat(1, 2)
    out, new_feats = subdivide_meshes(batch, feats)
    assert out.num_verts_per_mesh().tolist() == [4 + 6, 0, 42 + 120]
    assert out.num_faces_per_mesh().tolist() == [16, 0, 320]
    for i, single in ((0, Meshes([tet_v], [tet_f])), (2, ico)):
        one = subdivide_meshes(single)
        torch.testing.assert_close(out.verts_list()[i], one.verts_packed())
        assert torch.equal(out.faces_list()[i], one.faces_packed())
    # subdividing ico_sphere(1) and projecting gives ico_sphere(2)
    two = subdivide_meshes(ico)
    v = two.verts_packed()
    torch.testing.assert_close(v / v.norm(dim=1, keepdim=True), ico_sphere(2).verts_packed())
    assert torch.equal(two.faces_packed(), ico_sphere(2).faces_packed())
    # flat subdivision keeps area and orientation
    torch.testing.assert_close(out[0].faces_areas_packed().sum(),
                               batch[0].faces_areas_packed().sum())
    # features: old ones first, then edge midpoints, per mesh
    packed_v = out.verts_packed()
    assert new_feats.shape == (len(packed_v), 2)
    torch.testing.assert_close(new_feats[:4], feats[:4])
    edges = batch.edges_packed()[:6]
    torch.testing.assert_close(new_feats[4:10], feats[edges].mean(1))
    out.verts_packed().sum().backward()
    assert tet_v.grad is not None and (tet_v.grad > 0).all()
    with pytest.raises(ValueError, match="feats"):
        subdivide_meshes(batch, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="Meshes"):
        subdivide_meshes(tet_v)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_ico_sphere_on_cuda_matches_cpu():
    gpu = ico_sphere(3, device="cuda")
    assert gpu.verts_packed().is_cuda and gpu.faces_packed().is_cuda
    assert torch.equal(gpu.faces_packed().cpu(), ico_sphere(3).faces_packed())
    torch.testing.assert_close(gpu.verts_packed().cpu(), ico_sphere(3).verts_packed())
