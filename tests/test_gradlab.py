"""The gradient lab: its experiments on small settings, and the CLI's tiny run."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from diffrend.cli import main
from diffrend.gradlab import GradlabSettings, load_scene_mesh
from diffrend.gradlab.accuracy import gradient_accuracy
from diffrend.gradlab.methods import MethodSpec, default_methods
from diffrend.gradlab.perturb import smooth_field
from diffrend.gradlab.pictures import method_picture, true_picture
from diffrend.gradlab.pose import angle_deg, draw_trials, recover_poses
from diffrend.gradlab.run import _as, _views

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def cow64():
    return _as(load_scene_mesh("cow"), torch.float64)


def test_scenes_are_normalised_and_bundled():
    for name in ("cow", "teapot"):
        v = load_scene_mesh(name).verts_packed()
        assert float(v.abs().max()) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="scene"):
        load_scene_mesh("no-such-scene")


def test_accuracy_hard_is_zero_and_antialias_follows_the_truth(cow64):
    specs = [MethodSpec("hard", "hard"), MethodSpec("antialias", "antialias")]
    rows = gradient_accuracy("cow", cow64, _views(2, CPU, torch.float64), specs, 32,
                             directions=8, factor=8)
    by = {(r.kind, r.method): r for r in rows}
    for kind in ("vertices", "camera"):
        # The truth agrees with itself at half the step (measured 0.97 / 0.99): it is not
        # noise at these settings.
        assert by[kind, "truth (eps/2)"].cosine > 0.9
        assert by[kind, "hard"].cosine == 0.0 and by[kind, "hard"].rel_error == 1.0
        # Measured cosines 0.96 (vertices) and 0.98 (camera).
        assert by[kind, "antialias"].cosine > 0.85


def test_pictures_hard_is_blank_and_antialias_resembles_the_truth(cow64):
    cam = _views(1, CPU, torch.float64)
    u = smooth_field(cow64, torch.Generator().manual_seed(0))
    truth = true_picture(cow64, cam, u, 12, factor=16)
    assert truth.abs().sum() > 0
    assert method_picture(MethodSpec("h", "hard"), cow64, cam, u, 12).abs().sum() == 0
    aa = method_picture(MethodSpec("a", "antialias"), cow64, cam, u, 12)
    cos = float((aa * truth).sum() / (aa.norm() * truth.norm()))
    assert cos > 0.3


def test_draw_trials_and_pose_recovery():
    trials = draw_trials(4, min_deg=10, max_deg=20, seed=3)
    ang = angle_deg(trials.starts, trials.targets)
    assert bool(((ang >= 10 - 1e-6) & (ang <= 20 + 1e-6)).all())
    torch.testing.assert_close(trials.starts.norm(dim=1), torch.full((4,), 3.0,
                                                                      dtype=torch.float64))
    teapot = load_scene_mesh("teapot")
    # Measured: antialias brings all four within 1 degree in ~15 steps; hard cannot move.
    good = recover_poses(teapot, MethodSpec("aa", "antialias", 48), trials, steps=60)
    assert good.converged >= 3
    stuck = recover_poses(teapot, MethodSpec("h", "hard", 48), trials, steps=5)
    assert stuck.converged == 0
    assert stuck.median_error_deg == pytest.approx(float(ang.median()), abs=1e-3)
    with pytest.raises(ValueError):
        draw_trials(2, min_deg=50, max_deg=40)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="parts"):
        GradlabSettings(parts=("nope",))
    with pytest.raises(ValueError, match="pose_steps"):
        GradlabSettings(pose_steps=0)
    with pytest.raises(ValueError, match="pose_ranges"):
        GradlabSettings(pose_ranges=((90.0, 30.0),))
    with pytest.raises(ValueError, match="method"):
        MethodSpec("x", "magic")
    assert [m.method for m in default_methods(64)] == ["soft", "soft", "hard", "antialias",
                                                       "nmr", "opendr"]


def test_cli_tiny_run_writes_the_report(tmp_path):
    out = tmp_path / "lab"
    result = CliRunner().invoke(main, ["gradlab", "--tiny", "-o", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("report.md", "results.json", "gradient_pictures.png", "fit_silhouettes.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    methods = {r["method"] for r in results["fit"]}
    assert {"hard", "antialias", "nmr", "opendr"} <= methods
    assert any("PyTorch3D tutorial" in r["method"] for r in results["pose"][0]["rows"])
    text = (out / "report.md").read_text()
    for section in ("Gradient pictures", "Gradient accuracy", "Camera-pose recovery",
                    "Silhouette mesh fitting"):
        assert section in text
    bad = CliRunner().invoke(main, ["gradlab", "--tiny", "--parts", "bogus", "-o",
                                    str(tmp_path / "x")])
    assert bad.exit_code != 0 and "parts" in bad.output


def test_unwritable_output_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["gradlab", "--tiny", "-o", str(blocker / "sub")])
    assert result.exit_code == 1
    assert "not writable" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_interrupted_run_writes_a_partial_report(tmp_path, monkeypatch):
    import diffrend.gradlab.run as run_mod

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "recover_poses", interrupted)
    out = tmp_path / "lab"
    result = CliRunner().invoke(main, ["gradlab", "--tiny", "-o", str(out)])
    assert result.exit_code == 130, result.output
    results = json.loads((out / "results.json").read_text())
    assert "pictures" in results and "accuracy" in results and "fit" not in results
    assert results["missing"] == ["pose", "fit"] and results["interrupted"]
    text = (out / "report.md").read_text()
    assert "Partial report: pose, fit missing (the run was interrupted)" in text
    assert "Gradient accuracy" in text and "Silhouette mesh fitting" not in text


def test_default_settings_are_laptop_sized_and_full_is_the_docs_run():
    # PyTorch3D's tutorial row costs ~1.5 s per trial-step at 256^2 on 2 cores (20 trials x
    # 200 steps: ~100 min); the pose job ~30 s per trial. The defaults leave both to --full.
    d, f = GradlabSettings(), GradlabSettings.full()
    assert not d.pose_tutorial and not d.pose_job
    assert f.pose_tutorial and f.pose_job and f.tutorial_size == 256
    assert (f.pose_trials, f.pose_steps, f.fit_steps, f.accuracy_directions) == (20, 200, 400,
                                                                                  24)
    assert d.pose_trials * d.pose_steps <= f.pose_trials * f.pose_steps / 4
