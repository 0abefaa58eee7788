"""PLY meshes and point clouds in and out, with PyTorch3D's ``load_ply`` / ``save_ply``.

The reader is written here rather than delegated to plyfile or trimesh: PyTorch3D's
contract (and its tests) fixes things those libraries do differently: text streams as
input, the raw layout of each element (one array per run of same-typed columns, ragged
lists as Python lists), the wording of every syntax error, trailing-data detection, and
fan-triangulation order. The format is small; numpy does the bulk decoding.
Nothing here is differentiable: loaders return constants.
"""

from __future__ import annotations

import io
import itertools
import struct
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._files import PathOrStream, check_face_indices, open_input, write_output

# PLY type name -> (numpy type, struct code); both spellings of the spec are accepted.
_TYPES: dict[str, tuple[type, str]] = {}
for _names, _np, _code in (
    (("char", "int8"), np.int8, "b"), (("uchar", "uint8"), np.uint8, "B"),
    (("short", "int16"), np.int16, "h"), (("ushort", "uint16"), np.uint16, "H"),
    (("int", "int32"), np.int32, "i"), (("uint", "uint32"), np.uint32, "I"),
    (("float", "float32"), np.float32, "f"), (("double", "float64"), np.float64, "d"),
):
    for _n in _names:
        _TYPES[_n] = (_np, _code)


@dataclass
class PlyProperty:
    """One property of an element: ``dtype`` of the values; ``count_dtype`` for a list."""

    name: str
    dtype: str
    count_dtype: str | None = None


@dataclass
class PlyElement:
    """An element of the header: its name, how many there are, and its properties."""

    name: str
    count: int
    properties: list[PlyProperty] = field(default_factory=list)

    def add(self, prop: PlyProperty) -> None:
        if any(p.name == prop.name for p in self.properties):
            raise ValueError(f"Cannot have two properties called {prop.name} in {self.name}.")
        self.properties.append(prop)

    @property
    def scalar_only(self) -> bool:
        return all(p.count_dtype is None for p in self.properties)

    @property
    def single_list(self) -> bool:
        return len(self.properties) == 1 and self.properties[0].count_dtype is not None

    def runs(self) -> list[tuple[str, int]]:
        """(type, length) of each run of consecutive same-typed scalar properties."""
        return [(t, len(list(g))) for t, g in
                itertools.groupby(_TYPES[p.dtype][0].__name__ for p in self.properties)]


@dataclass
class PlyHeader:
    """A PLY header: format (``ascii``, ``big_endian``), elements, comments, obj_info."""

    ascii: bool = True
    big_endian: bool = False
    elements: list[PlyElement] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    obj_info: list[str] = field(default_factory=list)

    def element(self, name: str) -> PlyElement | None:
        return next((e for e in self.elements if e.name == name), None)


_FORMATS = {
    "format ascii 1.0": (True, False),
    "format binary_little_endian 1.0": (False, False),
    "format binary_big_endian 1.0": (False, True),
}


def _read_header(f: Any) -> PlyHeader:
    first = f.readline()
    if first not in (b"ply\n", b"ply\r\n", "ply\n", "ply\r\n"):
        raise ValueError("Invalid file header.")
    header = PlyHeader()
    seen_format = False
    while True:
        raw = f.readline()
        if not raw:
            raise ValueError("Invalid file header: no end_header line.")
        line = (raw.decode("ascii", errors="replace") if isinstance(raw, bytes) else raw).strip()
        if line == "end_header":
            break
        if line.startswith("format"):
            if seen_format or line not in _FORMATS:
                raise ValueError("Invalid format line.")
            header.ascii, header.big_endian = _FORMATS[line]
            seen_format = True
        elif line.startswith("comment ") or line.startswith("comment\t"):
            header.comments.append(line[8:])
        elif not line or line == "comment":
            continue
        elif line.startswith("obj_info"):
            header.obj_info.append(line[9:])
        elif line.startswith("element"):
            _header_element(header, line)
        elif line.startswith("property"):
            _header_property(header, line)
        else:
            raise ValueError(f"Invalid line: {line}.")
    if not header.elements:
        raise ValueError("No elements found.")
    if not header.elements[-1].properties:
        raise ValueError("Found an element with no properties.")
    if not seen_format:
        raise ValueError("No format line found.")
    return header


def _header_element(header: PlyHeader, line: str) -> None:
    if header.elements and not header.elements[-1].properties:
        raise ValueError("Found an element with no properties.")
    items = line.split()
    if len(items) != 3:
        raise ValueError(f"Invalid line: {line}")
    try:
        count = int(items[2])
    except ValueError:
        raise ValueError(f"Number of items for {items[1]} was not a number.") from None
    if count < 0:
        raise ValueError(f"Number of items for {items[1]} is negative.")
    header.elements.append(PlyElement(items[1], count))


def _header_property(header: PlyHeader, line: str) -> None:
    if not header.elements:
        raise ValueError("Encountered property before any element.")
    items = line.split()
    if len(items) == 3 and items[1] != "list":
        prop = PlyProperty(items[2], items[1])
    elif len(items) == 5 and items[1] == "list":
        prop = PlyProperty(items[4], items[3], items[2])
    else:
        raise ValueError(f"Invalid line: {line}")
    for t in (prop.count_dtype, prop.dtype):
        if t is not None and t not in _TYPES:
            raise ValueError(f"Invalid datatype: {t}")
    header.elements[-1].add(prop)


# --------------------------------------------------------------------------- ASCII data


def _split_runs(table: np.ndarray, elem: PlyElement) -> list[np.ndarray]:
    """Columns of a (count, P) table grouped into one array per same-typed run."""
    out, start = [], 0
    for tname, n in elem.runs():
        with np.errstate(over="ignore", invalid="ignore"):  # (overflow: checked as inf later)
            out.append(table[:, start:start + n].astype(np.dtype(tname)))
        start += n
    return out


def _ascii_element(rows: list[list[str]], elem: PlyElement) -> Any:
    if elem.scalar_only:
        if any(len(r) != len(elem.properties) for r in rows):
            raise ValueError(f"Inconsistent data for {elem.name}.")
        try:
            table = np.array(rows, dtype=np.float64).reshape(len(rows), len(elem.properties))
        except ValueError:
            raise ValueError(f"Bad numerical data for {elem.name}.") from None
        return _split_runs(table, elem)
    if elem.single_list:
        np_type = _TYPES[elem.properties[0].dtype][0]
        try:
            lengths = [int(r[0]) for r in rows]
        except ValueError:
            raise ValueError(f"A list length of {elem.name} was not a number.") from None
        if any(n + 1 != len(r) for n, r in zip(lengths, rows, strict=True)):
            raise ValueError(f"A line of {elem.name} data did not have the specified length.")
        if len(set(lengths)) == 1:
            return np.array([r[1:] for r in rows], dtype=np.float64).astype(np_type)
        return [[np.array(r[1:], dtype=np.float64).astype(np_type)] for r in rows]
    return [_ascii_mixed_row(r, elem) for r in rows]


def _ascii_mixed_row(row: list[str], elem: PlyElement) -> list:
    values: list = []
    tokens = iter(row)
    try:
        for prop in elem.properties:
            np_type = _TYPES[prop.dtype][0]
            if prop.count_dtype is None:
                tok = next(tokens)
                values.append(float(tok) if np_type in (np.float32, np.float64) else int(tok))
            else:
                n = int(next(tokens))
                vals = [next(tokens) for _ in range(n)]
                values.append(np.array(vals, dtype=np.float64).astype(np_type))
    except StopIteration:
        raise ValueError(f"Too little data for an element of {elem.name}.") from None
    except ValueError:
        raise ValueError(f"Bad numerical data for {elem.name}.") from None
    if next(tokens, None) is not None:
        raise ValueError(f"Too much data for an element of {elem.name}.")
    return values


def _read_ascii(text: str, header: PlyHeader) -> dict[str, Any]:
    # One element instance per non-blank line.
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    pos = 0
    data: dict[str, Any] = {}
    for elem in header.elements:
        if elem.count == 0:
            data[elem.name] = []
            continue
        rows = lines[pos:pos + elem.count]
        if len(rows) < elem.count:
            raise ValueError(f"Not enough data for {elem.name}.")
        pos += elem.count
        data[elem.name] = _ascii_element(rows, elem)
    if pos < len(lines):
        raise ValueError("Extra data at end of file: " + " ".join(lines[pos])[:20])
    return data


# --------------------------------------------------------------------------- binary data


class _Bytes:
    """A cursor over the binary body."""

    def __init__(self, buf: bytes, big_endian: bool) -> None:
        self.buf, self.pos = buf, 0
        self.end = ">" if big_endian else "<"

    def take(self, n: int, what: str) -> int:
        if self.pos + n > len(self.buf):
            raise ValueError(f"Not enough data for {what}.")
        start = self.pos
        self.pos += n
        return start

    def dtype(self, ply_type: str) -> np.dtype:
        return np.dtype(_TYPES[ply_type][0]).newbyteorder(self.end)

    def scalar(self, ply_type: str, what: str) -> Any:
        st = struct.Struct(self.end + _TYPES[ply_type][1])
        return st.unpack_from(self.buf, self.take(st.size, what))[0]

    def array(self, ply_type: str, n: int, what: str) -> np.ndarray:
        dt = self.dtype(ply_type)
        start = self.take(n * dt.itemsize, what)
        native = dt.newbyteorder("=")
        return np.frombuffer(self.buf, dt, n, start).astype(native)


def _binary_element(cur: _Bytes, elem: PlyElement) -> Any:
    if elem.scalar_only:
        dt = np.dtype([(f"c{i}", cur.dtype(p.dtype)) for i, p in enumerate(elem.properties)])
        start = cur.take(elem.count * dt.itemsize, elem.name)
        rec = np.frombuffer(cur.buf, dt, elem.count, start)
        out, col = [], 0
        for tname, n in elem.runs():
            out.append(np.stack([rec[f"c{col + k}"] for k in range(n)], axis=1)
                       .astype(np.dtype(tname)))
            col += n
        return out
    if elem.single_list:
        fast = _binary_constant_list(cur, elem)
        if fast is not None:
            return fast
    rows = []
    for _ in range(elem.count):
        row: list = []
        for prop in elem.properties:
            if prop.count_dtype is None:
                row.append(cur.scalar(prop.dtype, elem.name))
            else:
                n = cur.scalar(prop.count_dtype, elem.name)
                row.append(cur.array(prop.dtype, n, elem.name))
        rows.append(row)
    return rows


def _binary_constant_list(cur: _Bytes, elem: PlyElement) -> np.ndarray | None:
    """A single-list element whose lists all have the first one's length, as (count, n);
    None (cursor untouched) when the lengths vary."""
    prop = elem.properties[0]
    cdt, vdt = cur.dtype(prop.count_dtype), cur.dtype(prop.dtype)
    if cur.pos + cdt.itemsize > len(cur.buf):
        raise ValueError(f"Not enough data for {elem.name}.")
    n = int(np.frombuffer(cur.buf, cdt, 1, cur.pos)[0])
    if cur.pos + cdt.itemsize + n * vdt.itemsize > len(cur.buf):
        raise ValueError(f"Not enough data for {elem.name}.")
    rec_dt = np.dtype([("n", cdt), ("v", vdt, (n,))])
    if cur.pos + elem.count * rec_dt.itemsize > len(cur.buf):
        return None
    rec = np.frombuffer(cur.buf, rec_dt, elem.count, cur.pos)
    if not (rec["n"] == n).all():
        return None
    cur.pos += elem.count * rec_dt.itemsize
    return rec["v"].astype(vdt.newbyteorder("=")).reshape(elem.count, n)


def _read_binary(buf: bytes, header: PlyHeader) -> dict[str, Any]:
    cur = _Bytes(buf, header.big_endian)
    data = {e.name: ([] if e.count == 0 else _binary_element(cur, e)) for e in header.elements}
    rest = buf[cur.pos:].strip()
    if rest:
        raise ValueError("Extra data at end of file: " + str(rest[:20]))
    return data


def _load_ply_raw(f: PathOrStream, path_manager: Any = None) -> tuple[PlyHeader, dict]:
    """Header and raw element data of a PLY file (PyTorch3D's ``_load_ply_raw``).

    Args:
        f: a path, or a binary or text stream (a binary PLY needs a binary stream).
        path_manager: an iopath ``PathManager`` to open ``str`` paths with (optional).

    Returns:
        header: ``PlyHeader``. elements: name -> data. An element without list properties
        is a list of 2D arrays, one per run of consecutive same-typed properties; a single
        list property whose lists share one length is a 2D array (count, length); anything
        else is a list (one entry per instance) of lists of values (scalars, or 1D arrays
        for list properties).

    Raises:
        ValueError: malformed header or data (the message names the problem).
    """
    with open_input(f, path_manager, "rb") as stream:
        header = _read_header(stream)
        rest = stream.read()
    if header.ascii:
        text = rest.decode("ascii", errors="replace") if isinstance(rest, bytes) else rest
        return header, _read_ascii(text, header)
    if isinstance(rest, str):
        raise ValueError("Cannot safely read a binary ply file using a Text stream.")
    return header, _read_binary(rest, header)


# --------------------------------------------------------------------------- meshes


@dataclass
class PlyData:
    """What a PLY holds for a mesh or point cloud (float32 / int64 CPU tensors)."""

    header: PlyHeader
    verts: torch.Tensor
    faces: torch.Tensor | None
    verts_colors: torch.Tensor | None
    verts_normals: torch.Tensor | None
    verts_texture_uvs: torch.Tensor | None


def _vertex_columns(header: PlyHeader, data: dict) -> dict[str, torch.Tensor | None]:
    elem = header.element("vertex")
    if elem is None:
        raise ValueError("The ply file has no vertex element.")
    if not elem.scalar_only:
        raise ValueError("Invalid vertices in file: did not expect list.")
    names = [p.name for p in elem.properties]
    groups = {"verts": ("x", "y", "z"), "verts_colors": ("red", "green", "blue"),
              "verts_normals": ("nx", "ny", "nz"), "verts_texture_uvs": ("texture_u", "texture_v")}
    if not all(n in names for n in groups["verts"]):
        raise ValueError("Invalid vertices in file.")
    pieces = data["vertex"]
    # property index -> (piece, column)
    where = [(k, c) for k, arr in enumerate(pieces) for c in range(arr.shape[1])]
    out: dict[str, torch.Tensor | None] = {}
    for key, cols in groups.items():
        if not all(n in names for n in cols):
            out[key] = None
            continue
        if elem.count == 0:
            out[key] = torch.zeros(0, len(cols))
            continue
        idx = [names.index(n) for n in cols]
        arr = np.stack([pieces[where[i][0]][:, where[i][1]] for i in idx], axis=1)
        t = torch.as_tensor(arr.astype(np.float32))
        if key == "verts_colors" and all(_TYPES[elem.properties[i].dtype][0]().itemsize == 1
                                         for i in idx):
            t = t / 255.0  # byte colours are 0..255
        out[key] = t
    return out


def _faces_of(header: PlyHeader, data: dict) -> torch.Tensor | None:
    elem = header.element("face")
    if elem is None:
        return None
    if not elem.single_list:
        raise ValueError("Unexpected form of faces data.")
    face = data["face"]
    if len(face) == 0:
        return None
    if isinstance(face, np.ndarray):
        if face.shape[1] < 3:
            raise ValueError("Faces must have at least 3 vertices.")
        # Fan triangles grouped by fan position (all first triangles, then all second...).
        tris = [face[:, [0, i + 1, i + 2]] for i in range(face.shape[1] - 2)]
        return torch.as_tensor(np.concatenate(tris).astype(np.int64))
    out = []
    for (poly,) in face:
        if len(poly) < 3:
            raise ValueError("Faces must have at least 3 vertices.")
        out.extend([poly[0], poly[i + 1], poly[i + 2]] for i in range(len(poly) - 2))
    return torch.tensor(np.asarray(out, dtype=np.int64).reshape(-1, 3))


def _load_ply(f: PathOrStream, path_manager: Any = None, strict: bool = False) -> PlyData:
    header, data = _load_ply_raw(f, path_manager)
    cols = _vertex_columns(header, data)
    for key, t in cols.items():  # checked as float32, the type returned
        if t is not None and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{getattr(f, 'name', f)}: vertex {key} contain NaN or inf")
    faces = _faces_of(header, data)
    if faces is not None:
        check_face_indices(faces, cols["verts"].shape[0], strict)
    return PlyData(header=header, faces=faces, **cols)


def load_ply(
    f: PathOrStream, *, path_manager: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertices and triangles of a PLY file (PyTorch3D's ``load_ply``).

    Polygons are fan-triangulated. Faces with out-of-range indices give a warning
    ("Faces have invalid indices"), as in PyTorch3D.

    Args:
        f: a path, or a binary or text stream.
        path_manager: an iopath ``PathManager`` to open ``str`` paths with (optional).

    Returns:
        verts (V, 3) float32 and faces (F, 3) int64 (F may be 0); constants.

    Raises:
        FileNotFoundError: no such file.
        ValueError: malformed file, no x/y/z vertex properties, or NaN/inf vertex values.
    """
    d = _load_ply(f, path_manager)
    faces = d.faces if d.faces is not None else torch.zeros(0, 3, dtype=torch.int64)
    return d.verts, faces


# --------------------------------------------------------------------------- writing


def _as_table(x: Any, name: str, cols: int, rows: int | None = None) -> np.ndarray:
    t = x.detach().cpu() if torch.is_tensor(x) else torch.as_tensor(np.asarray(x))
    if t.numel() == 0 and rows in (None, 0):
        return np.zeros((0, cols), dtype=t.numpy().dtype)
    if t.dim() != 2 or t.shape[1] != cols or (rows is not None and t.shape[0] != rows):
        what = "num_verts" if rows is not None or name == "verts" else "num_faces"
        raise ValueError(f"Argument '{name}' should either be empty or of shape ({what}, {cols}).")
    return t.numpy()


def _ply_bytes(
    verts: np.ndarray,
    faces: np.ndarray | None,
    normals: np.ndarray | None,
    colors: np.ndarray | None,
    ascii: bool,
    decimal_places: int | None,
    colors_as_uint8: bool,
) -> bytes:
    color_type = "uchar" if colors_as_uint8 else "float"
    lines = ["ply", "format ascii 1.0" if ascii else "format binary_little_endian 1.0",
             f"element vertex {len(verts)}"]
    lines += [f"property float {c}" for c in "xyz"]
    if normals is not None:
        lines += [f"property float {c}" for c in ("nx", "ny", "nz")]
    if colors is not None:
        lines += [f"property {color_type} {c}" for c in ("red", "green", "blue")]
    write_faces = faces is not None and len(verts) > 0
    if write_faces:
        lines += [f"element face {len(faces)}", "property list uchar int vertex_index"]
    lines.append("end_header")
    out = io.BytesIO()
    out.write(("\n".join(lines) + "\n").encode("ascii"))
    if not len(verts):
        return out.getvalue()
    fields = [("v", "<f4", (3,))]
    if normals is not None:
        fields.append(("n", "<f4", (3,)))
    if colors is not None:
        fields.append(("c", "u1" if colors_as_uint8 else "<f4", (3,)))
    rec = np.zeros(len(verts), dtype=fields)
    rec["v"] = verts
    if normals is not None:
        rec["n"] = normals
    if colors is not None:
        rec["c"] = np.clip(np.rint(colors * 255), 0, 255) if colors_as_uint8 else colors
    if ascii:
        flt = "%f" if decimal_places is None else f"%.{decimal_places}f"
        fmt = [flt] * 3 + [flt] * (3 if normals is not None else 0)
        fmt += (["%d"] * 3 if colors_as_uint8 else [flt] * 3) if colors is not None else []
        table = np.concatenate([rec[k].astype(np.float64) for k, *_ in fields], axis=1)
        np.savetxt(out, table, fmt=fmt, delimiter=" ")
    else:
        out.write(rec.tobytes())
    if write_faces and len(faces):
        if ascii:
            np.savetxt(out, faces, fmt="3 %d %d %d")
        else:
            frec = np.zeros(len(faces), dtype=[("n", "u1"), ("i", "<i4", (3,))])
            frec["n"], frec["i"] = 3, faces
            out.write(frec.tobytes())
    return out.getvalue()


def save_ply(
    f: PathOrStream,
    verts: torch.Tensor,
    faces: torch.Tensor | None = None,
    verts_normals: torch.Tensor | None = None,
    ascii: bool = False,
    decimal_places: int | None = None,
    path_manager: Any = None,
    *,
    verts_colors: torch.Tensor | None = None,
    colors_as_uint8: bool = True,
    strict: bool = True,
) -> None:
    """Write a mesh (or, without faces, a point cloud) as PLY (PyTorch3D's ``save_ply``).

    A path is written atomically; a binary stream is written into.

    Args:
        f: a path or a binary stream.
        verts: (V, 3) float positions (may be empty: then only a header is written, with a
            warning, as PyTorch3D does).
        faces: optional (F, 3) int indices into verts.
        verts_normals: optional (V, 3) float, written as nx, ny, nz.
        ascii: the text format instead of binary little-endian.
        decimal_places: digits after the point in the text format (default ``%f``).
        path_manager: an iopath ``PathManager`` for ``str`` paths (optional).
        verts_colors: optional (V, 3) RGB in [0, 1], written as red, green, blue.
        colors_as_uint8: colours as 8-bit 0..255 (default) rather than float.
        strict: raise ValueError on out-of-range face indices or NaN/inf values;
            False warns as PyTorch3D does ("Faces have invalid indices").

    Raises:
        ValueError: shapes that are neither empty nor (N, 3) (the message names the
            argument); out-of-range indices or NaN/inf with ``strict``.
    """
    v = _as_table(verts, "verts", 3)
    fa = None if faces is None else _as_table(faces, "faces", 3)
    n = None
    if verts_normals is not None and verts_normals.numel():
        n = _as_table(verts_normals, "verts_normals", 3, rows=len(v))
    c = None if verts_colors is None else _as_table(verts_colors, "verts_colors", 3, rows=len(v))
    if strict:
        for arr, name in ((v, "verts"), (n, "verts_normals"), (c, "verts_colors")):
            if arr is not None and not np.isfinite(arr).all():
                raise ValueError(f"{name} contains NaN or inf")
    if not len(v):
        warnings.warn("Empty 'verts' provided", stacklevel=2)
    elif fa is not None:
        if fa.size and not np.issubdtype(fa.dtype, np.integer):
            raise ValueError(f"faces: expected integer indices, got {fa.dtype}")
        check_face_indices(torch.as_tensor(fa), len(v), strict, "faces")
    data = _ply_bytes(v, fa, n, c, ascii, decimal_places, colors_as_uint8)
    write_output(f, data, path_manager)
