"""diffrend.ops: knn, packing by first index, face areas/normals, laplacians, normals."""

from __future__ import annotations

import math

import pytest
import torch

from diffrend.ops import (
    estimate_pointcloud_local_coord_frames,
    estimate_pointcloud_normals,
    knn_gather,
    knn_points,
    laplacian,
    masked_gather,
    mesh_face_areas_normals,
    norm_laplacian,
    packed_to_padded,
    padded_to_packed,
    wmean,
)
from diffrend.structures import Pointclouds


def _brute_knn(p1, p2, l1, l2, K, norm):
    n, P1, _ = p1.shape
    dists = torch.zeros(n, P1, K, dtype=p1.dtype)
    idx = torch.zeros(n, P1, K, dtype=torch.int64)
    for b in range(n):
        for i in range(int(l1[b])):
            diff = p1[b, i] - p2[b, : int(l2[b])]
            d = diff.square().sum(1) if norm == 2 else diff.abs().sum(1)
            order = sorted(range(len(d)), key=lambda j: float(d[j]))[:K]
            for k, j in enumerate(order):
                dists[b, i, k], idx[b, i, k] = d[j], j
    return dists, idx


@pytest.mark.parametrize("norm", [1, 2])
def test_knn_points_matches_brute_force_with_lengths(norm):
    g = torch.Generator().manual_seed(0)
    p1 = torch.rand(3, 9, 3, generator=g, dtype=torch.float64)
    p2 = torch.rand(3, 7, 3, generator=g, dtype=torch.float64)
    l1, l2 = torch.tensor([9, 4, 0]), torch.tensor([7, 2, 5])
    out = knn_points(p1, p2, l1, l2, norm=norm, K=3, return_nn=True)
    ref_d, ref_i = _brute_knn(p1, p2, l1, l2, 3, norm)
    assert torch.allclose(out.dists, ref_d)
    assert torch.equal(out.idx, ref_i)
    # neighbour slots past lengths2 (cloud 1 has only 2 points) are zero
    assert (out.dists[1, :, 2] == 0).all() and (out.knn[1, :, 2] == 0).all()
    assert torch.allclose(out.knn, knn_gather(p2, out.idx, l2))


def test_knn_points_gradients_match_direct_distances():
    p1 = torch.rand(1, 5, 3, dtype=torch.float64, requires_grad=True)
    p2 = torch.rand(1, 6, 3, dtype=torch.float64, requires_grad=True)
    out = knn_points(p1, p2, K=2)
    out.dists.sum().backward()
    g1, g2 = p1.grad.clone(), p2.grad.clone()
    p1.grad = p2.grad = None
    near = p2[0, out.idx[0]]  # (5, 2, 3)
    (p1[0, :, None] - near).square().sum().backward()
    assert torch.allclose(g1, p1.grad) and torch.allclose(g2, p2.grad)


def test_knn_points_rejects_bad_inputs():
    with pytest.raises(ValueError, match="batch"):
        knn_points(torch.rand(2, 3, 3), torch.rand(3, 3, 3))
    with pytest.raises(ValueError, match="norm"):
        knn_points(torch.rand(1, 3, 3), torch.rand(1, 3, 3), norm=3)


def test_packed_padded_by_first_idx_round_trip_and_grad():
    first = torch.tensor([0, 3, 3, 7])
    x = torch.rand(9, 2, requires_grad=True)
    padded = packed_to_padded(x, first, 4)
    assert padded.shape == (4, 4, 2)
    assert torch.equal(padded[0, :3], x[:3].detach()) and (padded[1] == 0).all()
    assert torch.equal(padded[2, :4], x[3:7].detach()) and (padded[0, 3] == 0).all()
    back = padded_to_packed(padded, first, 9)
    assert torch.equal(back, x.detach())
    (padded * torch.arange(32.0).reshape(4, 4, 2)).sum().backward()
    assert torch.equal(x.grad, padded_to_packed(torch.arange(32.0).reshape(4, 4, 2), first, 9))
    # the padded dimension elsewhere than 1
    assert torch.equal(padded_to_packed(padded.transpose(1, 2), first, 9, max_size_dim=2), back)


def test_mesh_face_areas_normals_keeps_dtype_and_values():
    verts = torch.tensor([[0, 0, 0], [2, 0, 0], [0, 3, 0], [0, 0, 1]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [0, 3, 1]])
    areas, normals = mesh_face_areas_normals(verts, faces)
    assert areas.dtype == torch.float64
    assert torch.allclose(areas, torch.tensor([3.0, 1.0], dtype=torch.float64))
    assert torch.allclose(normals, torch.tensor([[0, 0, 1.0], [0, 1.0, 0]], dtype=torch.float64))


def test_laplacians():
    verts = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 2, 0], [5, 5, 5]], dtype=torch.float32)
    edges = torch.tensor([[0, 1], [0, 2]])
    L = laplacian(verts, edges).to_dense()
    expected = torch.tensor([[-1, 0.5, 0.5, 0], [1, -1, 0, 0], [1, 0, -1, 0], [0, 0, 0, -1]])
    assert torch.allclose(L, expected)
    N = norm_laplacian(verts, edges, eps=0.0).to_dense()
    assert torch.allclose(N, N.t()) and math.isclose(float(N[0, 2]), 0.5)
    assert float(N[1, 2]) == 0.0


def test_estimate_normals_of_a_plane_point_up_and_frames_are_orthonormal():
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(1, 60, 2, generator=g) * 2 - 1
    pts = torch.cat([xy, 0.01 * torch.rand(1, 60, 1, generator=g)], -1)
    normals = estimate_pointcloud_normals(pts, neighborhood_size=8)
    assert torch.allclose(normals.abs()[..., 2], torch.ones(1, 60), atol=1e-2)
    _, frames = estimate_pointcloud_local_coord_frames(pts, neighborhood_size=8)
    eye = frames.transpose(-1, -2) @ frames
    assert torch.allclose(eye, torch.eye(3).expand_as(eye), atol=1e-5)
    with pytest.raises(ValueError, match="neighborhood_size"):
        estimate_pointcloud_normals(pts, neighborhood_size=60)


def test_pointclouds_estimate_normals_assign_and_ragged():
    g = torch.Generator().manual_seed(2)
    pc = Pointclouds([torch.rand(30, 3, generator=g), torch.rand(20, 3, generator=g)])
    est = pc.estimate_normals(neighborhood_size=5, assign_to_self=True)
    assert est.shape == (2, 30, 3)
    assert torch.equal(pc.normals_padded(), est)
    assert torch.equal(pc.normals_list()[1], est[1, :20])
    # a ragged cloud's normals only use its own points
    alone = estimate_pointcloud_normals(pc.points_list()[1][None], neighborhood_size=5)
    assert torch.allclose(est[1, :20], alone[0], atol=1e-5)


def test_wmean_and_masked_gather():
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    assert torch.allclose(wmean(x), torch.tensor([[2.0, 4.0]]))
    w = torch.tensor([1.0, 3.0])
    assert torch.allclose(wmean(x, w), torch.tensor([[2.5, 5.0]]))
    pts = torch.arange(12.0).reshape(1, 4, 3)
    out = masked_gather(pts, torch.tensor([[2, -1]]))
    assert torch.equal(out, torch.tensor([[[6.0, 7, 8], [0, 0, 0]]]))
