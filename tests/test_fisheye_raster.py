"""Rasterizing with cameras that have no projection matrix (FishEyeCameras)."""

from __future__ import annotations

import torch

from diffrend import (
    MeshRasterizer,
    PerspectiveCameras,
    Pointclouds,
    PointsRasterizationSettings,
    PointsRasterizer,
    RasterizationSettings,
    ico_sphere,
    look_at_view_transform,
)
from diffrend.cameras import FishEyeCameras


def _cams(world_coordinates: bool):
    R, T = look_at_view_transform(2.7, 10, 30)
    fisheye = FishEyeCameras(R=R, T=T, focal_length=((1.5,),), principal_point=((0.1, -0.05),),
                             use_radial=False, use_tangential=False, use_thin_prism=False,
                             world_coordinates=world_coordinates)
    persp = PerspectiveCameras(R=R, T=T, focal_length=1.5, principal_point=((0.1, -0.05),))
    return fisheye, persp


def test_undistorted_fisheye_rasterizes_like_a_pinhole():
    # Without distortion the fisheye model is x/z, y/z scaled: a pinhole camera.
    mesh = ico_sphere(2)
    # The fisheye model is not a perspective camera to the rasterizer (no perspective
    # correction): compare both without it.
    settings = RasterizationSettings(image_size=48, faces_per_pixel=2, perspective_correct=False)
    for world in (True, False):
        fisheye, persp = _cams(world)
        a = MeshRasterizer(fisheye, settings)(mesh)
        b = MeshRasterizer(persp, settings)(mesh)
        assert (a.pix_to_face >= 0).sum() > 100
        assert torch.equal(a.pix_to_face, b.pix_to_face)
        torch.testing.assert_close(a.zbuf, b.zbuf)


def test_distorted_fisheye_changes_the_image_and_has_gradients():
    R, T = look_at_view_transform(2.7, 0, 0)
    verts = ico_sphere(2).verts_packed().clone().requires_grad_(True)
    mesh = ico_sphere(2).update_padded(verts[None])
    settings = RasterizationSettings(image_size=48, blur_radius=1e-4, faces_per_pixel=2)
    plain = MeshRasterizer(FishEyeCameras(R=R, T=T, use_radial=False), settings)(mesh)
    lens = MeshRasterizer(FishEyeCameras(R=R, T=T), settings)(mesh)
    assert not torch.equal(plain.pix_to_face, lens.pix_to_face)
    lens.dists[lens.pix_to_face >= 0].sum().backward()
    assert torch.isfinite(verts.grad).all() and verts.grad.abs().sum() > 0


def test_points_with_undistorted_fisheye_match_pinhole():
    cloud = Pointclouds([ico_sphere(2).verts_packed()])
    settings = PointsRasterizationSettings(image_size=48, radius=0.05, points_per_pixel=3)
    fisheye, persp = _cams(True)
    a = PointsRasterizer(fisheye, settings)(cloud)
    b = PointsRasterizer(persp, settings)(cloud)
    assert (a.idx >= 0).sum() > 100
    assert torch.equal(a.idx, b.idx)
