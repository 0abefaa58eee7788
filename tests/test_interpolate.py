"""The interpolation kernel is held to its pure-torch twin, and the twin to gradcheck."""

from __future__ import annotations

import pytest
import torch

from diffrend.shading import interpolate_face_attributes
from diffrend.shading.interpolate import interpolate_face_attributes_reference
from diffrend.shading.interpolate_kernels import interpolate_cpu


def _case(dtype, shape=(2, 7, 9, 5), F=40, D=4, empty=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    p2f = torch.randint(0, F, shape, generator=g)
    p2f[torch.rand(shape, generator=g) < empty] = -1
    bary = torch.randn((*shape, 3), generator=g, dtype=dtype)
    attrs = torch.randn((F, 3, D), generator=g, dtype=dtype)
    return p2f, bary, attrs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_matches_reference_values_and_gradients(dtype):
    p2f, bary, attrs = _case(dtype)
    grads = []
    for fn in (interpolate_cpu, interpolate_face_attributes_reference):
        b, a = bary.clone().requires_grad_(), attrs.clone().requires_grad_()
        out = fn(p2f, b, a)
        g = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
        grads.append((out.detach(), *torch.autograd.grad(out, (b, a), g)))
    (o1, gb1, ga1), (o2, gb2, ga2) = grads
    # float32: the kernel sums the three products in the twin's order (equal values); the
    # faces' gradient is accumulated in float64 by the kernel, in float32 by the twin.
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12,
                                                                       "atol": 1e-12}
    torch.testing.assert_close(o1, o2, rtol=0, atol=0)
    torch.testing.assert_close(gb1, gb2, **tol)
    torch.testing.assert_close(ga1, ga2, **tol)
    assert (o1[p2f < 0] == 0).all() and (gb1[p2f < 0] == 0).all()


def test_reference_passes_gradcheck():
    p2f, bary, attrs = _case(torch.float64, shape=(1, 3, 4, 2), F=5, D=2)
    bary.requires_grad_()
    attrs.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda b, a: interpolate_face_attributes_reference(p2f, b, a), (bary, attrs))


def test_kernel_passes_gradcheck():
    p2f, bary, attrs = _case(torch.float64, shape=(1, 3, 4, 2), F=5, D=2)
    bary.requires_grad_()
    attrs.requires_grad_()
    assert torch.autograd.gradcheck(lambda b, a: interpolate_cpu(p2f, b, a), (bary, attrs))


def test_faces_gradient_is_deterministic_across_bands_and_threads():
    # Enough fragments for several bands of the faces' gradient.
    p2f, bary, attrs = _case(torch.float32, shape=(1, 128, 128, 8), F=300, D=3)
    attrs.requires_grad_()
    g = torch.randn((1, 128, 128, 8, 3), generator=torch.Generator().manual_seed(2))
    runs = []
    threads = torch.get_num_threads()
    try:
        for n in (1, threads):
            torch.set_num_threads(n)
            runs.append(torch.autograd.grad(interpolate_cpu(p2f, bary, attrs), attrs, g)[0])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(runs[0], runs[1])


def test_public_function_takes_the_kernel_on_cpu_and_keeps_shapes():
    p2f, bary, attrs = _case(torch.float32)
    out = interpolate_face_attributes(p2f, bary, attrs)
    assert out.shape == (*p2f.shape, 4)
    assert out.grad_fn is None  # nothing required grad
    bary.requires_grad_()
    out = interpolate_face_attributes(p2f, bary, attrs)
    assert type(out.grad_fn).__name__ == "_InterpolateBackward"
    # float16 (no kernel) takes the twin
    out16 = interpolate_face_attributes(p2f, bary.detach().half(), attrs.half())
    torch.testing.assert_close(out16.float(), out.detach(), rtol=1e-2, atol=2e-2)


def test_no_faces_and_out_of_range_index():
    p2f, bary, attrs = _case(torch.float32)
    out = interpolate_face_attributes(torch.full_like(p2f, -1), bary, attrs[:0])
    assert out.shape == (*p2f.shape, 4) and (out == 0).all()
    bad = p2f.clone()
    bad[0, 0, 0, 0] = 40
    with pytest.raises(ValueError, match="face index >= the 40 faces"):
        interpolate_face_attributes(bad, bary, attrs)


@pytest.mark.parametrize("fn", [interpolate_face_attributes,
                                interpolate_face_attributes_reference])
def test_shape_errors_name_the_argument(fn):
    p2f, bary, attrs = _case(torch.float32)
    with pytest.raises(ValueError, match="pix_to_face"):
        fn(p2f[0], bary[0], attrs)
    with pytest.raises(ValueError, match="barycentric_coords"):
        fn(p2f, bary[..., :2], attrs)
    with pytest.raises(ValueError, match="face_attributes"):
        fn(p2f, bary, attrs[:, :2])


def test_empty_fragments_interpolate_to_empty_with_zero_gradient():
    attrs = torch.randn(5, 3, 2, requires_grad=True)
    bary = torch.zeros((1, 0, 4, 2, 3), requires_grad=True)
    for _ in range(5):  # (an uninitialised error flag would raise on some call)
        out = interpolate_face_attributes(torch.zeros((1, 0, 4, 2), dtype=torch.int64), bary,
                                          attrs)
    assert out.shape == (1, 0, 4, 2, 2)
    out.sum().backward()
    assert attrs.grad is not None and (attrs.grad == 0).all()
