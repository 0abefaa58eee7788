"""Small numeric helpers for the rotation maps (PyTorch3D's ``transforms.math``)."""

from __future__ import annotations

import math

import torch

__all__ = ["DEFAULT_ACOS_BOUND", "acos_linear_extrapolation"]

DEFAULT_ACOS_BOUND: float = 1.0 - 1e-4


def acos_linear_extrapolation(
    x: torch.Tensor,
    bounds: tuple[float, float] = (-DEFAULT_ACOS_BOUND, DEFAULT_ACOS_BOUND),
) -> torch.Tensor:
    """``acos(x)`` between the bounds, continued by its tangent lines outside them.

    ``acos`` has infinite slope at +-1 and is undefined beyond; cosines computed from nearly
    valid rotations land there through rounding. Replacing it by its first-order Taylor
    expansion at ``bounds`` keeps values and gradients finite everywhere.

    Args:
        x: any shape.
        bounds: ``(lower, upper)`` with ``-1 < lower <= upper < 1``; ``x <= lower`` and
            ``x >= upper`` use the tangent line at ``lower`` / ``upper``.

    Returns:
        Same shape and dtype as ``x``. Differentiable w.r.t. ``x`` with finite gradients,
        continuous at the bounds.
    """
    lower, upper = bounds
    if lower > upper:
        raise ValueError(f"bounds must satisfy lower <= upper; got ({lower}, {upper})")
    if lower <= -1.0 or upper >= 1.0:
        raise ValueError(f"bounds must lie inside (-1, 1); got ({lower}, {upper})")
    # The clamp keeps acos (and its gradient) finite in the branches that torch.where drops.
    inside = torch.acos(x.clamp(lower, upper))
    above = math.acos(upper) - (x - upper) / math.sqrt(1.0 - upper * upper)
    below = math.acos(lower) - (x - lower) / math.sqrt(1.0 - lower * lower)
    return torch.where(x >= upper, above, torch.where(x <= lower, below, inside))
