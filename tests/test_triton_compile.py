"""The Triton kernels compile for an H100 (sm_90) on a machine without a GPU.

The other Triton tests run the kernels in the interpreter, which never compiles them; this
one compiles every specialisation the benchmark's paths launch (``python -m
diffrend.bench.triton_compile``; Triton ships ptxas, so no CUDA toolkit is needed). It
cannot run the compiled code.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from diffrend.bench import triton_compile  # imports no triton (the children do)

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed (pip install 'diffrend[triton]')",
                allow_module_level=True)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("aot") / "rows.json"
    done = subprocess.run([sys.executable, "-m", "diffrend.bench.triton_compile", "--arch",
                           "90", "--json", str(out)], capture_output=True, text=True,
                          timeout=900)
    if done.returncode == triton_compile.UNSUPPORTED:
        pytest.skip(f"this Triton cannot compile without a GPU: {done.stderr[-500:]}")
    if done.returncode == 1:
        return json.loads(out.read_text())  # failures, asserted below with their messages
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


def test_every_kernel_compiles_for_sm90(compiled):
    assert compiled["failures"] == []
    assert compiled["arch"] == 90
    kernels = {r["kernel"] for r in compiled["rows"]}
    assert kernels == set(triton_compile.KERNELS)
    # both dtypes and both ways of summing the backward were compiled
    fwd = {r["dtype"] for r in compiled["rows"] if r["kernel"] == "raster_forward_kernel"}
    assert fwd == {"float32", "float64"}
    atomic = {r["constexprs"]["ATOMIC"] for r in compiled["rows"]
              if r["kernel"] == "raster_backward_kernel"}
    assert atomic == {True, False}


def test_every_launch_names_its_fp_fusion(compiled):
    # Triton's default flips from fused multiply-adds (up to 3.9) to none (3.10); a launch
    # that leaves it to the default would change rounding and speed with the release.
    unnamed = [r["kernel"] for r in compiled["rows"] if "enable_fp_fusion" not in r["constexprs"]]
    assert unnamed == []
    fused = {r["kernel"] for r in compiled["rows"] if r["constexprs"]["enable_fp_fusion"]}
    # the binning and the points forward compare like the reference, so never fuse
    assert fused == {"raster_forward_kernel", "raster_backward_kernel", "points_backward_kernel"}


def test_no_kernel_spills_registers(compiled):
    # The K-best lists live in registers by design (8 slots, longer lists in rounds); a
    # stack frame means spilled registers, each a round trip to local memory per access.
    # float64 backward spilled at two slots per thread until its block was halved
    # (raster/mesh/triton.py).
    # A new Triton release may allocate registers differently: then review the kernel.
    rows = [r for r in compiled["rows"] if "stack" in r]
    if not rows:
        pytest.skip("cuobjdump (shipped with Triton) is missing: no resource usage")
    spilled = [(r["kernel"], r["dtype"], r["constexprs"], r["stack"]) for r in rows
               if r["stack"] > 0]
    assert spilled == []
    assert all(0 < r["reg"] <= 255 for r in rows)


def test_a_kernel_that_does_not_compile_is_a_failure_not_a_skip(tmp_path):
    # tl.arange needs a power-of-two length: BLOCK=100 compiles nowhere; BLOCK=128 does.
    def launch(block):
        tensor = ["tensor", "int32", True]
        return {"module": "diffrend.raster.triton_shared_kernels",
                "kernel": "tile_entries_kernel",
                "args": [["tensor", "int64", True]] + [tensor] * 7
                        + [["value", 1000], ["value", 4], ["value", 4]],
                "kwargs": {"TILE": ["value", 8], "BLOCK": ["value", block],
                           "enable_fp_fusion": ["value", False]}}
    launches, out = tmp_path / "launches.json", tmp_path / "out.json"
    launches.write_text(json.dumps([launch(100), launch(128)]))
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-m", "diffrend.bench.triton_compile", "--phase",
                           "compile", "--arch", "90", "--launches", str(launches), "--json",
                           str(out)], capture_output=True, text=True, env=env, timeout=600)
    if done.returncode == triton_compile.UNSUPPORTED:
        pytest.skip(f"this Triton cannot compile without a GPU: {done.stderr[-500:]}")
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert len(result["failures"]) == 1
    assert result["failures"][0].startswith("tile_entries_kernel")
    assert "BLOCK': ['value', 100]" in result["failures"][0]
    assert [r["constexprs"]["BLOCK"] for r in result["rows"]] == [128]


def test_launch_specialisation_round_trip():
    import torch

    t = torch.zeros(8, dtype=torch.float64)
    assert triton_compile._spec(t) == ["tensor", "float64", True]
    assert triton_compile._spec(t[1:]) == ["tensor", "float64", False]
    for spec in (["tensor", "int32", True], ["tensor", "float32", False]):
        assert triton_compile._spec(triton_compile._unspec(spec)) == spec
    assert triton_compile._spec(7) == ["value", 7]
    with pytest.raises(TypeError, match="list"):
        triton_compile._spec([1])


def test_arch_must_be_a_compute_capability():
    with pytest.raises(SystemExit):
        triton_compile.main(["--arch", "9"])
