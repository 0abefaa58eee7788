"""``Meshes``: a batch of triangle meshes with list, padded and packed views (PyTorch3D's API).

Source of truth: the faces as a list of (F_i, 3) int64 tensors (never changed after
construction) and the vertices in the one form they were last given in (list, padded or
packed). Every other view is derived on demand and kept in one of two caches:
``_topo`` (faces only, valid for the object's lifetime) and ``_vcache`` (vertex-dependent,
replaced whenever the vertices change). Every vertex view is differentiable w.r.t. the
vertex tensors the object was built from; nothing about faces is differentiable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..ops.transfer import host_tensor
from .utils import list_to_padded, padded_to_list, unique_edges

_NORMAL_KEYS = ("verts_normals_packed", "faces_normals_packed", "faces_areas_packed")


def _is_int_dtype(t: torch.Tensor) -> bool:
    return not (t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool)


def _check_finite(tensors: Sequence[torch.Tensor], names: Sequence[str]) -> None:
    if not tensors:
        return
    flags = torch.stack([torch.isfinite(t).all() for t in tensors]).tolist()
    for name, ok in zip(names, flags, strict=True):
        if not ok:
            raise ValueError(f"{name} contains NaN or inf coordinates")


def _int_faces(f: torch.Tensor, name: str) -> torch.Tensor:
    """Integer faces as given; floating-point faces (PyTorch3D accepts them) cast to int64
    when every value is a whole number."""
    if _is_int_dtype(f):
        return f
    if f.dtype.is_floating_point and bool((f == f.round()).all()):
        return f.to(torch.int64)
    raise ValueError(f"{name}: expected an integer tensor (or whole numbers), got {f.dtype}")


def _validate_lists(
    verts: Sequence[Any], faces: Sequence[Any]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Check list inputs; return verts and int64 faces with all-(-1) padding rows dropped."""
    if len(verts) != len(faces):
        raise ValueError(f"verts has {len(verts)} meshes but faces has {len(faces)}")
    verts, faces = list(verts), list(faces)
    for i, (v, f) in enumerate(zip(verts, faces, strict=True)):
        # PyTorch3D takes torch.tensor([]) (shape (0,)) as an empty mesh
        if torch.is_tensor(v) and v.shape == (0,):
            v = verts[i] = v.reshape(0, 3)
        if torch.is_tensor(f) and f.shape == (0,):
            f = faces[i] = f.reshape(0, 3).to(torch.int64)
        if not torch.is_tensor(v) or v.ndim != 2 or v.shape[1] != 3:
            got = tuple(v.shape) if torch.is_tensor(v) else type(v).__name__
            raise ValueError(f"verts[{i}]: expected a tensor of shape (V, 3), got {got}")
        if not v.dtype.is_floating_point:
            raise ValueError(f"verts[{i}]: expected a floating-point tensor, got {v.dtype}")
        if not torch.is_tensor(f) or f.ndim != 2 or f.shape[1] != 3:
            got = tuple(f.shape) if torch.is_tensor(f) else type(f).__name__
            raise ValueError(f"faces[{i}]: expected a tensor of shape (F, 3), got {got}")
        f = faces[i] = _int_faces(f, f"faces[{i}]")
    if verts:
        device, dtype = verts[0].device, verts[0].dtype
        if any(t.device != device for t in (*verts, *faces)):
            raise ValueError("verts and faces: all tensors must be on the same device")
        if any(v.dtype != dtype for v in verts):
            raise ValueError("verts: all tensors must have the same dtype")
    _check_finite(list(verts), [f"verts[{i}]" for i in range(len(verts))])
    faces = [f.to(torch.int64) for f in faces]
    empty = torch.tensor([0, -1])
    stats = [torch.stack(f.aminmax()) if f.numel() else empty.to(f.device) for f in faces]
    stats = torch.stack(stats).tolist() if stats else []
    out = []
    for i, (f, (lo, hi)) in enumerate(zip(faces, stats, strict=True)):
        if lo < 0:
            pad = (f == -1).all(1)
            f = f[~pad]
            if f.numel() and int(f.min()) < 0:
                raise ValueError(
                    f"faces[{i}]: negative vertex index (only whole rows of -1 may pad a list)"
                )
            hi = int(f.max()) if f.numel() else -1
        if hi >= len(verts[i]):
            raise ValueError(
                f"faces[{i}]: vertex index {hi} out of range for {len(verts[i])} vertices"
            )
        out.append(f)
    return list(verts), out


def _validate_padded(verts: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Check padded inputs; return int64 faces and the number of real faces per mesh."""
    if verts.ndim != 3 or verts.shape[2] != 3:
        raise ValueError(f"verts: expected shape (N, V, 3), got {tuple(verts.shape)}")
    if not verts.dtype.is_floating_point:
        raise ValueError(f"verts: expected a floating-point tensor, got {verts.dtype}")
    if faces.ndim != 3 or faces.shape[2] != 3:
        raise ValueError(f"faces: expected shape (N, F, 3), got {tuple(faces.shape)}")
    faces = _int_faces(faces, "faces")
    if faces.shape[0] != verts.shape[0]:
        raise ValueError(f"verts has {verts.shape[0]} meshes but faces has {faces.shape[0]}")
    if faces.device != verts.device:
        raise ValueError(f"verts and faces must be on the same device, got {verts.device} "
                         f"and {faces.device}")
    _check_finite([verts], ["verts"])
    faces = faces.to(torch.int64)
    if faces.numel() == 0:
        return faces, [0] * faces.shape[0]
    lo, hi = (int(x) for x in faces.aminmax())
    if lo < -1:
        raise ValueError(f"faces: index {lo} < -1 (padded faces use -1 for padding)")
    if hi >= verts.shape[1]:
        raise ValueError(f"faces: vertex index {hi} out of range for {verts.shape[1]} vertices")
    real = (faces >= 0).all(2)
    if not (real | (faces == -1).all(2)).all():
        raise ValueError("faces: a row mixes -1 padding with vertex indices")
    if (real[:, 1:] & ~real[:, :-1]).any():
        raise ValueError("faces: Padding of faces must be at the end (-1 rows after the real "
                         "faces of each mesh)")
    return faces, real.sum(1).tolist()


def _map(fn: Callable[[torch.Tensor], torch.Tensor], x: Any) -> Any:
    """Apply ``fn`` to a tensor, or to the tensors of a list or dict."""
    if torch.is_tensor(x):
        return fn(x)
    if isinstance(x, dict):
        return {k: _map(fn, v) for k, v in x.items()}
    return [fn(t) for t in x]


class Meshes:
    """A batch of N triangle meshes of different sizes (PyTorch3D's ``Meshes``).

    Three views of the same data: list (N tensors (V_i, 3) / (F_i, 3)), padded
    ((N, max V_i, 3) with zeros / (N, max F_i, 3) with -1) and packed ((sum V_i, 3) /
    (sum F_i, 3), where packed faces index packed vertices). Vertex views, normals and
    areas are differentiable w.r.t. the vertex tensors given; face indices are not.
    Meshes with no vertices or no faces are allowed as batch members.
    """

    def __init__(
        self,
        verts: Sequence[torch.Tensor] | torch.Tensor,
        faces: Sequence[torch.Tensor] | torch.Tensor,
        textures: Any = None,
        *,
        verts_normals: Sequence[torch.Tensor] | torch.Tensor | None = None,
    ) -> None:
        """Build a batch from lists or padded tensors.

        Args:
            verts: list of N float tensors (V_i, 3), or a float tensor (N, V, 3) (then every
                mesh has V vertices).
            faces: list of N integer tensors (F_i, 3) indexing that mesh's vertices (rows of
                all -1 are dropped), or an integer tensor (N, F, 3) padded at the end with
                rows of -1.
            textures: any object carried along; its ``extend``, ``clone``, ``detach``,
                ``to``, ``__getitem__`` and ``join_batch`` are used when present.
            verts_normals: optional vertex normals, list of (V_i, 3) or padded (N, V, 3),
                used instead of computed ones until the vertices change (translations by a
                (3,) offset keep them).

        Raises:
            ValueError: on wrong shapes or dtypes, mismatched batch sizes or devices,
                NaN/inf vertices, or face indices out of range.
        """
        if isinstance(verts, (list, tuple)) and isinstance(faces, (list, tuple)):
            verts_list, faces_list = _validate_lists(verts, faces)
            self._setup(verts_list, faces_list, textures)
        elif torch.is_tensor(verts) and torch.is_tensor(faces):
            faces_padded, num_faces = _validate_padded(verts, faces)
            faces_list = [f[:n] for f, n in zip(faces_padded.unbind(0), num_faces, strict=True)]
            self._setup_state(
                "padded", verts, faces_list, [verts.shape[1]] * verts.shape[0], textures,
                verts.device, verts.dtype,
            )
            self._topo["faces_padded"] = faces_padded[:, : self._F]
        else:
            raise ValueError(
                "verts and faces must both be lists of tensors or both padded tensors, got "
                f"{type(verts).__name__} and {type(faces).__name__}"
            )
        if verts_normals is not None:
            self._set_verts_normals(verts_normals)
        if textures is not None:
            self._check_textures(tell_counts=True)

    # ------------------------------------------------------------------ construction

    def _check_textures(self, tell_counts: bool = False) -> None:
        """Textures given by the user must fit the meshes (PyTorch3D checks the same).

        Textures that take them are told the per-mesh counts and which meshes are valid, as
        PyTorch3D does; that is how a padded texture input is trimmed to each mesh.
        """
        tex = self.textures
        check = getattr(tex, "check_shapes", None)
        if check is not None and not check(self._N, self._V, self._F):
            raise ValueError(
                f"textures ({type(tex).__name__}) do not match the dimensions of Meshes "
                f"(N={self._N}, max verts {self._V}, max faces {self._F})"
            )
        if not tell_counts:
            return
        counts = {"_num_faces_per_mesh": self._num_faces,
                  "_num_verts_per_mesh": self._num_verts, "valid": self.valid}
        for name, value in counts.items():
            if hasattr(type(tex), name) or hasattr(tex, name):
                setattr(tex, name, value)

    def _setup(self, verts_list: list, faces_list: list, textures: Any) -> None:
        device = verts_list[0].device if verts_list else torch.device("cpu")
        dtype = verts_list[0].dtype if verts_list else torch.float32
        num_verts = [int(v.shape[0]) for v in verts_list]
        self._setup_state("list", verts_list, faces_list, num_verts, textures, device, dtype)

    def _setup_state(
        self, kind: str, verts: Any, faces_list: list, num_verts: list[int], textures: Any,
        device: torch.device, dtype: torch.dtype,
    ) -> None:
        self.textures = textures
        self._device = torch.device(device)
        self._dtype = dtype
        self._N = len(faces_list)
        self._num_verts = num_verts
        self._num_faces = [int(f.shape[0]) for f in faces_list]
        self._V = max(num_verts, default=0)
        self._F = max(self._num_faces, default=0)
        self._faces_list = faces_list
        self._topo: dict[str, Any] = {}
        self._vsrc = kind
        self._vcache: dict[str, Any] = {kind: verts}
        self._normals_given = False

    @classmethod
    def _trusted(
        cls, verts_list: list, faces_list: list, textures: Any = None,
        normals_list: list | None = None,
    ) -> Meshes:
        """Build from already validated lists (int64 faces, consistent devices)."""
        out = cls.__new__(cls)
        out._setup(verts_list, faces_list, textures)
        if normals_list is not None:
            out._set_verts_normals(normals_list)
        return out

    def _set_verts_normals(self, normals: Sequence[torch.Tensor] | torch.Tensor) -> None:
        if isinstance(normals, (list, tuple)):
            if len(normals) != self._N or any(
                not torch.is_tensor(n) or tuple(n.shape) != (v, 3)
                for n, v in zip(normals, self._num_verts, strict=True)
            ):
                raise ValueError("verts_normals: expected one (V_i, 3) tensor per mesh")
            packed = torch.cat(list(normals), 0) if normals else self._empty((0, 3))
        elif torch.is_tensor(normals):
            if tuple(normals.shape) != (self._N, self._V, 3):
                raise ValueError(
                    f"verts_normals: expected shape {(self._N, self._V, 3)}, "
                    f"got {tuple(normals.shape)}"
                )
            packed = normals.reshape(-1, 3)[self.verts_padded_to_packed_idx()]
        else:
            raise ValueError("verts_normals must be a list of tensors or a padded tensor")
        if packed.device != self._device:
            raise ValueError(f"verts_normals is on {packed.device}, meshes on {self._device}")
        self._vcache["verts_normals_packed"] = packed
        self._normals_given = True

    def _empty(self, shape: tuple[int, ...], dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.zeros(shape, dtype=dtype or self._dtype, device=self._device)

    def _replace_verts(self, kind: str, value: torch.Tensor, keep: Sequence[str] = ()) -> None:
        """Make ``value`` (a vertex form) the source of truth; drop derived vertex views."""
        kept = {k: self._vcache[k] for k in keep if k in self._vcache}
        self._vsrc = kind
        self._vcache = {kind: value, **kept}
        self._dtype = value.dtype if torch.is_tensor(value) else self._dtype
        if "verts_normals_packed" not in kept:
            self._normals_given = False

    def _copy_with(self, fn: Callable[[torch.Tensor], torch.Tensor], device: torch.device,
                   tex_method: str, *tex_args: Any) -> Meshes:
        """A new object with ``fn`` applied to the vertex source, given normals and topology."""
        out = self.__class__.__new__(self.__class__)
        out.__dict__.update(self.__dict__)
        out._device = device
        out._faces_list = [fn(f) for f in self._faces_list]
        out._topo = {k: _map(fn, v) for k, v in self._topo.items()}
        keep = [self._vsrc] + (["verts_normals_packed"] if self._normals_given else [])
        out._vcache = {k: _map(fn, self._vcache[k]) for k in keep}
        out.textures = self._texture_call(tex_method, *tex_args)
        return out

    def _texture_call(self, method: str, *args: Any) -> Any:
        if self.textures is not None and hasattr(self.textures, method):
            return getattr(self.textures, method)(*args)
        return self.textures

    # ------------------------------------------------------------------ basic info

    def __len__(self) -> int:
        """Number of meshes N."""
        return self._N

    def __repr__(self) -> str:
        return (
            f"Meshes(N={self._N}, verts={self._num_verts}, faces={self._num_faces}, "
            f"device={self._device})"
        )

    @property
    def device(self) -> torch.device:
        """Device of every tensor of the batch."""
        return self._device

    @property
    def equisized(self) -> bool:
        """True when all meshes have the same number of vertices and of faces."""
        return len(set(self._num_verts)) <= 1 and len(set(self._num_faces)) <= 1

    @property
    def valid(self) -> torch.Tensor:
        """(N,) bool: the mesh has at least one vertex and one face."""
        return (self.num_verts_per_mesh() > 0) & (self.num_faces_per_mesh() > 0)

    def isempty(self) -> bool:
        """True when the batch is empty or no mesh has both vertices and faces."""
        return self._N == 0 or not any(v > 0 and f > 0 for v, f in
                                        zip(self._num_verts, self._num_faces, strict=True))

    # ------------------------------------------------------------------ topology

    def _topo_get(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._topo:
            self._topo[key] = make()
        return self._topo[key]

    def _counts(self, key: str) -> torch.Tensor:
        values = self._num_verts if key == "num_verts" else self._num_faces
        return self._topo_get(
            key, lambda: host_tensor(values, torch.int64, self._device)
        )

    def num_verts_per_mesh(self) -> torch.Tensor:
        """(N,) int64 number of vertices of each mesh."""
        return self._counts("num_verts")

    def num_faces_per_mesh(self) -> torch.Tensor:
        """(N,) int64 number of faces of each mesh."""
        return self._counts("num_faces")

    def _first_idx(self, counts: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(counts, 0) - counts

    def mesh_to_verts_packed_first_idx(self) -> torch.Tensor:
        """(N,) int64 index in ``verts_packed()`` of each mesh's first vertex."""
        return self._topo_get("v_first", lambda: self._first_idx(self.num_verts_per_mesh()))

    def mesh_to_faces_packed_first_idx(self) -> torch.Tensor:
        """(N,) int64 index in ``faces_packed()`` of each mesh's first face."""
        return self._topo_get("f_first", lambda: self._first_idx(self.num_faces_per_mesh()))

    def _owner(self, counts: torch.Tensor, total: int) -> torch.Tensor:
        # output_size (known on the host): repeat_interleave would otherwise read it back
        return torch.repeat_interleave(torch.arange(self._N, device=self._device), counts,
                                       output_size=total)

    def verts_packed_to_mesh_idx(self) -> torch.Tensor:
        """(sum V_i,) int64 mesh index of each packed vertex."""
        return self._topo_get(
            "v_owner", lambda: self._owner(self.num_verts_per_mesh(), sum(self._num_verts)))

    def faces_packed_to_mesh_idx(self) -> torch.Tensor:
        """(sum F_i,) int64 mesh index of each packed face."""
        return self._topo_get(
            "f_owner", lambda: self._owner(self.num_faces_per_mesh(), sum(self._num_faces)))

    def _padded_to_packed_idx(self, owner: torch.Tensor, first: torch.Tensor,
                              width: int) -> torch.Tensor:
        rows = torch.arange(owner.shape[0], device=self._device)
        return rows - first[owner] + owner * width

    def verts_padded_to_packed_idx(self) -> torch.Tensor:
        """(sum V_i,) int64: ``verts_packed() == verts_padded().reshape(-1, 3)[idx]``."""
        return self._topo_get("v_pad_idx", lambda: self._padded_to_packed_idx(
            self.verts_packed_to_mesh_idx(), self.mesh_to_verts_packed_first_idx(), self._V))

    def _faces_padded_to_packed_idx(self) -> torch.Tensor:
        return self._topo_get("f_pad_idx", lambda: self._padded_to_packed_idx(
            self.faces_packed_to_mesh_idx(), self.mesh_to_faces_packed_first_idx(), self._F))

    def faces_list(self) -> list[torch.Tensor]:
        """List of N int64 tensors (F_i, 3) indexing each mesh's own vertices."""
        return self._faces_list

    def faces_packed(self) -> torch.Tensor:
        """(sum F_i, 3) int64 faces indexing ``verts_packed()``."""
        def make() -> torch.Tensor:
            if self._N == 0:
                return self._empty((0, 3), torch.int64)
            offsets = self.mesh_to_verts_packed_first_idx()[self.faces_packed_to_mesh_idx()]
            return torch.cat(self._faces_list, 0) + offsets[:, None]
        return self._topo_get("faces_packed", make)

    def faces_padded(self) -> torch.Tensor:
        """(N, max F_i, 3) int64 faces, padded with -1."""
        def make() -> torch.Tensor:
            if self._N == 0:
                return self._empty((0, 0, 3), torch.int64)
            return list_to_padded(self._faces_list, (self._F, 3), pad_value=-1)
        return self._topo_get("faces_padded", make)

    def _edges(self) -> dict[str, torch.Tensor]:
        def make() -> dict[str, torch.Tensor]:
            n_verts = sum(self._num_verts)
            edges, f2e = unique_edges(self.faces_packed(), n_verts)
            owner = self.verts_packed_to_mesh_idx()[edges[:, 0]]
            counts = torch.bincount(owner, minlength=self._N)
            # int32 counts, as PyTorch3D's (its face and vertex counts are int64)
            return {"edges": edges, "f2e": f2e, "owner": owner,
                    "counts": counts.to(torch.int32), "first": self._first_idx(counts)}
        return self._topo_get("edges", make)

    def edges_packed(self) -> torch.Tensor:
        """(sum E_i, 2) int64 unique undirected edges (v0 < v1) into ``verts_packed()``."""
        return self._edges()["edges"]

    def faces_packed_to_edges_packed(self) -> torch.Tensor:
        """(sum F_i, 3) int64: column i is the edge opposite vertex i of each face."""
        return self._edges()["f2e"]

    def edges_packed_to_mesh_idx(self) -> torch.Tensor:
        """(sum E_i,) int64 mesh index of each packed edge."""
        return self._edges()["owner"]

    def num_edges_per_mesh(self) -> torch.Tensor:
        """(N,) int32 number of unique edges of each mesh (PyTorch3D's dtype)."""
        return self._edges()["counts"]

    def mesh_to_edges_packed_first_idx(self) -> torch.Tensor:
        """(N,) int64 index in ``edges_packed()`` of each mesh's first edge."""
        return self._edges()["first"]

    def laplacian_packed(self) -> torch.Tensor:
        """(sum V_i, sum V_i) sparse uniform Laplacian: L[i,j] = 1/deg(i) on edges, L[i,i] = -1.

        Depends on the topology only (not differentiable).
        """
        def make() -> torch.Tensor:
            n = sum(self._num_verts)
            e0, e1 = self.edges_packed().unbind(1)
            idx = torch.stack([torch.cat([e0, e1]), torch.cat([e1, e0])])
            deg = torch.bincount(idx[0], minlength=n).to(self._dtype)
            inv = torch.where(deg > 0, 1.0 / deg.clamp(min=1), deg)
            diag = torch.arange(n, device=self._device)
            idx = torch.cat([idx, torch.stack([diag, diag])], 1)
            val = torch.cat([inv[idx[0, : 2 * e0.shape[0]]], -torch.ones_like(inv)])
            return torch.sparse_coo_tensor(idx, val, (n, n), check_invariants=True).coalesce()
        return self._topo_get("laplacian", make)

    # ------------------------------------------------------------------ vertices

    def _vget(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._vcache:
            self._vcache[key] = make()
        return self._vcache[key]

    def verts_packed(self) -> torch.Tensor:
        """(sum V_i, 3) vertices of all meshes, concatenated; differentiable."""
        def make() -> torch.Tensor:
            if "list" in self._vcache:
                vl = self._vcache["list"]
                return torch.cat(vl, 0) if vl else self._empty((0, 3))
            padded = self._vcache["padded"]
            if all(v == self._V for v in self._num_verts):
                return padded.reshape(-1, 3)
            return padded.reshape(-1, 3)[self.verts_padded_to_packed_idx()]
        return self._vget("packed", make)

    def verts_list(self) -> list[torch.Tensor]:
        """List of N tensors (V_i, 3); views of the other forms, differentiable."""
        def make() -> list[torch.Tensor]:
            if "padded" in self._vcache:
                return padded_to_list(self._vcache["padded"], self._num_verts)
            return list(self.verts_packed().split(self._num_verts, 0))
        return self._vget("list", make)

    def _packed_to_padded(self, x: torch.Tensor, idx: torch.Tensor, width: int) -> torch.Tensor:
        out = x.new_zeros((self._N * width, *x.shape[1:]))
        return out.index_copy(0, idx, x).reshape(self._N, width, *x.shape[1:])

    def verts_padded(self) -> torch.Tensor:
        """(N, max V_i, 3) vertices, zero-padded; differentiable."""
        def make() -> torch.Tensor:
            if self._N > 0 and "list" in self._vcache and len(set(self._num_verts)) == 1:
                return torch.stack(self._vcache["list"], 0)
            return self._packed_to_padded(
                self.verts_packed(), self.verts_padded_to_packed_idx(), self._V
            )
        return self._vget("padded", make)

    def get_mesh_verts_faces(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertices (V_i, 3) and faces (F_i, 3) of mesh ``index``."""
        if not isinstance(index, int) or not -self._N <= index < self._N:
            raise ValueError(f"index: expected an int in [0, {self._N}), got {index!r}")
        return self.verts_list()[index], self._faces_list[index]

    # ------------------------------------------------------------------ normals, areas

    def _face_areas_normals(self) -> None:
        if "faces_areas_packed" in self._vcache and "faces_normals_packed" in self._vcache:
            return
        v = self.verts_packed()[self.faces_packed()]  # (F, 3, 3)
        n = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=1)
        self._vcache["faces_areas_packed"] = n.norm(dim=1) / 2
        self._vcache["faces_normals_packed"] = torch.nn.functional.normalize(n, eps=1e-6, dim=1)

    def faces_areas_packed(self) -> torch.Tensor:
        """(sum F_i,) triangle areas; differentiable w.r.t. vertices."""
        self._face_areas_normals()
        return self._vcache["faces_areas_packed"]

    def faces_normals_packed(self) -> torch.Tensor:
        """(sum F_i, 3) unit normals (v1 - v0) x (v2 - v0); differentiable."""
        self._face_areas_normals()
        return self._vcache["faces_normals_packed"]

    def faces_normals_list(self) -> list[torch.Tensor]:
        """List of N tensors (F_i, 3) of unit face normals; differentiable."""
        return list(self.faces_normals_packed().split(self._num_faces, 0))

    def faces_normals_padded(self) -> torch.Tensor:
        """(N, max F_i, 3) unit face normals, zero-padded; differentiable."""
        return self._packed_to_padded(
            self.faces_normals_packed(), self._faces_padded_to_packed_idx(), self._F
        )

    def has_verts_normals(self) -> bool:
        """True when vertex normals were given or have already been computed."""
        return "verts_normals_packed" in self._vcache

    def verts_normals_packed(self) -> torch.Tensor:
        """(sum V_i, 3) unit vertex normals; differentiable w.r.t. vertices.

        PyTorch3D's formula: the sum over adjacent faces of the corner cross products
        (area-weighted face normals), normalised with eps 1e-6; vertices in no face get 0.
        """
        def make() -> torch.Tensor:
            verts, faces = self.verts_packed(), self.faces_packed()
            v = verts[faces]  # (F, 3, 3)
            out = torch.zeros_like(verts)
            for i in range(3):
                a, b, c = v[:, i], v[:, (i + 1) % 3], v[:, (i + 2) % 3]
                out = out.index_add(0, faces[:, i], torch.linalg.cross(b - a, c - a, dim=1))
            return torch.nn.functional.normalize(out, eps=1e-6, dim=1)
        return self._vget("verts_normals_packed", make)

    def verts_normals_list(self) -> list[torch.Tensor]:
        """List of N tensors (V_i, 3) of unit vertex normals; differentiable."""
        return list(self.verts_normals_packed().split(self._num_verts, 0))

    def verts_normals_padded(self) -> torch.Tensor:
        """(N, max V_i, 3) unit vertex normals, zero-padded; differentiable."""
        return self._packed_to_padded(
            self.verts_normals_packed(), self.verts_padded_to_packed_idx(), self._V
        )

    def get_bounding_boxes(self) -> torch.Tensor:
        """(N, 3, 2) per-mesh [min, max] of each coordinate (zeros for empty meshes).

        Differentiable w.r.t. the extreme vertices.
        """
        vp = self.verts_padded()
        if self._V == 0:
            return self._empty((self._N, 3, 2))
        counts = self.num_verts_per_mesh()
        mask = (torch.arange(self._V, device=self._device)[None] < counts[:, None])[..., None]
        inf = torch.tensor(float("inf"), dtype=vp.dtype, device=self._device)
        lo = torch.where(mask, vp, inf).amin(1)
        hi = torch.where(mask, vp, -inf).amax(1)
        empty = (counts == 0)[:, None]
        lo, hi = lo.masked_fill(empty, 0.0), hi.masked_fill(empty, 0.0)
        return torch.stack([lo, hi], dim=2)

    # ------------------------------------------------------------------ vertex updates

    def offset_verts_(self, vert_offsets_packed: torch.Tensor) -> Meshes:
        """Add offsets to the vertices in place (replaces the stored tensors; autograd-safe).

        Args:
            vert_offsets_packed: (sum V_i, 3), or (3,) added to every vertex. Normals and
                areas are kept for a (3,) translation, recomputed otherwise.

        Returns:
            self. Differentiable w.r.t. the old vertices and the offsets.
        """
        packed = self.verts_packed()
        if not torch.is_tensor(vert_offsets_packed):
            raise ValueError("vert_offsets_packed must be a tensor")
        keep: tuple[str, ...] = ()
        if vert_offsets_packed.shape == (3,):
            keep = _NORMAL_KEYS
        elif vert_offsets_packed.shape != packed.shape:
            raise ValueError(
                f"vert_offsets_packed: expected shape (3,) or {tuple(packed.shape)}, "
                f"got {tuple(vert_offsets_packed.shape)}"
            )
        if vert_offsets_packed.device != self._device:
            raise ValueError(
                f"vert_offsets_packed is on {vert_offsets_packed.device}, meshes on {self._device}"
            )
        self._replace_verts("packed", packed + vert_offsets_packed, keep)
        return self

    def offset_verts(self, vert_offsets_packed: torch.Tensor) -> Meshes:
        """Out-of-place ``offset_verts_`` on a clone; see there for shapes."""
        return self.clone().offset_verts_(vert_offsets_packed)

    def scale_verts_(self, scale: float | torch.Tensor) -> Meshes:
        """Multiply each mesh's vertices in place by a scalar or per-mesh (N,) scale.

        Returns:
            self. Differentiable w.r.t. the old vertices and ``scale``.
        """
        scale_t = torch.as_tensor(scale, dtype=self._dtype, device=self._device)
        if scale_t.ndim == 0:
            scale_t = scale_t.expand(self._N)
        if scale_t.shape != (self._N,):
            raise ValueError(f"scale: expected a scalar or shape ({self._N},), got {scale_t.shape}")
        per_vert = scale_t[self.verts_packed_to_mesh_idx()][:, None]
        self._replace_verts("packed", self.verts_packed() * per_vert)
        return self

    def scale_verts(self, scale: float | torch.Tensor) -> Meshes:
        """Out-of-place ``scale_verts_`` on a clone."""
        return self.clone().scale_verts_(scale)

    def update_padded(self, new_verts_padded: torch.Tensor) -> Meshes:
        """A new ``Meshes`` with these padded vertices and the same faces and textures.

        Args:
            new_verts_padded: (N, max V_i, 3) float tensor; values in the padding are
                ignored. Not checked for NaN (it is the per-step path of optimisation and
                projection; the rasterizer checks its input).

        Returns:
            ``Meshes`` sharing this one's topology (faces, index maps, edges) and textures;
            differentiable w.r.t. ``new_verts_padded``.
        """
        if not torch.is_tensor(new_verts_padded):
            raise ValueError("new_verts_padded must be a tensor")
        if tuple(new_verts_padded.shape) != (self._N, self._V, 3):
            raise ValueError(
                f"new_verts_padded: expected shape {(self._N, self._V, 3)}, "
                f"got {tuple(new_verts_padded.shape)}"
            )
        if not new_verts_padded.dtype.is_floating_point:
            raise ValueError(f"new_verts_padded: expected floats, got {new_verts_padded.dtype}")
        if new_verts_padded.device != self._device:
            raise ValueError(
                f"new_verts_padded is on {new_verts_padded.device}, meshes on {self._device}"
            )
        out = self.__class__.__new__(self.__class__)
        out.__dict__.update(self.__dict__)
        # the same dict, not a copy: topology first computed by any of the copies (one per
        # optimisation step) is then computed once, not re-sent from the host each step
        out._topo = self._topo
        out._replace_verts("padded", new_verts_padded)
        return out

    # ------------------------------------------------------------------ copies, batches

    def clone(self) -> Meshes:
        """Deep copy (tensors cloned; still differentiable w.r.t. the originals)."""
        return self._copy_with(torch.Tensor.clone, self._device, "clone")

    def detach(self) -> Meshes:
        """Copy whose tensors are detached from the autograd graph."""
        return self._copy_with(torch.Tensor.detach, self._device, "detach")

    def to(self, device: str | torch.device, copy: bool = False) -> Meshes:
        """This batch on ``device`` (self if already there and ``copy`` is False)."""
        device = torch.empty(0, device=device).device  # resolves "cuda" to "cuda:0"
        same = device == self._device
        if same and not copy:
            return self
        if same:
            return self.clone()
        return self._copy_with(lambda t: t.to(device), device, "to", device)

    def cpu(self) -> Meshes:
        """This batch on the CPU."""
        return self.to("cpu")

    def cuda(self) -> Meshes:
        """This batch on the current CUDA device."""
        return self.to("cuda")

    def _normals_list_or_none(self) -> list[torch.Tensor] | None:
        return self.verts_normals_list() if self._normals_given else None

    def __getitem__(self, index: int | slice | list[int] | torch.Tensor) -> Meshes:
        """Select meshes by int, slice, list of ints or a 1-D int64/bool tensor (no copy)."""
        if isinstance(index, bool):
            raise IndexError(index)
        if isinstance(index, int):
            if not -self._N <= index < self._N:
                raise IndexError(f"mesh index {index} out of range for {self._N} meshes")
            ids, tex_index = [index % self._N], index
        elif isinstance(index, slice):
            ids, tex_index = list(range(self._N))[index], index
        elif isinstance(index, (list, tuple)) or torch.is_tensor(index):
            if torch.is_tensor(index):
                if index.ndim != 1 or not (index.dtype == torch.bool or _is_int_dtype(index)):
                    raise IndexError(f"expected a 1-D int or bool tensor, got {index.dtype}")
                if index.dtype == torch.bool:
                    if index.shape[0] != self._N:
                        raise IndexError(f"bool index of length {index.shape[0]} for {self._N}")
                    index = index.nonzero().flatten()
                index = index.tolist()
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in index):
                raise IndexError(f"expected integer indices, got {index!r}")
            bad = [i for i in index if not -self._N <= i < self._N]
            if bad:
                raise IndexError(f"mesh indices {bad} out of range for {self._N} meshes")
            ids = [i % self._N for i in index]
            tex_index = ids
        else:
            raise IndexError(f"cannot index Meshes with {type(index).__name__}")
        vl, normals = self.verts_list(), self._normals_list_or_none()
        textures = self.textures
        if textures is not None and hasattr(textures, "__getitem__"):
            textures = textures[tex_index]
        return self._trusted(
            [vl[i] for i in ids], [self._faces_list[i] for i in ids], textures,
            None if normals is None else [normals[i] for i in ids],
        )

    def split(self, split_sizes: Sequence[int]) -> list[Meshes]:
        """Split into consecutive batches of the given sizes (like ``torch.split``)."""
        if not all(isinstance(s, int) and s >= 0 for s in split_sizes):
            raise ValueError(f"split_sizes: expected non-negative ints, got {split_sizes!r}")
        if sum(split_sizes) != self._N:
            raise ValueError(f"split_sizes sum to {sum(split_sizes)}, not {self._N}")
        starts = [sum(split_sizes[:i]) for i in range(len(split_sizes))]
        return [self[s : s + n] for s, n in zip(starts, split_sizes, strict=True)]

    def extend(self, N: int) -> Meshes:
        """A batch holding each mesh ``N`` times in a row (m0, m0, ..., m1, m1, ...).

        Vertices are cloned, so gradients from every copy flow back to the originals.
        """
        if isinstance(N, bool) or not isinstance(N, int) or N <= 0:
            raise ValueError(f"N must be a positive int, got {N!r}")
        vl, normals = self.verts_list(), self._normals_list_or_none()
        new_verts = [v.clone() for v in vl for _ in range(N)]
        # copies of the faces too: each mesh of the result owns its tensors, as in PyTorch3D
        new_faces = [f.clone() for f in self._faces_list for _ in range(N)]
        new_normals = None if normals is None else [n for n in normals for _ in range(N)]
        return self._trusted(
            new_verts, new_faces, self._texture_call("extend", N), new_normals
        )

    def submeshes(
        self, face_indices: Sequence[Sequence[torch.Tensor] | torch.Tensor] | torch.Tensor
    ) -> Meshes:
        """Meshes made of chosen faces of each mesh, keeping only the vertices they use.

        Args:
            face_indices: one entry per mesh, each a list of 1-D int64 tensors of face indices
                (one tensor per submesh; an empty list gives none) or a (S_n, F') int64
                tensor of S_n submeshes; or a single (N, S, F') int64 tensor.

        Returns:
            ``Meshes`` of all submeshes, in order (mesh 0's first, ...). Each keeps the used
            vertices in increasing original order, faces renumbered. Differentiable w.r.t.
            the vertices. Textures are carried over through ``textures.submeshes`` when they
            have it.
        """
        if len(face_indices) != self._N:
            raise ValueError(
                f"face_indices: You must specify exactly one set of submeshes for each mesh "
                f"in this Meshes object (expected {self._N}, got {len(face_indices)})"
            )
        verts_list = self.verts_list()
        sub_verts, sub_faces, sub_vert_ids = [], [], []
        for n, ids_per_mesh in enumerate(face_indices):
            faces, verts = self._faces_list[n], verts_list[n]
            sub_vert_ids.append([])
            for ids in ids_per_mesh:
                if not torch.is_tensor(ids) or ids.ndim != 1 or ids.is_floating_point():
                    raise ValueError(f"face_indices[{n}]: expected 1-D int64 tensors of faces")
                kept = faces[ids.to(self._device)]
                used, remap = torch.unique(kept, return_inverse=True)  # sorted vertex ids
                sub_verts.append(verts[used])
                sub_faces.append(remap.reshape(-1, 3))
                sub_vert_ids[-1].append(used)
        textures = self.textures
        if textures is not None:
            if not hasattr(textures, "submeshes"):
                raise ValueError(f"textures of type {type(textures).__name__} cannot be split "
                                 "into submeshes")
            textures = textures.submeshes(sub_vert_ids, face_indices)
        return self._trusted(sub_verts, sub_faces, textures)

    # ------------------------------------------------------------------ PyTorch3D internals
    # PyTorch3D code and tests reach into these private members. Here they map onto the
    # caches: None until computed, then the cached tensor.

    # diffrend's derived tensors live in caches, not in attributes another object could
    # copy, so there are none to list (PyTorch3D's to_sorted/copy helpers iterate this)
    _INTERNAL_TENSORS: tuple[str, ...] = ()

    def _compute_packed(self, refresh: bool = False) -> None:
        """Fill the packed vertex and face views and their index maps."""
        if refresh and self._vsrc != "packed":
            self._vcache.pop("packed", None)
        self.verts_packed()
        self.faces_packed()
        self.verts_packed_to_mesh_idx()
        self.mesh_to_verts_packed_first_idx()
        self.faces_packed_to_mesh_idx()
        self.mesh_to_faces_packed_first_idx()

    def _compute_padded(self, refresh: bool = False) -> None:
        """Fill the padded vertex and face views."""
        if refresh and self._vsrc != "padded":
            self._vcache.pop("padded", None)
        self.verts_padded()
        self.faces_padded()

    def _compute_edges_packed(self, refresh: bool = False) -> None:
        """Fill the edge views (topology only, so ``refresh`` changes nothing)."""
        self._edges()

    def _compute_face_areas_normals(self, refresh: bool = False) -> None:
        """Fill the face areas and normals (``refresh`` recomputes them)."""
        if refresh:
            self._vcache.pop("faces_areas_packed", None)
            self._vcache.pop("faces_normals_packed", None)
        self._face_areas_normals()

    def _compute_vertex_normals(self, refresh: bool = False) -> None:
        """Fill the vertex normals (``refresh`` recomputes computed ones, not given ones)."""
        if refresh and not self._normals_given:
            self._vcache.pop("verts_normals_packed", None)
        self.verts_normals_packed()

    def _edge_cached(self, key: str) -> torch.Tensor | None:
        edges = self._topo.get("edges")
        return None if edges is None else edges[key]

    _verts_list = property(lambda self: self._vcache.get("list"))
    _verts_packed = property(lambda self: self._vcache.get("packed"))
    _verts_padded = property(lambda self: self._vcache.get("padded"))
    _faces_areas_packed = property(lambda self: self._vcache.get("faces_areas_packed"))
    _faces_normals_packed = property(lambda self: self._vcache.get("faces_normals_packed"))
    _verts_normals_packed = property(lambda self: self._vcache.get("verts_normals_packed"))
    _faces_packed = property(lambda self: self._packed_group("faces_packed"))
    _faces_padded = property(lambda self: self._topo.get("faces_padded"))
    _num_verts_per_mesh = property(lambda self: self.num_verts_per_mesh())
    _num_faces_per_mesh = property(lambda self: self.num_faces_per_mesh())
    def _packed_group(self, method: str) -> torch.Tensor | None:
        # PyTorch3D computes the packed views and their index maps together: present once
        # any of them has been computed
        keys = ("faces_packed", "v_owner", "f_owner", "v_first", "f_first")
        if "packed" in self._vcache or any(k in self._topo for k in keys):
            return getattr(self, method)()
        return None

    _verts_packed_to_mesh_idx = property(
        lambda self: self._packed_group("verts_packed_to_mesh_idx"))
    _faces_packed_to_mesh_idx = property(
        lambda self: self._packed_group("faces_packed_to_mesh_idx"))
    _mesh_to_verts_packed_first_idx = property(
        lambda self: self._packed_group("mesh_to_verts_packed_first_idx"))
    _mesh_to_faces_packed_first_idx = property(
        lambda self: self._packed_group("mesh_to_faces_packed_first_idx"))
    _verts_padded_to_packed_idx = property(lambda self: self._topo.get("v_pad_idx"))
    _laplacian_packed = property(lambda self: self._topo.get("laplacian"))
    _edges_packed = property(lambda self: self._edge_cached("edges"))
    _faces_packed_to_edges_packed = property(lambda self: self._edge_cached("f2e"))
    _edges_packed_to_mesh_idx = property(lambda self: self._edge_cached("owner"))
    _num_edges_per_mesh = property(lambda self: self._edge_cached("counts"))
    _mesh_to_edges_packed_first_idx = property(lambda self: self._edge_cached("first"))

    def sample_textures(self, fragments: Any) -> torch.Tensor:
        """Delegate to ``textures.sample_textures(fragments, faces_packed=...)``."""
        if self.textures is None or not hasattr(self.textures, "sample_textures"):
            raise ValueError("meshes have no textures that can be sampled")
        self._check_textures()
        return self.textures.sample_textures(fragments, faces_packed=self.faces_packed())


def join_meshes_as_batch(meshes: Sequence[Meshes], include_textures: bool = True) -> Meshes:
    """Concatenate several ``Meshes`` into one batch (the meshes in order).

    Args:
        meshes: list of ``Meshes`` on one device with one vertex dtype.
        include_textures: join the textures with ``textures[0].join_batch(textures[1:])``;
            all must have textures, or none.

    Returns:
        ``Meshes`` of sum(len(m)) meshes; differentiable w.r.t. every input's vertices.
    """
    if isinstance(meshes, Meshes) or not isinstance(meshes, (list, tuple)):
        raise ValueError("meshes: expected a list of Meshes")
    if not meshes or not all(isinstance(m, Meshes) for m in meshes):
        raise ValueError("meshes: expected a non-empty list of Meshes")
    if len({m.device for m in meshes}) > 1:
        raise ValueError("meshes: all Meshes must be on the same device")
    if len({m._dtype for m in meshes if len(m)}) > 1:
        raise ValueError("meshes: all Meshes must have the same vertex dtype")
    verts = [v for m in meshes for v in m.verts_list()]
    faces = [f for m in meshes for f in m.faces_list()]
    textures = None
    if include_textures:
        texs = [m.textures for m in meshes]
        if any(t is not None for t in texs):
            if any(t is None for t in texs):
                raise ValueError("meshes: some have textures and some do not")
            if len(texs) == 1:
                textures = texs[0]
            elif not hasattr(texs[0], "join_batch"):
                raise ValueError(f"textures of type {type(texs[0]).__name__} cannot be joined")
            else:
                textures = texs[0].join_batch(texs[1:])
    return Meshes._trusted(verts, faces, textures)


def join_meshes_as_scene(meshes: Meshes | Sequence[Meshes],
                         include_textures: bool = True) -> Meshes:
    """Merge every mesh of a batch (or of a list of batches) into one mesh.

    Args:
        meshes: a ``Meshes`` or a list of them (joined as by :func:`join_meshes_as_batch`).
        include_textures: join the textures too, with ``textures.join_scene()``.

    Returns:
        ``Meshes`` of one mesh whose vertices are all the input vertices (packed order) and
        whose faces index them; differentiable w.r.t. every input's vertices.
    """
    if not isinstance(meshes, Meshes):
        meshes = join_meshes_as_batch(meshes, include_textures=include_textures)
    textures = None
    if include_textures and meshes.textures is not None:
        if not hasattr(meshes.textures, "join_scene"):
            raise ValueError(
                f"textures of type {type(meshes.textures).__name__} cannot be joined")
        textures = meshes.textures.join_scene()
    verts = meshes.verts_packed()
    return Meshes._trusted([verts], [meshes.faces_packed()], textures)
