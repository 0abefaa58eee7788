"""Compile the Triton kernels for a CUDA GPU without one, and report their registers.

The tests run the Triton kernels in Triton's interpreter, which executes their Python source
and never compiles it: an error only the compiler sees (types it cannot unify, an op it does
not lower, a block too large) would first show on a user's GPU. This check compiles, for a
CUDA architecture (default sm_90, the H100), every kernel specialisation that the
benchmark's paths launch (:mod:`.small_paths`, plus float64 and deterministic variants),
with no GPU and no CUDA toolkit (Triton ships ptxas), and prints what the cubin needs per
thread: registers, stack (local memory, where spilled registers go) and shared memory.
It cannot run the compiled code: a wrong result on the GPU is not caught here.

Two child processes do the work: one runs the paths in the interpreter on small scenes and
records each launch's specialisation (argument dtypes, 16-byte alignment, integers,
constexprs and options); the other, without the interpreter, compiles each of them through
Triton's own ``JITFunction.warmup`` for the target. Triton's internals differ between
releases: where this Triton cannot be driven that way the command exits with status 3.

Run: ``python -m diffrend.bench.triton_compile [--arch 90] [--json rows.json]``
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNSUPPORTED = 3  # exit status: this Triton cannot compile without a GPU through its API
KERNELS = ("face_setup_kernel", "tile_entries_kernel", "raster_forward_kernel",
           "raster_backward_kernel", "point_setup_kernel", "points_forward_kernel",
           "points_backward_kernel")


def _spec(value) -> list:
    """What a launch argument contributes to Triton's specialisation, as JSON."""
    import torch

    if isinstance(value, torch.Tensor):
        return ["tensor", str(value.dtype).removeprefix("torch."), value.data_ptr() % 16 == 0]
    if value is None or isinstance(value, bool | int | float | str):
        return ["value", value]
    raise TypeError(f"unexpected launch argument of type {type(value).__name__}")


def _unspec(spec: list):
    """A stand-in argument with the recorded specialisation (tensors: 8 elements, their
    first element 16-byte aligned or, as recorded, not)."""
    import torch

    if spec[0] == "tensor":
        t = torch.zeros(8, dtype=getattr(torch, spec[1]))
        return t if spec[2] else t[1:]
    return spec[1]


def record(out: Path) -> None:
    """Child process 1 (``TRITON_INTERPRET=1``): run the small paths, write the launches."""
    if os.environ.get("TRITON_INTERPRET") != "1":
        raise SystemExit("record runs with TRITON_INTERPRET=1 (main() sets it)")
    try:
        from triton.runtime import interpreter

        interpreted_run = interpreter.InterpretedFunction.run
    except (ImportError, AttributeError) as e:
        print(f"this Triton's interpreter cannot be recorded: {e!r}", file=sys.stderr)
        raise SystemExit(UNSUPPORTED) from e
    from .small_paths import PATHS, VARIANTS, small_call

    seen: dict[str, dict] = {}

    def recording(self, *args, grid, warmup, **kwargs):
        if not warmup:
            launch = {"module": self.fn.__module__, "kernel": self.fn.__name__,
                      "args": [_spec(a) for a in args],
                      "kwargs": {k: _spec(v) for k, v in kwargs.items()}}
            seen.setdefault(json.dumps(launch, sort_keys=True), launch)
        return interpreted_run(self, *args, grid=grid, warmup=warmup, **kwargs)

    interpreter.InterpretedFunction.run = recording
    for name in PATHS + VARIANTS:
        small_call(name, "cpu")()
    out.write_text(json.dumps(list(seen.values())))


def _use_target(arch: int) -> None:
    """Make Triton compile for ``sm_<arch>`` with no GPU: a driver that names the target."""
    import torch
    from triton.backends.compiler import GPUTarget
    from triton.backends.driver import DriverBase
    from triton.runtime.driver import driver

    class TargetOnly(DriverBase):
        @classmethod
        def is_active(cls):
            return False

        def get_current_target(self):
            return GPUTarget("cuda", arch, 32)

        def get_current_device(self):
            return 0

        def get_current_stream(self, device=None):
            return 0

        def get_active_torch_device(self):
            return torch.device("cpu")

        def get_device_interface(self):
            return None

        def get_benchmarker(self):
            return None

        def map_python_to_cpp_type(self, ty):
            return ty

    driver.set_active(TargetOnly())


def _resources(cubin: bytes) -> dict:
    """Registers, stack and shared bytes per the cubin (``cuobjdump -res-usage``; Triton
    ships it), or {} where the tool is missing."""
    import triton

    try:
        tool = triton.knobs.nvidia.cuobjdump.path
    except AttributeError:
        tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin",
                            "cuobjdump")
    if not tool or not os.path.exists(tool):
        return {}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([tool, "-res-usage", f.name], capture_output=True,
                              text=True).stdout
    found = {k: re.search(rf"\b{k}:(\d+)", text) for k in ("REG", "STACK", "SHARED")}
    return {k.lower(): int(m.group(1)) for k, m in found.items() if m}


def compile_launches(launches: list[dict], arch: int) -> tuple[list[dict], list[str]]:
    """Child process 2 (no interpreter): compile each recorded launch for ``sm_<arch>``.

    Returns:
        rows: one per distinct compiled kernel: kernel, dtype (of its first float tensor),
            constexprs/options, registers, stack and shared bytes, seconds to compile.
        failures: one message per launch that did not compile.
    """
    import torch
    import triton

    from ..raster.mesh import triton_kernels
    from ._triton_probe import probe_kernel

    if not isinstance(triton_kernels.raster_forward_kernel, triton.runtime.JITFunction):
        raise SystemExit("compile runs without TRITON_INTERPRET (main() clears it)")
    try:  # a trivial kernel first: failing here means this Triton, not diffrend's kernels
        _use_target(arch)
        x = torch.zeros(8)
        probe_kernel.warmup(x, x, 8, BLOCK=8, grid=(1,)).asm["cubin"]
    except Exception as e:  # noqa: BLE001
        print(f"this Triton ({triton.__version__}) cannot compile without a GPU through "
              f"its API: {type(e).__name__}: {e}", file=sys.stderr)
        raise SystemExit(UNSUPPORTED) from e
    rows: dict[int, dict] = {}
    failures = []
    for launch in launches:
        fn = getattr(importlib.import_module(launch["module"]), launch["kernel"])
        args = [_unspec(a) for a in launch["args"]]
        kwargs = {k: _unspec(v) for k, v in launch["kwargs"].items()}
        t0 = time.perf_counter()
        try:
            compiled = fn.warmup(*args, grid=(1,), **kwargs)
        except Exception as e:  # noqa: BLE001  (every compile error is reported, named)
            failures.append(f"{launch['kernel']} {launch['kwargs']}: {type(e).__name__}: "
                            f"{str(e)[-1500:]}")
            continue
        if id(compiled) in rows:
            continue
        floats = [a[1] for a in launch["args"] if a[0] == "tensor" and "float" in a[1]]
        rows[id(compiled)] = {
            "kernel": launch["kernel"], "dtype": floats[0] if floats else "-",
            "constexprs": {k: v[1] for k, v in launch["kwargs"].items()},
            "seconds": round(time.perf_counter() - t0, 2),
            **_resources(compiled.asm["cubin"]),
        }
    return list(rows.values()), failures


def _span(values: list) -> str:
    """'a' or 'a-b' over known values; '?' where cuobjdump was missing."""
    known = [v for v in values if v is not None]
    if not known:
        return "?"
    lo, hi = min(known), max(known)
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _child(phase: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diffrend.bench.triton_compile", "--phase",
                           phase, *args], env=env, capture_output=True, text=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90,
                        help="CUDA compute capability x 10 (90: H100, 80: A100, 89: L4)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--phase", choices=("record", "compile"), help=argparse.SUPPRESS)
    parser.add_argument("--launches", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.arch < 50:
        parser.error(f"--arch must be a CUDA compute capability x 10 (>= 50), got {args.arch}")
    if args.phase == "record":
        record(args.json)
        return 0
    if args.phase == "compile":
        rows, failures = compile_launches(json.loads(args.launches.read_text()), args.arch)
        args.json.write_text(json.dumps({"rows": rows, "failures": failures}))
        return 0
    try:
        import triton
    except ImportError:
        print("triton is not installed (pip install 'diffrend[triton]')", file=sys.stderr)
        return UNSUPPORTED
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        launches, result = Path(tmp, "launches.json"), Path(tmp, "result.json")
        env = dict(os.environ, TRITON_INTERPRET="1")
        print("running the small paths in Triton's interpreter to record the launches ...",
              file=sys.stderr, flush=True)
        done = _child("record", env, "--json", str(launches))
        if done.returncode:
            print(done.stdout + done.stderr, file=sys.stderr)
            return done.returncode
        env.pop("TRITON_INTERPRET")
        print(f"compiling {len(json.loads(launches.read_text()))} launches for "
              f"sm_{args.arch} ...", file=sys.stderr, flush=True)
        done = _child("compile", env, "--arch", str(args.arch), "--launches", str(launches),
                      "--json", str(result))
        if done.returncode:
            print(done.stdout + done.stderr, file=sys.stderr)
            return done.returncode
        n_launches = len(json.loads(launches.read_text()))
        out = json.loads(result.read_text())
    rows, failures = out["rows"], out["failures"]
    print(f"triton {triton.__version__}: {n_launches} distinct launches of the small paths "
          f"-> {len(rows)} kernels compiled for sm_{args.arch}, {len(failures)} failed "
          f"({time.perf_counter() - t0:.0f} s)\n")
    print("| kernel | dtype | constexprs / options | variants | registers | stack bytes |")
    print("|---|---|---|---:|---:|---:|")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:  # variants: the same constexprs, other integer / alignment specialisations
        consts = ", ".join(f"{k}={v}" for k, v in r["constexprs"].items())
        groups.setdefault((r["kernel"], r["dtype"], consts), []).append(r)
    order = {k: i for i, k in enumerate(KERNELS)}
    for (kernel, dtype, consts), rs in sorted(groups.items(),
                                              key=lambda g: (order.get(g[0][0], 99), g[0][1:])):
        regs, stack = (_span([r.get(k) for r in rs]) for k in ("reg", "stack"))
        print(f"| {kernel} | {dtype} | {consts} | {len(rs)} | {regs} | {stack} |")
    for f in failures:
        print(f"\nFAILED: {f}")
    if args.json:
        args.json.write_text(json.dumps({"triton": triton.__version__, "arch": args.arch,
                                         "rows": rows, "failures": failures}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
