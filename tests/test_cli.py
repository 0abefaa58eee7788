"""The `diffrend` command: render writes its pictures, bad input gives clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from diffrend.cli import main


def test_render_writes_grid_gif_and_shader_comparison(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["render", "-o", str(out), "--views", "2",
                                       "--gif-frames", "3", "--image-size", "48"])
    assert result.exit_code == 0, result.output
    grid = np.asarray(Image.open(out / "render.png"))
    assert grid.shape == (48, 96, 3)
    assert (grid < 250).any(axis=-1).mean() > 0.05  # the cow is drawn on white
    gif = Image.open(out / "turntable.gif")
    assert gif.n_frames == 3
    side = np.asarray(Image.open(out / "shaders.png"))
    assert side.shape == (48, 48 * 5, 3)
    # the five panels differ from each other
    panels = [side[:, 48 * i : 48 * (i + 1)].astype(float) for i in range(5)]
    assert all(np.abs(panels[i] - panels[i + 1]).mean() > 1 for i in range(4))


def test_render_other_formats_and_shaders(tmp_path):
    import trimesh

    path = tmp_path / "box.ply"
    trimesh.creation.box().export(path)
    result = CliRunner().invoke(main, ["render", str(path), "-o", str(tmp_path / "o"),
                                       "--views", "1", "--gif-frames", "0",
                                       "--image-size", "32", "--shader", "soft-phong"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "render.png").exists()
    assert not (tmp_path / "o" / "turntable.gif").exists()


def test_render_bad_mesh_is_a_clear_error(tmp_path):
    bad = tmp_path / "garbage.obj"
    bad.write_bytes(b"\x00\x01 not a mesh \xff" * 10)
    result = CliRunner().invoke(main, ["render", str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "Error" in result.output and "garbage.obj" in result.output
    missing = CliRunner().invoke(main, ["render", str(tmp_path / "nope.obj")])
    assert missing.exit_code != 0 and "nope.obj" in missing.output


def test_render_unwritable_output_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["render", "-o", str(blocker / "sub"), "--views", "1",
                                       "--image-size", "16", "--gif-frames", "0"])
    assert result.exit_code != 0 and "cannot write" in result.output


@pytest.mark.parametrize("args", [["--help"], ["fit", "--help"], ["render", "--help"],
                                  ["gradlab", "--help"], ["pose", "--help"]])
def test_help_does_not_import_torch_or_trimesh(args):
    # --help used to take 4-7 s importing torch and trimesh at start; asserting on imports
    # (not on time) keeps the test stable on a loaded machine.
    import subprocess
    import sys

    code = ("import sys\nfrom diffrend.cli import main\n"
            f"try:\n    main({args!r}, standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'trimesh'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert "Usage:" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-300:]


@pytest.mark.parametrize("ext", ["ply", "obj"])
def test_render_uses_the_files_vertex_colours(tmp_path, ext):
    # `diffrend fit` writes mesh.ply / mesh.obj with per-vertex colours; render used to draw
    # them light grey.
    import torch

    from diffrend.io import save_obj, save_ply
    from diffrend.structures import ico_sphere

    sphere = ico_sphere(2)
    verts, faces = sphere.verts_packed(), sphere.faces_packed()
    red = torch.tensor([0.9, 0.05, 0.05]).expand_as(verts).contiguous()
    path = tmp_path / f"red.{ext}"
    (save_ply if ext == "ply" else save_obj)(path, verts, faces, verts_colors=red)
    result = CliRunner().invoke(main, ["render", str(path), "-o", str(tmp_path / "o"),
                                       "--views", "1", "--gif-frames", "0",
                                       "--image-size", "32"])
    assert result.exit_code == 0, result.output
    img = np.asarray(Image.open(tmp_path / "o" / "render.png")).astype(int)
    drawn = (img < 250).any(axis=-1)
    assert drawn.mean() > 0.1
    r, g, b = (img[drawn][:, i].mean() for i in range(3))
    assert r > 2 * g and r > 2 * b, (r, g, b)


def test_pose_summary_says_whether_the_target_was_met():
    # A run 106 degrees off used to report "Recovered the camera".
    from diffrend.cli.pose_job import SUCCESS_DEG, pose_summary

    metrics = {"mesh": "cow.obj", "start_error_deg": 90.0, "rotation_error_deg": 106.2,
               "success_deg": SUCCESS_DEG, "iou": 0.41}
    bad = pose_summary(metrics, 128, 12.0)
    assert bad.startswith("Did NOT recover the camera") and "below 5 degrees" not in bad
    assert "rotation error 106.20 degrees (target: below 5)" in bad
    good = pose_summary({**metrics, "rotation_error_deg": 0.5, "iou": 0.99}, 128, 12.0)
    assert good.startswith("Recovered the camera") and "(target: below 5)" in good


_TRIANGLE = "v 0 0 0\nv 1 0 0\nv 0 1 0\n"


@pytest.mark.parametrize("obj, mtl, expected", [
    (_TRIANGLE + "f 1 2 3\n", None, "no UVs"),
    (_TRIANGLE + "vt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n", None, "no material"),
    ("mtllib gone.mtl\n" + _TRIANGLE + "vt 0 0\nvt 1 0\nvt 0 1\nusemtl m\nf 1/1 2/2 3/3\n",
     None, "material file 'gone.mtl' not found"),
    ("mtllib t.mtl\n" + _TRIANGLE + "vt 0 0\nvt 1 0\nvt 0 1\nusemtl m\nf 1/1 2/2 3/3\n",
     "newmtl m\nKd 1 0 0\n", "no texture image (no 'map_Kd'"),
    ("mtllib t.mtl\n" + _TRIANGLE + "vt 0 0\nvt 1 0\nvt 0 1\nusemtl m\nf 1/1 2/2 3/3\n",
     "newmtl m\nKd 1 0 0\nmap_Kd spot_texture.png\n", "texture image 'spot_texture.png' not found"),
])
def test_texture_names_what_is_missing(tmp_path, obj, mtl, expected):
    # A textured OBJ whose image was missing used to be reported as having "no UVs".
    path = tmp_path / "spot.obj"
    path.write_text(obj)
    if mtl is not None:
        (tmp_path / "t.mtl").write_text(mtl)
    result = CliRunner().invoke(main, ["texture", str(path), "-o", str(tmp_path / "o"),
                                       "--views", "1", "--heldout", "0"])
    assert result.exit_code == 1
    assert expected in result.output, result.output
    assert "Traceback" not in result.output


def test_cold_kernel_cache_is_announced_before_the_job_starts(tmp_path, monkeypatch, capsys):
    # On a fresh install Numba compiled silently inside the first step (~15 s of nothing,
    # then a 56-minute ETA). A missing cache index now prints a notice, and the kernels
    # are compiled before any progress bar exists.
    import sys
    import types

    import torch

    import diffrend.cli as cli

    class FakeDispatcher:
        targetoptions: dict = {}
        _cache = types.SimpleNamespace(
            _cache_file=types.SimpleNamespace(_index_path=str(tmp_path / "missing.nbi")))

    fake = types.ModuleType("fake_kernels")
    fake.kernel = FakeDispatcher()
    monkeypatch.setitem(sys.modules, "fake_kernels", fake)
    import diffrend.jobs.warmup as warmup

    monkeypatch.setattr(warmup, "KERNEL_MODULES", ("fake_kernels",))
    cli._warm_kernels(torch.device("cpu"))
    err = capsys.readouterr().err
    assert "compiling kernels (first run only" in err and "compiled in" in err
    (tmp_path / "missing.nbi").write_text("")
    cli._warm_kernels(torch.device("cpu"))
    assert capsys.readouterr().err == ""


def test_data_paths_outside_the_folder_need_the_flag(tmp_path):
    import json

    from diffrend.cli.mesh_job import prepare_inputs

    secret = tmp_path / "secret.png"
    Image.fromarray(np.full((8, 8, 4), 255, np.uint8)).save(secret)
    data = tmp_path / "data"
    data.mkdir()
    frames = [{"file_path": "../secret.png", "transform_matrix": np.eye(4).tolist()}]
    (data / "transforms.json").write_text(json.dumps({"camera_angle_x": 0.7,
                                                      "frames": frames}))
    result = CliRunner().invoke(main, ["fit", "--data", str(data), "-o", str(tmp_path / "o"),
                                       "--iters", "3", "--image-size", "16"])
    assert result.exit_code == 1, result.output
    assert "outside the folder" in result.output and "--allow-outside-paths" in result.output
    assert "Traceback" not in result.output
    inputs = prepare_inputs(data=data, image_size=16, allow_outside=True)
    assert len(inputs.train) == 1
