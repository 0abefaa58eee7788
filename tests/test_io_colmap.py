"""diffrend.io.colmap: COLMAP sparse models (binary and text) in.

tests/data/colmap_tiny was written by pycolmap (tests/data/colmap_tiny/generate.py): three
cameras (PINHOLE, SIMPLE_PINHOLE, SIMPLE_RADIAL with k = 0), four images whose keypoints are
the exact projections of the eight points they observe, plus one keypoint without a point.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from diffrend.io import ColmapScene, load_colmap

DATA = Path(__file__).parent / "data" / "colmap_tiny"
BIN = DATA / "sparse" / "0"
TXT = DATA / "sparse_text" / "0"
NAMES = ["a.png", "b.png", "d.png", "sub/c.png"]  # sorted by name, not by id (1, 2, 7, 5)


def project(scene: ColmapScene, view) -> tuple[torch.Tensor, torch.Tensor]:
    """(observed keypoints, projections of the points they observe) of one view."""
    seen = view.point_indices >= 0
    x = scene.points[view.point_indices[seen]]
    cam = x @ view.viewmat[:3, :3].T + view.viewmat[:3, 3]
    uvw = cam @ view.K.T
    return view.points2d[seen], uvw[:, :2] / uvw[:, 2:]


def copy_model(tmp_path: Path, text: bool) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(TXT if text else BIN, dst)
    return dst


@pytest.mark.parametrize("folder", [DATA, DATA / "sparse", BIN, TXT])
def test_views_reproduce_the_observations(folder):
    scene = load_colmap(folder)
    assert [v.name for v in scene.views] == NAMES
    assert [v.image_id for v in scene.views] == [1, 2, 7, 5]
    total = 0
    for view in scene.views:
        observed, projected = project(scene, view)
        assert view.viewmat.dtype == torch.float32 and view.viewmat.shape == (4, 4)
        assert torch.equal(view.viewmat[3], torch.tensor([0.0, 0.0, 0.0, 1.0]))
        assert (projected - observed).abs().max() < 1e-4  # pixels
        total += len(observed)
    assert total == 27  # the tracks' total length (points3D.txt: mean 3.375 x 8)
    # float64 on request: the projections agree to the files' precision
    scene64 = load_colmap(folder, dtype=torch.float64)
    for view in scene64.views:
        observed, projected = project(scene64, view)
        assert (projected - observed).abs().max() < 1e-9


def test_cameras_points_and_colours():
    scene = load_colmap(BIN)
    a, b, d, c = scene.views
    torch.testing.assert_close(a.K, torch.tensor([[70.0, 0, 31.5], [0, 66.0, 24.25], [0, 0, 1]]))
    torch.testing.assert_close(b.K, torch.tensor([[45.0, 0, 19.0], [0, 45.0, 15.5], [0, 0, 1]]))
    torch.testing.assert_close(c.K, torch.tensor([[55.0, 0, 25.0], [0, 55.0, 24.0], [0, 0, 1]]))
    assert (a.width, a.height, b.width, b.height, c.width, c.height) == (64, 48, 40, 30, 50, 50)
    assert [v.camera_id for v in scene.views] == [1, 2, 1, 3]
    torch.testing.assert_close(scene.image_sizes,
                               torch.tensor([[64, 48], [40, 30], [64, 48], [50, 50]]))
    assert scene.viewmats.shape == (4, 4, 4) and scene.Ks.shape == (4, 3, 3)
    torch.testing.assert_close(scene.Ks[3], c.K)
    # values from points3D.txt: id 1 at (0.1501.., 0.4766.., 0.3308..), colour (11, 180, 219)
    assert scene.points.shape == (8, 3) and scene.colors.shape == (8, 3)
    assert scene.point_ids.tolist() == list(range(1, 9))
    torch.testing.assert_close(scene.points[0], torch.tensor(
        [0.15011455992560041, 0.47665656116349064, 0.33082282829423215]))
    torch.testing.assert_close(scene.colors[0], torch.tensor([11, 180, 219]) / 255.0)
    torch.testing.assert_close(scene.colors[7], torch.tensor([71, 89, 119]) / 255.0)
    assert 0 <= scene.colors.min() and scene.colors.max() <= 1
    # rotations are proper; the camera centre of a.png is where generate.py put it
    rot = scene.viewmats[:, :3, :3].double()
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(4, 3, 3).double(),
                               atol=1e-6, rtol=0)
    centre = -a.viewmat[:3, :3].T @ a.viewmat[:3, 3]
    torch.testing.assert_close(centre, torch.tensor([0.0, 0.3, -4.0]))
    # the keypoint without a 3D point
    assert a.point_indices[-1] == -1 and a.points2d[-1].tolist() == [1.0, 2.0]
    # image paths: the images folder next to sparse/
    assert a.path == (DATA / "images" / "a.png").resolve() and c.path.is_file()


def test_binary_and_text_agree():
    b, t = load_colmap(BIN, dtype=torch.float64), load_colmap(TXT, dtype=torch.float64)
    for vb, vt in zip(b.views, t.views, strict=True):
        assert (vb.name, vb.image_id, vb.camera_id, vb.width, vb.height) == (
            vt.name, vt.image_id, vt.camera_id, vt.width, vt.height)
        for name in ("viewmat", "K", "points2d", "point_indices"):
            torch.testing.assert_close(getattr(vb, name), getattr(vt, name), rtol=1e-15,
                                       atol=1e-15)
    for name in ("points", "colors", "point_ids"):
        torch.testing.assert_close(getattr(b, name), getattr(t, name), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("folder", [BIN, TXT])
def test_agrees_with_pycolmap(folder):
    pycolmap = pytest.importorskip("pycolmap")
    rec = pycolmap.Reconstruction(str(folder))
    scene = load_colmap(folder, dtype=torch.float64)
    assert len(scene.views) == rec.num_images()
    for view in scene.views:
        image = rec.images[view.image_id]
        pose = image.cam_from_world
        pose = pose() if callable(pose) else pose  # a method in pycolmap >= 3.12
        np.testing.assert_allclose(view.viewmat[:3].numpy(), pose.matrix(), atol=1e-12)
        cam = rec.cameras[view.camera_id]
        np.testing.assert_allclose(view.K.numpy(), cam.calibration_matrix(), atol=1e-12)
        np.testing.assert_allclose(view.points2d.numpy(),
                                   np.array([p.xy for p in image.points2D]), atol=1e-12)
    for i, pid in enumerate(scene.point_ids.tolist()):
        np.testing.assert_allclose(scene.points[i].numpy(), rec.points3D[pid].xyz, atol=1e-12)
        np.testing.assert_allclose(scene.colors[i].numpy() * 255, rec.points3D[pid].color)


def test_device_dtype_and_images_dir(tmp_path):
    (tmp_path / "pics" / "sub").mkdir(parents=True)
    for name in NAMES:
        (tmp_path / "pics" / name).write_bytes(b"")
    scene = load_colmap(BIN, images_dir=tmp_path / "pics", device="cpu", dtype=torch.float64)
    assert scene.points.dtype == torch.float64 and scene.views[0].K.dtype == torch.float64
    assert scene.views[0].point_indices.dtype == torch.int64
    assert [v.path for v in scene.views] == [tmp_path / "pics" / n for n in NAMES]


@pytest.mark.parametrize("dtype", [torch.int64, "float32"])
def test_bad_dtype(dtype):
    with pytest.raises(ValueError, match="dtype: expected a torch float dtype"):
        load_colmap(BIN, dtype=dtype)


def test_no_image_folder(tmp_path):
    model = copy_model(tmp_path, text=False)
    scene = load_colmap(model)
    assert all(v.path is None for v in scene.views)
    assert scene.model_dir == model


# ----------------------------------------------------------------------------- errors


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_colmap(tmp_path / "nope")


def test_folder_without_model(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no COLMAP model .*sparse/0"):
        load_colmap(tmp_path)


def test_file_instead_of_folder(tmp_path):
    with pytest.raises(ValueError, match="folder: .* is not a folder"):
        load_colmap(BIN / "cameras.bin")


@pytest.mark.parametrize("text", [False, True])
def test_missing_model_file(tmp_path, text):
    model = copy_model(tmp_path, text)
    ext = ".txt" if text else ".bin"
    (model / f"points3D{ext}").unlink()
    with pytest.raises(FileNotFoundError, match=f"missing: points3D\\{ext}"):
        load_colmap(model)


def test_missing_images_dir_and_image(tmp_path):
    with pytest.raises(FileNotFoundError, match="images_dir"):
        load_colmap(BIN, images_dir=tmp_path / "none")
    (tmp_path / "pics").mkdir()
    with pytest.raises(FileNotFoundError, match="image 1 .'a.png'.: no image file"):
        load_colmap(BIN, images_dir=tmp_path / "pics")


@pytest.mark.parametrize("name", ["images.bin", "points3D.bin", "cameras.bin"])
def test_truncated_binary(tmp_path, name):
    model = copy_model(tmp_path, text=False)
    data = (model / name).read_bytes()
    (model / name).write_bytes(data[:-5])
    with pytest.raises(ValueError, match=f"{name}: truncated"):
        load_colmap(model)
    (model / name).write_bytes(data + b"\0")
    with pytest.raises(ValueError, match=f"{name}: 1 unexpected bytes"):
        load_colmap(model)


def test_absurd_binary_count(tmp_path):
    model = copy_model(tmp_path, text=False)
    data = (model / "points3D.bin").read_bytes()
    (model / "points3D.bin").write_bytes(struct.pack("<Q", 1 << 60) + data[8:])
    with pytest.raises(ValueError, match="points3D.bin: truncated .a count of"):
        load_colmap(model)


def edit_line(path: Path, start: str, new: str) -> None:
    lines = path.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(start))
    lines[i] = new
    path.write_text("\n".join(lines) + "\n")


def test_distortion_is_refused_unless_ignored(tmp_path):
    model = copy_model(tmp_path, text=True)
    edit_line(model / "cameras.txt", "3 ", "3 SIMPLE_RADIAL 50 50 55 25 24 0.1")
    with pytest.raises(ValueError, match=r"camera 3 \(SIMPLE_RADIAL\): distortion .*0\.1.*"
                                         "ignore_distortion=True"):
        load_colmap(model)
    scene = load_colmap(model, ignore_distortion=True)
    torch.testing.assert_close(scene.views[3].K,
                               torch.tensor([[55.0, 0, 25.0], [0, 55.0, 24.0], [0, 0, 1]]))


@pytest.mark.parametrize("line,match", [
    ("1 OPENCV 64 48 70 66 31.5 24.25 0 0 0.01 0", r"camera 1 \(OPENCV\): distortion"),
    ("1 OPENCV 64 48 70 66 31.5 24.25 0 0 0 0", None),  # zero distortion: a pinhole
    ("1 OPENCV_FISHEYE 64 48 70 66 31.5 24.25 0 0 0 0", r"camera 1 \(OPENCV_FISHEYE\): not a "
                                                        "pinhole"),
    ("1 PINHOLE 64 48 70 66 31.5", "model PINHOLE has 4 parameters, got 3"),
    ("1 NO_SUCH_MODEL 64 48 70", r"cameras.txt:\d+: expected 'CAMERA_ID MODEL"),
    ("1 PINHOLE 64 48 70 66 31.5 abc", r"cameras.txt:\d+: expected numbers"),
    ("1 PINHOLE 64 48 0 66 31.5 24.25", "focal length must be positive"),
    ("1 PINHOLE 64 48 nan 66 31.5 24.25", "non-finite parameters"),
])
def test_camera_models(tmp_path, line, match):
    model = copy_model(tmp_path, text=True)
    edit_line(model / "cameras.txt", "1 ", line)
    if match is None:
        assert load_colmap(model).views[0].K[0, 0] == 70
    else:
        with pytest.raises(ValueError, match=match):
            load_colmap(model)


@pytest.mark.parametrize("start,line,match", [
    ("1 0.99", "1 0.99 0 0 0 0 0 4 9 a.png", "image 1 .'a.png'.: camera id 9 is not in"),
    ("1 0.99", "1 0 0 0 0 0 0 4 1 a.png", "image 1 .'a.png'.: its rotation quaternion .* zero"),
    ("1 0.99", "1 0.99 0 0 0 0 0 4 1 ../../escape.png", "resolves outside the folder"),
    ("1 0.99", "1 0.99 0 0 0", r"images.txt:\d+: expected 'IMAGE_ID"),
    ("7 0.33", "7 0.33 0.27 0.68 0.58 0 0 3.8 1 d.png\n1 2 99 4", r"images.txt:\d+: expected 'X Y "
                                                                 "POINT3D_ID' triples"),
    ("7 0.33", "7 0.33 0.27 0.68 0.58 0 0 3.8 1 d.png\n1 2 99 3 4 -1", "image 7 .'d.png'.: "
                                                                      "keypoint observes 3D "
                                                                      "point id 99"),
])
def test_bad_images(tmp_path, start, line, match):
    (tmp_path / "images").mkdir()
    for name in NAMES:
        (tmp_path / "images" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "images" / name).write_bytes(b"")
    model = copy_model(tmp_path, text=True)
    lines = (model / "images.txt").read_text().splitlines()
    i = next(i for i, x in enumerate(lines) if x.startswith(start))
    del lines[i:i + 2]
    lines[i:i] = line.split("\n") if "\n" in line else [line, ""]
    (model / "images.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=match):
        load_colmap(model)


def test_image_name_with_spaces_and_empty_keypoints(tmp_path):
    model = copy_model(tmp_path, text=True)
    lines = (model / "images.txt").read_text().splitlines()
    i = next(i for i, x in enumerate(lines) if x.startswith("7 0.33"))
    lines[i] = lines[i].replace("d.png", "my photo.png")
    lines[i + 1] = ""  # no keypoints
    (model / "images.txt").write_text("\n".join(lines) + "\n")
    # the points that d.png observed keep their other observations; tracks are not checked
    scene = load_colmap(model)
    view = next(v for v in scene.views if v.image_id == 7)
    assert view.name == "my photo.png"
    assert view.points2d.shape == (0, 2) and view.point_indices.shape == (0,)


@pytest.mark.parametrize("line,match", [
    ("1 nan 0.4 0.3 11 180 219 -1 1 0", "1 point.* with NaN/inf coordinates"),
    ("1 0.1 0.4 0.3 11 300 219 -1 1 0", r"colour \[11, 300, 219\] outside 0..255"),
    ("1 0.1 0.4 0.3 11 180 219 -1 1", r"points3D.txt:\d+: expected 'POINT3D_ID"),
    ("2 0.1 0.4 0.3 11 180 219 -1 1 0", "repeats a point id"),
])
def test_bad_points(tmp_path, line, match):
    model = copy_model(tmp_path, text=True)
    edit_line(model / "points3D.txt", "1 ", line)
    with pytest.raises(ValueError, match=match):
        load_colmap(model)


def test_empty_model(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    for name in ("cameras", "images", "points3D"):
        (model / f"{name}.txt").write_text("# nothing\n")
    scene = load_colmap(model)
    assert scene.views == () and scene.points.shape == (0, 3) and scene.colors.shape == (0, 3)
    assert scene.viewmats.shape == (0, 4, 4) and scene.Ks.shape == (0, 3, 3)
    assert scene.image_sizes.shape == (0, 2)


def test_colmap_views_project_like_the_model():
    from dataclasses import replace

    from diffrend.io import colmap_views, is_colmap_folder

    root = Path(__file__).parent / "data" / "colmap_tiny"
    assert is_colmap_folder(root) and not is_colmap_folder(root / "images")
    scene = load_colmap(root, dtype=torch.float64)
    with pytest.raises(ValueError, match="one size"):
        colmap_views(scene)  # the tiny model's images differ in size
    same = replace(scene, views=tuple(v for v in scene.views if v.camera_id == 1))
    assert len(same.views) == 2
    for max_side, factor in ((None, 1.0), (32, 0.5)):
        data = colmap_views(same, max_side=max_side)
        h, w = round(48 * factor), round(64 * factor)
        assert data.images.shape == (2, h, w, 3) and bool((data.masks == 1).all())
        assert data.names == tuple(v.name for v in same.views)
        for i, view in enumerate(same.views):
            seen = view.point_indices >= 0
            pts = same.points[view.point_indices[seen]].float()
            uv = data.cameras[i].transform_points_screen(pts[None], image_size=(h, w))[0, :, :2]
            torch.testing.assert_close(uv, view.points2d[seen].float() * factor, atol=1e-3,
                                       rtol=0)
    with pytest.raises(ValueError, match="max_side"):
        colmap_views(same, max_side=2)
