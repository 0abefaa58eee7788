"""Distributed ``fit_texture`` and ``fit_points`` (torch.distributed, gloo on the CPU): two
ranks give a one-process run's texture and cloud and hold the same bits, a two-rank
checkpoint resumes on one process, views_per_step below the world size is refused; and
``diffrend fit-points --nproc 2`` (rank 0 alone writes). The worker is
tests/dist_tp_worker.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from dist_env import failure, worker_env

from diffrend.jobs.distributed import DistContext
from diffrend.jobs.fit_points import fit_points
from diffrend.jobs.fit_texture import fit_texture

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("dist_tp_worker.py")

# Two ranks sum each step's gradients and losses in another order than one process: float32
# rounding (measured after 8 steps: texels and colours 1.2e-7 apart, points 6e-8 of a
# 2-unit cow, losses 2e-7 relative). 1e-5 leaves room for that to grow over the steps and
# is still far below a colour level (1/255) or a pixel (1/16 of the object here).
TOL = 1e-5


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path]:
    """(one process's results, two ranks' results, the two ranks' checkpoint folder)."""
    from dist_tp_worker import fits  # tests/ is on sys.path under pytest

    tmp = tmp_path_factory.mktemp("tp")
    ck2, ck1 = tmp / "ck2", tmp / "ck1"
    ck2.mkdir()
    ck1.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         str(WORKER), str(tmp / "two.pt"), str(ck2)],
        cwd=ROOT, env=worker_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, failure(proc)
    two = torch.load(tmp / "two.pt", weights_only=False)
    one = fits(DistContext(), ck1)
    return one, two, ck2


def _assert_same_history(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for ra, rb in zip(a, b, strict=True):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert rb[k] == pytest.approx(ra[k], rel=TOL, abs=1e-9)


def _assert_same_cloud(a: dict, b: dict) -> None:
    size = float((a["points"].amax(0) - a["points"].amin(0)).max())
    assert a["points"].shape == b["points"].shape
    torch.testing.assert_close(b["points"], a["points"], rtol=0, atol=TOL * size)
    torch.testing.assert_close(b["colors"], a["colors"], rtol=0, atol=TOL)


def test_texture_two_ranks_match_one(runs: tuple[dict, dict, Path]) -> None:
    one, two, _ = runs
    assert (one["world"], two["world"]) == (1, 2)
    assert two["digests"][0][0] == two["digests"][1][0]  # both ranks hold the same texture
    torch.testing.assert_close(two["texture"], one["texture"], rtol=0, atol=TOL)
    assert torch.equal(two["observed"], one["observed"]) and bool(one["observed"].any())
    _assert_same_history(one["texture_history"], two["texture_history"])
    assert two["texture_frames"] == one["texture_frames"] == 2  # rank 0's snapshots


def test_points_two_ranks_match_one(runs: tuple[dict, dict, Path]) -> None:
    one, two, _ = runs
    assert two["digests"][0][1] == two["digests"][1][1]  # both ranks hold the same cloud
    _assert_same_cloud(one, two)
    _assert_same_history(one["points_history"], two["points_history"])
    assert two["points_frames"] == one["points_frames"] == 2


def test_points_two_rank_checkpoint_resumes_on_one(runs: tuple[dict, dict, Path]) -> None:
    # Two ranks stopped (by the callback, agreed by both) after 4 steps; one process resumes
    # rank 0's checkpoint: the rest of each step's views are its own, the maths the same.
    from dist_tp_worker import POINTS, SEED, STOP_AFTER, points_inputs

    one, two, ck2 = runs
    assert (two["part_steps"], two["part_stopped"]) == (STOP_AFTER, "callback")
    ck = ck2 / "points.pt"
    assert torch.load(ck, weights_only=False)["step"] == STOP_AFTER
    rest = fit_points(points_inputs().train, POINTS, seed=SEED, progress=False,
                      checkpoint=ck, resume=True)
    assert (rest.steps, rest.stopped) == (POINTS.iters, None)
    _assert_same_cloud(one, {"points": rest.points, "colors": rest.colors})
    _assert_same_history(one["points_history"], rest.history)


def test_views_per_step_below_world_size_is_refused() -> None:
    from dataclasses import replace

    from dist_tp_worker import POINTS, TEXTURE, points_inputs, texture_inputs

    ctx = DistContext(rank=0, world_size=8)
    views = texture_inputs()
    with pytest.raises(ValueError, match=r"views_per_step \(3\) must be at least the number "
                       r"of processes \(8\)"):
        fit_texture(views.train, views.target, TEXTURE, dist=ctx, progress=False)
    with pytest.raises(ValueError, match=r"views_per_step \(3\) must be at least the number "
                       r"of processes \(8\)"):
        fit_points(points_inputs().train, POINTS, dist=ctx, progress=False)
    # enough views per step, but fewer views (6) than processes: a rank would render none
    with pytest.raises(ValueError, match=r"data has 6 views, fewer than the number of "
                       r"processes \(8\)"):
        fit_texture(views.train, views.target, replace(TEXTURE, views_per_step=8), dist=ctx,
                    progress=False)


@pytest.mark.parametrize(("command", "most"), [("texture", 5), ("fit-points", 4)])
def test_cli_nproc_above_views_per_step_is_refused(tmp_path: Path, command: str,
                                                   most: int) -> None:
    from diffrend.cli import main

    result = CliRunner().invoke(main, [command, "--nproc", str(most + 1), "-o",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2 and f"at most {most}" in result.output
    assert not (tmp_path / "out").exists()


def test_cli_fit_points_nproc_two_rank_zero_writes(tmp_path: Path) -> None:
    out = tmp_path / "fp"
    proc = subprocess.run(
        [sys.executable, "-m", "diffrend", "fit-points", "--iters", "4", "--points", "500",
         "--image-size", "32", "--views", "4", "--heldout", "2", "--nproc", "2", "-o",
         str(out)], cwd=ROOT, env=worker_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, failure(proc)
    text = proc.stdout + proc.stderr
    assert text.count("wrote ") == 1 and text.count("4 steps in") == 1  # rank 0 only
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["steps"] == 4
    assert metrics["heldout_iou_mean"] > 0.3
    assert (out / "points.ply").stat().st_size > 0
