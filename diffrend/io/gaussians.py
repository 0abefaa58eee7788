"""3D Gaussian splatting scenes in the standard PLY layout of the reference implementation
(Kerbl et al. 2023, "Inria" layout), read and written with ``plyfile``.

One ``vertex`` element, one row per Gaussian, float32 properties in this order::

    x y z  nx ny nz  f_dc_0 f_dc_1 f_dc_2  f_rest_0 ... f_rest_{3(K-1)-1}
    opacity  scale_0 scale_1 scale_2  rot_0 rot_1 rot_2 rot_3

* ``f_dc_*`` are the degree-0 spherical-harmonic coefficients of R, G, B; ``f_rest_*`` the
  others, channel-major: all of R's K-1 coefficients, then G's, then B's.
* ``opacity`` is stored as a logit and ``scale_*`` as natural logs (the trainer's raw
  parameters); :class:`GaussianCloud` holds them activated (opacities in [0, 1], linear
  scales), the convention of :func:`diffrend.splat.rasterization` and gsplat.
* ``rot_*`` is the quaternion w, x, y, z, as stored (not necessarily unit length).
* ``nx ny nz`` are zeros (the reference writes them; viewers ignore them); optional on read.

Nothing here is differentiable: the loader returns constants, the writer detaches.
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._files import existing_file
from .atomic import atomic_write_bytes

__all__ = ["GaussianCloud", "load_gaussian_ply", "save_gaussian_ply"]

PathLike = str | os.PathLike

# 3 * ((d + 1)^2 - 1) f_rest values per Gaussian for SH degree d = 0..3.
_REST_COUNTS = {3 * ((d + 1) ** 2 - 1): d for d in range(4)}
_DC = ("f_dc_0", "f_dc_1", "f_dc_2")
_SCALE = ("scale_0", "scale_1", "scale_2")
_ROT = ("rot_0", "rot_1", "rot_2", "rot_3")
_REQUIRED = ("x", "y", "z", *_DC, "opacity", *_SCALE, *_ROT)
_REST = re.compile(r"^f_rest_(\d+)$")
# Opacities 0 and 1 have infinite logits: they are written as logit(_EPS) and logit(1 - _EPS).
_EPS = 1e-7
# Zero scales have log -inf: they are written as the log of float32's smallest normal number.
_TINY = float(np.finfo(np.float32).tiny)


def _plyfile() -> Any:
    """The ``plyfile`` module, with an install hint when it is missing."""
    try:
        import plyfile
    except ImportError as e:  # pragma: no cover - plyfile is a dependency
        raise ImportError("Gaussian PLY files need plyfile: pip install plyfile") from e
    return plyfile


@dataclass(frozen=True, eq=False)
class GaussianCloud:
    """N 3D Gaussians with spherical-harmonic colours, activated (not the trainer's logs).

    Attributes:
        means: ``(N, 3)`` centres, world units.
        quats: ``(N, 4)`` rotations as quaternions w, x, y, z (as stored: not necessarily
            unit length).
        scales: ``(N, 3)`` standard deviations along the rotated axes, linear (not log).
        opacities: ``(N,)`` in [0, 1] (not logits).
        sh: ``(N, K, 3)`` spherical-harmonic coefficients of R, G, B with
            ``K = (sh_degree + 1) ** 2``; ``sh[:, 0]`` is the DC (degree-0) term.

    All five are tensors on one device; shapes are checked on construction (ValueError
    naming the field). Values are checked by :func:`save_gaussian_ply`.
    """

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    sh: torch.Tensor

    def __post_init__(self) -> None:
        for name in ("means", "quats", "scales", "opacities", "sh"):
            if not torch.is_tensor(getattr(self, name)):
                raise ValueError(f"{name}: expected a tensor, got {type(getattr(self, name))}")
        n = self.means.shape[0] if self.means.dim() == 2 else -1
        expected = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,)}
        if n < 0 or self.means.shape[1] != 3:
            raise ValueError(f"means: expected shape (N, 3), got {tuple(self.means.shape)}")
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"{name}: expected shape {shape} (N = {n} from means), got "
                                 f"{tuple(getattr(self, name).shape)}")
        sh = self.sh
        if sh.dim() != 3 or sh.shape[0] != n or sh.shape[2] != 3 or sh.shape[1] not in (1, 4, 9,
                                                                                       16):
            raise ValueError(f"sh: expected shape (N, K, 3) with N = {n} and K = (degree + 1)^2 "
                             f"for a degree in 0..3, got {tuple(sh.shape)}")

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        """The spherical-harmonic degree d, 0..3: ``sh.shape[1] == (d + 1) ** 2``."""
        return math.isqrt(self.sh.shape[1]) - 1

    def to(self, device: str | torch.device) -> GaussianCloud:
        """A copy with every tensor on ``device`` (self unchanged)."""
        return GaussianCloud(self.means.to(device), self.quats.to(device),
                             self.scales.to(device), self.opacities.to(device),
                             self.sh.to(device))


def load_gaussian_ply(path: PathLike, device: str | torch.device = "cpu") -> GaussianCloud:
    """Read a 3DGS scene from a PLY file in the reference layout (see the module docstring).

    ASCII and binary PLY are read; properties are found by name (their order in the file does
    not matter) and may be float or double; ``f_rest_*`` are ordered by their number. Opacity
    logits go through a sigmoid and log scales through exp, in float64, then to float32.

    Args:
        path: the ``.ply`` file.
        device: where the tensors go.

    Returns:
        A :class:`GaussianCloud` of float32 tensors: means (N, 3), quats (N, 4) w x y z as
        stored, scales (N, 3) linear, opacities (N,) in [0, 1], sh (N, K, 3) with
        K = (degree + 1)^2, the degree given by the number of ``f_rest_*`` properties.
        Constants (no gradients).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a PLY file, no ``vertex`` element, missing or list-typed properties
            (named), an ``f_rest_*`` count that is not 3 * ((d + 1)^2 - 1) for d in 0..3 or
            not numbered 0..M-1, NaN/inf values (the property named), or scales whose exp
            overflows float32 (the property named).
    """
    plyfile = _plyfile()
    p = existing_file(path)
    try:
        with open(p, "rb") as stream:
            data = plyfile.PlyData.read(stream, mmap=False)
    except (plyfile.PlyParseError, ValueError, UnicodeDecodeError, EOFError) as e:
        raise ValueError(f"{p}: not a readable PLY file ({e})") from None
    try:
        vertex = data["vertex"]
    except KeyError:
        names = [el.name for el in data.elements]
        raise ValueError(f"{p}: no 'vertex' element in the PLY header (elements: {names}); "
                         "a Gaussian splatting PLY has one vertex per Gaussian") from None
    props = {prop.name: prop for prop in vertex.properties}
    missing = [name for name in _REQUIRED if name not in props]
    if missing:
        raise ValueError(f"{p}: vertex properties missing: {', '.join(missing)}")
    rest = sorted((int(m.group(1)), name) for name in props if (m := _REST.match(name)))
    if [i for i, _ in rest] != list(range(len(rest))):
        raise ValueError(f"{p}: f_rest_* properties must be numbered 0..M-1 without gaps, got "
                         f"{[name for _, name in rest]}")
    if len(rest) not in _REST_COUNTS:
        raise ValueError(f"{p}: {len(rest)} f_rest_* properties; expected 3 * ((d + 1)^2 - 1) "
                         f"for an SH degree d in 0..3, i.e. one of {sorted(_REST_COUNTS)}")
    names = [*_REQUIRED, *(name for _, name in rest)]
    for name in names:
        if isinstance(props[name], plyfile.PlyListProperty):
            raise ValueError(f"{p}: vertex property {name} is a list; expected a scalar")
    cols = {}
    for name in names:
        col = np.asarray(vertex[name], dtype=np.float64)
        _check_finite(col, f"{p}: vertex property {name}")
        cols[name] = col

    def stack(keys: tuple[str, ...] | list[str]) -> np.ndarray:
        return np.stack([cols[k] for k in keys], axis=1) if keys else np.zeros((len(vertex), 0))

    n = len(vertex)
    k_rest = len(rest) // 3
    with np.errstate(over="ignore"):  # overflow is reported below, naming the property
        scales = np.exp(stack(_SCALE)).astype(np.float32)
    for i, name in enumerate(_SCALE):
        _check_finite(scales[:, i], f"{p}: vertex property {name} (exp overflows float32)")
    # f_rest is channel-major: (N, 3, K-1) in the file, (N, K-1, 3) in sh.
    sh_rest = stack([name for _, name in rest]).reshape(n, 3, k_rest).transpose(0, 2, 1)
    sh = np.concatenate([stack(_DC)[:, None, :], sh_rest], axis=1)
    opacities = 1.0 / (1.0 + np.exp(-cols["opacity"]))

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)

    return GaussianCloud(means=t(stack(("x", "y", "z"))), quats=t(stack(_ROT)), scales=t(scales),
                         opacities=t(opacities), sh=t(sh))


def save_gaussian_ply(path: PathLike, cloud: GaussianCloud) -> None:
    """Write ``cloud`` as a binary little-endian float32 PLY in the reference layout, atomically.

    Opacities are written as logits (0 and 1 as the logits of 1e-7 and 1 - 1e-7, so the file
    holds finite numbers) and scales as natural logs (0 as the log of float32's smallest
    normal number); normals as zeros. The file is written to a temporary file in the same
    folder and renamed over ``path`` (mode 0o644 less the umask, like ``open``).

    Args:
        path: the ``.ply`` file; its folder is created if needed.
        cloud: the Gaussians (any float dtype, any device; detached, not modified).

    Raises:
        ValueError: ``cloud`` is not a GaussianCloud, or holds NaN/inf values, negative
            scales or opacities outside [0, 1] (the field named, with the first bad row).
    """
    if not isinstance(cloud, GaussianCloud):
        raise ValueError(f"cloud: expected a GaussianCloud, got {type(cloud).__name__}")
    plyfile = _plyfile()
    arr = {name: getattr(cloud, name).detach().to("cpu", torch.float64).numpy()
           for name in ("means", "quats", "scales", "opacities", "sh")}
    for name, a in arr.items():
        _check_finite(a, f"cloud.{name}")
    _check_range(arr["scales"] >= 0, "cloud.scales", "negative (scales are linear, >= 0)")
    _check_range((arr["opacities"] >= 0) & (arr["opacities"] <= 1), "cloud.opacities",
                 "outside [0, 1]")
    n, k = arr["sh"].shape[:2]
    opac = np.clip(arr["opacities"], _EPS, 1.0 - _EPS)
    rest = arr["sh"][:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * (k - 1))
    columns = [
        (("x", "y", "z"), arr["means"]),
        (("nx", "ny", "nz"), np.zeros((n, 3))),
        (_DC, arr["sh"][:, 0, :]),
        (tuple(f"f_rest_{i}" for i in range(3 * (k - 1))), rest),
        (("opacity",), np.log(opac / (1.0 - opac))[:, None]),
        (_SCALE, np.log(np.maximum(arr["scales"], _TINY))),
        (_ROT, arr["quats"]),
    ]
    dtype = [(name, "<f4") for names, _ in columns for name in names]
    rows = np.empty(n, dtype=dtype)
    for names, values in columns:
        for i, name in enumerate(names):
            rows[name] = values[:, i]
    element = plyfile.PlyElement.describe(rows, "vertex")
    buf = io.BytesIO()
    plyfile.PlyData([element], text=False, byte_order="<").write(buf)
    atomic_write_bytes(path, buf.getvalue())


def _check_finite(a: np.ndarray, what: str) -> None:
    """ValueError naming ``what`` and the first row holding NaN or inf."""
    bad = ~np.isfinite(a)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{what}: {int(bad.sum())} NaN/inf value(s), first in row {row}")


def _check_range(ok: np.ndarray, what: str, problem: str) -> None:
    """ValueError naming ``what`` and the first row where ``ok`` is False."""
    if not ok.all():
        row = int(np.argwhere(~ok)[0][0])
        raise ValueError(f"{what}: {int((~ok).sum())} value(s) {problem}, first in row {row}")
