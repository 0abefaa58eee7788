"""Multi-view image datasets (images, silhouettes, cameras) in and out.

Two on-disk formats are read and written:

* NeRF/Blender ``transforms.json`` (``transforms_train.json`` when there is no
  ``transforms.json``): ``camera_angle_x`` or pixel intrinsics, and ``frames`` with a
  ``file_path`` and a 4x4 camera-to-world ``transform_matrix`` in OpenGL/Blender camera axes.
* ``cameras.json``: PyTorch3D-style cameras (``R``, ``T`` and constructor arguments), see
  :func:`load_views`.

Axis conversion (transforms.json <-> PyTorch3D). A Blender/OpenGL camera has +X right, +Y up
and looks along -Z; a PyTorch3D view has +X left, +Y up and looks along +Z, so
``x_p3d = F x_gl`` with ``F = diag(-1, 1, -1)``. With ``c2w = [[Rc, t], [0, 1]]`` (column
vectors), ``x_gl = Rc^T (X - t)``, hence ``x_p3d = F Rc^T X - F Rc^T t``; transposed into
PyTorch3D's row-vector form ``x_p3d = X @ R + T``::

    R = Rc @ F          (Rc with its first and third columns negated)
    T = -t @ R          (t as a row vector)
    inverse: Rc = R @ F, t = -T @ R^T

Images are float32 RGB in [0, 1], never premultiplied. Where an image has an alpha channel
its RGB is kept as-is where alpha > 0 and set to black where alpha == 0. Nothing here is
differentiable: loaders return constants.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..cameras import (
    CamerasBase,
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
)
from ._files import is_file, resolve_inside
from .atomic import atomic_open

__all__ = ["MultiViewData", "load_views", "save_views"]

PathLike = str | os.PathLike

# Blender/OpenGL camera axes -> PyTorch3D view axes (x and z flip); F is its own inverse.
_FLIP = np.diag([-1.0, 1.0, -1.0])

_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")
_MAX_SIDE = 8192  # image_size cap
_MAX_PIXELS = 1 << 26  # per view, in files and after resizing (a float32 RGB view: 768 MiB)
_ROT_TOL = 1e-3  # max |Rc^T Rc - I| entry accepted as a rotation (float32 JSON round-off)
_DEFAULT_ZNEAR, _DEFAULT_ZFAR = 0.1, 100.0  # transforms.json has no clip planes of its own

# ----------------------------------------------------------------------------- key lists

# transforms.json: intrinsics may be top-level or per frame (a frame's value wins).
_TF_INTRINSICS = (
    *("camera_angle_x", "camera_angle_y", "fl_x", "fl_y", "cx", "cy", "w", "h"),
    *("k1", "k2", "k3", "k4", "p1", "p2", "camera_model", "is_fisheye", "znear", "zfar"),
)
_TF_DISTORTION = ("k1", "k2", "k3", "k4", "p1", "p2")
# Keys other tools write that carry nothing a camera + silhouette fit needs: ignored.
_TF_TOP_IGNORED = (
    *("aabb_scale", "aabb", "scale", "offset", "applied_transform", "applied_scale"),
    *("ply_file_path", "orientation_override", "integer_depth_scale", "enable_depth_loading"),
)
_TF_FRAME_IGNORED = ("rotation", "sharpness", "colmap_im_id", "depth_file_path")
_TF_TOP_KEYS = ("frames",) + _TF_INTRINSICS + _TF_TOP_IGNORED
_TF_FRAME_KEYS = ("file_path", "transform_matrix", "mask_path") + _TF_INTRINSICS + _TF_FRAME_IGNORED
_TF_CAMERA_MODELS = ("PINHOLE", "SIMPLE_PINHOLE", "OPENCV", "SIMPLE_RADIAL", "RADIAL")

# cameras.json: kind -> (class, constructor arguments that may appear top-level or per view)
_KINDS: dict[str, tuple[type[CamerasBase], tuple[str, ...]]] = {
    "fov_perspective": (FoVPerspectiveCameras, ("fov", "znear", "zfar", "aspect_ratio")),
    "perspective": (PerspectiveCameras, ("focal_length", "principal_point")),
    "fov_orthographic": (
        FoVOrthographicCameras,
        ("znear", "zfar", "max_y", "min_y", "max_x", "min_x", "scale_xyz"),
    ),
    "orthographic": (OrthographicCameras, ("focal_length", "principal_point")),
}
_ARG_SIZE = {"principal_point": 2, "scale_xyz": 3, "focal_length": 2}  # others are scalars
_CAM_VIEW_KEYS = ("image", "mask", "R", "T")


# ----------------------------------------------------------------------------- data holder


@dataclass(frozen=True, eq=False)
class MultiViewData:
    """N views of one object: images, silhouettes and the cameras that took them.

    Attributes:
        images: ``(N, H, W, 3)`` float32 RGB in [0, 1] (not premultiplied).
        masks: ``(N, H, W)`` float32 silhouettes in [0, 1].
        cameras: N cameras in PyTorch3D's convention (``X_view = X_world @ R + T``).
        names: N per-view identifiers (the image file stems).
    """

    images: torch.Tensor
    masks: torch.Tensor
    cameras: CamerasBase
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not torch.is_tensor(self.images) or self.images.dim() != 4 or self.images.shape[3] != 3:
            raise ValueError(f"images must have shape (N, H, W, 3); got {_shape(self.images)}")
        n, h, w = self.images.shape[:3]
        if not torch.is_tensor(self.masks) or tuple(self.masks.shape) != (n, h, w):
            raise ValueError(f"masks must have shape ({n}, {h}, {w}); got {_shape(self.masks)}")
        if not isinstance(self.cameras, CamerasBase) or len(self.cameras) != n:
            raise ValueError(f"cameras must be a CamerasBase batch of {n} cameras")
        names = tuple(str(s) for s in self.names)
        if len(names) != n:
            raise ValueError(f"names must have {n} entries; got {len(names)}")
        object.__setattr__(self, "names", names)

    def __len__(self) -> int:
        """Number of views N."""
        return self.images.shape[0]

    def subset(self, idx: int | Sequence[int] | torch.Tensor) -> MultiViewData:
        """The views at ``idx``, in that order.

        Args:
            idx: an int, a sequence of ints (negative ones count from the end), an integer
                tensor ``(K,)`` or a boolean tensor ``(N,)``.

        Returns:
            MultiViewData with K views (tensors are indexed copies).

        Raises:
            ValueError: on a bad index type or shape.
            IndexError: on an index out of range.
        """
        ids = _index_list(idx, len(self))
        t = torch.tensor(ids, dtype=torch.long, device=self.images.device)
        return MultiViewData(
            images=self.images[t],
            masks=self.masks[t],
            cameras=self.cameras[ids],
            names=tuple(self.names[i] for i in ids),
        )

    def to(self, device: str | torch.device) -> MultiViewData:
        """A copy with images, masks and cameras on ``device`` (self unchanged)."""
        return MultiViewData(
            images=self.images.to(device),
            masks=self.masks.to(device),
            cameras=self.cameras.to(device),
            names=self.names,
        )


def _index_list(idx: Any, n: int) -> list[int]:
    if isinstance(idx, bool):
        raise ValueError("index must be an int, a sequence of ints or a tensor; got bool")
    if torch.is_tensor(idx):
        if idx.dtype == torch.bool:
            if tuple(idx.shape) != (n,):
                raise ValueError(f"a boolean index must have shape ({n},); got {tuple(idx.shape)}")
            raw = idx.nonzero().flatten().tolist()
        elif idx.is_floating_point() or idx.is_complex() or idx.dim() > 1:
            raise ValueError("a tensor index must be a 1D integer or boolean tensor")
        else:
            raw = idx.reshape(-1).tolist()
    elif isinstance(idx, int):
        raw = [idx]
    elif isinstance(idx, Sequence) and not isinstance(idx, str):
        raw = list(idx)
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
            raise ValueError("a sequence index must contain only ints")
    else:
        raise ValueError(f"index must be ints or a tensor; got {type(idx).__name__}")
    out = []
    for i in raw:
        if not -n <= i < n:
            raise IndexError(f"view index {i} out of range for {n} views")
        out.append(i % n)
    return out


def _shape(x: Any) -> Any:
    return tuple(x.shape) if torch.is_tensor(x) else type(x).__name__


# ----------------------------------------------------------------------------- loading


@dataclass
class _Entry:
    """One view before its pixels are read."""

    image: Path
    mask: Path | None  # explicit mask file (mask_path / "mask"), else looked up later
    where: str  # e.g. "transforms.json frames[3]", for error messages


# (H, W) of the files, (H, W) after resizing -> cameras
_CameraFactory = Callable[[tuple[int, int], tuple[int, int]], CamerasBase]


def load_views(
    path: PathLike,
    image_size: int | None = None,
    *,
    allow_outside: bool = False,
    max_side: int | None = None,
) -> MultiViewData:
    """Load a multi-view dataset: images, silhouettes and PyTorch3D cameras.

    ``path`` is a folder or a JSON file. A folder must hold ``transforms.json`` (or, when
    that is absent, ``transforms_train.json``) or ``cameras.json``, not both. Relative file
    paths inside the JSON are relative to the JSON's folder, and must stay inside it
    (absolute paths, ``..`` and symlinks leading out are refused unless ``allow_outside``).

    **transforms.json** (NeRF/Blender). Top-level ``frames`` (non-empty list) and either
    ``camera_angle_x`` (horizontal FoV, radians) or ``fl_x`` (focal length, pixels). Each
    frame has ``file_path`` (the extension may be left out: ``.png``, ``.jpg``, ``.jpeg`` are
    tried) and ``transform_matrix``, a 4x4 camera-to-world matrix ``[[Rc, t], [0, 1]]`` in
    Blender/OpenGL camera axes (+X right, +Y up, looking along -Z); optional ``mask_path``.
    The extrinsics become ``R = Rc @ diag(-1, 1, -1)`` and ``T = -t @ R`` (row vectors,
    ``X_view = X_world @ R + T``; derivation in the module docstring). Intrinsics:

    * with ``fl_x``: screen-space :class:`PerspectiveCameras` (``in_ndc=False``),
      ``focal_length = (fl_x, fl_y)`` (``fl_y`` defaults to ``fl_x``), ``principal_point =
      (cx, cy)`` in pixels from the top-left image corner, pixel i spanning [i, i + 1) as
      in PyTorch3D, instant-ngp and nerfstudio (default: the image centre),
      ``image_size = (H, W)``.
    * otherwise :class:`FoVPerspectiveCameras` (``aspect_ratio=1``, degrees). Its ``fov``
      spans the *shorter* image side (PyTorch3D's NDC is [-1, 1] along it), so
      ``fov = 2 atan(tan(camera_angle_x / 2) * min(H, W) / W)``: ``degrees(camera_angle_x)``
      for square and portrait images, the vertical FoV for landscape ones.
      ``camera_angle_y`` is ignored. ``znear``/``zfar`` (diffrend's own keys, written by
      :func:`save_views`) default to 0.1 and 100.

    Intrinsic keys (``camera_angle_x``, ``camera_angle_y``, ``fl_x``, ``fl_y``, ``cx``,
    ``cy``, ``w``, ``h``, ``k1``, ``k2``, ``k3``, ``k4``, ``p1``, ``p2``, ``camera_model``,
    ``is_fisheye``, ``znear``, ``zfar``) may be top-level or per frame (the frame's wins);
    ``w``/``h``, when given, must equal the image size.
    Distortion coefficients must be 0, ``is_fisheye`` false and ``camera_model`` one of
    PINHOLE, SIMPLE_PINHOLE, OPENCV, SIMPLE_RADIAL, RADIAL. Accepted and ignored: top-level
    ``aabb_scale``, ``aabb``, ``scale``, ``offset``, ``applied_transform``, ``applied_scale``,
    ``ply_file_path``, ``orientation_override``, ``integer_depth_scale``,
    ``enable_depth_loading``; per frame ``rotation``, ``sharpness``, ``colmap_im_id``,
    ``depth_file_path``. Any other key is an error.

    **cameras.json** (PyTorch3D)::

        {"kind": "fov_perspective" | "perspective" | "fov_orthographic" | "orthographic",
         "image_size": [H, W],          # optional; must equal the images' size
         "in_ndc": true,                # perspective/orthographic only; default true
         <camera args shared by all views>,
         "views": [{"image": "images/a.png",
                    "mask": "masks/a.png",  # optional
                    "R": [[3 x 3]], "T": [3],
                    <camera args of this view, overriding the shared ones>}, ...]}

    Camera args by kind (missing ones take the class defaults): fov_perspective ``fov``
    (degrees), ``znear``, ``zfar``, ``aspect_ratio``; perspective and orthographic
    ``focal_length`` (number or ``[fx, fy]``), ``principal_point`` (``[px, py]``; in pixels,
    image coordinates, when ``in_ndc`` is false); fov_orthographic ``znear``, ``zfar``,
    ``max_y``, ``min_y``, ``max_x``, ``min_x``, ``scale_xyz`` (``[sx, sy, sz]``). ``R`` and
    ``T`` are PyTorch3D's (``X_view = X_world @ R + T``). Any other key is an error.

    **Silhouettes**, in order of preference: the frame's ``mask_path`` / view's ``mask``;
    ``masks/<stem>.{png,jpg,jpeg}`` next to the image, then next to the JSON; the image's
    alpha channel. A mask file is read as grayscale (mean of its colour channels, times its
    alpha if it has one). **Images** with alpha keep their RGB where alpha > 0 and are black
    where alpha == 0 (whatever the silhouette's source); images without alpha are kept as-is
    (backgrounds are not removed). 8-bit values are divided by 255, 16-bit by 65535.

    Args:
        path: dataset folder or JSON file.
        image_size: if given, images and masks are resized (Pillow's bilinear filter, which
            widens when downscaling, so it antialiases and never overshoots [0, 1]; RGB is
            resized premultiplied by alpha) to height ``image_size`` and width
            ``round(image_size * W / H)``: ``image_size x image_size`` for square images.
            Screen-space intrinsics (pixels) scale with the width/height ratios; FoV and NDC
            cameras are unchanged. At most 8192, and at most 2^26 pixels per view after
            resizing (images in the files have the same pixel cap).
        max_side: if given, a cap on the longer side: views whose longer side (after
            ``image_size``, if given) exceeds it are resampled with the same filter, keeping
            the aspect ratio, to longer side ``max_side`` and shorter side
            ``round(max_side * short / long)``; smaller views are left alone. Intrinsics
            follow as for ``image_size`` (screen-space focal lengths and principal points
            scale with the width/height ratios, the cameras' ``image_size`` is the new one;
            FoV and NDC cameras need no change), so every 3D point projects to the same
            relative image position. An int >= 8. Each view is resampled as it is read, so
            a folder of large photographs never sits in memory at full size.
        allow_outside: read image and mask files that lie outside the JSON's folder
            (absolute paths, ``..``, symlinks out). Off by default so that a downloaded
            dataset cannot make the loader read other files.

    Returns:
        MultiViewData with ``images (N, H, W, 3)``, ``masks (N, H, W)`` (float32, CPU),
        N cameras (float32) and ``names`` (image file stems; relative paths without the
        extension when stems repeat).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: naming the file and key: unknown/missing keys, bad or non-finite
            matrices, missing or unreadable images, images of different sizes, a view with
            no silhouette, all silhouettes empty, unsupported distortion, a file path
            leading out of the folder (without ``allow_outside``), JSON nested too deeply,
            images or ``image_size`` over the pixel cap, ``max_side`` not an int >= 8,
            a path that cannot be looked up
            (too long). A warning names views whose silhouette is empty when others are
            not.
    """
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1
    ):
        raise ValueError(f"image_size must be a positive int or None; got {image_size!r}")
    if image_size is not None and image_size > _MAX_SIDE:
        raise ValueError(f"image_size {image_size} exceeds the maximum {_MAX_SIDE}")
    if max_side is not None and (
        isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 8
    ):
        raise ValueError(f"max_side must be None or an int >= 8; got {max_side!r}")
    json_path = _find_json(Path(path))
    spec = _read_json(json_path)
    name = json_path.name
    if name.startswith("transforms") or (
        isinstance(spec, dict) and "frames" in spec and "views" not in spec
    ):
        entries, factory = _parse_transforms(spec, json_path, allow_outside)
    elif name == "cameras.json" or (isinstance(spec, dict) and "views" in spec):
        entries, factory = _parse_cameras(spec, json_path, allow_outside)
    else:
        raise ValueError(
            f"{json_path}: neither a transforms.json (no 'frames') nor a cameras.json (no 'views')"
        )
    return _assemble(entries, factory, json_path, image_size, allow_outside, max_side)


def _find_json(path: Path) -> Path:
    try:
        path.exists()
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot access ({err})") from None
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_file():
        return path
    transforms = path / "transforms.json"
    if not transforms.is_file():
        transforms = path / "transforms_train.json"
    cameras = path / "cameras.json"
    if transforms.is_file() and cameras.is_file():
        raise ValueError(
            f"{path} holds both {transforms.name} and cameras.json; pass the JSON file to load"
        )
    if transforms.is_file():
        return transforms
    if cameras.is_file():
        return cameras
    raise ValueError(
        f"{path}: no transforms.json, transforms_train.json or cameras.json in this folder"
    )


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read JSON: {err}") from None
    except RecursionError:
        raise ValueError(f"{path}: cannot read JSON: nested too deeply") from None


def _check_keys(obj: dict, allowed: Sequence[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise ValueError(
                f"{where}: unknown key {key!r}; accepted keys: {', '.join(sorted(allowed))}"
            )


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a number; got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where} must be finite; got {value!r}")
    return float(value)


def _matrix(value: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{where} must be a {'x'.join(map(str, shape))} array of numbers"
        ) from None
    if arr.shape != shape:
        raise ValueError(f"{where} must have shape {shape}; got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{where} contains NaN or inf")
    return arr


def _check_rotation(rot: np.ndarray, where: str) -> None:
    if np.abs(rot.T @ rot - np.eye(3)).max() > _ROT_TOL or np.linalg.det(rot) <= 0:
        raise ValueError(f"{where}: the 3x3 rotation part is not a rotation matrix")


def _resolve_file(base: Path, rel: Any, where: str, what: str, allow_outside: bool) -> Path:
    """``base / rel`` (or with an image extension added) as written, after checking that
    it exists and (unless ``allow_outside``) resolves inside ``base``."""
    if not isinstance(rel, str) or not rel:
        raise ValueError(f"{where}: {what} must be a non-empty string; got {rel!r}")
    p = base / rel
    for ext in ("", *_IMAGE_EXTS):
        # Refused before any look-up, so nothing outside the folder is even stat'ed.
        resolve_inside(base, rel + ext, allow_outside, f"{where} {what}",
                       "allow_outside=True, or --allow-outside-paths to a job")
        q = p.with_name(p.name + ext)
        if is_file(q):
            return q
    raise ValueError(f"{where}: {what} file not found: {p} (also tried .png, .jpg, .jpeg)")


# -- transforms.json


def _parse_transforms(
    spec: Any, json_path: Path, allow_outside: bool
) -> tuple[list[_Entry], _CameraFactory]:
    name = json_path.name
    if not isinstance(spec, dict):
        raise ValueError(f"{json_path}: the top level must be a JSON object")
    _check_keys(spec, _TF_TOP_KEYS, str(json_path))
    if "frames" not in spec:
        raise ValueError(f"{json_path}: missing key 'frames'")
    frames = spec["frames"]
    if not isinstance(frames, list) or not frames:
        raise ValueError(f"{json_path}: 'frames' must be a non-empty list")
    top = {k: spec[k] for k in _TF_INTRINSICS if k in spec}
    base = json_path.parent
    entries, c2ws, intrinsics = [], [], []
    for i, frame in enumerate(frames):
        where = f"{name} frames[{i}]"
        if not isinstance(frame, dict):
            raise ValueError(f"{where} must be a JSON object")
        _check_keys(frame, _TF_FRAME_KEYS, where)
        for key in ("file_path", "transform_matrix"):
            if key not in frame:
                raise ValueError(f"{where}: missing key {key!r}")
        c2w = _matrix(frame["transform_matrix"], (4, 4), f"{where} transform_matrix")
        if np.abs(c2w[3] - [0.0, 0.0, 0.0, 1.0]).max() > 1e-6:
            raise ValueError(f"{where} transform_matrix: the last row must be [0, 0, 0, 1]")
        _check_rotation(c2w[:3, :3], f"{where} transform_matrix")
        intr = {**top, **{k: frame[k] for k in _TF_INTRINSICS if k in frame}}
        intrinsics.append(_tf_intrinsics(intr, where))
        image = _resolve_file(base, frame["file_path"], where, "file_path", allow_outside)
        mask = None
        if "mask_path" in frame:
            mask = _resolve_file(base, frame["mask_path"], where, "mask_path", allow_outside)
        entries.append(_Entry(image, mask, where))
        c2ws.append(c2w)

    kinds = {kind for kind, _ in intrinsics}
    if len(kinds) > 1:
        raise ValueError(f"{json_path}: some frames give fl_x and others only camera_angle_x")
    R, T = _c2w_to_rt(np.stack(c2ws))

    def factory(size: tuple[int, int], new: tuple[int, int]) -> CamerasBase:
        (h, w), (h2, w2) = size, new
        for (_, v), e in zip(intrinsics, entries, strict=True):
            for key, size_px in (("w", w), ("h", h)):
                if key in v and v[key] != size_px:
                    raise ValueError(
                        f"{e.where}: {key}={v[key]:g} does not match the image size "
                        f"{w}x{h} of {e.image}"
                    )
        if kinds == {"fov"}:
            ax = np.array([v["camera_angle_x"] for _, v in intrinsics])
            fov = np.degrees(2.0 * np.arctan(np.tan(ax / 2.0) * min(h, w) / w))
            return FoVPerspectiveCameras(
                znear=_f32([v["znear"] for _, v in intrinsics]),
                zfar=_f32([v["zfar"] for _, v in intrinsics]),
                fov=_f32(fov),
                R=_f32(R),
                T=_f32(T),
            )
        sx, sy = w2 / w, h2 / h  # pixel intrinsics follow the resize
        focal = [(v["fl_x"] * sx, v.get("fl_y", v["fl_x"]) * sy) for _, v in intrinsics]
        pp = [(v.get("cx", w / 2) * sx, v.get("cy", h / 2) * sy) for _, v in intrinsics]
        return PerspectiveCameras(
            focal_length=_f32(focal),
            principal_point=_f32(pp),
            R=_f32(R),
            T=_f32(T),
            in_ndc=False,
            image_size=((h2, w2),),
        )

    return entries, factory


def _tf_intrinsics(intr: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """Validate a frame's intrinsics; returns ("fov" | "pixels", numeric values)."""
    for key in _TF_DISTORTION:
        if key in intr and _number(intr[key], f"{where} {key}") != 0.0:
            raise ValueError(
                f"{where}: lens distortion {key}={intr[key]} is not supported (undistort the "
                "images first)"
            )
    if intr.get("is_fisheye", False) not in (False, 0):
        raise ValueError(f"{where}: fisheye cameras (is_fisheye) are not supported")
    model = intr.get("camera_model", "PINHOLE")
    if model not in _TF_CAMERA_MODELS:
        raise ValueError(
            f"{where}: camera_model {model!r} is not supported; use one of "
            f"{', '.join(_TF_CAMERA_MODELS)}"
        )
    out = {
        k: _number(intr[k], f"{where} {k}")
        for k in ("camera_angle_x", "fl_x", "fl_y", "cx", "cy", "w", "h", "znear", "zfar")
        if k in intr
    }
    for k in ("fl_x", "fl_y", "w", "h"):
        if k in out and out[k] <= 0:
            raise ValueError(f"{where}: {k} must be > 0; got {out[k]:g}")
    if "fl_x" in out:
        return "pixels", out
    if "camera_angle_x" not in out:
        raise ValueError(f"{where}: needs 'camera_angle_x' or 'fl_x' (top-level or per frame)")
    if not 0.0 < out["camera_angle_x"] < math.pi:
        raise ValueError(f"{where}: camera_angle_x must be in (0, pi) radians")
    out.setdefault("znear", _DEFAULT_ZNEAR)
    out.setdefault("zfar", _DEFAULT_ZFAR)
    if not 0.0 < out["znear"] < out["zfar"]:
        raise ValueError(f"{where}: need 0 < znear < zfar")
    return "fov", out


def _c2w_to_rt(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4, 4) OpenGL camera-to-world -> PyTorch3D R (N, 3, 3), T (N, 3)."""
    R = c2w[:, :3, :3] @ _FLIP
    T = -np.einsum("ni,nij->nj", c2w[:, :3, 3], R)
    return R, T


def _rt_to_c2w(R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """PyTorch3D R (N, 3, 3), T (N, 3) -> (N, 4, 4) OpenGL camera-to-world."""
    c2w = np.zeros((R.shape[0], 4, 4))
    c2w[:, :3, :3] = R @ _FLIP
    c2w[:, :3, 3] = 0.0 - np.einsum("nj,nij->ni", T, R)  # t = -T @ R^T (no -0.0)
    c2w[:, 3, 3] = 1.0
    return c2w


def _f32(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=torch.float32)


# -- cameras.json


def _parse_cameras(
    spec: Any, json_path: Path, allow_outside: bool
) -> tuple[list[_Entry], _CameraFactory]:
    name = json_path.name
    if not isinstance(spec, dict):
        raise ValueError(f"{json_path}: the top level must be a JSON object")
    kind = spec.get("kind")
    if not isinstance(kind, str) or kind not in _KINDS:  # a list is not hashable
        raise ValueError(f"{json_path}: 'kind' must be one of {', '.join(_KINDS)}; got {kind!r}")
    cls, args = _KINDS[kind]
    sfm = kind in ("perspective", "orthographic")
    top_keys = ("kind", "image_size", "views") + (("in_ndc",) if sfm else ()) + args
    _check_keys(spec, top_keys, str(json_path))
    views = spec.get("views")
    if not isinstance(views, list) or not views:
        raise ValueError(f"{json_path}: 'views' must be a non-empty list")
    declared = None
    if "image_size" in spec:
        declared = tuple(_matrix(spec["image_size"], (2,), f"{name} image_size"))
    in_ndc = spec.get("in_ndc", True)
    if not isinstance(in_ndc, bool):
        raise ValueError(f"{name} in_ndc must be true or false")
    defaults = inspect.signature(cls.__init__).parameters
    base = json_path.parent
    entries, Rs, Ts = [], [], []
    values: dict[str, list[np.ndarray]] = {a: [] for a in args}
    for i, view in enumerate(views):
        where = f"{name} views[{i}]"
        if not isinstance(view, dict):
            raise ValueError(f"{where} must be a JSON object")
        _check_keys(view, _CAM_VIEW_KEYS + args, where)
        for key in ("image", "R", "T"):
            if key not in view:
                raise ValueError(f"{where}: missing key {key!r}")
        R = _matrix(view["R"], (3, 3), f"{where} R")
        _check_rotation(R, f"{where} R")
        Rs.append(R)
        Ts.append(_matrix(view["T"], (3,), f"{where} T"))
        for a in args:
            n = _ARG_SIZE.get(a)
            if a in view:
                raw, label = view[a], f"{where} {a}"
            elif a in spec:
                raw, label = spec[a], f"{name} {a}"
            else:  # the class default, e.g. ((0.0, 0.0),) -> (2,)
                raw, label = defaults[a].default, f"default {a}"
                raw = (
                    np.asarray(raw, dtype=np.float64).reshape(-1)
                    if n and a != "focal_length"
                    else raw
                )
            if a == "focal_length" and isinstance(raw, (int, float)) and not isinstance(raw, bool):
                raw = [raw, raw]  # one focal length for x and y, as PyTorch3D's scalar form
            values[a].append(_matrix(raw, (n,) if n else (), label))
        image = _resolve_file(base, view["image"], where, "image", allow_outside)
        mask = (_resolve_file(base, view["mask"], where, "mask", allow_outside)
                if "mask" in view else None)
        entries.append(_Entry(image, mask, where))

    def factory(size: tuple[int, int], new: tuple[int, int]) -> CamerasBase:
        if declared is not None and declared != tuple(float(s) for s in size):
            raise ValueError(
                f"{json_path}: image_size {[int(s) for s in declared]} does not match the "
                f"images' size {list(size)}"
            )
        kwargs = {a: _f32(np.stack(v)) for a, v in values.items()}
        kwargs.update(R=_f32(np.stack(Rs)), T=_f32(np.stack(Ts)))
        if sfm:
            kwargs["in_ndc"] = in_ndc
            if not in_ndc:  # pixel intrinsics follow the resize
                scale = _f32([new[1] / size[1], new[0] / size[0]])
                kwargs["focal_length"] = kwargs["focal_length"] * scale
                kwargs["principal_point"] = kwargs["principal_point"] * scale
                kwargs["image_size"] = (tuple(new),)
        try:
            return cls(**kwargs)
        except ValueError as err:
            raise ValueError(f"{json_path}: {err}") from None

    return entries, factory


# -- pixels


def _read_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, 3) float32 RGB in [0, 1] and (H, W) alpha or None."""
    try:
        with Image.open(path) as img:
            if img.width * img.height > _MAX_PIXELS:  # checked before decoding the pixels
                raise ValueError(f"{img.width}x{img.height} pixels exceeds the cap of "
                                 f"{_MAX_PIXELS}")
            img.load()
            mode = img.mode
            if mode.startswith("I") or mode == "F":
                scale = 1.0 if mode == "F" else 65535.0  # 16-bit grayscale PNGs load as I/I;16
                gray = np.asarray(img, dtype=np.float32) / scale
                return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=2), None
            alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
            arr = np.asarray(img.convert("RGBA" if alpha else "RGB"), dtype=np.float32) / 255.0
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: cannot read image: {err}") from None
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{path}: empty image")
    return (arr[..., :3], arr[..., 3]) if alpha else (arr, None)


def _read_mask(path: Path) -> np.ndarray:
    rgb, alpha = _read_image(path)
    gray = rgb.mean(axis=2)
    return gray * alpha if alpha is not None else gray


def _find_mask(entry: _Entry, root: Path, allow_outside: bool) -> Path | None:
    if entry.mask is not None:
        return entry.mask
    stem = entry.image.stem
    for folder in (entry.image.parent / "masks", root / "masks"):
        for ext in _IMAGE_EXTS:
            p = folder / (stem + ext)
            if is_file(p) and p != entry.image:
                if not allow_outside:  # e.g. masks/ a symlink out of the folder
                    resolve_inside(root, str(p.absolute()), False,
                                   f"{entry.where} mask", "allow_outside")
                return p
    return None


def _resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) or (H, W, C) float32 -> (h, w[, C]) with Pillow's bilinear (antialiased) filter."""
    h, w = size
    chans = arr[..., None] if arr.ndim == 2 else arr
    out = np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(chans[..., c])).resize(
                    (w, h), Image.Resampling.BILINEAR
                )
            )
            for c in range(chans.shape[2])
        ],
        axis=2,
    )
    out = np.clip(out, 0.0, 1.0)
    return out[..., 0] if arr.ndim == 2 else out


def _target_size(
    size: tuple[int, int], image_size: int | None, max_side: int | None
) -> tuple[int, int]:
    """(H, W) after ``image_size`` (the height, aspect kept) and the ``max_side`` cap."""
    h, w = size
    if image_size is not None:
        h, w = image_size, max(1, round(image_size * w / h))
    if max_side is not None and max(h, w) > max_side:
        if h >= w:
            h, w = max_side, max(1, round(max_side * w / h))
        else:
            h, w = max(1, round(max_side * h / w)), max_side
    return h, w


def _resize_view(
    rgb: np.ndarray, alpha: np.ndarray | None, mask: np.ndarray, new: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """One view's RGB (H, W, 3) and mask (H, W) resampled to ``new`` (unchanged if equal)."""
    if new == rgb.shape[:2]:
        return rgb, mask
    if alpha is not None:  # resize premultiplied so edges don't bleed black
        a2 = _resize(alpha, new)
        pre = _resize(rgb * alpha[..., None], new)
        rgb = np.where(a2[..., None] > 0, pre / np.maximum(a2, 1e-12)[..., None], 0.0)
        rgb = np.clip(rgb, 0.0, 1.0)
    else:
        rgb = _resize(rgb, new)
    return rgb, _resize(mask, new)


def _assemble(
    entries: list[_Entry], factory: _CameraFactory, json_path: Path, image_size: int | None,
    allow_outside: bool, max_side: int | None = None,
) -> MultiViewData:
    root = json_path.parent
    images, masks = [], []
    size: tuple[int, int] | None = None
    new: tuple[int, int] | None = None
    first = None
    for e in entries:
        rgb, alpha = _read_image(e.image)
        if size is None:
            size, first = rgb.shape[:2], e.image
            new = _target_size(size, image_size, max_side)
            if new[0] * new[1] > _MAX_PIXELS:
                raise ValueError(f"image_size {image_size}: {new[1]}x{new[0]} pixels per view "
                                 f"exceeds the cap of {_MAX_PIXELS}")
        elif rgb.shape[:2] != size:
            raise ValueError(
                f"{e.image}: image size {rgb.shape[1]}x{rgb.shape[0]} differs from "
                f"{size[1]}x{size[0]} of {first} (all views must have the same size)"
            )
        mask_path = _find_mask(e, root, allow_outside)
        if mask_path is not None:
            mask = _read_mask(mask_path)
            if mask.shape != size:
                raise ValueError(
                    f"{mask_path}: mask size {mask.shape[1]}x{mask.shape[0]} differs from its "
                    f"image {e.image} ({size[1]}x{size[0]})"
                )
        elif alpha is not None:
            mask = alpha
        else:
            raise ValueError(
                f"{e.image} ({e.where}): no silhouette: the image has no alpha channel and "
                f"there is no mask file (mask_path/mask key, or masks/{e.image.stem}.png)"
            )
        if alpha is not None:
            rgb = np.where(alpha[..., None] > 0, rgb, 0.0)  # black background
        # Resampled at once: only one view is ever held at the files' size.
        rgb, mask = _resize_view(rgb, alpha, mask, new)
        images.append(rgb)
        masks.append(mask)

    if size is None or new is None:  # the parsers reject empty lists; keep the type checker honest
        raise ValueError(f"{json_path}: no views")
    names = _names(entries, root)
    empty = [names[i] for i, m in enumerate(masks) if not (m > 0).any()]
    if len(empty) == len(masks):
        raise ValueError(f"{json_path}: every view's silhouette is empty (all masks are 0)")
    if empty:
        warnings.warn(f"{json_path}: empty silhouette in views {empty}", stacklevel=3)
    cameras = factory(tuple(size), tuple(new))
    return MultiViewData(
        images=torch.from_numpy(np.stack(images).astype(np.float32)),
        masks=torch.from_numpy(np.stack(masks).astype(np.float32)),
        cameras=cameras,
        names=names,
    )


def _names(entries: list[_Entry], root: Path) -> tuple[str, ...]:
    stems = [e.image.stem for e in entries]
    if len(set(stems)) == len(stems):
        return tuple(stems)
    out = []
    for e in entries:  # stems repeat (e.g. train/r_0 and test/r_0): use the relative path
        try:
            rel = e.image.relative_to(root)
        except ValueError:
            rel = e.image
        out.append(rel.with_suffix("").as_posix())
    return tuple(out)


# ----------------------------------------------------------------------------- saving


def save_views(data: MultiViewData, folder: PathLike, format: str = "transforms") -> Path:
    """Write a dataset that :func:`load_views` reads back.

    Images go to ``folder/images/<name>.png`` as 8-bit RGBA with alpha = mask (so RGB where
    the mask is 0 is lost: it loads back black), names made file-safe and unique. Then the
    JSON is written: ``transforms.json`` (``format="transforms"``; see :func:`load_views`
    for the axis conversion ``Rc = R @ diag(-1, 1, -1)``, ``t = -T @ R^T``) or
    ``cameras.json`` (``format="cameras"``). Values shared by all views are written once at
    the top level, the others per view. Every file is written to a temporary file in the
    same folder and renamed into place; existing files of the same name are replaced.
    (Saving both formats into one folder makes ``load_views(folder)`` ambiguous: pass it the
    JSON file then.)

    transforms.json holds perspective cameras only: FoVPerspectiveCameras become
    ``camera_angle_x = 2 atan(tan(fov / 2) * W / min(H, W))`` plus diffrend's ``znear`` /
    ``zfar`` keys (or ``fl_x``/``fl_y`` pixels when ``aspect_ratio != 1``);
    PerspectiveCameras become ``fl_x``, ``fl_y``, ``cx``, ``cy``, ``w``, ``h`` (NDC
    intrinsics are converted to pixels).

    Args:
        data: N views, images ``(N, H, W, 3)`` and masks ``(N, H, W)`` in [0, 1].
        folder: output folder, created (with parents) if missing.
        format: "transforms" or "cameras".

    Returns:
        The path of the JSON file written.

    Raises:
        ValueError: before anything is written: unknown format, cameras that the format
            cannot hold (orthographic in transforms.json, screen-space cameras whose
            image_size differs from the images'), or a folder that cannot be created or
            written to.
    """
    if not isinstance(data, MultiViewData):
        raise ValueError(f"data must be a MultiViewData; got {type(data).__name__}")
    if format not in ("transforms", "cameras"):
        raise ValueError(f"format must be 'transforms' or 'cameras'; got {format!r}")
    n, h, w = data.images.shape[:3]
    files = _file_names(data.names)
    rels = [f"images/{f}.png" for f in files]
    cams = data.cameras.to("cpu")
    if format == "transforms":
        spec, json_name = _transforms_spec(cams, (h, w), rels), "transforms.json"
    else:
        spec, json_name = _cameras_spec(cams, (h, w), rels), "cameras.json"
    text = _dumps(spec)

    folder = Path(folder)
    _prepare_folder(folder)
    (folder / "images").mkdir(exist_ok=True)
    rgb = data.images.detach().cpu().float().clamp(0, 1).numpy()
    alpha = data.masks.detach().cpu().float().clamp(0, 1).numpy()
    rgba = np.round(np.concatenate((rgb, alpha[..., None]), axis=3) * 255.0).astype(np.uint8)
    for i, rel in enumerate(rels):
        _atomic_write(folder / rel, lambda f, i=i: Image.fromarray(rgba[i]).save(f, "PNG"))
    out = folder / json_name
    _atomic_write(out, lambda f: f.write(text.encode("utf-8")))
    return out


def _file_names(names: Sequence[str]) -> list[str]:
    out, seen = [], set()
    for i, name in enumerate(names):
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or f"view_{i}"
        while safe in seen:
            safe = f"{safe}_{i}"
        seen.add(safe)
        out.append(safe)
    return out


def _prepare_folder(folder: Path) -> None:
    """Create ``folder`` if needed and make sure files can be written in it."""
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot write to {folder}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write to {folder}: {existing} is not writable")
    created = []  # removed again if the folder turns out unwritable
    p = folder
    while not p.exists():
        created.append(p)
        p = p.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # catches read-only file systems, ACLs
            pass
    except OSError as err:
        for d in created:
            if d.is_dir():
                d.rmdir()
        raise ValueError(f"cannot write to {folder}: {err}") from None


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    with atomic_open(path) as f:
        write(f)


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy() + 0.0  # + 0.0 turns -0.0 into 0.0


def _dumps(spec: dict) -> str:
    """Indented JSON with every innermost list of numbers (a matrix row) on one line."""
    text = json.dumps(spec, indent=2, allow_nan=False)
    return re.sub(
        r"\[\s+([-+0-9.eE]+(?:,\s+[-+0-9.eE]+)*)\s+\]",
        lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]",
        text,
    )


def _shared(values: dict[str, np.ndarray], spec: dict, views: list[dict]) -> None:
    """Per-view values ``(N, ...)``: equal for all views -> ``spec``, else each view."""
    for key, arr in values.items():
        if np.all(arr == arr[:1]):
            spec[key] = arr[0].tolist()
        else:
            for view, v in zip(views, arr, strict=True):
                view[key] = v.tolist()


def _screen_size(cams: CamerasBase, size: tuple[int, int]) -> None:
    """Screen-space intrinsics are in pixels of the cameras' image_size: it must be the images'."""
    cam_size = cams.get_image_size()
    if cam_size is not None and not bool((cam_size.cpu() == torch.tensor(size)).all()):
        raise ValueError(
            f"the cameras' image_size {cam_size[0].tolist()} differs from the images' {list(size)}"
        )


def _transforms_spec(cams: CamerasBase, size: tuple[int, int], rels: list[str]) -> dict:
    h, w = size
    s = min(h, w) / 2.0  # NDC unit in pixels
    values: dict[str, np.ndarray] = {}
    if isinstance(cams, FoVPerspectiveCameras):
        fov = _np(cams.fov) if cams.degrees else np.degrees(_np(cams.fov))
        tan = np.tan(np.radians(fov) / 2.0)
        aspect = _np(cams.aspect_ratio)
        if np.all(aspect == 1.0):
            values["camera_angle_x"] = 2.0 * np.arctan(tan * w / min(h, w))
            values["znear"], values["zfar"] = _np(cams.znear), _np(cams.zfar)
        else:  # non-square pixels: only pixel focal lengths can say it
            values["fl_x"], values["fl_y"] = s / (tan * aspect), s / tan
            values["cx"], values["cy"] = np.full_like(tan, w / 2), np.full_like(tan, h / 2)
    elif isinstance(cams, PerspectiveCameras):
        f, pp = _np(cams.focal_length), _np(cams.principal_point)
        if cams.in_ndc():  # NDC (+X left, +Y up) -> pixels from the top-left corner
            f, pp = f * s, np.stack((w / 2 - s * pp[:, 0], h / 2 - s * pp[:, 1]), 1)
        else:
            _screen_size(cams, size)
        values["fl_x"], values["fl_y"] = f[:, 0], f[:, 1]
        values["cx"], values["cy"] = pp[:, 0], pp[:, 1]
    else:
        raise ValueError(
            f"transforms.json holds perspective cameras only; save {type(cams).__name__} "
            "with format='cameras'"
        )
    if "fl_x" in values:
        values["w"], values["h"] = np.full(len(cams), w), np.full(len(cams), h)  # ints
    c2w = _rt_to_c2w(_np(cams.R), _np(cams.T))
    frames = [
        {"file_path": rel, "transform_matrix": m.tolist()} for rel, m in zip(rels, c2w, strict=True)
    ]
    spec: dict[str, Any] = {}
    _shared(values, spec, frames)
    spec["frames"] = frames
    return spec


def _cameras_spec(cams: CamerasBase, size: tuple[int, int], rels: list[str]) -> dict:
    kind = next((k for k, (cls, _) in _KINDS.items() if type(cams) is cls), None)
    if kind is None:
        raise ValueError(f"cannot save cameras of type {type(cams).__name__}")
    _, args = _KINDS[kind]
    values = {a: _np(getattr(cams, a)) for a in args}
    if kind == "fov_perspective" and not cams.degrees:
        values["fov"] = np.degrees(values["fov"])
    spec: dict[str, Any] = {"kind": kind, "image_size": list(size)}
    if kind in ("perspective", "orthographic"):
        spec["in_ndc"] = cams.in_ndc()
        if not cams.in_ndc():
            _screen_size(cams, size)
    views = [
        {"image": rel, "R": r.tolist(), "T": t.tolist()}
        for rel, r, t in zip(rels, _np(cams.R), _np(cams.T), strict=True)
    ]
    _shared(values, spec, views)
    spec["views"] = views
    return spec
