"""Real spherical harmonics of degrees 0 to 3, the view-dependent colour of 3D Gaussians.

The basis and its ordering are those of 3D Gaussian splatting and gsplat (index l^2 + l + m
for order m in -l..l), with the usual orthonormal constants: integrated over the unit sphere,
Y_i Y_j gives the Kronecker delta.
"""

from __future__ import annotations

import torch

SH_C0 = 0.28209479177387814  # 1 / (2 sqrt(pi))
SH_C1 = 0.4886025119029199  # sqrt(3 / (4 pi))
SH_C2 = (
    1.0925484305920792,
    -1.0925484305920792,
    0.31539156525252005,
    -1.0925484305920792,
    0.5462742152960396,
)
SH_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)

MAX_SH_DEGREE = 3


def num_sh_bases(degree: int) -> int:
    """(degree + 1)^2, the number of coefficients of a colour up to ``degree``."""
    return (degree + 1) ** 2


def sh_basis(degree: int, dirs: torch.Tensor) -> torch.Tensor:
    """The real SH basis functions up to ``degree`` at unit directions.

    Args:
        degree: 0 to 3.
        dirs: (..., 3) unit vectors (not normalised here).

    Returns:
        (..., (degree + 1)^2) basis values, differentiable in ``dirs``.
    """
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [
            SH_C2[0] * x * y,
            SH_C2[1] * y * z,
            SH_C2[2] * (2 * zz - xx - yy),
            SH_C2[3] * x * z,
            SH_C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            SH_C3[0] * y * (3 * xx - yy),
            SH_C3[1] * x * y * z,
            SH_C3[2] * y * (4 * zz - xx - yy),
            SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            SH_C3[4] * x * (4 * zz - xx - yy),
            SH_C3[5] * z * (xx - yy),
            SH_C3[6] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, dim=-1)


def spherical_harmonics(
    degrees_to_use: int,
    dirs: torch.Tensor,
    coeffs: torch.Tensor,
    masks: torch.Tensor | None = None,
) -> torch.Tensor:
    """Colours of SH coefficients seen along ``dirs`` (gsplat's ``spherical_harmonics``).

    Only the first (degrees_to_use + 1)^2 coefficients are used, so a model stored at degree 3
    can be evaluated at a lower degree (as training does while it raises the degree). The
    +0.5 offset and the clamp at 0 that gsplat's rasterization applies are left to the caller.

    Args:
        degrees_to_use: 0 to 3.
        dirs: (..., 3) view directions, any non-zero length (normalised here; a zero
            direction gives the degree-0 colour only).
        coeffs: (..., K, 3) coefficients, K >= (degrees_to_use + 1)^2; the leading dims
            broadcast with those of ``dirs``.
        masks: optional (...) bool; False entries give 0 (and no gradient).

    Returns:
        (..., 3) colours, differentiable in ``dirs`` and ``coeffs``.

    Raises:
        ValueError: a degree outside 0..3, too few coefficients, or malformed shapes.
    """
    if isinstance(degrees_to_use, bool) or not isinstance(degrees_to_use, int):
        raise ValueError(f"degrees_to_use must be an int, got {degrees_to_use!r}")
    if not 0 <= degrees_to_use <= MAX_SH_DEGREE:
        raise ValueError(f"degrees_to_use must be in 0..{MAX_SH_DEGREE}, got {degrees_to_use}")
    if dirs.shape[-1:] != (3,):
        raise ValueError(f"dirs must have shape (..., 3), got {tuple(dirs.shape)}")
    if coeffs.dim() < 2 or coeffs.shape[-1] != 3:
        raise ValueError(f"coeffs must have shape (..., K, 3), got {tuple(coeffs.shape)}")
    k = num_sh_bases(degrees_to_use)
    if coeffs.shape[-2] < k:
        raise ValueError(
            f"coeffs has {coeffs.shape[-2]} coefficients per colour, degree {degrees_to_use} "
            f"needs {k}"
        )
    unit = torch.nn.functional.normalize(dirs, p=2.0, dim=-1)
    basis = sh_basis(degrees_to_use, unit)  # (..., k)
    colors = (basis[..., None, :] @ coeffs[..., :k, :])[..., 0, :]
    if masks is not None:
        colors = torch.where(masks[..., None], colors, torch.zeros_like(colors))
    return colors
