"""The Gaussian cases of `diffrend bench`: the scene, and a quick run's table."""

import math

import torch

from diffrend.bench.splat_bench import SplatCase, run_splat_benchmarks, scene


def test_scene_is_seeded_and_valid():
    a, b = scene(500, 2, 64), scene(500, 2, 64)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["colors"].shape == (500, 9, 3) and (a["scales"] > 0).all()
    assert ((a["opacities"] >= 0.3) & (a["opacities"] <= 0.9)).all()
    assert a["viewmats"].shape == (1, 4, 4) and a["Ks"].shape == (1, 3, 3)


def test_quick_table(monkeypatch):
    import diffrend.bench.splat_bench as sb

    monkeypatch.setattr(sb, "QUICK", (SplatCase("tiny", 2000, 48, twin=True),))
    lines = []
    rows = run_splat_benchmarks(quick=True, repeats=1, echo=lines.append)
    assert len(rows) == 1 and lines[0].startswith("| Gaussian case")
    row = rows[0]
    assert math.isfinite(row["numba_ms"]) and row["numba_ms"] > 0
    assert math.isfinite(row["twin_ms"]) and row["twin_ratio"] > 0
    assert lines[-1].startswith("| tiny |")
