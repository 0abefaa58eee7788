"""``IO``: load and save meshes and point clouds by file format (PyTorch3D's pluggable I/O).

``IO().load_mesh(path)`` asks each registered format interpreter in turn (the most
recently registered first) until one recognises the file; saving works the same way. A
format is a ``MeshFormatInterpreter`` / ``PointcloudFormatInterpreter`` subclass whose
``read`` returns None and whose ``save`` returns False for files it does not handle.
Built in: OBJ and PLY meshes, PLY point clouds. Loaded data are constants (no gradients).
"""

from __future__ import annotations

import os
import warnings
from collections import deque
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..shading.textures import TexturesUV, TexturesVertex
from ..structures import Meshes, Pointclouds
from ._files import PathOrStream, open_input, resolve_inside
from .mesh_io import _image_tensor, load_objs_as_meshes, save_obj
from .ply_io import _load_ply, save_ply

Device = str | torch.device


def endswith(path: Any, suffixes: tuple[str, ...]) -> bool:
    """Whether a path ends with one of ``suffixes`` (case-insensitive); True for a stream,
    so that every interpreter tries a stream."""
    if isinstance(path, os.PathLike):
        return Path(path).suffix.lower() in suffixes
    if isinstance(path, str):
        return path.lower().endswith(suffixes)
    return True


class MeshFormatInterpreter:
    """Base class of a mesh file format for ``IO``."""

    def read(self, path: PathOrStream, include_textures: bool, device: Device,
             path_manager: Any, **kwargs: Any) -> Meshes | None:
        """A one-mesh ``Meshes`` on ``device``, or None if this format does not apply."""
        raise NotImplementedError

    def save(self, data: Meshes, path: PathOrStream, path_manager: Any,
             binary: bool | None, **kwargs: Any) -> bool:
        """Write ``data`` (one mesh); False if this format does not apply."""
        raise NotImplementedError


class PointcloudFormatInterpreter:
    """Base class of a point cloud file format for ``IO``."""

    def read(self, path: PathOrStream, device: Device, path_manager: Any,
             **kwargs: Any) -> Pointclouds | None:
        """A one-cloud ``Pointclouds`` on ``device``, or None if this format does not apply."""
        raise NotImplementedError

    def save(self, data: Pointclouds, path: PathOrStream, path_manager: Any,
             binary: bool | None, **kwargs: Any) -> bool:
        """Write ``data`` (one cloud); False if this format does not apply."""
        raise NotImplementedError


class MeshObjFormat(MeshFormatInterpreter):
    """OBJ meshes: read with ``load_objs_as_meshes``, written with ``save_obj`` (a
    ``TexturesUV`` texture goes to ``<stem>.mtl`` / ``<stem>.png``)."""

    known_suffixes = (".obj",)

    def read(self, path: PathOrStream, include_textures: bool, device: Device,
             path_manager: Any, create_texture_atlas: bool = False,
             texture_atlas_size: int = 4, texture_wrap: str | None = "repeat",
             **kwargs: Any) -> Meshes | None:
        if not endswith(path, self.known_suffixes):
            return None
        return load_objs_as_meshes(
            [path], device=device, load_textures=include_textures,
            create_texture_atlas=create_texture_atlas, texture_atlas_size=texture_atlas_size,
            texture_wrap=texture_wrap, path_manager=path_manager)

    def save(self, data: Meshes, path: PathOrStream, path_manager: Any,
             binary: bool | None, decimal_places: int | None = None,
             include_textures: bool = True, **kwargs: Any) -> bool:
        if not endswith(path, self.known_suffixes):
            return False
        uv = {}
        if include_textures and isinstance(data.textures, TexturesUV):
            uv = dict(verts_uvs=data.textures.verts_uvs_padded()[0],
                      faces_uvs=data.textures.faces_uvs_padded()[0],
                      texture_map=data.textures.maps_padded()[0])
        save_obj(path, data.verts_list()[0], data.faces_list()[0],
                 decimal_places=decimal_places, path_manager=path_manager, **uv)
        return True


class MeshPlyFormat(MeshFormatInterpreter):
    """PLY meshes: vertex colours become ``TexturesVertex``; ``texture_u``/``texture_v``
    with a ``comment TextureFile <image>`` become ``TexturesUV``; normals are kept."""

    known_suffixes = (".ply",)

    def read(self, path: PathOrStream, include_textures: bool, device: Device,
             path_manager: Any, **kwargs: Any) -> Meshes | None:
        if not endswith(path, self.known_suffixes):
            return None
        d = _load_ply(path, path_manager)
        faces = d.faces if d.faces is not None else torch.zeros(0, 3, dtype=torch.int64)
        tex = None
        if include_textures and d.verts_colors is not None:
            tex = TexturesVertex([d.verts_colors.to(device)])
        elif include_textures and d.verts_texture_uvs is not None:
            image = _ply_texture_image(path, d.header.comments, path_manager)
            if image is not None:
                tex = TexturesUV([image.to(device)], [faces.to(device)],
                                 [d.verts_texture_uvs.to(device)])
        normals = None if d.verts_normals is None else [d.verts_normals.to(device)]
        return Meshes([d.verts.to(device)], [faces.to(device)], textures=tex,
                      verts_normals=normals)

    def save(self, data: Meshes, path: PathOrStream, path_manager: Any,
             binary: bool | None, decimal_places: int | None = None,
             colors_as_uint8: bool = False, include_textures: bool = True,
             **kwargs: Any) -> bool:
        if not endswith(path, self.known_suffixes):
            return False
        colors = None
        if include_textures and isinstance(data.textures, TexturesVertex):
            feats = data.textures.verts_features_list()[0]
            if feats.shape[1] == 3:
                colors = feats
            else:
                warnings.warn(f"Texture will not be saved as it has {feats.shape[1]} colors, "
                              "not 3.", stacklevel=3)
        normals = data.verts_normals_list()[0] if data.has_verts_normals() else None
        save_ply(path, data.verts_list()[0], data.faces_list()[0], verts_normals=normals,
                 ascii=binary is False, decimal_places=decimal_places,
                 path_manager=path_manager, verts_colors=colors,
                 colors_as_uint8=colors_as_uint8, strict=False)
        return True


def _ply_texture_image(path: Any, comments: list[str], path_manager: Any) -> torch.Tensor | None:
    """The (H, W, 3) float image named by a ``TextureFile`` comment, beside the PLY file."""
    names = [c.split(" ")[-1] for c in comments if "TextureFile" in c]
    if not names or not isinstance(path, (str, os.PathLike)):
        return None
    folder, name = os.path.dirname(str(path)), names[-1]
    # The mesh loaders' rule: a name in the file never leads out of the file's folder.
    if path_manager is None:
        image_path: str = str(resolve_inside(Path(folder or "."), name, False,
                                             f"{path}: TextureFile", None))
    elif os.path.isabs(name) or ".." in Path(name).parts:
        raise ValueError(f"{path}: TextureFile {name!r} leads outside the mesh folder")
    else:
        image_path = os.path.join(folder, name)
    try:
        with open_input(image_path, path_manager, "rb") as stream, Image.open(stream) as img:
            return _image_tensor(img)
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: TextureFile {name!r} unreadable ({e})") from e


class PointcloudPlyFormat(PointcloudFormatInterpreter):
    """PLY point clouds: colours are the features, normals are kept."""

    known_suffixes = (".ply",)

    def read(self, path: PathOrStream, device: Device, path_manager: Any,
             **kwargs: Any) -> Pointclouds | None:
        if not endswith(path, self.known_suffixes):
            return None
        d = _load_ply(path, path_manager)
        feats = None if d.verts_colors is None else [d.verts_colors.to(device)]
        normals = None if d.verts_normals is None else [d.verts_normals.to(device)]
        return Pointclouds([d.verts.to(device)], normals=normals, features=feats)

    def save(self, data: Pointclouds, path: PathOrStream, path_manager: Any,
             binary: bool | None, decimal_places: int | None = None,
             colors_as_uint8: bool = False, **kwargs: Any) -> bool:
        if not endswith(path, self.known_suffixes):
            return False
        feats = data.features_packed()
        if feats is not None and feats.shape[1] != 3:
            warnings.warn(f"Features will not be saved as they have {feats.shape[1]} "
                          "channels, not 3.", stacklevel=3)
            feats = None
        save_ply(path, data.points_list()[0], None, verts_normals=data.normals_packed(),
                 ascii=binary is False, decimal_places=decimal_places,
                 path_manager=path_manager, verts_colors=feats,
                 colors_as_uint8=colors_as_uint8, strict=False)
        return True


class IO:
    """Load and save meshes and point clouds by format (PyTorch3D's ``IO``).

    Args:
        include_default_formats: register the built-in formats (OBJ, PLY; OFF when
            available).
        path_manager: an iopath ``PathManager`` through which ``str`` paths are opened
            (optional; None reads and writes plain local files).
    """

    def __init__(self, include_default_formats: bool = True, path_manager: Any = None) -> None:
        self.path_manager = path_manager
        self.mesh_interpreters: deque[MeshFormatInterpreter] = deque()
        self.pointcloud_interpreters: deque[PointcloudFormatInterpreter] = deque()
        if include_default_formats:
            self.register_default_formats()

    def register_default_formats(self) -> None:
        """Register OBJ and PLY meshes (and OFF if available) and PLY point clouds."""
        self.register_meshes_format(MeshObjFormat())
        try:
            from .off_io import MeshOffFormat
        except ImportError:
            pass
        else:
            self.register_meshes_format(MeshOffFormat())
        self.register_meshes_format(MeshPlyFormat())
        self.register_pointcloud_format(PointcloudPlyFormat())

    def register_meshes_format(self, interpreter: MeshFormatInterpreter) -> None:
        """Add a mesh format; it is tried before those registered earlier."""
        if not isinstance(interpreter, MeshFormatInterpreter):
            raise ValueError("interpreter: Invalid interpreter (expected a "
                             "MeshFormatInterpreter)")
        self.mesh_interpreters.appendleft(interpreter)

    def register_pointcloud_format(self, interpreter: PointcloudFormatInterpreter) -> None:
        """Add a point cloud format; it is tried before those registered earlier."""
        if not isinstance(interpreter, PointcloudFormatInterpreter):
            raise ValueError("interpreter: Invalid interpreter (expected a "
                             "PointcloudFormatInterpreter)")
        self.pointcloud_interpreters.appendleft(interpreter)

    def load_mesh(self, path: PathOrStream, include_textures: bool = True,
                  device: Device = "cpu", **kwargs: Any) -> Meshes:
        """A one-mesh ``Meshes`` on ``device`` from the first format that reads ``path``.

        Extra keywords go to the format (OBJ: ``create_texture_atlas``,
        ``texture_atlas_size``, ``texture_wrap``). Raises ValueError when no format
        applies.
        """
        for interp in self.mesh_interpreters:
            mesh = interp.read(path, include_textures=include_textures, device=device,
                               path_manager=self.path_manager, **kwargs)
            if mesh is not None:
                return mesh
        raise ValueError(f"No mesh interpreter found to read {path}.")

    def save_mesh(self, data: Meshes, path: PathOrStream, binary: bool | None = None,
                  include_textures: bool = True, **kwargs: Any) -> None:
        """Write a one-mesh ``Meshes`` with the first format that takes ``path``.

        Args:
            binary: where the format has both, binary (True / None) or text (False).
            include_textures: also save the texture where the format can.
            kwargs: for the format (``decimal_places``; PLY: ``colors_as_uint8``).
        """
        if not isinstance(data, Meshes):
            raise ValueError("data: Meshes object expected.")
        if len(data) != 1:
            raise ValueError("data: Can only save a single mesh.")
        for interp in self.mesh_interpreters:
            if interp.save(data, path, path_manager=self.path_manager, binary=binary,
                           include_textures=include_textures, **kwargs):
                return
        raise ValueError(f"No mesh interpreter found to write to {path}.")

    def load_pointcloud(self, path: PathOrStream, device: Device = "cpu",
                        **kwargs: Any) -> Pointclouds:
        """A one-cloud ``Pointclouds`` on ``device`` from the first format that reads it."""
        for interp in self.pointcloud_interpreters:
            cloud = interp.read(path, device=device, path_manager=self.path_manager, **kwargs)
            if cloud is not None:
                return cloud
        raise ValueError(f"No point cloud interpreter found to read {path}.")

    def save_pointcloud(self, data: Pointclouds, path: PathOrStream,
                        binary: bool | None = None, **kwargs: Any) -> None:
        """Write a one-cloud ``Pointclouds`` with the first format that takes ``path``."""
        if not isinstance(data, Pointclouds):
            raise ValueError("data: Pointclouds object expected.")
        if len(data) != 1:
            raise ValueError("data: Can only save a single point cloud.")
        for interp in self.pointcloud_interpreters:
            if interp.save(data, path, path_manager=self.path_manager, binary=binary,
                           **kwargs):
                return
        raise ValueError(f"No point cloud interpreter found to write to {path}.")

