"""Every `raster_*` golden case of PyTorch3D, rebuilt with diffrend and matched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import camera_from_golden, golden_cases, load_golden

from diffrend.raster import MeshRasterizer, RasterizationSettings, meshes_to_ndc
from diffrend.raster.mesh import resolve_settings
from diffrend.raster.mesh.reference import fragment_values
from diffrend.raster.tiles import pixel_centers_torch
from diffrend.structures import Meshes

CASES = golden_cases("raster_")


def test_raster_goldens_present():
    assert len(CASES) >= 12, "the raster_* goldens under tests/golden are missing"


def _ill_conditioned(fv, p2f, H, W, persp):
    """(N, H, W, K) bool: entries whose barycentrics (before clipping, whose signs decide
    the clipped ones) move by more than 1e-4 of their largest when the face's vertices are
    jittered by 1e-6 relative (a few float32 ulps of projection noise)."""
    ys, xs = pixel_centers_torch(H, W, torch.float64, "cpu")
    idx = torch.nonzero(p2f >= 0, as_tuple=True)
    v = fv[p2f[idx]]
    px, py = xs[idx[2]], ys[idx[1]]
    base = fragment_values(px, py, v, persp, False)[1]
    g = torch.Generator().manual_seed(0)
    sens = torch.zeros(len(v), dtype=torch.float64)
    for _ in range(3):
        jitter = torch.randn(v.shape, generator=g, dtype=v.dtype) * 1e-6 * v.abs()
        moved = fragment_values(px, py, v + jitter, persp, False)[1]
        sens = torch.maximum(sens, (moved - base).abs().amax(-1) / base.abs().amax(-1))
    out = torch.zeros(p2f.shape, dtype=torch.bool)
    out[idx] = sens > 1e-4
    return out


def _settings(g: dict, backend: str) -> RasterizationSettings:
    s = dict(g["settings"])
    if isinstance(s.get("image_size"), list):
        s["image_size"] = tuple(s["image_size"])
    return RasterizationSettings(**s, backend=backend)


@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("name", CASES)
def test_raster_golden(name, backend):
    g = load_golden(name)
    # The reference runs in float64 here: it is the oracle, and the numba kernel computes
    # in float64 internally too (float32 rounding would decide depth ties differently).
    dtype = torch.float64 if backend == "reference" else torch.float32
    verts = torch.from_numpy(g["verts"]).to(dtype).requires_grad_()
    meshes = Meshes(verts=[verts], faces=[torch.from_numpy(g["faces"])])
    rasterizer = MeshRasterizer(camera_from_golden(g), _settings(g, backend))
    fr = rasterizer(meshes)

    p2f = fr.pix_to_face.numpy()
    exp_p2f = g["pix_to_face"]
    assert p2f.shape == exp_p2f.shape
    same_pix = (p2f == exp_p2f).all(-1)
    # PyTorch3D's README: float32 renderers may differ at pixel centres exactly on an edge.
    assert same_pix.mean() >= 0.995, f"pix_to_face agrees on {same_pix.mean():.4%} of pixels"
    assert (p2f >= 0).sum() > 0.1 * p2f[..., 0].size  # the scene is really drawn

    # Entries whose barycentrics are ill-conditioned: float32 noise in the projected
    # vertices is amplified >100x (a sliver seen edge-on, or a blurred pixel far outside a
    # thin face where the perspective denominator nearly cancels). Seen there: (0, 0, 1)
    # vs (0.37, 0.63, 0). Both renderers' answers are arbitrary, so those entries, and the
    # vertices of their faces in the gradient check, are left out.
    H, W = p2f.shape[1:3]
    fv = meshes_to_ndc(meshes, rasterizer.cameras).verts_packed().detach().double()
    fv = fv[torch.from_numpy(g["faces"])]
    persp, _, _ = resolve_settings(_settings(g, backend), rasterizer.cameras)
    ill = _ill_conditioned(fv, fr.pix_to_face, H, W, persp)
    assert ill.float().mean() < 0.05  # seen: 1.4% (hard) to 3.3% (blurred) of entries
    ill = ill.numpy()
    same = (p2f == exp_p2f) & same_pix[..., None] & ~ill
    sliver = np.zeros(len(g["faces"]), bool)
    sliver[p2f[ill]] = True

    # Values where the selected faces agree: float32 on both sides. Barycentrics divide by
    # the face's screen area, so on the cow's smallest faces rounding differences grow to
    # ~1e-4 (seen: 8e-5 on a few pixels); depth and distance stay within 2e-5.
    for key, ours, atol in (
        ("zbuf", fr.zbuf, 2e-5),
        ("dists", fr.dists, 2e-5),
        ("bary_coords", fr.bary_coords, 2e-4),
    ):
        np.testing.assert_allclose(ours.detach().numpy()[same], g[key][same], rtol=1e-4,
                                   atol=atol, err_msg=key)

    if "upstream_zbuf" not in g:
        return
    # Gradients of sum(output * upstream) w.r.t. verts, per output. Pixels whose face lists
    # differ contribute to different faces; leave out the vertices of those faces.
    differ = ~same_pix
    faces = g["faces"]
    bad_faces = np.unique(np.concatenate((p2f[differ].ravel(), exp_p2f[differ].ravel())))
    bad_faces = np.union1d(bad_faces[bad_faces >= 0], np.nonzero(sliver)[0])
    keep = np.ones(len(g["verts"]), bool)
    keep[faces[bad_faces].ravel()] = False
    for out_name, tensor in (("zbuf", fr.zbuf), ("bary", fr.bary_coords), ("dists", fr.dists)):
        up = torch.from_numpy(g[f"upstream_{out_name}"]).to(dtype)
        (grad,) = torch.autograd.grad((tensor * up).sum(), verts, retain_graph=True)
        expected = g[f"grad_verts_from_{out_name}"]
        scale = np.abs(expected).max()
        # float32 sums over thousands of pixels in a different order: 1e-4 of the
        # largest gradient, absolute, and 1e-3 relative.
        np.testing.assert_allclose(grad.numpy()[keep], expected[keep], rtol=1e-3,
                                   atol=1e-4 * scale, err_msg=f"grad from {out_name}")
