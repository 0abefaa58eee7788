"""``pytorch3d.common.datatypes``: PyTorch3D's device helpers."""

from __future__ import annotations

import torch

from diffrend.cameras.base import Device


def make_device(device: Device) -> torch.device:
    """``torch.device(device)``, with a CUDA device's index filled in (the current one)."""
    device = torch.device(device) if isinstance(device, str) else device
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{torch.cuda.current_device()}")
    return device


def get_device(x, device: Device | None = None) -> torch.device:
    """``device`` if given, else the device of tensor ``x``, else the CPU."""
    if device is not None:
        return make_device(device)
    if torch.is_tensor(x):
        return x.device
    return torch.device("cpu")


__all__ = ["Device", "get_device", "make_device"]
