"""Packed <-> padded conversion by first indices (PyTorch3D's ``ops.packed_to_padded``).

These take the (N,) index of each item's first row, as the structures' index maps give it;
``diffrend.structures.utils`` has the list-of-sizes variants.
"""

from __future__ import annotations

import torch


def _check_first_idxs(first_idxs: torch.Tensor) -> None:
    if not torch.is_tensor(first_idxs) or first_idxs.ndim != 1 or (
        first_idxs.is_floating_point()
    ):
        raise ValueError("first_idxs: expected a 1-D integer tensor of shape (N,)")


def _rows(first_idxs: torch.Tensor, total: int, max_size: int) -> tuple[torch.Tensor, ...]:
    """For every packed row: its item and its row within the item (int64, (total,))."""
    first = first_idxs.to(torch.int64)
    counts = torch.diff(first, append=first.new_tensor([total]))
    owner = torch.repeat_interleave(torch.arange(first.shape[0], device=first.device), counts,
                                    output_size=total)
    local = torch.arange(total, device=first.device) - first[owner]
    return owner, local


def packed_to_padded(inputs: torch.Tensor, first_idxs: torch.Tensor,
                     max_size: int) -> torch.Tensor:
    """Scatter packed rows into a zero-padded batch.

    Args:
        inputs: (F,) or (F, *D) packed values, item i in rows
            ``first_idxs[i] : first_idxs[i + 1]``.
        first_idxs: (N,) int64, increasing, first row of each item.
        max_size: M, the padded size (at least every item's row count).

    Returns:
        (N, M) or (N, M, *D), zeros in the padding; differentiable w.r.t. ``inputs``.
    """
    _check_first_idxs(first_idxs)
    if not torch.is_tensor(inputs) or inputs.ndim < 1:
        raise ValueError("inputs: expected a tensor of shape (F,) or (F, *D)")
    total = inputs.shape[0]
    owner, local = _rows(first_idxs, total, max_size)
    out = inputs.new_zeros((first_idxs.shape[0], int(max_size), *inputs.shape[1:]))
    return out.index_put((owner, local), inputs)


def padded_to_packed(inputs: torch.Tensor, first_idxs: torch.Tensor,
                     num_inputs: int, max_size_dim: int = 1) -> torch.Tensor:
    """Gather the valid rows of a padded batch into packed form (inverse of the above).

    Args:
        inputs: (N, M) or (N, M, *D) padded values.
        first_idxs: (N,) int64, increasing, first packed row of each item.
        num_inputs: F, the number of packed rows (item N-1 ends there).
        max_size_dim: the padded dimension M of ``inputs`` (the others follow in order).

    Returns:
        (F,) or (F, *D); differentiable w.r.t. ``inputs``.
    """
    _check_first_idxs(first_idxs)
    if torch.is_tensor(inputs) and inputs.ndim >= 2 and max_size_dim != 1:
        if not 1 <= max_size_dim < inputs.ndim:
            raise ValueError(f"max_size_dim: expected 1..{inputs.ndim - 1}, got {max_size_dim}")
        inputs = inputs.movedim(max_size_dim, 1)
    if not torch.is_tensor(inputs) or inputs.ndim < 2 or inputs.shape[0] != first_idxs.shape[0]:
        raise ValueError(
            f"inputs: expected shape ({first_idxs.shape[0]}, M, ...), got "
            f"{tuple(inputs.shape) if torch.is_tensor(inputs) else type(inputs).__name__}"
        )
    owner, local = _rows(first_idxs, int(num_inputs), inputs.shape[1])
    return inputs[owner, local]
