"""Framing real views: square crops around the object with cameras that match them."""

from __future__ import annotations

import math

import pytest
import torch

from diffrend.cameras import (
    FishEyeCameras,
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    look_at_view_transform,
)
from diffrend.cli.mesh_job import prepare_inputs
from diffrend.io import load_views, save_views
from diffrend.io.shapes import load_shape
from diffrend.io.views import MultiViewData
from diffrend.jobs import FitMeshSettings, Stage, fit_mesh, render_target_views, sphere_cameras
from diffrend.jobs.framing import (
    crop_cameras,
    crop_images,
    crop_views,
    frame_views,
    image_boxes,
    mask_boxes,
    ndc_intrinsics,
    object_sphere,
)
from diffrend.jobs.metrics import heldout_iou
from diffrend.jobs.views import headlights
from diffrend.losses import silhouette_iou
from diffrend.modules.mesh import MeshShader
from diffrend.raster import MeshRasterizer, RasterizationSettings
from diffrend.render.blend import BlendParams
from diffrend.shading import Materials
from diffrend.structures import Meshes, ico_sphere

SIZES = [(40, 40), (30, 50), (60, 24)]  # square, landscape, portrait (H, W)


def _extrinsics(n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    return look_at_view_transform(dist=torch.tensor([2.0, 3.0, 4.0])[:n],
                                  elev=torch.tensor([10.0, 30.0, -20.0])[:n],
                                  azim=torch.tensor([0.0, 90.0, 200.0])[:n])


def _cameras(kind: str, h: int, w: int):
    R, T = _extrinsics()
    if kind == "fov":
        return FoVPerspectiveCameras(R=R, T=T, fov=torch.tensor([40.0, 60.0, 50.0]))
    if kind == "fov_aspect":
        return FoVPerspectiveCameras(R=R, T=T, fov=50.0, aspect_ratio=1.3)
    if kind == "persp_ndc":
        return PerspectiveCameras(R=R, T=T, focal_length=torch.tensor([[1.5, 1.7]] * 3),
                                  principal_point=torch.tensor([[0.1, -0.2]] * 3))
    if kind == "persp_screen":
        return PerspectiveCameras(R=R, T=T, focal_length=torch.tensor([[30.0, 34.0]] * 3),
                                  principal_point=torch.tensor([[w / 2 + 3, h / 2 - 2]] * 3),
                                  in_ndc=False, image_size=((h, w),))
    if kind == "ortho_ndc":
        return OrthographicCameras(R=R, T=T, focal_length=0.8,
                                   principal_point=torch.tensor([[0.1, 0.05]] * 3))
    if kind == "ortho_screen":
        return OrthographicCameras(R=R, T=T, focal_length=torch.tensor([[12.0, 12.0]] * 3),
                                   principal_point=torch.tensor([[w / 2, h / 2 + 1]] * 3),
                                   in_ndc=False, image_size=((h, w),))
    return FoVOrthographicCameras(R=R, T=T, min_x=-1.2, max_x=0.9, min_y=-0.8, max_y=1.1,
                                  scale_xyz=((1.1, 0.9, 1.0),))


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("kind", ["fov", "fov_aspect", "persp_ndc", "persp_screen",
                                  "ortho_ndc", "ortho_screen", "fov_ortho"])
def test_framed_cameras_project_onto_the_same_content(kind, hw):
    """(a) Original pixel -> crop pixel through the box's affine map, for every camera."""
    h, w = hw
    cams = _cameras(kind, h, w)
    boxes = torch.tensor([[-5, 3, 20], [10, -4, 37], [2, 2, 13]])  # some reach outside
    framed = crop_cameras(cams, boxes, (h, w))
    assert isinstance(framed, PerspectiveCameras if cams.is_perspective()
                      else OrthographicCameras) and framed.in_ndc()
    torch.testing.assert_close(framed.R, cams.R)
    torch.testing.assert_close(framed.T, cams.T)
    pts = torch.randn(3, 50, 3, generator=torch.Generator().manual_seed(0)) * 0.5
    size = 64
    before = cams.transform_points_screen(pts, image_size=((h, w),))[..., :2]
    after = framed.transform_points_screen(pts, image_size=((size, size),))[..., :2]
    b = boxes.float()
    expect = (before - b[:, None, :2]) * size / b[:, None, 2:]
    torch.testing.assert_close(after, expect, atol=2e-4, rtol=1e-5)


def _render(mesh: Meshes, cameras, hw: tuple[int, int]) -> MultiViewData:
    """Hard Phong render of one mesh at any (H, W), headlights, black background."""
    raster = MeshRasterizer(raster_settings=RasterizationSettings(image_size=hw))
    shader = MeshShader("phong", "hard", "cpu", materials=Materials(),
                        blend_params=BlendParams(background_color=(0.0, 0.0, 0.0)))
    meshes = mesh.extend(len(cameras))
    with torch.no_grad():
        frags = raster(meshes, cameras=cameras)
        rgba = shader(frags, meshes, cameras=cameras, lights=headlights(cameras))
    return MultiViewData(rgba[..., :3].clamp(0, 1), (frags.pix_to_face[..., 0] >= 0).float(),
                         cameras, tuple(f"v{i:02d}" for i in range(len(cameras))))


def _small_torus(scale: float = 0.3, offset=(0.5, 0.3, 0.0)) -> Meshes:
    m = load_shape("torus")
    return m.update_padded(m.verts_padded() * scale + torch.tensor(offset))


@pytest.mark.parametrize("hw", [(48, 80), (80, 40)])
@pytest.mark.parametrize("ortho", [False, True])
def test_rendering_through_framed_cameras_matches_the_framed_views(hw, ortho):
    """(b) The rasterizer agrees: render framed cameras at the crop size == framed views."""
    R, T = look_at_view_transform(dist=2.7, elev=torch.tensor([20.0, -30.0, 50.0]),
                                  azim=torch.tensor([10.0, 130.0, 250.0]))
    cams = (OrthographicCameras(R=R, T=T, focal_length=0.7) if ortho
            else FoVPerspectiveCameras(R=R, T=T, fov=45.0))
    # Rendered at 8x: the framed views then average over ~2x2 source pixels, so their edges
    # are accurate to well under a crop pixel (at 4x, a near 1:1 resampling of a hard
    # render, IoU is 0.96-0.98 for this thin torus, centroids still within 0.15 px).
    views = _render(_small_torus(), cams, (8 * hw[0], 8 * hw[1]))
    framed = frame_views(views, size=48)
    rerender = render_target_views(_small_torus(), framed.cameras, 48)
    iou = silhouette_iou(rerender.masks, framed.masks)
    assert (iou > 0.97).all(), iou
    # No shift: the silhouettes' centroids agree to a fraction of a pixel.
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")

    def centroid(m: torch.Tensor) -> torch.Tensor:
        return torch.stack(((m * xx).sum((1, 2)), (m * yy).sum((1, 2))), 1) / m.sum((1, 2))[:, None]

    assert float((centroid(rerender.masks) - centroid(framed.masks)).abs().amax()) < 0.2
    inside = (rerender.masks > 0) & (framed.masks > 0.99)
    # Colours agree inside the object (shading is resolution-independent here).
    err = (rerender.images - framed.images).abs().amax(-1)[inside]
    assert float(err.median()) < 0.05


def test_a_far_object_fills_the_crop():
    """(c) An object a few pixels across ends up spanning 1 / (1 + 2 margin) of the crop."""
    R, T = look_at_view_transform(dist=torch.tensor([4.0, 8.0]), elev=0.0, azim=30.0)
    cams = FoVPerspectiveCameras(R=R, T=T, fov=40.0)
    views = _render(_small_torus(0.5, (0.0, 0.0, 0.0)), cams, (240, 320))
    assert float(views.masks[1].mean()) < 0.01  # a small part of the photograph
    framed = frame_views(views, size=64, margin=0.1)
    for i in range(2):
        rows = (framed.masks[i] > 0.5).any(1).nonzero()[:, 0]
        cols = (framed.masks[i] > 0.5).any(0).nonzero()[:, 0]
        extent = max(int(rows[-1] - rows[0]), int(cols[-1] - cols[0])) + 1
        assert abs(extent - 64 / 1.2) <= 2.5, extent
        centre = ((rows[0] + rows[-1] + 1) / 2, (cols[0] + cols[-1] + 1) / 2)
        assert abs(float(centre[0]) - 32) <= 2 and abs(float(centre[1]) - 32) <= 2


def _flat_views(image: torch.Tensor, mask: torch.Tensor) -> MultiViewData:
    return MultiViewData(image[None], mask[None], FoVPerspectiveCameras(), ("a",))


def test_a_mask_with_a_hole_keeps_its_hole_and_the_background_turns_black():
    """(d) A ring stays a ring; (e) a green background becomes black, the object keeps
    its colour."""
    h, w = 90, 150
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    r = ((yy - 40) ** 2 + (xx - 100) ** 2).sqrt()
    ring = ((r < 20) & (r > 9)).float()
    image = torch.zeros(h, w, 3)
    image[..., 1] = 1.0  # green everywhere
    image[ring > 0] = torch.tensor([0.9, 0.2, 0.1])
    framed = frame_views(_flat_views(image, ring), size=48)
    mask, img = framed.masks[0], framed.images[0]
    assert float(mask[24, 24]) == 0.0 and float(mask[:, 24].amax()) == 1.0  # the hole
    assert float(mask[24, 14]) == 1.0  # the ring (centre 24, radii 24 / 1.2 / 20 * (9, 20))
    outside = (mask == 0)
    assert outside.sum() > 500 and float(img[outside].abs().amax()) == 0.0  # no green left
    torch.testing.assert_close(img[24, 14], torch.tensor([0.9, 0.2, 0.1]))
    # Partial pixels are premultiplied colour: never greener than the object's own green.
    assert float(img[..., 1].amax()) <= 0.2 + 1e-6


def test_boxes_and_resampling():
    """Boxes contain the silhouette with the margin; crops reaching out are padded with 0;
    shrinking is antialiased (a fine checkerboard averages to grey); an empty view keeps
    its whole image."""
    masks = torch.zeros(3, 30, 50)
    masks[0, 2:12, 40:50] = 1.0  # touches the right border
    masks[1, 10:11, 5:35] = 1.0  # a line one pixel high
    boxes = mask_boxes(masks, margin=0.25)
    assert boxes.dtype == torch.int64
    # side 10 * 1.5; x0 = floor((40 + 50 - 15) / 2), y0 = floor((2 + 12 - 15) / 2)
    assert boxes[0].tolist() == [37, -1, 15]
    assert boxes[1].tolist() == [-3, -12, 45]
    assert boxes[2].tolist() == image_boxes(1, 30, 50)[0].tolist() == [0, -10, 50]
    assert mask_boxes(masks, margin=0.0)[1].tolist() == [5, -5, 30]
    crops = crop_images(masks[..., None], boxes, 15)[..., 0]
    # Columns 50, 51 and row -1 lie outside the image: zeros; the object is at [3, 13).
    assert float(crops[0, :, -2:].abs().amax()) == 0.0 and float(crops[0, 0].amax()) == 0.0
    torch.testing.assert_close(crops[0, 3:13, 3:13], torch.ones(10, 10))
    assert float(crops[0].sum()) == 100.0
    checker = ((torch.arange(64)[:, None] + torch.arange(64)[None]) % 2).float()
    small = crop_images(checker[None, :, :, None], torch.tensor([[0, 0, 64]]), 8)
    assert float((small - 0.5).abs().amax()) < 0.02
    assert float(small.amin()) >= 0.0 and float(small.amax()) <= 1.0


def test_bad_input_is_a_clear_error():
    """(f)"""
    mask = torch.zeros(20, 30)
    mask[5:10, 5:10] = 1.0
    data = _flat_views(torch.rand(20, 30, 3), mask)
    for size in (0, 7, True, 32.0, "32"):
        with pytest.raises(ValueError, match="size"):
            frame_views(data, size=size)
    for margin in (-0.1, math.nan, math.inf, 11.0, "0.1"):
        with pytest.raises(ValueError, match="margin"):
            frame_views(data, size=16, margin=margin)
    with pytest.raises(ValueError, match="MultiViewData"):
        frame_views(torch.zeros(1, 8, 8, 3), size=16)
    empty = _flat_views(torch.rand(20, 30, 3), torch.zeros(20, 30))
    with pytest.raises(ValueError, match="empty"):
        frame_views(empty, size=16)
    fisheye = MultiViewData(data.images, data.masks, FishEyeCameras(), ("a",))
    with pytest.raises(ValueError, match="FishEyeCameras"):
        frame_views(fisheye, size=16)
    skew = torch.eye(4)[None].clone()
    skew[0, 0, 1] = 0.3
    with pytest.raises(ValueError, match="skew"):
        ndc_intrinsics(PerspectiveCameras(K=skew))
    with pytest.raises(ValueError, match="boxes"):
        crop_views(data, torch.tensor([[0.0, 0.0, 8.0]]), 16)
    with pytest.raises(ValueError, match="boxes"):
        crop_views(data, torch.tensor([[0, 0, 0]]), 16)
    with pytest.raises(ValueError, match="image_size"):
        crop_cameras(data.cameras, torch.tensor([[0, 0, 8]]), (20,))


def test_object_sphere_finds_an_off_centre_object():
    """The rays through the framed silhouettes' centres meet at the object; the fit's
    default focus (the optical axes) is at the origin, far from it."""
    mesh = _small_torus()
    views = render_target_views(mesh, sphere_cameras(8), 96)
    centre, radius = object_sphere(frame_views(views, size=32))
    torch.testing.assert_close(centre, torch.tensor([0.5, 0.3, 0.0]), atol=0.05, rtol=0)
    assert 0.2 < radius < 0.4  # the torus: 0.3 from its centre to its outer rim


def _settings() -> FitMeshSettings:
    return FitMeshSettings(stages=(Stage(16, 16, 0.05), Stage(24, 24, 0.03, subdivide=True)),
                           init_level=1, views_per_step=4, colors="none", snapshot_views=1)


def test_fit_on_non_square_views_of_a_small_off_centre_object(tmp_path):
    """(g) A folder of landscape views of a small torus off the cameras' focus: prepare_inputs
    frames them; a short fit from the sphere :func:`object_sphere` places reaches a
    held-out IoU that the same fit on the whole views, letterboxed to the same size, does
    not reach."""
    hw = (36, 60)
    views = _render(_small_torus(), sphere_cameras(12), hw)
    assert float(views.masks.mean()) < 0.03
    save_views(views, tmp_path / "data")
    inputs = prepare_inputs(data=tmp_path / "data", image_size=24)
    assert inputs.train.images.shape == (11, 24, 24, 3) and len(inputs.heldout) == 1
    assert isinstance(inputs.train.cameras, PerspectiveCameras)
    centre, radius = object_sphere(inputs.train)
    sphere = ico_sphere(1)
    init = sphere.update_padded(sphere.verts_padded() * radius + centre)
    held = inputs.heldout
    before = float(heldout_iou(init, held.cameras, held.masks).mean())
    framed_fit = fit_mesh(inputs.train, init=init, settings=_settings(), progress=False)
    framed_iou = float(heldout_iou(framed_fit.mesh, held.cameras, held.masks).mean())
    raw = load_views(tmp_path / "data")
    whole = crop_views(raw, image_boxes(len(raw), *hw), 24)
    train = [i for i in range(len(raw)) if i != 5]
    whole_fit = fit_mesh(whole.subset(train), init=init, settings=_settings(), progress=False)
    whole_iou = float(heldout_iou(whole_fit.mesh, held.cameras, held.masks).mean())
    assert framed_iou > before + 0.1, (before, framed_iou)
    assert framed_iou > whole_iou + 0.1, (framed_iou, whole_iou)


def test_prepare_inputs_frames_rendered_views_on_request():
    plain = prepare_inputs(views=3, heldout=1, image_size=16)
    framed = prepare_inputs(views=3, heldout=1, image_size=16, frame=True)
    assert framed.train.images.shape == plain.train.images.shape == (3, 16, 16, 3)
    assert isinstance(framed.heldout.cameras, PerspectiveCameras)
    # The cow fills more of each framed view.
    assert float(framed.train.masks.mean()) > 1.5 * float(plain.train.masks.mean())
