"""SE(3) exp/log maps and acos_linear_extrapolation (diffrend.transforms.se3 / .math).

The SE(3) maps are checked against torch.linalg.matrix_exp of the 4x4 twist, an independent
route. Float64 comparisons use 1e-10 (exact maths, rounding only).
"""

from __future__ import annotations

import math

import pytest
import torch

from diffrend.transforms import (
    acos_linear_extrapolation,
    hat,
    random_rotations,
    se3_exp_map,
    se3_log_map,
    so3_exp_map,
    so3_log_map,
    so3_rotation_angle,
)

F64 = torch.float64
close64 = dict(rtol=1e-10, atol=1e-10)


def _twist_exp(log: torch.Tensor) -> torch.Tensor:
    """Row-vector SE(3) matrix from [v | w] via the matrix exponential of the twist."""
    n = log.shape[0]
    twist = torch.zeros(n, 4, 4, dtype=log.dtype)
    twist[:, :3, :3] = hat(log[:, 3:])
    twist[:, :3, 3] = log[:, :3]
    return torch.linalg.matrix_exp(twist).transpose(1, 2)


def _log_batch(n: int, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(n)
    log = torch.randn(n, 6, dtype=F64, generator=g)
    # keep rotation angles below pi so that log(exp(x)) == x
    w = log[:, 3:]
    norm = w.norm(dim=1, keepdim=True)
    log[:, 3:] = w / norm * (norm % 3.0)
    return log * scale


def test_se3_exp_matches_matrix_exponential():
    log = _log_batch(50)
    torch.testing.assert_close(se3_exp_map(log), _twist_exp(log), **close64)


def test_se3_exp_is_rigid_and_matches_so3():
    log = _log_batch(20)
    M = se3_exp_map(log)
    torch.testing.assert_close(M[:, :3, :3], so3_exp_map(log[:, 3:]).transpose(1, 2), **close64)
    last = torch.zeros(20, 4, dtype=F64)
    last[:, 3] = 1.0
    torch.testing.assert_close(M[:, :, 3], last, rtol=0, atol=0)


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e-7, 0.0])
def test_se3_round_trips(scale):
    log = _log_batch(30, scale)
    torch.testing.assert_close(se3_log_map(se3_exp_map(log)), log, **close64)
    M = _twist_exp(log)
    torch.testing.assert_close(se3_exp_map(se3_log_map(M)), M, **close64)


def test_se3_log_pure_rotation_and_pure_translation():
    R = random_rotations(10, dtype=F64)
    M = torch.zeros(10, 4, 4, dtype=F64)
    M[:, :3, :3] = R.transpose(1, 2)
    M[:, 3, 3] = 1.0
    log = se3_log_map(M)
    torch.testing.assert_close(log[:, 3:], so3_log_map(R), **close64)
    torch.testing.assert_close(log[:, :3], torch.zeros(10, 3, dtype=F64), rtol=0, atol=0)
    T = torch.randn(10, 3, dtype=F64)
    M = torch.eye(4, dtype=F64).repeat(10, 1, 1)
    M[:, 3, :3] = T
    torch.testing.assert_close(se3_log_map(M), torch.cat((T, torch.zeros_like(T)), 1))


def test_se3_gradients_are_finite_at_the_identity():
    log = torch.zeros(4, 6, dtype=F64, requires_grad=True)
    se3_exp_map(log).sum().backward()
    assert torch.isfinite(log.grad).all()
    M = torch.eye(4, dtype=F64).repeat(4, 1, 1).requires_grad_(True)
    se3_log_map(M).sum().backward()
    assert torch.isfinite(M.grad).all()


@pytest.mark.parametrize("scale", [1.0, 1e-4])
def test_se3_gradcheck(scale):
    log = _log_batch(3, scale).requires_grad_(True)
    assert torch.autograd.gradcheck(se3_exp_map, (log,))
    M = se3_exp_map(log.detach())
    last_col = M[:, :, 3:]

    # the last column is validated, so only the other entries are perturbed; that leaves
    # SE(3), but the map is smooth around it
    def log_of(m3: torch.Tensor) -> torch.Tensor:
        return se3_log_map(torch.cat((m3, last_col), 2))

    assert torch.autograd.gradcheck(log_of, (M[:, :, :3].clone().requires_grad_(True),))


def test_se3_bad_inputs():
    for shape in ((5, 4), (3, 4, 5), (3, 6, 6)):
        with pytest.raises(ValueError, match="log_transform"):
            se3_exp_map(torch.randn(shape))
    for shape in ((5, 4), (3, 4, 5), (2, 2, 3, 4)):
        with pytest.raises(ValueError, match="transform"):
            se3_log_map(torch.randn(shape))
    with pytest.raises(ValueError, match="rigid"):
        se3_log_map(torch.rand(5, 4, 4) + 0.1)
    M = torch.eye(4).repeat(2, 1, 1)
    M[1, 3, 3] = 2.0  # corner not 1: stricter than PyTorch3D on purpose
    with pytest.raises(ValueError, match="rigid"):
        se3_log_map(M)


# --------------------------------------------------------------------------- acos


@pytest.mark.parametrize("bounds", [(-0.9, 0.9), (-0.99999, 0.5), (0.2, 0.2), (-0.5, 0.9999)])
def test_acos_linear_extrapolation_values_and_slopes(bounds):
    lo, hi = bounds
    x = torch.linspace(-1.5, 1.5, 601, dtype=F64, requires_grad=True)
    y = acos_linear_extrapolation(x, bounds)
    (dy,) = torch.autograd.grad(y.sum(), x)
    x = x.detach()
    mid = (x > lo) & (x < hi)
    torch.testing.assert_close(y[mid], torch.acos(x[mid]), **close64)
    for side, b in ((x >= hi, hi), (x <= lo, lo)):
        slope = -1.0 / math.sqrt(1.0 - b * b)
        torch.testing.assert_close(y[side], math.acos(b) + slope * (x[side] - b), **close64)
        torch.testing.assert_close(dy[side], torch.full_like(dy[side], slope), **close64)
    assert torch.isfinite(dy).all()


def test_acos_linear_extrapolation_is_continuous_at_the_bounds():
    for b in (0.9, 1 - 1e-4):
        x = torch.tensor([b - 1e-12, b, b + 1e-12, -b - 1e-12, -b, -b + 1e-12], dtype=F64)
        y = acos_linear_extrapolation(x, (-b, b))
        torch.testing.assert_close(y[:3], torch.full((3,), math.acos(b), dtype=F64))
        torch.testing.assert_close(y[3:], torch.full((3,), math.acos(-b), dtype=F64))


def test_acos_linear_extrapolation_default_and_bad_bounds():
    x = torch.tensor([2.0, 0.3, -2.0])
    y = acos_linear_extrapolation(x)
    assert torch.isfinite(y).all() and abs(float(y[1]) - math.acos(0.3)) < 1e-6
    with pytest.raises(ValueError, match="lower <= upper"):
        acos_linear_extrapolation(x, (0.5, 0.1))
    with pytest.raises(ValueError, match=r"inside \(-1, 1\)"):
        acos_linear_extrapolation(x, (-1.0, 0.5))
    with pytest.raises(ValueError, match=r"inside \(-1, 1\)"):
        acos_linear_extrapolation(x, (-0.5, 1.0))


def test_so3_rotation_angle_uses_the_extrapolation():
    R = torch.eye(3, dtype=F64)[None].repeat(2, 1, 1).requires_grad_(True)
    angle = so3_rotation_angle(R, cos_bound=1e-4)
    angle.sum().backward()
    assert torch.isfinite(R.grad).all()
    expected = acos_linear_extrapolation(torch.ones(2, dtype=F64), (-1 + 1e-4, 1 - 1e-4))
    torch.testing.assert_close(angle.detach(), expected, **close64)
