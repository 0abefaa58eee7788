"""Analytic antialiasing of silhouette edges, differentiable w.r.t. the edges' vertices.

The idea of nvdiffrast's ``antialias`` (Laine et al. 2020), written from its description:
a hard render changes colour in steps where a silhouette edge (the outline of a surface in
front of another surface or the background) passes between two neighbouring pixel centres.
For each such pair, the edge of the front triangle crosses the segment between the centres
at a fraction ``t`` (0 at the front pixel's centre, 1 at the other's). Treating each pixel as
a unit interval along that axis, the front surface covers ``t - 1/2`` of the other pixel when
``t > 1/2``, and leaves ``1/2 - t`` of its own pixel uncovered when ``t < 1/2``; that pixel's
colour moves that far towards its neighbour's. ``t`` is a function of the edge's projected
vertices, so the blended image has gradients w.r.t. the vertex positions (the occlusion
gradient a hard render lacks) as well as w.r.t. the colours.

Edges shared by both pixels' triangles are interior to one surface and are left alone. The
forward pass equals the exact pixel coverage for edges parallel to an image axis; for slanted
edges it is the coverage along the axis, an approximation (tested against supersampling).

The discrete part (which pairs, which edge) is computed without gradients: by a Numba kernel
on the CPU (:mod:`.antialias_kernels`), by its pure-torch twin :func:`outline_pairs_torch`
elsewhere, the two giving the same pairs; the continuous part (``t`` and the blend) is
torch, with gradients (autograd gives the backward).
"""

from __future__ import annotations

import torch

from ..raster.tiles import pixel_centers_torch
from ..structures.utils import unique_edges


def _pairs(p2f: torch.Tensor, zbuf: torch.Tensor, axis: int):
    """Neighbouring pixel pairs along ``axis`` (2: columns, 1: rows) whose faces differ.

    Returns flat indices into (N, H, W) of the front and the other pixel of each pair.
    """
    n, h, w = p2f.shape
    flat = torch.arange(n * h * w, device=p2f.device).reshape(n, h, w)
    a, b = (flat[:, :, :-1], flat[:, :, 1:]) if axis == 2 else (flat[:, :-1], flat[:, 1:])
    a, b = a.reshape(-1), b.reshape(-1)
    fa, fb = p2f.reshape(-1)[a], p2f.reshape(-1)[b]
    keep = (fa != fb) & ((fa >= 0) | (fb >= 0))
    a, b, fa, fb = a[keep], b[keep], fa[keep], fb[keep]
    za = torch.where(fa >= 0, zbuf.reshape(-1)[a], torch.inf)
    zb = torch.where(fb >= 0, zbuf.reshape(-1)[b], torch.inf)
    a_front = za <= zb
    front = torch.where(a_front, a, b)
    other = torch.where(a_front, b, a)
    return front, other


def _check_face_verts(face_verts_ndc: torch.Tensor) -> None:
    if face_verts_ndc.ndim != 3 or face_verts_ndc.shape[1:] != (3, 3):
        raise ValueError(f"face_verts_ndc must have shape (F, 3, 3), got "
                         f"{tuple(face_verts_ndc.shape)}")


def check_image(image, pix_to_face, zbuf, face_verts_ndc, faces, face_image=None,
                name: str = "image") -> None:
    """Shape checks shared by the edge methods (ValueError naming the argument)."""
    if image.ndim != 4:
        raise ValueError(f"{name} must have shape (N, H, W, C), got {tuple(image.shape)}")
    n, h, w, _ = image.shape
    for arg, t in (("pix_to_face", pix_to_face), ("zbuf", zbuf)):
        if tuple(t.shape) != (n, h, w):
            raise ValueError(f"{arg} must have shape {(n, h, w)}, got {tuple(t.shape)}")
    _check_face_verts(face_verts_ndc)
    n_faces = face_verts_ndc.shape[0]
    if tuple(faces.shape) != (n_faces, 3):
        raise ValueError(f"faces must have shape ({n_faces}, 3), got {tuple(faces.shape)}")
    if face_image is not None and tuple(face_image.shape) != (n_faces,):
        raise ValueError(f"face_image must have shape ({n_faces},), got "
                         f"{tuple(face_image.shape)}")


def hard_silhouette(face_verts_ndc: torch.Tensor, pix_to_face: torch.Tensor) -> torch.Tensor:
    """Checked inputs of the hard-forward methods, and their forward image: the silhouette
    (N, H, W) in face_verts_ndc's dtype (1 where ``pix_to_face`` (N, H, W) >= 0)."""
    _check_face_verts(face_verts_ndc)
    if pix_to_face.ndim != 3:
        raise ValueError(f"pix_to_face must have shape (N, H, W), got "
                         f"{tuple(pix_to_face.shape)}")
    return (pix_to_face >= 0).to(face_verts_ndc.dtype)


def _edge(a: torch.Tensor, b: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Edge functions (P, 3) of points p (P, 2) against edges a -> b (P, 3, 2)."""
    ab, d = b - a, p[:, None, :] - a
    return ab[..., 0] * d[..., 1] - ab[..., 1] * d[..., 0]


def _edge_topology(face_verts_ndc: torch.Tensor,
                   faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per face edge i (opposite corner i): is it a possible silhouette, and the face across.

    Boundary edges (one face) and edges whose two faces face opposite ways on screen are
    silhouettes; edges inside a surface that faces one way are not.

    Returns:
        ``(silhouette (F, 3) bool, across (F, 3) int64)``, ``across`` -1 where no single
        neighbour exists.
    """
    n_faces = faces.shape[0]
    n_verts = int(faces.max()) + 1 if faces.numel() else 0
    edges, f2e = unique_edges(faces, n_verts)
    xy = face_verts_ndc[..., :2]
    d1, d2 = xy[:, 1] - xy[:, 0], xy[:, 2] - xy[:, 0]
    facing = torch.sign(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0])  # (F,)
    n_edges = edges.shape[0]
    flat = f2e.reshape(-1)
    owner = torch.arange(n_faces, device=faces.device).repeat_interleave(3)
    count = torch.bincount(flat, minlength=n_edges)
    fsum = torch.zeros(n_edges, dtype=facing.dtype, device=faces.device)
    fsum.index_add_(0, flat, facing[owner])
    # Two faces facing the same way sum to +-2; opposite ways (or a degenerate one) less.
    sil = (count == 1) | ((count == 2) & (fsum.abs() < 2)) | (count > 2)
    owner_sum = torch.zeros(n_edges, dtype=torch.long, device=faces.device)
    owner_sum.index_add_(0, flat, owner)
    across = torch.where(count[f2e] == 2, owner_sum[f2e] - owner.reshape(n_faces, 3), -1)
    return sil[f2e], across


# Triangles a walk along one pixel-to-pixel segment may cross before it reaches an outline.
_MAX_HOPS = 8


def _use_kernel(*tensors: torch.Tensor) -> bool:
    return all(t.device.type == "cpu" for t in tensors)


def outline_pairs_torch(
    pix_to_face: torch.Tensor,
    zbuf: torch.Tensor,
    face_verts_ndc: torch.Tensor,
    faces: torch.Tensor,
    face_sil: torch.Tensor,
    face_across: torch.Tensor,
    xs: torch.Tensor,
    ys: torch.Tensor,
    axis: int,
    max_hops: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The discrete step of :func:`antialias` along one axis: the neighbouring pixel pairs
    that an outline edge separates, and that edge. Pure torch (any device); the CPU kernel
    :func:`~.antialias_kernels.outline_pairs_cpu` gives the same. No gradients.

    Args:
        pix_to_face, zbuf: (N, H, W) nearest face per pixel (-1: background) and its depth.
        face_verts_ndc: (F, 3, 3) the faces' NDC vertices (x, y used).
        faces: (F, 3) vertex indices.
        face_sil, face_across: (F, 3) from :func:`_edge_topology`.
        xs, ys: (W,) and (H,) the pixel centres' NDC x and y.
        axis: 2, pairs of horizontal neighbours; 1, vertical ones.
        max_hops: triangles a walk crosses at most before it gives up on the pair.

    Returns:
        ``(front, other, exit_face, which)``, each (P,) int64, P pairs in ascending order of
        their first pixel: flat (N, H, W) indices of the nearer pixel and the other, the face
        whose edge ``which`` (opposite corner ``which``) is the outline between them.
    """
    n, h, w = pix_to_face.shape
    p2f = pix_to_face.reshape(-1)
    front, other = _pairs(pix_to_face, zbuf, axis)
    fid = p2f[front]
    pf = torch.stack([xs[front % w], ys[(front // w) % h]], 1)  # (P, 2) NDC centres
    po = torch.stack([xs[other % w], ys[(other // w) % h]], 1)
    # Walk along the segment from the front centre: leave the triangle through its first
    # edge; an interior edge hands over to the triangle across it (the outline may belong
    # to a neighbour of the front pixel's triangle), a silhouette edge ends the walk.
    # The walk decides which edge a pair belongs to: in float64, since nearly edge-on
    # triangles at an outline make float32 edge tests lose pairs.
    fv64, pf64, po64 = face_verts_ndc.detach().double(), pf.double(), po.double()
    face = fid.clone()
    t_prev = torch.full(fid.shape, -1.0, dtype=torch.float64, device=fid.device)
    ok = torch.zeros(fid.shape, dtype=torch.bool, device=fid.device)
    live = torch.ones_like(ok)
    exit_face = torch.zeros_like(fid)
    which = torch.zeros_like(fid)
    for _ in range(max_hops):
        tri = fv64[face][..., :2]
        a, b = tri[:, [1, 2, 0]], tri[:, [2, 0, 1]]
        ef, eo = _edge(a, b, pf64), _edge(a, b, po64)
        cross = (ef * eo) < 0
        t_all = ef / torch.where(cross, ef - eo, 1.0)
        t_all = torch.where(cross & (t_all > t_prev[:, None] + 1e-9), t_all, 2.0)
        t_min, k = t_all.min(dim=1)
        live &= t_min <= 1.0
        sil_hit = face_sil[face, k]
        done = live & sil_hit
        ok |= done
        exit_face = torch.where(done, face, exit_face)
        which = torch.where(done, k, which)
        nxt = face_across[face, k]
        live &= ~sil_hit & (nxt >= 0)
        face = torch.where(live, nxt, face)
        t_prev = torch.where(live, t_min, t_prev)
        if not bool(live.any()):
            break
    # The other pixel's own face sharing the edge: a fold seen edge-on, no outline.
    fo = p2f[other]
    ev = faces[exit_face]
    e0 = ev.gather(1, ((which + 1) % 3)[:, None])[:, 0]
    e1 = ev.gather(1, ((which + 2) % 3)[:, None])[:, 0]
    fo_verts = faces[fo.clamp(min=0)]
    shared = ((fo >= 0) & (fo_verts == e0[:, None]).any(1)
              & (fo_verts == e1[:, None]).any(1) & (fo != exit_face))
    ok &= ~shared
    # Each edge is resolved along one axis only, the one it crosses more steeply
    # (horizontal pairs for edges closer to vertical): along either axis alone the
    # blend moves coverage at the true rate, so both together would count a slanted
    # edge twice.
    ev_xy = fv64[exit_face][..., :2]
    ea = ev_xy.gather(1, ((which + 1) % 3)[:, None, None].expand(-1, 1, 2))[:, 0]
    eb = ev_xy.gather(1, ((which + 2) % 3)[:, None, None].expand(-1, 1, 2))[:, 0]
    dx, dy = (eb - ea).abs().unbind(1)
    ok &= (dy >= dx) if axis == 2 else (dx > dy)
    sel = ok.nonzero()[:, 0]
    return front[sel], other[sel], exit_face[sel], which[sel]


def antialias(
    colors: torch.Tensor,
    pix_to_face: torch.Tensor,
    zbuf: torch.Tensor,
    face_verts_ndc: torch.Tensor,
    faces: torch.Tensor,
) -> torch.Tensor:
    """Blend colours across silhouette edges by the edges' analytic pixel coverage.

    Args:
        colors: (N, H, W, C) a hard-rendered (shaded) image, e.g. ``HardPhongShader``'s RGBA.
        pix_to_face: (N, H, W) int64 nearest face per pixel (``fragments.pix_to_face[...,
            0]``), -1 for background; indexes the packed faces.
        zbuf: (N, H, W) depth of that face at the pixel (decides which side is in front).
        face_verts_ndc: (F, 3, 3) each packed face's vertices in NDC (x, y as the
            rasterizer sees them; z unused), e.g. ``meshes_to_ndc(...).verts_packed()[faces]``.
        faces: (F, 3) int64 packed vertex indices (tells interior edges from silhouettes).

    Returns:
        (N, H, W, C) antialiased colours. Differentiable w.r.t. ``colors`` and
        ``face_verts_ndc`` (through the edge crossings); not w.r.t. the indices or zbuf.

    Raises:
        ValueError: shapes that do not match.
    """
    check_image(colors, pix_to_face, zbuf, face_verts_ndc, faces, name="colors")
    n, h, w, c = colors.shape
    ys, xs = pixel_centers_torch(h, w, face_verts_ndc.dtype, colors.device)
    with torch.no_grad():
        face_sil, face_across = _edge_topology(face_verts_ndc, faces)
    if _use_kernel(pix_to_face, zbuf, face_verts_ndc):
        from .antialias_kernels import outline_pairs_cpu as find_pairs  # (loads Numba)
    else:
        find_pairs = outline_pairs_torch
    flat_colors = colors.reshape(-1, c)
    delta = torch.zeros_like(flat_colors)
    for axis in (2, 1):
        with torch.no_grad():
            fr, ot, exit_face, k = find_pairs(pix_to_face, zbuf, face_verts_ndc, faces,
                                              face_sil, face_across, xs, ys, axis, _MAX_HOPS)
        if fr.numel() == 0:
            continue
        pf = torch.stack([xs[fr % w], ys[(fr // w) % h]], 1).double()  # (P, 2) NDC centres
        po = torch.stack([xs[ot % w], ys[(ot // w) % h]], 1).double()
        # With gradients from here on, in float64: with a vertex far away (1e8) the edge
        # functions are differences of ~1e16 terms, which float32 cancels to 0 / 0.
        tri = face_verts_ndc[exit_face][..., :2].double()
        a = tri.gather(1, ((k + 1) % 3)[:, None, None].expand(-1, 1, 2))
        b = tri.gather(1, ((k + 2) % 3)[:, None, None].expand(-1, 1, 2))
        e_f, e_o = _edge(a, b, pf)[:, 0], _edge(a, b, po)[:, 0]
        den = e_f - e_o  # |e_f| + |e_o| > 0 where the walk found a crossing
        den = torch.where(den != 0, den, torch.ones_like(den))
        # differentiable w.r.t. the edge vertices
        t = (e_f / den).clamp(0.0, 1.0).to(flat_colors.dtype)
        cf, co = flat_colors[fr], flat_colors[ot]
        # front covers part of the other pixel, or leaves part of its own (one side owns
        # t = 1/2 exactly, so an edge midway between centres is not counted twice)
        over = torch.where(t >= 0.5, t - 0.5, 0.0)[:, None]
        under = torch.where(t < 0.5, 0.5 - t, 0.0)[:, None]
        delta = delta.index_add(0, ot, over * (cf - co))
        delta = delta.index_add(0, fr, under * (co - cf))
    out = (flat_colors + delta).reshape(n, h, w, c)
    if face_verts_ndc.requires_grad and not delta.requires_grad:
        # No outline in view: the image does not depend on the vertices, but it is still a
        # function of them (zero gradient), so that backward() works on every scene.
        out = out + face_verts_ndc[:0].sum().to(out.dtype)
    return out


def antialias_render(
    colors: torch.Tensor,
    fragments,
    meshes,
    cameras,
) -> torch.Tensor:
    """:func:`antialias` for a renderer's output: hard-rendered ``colors`` (N, H, W, C) with
    the ``fragments`` they came from, the ``meshes`` and ``cameras`` that were rendered.

    Differentiable w.r.t. the colours, the mesh vertices and the camera parameters (through
    the projected silhouette edges).
    """
    from ..raster.mesh import meshes_to_ndc

    projected = meshes_to_ndc(meshes, cameras)
    faces = projected.faces_packed()
    return antialias(colors, fragments.pix_to_face[..., 0], fragments.zbuf[..., 0],
                     projected.verts_packed()[faces], faces)
