"""Small host data onto a device without synchronising a CUDA stream.

``torch.tensor(values, device="cuda")`` copies from pageable host memory, and PyTorch then
waits for the whole stream to finish (a host synchronisation) before it returns. Per-call
code (the render path) builds its small index and constant tensors with
:func:`host_tensor` instead: on CUDA the values go through pinned memory with a
non-blocking copy, which the stream orders like any kernel, so the host runs ahead; and
checks of internal consistency use :func:`check_on_device`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def host_tensor(values, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """``torch.tensor(values, dtype=dtype)`` on ``device``, without a stream sync on CUDA.

    Args:
        values: a number or a (nested) list of numbers, on the host.
        dtype: the tensor's dtype. device: where it goes.

    Returns:
        A new tensor (not differentiable). On CUDA its copy is queued on the current stream
        (PyTorch keeps the pinned buffer alive until the copy has run).
    """
    device = torch.device(device)
    t = torch.tensor(values, dtype=dtype)
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def check_on_device(ok: torch.Tensor, message: str,
                    detail: Callable[[], str] | None = None) -> None:
    """Raise ``ValueError`` unless the 0-dim bool ``ok`` holds, without a sync on CUDA.

    On CPU the check is immediate (reading a CPU tensor costs nothing) and the error says
    ``detail()`` (default ``message``). On CUDA it is a device-side assertion with
    ``message``: the stream is not stalled, and a failure surfaces as a RuntimeError at the
    next synchronisation (for checks of internal consistency, which valid use never fails).
    """
    if ok.device.type == "cuda":
        try:
            torch._assert_async(ok, message)
        except TypeError:  # torch without the message overload
            torch._assert_async(ok)
        return
    if not bool(ok):
        raise ValueError(detail() if detail is not None else message)
