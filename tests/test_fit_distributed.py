"""Distributed ``fit_mesh`` (torch.distributed, gloo on the CPU): two ranks give a
one-process run's mesh, checkpoints resume across world sizes, and the collectives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from dist_env import failure, worker_env

from diffrend.jobs.distributed import DistContext
from diffrend.jobs.fit_mesh import fit_mesh

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("dist_fit_worker.py")

# Two ranks sum each step's gradients, image errors and losses in another order than one
# process: float32 rounding, about 1e-7 of the object's size per step (measured: 2.4e-7
# on a 1.9-unit cow after 10 steps and 4 remeshes). 1e-5 of the size leaves room for that
# to grow over the steps, and is still far below one pixel (1/16 of the object here).
REL_TOL = 1e-5


def _worker(out: Path, ranks: int, *extra: str, restarts: int = 0) -> dict:
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={ranks}", f"--max-restarts={restarts}"]
              if ranks > 1 else [sys.executable])
    try:
        proc = subprocess.run([*launch, str(WORKER), str(out), *extra], cwd=ROOT, env=worker_env(),
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as e:  # a hang: show what the processes said
        said = [(s.decode(errors="replace") if isinstance(s, bytes) else s or "")
                for s in (e.stdout, e.stderr)]
        pytest.fail(f"timed out after 300 s:\n{said[0][-2000:]}\n{said[1][-6000:]}")
    assert proc.returncode == 0, failure(proc, 6000)
    return torch.load(out)


@pytest.fixture(scope="module")
def one_rank(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _worker(tmp_path_factory.mktemp("one") / "one.pt", 1)


def _assert_same_fit(a: dict, b: dict) -> None:
    assert a["remeshes"] == b["remeshes"] > 0  # the remesh path ran, identically
    assert torch.equal(a["faces"], b["faces"])
    size = float((a["verts"].amax(0) - a["verts"].amin(0)).max())
    torch.testing.assert_close(b["verts"], a["verts"], rtol=0, atol=REL_TOL * size)
    for ra, rb in zip(a["history"], b["history"], strict=True):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert rb[k] == pytest.approx(ra[k], rel=1e-4, abs=1e-7)


def test_two_ranks_match_one(one_rank: dict, tmp_path: Path) -> None:
    two = _worker(tmp_path / "two.pt", 2)
    assert (one_rank["world"], two["world"]) == (1, 2)
    assert len(two["history"]) == len(one_rank["history"]) == 10
    _assert_same_fit(one_rank, two)
    # The group's worker threads end with it (a group kept alive, as torch's
    # distributed.nn.functional does when first imported inside it, left them running into
    # interpreter exit, where about 3% of launches aborted).
    assert two["gloo_threads_after"] in (0, None)


def test_resume_on_another_world_size(one_rank: dict, tmp_path: Path) -> None:
    # Two ranks stop (the callback, agreed by both) after 4 steps; one process resumes
    # their checkpoint: the views of each step are re-shared, the maths are the same.
    ck = tmp_path / "checkpoint.pt"
    part = _worker(tmp_path / "part.pt", 2, "--checkpoint", str(ck), "--stop-after", "4")
    assert (part["steps"], part["stopped"]) == (4, "callback")
    assert torch.load(ck, weights_only=False)["step"] == 4
    rest = _worker(tmp_path / "rest.pt", 1, "--checkpoint", str(ck))
    assert (rest["steps"], rest["stopped"]) == (10, None)
    _assert_same_fit(one_rank, rest)


def test_killed_rank_restarts_and_finishes_the_same(one_rank: dict, tmp_path: Path) -> None:
    # Rank 1 is SIGKILLed after step 6; torchrun (--max-restarts 1) restarts both ranks,
    # which resume from rank 0's last checkpoint (written atomically every step).
    ck = tmp_path / "checkpoint.pt"
    out = _worker(tmp_path / "out.pt", 2, "--checkpoint", str(ck), "--kill-at", "6",
                  restarts=1)
    assert out["first_try"] is False  # the result is the restarted group's
    assert (out["steps"], out["stopped"]) == (10, None)
    _assert_same_fit(one_rank, out)


def test_views_per_step_below_world_size_is_refused() -> None:
    from dist_fit_worker import SETTINGS  # noqa: I001 - tests/ is on sys.path under pytest

    from dataclasses import replace

    from diffrend.cli.mesh_job import prepare_inputs

    data = prepare_inputs(None, None, views=4, heldout=0, image_size=16).train
    ctx = DistContext(rank=0, world_size=8)
    with pytest.raises(ValueError, match="views_per_step"):
        fit_mesh(data, settings=replace(SETTINGS, views_per_step=4), dist=ctx, progress=False)
    with pytest.raises(ValueError, match=r"data has 4 views, fewer than the number of processes"):
        fit_mesh(data, settings=replace(SETTINGS, views_per_step=8), dist=ctx, progress=False)


def test_sum_tensors_is_identity_alone() -> None:
    a, b = torch.ones(3), torch.zeros(2, 2, dtype=torch.float64)
    DistContext().sum_tensors_([a, b])
    assert torch.equal(a, torch.ones(3)) and torch.equal(b, torch.zeros(2, 2, dtype=torch.float64))
