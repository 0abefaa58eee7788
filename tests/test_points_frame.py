"""Real objects: `fit-points --frame`, `--max-side` on --data, and the sphere start placed
on an off-centre object from the silhouettes (issue 19)."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from diffrend.cameras import PerspectiveCameras
from diffrend.cli import main, mesh_job
from diffrend.cli.mesh_job import prepare_inputs
from diffrend.cli.points_job import prepare_points_inputs
from diffrend.io import load_points_ply, load_views, save_views
from diffrend.io.shapes import load_shape
from diffrend.jobs import FitMeshSettings, render_target_views, sphere_cameras
from diffrend.jobs.fit_mesh import initial_mesh
from diffrend.jobs.framing import object_sphere
from diffrend.jobs.metrics import heldout_iou
from diffrend.jobs.views import cameras_focus
from diffrend.structures import ico_sphere

CENTRE = torch.tensor([0.5, 0.3, 0.0])  # the small torus, off the cameras' focus (the origin)
TINY = ["--iters", "4", "--points", "600", "--image-size", "32"]


@pytest.fixture(scope="module")
def off_centre(tmp_path_factory):
    """A folder of 96 x 96 views of a torus of outer radius 0.3 centred at CENTRE."""
    m = load_shape("torus")
    torus = m.update_padded(m.verts_padded() * 0.3 + CENTRE)
    folder = tmp_path_factory.mktemp("off_centre")
    save_views(render_target_views(torus, sphere_cameras(12), 96), folder)
    return folder


def test_sphere_start_sits_on_an_off_centre_object(off_centre):
    inputs = prepare_inputs(data=off_centre, image_size=32)
    focus, dist = cameras_focus(inputs.train.cameras)
    assert float((focus - CENTRE).norm()) > 0.5  # the optical axes meet far from it
    sphere = initial_mesh(inputs.train, FitMeshSettings(init="sphere", init_level=2))
    verts = sphere.verts_packed()
    centre = verts.mean(0)
    radius = float((verts - centre).norm(dim=1).max())
    torch.testing.assert_close(centre, CENTRE, atol=0.05, rtol=0)
    assert 0.2 < radius < 0.4, radius  # the object's size, not a quarter of 2.7
    # It lies on the object in every framed view; the start around the optical axes'
    # focus, radius dist / 4, fills the crops far past the torus.
    iou = heldout_iou(sphere, inputs.train.cameras, inputs.train.masks)
    ico = ico_sphere(2)
    old = ico.update_padded(ico.verts_padded() * 0.25 * dist + focus)
    old_iou = heldout_iou(old, inputs.train.cameras, inputs.train.masks)
    assert float(iou.min()) > 0.3, iou
    assert float(iou.mean()) > float(old_iou.mean()) + 0.2, (iou, old_iou)
    # init_radius still wins.
    small = initial_mesh(inputs.train, FitMeshSettings(init="sphere", init_radius=0.1))
    assert float((small.verts_packed() - CENTRE).norm(dim=1).max()) < 0.16


def test_fit_points_on_off_centre_data_with_max_side(off_centre, tmp_path, monkeypatch):
    seen = []

    def spy(*args, **kw):
        seen.append(kw.get("max_side"))
        return load_views(*args, **kw)

    monkeypatch.setattr(mesh_job, "load_views", spy)
    out = tmp_path / "fp"
    result = CliRunner().invoke(main, ["fit-points", "--data", str(off_centre), "-o", str(out),
                                       "--max-side", "48", *TINY])
    assert result.exit_code == 0, result.output
    assert seen == [48]
    pts, _ = load_points_ply(out / "points.ply")
    assert pts.shape[0] > 300
    # The cloud starts on the torus's hull (centre CENTRE, outer radius 0.3, height 0.1ish).
    torch.testing.assert_close(pts.mean(0), CENTRE, atol=0.06, rtol=0)
    assert float((pts - CENTRE).norm(dim=1).max()) < 0.45
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["heldout_iou_mean"] > 0.5, metrics
    # 0: no cap.
    result = CliRunner().invoke(main, ["fit-points", "--data", str(off_centre), "-o",
                                       str(tmp_path / "fp0"), "--max-side", "0", *TINY])
    assert result.exit_code == 0, result.output
    assert seen == [48, None]


def test_max_side_keeps_the_object_where_it_was(off_centre):
    """Views loaded at half size frame the same object: the sphere placed from the framed
    silhouettes and the object's projection in the crops agree with the full-size ones."""
    full = prepare_inputs(data=off_centre, image_size=32)
    half = prepare_inputs(data=off_centre, image_size=32, max_side=48)
    c_full, r_full = object_sphere(full.train)
    c_half, r_half = object_sphere(half.train)
    # (measured: centres 0.007 apart, radii 0.5% apart)
    torch.testing.assert_close(c_half, c_full, atol=0.02, rtol=0)
    assert abs(r_half - r_full) < 0.05 * r_full
    # The object's centre lands at the same place of each crop, within the rounding of
    # the boxes to whole source pixels (1 px of 48 is 2 to 3 px of a 32 px crop).
    a = full.train.cameras.transform_points_screen(CENTRE[None], image_size=((32, 32),))
    b = half.train.cameras.transform_points_screen(CENTRE[None], image_size=((32, 32),))
    assert float((a - b)[..., :2].abs().max()) < 3.0


def test_fit_points_frame_renders_and_crops_the_views(tmp_path):
    plain = prepare_points_inputs(views=3, heldout=1, image_size=16)
    framed = prepare_points_inputs(views=3, heldout=1, image_size=16, frame=True)
    assert framed.train.images.shape == (3, 16, 16, 3)
    assert isinstance(framed.train.cameras, PerspectiveCameras) and not framed.lit
    assert float(framed.train.masks.mean()) > 1.5 * float(plain.train.masks.mean())
    out = tmp_path / "fp"
    result = CliRunner().invoke(main, ["fit-points", "--frame", "--views", "4", "--heldout",
                                       "2", "-o", str(out), *TINY])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["heldout_iou_mean"] > 0.5, metrics


@pytest.mark.parametrize("cmd", ["fit", "fit-points"])
def test_bad_max_side_is_a_usage_error(tmp_path, cmd):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [cmd, "-o", str(out), "--max-side", "4"])
    assert result.exit_code == 2 and "--max-side" in result.output, result.output
    assert not out.exists()


def test_sphere_start_falls_back_to_the_cameras_focus(off_centre):
    """One view's silhouette cannot place the object (one ray): the sphere then sits where
    the optical axes meet, a quarter of the camera distance wide, as before."""
    one = load_views(off_centre).subset([0])
    sphere = initial_mesh(one, FitMeshSettings(init="sphere", init_level=1))
    focus, dist = cameras_focus(one.cameras)
    verts = sphere.verts_packed()
    torch.testing.assert_close(verts.mean(0), focus, atol=1e-4, rtol=0)
    radius = float((verts - focus).norm(dim=1).max())
    assert radius == pytest.approx(0.25 * dist, rel=1e-4)
