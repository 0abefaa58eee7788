"""Regenerate the tiny COLMAP model of tests/test_io_colmap.py (needs pycolmap).

    python tests/data/colmap_tiny/generate.py

Writes ``sparse/0`` (binary) and ``sparse_text/0`` (text) next to this script: three cameras
(PINHOLE, SIMPLE_PINHOLE, and SIMPLE_RADIAL with k = 0) and four images looking at eight
coloured points; each image's 2D observations are the exact projections of the points it sees
(computed by pycolmap), plus one keypoint without a 3D point. ``images/`` holds grey
placeholder PNGs of the cameras' sizes, named like the images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pycolmap
from PIL import Image


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """3x4 world-to-camera [R | t] of an OpenCV camera (x right, y down, z forward) at ``eye``."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, np.array([0.0, -1.0, 0.0]))
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])  # rows: camera axes in world coordinates
    return np.concatenate([rot, -rot @ eye[:, None]], axis=1)


def build() -> pycolmap.Reconstruction:
    """The reconstruction: cameras, posed images, points and their tracks."""
    rec = pycolmap.Reconstruction()
    specs = [  # camera_id, model, (width, height), params
        (1, "PINHOLE", (64, 48), [70.0, 66.0, 31.5, 24.25]),
        (2, "SIMPLE_PINHOLE", (40, 30), [45.0, 19.0, 15.5]),
        (3, "SIMPLE_RADIAL", (50, 50), [55.0, 25.0, 24.0, 0.0]),
    ]
    for cam_id, model, (w, h), params in specs:
        cam = pycolmap.Camera.create_from_model_name(cam_id, model, 1.0, w, h)
        cam.params = params
        rec.add_camera_with_trivial_rig(cam)

    rng = np.random.default_rng(7)
    points = rng.uniform(-0.6, 0.6, size=(8, 3))
    colors = rng.integers(0, 256, size=(8, 3), dtype=np.uint8)
    # image_id (not contiguous, on purpose), name, camera_id, eye, indices of the points seen
    shots = [
        (1, "a.png", 1, np.array([0.0, 0.3, -4.0]), range(8)),
        (2, "b.png", 2, np.array([3.5, -0.5, -2.0]), range(8)),
        (5, "sub/c.png", 3, np.array([-3.0, -1.0, 2.5]), range(0, 8, 2)),
        (7, "d.png", 1, np.array([0.5, -3.8, 0.4]), range(1, 8)),
    ]
    tracks: list[list[pycolmap.TrackElement]] = [[] for _ in points]
    for image_id, name, cam_id, eye, seen in shots:
        pose = pycolmap.Rigid3d(look_at(eye, np.zeros(3)))
        cam = rec.cameras[cam_id]
        xys = [cam.img_from_cam(pose * points[i]) for i in seen]
        xys.append(np.array([1.0, 2.0]))  # a keypoint that has no 3D point
        image = pycolmap.Image(name=name, keypoints=np.array(xys), camera_id=cam_id,
                               image_id=image_id)
        rec.add_image_with_trivial_frame(image, pose)
        for idx, i in enumerate(seen):
            tracks[i].append(pycolmap.TrackElement(image_id, idx))
    for i, (xyz, track) in enumerate(zip(points, tracks, strict=True)):
        point_id = rec.add_point3D(xyz, pycolmap.Track(track), colors[i])
        for el in track:
            rec.image(el.image_id).set_point3D_for_point2D(el.point2D_idx, point_id)
    return rec


def main() -> None:
    here = Path(__file__).parent
    rec = build()
    for sub, write in (("sparse/0", rec.write_binary), ("sparse_text/0", rec.write_text)):
        (here / sub).mkdir(parents=True, exist_ok=True)
        write(str(here / sub))
    for image in rec.images.values():
        path = here / "images" / image.name
        path.parent.mkdir(parents=True, exist_ok=True)
        cam = rec.cameras[image.camera_id]
        Image.new("RGB", (cam.width, cam.height), (128, 128, 128)).save(path)


if __name__ == "__main__":
    main()
