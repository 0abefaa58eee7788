"""Meshes: views of heterogeneous batches agree, normals/edges vs references, gradients,
copy/index/extend semantics, cache invalidation, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffrend.structures import (
    Meshes,
    join_meshes_as_batch,
    list_to_packed,
    list_to_padded,
    packed_to_list,
    padded_to_list,
    padded_to_packed,
)

F64 = torch.float64


def random_batch(sizes: list[tuple[int, int]], seed: int, dtype=torch.float32):
    """Lists of verts (V_i, 3) and faces (F_i, 3) with random indices (F_i = 0 if V_i = 0)."""
    g = torch.Generator().manual_seed(seed)
    verts, faces = [], []
    for nv, nf in sizes:
        verts.append(torch.randn(nv, 3, generator=g, dtype=dtype))
        nf = nf if nv > 0 else 0
        faces.append(torch.randint(0, max(nv, 1), (nf, 3), generator=g))
    return verts, faces


batches = st.tuples(
    st.lists(st.tuples(st.integers(0, 8), st.integers(0, 10)), min_size=1, max_size=4),
    st.integers(0, 2**31 - 1),
)


def solid_batch(seed: int, dtype=torch.float32):
    """A tetrahedron and a square pyramid (closed, no degenerate faces), randomly jittered."""
    g = torch.Generator().manual_seed(seed)
    tet_v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=dtype)
    tet_f = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    pyr_v = torch.tensor([[-1.0, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0], [0, 0, 1.5]],
                         dtype=dtype)
    pyr_f = torch.tensor([[0, 2, 1], [0, 3, 2], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
    verts = [v + 0.05 * torch.randn(v.shape, generator=g, dtype=dtype) for v in (tet_v, pyr_v)]
    return verts, [tet_f, pyr_f]


class Recorder:
    """A textures stand-in that records the methods Meshes calls on it."""

    def __init__(self, n: int, log: list | None = None) -> None:
        self.n, self.log = n, [] if log is None else log

    def extend(self, k: int) -> Recorder:
        self.log.append(("extend", k))
        return Recorder(self.n * k, self.log)

    def __getitem__(self, index) -> Recorder:
        self.log.append(("getitem", index))
        return Recorder(1 if isinstance(index, int) else -1, self.log)

    def clone(self) -> Recorder:
        self.log.append(("clone",))
        return Recorder(self.n, self.log)

    def detach(self) -> Recorder:
        self.log.append(("detach",))
        return Recorder(self.n, self.log)

    def join_batch(self, others: list) -> Recorder:
        self.log.append(("join", len(others)))
        return Recorder(self.n + sum(o.n for o in others), self.log)


# --------------------------------------------------------------------------- references


def normals_reference(verts: np.ndarray, faces: np.ndarray):
    """Area-weighted vertex normals, unit face normals and areas, with plain loops."""
    vn = np.zeros_like(verts)
    fn = np.zeros((len(faces), 3))
    area = np.zeros(len(faces))
    for k, (a, b, c) in enumerate(faces):
        n = np.cross(verts[b] - verts[a], verts[c] - verts[a])
        for i in (a, b, c):
            vn[i] += n
        area[k] = np.linalg.norm(n) / 2
        fn[k] = n / max(np.linalg.norm(n), 1e-6)
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-6)
    return vn, fn, area


# --------------------------------------------------------------------------- views


@settings(max_examples=60, deadline=None)
@given(batches)
def test_views_agree(case):
    sizes, seed = case
    verts, faces = random_batch(sizes, seed)
    m = Meshes(verts, faces)
    nv = [len(v) for v in verts]
    nf = [len(f) for f in faces]
    n = len(sizes)
    assert len(m) == n
    assert m.num_verts_per_mesh().tolist() == nv
    assert m.num_faces_per_mesh().tolist() == nf
    first_v = np.concatenate([[0], np.cumsum(nv)[:-1]])
    first_f = np.concatenate([[0], np.cumsum(nf)[:-1]])
    assert m.mesh_to_verts_packed_first_idx().tolist() == first_v.tolist()
    assert m.mesh_to_faces_packed_first_idx().tolist() == first_f.tolist()
    assert m.verts_packed_to_mesh_idx().tolist() == np.repeat(np.arange(n), nv).tolist()
    assert m.faces_packed_to_mesh_idx().tolist() == np.repeat(np.arange(n), nf).tolist()

    packed, padded = m.verts_packed(), m.verts_padded()
    assert padded.shape == (n, max(nv), 3)
    torch.testing.assert_close(packed, torch.cat(verts))
    torch.testing.assert_close(padded.reshape(-1, 3)[m.verts_padded_to_packed_idx()], packed)
    fpad, fpacked = m.faces_padded(), m.faces_packed()
    assert fpad.shape == (n, max(nf), 3)
    for i in range(n):
        torch.testing.assert_close(m.verts_list()[i], verts[i])
        torch.testing.assert_close(padded[i, : nv[i]], verts[i])
        assert (padded[i, nv[i] :] == 0).all()
        assert torch.equal(fpad[i, : nf[i]], faces[i])
        assert (fpad[i, nf[i] :] == -1).all()
        assert torch.equal(fpacked[first_f[i] : first_f[i] + nf[i]], faces[i] + int(first_v[i]))
    # packed faces index packed verts exactly like list faces index list verts
    for i in range(n):
        torch.testing.assert_close(
            packed[fpacked[first_f[i] : first_f[i] + nf[i]]], verts[i][faces[i]]
        )

    # the same batch built from padded tensors (every mesh then has max V_i vertices)
    mp = Meshes(padded, fpad)
    assert mp.num_faces_per_mesh().tolist() == nf
    assert mp.num_verts_per_mesh().tolist() == [max(nv)] * n
    for i in range(n):
        assert torch.equal(mp.faces_list()[i], faces[i])
    torch.testing.assert_close(mp.verts_padded(), padded)
    # views of the padded source agree among themselves
    torch.testing.assert_close(mp.verts_packed(), padded.reshape(-1, 3))
    # update_padded keeps the views consistent
    mu = m.update_padded(padded * 2)
    torch.testing.assert_close(mu.verts_packed(), packed * 2)
    for i in range(n):
        torch.testing.assert_close(mu.verts_list()[i], verts[i] * 2)


@settings(max_examples=40, deadline=None)
@given(batches)
def test_normals_match_numpy_reference(case):
    sizes, seed = case
    verts, faces = random_batch(sizes, seed, dtype=F64)
    m = Meshes(verts, faces)
    vn_ref, fn_ref, area_ref = [], [], []
    for v, f in zip(verts, faces, strict=True):
        a, b, c = normals_reference(v.numpy(), f.numpy())
        vn_ref.append(a)
        fn_ref.append(b)
        area_ref.append(c)
    np.testing.assert_allclose(m.verts_normals_packed().numpy(), np.concatenate(vn_ref),
                               atol=1e-8)
    np.testing.assert_allclose(m.faces_normals_packed().numpy(),
                               np.concatenate(fn_ref).reshape(-1, 3), atol=1e-8)
    np.testing.assert_allclose(m.faces_areas_packed().numpy(), np.concatenate(area_ref),
                               atol=1e-8)
    for i, (vl, fl) in enumerate(zip(m.verts_normals_list(), m.faces_normals_list(), strict=True)):
        np.testing.assert_allclose(vl.numpy(), vn_ref[i], atol=1e-8)
        np.testing.assert_allclose(m.verts_normals_padded()[i, : len(vl)].numpy(), vn_ref[i],
                                   atol=1e-8)
        np.testing.assert_allclose(m.faces_normals_padded()[i, : len(fl)].numpy(),
                                   fn_ref[i].reshape(-1, 3), atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(batches)
def test_edges_match_set_reference(case):
    sizes, seed = case
    verts, faces = random_batch(sizes, seed)
    m = Meshes(verts, faces)
    edges = m.edges_packed()
    ref = sorted({tuple(sorted((int(f[i]), int(f[j]))))
                  for f in m.faces_packed() for i, j in ((0, 1), (1, 2), (2, 0))})
    assert [tuple(e) for e in edges.tolist()] == ref
    f2e = m.faces_packed_to_edges_packed()
    fp = m.faces_packed()
    for col, (a, b) in enumerate(((1, 2), (2, 0), (0, 1))):  # edge opposite vertex `col`
        expected = torch.sort(fp[:, [a, b]], dim=1).values
        assert torch.equal(edges[f2e[:, col]], expected)
    owner = m.edges_packed_to_mesh_idx()
    assert torch.equal(owner, m.verts_packed_to_mesh_idx()[edges[:, 0]])
    counts = torch.bincount(owner, minlength=len(m))
    assert torch.equal(m.num_edges_per_mesh(), counts.to(torch.int32))
    assert torch.equal(m.mesh_to_edges_packed_first_idx(), torch.cumsum(counts, 0) - counts)


def test_laplacian_packed_matches_dense_reference():
    verts, faces = solid_batch(3)
    m = Meshes(verts, faces)
    n = sum(len(v) for v in verts)
    adj = torch.zeros(n, n)
    for a, b in m.edges_packed().tolist():
        adj[a, b] = adj[b, a] = 1
    deg = adj.sum(1, keepdim=True)
    ref = torch.where(deg > 0, adj / deg.clamp(min=1), adj) - torch.eye(n)
    torch.testing.assert_close(m.laplacian_packed().to_dense(), ref)


# --------------------------------------------------------------------------- gradients


def test_gradients_flow_from_every_view():
    verts, faces = random_batch([(5, 6), (0, 0), (7, 9)], 1)
    verts = [v.requires_grad_() for v in verts]
    views = [
        lambda m: torch.cat(m.verts_list()).sum(),
        lambda m: m.verts_padded().sum(),
        lambda m: m.verts_packed().sum(),
        lambda m: (m.verts_normals_packed() * torch.arange(3.0)).sum(),
        lambda m: (m.verts_normals_padded() * torch.arange(3.0)).sum(),
        lambda m: sum((n * torch.arange(3.0)).sum() for n in m.verts_normals_list()),
        lambda m: (m.faces_normals_packed() * torch.arange(3.0)).sum(),
        lambda m: m.faces_areas_packed().sum(),
        lambda m: m.get_bounding_boxes().sum(),
    ]
    for view in views:
        for v in verts:
            v.grad = None
        view(Meshes(verts, faces)).backward()
        assert verts[0].grad is not None and verts[0].grad.abs().sum() > 0
        assert verts[2].grad is not None and verts[2].grad.abs().sum() > 0


def test_gradients_flow_from_padded_input():
    verts = torch.randn(2, 4, 3, requires_grad=True)
    faces = torch.tensor([[[0, 1, 2], [1, 2, 3]], [[0, 1, 3], [-1, -1, -1]]])
    m = Meshes(verts, faces)
    (m.verts_packed().sum() + torch.cat(m.verts_list()).sum()).backward()
    assert torch.equal(verts.grad, torch.full_like(verts, 2.0))


def test_normals_gradcheck_float64():
    verts, faces = random_batch([(5, 6)], 2, dtype=F64)
    v0 = verts[0].requires_grad_()

    def fn(v):
        m = Meshes([v], faces)
        return m.verts_normals_packed(), m.faces_normals_packed(), m.faces_areas_packed()

    assert torch.autograd.gradcheck(fn, (v0,))


# --------------------------------------------------------------------------- copies, batches


def test_extend_order_textures_and_gradients():
    verts, faces = random_batch([(3, 1), (4, 2)], 4)
    verts = [v.requires_grad_() for v in verts]
    log: list = []
    m = Meshes(verts, faces, textures=Recorder(2, log))
    e = m.extend(3)
    assert len(e) == 6
    assert e.num_verts_per_mesh().tolist() == [3, 3, 3, 4, 4, 4]
    assert ("extend", 3) in log and e.textures.n == 6
    for i in range(6):
        torch.testing.assert_close(e.verts_list()[i], verts[i // 3])
    assert e.verts_list()[0].data_ptr() != verts[0].data_ptr()  # copies, not views
    e.verts_packed().sum().backward()
    assert torch.equal(verts[0].grad, torch.full_like(verts[0], 3.0))
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="N"):
            m.extend(bad)


def test_getitem_variants():
    verts, faces = random_batch([(3, 1), (4, 2), (5, 3)], 5)
    log: list = []
    m = Meshes(verts, faces, textures=Recorder(3, log))
    cases = [(1, [1]), (-1, [2]), (slice(0, 2), [0, 1]), (slice(None, None, -1), [2, 1, 0])]
    for index, ids in cases:
        sub = m[index]
        assert sub.num_verts_per_mesh().tolist() == [len(verts[i]) for i in ids]
        for j, i in enumerate(ids):
            assert sub.verts_list()[j] is m.verts_list()[i]  # no copy, like PyTorch3D
            assert torch.equal(sub.faces_list()[j], faces[i])
    for index in ([2, 0], torch.tensor([2, 0]), torch.tensor([True, False, True])):
        sub = m[index]
        expected = [2, 0] if not (torch.is_tensor(index) and index.dtype == torch.bool) else [0, 2]
        assert sub.num_faces_per_mesh().tolist() == [len(faces[i]) for i in expected]
    assert ("getitem", 1) in log
    for bad in (3, -4, [0, 5], torch.tensor([0.5]), "a", torch.tensor([True])):
        with pytest.raises(IndexError):
            m[bad]


def test_clone_detach_to():
    verts, faces = random_batch([(4, 2), (3, 1)], 6)
    verts = [v.requires_grad_() for v in verts]
    log: list = []
    m = Meshes(verts, faces, textures=Recorder(2, log))
    c = m.clone()
    assert ("clone",) in log
    assert c.verts_packed().data_ptr() != m.verts_packed().data_ptr()
    assert c.faces_packed().data_ptr() != m.faces_packed().data_ptr()
    torch.testing.assert_close(c.verts_padded(), m.verts_padded())
    c.verts_packed().sum().backward()  # a clone is still differentiable
    assert verts[0].grad is not None
    d = m.detach()
    assert ("detach",) in log
    assert not d.verts_packed().requires_grad and not d.verts_normals_packed().requires_grad
    assert m.to("cpu") is m and m.cpu() is m
    assert m.to("cpu", copy=True) is not m
    assert m.device == torch.device("cpu")


def test_join_meshes_as_batch():
    va, fa = random_batch([(4, 2)], 7)
    vb, fb = random_batch([(0, 0), (5, 3)], 8)
    log: list = []
    a = Meshes(va, fa, textures=Recorder(1, log))
    b = Meshes(vb, fb, textures=Recorder(2, log))
    j = join_meshes_as_batch([a, b])
    assert len(j) == 3 and j.num_verts_per_mesh().tolist() == [4, 0, 5]
    torch.testing.assert_close(j.verts_packed(), torch.cat([*va, *vb]))
    assert ("join", 1) in log and j.textures.n == 3
    assert join_meshes_as_batch([a, b], include_textures=False).textures is None
    with pytest.raises(ValueError, match="some have textures"):
        join_meshes_as_batch([a, Meshes(vb, fb)])
    with pytest.raises(ValueError, match="list of Meshes"):
        join_meshes_as_batch(a)
    with pytest.raises(ValueError, match="non-empty"):
        join_meshes_as_batch([])
    with pytest.raises(ValueError, match="dtype"):
        join_meshes_as_batch([a, Meshes([vb[1].double()], [fb[1]])], include_textures=False)


def test_split_and_get_mesh_verts_faces():
    verts, faces = random_batch([(3, 1), (4, 2), (5, 3)], 9)
    m = Meshes(verts, faces)
    parts = m.split([1, 2])
    assert [len(p) for p in parts] == [1, 2]
    v, f = m.get_mesh_verts_faces(2)
    assert v is m.verts_list()[2] and torch.equal(f, faces[2])
    with pytest.raises(ValueError, match="split_sizes"):
        m.split([1, 1])


# --------------------------------------------------------------------------- vertex updates


def test_offset_verts_invalidates_every_cached_view():
    verts, faces = random_batch([(5, 6), (4, 3)], 10)
    m = Meshes(verts, faces)
    cached = [m.verts_padded(), m.verts_list(), m.verts_normals_packed(),
              m.faces_normals_packed(), m.faces_areas_packed(), m.get_bounding_boxes()]
    del cached
    offsets = torch.randn(9, 3)
    assert m.offset_verts_(offsets) is m
    fresh = Meshes([v + o for v, o in zip(verts, offsets.split([5, 4]), strict=True)], faces)
    torch.testing.assert_close(m.verts_padded(), fresh.verts_padded())
    torch.testing.assert_close(torch.cat(m.verts_list()), fresh.verts_packed())
    torch.testing.assert_close(m.verts_normals_packed(), fresh.verts_normals_packed())
    torch.testing.assert_close(m.faces_normals_packed(), fresh.faces_normals_packed())
    torch.testing.assert_close(m.faces_areas_packed(), fresh.faces_areas_packed())
    torch.testing.assert_close(m.get_bounding_boxes(), fresh.get_bounding_boxes())


def test_offset_verts_broadcast_and_out_of_place():
    verts, faces = solid_batch(11)
    m = Meshes(verts, faces)
    shift = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    normals_before = m.verts_normals_packed()
    moved = m.offset_verts(shift)
    torch.testing.assert_close(m.verts_packed(), torch.cat(verts))  # original untouched
    torch.testing.assert_close(moved.verts_packed(), torch.cat(verts) + shift.detach())
    torch.testing.assert_close(moved.verts_normals_packed(), normals_before)
    moved.verts_packed().sum().backward()
    assert torch.equal(shift.grad, torch.full((3,), 9.0))
    for bad in (torch.zeros(8, 3), torch.zeros(2), torch.zeros(9, 2)):
        with pytest.raises(ValueError, match="vert_offsets_packed"):
            m.offset_verts(bad)


def test_verts_normals_given_are_used_then_dropped():
    verts, faces = random_batch([(4, 3), (3, 1)], 12)
    given = [torch.nn.functional.normalize(torch.randn(len(v), 3), dim=1) for v in verts]
    m = Meshes(verts, faces, verts_normals=given)
    assert m.has_verts_normals()
    torch.testing.assert_close(m.verts_normals_packed(), torch.cat(given))
    torch.testing.assert_close(m[1].verts_normals_packed(), given[1])
    torch.testing.assert_close(m.extend(2).verts_normals_list()[2], given[1])
    torch.testing.assert_close(m.clone().verts_normals_packed(), torch.cat(given))
    torch.testing.assert_close(m.offset_verts(torch.ones(3)).verts_normals_packed(),
                               torch.cat(given))
    moved = m.offset_verts(torch.randn(7, 3))
    torch.testing.assert_close(
        moved.verts_normals_packed(), Meshes(moved.verts_list(), faces).verts_normals_packed()
    )
    padded = Meshes(verts, faces, verts_normals=list_to_padded(given))
    torch.testing.assert_close(padded.verts_normals_packed(), torch.cat(given))
    with pytest.raises(ValueError, match="verts_normals"):
        Meshes(verts, faces, verts_normals=[given[0]])
    with pytest.raises(ValueError, match="verts_normals"):
        Meshes(verts, faces, verts_normals=torch.zeros(2, 3, 3))


def test_scale_verts():
    verts, faces = random_batch([(4, 3), (3, 1)], 13)
    m = Meshes(verts, faces)
    s = m.scale_verts(torch.tensor([2.0, -1.0]))
    torch.testing.assert_close(s.verts_list()[0], verts[0] * 2)
    torch.testing.assert_close(s.verts_list()[1], -verts[1])
    torch.testing.assert_close(m.scale_verts(3.0).verts_packed(), torch.cat(verts) * 3)
    torch.testing.assert_close(s.faces_areas_packed()[:3], m.faces_areas_packed()[:3] * 4)
    with pytest.raises(ValueError, match="scale"):
        m.scale_verts(torch.ones(3))


def test_update_padded():
    verts, faces = random_batch([(4, 3), (6, 5)], 14)
    m = Meshes(verts, faces, textures=Recorder(2))
    m.edges_packed()
    new = torch.randn(2, 6, 3, requires_grad=True)
    u = m.update_padded(new)
    assert u.textures is m.textures
    assert u.faces_packed() is m.faces_packed()  # topology is shared, not recomputed
    torch.testing.assert_close(u.verts_list()[0], new[0, :4])
    torch.testing.assert_close(u.verts_padded(), new)
    u.verts_normals_packed().sum().backward()
    assert new.grad is not None and new.grad[0, 4:].abs().sum() == 0
    torch.testing.assert_close(m.verts_packed(), torch.cat(verts))  # m untouched
    with pytest.raises(ValueError, match="new_verts_padded"):
        m.update_padded(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="new_verts_padded"):
        m.update_padded(torch.zeros(2, 6, 3, dtype=torch.int64))


def test_bounding_boxes_and_empty_meshes():
    verts = [torch.tensor([[0.0, 1, 2], [3, -1, 0]]), torch.zeros(0, 3)]
    faces = [torch.tensor([[0, 1, 1]]), torch.zeros(0, 3, dtype=torch.int64)]
    m = Meshes(verts, faces)
    expected = torch.tensor([[[0.0, 3], [-1, 1], [0, 2]], [[0, 0], [0, 0], [0, 0]]])
    torch.testing.assert_close(m.get_bounding_boxes(), expected)
    assert m.valid.tolist() == [True, False] and not m.isempty()
    assert m[1].isempty()
    empty = Meshes([], [])
    assert len(empty) == 0 and empty.isempty()
    assert empty.verts_packed().shape == (0, 3) and empty.faces_packed().shape == (0, 3)
    assert empty.verts_padded().shape == (0, 0, 3)
    only_empty = Meshes([torch.zeros(0, 3)] * 2, [torch.zeros(0, 3, dtype=torch.int64)] * 2)
    assert only_empty.verts_padded().shape == (2, 0, 3)
    assert only_empty.edges_packed().shape == (0, 2)
    assert only_empty.verts_normals_packed().shape == (0, 3)


def test_list_faces_padding_rows_are_dropped():
    v = torch.randn(4, 3)
    m = Meshes([v], [torch.tensor([[0, 1, 2], [-1, -1, -1]])])
    assert m.num_faces_per_mesh().tolist() == [1]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("verts", "faces", "match"),
    [
        ([torch.zeros(3, 2)], [torch.zeros(1, 3, dtype=torch.int64)], r"verts\[0\].*\(V, 3\)"),
        ([torch.zeros(3, 3)], [torch.zeros(1, 4, dtype=torch.int64)], r"faces\[0\].*\(F, 3\)"),
        ([torch.zeros(3, 3)], [torch.full((1, 3), 0.5)], r"faces\[0\].*integer"),
        ([torch.zeros(3, 3)], [torch.zeros(1, 3, dtype=torch.bool)], r"faces\[0\].*integer"),
        ([torch.zeros(3, 3, dtype=torch.int64)], [torch.zeros(1, 3, dtype=torch.int64)],
         r"verts\[0\].*floating"),
        ([torch.zeros(3, 3)], [torch.tensor([[0, 1, 3]])], r"faces\[0\].*out of range"),
        ([torch.zeros(3, 3)], [torch.tensor([[0, -2, 1]])], r"faces\[0\].*negative"),
        ([torch.zeros(3, 3)], [torch.tensor([[0, -1, 1]])], r"faces\[0\].*negative"),
        ([torch.tensor([[0.0, float("nan"), 0], [0, 0, 0], [1, 1, 1]])],
         [torch.tensor([[0, 1, 2]])], r"verts\[0\].*NaN"),
        ([torch.zeros(3, 3), torch.full((3, 3), float("inf"))],
         [torch.tensor([[0, 1, 2]])] * 2, r"verts\[1\].*NaN or inf"),
        ([torch.zeros(3, 3)], [], "1 meshes but faces has 0"),
        ([torch.zeros(3, 3), torch.zeros(3, 3, dtype=F64)], [torch.tensor([[0, 1, 2]])] * 2,
         "dtype"),
        (torch.zeros(1, 3, 3), [torch.tensor([[0, 1, 2]])], "both be lists"),
        (torch.zeros(1, 3, 2), torch.zeros(1, 1, 3, dtype=torch.int64), r"verts.*\(N, V, 3\)"),
        (torch.zeros(1, 3, 3), torch.zeros(1, 1, 2, dtype=torch.int64), r"faces.*\(N, F, 3\)"),
        (torch.zeros(2, 3, 3), torch.zeros(1, 1, 3, dtype=torch.int64), "2 meshes but faces"),
        (torch.zeros(1, 3, 3), torch.tensor([[[0, 1, 3]]]), "out of range"),
        (torch.zeros(1, 3, 3), torch.tensor([[[0, 1, -2]]]), "< -1"),
        (torch.zeros(1, 3, 3), torch.tensor([[[0, 1, -1]]]), "mixes"),
        (torch.zeros(1, 3, 3), torch.tensor([[[-1, -1, -1], [0, 1, 2]]]), "after the real"),
        (torch.full((1, 3, 3), float("nan")), torch.tensor([[[0, 1, 2]]]), "verts.*NaN"),
        (torch.zeros(1, 3, 3), torch.full((1, 1, 3), 1.5), "faces.*integer"),
    ],
)
def test_validation_errors(verts, faces, match):
    with pytest.raises(ValueError, match=match):
        Meshes(verts, faces)


# --------------------------------------------------------------------------- utils


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=5), st.integers(1, 4))
def test_list_padded_packed_round_trips(sizes, d):
    x = [torch.randn(s, d) for s in sizes]
    padded = list_to_padded(x)
    assert padded.shape == (len(sizes), max(sizes), d)
    for a, b in zip(padded_to_list(padded, sizes), x, strict=True):
        assert torch.equal(a, b)
    packed, num, first, owner = list_to_packed(x)
    assert torch.equal(packed, torch.cat(x))
    assert num.tolist() == sizes
    assert torch.equal(first, torch.cumsum(num, 0) - num)
    assert owner.tolist() == np.repeat(np.arange(len(sizes)), sizes).tolist()
    assert torch.equal(padded_to_packed(padded, sizes), packed)
    for a, b in zip(packed_to_list(packed, sizes), x, strict=True):
        assert torch.equal(a, b)
    wide = list_to_padded(x, (max(sizes) + 2, d + 1), pad_value=-5.0)
    assert wide.shape == (len(sizes), max(sizes) + 2, d + 1) and (wide[:, :, d] == -5).all()


def test_utils_errors():
    with pytest.raises(ValueError, match="at least one"):
        list_to_padded([])
    with pytest.raises(ValueError, match="smaller"):
        list_to_padded([torch.zeros(3, 2)], (2, 2))
    with pytest.raises(ValueError, match="split_size"):
        packed_to_list(torch.zeros(4, 3), [1, 2])
    with pytest.raises(ValueError, match="split_size"):
        padded_to_list(torch.zeros(2, 4, 3), [1])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_to_cuda_and_back():
    verts, faces = solid_batch(15)
    m = Meshes(verts, faces, textures=Recorder(2))
    m.edges_packed()
    c = m.to("cuda")
    assert c.device.type == "cuda" and c.to(c.device) is c
    for t in (c.verts_packed(), c.verts_padded(), c.faces_packed(), c.edges_packed(),
              c.verts_normals_packed(), c.num_verts_per_mesh()):
        assert t.is_cuda
    torch.testing.assert_close(c.verts_normals_packed().cpu(), m.verts_normals_packed())
    torch.testing.assert_close(c.cpu().verts_padded(), m.verts_padded())
    moved = c.offset_verts(torch.ones(3, device=c.device))
    torch.testing.assert_close(moved.verts_packed().cpu(), m.verts_packed() + 1)
    assert c.extend(2)[1:3].faces_padded().is_cuda
