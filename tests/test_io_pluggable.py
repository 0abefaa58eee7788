"""IO (pluggable formats), MTL parsing, texture atlases and load_obj/save_obj's PyTorch3D
forms (streams, decimal_places, normals, strict=False)."""

from __future__ import annotations

import warnings
from io import BytesIO, StringIO

import numpy as np
import pytest
import torch
from PIL import Image

from diffrend.io import (
    IO,
    MeshFormatInterpreter,
    load_obj,
    load_objs_as_meshes,
    save_obj,
)
from diffrend.io.mtl_io import (
    _bilinear_interpolation_grid_sample,
    _bilinear_interpolation_vectorized,
    _parse_mtl,
    make_mesh_texture_atlas,
    parse_mtl_text,
)
from diffrend.shading import TexturesAtlas, TexturesUV, TexturesVertex
from diffrend.structures import Meshes, Pointclouds, ico_sphere

QUAD = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"


def test_io_mesh_ply_round_trip_with_colors_and_normals(tmp_path):
    m = ico_sphere(1)
    colors = torch.rand(m.verts_packed().shape)
    mesh = Meshes(m.verts_list(), m.faces_list(), textures=TexturesVertex([colors]),
                  verts_normals=[m.verts_normals_packed()])
    io = IO()
    for binary in (True, False):
        path = tmp_path / f"m{binary}.ply"
        io.save_mesh(mesh, path, binary=binary, decimal_places=None if binary else 8)
        back = io.load_mesh(path)
        torch.testing.assert_close(back.verts_packed(), m.verts_packed(), atol=1e-6, rtol=0)
        assert torch.equal(back.faces_packed(), m.faces_packed())
        assert back.has_verts_normals()
        assert isinstance(back.textures, TexturesVertex)
        torch.testing.assert_close(back.textures.verts_features_list()[0], colors,
                                   atol=1e-6, rtol=0)
    assert io.load_mesh(path, include_textures=False).textures is None
    four = Meshes(m.verts_list(), m.faces_list(),
                  textures=TexturesVertex([torch.rand(len(colors), 4)]))
    with pytest.warns(UserWarning, match="has 4 colors, not 3"):
        io.save_mesh(four, tmp_path / "four.ply")


def test_io_pointcloud_and_errors(tmp_path):
    pts, feats, normals = torch.rand(20, 3), torch.rand(20, 3), torch.rand(20, 3)
    io = IO()
    io.save_pointcloud(Pointclouds([pts], normals=[normals], features=[feats]),
                       tmp_path / "p.ply", colors_as_uint8=True)
    back = io.load_pointcloud(tmp_path / "p.ply")
    torch.testing.assert_close(back.points_packed(), pts)
    torch.testing.assert_close(back.normals_packed(), normals)
    torch.testing.assert_close(back.features_packed(), feats, atol=0.5 / 255, rtol=0)
    with pytest.raises(ValueError, match="No mesh interpreter found to read"):
        io.load_mesh(tmp_path / "p.xyz")
    with pytest.raises(ValueError, match="No point cloud interpreter found to write"):
        io.save_pointcloud(back, tmp_path / "p.obj")
    with pytest.raises(ValueError, match="single mesh"):
        io.save_mesh(ico_sphere(0).extend(2), tmp_path / "two.ply")
    with pytest.raises(ValueError, match="Invalid file header"):
        (tmp_path / "fake.ply").write_text("v 0 0 0\n")
        io.load_mesh(tmp_path / "fake.ply")
    with pytest.raises(ValueError, match="interpreter"):
        io.register_meshes_format(object())


def test_registered_format_is_tried_first(tmp_path):
    calls = []

    class Fake(MeshFormatInterpreter):
        def read(self, path, include_textures, device, path_manager, **kwargs):
            calls.append(path)
            return ico_sphere(0) if str(path).endswith(".fake") else None

        def save(self, data, path, path_manager, binary, **kwargs):
            return False

    io = IO()
    io.register_meshes_format(Fake())
    assert io.load_mesh(tmp_path / "x.fake").num_verts_per_mesh().tolist() == [12]
    io.save_mesh(ico_sphere(0), tmp_path / "x.obj")  # Fake declines, OBJ writes
    assert io.load_mesh(tmp_path / "x.obj").num_faces_per_mesh().tolist() == [20]
    assert len(calls) == 2
    bare = IO(include_default_formats=False)
    with pytest.raises(ValueError, match="No mesh interpreter"):
        bare.load_mesh(tmp_path / "x.obj")


def test_io_obj_texture_round_trip_and_ply_texture_file(tmp_path):
    verts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    image = torch.rand(4, 5, 3)
    tex = TexturesUV([image], [faces], [verts[:, :2]])
    IO().save_mesh(Meshes([verts], [faces], textures=tex), tmp_path / "q.obj")
    assert (tmp_path / "q.mtl").read_text() == "newmtl mesh\nmap_Kd q.png\n"
    back = IO().load_mesh(tmp_path / "q.obj")
    torch.testing.assert_close(back.textures.maps_padded()[0], image, atol=0.5 / 255, rtol=0)
    Image.fromarray(np.full((2, 3, 3), 255, np.uint8)).save(tmp_path / "white.png")
    (tmp_path / "uv.ply").write_text("\n".join([
        "ply", "format ascii 1.0", "comment TextureFile white.png", "element vertex 3",
        "property float x", "property float y", "property float z", "property float texture_u",
        "property float texture_v", "element face 1", "property list uchar int vertex_index",
        "end_header", "0 0 0 0 0", "1 0 0 1 0", "0 1 0 0 1", "3 0 1 2"]))
    m = IO().load_mesh(tmp_path / "uv.ply")
    assert isinstance(m.textures, TexturesUV)
    assert m.textures.maps_padded().shape == (1, 2, 3, 3)
    assert m.textures.verts_uvs_padded()[0].tolist() == [[0, 0], [1, 0], [0, 1]]


def test_parse_mtl_keeps_spaces_and_expands_grey(tmp_path):
    props, files = parse_mtl_text("newmtl a\nKd 0.5\nKs 1 0 0\nNs 7\nmap_Kd my tex.png\n"
                                  "newmtl b\nmap_Kd -s 1 1 1 b.png\n")
    assert props["a"]["diffuse_color"].tolist() == [0.5, 0.5, 0.5]
    assert props["a"]["shininess"].tolist() == [7.0] and props["b"] == {}
    assert files == {"a": "my tex.png", "b": "b.png"}
    (tmp_path / "m.mtl").write_text("newmtl a\nKa 1 1 1\n")
    props2, _ = _parse_mtl(tmp_path / "m.mtl")
    assert props2["a"]["ambient_color"].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="colour"):
        parse_mtl_text("newmtl a\nKd 1 0\n")


def test_atlas_colors_and_image_orientation():
    uvs = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    faces_uvs = torch.tensor([[0, 1, 2], [0, 1, 2], [0, 1, 2]])
    names = np.array(["red", "img", ""], dtype=object)
    # image rows are top-to-bottom: the top half (v > 0.5) is green, the bottom black
    image = torch.zeros(8, 8, 3)
    image[:4, :, 1] = 1.0
    atlas = make_mesh_texture_atlas({"red": {"diffuse_color": torch.tensor([1.0, 0, 0])}},
                                    {"img": image}, names, faces_uvs, uvs, 6, "repeat")
    assert atlas.shape == (3, 6, 6, 3)
    assert torch.equal(atlas[0], torch.tensor([1.0, 0, 0]).expand(6, 6, 3))
    assert torch.equal(atlas[2], torch.ones(6, 6, 3))  # no material: white
    # texel [i, j] (i + j < R) has b1, the weight of corner 1 (uv (0, 1)), = (i + 1/3) / R:
    # rows with large i sample high v, i.e. the green top of the image.
    assert atlas[1, 5, 0, 1] > 0.9 and atlas[1, 0, 0, 1] < 0.1
    with pytest.raises(ValueError, match="texture_wrap"):
        make_mesh_texture_atlas({}, {}, names, faces_uvs, uvs, 2, "mirror")


def test_bilinear_helpers_agree_inside():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(5, 7, 3, generator=g)
    grid = torch.rand(4, 3, 3, 2, generator=g)
    torch.testing.assert_close(_bilinear_interpolation_grid_sample(image, grid),
                               _bilinear_interpolation_vectorized(image, grid))
    corner = _bilinear_interpolation_vectorized(image, torch.zeros(1, 1, 1, 2))
    torch.testing.assert_close(corner[0, 0, 0], image[0, 0])


def test_load_obj_texture_atlas_and_meshes(tmp_path):
    (tmp_path / "m.mtl").write_text("newmtl red\nKd 1 0 0\n")
    (tmp_path / "m.obj").write_text("mtllib m.mtl\n" + QUAD + "usemtl red\nf 1/1 2/2 3/3 4/4\n")
    _, faces, aux = load_obj(tmp_path / "m.obj", create_texture_atlas=True,
                             texture_atlas_size=3)
    assert aux.texture_atlas.shape == (2, 3, 3, 3)
    assert torch.equal(aux.texture_atlas, torch.tensor([1.0, 0, 0]).expand(2, 3, 3, 3))
    mesh = load_objs_as_meshes([tmp_path / "m.obj"], create_texture_atlas=True)
    assert isinstance(mesh.textures, TexturesAtlas)
    assert mesh.textures.atlas_padded().shape == (1, 2, 4, 4, 3)
    with pytest.raises(ValueError, match="texture_wrap"):
        load_obj(tmp_path / "m.obj", texture_wrap="mirror")


def test_load_obj_streams_and_pytorch3d_messages():
    verts, faces, aux = load_obj(StringIO(QUAD + "f 1/1 2/2 3/3\n"))
    assert verts.shape == (4, 3) and faces.textures_idx.tolist() == [[0, 1, 2]]
    verts, faces, _ = load_obj(BytesIO(b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf -3 -2 -1\n"))
    assert faces.verts_idx.tolist() == [[0, 1, 2]]
    for text, match in (("vt 0.1", "does not have 2 values"),
                        ("vn 0.1", "does not have 3 values"),
                        ("f 2//1 3/1 4/1/2", "Vertex properties are inconsistent"),
                        ("f 2/1/1/3", "Face vertices can only have 3 properties")):
        with pytest.raises(ValueError, match=match):
            load_obj(StringIO(text), strict=False)
    bad = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf -2 5 1\n"
    with pytest.raises(ValueError, match="uses vertex 5"):
        load_obj(StringIO(bad))
    with pytest.warns(UserWarning, match="Faces have invalid indices"):
        load_obj(StringIO(bad), strict=False)
    verts, faces, _ = load_obj(StringIO("v 1 2 3\n"), strict=False)  # no faces: lenient
    assert verts.shape == (1, 3) and faces.verts_idx.shape == (0, 3)
    with pytest.warns(UserWarning, match="No mtl file provided"):
        load_obj(StringIO("v 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl x\nf 1 2 3\n"))


def test_save_obj_pytorch3d_layout(tmp_path):
    verts = torch.tensor([[0.01, 0.2, 0.301], [0.2, 0.03, 0.408], [0.3, 0.4, 0.05]])
    faces = torch.tensor([[0, 2, 1]])
    normals = torch.tensor([[0.0, 0, 1], [0, 1, 0]])
    out = StringIO()
    save_obj(out, verts, faces, decimal_places=2, normals=normals,
             faces_normals_idx=torch.tensor([[0, 1, 0]]))
    assert out.getvalue() == ("v 0.01 0.20 0.30\nv 0.20 0.03 0.41\nv 0.30 0.40 0.05\n"
                              "vn 0.00 0.00 1.00\nvn 0.00 1.00 0.00\nf 1//1 3//2 2//1")
    exact = BytesIO()
    save_obj(exact, verts, faces)
    back, _, _ = load_obj(BytesIO(exact.getvalue()))
    assert torch.equal(back, verts)  # default precision is lossless for float32
    with pytest.raises(ValueError, match="together"):
        save_obj(StringIO(), verts, faces, verts_uvs=torch.rand(3, 2))
    lenient = StringIO()
    save_obj(lenient, verts, faces, verts_uvs=torch.rand(3, 2), strict=False)
    assert "vt" not in lenient.getvalue()  # partial texture arguments are ignored
    with pytest.warns(UserWarning, match="Faces have invalid indices"):
        save_obj(StringIO(), verts, torch.tensor([[0, 1, 3]]), strict=False)
    with pytest.warns(UserWarning, match="Empty 'verts' and 'faces'"):
        save_obj(tmp_path / "e.obj", torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64))
    assert (tmp_path / "e.obj").read_text() == ""
    with pytest.raises(ValueError, match="needs a path"):
        save_obj(StringIO(), verts, faces, verts_uvs=torch.rand(3, 2), faces_uvs=faces,
                 texture_map=torch.rand(2, 2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_obj(StringIO(), verts, faces)
