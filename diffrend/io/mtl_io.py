"""MTL material files and per-face texture atlases (PyTorch3D's ``pytorch3d.io.mtl_io``).

``_parse_mtl`` reads material colours and ``map_Kd`` texture names; ``make_mesh_texture_atlas``
bakes them into the (F, R, R, 3) per-face texel grids that ``TexturesAtlas`` samples (the
SoftRas layout described in :func:`diffrend.shading.textures.sample_texture_atlas`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ._files import PathOrStream, decode_text, open_input

MaterialProperties = dict[str, dict[str, torch.Tensor]]
TextureFiles = dict[str, str]
TextureImages = dict[str, torch.Tensor]

_COLOR_KEYS = {"ka": "ambient_color", "kd": "diffuse_color", "ks": "specular_color"}


def _numbers(values: list[str], where: str, what: str) -> torch.Tensor:
    """float32 tensor of ``values``; ValueError naming ``where`` unless all are finite
    numbers (checked after the cast: 1e39 is inf in float32)."""
    try:
        t = torch.tensor([float(x) for x in values], dtype=torch.float32)
    except ValueError:
        raise ValueError(f"{where}: malformed {what} {' '.join(values)!r}") from None
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{where}: {what} {' '.join(values)!r} contains NaN or inf")
    return t


def _color(values: list[str], where: str) -> torch.Tensor:
    if len(values) not in (1, 3):
        raise ValueError(f"{where}: a colour needs 1 or 3 numbers, got {' '.join(values)!r}")
    t = _numbers(values, where, "colour")
    return t.expand(3).clone() if t.numel() == 1 else t  # "Kd 0.5" means grey


def parse_mtl_text(text: str, where: str = "<mtl>") -> tuple[MaterialProperties, TextureFiles]:
    """Material colours and ``map_Kd`` file names of MTL text.

    Returns:
        properties: name -> {"ambient_color" (3,), "diffuse_color" (3,), "specular_color"
        (3,), "shininess" (1,)} (the keys the file has; an empty dict if none);
        texture files: name -> the ``map_Kd`` file name as written (spaces kept; options
        such as ``-s 1 1 1`` before the name are dropped).
    """
    props: MaterialProperties = {}
    files: TextureFiles = {}
    name = ""
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        key = tokens[0].lower()
        here = f"{where}: line {lineno}"
        if key == "newmtl":
            name = line[len(tokens[0]):].strip()
            props[name] = {}
        elif key == "map_kd":
            rest = line[len(tokens[0]):].strip()
            files[name] = tokens[-1] if rest.startswith("-") else rest
        elif key in _COLOR_KEYS or key == "ns":
            tokens = line.split("#", 1)[0].split()  # numbers may have a trailing comment
        if key in _COLOR_KEYS:
            props.setdefault(name, {})[_COLOR_KEYS[key]] = _color(tokens[1:], here)
        elif key == "ns" and len(tokens) > 1:
            props.setdefault(name, {})["shininess"] = _numbers(tokens[1:2], here, "Ns")
    return props, files


def _parse_mtl(
    f: PathOrStream, path_manager: Any = None, device: str | torch.device = "cpu"
) -> tuple[MaterialProperties, TextureFiles]:
    """PyTorch3D's ``_parse_mtl``: :func:`parse_mtl_text` of a path or text stream, with
    the colours on ``device``."""
    with open_input(f, path_manager, "rb") as stream:
        data = stream.read()
    text = decode_text(data)
    props, files = parse_mtl_text(text, str(getattr(f, "name", f)))
    props = {k: {kk: vv.to(device) for kk, vv in d.items()} for k, d in props.items()}
    return props, files


# --------------------------------------------------------------------------- atlas


def _bilinear_interpolation_grid_sample(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` (H, W, D) at ``grid`` (N, R, R, 2) positions (u, v) in [0, 1]
    (u to the right along W, v down along H; corner texel centres at 0 and 1) with
    bilinear ``grid_sample``; (N, R, R, D), zero outside. Differentiable in both."""
    n = grid.shape[0]
    img = image.permute(2, 0, 1)[None].expand(n, -1, -1, -1)
    out = F.grid_sample(img, grid * 2.0 - 1.0, mode="bilinear", align_corners=True)
    return out.permute(0, 2, 3, 1)


def _bilinear_interpolation_vectorized(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The same bilinear lookup as :func:`_bilinear_interpolation_grid_sample` by explicit
    gathers of the four neighbours (positions are clamped to the image instead of reading
    zeros outside). (H, W, D) image, (N, R, R, 2) grid -> (N, R, R, D)."""
    h, w = image.shape[:2]
    xy = grid * torch.tensor([w - 1, h - 1], dtype=grid.dtype, device=grid.device)
    xy = torch.stack([xy[..., 0].clamp(0, w - 1), xy[..., 1].clamp(0, h - 1)], dim=-1)
    lo = xy.floor().to(torch.int64)
    frac = xy - lo
    x0, y0 = lo.unbind(-1)
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    fx, fy = frac[..., :1], frac[..., 1:]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _cell_barycentrics(r: int, device: torch.device) -> torch.Tensor:
    """(R, R, 3) barycentrics of the centroid of each atlas texel's sub-triangle.

    Texel [i, j] with i + j < R is the lower sub-triangle of cell (b1 row i, b0 column j),
    centroid ((j + 1/3) / R, (i + 1/3) / R); otherwise it is the upper sub-triangle of
    the mirrored cell (R-1-i, R-1-j), centroid ((R-1-j + 2/3) / R, (R-1-i + 2/3) / R).
    """
    i, j = torch.meshgrid(torch.arange(r, device=device, dtype=torch.float32),
                          torch.arange(r, device=device, dtype=torch.float32), indexing="ij")
    lower = (i + j) < r
    b0 = torch.where(lower, (j + 1 / 3) / r, (r - 1 - j + 2 / 3) / r)
    b1 = torch.where(lower, (i + 1 / 3) / r, (r - 1 - i + 2 / 3) / r)
    return torch.stack([b0, b1, 1 - b0 - b1], dim=-1)


def make_material_atlas(
    image: torch.Tensor, faces_verts_uvs: torch.Tensor, texture_size: int
) -> torch.Tensor:
    """Per-face R x R texels of one texture image.

    Args:
        image: (H, W, 3) float image, row 0 at v = 0 (already flipped from file order).
        faces_verts_uvs: (F, 3, 2) UVs of each face's corners.
        texture_size: R.

    Returns:
        (F, R, R, 3) float; differentiable w.r.t. ``image`` and the UVs.
    """
    bary = _cell_barycentrics(texture_size, faces_verts_uvs.device)
    uv = torch.einsum("ijk,fkc->fijc", bary.to(faces_verts_uvs.dtype), faces_verts_uvs)
    return _bilinear_interpolation_grid_sample(image, uv)


def make_mesh_texture_atlas(
    material_properties: MaterialProperties,
    texture_images: TextureImages,
    face_material_names: np.ndarray,
    faces_uvs: torch.Tensor,
    verts_uvs: torch.Tensor,
    texture_size: int,
    texture_wrap: str | None,
) -> torch.Tensor:
    """An (F, R, R, 3) texture atlas from an OBJ's materials (PyTorch3D's function).

    Faces without a material are white; a material's faces take its diffuse colour, or
    samples of its texture image where it has one.

    Args:
        material_properties: name -> colour dict (see :func:`parse_mtl_text`).
        texture_images: name -> (H, W, 3 or 4) float image in file order (row 0 at top).
        face_material_names: (F,) array of each face's material name ("" for none).
        faces_uvs: (F, 3) int64 indices into ``verts_uvs`` (-1 where a face has none).
        verts_uvs: (T, 2) float UVs (may be empty).
        texture_size: R, texels per side of each face's grid.
        texture_wrap: "repeat" (UVs outside [0, 1] wrap, with a warning), "clamp", or None.

    Returns:
        (F, R, R, 3) float32 on ``faces_uvs.device``.
    """
    if texture_wrap not in ("repeat", "clamp", None):
        raise ValueError(f"texture_wrap: expected 'repeat', 'clamp' or None, got {texture_wrap!r}")
    r, n_faces = int(texture_size), faces_uvs.shape[0]
    device = faces_uvs.device
    atlas = torch.ones(n_faces, r, r, 3, dtype=torch.float32, device=device)
    names = np.asarray(face_material_names)
    for name, props in (material_properties or {}).items():
        mask = torch.as_tensor(names == name, device=device)
        if "diffuse_color" in props and bool(mask.any()):
            atlas[mask] = props["diffuse_color"].to(device, torch.float32)
    if not texture_images or verts_uvs is None or len(verts_uvs) == 0:
        return atlas
    # Indices out of range (kept, with a warning, by a non-strict load) count as no UV.
    has_uv = ((faces_uvs >= 0) & (faces_uvs < len(verts_uvs))).all(dim=1)
    corner_uvs = verts_uvs.to(device)[faces_uvs.clamp(0, len(verts_uvs) - 1)]  # (F, 3, 2)
    if texture_wrap == "repeat":
        if bool(((corner_uvs < 0) | (corner_uvs > 1)).any()):
            warnings.warn("Texture UV coordinates outside the range [0, 1]; the integer "
                          "part is ignored (texture_wrap='repeat').", stacklevel=2)
            corner_uvs = corner_uvs % 1
    elif texture_wrap == "clamp":
        corner_uvs = corner_uvs.clamp(0.0, 1.0)
    for name, image in texture_images.items():
        mask = torch.as_tensor(names == name, device=device) & has_uv
        if not bool(mask.any()):
            continue
        img = image[..., :3].to(device, torch.float32).flip(0)  # v = 0 is the bottom row
        atlas[mask] = make_material_atlas(img, corner_uvs[mask], r)
    return atlas
