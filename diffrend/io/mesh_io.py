"""Mesh files in and out, through trimesh, with PyTorch3D's ``load_obj`` return shape.

OBJ geometry stays welded: trimesh's mesh loader splits vertices along UV seams (and with
``maintain_order`` it keeps one UV per vertex), so for OBJ we take the vertex, normal and UV
arrays from trimesh's OBJ vertex parser (``trimesh.exchange.obj._parse_vertices``: private,
so a trimesh upgrade may break it; the tests cover it) and the MTL from its ``parse_mtl``,
and read only the ``f``/``usemtl``/``mtllib`` lines here, keeping the separate position /
UV / normal index streams (as PyTorch3D does). Other formats (PLY, OFF, STL, GLB/glTF) go
through ``trimesh.load_mesh``. Nothing here is differentiable: loaders return constants.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import trimesh
from PIL import Image
from trimesh.exchange import obj as _tm_obj

from ..shading.textures import TexturesUV
from ..structures import Meshes, join_meshes_as_batch

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
    [0, 1], or None; texture_atlas: always None (not supported).
    """

    normals: torch.Tensor | None
    verts_uvs: torch.Tensor | None
    material_colors: dict[str, dict[str, torch.Tensor]] | None
    texture_images: dict[str, torch.Tensor] | None
    texture_atlas: None


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


def _existing_file(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    if not p.is_file():
        raise ValueError(f"{p}: not a regular file")
    return p


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are ordinary files
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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


def _parse_faces_fast(lines: list[str], path: Path) -> tuple[np.ndarray, ...] | None:
    """All-triangle, one-format, positive-index faces in one numpy pass; None otherwise."""
    first = lines[0].split()
    kind = _face_kind(first[0]) if first else 0
    if kind not in _TOKEN:
        return None
    tok = _TOKEN[kind]
    line = rf"[ \t]*{tok}[ \t]+{tok}[ \t]+{tok}[ \t]*"
    blob = "\n".join(lines)
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


def _corner(token: str, counts: tuple[int, int, int], where: str) -> list[int]:
    parts = token.split("/")
    if len(parts) > 3 or not parts[0]:
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
        if j < 0:
            raise ValueError(f"{where}: relative face index {i} points before the first entry")
        out.append(j)
    return out


def _parse_faces_slow(text: str, path: Path) -> tuple[np.ndarray, ...]:
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
            if len(tokens) < 3:
                raise ValueError(f"{where}: a face needs at least 3 vertices, got {len(tokens)}")
            try:
                c = [_corner(t, (counts[0], counts[1], counts[2]), where) for t in tokens]
            except ValueError as e:
                if str(e).startswith(str(path)):
                    raise
                raise ValueError(f"{where}: malformed face line ({e})") from e
            for k, what in ((1, "texture coordinates"), (2, "normals")):
                given = [x[k] >= 0 for x in c]
                if any(given) and not all(given):
                    raise ValueError(f"{where}: {what} must be given for all corners of a face "
                                     "or none (truncated line?)")
            for i in range(1, len(c) - 1):
                rows.append([x for k in range(3) for x in (c[0][k], c[i][k], c[i + 1][k])])
    arr = np.asarray(rows, dtype=np.int64).reshape(-1, 3, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2]


def _parse_faces(text: str, path: Path) -> tuple[np.ndarray, ...]:
    """(verts_idx, textures_idx, normals_idx, materials_idx, material names) of an OBJ."""
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
        raise ValueError(f"{path}: no faces ('f' lines); not a triangle mesh")
    fast = _parse_faces_fast(lines, path)
    if fast is not None:
        materials = np.asarray(line_mat, dtype=np.int64)
        return (*fast, materials, list(names))
    v, t, n = _parse_faces_slow(text, path)
    # Material of each triangle: repeat each line's material by its triangle count.
    tri_per_line = [len(s.split("#", 1)[0].split()) - 2 for s in lines]
    materials = np.repeat(np.asarray(line_mat, dtype=np.int64), tri_per_line)
    return v, t, n, materials, list(names)


# --------------------------------------------------------------------------- MTL


class _FolderResolver:
    """trimesh resolver that reads only files inside one folder (unless allowed)."""

    def __init__(self, folder: Path, allow_external: bool) -> None:
        self.folder = folder.resolve()
        self.allow_external = allow_external
        self.refused: list[str] = []
        self.missing: list[str] = []
        self.requested: list[str] = []

    def path(self, name: str) -> Path:
        p = (self.folder / name.strip()).resolve()
        if not self.allow_external and not p.is_relative_to(self.folder):
            self.refused.append(name)
            raise ValueError(f"{name} resolves outside {self.folder}")
        return p

    def get(self, name: str) -> bytes:
        self.requested.append(name)
        p = self.path(name)
        if not p.is_file():
            self.missing.append(name)
            raise FileNotFoundError(name)
        return p.read_bytes()

    __getitem__ = get


def _image_tensor(img: Any) -> torch.Tensor:
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr)


def _color(value: Any) -> torch.Tensor:
    t = torch.tensor(value, dtype=torch.float32).reshape(-1)
    return t.expand(3).clone() if t.numel() == 1 else t[:3]


def _material_colors(props: dict) -> dict[str, torch.Tensor]:
    """PyTorch3D's material colour record from trimesh's parsed MTL entry."""
    entry = {}
    for key, out in (("ka", "ambient_color"), ("kd", "diffuse_color"), ("ks", "specular_color")):
        if key in props:
            entry[out] = _color(props[key])
    if "ns" in props:
        entry["shininess"] = torch.tensor([float(np.ravel(props["ns"])[0])])
    return entry


def _load_materials(
    text: str, path: Path, allow_external: bool
) -> tuple[dict | None, dict | None]:
    """Material colours and texture images of the MTL files an OBJ names (None if none)."""
    mtl_names = [ln[6:].strip() for ln in text.split("\n") if ln.startswith("mtllib")]
    if not mtl_names:
        return None, None
    resolver = _FolderResolver(path.parent, allow_external)
    external = (
        f"{path}: refusing to read %s outside the mesh folder {resolver.folder}; "
        "pass allow_external_textures=True to allow it"
    )
    colors: dict[str, dict[str, torch.Tensor]] = {}
    images: dict[str, torch.Tensor] = {}
    found = False
    for name in mtl_names:
        try:
            mtl_path = resolver.path(name)
        except ValueError:
            raise ValueError(external % f"material file '{name}'") from None
        if not mtl_path.is_file():
            warnings.warn(f"{path}: material file '{name}' not found; loading without it",
                          stacklevel=3)
            continue
        found = True
        mtl = trimesh.util.decode_text(mtl_path.read_bytes())
        mtl = "\n".join(ln.split("#", 1)[0] for ln in mtl.splitlines())
        resolver.requested.clear()
        resolver.missing.clear()
        materials = _tm_obj.parse_mtl(mtl, resolver=resolver)
        if resolver.refused:
            raise ValueError(external % f"texture '{resolver.refused[0]}'")
        read_ok = set()
        for mat_name, props in materials.items():
            colors[mat_name] = _material_colors(props)
            img = props.get("image")
            if img is None:
                continue
            read_ok.add(img.info.get("file_path"))
            try:
                images[mat_name] = _image_tensor(img)
            except (OSError, ValueError) as e:
                warnings.warn(f"{path}: texture of material '{mat_name}' is unreadable "
                              f"({e}); loading without it", stacklevel=3)
        for tex in resolver.requested:
            if tex not in read_ok:
                why = "not found" if tex in resolver.missing else "unreadable"
                warnings.warn(f"{path}: texture image '{tex}' {why}; loading without it",
                              stacklevel=3)
    if not found:
        return None, None
    return colors, images


# --------------------------------------------------------------------------- OBJ


def load_obj(
    path: PathLike,
    load_textures: bool = True,
    device: str | torch.device = "cpu",
    allow_external_textures: bool = False,
) -> tuple[torch.Tensor, ObjFaces, ObjAux]:
    """Read an OBJ as PyTorch3D's ``load_obj`` does, with vertices kept welded.

    Polygons are fan-triangulated; relative (negative) indices are resolved.

    Args:
        path: the ``.obj`` file.
        load_textures: read the MTL files (colours, ``map_Kd`` images). A missing MTL or
            texture image gives a warning and is skipped.
        device: where the returned tensors live.
        allow_external_textures: allow MTL/texture paths outside the OBJ's folder (refused
            with ValueError otherwise).

    Returns:
        verts (V, 3) float32, ``ObjFaces`` and ``ObjAux``; constants (no gradients).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a readable OBJ mesh (binary data, no vertices or faces,
            malformed or truncated lines, NaN/inf values, indices out of range).
    """
    path = _existing_file(path)
    data = path.read_bytes()
    if b"\x00" in data:
        raise ValueError(f"{path}: binary data, not a text OBJ file")
    text = trimesh.util.decode_text(data)
    text = "\n" + text.replace("\r\n", "\n").replace("\r", "\n").replace("\\\n", "") + "\n"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            v, vn, vt, _ = _tm_obj._parse_vertices(text)
    except (ValueError, IndexError, TypeError) as e:
        raise ValueError(f"{path}: malformed vertex lines ({e})") from e
    if v is None or len(v) == 0:
        raise ValueError(f"{path}: no vertices ('v' lines); not an OBJ mesh")
    for arr, what, cols in ((v, "vertex", 3), (vt, "texture coordinate", 2), (vn, "normal", 3)):
        if arr is not None and (arr.ndim != 2 or arr.shape[1] < cols):
            raise ValueError(f"{path}: {what} lines need {cols} numbers (truncated file?)")
        if arr is not None and not np.isfinite(arr).all():
            raise ValueError(f"{path}: {what} lines contain NaN or inf")
    v_idx, t_idx, n_idx, m_idx, _names = _parse_faces(text, path)
    for idx, arr, name, plural in ((v_idx, v, "vertex", "vertices"),
                                   (t_idx, vt, "texture coordinate", "texture coordinates"),
                                   (n_idx, vn, "normal", "normals")):
        n = 0 if arr is None else len(arr)
        if idx.size and idx.max() >= n:
            raise ValueError(f"{path}: a face uses {name} {idx.max() + 1} but the file has "
                             f"{n} {plural}")
    colors = images = None
    if load_textures:
        colors, images = _load_materials(text, path, allow_external_textures)

    def tensor(x: Any, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype).to(device)

    faces = ObjFaces(
        verts_idx=tensor(v_idx, torch.int64),
        normals_idx=tensor(n_idx, torch.int64),
        textures_idx=tensor(t_idx, torch.int64),
        materials_idx=tensor(m_idx, torch.int64),
    )
    aux = ObjAux(
        normals=None if vn is None else tensor(vn[:, :3], torch.float32),
        verts_uvs=None if vt is None else tensor(vt[:, :2], torch.float32),
        material_colors=None if colors is None else {
            k: {kk: vv.to(device) for kk, vv in d.items()} for k, d in colors.items()},
        texture_images=None if images is None else {k: x.to(device) for k, x in images.items()},
        texture_atlas=None,
    )
    return tensor(v[:, :3], torch.float32), faces, aux


def load_objs_as_meshes(
    files: Sequence[PathLike],
    device: str | torch.device | None = None,
    load_textures: bool = True,
    allow_external_textures: bool = False,
) -> Meshes:
    """Load OBJ files into one ``Meshes`` batch (PyTorch3D's ``load_objs_as_meshes``).

    With ``load_textures``, a mesh whose MTL gives a texture image gets
    ``TexturesUV(maps=(1, H, W, 3), faces_uvs=[(F, 3)], verts_uvs=[(T, 2)])`` with
    PyTorch3D's defaults (bilinear, ``align_corners=True``, ``padding_mode="border"``). With
    several textured materials the first image is used (with a warning). Faces that have
    no texture coordinates in the file read UV (0, 0) (with a warning; PyTorch3D silently
    reads the last UV there). Either all files have a texture or none may.

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
        verts, faces, aux = load_obj(f, load_textures, device, allow_external_textures)
        tex = None
        if load_textures and aux.texture_images and aux.verts_uvs is not None:
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


def save_obj(
    path: PathLike,
    verts: torch.Tensor,
    faces: torch.Tensor,
    verts_uvs: torch.Tensor | None = None,
    faces_uvs: torch.Tensor | None = None,
    texture_map: torch.Tensor | None = None,
    verts_colors: torch.Tensor | None = None,
) -> None:
    """Write a mesh as OBJ; with a texture also ``<stem>.mtl`` and ``<stem>.png`` beside it.

    Args:
        path: the ``.obj`` file to write (each file is written atomically).
        verts: (V, 3) float positions; faces: (F, 3) int indices into verts.
        verts_uvs: (T, 2) UVs and faces_uvs: (F, 3) indices into them (both or neither).
        texture_map: (H, W, 3) float image in [0, 1] (needs the UVs); saved as 8-bit PNG.
        verts_colors: (V, 3) float RGB in [0, 1], written as ``v x y z r g b`` (the vertex
            colour extension read by MeshLab, Blender, trimesh and Open3D).
    """
    path = Path(path)
    v = _to_numpy(verts, "verts", 3, integer=False)
    if verts_colors is not None:
        c = _to_numpy(verts_colors, "verts_colors", 3, integer=False)
        if c.shape != v.shape:
            raise ValueError(f"verts_colors: expected shape {v.shape}, got {c.shape}")
        v = np.concatenate([v, np.clip(c, 0.0, 1.0)], axis=1)
    f = _to_numpy(faces, "faces", 3, integer=True)
    _check_range(f, len(v), "faces", str(path))
    if (verts_uvs is None) != (faces_uvs is None):
        raise ValueError("verts_uvs and faces_uvs must be given together")
    if texture_map is not None and verts_uvs is None:
        raise ValueError("texture_map needs verts_uvs and faces_uvs")
    out = io.StringIO()
    out.write("# written by diffrend\n")
    if verts_uvs is not None:
        uv = _to_numpy(verts_uvs, "verts_uvs", 2, integer=False)
        fuv = _to_numpy(faces_uvs, "faces_uvs", 3, integer=True)
        if fuv.shape != f.shape:
            raise ValueError(f"faces_uvs: expected shape {f.shape}, got {fuv.shape}")
        _check_range(fuv, len(uv), "faces_uvs", str(path))
    if texture_map is not None:
        tex = texture_map.detach().cpu().numpy() if torch.is_tensor(texture_map) \
            else np.asarray(texture_map)
        if tex.ndim != 3 or tex.shape[2] != 3 or not np.isfinite(tex).all():
            raise ValueError(f"texture_map: expected a finite (H, W, 3) image, got {tex.shape}")
        png = path.with_suffix(".png")
        buf = io.BytesIO()
        Image.fromarray(np.round(np.clip(tex, 0, 1) * 255).astype(np.uint8)).save(buf, "PNG")
        _atomic_write(png, buf.getvalue())
        mtl = (f"newmtl mesh\nmap_Kd {png.name}\nKa 1.000 1.000 1.000\n"
               "Kd 1.000 1.000 1.000\nKs 0.000 0.000 0.000\nNs 0.0\nillum 0\n")
        _atomic_write(path.with_suffix(".mtl"), mtl.encode())
        out.write(f"mtllib {path.with_suffix('.mtl').name}\nusemtl mesh\n")
    np.savetxt(out, v, fmt="v %.9g %.9g %.9g" + (" %.6g %.6g %.6g" if v.shape[1] == 6 else ""))
    if verts_uvs is not None:
        np.savetxt(out, uv, fmt="vt %.9g %.9g")
        inter = np.stack([f + 1, fuv + 1], axis=2).reshape(-1, 6)
        np.savetxt(out, inter, fmt="f %d/%d %d/%d %d/%d")
    else:
        np.savetxt(out, f + 1, fmt="f %d %d %d")
    _atomic_write(path, out.getvalue().encode())


# --------------------------------------------------------------------------- other formats


def load_mesh(path: PathLike, device: str | torch.device = "cpu") -> Meshes:
    """Load one mesh (geometry only) from OBJ, PLY, OFF, STL, GLB or glTF.

    OBJ goes through :func:`load_obj` (welded vertices, file order); the rest through
    ``trimesh.load_mesh`` without processing (scenes are flattened into one mesh), except
    that STL's unindexed triangles get their duplicate vertices merged.

    Returns:
        ``Meshes`` of one float32 mesh on ``device`` (a constant).

    Raises:
        FileNotFoundError: missing file. ValueError: unsupported extension, unreadable
        file, no faces, NaN/inf vertices or face indices out of range.
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


def save_ply(
    path: PathLike,
    verts: torch.Tensor,
    faces: torch.Tensor,
    verts_normals: torch.Tensor | None = None,
    verts_colors: torch.Tensor | None = None,
) -> None:
    """Write a binary PLY (via trimesh), atomically.

    Args:
        verts: (V, 3) float; faces: (F, 3) int indices into verts; verts_normals: optional
            (V, 3) float normals written as nx, ny, nz; verts_colors: optional (V, 3) float
            RGB in [0, 1], written as 8-bit red, green, blue.
    """
    path = Path(path)
    v = _to_numpy(verts, "verts", 3, integer=False)
    f = _to_numpy(faces, "faces", 3, integer=True)
    _check_range(f, len(v), "faces", str(path))
    mesh = trimesh.Trimesh(vertices=v, faces=f, process=False)
    if verts_normals is not None:
        n = _to_numpy(verts_normals, "verts_normals", 3, integer=False)
        if n.shape != v.shape:
            raise ValueError(f"verts_normals: expected shape {v.shape}, got {n.shape}")
        mesh.vertex_normals = n
    if verts_colors is not None:
        c = _to_numpy(verts_colors, "verts_colors", 3, integer=False)
        if c.shape != v.shape:
            raise ValueError(f"verts_colors: expected shape {v.shape}, got {c.shape}")
        rgba = np.concatenate([np.round(np.clip(c, 0, 1) * 255), np.full((len(c), 1), 255)], 1)
        mesh.visual.vertex_colors = rgba.astype(np.uint8)
    data = trimesh.exchange.ply.export_ply(
        mesh, encoding="binary", vertex_normal=verts_normals is not None
    )
    _atomic_write(path, data)


def default_mesh_path() -> Path:
    """Path of the bundled demo mesh (Keenan Crane's cow, with its MTL and texture)."""
    return _DEFAULT_MESH


def load_default_mesh(
    device: str | torch.device = "cpu", load_textures: bool = True
) -> Meshes:
    """The bundled cow as ``Meshes`` (2,930 vertices, 5,856 faces), textured if asked."""
    return load_objs_as_meshes([_DEFAULT_MESH], device=device, load_textures=load_textures)
