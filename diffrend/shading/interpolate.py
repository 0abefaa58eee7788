"""Per-pixel interpolation of per-face-vertex attributes with barycentric coordinates."""

from __future__ import annotations

import torch

_KERNEL_DTYPES = (torch.float32, torch.float64)


def interpolate_face_attributes(
    pix_to_face: torch.Tensor,
    barycentric_coords: torch.Tensor,
    face_attributes: torch.Tensor,
) -> torch.Tensor:
    """Interpolate attributes given at the three corners of every face.

    CPU float32/float64 attributes take a Numba kernel
    (:mod:`diffrend.shading.interpolate_kernels`; first-order gradients, like PyTorch3D's
    compiled op), anything else :func:`interpolate_face_attributes_reference`. Both compute
    the same values.

    Args:
        pix_to_face: (N, H, W, K) int64 indices into the F packed faces; -1 = empty.
        barycentric_coords: (N, H, W, K, 3) barycentrics of each pixel in its face.
        face_attributes: (F, 3, D) the attribute at each face corner.

    Returns:
        (N, H, W, K, D): ``sum_i bary_i * attr[face, i]``; zero where pix_to_face is -1.
        Differentiable w.r.t. ``barycentric_coords`` and ``face_attributes``.

    Raises:
        ValueError: shapes that do not fit together, or a face index >= F.
    """
    _check(pix_to_face, barycentric_coords, face_attributes)
    if face_attributes.shape[0] == 0:
        return face_attributes.new_zeros((*pix_to_face.shape, face_attributes.shape[2]))
    bary = barycentric_coords.to(face_attributes.dtype)
    tensors = (pix_to_face, bary, face_attributes)
    if face_attributes.dtype in _KERNEL_DTYPES and all(t.device.type == "cpu" for t in tensors):
        from .interpolate_kernels import interpolate_cpu

        return interpolate_cpu(pix_to_face.to(torch.int64), bary, face_attributes)
    return interpolate_face_attributes_reference(pix_to_face, bary, face_attributes)


def interpolate_face_attributes_reference(
    pix_to_face: torch.Tensor,
    barycentric_coords: torch.Tensor,
    face_attributes: torch.Tensor,
) -> torch.Tensor:
    """:func:`interpolate_face_attributes` in plain torch (any device and dtype; the oracle of
    the kernel, differentiable to any order). Arguments and result as there."""
    _check(pix_to_face, barycentric_coords, face_attributes)
    if face_attributes.shape[0] == 0:
        return face_attributes.new_zeros((*pix_to_face.shape, face_attributes.shape[2]))
    mask = pix_to_face >= 0
    idx = pix_to_face.clamp(min=0)
    corners = face_attributes[idx]  # (N, H, W, K, 3, D)
    out = (barycentric_coords.to(corners.dtype)[..., None] * corners).sum(dim=-2)
    return out * mask[..., None].to(out.dtype)


def _check(pix_to_face: torch.Tensor, barycentric_coords: torch.Tensor,
           face_attributes: torch.Tensor) -> None:
    if pix_to_face.ndim != 4:
        raise ValueError(f"pix_to_face must be (N, H, W, K), got {tuple(pix_to_face.shape)}")
    if barycentric_coords.shape != (*pix_to_face.shape, 3):
        raise ValueError(
            f"barycentric_coords must be {(*pix_to_face.shape, 3)}, "
            f"got {tuple(barycentric_coords.shape)}"
        )
    if face_attributes.ndim != 3 or face_attributes.shape[1] != 3:
        raise ValueError(
            f"face_attributes must be (F, 3, D), got {tuple(face_attributes.shape)}"
        )
