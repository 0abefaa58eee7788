"""Pulsar-style sphere rendering: argument checks, camera vectors, backend dispatch, autograd.

:func:`render_spheres` draws spheres seen by a Pulsar camera (eye, centre of the top-left
pixel, per-pixel steps along image x and y, focal length; see :func:`pulsar_camera`); the
maths is in :mod:`.pulsar_reference` (module docstring). Two backends give the same values:

* ``"reference"``: the pure-torch twin, every (pixel, sphere) pair, autograd throughout;
* ``"numba"`` (CPU default): spheres' pixel boxes are expanded into (pixel, sphere) pairs and
  blended by the Numba kernels of :mod:`.pulsar_numba`; the per-pair geometry is the twin's
  torch code, so positions, radii, opacities and the camera get gradients through autograd
  and the kernels' per-pair gradients are summed into spheres by a scatter-add.

Differences from PyTorch3D's CUDA/C++ Pulsar, by design: ``percent_allowed_difference`` is
checked and recorded but never used to stop early (ours always blends every hit, which is
Pulsar's result with ``percent_allowed_difference=0``); ``max_n_hits`` is exact (the first
``max_n_hits`` hits in drawing order, nearest possible depth first), where Pulsar checks it
between chunks of spheres; every hit gets gradients (Pulsar's backward only sends them to
the ``n_track`` nearest spheres of each pixel).
"""

from __future__ import annotations

import math

import torch

from ..raster.backends import check_backend_name, resolve_backend
from ..transforms import axis_angle_to_matrix, rotation_6d_to_matrix
from .pulsar_reference import (
    FEPS,
    camera_frame,
    closest_possible_depth,
    composite_reference,
    pair_terms,
    truncate_hits,
)

MAX_UINT = 4294967295  # Pulsar's "no limit" for max_n_hits


def _check_finite(name: str, t: torch.Tensor) -> None:
    if not torch.isfinite(t.detach()).all():
        raise ValueError(f"{name} must be finite (found NaN or inf)")


def _check_shape(name: str, t: torch.Tensor, shape: tuple[int | None, ...]) -> None:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    ok = t.ndim == len(shape) and all(
        s is None or s == d for s, d in zip(shape, t.shape, strict=False)
    )
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}")


def pulsar_camera(
    cam_params: torch.Tensor,
    width: int,
    height: int,
    orthogonal: bool,
    right_handed: bool,
    first_R_then_T: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pulsar's camera vector(s) to the renderer's camera vectors (PyTorch3D's layout).

    Args:
        cam_params: ([B,] D) with D = 8 (position 3, axis-angle 3, focal length, sensor
            width), 10 (the same and an integer principal point offset x, y in pixels), 11
            (position 3, 6D rotation of Zhou et al., focal length, sensor width) or 13 (11
            and the offset). World units; the sensor height follows from square pixels.
        width, height: image size in pixels.
        orthogonal: orthographic camera (the focal length is ignored).
        right_handed: Pulsar's right-handed world (the viewing axis is -z of the rotation).
        first_R_then_T: rotate the position by the rotation first (PyTorch3D's order).

    Returns:
        cam_pos, pixel_0_0_center, pixel_vec_x, pixel_vec_y: ([B,] 3); focal_length: ([B]);
        principal_point_offsets: ([B,] 2) int32. Differentiable in ``cam_params`` (not the
        offsets).
    """
    if not isinstance(cam_params, torch.Tensor) or cam_params.ndim not in (1, 2):
        raise ValueError("cam_params must be a tensor of shape ([B,] 8|10|11|13)")
    if cam_params.shape[-1] not in (8, 10, 11, 13):
        raise ValueError(
            f"cam_params must have 8, 10, 11 or 13 entries, got {cam_params.shape[-1]}"
        )
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive, got {width}, {height}")
    _check_finite("cam_params", cam_params)
    single = cam_params.ndim == 1
    p = cam_params[None] if single else cam_params
    six_d = p.shape[1] in (11, 13)
    nrot = 6 if six_d else 3
    pos = p[:, :3]
    rot = rotation_6d_to_matrix(p[:, 3:9]) if six_d else axis_angle_to_matrix(p[:, 3:6])
    focal = p[:, 3 + nrot]
    sensor_w = p[:, 4 + nrot]
    if p.shape[1] in (10, 13):
        offsets = p[:, 5 + nrot : 7 + nrot].detach().to(torch.int32)
    else:
        offsets = torch.zeros((p.shape[0], 2), dtype=torch.int32, device=p.device)
    if first_R_then_T:
        pos = (rot @ pos[:, :, None])[:, :, 0]
    # Sensor axes: rotation columns; image y runs along -y, the view along +z (-z if
    # right-handed).
    dir_x = rot[:, :, 0]
    dir_y = -rot[:, :, 1]
    dir_z = -rot[:, :, 2] if right_handed else rot[:, :, 2]
    pix = (sensor_w / width)[:, None]
    centre = pos if orthogonal else pos + focal[:, None] * dir_z
    vec_x = dir_x * pix
    vec_y = dir_y * pix
    p00 = centre - vec_x * (width - 1) / 2.0 - vec_y * (height - 1) / 2.0
    out = (pos, p00, vec_x, vec_y, focal, offsets)
    return tuple(o[0] for o in out) if single else out


def _pixel_boxes(
    vert_pos: torch.Tensor,
    vert_rad: torch.Tensor,
    cam: tuple[torch.Tensor, ...],
    offsets: tuple[int, int],
    width: int,
    height: int,
    orthogonal: bool,
    right_handed: bool,
    drawn: torch.Tensor,
) -> torch.Tensor:
    """(N, 4) int64 inclusive pixel box (x0, x1, y0, y1) holding every pixel a sphere can
    hit (ray-ball intersection, grown for the centre-pixel rule, plus a pixel of slack);
    empty (x1 = -1) for spheres not drawn. Not differentiable."""
    eye, p00, vx, vy, focal = (t.detach().double() for t in cam)
    pos = vert_pos.detach().double()
    rad = vert_rad.detach().double()
    ppx, ppy = offsets
    ex, ey, ez, psize = camera_frame(vx, vy, right_handed)
    rel = pos - eye
    full_x = torch.tensor([0.0, width - 1.0], dtype=torch.float64)
    full_y = torch.tensor([0.0, height - 1.0], dtype=torch.float64)
    if orthogonal:
        cx = rel @ ex / psize + width * 0.5 - ppx
        cy = rel @ ey / psize + height * 0.5 - ppy
        ext = rad / psize + 1.0
        lo_x, hi_x, lo_y, hi_y = cx - ext, cx + ext, cy - ext, cy + ext
    else:
        A = torch.stack([vx, vy, p00 - eye + ppx * vx + ppy * vy], 1)
        g = torch.linalg.inv(A)  # rows: pixel x, pixel y and the ray parameter
        q = rel @ g.T
        t = rel.norm(dim=-1)
        # The centre-pixel rule reaches 0.75 pixel (scaled to depth t) off the centre.
        rr = torch.maximum(rad, 0.75 * psize * t / focal.abs().clamp_min(1e-30)) * 1.01
        c2 = rr**2 * (g[2] @ g[2])
        den = q[:, 2] ** 2 - c2
        front = (den > 0) & (q[:, 2] > 0)
        behind = (den > 0) & (q[:, 2] <= 0)

        def extent(i: int) -> tuple[torch.Tensor, torch.Tensor]:
            a_ = rr**2 * (g[i] @ g[i])
            b_ = rr**2 * (g[i] @ g[2])
            h = q[:, i] * q[:, 2] - b_
            disc = (h**2 - den * (q[:, i] ** 2 - a_)).clamp_min(0.0).sqrt()
            safe = torch.where(front, den, torch.ones_like(den))
            return (h - disc) / safe, (h + disc) / safe

        lo_x, hi_x = extent(0)
        lo_y, hi_y = extent(1)
        # A ball reaching the eye's side plane may cover any pixel.
        lo_x = torch.where(front, lo_x, full_x[0])
        hi_x = torch.where(front, hi_x, full_x[1])
        lo_y = torch.where(front, lo_y, full_y[0])
        hi_y = torch.where(front, hi_y, full_y[1])
        drawn = drawn & ~behind
    big = 1e9  # keeps float -> int64 conversion defined for far-off boxes
    x0 = (lo_x.nan_to_num(-big).clamp(-big, big).floor() - 1).clamp_min(0).long()
    x1 = (hi_x.nan_to_num(big).clamp(-big, big).ceil() + 1).clamp_max(width - 1).long()
    y0 = (lo_y.nan_to_num(-big).clamp(-big, big).floor() - 1).clamp_min(0).long()
    y1 = (hi_y.nan_to_num(big).clamp(-big, big).ceil() + 1).clamp_max(height - 1).long()
    x1 = torch.where(drawn, x1, torch.full_like(x1, -1))
    return torch.stack([x0, x1, y0, y1], 1)


class Composite(torch.autograd.Function):
    """Autograd glue of the Numba blending kernels: (a, e, colours, bg_col) -> image."""

    @staticmethod
    def forward(ctx, a, e, col, bg_col, offsets, hit, bg_exponent, depth, sph, cpi, n_track):
        from . import pulsar_numba

        out = pulsar_numba.composite_forward(
            offsets, hit, a.detach(), e.detach(), col.detach(), bg_col.detach(), bg_exponent,
            depth, sph, cpi, n_track,
        )
        image, m, den = out[:3]
        ctx.save_for_backward(a, e, col, bg_col, offsets, hit, image, m, den)
        ctx.bg_exponent = bg_exponent
        ctx.mark_non_differentiable(*out[1:])
        return out

    @staticmethod
    def backward(ctx, grad_image, *_unused):
        from . import pulsar_numba

        a, e, col, bg_col, offsets, hit, image, m, den = ctx.saved_tensors
        ga, ge, gcol, gbw = pulsar_numba.composite_backward(
            offsets, hit, a.detach(), e.detach(), col.detach(), bg_col.detach(),
            ctx.bg_exponent, image, m, den, grad_image.contiguous(),
        )
        gbg = (grad_image * gbw[:, None].to(grad_image.dtype)).sum(0).to(bg_col.dtype)
        return ga, ge, gcol, gbg, None, None, None, None, None, None, None


def _render_one(
    pos, col, rad, opy, cam, offsets, width, height, gamma, min_depth, max_depth, bg_col,
    max_n_hits, mode, orthogonal, right_handed, bg_depth, n_track, backend,
):
    """One image: (H, W, K) image and (H, W, 3 + 2 n_track) forward info."""
    eye, p00, vx, vy, focal = cam
    n_pix = width * height
    _, _, ez, _ = camera_frame(vx.detach(), vy.detach(), right_handed)
    cpi_s = closest_possible_depth(pos, rad, eye, ez, orthogonal)
    drawn = (cpi_s >= min_depth) & (cpi_s <= max_depth)
    order = torch.sort(cpi_s, stable=True).indices
    if backend == "reference":
        n = pos.shape[0]
        pix = torch.arange(n_pix).repeat_interleave(n)
        sph = order.repeat(n_pix)
        seg = pix * n
        offs = torch.arange(n_pix + 1) * n
    else:
        from . import pulsar_numba

        boxes = _pixel_boxes(
            pos, rad, cam, offsets, width, height, orthogonal, right_handed, drawn
        )
        pix, sph, offs = pulsar_numba.list_pairs(boxes, order, width, height)
        seg = offs[pix]
    hit, a, e, depth = pair_terms(
        pos, rad, opy, eye, p00, vx, vy, focal, offsets, width, height, gamma, min_depth,
        max_depth, orthogonal, right_handed, pix, sph,
    )
    hit = truncate_hits(hit, seg, max_n_hits)
    bg_e = bg_depth / gamma
    cpi = cpi_s[sph]
    dt = pos.dtype
    if backend == "reference":
        n = pos.shape[0]
        hit2 = hit.view(n_pix, n)
        image, m, den = composite_reference(
            a.view(n_pix, n), e.view(n_pix, n), hit2, col[sph].view(n_pix, n, col.shape[-1]),
            bg_col, bg_e,
        )
        n_hits = hit2.sum(-1)
        key = torch.where(hit2, depth.view(n_pix, n), torch.full_like(depth.view(n_pix, n),
                                                                      torch.inf))
        srt = torch.sort(key, dim=-1, stable=True)
        k_t = min(n_track, n)
        tr_depth = srt.values[:, :k_t]
        tr_id = torch.where(
            torch.isfinite(tr_depth), sph.view(n_pix, n).gather(1, srt.indices[:, :k_t]), -1
        )
        pad = n_track - k_t
        tr_id = torch.nn.functional.pad(tr_id, (0, pad), value=-1)
        tr_depth = torch.nn.functional.pad(tr_depth, (0, pad), value=torch.inf)
        tr_depth = torch.where(tr_id < 0, torch.full_like(tr_depth, -1.0), tr_depth)
        max_cpi = torch.where(hit2, cpi.view(n_pix, n), torch.full_like(tr_depth[:, :1], -1.0))
        max_cpi = max_cpi.amax(-1) if n else torch.full((n_pix,), -1.0, dtype=dt)
    else:
        image, m, den, n_hits, tr_id, tr_depth, max_cpi = Composite.apply(
            a, e, col[sph], bg_col, offs, hit, bg_e, depth, sph, cpi, n_track
        )
    if mode == 1:
        image = n_hits.to(dt)[:, None]
    id_dtype = torch.int32 if dt == torch.float32 else torch.int64
    id_bits = tr_id.to(id_dtype).view(dt) if dt in (torch.float32, torch.float64) else tr_id
    info = torch.stack(
        [m.to(dt), den.to(dt), max_cpi.to(dt)]
        + [x for i in range(n_track) for x in (id_bits[:, i], tr_depth[:, i].to(dt))],
        -1,
    ).detach()
    return image.view(height, width, -1), info.view(height, width, -1)


def render_spheres(
    vert_pos: torch.Tensor,
    vert_col: torch.Tensor,
    vert_rad: torch.Tensor,
    cam_pos: torch.Tensor,
    pixel_0_0_center: torch.Tensor,
    pixel_vec_x: torch.Tensor,
    pixel_vec_y: torch.Tensor,
    focal_length: torch.Tensor,
    principal_point_offsets: torch.Tensor,
    width: int,
    height: int,
    gamma: float,
    max_depth: float,
    min_depth: float = 0.0,
    bg_col: torch.Tensor | None = None,
    opacity: torch.Tensor | None = None,
    percent_allowed_difference: float = 0.01,
    max_n_hits: int = MAX_UINT,
    mode: int = 0,
    orthogonal: bool = False,
    right_handed: bool = False,
    background_normalized_depth: float = FEPS,
    n_track: int = 5,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render spheres with Pulsar's depth-weighted soft blending.

    Shapes take an optional leading batch axis B (all inputs batched or none).

    Args:
        vert_pos: ([B,] N, 3) sphere centres (world). vert_col: ([B,] N, K) features, any
            K >= 1. vert_rad: ([B,] N) radii >= 0 (world).
        cam_pos, pixel_0_0_center, pixel_vec_x, pixel_vec_y: ([B,] 3) the camera (see
            :func:`pulsar_camera`). focal_length: ([B]) world focal length (perspective;
            0 for orthographic). principal_point_offsets: ([B,] 2) integer pixel offsets.
        width, height: image size.
        gamma: blending sharpness in [1e-5, 1] (1: most transparent).
        max_depth: far limit; min_depth: near limit, 0 meaning just past the focal length;
            it must exceed the focal length, and ``max_depth > min_depth + 1e-6``.
        bg_col: (K,) background (default ones). opacity: ([B,] N) in [0, 1] (default ones).
        percent_allowed_difference: in [0, 1): Pulsar's early-stop tolerance; checked, not
            used (ours blends every hit: the exact result).
        max_n_hits: >= 1: only each pixel's first max_n_hits hits (nearest possible depth
            first) are blended.
        mode: 0 renders the image; 1 renders the hit count, one channel (no gradients).
        orthogonal, right_handed: Pulsar's projection and handedness switches.
        background_normalized_depth: in (0, 1): the background's normalised closeness.
        n_track: how many nearest hits the forward info lists.
        backend: "auto", "numba" or "reference" (Triton is not available for spheres; CUDA
            tensors use the reference).

    Returns:
        image: ([B,] H, W, K) (mode 1: ([B,] H, W, 1) hit counts), row 0 at
        ``pixel_0_0_center``; differentiable (mode 0) in
        vert_pos, vert_col, vert_rad, opacity, bg_col and the four camera vectors.
        info: ([B,] H, W, 3 + 2 n_track), not differentiable: the max exponent, the weight
        sum relative to it, the largest closest-possible depth of a hit, then (sphere id as
        int bits, intersection depth) of the n_track nearest hits (-1 where none).

    Raises:
        ValueError: naming the argument: wrong shapes, NaN/inf, negative radii, opacities
            outside [0, 1], gamma outside [1e-5, 1], bad depth limits, mode or backend.
    """
    batched = vert_pos.ndim == 3 if isinstance(vert_pos, torch.Tensor) else False
    if not isinstance(vert_pos, torch.Tensor) or vert_pos.ndim not in (2, 3):
        raise ValueError("vert_pos must be a tensor of shape ([B,] N, 3)")
    lead = (vert_pos.shape[0],) if batched else ()
    n = vert_pos.shape[-2]
    _check_shape("vert_pos", vert_pos, (*lead, n, 3))
    if not isinstance(vert_col, torch.Tensor) or vert_col.ndim != len(lead) + 2:
        raise ValueError(f"vert_col must have shape ({'B, ' if batched else ''}N, K)")
    _check_shape("vert_col", vert_col, (*lead, n, None))
    _check_shape("vert_rad", vert_rad, (*lead, n))
    for name, t in (("cam_pos", cam_pos), ("pixel_0_0_center", pixel_0_0_center),
                    ("pixel_vec_x", pixel_vec_x), ("pixel_vec_y", pixel_vec_y)):
        _check_shape(name, t, (*lead, 3))
        _check_finite(name, t)
    if not isinstance(focal_length, torch.Tensor):
        focal_length = torch.tensor(focal_length, dtype=vert_pos.dtype)
    _check_shape("focal_length", focal_length, lead)
    if not isinstance(principal_point_offsets, torch.Tensor):
        principal_point_offsets = torch.tensor(principal_point_offsets)
    _check_shape("principal_point_offsets", principal_point_offsets, (*lead, 2))
    k = vert_col.shape[-1]
    if k < 1:
        raise ValueError("vert_col must have at least one channel")
    _check_finite("vert_pos", vert_pos)
    _check_finite("vert_col", vert_col)
    _check_finite("vert_rad", vert_rad)
    if (vert_rad.detach() < 0).any():
        raise ValueError("vert_rad must be >= 0 (found a negative radius)")
    if opacity is None:
        opacity = torch.ones_like(vert_rad)
    _check_shape("opacity", opacity, (*lead, n))
    _check_finite("opacity", opacity)
    if ((opacity.detach() < 0) | (opacity.detach() > 1)).any():
        raise ValueError("opacity must lie in [0, 1]")
    if bg_col is None:
        bg_col = torch.ones(k, dtype=vert_col.dtype, device=vert_col.device)
    _check_shape("bg_col", bg_col, (k,))
    _check_finite("bg_col", bg_col)
    if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
        raise ValueError(f"width must be a positive int, got {width!r}")
    if isinstance(height, bool) or not isinstance(height, int) or height <= 0:
        raise ValueError(f"height must be a positive int, got {height!r}")
    gamma = float(gamma)
    if not (1e-5 <= gamma <= 1.0):
        raise ValueError(f"gamma must be in [1e-5, 1], got {gamma}")
    fmax = float(focal_length.detach().max()) if focal_length.numel() else 0.0
    min_depth = float(min_depth)
    max_depth = float(max_depth)
    if not (math.isfinite(min_depth) and math.isfinite(max_depth)):
        raise ValueError("min_depth and max_depth must be finite")
    if min_depth == 0.0:
        min_depth = fmax + 2 * FEPS
    if not min_depth > fmax:
        raise ValueError(f"min_depth must exceed the focal length ({min_depth} vs. {fmax})")
    if not max_depth > min_depth + FEPS:
        raise ValueError(f"max_depth must be > min_depth + 1e-6 ({max_depth} vs {min_depth})")
    if not (0.0 <= float(percent_allowed_difference) < 1.0):
        raise ValueError(
            f"percent_allowed_difference must be in [0, 1), got {percent_allowed_difference}"
        )
    if isinstance(max_n_hits, bool) or int(max_n_hits) != max_n_hits or max_n_hits < 1:
        raise ValueError(f"max_n_hits must be an int >= 1, got {max_n_hits!r}")
    if mode not in (0, 1):
        raise ValueError(f"mode must be 0 (image) or 1 (hit counts), got {mode!r}")
    if not (0.0 < float(background_normalized_depth) < 1.0):
        raise ValueError("background_normalized_depth must be in (0, 1)")
    if isinstance(n_track, bool) or not isinstance(n_track, int) or n_track < 0:
        raise ValueError(f"n_track must be an int >= 0, got {n_track!r}")
    check_backend_name(backend)
    if backend == "triton":
        raise ValueError("backend='triton' is not available for the sphere renderer")
    if backend == "auto":
        backend = resolve_backend("auto", vert_pos.device)
        if backend == "triton":
            backend = "reference"
    elif backend == "numba" and vert_pos.device.type != "cpu":
        raise ValueError(f"backend='numba' needs CPU tensors, got {vert_pos.device}")
    if not batched:
        vert_pos, vert_col, vert_rad, opacity = (
            t[None] for t in (vert_pos, vert_col, vert_rad, opacity)
        )
        cam_pos, pixel_0_0_center, pixel_vec_x, pixel_vec_y, focal_length = (
            t[None] for t in (cam_pos, pixel_0_0_center, pixel_vec_x, pixel_vec_y,
                              focal_length)
        )
        principal_point_offsets = principal_point_offsets[None]
    dt = vert_pos.dtype
    images, infos = [], []
    for b in range(vert_pos.shape[0]):
        cam = (cam_pos[b].to(dt), pixel_0_0_center[b].to(dt), pixel_vec_x[b].to(dt),
               pixel_vec_y[b].to(dt), focal_length[b].to(dt))
        offs = tuple(int(v) for v in principal_point_offsets[b].tolist())
        img, info = _render_one(
            vert_pos[b], vert_col[b].to(dt), vert_rad[b].to(dt), opacity[b].to(dt), cam, offs,
            width, height, gamma, min_depth, max_depth, bg_col.to(dt), int(max_n_hits),
            mode, orthogonal, right_handed, float(background_normalized_depth), n_track,
            backend,
        )
        images.append(img)
        infos.append(info)
    image, info = torch.stack(images), torch.stack(infos)
    if not batched:
        image, info = image[0], info[0]
    return image, info


def sphere_ids_from_info(info: torch.Tensor) -> torch.Tensor:
    """([B,] H, W, n_track) int sphere ids (-1: none) from :func:`render_spheres`' info."""
    ids = info[..., 3::2].contiguous()
    return ids.view(torch.int32 if info.dtype == torch.float32 else torch.int64)


def depth_map_from_info(info: torch.Tensor) -> torch.Tensor:
    """([B,] H, W) depth of each pixel's nearest hit (-1: none) from the forward info."""
    return info[..., 4]
