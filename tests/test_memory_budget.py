"""The up-front memory estimate of a frame's fragments and its budget (diffrend.raster.memory)."""

from __future__ import annotations

import pytest
import torch

import diffrend
from diffrend.raster import rasterize_faces, rasterize_points_packed
from diffrend.raster.memory import (
    ENV_VAR,
    FrameMemoryError,
    fragment_bytes_per_slot,
    memory_budget,
    parse_bytes,
)


def _faces(dtype: torch.dtype, n: int = 40) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    fv = (torch.rand(n, 3, 3, generator=g) * 2 - 1).to(dtype)
    fv[..., 2] = fv[..., 2].abs() + 0.5
    return fv


def _nbytes(*ts: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in ts)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mesh_estimate_matches_allocated(dtype):
    """Forward: the estimate equals the bytes of the four fragment tensors exactly (factor 1);
    with gradients it adds exactly the bytes of the output gradients the backward receives."""
    N, H, W, K = 2, 12, 10, 3
    fv = _faces(dtype).requires_grad_(True)
    mesh = torch.arange(40) % N
    grads = []
    frags = rasterize_faces(fv, mesh, N, image_size=(H, W), faces_per_pixel=K, blur_radius=1e-3)
    for t in (frags.zbuf, frags.bary_coords, frags.dists):
        t.register_hook(grads.append)
    out = _nbytes(frags.pix_to_face, frags.zbuf, frags.bary_coords, frags.dists)
    assert out == N * H * W * K * fragment_bytes_per_slot(dtype)
    (frags.zbuf.sum() + frags.bary_coords.sum() + frags.dists.sum()).backward()
    assert len(grads) == 3
    with_grad = N * H * W * K * fragment_bytes_per_slot(dtype, backward=True)
    assert with_grad == out + _nbytes(*grads)
    assert fragment_bytes_per_slot(torch.float32) == 28
    assert fragment_bytes_per_slot(torch.float64) == 48


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_points_estimate_matches_allocated(dtype):
    """Points: the int64 kernel idx + its int32 copy + zbuf + dists: what is returned plus the
    int64 index (a transient the estimate counts), so within a factor 2 of the returned bytes;
    the backward adds exactly the zbuf and dists gradients."""
    N, H, W, K = 1, 9, 11, 4
    pts = (torch.rand(50, 3) * 2 - 1).to(dtype)
    pts[:, 2] = pts[:, 2].abs() + 0.5
    pts.requires_grad_(True)
    pf = rasterize_points_packed(pts, torch.zeros(50, dtype=torch.int64), N, image_size=(H, W),
                                 radius=0.2, points_per_pixel=K)
    returned = _nbytes(pf.idx, pf.zbuf, pf.dists)
    est = N * H * W * K * fragment_bytes_per_slot(dtype, "points")
    assert est == returned + N * H * W * K * 8  # + the int64 index the kernel fills
    assert returned < est <= 2 * returned
    est_bw = N * H * W * K * fragment_bytes_per_slot(dtype, "points", backward=True)
    assert est_bw - est == _nbytes(pf.zbuf, pf.dists)


def test_tiny_budget_raises_before_allocating(monkeypatch):
    """Over budget: FrameMemoryError (a MemoryError) naming the need, the budget and the
    knobs, raised before the rasterizer allocates anything."""
    monkeypatch.setenv(ENV_VAR, "10KB")
    from diffrend.raster.mesh import numba as mesh_numba

    def no_kernel(*args):
        raise AssertionError("the kernel ran although the frame is over budget")

    monkeypatch.setattr(mesh_numba, "rasterize_forward", no_kernel)
    with pytest.raises(FrameMemoryError) as err:
        rasterize_faces(_faces(torch.float32), torch.zeros(40, dtype=torch.int64), 1,
                        image_size=64, faces_per_pixel=5, backend="numba")
    msg = str(err.value)
    need = 64 * 64 * 5 * 28
    assert isinstance(err.value, MemoryError)
    assert f"{need / 2**10:.2f} KiB" in msg and "9.77 KiB" in msg  # need and the budget
    for knob in ("faces_per_pixel", "image_size", "batch size", ENV_VAR, "64x64"):
        assert knob in msg, knob
    with pytest.raises(FrameMemoryError, match="points_per_pixel"):
        rasterize_points_packed(torch.rand(10, 3), torch.zeros(10, dtype=torch.int64), 1,
                                image_size=64, radius=0.1, points_per_pixel=5)
    monkeypatch.setenv(ENV_VAR, "off")  # disables the check
    rasterize_points_packed(torch.rand(10, 3), torch.zeros(10, dtype=torch.int64), 1,
                            image_size=64, radius=0.1, points_per_pixel=5)


def test_issue_frames_are_refused_under_a_small_budget(monkeypatch):
    """The issue's frame (2048^2, K=50) under a 4 GB budget: refused up front, cheaply."""
    monkeypatch.setenv(ENV_VAR, "4GB")
    fv = _faces(torch.float32).requires_grad_(True)
    with pytest.raises(FrameMemoryError, match="2048x2048 with faces_per_pixel=50"):
        rasterize_faces(fv, torch.zeros(40, dtype=torch.int64), 1, image_size=2048,
                        faces_per_pixel=50)


def test_parse_bytes():
    assert parse_bytes("8GB") == 8 * 10**9
    assert parse_bytes(" 512 MiB ") == 512 * 2**20
    assert parse_bytes("1.5e9") == 1_500_000_000
    assert parse_bytes("OFF") is None
    for bad in ("", "eight", "8 parsecs", "-1GB"):
        with pytest.raises(ValueError, match=ENV_VAR):
            parse_bytes(bad)


def test_default_budget_is_sane(monkeypatch):
    """The default (no env var) is 75% of this machine's memory (over 1 GiB anywhere the tests
    run), and an ordinary frame renders under it."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    budget, source = memory_budget(torch.device("cpu"))
    assert budget is not None and budget > 2**30, (budget, source)
    assert "75%" in source
    frags = rasterize_faces(_faces(torch.float64), torch.zeros(40, dtype=torch.int64), 1,
                            image_size=256, faces_per_pixel=8)
    assert frags.pix_to_face.shape == (1, 256, 256, 8)


def test_renderer_groups_use_dtype_bytes():
    """MeshRenderer's per-group fragment budget counts 48 bytes a slot in float64, 28 in
    float32 (it counted 28 for both)."""
    rs = diffrend.RasterizationSettings(image_size=64, faces_per_pixel=4)
    r = diffrend.MeshRenderer(diffrend.MeshRasterizer(raster_settings=rs),
                              diffrend.SoftSilhouetteShader(), max_fragment_bytes=64 * 64 * 4 * 96)
    assert r._views_per_group(None, torch.float32) == 96 // 28
    assert r._views_per_group(None, torch.float64) == 96 // 48
