"""diffrend.splat.projection: EWA projection of 3D Gaussians with gsplat's conventions."""

from __future__ import annotations

import math

import pytest
import torch

from diffrend.splat.projection import covariances_3d, project_gaussians, quat_to_rotmat

W, H = 40, 30
FX, FY, CX, CY = 50.0, 45.0, 20.0, 15.0


def _cams(c: int = 1, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """C cameras: the first at the origin looking down +z, the others rotated about y."""
    mats = []
    for i in range(c):
        a = 0.2 * i
        m = torch.eye(4, dtype=dtype)
        m[0, 0], m[0, 2], m[2, 0], m[2, 2] = math.cos(a), math.sin(a), -math.sin(a), math.cos(a)
        m[:3, 3] = torch.tensor([0.1 * i, -0.05 * i, 0.2 * i], dtype=dtype)
        mats.append(m)
    k = torch.tensor([[FX, 0, CX], [0, FY, CY], [0, 0, 1]], dtype=dtype)
    return torch.stack(mats), k.expand(c, 3, 3).clone()


def _random_gaussians(n: int, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=dtype) * 0.3
    means[:, 2] += 3.0
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.rand(n, 3, generator=g, dtype=dtype) * 0.2 + 0.02
    return means, quats, scales


def test_rotation_matrices_are_orthonormal_and_ignore_quaternion_length():
    q = torch.randn(50, 4, dtype=torch.float64)
    r = quat_to_rotmat(q)
    eye = torch.eye(3, dtype=torch.float64).expand(50, 3, 3)
    assert torch.allclose(r @ r.transpose(-1, -2), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(50, dtype=torch.float64))
    assert torch.allclose(quat_to_rotmat(3.7 * q), r, atol=1e-12)
    # wxyz: a quarter turn about z maps x to y.
    qz = torch.tensor([[math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)]], dtype=torch.float64)
    assert torch.allclose(quat_to_rotmat(qz)[0] @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                          torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-12)  # fmt: skip


def test_covariance_is_r_s_s_r():
    q = torch.randn(5, 4, dtype=torch.float64)
    s = torch.rand(5, 3, dtype=torch.float64)
    r = quat_to_rotmat(q)
    expect = r @ torch.diag_embed(s**2) @ r.transpose(-1, -2)
    assert torch.allclose(covariances_3d(q, s), expect, atol=1e-12)


def test_axis_aligned_gaussian_on_the_axis():
    means = torch.tensor([[0.0, 0.0, 4.0]], dtype=torch.float64)
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64)
    scales = torch.tensor([[0.2, 0.1, 0.3]], dtype=torch.float64)
    vm, ks = _cams()
    radii, m2, depths, conics, comp = project_gaussians(
        means, quats, scales, vm, ks, W, H, calc_compensations=True
    )
    assert torch.allclose(m2[0, 0], torch.tensor([CX, CY], dtype=torch.float64))
    assert depths[0, 0].item() == pytest.approx(4.0)
    sx2 = (FX * 0.2 / 4) ** 2
    sy2 = (FY * 0.1 / 4) ** 2
    a, d = sx2 + 0.3, sy2 + 0.3
    assert torch.allclose(conics[0, 0], torch.tensor([1 / a, 0, 1 / d], dtype=torch.float64))
    assert radii.dtype == torch.int32 and radii.shape == (1, 1, 2)
    assert radii[0, 0].tolist() == [math.ceil(3.33 * math.sqrt(a)), math.ceil(3.33 * math.sqrt(d))]
    assert comp[0, 0].item() == pytest.approx(math.sqrt(sx2 * sy2 / (a * d)))


def test_ewa_matches_the_autograd_jacobian_of_the_projection():
    """cov2d = J W Sigma W^T J^T with J the Jacobian of the pinhole map at the mean."""
    means, quats, scales = _random_gaussians(6, seed=1)
    vm, ks = _cams(2)
    _, m2, _, conics, _ = project_gaussians(means, quats, scales, vm, ks, W, H, eps2d=0.0)
    cov3 = covariances_3d(quats, scales)
    for c in range(2):
        k = ks[c]

        def pix(p, c=c, k=k):
            q = vm[c, :3, :3] @ p + vm[c, :3, 3]
            return torch.stack((k[0, 0] * q[0] / q[2] + k[0, 2], k[1, 1] * q[1] / q[2] + k[1, 2]))

        for i in range(6):
            jac = torch.autograd.functional.jacobian(pix, means[i])  # (2, 3) in world space
            cov2 = jac @ cov3[i] @ jac.T
            a, b, d = conics[c, i]
            inv = torch.linalg.inv(cov2)
            assert torch.allclose(torch.stack((inv[0, 0], inv[0, 1], inv[1, 1])),
                                  torch.stack((a, b, d)), rtol=1e-9)  # fmt: skip
            assert torch.allclose(m2[c, i], pix(means[i]))


def test_orthographic_projection():
    means, quats, scales = _random_gaussians(4, seed=2)
    vm, ks = _cams(1)
    _, m2, _, conics, _ = project_gaussians(
        means, quats, scales, vm, ks, W, H, eps2d=0.0, camera_model="ortho"
    )
    assert torch.allclose(m2[0], means[:, :2] * torch.tensor([FX, FY], dtype=torch.float64)
                          + torch.tensor([CX, CY], dtype=torch.float64))  # fmt: skip
    cov2 = covariances_3d(quats, scales)[:, :2, :2] * torch.tensor(
        [[FX * FX, FX * FY], [FX * FY, FY * FY]], dtype=torch.float64
    )
    inv = torch.linalg.inv(cov2)
    assert torch.allclose(conics[0], torch.stack((inv[:, 0, 0], inv[:, 0, 1], inv[:, 1, 1]), -1))


def test_jacobian_clamped_beyond_the_field_of_view():
    """A mean far to the side: J is evaluated at 1.3 x the half field of view (gsplat)."""
    x, z, s = 40.0, 2.0, 0.1
    means = torch.tensor([[x, 0.0, z]], dtype=torch.float64)
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64)
    scales = torch.full((1, 3), s, dtype=torch.float64)
    vm, ks = _cams()
    radii, m2, _, conics, _ = project_gaussians(means, quats, scales, vm, ks, W, H, eps2d=0.0)
    u = (W - CX) / FX + 0.3 * (0.5 * W / FX)  # the clamped x/z
    jac = torch.tensor([[FX / z, 0, -FX * u / z], [0, FY / z, 0]], dtype=torch.float64)
    cov2 = jac @ (s * s * torch.eye(3, dtype=torch.float64)) @ jac.T
    inv = torch.linalg.inv(cov2)
    assert torch.allclose(conics[0, 0], torch.stack((inv[0, 0], inv[0, 1], inv[1, 1])))
    assert m2[0, 0, 0].item() == pytest.approx(FX * x / z + CX)  # the mean itself is not clamped
    assert radii[0, 0].tolist() == [0, 0]  # and it is off the image


@pytest.mark.parametrize("camera_model", ["pinhole", "ortho"])
def test_culling_leaves_finite_outputs(camera_model):
    means = torch.tensor(
        [
            [0.0, 0.0, 3.0],  # visible
            [0.0, 0.0, -2.0],  # behind the camera
            [0.0, 0.0, 0.0],  # at the camera centre
            [0.0, 0.0, 50.0],  # beyond the far plane
            [0.0, 0.0, 0.005],  # nearer than the near plane
            [500.0, 0.0, 3.0],  # far off to the side
            [0.0, -30.0, 3.0],  # far above
        ],
        dtype=torch.float64,
    )
    n = means.shape[0]
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64).expand(n, 4)
    scales = torch.full((n, 3), 0.1, dtype=torch.float64)
    vm, ks = _cams()
    radii, m2, depths, conics, comp = project_gaussians(
        means, quats, scales, vm, ks, W, H, far_plane=20.0, calc_compensations=True,
        camera_model=camera_model,
    )  # fmt: skip
    assert (radii[0, 0] > 0).all()
    assert (radii[0, 1:] == 0).all()
    for t in (m2, depths, conics, comp):
        assert torch.isfinite(t).all()


def test_radius_clip():
    means = torch.tensor([[0.0, 0.0, 3.0], [0.1, 0.0, 3.0]], dtype=torch.float64)
    quats = torch.tensor([[1.0, 0, 0, 0]] * 2, dtype=torch.float64)
    scales = torch.tensor([[0.3] * 3, [0.001] * 3], dtype=torch.float64)
    vm, ks = _cams()
    radii = project_gaussians(means, quats, scales, vm, ks, W, H, radius_clip=3.0)[0]
    assert (radii[0, 0] > 3).all() and (radii[0, 1] == 0).all()
    radii = project_gaussians(means, quats, scales, vm, ks, W, H)[0]
    assert (radii[0, 1] > 0).all()  # the 0.3 px dilation keeps a point about 2 px wide


def test_degenerate_2d_covariance_is_culled_without_dilation():
    means = torch.tensor([[0.0, 0.0, 3.0], [0.1, 0.0, 3.0]], dtype=torch.float64)
    quats = torch.tensor([[1.0, 0, 0, 0]] * 2, dtype=torch.float64)
    scales = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.1, 0.1]], dtype=torch.float64)
    vm, ks = _cams()
    radii, m2, _, conics, comp = project_gaussians(
        means, quats, scales, vm, ks, W, H, eps2d=0.0, calc_compensations=True
    )
    assert radii[0, 0].tolist() == [0, 0] and (radii[0, 1] > 0).all()  # det = 0: culled
    assert torch.isfinite(conics).all() and torch.isfinite(comp).all()
    assert comp[0, 1].item() == pytest.approx(1.0)  # no dilation, nothing to compensate


def test_huge_gaussian_radii_stay_int32():
    means = torch.tensor([[0.0, 0.0, 3.0]])
    quats = torch.tensor([[1.0, 0, 0, 0]])
    scales = torch.tensor([[1e12, 1e12, 1e12]])
    vm, ks = _cams(dtype=torch.float32)
    radii = project_gaussians(means, quats, scales, vm, ks, W, H)[0]
    assert radii.dtype == torch.int32 and (radii > 0).all()


def test_no_gaussians():
    vm, ks = _cams(2)
    e = torch.zeros(0, 3, dtype=torch.float64)
    radii, m2, depths, conics, comp = project_gaussians(
        e, torch.zeros(0, 4, dtype=torch.float64), e, vm, ks, W, H, calc_compensations=True
    )
    assert radii.shape == (2, 0, 2) and m2.shape == (2, 0, 2) and conics.shape == (2, 0, 3)
    assert depths.shape == (2, 0) and comp.shape == (2, 0)


def test_errors_name_the_argument():
    means, quats, scales = _random_gaussians(3)
    vm, ks = _cams()
    bad = quats.clone()
    bad[1] = 0
    with pytest.raises(ValueError, match="quats"):
        project_gaussians(means, bad, scales, vm, ks, W, H)
    with pytest.raises(ValueError, match="means"):
        project_gaussians(means[:, :2], quats, scales, vm, ks, W, H)
    with pytest.raises(ValueError, match="scales"):
        project_gaussians(means, quats, scales[:2], vm, ks, W, H)
    with pytest.raises(ValueError, match="viewmats"):
        project_gaussians(means, quats, scales, vm[:, :3], ks, W, H)
    with pytest.raises(ValueError, match="Ks"):
        project_gaussians(means, quats, scales, vm, ks[:, :2], W, H)
    with pytest.raises(ValueError, match="camera_model"):
        project_gaussians(means, quats, scales, vm, ks, W, H, camera_model="fisheye")


@pytest.mark.parametrize("camera_model", ["pinhole", "ortho"])
def test_gradcheck(camera_model):
    means, quats, scales = _random_gaussians(3, seed=3)
    means[0, 0] = 4.0  # outside the field of view: the clamped branch of the Jacobian
    vm, ks = _cams(2)
    inputs = tuple(t.clone().requires_grad_(True) for t in (means, quats, scales, vm))

    def f(means, quats, scales, vm):
        _, m2, depths, conics, comp = project_gaussians(
            means, quats, scales, vm, ks, W, H, calc_compensations=True,
            camera_model=camera_model,
        )  # fmt: skip
        return m2, depths, conics, comp

    assert torch.autograd.gradcheck(f, inputs)
