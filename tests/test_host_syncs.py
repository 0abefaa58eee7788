"""The GPU render path does not read data back to the host, or wait on the GPU, needlessly.

Each such read (``.item()``, ``int(t)``, ``bool(t)``, a blocking host-to-device copy, a
data-dependent size) stalls the CUDA stream until the GPU catches up, so the host can no
longer queue work ahead of it. The render path has exactly these, each one read that gets
all it needs at once (``.tolist()``): the binning's count of (tile, item) entries (with the
count of bad input), the near-plane check of perspective cameras, and the size of the
compacted fragments the shaded renderers shade. Small constants go to the device through
:func:`diffrend.ops.transfer.host_tensor` (pinned, non-blocking).

Without a GPU the cases run the Triton kernels in the interpreter on CPU tensors and a
dispatch mode flags every other host read or host-built tensor; with a GPU, CUDA's sync
debug mode counts the stream synchronisations themselves.
"""

from __future__ import annotations

import os
import traceback

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

CUDA = torch.cuda.is_available()  # without it, conftest.py chose Triton's interpreter
pytest.importorskip("triton", reason="triton is not installed (pip install 'diffrend[triton]')")

from diffrend.bench.small_paths import PATHS, small_call  # noqa: E402

DEVICE = torch.device("cuda" if CUDA else "cpu")

# How many stream syncs one call of each of the CUDA benchmark's paths may have (see the
# module docstring); the paths run on small scenes (the interpreter is slow).
SYNCS = {"hard raster": 2, "soft raster fwd+bwd": 2, "SoftPhong textured fwd+bwd": 3,
         "silhouette fwd+bwd": 2, "points raster": 1, "points alpha render fwd+bwd": 1}


def make_call(name: str):
    """One call of the named path on DEVICE with the Triton backend."""
    return small_call(name, DEVICE)


def test_every_benchmark_path_has_a_sync_budget():
    assert tuple(SYNCS) == PATHS


class HostReads(TorchDispatchMode):
    """Records ops that read tensor data back to the host or build a tensor from host data,
    with the diffrend lines they come from."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    @staticmethod
    def _flagged(func, args, kwargs) -> bool:
        name = func.name()
        if name.startswith(("aten::_local_scalar_dense", "aten::lift_fresh",
                            "aten::masked_select", "aten::_unique", "aten::unique")):
            return True
        if name in ("aten::nonzero", "aten::nonzero_numpy"):
            return True
        if name.startswith("aten::repeat_interleave") and kwargs.get("output_size") is None:
            return isinstance(args[-1] if len(args) > 1 else args[0], torch.Tensor)
        if name.startswith(("aten::index.", "aten::index_put")):
            idx = args[1] if len(args) > 1 else ()
            return any(t is not None and t.dtype == torch.bool for t in idx)
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self._flagged(func, args, kwargs):
            stack = traceback.extract_stack()
            files = [f.filename for f in stack]
            internal = any("triton" in f and "interpreter" in f for f in files)
            allowed = any(f.endswith(os.path.join("diffrend", "ops", "transfer.py")) for f in files)
            if not internal and not allowed:
                ours = [f"{os.path.basename(f.filename)}:{f.lineno}" for f in stack
                        if f"{os.sep}diffrend{os.sep}" in f.filename]
                self.found.append(f"{func.name()} <- {' | '.join(ours[-3:])}")
        return func(*args, **kwargs)


@pytest.mark.skipif(CUDA, reason="the CUDA test below counts the syncs themselves")
@pytest.mark.parametrize("name", list(SYNCS))
def test_render_path_has_no_other_host_reads(name):
    fn = make_call(name)
    fn()  # first call: cached constants (pixel centres, topology) are made here
    mode = HostReads()
    with mode:
        fn()
    assert mode.found == []


def test_the_dispatch_check_catches_host_reads():
    t = torch.arange(4.0)
    mode = HostReads()
    with mode:
        bool(t.sum() > 1)
        torch.tensor([1.0, 2.0])
        torch.nonzero(t)
        t[t > 1]
        reps = torch.ones(2, dtype=torch.int64)
        torch.repeat_interleave(torch.arange(2), reps, output_size=2)  # not a read
        torch.repeat_interleave(torch.arange(2), reps)
    kinds = [f.split(" ")[0] for f in mode.found]
    assert kinds == ["aten::_local_scalar_dense", "aten::lift_fresh", "aten::nonzero",
                     "aten::index.Tensor", "aten::repeat_interleave.Tensor"]


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", list(SYNCS))
def test_cuda_stream_syncs_per_call(name):
    from diffrend.bench.cuda_bench import count_stream_syncs

    fn = make_call(name)
    fn()
    assert count_stream_syncs(fn) <= SYNCS[name]


def test_host_tensor_and_check_on_device_on_cpu():
    from diffrend.ops.transfer import check_on_device, host_tensor

    t = host_tensor([[1, 2], [3, 4]], torch.float64, "cpu")
    assert t.dtype == torch.float64 and t.device.type == "cpu"
    assert torch.equal(t, torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64))
    check_on_device(torch.tensor(True), "never")
    with pytest.raises(ValueError, match="face 7"):
        check_on_device(torch.tensor(False), "static", lambda: "face 7")
    with pytest.raises(ValueError, match="static"):
        check_on_device(torch.tensor(False), "static")


def test_compaction_nonzero_with_known_count_equals_nonzero():
    from diffrend.render.compact import _nonzero

    keep = torch.rand(240, generator=torch.Generator().manual_seed(0)) > 0.6
    got = _nonzero(keep, int(keep.sum()))
    assert got.numel() > 0 and torch.equal(got, torch.nonzero(keep)[:, 0])
    assert _nonzero(torch.zeros(6, dtype=torch.bool), 0).numel() == 0


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_host_tensor_on_cuda_is_a_queued_copy():
    from diffrend.bench.cuda_bench import count_stream_syncs
    from diffrend.ops.transfer import host_tensor

    made = []
    assert count_stream_syncs(lambda: made.append(
        host_tensor([0.25, 0.5, 0.75], torch.float32, "cuda"))) == 0
    assert made[0].tolist() == [0.25, 0.5, 0.75]
    # and the counter sees a plain host copy as the sync it is
    assert count_stream_syncs(lambda: torch.tensor([1.0], device="cuda")) >= 1
