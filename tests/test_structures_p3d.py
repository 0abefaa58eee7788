"""PyTorch3D behaviours of the structures: submeshes, scenes, empty forms, subsampling,
boxes, subdivision module, torus and checkerboard constructors, struct utils options."""

from __future__ import annotations

import math

import pytest
import torch

from diffrend.losses import chamfer_distance
from diffrend.shading.checkerboard import checkerboard
from diffrend.structures import (
    Meshes,
    Pointclouds,
    SubdivideMeshes,
    ico_sphere,
    join_meshes_as_scene,
    join_pointclouds_as_scene,
    list_to_padded,
    padded_to_list,
    padded_to_packed,
    subdivide_meshes,
    torus,
)


def _two_triangles():
    verts = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.0]])
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    return Meshes([verts, verts + 10], [faces, faces])


def test_submeshes_keep_used_vertices_in_order_and_renumber():
    m = _two_triangles()
    sub = m.submeshes([[torch.tensor([1])], [torch.tensor([0]), torch.tensor([0, 1])]])
    assert len(sub) == 3
    v0, f0 = sub.get_mesh_verts_faces(0)
    assert torch.equal(v0, m.verts_list()[0][[1, 2, 3]])
    assert torch.equal(f0, torch.tensor([[0, 2, 1]]))
    assert torch.equal(sub.verts_list()[2], m.verts_list()[1])
    assert torch.equal(sub.faces_list()[2], m.faces_list()[1])
    with pytest.raises(ValueError, match="exactly one set of submeshes"):
        m.submeshes([[torch.tensor([0])]])


def test_extend_copies_faces_too():
    m = _two_triangles()
    ext = m.extend(2)
    ext.faces_list()[0][0, 0] = 2  # an in-place edit of a copy ...
    assert int(m.faces_list()[0][0, 0]) == 0  # ... leaves the original alone
    assert ext.faces_list()[1].data_ptr() != ext.faces_list()[0].data_ptr()


def test_join_meshes_as_scene_offsets_faces():
    m = _two_triangles()
    scene = join_meshes_as_scene(m)
    assert len(scene) == 1
    assert torch.equal(scene.verts_packed(), m.verts_packed())
    assert torch.equal(scene.faces_packed(), m.faces_packed())
    assert torch.equal(join_meshes_as_scene([m, m]).faces_list()[0][-2:], m.faces_list()[1] + 12)


def test_empty_one_dimensional_tensors_and_float_faces():
    m = Meshes([torch.rand(3, 3), torch.tensor([])], [torch.tensor([[0.0, 1, 2]]),
                                                     torch.tensor([], dtype=torch.int64)])
    assert m.num_verts_per_mesh().tolist() == [3, 0]
    assert m.faces_list()[0].dtype == torch.int64 and m.faces_list()[1].shape == (0, 3)
    assert m.valid.tolist() == [True, False]
    pc = Pointclouds([torch.rand(4, 3), torch.tensor([])],
                     features=[torch.rand(4, 2), None])
    assert pc.num_points_per_cloud().tolist() == [4, 0]
    assert pc.features_list()[1].shape == (0, 2)


def test_private_views_follow_the_caches():
    m = _two_triangles()
    assert m._verts_packed is None and m._edges_packed is None
    m._compute_packed()
    assert torch.equal(m._verts_packed, m.verts_packed())
    assert torch.equal(m._mesh_to_verts_packed_first_idx, torch.tensor([0, 4]))
    m._compute_edges_packed()
    assert m._num_edges_per_mesh.dtype == torch.int32
    assert m._num_edges_per_mesh.tolist() == [5, 5]
    pc = Pointclouds([torch.rand(3, 3)])
    assert pc._points_packed is None
    pc._compute_packed()
    assert torch.equal(pc._points_packed, pc.points_packed())


def test_subdivide_module_matches_function_and_shared_topology():
    sphere = ico_sphere(0).extend(2)
    out = SubdivideMeshes()(sphere)
    ref = subdivide_meshes(sphere)
    assert torch.equal(out.verts_packed(), ref.verts_packed())
    shared = SubdivideMeshes(ico_sphere(0))
    feats = torch.rand(24, 5)
    new, new_feats = shared(sphere, feats)
    assert torch.equal(new.faces_packed(), ref.faces_packed())
    assert new_feats.shape == (2, 12 + 30, 5)
    assert torch.allclose(new_feats[0, 12], feats[sphere.edges_packed()[0]].mean(0))


def test_pointclouds_subsample_inside_box_and_scene():
    torch.manual_seed(0)
    pts = [torch.rand(5, 3), torch.rand(2, 3)]
    feats = [torch.rand(5, 4), torch.rand(2, 4)]
    pc = Pointclouds(pts, features=feats)
    assert pc.subsample(5) is pc
    sub = pc.subsample([3, 5])
    assert sub.num_points_per_cloud().tolist() == [3, 2]
    rows = [int((pts[0] == p).all(1).nonzero()) for p in sub.points_list()[0]]
    assert len(set(rows)) == 3  # without replacement
    assert torch.equal(sub.features_list()[0], feats[0][rows])
    box = torch.tensor([[0.0, 0.0, 0.0], [0.5, 1.0, 1.0]])
    inside = pc.inside_box(box)
    assert torch.equal(inside, (pc.points_packed()[:, 0] <= 0.5))
    per_cloud = torch.stack([box, torch.tensor([[2.0, 2, 2], [3.0, 3, 3]])])
    assert not pc.inside_box(per_cloud)[5:].any()
    with pytest.raises(ValueError, match="Input box is invalid"):
        pc.inside_box(box.flip(0))
    scene = join_pointclouds_as_scene(pc)
    assert len(scene) == 1 and torch.equal(scene.features_packed(), pc.features_packed())


def test_chamfer_accepts_pointclouds():
    torch.manual_seed(1)
    x = [torch.rand(6, 3), torch.rand(4, 3)]
    y = [torch.rand(5, 3), torch.rand(7, 3)]
    a, _ = chamfer_distance(Pointclouds(x), Pointclouds(y))
    b, _ = chamfer_distance(x, y)
    assert torch.allclose(a, b)
    zero, _ = chamfer_distance(torch.rand(3, 4, 3), torch.rand(3, 5, 3),
                               weights=torch.zeros(3), batch_reduction=None)
    assert zero.shape == (3,) and (zero == 0).all()


def test_struct_utils_pytorch3d_options():
    x = [torch.tensor([]), torch.ones(2, 3)]
    assert list_to_padded(x).shape == (2, 2, 3)
    parts = padded_to_list(torch.rand(2, 4, 5), [(1, 2), (3, 5)])
    assert [tuple(p.shape) for p in parts] == [(1, 2), (3, 5)]
    padded = torch.tensor([[[1.0, 2], [-1, -1]], [[-1, 3], [-1, -1]]])
    assert torch.equal(padded_to_packed(padded, pad_value=-1), torch.tensor([[1.0, 2], [-1, 3]]))
    with pytest.raises(ValueError, match="Only one of"):
        padded_to_packed(padded, split_size=[1, 1], pad_value=-1)


def test_torus_geometry():
    t = torus(0.5, 2.0, sides=6, rings=8)
    v = t.verts_packed()
    assert v.shape == (48, 3) and t.faces_packed().shape == (96, 3)
    # every vertex lies on the tube: distance to the centre circle is r
    ring = torch.sqrt(v[:, 0] ** 2 + v[:, 1] ** 2)
    assert torch.allclose(torch.sqrt((ring - 2.0) ** 2 + v[:, 2] ** 2), torch.full((48,), 0.5))
    assert math.isclose(float(v[1, 2]), 0.5 * math.sin(2 * math.pi / 6), rel_tol=1e-6)
    # closed surface: every edge is shared by two faces
    assert t.edges_packed().shape[0] == 96 * 3 // 2
    with pytest.raises(ValueError, match="sides"):
        torus(0.5, 2.0, sides=0, rings=8)


def test_checkerboard_colours_alternate():
    board = checkerboard(2, color1=(0.0, 0.0, 0.0), color2=(1.0, 0.5, 0.25))
    verts, faces = board.verts_packed(), board.faces_packed()
    assert verts.shape == (25, 3) and faces.shape == (32, 3)
    assert float(verts[:, :2].min()) == -2 and float(verts[:, 2].abs().max()) == 0
    atlas = board.textures.atlas_packed()  # (F, 1, 1, 3)
    centres = verts[faces].mean(1)
    odd = ((torch.floor(centres[:, 0]) + torch.floor(centres[:, 1])) % 2 != 0)
    assert torch.equal(atlas[odd, 0, 0], torch.tensor([1.0, 0.5, 0.25]).expand(int(odd.sum()), 3))
    assert (atlas[~odd] == 0).all()
