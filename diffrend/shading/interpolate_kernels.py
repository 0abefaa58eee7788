"""Numba CPU kernel of :func:`~diffrend.shading.interpolate_face_attributes`, with its
autograd glue.

The pure-torch version gathers ``(..., 3, D)`` corner attributes for every fragment, multiplies
and sums them, and its backward scatters ``(..., 3, D)`` products into the faces with an
accumulating ``index_put`` (a sort on the CPU): a dozen passes over memory for what is three
multiply-adds per channel. Shading a soft render (hundreds of thousands of fragments) spent
about 45 ms of a SoftPhong call there. Here the forward is one parallel pass over the
fragments; the backward is one pass for the barycentrics' gradient and one for the faces'.

The faces' gradient is a scatter: fragments are split into bands (their count is fixed by the
problem size, never the thread count), each band adds into its own float64 ``(F, 3, D)``
buffer, and the buffers are summed in an order fixed by their count, so results are
bit-identical on any machine and as accurate as float64 summation. The pure-torch version
stays the oracle (:func:`~diffrend.shading.interpolate.interpolate_face_attributes_reference`);
tests hold this kernel to it.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch
from torch.autograd.function import once_differentiable

from ..raster.numba_shared import n_row_bands, to_numpy
from ..threads import kernel_lock

_BLOCK = 4096  # fragments per scheduling chunk of the forward and the barycentrics' pass
_BAND_MIN = 16384  # fragments per band of the faces' gradient, at least (each zeroes a buffer)


@nb.njit(parallel=True, cache=True)
def _forward(p2f, bary, attrs, out, bad):
    # bad: (blocks,) set to 1 where a block holds a face index >= F (which is not read).
    P = p2f.shape[0]
    F, _, D = attrs.shape
    for blk in nb.prange((P + _BLOCK - 1) // _BLOCK):
        bad[blk] = 0
        for p in range(blk * _BLOCK, min(P, (blk + 1) * _BLOCK)):
            f = p2f[p]
            if f >= F:
                bad[blk] = 1
                f = -1
            if f < 0:
                for d in range(D):
                    out[p, d] = 0.0
                continue
            b0 = bary[p, 0]
            b1 = bary[p, 1]
            b2 = bary[p, 2]
            for d in range(D):
                out[p, d] = b0 * attrs[f, 0, d] + b1 * attrs[f, 1, d] + b2 * attrs[f, 2, d]


@nb.njit(parallel=True, cache=True)
def _grad_bary(p2f, attrs, grad_out, grad_bary):
    P = p2f.shape[0]
    D = attrs.shape[2]
    for blk in nb.prange((P + _BLOCK - 1) // _BLOCK):
        for p in range(blk * _BLOCK, min(P, (blk + 1) * _BLOCK)):
            f = p2f[p]
            for j in range(3):
                acc = 0.0
                if f >= 0:
                    for d in range(D):
                        acc += attrs[f, j, d] * grad_out[p, d]
                grad_bary[p, j] = acc


@nb.njit(parallel=True, cache=True)
def _grad_attrs(p2f, bary, grad_out, bands):
    # bands: (B, F, 3 * D) float64, zeroed here; band b adds the fragments of its slice.
    B = bands.shape[0]
    P = p2f.shape[0]
    D = grad_out.shape[1]
    for b in nb.prange(B):
        buf = bands[b]
        buf[:] = 0.0
        for p in range(b * P // B, (b + 1) * P // B):
            f = p2f[p]
            if f < 0:
                continue
            for j in range(3):
                w = np.float64(bary[p, j])
                for d in range(D):
                    buf[f, j * D + d] += w * grad_out[p, d]


class _Interpolate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pix_to_face, bary, attrs):
        lead = tuple(pix_to_face.shape)
        F, _, D = attrs.shape
        p2f = to_numpy(pix_to_face).reshape(-1)
        out = torch.empty((*lead, D), dtype=attrs.dtype)
        bad = np.zeros(max(1, (p2f.shape[0] + _BLOCK - 1) // _BLOCK), np.uint8)
        with kernel_lock():  # (see diffrend.threads)
            _forward(p2f, to_numpy(bary).reshape(-1, 3), to_numpy(attrs),
                     out.numpy().reshape(-1, D), bad)
        if bad.any():
            raise ValueError(f"pix_to_face holds a face index >= the {F} faces of "
                             "face_attributes")
        ctx.save_for_backward(pix_to_face, bary, attrs)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        pix_to_face, bary, attrs = ctx.saved_tensors
        F, _, D = attrs.shape
        p2f = to_numpy(pix_to_face).reshape(-1)
        g = to_numpy(grad_out).reshape(-1, D)
        grad_bary = grad_attrs = None
        with kernel_lock():  # (see diffrend.threads)
            if ctx.needs_input_grad[1]:
                grad_bary = torch.empty(bary.shape, dtype=bary.dtype)
                _grad_bary(p2f, to_numpy(attrs), g, grad_bary.numpy().reshape(-1, 3))
            if ctx.needs_input_grad[2]:
                n_bands = min(n_row_bands(p2f.shape[0], F, 3 * D, p2f.shape[0]),
                              max(1, p2f.shape[0] // _BAND_MIN))
                # torch-owned buffers (a tensor made from NumPy data would count as a host
                # read in tests/test_host_syncs.py), summed in an order fixed by their count
                bands = torch.empty((n_bands, F, 3 * D), dtype=torch.float64)
                _grad_attrs(p2f, to_numpy(bary).reshape(-1, 3), g, bands.numpy())
                grad_attrs = bands.sum(0).to(attrs.dtype).reshape(F, 3, D)
        return None, grad_bary, grad_attrs


def interpolate_cpu(
    pix_to_face: torch.Tensor, bary: torch.Tensor, attrs: torch.Tensor
) -> torch.Tensor:
    """``sum_i bary_i * attrs[face, i]`` on CPU tensors (Numba). No argument checks.

    Args:
        pix_to_face: (..., ) int64 face of each fragment; < 0 = empty (output zero).
        bary: (..., 3) float32/float64, the dtype of ``attrs``.
        attrs: (F, 3, D) float32/float64, F > 0.

    Returns:
        (..., D) in attrs' dtype; differentiable w.r.t. bary and attrs (first order only).

    Raises:
        ValueError: a face index >= F.
    """
    return _Interpolate.apply(pix_to_face, bary, attrs)
