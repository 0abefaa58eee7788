"""PLY: PyTorch3D's load_ply / save_ply / _load_ply_raw semantics, streams and paths."""

from __future__ import annotations

import struct
import warnings
from io import BytesIO, StringIO

import numpy as np
import pytest
import torch

from diffrend.io import load_ply, save_ply
from diffrend.io.ply_io import _load_ply, _load_ply_raw
from diffrend.structures import ico_sphere

HEADER = ["ply", "format ascii 1.0", "element vertex 4", "property float x",
          "property float y", "property float z"]
QUADS = HEADER + ["element face 2", "property list uchar int vertex_index", "end_header",
                  "0 0 0", "1 0 0", "1 1 0", "0 1 0", "4 0 1 2 3", "4 3 2 1 0"]


def test_ascii_quads_fan_triangulated_in_pytorch3d_order():
    for data in ("\n".join(QUADS), "\r\n".join(QUADS).encode()):
        stream = StringIO(data) if isinstance(data, str) else BytesIO(data)
        verts, faces = load_ply(stream)
        assert verts.shape == (4, 3) and verts.dtype == torch.float32
        # all first fan triangles, then all second ones
        assert faces.tolist() == [[0, 1, 2], [3, 2, 1], [0, 2, 3], [3, 1, 0]]


def test_ragged_faces_and_raw_layout():
    lines = HEADER[:2] + ["element vertex 2", "property float x", "property int y",
                          "property int z", "element face 2",
                          "property list uchar int vertex_index", "end_header",
                          "0.5 1 2", "3.5 4 5", "3 0 1 0", "4 1 0 1 0"]
    header, data = _load_ply_raw(StringIO("\n".join(lines)))
    assert header.ascii
    x, yz = data["vertex"]  # one array per run of same-typed columns
    assert x.dtype == np.float32 and x.tolist() == [[0.5], [3.5]]
    assert yz.dtype == np.int32 and yz.tolist() == [[1, 2], [4, 5]]
    assert isinstance(data["face"], list)  # ragged lists: one [array] per face
    assert [row[0].tolist() for row in data["face"]] == [[0, 1, 0], [1, 0, 1, 0]]


@pytest.mark.parametrize("big_endian", [False, True])
def test_binary_mixed_elements(big_endian):
    e = ">" if big_endian else "<"
    fmt = "binary_big_endian" if big_endian else "binary_little_endian"
    header = "\n".join([
        "ply", f"format {fmt} 1.0", "element vertex 2", "property double x",
        "property double y", "property double z", "property uchar red", "property uchar green",
        "property uchar blue", "element face 1", "property list uchar uint vertex_indices",
        "element extra 1", "property list ushort short a", "property int b", "end_header", "",
    ]).encode()
    body = struct.pack(e + "dddBBB" * 2, 1, 2, 3, 255, 0, 51, 4, 5, 6, 0, 255, 0)
    body += struct.pack(e + "BIII", 3, 0, 1, 1)
    body += struct.pack(e + "Hhhi", 2, -7, 9, -3)
    header_, data = _load_ply_raw(BytesIO(header + body))
    assert not header_.ascii and header_.big_endian == big_endian
    assert data["face"].tolist() == [[0, 1, 1]]
    (lst, b), = data["extra"]
    assert lst.tolist() == [-7, 9] and b == -3
    d = _load_ply(BytesIO(header + body))
    assert d.verts.tolist() == [[1, 2, 3], [4, 5, 6]]
    torch.testing.assert_close(d.verts_colors, torch.tensor([[1, 0, 0.2], [0, 1, 0]]))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda ls: ["PLY"] + ls[1:], "Invalid file header"),
        (lambda ls: ls[:2] + ["#comment"] + ls[2:], "Invalid line"),
        (lambda ls: ls[:2] + [ls[3], ls[2]] + ls[4:], "property before any element"),
        (lambda ls: ls[:4] + ["property short x"] + ls[4:], "two properties called x"),
        (lambda ls: ls[:4] + ["property zz y"] + ls[4:], "Invalid datatype: zz"),
        (lambda ls: ls + ["7"], "Extra data at end of file"),
        (lambda ls: ls[:-1], "Not enough data for face"),
        (lambda ls: ls[:-1] + ["5 0 1 2 3"], "did not have the specified length"),
        (lambda ls: ls[:2] + ["element vertex four"] + ls[3:], "was not a number"),
        (lambda ls: ls[:9] + ["0 0"] + ls[10:], "Inconsistent data for vertex"),
    ],
)
def test_syntax_errors_are_named(change, match):
    with pytest.raises(ValueError, match=match):
        load_ply(StringIO("\n".join(change(list(QUADS)))))


def test_binary_needs_binary_stream_and_faces_need_three_corners():
    data = BytesIO()
    save_ply(data, torch.rand(3, 3), torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="Text stream"):
        load_ply(StringIO(data.getvalue().decode("latin-1")))
    bad = list(QUADS)
    bad[-1] = "2 0 1"
    bad[-2] = "2 1 2"
    with pytest.raises(ValueError, match="at least 3 vertices"):
        load_ply(StringIO("\n".join(bad)))
    no_xyz = [ln for ln in QUADS if ln != "property float z"]
    no_xyz = no_xyz[:8] + ["0 0"] * 4 + no_xyz[12:]
    with pytest.raises(ValueError, match="Invalid vertices"):
        load_ply(StringIO("\n".join(no_xyz)))


@pytest.mark.parametrize("ascii", [False, True])
def test_round_trip_streams_and_paths(tmp_path, ascii):
    m = ico_sphere(1)
    v, f = m.verts_packed(), m.faces_packed()
    stream = BytesIO()
    save_ply(stream, v, f, verts_normals=m.verts_normals_packed(), ascii=ascii,
             decimal_places=7 if ascii else None)
    stream.seek(0)
    d = _load_ply(stream)
    torch.testing.assert_close(d.verts, v, atol=1e-6, rtol=0)
    torch.testing.assert_close(d.verts_normals, m.verts_normals_packed(), atol=1e-6, rtol=0)
    assert torch.equal(d.faces, f)
    path = tmp_path / "out" / "s.ply"
    save_ply(path, v, f, ascii=ascii)
    back_v, back_f = load_ply(path)
    assert torch.equal(back_f, f) and back_v.shape == v.shape
    assert [p.name for p in path.parent.iterdir()] == ["s.ply"]  # written atomically
    assert (path.stat().st_mode & 0o777) != 0o600  # ordinary file mode


def test_binary_is_shorter_and_colors_as_uint8_or_float():
    v = torch.rand(10, 3)
    c = torch.rand(10, 3)
    sizes = {}
    for ascii in (True, False):
        s = BytesIO()
        save_ply(s, v, ascii=ascii, verts_colors=c)
        sizes[ascii] = len(s.getvalue())
    assert sizes[False] < sizes[True]
    for as_uint8, dtype_line, tol in ((True, b"property uchar red", 0.5 / 255),
                                      (False, b"property float red", 1e-7)):
        s = BytesIO()
        save_ply(s, v, verts_colors=c, colors_as_uint8=as_uint8)
        assert dtype_line in s.getvalue()
        s.seek(0)
        torch.testing.assert_close(_load_ply(s).verts_colors, c, atol=tol, rtol=0)


def test_validation_strict_and_lenient():
    v = torch.rand(3, 3)
    with pytest.raises(ValueError, match="'verts'"):
        save_ply(BytesIO(), torch.rand(3, 4))
    with pytest.raises(ValueError, match="'faces'"):
        save_ply(BytesIO(), v, torch.tensor([[0, 1, 2, 0]]))
    with pytest.raises(ValueError, match="out of range"):
        save_ply(BytesIO(), v, torch.tensor([[0, 1, 3]]))
    with pytest.warns(UserWarning, match="Faces have invalid indices"):
        save_ply(BytesIO(), v, torch.tensor([[0, 1, 3]]), strict=False)
    with pytest.warns(UserWarning, match="Empty 'verts' provided"):
        s = BytesIO()
        save_ply(s, torch.zeros(0, 3), torch.tensor([[0, 1, 2]]))
    s.seek(0)
    verts, faces = load_ply(s)
    assert verts.shape == (0, 3) and faces.shape == (0, 3)
    bad = list(QUADS)
    bad[-1] = "4 3 2 1 9"
    with pytest.warns(UserWarning, match="Faces have invalid indices"):
        load_ply(StringIO("\n".join(bad)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_ply(StringIO("\n".join(QUADS)))
