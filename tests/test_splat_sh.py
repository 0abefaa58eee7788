"""diffrend.splat.sh: real spherical harmonics of degrees 0-3 (gsplat's basis and constants)."""

from __future__ import annotations

import math

import pytest
import torch

from diffrend.splat.sh import SH_C0, sh_basis, spherical_harmonics


def _fibonacci_sphere(n: int) -> torch.Tensor:
    """(n, 3) near-uniform unit vectors (equal-area spiral)."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1 - 2 * i / n
    phi = math.pi * (3 - math.sqrt(5)) * i
    r = torch.sqrt(1 - z * z)
    return torch.stack((r * torch.cos(phi), r * torch.sin(phi), z), dim=-1)


def test_degree_zero_is_c0_times_the_coefficient():
    coeffs = torch.randn(7, 16, 3)
    dirs = torch.randn(7, 3)
    out = spherical_harmonics(0, dirs, coeffs)
    assert SH_C0 == pytest.approx(0.5 / math.sqrt(math.pi), rel=1e-15)
    assert torch.allclose(out, SH_C0 * coeffs[:, 0])


def test_basis_is_orthonormal_over_the_sphere():
    dirs = _fibonacci_sphere(20000)
    y = sh_basis(3, dirs)  # (n, 16)
    gram = 4 * math.pi * (y.T @ y) / dirs.shape[0]
    assert torch.allclose(gram, torch.eye(16, dtype=torch.float64), atol=2e-3)


def test_known_values_of_degree_one():
    """The l = 1 functions are -C1 y, C1 z, -C1 x (3DGS's and gsplat's signs)."""
    c1 = math.sqrt(3 / (4 * math.pi))
    dirs = torch.tensor([[0.0, 0, 1], [1.0, 0, 0], [0.0, 1, 0]], dtype=torch.float64)
    y = sh_basis(1, dirs)
    expect = torch.tensor([[0, 0, c1, 0], [0, 0, 0, -c1], [0, -c1, 0, 0]], dtype=torch.float64)
    assert torch.allclose(y[:, 1:], expect[:, 1:])


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_lower_degrees_use_the_leading_coefficients(degree):
    k = (degree + 1) ** 2
    dirs = torch.randn(5, 3, dtype=torch.float64)
    coeffs = torch.randn(5, 16, 3, dtype=torch.float64)
    full = spherical_harmonics(degree, dirs, coeffs)
    trimmed = spherical_harmonics(degree, dirs, coeffs[:, :k])
    assert torch.allclose(full, trimmed)
    changed = coeffs.clone()
    changed[:, k:] += 1.0  # coefficients beyond the degree are ignored
    assert torch.allclose(spherical_harmonics(degree, dirs, changed), full)
    if degree:
        changed = coeffs.clone()
        changed[:, k - 1] += 1.0  # the last one used matters
        assert not torch.allclose(spherical_harmonics(degree, dirs, changed), full)


def test_directions_are_normalised_and_batches_broadcast():
    dirs = torch.randn(2, 5, 3, dtype=torch.float64)
    coeffs = torch.randn(5, 16, 3, dtype=torch.float64)
    out = spherical_harmonics(3, dirs, coeffs)
    assert out.shape == (2, 5, 3)
    assert torch.allclose(spherical_harmonics(3, 4.5 * dirs, coeffs), out)
    assert torch.allclose(out[1], spherical_harmonics(3, dirs[1], coeffs))
    # A zero direction is finite: only the constant term survives.
    zero = spherical_harmonics(3, torch.zeros(5, 3, dtype=torch.float64), coeffs)
    assert torch.allclose(zero, SH_C0 * coeffs[:, 0])


def test_masks_zero_the_masked_colours():
    dirs = torch.randn(4, 3)
    coeffs = torch.randn(4, 9, 3, requires_grad=True)
    masks = torch.tensor([True, False, True, False])
    out = spherical_harmonics(2, dirs, coeffs, masks=masks)
    assert (out[~masks] == 0).all() and (out[masks] != 0).all()
    out.sum().backward()
    assert (coeffs.grad[~masks] == 0).all()


@pytest.mark.parametrize("degree", [1, 3])
def test_gradcheck(degree):
    dirs = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    coeffs = torch.randn(4, 16, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda d, c: spherical_harmonics(degree, d, c), (dirs, coeffs))


def test_errors_name_the_argument():
    dirs = torch.randn(4, 3)
    with pytest.raises(ValueError, match="degrees_to_use"):
        spherical_harmonics(4, dirs, torch.randn(4, 25, 3))
    with pytest.raises(ValueError, match="degrees_to_use"):
        spherical_harmonics(1.0, dirs, torch.randn(4, 4, 3))
    with pytest.raises(ValueError, match="coeffs"):
        spherical_harmonics(2, dirs, torch.randn(4, 4, 3))
    with pytest.raises(ValueError, match="coeffs"):
        spherical_harmonics(0, dirs, torch.randn(4, 1, 2))
    with pytest.raises(ValueError, match="dirs"):
        spherical_harmonics(0, dirs[:, :2], torch.randn(4, 1, 3))
