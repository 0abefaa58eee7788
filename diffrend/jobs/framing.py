"""Framing: square crops around the object in each view, with cameras that match them.

A fit renders square images of one size for every view. Photographs are rarely square,
and an object often covers a small part of them (a long flat object is a few pixels high
in most views): resized whole, such a view gives the fit few pixels of the object and its
thin parts vanish. :func:`frame_views` cuts from each view a square box around the
object's silhouette (plus a margin), resamples it to ``size x size`` and replaces the
view's camera by one whose projection lands on the same content in the crop, so every
view gives the object most of the fit's pixels whatever the distance, aspect ratio or
image size of the original.

Conventions. Pixel coordinates are continuous, +x right, +y down, origin at the top-left
corner of the image, pixel ``(i, j)`` spanning ``[j, j + 1) x [i, i + 1)``. A box
``(x0, y0, side)`` is the square ``[x0, x0 + side) x [y0, y0 + side)`` (integers; it may
reach past the image, which is then padded with zeros). Crop pixel coordinates are
``u = (x - x0) * size / side`` (same for y). PyTorch3D's NDC of an ``H x W`` image has +X
left, +Y up, and the shorter side spanning [-1, 1]: ``x_pix = W / 2 - s * x_ndc``,
``y_pix = H / 2 - s * y_ndc`` with ``s = min(H, W) / 2``. Hence the crop's NDC is an
affine function of the original's, ``x' = a * x_ndc + b_x`` with ``a = min(H, W) / side``
and ``b_x = (2 * cx - W) / side`` (``cx = x0 + side / 2``; y likewise with H), and the
framed camera's NDC intrinsics are ``f' = a * f``, ``p' = a * p + b``.

Nothing here is differentiable: the framed data are constant targets.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..cameras import CamerasBase, OrthographicCameras, PerspectiveCameras
from ..io.views import MultiViewData
from .views import nearest_point_to_lines, resize_depth

__all__ = ["crop_cameras", "crop_images", "crop_views", "frame_depth", "frame_views",
           "image_boxes", "mask_boxes", "ndc_intrinsics", "object_sphere"]

_TOL = 1e-6  # relative size of projection entries that must be 0 for a pinhole model


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 8192:
        raise ValueError(f"size must be an int in [8, 8192], got {size!r}")


def mask_boxes(masks: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Square boxes around each mask's bounding box, grown by ``margin``.

    The bounding box is that of the pixels with mask > 0.5 (or > 0 where none passes).
    The square's side is the box's longer side times ``1 + 2 * margin`` (``margin`` of it
    on each side; the object then spans ``1 / (1 + 2 * margin)`` of the crop, 83% for 0.1),
    rounded up to whole pixels; it is centred on the box and may reach past the image.
    A view whose mask is empty everywhere gets :func:`image_boxes`' box (the whole image).

    Args:
        masks: ``(N, H, W)`` silhouettes in [0, 1].
        margin: in [0, 10].

    Returns:
        ``(N, 3)`` int64 boxes ``(x0, y0, side)`` in pixels (see the module docstring).

    Raises:
        ValueError: masks not ``(N, H, W)``, margin out of range or not finite.
    """
    if not torch.is_tensor(masks) or masks.dim() != 3 or masks.shape[1] < 1 or masks.shape[2] < 1:
        raise ValueError(f"masks must have shape (N, H, W); got {getattr(masks, 'shape', masks)}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not (
            math.isfinite(margin) and 0.0 <= margin <= 10.0):
        raise ValueError(f"margin must be a number in [0, 10], got {margin!r}")
    n, h, w = masks.shape
    boxes = image_boxes(n, h, w)
    for i in range(n):
        inside = masks[i] > 0.5
        if not bool(inside.any()):
            inside = masks[i] > 0
            if not bool(inside.any()):
                continue
        rows = inside.any(1).nonzero()[:, 0]
        cols = inside.any(0).nonzero()[:, 0]
        r0, r1 = int(rows[0]), int(rows[-1]) + 1  # pixel extent [r0, r1)
        c0, c1 = int(cols[0]), int(cols[-1]) + 1
        side = max(1, math.ceil(max(r1 - r0, c1 - c0) * (1.0 + 2.0 * margin) - 1e-9))
        # floor keeps the box around [c0, c1) even with margin 0 (see the module docstring).
        boxes[i] = torch.tensor([math.floor((c0 + c1 - side) / 2),
                                 math.floor((r0 + r1 - side) / 2), side])
    return boxes


def image_boxes(n: int, height: int, width: int) -> torch.Tensor:
    """``(n, 3)`` int64 boxes ``(x0, y0, side)``: the square with side ``max(H, W)``
    centred on an ``H x W`` image (the whole image, letterboxed to a square)."""
    side = max(height, width)
    box = torch.tensor([(width - side) // 2, (height - side) // 2, side], dtype=torch.int64)
    return box.expand(n, 3).clone()


def _check_boxes(boxes: torch.Tensor, n: int) -> None:
    if (not torch.is_tensor(boxes) or boxes.dtype.is_floating_point
            or tuple(boxes.shape) != (n, 3)):
        raise ValueError(f"boxes must be an integer tensor of shape ({n}, 3); got "
                         f"{getattr(boxes, 'shape', boxes)}")
    if not bool((boxes[:, 2] >= 1).all()):
        raise ValueError("boxes: every side must be >= 1")


def _box_canvas(image: torch.Tensor, x0: int, y0: int, side: int) -> torch.Tensor:
    """``(H, W, ...)`` -> ``(side, side, ...)``: the box ``(x0, y0, side)`` cut from
    ``image``, zeros where it reaches past the image."""
    h, w = image.shape[:2]
    canvas = image.new_zeros(side, side, *image.shape[2:])
    ya, yb = max(y0, 0), min(y0 + side, h)  # the part of the box inside the image
    xa, xb = max(x0, 0), min(x0 + side, w)
    if ya < yb and xa < xb:
        canvas[ya - y0:yb - y0, xa - x0:xb - x0] = image[ya:yb, xa:xb]
    return canvas


def crop_images(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Resample each image's box into a ``size x size`` image, zeros outside the image.

    Antialiased: bilinear with PyTorch's ``antialias=True`` (a triangle filter as wide as
    the scale when shrinking, plain bilinear when growing), pixel centres mapped exactly
    (``u + 0.5 = (x + 0.5 - x0) * size / side``). Each output is a weighted mean of inputs
    and padding zeros (non-negative weights: no overshoot, masks stay in [0, 1]).

    Args:
        images: ``(N, H, W, C)``.
        boxes: ``(N, 3)`` integer ``(x0, y0, side)`` (see :func:`mask_boxes`).
        size: side of the output, in [8, 8192].

    Returns:
        ``(N, size, size, C)``, the dtype and device of ``images``.
    """
    if not torch.is_tensor(images) or images.dim() != 4:
        raise ValueError(f"images must have shape (N, H, W, C); got "
                         f"{getattr(images, 'shape', images)}")
    _check_boxes(boxes, images.shape[0])
    _check_size(size)
    n, c = images.shape[0], images.shape[3]
    out = images.new_zeros(n, size, size, c)
    for i, (x0, y0, side) in enumerate(boxes.tolist()):
        canvas = _box_canvas(images[i], x0, y0, side)
        if side == size:
            out[i] = canvas
            continue
        x = canvas.permute(2, 0, 1)[None]
        out[i] = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                               antialias=True)[0].permute(1, 2, 0)
    return out


def ndc_intrinsics(cameras: CamerasBase) -> tuple[torch.Tensor, torch.Tensor]:
    """NDC focal lengths and principal points of pinhole (or orthographic) cameras.

    Read from the cameras' projection matrix (mapped to NDC for screen-space cameras), so
    FoV, focal-length, screen-space cameras and a user-given ``K`` are all covered:
    ``x_ndc = fx * X / Z + px`` (perspective) or ``fx * X + px`` (orthographic) for
    view-space ``(X, Y, Z)``, y likewise.

    Args:
        cameras: N cameras with a projection matrix.

    Returns:
        ``(focal (N, 2), principal_point (N, 2))``, detached, the cameras' dtype.

    Raises:
        ValueError: cameras without a projection matrix (fisheye), or a projection that
            is not of that form (skew, a tilted image plane).
    """
    try:
        proj = cameras.get_projection_transform()
    except NotImplementedError:
        raise ValueError(f"cameras: {type(cameras).__name__} have no projection matrix; "
                         "framing needs pinhole or orthographic cameras") from None
    if not cameras.in_ndc():
        proj = proj.compose(cameras.get_ndc_camera_transform())
    m = proj.get_matrix().detach().expand(len(cameras), 4, 4)  # row vectors: p @ m
    # The homogeneous w: Z for perspective (row 2 of column 3), 1 for orthographic (row 3).
    w_row = 2 if cameras.is_perspective() else 3
    scale = m[:, w_row, 3]
    # Entries that must vanish: x from Y (skew) and y from X, w from anything but w_row, and
    # the offset term that is not the principal point.
    off_row = 3 if cameras.is_perspective() else 2
    zero = torch.stack((m[:, 1, 0], m[:, 0, 1], m[:, off_row, 0], m[:, off_row, 1],
                        *(m[:, r, 3] for r in range(4) if r != w_row)), 1)
    big = torch.stack((m[:, 0, 0], m[:, 1, 1], scale), 1).abs().amax(1, keepdim=True)
    if not bool((scale.abs() > 0).all()) or bool((zero.abs() > _TOL * big).any()):
        raise ValueError(f"cameras: the projection of {type(cameras).__name__} is not a "
                         "pinhole (or orthographic) model without skew; cannot frame it")
    focal = torch.stack((m[:, 0, 0], m[:, 1, 1]), 1) / scale[:, None]
    pp = torch.stack((m[:, w_row, 0], m[:, w_row, 1]), 1) / scale[:, None]
    return focal, pp


def crop_cameras(cameras: CamerasBase, boxes: torch.Tensor,
                 image_size: tuple[int, int]) -> CamerasBase:
    """Cameras that see in each box's square crop what ``cameras`` see in the box.

    A world point that ``cameras[i]`` projects to pixel ``(x, y)`` of the ``H x W`` image
    is projected by the result to ``((x - x0) * S / side, (y - y0) * S / side)`` of an
    ``S x S`` crop, for any S (the result is in NDC, so the crop's size does not enter).

    Args:
        cameras: N pinhole or orthographic cameras (FoV, focal-length in NDC or screen
            space, or with a user ``K``) of ``image_size`` images.
        boxes: ``(N, 3)`` integer ``(x0, y0, side)`` in pixels of those images.
        image_size: ``(H, W)`` of the original images.

    Returns:
        NDC :class:`PerspectiveCameras` (perspective input) or
        :class:`OrthographicCameras` (orthographic input) with the same R, T, dtype and
        device; not differentiable. FoV cameras' ``znear`` / ``zfar`` are not carried
        (the focal-length cameras have none; the rasterizer then does not clip at znear).

    Raises:
        ValueError: bad boxes or image size; cameras that :func:`ndc_intrinsics` refuses.
    """
    _check_boxes(boxes, len(cameras))
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(isinstance(v, int) and v >= 1 for v in image_size)):
        raise ValueError(f"image_size must be (H, W) positive ints, got {image_size!r}")
    h, w = image_size
    focal, pp = ndc_intrinsics(cameras)
    b = boxes.to(device=focal.device, dtype=focal.dtype)
    side = b[:, 2:3]
    a = min(h, w) / side  # (N, 1)
    centre = b[:, :2] + side / 2
    shift = (2 * centre - torch.tensor([w, h], dtype=focal.dtype, device=focal.device)) / side
    cls = PerspectiveCameras if cameras.is_perspective() else OrthographicCameras
    return cls(focal_length=focal * a, principal_point=pp * a + shift,
               R=cameras.R.detach(), T=cameras.T.detach(), device=cameras.device, in_ndc=True)


def crop_views(data: MultiViewData, boxes: torch.Tensor, size: int) -> MultiViewData:
    """The views cut to ``boxes`` and resampled to ``size x size``, with matching cameras.

    Images and masks are resampled with :func:`crop_images` (zeros outside the image:
    black, empty), cameras with :func:`crop_cameras`; names are kept.

    Args:
        data: N views, images ``(N, H, W, 3)`` of any aspect ratio.
        boxes: ``(N, 3)`` integer ``(x0, y0, side)``.
        size: the crops' side, in [8, 8192].

    Returns:
        MultiViewData with images ``(N, size, size, 3)`` and masks ``(N, size, size)``.
    """
    if not isinstance(data, MultiViewData):
        raise ValueError("data must be a MultiViewData (see diffrend.io.load_views)")
    _check_size(size)
    _check_boxes(boxes, len(data))
    h, w = data.masks.shape[1:]
    both = crop_images(torch.cat((data.images, data.masks[..., None]), -1), boxes, size)
    return MultiViewData(images=both[..., :3].contiguous(), masks=both[..., 3].contiguous(),
                         cameras=crop_cameras(data.cameras, boxes, (h, w)), names=data.names)


def frame_views(data: MultiViewData, size: int, margin: float = 0.1) -> MultiViewData:
    """Each view cropped to a square around its object and resampled to ``size x size``.

    For each view separately: the square box of :func:`mask_boxes` (the silhouette's
    bounding box grown by ``margin`` on each side; the box may reach past the image, which
    is padded black with an empty mask), resampled antialiased to ``size x size``
    (:func:`crop_images`), with a camera that projects every 3D point onto the same
    content in the crop (:func:`crop_cameras`: NDC PerspectiveCameras, or
    OrthographicCameras for orthographic input). Images of any aspect ratio and size are
    accepted; the output is square. A view whose mask is empty keeps its whole image
    (letterboxed to a square, :func:`image_boxes`): it still tells the fit where the
    object is not.

    The images are composited onto black outside the silhouette (``images * masks``)
    before resampling: a fit renders onto black, so a photograph's background (coloured,
    cluttered) would otherwise enter its colour loss at the silhouette's border.

    A fit to framed views sees only the crops: geometry that projects outside every crop
    gets no gradient, so start it inside them (:func:`object_sphere`).

    Args:
        data: N views (images ``(N, H, W, 3)``, masks ``(N, H, W)``, cameras).
        size: side of the framed views, an int in [8, 8192] (the fit's image size).
        margin: fraction of the object's box added on each side, in [0, 10].

    Returns:
        MultiViewData with images ``(N, size, size, 3)`` (black background), masks
        ``(N, size, size)``, the framed cameras and the same names. Constant (no graph).

    Raises:
        ValueError: naming ``data``, ``size`` or ``margin``; every mask empty (nothing to
            frame); cameras that cannot be framed (fisheye, skewed projections).
    """
    if not isinstance(data, MultiViewData):
        raise ValueError("data must be a MultiViewData (see diffrend.io.load_views)")
    _check_size(size)
    boxes = mask_boxes(data.masks, margin)  # validates margin
    if not bool((data.masks > 0).any()):
        raise ValueError("data.masks are empty in every view: nothing to frame")
    composited = MultiViewData(images=data.images * data.masks[..., None], masks=data.masks,
                               cameras=data.cameras, names=data.names)
    return crop_views(composited, boxes, size)


def frame_depth(depth: torch.Tensor, masks: torch.Tensor, size: int,
                margin: float = 0.1) -> torch.Tensor:
    """Depth maps framed as :func:`frame_views` frames the views they belong to.

    The same square boxes (:func:`mask_boxes` of the same ``masks`` and ``margin``), so the
    framed maps line up with the framed images and cameras (depth is view-space z, which a
    crop does not change). Depth outside the silhouette (``masks <= 0.5``: a wall behind
    the object, the table under it) is dropped: the fit compares depth only where its
    object and the target's are both seen. Shrinking keeps a pixel's mean depth only where
    every pixel it covers has one and they agree (:func:`.views.resize_depth`). A crop
    smaller than ``size`` is first grown by a whole factor (each pixel repeated), then
    shrunk the same way: a new pixel that straddles an outline or an occluding edge is
    left out rather than given either side's depth.

    Args:
        depth: ``(N, H, W)`` view-space depth, > 0 where measured, <= 0 elsewhere.
        masks: ``(N, H, W)`` the views' silhouettes in [0, 1].
        size: side of the framed maps, in [8, 8192]. margin: as for :func:`frame_views`.

    Returns:
        ``(N, size, size)`` depth, -1 where there is none. Constant (no graph).

    Raises:
        ValueError: naming ``depth`` or ``masks`` (shapes), ``size`` or ``margin``.
    """
    if not torch.is_tensor(depth) or depth.dim() != 3:
        raise ValueError(f"depth must have shape (N, H, W); got {getattr(depth, 'shape', depth)}")
    if not torch.is_tensor(masks) or masks.shape != depth.shape:
        raise ValueError(f"masks must have the depth maps' shape {tuple(depth.shape)}; got "
                         f"{getattr(masks, 'shape', masks)}")
    _check_size(size)
    boxes = mask_boxes(masks, margin)
    n = depth.shape[0]
    seen = torch.where((masks > 0.5) & (depth > 0), depth, torch.zeros_like(depth))
    out = depth.new_full((n, size, size), -1.0)
    for i, (x0, y0, side) in enumerate(boxes.tolist()):
        canvas = _box_canvas(seen[i], x0, y0, side)[None]
        grow = -(-size // side)  # a crop smaller than the output: whole copies first
        if grow > 1:
            canvas = canvas.repeat_interleave(grow, 1).repeat_interleave(grow, 2)
        framed = resize_depth(canvas, size)[0]
        out[i] = torch.where(framed > 0, framed, -1.0)
    return out


def object_sphere(data: MultiViewData) -> tuple[torch.Tensor, float]:
    """Where the object is and how big: a sphere from the silhouettes' boxes and cameras.

    The centre is the least-squares intersection of the rays through the centres of the
    silhouettes' bounding boxes (not the cameras' optical axes, which miss an off-centre
    object: after framing the object sits at each crop's centre, far from the principal
    point); the radius is the median over views of the box's half longer side taken back
    to that depth. A fit's starting sphere placed there sees the object in every framed
    view.

    Args:
        data: N square views (``(N, S, S)`` masks) with pinhole or orthographic cameras;
            views with an empty mask are skipped.

    Returns:
        ``(centre (3,), radius)``, the cameras' dtype and device; not differentiable.

    Raises:
        ValueError: non-square views, every mask empty, cameras :func:`ndc_intrinsics`
            refuses, or rays that do not fix a point (all parallel).
    """
    if not isinstance(data, MultiViewData):
        raise ValueError("data must be a MultiViewData (see diffrend.io.load_views)")
    n, h, w = data.masks.shape
    if h != w:
        raise ValueError(f"data: object_sphere needs square views, got {h}x{w}")
    focal, pp = ndc_intrinsics(data.cameras)
    boxes, keep = [], []
    for i in range(n):
        inside = data.masks[i] > 0.5
        if not bool(inside.any()):
            continue
        rows = inside.any(1).nonzero()[:, 0]
        cols = inside.any(0).nonzero()[:, 0]
        # NDC of the box: x_ndc = 1 - 2 x / S (+X left), y likewise.
        x0, x1 = 1 - 2 * (int(cols[-1]) + 1) / w, 1 - 2 * int(cols[0]) / w
        y0, y1 = 1 - 2 * (int(rows[-1]) + 1) / h, 1 - 2 * int(rows[0]) / h
        boxes.append(((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) / 2))
        keep.append(i)
    if not keep:
        raise ValueError("data.masks are empty in every view: no object to place")
    b = torch.tensor(boxes, dtype=focal.dtype, device=focal.device)
    focal, pp = focal[keep], pp[keep]
    R, T = data.cameras.R[keep].detach(), data.cameras.T[keep].detach()
    slope = (b[:, :2] - pp) / focal  # view x/z, y/z (perspective) or x, y (orthographic)
    ones = torch.ones_like(slope[:, :1])
    persp = data.cameras.is_perspective()
    d_view = torch.cat((slope, ones), 1) if persp else torch.cat((0 * slope, ones), 1)
    o_view = torch.zeros_like(d_view) if persp else torch.cat((slope, 0 * ones), 1)
    # X_view = X_world @ R + T  =>  X_world = (X_view - T) @ R^T.
    rt = R.transpose(1, 2)
    dirs = (d_view[:, None] @ rt)[:, 0]
    origins = ((o_view - T)[:, None] @ rt)[:, 0]
    centre = nearest_point_to_lines(origins, dirs)
    if centre is None:
        raise ValueError("data: the views' rays are parallel; cannot place the object")
    centre = centre.to(R.dtype)
    half = b[:, 2] / focal.amin(1)
    if persp:
        half = half * ((centre @ R)[:, 2] + T[:, 2]).abs()  # the centre's view depth
    return centre, float(half.median())
