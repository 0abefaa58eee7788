"""diffrend.splat.rasterization against an independent brute-force oracle.

The oracle (numpy, float64, plain loops) projects every Gaussian itself, sorts them by depth
and composites every one of them at every pixel with the interface's rule; it knows nothing of
radii, tiles or intersection lists, so it also checks that the tiling drops nothing visible.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffrend.splat import rasterization

W, H, TILE = 24, 18, 8
NEAR, FAR = 0.01, 1e10

# Real SH constants from their closed forms (independent of diffrend.splat.sh's table).
_PI = math.pi
_C0 = 0.5 / math.sqrt(_PI)
_C1 = math.sqrt(3 / (4 * _PI))
_C2 = (math.sqrt(15 / _PI) / 2, -math.sqrt(15 / _PI) / 2, math.sqrt(5 / _PI) / 4,
       -math.sqrt(15 / _PI) / 2, math.sqrt(15 / _PI) / 4)  # fmt: skip
_C3 = (-math.sqrt(35 / (2 * _PI)) / 4, math.sqrt(105 / _PI) / 2, -math.sqrt(21 / (2 * _PI)) / 4,
       math.sqrt(7 / _PI) / 4, -math.sqrt(21 / (2 * _PI)) / 4, math.sqrt(105 / _PI) / 4,
       -math.sqrt(35 / (2 * _PI)) / 4)  # fmt: skip


def _sh_colour(degree: int, d: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    x, y, z = d / np.linalg.norm(d)
    b = [_C0]
    if degree >= 1:
        b += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        b += [_C2[0] * x * y, _C2[1] * y * z, _C2[2] * (2 * z * z - x * x - y * y),
              _C2[3] * x * z, _C2[4] * (x * x - y * y)]  # fmt: skip
    if degree >= 3:
        b += [_C3[0] * y * (3 * x * x - y * y), _C3[1] * x * y * z,
              _C3[2] * y * (4 * z * z - x * x - y * y),
              _C3[3] * z * (2 * z * z - 3 * x * x - 3 * y * y),
              _C3[4] * x * (4 * z * z - x * x - y * y), _C3[5] * z * (x * x - y * y),
              _C3[6] * x * (x * x - 3 * y * y)]  # fmt: skip
    return np.asarray(b) @ coeffs[: len(b)]


def _rotation(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z],
    ])  # fmt: skip


def oracle(means, quats, scales, opacities, colors, viewmats, ks, width, height, *,
           sh_degree=None, backgrounds=None, render_mode="RGB", rasterize_mode="classic",
           camera_model="pinhole", eps2d=0.3, near=NEAR, far=FAR):  # fmt: skip
    """Brute force: every Gaussian at every pixel, front to back.

    Returns numpy arrays: colours (C, H, W, D), alphas (C, H, W, 1), and (C, H, W) bool marks
    of the pixels where some Gaussian sits within 1e-4 (relative) of a cut-off (alpha = 1/255
    or the transmittance 1e-4), where float32 rounding may legitimately decide otherwise.
    """
    a = [np.asarray(t.detach(), dtype=np.float64) for t in (means, quats, scales, opacities,
                                                            colors, viewmats, ks)]  # fmt: skip
    means, quats, scales, opacities, colors, viewmats, ks = a
    bgs = None if backgrounds is None else np.asarray(backgrounds, dtype=np.float64)
    n_cams, n = len(viewmats), len(means)
    images, alphas, unsure = [], [], []
    for c in range(n_cams):
        rot, trans = viewmats[c, :3, :3], viewmats[c, :3, 3]
        fx, fy, cx, cy = ks[c, 0, 0], ks[c, 1, 1], ks[c, 0, 2], ks[c, 1, 2]
        centre = -rot.T @ trans
        splats = []
        for i in range(n):
            p = rot @ means[i] + trans
            if not near < p[2] < far:
                continue
            rq = _rotation(quats[i])
            sigma = rot @ rq @ np.diag(scales[i] ** 2) @ rq.T @ rot.T
            if camera_model == "pinhole":
                z = p[2]
                u = np.clip(p[0] / z, -(cx / fx + 0.15 * width / fx), (width - cx) / fx
                            + 0.15 * width / fx)  # fmt: skip
                v = np.clip(p[1] / z, -(cy / fy + 0.15 * height / fy), (height - cy) / fy
                            + 0.15 * height / fy)  # fmt: skip
                jac = np.array([[fx / z, 0, -fx * u / z], [0, fy / z, -fy * v / z]])
                mean2 = np.array([fx * p[0] / z + cx, fy * p[1] / z + cy])
            else:
                jac = np.array([[fx, 0, 0], [0, fy, 0]])
                mean2 = np.array([fx * p[0] + cx, fy * p[1] + cy])
            cov = jac @ sigma @ jac.T
            det0 = np.linalg.det(cov)
            cov = cov + eps2d * np.eye(2)
            op = opacities[i]
            if rasterize_mode == "antialiased":
                op *= math.sqrt(max(det0 / np.linalg.det(cov), 0.0))
            if sh_degree is None:
                feat = colors[i] if colors.ndim == 2 else colors[c, i]
            else:
                coeffs = colors[i] if colors.ndim == 3 else colors[c, i]
                feat = np.maximum(_sh_colour(sh_degree, means[i] - centre, coeffs) + 0.5, 0)
            if render_mode in ("D", "ED"):
                feat = np.array([p[2]])
            elif render_mode in ("RGB+D", "RGB+ED"):
                feat = np.append(feat, p[2])
            splats.append((p[2], mean2, np.linalg.inv(cov), op, feat))
        splats.sort(key=lambda s: s[0])
        dim = 3 if sh_degree is not None else colors.shape[-1]
        dim = 1 if render_mode in ("D", "ED") else dim + ("+" in render_mode)
        img = np.zeros((height, width, dim))
        alp = np.zeros((height, width, 1))
        near_cut = np.zeros((height, width), dtype=bool)
        for y in range(height):
            for x in range(width):
                t, acc = 1.0, np.zeros(dim)
                for _, mean2, conic, op, feat in splats:
                    dx, dy = x + 0.5 - mean2[0], y + 0.5 - mean2[1]
                    power = 0.5 * (conic[0, 0] * dx * dx + conic[1, 1] * dy * dy) + conic[
                        0, 1] * dx * dy  # fmt: skip
                    if power < 0:
                        continue
                    alpha = min(0.999, op * math.exp(-power))
                    # float32 may fall on the other side of a cut-off within 1e-4 of it
                    near_cut[y, x] |= abs(alpha * 255 - 1) < 1e-4
                    if alpha < 1 / 255:
                        continue
                    near_cut[y, x] |= abs(t * (1 - alpha) * 1e4 - 1) < 1e-4
                    if t * (1 - alpha) <= 1e-4:
                        break
                    acc += feat * alpha * t
                    t *= 1 - alpha
                if bgs is not None and render_mode not in ("D", "ED"):
                    bg = bgs[c] if render_mode == "RGB" else np.append(bgs[c], 0.0)
                    acc += t * bg
                if render_mode in ("ED", "RGB+ED"):
                    acc[-1] /= max(1 - t, 1e-10)
                img[y, x], alp[y, x, 0] = acc, 1 - t
        images.append(img)
        unsure.append(near_cut)
        alphas.append(alp)
    return np.stack(images), np.stack(alphas), np.stack(unsure)


def _look_at_origin(angle: float, dist: float, height: float = 0.0) -> torch.Tensor:
    """World-to-camera matrix of a camera on a circle about y, looking at the origin."""
    ca, sa = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[ca, 0.0, -sa], [0.0, 1.0, 0.0], [sa, 0.0, ca]])
    m = torch.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = torch.tensor([0.0, height, dist])
    return m


def _cameras(camera_model: str = "pinhole") -> tuple[torch.Tensor, torch.Tensor]:
    vm = torch.stack((_look_at_origin(0.0, 4.0), _look_at_origin(0.5, 3.5, 0.2)))
    f = 22.0 if camera_model == "pinhole" else 6.0
    ks = torch.tensor([[[f, 0, 12.3], [0, f * 0.9, 8.7], [0, 0, 1]],
                       [[f * 1.1, 0, 11.0], [0, f, 9.5], [0, 0, 1]]])  # fmt: skip
    return vm, ks


def _scene(seed: int, n: int = 12, colour_dim: int = 3):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) * 2 - 1) * torch.tensor([1.2, 1.0, 1.0])
    means[0] = torch.tensor([0.0, 0.0, -6.0])  # behind both cameras
    means[1] = torch.tensor([30.0, 0.0, 0.0])  # off the images
    quats = torch.randn(n, 4, generator=g)
    scales = torch.rand(n, 3, generator=g) * 0.35 + 0.03
    opacities = torch.rand(n, generator=g) * 0.9 + 0.1
    opacities[2:5] = 1.0  # alpha clamps at 0.999 and transmittance runs out: early stops
    scales[2:5] = 0.5
    colors = torch.rand(n, colour_dim, generator=g)
    return means, quats, scales, opacities, colors


def _compare(out, alphas, expect, expect_alpha, unsure, depth_channel: bool):
    """Every pixel not marked unsure by the oracle agrees (and only a few are unsure)."""
    sure = ~unsure
    assert (~sure).sum() <= max(2, 0.01 * sure.size)
    got = out.detach().numpy().astype(np.float64)[sure]
    expect = expect[sure]
    assert np.allclose(alphas.detach().numpy()[sure], expect_alpha[sure], atol=2e-5)
    colour = slice(0, -1) if depth_channel else slice(None)
    assert np.allclose(got[..., colour], expect[..., colour], atol=2e-5)
    if depth_channel:
        assert np.allclose(got[..., -1], expect[..., -1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("camera_model", ["pinhole", "ortho"])
@pytest.mark.parametrize("render_mode", ["RGB", "D", "ED", "RGB+D", "RGB+ED"])
def test_matches_oracle(render_mode, camera_model):
    means, quats, scales, opacities, colors = _scene(1)
    vm, ks = _cameras(camera_model)
    out, alphas, meta = rasterization(
        means, quats, scales, opacities, colors, vm, ks, W, H, tile_size=TILE,
        render_mode=render_mode, camera_model=camera_model,
    )  # fmt: skip
    d = {"RGB": 3, "D": 1, "ED": 1, "RGB+D": 4, "RGB+ED": 4}[render_mode]
    assert out.shape == (2, H, W, d) and alphas.shape == (2, H, W, 1)
    expect, expect_alpha, unsure = oracle(means, quats, scales, opacities, colors, vm, ks, W, H,
                                  render_mode=render_mode, camera_model=camera_model)  # fmt: skip
    assert expect_alpha.max() > 0.99 and expect_alpha.min() < 0.01  # a scene worth testing
    _compare(out, alphas, expect, expect_alpha, unsure, render_mode != "RGB")


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 14),
    camera_model=st.sampled_from(["pinhole", "ortho"]),
    render_mode=st.sampled_from(["RGB", "D", "ED", "RGB+D", "RGB+ED"]),
    rasterize_mode=st.sampled_from(["classic", "antialiased"]),
    sh_degree=st.sampled_from([None, 0, 1, 2, 3]),
    tile_size=st.sampled_from([2, 8, 16]),
    size=st.sampled_from([(7, 5), (24, 18)]),
)
def test_random_scenes_match_oracle(seed, n, camera_model, render_mode, rasterize_mode,
                                    sh_degree, tile_size, size):  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) * 2 - 1) * 1.5
    means[: n // 4, 2] -= 6.0  # some behind the cameras
    quats = torch.randn(n, 4, generator=g)
    scales = torch.rand(n, 3, generator=g) * 0.4
    scales[n // 2 :] *= 0.05  # small ones, a pixel or less
    opacities = torch.rand(n, generator=g)
    if sh_degree is None:
        colors = torch.rand(n, 3, generator=g)
    else:
        colors = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g) * 0.5
    vm, ks = _cameras(camera_model)
    width, height = size
    out, alphas, _ = rasterization(
        means, quats, scales, opacities, colors, vm, ks, width, height, sh_degree=sh_degree,
        tile_size=tile_size, render_mode=render_mode, rasterize_mode=rasterize_mode,
        camera_model=camera_model,
    )  # fmt: skip
    expect, expect_alpha, unsure = oracle(
        means, quats, scales, opacities, colors, vm, ks, width, height, sh_degree=sh_degree,
        render_mode=render_mode, rasterize_mode=rasterize_mode, camera_model=camera_model,
    )  # fmt: skip
    _compare(out, alphas, expect, expect_alpha, unsure, render_mode != "RGB")


@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_compositing_backends_match_oracle(backend):
    means, quats, scales, opacities, colors = _scene(11)
    vm, ks = _cameras()
    out, alphas, _ = rasterization(means, quats, scales, opacities, colors, vm, ks, W, H,
                                   tile_size=TILE, render_mode="RGB+D", backend=backend)
    expect, expect_alpha, unsure = oracle(means, quats, scales, opacities, colors, vm, ks, W, H,
                                          render_mode="RGB+D")  # fmt: skip
    _compare(out, alphas, expect, expect_alpha, unsure, True)


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_spherical_harmonics_match_oracle(sh_degree):
    means, quats, scales, opacities, _ = _scene(2)
    g = torch.Generator().manual_seed(5)
    coeffs = torch.randn(len(means), 16, 3, generator=g) * 0.4
    vm, ks = _cameras()
    # Stored at degree 3, evaluated at sh_degree (as training raises the degree).
    out, alphas, _ = rasterization(means, quats, scales, opacities, coeffs, vm, ks, W, H,
                                   sh_degree=sh_degree, tile_size=TILE)  # fmt: skip
    expect, expect_alpha, unsure = oracle(means, quats, scales, opacities, coeffs, vm, ks, W, H,
                                  sh_degree=sh_degree)  # fmt: skip
    _compare(out, alphas, expect, expect_alpha, unsure, False)
    if sh_degree == 1:  # exact-size coefficients and per-camera coefficients agree too
        out4 = rasterization(means, quats, scales, opacities, coeffs[:, :4], vm, ks, W, H,
                             sh_degree=1, tile_size=TILE)[0]  # fmt: skip
        assert torch.allclose(out4, out)
        per_cam = coeffs[None, :, :4].expand(2, -1, -1, -1)
        out_c = rasterization(means, quats, scales, opacities, per_cam, vm, ks, W, H,
                              sh_degree=1, tile_size=TILE)[0]  # fmt: skip
        assert torch.allclose(out_c, out)


def test_per_camera_colours_and_other_channel_counts():
    means, quats, scales, opacities, _ = _scene(3)
    colors = torch.rand(2, len(means), 5, generator=torch.Generator().manual_seed(1))
    vm, ks = _cameras()
    out, alphas, _ = rasterization(means, quats, scales, opacities, colors, vm, ks, W, H,
                                   tile_size=TILE)  # fmt: skip
    assert out.shape == (2, H, W, 5)
    expect, expect_alpha, unsure = oracle(means, quats, scales, opacities, colors, vm, ks, W, H)
    _compare(out, alphas, expect, expect_alpha, unsure, False)


@pytest.mark.parametrize("render_mode", ["RGB", "RGB+D", "D"])
def test_backgrounds(render_mode):
    means, quats, scales, opacities, colors = _scene(4)
    vm, ks = _cameras()
    bgs = torch.tensor([[0.2, 0.5, 0.9], [1.0, 0.0, 0.3]])
    out, alphas, _ = rasterization(means, quats, scales, opacities, colors, vm, ks, W, H,
                                   tile_size=TILE, backgrounds=bgs, render_mode=render_mode)
    expect, expect_alpha, unsure = oracle(means, quats, scales, opacities, colors, vm, ks, W, H,
                                  backgrounds=bgs, render_mode=render_mode)  # fmt: skip
    _compare(out, alphas, expect, expect_alpha, unsure, render_mode != "RGB")
    if render_mode == "RGB":  # an empty pixel shows the background
        empty = alphas[..., 0] < 1e-6
        assert empty.any()
        assert torch.allclose(out[0][empty[0]], bgs[0].expand(int(empty[0].sum()), 3))


@pytest.mark.parametrize("camera_model", ["pinhole", "ortho"])
def test_antialiased_mode(camera_model):
    means, quats, scales, opacities, colors = _scene(6)
    scales[5:] *= 0.1  # small splats, where the compensation matters
    vm, ks = _cameras(camera_model)
    out, alphas, meta = rasterization(
        means, quats, scales, opacities, colors, vm, ks, W, H, tile_size=TILE,
        rasterize_mode="antialiased", camera_model=camera_model,
    )  # fmt: skip
    expect, expect_alpha, unsure = oracle(means, quats, scales, opacities, colors, vm, ks, W, H,
                                  rasterize_mode="antialiased", camera_model=camera_model)
    _compare(out, alphas, expect, expect_alpha, unsure, False)
    classic = rasterization(means, quats, scales, opacities, colors, vm, ks, W, H,
                            tile_size=TILE, camera_model=camera_model)  # fmt: skip
    assert (meta["opacities"] <= opacities + 1e-6).all()
    assert not torch.allclose(classic[1], alphas)


@pytest.mark.parametrize("tile_size", [1, 5, 16, 64])
def test_every_tile_size_matches_oracle(tile_size):
    """With 1-pixel tiles the radii alone bound each splat: nothing visible may be cut."""
    means, quats, scales, opacities, colors = _scene(7)
    vm, ks = _cameras()
    out, alphas, meta = rasterization(means, quats, scales, opacities, colors, vm, ks, W, H,
                                      tile_size=tile_size)  # fmt: skip
    expect, expect_alpha, unsure = oracle(means, quats, scales, opacities, colors, vm, ks, W, H)
    _compare(out, alphas, expect, expect_alpha, unsure, False)
    assert meta["isect_offsets"].shape == (2, math.ceil(H / tile_size), math.ceil(W / tile_size))


def test_meta_and_packed_flag():
    means, quats, scales, opacities, colors = _scene(8)
    vm, ks = _cameras()
    out, alphas, meta = rasterization(means, quats, scales, opacities, colors, vm, ks, W, H,
                                      tile_size=TILE)  # fmt: skip
    n = len(means)
    assert meta["radii"].shape == (2, n, 2) and meta["radii"].dtype == torch.int32
    assert (meta["radii"][:, :2] == 0).all()  # behind the cameras, off the images
    assert meta["means2d"].shape == (2, n, 2) and meta["depths"].shape == (2, n)
    assert meta["conics"].shape == (2, n, 3) and meta["opacities"].shape == (2, n)
    assert meta["tile_width"] == 3 and meta["tile_height"] == 3
    assert meta["isect_offsets"].shape == (2, 3, 3)
    assert int(meta["tiles_per_gauss"].sum()) == meta["flatten_ids"].numel()
    assert meta["width"] == W and meta["height"] == H and meta["tile_size"] == TILE
    assert meta["n_cameras"] == 2 and meta["gaussian_ids"] is None
    packed = rasterization(means, quats, scales, opacities, colors, vm, ks, W, H,
                           tile_size=TILE, packed=True)  # fmt: skip
    assert torch.equal(packed[0], out) and torch.equal(packed[1], alphas)


def test_means2d_gradient_for_densification():
    means, quats, scales, opacities, colors = _scene(9)
    means.requires_grad_(True)
    vm, ks = _cameras()
    out, _, meta = rasterization(means, quats, scales, opacities, colors, vm, ks, W, H,
                                 tile_size=TILE)  # fmt: skip
    meta["means2d"].retain_grad()
    (out * torch.linspace(0, 1, W)[:, None]).sum().backward()
    grad = meta["means2d"].grad
    assert grad.shape == (2, len(means), 2)
    visible = (meta["radii"] > 0).all(-1)
    assert (grad[~visible] == 0).all()
    assert (grad[visible].abs().sum(-1) > 0).any()
    assert means.grad is not None and torch.isfinite(means.grad).all()


@pytest.mark.parametrize("rasterize_mode", ["classic", "antialiased"])
@pytest.mark.parametrize("camera_model", ["pinhole", "ortho"])
def test_gradients_finite_on_degenerate_input(rasterize_mode, camera_model):
    vm, ks = _cameras(camera_model)
    centre1 = -(vm[1, :3, :3].T @ vm[1, :3, 3])
    means = torch.tensor([
        [0.0, 0.0, 0.0],  # ordinary
        [0.1, 0.1, 0.0],  # tiny
        [0.0, -0.1, 0.2],  # huge
        [0.0, 0.0, -6.0],  # behind camera 0
        [0.0, 0.0, -4.0],  # at camera 0's centre
        centre1.tolist(),  # at camera 1's centre
        [0.3, 0.2, 0.1],  # flat: one zero scale
        [200.0, 0.0, 0.0],  # far off-screen
    ])  # fmt: skip
    n = len(means)
    quats = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    quats[2] *= 1e-6  # short but non-zero quaternion
    scales = torch.full((n, 3), 0.2)
    scales[1] = 1e-8
    scales[2] = 1e4
    scales[6, 2] = 0.0
    opacities = torch.tensor([0.5, 1.0, 0.3, 1.0, 1.0, 1.0, 0.0, 1.0])
    coeffs = torch.randn(n, 16, 3, generator=torch.Generator().manual_seed(1))
    leaves = [t.clone().requires_grad_(True) for t in (means, quats, scales, opacities, coeffs,
                                                        vm)]  # fmt: skip
    out, alphas, _ = rasterization(*leaves[:5], leaves[5], ks, W, H, sh_degree=3,
                                   tile_size=TILE, rasterize_mode=rasterize_mode,
                                   camera_model=camera_model, render_mode="RGB+ED")  # fmt: skip
    assert torch.isfinite(out).all() and torch.isfinite(alphas).all()
    (out.square().sum() + alphas.sum()).backward()
    names = ("means", "quats", "scales", "opacities", "colors", "viewmats")
    for name, t in zip(names, leaves, strict=True):
        assert t.grad is not None and torch.isfinite(t.grad).all(), name
    assert leaves[0].grad[0].abs().sum() > 0  # the ordinary one does get a gradient


def _valid_args():
    means, quats, scales, opacities, colors = _scene(10, n=4)
    vm, ks = _cameras()
    return dict(means=means, quats=quats, scales=scales, opacities=opacities, colors=colors,
                viewmats=vm, Ks=ks, width=W, height=H)  # fmt: skip


def _bad(name, fn):
    args = _valid_args()
    args[name] = fn(args[name])
    return args


def _nan_at(t, idx=0):
    t = t.clone()
    t.view(-1)[idx] = float("nan")
    return t


def _zero_row(t):
    t = t.clone()
    t[1] = 0
    return t


BAD_INPUTS = [
    ("means", lambda t: t[:, :2], "means"),
    ("means", _nan_at, "means"),
    ("means", lambda t: t.index_fill(0, torch.tensor([2]), float("inf")), "means"),
    ("quats", lambda t: t[:3], "quats"),
    ("quats", _zero_row, "quats"),
    ("quats", _nan_at, "quats"),
    ("scales", lambda t: -t, "scales"),
    ("scales", lambda t: t[:, :2], "scales"),
    ("opacities", lambda t: t + 1.0, "opacities"),
    ("opacities", lambda t: t - 1.0, "opacities"),
    ("opacities", lambda t: t[:, None], "opacities"),
    ("colors", lambda t: t[:3], "colors"),
    ("colors", lambda t: t[None, None], "colors"),
    ("colors", _nan_at, "colors"),
    ("viewmats", lambda t: t[:, :3], "viewmats"),
    ("viewmats", _nan_at, "viewmats"),
    ("Ks", lambda t: t[:1], "Ks"),
    ("Ks", lambda t: t.double(), "Ks"),
    ("Ks", lambda t: t * torch.tensor([0.0, 1.0, 1.0])[:, None], "Ks.*focal"),  # fx = 0
    ("Ks", lambda t: t * torch.tensor([1.0, -1.0, 1.0])[:, None], "Ks.*focal"),  # fy < 0
    ("scales", lambda t: t.half(), "scales"),
    ("opacities", lambda t: (t > 0.5).long(), "opacities"),
    ("colors", lambda t: "red", "colors"),
    ("width", lambda v: 0, "width"),
    ("width", lambda v: 24.0, "width"),
    ("height", lambda v: -3, "height"),
    ("height", lambda v: True, "height"),
]


@pytest.mark.parametrize("name,fn,match", BAD_INPUTS)
def test_bad_tensors_raise_naming_the_argument(name, fn, match):
    with pytest.raises(ValueError, match=match):
        rasterization(**_bad(name, fn))


@pytest.mark.parametrize(
    "options,match",
    [
        ({"render_mode": "RGBD"}, "render_mode"),
        ({"rasterize_mode": "mip"}, "rasterize_mode"),
        ({"camera_model": "fisheye"}, "camera_model"),
        ({"tile_size": 0}, "tile_size"),
        ({"tile_size": 8.0}, "tile_size"),
        ({"backend": "cuda"}, "backend"),
        ({"backgrounds": torch.zeros(2, 4)}, "backgrounds"),
        ({"backgrounds": torch.zeros(3)}, "backgrounds"),
        ({"backgrounds": torch.zeros(2, 3, dtype=torch.float64)}, "backgrounds"),
        ({"backgrounds": torch.full((2, 3), float("nan"))}, "backgrounds"),
        ({"packed": 1}, "packed"),
        ({"sh_degree": 4}, "sh_degree"),
        ({"sh_degree": 1}, "colors"),  # (N, 3) plain colours are not SH coefficients
        ({"near_plane": float("nan")}, "near_plane"),
        ({"near_plane": -0.1}, "near_plane"),
        ({"near_plane": "0.1"}, "near_plane"),
        ({"far_plane": float("nan")}, "far_plane"),
        ({"far_plane": float("-inf")}, "far_plane"),
        ({"near_plane": 5.0, "far_plane": 1.0}, "far_plane .* greater than near_plane"),
        ({"near_plane": 1.0, "far_plane": 1.0}, "far_plane"),
        ({"radius_clip": -1.0}, "radius_clip"),
        ({"radius_clip": float("inf")}, "radius_clip"),
        ({"eps2d": -0.3}, "eps2d"),
        ({"eps2d": float("nan")}, "eps2d"),
    ],
)
def test_bad_options_raise_naming_the_argument(options, match):
    with pytest.raises(ValueError, match=match):
        rasterization(**{**_valid_args(), **options})


def test_an_infinite_far_plane_is_allowed():
    """far_plane may be inf (nothing culled behind); the image equals a huge far plane's."""
    far = rasterization(**{**_valid_args(), "far_plane": float("inf")})[0]
    big = rasterization(**{**_valid_args(), "far_plane": 1e30})[0]
    assert torch.equal(far, big)


@pytest.mark.parametrize("k,sh_degree", [(4, 2), (5, 1), (9, 3), (25, 3), (15, 0)])
def test_sh_coefficient_count_must_match_the_degree(k, sh_degree):
    args = _valid_args()
    args["colors"] = torch.zeros(4, k, 3)
    with pytest.raises(ValueError, match="colors"):
        rasterization(**args, sh_degree=sh_degree)


def test_float64_and_numpy_sizes_are_accepted():
    args = _valid_args()
    for k in ("means", "quats", "scales", "opacities", "colors", "viewmats", "Ks"):
        args[k] = args[k].double()
    args["width"], args["height"] = np.int64(W), np.int32(H)
    out, alphas, _ = rasterization(**args)
    assert out.dtype == torch.float64 and out.shape == (2, H, W, 3)
    ref = rasterization(**_valid_args())[0]
    assert torch.allclose(out.float(), ref, atol=1e-5)


def test_no_gaussians_render_the_background():
    vm, ks = _cameras()
    e = torch.zeros(0, 3)
    bgs = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    out, alphas, meta = rasterization(e, torch.zeros(0, 4), e, torch.zeros(0), e, vm, ks, W, H,
                                      backgrounds=bgs)  # fmt: skip
    assert (alphas == 0).all()
    assert torch.allclose(out, bgs[:, None, None, :].expand(2, H, W, 3))
    assert meta["flatten_ids"].numel() == 0


@pytest.mark.parametrize("camera_model", ["pinhole", "ortho"])
def test_gradcheck_through_the_reference_compositor(camera_model):
    """float64 gradcheck of the glue: SH towards each camera, compensation, depth, ED."""
    g = torch.Generator().manual_seed(3)
    n = 3
    means = (torch.rand(n, 3, generator=g, dtype=torch.float64) - 0.5) * 0.6
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    scales = torch.rand(n, 3, generator=g, dtype=torch.float64) * 0.2 + 0.15
    opacities = torch.rand(n, generator=g, dtype=torch.float64) * 0.5 + 0.3
    coeffs = torch.randn(n, 4, 3, generator=g, dtype=torch.float64) * 0.3
    vm, ks = (t.double() for t in _cameras(camera_model))
    ks[:, :2] *= 0.4  # a small image: 10 x 8 pixels
    bgs = torch.rand(2, 3, generator=g, dtype=torch.float64)
    inputs = [t.clone().requires_grad_(True) for t in (means, quats, scales, opacities,
                                                       coeffs, vm, bgs)]  # fmt: skip

    def render(means, quats, scales, opacities, coeffs, vm, bgs):
        out, alphas, _ = rasterization(
            means, quats, scales, opacities, coeffs, vm, ks, 10, 8, sh_degree=1, tile_size=16,
            backgrounds=bgs, render_mode="RGB+ED", rasterize_mode="antialiased",
            camera_model=camera_model, backend="reference",
        )  # fmt: skip
        return out, alphas

    assert torch.autograd.gradcheck(render, inputs, atol=1e-6, rtol=1e-4, fast_mode=True)
