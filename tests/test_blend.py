"""Blending: hand-computed pixels, the Numba kernels against the torch references, gradients.

Contract (DESIGN.md, style point 6): forward outputs with ``assert_close``; gradients as
vector-Jacobian products under one shared random cotangent; ``gradcheck`` in float64.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffrend.raster import Fragments
from diffrend.render.blend import (
    BlendParams,
    hard_rgb_blend,
    sigmoid_alpha_blend,
    sigmoid_alpha_blend_reference,
    softmax_rgb_blend,
    softmax_rgb_blend_reference,
)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def pixel(p2f, dists, zbuf, colors, dtype=torch.float64):
    """A 1x1 image with K = len(p2f) slots."""
    K = len(p2f)
    fr = Fragments(
        pix_to_face=torch.tensor(p2f, dtype=torch.int64).reshape(1, 1, 1, K),
        zbuf=torch.tensor(zbuf, dtype=dtype).reshape(1, 1, 1, K),
        bary_coords=torch.zeros(1, 1, 1, K, 3, dtype=dtype),
        dists=torch.tensor(dists, dtype=dtype).reshape(1, 1, 1, K),
    )
    return torch.tensor(colors, dtype=dtype).reshape(1, 1, 1, K, 3), fr


def scene(
    N=2, H=5, W=6, K=7, dtype=torch.float64, sigma=1e-4, zspread=0.05, valid=0.6, seed=0,
    grad=True,
):
    """Random blend inputs: random (not prefix) masks, dists of order sigma, depths within
    ``zspread`` of 2, a few slots beyond zfar, and junk values in empty slots."""
    g = torch.Generator().manual_seed(seed)
    p2f = torch.randint(0, 1000, (N, H, W, K), generator=g)
    p2f[torch.rand(N, H, W, K, generator=g) >= valid] = -1
    dists = torch.randn(N, H, W, K, generator=g, dtype=dtype) * 3 * sigma
    zbuf = 2.0 + torch.rand(N, H, W, K, generator=g, dtype=dtype) * zspread
    zbuf[0, 0, 0] = 150.0  # all slots of one pixel beyond zfar: z_inv_max is clamped
    zbuf[0, -1, -1, :2] = 2.0  # a tie for z_inv_max
    dists[p2f < 0] = -1.0  # what the rasterizer writes in empty slots
    zbuf[p2f < 0] = -1.0
    colors = torch.rand(N, H, W, K, 3, generator=g, dtype=dtype)
    for t in (colors, dists, zbuf):
        t.requires_grad_(grad)
    bary = torch.zeros(N, H, W, K, 3, dtype=dtype)
    return colors, Fragments(p2f, zbuf, bary, dists)


def vjp(out, inputs, seed=1):
    """Gradients of <out, c> for one shared random cotangent c."""
    g = torch.Generator().manual_seed(seed)
    cot = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)
    grads = torch.autograd.grad(out, inputs, cot, allow_unused=True)
    return [torch.zeros_like(x) if gr is None else gr for x, gr in zip(inputs, grads, strict=True)]


def graph_has(out: torch.Tensor, name: str) -> bool:
    """Whether a node whose type name contains ``name`` is in out's autograd graph."""
    stack, seen = [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if name in type(node).__name__:
            return True
        stack.extend(f for f, _ in node.next_functions)
    return False


def saved_bytes(fn) -> tuple[int, set[int]]:
    """Bytes and storages of every tensor autograd saves while ``fn()`` runs."""
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values()), set(seen)


# ---------------------------------------------------------------- hand-computed pixels


def test_hard_rgb_blend_one_pixel():
    colors, fr = pixel([3, 5], [-1.0, -1.0], [2.0, 3.0], [[0.1, 0.2, 0.3], [0.7, 0.8, 0.9]])
    out = hard_rgb_blend(colors, fr, BlendParams(background_color=(0.0, 0.5, 1.0)))
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0.1, 0.2, 0.3, 1.0], dtype=out.dtype))
    # k = 0 empty: background and alpha 0, whatever the later slots hold (PyTorch3D).
    colors, fr = pixel([-1, 5], [-1.0, -1.0], [-1.0, 3.0], [[0.1, 0.2, 0.3], [0.7, 0.8, 0.9]])
    out = hard_rgb_blend(colors, fr, BlendParams(background_color=(0.0, 0.5, 1.0)))
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0.0, 0.5, 1.0, 0.0], dtype=out.dtype))


@pytest.mark.parametrize("fn", [sigmoid_alpha_blend, sigmoid_alpha_blend_reference])
def test_sigmoid_alpha_blend_one_pixel(fn):
    # slot 1 is empty: its distance must not count
    colors, fr = pixel(
        [0, -1, 4], [-1e-4, -5e-4, 2e-4], [2.0, -1.0, 3.0],
        [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]],
    )
    out = fn(colors, fr, BlendParams(sigma=1e-4))
    alpha = 1.0 - (1.0 - sig(1.0)) * (1.0 - sig(-2.0))  # = 0.76311...
    expected = torch.tensor([0.1, 0.2, 0.3, alpha], dtype=torch.float64)
    torch.testing.assert_close(out[0, 0, 0], expected, rtol=1e-12, atol=1e-12)
    assert abs(alpha - 0.7631171818) < 1e-9


def _softmax_by_hand(gamma):
    # sigma = 1, znear = 1, zfar = 11: z_inv = (11 - z) / 10
    p0, p2 = sig(1.0), sig(-0.5)  # dists -1 and 0.5
    z0, z2 = 0.9, 0.8  # zbuf 2 and 3
    zmax = max(z0, z2, 0.0, 1e-10)  # the empty slot counts as 0 in the max
    w0 = p0 * math.exp((z0 - zmax) / gamma)
    w2 = p2 * math.exp((z2 - zmax) / gamma)
    delta = max(math.exp((1e-10 - zmax) / gamma), 1e-10)
    s = w0 + w2 + delta
    # colours: red for slot 0, green for slot 2, blue background
    return [w0 / s, w2 / s, delta / s, 1.0 - (1.0 - p0) * (1.0 - p2)]


@pytest.mark.parametrize("fn", [softmax_rgb_blend, softmax_rgb_blend_reference])
@pytest.mark.parametrize("gamma", [0.1, 1e-4])  # background weight unclamped / clamped
def test_softmax_rgb_blend_one_pixel(fn, gamma):
    colors, fr = pixel(
        [0, -1, 4], [-1.0, -3.0, 0.5], [2.0, -1.0, 3.0],
        [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.0, 1.0, 0.0]],
    )
    bp = BlendParams(sigma=1.0, gamma=gamma, background_color=(0.0, 0.0, 1.0))
    out = fn(colors, fr, bp, znear=1.0, zfar=11.0)
    expected = torch.tensor(_softmax_by_hand(gamma), dtype=torch.float64)
    torch.testing.assert_close(out[0, 0, 0], expected, rtol=1e-12, atol=1e-14)
    if gamma == 0.1:  # a few literal values, computed once by hand
        torch.testing.assert_close(
            out[0, 0, 0],
            torch.tensor([0.8402282, 0.1596299, 0.0001418, 0.8325949], dtype=torch.float64),
            rtol=0, atol=1e-7,
        )


@pytest.mark.parametrize("fn", [softmax_rgb_blend, softmax_rgb_blend_reference])
def test_softmax_empty_pixel_is_background(fn):
    colors, fr = pixel([-1, -1], [-1.0, -1.0], [-1.0, -1.0], [[0.3, 0.3, 0.3]] * 2)
    out = fn(colors, fr, BlendParams(background_color=(0.2, 0.4, 0.6)))
    torch.testing.assert_close(
        out[0, 0, 0], torch.tensor([0.2, 0.4, 0.6, 0.0], dtype=torch.float64)
    )


# ---------------------------------------------------------------- kernel == reference

PARAMS = [  # (sigma, gamma, zspread)
    (1e-4, 1e-4, 0.05),  # PyTorch3D's defaults: the nearest face dominates, delta clamped
    (1e-4, 1e-2, 0.05),  # softer depth weighting
    (1e-2, 10.0, 3.0),  # large gamma: delta unclamped, so z_inv_max carries a gradient
    (1e-5, 1e-5, 0.5),  # tiny sigma and gamma
]


def _compare(dtype, sigma, gamma, zspread, bg_tensor, clip_tensor, ref_dtype, tol):
    colors, fr = scene(dtype=dtype, sigma=sigma, zspread=zspread)
    bg = torch.tensor([0.2, 0.3, 0.4], dtype=dtype, requires_grad=True) if bg_tensor else (
        0.2, 0.3, 0.4)
    bp = BlendParams(sigma=sigma, gamma=gamma, background_color=bg)
    zn, zf = (torch.tensor([1.0, 0.5], dtype=dtype), torch.tensor([100.0, 50.0], dtype=dtype)) \
        if clip_tensor else (1.0, 100.0)
    inputs = [colors, fr.dists, fr.zbuf] + ([bg] if bg_tensor else [])

    out_k = softmax_rgb_blend(colors, fr, bp, zn, zf)
    assert graph_has(out_k, "SoftmaxBlend")
    assert out_k.dtype == dtype
    grads_k = vjp(out_k, inputs)

    # The reference, run in ref_dtype on the same (rounded) inputs.
    r_inputs = [x.detach().to(ref_dtype).requires_grad_() for x in inputs]
    r_fr = Fragments(fr.pix_to_face, r_inputs[2], fr.bary_coords, r_inputs[1])
    r_bp = BlendParams(sigma, gamma, r_inputs[3] if bg_tensor else bg)
    r_zn, r_zf = (zn.to(ref_dtype), zf.to(ref_dtype)) if clip_tensor else (zn, zf)
    out_r = softmax_rgb_blend_reference(r_inputs[0], r_fr, r_bp, r_zn, r_zf)
    grads_r = vjp(out_r, r_inputs)

    rtol, atol = tol
    torch.testing.assert_close(out_k.to(ref_dtype), out_r, rtol=rtol, atol=atol)
    for name, a, b in zip(("colors", "dists", "zbuf", "background"), grads_k, grads_r,
                          strict=False):
        scale = b.abs().max().clamp(min=1.0)  # dists/zbuf gradients scale as 1/sigma, 1/gamma
        torch.testing.assert_close(
            a.to(ref_dtype) / scale, b / scale, rtol=rtol, atol=atol, msg=lambda s, n=name: n + s
        )


@pytest.mark.parametrize("sigma,gamma,zspread", PARAMS)
@pytest.mark.parametrize("bg_tensor,clip_tensor", [(False, False), (True, True)])
def test_softmax_kernel_matches_reference_float64(sigma, gamma, zspread, bg_tensor, clip_tensor):
    # The kernel multiplies by 1/gamma where the reference divides: ~1 ulp, amplified by
    # 1/gamma in exp((z_inv - z_max)/gamma), so ~1e-16 / 1e-5 relative at worst.
    _compare(torch.float64, sigma, gamma, zspread, bg_tensor, clip_tensor, torch.float64,
             (1e-9, 1e-10))


@pytest.mark.parametrize("sigma,gamma,zspread", PARAMS)
def test_softmax_kernel_float32_matches_float64_reference(sigma, gamma, zspread):
    # The kernel computes in float64 and rounds once: close to the float64 oracle on the same
    # float32 inputs (a few float32 ulps of the result).
    _compare(torch.float32, sigma, gamma, zspread, True, False, torch.float64, (2e-6, 2e-6))


@pytest.mark.parametrize("sigma,gamma,zspread", PARAMS)
def test_softmax_kernel_float32_matches_float32_reference(sigma, gamma, zspread):
    # The float32 reference itself rounds z_inv to ~6e-8 before dividing by gamma, so its
    # depth weights carry ~6e-8/gamma relative error (6e-3 at gamma = 1e-5).
    tol = min(1e-2, 3e-3 * max(1e-4 / gamma, 1.0))
    _compare(torch.float32, sigma, gamma, zspread, True, False, torch.float32, (tol, tol))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("sigma", [1e-4, 1e-2, 1e-5])
def test_sigmoid_kernel_matches_reference(dtype, tol, sigma):
    colors, fr = scene(dtype=dtype, sigma=sigma)
    bp = BlendParams(sigma=sigma)
    out_k = sigmoid_alpha_blend(colors, fr, bp)
    assert graph_has(out_k, "SigmoidAlpha")
    out_r = sigmoid_alpha_blend_reference(colors, fr, bp)
    torch.testing.assert_close(out_k, out_r, rtol=tol, atol=tol)
    gk = vjp(out_k, [colors, fr.dists])
    gr = vjp(out_r, [colors, fr.dists])
    torch.testing.assert_close(gk[0], gr[0])
    torch.testing.assert_close(gk[1] * sigma, gr[1] * sigma, rtol=tol, atol=tol)


@settings(max_examples=25, deadline=None)
@given(
    N=st.integers(1, 2), H=st.integers(1, 4), W=st.integers(1, 5), K=st.integers(1, 9),
    valid=st.sampled_from([0.0, 0.3, 1.0]), seed=st.integers(0, 1000),
    gamma=st.sampled_from([1e-4, 1e-2, 1.0]),
)
def test_kernels_match_reference_random_shapes(N, H, W, K, valid, seed, gamma):
    colors, fr = scene(N, H, W, K, sigma=1e-3, zspread=1.0, valid=valid, seed=seed)
    bp = BlendParams(sigma=1e-3, gamma=gamma)
    inputs = [colors, fr.dists, fr.zbuf]
    for fk, fr_ in ((softmax_rgb_blend, softmax_rgb_blend_reference),
                    (sigmoid_alpha_blend, sigmoid_alpha_blend_reference)):
        a, b = fk(colors, fr, bp), fr_(colors, fr, bp)
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
        for ga, gb in zip(vjp(a, inputs), vjp(b, inputs), strict=True):
            torch.testing.assert_close(ga * gamma, gb * gamma, rtol=1e-9, atol=1e-9)


def test_gradcheck_kernels_float64():
    g = torch.Generator().manual_seed(3)
    colors, fr = scene(1, 2, 3, 4, sigma=0.3, zspread=1.0, valid=0.7, seed=5)
    bg = torch.rand(3, generator=g, dtype=torch.float64, requires_grad=True)
    p2f, bary = fr.pix_to_face, fr.bary_coords

    def soft(c, d, z, b, gamma):
        bp = BlendParams(sigma=0.3, gamma=gamma, background_color=b)
        return softmax_rgb_blend(c, Fragments(p2f, z, bary, d), bp, 1.0, 10.0)

    for gamma in (0.02, 5.0):  # background weight clamped / unclamped
        assert torch.autograd.gradcheck(
            lambda c, d, z, b, gamma=gamma: soft(c, d, z, b, gamma),
            (colors, fr.dists, fr.zbuf, bg),
        )

    def silhouette(c, d):
        return sigmoid_alpha_blend(c, Fragments(p2f, fr.zbuf, bary, d), BlendParams(sigma=0.3))

    assert torch.autograd.gradcheck(silhouette, (colors, fr.dists))


def test_gradcheck_reference_float64():
    colors, fr = scene(1, 2, 2, 3, sigma=0.3, zspread=1.0, valid=0.7, seed=7)
    zn = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    zf = torch.tensor([20.0], dtype=torch.float64, requires_grad=True)
    p2f, bary = fr.pix_to_face, fr.bary_coords

    def soft(c, d, z, zn, zf):
        bp = BlendParams(sigma=0.3, gamma=0.05)
        return softmax_rgb_blend_reference(c, Fragments(p2f, z, bary, d), bp, zn, zf)

    assert torch.autograd.gradcheck(soft, (colors, fr.dists, fr.zbuf, zn, zf))


# ---------------------------------------------------------------- finiteness and dispatch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", ["all_empty", "tiny_sigma_gamma", "huge_dists"])
@pytest.mark.parametrize(
    "fn", [softmax_rgb_blend, softmax_rgb_blend_reference, sigmoid_alpha_blend,
           sigmoid_alpha_blend_reference],
)
def test_gradients_are_finite(dtype, case, fn):
    sigma = gamma = 1e-5 if case == "tiny_sigma_gamma" else 1e-4
    colors, fr = scene(dtype=dtype, sigma=1e-2, valid=0.0 if case == "all_empty" else 0.6)
    if case == "huge_dists":
        with torch.no_grad():
            sign = torch.where(torch.rand(fr.dists.shape) < 0.5, -1.0, 1.0).to(dtype)
            fr.dists.copy_(sign * 10.0 ** torch.randint(0, 30, fr.dists.shape).to(dtype))
            fr.zbuf[0, 1] = 1e30  # far beyond zfar
    bg = torch.tensor([0.1, 0.2, 0.3], dtype=dtype, requires_grad=True)
    out = fn(colors, fr, BlendParams(sigma=sigma, gamma=gamma, background_color=bg))
    assert torch.isfinite(out).all()
    for grad in vjp(out, [colors, fr.dists, fr.zbuf, bg]):
        assert torch.isfinite(grad).all()
    if case == "all_empty" and fn in (softmax_rgb_blend, softmax_rgb_blend_reference):
        torch.testing.assert_close(out[..., :3], bg.detach().expand_as(out[..., :3]))
        assert (out[..., 3] == 0).all()


def test_kernel_saves_only_its_inputs():
    colors, fr = scene(1, 16, 16, 10)
    inputs = {t.untyped_storage().data_ptr() for t in (colors, fr.dists, fr.zbuf,
                                                        fr.pix_to_face)}
    bp = BlendParams()
    for kernel, ref in ((softmax_rgb_blend, softmax_rgb_blend_reference),
                        (sigmoid_alpha_blend, sigmoid_alpha_blend_reference)):
        n_kernel, ptrs = saved_bytes(lambda k=kernel: k(colors, fr, bp))
        n_ref, _ = saved_bytes(lambda r=ref: r(colors, fr, bp))
        extra = [p for p in ptrs if p not in inputs]
        assert len(extra) <= 1  # the (3,) background tensor
        assert n_kernel < n_ref


def test_reference_used_off_kernel_dtypes_and_for_clip_gradients():
    colors, fr = scene(1, 2, 2, 3)
    zf = torch.tensor([100.0], dtype=torch.float64, requires_grad=True)
    out = softmax_rgb_blend(colors, fr, BlendParams(gamma=1.0), 1.0, zf)
    assert not graph_has(out, "SoftmaxBlend")
    (grad,) = torch.autograd.grad(out[..., :3].sum(), zf)
    assert torch.isfinite(grad).all()
    half = softmax_rgb_blend(colors.detach().bfloat16(), fr, BlendParams())
    assert half.dtype == torch.bfloat16


def test_mixed_dtypes_and_noncontiguous_inputs():
    colors, fr = scene(2, 3, 4, 5, dtype=torch.float32)
    colors64 = colors.detach().double().transpose(1, 2).contiguous().transpose(1, 2)
    assert not colors64.is_contiguous()
    out = softmax_rgb_blend(colors64, fr, BlendParams())
    assert out.dtype == torch.float64
    ref = softmax_rgb_blend_reference(colors64, fr, BlendParams())
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)


def test_znear_zfar_per_image():
    colors, fr = scene(2, 3, 3, 4, zspread=1.0)
    bp = BlendParams(gamma=1e-2)
    zn, zf = torch.tensor([1.0, 0.1], dtype=torch.float64), torch.tensor([100.0, 5.0])
    out = softmax_rgb_blend(colors, fr, bp, zn, zf)
    for n in range(2):
        one = Fragments(*(t[n:n + 1] for t in fr))
        torch.testing.assert_close(
            out[n:n + 1],
            softmax_rgb_blend_reference(colors[n:n + 1], one, bp, zn[n].item(), zf[n].item()),
        )


def test_hard_rgb_blend_gradients():
    colors, fr = scene(1, 3, 3, 2)
    bg = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64, requires_grad=True)
    out = hard_rgb_blend(colors, fr, BlendParams(background_color=bg))
    covered = fr.pix_to_face[..., 0] >= 0
    torch.testing.assert_close(out[..., 3], covered.double())
    gc, gb = torch.autograd.grad(out[..., :3].sum(), (colors, bg))
    torch.testing.assert_close(gc[..., 0, :], covered[..., None].double().expand(-1, -1, -1, 3))
    assert (gc[..., 1, :] == 0).all()
    torch.testing.assert_close(gb, (~covered).sum().double().expand(3))


# ---------------------------------------------------------------- bad input


class PT3DParams(NamedTuple):  # PyTorch3D's BlendParams is a NamedTuple without checks
    sigma: float = 1e-4
    gamma: float = 1e-4
    background_color: tuple = (1.0, 1.0, 1.0)


ALL = [hard_rgb_blend, sigmoid_alpha_blend, sigmoid_alpha_blend_reference, softmax_rgb_blend,
       softmax_rgb_blend_reference]
SOFT = ALL[1:]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(sigma=0.0), "sigma"),
        (dict(sigma=-1e-4), "sigma"),
        (dict(sigma=float("nan")), "sigma"),
        (dict(gamma=0.0), "gamma"),
        (dict(gamma=-1.0), "gamma"),
        # any channel count C >= 1 is valid (checked against the colours when blending)
        (dict(background_color=()), "background_color"),
        (dict(background_color=torch.ones(0)), "background_color"),
        (dict(background_color=5.0), "background_color"),
        (dict(background_color=torch.ones(1, 3)), "background_color"),
        (dict(background_color=(float("nan"), 0.0, 0.0)), "background_color.*NaN"),
        (dict(background_color=(0.0, float("inf"), 0.0)), "background_color.*NaN or inf"),
        (dict(background_color=torch.tensor([0.0, 0.0, float("nan")])), "background_color"),
        (dict(background_color=("a", 0.0, 0.0)), "background_color"),
    ],
)
def test_blend_params_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BlendParams(**kwargs)


@pytest.mark.parametrize("fn", SOFT)
def test_duck_typed_params_are_checked(fn):
    colors, fr = scene(1, 2, 2, 3)
    with pytest.raises(ValueError, match="sigma"):
        fn(colors, fr, PT3DParams(sigma=0.0))
    if fn in (softmax_rgb_blend, softmax_rgb_blend_reference):
        with pytest.raises(ValueError, match="gamma"):
            fn(colors, fr, PT3DParams(gamma=-1.0))
        with pytest.raises(ValueError, match="background_color"):
            fn(colors, fr, PT3DParams(background_color=(1.0, 1.0)))
        # a duck-typed params object is not validated at construction: the blend checks it
        with pytest.raises(ValueError, match="background_color contains NaN"):
            fn(colors, fr, PT3DParams(background_color=(0.0, float("nan"), 1.0)))


@pytest.mark.parametrize("fn", ALL)
def test_shape_mismatch(fn):
    colors, fr = scene(1, 2, 2, 3)
    with pytest.raises(ValueError, match="colors"):
        fn(colors[..., :2, :], fr, BlendParams())
    if fn in (sigmoid_alpha_blend, sigmoid_alpha_blend_reference):
        assert fn(colors[..., :2], fr, BlendParams()).shape[-1] == 3  # C = 2, no background
    else:  # 2 channels against an RGB background
        with pytest.raises(ValueError, match="background_color has 3 entries"):
            fn(colors[..., :2], fr, BlendParams())
    if fn is not hard_rgb_blend:
        bad = Fragments(fr.pix_to_face, fr.zbuf, fr.bary_coords, fr.dists[..., :2])
        with pytest.raises(ValueError, match="fragments.dists"):
            fn(colors, bad, BlendParams())
        bad = Fragments(fr.pix_to_face, fr.zbuf, fr.bary_coords, None)
        with pytest.raises(ValueError, match="fragments.dists"):
            fn(colors, bad, BlendParams())
    if fn in (softmax_rgb_blend, softmax_rgb_blend_reference):
        bad = Fragments(fr.pix_to_face, fr.zbuf[:, :1], fr.bary_coords, fr.dists)
        with pytest.raises(ValueError, match="fragments.zbuf"):
            fn(colors, bad, BlendParams())


@pytest.mark.parametrize("fn", [softmax_rgb_blend, softmax_rgb_blend_reference])
def test_bad_clip_planes(fn):
    colors, fr = scene(2, 2, 2, 3)
    bp = BlendParams()
    with pytest.raises(ValueError, match="znear"):
        fn(colors, fr, bp, znear=100.0, zfar=100.0)
    with pytest.raises(ValueError, match="znear"):
        fn(colors, fr, bp, znear=torch.tensor([1.0, 200.0]), zfar=100.0)
    with pytest.raises(ValueError, match="zfar"):
        fn(colors, fr, bp, znear=1.0, zfar=torch.ones(3) * 100)
    with pytest.raises(ValueError, match="zfar"):
        fn(colors, fr, bp, znear=1.0, zfar=float("inf"))
    with pytest.raises(ValueError, match="znear must be finite"):
        fn(colors, fr, bp, znear=torch.tensor([1.0, math.nan]), zfar=torch.tensor(100.0))
    # Skipping the value checks (for cameras that checked them) skips only those.
    fn(colors, fr, bp, znear=torch.tensor([1.0, 200.0]), zfar=100.0, check_clip_values=False)
    with pytest.raises(ValueError, match="zfar"):
        fn(colors, fr, bp, znear=1.0, zfar=torch.ones(3) * 100, check_clip_values=False)
    z = torch.tensor([1.0, 2.0])
    torch.testing.assert_close(fn(colors, fr, bp, znear=z, zfar=100.0),
                               fn(colors, fr, bp, znear=z, zfar=100.0, check_clip_values=False))


def test_kernel_slot_partition_every_mask():
    """The kernels' branch-free split of the K slots into valid (front) and empty (back)."""
    import itertools

    import numpy as np

    from diffrend.render.blend_kernels import _scan

    for K in range(1, 8):
        for bits in itertools.product([False, True], repeat=K):
            p2f = np.where(np.array([bits]), 7, -1).astype(np.int64)
            idx = np.empty(K, np.int64)
            cnt, _, _ = _scan.py_func(np.zeros((1, K)), p2f, 0, K, 1.0, 1.0, idx)
            assert list(idx[:cnt]) == [k for k in range(K) if bits[k]]
            assert sorted(idx[cnt:]) == [k for k in range(K) if not bits[k]]


def test_blends_take_any_channel_count():
    """PyTorch3D blends C-channel features (C != 3) with a C-entry background."""
    g = torch.Generator().manual_seed(3)
    N, H, W, K, C = 1, 5, 6, 2, 5
    p2f = torch.randint(-1, 4, (N, H, W, K), generator=g)
    # float64: the RGB case below runs the Numba kernel, the C = 5 case the torch path
    f64 = torch.float64
    frags = Fragments(pix_to_face=p2f, zbuf=torch.rand(N, H, W, K, generator=g, dtype=f64) + 1,
                      bary_coords=torch.rand(N, H, W, K, 3, generator=g, dtype=f64),
                      dists=torch.randn(N, H, W, K, generator=g, dtype=f64) * 1e-4)
    colors = torch.rand(N, H, W, K, C, generator=g, dtype=f64)
    bp = BlendParams(background_color=(0.5,) * C)
    hard = hard_rgb_blend(colors, frags, bp)
    assert hard.shape == (N, H, W, C + 1)
    empty = p2f[..., 0] < 0
    assert empty.any() and (hard[empty][:, :C] == 0.5).all()
    soft = softmax_rgb_blend(colors, frags, bp)
    assert soft.shape == (N, H, W, C + 1)
    torch.testing.assert_close(soft, softmax_rgb_blend_reference(colors, frags, bp))
    # the RGB case through the same code gives the first three channels' answer
    rgb = softmax_rgb_blend(colors[..., :3].contiguous(), frags,
                            BlendParams(background_color=(0.5,) * 3))
    torch.testing.assert_close(soft[..., :3], rgb[..., :3], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="background_color has 3 entries but the colours"):
        hard_rgb_blend(colors, frags, BlendParams())
