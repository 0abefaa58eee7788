"""Cameras beyond the basics: K, per-call overrides, deprecated names, camera utilities,
fisheye cameras, OpenCV conversions, look-at degenerate up vectors."""

from __future__ import annotations

import math

import pytest
import torch

from diffrend.cameras import (
    FishEyeCameras,
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OpenGLOrthographicCameras,
    OpenGLPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    SfMOrthographicCameras,
    SfMPerspectiveCameras,
    camera_to_eye_at_up,
    cameras_from_opencv_projection,
    get_world_to_view_transform,
    join_cameras_as_batch,
    look_at_rotation,
    look_at_view_transform,
    opencv_from_cameras_projection,
    rotate_on_spot,
    try_get_projection_transform,
)
from diffrend.transforms import Transform3d, random_rotations

F64 = torch.float64


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> None:
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


# --------------------------------------------------------------------------- deprecated names


def test_deprecated_names_warn_and_build_current_cameras():
    R, T = look_at_view_transform(3.0, 10.0, 20.0)
    pts = torch.rand(5, 3)
    with pytest.warns(PendingDeprecationWarning):
        old = OpenGLPerspectiveCameras(znear=0.5, zfar=9.0, fov=50.0, R=R, T=T)
    assert type(old) is FoVPerspectiveCameras
    _close(
        old.transform_points(pts),
        FoVPerspectiveCameras(0.5, 9.0, fov=50.0, R=R, T=T).transform_points(pts),
    )
    with pytest.warns(PendingDeprecationWarning):
        ortho = OpenGLOrthographicCameras(top=2.0, bottom=-1.0, left=-3.0, right=0.5, R=R, T=T)
    assert type(ortho) is FoVOrthographicCameras
    new = FoVOrthographicCameras(max_y=2.0, min_y=-1.0, min_x=-3.0, max_x=0.5, R=R, T=T)
    _close(ortho.transform_points(pts), new.transform_points(pts))
    with pytest.warns(PendingDeprecationWarning):
        sfm = SfMPerspectiveCameras(focal_length=2.0, principal_point=((0.1, 0.2),), R=R, T=T)
    assert type(sfm) is PerspectiveCameras and sfm.in_ndc()
    with pytest.warns(PendingDeprecationWarning):
        sfm_o = SfMOrthographicCameras(focal_length=2.0, R=R, T=T)
    assert type(sfm_o) is OrthographicCameras


# --------------------------------------------------------------------------- K and overrides


@pytest.mark.parametrize(
    "cls", [FoVPerspectiveCameras, FoVOrthographicCameras, PerspectiveCameras, OrthographicCameras]
)
def test_user_projection_matrix_k(cls):
    K = torch.randn(3, 4, 4)
    R = random_rotations(3)
    cam = cls(R=R, K=K)
    torch.testing.assert_close(cam.get_projection_transform().get_matrix(), K.transpose(1, 2))
    K2 = torch.randn(3, 4, 4)
    torch.testing.assert_close(cam.get_projection_transform(K=K2).get_matrix(), K2.transpose(1, 2))
    # K survives copies and indexing.
    torch.testing.assert_close(cam[[1]].K, K[1:2])
    torch.testing.assert_close(cam.clone().K, K)
    with pytest.raises(ValueError, match="K"):
        cls(K=torch.randn(2, 3, 3))
    with pytest.raises(ValueError, match="K"):
        cam.get_projection_transform(K=torch.randn(2, 4, 4))


def test_principal_point_reads_k():
    K = torch.zeros(1, 4, 4)
    K[0, 0, 0], K[0, 1, 1], K[0, 0, 2], K[0, 1, 2] = 2.0, 3.0, 0.25, -0.5
    K[0, 2, 3], K[0, 3, 2] = 1.0, 1.0
    cam = PerspectiveCameras(K=K)
    _close(cam.get_principal_point(), torch.tensor([[0.25, -0.5]]))


def test_projection_overrides_match_constructed_cameras():
    pts = torch.rand(1, 6, 3) + torch.tensor([0.0, 0.0, 2.0])
    fov = FoVPerspectiveCameras(znear=5.0, zfar=50.0, fov=30.0)
    ref = FoVPerspectiveCameras(znear=1.0, zfar=10.0, fov=70.0)
    _close(
        fov.get_projection_transform(znear=1.0, zfar=10.0, fov=70.0).get_matrix(),
        ref.get_projection_transform().get_matrix(),
    )
    _close(fov.transform_points(pts, fov=70.0, znear=1.0, zfar=10.0), ref.transform_points(pts))
    # The camera itself is unchanged by intrinsic overrides.
    _close(fov.fov, torch.tensor([30.0]))
    persp = PerspectiveCameras(focal_length=5.0, principal_point=((2.5, 2.5),))
    ref_p = PerspectiveCameras(focal_length=2.0, principal_point=((2.5, 3.5),))
    _close(
        persp.transform_points(pts, focal_length=2.0, principal_point=((2.5, 3.5),)),
        ref_p.transform_points(pts),
    )
    ortho = FoVOrthographicCameras(znear=5.0, zfar=100.0)
    _close(
        ortho.get_projection_transform(znear=1.0, zfar=10.0).get_matrix(),
        FoVOrthographicCameras(znear=1.0, zfar=10.0).get_projection_transform().get_matrix(),
    )
    # Unrelated keywords (e.g. passed through by a renderer) are ignored.
    _close(ref.transform_points(pts, lights=None), ref.transform_points(pts))
    with pytest.raises(ValueError, match="fov"):
        fov.get_projection_transform(fov=200.0)


def test_unproject_uses_overrides():
    cam = FoVPerspectiveCameras(znear=5.0, zfar=50.0, fov=30.0)
    pts = torch.rand(1, 6, 3) + torch.tensor([0.0, 0.0, 2.0])
    proj = cam.transform_points(pts, fov=70.0)
    back = cam.unproject_points(proj, scaled_depth_input=True, fov=70.0)
    _close(back, pts, 1e-4)


def test_try_get_projection_transform():
    assert isinstance(try_get_projection_transform(FoVPerspectiveCameras(), {}), Transform3d)
    m = try_get_projection_transform(FoVPerspectiveCameras(), {"fov": 90.0}).get_matrix()
    _close(m[0, 0, 0], torch.tensor(1.0))
    assert try_get_projection_transform(FishEyeCameras(), {}) is None


# --------------------------------------------------------------------------- indexing


def test_getitem_errors_and_batch_size():
    cam = FoVPerspectiveCameras(R=random_rotations(4))
    assert cam._N == 4 and len(cam[1:3]) == 2
    with pytest.raises(IndexError, match="out of bounds"):
        cam[4]
    with pytest.raises(IndexError, match="out of bounds"):
        cam[torch.tensor([0, 7])]
    with pytest.raises(ValueError, match="Invalid index type"):
        cam[[True, False, True, True]]
    with pytest.raises(ValueError, match="Invalid index type"):
        cam[torch.tensor([1.0])]
    with pytest.raises(ValueError, match="does not match cameras"):
        cam[torch.tensor([True, False])]
    torch.testing.assert_close(cam[-1].R, cam.R[3:])


# --------------------------------------------------------------------------- camera utils


def _cams(cls, n, **kw):
    return cls(R=random_rotations(n), T=torch.randn(n, 3) + torch.tensor([0.0, 0.0, 5.0]), **kw)


def test_join_cameras_as_batch_matches_parts():
    pts = torch.rand(4, 3)
    parts = [
        _cams(PerspectiveCameras, 2, focal_length=torch.tensor([1.5, 2.0])),
        _cams(PerspectiveCameras, 3, focal_length=((1.0, 3.0),)),
    ]
    joined = join_cameras_as_batch(parts)
    assert type(joined) is PerspectiveCameras and len(joined) == 5
    expect = torch.cat([c.transform_points(pts) for c in parts])
    _close(joined.transform_points(pts), expect)
    fov = join_cameras_as_batch(
        [_cams(FoVPerspectiveCameras, 1, zfar=10.0), _cams(FoVPerspectiveCameras, 2, zfar=20.0)]
    )
    _close(fov.zfar, torch.tensor([10.0, 20.0, 20.0]))


def test_join_cameras_as_batch_keeps_gradients():
    f = torch.tensor([1.5], requires_grad=True)
    joined = join_cameras_as_batch([PerspectiveCameras(focal_length=f), PerspectiveCameras()])
    joined.transform_points(torch.tensor([[0.3, 0.2, 2.0]]))[0].sum().backward()
    assert f.grad is not None and float(f.grad.abs().sum()) > 0


def test_join_cameras_as_batch_errors():
    with pytest.raises(ValueError, match="same type"):
        join_cameras_as_batch([PerspectiveCameras(), OrthographicCameras()])
    with pytest.raises(ValueError, match="Attribute _in_ndc is not constant across inputs"):
        join_cameras_as_batch(
            [OrthographicCameras(), OrthographicCameras(in_ndc=False, image_size=((8, 8),))]
        )
    with pytest.raises(ValueError, match="image_size is inconsistently present"):
        join_cameras_as_batch([PerspectiveCameras(), PerspectiveCameras(image_size=((8, 8),))])
    with pytest.raises(ValueError, match="empty"):
        join_cameras_as_batch([])


def test_camera_to_eye_at_up_inverts_look_at():
    eye = torch.rand(6, 3) * 4 - 2
    at = torch.rand(6, 3)
    up = torch.rand(6, 3) + 0.1
    R, T = look_at_view_transform(eye=eye, at=at, up=up)
    eye2, at2, up2 = camera_to_eye_at_up(get_world_to_view_transform(R, T))
    _close(eye2, eye, 1e-4)
    direction = torch.nn.functional.normalize(at - eye, dim=1)
    _close(at2 - eye2, direction, 1e-4)
    R2, T2 = look_at_view_transform(eye=eye2, at=at2, up=up2)
    _close(R2, R, 1e-4)
    _close(T2, T, 1e-4)
    with pytest.raises(TypeError):
        camera_to_eye_at_up(R)


def test_rotate_on_spot_keeps_centre_and_turns_view():
    R, T = look_at_view_transform(eye=torch.rand(5, 3) + 2.0)
    angle = math.radians(10.0)
    c, s = math.cos(angle), math.sin(angle)
    rot_y = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    R2, T2 = rotate_on_spot(R, T, rot_y)
    centre = lambda R_, T_: -(T_[:, None] @ R_.transpose(1, 2))[:, 0]  # noqa: E731
    _close(centre(R2, T2), centre(R, T), 1e-5)
    _close(R2, R @ rot_y.T)
    # The viewing direction turned by the angle about the camera's y axis.
    cos = (R2[:, :, 2] * R[:, :, 2]).sum(1)
    _close(cos, torch.full((5,), c))
    R3, T3 = rotate_on_spot(R[0], T[0], rot_y.expand(5, 3, 3))
    assert R3.shape == (5, 3, 3) and T3.shape == (5, 3)
    _close(R3[4], R2[0])
    with pytest.raises(ValueError, match="rotation"):
        rotate_on_spot(R, T, torch.eye(4))
    with pytest.raises(ValueError, match="batch"):
        rotate_on_spot(R, T, random_rotations(3))


# --------------------------------------------------------------------------- look-at


def test_look_at_nearly_parallel_up_uses_the_residual_direction():
    # Camera almost straight above: up x z is tiny but still points along -Z world.
    eye = torch.tensor([[1e-7, 2.7, 0.0]])
    R = look_at_rotation(eye)
    x_axis = R[0, :, 0]
    direction = torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0]), -eye[0] / eye[0].norm())
    _close(x_axis, direction / direction.norm(), 1e-4)
    _close(R[0] @ R[0].T, torch.eye(3))


def test_look_at_exactly_parallel_up_is_still_a_rotation():
    R = look_at_rotation(((0.0, -3.0, 0.0),), up=((0.0, 1.0, 0.0),))
    _close(R[0] @ R[0].T, torch.eye(3))
    _close(torch.linalg.det(R), torch.ones(1))


# --------------------------------------------------------------------------- fisheye


def _fisheye(n=1, dtype=torch.float32, **kw):
    g = torch.Generator().manual_seed(3)
    params = {
        "focal_length": torch.rand(n, 1, generator=g, dtype=dtype) + 1.0,
        "principal_point": torch.rand(n, 2, generator=g, dtype=dtype) * 0.2,
        "radial_params": torch.randn(n, 6, generator=g, dtype=dtype) * 0.02,
        "tangential_params": torch.randn(n, 2, generator=g, dtype=dtype) * 0.01,
        "thin_prism_params": torch.randn(n, 4, generator=g, dtype=dtype) * 0.01,
    }
    params.update(kw)
    return FishEyeCameras(**params)


def _view_points(p=7, dtype=torch.float32):
    g = torch.Generator().manual_seed(5)
    xy = torch.rand(p, 2, generator=g, dtype=dtype) * 1.6 - 0.8
    z = torch.rand(p, 1, generator=g, dtype=dtype) + 1.0
    return torch.cat((xy * z, z), 1)


def test_fisheye_without_distortion_is_a_pinhole():
    pts = _view_points()
    fish = _fisheye(use_radial=False, use_tangential=False, use_thin_prism=False)
    pin = PerspectiveCameras(focal_length=fish.focal_length, principal_point=fish.principal_point)
    _close(fish.transform_points(pts)[:, :2], pin.transform_points(pts)[:, :2])
    _close(fish.transform_points(pts)[:, 2], torch.ones(len(pts)))


def test_fisheye_zero_coefficients_is_equidistant():
    pts = _view_points()
    cam = FishEyeCameras(focal_length=((2.0,),), principal_point=((0.1, -0.2),))
    ab = pts[:, :2] / pts[:, 2:]
    r = ab.norm(dim=1, keepdim=True)
    expect = 2.0 * torch.atan(r) / r * ab + torch.tensor([0.1, -0.2])
    _close(cam.transform_points(pts)[:, :2], expect)


def test_fisheye_distortion_terms():
    pts = _view_points()
    k = torch.tensor([[0.1, -0.05, 0.0, 0.0, 0.0, 0.0]])
    p = torch.tensor([[0.02, -0.03]])
    s = torch.tensor([[0.01, 0.02, -0.01, 0.03]])
    cam = FishEyeCameras(radial_params=k, tangential_params=p, thin_prism_params=s)
    ab = pts[:, :2] / pts[:, 2:]
    r = ab.norm(dim=1, keepdim=True)
    th = torch.atan(r)
    xr = th * (1 + 0.1 * th**2 - 0.05 * th**4) / r * ab
    rd2 = (xr**2).sum(1, keepdim=True)
    tang = 2 * (xr * p).sum(1, keepdim=True) * xr + rd2 * p
    prism = torch.cat((s[:, :1] * rd2 + s[:, 1:2] * rd2**2, s[:, 2:3] * rd2 + s[:, 3:] * rd2**2), 1)
    _close(cam.transform_points(pts)[:, :2], xr + tang + prism)
    # use_radial=False replaces only the base term (PyTorch3D's model).
    no_radial = FishEyeCameras(
        radial_params=k, tangential_params=p, thin_prism_params=s, use_radial=False
    )
    _close(no_radial.transform_points(pts)[:, :2], ab + tang + prism)


def test_fisheye_unproject_inverts_projection():
    pts = _view_points()
    for switches in [(True, True, True), (True, False, True), (True, True, False)]:
        cam = _fisheye(
            2, use_radial=switches[0], use_tangential=switches[1], use_thin_prism=switches[2]
        )
        uv = cam.transform_points(pts)
        xy_depth = torch.cat((uv[..., :2], pts[:, 2:].expand(2, -1, 1)), -1)
        _close(cam.unproject_points(xy_depth), pts.expand(2, -1, 3), 1e-4)
        on_plane = cam.unproject_points(uv, scaled_depth_input=True)
        _close(on_plane, (pts / pts[:, 2:]).expand(2, -1, 3), 1e-4)


def test_fisheye_world_coordinates():
    R, T = look_at_view_transform(eye=((0.5, 1.0, 3.0),))
    world = torch.rand(5, 3) - 0.5
    view = get_world_to_view_transform(R, T).transform_points(world)
    base = _fisheye()
    cam = _fisheye(R=R, T=T, world_coordinates=True)
    _close(cam.transform_points(world), base.transform_points(view))
    # Without world_coordinates the extrinsics are not applied (PyTorch3D's default).
    _close(_fisheye(R=R, T=T).transform_points(view), base.transform_points(view))
    uv = cam.transform_points(world)
    back = cam.unproject_points(torch.cat((uv[:, :2], view[:, 2:]), 1))
    _close(back, world, 1e-4)


def test_fisheye_shapes():
    pts = _view_points(4)
    one, two = _fisheye(1), _fisheye(2)
    assert one.transform_points(pts).shape == (4, 3)
    assert one.transform_points(pts[None]).shape == (1, 4, 3)
    assert one.transform_points(pts.expand(3, 4, 3)).shape == (3, 4, 3)
    assert two.transform_points(pts).shape == (2, 4, 3)
    assert two.transform_points(pts[None]).shape == (2, 4, 3)
    _close(two.transform_points(pts)[1], two[1].transform_points(pts))
    with pytest.raises(ValueError, match="points"):
        two.transform_points(pts.expand(3, 4, 3))
    with pytest.raises(ValueError, match="points"):
        two.transform_points(torch.rand(3, 3, 1))
    with pytest.raises(ValueError, match="radial_params"):
        FishEyeCameras(radial_params=torch.zeros(1, 0))


def test_fisheye_copies_and_join():
    cam = _fisheye(3, use_thin_prism=False)
    pts = _view_points(4)
    for other in (cam.clone(), cam.to("cpu"), join_cameras_as_batch([cam[[0]], cam[1:]])):
        assert type(other) is FishEyeCameras and not other.use_thin_prism
        _close(other.transform_points(pts), cam.transform_points(pts))
    assert cam.__dict__.keys() == cam[0].__dict__.keys()
    assert not cam.is_perspective() and cam.in_ndc()
    with pytest.raises(NotImplementedError):
        cam.get_projection_transform()


def test_fisheye_screen_and_overrides():
    cam = _fisheye(image_size=((40, 60),))
    pts = _view_points(3)
    ndc = cam.transform_points(pts)
    screen = cam.transform_points_screen(pts)
    _close(screen[:, 0], 30.0 - 20.0 * ndc[:, 0])
    _close(screen[:, 1], 20.0 - 20.0 * ndc[:, 1])
    f2 = torch.tensor([[3.0]])
    _close(
        cam.transform_points(pts, focal_length=f2), _fisheye(focal_length=f2).transform_points(pts)
    )


def test_fisheye_gradcheck():
    pts = _view_points(3, F64).requires_grad_(True)
    params = {
        "focal_length": torch.tensor([[1.3]], dtype=F64, requires_grad=True),
        "radial_params": torch.tensor(
            [[0.05, -0.02, 0.01, 0.0, 0.0, 0.0]], dtype=F64, requires_grad=True
        ),
        "tangential_params": torch.tensor([[0.01, -0.02]], dtype=F64, requires_grad=True),
        "thin_prism_params": torch.tensor(
            [[0.01, 0.0, -0.01, 0.02]], dtype=F64, requires_grad=True
        ),
    }

    def f(p, fl, k, t, s):
        cam = FishEyeCameras(
            focal_length=fl, radial_params=k, tangential_params=t, thin_prism_params=s
        )
        return cam.transform_points(p)

    assert torch.autograd.gradcheck(f, (pts, *params.values()))
    # The optical axis (r = 0) has finite gradients.
    axis = torch.tensor([[0.0, 0.0, 2.0]], dtype=F64, requires_grad=True)
    FishEyeCameras(focal_length=params["focal_length"]).transform_points(axis).sum().backward()
    assert bool(torch.isfinite(axis.grad).all())


# --------------------------------------------------------------------------- OpenCV


def test_opencv_conversion_reproduces_opencv_pixels():
    n = 3
    R_cv = random_rotations(n, dtype=F64)
    tvec = torch.tensor([[0.1, -0.2, 5.0], [0.0, 0.3, 6.0], [-0.4, 0.1, 4.0]], dtype=F64)
    K = torch.zeros(n, 3, 3, dtype=F64)
    K[:, 0, 0] = torch.tensor([500.0, 420.0, 610.0], dtype=F64)
    K[:, 1, 1] = torch.tensor([505.0, 400.0, 600.0], dtype=F64)
    K[:, 0, 2] = torch.tensor([320.0, 300.0, 330.0], dtype=F64)
    K[:, 1, 2] = torch.tensor([240.0, 250.0, 230.0], dtype=F64)
    K[:, 2, 2] = 1.0
    image_size = torch.tensor([[480, 640], [480, 600], [500, 640]])
    pts = torch.rand(n, 10, 3, dtype=F64) - 0.5
    cam_pts = pts @ R_cv.transpose(1, 2) + tvec[:, None]
    pix = cam_pts @ K.transpose(1, 2)
    pix = pix[..., :2] / pix[..., 2:]
    cams = cameras_from_opencv_projection(R_cv, tvec, K, image_size)
    assert cams.in_ndc()
    _close(cams.transform_points_screen(pts)[..., :2], pix, 1e-6)
    R2, t2, K2 = opencv_from_cameras_projection(cams, image_size)
    _close(R2, R_cv, 1e-9)
    _close(t2, tvec, 1e-9)
    _close(K2, K, 1e-9)
    with pytest.raises(ValueError, match="camera_matrix"):
        cameras_from_opencv_projection(R_cv, tvec, torch.eye(3, dtype=F64), image_size)
