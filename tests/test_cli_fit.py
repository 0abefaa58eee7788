"""`diffrend fit`: outputs, resume, data folders, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from diffrend.cli import main
from diffrend.io import load_mesh, save_views
from diffrend.jobs import render_target_views, sphere_cameras
from diffrend.jobs.preview import load_for_render

TINY = ["--iters", "12", "--image-size", "32", "--views", "6", "--heldout", "3"]


def test_fit_writes_every_output(tmp_path):
    out = tmp_path / "fit"
    result = CliRunner().invoke(main, ["fit", "-o", str(out), *TINY])
    assert result.exit_code == 0, result.output
    for name in ("mesh.obj", "mesh.ply", "progress.gif", "loss.png", "final.png",
                 "metrics.json", "index.html", "checkpoint.pt"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 12 and metrics["stopped"] is None
    assert metrics["heldout_views"] == 3 and 0 < metrics["heldout_iou_mean"] <= 1
    assert metrics["chamfer_normalized"] > 0
    # sample-to-surface: the same fit without the 10k-sample floor, so smaller
    assert 0 < metrics["chamfer_surface"] < metrics["chamfer_normalized"]
    mesh = load_mesh(out / "mesh.ply")
    assert mesh.verts_packed().shape[0] == metrics["verts"]
    assert Image.open(out / "progress.gif").n_frames > 3
    final = np.asarray(Image.open(out / "final.png"))
    assert final.shape == (64, 96, 3)  # 3 held-out views: targets over fits
    page = (out / "index.html").read_text()
    assert "heldout_iou_mean" in page and "progress.gif" in page and "loss.png" in page
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))  # nothing half-written


def test_fit_resume_continues_to_the_same_mesh(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert CliRunner().invoke(main, ["fit", "-o", str(a), *TINY]).exit_code == 0
    # b: a run stopped after 5 steps (its checkpoint says so), then resumed.
    from diffrend.cli.mesh_job import prepare_inputs
    from diffrend.jobs import FitMeshSettings, fit_mesh

    inputs = prepare_inputs(views=6, heldout=3, image_size=32)
    settings = FitMeshSettings().scaled(iters=12, image_size=32)
    b.mkdir()
    fit_mesh(inputs.train, settings=settings, checkpoint=b / "checkpoint.pt", progress=False,
             callback=lambda s: s.step == 5)
    (b / ".mesh.obj.x1y2z3w4.tmp").write_bytes(b"left by a killed run")
    result = CliRunner().invoke(main, ["fit", "-o", str(b), "--resume", *TINY])
    assert result.exit_code == 0, result.output
    assert (a / "mesh.obj").read_bytes() == (b / "mesh.obj").read_bytes()
    _ordinary_files_only(b)
    changed = CliRunner().invoke(main, ["fit", "-o", str(b), "--resume", "--seed", "4", *TINY])
    assert changed.exit_code != 0 and "different run" in changed.output


def _ordinary_files_only(folder: Path) -> None:
    """Every output has mode 0666 less the umask; no temporary or lock file is left."""
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert modes == {name: 0o666 & ~umask for name in modes}
    assert not [n for n in modes if n.startswith(".") or n.endswith(".tmp")], modes


def test_fit_killed_then_resumed_ends_where_an_uninterrupted_run_does(tmp_path):
    """SIGKILL mid-run (maybe mid-write), then --resume: the same mesh, ordinary files."""
    full, out = tmp_path / "full", tmp_path / "out"
    args = ["fit", "--iters", "30", "--image-size", "32", "--views", "4", "--heldout", "2",
            "--checkpoint-every", "1"]
    assert CliRunner().invoke(main, [*args, "-o", str(full)]).exit_code == 0
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "diffrend.cli", *args, "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait(30)
    assert (out / "checkpoint.pt").exists()
    (out / ".checkpoint.pt.k1ll3d00.tmp").write_bytes(b"half")  # as a kill mid-write leaves
    resumed = CliRunner().invoke(main, [*args, "-o", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert (out / "mesh.obj").read_bytes() == (full / "mesh.obj").read_bytes()
    _ordinary_files_only(out)


def test_fit_on_a_data_folder(tmp_path):
    cow = load_for_render(__import__("diffrend.io", fromlist=["x"]).default_mesh_path())
    views = render_target_views(cow, sphere_cameras(12), 32)
    save_views(views, tmp_path / "data")
    out = tmp_path / "fit"
    result = CliRunner().invoke(main, ["fit", "--data", str(tmp_path / "data"), "-o", str(out),
                                       "--iters", "9", "--image-size", "32"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["heldout_views"] == 1  # every tenth of 12 views
    assert "chamfer_normalized" not in metrics  # no target mesh to compare with


def test_fit_bad_input_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["fit", "-o", str(blocker / "sub"), *TINY])
    assert result.exit_code != 0 and "not writable" in result.output
    bad = tmp_path / "data"
    bad.mkdir()
    (bad / "transforms.json").write_text(json.dumps({"camera_angle_x": 0.7}))
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["fit", "--data", str(bad), "-o", str(out), *TINY])
    assert result.exit_code != 0 and "frames" in result.output
    assert not (out / "mesh.obj").exists()
    both = CliRunner().invoke(main, ["fit", "x.obj", "--data", str(bad), "-o", str(out)])
    assert both.exit_code != 0 and "not both" in both.output
    dev = CliRunner().invoke(main, ["fit", "--device", "nonsense", "-o", str(out)])
    assert dev.exit_code != 0 and "--device" in dev.output


def test_fit_empty_masks_are_a_clear_error(tmp_path):
    cow = load_for_render(__import__("diffrend.io", fromlist=["x"]).default_mesh_path())
    views = render_target_views(cow, sphere_cameras(3), 16)
    empty = type(views)(views.images, torch.zeros_like(views.masks), views.cameras, views.names)
    save_views(empty, tmp_path / "data")
    result = CliRunner().invoke(main, ["fit", "--data", str(tmp_path / "data"),
                                       "-o", str(tmp_path / "o"), *TINY])
    assert result.exit_code != 0 and "empty" in result.output


def test_pose_cli_writes_outputs(tmp_path):
    out = tmp_path / "pose"
    result = CliRunner().invoke(main, ["pose", "-o", str(out), "--image-size", "48",
                                       "--restarts", "4", "--min-deg", "20", "--max-deg", "30",
                                       "--evaluate", "1"])
    assert result.exit_code == 0, result.output
    for name in ("pose.png", "progress.gif", "restarts.png", "loss.png", "metrics.json",
                 "evaluation.json", "index.html"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert 20 <= metrics["start_error_deg"] <= 30
    assert metrics["rotation_error_deg"] < metrics["start_error_deg"]
    assert metrics["evaluation_trials"] == 1
    bad = CliRunner().invoke(main, ["pose", "--min-deg", "90", "--max-deg", "10"])
    assert bad.exit_code != 0 and "--min-deg" in bad.output


def test_fit_resolution_and_framing_options(tmp_path):
    """--edge-px sets the remeshed resolution, --remesh-every 0 turns remeshing off,
    --frame crops the rendered views to the object; bad values are usage errors."""
    faces = {}
    for name, extra in (("coarse", ["--edge-px", "4"]), ("fine", ["--edge-px", "1.5"]),
                        ("off", ["--remesh-every", "0"]), ("framed", ["--frame"])):
        out = tmp_path / name
        result = CliRunner().invoke(main, ["fit", "-o", str(out), *TINY, *extra])
        assert result.exit_code == 0, result.output
        metrics = json.loads((out / "metrics.json").read_text())
        faces[name] = metrics["faces"]
        assert metrics["remeshes"] == (0 if name == "off" else 3), (name, metrics)
    assert faces["fine"] > 2 * faces["coarse"], faces
    for bad in (["--edge-px", "0"], ["--remesh-every", "-1"]):
        result = CliRunner().invoke(main, ["fit", "-o", str(tmp_path / "bad"), *TINY, *bad])
        assert result.exit_code == 2 and bad[0] in result.output, result.output


def test_fit_w_rgb_reaches_the_fit(tmp_path):
    """--w-rgb defaults to FitMeshSettings' weight and changes the fit; 0 is refused."""
    from diffrend.jobs import FitMeshSettings

    option = next(p for p in main.commands["fit"].params if p.name == "w_rgb")
    assert option.default == FitMeshSettings().w_rgb
    meshes = {}
    for name, extra in (("default", []), ("w1", ["--w-rgb", "1"])):
        out = tmp_path / name
        result = CliRunner().invoke(main, ["fit", "-o", str(out), *TINY, *extra])
        assert result.exit_code == 0, result.output
        meshes[name] = load_mesh(out / "mesh.ply").verts_packed()
    assert meshes["default"].shape != meshes["w1"].shape or not torch.equal(
        meshes["default"], meshes["w1"])
    result = CliRunner().invoke(main, ["fit", "-o", str(tmp_path / "bad"), *TINY,
                                       "--w-rgb", "0"])
    assert result.exit_code == 2 and "--w-rgb" in result.output, result.output
