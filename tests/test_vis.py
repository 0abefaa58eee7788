"""diffrend.vis: plotly figures of meshes, point clouds, cameras and ray bundles (traces,
colours, subplots, axes, viewpoints, errors) and UV-map images with their points drawn on."""

from __future__ import annotations

import subprocess
import sys
from typing import NamedTuple

import numpy as np
import pytest
import torch

from diffrend.cameras import FoVPerspectiveCameras, PerspectiveCameras, look_at_view_transform
from diffrend.shading import TexturesAtlas, TexturesUV, TexturesVertex
from diffrend.structures import Meshes, Pointclouds
from diffrend.transforms import random_rotations
from diffrend.vis import (
    AxisArgs,
    Lighting,
    get_camera_wireframe,
    plot_batch_individually,
    plot_scene,
    texturesuv_image_matplotlib,
    texturesuv_image_PIL,
)

plotly = pytest.importorskip("plotly")


class Rays(NamedTuple):
    """Stands in for PyTorch3D's RayBundle (a NamedTuple with these fields)."""

    origins: torch.Tensor
    directions: torch.Tensor
    lengths: torch.Tensor
    xys: torch.Tensor


class HeteroRays(NamedTuple):
    origins: torch.Tensor
    directions: torch.Tensor
    lengths: torch.Tensor
    xys: torch.Tensor
    camera_ids: torch.Tensor
    camera_counts: torch.Tensor


def colour_strings(c: torch.Tensor) -> list[str]:
    """Test-side expectation: colours that are exact multiples of 1/255."""
    ints = (c * 255).round().to(torch.int64).tolist()
    return [f"rgb({r},{g},{b})" for r, g, b in ints]


def xyz(trace) -> np.ndarray:
    return np.stack([np.asarray(trace.x, float), np.asarray(trace.y, float),
                     np.asarray(trace.z, float)], axis=1)


def random_mesh(n: int = 1, V: int = 10, F: int = 12, textures=None, seed: int = 0) -> Meshes:
    g = torch.Generator().manual_seed(seed)
    verts = [torch.randn(V + i, 3, generator=g) for i in range(n)]
    faces = [torch.randint(0, V + i, (F + i, 3), generator=g) for i in range(n)]
    return Meshes(verts=verts, faces=faces, textures=textures)


# --------------------------------------------------------------------------- wireframe


def test_camera_wireframe_geometry() -> None:
    w = get_camera_wireframe(1.0)
    assert w.shape[1] == 3 and w.dtype == torch.float32
    torch.testing.assert_close(get_camera_wireframe(0.25), w * 0.25)
    # the camera centre is on the path, the image plane is a rectangle at one depth in
    # front of it (+Z), and the optical axis reaches beyond it
    assert (w == 0).all(dim=1).any()
    plane = w[(w[:, 2] == 2.0) & (w[:, 0] != 0)]  # the rectangle's corners
    assert plane[:, 0].abs().unique().numel() == 1 and plane[:, 1].abs().unique().numel() == 1
    assert {tuple(c) for c in plane.sign().tolist()} == {(1, 1, 1), (1, -1, 1), (-1, 1, 1),
                                                         (-1, -1, 1)}
    assert w[:, 2].max() > 2.0 and (w[:, 2] >= 0).all()
    # the up marker sits above the rectangle (+Y)
    assert w[:, 1].max() > plane[:, 1].max()


# --------------------------------------------------------------------------- meshes


def test_mesh_trace_vertex_colours() -> None:
    V = 10
    feats = torch.randint(0, 256, (V, 3)).float() / 255
    mesh = random_mesh(V=V, textures=TexturesVertex([feats]))
    fig = plot_scene({"s": {"mesh": mesh}})
    assert len(fig.data) == 1
    t = fig.data[0]
    assert t.type == "mesh3d" and t.name == "mesh"
    np.testing.assert_allclose(xyz(t), mesh.verts_packed().numpy(), rtol=0, atol=1e-6)
    faces = np.stack([t.i, t.j, t.k], axis=1)
    np.testing.assert_array_equal(faces, mesh.faces_packed().numpy())
    assert list(t.vertexcolor) == colour_strings(feats)
    assert t.facecolor is None
    assert t.lighting.ambient == Lighting().ambient


def test_mesh_trace_joins_batch_and_clamps_colours() -> None:
    feats = [torch.full((10, 3), 2.0), torch.full((11, 3), -1.0)]
    meshes = random_mesh(n=2, V=10, textures=TexturesVertex(feats))
    t = plot_scene({"s": {"m": meshes}}).data[0]
    assert len(t.x) == 21 and len(t.i) == 12 + 13
    faces = np.stack([t.i, t.j, t.k], axis=1)
    # the second mesh's faces index the second mesh's vertices
    np.testing.assert_array_equal(faces[12:], meshes.faces_list()[1].numpy() + 10)
    assert set(t.vertexcolor[:10]) == {"rgb(255,255,255)"}
    assert set(t.vertexcolor[10:]) == {"rgb(0,0,0)"}


def test_mesh_without_textures_uses_plotly_default() -> None:
    t = plot_scene({"s": {"m": random_mesh()}}).data[0]
    assert t.vertexcolor is None and t.facecolor is None


def test_mesh_uv_textures_give_face_colours() -> None:
    # a 4 x 4 map: left half red, right half blue; faces entirely in one half
    img = torch.zeros(1, 4, 4, 3)
    img[0, :, :2, 0] = 1.0
    img[0, :, 2:, 2] = 1.0
    verts_uvs = torch.tensor([[0.1, 0.2], [0.3, 0.2], [0.2, 0.8],
                              [0.7, 0.2], [0.9, 0.2], [0.8, 0.8]])
    faces_uvs = torch.tensor([[0, 1, 2], [3, 4, 5], [0, 2, 1]])
    tex = TexturesUV(maps=img, faces_uvs=[faces_uvs], verts_uvs=[verts_uvs])
    mesh = Meshes(verts=[torch.randn(4, 3)], faces=[torch.tensor([[0, 1, 2], [1, 2, 3],
                                                                  [0, 2, 3]])], textures=tex)
    t = plot_scene({"s": {"m": mesh}}).data[0]
    assert t.vertexcolor is None
    assert list(t.facecolor) == ["rgb(255,0,0)", "rgb(0,0,255)", "rgb(255,0,0)"]


def test_mesh_atlas_textures_give_mean_face_colours() -> None:
    atlas = torch.zeros(1, 2, 2, 2, 3)
    atlas[0, 0, 0, 0] = torch.tensor([1.0, 1.0, 1.0])  # one of four texels white: mean 1/4
    atlas[0, 1] = torch.tensor([0.0, 1.0, 0.0])
    mesh = Meshes(verts=[torch.randn(3, 3)], faces=[torch.tensor([[0, 1, 2], [2, 1, 0]])],
                  textures=TexturesAtlas(atlas=atlas))
    t = plot_scene({"s": {"m": mesh}}).data[0]
    quarter = round(255 / 4)
    assert list(t.facecolor) == [f"rgb({quarter},{quarter},{quarter})", "rgb(0,255,0)"]


def test_unused_vertices_stay_out_of_the_axis_ranges() -> None:
    verts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0],
                          [100.0, 100.0, 100.0]])
    mesh = Meshes(verts=[verts], faces=[torch.tensor([[0, 1, 2]])])
    scene = plot_scene({"s": {"m": mesh}}).layout.scene1
    for axis in (scene.xaxis, scene.yaxis, scene.zaxis):
        assert axis.range[1] < 5.0


# --------------------------------------------------------------------------- point clouds


def test_pointcloud_trace_colours_and_subsampling() -> None:
    pts = [torch.randn(50, 3), torch.randn(30, 3)]
    feats = [torch.randint(0, 256, (50, 3)).float() / 255,
             torch.randint(0, 256, (30, 3)).float() / 255]
    clouds = Pointclouds(points=pts, features=feats)
    t = plot_scene({"s": {"pc": clouds}}, pointcloud_marker_size=3).data[0]
    assert t.type == "scatter3d" and t.mode == "markers" and t.marker.size == 3
    np.testing.assert_allclose(xyz(t), torch.cat(pts).numpy(), atol=1e-6, rtol=0)
    assert list(t.marker.color) == colour_strings(torch.cat(feats))

    t = plot_scene({"s": {"pc": clouds}}, pointcloud_max_points=10).data[0]
    drawn = xyz(t)
    assert drawn.shape == (20, 3)  # at most 10 per cloud
    # every drawn point is a point of its cloud, with its own colour
    for k, (p, f) in enumerate(zip(pts, feats, strict=True)):
        for row, colour in zip(drawn[10 * k: 10 * k + 10], t.marker.color[10 * k: 10 * k + 10],
                               strict=True):
            i = int(np.abs(p.numpy() - row).sum(axis=1).argmin())
            np.testing.assert_allclose(p[i].numpy(), row, atol=1e-6, rtol=0)
            assert colour == colour_strings(f[i: i + 1])[0]


def test_pointcloud_rgba_and_plain() -> None:
    feats = torch.tensor([[1.0, 0.0, 0.0, 0.5], [0.0, 1.0, 0.0, 1.0]])
    t = plot_scene({"s": {"pc": Pointclouds(points=[torch.randn(2, 3)],
                                            features=[feats])}}).data[0]
    assert list(t.marker.color) == ["rgba(255,0,0,0.5)", "rgba(0,255,0,1)"]
    t = plot_scene({"s": {"pc": Pointclouds(points=[torch.randn(5, 3)])}}).data[0]
    assert t.marker.color is None and len(t.x) == 5


# --------------------------------------------------------------------------- cameras


def test_camera_trace_places_wireframes_at_cameras() -> None:
    R, T = look_at_view_transform(3.0, 20.0, torch.tensor([0.0, 90.0, 200.0]))
    cams = FoVPerspectiveCameras(R=R, T=T)
    scale = 0.5
    t = plot_scene({"s": {"cams": cams}}, camera_scale=scale).data[0]
    assert t.type == "scatter3d" and t.mode == "lines"
    pts = xyz(t)
    K = get_camera_wireframe().shape[0]
    assert pts.shape[0] == 3 * K + 2
    gaps = np.isnan(pts).all(axis=1)
    assert gaps.sum() == 2 and gaps[K] and gaps[2 * K + 1]
    wire = get_camera_wireframe(scale)
    centre_idx = int((wire == 0).all(dim=1).nonzero()[0])
    axis_idx = int(wire[:, 2].argmax())
    centres = cams.get_camera_center().numpy()
    for c in range(3):
        seg = pts[c * (K + 1): c * (K + 1) + K]
        np.testing.assert_allclose(seg[centre_idx], centres[c], atol=1e-5, rtol=0)
        # the cameras look at the origin: the optical axis points at it
        axis = seg[axis_idx] - seg[centre_idx]
        toward = -centres[c] / np.linalg.norm(centres[c])
        np.testing.assert_allclose(axis / np.linalg.norm(axis), toward, atol=1e-5, rtol=0)
        # the glyph keeps its size
        np.testing.assert_allclose(np.linalg.norm(axis), float(wire[axis_idx].norm()),
                                   rtol=1e-5)


# --------------------------------------------------------------------------- ray bundles


def test_ray_bundle_traces() -> None:
    o = torch.randn(2, 5, 3)
    d = torch.randn(2, 5, 3)
    lengths = torch.rand(2, 5, 4) * 3
    traces = plot_scene({"s": {"rays": Rays(o, d, lengths, torch.zeros(2, 5, 2))}}).data
    assert [t.name for t in traces] == ["rays", "rays_points"]
    lines, points = xyz(traces[0]), xyz(traces[1])
    assert lines.shape == (10 * 3 - 1, 3)
    first = lines[0:2]
    o0, d0, t0 = o[0, 0], d[0, 0], lengths[0, 0]
    np.testing.assert_allclose(first[0], (o0 + t0.min() * d0).numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(first[1], (o0 + t0.max() * d0).numpy(), atol=1e-5, rtol=0)
    expected = (o[..., None, :] + lengths[..., None] * d[..., None, :]).reshape(-1, 3)
    np.testing.assert_allclose(points, expected.numpy(), atol=1e-5, rtol=0)

    sub = plot_scene({"s": {"rays": Rays(o, d, lengths, torch.zeros(2, 5, 2))}},
                     raybundle_max_rays=3, raybundle_max_points_per_ray=2).data
    assert xyz(sub[0]).shape[0] == 3 * 3 - 1 and xyz(sub[1]).shape[0] == 3 * 2


def test_pytorch3d_style_scene_with_everything() -> None:
    B, n_rays, P = 3, 16, 8
    ids = torch.sort(torch.randint(0, B, (B * n_rays,))).values
    hetero = HeteroRays(torch.randn(B * n_rays, 3), torch.randn(B * n_rays, 3),
                        torch.randn(B * n_rays, P), torch.randn(B * n_rays, 2), ids,
                        torch.bincount(ids, minlength=B))
    fig = plot_scene({"scene": {
        "ray_bundle": Rays(torch.randn(B, n_rays, 3), torch.randn(B, n_rays, 3),
                           torch.randn(B, n_rays, P), torch.randn(B, n_rays, 2)),
        "heterogeneous_ray_bundle": hetero,
        "camera": PerspectiveCameras(R=random_rotations(B), T=torch.randn(B, 3)),
        "mesh": random_mesh(n=B),
        "point_clouds": Pointclouds(points=torch.randn(B, 20, 3)),
    }})
    names = [t.name for t in fig.data]
    assert names == ["ray_bundle", "ray_bundle_points", "heterogeneous_ray_bundle",
                     "heterogeneous_ray_bundle_points", "camera", "mesh", "point_clouds"]
    assert len(fig.data[3].x) == B * n_rays * P


# --------------------------------------------------------------------------- layout


def test_subplots_titles_and_grid() -> None:
    plots = {f"plot {k}": {"m": random_mesh(seed=k)} for k in range(3)}
    fig = plot_scene(plots, ncols=2)
    assert [t.scene for t in fig.data] == ["scene", "scene2", "scene3"]
    assert [a.text for a in fig.layout.annotations] == list(plots)
    s1, s2, s3 = fig.layout.scene, fig.layout.scene2, fig.layout.scene3
    assert s1.domain.y == s2.domain.y and s3.domain.y[1] < s1.domain.y[0]
    assert s1.domain.x[1] < s2.domain.x[0] and s3.domain.x == s1.domain.x
    assert "scene4" not in fig.layout.to_plotly_json()  # no empty fourth cell
    # ncols larger than the number of subplots: one row, no empty cells
    fig = plot_scene({"a": {"m": random_mesh()}}, ncols=3)
    assert "scene2" not in fig.layout.to_plotly_json()


def test_axes_cube_settings_and_overrides() -> None:
    mesh = random_mesh()
    cams = FoVPerspectiveCameras(R=random_rotations(2), T=torch.randn(2, 3) * 4)
    fig = plot_scene({"s": {"m": mesh, "c": cams}})
    scene = fig.layout.scene
    assert scene.aspectmode == "cube"
    assert scene.camera.up.to_plotly_json() == {"x": 0.0, "y": 1.0, "z": 0.0}
    widths = [a.range[1] - a.range[0] for a in (scene.xaxis, scene.yaxis, scene.zaxis)]
    assert max(widths) - min(widths) < 1e-9
    everything = np.concatenate([xyz(t) for t in fig.data])
    everything = everything[~np.isnan(everything).any(axis=1)]
    for i, axis in enumerate((scene.xaxis, scene.yaxis, scene.zaxis)):
        assert axis.range[0] < everything[:, i].min() and everything[:, i].max() < axis.range[1]
        assert axis.showgrid is False and axis.backgroundcolor == "#fff"
    fig = plot_scene({"s": {"m": mesh}}, axis_args=AxisArgs(showgrid=True,
                                                            backgroundcolor="rgb(1,2,3)"),
                     xaxis={"range": [-7, 7]}, zaxis={"showline": True},
                     lighting=Lighting(ambient=0.1))
    scene = fig.layout.scene
    assert scene.xaxis.range == (-7, 7) and scene.xaxis.showgrid is True
    assert scene.yaxis.backgroundcolor == "rgb(1,2,3)"
    assert scene.zaxis.showline is True and scene.yaxis.showline is False
    assert fig.data[0].lighting.ambient == 0.1


def test_viewpoint_cameras() -> None:
    mesh = Meshes(verts=[torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [1.0, -1.0, 0.0]])],
                  faces=[torch.tensor([[0, 1, 2]])])
    R, T = look_at_view_transform(dist=torch.tensor([3.0, 6.0]), elev=0.0, azim=0.0)
    cams = FoVPerspectiveCameras(R=R, T=T)
    fig = plot_scene({"a": {"m": mesh}, "b": {"m": mesh}}, viewpoint_cameras=cams)
    for k, dist in ((1, 3.0), (2, 6.0)):
        scene = fig.layout[f"scene{k}"]
        lo, hi = scene.zaxis.range
        half = (hi - lo) / 2
        cam = scene.camera
        assert cam.eye.x == pytest.approx(0.0, abs=1e-6)
        assert cam.eye.z == pytest.approx((dist - (lo + hi) / 2) / half, rel=1e-5)
        # looking toward -z (at the origin), +Y up
        assert cam.center.z < cam.eye.z
        assert cam.up.y > 0 and cam.up.x == pytest.approx(0.0, abs=1e-6)
    one = plot_scene({"a": {"m": mesh}, "b": {"m": mesh}}, viewpoint_cameras=cams[1])
    assert one.layout.scene1.camera.eye.z == one.layout.scene2.camera.eye.z
    with pytest.warns(UserWarning, match="viewpoint_cameras"):
        fig = plot_scene({"a": {"m": mesh}, "b": {"m": mesh}, "c": {"m": mesh}},
                         viewpoint_cameras=cams)
    assert fig.layout.scene1.camera.eye.x is None


def test_plot_scene_errors() -> None:
    mesh = random_mesh()
    with pytest.raises(TypeError, match="plots"):
        plot_scene([mesh])
    with pytest.raises(TypeError, match="plots"):
        plot_scene({"s": mesh})
    with pytest.raises(ValueError, match="plots"):
        plot_scene({})
    with pytest.raises(ValueError, match="expected Meshes"):
        plot_scene({"s": {"t": torch.zeros(3)}})
    with pytest.raises(ValueError, match="ncols"):
        plot_scene({"s": {"m": mesh}}, ncols=0)
    with pytest.raises(ValueError, match="pointcloud_max_points"):
        plot_scene({"s": {"m": mesh}}, pointcloud_max_points=0)
    with pytest.raises(TypeError, match="axis_args"):
        plot_scene({"s": {"m": mesh}}, axis_args={"showgrid": True})
    with pytest.raises(TypeError):
        plot_scene({"s": {"m": mesh}}, no_such_option=1)
    with pytest.raises(TypeError, match="viewpoint_cameras"):
        plot_scene({"s": {"m": mesh}}, viewpoint_cameras=mesh)
    with pytest.raises(ValueError, match="ray bundle"):
        plot_scene({"s": {"r": Rays(torch.zeros(4, 3), torch.zeros(5, 3), torch.zeros(4, 2),
                                    torch.zeros(4, 2))}})


# --------------------------------------------------------------------------- batches


def test_plot_batch_individually() -> None:
    meshes = random_mesh(n=2)
    cloud = Pointclouds(points=[torch.randn(7, 3)])
    R, T = look_at_view_transform(3.0, 0.0, torch.tensor([0.0, 180.0]))
    cams = FoVPerspectiveCameras(R=R, T=T)
    fig = plot_batch_individually([meshes, cloud, cams], ncols=2,
                                  subplot_titles=["front", "back"])
    assert [a.text for a in fig.layout.annotations] == ["front", "back"]
    assert [(t.name, t.scene) for t in fig.data] == [
        ("trace1-1", "scene"), ("trace1-2", "scene"), ("trace1-3", "scene"),
        ("trace2-1", "scene2"), ("trace2-2", "scene2"), ("trace2-3", "scene2"),
    ]
    assert len(fig.data[0].x) == 10 and len(fig.data[3].x) == 11  # mesh 0, mesh 1
    assert len(fig.data[1].x) == len(fig.data[4].x) == 7  # the one cloud, extended
    centres = cams.get_camera_center().numpy()
    centre_idx = int((get_camera_wireframe() == 0).all(dim=1).nonzero()[0])
    np.testing.assert_allclose(xyz(fig.data[5])[centre_idx], centres[1], atol=1e-5, rtol=0)

    fig = plot_batch_individually([meshes, cloud], extend_struct=False)
    assert [a.text for a in fig.layout.annotations] == ["subplot 1", "subplot 2"]
    assert [t.name for t in fig.data] == ["trace1-1", "trace1-2", "trace2-1"]

    fig = plot_batch_individually(cloud)
    assert [t.name for t in fig.data] == ["trace1-1"]


def test_plot_batch_individually_ray_bundles() -> None:
    ids = torch.tensor([0, 0, 1, 2, 2, 2])
    hetero = HeteroRays(torch.randn(6, 3), torch.randn(6, 3), torch.rand(6, 4),
                        torch.zeros(6, 2), ids, torch.tensor([2, 1, 3]))
    fig = plot_batch_individually(hetero)
    points = [len(t.x) for t in fig.data if t.name.endswith("_points")]
    assert points == [2 * 4, 1 * 4, 3 * 4]
    batched = Rays(torch.randn(2, 5, 3), torch.randn(2, 5, 3), torch.rand(2, 5, 3),
                   torch.zeros(2, 5, 2))
    fig = plot_batch_individually(batched)
    assert [len(t.x) for t in fig.data if t.name.endswith("_points")] == [15, 15]
    expected = (batched.origins[1, :, None] + batched.lengths[1, ..., None]
                * batched.directions[1, :, None]).reshape(-1, 3)
    np.testing.assert_allclose(xyz(fig.data[3]), expected.numpy(), atol=1e-5, rtol=0)


def test_plot_batch_individually_errors() -> None:
    with pytest.raises(ValueError, match="batch sizes"):
        plot_batch_individually([random_mesh(n=2), random_mesh(n=3)])
    with pytest.raises(ValueError, match="subplot_titles"):
        plot_batch_individually([random_mesh(n=2)], subplot_titles=["one"])
    with pytest.raises(ValueError, match="distinct"):
        plot_batch_individually([random_mesh(n=2)], subplot_titles=["x", "x"])
    with pytest.raises(ValueError, match="nothing"):
        plot_batch_individually([])
    with pytest.raises(ValueError, match="batched_structs"):
        plot_batch_individually([torch.zeros(3)])


# --------------------------------------------------------------------------- textures


def uv_texture(H: int = 17, W: int = 25, C: int = 3) -> TexturesUV:
    maps = torch.full((1, H, W, C), 0.5)
    verts_uvs = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5], [0.25, 0.75]])
    return TexturesUV(maps=maps, faces_uvs=[torch.tensor([[0, 1, 2]])], verts_uvs=[verts_uvs])


def test_texturesuv_image_pil_draws_uv_points() -> None:
    H, W = 17, 25
    tex = uv_texture(H, W)
    image = texturesuv_image_PIL(tex, radius=0, color=(255, 0, 0))
    assert image.size == (W, H) and image.mode == "RGB"
    arr = np.asarray(image)
    red = np.argwhere((arr == [255, 0, 0]).all(axis=-1))
    # with align_corners=True UV (0, 0) is the bottom-left texel centre, (1, 1) top-right
    expected = {(H - 1, 0), (0, W - 1), ((H - 1) // 2, (W - 1) // 2),
                ((H - 1) // 4, (W - 1) // 4)}
    assert {tuple(p) for p in red.tolist()} == expected
    assert (arr[1, 1] == 128).all()  # the map itself, 0.5 -> 128
    # a disc of radius 1 covers the point and its 4 neighbours; radius 2 covers more
    disc = np.asarray(texturesuv_image_PIL(tex, radius=1, color="red"))
    is_red = (disc == [255, 0, 0]).all(axis=-1)
    r, c = (H - 1) // 2, (W - 1) // 2
    assert is_red[r, c] and is_red[r - 1, c] and is_red[r + 1, c] and is_red[r, c - 1]
    assert not is_red[r + 2, c] and not is_red[r - 2, c - 2]
    big = np.asarray(texturesuv_image_PIL(tex, radius=2, color="red"))
    assert (big == [255, 0, 0]).all(axis=-1).sum() > is_red.sum()
    # subsample draws fewer points
    few = np.asarray(texturesuv_image_PIL(tex, radius=0, color=(255, 0, 0), subsample=2,
                                          generator=torch.Generator().manual_seed(0)))
    got = {tuple(p) for p in np.argwhere((few == [255, 0, 0]).all(axis=-1)).tolist()}
    assert len(got) == 2 and got <= expected


def test_texturesuv_image_pil_channels_and_errors() -> None:
    grey = texturesuv_image_PIL(uv_texture(C=1), radius=0, color=(0, 255, 0))
    assert grey.mode == "RGB"
    assert (np.asarray(grey) == [0, 255, 0]).all(axis=-1).sum() == 4
    rgba = texturesuv_image_PIL(uv_texture(C=4))
    assert rgba.mode == "RGBA"
    tex = uv_texture()
    with pytest.raises(TypeError, match="texture"):
        texturesuv_image_PIL(TexturesVertex([torch.zeros(3, 3)]))
    with pytest.raises(ValueError, match="texture_index"):
        texturesuv_image_PIL(tex, texture_index=1)
    with pytest.raises(ValueError, match="subsample"):
        texturesuv_image_PIL(tex, subsample=-1)
    with pytest.raises(ValueError, match="channels"):
        texturesuv_image_PIL(uv_texture(C=2))


def test_texturesuv_image_pil_picks_batch_element() -> None:
    maps = torch.stack([torch.zeros(8, 8, 3), torch.ones(8, 8, 3)])
    uvs = [torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]])]
    faces = [torch.tensor([[0, 0, 0]])] * 2
    tex = TexturesUV(maps=maps, faces_uvs=faces, verts_uvs=uvs)
    arr = np.asarray(texturesuv_image_PIL(tex, texture_index=1, radius=0, color=(255, 0, 0)))
    assert (arr[0, 0] == 255).all()  # map 1 is white; UV (0, 1) of mesh 0 not drawn
    assert tuple(arr[7, 7]) == (255, 0, 0)


def test_texturesuv_image_matplotlib() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        out = texturesuv_image_matplotlib(uv_texture(), ax=ax, radius=0.5, origin="lower")
        assert out is ax
        assert len(ax.images) == 1 and ax.images[0].get_array().shape == (17, 25, 3)
        assert ax.images[0].origin == "lower"
        (circles,) = ax.collections
        centres = np.array([p.vertices.mean(axis=0) for p in circles.get_paths()])
        assert len(centres) == 4
        with pytest.raises(ValueError, match="origin"):
            texturesuv_image_matplotlib(uv_texture(), ax=ax, origin="middle")
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- packaging


def test_compat_paths_reexport() -> None:
    from diffrend.compat.pytorch3d import vis
    from diffrend.compat.pytorch3d.vis import plotly_vis, texture_vis

    assert plotly_vis.plot_scene is plot_scene and vis.plot_scene is plot_scene
    assert plotly_vis.AxisArgs is AxisArgs and plotly_vis.plot_batch_individually is (
        plot_batch_individually)
    assert texture_vis.texturesuv_image_matplotlib is texturesuv_image_matplotlib
    assert vis.texturesuv_image_PIL is texturesuv_image_PIL
    assert vis.get_camera_wireframe is get_camera_wireframe


def test_optional_dependencies_are_lazy() -> None:
    code = (
        "import sys, diffrend, diffrend.vis\n"
        "assert 'plotly' not in sys.modules and 'matplotlib' not in sys.modules\n"
        "sys.modules['plotly'] = None\n"
        "sys.modules['matplotlib'] = None\n"
        "from diffrend.vis import plot_scene, texturesuv_image_matplotlib\n"
        "for f, a in ((plot_scene, ({},)), (texturesuv_image_matplotlib, (None,))):\n"
        "    try:\n"
        "        f(*a)\n"
        "    except ImportError as e:\n"
        "        assert 'diffrend[vis]' in str(e), e\n"
        "    else:\n"
        "        raise SystemExit('no ImportError')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
