"""The benchmark's timing helpers (raster_bench): interleaved calls and medians."""

from __future__ import annotations

import time

from diffrend.bench.raster_bench import _paired_median_ms


def test_paired_calls_alternate_and_give_each_median() -> None:
    calls: list[str] = []

    def fast() -> None:
        calls.append("a")

    def slow() -> None:
        calls.append("b")
        time.sleep(0.002)

    a_ms, b_ms = _paired_median_ms([fast, slow], repeats=5, warmup=1)
    # one warm-up round, then five timed rounds, each calling both in order
    assert calls == ["a", "b"] * 6
    assert b_ms >= 2.0 > a_ms >= 0.0
