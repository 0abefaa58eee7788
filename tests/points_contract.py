"""The test contract for points rasterizer backends, written once (DESIGN.md, style point 6),
and the clouds and runners the backend tests share.

- Forward: ``idx`` equal; zbuf and dists compared with ``torch.testing.assert_close``
  (the backends compute the coverage test and the distances with the same operations in
  the points' dtype, so equal inputs give equal outputs; tolerances are per call).
- Backward: vector-Jacobian products under one shared random cotangent for the two
  differentiable outputs, compared with ``assert_close``.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from raster_contract import (  # noqa: F401 - re-exported
    BACKENDS,
    KERNELS,
    TRITON,
    TRITON_DEVICE,
    device_of,
)

from diffrend.raster import PointFragments, rasterize_points_packed


def cloud(seed: int, n_points: int, n_clouds: int, z_lo: float, radius_mode: str, dtype):
    """Random screen-space points with ties: a few duplicated points (coincident, equal
    depth) and a few points sharing a depth at other places; clouds of random sizes (some
    empty); radius a float or per point (some 0)."""
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(n_points, 3, generator=g, dtype=dtype) * 2.6 - 1.3
    pts[:, 2] = z_lo + torch.rand(n_points, generator=g, dtype=dtype) * 3.0
    if n_points >= 6:
        pts[1] = pts[0]  # coincident
        pts[4, 2] = pts[3, 2] = pts[2, 2]  # equal depth, elsewhere
        pts[5, :2] = pts[2, :2] + 0.01  # and nearby
        pts[5, 2] = pts[2, 2]
    cloud_idx = torch.randint(0, n_clouds, (n_points,), generator=g)
    # Packed order need not be sorted by cloud for the core, but Pointclouds is: sort.
    cloud_idx = cloud_idx.sort().values
    if radius_mode == "per_point":
        radius = torch.rand(n_points, generator=g, dtype=dtype) * 0.4
        radius[torch.rand(n_points, generator=g) < 0.2] = 0.0
    else:
        radius = float(radius_mode)
    return pts, cloud_idx, radius


point_cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 10_000),
        "n_points": st.integers(0, 60),
        "n_clouds": st.integers(1, 4),
        "H": st.integers(1, 24),
        "W": st.integers(1, 24),
        "K": st.sampled_from([1, 2, 3, 8, 70]),  # 70: more than the points
        "z_lo": st.sampled_from([0.5, -1.0]),  # -1: about a third behind the camera
        "radius": st.sampled_from(["0.0", "0.05", "0.2", "0.7", "per_point"]),
    }
)


small_point_cases = st.fixed_dictionaries(
    {  # (the sizes Triton's interpreter runs in a test's time)
        "seed": st.integers(0, 10_000),
        "n_points": st.integers(0, 40),
        "n_clouds": st.integers(1, 3),
        "H": st.integers(1, 16),
        "W": st.integers(1, 20),
        "K": st.sampled_from([1, 2, 3, 8, 11]),  # 11: a second round of slots
        "z_lo": st.sampled_from([0.5, -1.0]),  # -1: about a third behind the camera
        "radius": st.sampled_from(["0.0", "0.05", "0.2", "0.7", "per_point"]),
    }
)


def run(pts, ci, n_clouds, backend, device=None, **kw):
    """Rasterize with ``backend`` on ``device`` (default: the backend's): (fragments, the
    vjp of the shared cotangents w.r.t. the points)."""
    dev = device or device_of(backend)
    x = pts.to(dev).clone().requires_grad_()
    radius = kw.get("radius", 0.01)
    kw = {**kw, "radius": radius.to(dev) if torch.is_tensor(radius) else radius}
    fr = rasterize_points_packed(x, ci.to(dev), n_clouds, backend=backend, **kw)
    cots = tuple(c.to(dev) for c in cotangents(fr))
    return fr, vjp(fr, x, cots)


def compare(pts, ci, n_clouds, backend, rtol=1e-9, atol=1e-9, grad_tol=1e-7,
            **kw) -> PointFragments:
    """``backend`` against the reference (on the backend's device): the forward contract,
    finite gradients, equal vjps. Returns the backend's fragments."""
    a, ga = run(pts, ci, n_clouds, backend, **kw)
    b, gb = run(pts, ci, n_clouds, "reference", device=device_of(backend), **kw)
    assert_point_fragments_equal(a, b, rtol=rtol, atol=atol)
    assert torch.isfinite(ga).all()
    torch.testing.assert_close(ga, gb, rtol=grad_tol, atol=grad_tol)
    return a


def cotangents(fr: PointFragments, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """One random cotangent per differentiable output (zbuf, dists), the same for every
    backend."""
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(t.shape, generator=g, dtype=t.dtype) for t in (fr.zbuf, fr.dists))


def vjp(fr: PointFragments, inputs: torch.Tensor, cots: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """d(<zbuf, cot_z> + <dists, cot_d>)/d(inputs)."""
    loss = sum((t * c).sum() for t, c in zip((fr.zbuf, fr.dists), cots, strict=True))
    if not torch.is_tensor(loss) or not loss.requires_grad:
        return torch.zeros_like(inputs)
    (grad,) = torch.autograd.grad(loss, inputs, allow_unused=True)
    return torch.zeros_like(inputs) if grad is None else grad


def assert_point_fragments_equal(
    a: PointFragments, b: PointFragments, rtol: float, atol: float
) -> None:
    """Forward part of the contract: same idx everywhere, then zbuf and dists close."""
    assert a.idx.shape == b.idx.shape, (a.idx.shape, b.idx.shape)
    assert a.idx.dtype == b.idx.dtype == torch.int32  # PyTorch3D's dtype
    diff = (a.idx != b.idx).sum().item()
    assert diff == 0, f"idx differs at {diff} entries"
    for name in ("zbuf", "dists"):
        torch.testing.assert_close(
            getattr(a, name), getattr(b, name), rtol=rtol, atol=atol,
            msg=lambda s, n=name: f"{n}: {s}",
        )
