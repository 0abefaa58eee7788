"""COLMAP sparse models (``cameras``, ``images``, ``points3D``; binary or text) in.

The files are read directly, from COLMAP's documented formats, with numpy: no pycolmap needed
(the tests check this reader against pycolmap's). COLMAP >= 3.12 also writes ``rigs`` and
``frames``; they are not needed: ``images`` still holds each image's composed
world-to-camera pose.

Conventions are COLMAP's, which are also gsplat's and :func:`diffrend.splat.rasterization`'s:
an OpenCV camera (x right, y down, z forward), world-to-camera ``viewmat = [[R, t], [0, 1]]``
with ``x_cam = R @ x_world + t``, ``R`` from the stored unit quaternion (w, x, y, z), and
pixel coordinates whose origin is the top-left corner of the image (the first pixel's centre
is at (0.5, 0.5)); a point projects to ``K @ x_cam`` divided by its z.

Camera models: PINHOLE and SIMPLE_PINHOLE map exactly to ``K``. SIMPLE_RADIAL, RADIAL, OPENCV
and FULL_OPENCV are accepted when their distortion coefficients are all zero; otherwise
:func:`load_colmap` raises a ValueError (undistort first: ``colmap image_undistorter`` writes
PINHOLE cameras and undistorted images) unless ``ignore_distortion=True``, which keeps the
pinhole part and drops the distortion. Fisheye and other models raise. Only cameras that some
image uses are checked.

Nothing here is differentiable: the loader returns constants.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..cameras import cameras_from_opencv_projection
from ._files import decode_text, resolve_inside
from .views import MultiViewData, _read_image, _resize

__all__ = ["ColmapScene", "ColmapView", "colmap_views", "is_colmap_folder", "load_colmap"]

PathLike = str | os.PathLike

# COLMAP's camera models: id -> (name, number of parameters).
_MODELS = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5),
    4: ("OPENCV", 8), 5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4), 9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16), 12: ("SIMPLE_DIVISION", 4), 13: ("DIVISION", 5),
    14: ("SIMPLE_FISHEYE", 3), 15: ("FISHEYE", 4), 16: ("EUCM", 6), 17: ("EQUIRECTANGULAR", 2),
}
_PARAMS = {name: n for name, n in _MODELS.values()}
# Models whose first parameters are a pinhole's: name -> (fx, fy, cx, cy) indices; the rest
# are distortion coefficients.
_PINHOLE_PART = {
    "SIMPLE_PINHOLE": (0, 0, 1, 2), "PINHOLE": (0, 1, 2, 3), "SIMPLE_RADIAL": (0, 0, 1, 2),
    "RADIAL": (0, 0, 1, 2), "OPENCV": (0, 1, 2, 3), "FULL_OPENCV": (0, 1, 2, 3),
}
_FILES = ("cameras", "images", "points3D")
_POINT2D = np.dtype([("x", "<f8"), ("y", "<f8"), ("id", "<i8")])
# A COLMAP point3D id of -1 (binary: 2^64 - 1, the same int64) marks a keypoint without a point.
_NO_POINT = -1


@dataclass(frozen=True, eq=False)
class ColmapView:
    """One registered image of a COLMAP model.

    Attributes:
        name: the image's file name as stored in the model (relative to the image folder).
        path: ``images_dir / name``, checked to exist; None when there is no image folder.
        image_id, camera_id: COLMAP's ids.
        viewmat: ``(4, 4)`` world-to-camera matrix, OpenCV axes (see the module docstring).
        K: ``(3, 3)`` intrinsics in pixels.
        width, height: the image size in pixels, as the camera states it.
        points2d: ``(M, 2)`` the image's keypoints in pixels.
        point_indices: ``(M,)`` int64 rows of :attr:`ColmapScene.points` each keypoint
            observes, -1 for keypoints without a 3D point.
    """

    name: str
    path: Path | None
    image_id: int
    camera_id: int
    viewmat: torch.Tensor
    K: torch.Tensor
    width: int
    height: int
    points2d: torch.Tensor
    point_indices: torch.Tensor


@dataclass(frozen=True, eq=False)
class ColmapScene:
    """A COLMAP sparse reconstruction: posed views and coloured 3D points.

    Attributes:
        views: the registered images, sorted by name (COLMAP's ids are arbitrary).
        points: ``(P, 3)`` the sparse points, world coordinates.
        colors: ``(P, 3)`` their RGB colours in [0, 1].
        point_ids: ``(P,)`` int64 COLMAP ids of the points (``ColmapView.point_indices``
            index rows, not ids).
        model_dir: the folder the model files were read from.
    """

    views: tuple[ColmapView, ...]
    points: torch.Tensor
    colors: torch.Tensor
    point_ids: torch.Tensor
    model_dir: Path

    @property
    def viewmats(self) -> torch.Tensor:
        """``(C, 4, 4)`` world-to-camera matrices of the C views, stacked."""
        return _stack([v.viewmat for v in self.views], (0, 4, 4), self.points)

    @property
    def Ks(self) -> torch.Tensor:  # noqa: N802 - gsplat's name
        """``(C, 3, 3)`` intrinsics of the C views, stacked."""
        return _stack([v.K for v in self.views], (0, 3, 3), self.points)

    @property
    def image_sizes(self) -> torch.Tensor:
        """``(C, 2)`` int64 ``(width, height)`` of the C views."""
        return torch.tensor([[v.width, v.height] for v in self.views], dtype=torch.int64,
                            device=self.points.device).reshape(-1, 2)


def load_colmap(
    folder: PathLike,
    images_dir: PathLike | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    ignore_distortion: bool = False,
) -> ColmapScene:
    """Read a COLMAP sparse model: cameras, registered images and 3D points.

    Args:
        folder: the model folder (holding ``cameras.bin``/``.txt``, ``images``, ``points3D``)
            or a COLMAP project folder whose ``sparse/0`` or ``sparse`` holds it, or the
            ``sparse`` folder whose ``0`` holds it (the first model). Binary files
            are read when ``cameras.bin`` is there, else text files.
        images_dir: the folder of the images. Default: the first ``images`` folder found in
            ``folder``, next to the model folder, or next to its parent (``sparse/``); None
            when there is none (views then have ``path=None``).
        device: where the tensors go.
        dtype: float dtype of the view matrices, intrinsics, keypoints, points and colours.
        ignore_distortion: accept cameras with non-zero distortion (SIMPLE_RADIAL, RADIAL,
            OPENCV, FULL_OPENCV), keeping only their pinhole part.

    Returns:
        A :class:`ColmapScene`: views sorted by image name, each with viewmat (4, 4), K (3, 3),
        width, height, points2d (M, 2) and point_indices (M,); points (P, 3), colors (P, 3) in
        [0, 1], point_ids (P,). Constants (no gradients).

    Raises:
        FileNotFoundError: ``folder`` or ``images_dir`` does not exist, no model in it (the
            places looked in are named), a model file is missing (named), or an image file
            is missing from the image folder.
        ValueError: a malformed or truncated model file (the file, and line for text, named),
            an image with an unknown camera or 3D point id, a zero or non-finite pose, a
            camera model that is not a pinhole, or distortion without ``ignore_distortion``,
            an image name that leads outside the image folder, a ``dtype`` that is not a
            float dtype.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype: expected a torch float dtype, got {dtype!r}")
    model_dir = _find_model(Path(folder))
    ext = ".bin" if (model_dir / "cameras.bin").is_file() else ".txt"
    missing = [f"{name}{ext}" for name in _FILES if not (model_dir / f"{name}{ext}").is_file()]
    if missing:
        raise FileNotFoundError(f"{model_dir}: COLMAP model file(s) missing: "
                                f"{', '.join(missing)}")
    if ext == ".bin":
        cameras = _cameras_bin(model_dir / "cameras.bin")
        images = _images_bin(model_dir / "images.bin")
        point_ids, xyz, rgb = _points_bin(model_dir / "points3D.bin")
    else:
        cameras = _cameras_txt(model_dir / "cameras.txt")
        images = _images_txt(model_dir / "images.txt")
        point_ids, xyz, rgb = _points_txt(model_dir / "points3D.txt")
    image_root = _find_images(Path(folder), model_dir, images_dir)

    order = np.argsort(point_ids, kind="stable")
    sorted_ids = point_ids[order]
    if len(sorted_ids) > 1 and (np.diff(sorted_ids) == 0).any():
        raise ValueError(f"{model_dir}: points3D{ext} repeats a point id")

    def tensor(a: np.ndarray, dt: torch.dtype = dtype) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dt)

    views = []
    for image_id, qvec, tvec, camera_id, name, xys, ids in sorted(images, key=lambda im: im[4]):
        where = f"{model_dir / ('images' + ext)}: image {image_id} ({name!r})"
        if camera_id not in cameras:
            raise ValueError(f"{where}: camera id {camera_id} is not in cameras{ext}")
        K, width, height = _intrinsics(camera_id, *cameras[camera_id], ignore_distortion)
        viewmat = np.eye(4)
        viewmat[:3, :3] = _rotation(qvec, where)
        viewmat[:3, 3] = tvec
        if not np.isfinite(tvec).all() or not np.isfinite(xys).all():
            raise ValueError(f"{where}: NaN/inf in its translation or keypoints")
        indices = np.full(len(ids), -1, dtype=np.int64)
        seen = ids != _NO_POINT
        pos = np.searchsorted(sorted_ids, ids[seen])
        found = pos < len(sorted_ids)
        found[found] = sorted_ids[pos[found]] == ids[seen][found]
        if not found.all():
            bad = int(ids[seen][~found][0])
            raise ValueError(f"{where}: keypoint observes 3D point id {bad}, which is not in "
                             f"points3D{ext}")
        indices[seen] = order[pos]
        path = None
        if image_root is not None:
            path = resolve_inside(image_root, name, False, f"{where} name", None)
            if not path.is_file():
                raise FileNotFoundError(f"{where}: no image file {path}")
        views.append(ColmapView(
            name=name, path=path, image_id=int(image_id), camera_id=int(camera_id),
            viewmat=tensor(viewmat), K=tensor(K), width=width, height=height,
            points2d=tensor(xys), point_indices=tensor(indices, torch.int64)))
    return ColmapScene(views=tuple(views), points=tensor(xyz), colors=tensor(rgb / 255.0),
                       point_ids=tensor(point_ids, torch.int64), model_dir=model_dir)


# ----------------------------------------------------------------------------- finding files


def _find_model(folder: Path) -> Path:
    """The folder holding ``cameras.bin``/``.txt``: ``folder``, ``sparse/0``, ``sparse``, ``0``."""
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise ValueError(f"folder: {folder} is not a folder (pass the COLMAP model folder)")
    candidates = [folder, folder / "sparse" / "0", folder / "sparse", folder / "0"]
    for c in candidates:
        if (c / "cameras.bin").is_file() or (c / "cameras.txt").is_file():
            return c
    raise FileNotFoundError(f"{folder}: no COLMAP model (cameras.bin or cameras.txt) in "
                            f"{', '.join(str(c) for c in candidates)}")


def _find_images(folder: Path, model_dir: Path, images_dir: PathLike | None) -> Path | None:
    """The image folder: ``images_dir`` (checked), else an ``images`` folder nearby, else None."""
    if images_dir is not None:
        root = Path(images_dir)
        if not root.is_dir():
            raise FileNotFoundError(f"images_dir: {root} is not a folder")
        return root
    for base in (folder, model_dir.parent, model_dir.parent.parent):
        if (base / "images").is_dir():
            return base / "images"
    return None


# ----------------------------------------------------------------------------- conversions


def _intrinsics(camera_id: int, model: str, width: int, height: int, params: np.ndarray,
                ignore_distortion: bool) -> tuple[np.ndarray, int, int]:
    """(3, 3) K, width, height of a camera; ValueError for models K cannot represent."""
    where = f"camera {camera_id} ({model})"
    if model not in _PINHOLE_PART:
        raise ValueError(f"{where}: not a pinhole camera model; supported: "
                         f"{', '.join(_PINHOLE_PART)} (undistort the images with COLMAP's "
                         "image_undistorter, which writes PINHOLE cameras)")
    if not np.isfinite(params).all() or width <= 0 or height <= 0:
        raise ValueError(f"{where}: non-finite parameters or an empty image size "
                         f"({width} x {height})")
    fx, fy, cx, cy = (float(params[i]) for i in _PINHOLE_PART[model])
    distortion = params[max(_PINHOLE_PART[model]) + 1:]
    if np.any(distortion != 0) and not ignore_distortion:
        raise ValueError(f"{where}: distortion coefficients {distortion.tolist()} that a "
                         "pinhole K cannot represent; undistort the images with COLMAP's "
                         "image_undistorter (it writes PINHOLE cameras), or pass "
                         "ignore_distortion=True to keep only the pinhole part")
    if fx <= 0 or fy <= 0:
        raise ValueError(f"{where}: focal length must be positive, got fx={fx}, fy={fy}")
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return K, int(width), int(height)


def _rotation(qvec: np.ndarray, where: str) -> np.ndarray:
    """(3, 3) rotation of the quaternion (w, x, y, z), normalised."""
    norm = float(np.linalg.norm(qvec))
    if not np.isfinite(qvec).all() or norm < 1e-12:
        raise ValueError(f"{where}: its rotation quaternion {qvec.tolist()} is zero or not "
                         "finite")
    w, x, y, z = qvec / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def _stack(mats: list[torch.Tensor], empty: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """``torch.stack(mats)``, or an empty tensor of shape ``empty`` when there are none."""
    if not mats:
        return torch.zeros(empty, dtype=like.dtype, device=like.device)
    return torch.stack(mats)


# ----------------------------------------------------------------------------- binary files

Camera = tuple[str, int, int, np.ndarray]  # model name, width, height, params
Image = tuple[int, np.ndarray, np.ndarray, int, str, np.ndarray, np.ndarray]


class _Bytes:
    """A cursor over a binary model file; reads past its end raise ValueError naming it."""

    def __init__(self, path: Path) -> None:
        self.path, self.data, self.pos = path, path.read_bytes(), 0

    def unpack(self, fmt: str) -> tuple:
        try:
            values = struct.unpack_from(fmt, self.data, self.pos)
        except struct.error:
            raise ValueError(f"{self.path}: truncated at byte {self.pos}") from None
        self.pos += struct.calcsize(fmt)
        return values

    def count(self, record_size: int) -> int:
        """A uint64 count of records of at least ``record_size`` bytes, checked to fit."""
        (n,) = self.unpack("<Q")
        if n * record_size > len(self.data) - self.pos:
            raise ValueError(f"{self.path}: truncated (a count of {n} records at byte "
                             f"{self.pos - 8} does not fit in the file)")
        return n

    def array(self, dtype: np.dtype, n: int) -> np.ndarray:
        size = dtype.itemsize * n
        if self.pos + size > len(self.data):
            raise ValueError(f"{self.path}: truncated at byte {self.pos}")
        a = np.frombuffer(self.data, dtype=dtype, count=n, offset=self.pos)
        self.pos += size
        return a

    def skip(self, size: int) -> None:
        if self.pos + size > len(self.data):
            raise ValueError(f"{self.path}: truncated at byte {self.pos}")
        self.pos += size

    def name(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ValueError(f"{self.path}: truncated in an image name at byte {self.pos}")
        text = decode_text(self.data[self.pos:end])
        self.pos = end + 1
        return text

    def done(self) -> None:
        if self.pos != len(self.data):
            raise ValueError(f"{self.path}: {len(self.data) - self.pos} unexpected bytes after "
                             "the last record")


def _cameras_bin(path: Path) -> dict[int, Camera]:
    f = _Bytes(path)
    cameras = {}
    for _ in range(f.count(24)):
        camera_id, model_id, width, height = f.unpack("<iiQQ")
        if model_id not in _MODELS:
            raise ValueError(f"{path}: camera {camera_id} has unknown model id {model_id}")
        model, n = _MODELS[model_id]
        cameras[camera_id] = (model, width, height, np.array(f.unpack(f"<{n}d")))
    f.done()
    return cameras


def _images_bin(path: Path) -> list[Image]:
    f = _Bytes(path)
    images = []
    for _ in range(f.count(73)):  # 64 bytes of pose and ids, a name byte, a uint64 count
        image_id, *pose, camera_id = f.unpack("<i7di")
        name = f.name()
        points = f.array(_POINT2D, f.count(_POINT2D.itemsize))
        xys = np.stack([points["x"], points["y"]], axis=1)
        images.append((image_id, np.array(pose[:4]), np.array(pose[4:]), camera_id, name, xys,
                       points["id"].astype(np.int64)))
    f.done()
    return images


def _points_bin(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = _Bytes(path)
    n = f.count(51)  # id, xyz, rgb, error, track length
    ids = np.empty(n, dtype=np.int64)
    xyz = np.empty((n, 3))
    rgb = np.empty((n, 3))
    for i in range(n):
        ids[i], *xyz_rgb, _error, track = f.unpack("<Q3d3BdQ")
        xyz[i], rgb[i] = xyz_rgb[:3], xyz_rgb[3:]
        f.skip(8 * track)  # the track: (image id, keypoint index) int32 pairs, not needed
    f.done()
    _check_points(path, xyz)
    return ids, xyz, rgb


# ----------------------------------------------------------------------------- text files


def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of every line of a text model file, comments kept out later."""
    try:
        text = decode_text(path.read_bytes())
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e})") from e
    return list(enumerate(text.splitlines(), start=1))


def _numbers(path: Path, lineno: int, tokens: list[str], kind: type = float) -> list:
    try:
        return [kind(t) for t in tokens]
    except ValueError:
        raise ValueError(f"{path}:{lineno}: expected numbers, got {' '.join(tokens)!r}") from None


def _records(path: Path) -> list[tuple[int, list[str]]]:
    """Non-empty, non-comment lines, split."""
    return [(i, line.split()) for i, line in _lines(path)
            if line.strip() and not line.lstrip().startswith("#")]


def _cameras_txt(path: Path) -> dict[int, Camera]:
    cameras = {}
    for lineno, tokens in _records(path):
        if len(tokens) < 4 or tokens[1] not in _PARAMS:
            raise ValueError(f"{path}:{lineno}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS', "
                             f"got {' '.join(tokens)!r}")
        camera_id, width, height = _numbers(path, lineno, [tokens[0], *tokens[2:4]], int)
        params = np.array(_numbers(path, lineno, tokens[4:]))
        if len(params) != _PARAMS[tokens[1]]:
            raise ValueError(f"{path}:{lineno}: model {tokens[1]} has {_PARAMS[tokens[1]]} "
                             f"parameters, got {len(params)}")
        cameras[camera_id] = (tokens[1], width, height, params)
    return cameras


def _images_txt(path: Path) -> list[Image]:
    lines = _lines(path)
    images = []
    i = 0
    while i < len(lines):
        lineno, line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tokens = line.split()
        if len(tokens) < 10:
            raise ValueError(f"{path}:{lineno}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ "
                             f"CAMERA_ID NAME', got {line.strip()!r}")
        image_id, camera_id = _numbers(path, lineno, [tokens[0], tokens[8]], int)
        pose = np.array(_numbers(path, lineno, tokens[1:8]))
        name = line.split(maxsplit=9)[9].strip()  # names may hold spaces
        # The next line holds the keypoints (possibly empty), as COLMAP's own reader takes it.
        lineno2, points = lines[i] if i < len(lines) else (lineno + 1, "")
        i += 1
        tokens = points.split()
        if len(tokens) % 3:
            raise ValueError(f"{path}:{lineno2}: expected 'X Y POINT3D_ID' triples for image "
                             f"{image_id}, got {len(tokens)} numbers")
        xys = np.array(_numbers(path, lineno2, tokens[0::3] + tokens[1::3])).reshape(2, -1).T
        ids = np.array(_numbers(path, lineno2, tokens[2::3], int), dtype=np.int64)
        images.append((image_id, pose[:4], pose[4:], camera_id, name, xys, ids))
    return images


def _points_txt(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids, xyz, rgb = [], [], []
    for lineno, tokens in _records(path):
        if len(tokens) < 8 or (len(tokens) - 8) % 2:
            raise ValueError(f"{path}:{lineno}: expected 'POINT3D_ID X Y Z R G B ERROR TRACK[]', "
                             f"got {len(tokens)} fields")
        ids.append(_numbers(path, lineno, tokens[:1], int)[0])
        xyz.append(_numbers(path, lineno, tokens[1:4]))
        colour = _numbers(path, lineno, tokens[4:7], int)
        if not all(0 <= c <= 255 for c in colour):
            raise ValueError(f"{path}:{lineno}: colour {colour} outside 0..255")
        rgb.append(colour)
    xyz_a = np.array(xyz, dtype=np.float64).reshape(-1, 3)
    _check_points(path, xyz_a)
    return (np.array(ids, dtype=np.int64), xyz_a,
            np.array(rgb, dtype=np.float64).reshape(-1, 3))


def _check_points(path: Path, xyz: np.ndarray) -> None:
    bad = ~np.isfinite(xyz).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} point(s) with NaN/inf coordinates, first "
                         f"at row {int(np.argmax(bad))}")


def colmap_views(scene: ColmapScene, max_side: int | None = None) -> MultiViewData:
    """The images of a COLMAP model as :class:`~diffrend.io.views.MultiViewData`: images
    (N, H, W, 3) in [0, 1], masks all ones (a photograph has no silhouette), and
    :class:`~diffrend.cameras.PerspectiveCameras` (NDC) that project like the model's
    cameras; names are the image names.

    Args:
        scene: a model from :func:`load_colmap` whose views have image files.
        max_side: resample every image so that its longer side is this many pixels
            (intrinsics scaled to match); None: native size.

    Raises:
        ValueError: views without image files, images of different sizes, an image whose
            size is not its camera's, a bad ``max_side``.
    """
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, int)
                                 or max_side < 8):
        raise ValueError(f"max_side must be None or an int >= 8, got {max_side!r}")
    if not scene.views:
        raise ValueError("scene has no registered images")
    images, Ks, size = [], [], None
    for view in scene.views:
        if view.path is None:
            raise ValueError(f"view {view.name!r} has no image file (give images_dir)")
        rgb, _ = _read_image(view.path)
        if rgb.shape[:2] != (view.height, view.width):
            raise ValueError(f"{view.path}: image is {rgb.shape[1]}x{rgb.shape[0]}, its camera "
                             f"says {view.width}x{view.height}")
        scale = 1.0 if max_side is None else max_side / max(view.width, view.height)
        hw = (max(1, round(view.height * scale)), max(1, round(view.width * scale)))
        if size is None:
            size = hw
        elif hw != size:
            raise ValueError(f"{view.path}: all images must have one size, got {hw[1]}x{hw[0]} "
                             f"after {size[1]}x{size[0]}")
        if hw != rgb.shape[:2]:
            rgb = _resize(rgb, hw)
        K = view.K.double().clone()
        K[0] *= hw[1] / view.width  # pixel edges scale, so the centres' offset 0.5 does too
        K[1] *= hw[0] / view.height
        images.append(torch.from_numpy(np.ascontiguousarray(rgb)))
        Ks.append(K)
    viewmats = torch.stack([v.viewmat.double() for v in scene.views])
    n = len(scene.views)
    cameras = cameras_from_opencv_projection(
        viewmats[:, :3, :3].float(), viewmats[:, :3, 3].float(), torch.stack(Ks).float(),
        torch.tensor([size] * n, dtype=torch.float32))
    imgs = torch.stack(images).float()
    return MultiViewData(images=imgs, masks=torch.ones(imgs.shape[:3]), cameras=cameras,
                         names=tuple(v.name for v in scene.views))


def is_colmap_folder(folder: PathLike) -> bool:
    """Whether ``folder`` holds a COLMAP model: ``cameras.bin``/``cameras.txt`` in it, in
    ``sparse/0`` or in ``sparse``."""
    root = Path(folder)
    return any((root / sub / name).is_file() for sub in ("", "sparse/0", "sparse")
               for name in ("cameras.bin", "cameras.txt"))
