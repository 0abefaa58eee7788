"""Mesh I/O: the cow loads welded with its UV seams, round trips, other formats, bad input."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from conftest import DATA, GOLDEN
from PIL import Image

from diffrend.io import (
    UVTextureData,
    default_mesh_path,
    load_default_mesh,
    load_mesh,
    load_obj,
    load_objs_as_meshes,
    save_obj,
    save_ply,
)
from diffrend.shading import TexturesUV
from diffrend.structures import Meshes, ico_sphere

COW = DATA / "cow_mesh" / "cow.obj"


def obj_lines(path: Path, key: str) -> np.ndarray:
    """Test-only reference: the numbers of every `key` line of an OBJ."""
    rows = [ln.split()[1:] for ln in path.read_text().splitlines() if ln.startswith(key + " ")]
    return np.asarray(rows, dtype=np.float64)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def cow_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "cow"
    folder.mkdir()
    for name in ("cow.obj", "cow.mtl", "cow_texture.png"):
        (folder / name).write_bytes((COW.parent / name).read_bytes())
    return folder / "cow.obj"


# --------------------------------------------------------------------------- the cow


@pytest.fixture(scope="module")
def cow():
    if not COW.exists():
        pytest.skip(f"{COW} not available")
    return load_obj(COW)


def test_cow_loads_welded_with_uv_seams(cow):
    verts, faces, aux = cow
    assert verts.shape == (2930, 3) and verts.dtype == torch.float32
    assert faces.verts_idx.shape == (5856, 3) and faces.verts_idx.dtype == torch.int64
    assert aux.verts_uvs.shape == (3225, 2)
    assert faces.textures_idx.shape == (5856, 3)
    assert int(faces.textures_idx.min()) == 0 and int(faces.textures_idx.max()) == 3224
    assert aux.normals is None and (faces.normals_idx == -1).all()
    assert (faces.materials_idx == 0).all()
    # positions and UVs in file order, exactly as written
    np.testing.assert_allclose(verts.numpy(), obj_lines(COW, "v"), rtol=1e-6)
    np.testing.assert_allclose(aux.verts_uvs.numpy(), obj_lines(COW, "vt")[:, :2], rtol=1e-6)
    # seams: some positions carry several UVs (which a split loader would duplicate)
    pairs = np.unique(np.stack([faces.verts_idx.flatten(), faces.textures_idx.flatten()], 1),
                      axis=0)
    assert len(pairs) > 2930
    assert len(np.unique(pairs[:, 0])) == 2930
    # textures: PyTorch3D's material record and a float image in [0, 1]
    colors = aux.material_colors["material_1"]
    torch.testing.assert_close(colors["diffuse_color"], torch.ones(3))
    torch.testing.assert_close(colors["specular_color"], torch.zeros(3))
    torch.testing.assert_close(colors["shininess"], torch.tensor([10.0]))
    image = aux.texture_images["material_1"]
    assert image.shape == (1024, 1024, 3) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert aux.texture_atlas is None


def test_cow_faces_match_pytorch3d_golden(cow):
    path = GOLDEN / "raster_cow_v0_hard_k1.npz"
    if not path.exists():
        pytest.skip("PyTorch3D goldens not available")
    with np.load(path) as g:
        np.testing.assert_array_equal(cow[1].verts_idx.numpy(), g["faces"])


def test_bundled_cow_is_the_shared_cow(cow):
    path = default_mesh_path()
    assert path.is_file() and "diffrend" in path.parts and path.parent.name == "cow_mesh"
    verts, faces, _ = load_obj(path, load_textures=False)
    assert torch.equal(verts, cow[0]) and torch.equal(faces.verts_idx, cow[1].verts_idx)
    m = load_default_mesh()
    assert m.num_verts_per_mesh().tolist() == [2930] and m.textures is not None
    assert load_default_mesh(load_textures=False).textures is None


def test_load_objs_as_meshes(tmp_path, cow):
    m = load_objs_as_meshes([COW, COW], device="cpu")
    assert len(m) == 2 and m.num_faces_per_mesh().tolist() == [5856, 5856]
    tex = m.textures
    assert isinstance(tex, TexturesUV)
    assert len(tex) == 2 and tex.maps_padded().shape == (2, 1024, 1024, 3)
    image = load_obj(COW)[2].texture_images["material_1"]
    assert torch.equal(tex.maps_list()[1], image)
    assert torch.equal(tex.faces_uvs_list()[0], cow[1].textures_idx)
    assert torch.equal(tex.verts_uvs_list()[1], cow[2].verts_uvs)
    assert (tex.padding_mode, tex.align_corners, tex.sampling_mode) == (
        "border", True, "bilinear")
    assert len(m.extend(2).textures) == 4 and len(m[1].textures) == 1
    plain = load_objs_as_meshes([COW], load_textures=False)
    assert plain.textures is None
    untextured = write(tmp_path / "tri.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(ValueError, match="some have textures"):
        load_objs_as_meshes([COW, untextured])
    with pytest.raises(ValueError, match="list of paths"):
        load_objs_as_meshes(str(COW))


def test_faces_without_uvs_read_uv_origin(tmp_path):
    Image.new("RGB", (2, 2), (255, 0, 0)).save(tmp_path / "t.png")
    write(tmp_path / "t.mtl", "newmtl m\nmap_Kd t.png\n")
    obj = write(tmp_path / "t.obj", "mtllib t.mtl\nusemtl m\nv 0 0 0\nv 1 0 0\nv 0 1 0\n"
                "vt 0.5 0.5\nf 1/1 2/1 3/1\nf 1 2 3\n")
    with pytest.warns(UserWarning, match="1 faces have no texture coordinates"):
        m = load_objs_as_meshes([obj])
    uvs = m.textures.faces_verts_uvs_packed()
    assert uvs[0].tolist() == [[0.5, 0.5]] * 3 and uvs[1].tolist() == [[0.0, 0.0]] * 3


def test_uv_texture_data_holder_still_batches():
    """UVTextureData is no longer attached by the loader; it stays exported by diffrend.io."""
    d = UVTextureData([torch.rand(3, 2)], [torch.tensor([[0, 1, 2]])], [torch.rand(2, 2, 3)])
    assert len(d.extend(3)) == 3 and len(d.join_batch([d])[1:]) == 1
    assert torch.equal(d.clone().maps[0], d.maps[0])


def test_load_mesh_obj_is_geometry_only(cow):
    m = load_mesh(COW)
    assert isinstance(m, Meshes) and m.textures is None
    assert torch.equal(m.verts_packed(), cow[0])


# --------------------------------------------------------------------------- OBJ details


def test_polygons_relative_indices_mixed_formats_and_materials(tmp_path):
    text = (
        "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvn 0 0 1\n"
        "usemtl red\nf 1/1/1 2/2/1 3/3/1 4/1/1\n"  # quad -> 2 triangles
        "v 2 0 0\n"
        "usemtl blue\nf -1 -4 -3\n"  # relative to the 5 vertices so far: 5 2 3
        "usemtl red\nf 1//1 3//1 4//1  # a comment\n"
    )
    verts, faces, aux = load_obj(write(tmp_path / "poly.obj", text))
    assert verts.shape == (5, 3)
    assert faces.verts_idx.tolist() == [[0, 1, 2], [0, 2, 3], [4, 1, 2], [0, 2, 3]]
    assert faces.textures_idx.tolist() == [[0, 1, 2], [0, 2, 0], [-1] * 3, [-1] * 3]
    assert faces.normals_idx.tolist() == [[0, 0, 0], [0, 0, 0], [-1] * 3, [0, 0, 0]]
    assert faces.materials_idx.tolist() == [0, 0, 1, 0]
    assert aux.normals.shape == (1, 3) and aux.verts_uvs.shape == (3, 2)
    assert aux.material_colors is None and aux.texture_images is None  # no mtllib


def test_fast_and_general_face_parsers_agree(tmp_path):
    m = ico_sphere(2)
    v, f = m.verts_packed(), m.faces_packed()
    uv = torch.rand(len(v), 2)
    save_obj(tmp_path / "a.obj", v, f, verts_uvs=uv, faces_uvs=f)
    fast = load_obj(tmp_path / "a.obj")
    # the same file with one polygon line appended forces the general path
    # (save_obj, like PyTorch3D's, ends the file without a newline)
    text = (tmp_path / "a.obj").read_text() + "\nf 1/1 2/2 3/3 4/4\n"
    slow = load_obj(write(tmp_path / "b.obj", text))
    assert torch.equal(slow[1].verts_idx[:-2], fast[1].verts_idx)
    assert torch.equal(slow[1].textures_idx[:-2], fast[1].textures_idx)
    assert slow[1].verts_idx[-2:].tolist() == [[0, 1, 2], [0, 2, 3]]


# --------------------------------------------------------------------------- round trips


def test_obj_round_trip_with_texture(tmp_path):
    m = ico_sphere(2)
    v, f = m.verts_packed(), m.faces_packed()
    g = torch.Generator().manual_seed(0)
    uv = torch.rand(100, 2, generator=g)
    fuv = torch.randint(0, 100, f.shape, generator=g)
    texture = torch.rand(16, 24, 3, generator=g)
    path = tmp_path / "out" / "sphere.obj"
    save_obj(path, v, f, verts_uvs=uv, faces_uvs=fuv, texture_map=texture)
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "sphere.mtl", "sphere.obj", "sphere.png"]  # no temporary files left behind
    verts, faces, aux = load_obj(path)
    torch.testing.assert_close(verts, v, rtol=0, atol=1e-7)
    assert torch.equal(faces.verts_idx, f) and torch.equal(faces.textures_idx, fuv)
    torch.testing.assert_close(aux.verts_uvs, uv, rtol=0, atol=1e-7)
    image = aux.texture_images["mesh"]
    torch.testing.assert_close(image, texture, rtol=0, atol=0.5 / 255 + 1e-6)
    # overwriting works and stays atomic
    save_obj(path, v * 2, f)
    assert torch.equal(load_obj(path)[0], v * 2)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_ply_round_trip_with_normals(tmp_path):
    m = ico_sphere(1)
    v, f = m.verts_packed(), m.faces_packed()
    path = tmp_path / "s.ply"
    save_ply(path, v, f, verts_normals=m.verts_normals_packed())
    back = load_mesh(path)
    torch.testing.assert_close(back.verts_packed(), v)
    assert torch.equal(back.faces_packed(), f)
    raw = trimesh.load(path, process=False)
    np.testing.assert_allclose(raw.vertex_normals, m.verts_normals_packed().numpy(), atol=1e-6)
    save_ply(tmp_path / "plain.ply", v, f)
    assert b"nx" not in (tmp_path / "plain.ply").read_bytes()[:400]


@pytest.mark.parametrize("ext", ["off", "stl", "glb", "ply", "obj"])
def test_other_formats_load(tmp_path, ext):
    sphere = trimesh.creation.icosphere(subdivisions=1)
    path = tmp_path / f"s.{ext}"
    sphere.export(path)
    m = load_mesh(path)
    # STL stores separate triangles; they are welded back to 42 vertices
    assert m.num_verts_per_mesh().tolist() == [42]
    assert m.num_faces_per_mesh().tolist() == [80]
    assert m.verts_packed().dtype == torch.float32
    torch.testing.assert_close(m.faces_areas_packed().sum(),
                               torch.tensor(sphere.area, dtype=torch.float32))


# --------------------------------------------------------------------------- bad input


def test_missing_file_and_unsupported_extension(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.obj"):
        load_obj(tmp_path / "nope.obj")
    with pytest.raises(FileNotFoundError, match="nope.ply"):
        load_mesh(tmp_path / "nope.ply")
    with pytest.raises(ValueError, match="unsupported mesh format"):
        load_mesh(write(tmp_path / "a.xyz", "1 2 3\n"))
    with pytest.raises(ValueError, match="not a regular file"):
        load_obj(tmp_path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "no vertices"),
        ("# just a comment\n", "no vertices"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no faces"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", "uses vertex 4 but the file has 3 vertices"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 0\n", "index 0"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/0 3/1\n", "index 0"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/0 3/1 1/1\n", "index 0"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf -4 2 3\n", "before the first"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/2 3/1\n", "texture coordinate 2 but"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1//1 2//1 3//1\n", "normal 1 but the file has 0"),
        ("v 0 nan 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "NaN"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 inf\nf 1 2 3\n", "NaN or inf"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", "at least 3 vertices"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 x\n", "malformed face"),
        ("v 0 0 0\nv 1 0 0\nv 0 1\n", "does not have 3 values"),
    ],
)
def test_bad_obj_text(tmp_path, text, match):
    path = write(tmp_path / "bad.obj", text)
    with pytest.raises(ValueError, match=match) as info:
        load_obj(path)
    assert "bad.obj" in str(info.value)


def test_truncated_and_binary_files(tmp_path):
    data = COW.read_bytes()
    truncated = tmp_path / "cut.obj"
    truncated.write_bytes(data[: len(data) // 3])  # ends inside the vertex block
    with pytest.raises(ValueError, match="cut.obj"):
        load_obj(truncated)
    text = data.decode()
    cut = text.index("f 739/1 735/2 736/3") + len("f 739/1 735/2 73")
    truncated.write_text(text[:cut])  # ends inside the first face line
    with pytest.raises(ValueError, match="cut.obj: line .*truncated"):
        load_obj(truncated)
    rng = np.random.default_rng(0)
    for ext in ("obj", "ply", "stl", "glb", "off"):
        path = tmp_path / f"garbage.{ext}"
        path.write_bytes(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
        with pytest.raises(ValueError, match=f"garbage.{ext}"):
            load_mesh(path)
    empty = tmp_path / "empty.ply"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.ply"):
        load_mesh(empty)


def test_ply_with_nan_or_bad_index(tmp_path):
    path = tmp_path / "nan.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
                    "property float y\nproperty float z\nelement face 1\n"
                    "property list uchar int vertex_indices\nend_header\n"
                    "0 0 0\n1 nan 0\n0 1 0\n3 0 1 2\n")
    with pytest.raises(ValueError, match="NaN"):
        load_mesh(path)
    path.write_text(path.read_text().replace("1 nan 0", "1 0 0").replace("3 0 1 2", "3 0 1 5"))
    with pytest.raises(ValueError, match="nan.ply"):
        load_mesh(path)


def test_missing_mtl_and_texture_warn(tmp_path):
    obj = cow_copy(tmp_path)
    (obj.parent / "cow_texture.png").unlink()
    with pytest.warns(UserWarning, match="cow_texture.png' not found"):
        verts, faces, aux = load_obj(obj)
    assert verts.shape == (2930, 3) and aux.texture_images == {}
    assert "material_1" in aux.material_colors
    with pytest.warns(UserWarning, match="cow_texture.png' not found"):
        m = load_objs_as_meshes([obj])
    assert m.textures is None
    (obj.parent / "cow.mtl").unlink()
    with pytest.warns(UserWarning, match="material file 'cow.mtl' not found"):
        _, _, aux = load_obj(obj)
    assert aux.material_colors is None and aux.texture_images is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_obj(obj, load_textures=False)  # nothing to warn about


def test_corrupt_texture_warns(tmp_path):
    obj = cow_copy(tmp_path)
    (obj.parent / "cow_texture.png").write_bytes(b"not a png at all")
    with pytest.warns(UserWarning, match="cow_texture.png' unreadable"):
        _, _, aux = load_obj(obj)
    assert aux.texture_images == {}


def test_external_texture_refused_unless_allowed(tmp_path):
    obj = cow_copy(tmp_path)
    outside = tmp_path / "elsewhere.png"
    Image.new("RGB", (4, 4), (255, 0, 0)).save(outside)
    mtl = obj.parent / "cow.mtl"
    mtl.write_text(mtl.read_text().replace("cow_texture.png", "../elsewhere.png"))
    with pytest.raises(ValueError, match="outside the mesh folder"):
        load_obj(obj)
    _, _, aux = load_obj(obj, allow_external_textures=True)
    torch.testing.assert_close(aux.texture_images["material_1"][0, 0], torch.tensor([1.0, 0, 0]))
    mtl.write_text(mtl.read_text().replace("../elsewhere.png", str(outside)))
    with pytest.raises(ValueError, match="allow_external_textures"):
        load_obj(obj)
    load_obj(obj, load_textures=False)  # textures are not read at all
    obj.write_text(obj.read_text().replace("mtllib cow.mtl", "mtllib ../x/cow.mtl"))
    with pytest.raises(ValueError, match="material file"):
        load_obj(obj)


def test_save_validation(tmp_path):
    v, f = torch.rand(3, 3), torch.tensor([[0, 1, 2]])
    with pytest.raises(ValueError, match="faces"):
        save_obj(tmp_path / "a.obj", v, torch.tensor([[0, 1, 3]]))
    with pytest.raises(ValueError, match="faces"):
        save_obj(tmp_path / "a.obj", v, f.float())
    with pytest.raises(ValueError, match="verts"):
        save_obj(tmp_path / "a.obj", torch.rand(3, 2), f)
    with pytest.raises(ValueError, match="verts"):
        save_ply(tmp_path / "a.ply", torch.full((3, 3), float("nan")), f)
    with pytest.raises(ValueError, match="together"):
        save_obj(tmp_path / "a.obj", v, f, verts_uvs=torch.rand(3, 2))
    with pytest.raises(ValueError, match="texture_map needs"):
        save_obj(tmp_path / "a.obj", v, f, texture_map=torch.rand(4, 4, 3))
    with pytest.raises(ValueError, match="texture_map"):
        save_obj(tmp_path / "a.obj", v, f, torch.rand(3, 2), f, texture_map=torch.rand(4, 4))
    with pytest.raises(ValueError, match="verts_normals"):
        save_ply(tmp_path / "a.ply", v, f, verts_normals=torch.rand(2, 3))
    assert not os.listdir(tmp_path)  # nothing written on failure
