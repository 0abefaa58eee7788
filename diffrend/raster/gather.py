"""``verts[faces]`` as one parallel pass on the CPU (torch's advanced indexing is serial)."""

from __future__ import annotations

import numba as nb
import torch

from ..threads import kernel_lock


@nb.njit(parallel=True, cache=True)
def _gather(verts, faces, out):
    for f in nb.prange(faces.shape[0]):
        for i in range(3):
            v = faces[f, i]
            for j in range(3):
                out[f, i, j] = verts[v, j]


class _GatherFaceVerts(torch.autograd.Function):
    @staticmethod
    def forward(ctx, verts, faces):
        out = torch.empty((faces.shape[0], 3, 3), dtype=verts.dtype)
        with kernel_lock():  # (see diffrend.threads)
            _gather(verts.detach().contiguous().numpy(), faces.contiguous().numpy(),
                    out.numpy())
        ctx.save_for_backward(faces)
        ctx.n_verts = verts.shape[0]
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (faces,) = ctx.saved_tensors
        grad = grad_out.new_zeros((ctx.n_verts, 3))
        grad.index_add_(0, faces.reshape(-1), grad_out.reshape(-1, 3))
        return grad, None


def gather_face_verts(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Vertices of each face.

    Args:
        verts: (V, 3) float. faces: (F, 3) int64 indices into verts.

    Returns:
        (F, 3, 3) float, differentiable w.r.t. ``verts``.
    """
    if faces.numel() == 0 or verts.device.type != "cpu":
        # (plain indexing: an empty mesh keeps its graph, so backward() gives zero gradients)
        return verts[faces.to(torch.int64)].reshape(-1, 3, 3)
    return _GatherFaceVerts.apply(verts, faces.to(torch.int64))
