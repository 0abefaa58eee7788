"""Depth maps from a view folder: ``diffrend.io.load_depth``, ``jobs.framing.frame_depth`` and
``diffrend fit --data DIR --w-depth W``.

One dataset of the cow (6 views at 64 px) is rendered once per module by ``render-dataset``;
the tests read its depth maps back, frame them as the fit frames the views, and hold them
to depth maps rendered directly at the framed cameras.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from diffrend.cli import main
from diffrend.cli.mesh_job import prepare_inputs
from diffrend.io import default_mesh_path, load_depth, load_views, save_obj
from diffrend.io.depth import DEFAULT_DEPTH_SCALE
from diffrend.jobs.dataset import DEPTH_SCALE
from diffrend.jobs.framing import frame_depth
from diffrend.jobs.preview import load_for_render
from diffrend.jobs.views import render_target_depth

SIZE, VIEWS = 64, 6


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path]:
    """(the dataset folder, the mesh file it was rendered from)."""
    tmp = tmp_path_factory.mktemp("depth_data")
    meshes = tmp / "meshes"
    meshes.mkdir()
    cow = load_for_render(default_mesh_path())
    save_obj(meshes / "cow.obj", cow.verts_packed(), cow.faces_packed())
    result = CliRunner().invoke(main, ["render-dataset", str(meshes), "-o", str(tmp / "out"),
                                       "--views", str(VIEWS), "--image-size", str(SIZE)])
    assert result.exit_code == 0, result.output
    return tmp / "out" / "cow", meshes / "cow.obj"


def _copy(folder: Path, tmp: Path) -> Path:
    out = tmp / "copy"
    shutil.copytree(folder, out)
    return out


def _edit_spec(folder: Path, edit) -> None:
    path = folder / "transforms.json"
    spec = json.loads(path.read_text())
    edit(spec)
    path.write_text(json.dumps(spec))


def test_load_depth_reads_the_pngs_at_their_scale(dataset):
    folder, _ = dataset
    depth = load_depth(folder)
    views = load_views(folder)
    assert depth.shape == (VIEWS, SIZE, SIZE) and depth.dtype == torch.float32
    spec = json.loads((folder / "transforms.json").read_text())
    for i, frame in enumerate(spec["frames"]):
        steps = np.asarray(Image.open(folder / frame["depth_file_path"])).astype(np.float64)
        np.testing.assert_allclose(depth[i].numpy(), steps * DEPTH_SCALE, rtol=1e-6)
    # depth exactly where the silhouette is (render-dataset writes 0 elsewhere)
    assert torch.equal(depth > 0, views.masks > 0.5)
    # the camera 2.7 from the centre, the cow inside the cube of half-side 1
    assert 2.7 - 3**0.5 < float(depth[depth > 0].min()) < float(depth.max()) < 2.7 + 3**0.5


def test_without_integer_depth_scale_the_default_is_millimetres(dataset, tmp_path):
    folder = _copy(dataset[0], tmp_path)
    _edit_spec(folder, lambda s: s.pop("integer_depth_scale"))
    ratio = DEFAULT_DEPTH_SCALE / DEPTH_SCALE
    torch.testing.assert_close(load_depth(folder), load_depth(dataset[0]) * ratio)


def test_npy_and_32_bit_maps_read_as_the_pngs(dataset, tmp_path):
    folder = _copy(dataset[0], tmp_path)
    reference = load_depth(dataset[0])
    spec = json.loads((folder / "transforms.json").read_text())
    for i, frame in enumerate(spec["frames"]):  # the same steps, other containers
        steps = np.asarray(Image.open(folder / frame["depth_file_path"])).astype(np.float32)
        if i % 2:
            np.save(folder / f"d{i}.npy", steps[..., None])  # (H, W, 1) is accepted too
            frame["depth_file_path"] = f"d{i}.npy"
        else:
            Image.fromarray(steps).save(folder / f"d{i}.tif")  # float32: mode F
            frame["depth_file_path"] = f"d{i}.tif"
    (folder / "transforms.json").write_text(json.dumps(spec))
    torch.testing.assert_close(load_depth(folder), reference)

    np.save(folder / "d1.npy", np.full((SIZE, SIZE), np.nan, np.float32))
    with pytest.raises(ValueError, match="d1.npy: depth has NaN or inf"):
        load_depth(folder)
    np.save(folder / "d1.npy", np.zeros((2, SIZE, SIZE), np.float32))
    with pytest.raises(ValueError, match="not a single-channel depth map"):
        load_depth(folder)
    np.save(folder / "d1.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match="must be numbers"):
        load_depth(folder)


@pytest.mark.parametrize("size", [40, 96])  # framing shrinks the crops / grows them
def test_framed_depth_matches_depth_rendered_at_the_framed_cameras(dataset, size):
    folder, mesh_file = dataset
    inputs = prepare_inputs(data=folder, image_size=size, depth=True)
    framed = inputs.train_depth
    n = len(inputs.train)
    assert framed.shape == (n, size, size)
    direct = render_target_depth(load_for_render(mesh_file), inputs.train.cameras, size)
    both = (framed > 0) & (direct > 0)
    rel = ((framed - direct).abs() / direct)[both]
    assert float(rel.median()) < 2e-3, rel.median()
    if size < SIZE:  # shrinking keeps only pixels whose source pixels agree within 5%
        assert float(rel.max()) < 0.05, rel.max()
    else:  # growing cannot split a source pixel: a thin part that covered its centre
        # covers the new pixels, some of which show the body behind it (measured at 96 px:
        # 39 pixels of 12604, 0.3%)
        assert float((rel > 0.05).float().mean()) < 0.01
    kept = float(both.sum() / (direct > 0).sum())
    assert kept > (0.6 if size < SIZE else 0.85), kept
    # (growing: a source pixel's centre inside the outline, the new pixel's just outside)
    stray = float(((framed > 0) & (direct <= 0)).sum() / (direct > 0).sum())
    assert stray < 0.03, stray
    assert float(framed[framed <= 0].max()) == -1.0


def test_max_side_shrinks_the_depth_with_the_views(dataset):
    folder, mesh_file = dataset
    inputs = prepare_inputs(data=folder, image_size=24, depth=True, max_side=48)
    direct = render_target_depth(load_for_render(mesh_file), inputs.train.cameras, 24)
    both = (inputs.train_depth > 0) & (direct > 0)
    assert float(both.sum() / (direct > 0).sum()) > 0.5
    rel = ((inputs.train_depth - direct).abs() / direct)[both]
    assert float(rel.max()) < 0.05


def test_depth_outside_the_silhouette_is_dropped():
    depth = torch.full((1, 32, 32), 3.0)  # a wall behind the object, measured everywhere
    depth[0, 10:20, 8:24] = 2.0  # the object
    masks = torch.zeros(1, 32, 32)
    masks[0, 10:20, 8:24] = 1.0
    out = frame_depth(depth, masks, 16)
    assert set(torch.unique(out).tolist()) <= {-1.0, 2.0}
    assert int((out == 2.0).sum()) > 0.5 * 16 * 16 * (10 * 16) / (16 * 1.2) ** 2


def test_frame_depth_refuses_bad_shapes():
    with pytest.raises(ValueError, match="depth must have shape"):
        frame_depth(torch.ones(4, 4), torch.ones(4, 4), 8)
    with pytest.raises(ValueError, match="masks must have the depth maps' shape"):
        frame_depth(torch.ones(1, 8, 8), torch.ones(1, 8, 9), 8)


def _no_depth_path(spec: dict) -> None:
    spec["frames"][2].pop("depth_file_path")


def _scale(value):
    def edit(spec: dict) -> None:
        spec["integer_depth_scale"] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_no_depth_path, r"frames\[2\]: no depth_file_path"),
    (_scale(-1e-4), "integer_depth_scale must be a positive number"),
    (_scale("1e-4"), "integer_depth_scale must be a positive number"),
    (_scale(float("nan")), "integer_depth_scale must be a positive number"),
])
def test_bad_transforms_json_is_refused(dataset, tmp_path, edit, message):
    folder = _copy(dataset[0], tmp_path)
    _edit_spec(folder, edit)
    with pytest.raises(ValueError, match=message):
        load_depth(folder)


def test_bad_depth_files_are_refused(dataset, tmp_path):
    folder = _copy(dataset[0], tmp_path)
    spec = json.loads((folder / "transforms.json").read_text())
    first = folder / spec["frames"][0]["depth_file_path"]
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(first)  # 8-bit: a picture
    with pytest.raises(ValueError, match="16-bit grayscale"):
        load_depth(folder)
    Image.fromarray(np.zeros((SIZE, SIZE + 2), np.uint16)).save(first)
    with pytest.raises(ValueError, match="the first frame's is"):  # (frames[0] vs others)
        load_depth(folder)
    first.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read depth map"):
        load_depth(folder)
    first.unlink()
    with pytest.raises(ValueError, match="depth_file_path file not found"):
        load_depth(folder)


def test_depth_maps_of_another_size_than_the_images_are_refused(dataset, tmp_path):
    folder = _copy(dataset[0], tmp_path)
    spec = json.loads((folder / "transforms.json").read_text())
    for frame in spec["frames"]:  # every map 32x48: another aspect ratio than the views
        path = folder / frame["depth_file_path"]
        steps = np.asarray(Image.open(path))
        Image.fromarray(np.ascontiguousarray(steps[:32, :48])).save(path)
    with pytest.raises(ValueError, match="the depth maps are 48x32 pixels, the images 64x64"):
        prepare_inputs(data=folder, image_size=32, depth=True)


def test_a_cameras_json_has_no_depth(tmp_path):
    (tmp_path / "cameras.json").write_text(json.dumps({"kind": "perspective", "views": []}))
    with pytest.raises(ValueError, match="depth maps are read from a transforms.json"):
        load_depth(tmp_path)


def test_cli_fit_data_with_depth(dataset, tmp_path):
    folder, _ = dataset
    out = tmp_path / "fit"
    args = ["fit", "--data", str(folder), "--w-depth", "1", "--iters", "12", "--image-size",
            "32", "--views-per-step", "2", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (out / "mesh.obj").is_file() and (out / "metrics.json").is_file()

    bare = _copy(folder, tmp_path)  # the same views without their depth maps
    _edit_spec(bare, lambda s: [f.pop("depth_file_path") for f in s["frames"]])
    args[2] = str(bare)
    args[-1] = str(tmp_path / "fit2")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output  # (bad data, as for the views' files)
    assert "no depth_file_path" in result.output and "Traceback" not in result.output
