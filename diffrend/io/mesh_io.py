"""Mesh files in and out, through trimesh, with PyTorch3D's ``load_obj`` return shape.

OBJ geometry stays welded: trimesh's mesh loader splits vertices along UV seams (and with
``maintain_order`` it keeps one UV per vertex), so for OBJ we take the vertex, normal and UV
arrays from trimesh's OBJ vertex parser (``trimesh.exchange.obj._parse_vertices``: private,
so a trimesh upgrade may break it; the tests cover it), read the MTL with
:mod:`diffrend.io.mtl_io`, and read only the ``f``/``usemtl``/``mtllib`` lines here, keeping
the separate position / UV / normal index streams (as PyTorch3D does). ``load_mesh`` reads
other formats (PLY, OFF, STL, GLB/glTF) through ``trimesh.load_mesh``; PyTorch3D's PLY
functions are in :mod:`diffrend.io.ply_io`. Nothing here is differentiable: loaders return
constants.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import torch
import trimesh
from PIL import Image
from trimesh.exchange import obj as _tm_obj

from ..shading.textures import TexturesAtlas, TexturesUV
from ..structures import Meshes, join_meshes_as_batch
from ._files import (
    atomic_write,
    check_face_indices,
    decode_text,
    existing_file,
    is_file,
    open_input,
    resolve_inside,
    write_output,
)
from .mtl_io import make_mesh_texture_atlas, parse_mtl_text

PathLike = str | os.PathLike

_MESH_EXTS = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf")
_DEFAULT_MESH = Path(__file__).resolve().parents[1] / "data" / "cow_mesh" / "cow.obj"


class ObjFaces(NamedTuple):
    """Face index streams of an OBJ (PyTorch3D's ``Faces``); -1 where the file has none.

    verts_idx (F, 3), normals_idx (F, 3), textures_idx (F, 3): int64 indices into verts,
    aux.normals and aux.verts_uvs. materials_idx (F,): int64 index into the ``usemtl``
    names in order of first use, -1 before any ``usemtl``.
    """

    verts_idx: torch.Tensor
    normals_idx: torch.Tensor
    textures_idx: torch.Tensor
    materials_idx: torch.Tensor


class ObjAux(NamedTuple):
    """Everything else in an OBJ (PyTorch3D's ``Properties``).

    normals (N, 3) or None; verts_uvs (T, 2) or None; material_colors: material name ->
    {"ambient_color" (3,), "diffuse_color" (3,), "specular_color" (3,), "shininess" (1,)}
    (the keys the MTL has) or None; texture_images: material name -> (H, W, 3) float32 in
    [0, 1], or None; texture_atlas: (F, R, R, 3) float32 with ``create_texture_atlas``,
    else None.
    """

    normals: torch.Tensor | None
    verts_uvs: torch.Tensor | None
    material_colors: dict[str, dict[str, torch.Tensor]] | None
    texture_images: dict[str, torch.Tensor] | None
    texture_atlas: torch.Tensor | None


@dataclass(frozen=True)
class UVTextureData:
    """Raw UV texture data (a plain holder; the loader no longer attaches it).

    ``load_objs_as_meshes`` attaches ``diffrend.shading.TexturesUV``; this class stays only
    because ``diffrend.io`` exports it. One entry per mesh: verts_uvs (T_i, 2) float,
    faces_uvs (F_i, 3) int64 into verts_uvs, maps (H_i, W_i, 3) float in [0, 1]. It follows
    ``Meshes`` through indexing, ``extend``, ``clone``, ``detach``, ``to`` and
    ``join_meshes_as_batch``.
    """

    verts_uvs: list[torch.Tensor]
    faces_uvs: list[torch.Tensor]
    maps: list[torch.Tensor]

    def __len__(self) -> int:
        return len(self.maps)

    def _apply(self, fn: Any) -> UVTextureData:
        return UVTextureData(*([fn(t) for t in getattr(self, k)] for k in
                               ("verts_uvs", "faces_uvs", "maps")))

    def __getitem__(self, index: int | slice | list[int]) -> UVTextureData:
        """Select meshes (int, slice or list of ints)."""
        ids = list(range(len(self)))
        picked = [ids[index]] if isinstance(index, int) else (
            ids[index] if isinstance(index, slice) else [ids[i] for i in index])
        return UVTextureData(*([getattr(self, k)[i] for i in picked] for k in
                               ("verts_uvs", "faces_uvs", "maps")))

    def extend(self, n: int) -> UVTextureData:
        """Each entry repeated ``n`` times in a row (like ``Meshes.extend``)."""
        return self[[i for i in range(len(self)) for _ in range(n)]]

    def clone(self) -> UVTextureData:
        """Copy with cloned tensors."""
        return self._apply(torch.Tensor.clone)

    def detach(self) -> UVTextureData:
        """Copy with detached tensors."""
        return self._apply(torch.Tensor.detach)

    def to(self, device: str | torch.device) -> UVTextureData:
        """Copy on ``device``."""
        return self._apply(lambda t: t.to(device))

    def join_batch(self, others: Sequence[UVTextureData]) -> UVTextureData:
        """Concatenate with other ``UVTextureData`` (for ``join_meshes_as_batch``)."""
        parts = [self, *others]
        return UVTextureData(*([t for p in parts for t in getattr(p, k)] for k in
                               ("verts_uvs", "faces_uvs", "maps")))


# --------------------------------------------------------------------------- helpers


_existing_file = existing_file  # older callers use this name


_atomic_write = atomic_write  # points_io and older callers use this name


def _to_numpy(x: Any, name: str, cols: int, integer: bool) -> np.ndarray:
    arr = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    if arr.ndim != 2 or arr.shape[1] != cols:
        raise ValueError(f"{name}: expected shape (n, {cols}), got {arr.shape}")
    if integer and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: expected integer indices, got {arr.dtype}")
    if not integer and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _check_range(idx: np.ndarray, n: int, name: str, where: str) -> None:
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise ValueError(f"{where}: {name} index {bad} out of range for {n} entries")


# --------------------------------------------------------------------------- OBJ faces

_TOKEN = {1: r"\d+", 2: r"\d+/\d+", 3: r"\d+/\d+/\d+", -2: r"\d+//\d+"}


def _face_kind(token: str) -> int:
    """1: v, 2: v/vt, 3: v/vt/vn, -2: v//vn."""
    return -2 if "//" in token else token.count("/") + 1


def _parse_faces_fast(lines: list[str], path: str) -> tuple[np.ndarray, ...] | None:
    """All-triangle, one-format, positive-index faces in one numpy pass; None otherwise."""
    first = lines[0].split()
    kind = _face_kind(first[0]) if first else 0
    if kind not in _TOKEN:
        return None
    tok = _TOKEN[kind]
    line = rf"[ \t]*{tok}[ \t]+{tok}[ \t]+{tok}[ \t]*"
    blob = "\n".join(lines)
    if re.search(r"\d{19}", blob):  # may not fit int64: the slow path bounds it
        return None
    if re.fullmatch(rf"(?:{line}\n)*{line}", blob) is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        arr = np.fromstring(blob.replace("/", " "), sep=" ", dtype=np.int64)
    if (arr == 0).any():
        raise ValueError(f"{path}: face index 0 (OBJ indices start at 1)")
    arr = arr.reshape(len(lines), 3, abs(kind)) - 1
    none = np.full((len(lines), 3), -1, dtype=np.int64)
    if kind == 1:
        return arr[..., 0], none, none
    if kind == 2:
        return arr[..., 0], arr[..., 1], none
    if kind == -2:
        return arr[..., 0], none, arr[..., 1]
    return arr[..., 0], arr[..., 1], arr[..., 2]


# A relative index that points before the first entry, kept (non-strict) as out of range.
_BEFORE_FIRST = np.iinfo(np.int64).max // 2


def _corner(token: str, counts: tuple[int, int, int], where: str, strict: bool) -> list[int]:
    parts = token.split("/")
    if len(parts) > 3:
        raise ValueError(f"{where}: Face vertices can only have 3 properties, got '{token}'")
    if not parts[0]:
        raise ValueError(f"{where}: malformed face vertex '{token}'")
    out = []
    for k in range(3):
        s = parts[k] if k < len(parts) else ""
        if not s:
            out.append(-1)
            continue
        i = int(s)
        if i == 0:
            raise ValueError(f"{where}: face index 0 (OBJ indices start at 1)")
        j = i - 1 if i > 0 else counts[k] + i
        if j >= _BEFORE_FIRST:  # far past any real file (and past int64): out of range
            j = _BEFORE_FIRST
        elif j < 0:
            if strict:
                raise ValueError(f"{where}: relative face index {i} points before the first "
                                 "entry")
            j = _BEFORE_FIRST
        out.append(j)
    return out


def _parse_faces_slow(text: str, path: str, strict: bool) -> tuple[np.ndarray, ...]:
    """Any faces: polygons (fan-triangulated), mixed formats, relative (negative) indices."""
    counts = [0, 0, 0]
    rows: list[list[int]] = []
    for lineno, line in enumerate(text.split("\n")):
        head = line[:3]
        if head[:2] == "v ":
            counts[0] += 1
        elif head == "vt ":
            counts[1] += 1
        elif head == "vn ":
            counts[2] += 1
        elif head[:2] in ("f ", "f\t"):
            where = f"{path}: line {lineno}"
            tokens = line.split("#", 1)[0].split()[1:]
            too_many = [t for t in tokens if t.count("/") > 2]
            if too_many:
                raise ValueError(f"{where}: Face vertices can only have 3 properties, got "
                                 f"'{too_many[0]}'")
            if len(tokens) < 3:
                raise ValueError(f"{where}: a face needs at least 3 vertices, got {len(tokens)}")
            if len({_face_kind(t) for t in tokens}) > 1:
                raise ValueError(f"{where}: Vertex properties are inconsistent across the "
                                 "face's corners (truncated line?)")
            try:
                c = [_corner(t, (counts[0], counts[1], counts[2]), where, strict)
                     for t in tokens]
            except ValueError as e:
                if str(e).startswith(str(path)):
                    raise
                raise ValueError(f"{where}: malformed face line ({e})") from e
            for i in range(1, len(c) - 1):
                rows.append([x for k in range(3) for x in (c[0][k], c[i][k], c[i + 1][k])])
    arr = np.asarray(rows, dtype=np.int64).reshape(-1, 3, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2]


def _parse_faces(text: str, path: str, strict: bool) -> tuple[Any, ...]:
    """(verts_idx, textures_idx, normals_idx, materials_idx, material names) of an OBJ
    (empty index arrays when it has no faces)."""
    names: dict[str, int] = {}
    lines: list[str] = []
    line_mat: list[int] = []
    mat = -1
    for line in text.split("\n"):
        if line[:2] in ("f ", "f\t"):
            lines.append(line[2:])
            line_mat.append(mat)
        elif line.startswith("usemtl"):
            mat = names.setdefault(line[6:].strip(), len(names))
    if not lines:
        empty = np.zeros((0, 3), dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=np.int64), list(names)
    fast = _parse_faces_fast(lines, path)
    if fast is not None:
        materials = np.asarray(line_mat, dtype=np.int64)
        return (*fast, materials, list(names))
    v, t, n = _parse_faces_slow(text, path, strict)
    # Material of each triangle: repeat each line's material by its triangle count.
    tri_per_line = [len(s.split("#", 1)[0].split()) - 2 for s in lines]
    materials = np.repeat(np.asarray(line_mat, dtype=np.int64), tri_per_line)
    return v, t, n, materials, list(names)


# --------------------------------------------------------------------------- MTL


class _FolderResolver:
    """Resolves MTL and texture names inside one folder (refusing others unless allowed)."""

    def __init__(self, folder: Path, allow_external: bool) -> None:
        self.folder = folder.resolve()
        self.allow_external = allow_external

    def path(self, name: str) -> Path:
        return resolve_inside(self.folder, name.strip(), self.allow_external, name,
                              "allow_external_textures=True")


def _image_tensor(img: Any) -> torch.Tensor:
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr)


def _load_materials(
    text: str, where: str, folder: Path, allow_external: bool, used: list[str],
    path_manager: Any = None,
) -> tuple[dict | None, dict | None]:
    """Colours and texture images of the materials an OBJ uses (None if it names no MTL).

    Only materials named by ``usemtl`` are returned; without any ``usemtl``, every material
    of the MTL files (PyTorch3D gives a lone material to all faces).
    """
    mtl_names = [ln[6:].strip() for ln in text.split("\n") if ln.startswith("mtllib")]
    if not mtl_names:
        if used:
            warnings.warn(f"{where}: faces use materials but No mtl file provided (no "
                          "'mtllib' line); loading without materials", stacklevel=3)
        return None, None
    resolver = _FolderResolver(folder, allow_external)
    external = (
        f"{where}: refusing to read %s outside the mesh folder {resolver.folder}; "
        "pass allow_external_textures=True to allow it"
    )
    colors: dict[str, dict[str, torch.Tensor]] = {}
    files: dict[str, str] = {}
    found = False
    for name in mtl_names:
        try:
            mtl_path = resolver.path(name)
        except ValueError:
            raise ValueError(external % f"material file '{name}'") from None
        if not is_file(mtl_path):
            warnings.warn(f"{where}: material file '{name}' not found (Mtl file does not "
                          f"exist: {mtl_path}); loading without it", stacklevel=3)
            continue
        found = True
        with open_input(mtl_path, path_manager, "rb") as stream:
            mtl_text = decode_text(stream.read())
        c, fl = parse_mtl_text(mtl_text, str(mtl_path))
        colors.update(c)
        files.update(fl)
    if not found:
        return None, None
    if used:
        colors = {k: v for k, v in colors.items() if k in used}
        files = {k: v for k, v in files.items() if k in used}
    images: dict[str, torch.Tensor] = {}
    for mat_name, tex in files.items():
        try:
            tex_path = resolver.path(tex)
        except ValueError:
            raise ValueError(external % f"texture '{tex}'") from None
        if not is_file(tex_path):
            warnings.warn(f"{where}: texture image '{tex}' not found (Texture file does not "
                          f"exist: {tex_path}); loading without it", stacklevel=3)
            continue
        try:
            with Image.open(tex_path) as img:
                images[mat_name] = _image_tensor(img)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            warnings.warn(f"{where}: texture image '{tex}' unreadable ({e}); loading "
                          "without it", stacklevel=3)
    return colors, images


# --------------------------------------------------------------------------- OBJ


_COMMENT_AFTER_DATA = re.compile(r"^((?:v|vt|vn|vp|f|l|p)[ \t][^#\n]*)#[^\n]*", re.M)


def _normalize_obj_text(text: str) -> str:
    """OBJ text in the one layout the parsers read: LF line ends, line continuations
    joined, no indentation or trailing blanks, one space after the keyword, and no
    trailing ``# comment`` on data lines (``v``/``vt``/``vn``/``f``...), framed by
    newlines. Exporters write all of these variants (Blender's tabs, indented groups,
    CRLF); without this, such lines were skipped and face indices shifted. Names in
    ``usemtl``/``mtllib`` keep their ``#``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\\\n", "")
    text = re.sub(r"^[ \t]+|[ \t]+$", "", text, flags=re.M)
    text = _COMMENT_AFTER_DATA.sub(r"\1", text)
    text = re.sub(r"[ \t]+$", "", text, flags=re.M)
    text = re.sub(r"^(\S+)[ \t]+", r"\1 ", text, flags=re.M)
    return "\n" + text + "\n"


def _read_source(f: Any, path_manager: Any) -> tuple[bytes | str, str, Path]:
    """(contents, name for messages, folder that MTL/texture names are relative to)."""
    if isinstance(f, (str, os.PathLike)):
        if path_manager is None or not isinstance(f, str):
            with open_input(f, None, "rb") as stream:
                return stream.read(), str(f), Path(f).parent
        with open_input(f, path_manager, "rb") as stream:
            return stream.read(), f, Path(os.path.dirname(f) or ".")
    if hasattr(f, "read"):
        name = getattr(f, "name", None)
        folder = Path(os.path.dirname(name)) if isinstance(name, str) else Path.cwd()
        return f.read(), str(name or "<stream>"), folder
    raise TypeError(f"f: expected a path or a readable stream, got {type(f).__name__}")


def _finite_as_float32(values: np.ndarray) -> bool:
    """Whether every value stays finite once cast to float32 (1e39 does not; no warning)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(values.astype(np.float32)).all())


def load_obj(
    f: PathLike | IO,
    load_textures: bool = True,
    create_texture_atlas: bool = False,
    texture_atlas_size: int = 4,
    texture_wrap: str | None = "repeat",
    device: str | torch.device = "cpu",
    path_manager: Any = None,
    *,
    allow_external_textures: bool = False,
    strict: bool = True,
) -> tuple[torch.Tensor, ObjFaces, ObjAux]:
    """Read an OBJ as PyTorch3D's ``load_obj`` does, with vertices kept welded.

    Polygons are fan-triangulated; relative (negative) indices are resolved.

    Args:
        f: the ``.obj`` file: a path, or a text or binary stream (MTL and texture names
            are then relative to the stream's ``name`` folder, else the working folder).
        load_textures: read the MTL files (colours, ``map_Kd`` images) of the materials
            the faces use. A missing MTL or texture image gives a warning and is skipped.
        create_texture_atlas: also bake an (F, R, R, 3) per-face ``aux.texture_atlas``
            from the materials (see :func:`diffrend.io.mtl_io.make_mesh_texture_atlas`).
        texture_atlas_size: R.
        texture_wrap: UVs outside [0, 1] for the atlas: "repeat", "clamp" or None.
        device: where the returned tensors live.
        path_manager: an iopath ``PathManager`` to open ``str`` paths with (optional).
        allow_external_textures: allow MTL/texture paths outside the OBJ's folder (refused
            with ValueError otherwise).
        strict: diffrend's checks (default): a file without vertices or faces, or a face
            index out of range, raises ValueError. False follows PyTorch3D: empty meshes
            load, and bad indices give the warning "Faces have invalid indices".

    Returns:
        verts (V, 3) float32, ``ObjFaces`` and ``ObjAux``; constants (no gradients).

    Raises:
        FileNotFoundError: ``f`` does not exist.
        ValueError: the file is not a readable OBJ mesh (binary data, malformed or
            truncated lines, NaN/inf values; with ``strict`` also no vertices or faces and
            indices out of range).
    """
    if texture_wrap not in ("repeat", "clamp", None):
        raise ValueError(f"texture_wrap: expected 'repeat', 'clamp' or None, got {texture_wrap!r}")
    data, where, folder = _read_source(f, path_manager)
    if isinstance(data, bytes):
        if b"\x00" in data:
            raise ValueError(f"{where}: binary data, not a text OBJ file")
    text = _normalize_obj_text(decode_text(data))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            v, vn, vt, _ = _tm_obj._parse_vertices(text)
    except (ValueError, IndexError, TypeError) as e:
        raise ValueError(f"{where}: malformed vertex lines ({e})") from e
    for arr, what, cols in ((v, "vertex", 3), (vt, "texture coordinate", 2), (vn, "normal", 3)):
        if arr is not None and len(arr) and (arr.ndim != 2 or arr.shape[1] < cols):
            raise ValueError(f"{where}: a {what} line does not have {cols} values "
                             "(truncated file?)")
        # Checked as float32, the type returned: 1e39 is finite in float64 only.
        if arr is not None and len(arr) and not _finite_as_float32(arr[:, :cols]):
            raise ValueError(f"{where}: {what} lines contain NaN or inf")
    v_idx, t_idx, n_idx, m_idx, names = _parse_faces(text, where, strict)
    if (v is None or len(v) == 0) and strict:
        raise ValueError(f"{where}: no vertices ('v' lines); not an OBJ mesh")
    if not v_idx.size and strict:
        raise ValueError(f"{where}: no faces ('f' lines); not a triangle mesh")
    v = np.zeros((0, 3)) if v is None else v
    for idx, arr, name, plural in ((v_idx, v, "vertex", "vertices"),
                                   (t_idx, vt, "texture coordinate", "texture coordinates"),
                                   (n_idx, vn, "normal", "normals")):
        n = 0 if arr is None else len(arr)
        if not idx.size:
            continue
        used = idx[(idx != -1).any(axis=1)] if name != "vertex" else idx
        if used.size and (used.max() >= n or used.min() < 0):
            if strict:
                raise ValueError(f"{where}: a face uses {name} {used.max() + 1} but the file "
                                 f"has {n} {plural}")
            warnings.warn("Faces have invalid indices", stacklevel=2)
    # Non-strict: a relative index before the first entry stays invalid (but not -1, the
    # "none" marker).
    v_idx, t_idx, n_idx = (np.where(x == _BEFORE_FIRST, -2, x) for x in (v_idx, t_idx, n_idx))
    colors = images = None
    if load_textures:
        colors, images = _load_materials(text, where, folder, allow_external_textures, names,
                                         path_manager)
    if colors and not names:
        # No usemtl: the MTL's first material applies to every face (PyTorch3D).
        names = [next(iter(colors))]
        m_idx = np.maximum(m_idx, 0)

    def tensor(x: Any, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype).to(device)

    verts_uvs = None if vt is None or not len(vt) else tensor(vt[:, :2], torch.float32)
    textures_idx = tensor(t_idx, torch.int64)
    atlas = None
    if create_texture_atlas:
        face_names = np.asarray([""] + names, dtype=object)[m_idx + 1]
        atlas = make_mesh_texture_atlas(
            {k: {kk: vv.to(device) for kk, vv in d.items()} for k, d in (colors or {}).items()},
            {k: x.to(device) for k, x in (images or {}).items()}, face_names, textures_idx,
            verts_uvs if verts_uvs is not None else torch.zeros(0, 2, device=device),
            texture_atlas_size, texture_wrap)
    faces = ObjFaces(
        verts_idx=tensor(v_idx, torch.int64),
        normals_idx=tensor(n_idx, torch.int64),
        textures_idx=textures_idx,
        materials_idx=tensor(m_idx, torch.int64),
    )
    aux = ObjAux(
        normals=None if vn is None or not len(vn) else tensor(vn[:, :3], torch.float32),
        verts_uvs=verts_uvs,
        material_colors=None if colors is None else {
            k: {kk: vv.to(device) for kk, vv in d.items()} for k, d in colors.items()},
        texture_images=None if images is None else {k: x.to(device) for k, x in images.items()},
        texture_atlas=atlas,
    )
    return tensor(v[:, :3], torch.float32), faces, aux


def load_objs_as_meshes(
    files: Sequence[PathLike | IO],
    device: str | torch.device | None = None,
    load_textures: bool = True,
    create_texture_atlas: bool = False,
    texture_atlas_size: int = 4,
    texture_wrap: str | None = "repeat",
    path_manager: Any = None,
    *,
    allow_external_textures: bool = False,
    strict: bool = True,
) -> Meshes:
    """Load OBJ files into one ``Meshes`` batch (PyTorch3D's ``load_objs_as_meshes``).

    With ``load_textures``, a mesh whose MTL gives a texture image gets
    ``TexturesUV(maps=(1, H, W, 3), faces_uvs=[(F, 3)], verts_uvs=[(T, 2)])`` with
    PyTorch3D's defaults (bilinear, ``align_corners=True``, ``padding_mode="border"``). With
    several textured materials the first image is used (with a warning). Faces that have
    no texture coordinates in the file read UV (0, 0) (with a warning; PyTorch3D silently
    reads the last UV there). Either all files have a texture or none may. With
    ``create_texture_atlas`` every mesh gets a ``TexturesAtlas`` instead (see
    :func:`load_obj` for it and for the other arguments).

    Returns:
        ``Meshes`` of len(files) meshes on ``device`` (constants, no gradients).
    """
    if isinstance(files, (str, os.PathLike)):
        raise ValueError("files: expected a list of paths, got a single path")
    if not files:
        raise ValueError("files: expected at least one path")
    device = torch.device("cpu") if device is None else torch.device(device)
    batch = []
    for f in files:
        verts, faces, aux = load_obj(
            f, load_textures, create_texture_atlas, texture_atlas_size, texture_wrap, device,
            path_manager, allow_external_textures=allow_external_textures, strict=strict)
        tex = None
        if create_texture_atlas:
            tex = TexturesAtlas(atlas=[aux.texture_atlas])
        elif load_textures and aux.texture_images and aux.verts_uvs is not None:
            if len(aux.texture_images) > 1:
                warnings.warn(f"{f}: several texture images; using the first one", stacklevel=2)
            image = next(iter(aux.texture_images.values()))
            verts_uvs, faces_uvs = aux.verts_uvs, faces.textures_idx
            no_uv = (faces_uvs < 0).any(dim=1)
            if bool(no_uv.any()):
                warnings.warn(f"{f}: {int(no_uv.sum())} faces have no texture coordinates; "
                              "they read the texture at UV (0, 0)", stacklevel=2)
                verts_uvs = torch.cat([verts_uvs, verts_uvs.new_zeros(1, 2)])
                faces_uvs = torch.where(faces_uvs < 0, verts_uvs.shape[0] - 1, faces_uvs)
            tex = TexturesUV(maps=image[None], faces_uvs=[faces_uvs], verts_uvs=[verts_uvs])
        batch.append(Meshes([verts], [faces.verts_idx], textures=tex))
    return batch[0] if len(batch) == 1 else join_meshes_as_batch(batch)


def _obj_table(x: Any, name: str, cols: int, integer: bool, strict: bool) -> np.ndarray:
    """(n, cols) numpy array of an argument; empty input gives (0, cols)."""
    arr = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    if arr.size == 0:
        return arr.reshape(0, cols)
    if arr.ndim != 2 or arr.shape[1] != cols:
        raise ValueError(f"Argument '{name}' should either be empty or of shape "
                         f"(n, {cols}), got {tuple(arr.shape)}")
    if integer and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: expected integer indices, got {arr.dtype}")
    if strict and not integer and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def save_obj(
    f: PathLike | IO,
    verts: torch.Tensor,
    faces: torch.Tensor,
    decimal_places: int | None = None,
    path_manager: Any = None,
    *,
    normals: torch.Tensor | None = None,
    faces_normals_idx: torch.Tensor | None = None,
    verts_uvs: torch.Tensor | None = None,
    faces_uvs: torch.Tensor | None = None,
    texture_map: torch.Tensor | None = None,
    verts_colors: torch.Tensor | None = None,
    strict: bool = True,
) -> None:
    """Write a mesh as OBJ (PyTorch3D's ``save_obj`` layout); with a texture also
    ``<stem>.mtl`` and ``<stem>.png`` beside it.

    Args:
        f: the ``.obj`` path (each file is written atomically) or a text/binary stream
            (then without texture).
        verts: (V, 3) float positions; faces: (F, 3) int indices into verts (either may be
            empty).
        decimal_places: fixed digits after the point (``%.Nf``); None writes each float
            exactly (``%.9g``; PyTorch3D writes ``%f``).
        path_manager: an iopath ``PathManager`` for ``str`` paths (optional).
        normals: (N, 3) normals with faces_normals_idx: (F, 3) indices into them.
        verts_uvs: (T, 2) UVs and faces_uvs: (F, 3) indices into them.
        texture_map: (H, W, 3) float image in [0, 1] (needs the UVs); saved as 8-bit PNG.
        verts_colors: (V, 3) float RGB in [0, 1], written as ``v x y z r g b`` (the vertex
            colour extension read by MeshLab, Blender, trimesh and Open3D).
        strict: diffrend's checks (default): out-of-range indices, NaN/inf values and a
            texture or normals given only in part raise ValueError. False follows
            PyTorch3D: bad indices warn ("Faces have invalid indices") and partial
            texture / normals arguments are ignored.
    """
    v = _obj_table(verts, "verts", 3, False, strict)
    fa = _obj_table(faces, "faces", 3, True, strict)
    tex_args = (verts_uvs, faces_uvs, texture_map)
    if strict:
        if (verts_uvs is None) != (faces_uvs is None):
            raise ValueError("verts_uvs and faces_uvs must be given together")
        if texture_map is not None and verts_uvs is None:
            raise ValueError("texture_map needs verts_uvs and faces_uvs")
        if (normals is None) != (faces_normals_idx is None):
            raise ValueError("normals and faces_normals_idx must be given together")
    with_uv = verts_uvs is not None and faces_uvs is not None and (
        texture_map is not None or strict)
    with_tex = all(t is not None for t in tex_args)
    with_n = normals is not None and faces_normals_idx is not None
    if verts_colors is not None:
        c = _obj_table(verts_colors, "verts_colors", 3, False, strict)
        if c.shape != v.shape:
            raise ValueError(f"verts_colors: expected shape {v.shape}, got {c.shape}")
        v = np.concatenate([v, np.clip(c, 0.0, 1.0)], axis=1)
    if with_uv:
        uv = _obj_table(verts_uvs, "verts_uvs", 2, False, strict)
        fuv = _obj_table(faces_uvs, "faces_uvs", 3, True, strict)
        if len(fuv) != len(fa):
            raise ValueError(f"faces_uvs: expected {len(fa)} rows, got {len(fuv)}")
    if with_tex:
        tex = texture_map.detach().cpu().numpy() if torch.is_tensor(texture_map) \
            else np.asarray(texture_map)
        if tex.ndim != 3 or tex.shape[2] != 3 or not np.isfinite(tex).all():
            raise ValueError(f"texture_map: expected a finite (H, W, 3) image, got {tex.shape}")
    if with_n:
        nrm = _obj_table(normals, "normals", 3, False, strict)
        fn = _obj_table(faces_normals_idx, "faces_normals_idx", 3, True, strict)
        if len(fn) != len(fa):
            raise ValueError(f"faces_normals_idx: expected {len(fa)} rows, got {len(fn)}")
    if not len(v) and not len(fa):
        warnings.warn("Empty 'verts' and 'faces' arguments provided", stacklevel=2)
        write_output(f, b"", path_manager)
        return
    check_face_indices(torch.as_tensor(fa), len(v), strict, "faces")
    if with_uv:
        check_face_indices(torch.as_tensor(fuv), len(uv), strict, "faces_uvs")
    if with_n:
        check_face_indices(torch.as_tensor(fn), len(nrm), strict, "faces_normals_idx")
    if with_tex and not isinstance(f, (str, os.PathLike)):
        raise ValueError("f: saving a texture needs a path (the .mtl and .png go beside it)")
    out = io.StringIO()
    flt = "%.9g" if decimal_places is None else f"%.{decimal_places}f"
    if with_tex:
        path = Path(f)
        png = path.with_suffix(".png")
        buf = io.BytesIO()
        Image.fromarray(np.round(np.clip(tex, 0, 1) * 255).astype(np.uint8)).save(buf, "PNG")
        write_output(png, buf.getvalue())
        write_output(path.with_suffix(".mtl"), f"newmtl mesh\nmap_Kd {png.name}\n".encode())
        out.write(f"\nmtllib {path.with_suffix('.mtl').name}\nusemtl mesh\n\n")
    cfmt = " %.6g %.6g %.6g" if v.shape[1] == 6 else ""
    if len(v):
        np.savetxt(out, v, fmt=f"v {flt} {flt} {flt}" + cfmt)
    if with_n and len(nrm):
        np.savetxt(out, nrm, fmt=f"vn {flt} {flt} {flt}")
    if with_uv and len(uv):
        np.savetxt(out, uv, fmt=f"vt {flt} {flt}")
    if len(fa):
        cols = [fa + 1]
        if with_uv and with_n:
            fmt = "%d/%d/%d"
            cols += [fuv + 1, fn + 1]
        elif with_uv:
            fmt, cols = "%d/%d", cols + [fuv + 1]
        elif with_n:
            fmt, cols = "%d//%d", cols + [fn + 1]
        else:
            fmt = "%d"
        table = np.stack(cols, axis=2).reshape(len(fa), -1)
        np.savetxt(out, table, fmt="f " + " ".join([fmt] * 3))
    text = out.getvalue()
    if text.endswith("\n") and len(fa):
        text = text[:-1]  # PyTorch3D's layout: no newline after the last face
    write_output(f, text.encode(), path_manager)


# --------------------------------------------------------------------------- other formats


def load_mesh(path: PathLike, device: str | torch.device = "cpu") -> Meshes:
    """Load one mesh (geometry only) from OBJ, PLY, OFF, STL, GLB or glTF.

    OBJ goes through :func:`load_obj` (welded vertices, file order); the rest through
    ``trimesh.load_mesh`` without processing (scenes are flattened into one mesh), except
    that STL's unindexed triangles get their duplicate vertices merged.

    Returns:
        ``Meshes`` of one float32 mesh on ``device`` (a constant).

    Raises:
        FileNotFoundError: missing file.
        ValueError: unsupported extension, unreadable file, no faces, NaN/inf vertices or
            face indices out of range.
    """
    p = _existing_file(path)
    ext = p.suffix.lower()
    if ext not in _MESH_EXTS:
        raise ValueError(f"{p}: unsupported mesh format '{ext}' (expected one of {_MESH_EXTS})")
    if ext == ".obj":
        verts, faces, _ = load_obj(p, load_textures=False, device=device)
        return Meshes([verts], [faces.verts_idx])
    try:
        mesh = trimesh.load_mesh(p, file_type=ext[1:], process=False)
    except Exception as e:  # trimesh raises many types for a bad file
        raise ValueError(f"{p}: could not read as {ext[1:].upper()} ({e})") from e
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise ValueError(f"{p}: no triangle faces; not a mesh")
    if ext == ".stl":
        mesh.merge_vertices()
    v = np.asarray(mesh.vertices, dtype=np.float64)
    f = np.asarray(mesh.faces, dtype=np.int64)
    if not np.isfinite(v).all():
        raise ValueError(f"{p}: vertices contain NaN or inf")
    _check_range(f, len(v), "face vertex", str(p))
    verts = torch.as_tensor(v, dtype=torch.float32, device=device)
    return Meshes([verts], [torch.as_tensor(f, device=device)])


def default_mesh_path() -> Path:
    """Path of the bundled demo mesh (Keenan Crane's cow, with its MTL and texture)."""
    return _DEFAULT_MESH


def load_default_mesh(
    device: str | torch.device = "cpu", load_textures: bool = True
) -> Meshes:
    """The bundled cow as ``Meshes`` (2,930 vertices, 5,856 faces), textured if asked."""
    return load_objs_as_meshes([_DEFAULT_MESH], device=device, load_textures=load_textures)
