"""The llvmpipe (OpenGL software rasterizer) baseline of ``diffrend bench``.

A tiny scene with analytic answers: a tilted square covering the left half of the image and
a fronto-parallel triangle in front of part of it. Skipped when moderngl or headless EGL
(Mesa's llvmpipe) is unavailable.
"""

from __future__ import annotations

import numpy as np
import pytest

from diffrend.bench.llvmpipe import LlvmpipeRasterizer, time_llvmpipe

# View-space geometry (camera looks down +Z; +X is image-left, +Y up). The square lies in
# the tilted plane Z = 2 + 0.25 X with NDC corners x in {0, 1.5}, y in {-1.5, 1.5}: it covers
# the left half of a square image (its x = 0 edge falls between two pixel columns).


def _square_plane_depth(x: np.ndarray) -> np.ndarray:
    """Depth along the pixel ray (x, y, 1) * t hitting the plane Z = 2 + 0.25 X."""
    return 2.0 / (1.0 - 0.25 * x)


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(V, 3) view-space vertices, (V, 3) diffrend NDC vertices, (F, 3) faces."""
    corners = [(0.0, -1.5), (1.5, -1.5), (1.5, 1.5), (0.0, 1.5)]  # NDC x, y of the square
    square = []
    for x, y in corners:
        z = _square_plane_depth(np.array(x))
        square.append((x * z, y * z, z))
    # Triangle at depth 1, in front of the square's lower-left part and of the background.
    tri = [(-0.4, -0.9, 1.0), (0.9, -0.9, 1.0), (0.25, 0.3, 1.0)]
    view = np.array(square + tri, dtype=np.float64)
    ndc = np.stack([view[:, 0] / view[:, 2], view[:, 1] / view[:, 2], view[:, 2]], axis=1)
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6]], dtype=np.int64)
    return view, ndc.astype(np.float32), faces


def _pixel_centres(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) NDC x and y of the pixel centres (PyTorch3D: +X left, +Y up, row 0 on top)."""
    s = min(height, width)
    x = (width - 2.0 * np.arange(width) - 1.0) / s
    y = (height - 2.0 * np.arange(height) - 1.0) / s
    return np.broadcast_to(x, (height, width)), np.broadcast_to(y[:, None], (height, width))


def _expected(ndc: np.ndarray, faces: np.ndarray, height: int, width: int):
    """Reference face ids (H, W) and a mask of pixels whose centre is > 1e-3 px from any edge."""
    px, py = _pixel_centres(height, width)
    s = min(height, width)
    best = np.full((height, width), np.inf)
    p2f = np.full((height, width), -1)
    clear = np.ones((height, width), bool)
    for fid, face in enumerate(faces):
        tri = ndc[face].astype(np.float64)
        inside = np.ones((height, width), bool)
        area = (tri[1, 0] - tri[0, 0]) * (tri[2, 1] - tri[0, 1]) - (tri[1, 1] - tri[0, 1]) * (
            tri[2, 0] - tri[0, 0]
        )
        for i in range(3):
            a, b = tri[i], tri[(i + 1) % 3]
            edge = ((b[0] - a[0]) * (py - a[1]) - (b[1] - a[1]) * (px - a[0])) * np.sign(area)
            dist_px = np.abs(edge) / np.hypot(b[0] - a[0], b[1] - a[1]) * s / 2
            inside &= edge > 0
            clear &= dist_px > 1e-3
        depth = tri[0, 2] if fid == 2 else _square_plane_depth(px)
        take = inside & (depth < best)
        best[take] = np.broadcast_to(depth, take.shape)[take]
        p2f[take] = fid
    return p2f, clear


@pytest.fixture(scope="module")
def probe() -> None:
    """Skip the module's tests when no headless EGL context can be made."""
    pytest.importorskip("moderngl", reason="moderngl not installed (pip install moderngl)")
    _, ndc, faces = _scene()
    try:
        LlvmpipeRasterizer(ndc, faces, 4, 4).release()
    except RuntimeError as e:
        pytest.skip(f"no headless EGL/llvmpipe context: {e}")


@pytest.mark.parametrize("height, width", [(64, 64), (48, 80), (80, 48)])
def test_analytic_scene(probe: None, height: int, width: int) -> None:
    view, ndc, faces = _scene()
    with LlvmpipeRasterizer(ndc, faces, height, width) as gl:
        out = gl.render()
    p2f, zbuf, bary = out["pix_to_face"], out["zbuf"], out["bary"]
    assert p2f.shape == (height, width) and p2f.dtype == np.int64
    assert zbuf.shape == (height, width) and zbuf.dtype == np.float32
    assert bary.shape == (height, width, 3) and bary.dtype == np.float32

    # Face ids: exact wherever no pixel centre sits on an edge (fill rules may differ there).
    ref, clear = _expected(ndc, faces, height, width)
    np.testing.assert_array_equal(p2f[clear], ref[clear])
    assert set(np.unique(p2f)) == {-1, 0, 1, 2}
    if width == height:
        # The square covers exactly the left half, except where the triangle is in front.
        left = np.zeros((height, width), bool)
        left[:, : width // 2] = True
        np.testing.assert_array_equal((p2f >= 0) & (p2f != 2), left & (ref != 2))

    hit = p2f >= 0
    assert np.all(zbuf[~hit] == -1) and np.all(bary[~hit] == -1)

    # Depth: exact at pixel centres (plane ray intersection / constant depth 1).
    px, py = _pixel_centres(height, width)
    z_ref = np.where(p2f == 2, 1.0, _square_plane_depth(px))
    np.testing.assert_allclose(zbuf[hit], z_ref[hit], rtol=1e-5, atol=1e-6)

    # Barycentrics: sum to 1 and interpolate the view-space corners to the pixel ray.
    np.testing.assert_allclose(bary[hit].sum(axis=1), 1.0, atol=1e-5)
    assert bary[hit].min() > -1e-4
    point = np.einsum("nk,nkc->nc", bary[hit].astype(np.float64), view[faces[p2f[hit]]])
    np.testing.assert_allclose(point[:, 0] / point[:, 2], px[hit], atol=1e-5)
    np.testing.assert_allclose(point[:, 1] / point[:, 2], py[hit], atol=1e-5)
    np.testing.assert_allclose(point[:, 2], zbuf[hit], rtol=1e-5)


def test_repeated_frames_and_timing(probe: None) -> None:
    _, ndc, faces = _scene()
    with LlvmpipeRasterizer(ndc, faces, 32, 32) as gl:
        first = gl.render()
        assert gl.render(readback=False) == {}
        second = gl.render()
    for key in first:  # each frame starts from a clean slate and returns fresh arrays
        np.testing.assert_array_equal(first[key], second[key])
        assert first[key] is not second[key]
    times = time_llvmpipe(ndc, faces, 32, 32, repeats=3, warmup=1)
    assert len(times) == 3 and all(t > 0 for t in times)


def test_bad_inputs(probe: None) -> None:
    _, ndc, faces = _scene()
    with pytest.raises(ValueError):
        LlvmpipeRasterizer(ndc[:, :2], faces, 8, 8)
    with pytest.raises(ValueError):
        LlvmpipeRasterizer(ndc, faces + 10, 8, 8)
