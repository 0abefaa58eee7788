"""diffrend.ops.remesh: continuous remeshing keeps a valid, same-topology mesh, moves edge
lengths toward their targets, is deterministic, and carries vertex attributes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffrend.ops.remesh import VertexMap, map_vertex_attributes, remesh
from diffrend.structures.ico_sphere import ico_sphere
from diffrend.structures.torus import torus


def _sphere(level: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    m = ico_sphere(level)
    return m.verts_packed().double(), m.faces_packed()


def _torus() -> tuple[torch.Tensor, torch.Tensor]:
    m = torus(0.3, 1.0, 24, 48)
    return m.verts_packed().double(), m.faces_packed()


def _half_sphere() -> tuple[torch.Tensor, torch.Tensor]:
    v, f = _sphere(3)
    keep = v[f].mean(dim=1)[:, 2] > 0.0
    f = f[keep]
    used = torch.unique(f)
    new_id = torch.full((v.shape[0],), -1, dtype=torch.int64)
    new_id[used] = torch.arange(used.shape[0])
    return v[used], new_id[f]


MESHES = {"sphere": (_sphere, True), "torus": (_torus, True), "half_sphere": (_half_sphere, False)}


def _edges(faces: np.ndarray, nv: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed half-edge keys, undirected edge keys and each undirected edge's face count."""
    src, dst = faces.reshape(-1), faces[:, [1, 2, 0]].reshape(-1)
    directed = src * nv + dst
    keys, counts = np.unique(np.minimum(src, dst) * nv + np.maximum(src, dst),
                             return_counts=True)
    return directed, keys, counts


def _euler(faces: np.ndarray, nv: int) -> int:
    _, keys, _ = _edges(faces, nv)
    return int(np.unique(faces).shape[0]) - keys.shape[0] + faces.shape[0]


def _signed_volume(v: np.ndarray, f: np.ndarray) -> float:
    return float(np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6)


def _check_valid(v: torch.Tensor, f: torch.Tensor, closed: bool, euler: int) -> None:
    vn, fn = v.numpy(), f.numpy()
    nv = vn.shape[0]
    assert fn.min() >= 0 and fn.max() < nv
    assert np.unique(fn).shape[0] == nv, "every vertex is used by a face"
    assert np.all((fn[:, 0] != fn[:, 1]) & (fn[:, 1] != fn[:, 2]) & (fn[:, 2] != fn[:, 0]))
    directed, _, counts = _edges(fn, nv)
    assert np.unique(directed).shape[0] == directed.shape[0], "each directed edge once"
    if closed:
        assert np.all(counts == 2), "watertight: every edge has two faces"
    else:
        assert counts.max() <= 2 and np.any(counts == 1)
    assert np.unique(np.sort(fn, axis=1), axis=0).shape[0] == fn.shape[0], "no duplicate face"
    area = 0.5 * np.linalg.norm(
        np.cross(vn[fn[:, 1]] - vn[fn[:, 0]], vn[fn[:, 2]] - vn[fn[:, 0]]), axis=1)
    assert area.min() > 1e-8, "no degenerate face"
    assert _euler(fn, nv) == euler, "Euler characteristic unchanged"


def _length_ratio(v: torch.Tensor, f: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    e = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    return (v[e[:, 0]] - v[e[:, 1]]).norm(dim=1) / (0.5 * (t[e[:, 0]] + t[e[:, 1]]))


@pytest.mark.parametrize("name", list(MESHES))
@pytest.mark.parametrize("seed", [0, 1])
def test_random_rounds_keep_a_valid_mesh(name: str, seed: int) -> None:
    """Random per-vertex targets over a 10x range, random jitter, several rounds."""
    make, closed = MESHES[name]
    v, f = make()
    euler = _euler(f.numpy(), v.shape[0])
    vol0 = _signed_volume(v.numpy(), f.numpy())
    g = torch.Generator().manual_seed(seed)
    base = float(_length_ratio(v, f, torch.ones(v.shape[0], dtype=torch.float64)).median())
    changed = False
    for _ in range(4):
        t = base * torch.exp(torch.empty(v.shape[0], dtype=torch.float64).uniform_(
            np.log(0.4), np.log(4.0), generator=g))
        v2, f2, vmap = remesh(v, f, t)
        changed |= f2.shape[0] != f.shape[0]
        _check_valid(v2, f2, closed, euler)
        assert vmap.index.shape[0] == v2.shape[0]
        assert torch.allclose(vmap.weight.sum(dim=1), torch.ones(v2.shape[0], dtype=v2.dtype))
        if closed:  # outward orientation kept, shape roughly kept
            vol = _signed_volume(v2.numpy(), f2.numpy())
            assert vol > 0 and abs(vol - vol0) < 0.3 * abs(vol0)
        jitter = 0.05 * base * torch.randn(v2.shape, generator=g, dtype=torch.float64)
        v, f = v2 + jitter, f2
    assert changed


@pytest.mark.parametrize("name", list(MESHES))
@pytest.mark.parametrize("scale", [0.5, 2.5])
def test_edge_lengths_approach_the_target(name: str, scale: float) -> None:
    """A smooth target field 2x finer / 2.5x coarser than the mesh: after a few rounds the
    median edge length over its target is near 1 (and closer than at the start)."""
    make, closed = MESHES[name]
    v, f = make()
    euler = _euler(f.numpy(), v.shape[0])
    base = float(_length_ratio(v, f, torch.ones(v.shape[0], dtype=torch.float64)).median())

    def target(v: torch.Tensor) -> torch.Tensor:
        return scale * base * (1.0 + 0.3 * v[:, 0])

    start = float(_length_ratio(v, f, target(v)).median())
    for _ in range(8):
        v, f, _ = remesh(v, f, target(v))
        _check_valid(v, f, closed, euler)
    end = float(_length_ratio(v, f, target(v)).median())
    assert 0.6 <= end <= 1.6, (start, end)
    assert abs(np.log(end)) < abs(np.log(start))


def test_deterministic() -> None:
    v, f = _torus()
    t = torch.linspace(0.02, 0.3, v.shape[0], dtype=torch.float64)
    a = remesh(v, f, t)
    b = remesh(v.clone(), f.clone(), t.clone())
    for x, y in zip((a[0], a[1], *a[2]), (b[0], b[1], *b[2]), strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("name", list(MESHES))
def test_vertex_map_is_exact_for_linear_attributes(name: str) -> None:
    """Without relaxation every new vertex is an affine combination of old ones: mapping a
    linear function of the old positions gives that function at the new positions."""
    make, _ = MESHES[name]
    v, f = make()
    g = torch.Generator().manual_seed(3)
    base = float(_length_ratio(v, f, torch.ones(v.shape[0], dtype=torch.float64)).median())
    t = base * torch.exp(torch.empty(v.shape[0], dtype=torch.float64).uniform_(
        np.log(0.3), np.log(3.0), generator=g))
    v2, f2, vmap = remesh(v, f, t, relax=0.0)
    assert vmap.index.shape[1] >= 2  # some vertices came from splits or merges
    A = torch.randn(3, 4, generator=g, dtype=torch.float64)
    c = torch.randn(4, generator=g, dtype=torch.float64)
    mapped = map_vertex_attributes(v @ A + c, vmap)
    assert torch.allclose(mapped, v2 @ A + c, atol=1e-12)
    assert torch.allclose(map_vertex_attributes(v, vmap), v2, atol=1e-12)
    # Split vertices are midpoints of two old vertices.
    split = (vmap.weight == 0.5).sum(dim=1) == 2
    assert split.any()
    # Optimiser-like state (non-negative second moments stay non-negative), float32 too.
    sq = torch.rand(v.shape[0], 3, generator=g)
    assert (map_vertex_attributes(sq, vmap) >= 0).all()


def test_unchanged_when_on_target_and_no_relax() -> None:
    v, f = _sphere(2)
    # Targets equal to the mesh's own edge lengths: nothing to split or collapse.
    base = float(_length_ratio(v, f, torch.ones(v.shape[0], dtype=torch.float64)).median())
    v2, f2, vmap = remesh(v, f, torch.full((v.shape[0],), base, dtype=torch.float64),
                          relax=0.0)
    assert torch.equal(v2, v) and v2.shape == v.shape
    assert isinstance(vmap, VertexMap) and torch.equal(vmap.index[:, 0], torch.arange(len(v)))


def test_float32_and_output_types() -> None:
    m = ico_sphere(2)
    v, f = m.verts_packed(), m.faces_packed()
    v2, f2, vmap = remesh(v, f, torch.full((v.shape[0],), 0.1))
    assert v2.dtype == torch.float32 and f2.dtype == torch.int64
    assert vmap.index.dtype == torch.int64 and vmap.weight.dtype == torch.float32


def test_bad_input_names_the_argument() -> None:
    v, f = _sphere(1)
    t = torch.full((v.shape[0],), 0.3, dtype=torch.float64)
    with pytest.raises(ValueError, match="target_length"):
        remesh(v, f, -t)
    with pytest.raises(ValueError, match="target_length"):
        remesh(v, f, t[:-1])
    with pytest.raises(ValueError, match="verts"):
        remesh(v[:, :2], f, t)
    with pytest.raises(ValueError, match="faces"):
        remesh(v, torch.cat([f, torch.tensor([[0, 0, 1]])]), t)
    with pytest.raises(ValueError, match="orientation"):
        remesh(v, torch.cat([f[:1], f[1:].flip(1)]), t)
    with pytest.raises(ValueError, match="more than two faces"):
        x = next(int(i) for i in range(v.shape[0]) if i not in f[0].tolist())
        remesh(v, torch.cat([f, torch.tensor([[int(f[0, 1]), int(f[0, 0]), x]])]), t)
    with pytest.raises(ValueError, match="faces"):
        remesh(v, f + 1000, t)
    with pytest.raises(ValueError, match="relax"):
        remesh(v, f, t, relax=2.0)
    with pytest.raises(ValueError, match="attr"):
        map_vertex_attributes(torch.zeros(2, 3), remesh(v, f, t)[2])


@pytest.mark.parametrize("name", list(MESHES))
def test_extreme_coarsening_then_refining(name: str) -> None:
    """A huge target collapses down to a minimal mesh (a tetrahedron for the sphere) without
    breaking it; a small one then refines it again."""
    make, closed = MESHES[name]
    v, f = make()
    euler = _euler(f.numpy(), v.shape[0])
    for _ in range(15):
        v, f, _ = remesh(v, f, torch.full((v.shape[0],), 50.0, dtype=torch.float64))
        _check_valid(v, f, closed, euler)
    assert f.shape[0] <= {"sphere": 4, "torus": 64, "half_sphere": 8}[name]
    for _ in range(4):
        v, f, _ = remesh(v, f, torch.full((v.shape[0],), 0.1, dtype=torch.float64))
        _check_valid(v, f, closed, euler)
    assert f.shape[0] > 100


@settings(max_examples=40, deadline=None, derandomize=True)
@given(sides=st.integers(3, 9), rings=st.integers(3, 12), seed=st.integers(0, 2**31 - 1),
       lo=st.floats(0.02, 0.5), span=st.floats(1.0, 100.0), open_mesh=st.booleans())
def test_property_small_meshes(sides: int, rings: int, seed: int, lo: float, span: float,
                               open_mesh: bool) -> None:
    """Small tori (possibly with a band of faces removed: an open tube), any targets in
    [lo, lo * span], jitter: every round leaves a valid mesh of the same topology."""
    m = torus(0.3, 1.0, sides, rings)
    v, f = m.verts_packed().double(), m.faces_packed()
    if open_mesh:  # drop the faces of the first ring: an open tube with two boundary loops
        f = f[2 * sides:]
    euler = _euler(f.numpy(), v.shape[0])
    g = torch.Generator().manual_seed(seed)
    for _ in range(3):
        t = lo * torch.exp(torch.rand(v.shape[0], generator=g, dtype=torch.float64)
                           * np.log(span))
        v, f, vmap = remesh(v, f, t)
        _check_valid(v, f, not open_mesh, euler)
        assert vmap.weight.min() >= 0
        v = v + 0.01 * torch.randn(v.shape, generator=g, dtype=torch.float64)
