"""The cost model of ``diffrend bench --distributed`` (diffrend.bench.dist_bench) and its
worker process; the timings themselves are the benchmark's, not the tests'."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from diffrend.bench.dist_bench import StepModel, fit_model, ring_allreduce_ms, speedup_table

ROOT = Path(__file__).resolve().parents[1]


def test_fit_model_recovers_a_line() -> None:
    model = fit_model([1, 2, 3, 4, 5], [10 + 4 * v for v in range(1, 6)])
    assert model.fixed_ms == pytest.approx(10) and model.per_view_ms == pytest.approx(4)


def test_fit_model_needs_two_view_counts() -> None:
    with pytest.raises(ValueError, match="two different"):
        fit_model([3, 3], [1.0, 2.0])
    with pytest.raises(ValueError, match="two different"):
        fit_model([1, 2], [1.0])


def test_step_ms_shares_the_views() -> None:
    model = StepModel(fixed_ms=10.0, per_view_ms=4.0)
    assert model.step_ms(5, 1, allreduce_ms=99.0) == 30.0  # no all-reduce alone
    assert model.step_ms(5, 2, allreduce_ms=1.0) == 10.0 + 4.0 * 3 + 1.0  # ceil(5 / 2) = 3
    with pytest.raises(ValueError, match="ranks"):
        model.step_ms(5, 0)


def test_ring_allreduce() -> None:
    assert ring_allreduce_ms(1e6, 1) == 0.0
    # 2 (N-1)/N * bytes / bandwidth + 2 (N-1) * latency
    expected = 1000 * (2 * 7 / 8 * 1.2e6 / 150e9 + 14 * 10e-6)
    assert ring_allreduce_ms(1.2e6, 8) == pytest.approx(expected)


def test_speedup_table_is_amdahl() -> None:
    rows = speedup_table([0.0, 4.0], views=8, ranks=(1, 2, 4, 8), nbytes=0.0)
    free, bound = rows
    assert free[1] == 1.0
    # with no fixed cost the speedup is N, less the all-reduce's latency (b = 1 ms)
    for n in (2, 4, 8):
        assert free[n] == pytest.approx(8 / (8 / n + ring_allreduce_ms(0.0, n)))
        assert free[n] < n
    # a = 4b: T(1) = 12, T(8) = 5 + latency
    assert bound[8] == pytest.approx(12 / (5 + ring_allreduce_ms(0.0, 8)))
    assert bound[2] < bound[4] < bound[8] < free[8]


def test_worker_times_a_one_process_fit(tmp_path: Path) -> None:
    out = tmp_path / "fit.json"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "diffrend.bench.dist_worker", "fit", str(out),
                           "--steps", "4", "--views-per-step", "2", "--image-size", "16"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["world"] == 1 and len(result["step_ms"]) == 4
    assert all(t > 0 and math.isfinite(t) for t in result["step_ms"])
    assert result["buffer_numel"] == 7 * result["verts"][-1] + 6
