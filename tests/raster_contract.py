"""The test contract for mesh rasterizer backends, written once (DESIGN.md, style point 6),
and the scenes and runners the backend tests share.

- Forward: ``pix_to_face`` equal; zbuf, bary_coords, dists compared with
  ``torch.testing.assert_close`` where faces agree.
- Backward: vector-Jacobian products under one shared random cotangent for the three
  differentiable outputs, compared with ``assert_close``.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from hypothesis import strategies as st

from diffrend.raster import Fragments, rasterize_faces

HAS_TRITON = importlib.util.find_spec("triton") is not None
CUDA = torch.cuda.is_available()  # without it, conftest.py chose Triton's interpreter
# Triton runs on CUDA tensors, or in its interpreter on CPU tensors (slow: small scenes).
TRITON_DEVICE = torch.device("cuda" if CUDA else "cpu")
TRITON = pytest.param("triton", marks=pytest.mark.skipif(
    not HAS_TRITON, reason="triton is not installed (pip install 'diffrend[triton]')"))
BACKENDS = ("reference", "numba", TRITON)  # for pytest.mark.parametrize
KERNELS = ("numba", TRITON)  # the backends compared against the reference


def device_of(backend: str) -> torch.device:
    """Where a backend's tensors live in the tests."""
    return TRITON_DEVICE if backend == "triton" else torch.device("cpu")


def soup(seed: int, n_faces: int, n_meshes: int, z_lo: float, degenerate: bool, dtype):
    """Random triangles; some collapsed to a segment or a point when ``degenerate``."""
    g = torch.Generator().manual_seed(seed)
    fv = torch.rand(n_faces, 3, 3, generator=g, dtype=dtype) * 2.4 - 1.2
    fv[..., 2] = z_lo + torch.rand(n_faces, 3, generator=g, dtype=dtype) * 3.0
    if degenerate and n_faces >= 3:
        fv[0, 1] = fv[0, 0]  # two coincident vertices
        fv[1, 2] = 0.5 * (fv[1, 0] + fv[1, 1])  # collinear
        fv[2, :] = fv[2, 0]  # a point
    face_mesh = torch.randint(0, n_meshes, (n_faces,), generator=g)
    return fv, face_mesh


raster_cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 10_000),
        "n_faces": st.integers(1, 40),
        "n_meshes": st.integers(1, 3),
        "H": st.integers(1, 24),
        "W": st.integers(1, 24),
        "K": st.sampled_from([1, 2, 3, 8, 50]),
        "blur": st.sampled_from([0.0, 1e-4, 3e-3, 0.05]),
        "persp": st.booleans(),
        "clip": st.booleans(),
        "cull": st.booleans(),
        "z_lo": st.sampled_from([0.5, -1.0]),  # -1: triangles cross the camera plane
        "z_clip": st.sampled_from([None, 0.3]),
        "degenerate": st.booleans(),
    }
)


def run(fv, fm, n_meshes, backend, device=None, **kw):
    """Rasterize with ``backend`` on ``device`` (default: the backend's): (fragments, the
    vjp of the shared cotangents w.r.t. the face vertices)."""
    dev = device or device_of(backend)
    x = fv.to(dev).clone().requires_grad_()
    fr = rasterize_faces(x, fm.to(dev), n_meshes, backend=backend, **kw)
    cots = tuple(c.to(dev) for c in cotangents(fr))
    return fr, vjp(fr, x, cots)


def compare(fv, fm, n_meshes, backend, rtol=1e-9, atol=1e-9, grad_tol=1e-7, min_agree=1.0,
            **kw) -> Fragments:
    """``backend`` against the reference: the forward contract, finite gradients, and
    (unless ``grad_tol`` is None) equal vjps. Returns the backend's fragments."""
    a, ga = run(fv, fm, n_meshes, backend, **kw)
    b, gb = run(fv, fm, n_meshes, "reference", device=device_of(backend), **kw)
    assert_fragments_equal(a, b, rtol=rtol, atol=atol, min_agree=min_agree)
    assert torch.isfinite(ga).all()
    if grad_tol is not None:
        torch.testing.assert_close(ga, gb, rtol=grad_tol, atol=grad_tol)
    return a


def cotangents(fr: Fragments, seed: int = 1) -> tuple[torch.Tensor, ...]:
    """One random cotangent per differentiable output, the same for every backend."""
    g = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(t.shape, generator=g, dtype=t.dtype) for t in (fr.zbuf, fr.bary_coords,
                                                                    fr.dists)
    )


def vjp(fr: Fragments, inputs: torch.Tensor, cots: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """d(sum_i <output_i, cot_i>)/d(inputs)."""
    loss = sum((t * c).sum() for t, c in zip(
        (fr.zbuf, fr.bary_coords, fr.dists), cots, strict=True))
    (grad,) = torch.autograd.grad(loss, inputs, allow_unused=True)
    return torch.zeros_like(inputs) if grad is None else grad


def assert_fragments_equal(
    a: Fragments, b: Fragments, rtol: float, atol: float, min_agree: float = 1.0
) -> None:
    """Forward part of the contract. ``min_agree`` < 1 allows a fraction of pixels whose
    face lists differ (float32 pixel centres on an edge, equal depths); values are then
    compared only where the face ids agree."""
    a, b = (Fragments(*(t.cpu() for t in fr)) for fr in (a, b))
    assert a.pix_to_face.shape == b.pix_to_face.shape
    same = a.pix_to_face == b.pix_to_face
    agree = same.all(dim=-1).float().mean().item()
    assert agree >= min_agree, f"pix_to_face agrees on only {agree:.4%} of pixels"
    for name in ("zbuf", "bary_coords", "dists"):
        x, y = getattr(a, name), getattr(b, name)
        m = same if name != "bary_coords" else same[..., None].expand_as(x)
        torch.testing.assert_close(
            x[m], y[m], rtol=rtol, atol=atol, msg=lambda s, n=name: f"{n}: {s}"
        )
