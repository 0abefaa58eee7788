"""Textures: PyTorch3D's UV convention against a hand-written sampler, wrap/clamp, maps_ids,
gradients, batch semantics (extend/getitem/join) and the cow's texture through the loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DATA, GOLDEN, load_golden
from PIL import Image

from diffrend.cameras import FoVPerspectiveCameras, look_at_view_transform
from diffrend.io import load_objs_as_meshes
from diffrend.raster import Fragments, MeshRasterizer, RasterizationSettings
from diffrend.shading import (
    TexturesAtlas,
    TexturesUV,
    TexturesVertex,
    join_textures,
    sample_texture_atlas,
    sample_texture_map,
)
from diffrend.structures import Meshes, ico_sphere, join_meshes_as_batch

COW = DATA / "cow_mesh" / "cow.obj"


# --------------------------------------------------------------------------- helpers


def ref_sample(img: np.ndarray, u: float, v: float, align: bool, mode: str = "bilinear",
               padding: str = "border") -> np.ndarray:
    """Test-only reference: PyTorch3D's UV lookup written out by hand (v up, row 0 on top)."""
    H, W = img.shape[:2]
    if align:
        x, y = u * (W - 1), (1.0 - v) * (H - 1)
    else:
        x, y = u * W - 0.5, (1.0 - v) * H - 0.5
    if padding == "border":
        x, y = min(max(x, 0.0), W - 1.0), min(max(y, 0.0), H - 1.0)

    def texel(r: int, c: int) -> np.ndarray:
        inside = 0 <= r < H and 0 <= c < W
        return img[r, c] if inside else np.zeros(img.shape[2])

    if mode == "nearest":
        return texel(int(np.rint(y)), int(np.rint(x)))
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - x0, y - y0
    return ((1 - fx) * (1 - fy) * texel(y0, x0) + fx * (1 - fy) * texel(y0, x0 + 1)
            + (1 - fx) * fy * texel(y0 + 1, x0) + fx * fy * texel(y0 + 1, x0 + 1))


def fragments(pix_to_face: torch.Tensor, bary: torch.Tensor) -> Fragments:
    """Fragments with only the fields textures read (zbuf/dists are placeholders)."""
    zeros = torch.zeros(pix_to_face.shape, dtype=bary.dtype)
    return Fragments(pix_to_face=pix_to_face, zbuf=zeros, bary_coords=bary, dists=zeros)


def one_face_uv(maps: torch.Tensor, uvs: torch.Tensor, **kw) -> TexturesUV:
    """A texture whose only face has all three corners at ``uvs[0]`` (for point lookups)."""
    return TexturesUV(maps=maps, faces_uvs=[torch.tensor([[0, 0, 0]])], verts_uvs=[uvs], **kw)


def sample_at(maps: torch.Tensor, uvs: torch.Tensor, **kw) -> torch.Tensor:
    """(P, 2) UVs -> (P, C) through ``TexturesUV.sample_textures`` (one face per UV)."""
    P = uvs.shape[0]
    tex = TexturesUV(maps=maps, faces_uvs=[torch.arange(P)[:, None].expand(P, 3)],
                     verts_uvs=[uvs], **kw)
    p2f = torch.arange(P).reshape(1, 1, P, 1)
    bary = torch.full((1, 1, P, 1, 3), 1.0 / 3.0, dtype=uvs.dtype)
    return tex.sample_textures(fragments(p2f, bary))[0, 0, :, 0]


@pytest.fixture
def image() -> torch.Tensor:
    """A 4 x 5 RGB map whose texels are all different."""
    return torch.rand(4, 5, 3, dtype=torch.float64)


# --------------------------------------------------------------------------- UV convention


@pytest.mark.parametrize("align", [True, False])
def test_corners_and_centre_follow_v_up(image, align):
    H, W = image.shape[:2]
    maps = image[None]
    if align:
        corners = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
                               dtype=torch.float64)
    else:  # texel centres of the corner texels
        du, dv = 0.5 / W, 0.5 / H
        corners = torch.tensor([[du, dv], [1 - du, dv], [du, 1 - dv], [1 - du, 1 - dv]],
                               dtype=torch.float64)
    got = sample_at(maps, corners, align_corners=align)
    # v = 0 is the BOTTOM row of the image (the last row of the tensor)
    expected = torch.stack([image[H - 1, 0], image[H - 1, W - 1], image[0, 0], image[0, W - 1]])
    torch.testing.assert_close(got, expected)
    centre = sample_at(maps, torch.tensor([[0.5, 0.5]], dtype=torch.float64),
                       align_corners=align)[0]
    # centre of a 4 x 5 map: between rows 1 and 2, on column 2 (either align mode)
    torch.testing.assert_close(centre, 0.5 * (image[1, 2] + image[2, 2]))


def test_pytorch3d_docstring_examples():
    """PyTorch3D: a (1001, 101) map at (0.4, 0.3) reads maps[700, 40] with align_corners;
    a (1000, 100) map at (0.405, 0.2995) reads maps[700, 40] without."""
    for (H, W), uv, align in (((1001, 101), (0.4, 0.3), True),
                              ((1000, 100), (0.405, 0.2995), False)):
        rows = torch.arange(H, dtype=torch.float64)[:, None].expand(H, W)
        cols = torch.arange(W, dtype=torch.float64)[None].expand(H, W)
        maps = torch.stack([rows, cols], -1)[None]
        got = sample_at(maps, torch.tensor([uv], dtype=torch.float64), align_corners=align)
        torch.testing.assert_close(got[0], torch.tensor([700.0, 40.0], dtype=torch.float64))


@pytest.mark.parametrize("align", [True, False])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", ["border", "zeros"])
def test_random_uvs_match_hand_written_sampler(image, align, mode, padding):
    g = torch.Generator().manual_seed(1)
    uvs = torch.rand(200, 2, generator=g, dtype=torch.float64) * 1.4 - 0.2
    got = sample_at(image[None], uvs, align_corners=align, sampling_mode=mode,
                    padding_mode=padding)
    img = image.numpy()
    expected = np.stack([ref_sample(img, u, v, align, mode, padding) for u, v in uvs.tolist()])
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)


def test_nearest_returns_texels_and_bilinear_blends(image):
    uvs = torch.rand(50, 2, dtype=torch.float64)
    near = sample_at(image[None], uvs, sampling_mode="nearest")
    texels = image.reshape(-1, 3)
    assert all(bool((texels == row).all(-1).any()) for row in near)
    lin = sample_at(image[None], uvs, sampling_mode="bilinear")
    assert not torch.allclose(near, lin)
    # at texel centres both agree
    H, W = image.shape[:2]
    centres = torch.tensor([[c / (W - 1), 1 - r / (H - 1)] for r in range(H) for c in range(W)],
                           dtype=torch.float64)
    torch.testing.assert_close(sample_at(image[None], centres, sampling_mode="nearest"),
                               sample_at(image[None], centres))


def test_clamp_zeros_reflection_outside_unit_square(image):
    H, W = image.shape[:2]
    out = torch.tensor([[-0.5, 0.5], [1.5, 0.5], [0.5, 2.0]], dtype=torch.float64)
    border = sample_at(image[None], out, padding_mode="border")
    inside = sample_at(image[None], out.clamp(0, 1), padding_mode="border")
    torch.testing.assert_close(border, inside)
    assert (sample_at(image[None], out, padding_mode="zeros") == 0).all()
    mirrored = torch.tensor([[0.25, 0.5], [0.75, 0.5], [0.5, 0.2]], dtype=torch.float64)
    refl = torch.tensor([[-0.25, 0.5], [1.25, 0.5], [0.5, 1.8]], dtype=torch.float64)
    torch.testing.assert_close(sample_at(image[None], refl, padding_mode="reflection"),
                               sample_at(image[None], mirrored))


def test_wrap_is_periodic_and_blends_across_the_seam(image):
    H, W = image.shape[:2]
    uvs = torch.rand(60, 2, dtype=torch.float64)
    shifts = torch.tensor([[1.0, 0.0], [-2.0, 3.0], [0.0, -1.0]], dtype=torch.float64)
    for align in (True, False):
        base = sample_at(image[None], uvs, padding_mode="wrap", align_corners=align)
        if align:  # inside [0, 1) wrap is plain sampling
            torch.testing.assert_close(base, sample_at(image[None], uvs, align_corners=align))
        for s in shifts:
            torch.testing.assert_close(
                sample_at(image[None], uvs + s, padding_mode="wrap", align_corners=align), base)
    # align_corners=False: the texel grid is periodic, so u = 0 lies halfway between the
    # last and the first column; reference: the centre tile of a 3 x 3 tiling.
    tiled = image.repeat(3, 3, 1)
    uvs = torch.rand(60, 2, dtype=torch.float64) * 1.2 - 0.1
    got = sample_at(image[None], uvs, padding_mode="wrap", align_corners=False)
    expected = sample_at(tiled[None], (uvs + 1.0) / 3.0, align_corners=False)
    torch.testing.assert_close(got, expected)
    seam = sample_at(image[None], torch.tensor([[0.0, 1 - 0.5 / H]], dtype=torch.float64),
                     padding_mode="wrap", align_corners=False)[0]
    torch.testing.assert_close(seam, 0.5 * (image[0, 0] + image[0, W - 1]))


def test_sample_texture_map_function_keeps_shape(image):
    uvs = torch.rand(2, 3, 4, 2, dtype=torch.float64)
    maps = torch.stack([image, image.flip(0)])
    out = sample_texture_map(maps, uvs)
    assert out.shape == (2, 3, 4, 3)
    torch.testing.assert_close(out[1], sample_texture_map(image.flip(0)[None], uvs[1:])[0])
    with pytest.raises(ValueError, match="uvs"):
        sample_texture_map(maps, uvs[:1])
    with pytest.raises(ValueError, match="maps"):
        sample_texture_map(image, uvs)


# --------------------------------------------------------------------------- sampling


def two_triangles() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pix_to_face (1,2,3,2), bary (1,2,3,2,3)) over 2 faces, some slots empty."""
    p2f = torch.tensor([[[[0, 1], [1, -1], [-1, -1]], [[1, 0], [0, -1], [1, 1]]]])
    bary = torch.rand(*p2f.shape, 3, dtype=torch.float64)
    bary = bary / bary.sum(-1, keepdim=True)
    return p2f, bary, p2f >= 0


def test_uv_sampling_is_the_map_at_the_interpolated_uv(image):
    p2f, bary, valid = two_triangles()
    verts_uvs = torch.rand(5, 2, dtype=torch.float64)
    faces_uvs = torch.tensor([[0, 1, 2], [2, 3, 4]])
    tex = TexturesUV(maps=image[None], faces_uvs=[faces_uvs], verts_uvs=[verts_uvs])
    out = tex.sample_textures(fragments(p2f, bary))
    assert out.shape == (1, 2, 3, 2, 3) and out.dtype == torch.float64
    assert (out[~valid] == 0).all()  # empty slots are zero
    img = image.numpy()
    for idx in valid.nonzero().tolist():
        f = int(p2f[tuple(idx)])
        uv = (bary[tuple(idx)][:, None] * verts_uvs[faces_uvs[f]]).sum(0)
        np.testing.assert_allclose(out[tuple(idx)].numpy(),
                                   ref_sample(img, *uv.tolist(), align=True), atol=1e-12)
    # corner textures = the map at the corner UVs
    corners = tex.faces_verts_textures_packed()
    assert corners.shape == (2, 3, 3)
    np.testing.assert_allclose(corners[1, 2].numpy(),
                               ref_sample(img, *verts_uvs[4].tolist(), align=True), atol=1e-12)
    torch.testing.assert_close(tex.faces_verts_uvs_packed(), verts_uvs[faces_uvs])


def test_maps_ids_select_one_map_per_face():
    colours = torch.eye(3, dtype=torch.float64)  # map m is constant colour e_m
    maps = colours[:, None, None, :].expand(3, 4, 4, 3)
    p2f, bary, valid = two_triangles()
    verts_uvs = torch.rand(5, 2, dtype=torch.float64)
    faces_uvs = torch.tensor([[0, 1, 2], [2, 3, 4]])
    tex = TexturesUV(maps=maps[None], faces_uvs=[faces_uvs], verts_uvs=[verts_uvs],
                     maps_ids=[torch.tensor([2, 0])])
    out = tex.sample_textures(fragments(p2f, bary))
    expected = torch.where(p2f[..., None] == 0, colours[2], colours[0])
    torch.testing.assert_close(out[valid], expected[valid])
    assert (out[~valid] == 0).all()
    torch.testing.assert_close(tex.faces_verts_textures_packed(),
                               colours[[2, 0]][:, None].expand(2, 3, 3))
    assert tex.maps_padded().shape == (1, 3, 4, 4, 3)
    assert tex.maps_ids_padded().tolist() == [[2, 0]]
    # list form with different numbers of maps per mesh: padded to the largest M
    two = TexturesUV(maps=[maps[:1], maps], faces_uvs=[faces_uvs, faces_uvs],
                     verts_uvs=[verts_uvs, verts_uvs],
                     maps_ids=[torch.tensor([0, 0]), torch.tensor([1, 2])])
    assert two.maps_padded().shape == (2, 3, 4, 4, 3)
    torch.testing.assert_close(two.faces_verts_textures_packed()[:, 0],
                               colours[[0, 0, 1, 2]])
    with pytest.raises(ValueError, match=r"maps_ids\[0\]: index 1 out of range"):
        TexturesUV(maps=[maps[:1]], faces_uvs=[faces_uvs], verts_uvs=[verts_uvs],
                   maps_ids=[torch.tensor([0, 1])])
    with pytest.raises(ValueError, match="maps_ids"):
        TexturesUV(maps=maps[None], faces_uvs=[faces_uvs], verts_uvs=[verts_uvs],
                   maps_ids=[torch.tensor([0])])
    with pytest.raises(ValueError, match="maps_ids"):
        TexturesUV(maps=maps[None], faces_uvs=[faces_uvs], verts_uvs=[verts_uvs])


def test_vertex_sampling_through_meshes_and_rasterizer():
    sphere = ico_sphere(1)
    feats = torch.rand(sphere.verts_packed().shape[0], 4)
    meshes = Meshes(sphere.verts_list(), sphere.faces_list(), textures=TexturesVertex([feats]))
    R, T = look_at_view_transform(dist=3.0, elev=10.0, azim=30.0)
    fr = MeshRasterizer(FoVPerspectiveCameras(R=R, T=T),
                        RasterizationSettings(image_size=16, faces_per_pixel=2))(meshes)
    out = meshes.sample_textures(fr)
    assert out.shape == (1, 16, 16, 2, 4)
    valid = fr.pix_to_face >= 0
    corners = feats[meshes.faces_packed()[fr.pix_to_face[valid]]]  # (P, 3, 4)
    expected = (fr.bary_coords[valid][..., None] * corners).sum(1)
    torch.testing.assert_close(out[valid], expected)
    assert (out[~valid] == 0).all()
    with pytest.raises(ValueError, match="faces_packed"):
        meshes.textures.sample_textures(fr)


def test_atlas_lookup_by_barycentric_cells():
    R = 3
    atlas = torch.arange(2 * R * R, dtype=torch.float64).reshape(2, R, R, 1)
    tex = TexturesAtlas([atlas])
    # cell (i, j) = (floor(b1 R), floor(b0 R)); the upper half of a cell is mirrored
    bary = torch.tensor([[0.1, 0.1, 0.8], [0.5, 0.1, 0.4], [0.1, 0.5, 0.4], [0.3, 0.3, 0.4],
                         [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                        dtype=torch.float64)
    P = bary.shape[0]
    p2f = torch.ones(1, 1, P, 1, dtype=torch.int64)
    out = tex.sample_textures(fragments(p2f, bary.reshape(1, 1, P, 1, 3)))[0, 0, :, 0, 0]
    # (0.3, 0.3): cell (0, 0), frac sum 1.8 > 1 -> mirrored to (2, 2)
    expected = [atlas[1, 0, 0], atlas[1, 0, 1], atlas[1, 1, 0], atlas[1, 2, 2],
                atlas[1, 0, 2], atlas[1, 2, 0], atlas[1, 0, 0]]
    torch.testing.assert_close(out, torch.cat(expected))
    corners = tex.faces_verts_textures_packed()
    torch.testing.assert_close(corners[1, :, 0], out[4:])
    # empty pixels are zero; blur barycentrics outside [0, 1] are clamped to edge cells
    p2f[0, 0, 0, 0] = -1
    bary[1] = torch.tensor([1.3, -0.5, 0.2])  # cells (2, -1) -> (2, 0); sum 2.4 - 2 <= 1
    out = sample_texture_atlas(tex.atlas_packed(), p2f, bary.reshape(1, 1, P, 1, 3))
    assert out[0, 0, 0, 0, 0] == 0
    assert out[0, 0, 1, 0, 0] == atlas[1, 0, 2, 0]


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize(("align", "padding"),
                         [(True, "border"), (False, "border"), (False, "wrap"),
                          (True, "reflection")])
def test_uv_gradcheck_maps_and_uvs(align, padding):
    p2f, bary, _ = two_triangles()
    maps = torch.rand(1, 3, 4, 2, dtype=torch.float64, requires_grad=True)
    verts_uvs = (torch.rand(5, 2, dtype=torch.float64) * 1.2 - 0.1).requires_grad_()
    faces_uvs = torch.tensor([[0, 1, 2], [2, 3, 4]])
    bary = bary.requires_grad_()

    def fn(m: torch.Tensor, uv: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        tex = TexturesUV(maps=m, faces_uvs=[faces_uvs], verts_uvs=[uv], align_corners=align,
                         padding_mode=padding)
        return tex.sample_textures(fragments(p2f, b))

    assert torch.autograd.gradcheck(fn, (maps, verts_uvs, bary))


def test_uv_gradcheck_multimap_and_nearest():
    p2f, bary, _ = two_triangles()
    maps = torch.rand(1, 2, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    verts_uvs = torch.rand(5, 2, dtype=torch.float64, requires_grad=True)
    faces_uvs = torch.tensor([[0, 1, 2], [2, 3, 4]])

    def fn(m: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        tex = TexturesUV(maps=m, faces_uvs=[faces_uvs], verts_uvs=[uv],
                         maps_ids=[torch.tensor([1, 0])])
        return tex.sample_textures(fragments(p2f, bary))

    assert torch.autograd.gradcheck(fn, (maps, verts_uvs))
    near = TexturesUV(maps=maps[:, 0], faces_uvs=[faces_uvs], verts_uvs=[verts_uvs],
                      sampling_mode="nearest").sample_textures(fragments(p2f, bary))
    g_maps, g_uv = torch.autograd.grad(near.sum(), (maps, verts_uvs))
    assert g_maps.abs().sum() > 0 and (g_uv == 0).all()  # nearest: no UV gradient


def test_vertex_and_atlas_gradcheck():
    p2f, bary, _ = two_triangles()
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    feats = torch.rand(4, 2, dtype=torch.float64, requires_grad=True)
    bary = bary.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda f, b: TexturesVertex([f]).sample_textures(fragments(p2f, b), faces),
        (feats, bary))
    atlas = torch.rand(1, 2, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a: TexturesAtlas(a).sample_textures(fragments(p2f, bary.detach())), (atlas,))


# --------------------------------------------------------------------------- batches


def uv_batch() -> TexturesUV:
    g = torch.Generator().manual_seed(3)
    return TexturesUV(
        maps=[torch.rand(4, 6, 3, generator=g), torch.rand(8, 3, 3, generator=g)],
        faces_uvs=[torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 2], [1, 2, 3]])],
        verts_uvs=[torch.rand(3, 2, generator=g), torch.rand(4, 2, generator=g)],
        padding_mode="zeros", align_corners=False, sampling_mode="nearest",
    )


def test_list_and_padded_forms():
    tex = uv_batch()
    assert len(tex) == 2 and tex.num_faces_per_mesh() == [1, 2]
    assert tex.maps_padded().shape == (2, 8, 6, 3)  # resized to the largest H and W
    assert [m.shape for m in tex.maps_list()] == [(4, 6, 3), (8, 3, 3)]  # originals kept
    fp = tex.faces_uvs_padded()
    assert fp.shape == (2, 2, 3) and fp[0, 1].tolist() == [-1, -1, -1]
    assert tex.verts_uvs_padded().shape == (2, 4, 2)
    # padded faces_uvs: trailing rows of -1 are padding
    again = TexturesUV(maps=tex.maps_padded(), faces_uvs=fp, verts_uvs=tex.verts_uvs_padded())
    assert again.num_faces_per_mesh() == [1, 2]
    assert [v.shape[0] for v in again.verts_uvs_list()] == [4, 4]
    torch.testing.assert_close(again.faces_verts_uvs_packed(), tex.faces_verts_uvs_packed())
    vt = TexturesVertex([torch.rand(2, 3), torch.rand(5, 3)])
    assert vt.verts_features_padded().shape == (2, 5, 3)
    assert vt.verts_features_packed().shape == (7, 3)
    assert vt.check_shapes(2, 5, 0) and not vt.check_shapes(2, 4, 0)
    at = TexturesAtlas([torch.rand(1, 2, 2, 3), torch.rand(3, 2, 2, 3)])
    assert at.atlas_padded().shape == (2, 3, 2, 2, 3) and at.atlas_packed().shape == (4, 2, 2, 3)


def test_extend_getitem_join_keep_order_and_settings():
    tex = uv_batch()
    ext = tex.extend(2)
    assert len(ext) == 4 and ext.num_faces_per_mesh() == [1, 1, 2, 2]
    torch.testing.assert_close(ext.maps_padded()[3], tex.maps_padded()[1])
    assert (ext.padding_mode, ext.align_corners, ext.sampling_mode) == (
        "zeros", False, "nearest")
    one = tex[1]
    assert len(one) == 1 and one.num_faces_per_mesh() == [2]
    assert torch.equal(one.verts_uvs_list()[0], tex.verts_uvs_list()[1])
    for index in ([1, 0], torch.tensor([False, True]), torch.tensor([1]), slice(1, None)):
        picked = tex[index]
        first = [1, 0] if isinstance(index, list) else [1]
        assert picked.num_faces_per_mesh() == [tex.num_faces_per_mesh()[i] for i in first]
    with pytest.raises(IndexError):
        tex[2]
    joined = tex.join_batch([tex[0]])
    assert joined.num_faces_per_mesh() == [1, 2, 1]
    torch.testing.assert_close(joined.maps_padded()[2], tex.maps_padded()[0])
    assert join_textures([tex, tex]).num_faces_per_mesh() == [1, 2, 1, 2]
    other = TexturesUV(maps=tex.maps_padded(), faces_uvs=tex.faces_uvs_list(),
                       verts_uvs=tex.verts_uvs_list())
    with pytest.raises(ValueError, match="padding_mode"):
        tex.join_batch([other])
    with pytest.raises(ValueError, match="cannot join"):
        tex.join_batch([TexturesVertex([torch.rand(3, 3)])])
    with pytest.raises(ValueError, match="N must be"):
        tex.extend(0)
    vt = TexturesVertex([torch.rand(2, 3), torch.rand(5, 3)])
    assert vt.extend(3).num_verts_per_mesh() == [2, 2, 2, 5, 5, 5]
    assert vt.join_batch([vt[0]]).num_verts_per_mesh() == [2, 5, 2]
    assert vt.join_scene().num_verts_per_mesh() == [7]
    at = TexturesAtlas([torch.rand(1, 2, 2, 3), torch.rand(3, 2, 2, 3)])
    assert at.extend(2)[[3, 0]].num_faces_per_mesh() == [3, 1]
    assert at.join_batch([at]).num_faces_per_mesh() == [1, 3, 1, 3]


def test_copies_and_gradients_through_batch_operations():
    maps = torch.rand(1, 4, 4, 3, requires_grad=True)
    uvs = torch.rand(3, 2, requires_grad=True)
    tex = TexturesUV(maps=maps, faces_uvs=[torch.tensor([[0, 1, 2]])], verts_uvs=[uvs])
    ext = tex.extend(3)
    ext.maps_padded().sum().backward()
    torch.testing.assert_close(maps.grad, torch.full_like(maps, 3.0))
    assert tex.detach().maps_padded().requires_grad is False
    c = tex.clone()
    assert c.maps_padded() is not tex.maps_padded()
    assert c.maps_padded().data_ptr() != maps.data_ptr()
    assert tex.to("cpu") is tex
    feats = torch.rand(4, 3, requires_grad=True)
    vt = TexturesVertex(feats[None])
    vt.extend(2).verts_features_packed().sum().backward()
    torch.testing.assert_close(feats.grad, torch.full_like(feats, 2.0))


def test_meshes_carry_textures_through_extend_index_join():
    sphere = ico_sphere(0)
    v, f = sphere.verts_packed(), sphere.faces_packed()
    colours = [torch.rand(12, 3), torch.rand(12, 3)]
    a = Meshes([v], [f], textures=TexturesVertex(colours[:1]))
    b = Meshes([v], [f], textures=TexturesVertex(colours[1:]))
    batch = join_meshes_as_batch([a, b])
    assert isinstance(batch.textures, TexturesVertex) and len(batch.textures) == 2
    assert torch.equal(batch[1].textures.verts_features_list()[0], colours[1])
    assert len(batch.extend(2).textures) == 4
    assert torch.equal(batch.extend(2).textures.verts_features_list()[2], colours[1])
    assert torch.equal(batch.clone().textures.verts_features_packed(), torch.cat(colours))


def _each_alone(tex: TexturesUV) -> torch.Tensor:
    """Corner texels of every mesh sampled from its own (unresized) map."""
    return torch.cat([
        TexturesUV([m], [f], [v], padding_mode=tex.padding_mode,
                   align_corners=tex.align_corners, sampling_mode=tex.sampling_mode,
                   ).faces_verts_textures_packed()
        for m, f, v in zip(tex.maps_list(), tex.faces_uvs_list(), tex.verts_uvs_list(),
                           strict=True)
    ])


@pytest.mark.parametrize("align", [True, False])
@pytest.mark.parametrize("padding", ["zeros", "border", "wrap"])
def test_join_scene_samples_like_each_mesh_alone(align, padding):
    g = torch.Generator().manual_seed(5)
    shared = torch.rand(5, 5, 3, generator=g)
    tex = TexturesUV(
        maps=[torch.rand(4, 6, 3, generator=g), torch.rand(9, 3, 3, generator=g), shared,
              shared],
        faces_uvs=[torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 2], [1, 2, 3]]),
                   torch.tensor([[2, 1, 0]]), torch.tensor([[0, 2, 1]])],
        verts_uvs=[torch.rand(3, 2, generator=g), torch.rand(4, 2, generator=g),
                   torch.rand(3, 2, generator=g), torch.rand(3, 2, generator=g)],
        padding_mode=padding, align_corners=align,
    )
    scene = tex.join_scene()
    assert len(scene) == 1 and scene.num_faces_per_mesh() == [5]
    if padding != "wrap":
        torch.testing.assert_close(scene.faces_verts_textures_packed(), _each_alone(tex))
        # one packed image; the shared map is stored once
        (single,) = scene.maps_list()
        frame = 0 if align else 2
        area = sum((h + frame) * (w + frame) for h, w in [(4, 6), (9, 3), (5, 5)])
        assert single.ndim == 3 and single.shape[0] * single.shape[1] >= area
        assert scene.maps_ids_list() is None
    else:
        # the maps of the batch (resized to one size) become the images of one mesh
        assert scene.maps_padded().shape[:2] == (1, 4)
        torch.testing.assert_close(scene.faces_verts_textures_packed(),
                                   tex.faces_verts_textures_packed())


def test_join_scene_is_differentiable_and_keeps_the_zero_frame():
    maps = [torch.rand(3, 4, 3, requires_grad=True), torch.rand(2, 2, 3, requires_grad=True)]
    uvs = torch.rand(3, 2, requires_grad=True)
    tex = TexturesUV(maps, [torch.tensor([[0, 1, 2]])] * 2, [uvs, uvs.detach()],
                     padding_mode="zeros", align_corners=False)
    scene = tex.join_scene()
    single = scene.maps_padded()[0]
    # every map plus a one-texel frame of zeros: the total equals the maps' sum
    torch.testing.assert_close(single.sum(), maps[0].sum() + maps[1].sum())
    scene.faces_verts_textures_packed().sum().backward()
    assert maps[0].grad is not None and uvs.grad is not None


def test_centers_for_image():
    maps = torch.rand(1, 5, 9, 3)
    uvs = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.25]])
    tex = one_face_uv(maps, uvs)
    torch.testing.assert_close(tex.centers_for_image(0),
                               torch.tensor([[0.0, 4.0], [8.0, 0.0], [4.0, 3.0]]))


# --------------------------------------------------------------------------- bad input


def _uv(**overrides):
    args = {"maps": torch.rand(1, 4, 4, 3), "faces_uvs": [torch.tensor([[0, 1, 2]])],
            "verts_uvs": [torch.rand(3, 2)]}
    args.update(overrides)
    return TexturesUV(**args)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"maps": torch.rand(4, 4, 3)}, "maps"),
        ({"maps": torch.rand(1, 2, 4, 4, 3)}, "maps_ids"),
        ({"maps": [torch.rand(4, 4)]}, r"maps\[0\]"),
        ({"maps": torch.rand(2, 4, 4, 3)}, "maps: batch size 2"),
        ({"maps": torch.full((1, 4, 4, 3), float("nan"))}, "maps.*NaN"),
        ({"maps": torch.zeros(1, 4, 4, 3, dtype=torch.uint8)}, "maps.*floating"),
        ({"maps": torch.rand(1, 0, 4, 3)}, "maps.*empty"),
        ({"maps": [torch.rand(4, 4, 3), torch.rand(4, 4, 1)],
          "faces_uvs": [torch.tensor([[0, 1, 2]])] * 2, "verts_uvs": [torch.rand(3, 2)] * 2},
         "channels"),
        ({"verts_uvs": [torch.rand(3, 2), torch.rand(3, 2)]}, "verts_uvs: batch size"),
        ({"verts_uvs": [torch.rand(3, 3)]}, "verts_uvs"),
        ({"verts_uvs": [torch.tensor([[0.0, float("inf")]] * 3)]}, "verts_uvs.*NaN"),
        ({"faces_uvs": [torch.tensor([[0, 1, 3]])]}, r"faces_uvs\[0\]: index 3 out of range"),
        ({"faces_uvs": [torch.tensor([[0, -1, 2]])]}, r"faces_uvs\[0\]: index -1"),
        ({"faces_uvs": [torch.tensor([[0.0, 1.0, 2.0]])]}, "faces_uvs.*integer"),
        ({"faces_uvs": torch.tensor([[0, 1, 2]])}, "faces_uvs"),
        ({"padding_mode": "clamp"}, "padding_mode"),
        ({"sampling_mode": "bicubic"}, "sampling_mode"),
        ({"align_corners": 1}, "align_corners"),
    ],
)
def test_bad_uv_input(overrides, match):
    with pytest.raises(ValueError, match=match):
        # faces_uvs' type and range are checked on first use (PyTorch3D accepts any)
        _uv(**overrides).faces_verts_textures_packed()


def test_faces_uvs_checked_on_every_use_until_valid():
    bad = _uv(faces_uvs=[torch.tensor([[0, 1, 3]])])
    for use in (bad.faces_verts_uvs_packed, bad.join_scene, bad.clone().faces_verts_uvs_packed,
                lambda: bad.submeshes(None, [[torch.tensor([0])]])):
        with pytest.raises(ValueError, match=r"faces_uvs\[0\]: index 3"):
            use()
    # float indices are kept as given until then, like PyTorch3D's
    lenient = _uv(faces_uvs=torch.rand(1, 2, 3))
    assert lenient.faces_uvs_padded().dtype == torch.float32
    with pytest.raises(ValueError, match="faces_uvs.*integer"):
        lenient.join_batch([_uv()]).faces_verts_textures_packed()


def test_bad_vertex_atlas_and_sampling_input():
    with pytest.raises(ValueError, match="verts_features"):
        TexturesVertex(torch.rand(4, 3))
    with pytest.raises(ValueError, match="verts_features.*NaN"):
        TexturesVertex([torch.tensor([[float("nan"), 0.0, 0.0]])])
    with pytest.raises(ValueError, match="channels"):
        TexturesVertex([torch.rand(2, 3), torch.rand(2, 4)])
    with pytest.raises(ValueError, match="atlas.*square"):
        TexturesAtlas([torch.rand(2, 2, 3, 3)])
    with pytest.raises(ValueError, match="atlas"):
        TexturesAtlas([torch.rand(2, 2, 2, 3), torch.rand(2, 3, 3, 3)])
    tex = _uv()
    p2f = torch.zeros(1, 2, 2, 1, dtype=torch.int64)
    bary = torch.full((1, 2, 2, 1, 3), 1 / 3)
    with pytest.raises(ValueError, match="faces_packed: the meshes have 2 faces"):
        tex.sample_textures(fragments(p2f, bary), faces_packed=torch.zeros(2, 3, dtype=int))
    with pytest.raises(ValueError, match="fragments: 2 images for 1 textures"):
        tex.sample_textures(fragments(p2f.expand(2, -1, -1, -1), bary.expand(2, -1, -1, -1, -1)))
    with pytest.raises(ValueError, match="pix_to_face: face 1"):
        tex.sample_textures(fragments(p2f + 1, bary))
    with pytest.raises(ValueError, match="bary_coords"):
        tex.sample_textures(fragments(p2f, bary[..., :2]))
    with pytest.raises(ValueError, match="faces_packed: vertex index 5"):
        TexturesVertex([torch.rand(3, 3)]).sample_textures(
            fragments(p2f, bary), torch.tensor([[0, 1, 5]]))
    with pytest.raises(ValueError, match="textures"):
        join_textures(tex)


# --------------------------------------------------------------------------- the cow


@pytest.fixture(scope="module")
def cow():
    if not COW.exists():
        pytest.skip(f"{COW} not available")
    return load_objs_as_meshes([COW])


def test_cow_texture_matches_the_png_sampled_by_hand(cow):
    tex = cow.textures
    assert isinstance(tex, TexturesUV)
    assert tex.maps_padded().shape == (1, 1024, 1024, 3)
    assert (tex.padding_mode, tex.align_corners, tex.sampling_mode) == (
        "border", True, "bilinear")
    R, T = look_at_view_transform(dist=2.7, elev=10.0, azim=-150.0)
    fr = MeshRasterizer(FoVPerspectiveCameras(R=R, T=T),
                        RasterizationSettings(image_size=32))(cow)
    texels = cow.sample_textures(fr)
    assert texels.shape == (1, 32, 32, 1, 3)
    png = np.asarray(Image.open(COW.parent / "cow_texture.png").convert("RGB"),
                     dtype=np.float64) / 255.0
    verts_uvs = tex.verts_uvs_list()[0].double()
    faces_uvs = tex.faces_uvs_list()[0]
    hits = (fr.pix_to_face[0, ..., 0] >= 0).nonzero().tolist()
    assert len(hits) > 100
    for r, c in hits[:: max(1, len(hits) // 40)]:
        f = int(fr.pix_to_face[0, r, c, 0])
        uv = (fr.bary_coords[0, r, c, 0].double()[:, None] * verts_uvs[faces_uvs[f]]).sum(0)
        expected = ref_sample(png, *uv.tolist(), align=True)
        np.testing.assert_allclose(texels[0, r, c, 0].numpy(), expected, atol=2e-5)


def test_golden_uv_arrays_fit_the_loaded_cow(cow):
    if not (GOLDEN / "shade_cow_hard_flat_uv.npz").exists():
        pytest.skip("PyTorch3D goldens not available")
    g = load_golden("shade_cow_hard_flat_uv")
    assert g["texture_map"].shape == (64, 64, 3)
    tex = TexturesUV(maps=torch.from_numpy(g["texture_map"])[None],
                     faces_uvs=[torch.from_numpy(g["faces_uvs"])],
                     verts_uvs=[torch.from_numpy(g["verts_uvs"])])
    assert tex.faces_verts_uvs_packed().shape == (5856, 3, 2)
    assert tex.faces_verts_textures_packed().shape == (5856, 3, 3)
    # the loader reads the same UVs PyTorch3D used (no v flip on load)
    assert torch.equal(tex.faces_uvs_list()[0], cow.textures.faces_uvs_list()[0])
    torch.testing.assert_close(tex.verts_uvs_list()[0], cow.textures.verts_uvs_list()[0])


# --------------------------------------------------------------------------- PyTorch3D hooks


def test_valid_defaults_to_all_and_travels_with_the_batch():
    tex = TexturesVertex([torch.rand(2, 3), torch.rand(3, 3), torch.rand(1, 3)])
    assert tex.valid.dtype == torch.bool and bool(tex.valid.all()) and tex.valid.shape == (3,)
    tex.valid = torch.tensor([True, False, True])
    assert tex[[1, 2]].valid.tolist() == [False, True]
    assert tex.extend(2).valid.tolist() == [True, True, False, False, True, True]
    c = tex.clone()
    assert c.valid.tolist() == [True, False, True]
    assert c.valid.data_ptr() != tex.valid.data_ptr()
    with pytest.raises(ValueError, match="valid"):
        tex.valid = torch.ones(2, dtype=torch.bool)


def test_counts_written_by_meshes_trim_padded_inputs_only():
    feats = torch.rand(2, 4, 3)
    tex = TexturesVertex(feats)
    tex._num_verts_per_mesh = [4, 2]
    assert tex.num_verts_per_mesh() == [4, 2]
    assert torch.equal(tex.verts_features_packed(), torch.cat([feats[0], feats[1, :2]]))
    assert tex._num_faces_per_mesh is None
    tex._num_faces_per_mesh = torch.tensor([5, 6])
    assert tex.extend(2)._num_faces_per_mesh == [5, 5, 6, 6]
    with pytest.raises(ValueError, match="num_verts_per_mesh"):
        tex._num_verts_per_mesh = [5, 2]
    listed = TexturesVertex([torch.rand(3, 3)])
    listed._num_verts_per_mesh = [2]  # a list input is kept whole
    assert listed.num_verts_per_mesh() == [3]

    atlas = TexturesAtlas(torch.rand(2, 3, 2, 2, 3))
    atlas._num_faces_per_mesh = [1, 3]
    assert atlas.num_faces_per_mesh() == [1, 3] and atlas.atlas_packed().shape[0] == 4

    uv = TexturesUV(torch.rand(2, 4, 4, 3), torch.randint(0, 3, (2, 3, 3)), torch.rand(2, 3, 2),
                    maps_ids=None)
    uv._num_faces_per_mesh = [2, 3]
    assert uv.num_faces_per_mesh() == [2, 3] and uv.faces_verts_uvs_packed().shape == (5, 3, 2)
    uv._num_verts_per_mesh = [3, 3]
    assert uv._num_verts_per_mesh == [3, 3] and uv[1]._num_verts_per_mesh == [3]


def test_private_padded_views_follow_the_public_ones():
    uv = uv_batch()
    assert torch.equal(uv._faces_uvs_padded, uv.faces_uvs_padded())
    assert torch.equal(uv._verts_uvs_padded, uv.verts_uvs_padded())
    assert uv._maps_ids_padded is None
    vt = TexturesVertex([torch.rand(2, 3)])
    assert torch.equal(vt._verts_features_padded, vt.verts_features_padded())
    at = TexturesAtlas([torch.rand(1, 2, 2, 3)])
    assert torch.equal(at._atlas_padded, at.atlas_padded())


def test_submeshes_of_each_texture_class():
    feats = torch.arange(12.0).reshape(4, 3)
    vt = TexturesVertex([feats, feats[:2]])
    sub = vt.submeshes([[torch.tensor([3, 0]), torch.tensor([1])], [torch.tensor([1])]], None)
    assert [t.tolist() for t in sub.verts_features_list()] == [
        feats[[3, 0]].tolist(), feats[[1]].tolist(), feats[[1]].tolist()]

    atlas = torch.rand(3, 2, 2, 3, requires_grad=True)
    none = torch.zeros(0, dtype=torch.int64)
    sub = TexturesAtlas([atlas]).submeshes(None, [[torch.tensor([2, 0]), none]])
    assert torch.equal(sub.atlas_list()[0], atlas[[2, 0]]) and sub.num_faces_per_mesh() == [2, 0]
    sub.atlas_packed().sum().backward()
    assert atlas.grad[:, 0, 0, 0].tolist() == [1.0, 0.0, 1.0]

    maps = torch.rand(2, 2, 4, 4, 3)
    uvs = torch.rand(6, 2)
    faces = torch.tensor([[0, 1, 2], [3, 5, 4], [5, 4, 1]])
    tex = TexturesUV(maps, [faces, faces[:1]], [uvs, uvs[:3]],
                     maps_ids=[torch.tensor([0, 1, 1]), torch.tensor([1])])
    sub = tex.submeshes(None, [[torch.tensor([1, 2])], [torch.tensor([0]), torch.tensor([0])]])
    assert len(sub) == 3 and sub.num_faces_per_mesh() == [2, 1, 1]
    # UVs used by faces 1, 2 are 1, 3, 4, 5: kept in that order, faces renumbered
    assert torch.equal(sub.verts_uvs_list()[0], uvs[[1, 3, 4, 5]])
    assert sub.faces_uvs_list()[0].tolist() == [[1, 3, 2], [3, 2, 0]]
    assert sub.maps_ids_list()[0].tolist() == [1, 1]
    torch.testing.assert_close(sub.faces_verts_textures_packed(),
                               tex.faces_verts_textures_packed()[[1, 2, 3, 3]])
    assert torch.equal(sub.maps_padded()[1], maps[1])
    with pytest.raises(IndexError, match="faces_ids_list"):
        tex.submeshes(None, [[torch.tensor([0])]])
    with pytest.raises(ValueError, match="faces_ids_list"):
        tex.submeshes(None, [[torch.tensor([0.0])], []])
