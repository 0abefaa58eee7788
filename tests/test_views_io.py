"""Multi-view datasets: Blender axis conversion, round trips, masks, resizing, bad input."""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffrend.cameras import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    look_at_view_transform,
)
from diffrend.io import MultiViewData, load_views, save_views
from diffrend.transforms import random_rotations

# --------------------------------------------------------------------------- helpers


def rgba_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """(h, w, 4) uint8: random colours, alpha 255 on a centre block with a soft edge, else 0."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    alpha[h // 4 : h - h // 4, w // 4 : w - w // 4] = 255
    alpha[h // 4, w // 4 : w - w // 4] = 128  # partial coverage
    img[..., 3] = alpha
    return img


def write_png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def blender_c2w(eye, at=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """Test-only reference: a Blender/OpenGL camera-to-world matrix looking from eye to at.

    Camera axes: +X right, +Y up, looking along -Z (so the camera's z axis points back).
    """
    eye, at, up = (np.asarray(v, dtype=np.float64) for v in (eye, at, up))
    z = eye - at
    z /= np.linalg.norm(z)
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w


def write_transforms(
    folder: Path,
    c2ws: list[np.ndarray],
    size: tuple[int, int] = (8, 8),
    ext: str = ".png",
    top: dict | None = None,
    name: str = "transforms.json",
) -> dict:
    """A Blender-style dataset: train/r_<i>.png RGBA images, file_path without extension."""
    frames = []
    for i, c2w in enumerate(c2ws):
        img = rgba_image(*size, seed=i)
        write_png(folder / "train" / f"r_{i}{ext}", img if ext == ".png" else img[..., :3])
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": c2w.tolist()})
    spec = {"camera_angle_x": 0.6911112070083618, **(top or {}), "frames": frames}
    (folder / name).write_text(json.dumps(spec))
    return spec


def sample_data(cameras, h: int = 6, w: int = 8) -> MultiViewData:
    """Images that survive an 8-bit RGBA round trip exactly (black where the mask is 0)."""
    n = len(cameras)
    img = np.stack([rgba_image(h, w, seed=i) for i in range(n)]).astype(np.float32) / 255
    rgb = img[..., :3] * (img[..., 3:] > 0)
    return MultiViewData(
        images=torch.from_numpy(rgb),
        masks=torch.from_numpy(np.ascontiguousarray(img[..., 3])),
        cameras=cameras,
        names=tuple(f"view{i}" for i in range(n)),
    )


def orbit(n: int = 3, fov=50.0) -> FoVPerspectiveCameras:
    R, T = look_at_view_transform(dist=3.0, elev=torch.linspace(-20, 40, n), azim=[0, 120, 250][:n])
    return FoVPerspectiveCameras(R=R, T=T, fov=fov, znear=0.5, zfar=20.0)


def close(a, b, atol=1e-5):
    torch.testing.assert_close(
        torch.as_tensor(a).float(), torch.as_tensor(b).float(), atol=atol, rtol=0
    )


# --------------------------------------------------------------------------- axis conversion


def test_blender_camera_on_z_axis_matches_pytorch3d_look_at(tmp_path):
    write_transforms(tmp_path, [blender_c2w((0.0, 0.0, 4.0))], size=(16, 16))
    data = load_views(tmp_path)
    cams = data.cameras
    assert isinstance(cams, FoVPerspectiveCameras)
    R, T = look_at_view_transform(dist=4.0, elev=0.0, azim=0.0)
    close(cams.R, R)
    close(cams.T, T)
    close(cams.R[0], torch.diag(torch.tensor([-1.0, 1.0, -1.0])))
    close(cams.get_camera_center(), [[0.0, 0.0, 4.0]])
    pts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    ndc = cams.transform_points_ndc(pts)
    screen = cams.transform_points_screen(pts, image_size=(16, 16))
    close(screen[0, :2], [8.0, 8.0])
    # Blender's camera x is right: world +X must land on the right half of the image,
    # which is NDC x < 0 (PyTorch3D's NDC +X is left) and screen x > W / 2.
    assert ndc[1, 0] < 0 and screen[1, 0] > 8.0
    assert abs(screen[1, 1] - 8.0) < 1e-5
    assert screen[2, 1] < 8.0  # world +Y is up: smaller screen y


def test_blender_camera_renders_right_to_right(tmp_path):
    # The renderer, not just the projection: a sphere at world +X, +Y seen by a Blender
    # camera at +Z lands top-right in the rasterised image.
    from diffrend.raster import MeshRasterizer, RasterizationSettings
    from diffrend.structures import ico_sphere

    write_transforms(tmp_path, [blender_c2w((0.0, 0.0, 4.0))], size=(24, 32))
    cams = load_views(tmp_path).cameras
    mesh = ico_sphere(1)
    mesh = mesh.offset_verts(torch.tensor([1.0, 0.3, 0.0]).expand(mesh.verts_packed().shape))
    settings = RasterizationSettings(image_size=(24, 32))
    frags = MeshRasterizer(cameras=cams, raster_settings=settings)(mesh)
    ys, xs = (frags.pix_to_face[0, ..., 0] >= 0).nonzero(as_tuple=True)
    assert len(xs) > 0
    assert xs.float().mean() > 16 + 3  # right half
    assert ys.float().mean() < 12  # upper half


def test_general_blender_pose_and_pinhole_intrinsics(tmp_path):
    # A random pose with pixel intrinsics: the loaded cameras must reproduce the OpenCV
    # pinhole model u = fx x/z + cx, v = fy y/z + cy in OpenCV camera axes (= GL with y, z
    # negated), and the camera centre must be the matrix's translation.
    rng = np.random.default_rng(3)
    c2ws = []
    for rot in random_rotations(2, dtype=torch.float64).numpy():
        c2w = np.eye(4)
        c2w[:3, :3], c2w[:3, 3] = rot, rng.normal(size=3) * 3
        c2ws.append(c2w)
    top = {"fl_x": 9.0, "fl_y": 11.0, "cx": 4.5, "cy": 2.5, "w": 10, "h": 6, "k1": 0.0}
    write_transforms(tmp_path, c2ws, size=(6, 10), top=top)
    cams = load_views(tmp_path).cameras
    assert isinstance(cams, PerspectiveCameras) and not cams.in_ndc()
    close(cams.get_camera_center(), np.stack([m[:3, 3] for m in c2ws]), atol=1e-4)
    for i, c2w in enumerate(c2ws):
        cam_pts = np.array([[0.3, -0.2, -2.0], [-0.5, 0.4, -3.0], [0.0, 0.0, -1.0]])  # GL, z<0
        world = cam_pts @ c2w[:3, :3].T + c2w[:3, 3]
        cv = cam_pts * [1.0, -1.0, -1.0]
        uv = np.stack((9.0 * cv[:, 0] / cv[:, 2] + 4.5, 11.0 * cv[:, 1] / cv[:, 2] + 2.5), 1)
        screen = cams[i].transform_points_screen(torch.tensor(world, dtype=torch.float32))
        close(screen[:, :2], uv, atol=1e-4)


def test_non_square_fov_spans_the_shorter_side(tmp_path):
    # camera_angle_x is horizontal; PyTorch3D's fov spans the shorter side (here height).
    ax = 1.0
    write_transforms(
        tmp_path, [blender_c2w((0.0, 0.0, 4.0))], size=(6, 12), top={"camera_angle_x": ax}
    )
    cams = load_views(tmp_path).cameras
    close(cams.fov, [math.degrees(2 * math.atan(math.tan(ax / 2) * 6 / 12))])
    # A point on the left/right edge of the horizontal FoV projects to the image border.
    x_edge = 4.0 * math.tan(ax / 2)
    screen = cams.transform_points_screen(torch.tensor([[x_edge, 0.0, 0.0]]), image_size=(6, 12))
    close(screen[0, :2], [12.0, 3.0], atol=1e-4)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fov", [50.0, [40.0, 50.0, 60.0]], ids=["shared", "per_view"])
@pytest.mark.parametrize("fmt", ["transforms", "cameras"])
def test_round_trip_fov_perspective(tmp_path, fmt, fov):
    data = sample_data(orbit(3, fov=torch.tensor(fov)), h=6, w=8)
    out = save_views(data, tmp_path / "ds", format=fmt)
    assert out.name == f"{fmt}.json" and out.is_file()
    assert not list((tmp_path / "ds").rglob("*.tmp"))
    back = load_views(tmp_path / "ds")
    assert isinstance(back.cameras, FoVPerspectiveCameras)
    close(back.cameras.R, data.cameras.R)
    close(back.cameras.T, data.cameras.T)
    close(back.cameras.fov, data.cameras.fov)
    close(back.cameras.znear, data.cameras.znear)
    close(back.cameras.zfar, data.cameras.zfar)
    close(back.images, data.images, atol=1e-6)
    close(back.masks, data.masks, atol=1e-6)
    assert back.names == data.names
    assert back.images.dtype == torch.float32 and back.images.shape == (3, 6, 8, 3)


@pytest.mark.parametrize("fmt", ["transforms", "cameras"])
@pytest.mark.parametrize("in_ndc", [True, False])
def test_round_trip_perspective_projects_the_same(tmp_path, fmt, in_ndc):
    base = orbit(2)
    if in_ndc:
        cams = PerspectiveCameras(
            focal_length=[[1.5, 1.7], [2.0, 2.0]],
            principal_point=[[0.1, -0.2], [0.0, 0.0]],
            R=base.R,
            T=base.T,
        )
    else:
        cams = PerspectiveCameras(
            focal_length=[[9.0, 8.0]],
            principal_point=[[3.5, 3.0]],
            R=base.R,
            T=base.T,
            in_ndc=False,
            image_size=((6, 8),),
        )
    data = sample_data(cams, h=6, w=8)
    save_views(data, tmp_path, format=fmt)
    back = load_views(tmp_path).cameras
    pts = torch.randn(10, 3) * 0.5
    close(
        back.transform_points_screen(pts, image_size=(6, 8))[..., :2],
        cams.transform_points_screen(pts, image_size=(6, 8))[..., :2],
        atol=1e-4,
    )
    if fmt == "cameras":
        assert back.in_ndc() == in_ndc
        close(back.focal_length, cams.focal_length)
        close(back.principal_point, cams.principal_point)


@pytest.mark.parametrize("cls", [FoVOrthographicCameras, OrthographicCameras])
def test_round_trip_orthographic_cameras_json(tmp_path, cls):
    base = orbit(2)
    if cls is FoVOrthographicCameras:
        cams = cls(
            znear=[0.1, 0.2],
            max_x=2.0,
            min_x=-2.0,
            scale_xyz=((1.0, 2.0, 1.0),),
            R=base.R,
            T=base.T,
        )
        args = ("znear", "zfar", "max_x", "min_x", "max_y", "min_y", "scale_xyz")
    else:
        cams = cls(focal_length=[0.5, 0.7], principal_point=((0.1, 0.0),), R=base.R, T=base.T)
        args = ("focal_length", "principal_point")
    save_views(sample_data(cams), tmp_path, format="cameras")
    back = load_views(tmp_path / "cameras.json").cameras
    assert type(back) is cls
    for a in args + ("R", "T"):
        close(getattr(back, a), getattr(cams, a))
    with pytest.raises(ValueError, match="format='cameras'"):
        save_views(sample_data(cams), tmp_path / "t", format="transforms")
    assert not (tmp_path / "t").exists()


def test_save_sanitises_and_dedupes_names(tmp_path):
    data = sample_data(orbit(3))
    data = MultiViewData(data.images, data.masks, data.cameras, ("a/b", "a/b", "../x"))
    save_views(data, tmp_path)
    files = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert files == ["_x.png", "a_b.png", "a_b_1.png"]
    assert load_views(tmp_path).names == ("a_b", "a_b_1", "_x")


# --------------------------------------------------------------------------- file variants


@pytest.mark.parametrize("ext", [".png", ".jpg", ".jpeg"])
def test_extensionless_file_path_and_train_fallback(tmp_path, ext):
    spec = write_transforms(
        tmp_path, [blender_c2w((0, 0, 4))], ext=ext, name="transforms_train.json"
    )
    if ext != ".png":  # JPEG has no alpha: give a mask folder next to the images
        write_png(tmp_path / "train" / "masks" / "r_0.png", rgba_image(8, 8)[..., 3])
    data = load_views(tmp_path)
    assert data.names == ("r_0",)
    assert spec["frames"][0]["file_path"] == "./train/r_0"


def test_alpha_is_the_mask_and_background_is_black(tmp_path):
    write_transforms(tmp_path, [blender_c2w((0, 0, 4))])
    img = rgba_image(8, 8, seed=0).astype(np.float32) / 255
    data = load_views(tmp_path)
    close(data.masks[0], img[..., 3], atol=1e-6)
    fg = img[..., 3] > 0
    close(data.images[0][fg], img[..., :3][fg], atol=1e-6)  # RGB kept as-is, not premultiplied
    assert (data.images[0][~fg] == 0).all()


def test_mask_path_and_masks_folder(tmp_path):
    rgb = rgba_image(8, 8, seed=1)[..., :3]
    m = np.zeros((8, 8), np.uint8)
    m[2:5, 3:6] = 255
    write_png(tmp_path / "img" / "a.jpg", rgb)  # no alpha
    write_png(tmp_path / "img" / "b.png", rgb)
    write_png(tmp_path / "sil" / "a_mask.png", m)
    write_png(tmp_path / "masks" / "b.png", np.stack([m.T] * 3, axis=2))  # RGB mask file
    frames = [
        {
            "file_path": "img/a.jpg",
            "mask_path": "sil/a_mask",
            "transform_matrix": np.eye(4).tolist(),
        },
        {"file_path": "img/b", "transform_matrix": np.eye(4).tolist()},
    ]
    (tmp_path / "transforms.json").write_text(json.dumps({"camera_angle_x": 0.8, "frames": frames}))
    data = load_views(tmp_path)
    close(data.masks[0], m / 255.0, atol=1e-6)
    close(data.masks[1], m.T / 255.0, atol=1e-6)
    close(data.images[1], rgb / 255.0, atol=1e-6)  # without alpha the RGB is kept everywhere
    assert data.names == ("a", "b")


def test_cameras_json_with_separate_mask_and_shared_args(tmp_path):
    write_png(tmp_path / "i" / "0.png", rgba_image(8, 8)[..., :3])
    write_png(tmp_path / "m" / "0.png", rgba_image(8, 8)[..., 3])
    R, T = look_at_view_transform(2.0, 10.0, 30.0)
    spec = {
        "kind": "fov_perspective",
        "image_size": [8, 8],
        "fov": 30.0,
        "znear": 0.2,
        "views": [
            {
                "image": "i/0.png",
                "mask": "m/0.png",
                "R": R[0].tolist(),
                "T": T[0].tolist(),
                "zfar": 9.0,
            }
        ],
    }
    (tmp_path / "cameras.json").write_text(json.dumps(spec))
    cams = load_views(tmp_path).cameras
    close(cams.fov, [30.0])
    close(cams.znear, [0.2])
    close(cams.zfar, [9.0])
    close(cams.aspect_ratio, [1.0])  # class default
    close(cams.R, R)


def test_image_size_resizes_and_scales_pixel_intrinsics(tmp_path):
    top = {"fl_x": 20.0, "cx": 7.0, "cy": 9.0}
    write_transforms(tmp_path / "px", [blender_c2w((0, 0, 4))], size=(16, 16), top=top)
    full = load_views(tmp_path / "px")
    half = load_views(tmp_path / "px", image_size=8)
    assert half.images.shape == (1, 8, 8, 3) and half.masks.shape == (1, 8, 8)
    assert 0 <= float(half.images.min()) and float(half.images.max()) <= 1
    assert 0 <= float(half.masks.min()) and float(half.masks.max()) <= 1
    close(half.masks.mean(), full.masks.mean(), atol=1e-3)  # area averages survive
    close(half.cameras.focal_length, [[10.0, 10.0]])
    close(half.cameras.principal_point, [[3.5, 4.5]])
    close(half.cameras.get_image_size(), [[8.0, 8.0]])
    pts = torch.tensor([[0.3, 0.2, 0.1]])
    close(
        half.cameras.transform_points_screen(pts)[..., :2],
        full.cameras.transform_points_screen(pts)[..., :2] / 2,
        atol=1e-4,
    )

    write_transforms(tmp_path / "fov", [blender_c2w((0, 0, 4))], size=(8, 16))
    wide = load_views(tmp_path / "fov", image_size=4)
    assert wide.images.shape == (1, 4, 8, 3)
    close(wide.cameras.fov, load_views(tmp_path / "fov").cameras.fov)


def test_known_extra_keys_are_accepted(tmp_path):
    top = {
        "camera_angle_y": 0.7,
        "aabb_scale": 16,
        "k1": 0.0,
        "k2": 0,
        "p1": 0.0,
        "p2": 0.0,
        "camera_model": "OPENCV",
        "is_fisheye": False,
    }
    spec = write_transforms(tmp_path, [blender_c2w((0, 0, 4))], top=top)
    spec["frames"][0].update(rotation=0.012, sharpness=30.5, colmap_im_id=3)
    (tmp_path / "transforms.json").write_text(json.dumps(spec))
    assert len(load_views(tmp_path)) == 1


def test_subset_to_and_len(tmp_path):
    data = sample_data(orbit(3))
    assert len(data) == 3
    sub = data.subset([2, 0])
    assert sub.names == ("view2", "view0") and len(sub.cameras) == 2
    close(sub.images[0], data.images[2])
    close(sub.cameras.R[1], data.cameras.R[0])
    assert data.subset(torch.tensor([False, True, True])).names == ("view1", "view2")
    assert data.subset(torch.tensor([-1])).names == ("view2",)
    with pytest.raises(IndexError):
        data.subset([3])
    with pytest.raises(ValueError, match="boolean"):
        data.subset(torch.tensor([True]))
    moved = data.to("cpu")
    assert moved.images.device.type == "cpu" and moved.names == data.names
    with pytest.raises(ValueError, match="names"):
        MultiViewData(data.images, data.masks, data.cameras, ("a",))


def test_one_empty_mask_warns(tmp_path):
    spec = write_transforms(tmp_path, [blender_c2w((0, 0, 4)), blender_c2w((0, 0, 5))])
    img = rgba_image(8, 8, seed=1)
    img[..., 3] = 0
    write_png(tmp_path / "train" / "r_1.png", img)
    with pytest.warns(UserWarning, match="r_1"):
        data = load_views(tmp_path)
    assert len(data) == len(spec["frames"])


# --------------------------------------------------------------------------- bad input


def _set(path, value):
    """Return a mutator that sets spec[path...] = value (path of keys/indices)."""

    def f(spec):
        obj = spec
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value

    return f


def _delete(path):
    def f(spec):
        obj = spec
        for k in path[:-1]:
            obj = obj[k]
        del obj[path[-1]]

    return f


BAD_TRANSFORMS = {
    "no_frames": (_delete(["frames"]), "missing key 'frames'"),
    "empty_frames": (_set(["frames"], []), "non-empty list"),
    "no_file_path": (_delete(["frames", 0, "file_path"]), "frames\\[0\\].*'file_path'"),
    "no_matrix": (_delete(["frames", 0, "transform_matrix"]), "frames\\[0\\].*'transform_matrix'"),
    "missing_image": (_set(["frames", 0, "file_path"], "train/nope"), "not found: .*nope"),
    "3x4_matrix": (
        _set(["frames", 0, "transform_matrix"], np.eye(4)[:3].tolist()),
        "shape \\(4, 4\\)",
    ),
    "nan_matrix": (
        _set(["frames", 0, "transform_matrix"], [[float("nan")] * 4] + np.eye(4)[1:].tolist()),
        "NaN or inf",
    ),
    "inf_matrix": (_set(["frames", 0, "transform_matrix", 0, 3], float("inf")), "NaN or inf"),
    "not_rotation": (_set(["frames", 0, "transform_matrix", 0, 0], 2.0), "not a rotation"),
    "unknown_top": (_set(["camera_angel_x"], 0.5), "unknown key 'camera_angel_x'.*frames"),
    "unknown_frame": (
        _set(["frames", 0, "filepath"], "x"),
        "frames\\[0\\]: unknown key 'filepath'",
    ),
    "distortion": (_set(["k1"], 0.01), "distortion k1"),
    "frame_distortion": (_set(["frames", 0, "p2"], 0.01), "frames\\[0\\].*distortion p2"),
    "fisheye": (_set(["is_fisheye"], True), "fisheye"),
    "no_intrinsics": (_delete(["camera_angle_x"]), "camera_angle_x' or 'fl_x'"),
    "w_mismatch": (lambda s: s.update(fl_x=5.0, w=99), "frames\\[0\\]: w=99 does not match"),
    "bad_model": (_set(["camera_model"], "OPENCV_FISHEYE"), "camera_model 'OPENCV_FISHEYE'"),
}


@pytest.mark.parametrize("case", sorted(BAD_TRANSFORMS))
def test_bad_transforms_raise(tmp_path, case):
    mutate, match = BAD_TRANSFORMS[case]
    spec = write_transforms(tmp_path, [blender_c2w((0, 0, 4))])
    mutate(spec)
    (tmp_path / "transforms.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=match):
        load_views(tmp_path)


def test_images_of_different_sizes_raise(tmp_path):
    write_transforms(tmp_path, [blender_c2w((0, 0, 4)), blender_c2w((0, 0, 5))])
    write_png(tmp_path / "train" / "r_1.png", rgba_image(8, 9))
    with pytest.raises(ValueError, match="r_1.png: image size 9x8 differs"):
        load_views(tmp_path)


def test_all_masks_empty_raises(tmp_path):
    write_transforms(tmp_path, [blender_c2w((0, 0, 4))])
    img = rgba_image(8, 8)
    img[..., 3] = 0
    write_png(tmp_path / "train" / "r_0.png", img)
    with pytest.raises(ValueError, match="every view's silhouette is empty"):
        load_views(tmp_path)


def test_no_silhouette_raises(tmp_path):
    write_transforms(tmp_path, [blender_c2w((0, 0, 4))])
    write_png(tmp_path / "train" / "r_0.png", rgba_image(8, 8)[..., :3])
    with pytest.raises(ValueError, match="r_0.png.*no silhouette"):
        load_views(tmp_path)


def test_corrupt_image_raises(tmp_path):
    write_transforms(tmp_path, [blender_c2w((0, 0, 4))])
    (tmp_path / "train" / "r_0.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match="r_0.png: cannot read image"):
        load_views(tmp_path)


def test_bad_json_and_ambiguous_folder_raise(tmp_path):
    (tmp_path / "transforms.json").write_text("{not json")
    with pytest.raises(ValueError, match="transforms.json: cannot read JSON"):
        load_views(tmp_path)
    (tmp_path / "cameras.json").write_text("{}")
    with pytest.raises(ValueError, match="both"):
        load_views(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no transforms.json"):
        load_views(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        load_views(tmp_path / "missing")
    with pytest.raises(ValueError, match="image_size"):
        load_views(tmp_path, image_size=0)


def _cameras_spec(tmp_path) -> dict:
    write_png(tmp_path / "0.png", rgba_image(8, 8))
    R, T = look_at_view_transform(2.0, 0.0, 0.0)
    return {
        "kind": "perspective",
        "views": [{"image": "0.png", "R": R[0].tolist(), "T": T[0].tolist()}],
    }


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda s: s.update(focal=2.0), "unknown key 'focal'"),
        (lambda s: s["views"][0].update(fov=30.0), "views\\[0\\]: unknown key 'fov'"),
        (lambda s: s.update(kind="pinhole"), "'kind' must be one of"),
        (lambda s: s.update(views=[]), "non-empty list"),
        (lambda s: s["views"][0].pop("R"), "views\\[0\\]: missing key 'R'"),
        (lambda s: s["views"][0].update(T=[0, 0]), "views\\[0\\] T must have shape"),
        (lambda s: s["views"][0].update(R=[[1, 0, 0], [0, 1, 0], [0, 0, 2]]), "not a rotation"),
        (lambda s: s.update(image_size=[8, 9]), "image_size \\[8, 9\\] does not match"),
        (lambda s: s.update(in_ndc="no"), "in_ndc must be true or false"),
        (lambda s: s.update(principal_point=[0.0]), "principal_point must have shape \\(2,\\)"),
        (lambda s: s["views"][0].update(image="nope.png"), "not found: .*nope.png"),
    ],
)
def test_bad_cameras_json_raise(tmp_path, mutate, match):
    spec = _cameras_spec(tmp_path)
    mutate(spec)
    (tmp_path / "cameras.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=match):
        load_views(tmp_path)


def test_save_into_unwritable_folder_raises_and_writes_nothing(tmp_path):
    data = sample_data(orbit(2))
    if os.geteuid() == 0:  # root ignores permissions: use a path whose parent is a file
        blocker = tmp_path / "file"
        blocker.write_text("x")
        with pytest.raises(ValueError, match="cannot write to .*not a folder"):
            save_views(data, blocker / "ds")
        assert blocker.read_text() == "x" and sorted(tmp_path.iterdir()) == [blocker]
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="cannot write to"):
            save_views(data, ro / "ds")
        with pytest.raises(ValueError, match="cannot write to"):
            save_views(data, ro)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_save_rejects_bad_format_and_mismatched_screen_size(tmp_path):
    data = sample_data(orbit(1))
    with pytest.raises(ValueError, match="format must be"):
        save_views(data, tmp_path / "a", format="colmap")
    cams = PerspectiveCameras(focal_length=5.0, in_ndc=False, image_size=((10, 10),))
    with pytest.raises(ValueError, match="image_size"):
        save_views(sample_data(cams), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_views(data, tmp_path / "c")
