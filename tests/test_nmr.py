"""NMR's silhouette gradient on a square with a known answer."""

from __future__ import annotations

import pytest
import torch

from diffrend.gradients.nmr import nmr_silhouette_faces
from diffrend.raster import rasterize_faces
from diffrend.raster.tiles import pixel_centers_torch

SIZE = 16


def square():
    """Two triangles covering x in [-0.43, 0.37], y in [-0.51, 0.29] (NDC, z = 2)."""
    v = torch.tensor([[-0.43, -0.51, 2.0], [0.37, -0.51, 2.0], [0.37, 0.29, 2.0],
                      [-0.43, 0.29, 2.0]], dtype=torch.float64)
    return v, torch.tensor([[0, 1, 2], [0, 2, 3]])


def run(upstream_at, value):
    """Gradient w.r.t. the vertices of sum(S * G), G = ``value`` at one pixel, 0 elsewhere."""
    verts, faces = square()
    verts.requires_grad_(True)
    p2f = rasterize_faces(verts.detach()[faces], torch.zeros(2, dtype=torch.long), 1,
                          image_size=SIZE).pix_to_face[..., 0]
    sil = nmr_silhouette_faces(verts[faces], p2f, torch.zeros(2, dtype=torch.long), faces)
    g = torch.zeros_like(sil)
    g[0][upstream_at] = value
    (grad,) = torch.autograd.grad((sil * g).sum(), verts)
    return grad, p2f, sil


def test_forward_is_the_hard_silhouette():
    _, p2f, sil = run((8, 8), 0.0)
    assert torch.equal(sil, (p2f >= 0).double())


def test_outside_pixel_gets_one_over_distance():
    ys, xs = pixel_centers_torch(SIZE, SIZE, torch.float64, "cpu")
    # Row 8 is within the square's y range; column 2 lies at x = +0.69 (NDC +x is the
    # image's left), beyond the edge x = 0.37: background, 0.32 NDC from the edge.
    row, col = 8, 2
    _, p2f, _ = run((row, col), 0.0)
    assert p2f[0, row, col] == -1
    d = float(xs[col]) - 0.37
    grad, _, _ = run((row, col), -1.0)  # the loss wants this pixel covered
    # NMR's slope dI/dx = (1 - 0) / d, shared by the edge's two vertices (weights sum to 1).
    assert float(grad[1, 0] + grad[2, 0]) == pytest.approx(-1.0 / d, rel=1e-9)
    assert float(grad[0, 0] + grad[3, 0]) == 0.0  # the far edge does not sweep this pixel
    # Only where the step would lower the loss: a positive upstream gives nothing here.
    grad_pos, _, _ = run((row, col), 1.0)
    assert float(grad_pos.abs().sum()) == 0.0


def test_inside_pixel_uncovering():
    ys, xs = pixel_centers_torch(SIZE, SIZE, torch.float64, "cpu")
    row, col = 8, 5  # inside, near the x = 0.37 edge
    grad, p2f, _ = run((row, col), 1.0)  # the loss wants it uncovered
    assert p2f[0, row, col] >= 0
    d = 0.37 - float(xs[col])
    # Moving the edge inwards (-x) by d uncovers it: slope (0 - 1) / (-d) = 1 / d, with d
    # clamped to half a pixel (0.0625 NDC here; this pixel is 0.0575 from the edge).
    assert float(grad[1, 0] + grad[2, 0]) == pytest.approx(1.0 / max(d, 0.0625), rel=1e-9)
    grad2, p2f2, _ = run((row, col + 1), 1.0)  # one pixel farther in: no clamping
    d2 = 0.37 - float(xs[col + 1])
    assert p2f2[0, row, col + 1] >= 0 and d2 > 0.0625
    assert float(grad2[1, 0] + grad2[2, 0]) == pytest.approx(1.0 / d2, rel=1e-9)
