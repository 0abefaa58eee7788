"""Fuzzing the file loaders (issue 16): OBJ/MTL, PLY, transforms.json / cameras.json.

Inputs are valid files mutated at the byte level (replaced, inserted and deleted bytes),
files built from random tokens (hostile numbers, keywords, separators, BOMs, paths), and
random JSON (deep nesting, NaN/inf, wrong types, paths out of the folder). Every loader
call must:

* raise nothing but the documented errors, ValueError (and subclasses) or
  FileNotFoundError (warnings are fine);
* return only finite floating-point tensors;
* open no file outside the dataset folder: each case lives in ``<root>/data`` beside
  sentinel files in ``<root>`` (``secret.png``, ``secret.mtl``, ``secret.json``), and an
  audit hook records every ``open`` while a loader runs.

The default run is short and reproducible (25 examples per test, the same each time; the
whole file takes well under a minute). ``DIFFREND_FUZZ_EXAMPLES=N`` runs N fresh examples
per test; the longer run used for the issue (``--hypothesis-show-statistics`` counts the
loads and refusals)::

    DIFFREND_FUZZ_EXAMPLES=1000 python -m pytest -q tests/test_fuzz_loaders.py \
        --hypothesis-show-statistics
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from diffrend.io import IO, load_obj, load_ply, load_points_ply, load_views

EXAMPLES = int(os.environ.get("DIFFREND_FUZZ_EXAMPLES", "25"))
# The short default run draws the same examples every time (CI stays reproducible); a run
# with DIFFREND_FUZZ_EXAMPLES set draws fresh ones.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                derandomize="DIFFREND_FUZZ_EXAMPLES" not in os.environ)
DOCUMENTED = (ValueError, FileNotFoundError)

# --------------------------------------------------------------------------- harness

_opened: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], (str, bytes, Path)):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # cannot be removed: it records only while _opened is a list


@contextmanager
def sandbox() -> Iterator[Path]:
    """``<root>/data`` (returned) beside sentinel files that must never be opened."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        Image.fromarray(np.full((4, 4, 4), 200, np.uint8)).save(root / "secret.png")
        (root / "secret.mtl").write_text("newmtl a\nKd 1 0 0\nmap_Kd secret.png\n")
        (root / "secret.json").write_text("{}")
        data = root / "data"
        data.mkdir()
        yield data


def check_call(folder: Path, fn: Callable[[], Any]) -> Any:
    """``fn()`` with the three rules checked; its result, or None after a documented error."""
    global _opened
    _opened = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fn()
        event("loaded")
    except DOCUMENTED as e:
        event(f"refused: {type(e).__name__}")
        result = None
    finally:
        opened, _opened = _opened, None
    root = folder.parent
    for name in opened:
        p = Path(name) if os.path.isabs(name) else Path.cwd() / name
        p = Path(os.path.normpath(p))
        inside_root = p.is_relative_to(root)
        assert not (inside_root and not p.is_relative_to(folder)), f"opened {name}"
        assert not p.is_relative_to("/etc"), f"opened {name}"
    assert_finite(result)
    return result


def assert_finite(x: Any) -> None:
    if torch.is_tensor(x):
        assert not x.is_floating_point() or bool(torch.isfinite(x).all()), "non-finite output"
    elif isinstance(x, (tuple, list)):
        for y in x:
            assert_finite(y)
    elif isinstance(x, dict):
        for y in x.values():
            assert_finite(y)
    elif hasattr(x, "_asdict"):
        assert_finite(tuple(x))
    elif hasattr(x, "verts_list"):  # Meshes / Pointclouds
        assert_finite([x.verts_list() if hasattr(x, "faces_list") else x.points_list()])
    elif hasattr(x, "images") and hasattr(x, "cameras"):  # MultiViewData
        assert_finite([x.images, x.masks, x.cameras.R, x.cameras.T])


# --------------------------------------------------------------------------- strategies

HOSTILE_NUMBERS = ["nan", "-nan", "inf", "-inf", "1e39", "-1e39", "1e400", "1e-400", "0", "-0",
                   "99999999999999999999", "-99999999999999999999", "18446744073709551617",
                   "9223372036854775808", "-1", "3", "1/1/1", "1//1", "//", "/", "0x10", "1_0"]
PATHS = ["../secret.png", "../secret.mtl", "../secret.json", "/etc/passwd", "/etc/hostname",
         "sub/../../secret.png", "./tex.png", "tex.png", "m.mtl", "x" * 300, "a\x00b", "",
         "..", ".", "/", "tex", "C:\\secret.png"]
SEPARATORS = [" ", "\t", "  ", "\n", "\r\n", "\r", "\ufeff", "#", " # c ", "\\\n"]
OBJ_KEYS = ["v", "vt", "vn", "f", "mtllib", "usemtl", "o", "g", "s", "l", "vp", "p"]
MTL_KEYS = ["newmtl", "Kd", "Ka", "Ks", "Ns", "map_Kd", "d", "illum"]
ENCODINGS = ["utf-8", "latin-1", "cp1252", "utf-16"]

token = st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.sampled_from(PATHS),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.integers(-2**70, 2**70).map(str), st.text(max_size=6))


def random_lines(keys: list[str]) -> st.SearchStrategy[str]:
    line = st.tuples(st.sampled_from(keys), st.lists(token, max_size=5),
                     st.sampled_from(SEPARATORS)).map(lambda t: t[0] + " " + " ".join(t[1])
                                                      + t[2])
    return st.lists(line, max_size=20).map("\n".join)


def encoded(text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return st.tuples(text, st.sampled_from(ENCODINGS)).map(
        lambda t: t[0].encode(t[1], errors="replace"))


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` with a few bytes replaced, inserted or deleted, or a hostile token spliced in."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["replace", "insert", "delete", "token"]))
        if op == "replace" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        else:
            tok = draw(st.one_of(st.sampled_from(HOSTILE_NUMBERS + PATHS + SEPARATORS), token))
            data[pos:pos] = tok.encode("utf-8", errors="replace")
    return bytes(data)


OBJ = (b"mtllib m.mtl\n# cow\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nvt 0 0\nvt 1 0\nvt 0 1\n"
       b"vn 0 0 1\nusemtl red\nf 1/1/1 2/2/1 3/3/1\nusemtl tex\nf 2/2/1 4/1/1 3/3/1 1/2/1\n")
MTL = b"newmtl red\nKd 1 0 0\nKa 0.1 0.1 0.1\nNs 10\nnewmtl tex\nKd 1 1 1\nmap_Kd tex.png\n"
PLY_ASCII = (b"ply\nformat ascii 1.0\ncomment TextureFile tex.png\nelement vertex 3\n"
             b"property float x\nproperty float y\nproperty float z\nproperty uchar red\n"
             b"property uchar green\nproperty uchar blue\nelement face 1\n"
             b"property list uchar int vertex_indices\nend_header\n0 0 0 255 0 0\n"
             b"1 0 0 0 255 0\n0 1 0 0 0 255\n3 0 1 2\n")
PLY_BINARY = (b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\n"
              b"property float y\nproperty float z\nproperty float texture_u\n"
              b"property float texture_v\nelement face 1\n"
              b"property list uchar int vertex_indices\ncomment TextureFile tex.png\n"
              b"end_header\n"
              + np.array([[0, 0, 0, 0, 0], [1, 0, 0, 1, 0], [0, 1, 0, 0, 1]], "<f4").tobytes()
              + b"\x03" + np.array([0, 1, 2], "<i4").tobytes())


def write_texture(folder: Path) -> None:
    Image.fromarray(np.full((4, 4, 3), 128, np.uint8)).save(folder / "tex.png")


# --------------------------------------------------------------------------- OBJ / MTL

obj_bytes = st.one_of(mutated(OBJ), encoded(random_lines(OBJ_KEYS)))
mtl_bytes = st.one_of(mutated(MTL), encoded(random_lines(MTL_KEYS)), st.just(MTL))


@FUZZ
@given(obj=obj_bytes, mtl=mtl_bytes, strict=st.booleans(), atlas=st.booleans())
def test_fuzz_obj_and_mtl(obj: bytes, mtl: bytes, strict: bool, atlas: bool) -> None:
    with sandbox() as folder:
        write_texture(folder)
        (folder / "m.mtl").write_bytes(mtl)
        path = folder / "a.obj"
        path.write_bytes(obj)
        check_call(folder, lambda: load_obj(path, create_texture_atlas=atlas, strict=strict))
        check_call(folder, lambda: IO().load_mesh(path))


# --------------------------------------------------------------------------- PLY

ply_header_lines = st.lists(st.one_of(
    st.tuples(st.sampled_from(["vertex", "face", "other"]),
              st.sampled_from(["3", "0", "-1", "1000000000000", "18446744073709551617", "x"]))
    .map(lambda t: f"element {t[0]} {t[1]}"),
    st.tuples(st.sampled_from(["float", "double", "uchar", "int", "uint", "char", "bogus"]),
              st.sampled_from(["x", "y", "z", "red", "nx", "texture_u", "texture_v"]))
    .map(lambda t: f"property {t[0]} {t[1]}"),
    st.sampled_from(["property list uchar int vertex_indices", "property list uint int "
                     "vertex_indices", "comment TextureFile ../secret.png",
                     "comment TextureFile /etc/passwd", "comment TextureFile tex.png"])),
    max_size=10)


@st.composite
def generated_ply(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from(["ascii", "binary_little_endian", "binary_big_endian"]))
    head = "\n".join(["ply", f"format {fmt} 1.0", *draw(ply_header_lines), "end_header", ""])
    if fmt == "ascii":
        body = draw(random_lines(HOSTILE_NUMBERS)).encode()
    else:
        body = draw(st.one_of(st.binary(max_size=200), st.lists(st.floats(width=32), max_size=30)
                              .map(lambda x: np.array(x, "<f4").tobytes())))
    return head.encode() + body


ply_bytes = st.one_of(mutated(PLY_ASCII), mutated(PLY_BINARY), generated_ply())


@FUZZ
@given(ply=ply_bytes)
def test_fuzz_ply(ply: bytes) -> None:
    with sandbox() as folder:
        write_texture(folder)
        path = folder / "a.ply"
        path.write_bytes(ply)
        check_call(folder, lambda: load_ply(path))
        check_call(folder, lambda: load_points_ply(path))
        check_call(folder, lambda: IO().load_mesh(path))
        check_call(folder, lambda: IO().load_pointcloud(path))


# --------------------------------------------------------------------------- views

json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
              st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(PATHS),
              st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=12)
EYE = np.eye(4)
EYE[2, 3] = 3.0
FRAME = {"file_path": "r_0", "transform_matrix": EYE.tolist()}
FRAME_KEYS = ["file_path", "mask_path", "transform_matrix", "fl_x", "w", "camera_angle_x"]
VIEW_KEYS = ["image", "mask", "R", "T", "fov", "focal_length", "principal_point"]


@st.composite
def transforms_spec(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["transforms", "cameras", "random"]))
    if kind == "random":
        return draw(json_value)
    if kind == "transforms":
        spec: dict[str, Any] = {"camera_angle_x": 0.7, "frames": [dict(FRAME)]}
        target, keys = spec["frames"][0], FRAME_KEYS
    else:
        spec = {"kind": "fov_perspective", "views": [{"image": "r_0.png", "R": np.eye(3).tolist(),
                                                      "T": [0, 0, 3]}]}
        target, keys = spec["views"][0], VIEW_KEYS
    for _ in range(draw(st.integers(0, 3))):
        value = draw(st.one_of(json_value, st.sampled_from(PATHS)))
        if draw(st.booleans()):
            target[draw(st.sampled_from(keys))] = value
        else:
            spec[draw(st.sampled_from(["camera_angle_x", "fl_x", "frames", "views", "kind",
                                       "image_size"]))] = value
    return spec


@st.composite
def json_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(["transforms.json", "cameras.json"]))
    choice = draw(st.integers(0, 3))
    if choice == 0:  # deep nesting
        depth = draw(st.sampled_from([10, 1000, 100000]))
        return name, ("[" * depth + "]" * depth).encode()
    spec = draw(transforms_spec())
    if isinstance(spec, dict) and "views" in spec and draw(st.booleans()):
        name = "cameras.json"  # mostly the name that fits, so that more cases load
    text = json.dumps(spec)  # NaN / Infinity literals included
    if choice == 1:
        return name, draw(mutated(text.encode()))
    return name, text.encode()


@FUZZ
@given(spec=json_bytes(), image_size=st.sampled_from([None, 1, 3, 10**6]),
       allow_outside=st.booleans())
def test_fuzz_views(spec: tuple[str, bytes], image_size: int | None,
                    allow_outside: bool) -> None:
    name, data = spec
    with sandbox() as folder:
        img = np.zeros((4, 4, 4), np.uint8)
        img[1:3, 1:3] = 255
        Image.fromarray(img).save(folder / "r_0.png")
        (folder / name).write_bytes(data)
        if allow_outside:  # then reading outside is the user's choice: only types and values
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    assert_finite(load_views(folder, image_size=image_size, allow_outside=True))
            except DOCUMENTED:
                pass
        else:
            check_call(folder, lambda: load_views(folder, image_size=image_size))
