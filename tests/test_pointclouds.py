"""``Pointclouds``: views, layout maps, indexing, copies, updates and validation."""

from __future__ import annotations

import math

import pytest
import torch

from diffrend import Pointclouds, join_pointclouds_as_batch


def _clouds(sizes=(4, 0, 2), C=5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    pts = [torch.randn(n, 3, generator=g, dtype=dtype) for n in sizes]
    nrm = [torch.randn(n, 3, generator=g, dtype=dtype) for n in sizes]
    feat = [torch.rand(n, C, generator=g, dtype=dtype) for n in sizes]
    return pts, nrm, feat


def test_list_padded_packed_round_trip_heterogeneous():
    pts, nrm, feat = _clouds()
    pc = Pointclouds(pts, normals=nrm, features=feat)
    assert len(pc) == 3 and not pc.equisized and not pc.isempty()
    assert pc.num_points_per_cloud().tolist() == [4, 0, 2]
    assert pc.cloud_to_packed_first_idx().tolist() == [0, 4, 4]
    assert pc.packed_to_cloud_idx().tolist() == [0, 0, 0, 0, 2, 2]
    assert pc.padded_to_packed_idx().tolist() == [0, 1, 2, 3, 8, 9]
    assert pc.valid.tolist() == [True, False, True]
    assert pc.num_features == 5
    for name, src in (("points", pts), ("normals", nrm), ("features", feat)):
        packed = getattr(pc, f"{name}_packed")()
        padded = getattr(pc, f"{name}_padded")()
        listed = getattr(pc, f"{name}_list")()
        assert torch.equal(packed, torch.cat(src))
        assert padded.shape == (3, 4, src[0].shape[1])
        assert torch.equal(padded.reshape(-1, padded.shape[-1])[pc.padded_to_packed_idx()],
                           packed)
        assert padded[1].abs().sum() == 0 and padded[2, 2:].abs().sum() == 0  # zero padding
        for a, b in zip(listed, src, strict=True):
            assert torch.equal(a, b)
    # Built from padded: the same views
    pc2 = Pointclouds(pc.points_padded(), features=pc.features_padded())
    assert pc2.num_points_per_cloud().tolist() == [4, 4, 4]
    assert torch.equal(pc2.points_list()[0], pts[0])
    assert pc2.normals_packed() is None and pc2.normals_list() is None


def test_padded_input_and_list_aux():
    x = torch.randn(2, 3, 3)
    feats = [torch.rand(3, 2), torch.rand(3, 2)]
    pc = Pointclouds(x, features=feats)
    assert pc.equisized
    assert torch.equal(pc.points_packed(), x.reshape(-1, 3))
    assert torch.equal(pc.features_padded(), torch.stack(feats))


def test_empty_batch_and_empty_clouds():
    pc = Pointclouds([])
    assert len(pc) == 0 and pc.isempty()
    assert pc.points_packed().shape == (0, 3) and pc.points_padded().shape == (0, 0, 3)
    assert pc.get_bounding_boxes().shape == (0, 3, 2)
    pc = Pointclouds([torch.zeros(0, 3), torch.zeros(0, 3)], features=[torch.zeros(0, 4)] * 2)
    assert pc.isempty() and pc.points_padded().shape == (2, 0, 3)
    # as PyTorch3D: a batch without any point keeps no normals or features
    assert pc.features_packed() is None and pc.features_list() is None


def test_views_are_differentiable():
    pts, _, feat = _clouds()
    pts = [p.requires_grad_() for p in pts]
    feat = [f.requires_grad_() for f in feat]
    pc = Pointclouds(pts, features=feat)
    (pc.points_padded().sum() * 2 + pc.features_packed().sum()).backward()
    assert torch.equal(pts[0].grad, torch.full_like(pts[0], 2.0))
    assert torch.equal(feat[2].grad, torch.ones_like(feat[2]))


def test_update_padded_gradients_and_layout():
    pts, nrm, feat = _clouds()
    pc = Pointclouds(pts, normals=nrm, features=feat)
    new = (pc.points_padded() * 3).detach().requires_grad_()
    out = pc.update_padded(new)
    assert out.num_points_per_cloud().tolist() == [4, 0, 2]
    assert torch.equal(out.points_packed(), torch.cat(pts) * 3)
    assert torch.equal(out.features_packed(), pc.features_packed())  # kept
    out.points_packed().sum().backward()
    expected = torch.zeros(3, 4, 3)
    expected[0] = 1
    expected[2, :2] = 1
    assert torch.equal(new.grad, expected)  # padding gets no gradient
    new_f = torch.zeros(3, 4, 5)
    assert out.update_padded(new, new_features_padded=new_f).features_packed().abs().sum() == 0
    assert torch.equal(pc.points_packed(), torch.cat(pts))  # the original is unchanged
    with pytest.raises(ValueError, match="new_points_padded"):
        pc.update_padded(torch.zeros(3, 5, 3))
    with pytest.raises(ValueError, match="new_features_padded"):
        pc.update_padded(new, new_features_padded=torch.zeros(2, 4, 5))


def test_indexing():
    pts, nrm, feat = _clouds((3, 1, 0, 2))
    pc = Pointclouds(pts, normals=nrm, features=feat)
    one = pc[1]
    assert len(one) == 1 and torch.equal(one.points_packed(), pts[1])
    assert torch.equal(pc[-1].features_packed(), feat[3])
    assert [len(p) for p in pc[1:3].points_list()] == [1, 0]
    sel = pc[[3, 0]]
    assert torch.equal(sel.points_packed(), torch.cat([pts[3], pts[0]]))
    assert torch.equal(sel.normals_list()[1], nrm[0])
    mask = torch.tensor([True, False, False, True])
    assert torch.equal(pc[mask].points_packed(), torch.cat([pts[0], pts[3]]))
    assert torch.equal(pc[torch.tensor([2, 1])].num_points_per_cloud(), torch.tensor([0, 1]))
    for bad in (4, -5, [0, 7], torch.tensor([True]), 1.5, True):
        with pytest.raises(IndexError):
            pc[bad]
    p, n, f = pc.get_cloud(3)
    assert torch.equal(p, pts[3]) and torch.equal(n, nrm[3]) and torch.equal(f, feat[3])
    p, n, f = Pointclouds(pts).get_cloud(0)
    assert n is None and f is None
    with pytest.raises(ValueError, match="index"):
        pc.get_cloud(4)
    a, b = pc.split([1, 3])
    assert len(a) == 1 and len(b) == 3


def test_extend_clone_detach_to():
    pts, _, feat = _clouds((2, 3))
    pts = [p.requires_grad_() for p in pts]
    pc = Pointclouds(pts, features=feat)
    ext = pc.extend(3)
    assert len(ext) == 6 and ext.num_points_per_cloud().tolist() == [2, 2, 2, 3, 3, 3]
    assert torch.equal(ext.points_list()[2], pts[0]) and torch.equal(ext.features_list()[3],
                                                                      feat[1])
    ext.points_packed().sum().backward()
    assert torch.equal(pts[0].grad, torch.full_like(pts[0], 3.0))
    with pytest.raises(ValueError, match="N"):
        pc.extend(0)
    cl = pc.clone()
    assert cl.points_list()[0] is not pts[0] and torch.equal(cl.points_list()[0], pts[0])
    assert cl.points_packed().requires_grad
    det = pc.detach()
    assert not det.points_packed().requires_grad and det.features_packed() is not None
    assert pc.to("cpu") is pc and pc.cpu() is pc
    assert pc.to("cpu", copy=True) is not pc
    d64 = pc.to(torch.device("cpu"))
    assert d64.device == torch.device("cpu")


def test_offset_scale_bounding_boxes():
    pts, nrm, _ = _clouds((3, 0, 2))
    pc = Pointclouds(pts, normals=nrm)
    moved = pc.offset(torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(moved.points_packed(), torch.cat(pts) + torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(moved.normals_packed(), pc.normals_packed())
    per = torch.randn(5, 3)
    assert torch.equal(pc.offset(per).points_packed(), torch.cat(pts) + per)
    with pytest.raises(ValueError, match="offsets_packed"):
        pc.offset(torch.zeros(4, 3))
    scaled = pc.scale(torch.tensor([2.0, 5.0, -1.0]))
    assert torch.equal(scaled.points_list()[2], -pts[2])
    assert torch.equal(pc.scale(2.0).points_list()[0], 2 * pts[0])
    with pytest.raises(ValueError, match="scale"):
        pc.scale(torch.ones(2))
    same = pc.clone()
    assert same.offset_(torch.ones(3)) is same
    assert torch.allclose(same.points_packed(), torch.cat(pts) + 1)
    same.scale_(0.0)
    assert same.points_packed().abs().sum() == 0
    bb = pc.get_bounding_boxes()
    assert bb.shape == (3, 3, 2)
    assert torch.equal(bb[0, :, 0], pts[0].amin(0)) and torch.equal(bb[0, :, 1], pts[0].amax(0))
    assert bb[1].abs().sum() == 0


def test_join_as_batch():
    pts, _, feat = _clouds((2, 3))
    a = Pointclouds(pts[:1], features=feat[:1])
    b = Pointclouds(pts[1:], features=feat[1:])
    j = join_pointclouds_as_batch([a, b])
    assert j.num_points_per_cloud().tolist() == [2, 3]
    assert torch.equal(j.features_packed(), torch.cat(feat))
    with pytest.raises(ValueError, match="features"):
        join_pointclouds_as_batch([a, Pointclouds(pts[1:])])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(points=[torch.zeros(3, 2)]), r"points\[0\]"),
        (dict(points=[torch.zeros(3, 3, dtype=torch.int64)]), r"points\[0\]"),
        (dict(points=torch.zeros(2, 3)), "points"),
        (dict(points=torch.zeros(1, 3, 4)), "points"),
        (dict(points="abc"), "points"),
        (dict(points=[torch.tensor([[0.0, math.nan, 0.0]])]), r"points\[0\].*NaN"),
        (dict(points=torch.tensor([[[0.0, math.inf, 0.0]]])), "points.*inf"),
        (dict(points=[torch.zeros(3, 3)], normals=[torch.zeros(3, 2)]), r"normals\[0\]"),
        (dict(points=[torch.zeros(3, 3)], normals=[torch.zeros(2, 3)]), r"normals\[0\]"),
        (dict(points=[torch.zeros(3, 3)], normals=torch.zeros(1, 3, 4)), "normals"),
        (dict(points=[torch.zeros(3, 3)], features=[torch.zeros(2, 4)]), r"features\[0\]"),
        (dict(points=[torch.zeros(3, 3), torch.zeros(1, 3)],
              features=[torch.zeros(3, 4), torch.zeros(1, 5)]), "features.*channels"),
        (dict(points=[torch.zeros(3, 3), torch.zeros(1, 3)],
              features=[torch.zeros(3, 4)]), "features.*one per cloud"),
        (dict(points=torch.zeros(2, 3, 3), features=torch.zeros(2, 4, 1)), "features"),
        (dict(points=[torch.zeros(3, 3)], features="abc"), "features"),
        (dict(points=[torch.zeros(2, 3)], features=[torch.tensor([[0.5], [math.nan]])]),
         r"features\[0\].*NaN"),
        (dict(points=torch.zeros(1, 2, 3), features=torch.full((1, 2, 3), math.inf)),
         "features.*inf"),
        (dict(points=[torch.zeros(2, 3)], normals=[torch.tensor([[0.0, 0, 1], [math.nan, 0, 0]])]),
         r"normals\[0\].*NaN"),
    ],
)
def test_validation_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Pointclouds(**kwargs)
