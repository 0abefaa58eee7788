"""cameras.viewmats_and_intrinsics: OpenCV/gsplat cameras that project like PyTorch3D's
screen space."""

import pytest
import torch

from diffrend.cameras import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    PerspectiveCameras,
    look_at_view_transform,
    viewmats_and_intrinsics,
)


def _project(viewmats, Ks, pts):
    cam = pts @ viewmats[:, :3, :3].transpose(1, 2) + viewmats[:, None, :3, 3]
    uv = cam @ Ks.transpose(1, 2)
    return uv[..., :2] / uv[..., 2:], cam[..., 2]


@pytest.mark.parametrize("hw", [(64, 64), (48, 80), (90, 40)])
def test_fov_cameras_match_screen_space(hw):
    h, w = hw
    R, T = look_at_view_transform(dist=torch.tensor([2.5, 3.0]), elev=torch.tensor([20., -35.]),
                                  azim=torch.tensor([40., 200.]))
    R, T = R.double(), T.double()
    cams = FoVPerspectiveCameras(R=R, T=T, fov=torch.tensor([50.0, 70.0], dtype=torch.float64))
    pts = torch.randn(2, 30, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pts = pts * 0.5
    viewmats, Ks = viewmats_and_intrinsics(cams, h, w)
    uv, depth = _project(viewmats, Ks, pts)
    screen = cams.transform_points_screen(pts, image_size=(h, w))
    assert torch.allclose(uv, screen[..., :2], atol=1e-9)
    assert (depth > 0).all()
    assert torch.allclose(viewmats[:, 3], torch.tensor([0., 0, 0, 1], dtype=torch.float64))


def test_perspective_cameras_match_screen_space():
    R, T = look_at_view_transform(dist=3.0, elev=10.0, azim=-30.0)
    R, T = R.double(), T.double()
    cams = PerspectiveCameras(focal_length=((1.7, 1.9),), principal_point=((0.1, -0.05),),
                              R=R, T=T)
    pts = torch.randn(1, 20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    viewmats, Ks = viewmats_and_intrinsics(cams, 50, 70)
    uv, _ = _project(viewmats, Ks, pts * 0.4)
    screen = cams.transform_points_screen(pts * 0.4, image_size=(50, 70))
    assert torch.allclose(uv, screen[..., :2], atol=1e-9)


def test_differentiable_in_pose():
    R, T = look_at_view_transform(dist=3.0, elev=10.0, azim=-30.0)
    R, T = R.double(), T.double()
    T = T.clone().requires_grad_(True)
    viewmats, Ks = viewmats_and_intrinsics(FoVPerspectiveCameras(R=R, T=T), 32, 32)
    (viewmats.sum() + Ks.sum()).backward()
    assert T.grad is not None and torch.isfinite(T.grad).all() and T.grad.abs().sum() > 0


def test_bad_input():
    with pytest.raises(ValueError, match="height"):
        viewmats_and_intrinsics(FoVPerspectiveCameras(), 0, 32)
    with pytest.raises(ValueError, match="cameras must be"):
        viewmats_and_intrinsics(FoVOrthographicCameras(), 32, 32)
