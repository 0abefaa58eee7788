"""MeshRasterizer: batches, cameras, gradients to scene parameters, PyTorch3D import names."""

from __future__ import annotations

import pytest
import torch

from diffrend.cameras import FoVPerspectiveCameras, look_at_view_transform
from diffrend.raster import (
    MeshRasterizer,
    RasterizationSettings,
    rasterize_meshes,
)
from diffrend.structures import Meshes, ico_sphere


def _cams(n: int = 1, dist: float = 3.0):
    R, T = look_at_view_transform(dist=dist, elev=20.0, azim=torch.linspace(0, 90, n))
    return FoVPerspectiveCameras(R=R, T=T)


def test_pytorch3d_names_import_from_top_level():
    import diffrend

    for name in (
        "Meshes", "FoVPerspectiveCameras", "PerspectiveCameras", "FoVOrthographicCameras",
        "OrthographicCameras", "look_at_view_transform", "RasterizationSettings",
        "MeshRasterizer", "Fragments", "ico_sphere", "load_obj", "rasterize_meshes",
        "MeshRenderer", "MeshRendererWithFragments", "HardPhongShader", "SoftPhongShader",
        "HardGouraudShader", "SoftGouraudShader", "HardFlatShader", "SoftSilhouetteShader",
        "HardDepthShader", "SoftDepthShader", "TexturesVertex", "TexturesUV", "TexturesAtlas",
        "PointLights", "DirectionalLights", "AmbientLights", "Materials", "BlendParams",
        "interpolate_face_attributes",
    ):
        assert hasattr(diffrend, name), name


def test_heterogeneous_batch_equals_each_mesh_alone():
    a = ico_sphere(1)
    b = ico_sphere(2)
    b = b.offset_verts(torch.tensor([0.3, 0.0, 0.0]))
    batch = Meshes(verts=[a.verts_list()[0], b.verts_list()[0]],
                   faces=[a.faces_list()[0], b.faces_list()[0]])
    settings = RasterizationSettings(image_size=(40, 56), faces_per_pixel=3, blur_radius=1e-3)
    cams = _cams(2)
    fr = MeshRasterizer(cams, settings)(batch)
    offset = a.faces_list()[0].shape[0]
    for i, m in enumerate((a, b)):
        alone = MeshRasterizer(cams[i], settings)(m)
        p2f = fr.pix_to_face[i]
        expected = torch.where(alone.pix_to_face[0] >= 0, alone.pix_to_face[0] + offset * i,
                               alone.pix_to_face[0])
        assert torch.equal(p2f, expected)
        torch.testing.assert_close(fr.zbuf[i], alone.zbuf[0])
        torch.testing.assert_close(fr.bary_coords[i], alone.bary_coords[0])


def test_one_mesh_many_cameras_is_extended():
    fr = MeshRasterizer(_cams(4), RasterizationSettings(image_size=24))(ico_sphere(2))
    assert fr.pix_to_face.shape == (4, 24, 24, 1)
    assert ((fr.pix_to_face >= 0).sum(dim=(1, 2, 3)) > 50).all()


def test_mismatched_camera_batch_raises():
    meshes = ico_sphere(1).extend(3)
    with pytest.raises(ValueError, match="cameras"):
        MeshRasterizer(_cams(2), RasterizationSettings(image_size=16))(meshes)


def test_gradients_reach_camera_and_vertex_offsets():
    R, T = look_at_view_transform(dist=3.0, elev=10.0, azim=20.0)
    T = T.clone().requires_grad_()
    cams = FoVPerspectiveCameras(R=R, T=T)
    sphere = ico_sphere(2)
    offsets = torch.zeros_like(sphere.verts_packed(), requires_grad=True)
    settings = RasterizationSettings(image_size=32, blur_radius=1e-3, faces_per_pixel=4)
    fr = MeshRasterizer(cams, settings)(sphere.offset_verts(offsets))
    valid = fr.pix_to_face >= 0
    loss = fr.zbuf[valid].sum() + fr.dists[valid].sum()
    loss.backward()
    assert T.grad is not None and torch.isfinite(T.grad).all() and T.grad.abs().sum() > 0
    assert torch.isfinite(offsets.grad).all() and offsets.grad.abs().sum() > 0


def test_per_call_overrides_take_precedence():
    r = MeshRasterizer(_cams(1), RasterizationSettings(image_size=16))
    fr = r(ico_sphere(1), raster_settings=RasterizationSettings(image_size=(8, 12),
                                                                faces_per_pixel=2))
    assert fr.pix_to_face.shape == (1, 8, 12, 2)
    R, T = look_at_view_transform(dist=100.0)
    far = r(ico_sphere(1), R=R, T=T)
    near = r(ico_sphere(1))
    assert (far.pix_to_face >= 0).sum() < (near.pix_to_face >= 0).sum()


def test_rasterize_meshes_defaults_and_bin_size_ignored():
    meshes = ico_sphere(1)
    verts = meshes.verts_padded() * 0.5
    verts = torch.cat((verts[..., :2], verts[..., 2:] + 2.0), dim=-1)
    ndc = meshes.update_padded(verts)
    a = rasterize_meshes(ndc, image_size=16)
    b = rasterize_meshes(ndc, image_size=16, bin_size=4, max_faces_per_bin=1)
    assert a.pix_to_face.shape == (1, 16, 16, 8)  # PyTorch3D's default K=8
    assert torch.equal(a.pix_to_face, b.pix_to_face)


def test_empty_mesh_in_batch():
    empty = Meshes(verts=[torch.zeros(0, 3)], faces=[torch.zeros(0, 3, dtype=torch.int64)])
    sphere = ico_sphere(1)
    batch = Meshes(verts=[sphere.verts_list()[0], torch.zeros(0, 3)],
                   faces=[sphere.faces_list()[0], torch.zeros(0, 3, dtype=torch.int64)])
    fr = MeshRasterizer(_cams(2), RasterizationSettings(image_size=16))(batch)
    assert (fr.pix_to_face[1] == -1).all() and (fr.pix_to_face[0] >= 0).any()
    fr = MeshRasterizer(_cams(1), RasterizationSettings(image_size=16))(empty)
    assert (fr.pix_to_face == -1).all()


def test_missing_cameras_raise():
    with pytest.raises(ValueError, match="Cameras must be specified"):
        MeshRasterizer(raster_settings=RasterizationSettings(image_size=8))(ico_sphere(0))
