"""``diffrend fit --nproc N`` and ``--max-restarts``: the command relaunches itself under
torchrun, rank 0 alone writes; the library side is tests/test_fit_distributed.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from dist_env import failure, worker_env

ROOT = Path(__file__).resolve().parents[1]


def test_cli_nproc_two_ranks_rank_zero_writes(tmp_path: Path) -> None:
    out = tmp_path / "fit"
    proc = subprocess.run(
        [sys.executable, "-m", "diffrend", "fit", "--iters", "6", "--image-size", "32",
         "--views", "6", "--heldout", "2", "--remesh-every", "2", "--nproc", "2", "-o",
         str(out)], cwd=ROOT, env=worker_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, failure(proc)
    text = proc.stdout + proc.stderr
    assert text.count("wrote ") == 1 and text.count("6 steps in") == 1  # rank 0 only
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["heldout_iou_mean"] > 0.5
    assert metrics["processes"] == 2
    assert "compiling" not in proc.stderr or proc.stderr.count("compiling") == 1  # rank 0
    assert (out / "mesh.obj").stat().st_size > 0


def test_cli_max_restarts_needs_nproc(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from diffrend.cli import main

    result = CliRunner().invoke(main, ["fit", "--max-restarts", "1", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "--max-restarts needs --nproc" in result.output


def test_cli_nproc_above_views_per_step_is_refused(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from diffrend.cli import main

    result = CliRunner().invoke(main, ["fit", "--nproc", "6", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "at most 5 (--views-per-step)" in result.output
    result = CliRunner().invoke(main, ["fit", "--nproc", "6", "--views-per-step", "4", "-o",
                                       str(tmp_path)])
    assert result.exit_code == 2 and "at most 4 (--views-per-step)" in result.output


def test_cli_nproc_bad_init_is_said_once(tmp_path: Path) -> None:
    # checked before the processes start: one message, click's exit code
    bad = tmp_path / "bad.obj"
    bad.write_text("garbage\n")
    proc = subprocess.run(
        [sys.executable, "-m", "diffrend", "fit", "--nproc", "2", "--init", str(bad), "-o",
         str(tmp_path / "out")], cwd=ROOT, env=worker_env(), capture_output=True, text=True,
        timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("Invalid value for --init") == 1
    assert not (tmp_path / "out").exists()


def test_cli_nproc_failure_is_one_report(tmp_path: Path) -> None:
    # every rank fails on the bad --data: the message once, a one-line report, no torchrun
    # traceback, and the exit code of the failure (which rank exits first is timing: rank 1
    # may, and torchrun then stops rank 0, whose message may or may not be out by then)
    bad = tmp_path / "views.json"
    bad.write_text("not json")
    proc = subprocess.run(
        [sys.executable, "-m", "diffrend", "fit", "--nproc", "2", "--data", str(bad), "-o",
         str(tmp_path / "out")], cwd=ROOT, env=worker_env(), capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.count("cannot read JSON") == 1
    assert re.search(r"process [01] of 2 failed \(exit code 1\)", proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr and "OMP_NUM_THREADS" not in proc.stderr


def test_strip_launch_options() -> None:
    from diffrend.cli.launch import strip_launch_options

    argv = ["fit", "--nproc", "2", "--max-restarts=3", "--iters", "5", "--nproc=4", "-o", "x"]
    assert strip_launch_options(argv) == ["fit", "--iters", "5", "-o", "x"]


def _failure(exitcode: int, message: str | None = None) -> SimpleNamespace:
    """What :func:`reported_failure` and :func:`shown_by_rank0` read of torchrun's
    ProcessFailure."""
    return SimpleNamespace(exitcode=exitcode,
                           error_file_data={} if message is None else {"message": message})


def test_rank_zero_failure_is_the_one_reported() -> None:
    # when every rank fails, rank 0's (already on the console) is reported even if another
    # rank failed a moment earlier: its log would repeat the same message
    from diffrend.cli.launch import reported_failure

    assert reported_failure({1: _failure(1), 0: _failure(1)}, first=1) == 0
    assert reported_failure({1: _failure(1), 2: _failure(2)}, first=2) == 2
    assert reported_failure({0: _failure(2)}, first=0) == 0
    # rank 0 stopped by torchrun (SIGTERM) after rank 1 failed: rank 1 is the cause
    assert reported_failure({0: _failure(-15), 1: _failure(1)}, first=1) == 1
    assert reported_failure({0: _failure(-15), 1: _failure(1)}, first=0) == 1
    # a rank killed by another signal (the OOM killer's SIGKILL) failed on its own
    assert reported_failure({0: _failure(-15), 2: _failure(-9)}, first=0) == 2
    assert reported_failure({0: _failure(-15), 1: _failure(-15)}, first=1) == 1


def test_lines_rank0_showed_are_not_repeated() -> None:
    from diffrend.cli.launch import shown_by_rank0

    assert shown_by_rank0({0: _failure(-15, "Error: x.json: cannot read JSON\n")}) == {
        "Error: x.json: cannot read JSON"}
    assert shown_by_rank0({0: _failure(-15)}) == set()
    assert shown_by_rank0({1: _failure(1, "Error: y")}) == set()


@pytest.mark.parametrize(("data", "code"), [("none.json", 2), ("views.json", 1)])
def test_worker_records_the_error_it_showed(tmp_path: Path, data: str, code: int) -> None:
    # under torchrun a command's error (a usage error, with its usage lines, or a job's)
    # goes to the console and then, the same text, to the error file
    (tmp_path / "views.json").write_text("not json")
    error_file = tmp_path / "error.json"
    proc = subprocess.run(
        [sys.executable, "-m", "diffrend", "fit", "--data", str(tmp_path / data), "-o",
         str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**worker_env(), "TORCHELASTIC_ERROR_FILE": str(error_file)})
    assert proc.returncode == code, proc.stderr[-3000:]
    recorded = json.loads(error_file.read_text())["message"]
    assert "Error: " in recorded and data in recorded
    assert recorded == proc.stderr
