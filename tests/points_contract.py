"""The test contract for points rasterizer backends, written once (DESIGN.md, style point 6).

- Forward: ``idx`` equal; zbuf and dists compared with ``torch.testing.assert_close``
  (the backends compute the coverage test and the distances with the same operations in
  the points' dtype, so equal inputs give equal outputs; tolerances are per call).
- Backward: vector-Jacobian products under one shared random cotangent for the two
  differentiable outputs, compared with ``assert_close``.
"""

from __future__ import annotations

import torch

from diffrend.raster import PointFragments


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
