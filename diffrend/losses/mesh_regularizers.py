"""Mesh regularisers with PyTorch3D's names, weighting and defaults.

Every loss weights each element (vertex, edge, pair of faces) by 1 / (number of such elements
in its mesh) and averages over the N meshes of the batch, so small and large meshes count
equally. An empty batch gives ``tensor([0.])`` that requires grad, like PyTorch3D.
"""

from __future__ import annotations

import torch

from ..structures import Meshes
from .laplacian import cot_laplacian

LAPLACIAN_METHODS = ("uniform", "cot", "cotcurv")


def _zero_loss(meshes: Meshes) -> torch.Tensor:
    # PyTorch3D returns a float32 (1,) leaf so callers can still call backward().
    return torch.tensor([0.0], dtype=torch.float32, device=meshes.device, requires_grad=True)


def _check_meshes(meshes: Meshes) -> None:
    if not isinstance(meshes, Meshes):
        raise ValueError(f"meshes: expected a Meshes object, got {type(meshes).__name__}")


def _per_element_weights(counts: torch.Tensor, owner: torch.Tensor,
                         dtype: torch.dtype) -> torch.Tensor:
    """1 / (count of the owner's mesh) for every element."""
    return 1.0 / counts.gather(0, owner).to(dtype)


def _laplacian_terms(
    verts: torch.Tensor, L: torch.Tensor, method: str,
    norm_w: torch.Tensor | None = None, L_sum: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-vertex Laplacian vectors (V, 3) given the (constant) operator data.

    Split out so tests can gradcheck the map verts -> loss with the weights frozen, which
    is what ``mesh_laplacian_smoothing`` differentiates (PyTorch3D builds the weights under
    ``no_grad``).
    """
    Lv = torch.sparse.mm(L, verts)
    if method == "uniform":
        return Lv
    if method == "cot":
        return Lv * norm_w - verts
    return (Lv - L_sum * verts) * norm_w


def _laplacian_operator(
    meshes: Meshes, method: str
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(L, norm_w, L_sum) for ``method``, computed without gradients."""
    verts, faces = meshes.verts_packed(), meshes.faces_packed()
    with torch.no_grad():
        if method == "uniform":
            return meshes.laplacian_packed().to(verts.dtype), None, None
        L, inv_areas = cot_laplacian(verts.detach(), faces)
        L_sum = torch.sparse.sum(L, dim=1).to_dense().view(-1, 1)
        if method == "cot":
            # Row-normalised cot weights; isolated vertices keep weight 0.
            pos = L_sum > 0
            norm_w = torch.where(pos, 1.0 / torch.where(pos, L_sum, torch.ones_like(L_sum)),
                                 torch.zeros_like(L_sum))
            return L, norm_w, None
        # cotcurv: mean-curvature normal, divided by the (barycentric-ish) vertex area.
        return L, 0.25 * inv_areas, L_sum


def mesh_laplacian_smoothing(meshes: Meshes, method: str = "uniform") -> torch.Tensor:
    """Laplacian smoothing loss: mean over meshes of the mean per-vertex |L v|.

    Methods (PyTorch3D's):
      * ``"uniform"``: ``L v`` with the uniform Laplacian (mean of neighbours minus v).
      * ``"cot"``: ``(C v) / rowsum(C) - v`` with cotangent weights C.
      * ``"cotcurv"``: ``(C v - rowsum(C) v) * 0.25 / (area of the faces around v)``.

    Args:
        meshes: batch of N meshes with vertices (sum V_i, 3).
        method: one of "uniform", "cot", "cotcurv".

    Returns:
        Scalar (0-dim) tensor; ``tensor([0.])`` (shape (1,)) for an empty batch.
        Gradients flow to the vertices through ``v`` only: the cotangent weights and areas
        are treated as constants, as in PyTorch3D.
    """
    _check_meshes(meshes)
    if method not in LAPLACIAN_METHODS:
        raise ValueError(f"method: expected one of {LAPLACIAN_METHODS}, got {method!r}")
    if meshes.isempty():
        return _zero_loss(meshes)
    N = len(meshes)
    verts = meshes.verts_packed()
    weights = _per_element_weights(
        meshes.num_verts_per_mesh(), meshes.verts_packed_to_mesh_idx(), verts.dtype
    )
    L, norm_w, L_sum = _laplacian_operator(meshes, method)
    loss = _laplacian_terms(verts, L, method, norm_w, L_sum).norm(dim=1)
    return (loss * weights).sum() / N


def mesh_edge_loss(meshes: Meshes, target_length: float = 0.0) -> torch.Tensor:
    """Mean over meshes of the mean over unique edges of (|v0 - v1| - target_length)^2.

    Args:
        meshes: batch of N meshes.
        target_length: the edge length that costs nothing.

    Returns:
        Scalar tensor, differentiable w.r.t. the vertices; ``tensor([0.])`` for an empty
        batch.
    """
    _check_meshes(meshes)
    if meshes.isempty():
        return _zero_loss(meshes)
    N = len(meshes)
    verts = meshes.verts_packed()
    edges = meshes.edges_packed()
    weights = _per_element_weights(
        meshes.num_edges_per_mesh(), meshes.edges_packed_to_mesh_idx(), verts.dtype
    )
    v0, v1 = verts[edges[:, 0]], verts[edges[:, 1]]
    loss = ((v0 - v1).norm(dim=1) - target_length) ** 2
    return (loss * weights).sum() / N


def _pairs_within_groups(counts: torch.Tensor) -> torch.Tensor:
    """All (i, j), i < j, of positions in a sorted array that share a group.

    ``counts[g]`` is the size of group g; groups are contiguous. Returns (P, 2) int64 in the
    order of PyTorch3D's ``mesh_normal_consistency_find_verts``: by group, then i, then j.
    """
    start = torch.cumsum(counts, 0) - counts
    owner = torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts)
    pos = torch.arange(owner.shape[0], device=counts.device)
    local = pos - start[owner]
    partners = counts[owner] - 1 - local  # how many later members each position pairs with
    first = torch.repeat_interleave(pos, partners)
    offs = torch.arange(first.shape[0], device=counts.device) - torch.repeat_interleave(
        torch.cumsum(partners, 0) - partners, partners
    )
    return torch.stack([first, first + 1 + offs], dim=1)


def mesh_normal_consistency(meshes: Meshes) -> torch.Tensor:
    """Mean over meshes of the mean over face pairs sharing an edge of 1 - cos(n0, n1).

    For every edge and every pair of faces that contain it, the normals are taken relative
    to the shared edge (``(v1 - v0) x (opposite - v0)``, one sign flipped), so consistently
    oriented flat neighbours give 0 and folded ones up to 2. Non-manifold edges contribute
    all their pairs; boundary edges none.

    Args:
        meshes: batch of N meshes.

    Returns:
        Scalar tensor, differentiable w.r.t. the vertices; ``tensor([0.])`` for an empty
        batch or one without any shared edge.
    """
    _check_meshes(meshes)
    if meshes.isempty():
        return _zero_loss(meshes)
    N = len(meshes)
    verts = meshes.verts_packed()
    faces = meshes.faces_packed()
    edges = meshes.edges_packed()
    F = faces.shape[0]
    with torch.no_grad():
        # One row per (face, edge): the edge id and the face's three corners.
        edge_idx = meshes.faces_packed_to_edges_packed().reshape(F * 3)
        vert_idx = faces.repeat_interleave(3, dim=0)  # (3F, 3), row 3f+k is face f
        edge_idx, order = edge_idx.sort(stable=True)
        vert_idx = vert_idx[order]
        pairs = _pairs_within_groups(edge_idx.bincount(minlength=edges.shape[0]))
    if pairs.shape[0] == 0:
        return _zero_loss(meshes)

    v0 = verts[edges[edge_idx, 0]]
    v1 = verts[edges[edge_idx, 1]]
    e = v1 - v0
    # Two of the three cross products vanish (the corners on the edge); the sum picks out the
    # opposite corner without having to find it.
    n = sum(torch.linalg.cross(e, verts[vert_idx[:, k]] - v0, dim=1) for k in range(3))
    n0 = n[pairs[:, 0]]
    n1 = -n[pairs[:, 1]]
    loss = 1 - torch.cosine_similarity(n0, n1, dim=1)

    owner = meshes.verts_packed_to_mesh_idx()[vert_idx[pairs[:, 0], 0]]
    weights = _per_element_weights(owner.bincount(minlength=N), owner, verts.dtype)
    return (loss * weights).sum() / N
