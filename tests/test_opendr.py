"""OpenDR's silhouette gradient on a square with a known answer."""

from __future__ import annotations

import pytest
import torch

from diffrend.gradients import opendr_silhouette_faces
from diffrend.raster import rasterize_faces


def test_square_edge_gradient_and_translation():
    v = torch.tensor([[-0.43, -0.51, 2.0], [0.37, -0.51, 2.0], [0.37, 0.29, 2.0],
                      [-0.43, 0.29, 2.0]], dtype=torch.float64, requires_grad=True)
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    p2f = rasterize_faces(v.detach()[f], torch.zeros(2, dtype=torch.long), 1,
                          image_size=16).pix_to_face[..., 0]
    sil = opendr_silhouette_faces(v[f], p2f)
    assert torch.equal(sil, (p2f >= 0).double())
    (g,) = torch.autograd.grad(sil.sum(), v)
    # A translation changes no coverage.
    assert abs(float(g[:, 0].sum())) < 1e-9 and abs(float(g[:, 1].sum())) < 1e-9
    # Moving the x = 0.37 edge outwards: the exact answer is its height, 6.4 pixels, times 8
    # pixels per NDC unit = 51.2. OpenDR sees the 6 rows whose centres the square covers and
    # shares each boundary pixel's motion with the triangle's third corner: measured 45.0.
    d_right = float(g[1, 0] + g[2, 0])
    assert d_right == pytest.approx(51.2, rel=0.15)
    assert float(g[2, 1] + g[3, 1]) > 0  # growing upwards adds coverage too


def test_bad_shapes():
    with pytest.raises(ValueError, match="face_verts_ndc"):
        opendr_silhouette_faces(torch.zeros(2, 3), torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="pix_to_face"):
        opendr_silhouette_faces(torch.zeros(2, 3, 3), torch.zeros(4, 4, dtype=torch.long))
