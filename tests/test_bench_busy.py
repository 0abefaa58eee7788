"""The busy mode of ``diffrend bench``: spinning processes for the block, gone after it."""

from __future__ import annotations

import pytest

from diffrend.bench.busy import busy_cores
from diffrend.bench.raster_bench import Case, run_benchmarks


def test_busy_cores_run_for_the_block_only() -> None:
    with busy_cores(2) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)  # spinning
    assert all(p.poll() is not None for p in procs)


def test_busy_cores_are_killed_on_error() -> None:
    with pytest.raises(RuntimeError, match="boom"), busy_cores(1) as procs:
        raise RuntimeError("boom")
    assert procs[0].poll() is not None


def test_busy_cores_refuses_zero() -> None:
    with pytest.raises(ValueError, match="n must be >= 1"), busy_cores(0):
        pass


def test_busy_benchmark_times_a_case(monkeypatch: pytest.MonkeyPatch) -> None:
    import diffrend.bench.raster_bench as rb

    monkeypatch.setattr(rb, "QUICK", (Case("cow 32^2 K=1 fwd", "cow", 32),))
    lines: list[str] = []
    rows = run_benchmarks(quick=True, repeats=1, llvmpipe=False, echo=lines.append, busy=True)
    assert lines[0].startswith("busy mode:") and "spinning" in lines[0]
    assert len(rows) == 1 and rows[0]["diffrend_ms"] > 0 and rows[0]["peak_mb"] is None
