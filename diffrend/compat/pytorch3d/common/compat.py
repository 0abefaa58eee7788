"""``pytorch3d.common.compat``: PyTorch3D's shims over old torch releases.

diffrend needs torch >= 2.4, where both are one-line calls; they are kept under PyTorch3D's
names for scripts that import them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def meshgrid_ij(*tensors: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """``torch.meshgrid(..., indexing="ij")``."""
    return torch.meshgrid(*tensors, indexing="ij")


def prod(iterable, *, start=1):
    """``math.prod``."""
    return math.prod(iterable, start=start)


__all__ = ["meshgrid_ij", "prod"]
