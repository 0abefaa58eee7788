"""A trivial Triton kernel: if :mod:`.triton_compile` cannot compile it, the fault is the
installed Triton's, not diffrend's kernels'."""

import triton
import triton.language as tl


@triton.jit
def probe_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) * 2.0, mask=offs < n)
