"""The test contract for rasterizer backends, written once (DESIGN.md, style point 6).

- Forward: ``pix_to_face`` equal; zbuf, bary_coords, dists compared with
  ``torch.testing.assert_close`` where faces agree.
- Backward: vector-Jacobian products under one shared random cotangent for the three
  differentiable outputs, compared with ``assert_close``.
"""

from __future__ import annotations

import torch

from diffrend.raster import Fragments


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
