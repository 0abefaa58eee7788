"""Cameras and look-at: PyTorch3D goldens, round trips, gradients, batching, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import camera_from_golden, golden_cases, load_golden

from diffrend.cameras import (
    CamerasBase,
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    camera_position_from_spherical_angles,
    look_at_rotation,
    look_at_view_transform,
)
from diffrend.transforms import random_rotations

F64 = torch.float64
def assert_golden(actual: torch.Tensor, expected: np.ndarray, what: str) -> None:
    # Both sides are float32: 1e-5 relative, and 1e-5 absolute near zero. Screen coordinates
    # reach ~100 pixels, so their absolute error (~1e-5 * 100) is covered by rtol.
    torch.testing.assert_close(
        actual.detach(),
        torch.from_numpy(expected),
        rtol=1e-5,
        atol=1e-5,
        msg=lambda m: f"{what}: {m}",
    )


# --------------------------------------------------------------------------- goldens


@pytest.mark.parametrize("name", golden_cases("camera_"))
def test_camera_golden(name):
    g = load_golden(name)
    cam = camera_from_golden(g)
    pts = torch.from_numpy(g["points_world"])
    assert_golden(cam.R, g["cam_R"], "R")
    assert_golden(cam.T, g["cam_T"], "T")
    assert_golden(cam.get_world_to_view_transform().get_matrix(), g["world_to_view_matrix"], "w2v")
    assert_golden(
        cam.get_full_projection_transform().get_matrix(), g["full_projection_matrix"], "full"
    )
    assert_golden(cam.transform_points_ndc(pts), g["points_ndc"], "ndc")
    assert_golden(
        cam.transform_points_screen(pts, image_size=(96, 128)), g["points_screen_96x128"], "screen"
    )
    assert_golden(cam.get_camera_center(), g["camera_center"], "center")


@pytest.mark.parametrize("name", golden_cases("look_at_"))
def test_look_at_golden(name):
    g = load_golden(name)
    R, T = look_at_view_transform(float(g["dist"]), float(g["elev"]), float(g["azim"]))
    assert_golden(R, g["R"], "R")
    assert_golden(T, g["T"], "T")


def test_goldens_present():
    # The golden tests above silently collect nothing if the goldens are missing.
    assert len(golden_cases("camera_")) >= 6 and len(golden_cases("look_at_")) >= 4


# --------------------------------------------------------------------------- fixtures


def _extrinsics(
    n: int = 1, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    R, T = look_at_view_transform(
        dist=torch.linspace(2.5, 3.5, n, dtype=dtype),
        elev=20.0,
        azim=torch.linspace(-40, 40, n, dtype=dtype),
    )
    return R, T


def _all_cameras(dtype: torch.dtype = torch.float32) -> dict[str, CamerasBase]:
    R, T = _extrinsics(2, dtype)
    return {
        "fov_perspective": FoVPerspectiveCameras(znear=0.5, zfar=20.0, fov=50.0, R=R, T=T),
        "perspective": PerspectiveCameras(
            focal_length=((1.7, 1.9),), principal_point=((0.1, -0.05),), R=R, T=T
        ),
        "perspective_screen": PerspectiveCameras(
            focal_length=((150.0, 160.0),),
            principal_point=((70.0, 45.0),),
            in_ndc=False,
            image_size=((90, 130),),
            R=R,
            T=T,
        ),
        "fov_orthographic": FoVOrthographicCameras(
            min_x=-1.3, max_x=1.1, min_y=-0.9, max_y=1.2, R=R, T=T
        ),
        "orthographic": OrthographicCameras(
            focal_length=0.8, principal_point=((0.05, 0.1),), R=R, T=T
        ),
        "orthographic_screen": OrthographicCameras(
            focal_length=40.0,
            principal_point=((60.0, 50.0),),
            in_ndc=False,
            image_size=((100, 120),),
            R=R,
            T=T,
        ),
    }


CAMERA_NAMES = list(_all_cameras())


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", CAMERA_NAMES)
def test_unproject_inverts_transform(kind):
    cam = _all_cameras(F64)[kind]
    x = torch.rand(2, 30, 3, dtype=F64) * 2 - 1
    depth = cam.get_world_to_view_transform().transform_points(x)[..., 2:]
    xy = cam.transform_points(x)[..., :2]
    world = cam.unproject_points(torch.cat((xy, depth), -1), world_coordinates=True)
    torch.testing.assert_close(world, x, rtol=1e-9, atol=1e-9)
    view = cam.unproject_points(torch.cat((xy, depth), -1), world_coordinates=False)
    torch.testing.assert_close(
        view, cam.get_world_to_view_transform().transform_points(x), rtol=1e-9, atol=1e-9
    )
    # depth already in projected units
    scaled = cam.unproject_points(cam.transform_points(x), scaled_depth_input=True)
    torch.testing.assert_close(scaled, x, rtol=1e-9, atol=1e-9)
    # xy given in NDC (differs from the projection space only for screen cameras)
    xy_ndc = cam.transform_points_ndc(x)[..., :2]
    from_ndc = cam.unproject_points(torch.cat((xy_ndc, depth), -1), from_ndc=True)
    torch.testing.assert_close(from_ndc, x, rtol=1e-9, atol=1e-9)


def test_unproject_broadcasts_unbatched_points():
    cam = _all_cameras(F64)["fov_perspective"]
    xy_depth = torch.tensor([[0.1, 0.2, 3.0], [-0.3, 0.0, 2.0]], dtype=F64)
    out = cam.unproject_points(xy_depth)
    assert out.shape == (2, 2, 3)
    torch.testing.assert_close(
        cam.transform_points(out)[..., :2], xy_depth[None, :, :2].expand(2, -1, -1)
    )


def test_camera_center_is_eye():
    eye = torch.tensor([[1.0, 2.0, 3.0], [-2.0, 0.5, 1.0]])
    R, T = look_at_view_transform(eye=eye, at=(0.5, 0.0, 0.0))
    torch.testing.assert_close(
        FoVPerspectiveCameras(R=R, T=T).get_camera_center(), eye, rtol=1e-5, atol=1e-5
    )


# --------------------------------------------------------------------------- screen space


def test_transform_points_screen_non_square():
    H, W = 96, 128  # NDC y spans [-1, 1], x spans [-4/3, 4/3]
    cam = FoVOrthographicCameras(min_x=-1.0, max_x=1.0)  # identity x/y mapping, view = world
    ndc = torch.tensor([[0.0, 0.0, 5.0], [1.0, 1.0, 5.0], [-W / H, -1.0, 5.0], [0.5, -0.25, 5.0]])
    screen = cam.transform_points_screen(ndc, image_size=(H, W))
    # +X left / +Y up in NDC -> +X right / +Y down from the top-left corner in pixels
    expected_xy = torch.tensor([[64.0, 48.0], [16.0, 0.0], [128.0, 96.0], [40.0, 60.0]])
    torch.testing.assert_close(screen[:, :2], expected_xy)
    torch.testing.assert_close(screen[:, 2], cam.transform_points_ndc(ndc)[:, 2])
    unflipped = cam.transform_points_screen(ndc, image_size=(H, W), with_xyflip=False)
    torch.testing.assert_close(unflipped[:, :2], -expected_xy)
    # image_size as a batch of one, and as a tensor
    torch.testing.assert_close(
        cam.transform_points_screen(ndc, image_size=torch.tensor([[H, W]])), screen
    )


def test_screen_camera_matches_pixel_formula_non_square():
    # A screen-space pinhole camera puts a view point at pixel (px - fx X / Z, py - fy Y / Z):
    # PyTorch3D's +X/+Y are the image's -x/-y.
    fx, fy, px, py, H, W = 150.0, 160.0, 70.0, 45.0, 90, 130
    cam = PerspectiveCameras(
        focal_length=((fx, fy),), principal_point=((px, py),), in_ndc=False, image_size=((H, W),)
    )
    p = torch.tensor([[0.3, -0.2, 2.0], [-0.5, 0.4, 4.0]])
    screen = cam.transform_points_screen(p)
    expected = torch.stack((px - fx * p[:, 0] / p[:, 2], py - fy * p[:, 1] / p[:, 2]), 1)
    torch.testing.assert_close(screen[:, :2], expected)
    torch.testing.assert_close(
        cam.transform_points(p)[:, :2],
        torch.stack((fx * p[:, 0] / p[:, 2] + px, fy * p[:, 1] / p[:, 2] + py), 1),
    )


# --------------------------------------------------------------------------- gradients


def test_gradcheck_perspective_projection():
    R0, T0 = _extrinsics(2, F64)
    pts = torch.rand(2, 5, 3, dtype=F64) - 0.5

    def project(R, T, focal, pp):
        cam = PerspectiveCameras(focal_length=focal, principal_point=pp, R=R, T=T)
        return cam.transform_points_screen(pts, image_size=(40, 50))

    args = (
        R0.clone().requires_grad_(True),
        T0.clone().requires_grad_(True),
        torch.tensor([[1.5, 1.7], [2.0, 2.1]], dtype=F64, requires_grad=True),
        torch.tensor([[0.1, -0.1]], dtype=F64, requires_grad=True),
    )
    assert torch.autograd.gradcheck(project, args)


def test_gradcheck_fov_cameras():
    R0, T0 = _extrinsics(1, F64)
    pts = torch.rand(4, 3, dtype=F64) - 0.5

    def fov_project(R, T, fov, znear, aspect):
        cam = FoVPerspectiveCameras(znear=znear, zfar=50.0, fov=fov, aspect_ratio=aspect, R=R, T=T)
        return cam.transform_points(pts), cam.get_camera_center()

    def ortho_project(T, min_x, scale):
        cam = FoVOrthographicCameras(min_x=min_x, scale_xyz=scale, R=R0, T=T)
        return cam.transform_points_ndc(pts)

    leaf = lambda x: x.clone().requires_grad_(True)  # noqa: E731
    scalar = lambda v: torch.tensor(v, dtype=F64, requires_grad=True)  # noqa: E731
    assert torch.autograd.gradcheck(
        fov_project, (leaf(R0), leaf(T0), scalar(55.0), scalar(0.7), scalar(1.2))
    )
    assert torch.autograd.gradcheck(
        ortho_project,
        (leaf(T0), scalar(-1.3), torch.tensor([[1.0, 0.9, 1.1]], dtype=F64, requires_grad=True)),
    )


def test_gradients_reach_float32_parameters():
    fov = torch.tensor(60.0, requires_grad=True)
    R, T = _extrinsics(1)
    R.requires_grad_(True)
    cam = FoVPerspectiveCameras(fov=fov, R=R, T=T)
    cam.transform_points(torch.rand(10, 3)).sum().backward()
    assert fov.grad is not None and R.grad is not None and bool(torch.isfinite(R.grad).all())


# --------------------------------------------------------------------------- batching


def test_batched_cameras_broadcast_and_match_single():
    R, T = _extrinsics(3)
    cams = FoVPerspectiveCameras(fov=torch.tensor([40.0, 50.0, 60.0]), znear=0.5, R=R, T=T)
    assert len(cams) == 3 and cams.znear.shape == (3,) and cams.R.shape == (3, 3, 3)
    pts = torch.rand(7, 3)
    out = cams.transform_points(pts)
    assert out.shape == (3, 7, 3)
    for i in range(3):
        single = FoVPerspectiveCameras(
            fov=float(cams.fov[i]), znear=0.5, R=R[i : i + 1], T=T[i : i + 1]
        )
        torch.testing.assert_close(single.transform_points(pts), out[i])
        torch.testing.assert_close(cams[i].transform_points(pts), out[i])
    assert (
        len(cams[[0, 2]]) == 2
        and len(cams[torch.tensor([True, False, True])]) == 2
        and len(cams[1:]) == 2
    )
    # one R broadcast against three T
    cams2 = PerspectiveCameras(R=R[:1], T=T)
    assert cams2.R.shape == (3, 3, 3) and cams2.focal_length.shape == (3, 2)


def test_look_at_view_transform_batched_broadcasting():
    dist = torch.tensor([2.0, 3.0, 4.0])
    azim = torch.tensor([0.0, 90.0, -135.0])
    at = ((0.1, 0.2, 0.3),)
    R, T = look_at_view_transform(dist=dist, elev=30.0, azim=azim, at=at)
    assert R.shape == (3, 3, 3) and T.shape == (3, 3)
    for i in range(3):
        Ri, Ti = look_at_view_transform(float(dist[i]), 30.0, float(azim[i]), at=at)
        torch.testing.assert_close(R[i : i + 1], Ri)
        torch.testing.assert_close(T[i : i + 1], Ti)
    # cameras sit at `at + spherical(dist, elev, azim)`, and R is a rotation
    centers = FoVPerspectiveCameras(R=R, T=T).get_camera_center()
    expected = camera_position_from_spherical_angles(dist, 30.0, azim) + torch.tensor(at)
    torch.testing.assert_close(centers, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        R @ R.transpose(1, 2), torch.eye(3).expand(3, 3, 3), rtol=1e-5, atol=1e-5
    )
    # eye (N, 3) with per-camera `at` and one `up`, in radians
    eye = torch.tensor([[0.0, 0.0, 3.0], [3.0, 1.0, 0.0]])
    R2, T2 = look_at_view_transform(eye=eye, at=torch.zeros(2, 3), up=(0.0, 1.0, 0.0))
    assert R2.shape == (2, 3, 3)
    torch.testing.assert_close(R2, look_at_rotation(eye))
    Rr, _ = look_at_view_transform(
        2.0, math.radians(30.0), torch.tensor([0.0, math.pi / 2]), degrees=False
    )
    Rd, _ = look_at_view_transform(2.0, 30.0, torch.tensor([0.0, 90.0]))
    torch.testing.assert_close(Rr, Rd, rtol=1e-5, atol=1e-6)


def test_look_at_points_camera_at_target():
    R, T = look_at_view_transform(dist=2.0, elev=40.0, azim=70.0, at=((0.3, -0.2, 0.5),))
    target = torch.tensor([[0.3, -0.2, 0.5]])
    view = target @ R[0] + T[0]
    torch.testing.assert_close(
        view, torch.tensor([[0.0, 0.0, 2.0]]), rtol=1e-5, atol=1e-5
    )  # straight ahead
    up_view = torch.tensor([0.0, 1.0, 0.0]) @ R[0]
    assert float(up_view[1]) > 0  # world up stays up on screen


def test_look_at_straight_down_is_a_rotation():
    R = look_at_rotation(((0.0, 5.0, 0.0),), up=((0.0, 1.0, 0.0),))
    torch.testing.assert_close(R[0] @ R[0].T, torch.eye(3), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(1))
    torch.testing.assert_close(R[0][:, 2], torch.tensor([0.0, -1.0, 0.0]))


def test_look_at_gradcheck():
    def f(dist, elev, azim, at):
        return look_at_view_transform(dist, elev, azim, at=at)

    args = (
        torch.tensor([2.0, 3.0], dtype=F64, requires_grad=True),
        torch.tensor(20.0, dtype=F64, requires_grad=True),
        torch.tensor([10.0, -50.0], dtype=F64, requires_grad=True),
        torch.tensor([[0.1, 0.0, -0.2]], dtype=F64, requires_grad=True),
    )
    assert torch.autograd.gradcheck(f, args)


# --------------------------------------------------------------------------- API details


def test_accessors_and_copies():
    cams = _all_cameras()
    assert (
        cams["fov_perspective"].is_perspective() and not cams["fov_orthographic"].is_perspective()
    )
    assert cams["perspective"].is_perspective() and not cams["orthographic"].is_perspective()
    assert cams["perspective"].in_ndc() and not cams["perspective_screen"].in_ndc()
    assert cams["perspective"].get_znear() is None and cams["orthographic"].get_znear() is None
    torch.testing.assert_close(cams["fov_perspective"].get_znear(), torch.tensor([0.5, 0.5]))
    assert cams["fov_perspective"].get_image_size() is None
    torch.testing.assert_close(
        cams["perspective_screen"].get_image_size(), torch.tensor([[90.0, 130.0]] * 2)
    )
    pts = torch.rand(5, 3)
    for cam in cams.values():
        for other in (cam.clone(), cam.to("cpu"), cam[[0, 1]]):
            assert type(other) is type(cam)
            torch.testing.assert_close(other.transform_points(pts), cam.transform_points(pts))


def test_per_call_extrinsics_are_stored():
    # PyTorch3D keeps R/T passed to the transforms so later render steps see the same camera.
    cam = _all_cameras()["perspective"]
    R_new = random_rotations(2)
    T_new = torch.tensor([[0.0, 0.0, 5.0]])
    pts = torch.rand(4, 3)
    out = cam.transform_points(pts, R=R_new, T=T_new)
    assert out.shape == (2, 4, 3)
    torch.testing.assert_close(cam.R, R_new)
    torch.testing.assert_close(cam.T, T_new.expand(2, 3))
    torch.testing.assert_close(cam.transform_points(pts), out)


def test_per_call_extrinsics_can_grow_the_batch():
    cam = FoVPerspectiveCameras(fov=40.0)
    R_new = random_rotations(3)
    cam.get_full_projection_transform(R=R_new)
    assert len(cam) == 3 and cam.fov.shape == (3,) and cam.T.shape == (3, 3)
    torch.testing.assert_close(cam.R, R_new)


def test_world_to_view_per_call_extrinsics_are_not_stored():
    # Rasterizers pass per-call R/T here and keep the camera unchanged.
    cam = _all_cameras()["perspective"]
    R_before, T_before = cam.R.clone(), cam.T.clone()
    T_new = torch.tensor([[0.0, 0.0, 5.0]])
    m = cam.get_world_to_view_transform(R=random_rotations(2), T=T_new).get_matrix()
    torch.testing.assert_close(m[:, 3, :3], T_new.expand(2, 3))
    assert cam.get_camera_center(T=T_new).shape == (2, 3)
    torch.testing.assert_close(cam.R, R_before)
    torch.testing.assert_close(cam.T, T_before)


def test_with_extrinsics_does_not_mutate():
    cam = _all_cameras()["perspective"]
    R_before = cam.R.clone()
    other = cam.with_extrinsics(R=random_rotations(2))
    torch.testing.assert_close(cam.R, R_before)
    assert not torch.allclose(other.R, R_before)


def test_transform_points_eps_is_forwarded():
    cam = FoVPerspectiveCameras()
    on_plane = torch.tensor([[0.5, 0.5, 0.0]])  # view z == 0: homogeneous w == 0
    assert bool(torch.isfinite(cam.transform_points(on_plane, eps=1e-4)).all())
    assert not bool(torch.isfinite(cam.transform_points(on_plane)).all())


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: FoVPerspectiveCameras(R=torch.eye(4)), "R"),
        (lambda: FoVPerspectiveCameras(T=torch.zeros(1, 2)), "T"),
        (lambda: FoVPerspectiveCameras(R=random_rotations(2), T=torch.zeros(3, 3)), "batch"),
        (
            lambda: FoVPerspectiveCameras(fov=torch.tensor([30.0, 40.0]), znear=torch.ones(3)),
            "batch",
        ),
        (lambda: FoVPerspectiveCameras(fov=float("nan")), "fov"),
        (lambda: FoVPerspectiveCameras(T=torch.tensor([[0.0, float("inf"), 0.0]])), "T"),
        (lambda: FoVPerspectiveCameras(znear=0.0), "znear"),
        (lambda: FoVPerspectiveCameras(znear=-1.0), "znear"),
        (lambda: FoVPerspectiveCameras(znear=5.0, zfar=2.0), "zfar"),
        (lambda: FoVPerspectiveCameras(fov=180.0), "fov"),
        (lambda: FoVPerspectiveCameras(fov=4.0, degrees=False), "fov"),
        (lambda: FoVPerspectiveCameras(aspect_ratio=0.0), "aspect_ratio"),
        (lambda: FoVPerspectiveCameras(fov="wide"), "fov"),
        (lambda: FoVOrthographicCameras(min_x=1.0, max_x=1.0), "max_x"),
        (lambda: FoVOrthographicCameras(scale_xyz=(1.0, 1.0)), "scale_xyz"),
        (lambda: PerspectiveCameras(focal_length=torch.ones(2, 3)), "focal_length"),
        (lambda: PerspectiveCameras(principal_point=((0.0, 0.0, 0.0),)), "principal_point"),
        (lambda: PerspectiveCameras(in_ndc=False), "image_size"),
        (lambda: OrthographicCameras(in_ndc=False, image_size=((0, 10),)), "image_size"),
        (lambda: look_at_view_transform(eye=((0.0, 0.0, 0.0),)), "differ"),
        (lambda: look_at_view_transform(at=((0.0, 0.0),)), "at"),
        (lambda: look_at_view_transform(dist=torch.ones(2), azim=torch.ones(3)), "batch"),
        (lambda: look_at_view_transform(elev=float("inf")), "elev"),
        (lambda: camera_position_from_spherical_angles(torch.ones(2, 2), 0.0, 0.0), "distance"),
    ],
)
def test_bad_inputs_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_call_arguments_raise_value_error():
    cam = FoVPerspectiveCameras()
    with pytest.raises(ValueError, match="image_size"):
        cam.transform_points_screen(torch.rand(3, 3))
    with pytest.raises(ValueError, match="points"):
        cam.transform_points(torch.rand(3, 2))
    with pytest.raises(ValueError, match="xy_depth"):
        cam.unproject_points(torch.rand(3))
    with pytest.raises(ValueError, match="R"):
        cam.get_world_to_view_transform(R=torch.eye(3))
    with pytest.raises(ValueError, match="index"):
        cam["0"]
    with pytest.raises(ValueError, match="boolean"):
        cam[torch.tensor([True, False])]
    with pytest.raises(ValueError, match="image_size"):
        FoVPerspectiveCameras(R=random_rotations(2)).transform_points_screen(
            torch.rand(3, 3), image_size=torch.ones(3, 2)
        )
