"""diffrend.losses: PyTorch3D golden parity, gradchecks, brute-force references for chamfer,
surface/area properties of sampling, image metrics, degenerate faces and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import load_golden

import diffrend.losses.chamfer as chamfer_mod
import diffrend.losses.mesh_regularizers as reg_mod
from diffrend.losses import (
    chamfer_distance,
    image_l1,
    image_mse,
    mesh_edge_loss,
    mesh_laplacian_smoothing,
    mesh_normal_consistency,
    sample_points_from_meshes,
    silhouette_iou,
    soft_iou_loss,
)
from diffrend.shading.textures import TexturesVertex
from diffrend.structures import Meshes, ico_sphere

F64 = torch.float64

REGULARISERS = {
    "laplacian_uniform": lambda m: mesh_laplacian_smoothing(m, method="uniform"),
    "laplacian_cot": lambda m: mesh_laplacian_smoothing(m, method="cot"),
    "laplacian_cotcurv": lambda m: mesh_laplacian_smoothing(m, method="cotcurv"),
    "edge": lambda m: mesh_edge_loss(m),
    "normal_consistency": lambda m: mesh_normal_consistency(m),
}


def jittered_ico(level: int = 1, scale: float = 0.05, seed: int = 0, dtype=F64):
    ico = ico_sphere(level)
    g = torch.Generator().manual_seed(seed)
    v = ico.verts_packed().to(dtype)
    v = v + scale * torch.randn(v.shape, generator=g, dtype=dtype)
    return v, ico.faces_packed()


def unit_cube(dtype=torch.float32):
    """Axis-aligned cube [-0.5, 0.5]^3, 12 outward-facing triangles."""
    v = torch.tensor([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)],
                     dtype=dtype)
    f = torch.tensor([
        [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
        [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3],
    ])
    return v, f


# --------------------------------------------------------------------------- golden


@pytest.mark.parametrize("case", ["mesh_losses_cow", "mesh_losses_ico3"])
@pytest.mark.parametrize("name", list(REGULARISERS))
def test_regulariser_golden(case, name):
    g = load_golden(case)
    verts = torch.tensor(g["verts"], requires_grad=True)
    loss = REGULARISERS[name](Meshes([verts], [torch.tensor(g["faces"])]))
    loss.backward()
    np.testing.assert_allclose(loss.item(), float(g[name]), rtol=1e-5)
    ref = g[f"grad_{name}"]
    # Relative to the largest gradient entry. The cot/cotcurv gradients are float32-noisy in
    # the reference itself (|L v / rowsum - v| is a cancellation; recomputed in float64 the
    # cow's cot gradient differs from the golden by 1.5e-4 of its max, cotcurv by 2.8e-4).
    # They reach 1e-4 here only because L is kept uncoalesced exactly like PyTorch3D's, so
    # the float32 rounding is the same (measured: cow cot 8.7e-5, the rest <= 2.3e-5).
    err = np.abs(verts.grad.numpy() - ref).max() / np.abs(ref).max()
    assert err <= 1e-4, f"{name}: max grad error {err:.2e} of max |grad|"


@pytest.mark.parametrize("case", ["mesh_losses_cow", "mesh_losses_ico3"])
def test_chamfer_golden(case):
    g = load_golden(case)
    loss, loss_n = chamfer_distance(torch.tensor(g["chamfer_a"]), torch.tensor(g["chamfer_b"]))
    assert loss_n is None
    np.testing.assert_allclose(loss.item(), float(g["chamfer"]), rtol=1e-5)


# --------------------------------------------------------------------------- gradcheck


@pytest.mark.parametrize("name", ["laplacian_uniform", "edge", "normal_consistency"])
def test_regulariser_gradcheck(name):
    v, f = jittered_ico()
    v.requires_grad_(True)
    fn = REGULARISERS[name]
    assert torch.autograd.gradcheck(lambda x: fn(Meshes([x], [f])), (v,))


@pytest.mark.parametrize("method", ["cot", "cotcurv"])
def test_cot_laplacian_gradcheck_with_frozen_weights(method, monkeypatch):
    # PyTorch3D builds the cot weights and areas under no_grad, so the loss's gradient is
    # that of v -> |L(v0) v| with the operator frozen at the current vertices. gradcheck
    # that map: freeze the operator and perturb only the v it multiplies.
    v, f = jittered_ico()
    frozen = reg_mod._laplacian_operator(Meshes([v], [f]), method)
    monkeypatch.setattr(reg_mod, "_laplacian_operator", lambda meshes, m: frozen)
    v.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: mesh_laplacian_smoothing(Meshes([x], [f]), method=method), (v,)
    )


def test_cot_weights_are_constants():
    # The gradient ignores d(weights)/dv: it equals the frozen-operator gradient exactly.
    v, f = jittered_ico()
    v1 = v.clone().requires_grad_(True)
    mesh_laplacian_smoothing(Meshes([v1], [f]), method="cot").backward()
    L, norm_w, _ = reg_mod._laplacian_operator(Meshes([v], [f]), "cot")
    v2 = v.clone().requires_grad_(True)
    r = (torch.sparse.mm(L, v2) * norm_w - v2).norm(dim=1)
    (r.sum() / v.shape[0]).backward()
    torch.testing.assert_close(v1.grad, v2.grad)


def test_chamfer_gradcheck():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 7, 3, generator=g, dtype=F64, requires_grad=True)
    y = torch.randn(2, 5, 3, generator=g, dtype=F64, requires_grad=True)
    xn = torch.randn(2, 7, 3, generator=g, dtype=F64, requires_grad=True)
    yn = torch.randn(2, 5, 3, generator=g, dtype=F64, requires_grad=True)
    w = torch.tensor([0.3, 1.2], dtype=F64, requires_grad=True)
    xl, yl = torch.tensor([7, 4]), torch.tensor([5, 3])

    def fn(x, y, xn, yn, w):
        loss, loss_n = chamfer_distance(x, y, xl, yl, xn, yn, weights=w)
        return loss, loss_n

    assert torch.autograd.gradcheck(fn, (x, y, xn, yn, w))
    assert torch.autograd.gradcheck(
        lambda x, y: chamfer_distance(x, y, norm=1, point_reduction="sum")[0], (x, y)
    )


# --------------------------------------------------------------------------- chamfer


def brute_chamfer_dir(x, y, xl, yl, norm):
    """Per-point nearest distance (list over batch) from x to y, full distance matrix."""
    out = []
    for n in range(x.shape[0]):
        a, b = x[n, : xl[n]], y[n, : yl[n]]
        d = (a[:, None] - b[None]).abs().sum(-1) if norm == 1 else (
            (a[:, None] - b[None]) ** 2).sum(-1)
        out.append(d.min(1))
    return out


def random_clouds(seed=0, N=3, P1=40, P2=30, D=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, P1, D, generator=g, dtype=F64)
    y = torch.randn(N, P2, D, generator=g, dtype=F64)
    xl = torch.randint(1, P1 + 1, (N,), generator=g)
    yl = torch.randint(1, P2 + 1, (N,), generator=g)
    xl[0], yl[1] = P1, P2
    return x, y, xl, yl


@pytest.mark.parametrize("norm", [1, 2])
@pytest.mark.parametrize("point_reduction", ["mean", "sum", "max"])
@pytest.mark.parametrize("batch_reduction", ["mean", "sum", None])
def test_chamfer_matches_brute_force(norm, point_reduction, batch_reduction):
    x, y, xl, yl = random_clouds()
    loss, loss_n = chamfer_distance(x, y, xl, yl, norm=norm, point_reduction=point_reduction,
                                    batch_reduction=batch_reduction)
    assert loss_n is None
    fwd = brute_chamfer_dir(x, y, xl, yl, norm)
    bwd = brute_chamfer_dir(y, x, yl, xl, norm)
    per = []
    for n in range(x.shape[0]):
        a, b = fwd[n].values, bwd[n].values
        if point_reduction == "mean":
            per.append(a.mean() + b.mean())
        elif point_reduction == "sum":
            per.append(a.sum() + b.sum())
        else:
            per.append(torch.maximum(a.max(), b.max()))
    per = torch.stack(per)
    ref = {"mean": per.mean(), "sum": per.sum(), None: per}[batch_reduction]
    torch.testing.assert_close(loss, ref)


def test_chamfer_no_point_reduction_and_single_direction():
    x, y, xl, yl = random_clouds(seed=2)
    (cx, cy), _ = chamfer_distance(x, y, xl, yl, point_reduction=None, batch_reduction=None)
    fwd = brute_chamfer_dir(x, y, xl, yl, 2)
    bwd = brute_chamfer_dir(y, x, yl, xl, 2)
    assert cx.shape == x.shape[:2] and cy.shape == y.shape[:2]
    for n in range(x.shape[0]):
        torch.testing.assert_close(cx[n, : xl[n]], fwd[n].values)
        torch.testing.assert_close(cy[n, : yl[n]], bwd[n].values)
        assert (cx[n, xl[n]:] == 0).all() and (cy[n, yl[n]:] == 0).all()
    single, _ = chamfer_distance(x, y, xl, yl, single_directional=True)
    ref = torch.stack([fwd[n].values.mean() for n in range(x.shape[0])]).mean()
    torch.testing.assert_close(single, ref)


def test_chamfer_normals_term():
    x, y, xl, yl = random_clouds(seed=3)
    g = torch.Generator().manual_seed(4)
    xn = torch.randn(x.shape, generator=g, dtype=F64)
    yn = torch.randn(y.shape, generator=g, dtype=F64)
    for abs_cos in (True, False):
        _, loss_n = chamfer_distance(x, y, xl, yl, xn, yn, abs_cosine=abs_cos)
        per = []
        for n in range(x.shape[0]):
            terms = []
            for a, b, an, bn, la, lb in ((x, y, xn, yn, xl, yl), (y, x, yn, xn, yl, xl)):
                idx = brute_chamfer_dir(a, b, la, lb, 2)[n].indices
                cos = torch.cosine_similarity(an[n, : la[n]], bn[n, idx], dim=1)
                terms.append((1 - (cos.abs() if abs_cos else cos)).mean())
            per.append(sum(terms))
        torch.testing.assert_close(loss_n, torch.stack(per).mean())


def test_chamfer_chunked_equals_unchunked(monkeypatch):
    x, y, xl, yl = random_clouds(seed=5, P1=97, P2=61)
    x.requires_grad_(True)
    full = chamfer_distance(x, y, xl, yl)[0]
    (gfull,) = torch.autograd.grad(full, x)
    # One row of x per chunk: the smallest chunk the implementation allows.
    monkeypatch.setattr(chamfer_mod, "_CHUNK_BYTES", 1)
    idx_small = chamfer_mod._nearest_idx(x, y, yl, 2)
    chunked = chamfer_distance(x, y, xl, yl)[0]
    (gchunk,) = torch.autograd.grad(chunked, x)
    monkeypatch.undo()
    assert torch.equal(idx_small, chamfer_mod._nearest_idx(x, y, yl, 2))
    assert torch.equal(full, chunked) and torch.equal(gfull, gchunk)


def test_chamfer_chunk_memory_bound():
    # The no-grad distance block per chunk respects the byte budget (one row at minimum).
    x = torch.rand(1, 4000, 3)
    y = torch.rand(1, 4000, 3)
    rows = max(1, chamfer_mod._CHUNK_BYTES // (1 * 4000 * 4))
    assert rows * 4000 * 4 <= chamfer_mod._CHUNK_BYTES
    loss, _ = chamfer_distance(x, y)
    assert torch.isfinite(loss)


def test_chamfer_list_input_equals_padded():
    x, y, xl, yl = random_clouds(seed=6)
    xs = [x[n, : xl[n]] for n in range(x.shape[0])]
    ys = [y[n, : yl[n]] for n in range(y.shape[0])]
    torch.testing.assert_close(chamfer_distance(xs, ys)[0], chamfer_distance(x, y, xl, yl)[0])


@pytest.mark.parametrize("point_reduction", ["mean", "sum", "max", None])
@pytest.mark.parametrize("empty", ["x", "y"])
def test_chamfer_cloud_with_no_points_is_like_zero_lengths(empty, point_reduction):
    """Tensors with P = 0 points (it used to fail deep inside, "index 0 is out of bounds")
    give what the same clouds padded to one point with lengths 0 give, normals included."""
    g = torch.Generator().manual_seed(5)
    full = torch.rand(2, 7, 3, generator=g)
    n_full = torch.nn.functional.normalize(torch.rand(2, 7, 3, generator=g), dim=-1)
    none, n_none = torch.zeros(2, 0, 3), torch.zeros(2, 0, 3)
    pad, n_pad = torch.rand(2, 1, 3, generator=g), torch.rand(2, 1, 3, generator=g)
    zero = torch.zeros(2, dtype=torch.int64)
    for batch_reduction in ("mean", None) if point_reduction else (None,):
        kw = dict(point_reduction=point_reduction, batch_reduction=batch_reduction)
        if point_reduction == "max":
            a = chamfer_distance(none, full, **kw) if empty == "x" else \
                chamfer_distance(full, none, **kw)
            b = chamfer_distance(pad, full, x_lengths=zero, **kw) if empty == "x" else \
                chamfer_distance(full, pad, y_lengths=zero, **kw)
        else:
            a = chamfer_distance(none, full, x_normals=n_none, y_normals=n_full, **kw) \
                if empty == "x" else \
                chamfer_distance(full, none, x_normals=n_full, y_normals=n_none, **kw)
            b = chamfer_distance(pad, full, x_lengths=zero, x_normals=n_pad, y_normals=n_full,
                                 **kw) if empty == "x" else \
                chamfer_distance(full, pad, y_lengths=zero, x_normals=n_full, y_normals=n_pad,
                                 **kw)
        for u, v in zip(a, b, strict=True):
            if point_reduction is None:  # per-point tensors: one side has P = 0 vs 1 point
                for ui, vi in zip(u, v, strict=True):
                    assert torch.isfinite(ui).all() and torch.isfinite(vi).all()
                continue
            if u is None:
                assert v is None
                continue
            torch.testing.assert_close(u, v)


def test_chamfer_weights():
    x, y, xl, yl = random_clouds(seed=7)
    w = torch.tensor([0.5, 2.0, 1.0], dtype=F64)
    per = chamfer_distance(x, y, xl, yl, batch_reduction=None)[0]
    loss = chamfer_distance(x, y, xl, yl, weights=w)[0]
    torch.testing.assert_close(loss, (per * w).sum() / w.sum())
    zero = chamfer_distance(x, y, xl, yl, weights=torch.zeros(3, dtype=F64))[0]
    assert zero.item() == 0.0


# --------------------------------------------------------------------------- sampling


def test_sampling_points_on_cube_surface():
    v, f = unit_cube()
    pts, nrm = sample_points_from_meshes(Meshes([v], [f]), 5000, return_normals=True)
    assert pts.shape == (1, 5000, 3) and nrm.shape == (1, 5000, 3)
    linf = pts.abs().amax(-1)
    # On the surface: the largest coordinate is exactly on a face plane, none outside.
    torch.testing.assert_close(linf, torch.full_like(linf, 0.5), atol=1e-6, rtol=0)
    # The face normal is the outward axis of the face the point lies on.
    axis = pts.abs().argmax(-1, keepdim=True)
    torch.testing.assert_close(nrm.gather(-1, axis), torch.sign(pts.gather(-1, axis)))
    torch.testing.assert_close(nrm.norm(dim=-1), torch.ones(1, 5000))


def test_sampling_points_on_ico_sphere():
    ico = ico_sphere(2)
    pts = sample_points_from_meshes(ico, 4000)[0].double()
    v = ico.verts_packed().double()[ico.faces_packed()]
    n = torch.nn.functional.normalize(
        torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=1), dim=1)
    n = n * torch.sign((n * v[:, 0]).sum(1, keepdim=True))  # outward: origin is inside
    # The ico-sphere is convex, so a point is on its surface iff its largest signed distance
    # to the face planes is 0 (negative = inside, positive = outside).
    signed = ((pts[:, None] - v[None, :, 0]) * n[None]).sum(-1)  # (S, F)
    assert signed.max(1).values.abs().max() < 1e-6
    r = pts.norm(dim=-1)
    assert (r <= 1 + 1e-6).all() and (r > 0.9).all()


def test_sampling_is_area_weighted():
    # Two disjoint triangles of area 1.5 and 0.5: 3:1.
    v = torch.tensor([[0, 0, 0], [3, 0, 0], [0, 1, 0], [10, 0, 0], [11, 0, 0], [10, 1, 0]],
                     dtype=torch.float32)
    f = torch.tensor([[0, 1, 2], [3, 4, 5]])
    S = 20000
    pts = sample_points_from_meshes(Meshes([v], [f]), S, generator=torch.Generator().manual_seed(0))
    frac = (pts[0, :, 0] < 5).double().mean().item()
    # Binomial(S, 0.75): sd = sqrt(0.75 * 0.25 / S) ~ 0.0031; allow 5 sd.
    assert abs(frac - 0.75) < 5 * math.sqrt(0.75 * 0.25 / S)


def test_sampling_uniform_within_triangle():
    # Uniform in area: in the triangle (0,0),(1,0),(0,1), P(x + y < 1/2) = 1/4.
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=F64)
    S = 20000
    pts = sample_points_from_meshes(Meshes([v], [torch.tensor([[0, 1, 2]])]), S)
    frac = (pts[0, :, 0] + pts[0, :, 1] < 0.5).double().mean().item()
    assert abs(frac - 0.25) < 5 * math.sqrt(0.25 * 0.75 / S)


def test_sampling_reproducible_with_generator():
    ico = ico_sphere(1)
    a = sample_points_from_meshes(ico, 100, generator=torch.Generator().manual_seed(3))
    b = sample_points_from_meshes(ico, 100, generator=torch.Generator().manual_seed(3))
    c = sample_points_from_meshes(ico, 100, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampling_gradients_flow_to_verts():
    v, f = jittered_ico(dtype=torch.float32)
    v.requires_grad_(True)
    S = 300
    pts, nrm = sample_points_from_meshes(Meshes([v], [f]), S, return_normals=True)
    pts.sum().backward(retain_graph=True)
    # Barycentric weights sum to 1, so d(sum of all samples)/d(verts) sums to S per axis.
    torch.testing.assert_close(v.grad.sum(0), torch.full((3,), float(S)))
    assert torch.isfinite(v.grad).all()
    v.grad = None
    nrm.sum().backward()
    assert torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0


def test_sampling_empty_members_and_textures():
    ico = ico_sphere(1)
    verts = ico.verts_packed()
    empty_v, empty_f = torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64)
    # Linear features: interpolated colour must equal the same affine map of the point.
    tex = TexturesVertex([2 * verts + 1, torch.zeros(0, 3)])
    m = Meshes([verts, empty_v], [ico.faces_packed(), empty_f], textures=tex)
    pts, nrm, col = sample_points_from_meshes(m, 200, return_normals=True,
                                              return_textures=True)
    assert pts.shape == nrm.shape == col.shape == (2, 200, 3)
    assert (pts[1] == 0).all() and (nrm[1] == 0).all() and (col[1] == 0).all()
    torch.testing.assert_close(col[0], 2 * pts[0] + 1)
    with pytest.raises(ValueError, match="textures"):
        sample_points_from_meshes(ico, 10, return_textures=True)
    with pytest.raises(ValueError, match="meshes"):
        sample_points_from_meshes(Meshes([empty_v], [empty_f]), 10)


# --------------------------------------------------------------------------- image losses


def test_silhouette_iou_hand_computed():
    pred = torch.zeros(3, 2, 3)
    target = torch.zeros(3, 2, 3)
    # Image 0: pred 3 pixels, target 2 pixels, overlap 1 -> IoU 1/4.
    pred[0, 0, :3] = 0.9
    target[0, 0, 2] = 1.0
    target[0, 1, 0] = 1.0
    # Image 1: identical masks; 0.5 is not > threshold so the pixel is outside.
    pred[1, 1, 1] = 0.7
    target[1, 1, 1] = 0.6
    pred[1, 0, 0] = 0.5
    # Image 2: both empty -> 1.
    iou = silhouette_iou(pred, target)
    torch.testing.assert_close(iou, torch.tensor([0.25, 1.0, 1.0]))
    torch.testing.assert_close(silhouette_iou(pred[..., None], target[..., None]), iou)
    torch.testing.assert_close(silhouette_iou(pred, target, threshold=0.4)[1],
                               torch.tensor(0.5))


def test_soft_iou_loss():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(2, 4, 5, generator=g, dtype=F64, requires_grad=True)
    t = (torch.rand(2, 4, 5, generator=g, dtype=F64) > 0.5).to(F64)
    ref = torch.stack([1 - (p[n] * t[n]).sum() / (p[n] + t[n] - p[n] * t[n]).sum()
                       for n in range(2)]).mean()
    torch.testing.assert_close(soft_iou_loss(p, t, eps=0.0), ref)
    assert torch.autograd.gradcheck(lambda q: soft_iou_loss(q, t), (p,))
    # Hard equal masks -> 0; empty masks -> 0 (IoU 1, like silhouette_iou).
    assert soft_iou_loss(t, t).abs().item() < 1e-12
    assert soft_iou_loss(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3)).item() == 0.0


def test_image_mse_l1_masks():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 3, 4, 3, generator=g, dtype=F64, requires_grad=True)
    target = torch.rand(2, 3, 4, 3, generator=g, dtype=F64)
    mask = torch.rand(2, 3, 4, generator=g) > 0.5
    d = pred - target
    torch.testing.assert_close(image_mse(pred, target), (d ** 2).mean())
    torch.testing.assert_close(image_l1(pred, target), d.abs().mean())
    torch.testing.assert_close(image_mse(pred, target, mask), (d[mask] ** 2).mean())
    torch.testing.assert_close(image_l1(pred, target, mask), d[mask].abs().mean())
    torch.testing.assert_close(image_l1(pred[..., 0], target[..., 0], mask),
                               d[..., 0][mask].abs().mean())
    none = image_mse(pred, target, torch.zeros(2, 3, 4, dtype=torch.bool))
    none.backward()
    assert none.item() == 0.0 and (pred.grad == 0).all()
    assert torch.autograd.gradcheck(lambda q: image_l1(q, target, mask), (pred.detach()
                                    .clone().requires_grad_(True),))


# --------------------------------------------------------------------------- degenerate


def degenerate_mesh(dtype=F64):
    """A square (2 faces), a zero-area sliver sharing an edge with it (collinear corner) and
    a face with a repeated vertex position (zero-length edge)."""
    v = torch.tensor([
        [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0],
        [0.5, 0.0, 0.0],   # on edge (0, 1): face (1, 0, 4) has zero area
        [1.0, 1.0, 0.0],   # copy of vertex 2: face (2, 5, 3) has a zero-length edge
    ], dtype=dtype)
    f = torch.tensor([[0, 1, 2], [0, 2, 3], [1, 0, 4], [2, 5, 3]])
    return v, f


@pytest.mark.parametrize("name", list(REGULARISERS))
def test_degenerate_faces_finite(name):
    v, f = degenerate_mesh()
    v.requires_grad_(True)
    loss = REGULARISERS[name](Meshes([v], [f]))
    loss.backward()
    assert torch.isfinite(loss).all(), name
    assert torch.isfinite(v.grad).all(), name


def test_degenerate_faces_sampling_finite():
    v, f = degenerate_mesh(torch.float32)
    v.requires_grad_(True)
    pts, nrm = sample_points_from_meshes(Meshes([v], [f]), 500, return_normals=True)
    (pts.sum() + nrm.sum()).backward()
    assert torch.isfinite(pts).all() and torch.isfinite(nrm).all()
    assert torch.isfinite(v.grad).all()
    # Only a zero-area face: falls back to uniform face choice instead of failing.
    flat = sample_points_from_meshes(Meshes([v], [f[2:3]]), 10)
    assert torch.isfinite(flat).all()


@pytest.mark.parametrize("name", list(REGULARISERS))
def test_empty_batch_returns_zero_with_grad(name):
    m = Meshes([torch.zeros(0, 3)], [torch.zeros(0, 3, dtype=torch.int64)])
    loss = REGULARISERS[name](m)
    assert loss.shape == (1,) and loss.item() == 0.0 and loss.requires_grad
    loss.sum().backward()


def test_batch_weighting_is_mean_over_meshes():
    # Each mesh counts equally regardless of its size.
    a, fa = jittered_ico(1, seed=1)
    b, fb = jittered_ico(2, seed=2)
    for name, fn in REGULARISERS.items():
        both = fn(Meshes([a, b], [fa, fb]))
        ref = (fn(Meshes([a], [fa])) + fn(Meshes([b], [fb]))) / 2
        torch.testing.assert_close(both, ref, msg=name)


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_value_error_naming_argument():
    x = torch.rand(1, 5, 3)
    y = torch.rand(1, 4, 3)
    bad = x.clone()
    bad[0, 2, 1] = float("nan")
    with pytest.raises(ValueError, match="x"):
        chamfer_distance(bad, y)
    with pytest.raises(ValueError, match="y"):
        chamfer_distance(x, bad)
    with pytest.raises(ValueError, match="x"):
        chamfer_distance(x[0], y)
    with pytest.raises(ValueError, match="y"):
        chamfer_distance(x, torch.rand(1, 4, 2))
    with pytest.raises(ValueError, match="x_lengths"):
        chamfer_distance(x, y, x_lengths=torch.tensor([6]))
    with pytest.raises(ValueError, match="x_normals"):
        chamfer_distance(x, y, x_normals=torch.rand(1, 4, 3), y_normals=torch.rand(1, 4, 3))
    with pytest.raises(ValueError, match="point_reduction"):
        chamfer_distance(x, y, point_reduction="median")
    with pytest.raises(ValueError, match="batch_reduction"):
        chamfer_distance(x, y, batch_reduction="max")
    with pytest.raises(ValueError, match="batch_reduction"):
        chamfer_distance(x, y, point_reduction=None)
    with pytest.raises(ValueError, match="norm"):
        chamfer_distance(x, y, norm=3)
    with pytest.raises(ValueError, match="weights"):
        chamfer_distance(x, y, weights=torch.tensor([-1.0]))
    # Padding past the lengths is not inspected, so NaN there is fine.
    chamfer_distance(bad, y, x_lengths=torch.tensor([2]))

    ico = ico_sphere(0)
    with pytest.raises(ValueError, match="method"):
        mesh_laplacian_smoothing(ico, method="cotan")
    with pytest.raises(ValueError, match="meshes"):
        mesh_edge_loss(torch.rand(4, 3))
    with pytest.raises(ValueError, match="num_samples"):
        sample_points_from_meshes(ico, 0)

    with pytest.raises(ValueError, match="pred"):
        silhouette_iou(torch.rand(2, 3), torch.rand(2, 3))
    with pytest.raises(ValueError, match="target"):
        silhouette_iou(torch.rand(2, 3, 3), torch.rand(2, 3, 4))
    with pytest.raises(ValueError, match="pred"):
        soft_iou_loss(torch.rand(2, 3, 3, 3), torch.rand(2, 3, 3, 3))
    with pytest.raises(ValueError, match="target"):
        image_mse(torch.rand(2, 3, 3, 3), torch.rand(2, 3, 3, 1))
    with pytest.raises(ValueError, match="mask"):
        image_l1(torch.rand(2, 3, 3, 3), torch.rand(2, 3, 3, 3), torch.ones(2, 3, 4))
