"""Ico-spheres and midpoint subdivision (PyTorch3D's ``ico_sphere`` and ``SubdivideMeshes``).

Vertex and face order match PyTorch3D's: level 0 is PyTorch3D's icosahedron, and each level
appends one vertex per unique edge (in ``edges_packed`` order) and splits face (v0, v1, v2)
into [v0, m01, m20], [v1, m12, m01], [v2, m20, m12], [m12, m20, m01], grouped as all first
children, then all second, and so on. Faces are wound counter-clockwise seen from outside.
"""

from __future__ import annotations

import torch

from .meshes import Meshes
from .utils import unique_edges

# PyTorch3D's level-0 icosahedron, (+-a, +-b, 0) and its cyclic permutations; every vertex
# has the same norm, so normalising keeps the directions (and all later levels) unchanged.
_A, _B = 0.5257, 0.8507
_ICO_VERTS0 = [
    [-_A, _B, 0.0], [_A, _B, 0.0], [-_A, -_B, 0.0], [_A, -_B, 0.0],
    [0.0, -_A, _B], [0.0, _A, _B], [0.0, -_A, -_B], [0.0, _A, -_B],
    [_B, 0.0, -_A], [_B, 0.0, _A], [-_B, 0.0, -_A], [-_B, 0.0, _A],
]
_ICO_FACES0 = [
    [0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
    [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
    [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
    [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1],
]


def _split_faces(faces: torch.Tensor, face_edges: torch.Tensor) -> torch.Tensor:
    """(F, 3) faces and (F, 3) midpoint vertex ids (opposite each corner) -> (4F, 3)."""
    m = face_edges  # m[:, i] is the midpoint of the edge opposite corner i
    f0 = torch.stack([faces[:, 0], m[:, 2], m[:, 1]], 1)
    f1 = torch.stack([faces[:, 1], m[:, 0], m[:, 2]], 1)
    f2 = torch.stack([faces[:, 2], m[:, 1], m[:, 0]], 1)
    return torch.cat([f0, f1, f2, m], 0)


def _subdivide_one(verts: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    edges, face_edges = unique_edges(faces, verts.shape[0])
    mid = verts[edges].mean(dim=1)
    return torch.cat([verts, mid], 0), _split_faces(faces, face_edges + verts.shape[0])


def subdivide_meshes(
    meshes: Meshes, feats: torch.Tensor | None = None
) -> Meshes | tuple[Meshes, torch.Tensor]:
    """Split every face into four by adding a vertex at the midpoint of every edge.

    Works on heterogeneous batches; each new mesh holds its old vertices first, then one
    midpoint per unique edge (``edges_packed`` order), and keeps face orientation.

    Args:
        meshes: batch of N meshes.
        feats: optional (sum V_i, D) per-vertex features, averaged onto the midpoints.

    Returns:
        The subdivided ``Meshes`` (textures are not carried), and with ``feats`` also the
        (sum V'_i, D) new features. Differentiable w.r.t. vertices and ``feats``.
    """
    if not isinstance(meshes, Meshes):
        raise ValueError(f"meshes: expected Meshes, got {type(meshes).__name__}")
    verts = meshes.verts_packed()
    n_verts = verts.shape[0]
    if feats is not None and (feats.ndim != 2 or feats.shape[0] != n_verts):
        raise ValueError(f"feats: expected shape ({n_verts}, D), got {tuple(feats.shape)}")
    edges = meshes.edges_packed()
    with torch.no_grad():
        e_owner = meshes.edges_packed_to_mesh_idx()
        # Local id of each midpoint: after its mesh's old vertices, in edge order.
        local_mid = (
            torch.arange(edges.shape[0], device=verts.device)
            - meshes.mesh_to_edges_packed_first_idx()[e_owner]
            + meshes.num_verts_per_mesh()[e_owner]
        )
        f_owner = meshes.faces_packed_to_mesh_idx()
        local_faces = meshes.faces_packed() - meshes.mesh_to_verts_packed_first_idx()[f_owner, None]
        children = torch.stack(
            _split_faces(local_faces, local_mid[meshes.faces_packed_to_edges_packed()]).chunk(4)
        )  # (4, F, 3)
    mids = verts[edges].mean(dim=1)
    n_v = meshes.num_verts_per_mesh().tolist()
    n_e = meshes.num_edges_per_mesh().tolist()
    n_f = meshes.num_faces_per_mesh().tolist()
    old_v, new_v = verts.split(n_v), mids.split(n_e)
    kids = children.split(n_f, dim=1)
    new_verts = [torch.cat([a, b], 0) for a, b in zip(old_v, new_v, strict=True)]
    new_faces = [k.reshape(-1, 3) for k in kids]
    out = Meshes._trusted(new_verts, new_faces)
    if feats is None:
        return out
    old_f, new_f = feats.split(n_v), feats[edges].mean(dim=1).split(n_e)
    return out, torch.cat([t for pair in zip(old_f, new_f, strict=True) for t in pair], 0)


def ico_sphere(level: int = 0, device: str | torch.device | None = None) -> Meshes:
    """A unit ico-sphere: 12 vertices at level 0, each level splits every face into four.

    Level L has 20 * 4**L faces and 10 * 4**L + 2 vertices, all at distance 1 from the
    origin, with faces wound counter-clockwise seen from outside (outward normals), in
    PyTorch3D's vertex and face order.

    Args:
        level: number of subdivisions, >= 0.
        device: where the tensors live (default CPU).

    Returns:
        ``Meshes`` with one float32 mesh (a constant, no gradients).
    """
    if isinstance(level, bool) or not isinstance(level, int) or level < 0:
        raise ValueError(f"level must be an int >= 0, got {level!r}")
    device = torch.device("cpu") if device is None else torch.device(device)
    verts = torch.tensor(_ICO_VERTS0, dtype=torch.float32, device=device)
    faces = torch.tensor(_ICO_FACES0, dtype=torch.int64, device=device)
    verts = verts / verts.norm(dim=1, keepdim=True)
    for _ in range(level):
        verts, faces = _subdivide_one(verts, faces)
        verts = verts / verts.norm(dim=1, keepdim=True)
    return Meshes._trusted([verts], [faces])


class SubdivideMeshes(torch.nn.Module):
    """Module shell over :func:`subdivide_meshes` (PyTorch3D's ``SubdivideMeshes``).

    Given ``meshes`` at construction, their first mesh's faces become the topology of every
    mesh passed later (PyTorch3D's "homogeneous" mode, for batches that share one topology);
    otherwise each mesh keeps its own.
    """

    def __init__(self, meshes: Meshes | None = None) -> None:
        """Args:
            meshes: optional ``Meshes`` whose first mesh fixes the input topology.
        """
        super().__init__()
        self.precomputed = meshes is not None
        if meshes is not None:
            if not isinstance(meshes, Meshes) or len(meshes) == 0:
                raise ValueError("meshes: expected a non-empty Meshes")
            self.register_buffer("_faces", meshes.faces_list()[0].clone())
            self._num_verts = int(meshes.num_verts_per_mesh()[0])

    def forward(
        self, meshes: Meshes, feats: torch.Tensor | None = None
    ) -> Meshes | tuple[Meshes, torch.Tensor]:
        """Subdivide every face into four (midpoints on every edge).

        Args:
            meshes: batch of N meshes (with the construction-time topology if one was given).
            feats: optional per-vertex features, packed (sum V_i, D); with a construction-time
                topology also (N, V, D).

        Returns:
            The subdivided ``Meshes``, and with ``feats`` the new features: packed
            (sum V'_i, D), or (N, V', D) with a construction-time topology (PyTorch3D's
            shapes). Differentiable w.r.t. the vertices and ``feats``.
        """
        if not isinstance(meshes, Meshes):
            raise ValueError(f"meshes: expected Meshes, got {type(meshes).__name__}")
        if not self.precomputed:
            return subdivide_meshes(meshes, feats)
        n = len(meshes)
        if any(v != self._num_verts for v in meshes.num_verts_per_mesh().tolist()):
            raise ValueError(f"meshes: every mesh must have the construction-time topology "
                             f"({self._num_verts} vertices)")
        shared = Meshes._trusted(meshes.verts_list(), [self._faces] * n)
        if feats is None:
            return subdivide_meshes(shared)
        if feats.ndim == 3:
            feats = feats.reshape(-1, feats.shape[2])
        if feats.ndim != 2:
            raise ValueError("feats: expected shape (N, V, D) or (N * V, D)")
        out, new_feats = subdivide_meshes(shared, feats)
        return out, new_feats.reshape(n, -1, new_feats.shape[1])
