"""``load_views(max_side=...)``: large photographs capped, cameras and masks kept consistent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffrend.cameras import FoVPerspectiveCameras, PerspectiveCameras, look_at_view_transform
from diffrend.io import MultiViewData, load_views, save_views

# A camera at (0, 0, 4) looking at the origin (Blender axes: +X right, +Y up, looking -Z).
C2W = np.array([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 4], [0, 0, 0, 1]])
FL, CX, CY = 80.0, 47.3, 31.1  # pixels of the 100 x 60 image, principal point off-centre
POINT = np.array([0.3, 0.2, 0.1])  # the disc's centre
RADIUS_PX = 12.0


def _pixel(p: np.ndarray) -> np.ndarray:
    """OpenCV pinhole (u, v) of world point ``p`` for C2W and (FL, CX, CY)."""
    cam = p - C2W[:3, 3]  # GL camera axes (the rotation is the identity)
    cv = cam * [1.0, -1.0, -1.0]
    return np.array([FL * cv[0] / cv[2] + CX, FL * cv[1] / cv[2] + CY])


def _disc_dataset(folder: Path, hw: tuple[int, int] = (60, 100), checker: bool = False) -> None:
    """One RGBA view: alpha = a binary disc around POINT's projection; RGB random (or a
    one-pixel checkerboard)."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w] + 0.5  # pixel centres
    u, v = _pixel(POINT)
    disc = (xx - u) ** 2 + (yy - v) ** 2 < RADIUS_PX**2
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if checker:
        rgb[:] = (((np.mgrid[0:h, 0:w].sum(0)) % 2) * 255).astype(np.uint8)[..., None]
    alpha = np.full((h, w), 255, np.uint8) if checker else (disc * 255).astype(np.uint8)
    (folder / "images").mkdir(parents=True)
    Image.fromarray(np.dstack((rgb, alpha))).save(folder / "images" / "a.png")
    spec = {"fl_x": FL, "cx": CX, "cy": CY, "w": w, "h": h,
            "frames": [{"file_path": "images/a.png", "transform_matrix": C2W.tolist()}]}
    (folder / "transforms.json").write_text(json.dumps(spec))


def _relative(cams, pts: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Screen positions of ``pts`` as fractions of the image's width and height."""
    xy = cams.transform_points_screen(pts, image_size=(hw,))[..., :2]
    return xy / torch.tensor([hw[1], hw[0]], dtype=xy.dtype)


def _centroid(mask: torch.Tensor) -> torch.Tensor:
    """(x, y) centroid of an (H, W) mask, in fractions of the width and height."""
    h, w = mask.shape
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    m = mask.double()
    return torch.stack(((m * xx).sum() / m.sum() / w, (m * yy).sum() / m.sum() / h))


def test_max_side_caps_the_longer_side_and_projects_to_the_same_place(tmp_path):
    _disc_dataset(tmp_path)
    full = load_views(tmp_path)
    capped = load_views(tmp_path, max_side=40)
    assert full.images.shape == (1, 60, 100, 3)
    assert capped.images.shape == (1, 24, 40, 3) and capped.masks.shape == (1, 24, 40)
    cams = capped.cameras
    assert isinstance(cams, PerspectiveCameras) and not cams.in_ndc()
    torch.testing.assert_close(cams.get_image_size(), torch.tensor([[24.0, 40.0]]))
    torch.testing.assert_close(cams.focal_length, torch.tensor([[FL * 0.4, FL * 0.4]]))
    torch.testing.assert_close(cams.principal_point, torch.tensor([[CX * 0.4, CY * 0.4]]))
    pts = torch.tensor([POINT.tolist(), [-0.5, 0.4, -0.3], [0.7, -0.6, 0.5]])
    torch.testing.assert_close(_relative(cams, pts, (24, 40)),
                               _relative(full.cameras, pts, (60, 100)), atol=1e-5, rtol=0)
    # The silhouette stays where the camera projects its centre: the disc's centroid is
    # POINT's projection in both, to a tenth of a capped pixel.
    target = torch.tensor(_pixel(POINT) / [100, 60])
    for data, hw in ((full, (60, 100)), (capped, (24, 40))):
        err = (_centroid(data.masks[0]) - target).abs() * torch.tensor([hw[1], hw[0]])
        assert float(err.max()) < 0.1, (hw, err)


def test_max_side_masks_stay_binary_inside_and_outside_and_keep_their_area(tmp_path):
    _disc_dataset(tmp_path)
    full = load_views(tmp_path)
    mask = load_views(tmp_path, max_side=40).masks[0]
    assert 0 <= float(mask.min()) and float(mask.max()) <= 1
    # Pixels whose footprint (2.5 source pixels, plus the filter's reach) lies wholly in or
    # out of the disc are exactly 1 or 0; only a rim of fractional coverage remains.
    yy, xx = torch.meshgrid(torch.arange(24) + 0.5, torch.arange(40) + 0.5, indexing="ij")
    u, v = _pixel(POINT) * 0.4
    r = ((xx - u) ** 2 + (yy - v) ** 2).sqrt() / 0.4  # distance in source pixels
    assert bool((mask[r < RADIUS_PX - 3.5] == 1).all())
    assert bool((mask[r > RADIUS_PX + 3.5] == 0).all())
    # Thresholded at 0.5 it is the disc, but for pixel centres within half a capped pixel
    # (1.25 source pixels) of the outline.
    clear = (r - RADIUS_PX).abs() > 1.25
    assert bool(((mask > 0.5) == (r < RADIUS_PX))[clear].all())
    torch.testing.assert_close(mask.mean(), full.masks.mean(), atol=2e-3, rtol=0)


def test_max_side_antialiases(tmp_path):
    """A one-pixel checkerboard shrunk 8 times is grey, not an aliasing pattern."""
    _disc_dataset(tmp_path, hw=(128, 96), checker=True)
    img = load_views(tmp_path, max_side=16).images
    assert img.shape == (1, 16, 12, 3)
    assert float((img - 0.5).abs().max()) < 0.05


def test_max_side_leaves_smaller_views_alone_and_follows_image_size(tmp_path):
    _disc_dataset(tmp_path)
    full = load_views(tmp_path)
    same = load_views(tmp_path, max_side=100)
    assert torch.equal(same.images, full.images) and torch.equal(same.masks, full.masks)
    torch.testing.assert_close(same.cameras.focal_length, full.cameras.focal_length)
    # image_size first (height 30: 30 x 50), then the cap (40 x 24).
    both = load_views(tmp_path, image_size=30, max_side=40)
    assert both.images.shape == (1, 24, 40, 3)
    torch.testing.assert_close(both.cameras.focal_length, torch.tensor([[FL * 0.4] * 2]))


def test_max_side_on_fov_portrait_views(tmp_path):
    """FoV cameras need no change (NDC spans the shorter side); a portrait view's longer
    side is its height."""
    h, w = 100, 60
    R, T = look_at_view_transform(dist=3.0, elev=torch.tensor([10.0, 40.0]),
                                  azim=torch.tensor([0.0, 120.0]))
    cams = FoVPerspectiveCameras(R=R, T=T, fov=50.0)
    rgb = torch.rand(2, h, w, 3, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(2, h, w)
    mask[:, 30:70, 20:45] = 1.0
    save_views(MultiViewData(rgb * mask[..., None], mask, cams, ("a", "b")), tmp_path)
    full = load_views(tmp_path)
    capped = load_views(tmp_path, max_side=50)
    assert capped.images.shape == (2, 50, 30, 3)
    torch.testing.assert_close(capped.cameras.fov, full.cameras.fov)
    pts = torch.tensor([[0.2, -0.3, 0.1], [-0.4, 0.2, 0.3]])
    for i in range(2):
        torch.testing.assert_close(_relative(capped.cameras[i], pts, (50, 30)),
                                   _relative(full.cameras[i], pts, (h, w)), atol=1e-5, rtol=0)
    # The rectangle [20, 45) x [30, 70): 1 where the filter (2 source pixels each side)
    # sees only it, 0 beyond its reach.
    assert bool((capped.masks[:, 16:34, 11:22] == 1).all())
    assert float(capped.masks[:, :14].max()) == 0 and float(capped.masks[:, :, 24:].max()) == 0
    assert float(capped.masks.sum()) == pytest.approx(float(full.masks.sum()) / 4, rel=1e-3)


def test_max_side_scales_screen_space_cameras_json(tmp_path):
    h, w = 40, 64
    R, T = look_at_view_transform(dist=3.0, elev=20.0, azim=30.0)
    cams = PerspectiveCameras(R=R, T=T, focal_length=((50.0, 52.0),),
                              principal_point=((30.0, 22.0),), in_ndc=False,
                              image_size=((h, w),))
    mask = torch.zeros(1, h, w)
    mask[:, 10:30, 20:44] = 1.0
    save_views(MultiViewData(torch.rand(1, h, w, 3) * mask[..., None], mask, cams, ("a",)),
               tmp_path, format="cameras")
    capped = load_views(tmp_path, max_side=16)
    assert capped.images.shape == (1, 10, 16, 3)
    torch.testing.assert_close(capped.cameras.focal_length, torch.tensor([[12.5, 13.0]]))
    torch.testing.assert_close(capped.cameras.principal_point, torch.tensor([[7.5, 5.5]]))
    pts = torch.tensor([[0.1, 0.2, -0.3]])
    torch.testing.assert_close(_relative(capped.cameras, pts, (10, 16)),
                               _relative(cams, pts, (h, w)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad", [7, 0, -3, 64.0, True, "64"])
def test_bad_max_side_raises(tmp_path, bad):
    _disc_dataset(tmp_path)
    with pytest.raises(ValueError, match="max_side"):
        load_views(tmp_path, max_side=bad)
