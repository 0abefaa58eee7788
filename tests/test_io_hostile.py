"""Loaders on what real exporters and hostile files write (issue 16, items 2-4).

Each test pins one measured defect: non-UTF-8 text, BOMs / indentation / tabs / trailing
comments in OBJ, non-finite values after the float32 cast, MTL colours, paths out of a
view dataset's folder, and exception types outside the documented set (ValueError,
FileNotFoundError).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffrend.io import load_obj, load_ply, load_points_ply, load_views

TRI = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- text decoding


@pytest.mark.parametrize("where", ["obj", "mtl"])
def test_non_utf8_bytes_load_without_charset_normalizer(tmp_path, monkeypatch, where):
    # A None entry makes `import charset_normalizer` fail, as on an install without it.
    monkeypatch.setitem(sys.modules, "charset_normalizer", None)
    write(tmp_path / "m.mtl", b"# caf\xe9\nnewmtl caf\xe9\nKd 1 0 0\n"
          if where == "mtl" else b"newmtl red\nKd 1 0 0\n")
    name = b"caf\xe9" if where == "mtl" else b"red"
    obj = write(tmp_path / "a.obj", b"# \xe9t\xe9 \x81\nmtllib m.mtl\n" + TRI.replace(
        b"f ", b"usemtl " + name + b"\nf "))
    verts, faces, aux = load_obj(obj)
    assert verts.shape == (3, 3) and faces.verts_idx.tolist() == [[0, 1, 2]]
    key = "café" if where == "mtl" else "red"
    assert aux.material_colors[key]["diffuse_color"].tolist() == [1.0, 0.0, 0.0]


# --------------------------------------------------------------------------- OBJ syntax


@pytest.mark.parametrize("text", [
    b"\xef\xbb\xbf" + TRI,  # UTF-8 BOM
    b"  v 0 0 0\n\tv 1 0 0\nv 0 1 0\n  f 1 2 3\n",  # indentation
    b"v\t0 0 0\nv\t1\t0\t0\nv 0 1 0\nf\t1 2 3\n",  # tabs after the keyword and between
    b"v 0 0 0 # origin\nv 1 0 0\t# x\nv 0 1 0#y\nf 1 2 3 # the face\n",  # trailing comments
    TRI.replace(b"\n", b"\r\n"),  # CRLF
])
def test_obj_lines_as_exporters_write_them(tmp_path, text):
    verts, faces, _ = load_obj(write(tmp_path / "a.obj", text))
    assert verts.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0]]
    assert faces.verts_idx.tolist() == [[0, 1, 2]]


def test_bom_before_mtllib_keeps_the_materials(tmp_path):
    write(tmp_path / "m.mtl", b"newmtl red\nKd 1 0 0\n")
    obj = write(tmp_path / "a.obj", b"\xef\xbb\xbfmtllib m.mtl\nusemtl red\n" + TRI)
    _, _, aux = load_obj(obj)
    assert aux.material_colors is not None and "red" in aux.material_colors


def test_obj_value_that_overflows_float32_is_refused(tmp_path):
    with pytest.raises(ValueError, match="NaN or inf"):
        load_obj(write(tmp_path / "a.obj", TRI.replace(b"v 1 0 0", b"v 1e39 0 0")))


@pytest.mark.parametrize("face", [b"f 1 2 99999999999999999999", b"f 1 2 3 -99999999999999999999",
                                  b"f 1 2 3 18446744073709551617"])
def test_huge_face_index_is_a_value_error(tmp_path, face):
    with pytest.raises(ValueError, match="line 4|index|uses vertex"):
        load_obj(write(tmp_path / "a.obj", TRI.replace(b"f 1 2 3", face)))


@pytest.mark.parametrize("line", [b"Kd nan 0 0", b"Kd 1 0", b"Ns inf", b"Kd 1e39 0 0",
                                  b"Ka 0 -inf 0", b"Ks 1 2 3 4 5"])
def test_bad_mtl_values_are_refused(tmp_path, line):
    write(tmp_path / "m.mtl", b"newmtl a\n" + line + b"\n")
    obj = write(tmp_path / "a.obj", b"mtllib m.mtl\nusemtl a\n" + TRI)
    with pytest.raises(ValueError, match=r"m\.mtl: line 2"):
        load_obj(obj)


def test_long_file_name_is_a_documented_error(tmp_path):
    name = tmp_path / ("x" * 300 + ".obj")
    for fn in (load_obj, load_ply, load_points_ply):
        with pytest.raises((ValueError, FileNotFoundError), match="x" * 20):
            fn(name)


# --------------------------------------------------------------------------- PLY

PLY_HEAD = (b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
            b"property float z\nend_header\n")


@pytest.mark.parametrize("row", [b"nan 0 0", b"0 inf 0", b"0 0 1e39"])
def test_points_ply_non_finite_is_refused(tmp_path, row):
    ply = write(tmp_path / "p.ply", PLY_HEAD + b"0 0 0\n" + row + b"\n")
    with pytest.raises(ValueError, match="NaN or inf"):
        load_points_ply(ply)


def test_points_ply_loads_colours(tmp_path):
    head = PLY_HEAD.replace(b"end_header", b"property uchar red\nproperty uchar green\n"
                            b"property uchar blue\nend_header")
    points, colors = load_points_ply(write(tmp_path / "p.ply", head + b"0 0 0 255 0 0\n"
                                           b"1 2 3 0 51 0\n"))
    assert points.tolist() == [[0, 0, 0], [1, 2, 3]]
    assert np.allclose(colors.numpy(), [[1, 0, 0], [0, 0.2, 0]])


def test_ply_huge_declared_counts_are_value_errors(tmp_path):
    head = (b"ply\nformat binary_little_endian 1.0\nelement vertex %d\nproperty float x\n"
            b"property float y\nproperty float z\n")
    big = write(tmp_path / "a.ply", head % 10**12 + b"end_header\n" + b"\0" * 24)
    for fn in (load_ply, load_points_ply):
        with pytest.raises(ValueError, match="vertex"):
            fn(big)
    lst = write(tmp_path / "b.ply", head % 3 + b"element face 1\nproperty list uint int "
                b"vertex_indices\nend_header\n" + b"\0" * 36 + b"\xff" * 8)
    with pytest.raises(ValueError, match="Not enough data for face"):
        load_ply(lst)


# --------------------------------------------------------------------------- views


def _dataset(folder: Path, file_path: str, mask_path: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    img = np.zeros((4, 4, 4), np.uint8)
    img[1:3, 1:3] = 255
    Image.fromarray(img).save(folder / "r_0.png")
    frame = {"file_path": file_path, "transform_matrix": np.eye(4).tolist()}
    if mask_path is not None:
        frame["mask_path"] = mask_path
    (folder / "transforms.json").write_text(json.dumps({"camera_angle_x": 0.7,
                                                        "frames": [frame]}))
    return folder


@pytest.mark.parametrize("kind", ["dotdot", "absolute"])
@pytest.mark.parametrize("key", ["file_path", "mask_path"])
def test_views_refuse_paths_outside_the_folder(tmp_path, kind, key):
    outside = tmp_path / "secret.png"
    Image.fromarray(np.full((4, 4, 4), 255, np.uint8)).save(outside)
    rel = "../secret.png" if kind == "dotdot" else str(outside)
    image, mask = (rel, None) if key == "file_path" else ("r_0.png", rel)
    folder = _dataset(tmp_path / "data", image, mask)
    with pytest.raises(ValueError, match=rf"{key}.*secret\.png.*allow_outside"):
        load_views(folder)
    data = load_views(folder, allow_outside=True)
    assert len(data) == 1


def test_views_refuse_a_symlink_out_of_the_folder(tmp_path):
    outside = tmp_path / "secret.png"
    Image.fromarray(np.full((4, 4, 4), 255, np.uint8)).save(outside)
    folder = _dataset(tmp_path / "data", "link.png")
    (folder / "link.png").symlink_to(outside)
    with pytest.raises(ValueError, match="outside"):
        load_views(folder)


def test_views_deep_json_is_a_value_error(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "transforms.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ValueError, match="transforms.json"):
        load_views(folder)


def test_views_image_size_is_capped(tmp_path):
    folder = _dataset(tmp_path / "d", "r_0.png")
    with pytest.raises(ValueError, match="image_size"):
        load_views(folder, image_size=10**6)


def test_views_long_path_is_a_documented_error(tmp_path):
    with pytest.raises((ValueError, FileNotFoundError), match="x" * 20):
        load_views(tmp_path / ("x" * 300))


# ---------------------------------------------------------------- found by the fuzz suite


def test_atlas_of_a_non_strict_load_with_bad_uv_indices(tmp_path):
    # A non-strict load keeps out-of-range UV indices (with a warning); the atlas treats
    # those faces as having no UVs instead of indexing past the end.
    Image.new("RGB", (4, 4), (0, 0, 255)).save(tmp_path / "tex.png")
    write(tmp_path / "m.mtl", b"newmtl tex\nKd 1 0 0\nmap_Kd tex.png\n")
    obj = write(tmp_path / "a.obj", b"mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\n"
                b"vt 1 0\nusemtl tex\nf 1/1 2/2 3/3\nf 1/1 2/2 3/1\n")
    with pytest.warns(UserWarning, match="invalid indices"):
        _, _, aux = load_obj(obj, create_texture_atlas=True, strict=False)
    atlas = aux.texture_atlas
    assert atlas.shape == (2, 4, 4, 3)
    assert np.allclose(atlas[0].numpy(), [1, 0, 0])  # no usable UVs: the diffuse colour
    assert np.allclose(atlas[1].numpy(), [0, 0, 1])  # sampled from the blue texture


def test_cameras_json_kind_of_the_wrong_type(tmp_path):
    folder = _dataset(tmp_path / "d", "r_0.png")
    (folder / "transforms.json").unlink()
    (folder / "cameras.json").write_text(json.dumps({"kind": [], "views": [
        {"image": "r_0.png", "R": np.eye(3).tolist(), "T": [0, 0, 3]}]}))
    with pytest.raises(ValueError, match="'kind' must be one of"):
        load_views(folder)
