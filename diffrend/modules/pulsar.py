"""Pulsar's module names over :func:`diffrend.splat.pulsar.render_spheres`.

``PulsarRenderer`` is PyTorch3D's low-level ``pulsar.Renderer`` (Pulsar camera vectors in,
``[B,] H, W, K`` image out); ``PulsarPointsRenderer`` renders ``Pointclouds`` through a
``PointsRasterizer``'s cameras and settings as PyTorch3D's wrapper does: the rasterizer's
radius becomes a world radius (scaled by the distance to the camera in perspective unless
``radius_world``), the camera is converted to Pulsar's vectors (a world focal length just
short of ``znear``), and each image is flipped so row 0 is the top, as in PyTorch3D.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from ..cameras import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
)
from ..splat.pulsar import (
    MAX_UINT,
    depth_map_from_info,
    pulsar_camera,
    render_spheres,
    sphere_ids_from_info,
)
from ..splat.pulsar_reference import FEPS
from ..transforms import matrix_to_rotation_6d

PerCloud = float | Sequence[float] | torch.Tensor


class PulsarRenderer(nn.Module):
    """PyTorch3D's ``pulsar.Renderer``: spheres and Pulsar camera vectors to an image.

    Args:
        width, height: image size in pixels.
        max_num_balls: the most spheres one call may draw (checked).
        orthogonal_projection: orthographic instead of perspective.
        right_handed_system: Pulsar's right-handed world (view along -z of the rotation).
        background_normalized_depth: in (0, 1), the background's normalised closeness.
        n_channels: feature channels K of ``vert_col``.
        n_track: nearest hits listed per pixel in the forward info.
        backend: "auto", "numba" or "reference" (see :func:`render_spheres`).
    """

    def __init__(
        self,
        width: int,
        height: int,
        max_num_balls: int,
        orthogonal_projection: bool = False,
        right_handed_system: bool = False,
        background_normalized_depth: float = FEPS,
        n_channels: int = 3,
        n_track: int = 5,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        for name, v in (("width", width), ("height", height), ("max_num_balls", max_num_balls),
                        ("n_channels", n_channels)):
            if isinstance(v, bool) or int(v) != v or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not 0.0 < background_normalized_depth < 1.0:
            raise ValueError("background_normalized_depth must be in (0, 1)")
        self.width, self.height = int(width), int(height)
        self.max_num_balls = int(max_num_balls)
        self.orthogonal = bool(orthogonal_projection)
        self.right_handed = bool(right_handed_system)
        self.background_normalized_depth = float(background_normalized_depth)
        self.n_channels = int(n_channels)
        self.n_track = int(n_track)
        self.backend = backend

    @staticmethod
    def sphere_ids_from_result_info_nograd(result_info: torch.Tensor) -> torch.Tensor:
        """([B,] H, W, n_track) int sphere ids (-1: none) of the nearest hits per pixel."""
        return sphere_ids_from_info(result_info)

    @staticmethod
    def depth_map_from_result_info_nograd(result_info: torch.Tensor) -> torch.Tensor:
        """([B,] H, W) first intersection depth of each pixel's nearest hit (-1: none)."""
        return depth_map_from_info(result_info)

    @staticmethod
    def _transform_cam_params(
        cam_params: torch.Tensor,
        width: int,
        height: int,
        orthogonal: bool,
        right_handed: bool,
        first_R_then_T: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """Pulsar camera vector(s) ([B,] 8|10|11|13) to the camera vectors; see
        :func:`diffrend.splat.pulsar.pulsar_camera`."""
        return pulsar_camera(cam_params, width, height, orthogonal, right_handed, first_R_then_T)

    def forward(
        self,
        vert_pos: torch.Tensor,
        vert_col: torch.Tensor,
        vert_rad: torch.Tensor,
        cam_params: torch.Tensor,
        gamma: float,
        max_depth: float,
        min_depth: float = 0.0,
        bg_col: torch.Tensor | None = None,
        opacity: torch.Tensor | None = None,
        percent_allowed_difference: float = 0.01,
        max_n_hits: int = MAX_UINT,
        mode: int = 0,
        return_forward_info: bool = False,
        first_R_then_T: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Render spheres: vert_pos ([B,] N, 3), vert_col ([B,] N, K), vert_rad ([B,] N),
        cam_params ([B,] 8|10|11|13), opacity ([B,] N) or None, bg_col (K,) or None (ones).

        Returns the ([B,] H, W, K) image (differentiable in spheres, opacity, bg_col and
        cam_params in mode 0; mode 1: ([B,] H, W, 1) hit counts), and with
        ``return_forward_info`` the ([B,] H, W, 3 + 2 n_track) info (None in mode 1).
        """
        if vert_col.shape[-1] != self.n_channels:
            raise ValueError(
                f"vert_col must have n_channels={self.n_channels} channels, got "
                f"{vert_col.shape[-1]}"
            )
        if vert_pos.shape[-2] > self.max_num_balls:
            raise ValueError(
                f"vert_pos holds {vert_pos.shape[-2]} spheres, more than max_num_balls="
                f"{self.max_num_balls}"
            )
        if mode != 0 and return_forward_info:
            raise ValueError("return_forward_info needs mode=0 (mode 1 has no forward info)")
        cam = pulsar_camera(
            cam_params, self.width, self.height, self.orthogonal, self.right_handed,
            first_R_then_T,
        )
        image, info = render_spheres(
            vert_pos, vert_col, vert_rad, *cam, self.width, self.height, gamma, max_depth,
            min_depth, bg_col, opacity, percent_allowed_difference, max_n_hits, mode,
            self.orthogonal, self.right_handed, self.background_normalized_depth,
            self.n_track, self.backend,
        )
        return (image, info if mode == 0 else None) if return_forward_info else image

    def extra_repr(self) -> str:
        return f"width={self.width}, height={self.height}, max_num_balls={self.max_num_balls}"


class PerCloudError(ValueError, TypeError):
    """A per-cloud setting given as a plain number (PyTorch3D raises TypeError here)."""


def _per_cloud(value: PerCloud, i: int, name: str) -> float:
    """Entry ``i`` of a per-cloud float setting: a sequence or tensor with one value per
    cloud (a one-element one is shared). A plain number raises, as in PyTorch3D."""
    if isinstance(value, torch.Tensor):
        value = value.detach().reshape(-1)
        return float(value[i] if value.numel() > 1 else value[0])
    if isinstance(value, (int, float)):
        raise PerCloudError(f"{name} must hold one value per cloud (e.g. ({value},)), not a "
                            "plain number")
    try:
        return float(value[i])
    except (TypeError, IndexError) as err:
        raise ValueError(f"{name} must be a float or one value per cloud, got {value!r}") from err


class PulsarPointsRenderer(nn.Module):
    """PyTorch3D's ``PulsarPointsRenderer``: Pulsar's sphere blending over ``Pointclouds``.

    Args:
        rasterizer: a ``PointsRasterizer``: its cameras (FoVPerspectiveCameras,
            PerspectiveCameras, FoVOrthographicCameras or OrthographicCameras) and its
            ``raster_settings`` (``image_size``, ``radius``) are used.
        compositor: ignored (accepted for PyTorch3D's interface; a warning says so).
        n_channels: feature channels of the clouds.
        max_num_spheres: the most points one cloud may hold.
        backend: "auto", "numba" or "reference".
    """

    def __init__(
        self,
        rasterizer: nn.Module,
        compositor: nn.Module | None = None,
        n_channels: int = 3,
        max_num_spheres: int = int(1e6),
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.rasterizer = rasterizer
        if compositor is not None:
            warnings.warn(
                "PulsarPointsRenderer ignores its compositor (accepted for PyTorch3D's "
                "interface)",
                stacklevel=2,
            )
        cams = rasterizer.cameras
        if not isinstance(
            cams,
            (FoVPerspectiveCameras, PerspectiveCameras, FoVOrthographicCameras,
             OrthographicCameras),
        ):
            raise ValueError(
                "rasterizer.cameras must be FoVPerspectiveCameras, PerspectiveCameras, "
                "FoVOrthographicCameras or OrthographicCameras for the Pulsar renderer"
            )
        self.height, self.width = self._image_size()
        orthogonal = isinstance(cams, (FoVOrthographicCameras, OrthographicCameras))
        self.renderer = PulsarRenderer(
            self.width, self.height, int(max_num_spheres), orthogonal_projection=orthogonal,
            n_channels=int(n_channels), backend=backend,
        )

    def _image_size(self) -> tuple[int, int]:
        size = self.rasterizer.raster_settings.image_size
        if isinstance(size, (tuple, list)):
            return int(size[0]), int(size[1])
        return int(size), int(size)

    def _intrinsics(
        self, cams, i: int, znear: PerCloud | None, zfar: PerCloud | None, fov, aspect_ratio,
        degrees, focal_length, principal_point, min_x, max_x, min_y, max_y,
    ) -> tuple[float, float, float, float, float, float]:
        """(world focal length, sensor width, principal point offset x, y in pixels, znear,
        zfar) of cloud ``i``'s camera, as PyTorch3D's wrapper computes them."""
        w, h = self.width, self.height
        sfm = isinstance(cams, (PerspectiveCameras, OrthographicCameras))
        if sfm:
            if znear is None or zfar is None:
                raise ValueError(
                    f"znear and zfar must be given for {type(cams).__name__} (Pulsar needs "
                    "depth limits)"
                )
            fl = (cams.focal_length if focal_length is None else focal_length)[i].reshape(-1)
            if fl.numel() == 2 and abs(float(fl[0]) * w - float(fl[1]) * h) > 1e-5:
                raise ValueError(f"focal_length: Pulsar needs a single focal length, got {fl}")
            pp = (cams.principal_point if principal_point is None else principal_point)[i]
            ppx, ppy = float(pp[0]) * 0.5 * w, float(pp[1]) * 0.5 * h
        near = _per_cloud(cams.znear if znear is None else znear, i, "znear")
        far = _per_cloud(cams.zfar if zfar is None else zfar, i, "zfar")
        if isinstance(cams, FoVOrthographicCameras):
            lims = [
                _per_cloud(getattr(cams, n) if v is None else v, i, n)
                for n, v in (("min_x", min_x), ("max_x", max_x), ("min_y", min_y),
                             ("max_y", max_y))
            ]
            if lims[1] != -lims[0] or lims[3] != -lims[2]:
                raise ValueError(f"the orthographic camera must be centred on 0, got {lims}")
            if not torch.all(cams.scale_xyz[i] == 1.0):
                raise ValueError("the orthographic camera's scale_xyz must be ones for Pulsar")
            sensor = lims[1] - lims[0]
            if not sensor > 0:
                raise ValueError(f"max_x - min_x must be positive, got {sensor}")
            return 0.0, sensor, 0.0, 0.0, near, far
        if isinstance(cams, OrthographicCameras):
            return 0.0, 2.0 / float(fl[0]), ppx, ppy, near, far
        f = near - 1e-6  # a virtual focal length just short of znear
        if isinstance(cams, PerspectiveCameras):
            return f, f / float(fl[0]) * 2.0, ppx, ppy, near, far
        ar = _per_cloud(cams.aspect_ratio if aspect_ratio is None else aspect_ratio, i,
                        "aspect_ratio")
        if not ar - w / h < 1e-6:
            raise ValueError(f"aspect_ratio ({ar}) must agree with width / height ({w / h})")
        afov = _per_cloud(cams.fov if fov is None else fov, i, "fov")
        if cams.degrees if degrees is None else degrees:
            afov *= math.pi / 180.0
        return f, math.tan(afov / 2.0) * 2.0 * f, 0.0, 0.0, near, far

    def forward(
        self,
        point_clouds,
        gamma: PerCloud,
        znear: PerCloud | None = None,
        zfar: PerCloud | None = None,
        radius_world: bool = False,
        bg_col: torch.Tensor | None = None,
        opacity: torch.Tensor | Sequence[torch.Tensor] | None = None,
        percent_allowed_difference: float = 0.01,
        max_n_hits: int = MAX_UINT,
        mode: int = 0,
        return_forward_info: bool = False,
        R: torch.Tensor | None = None,
        T: torch.Tensor | None = None,
        focal_length: torch.Tensor | None = None,
        principal_point: torch.Tensor | None = None,
        fov: PerCloud | None = None,
        aspect_ratio: PerCloud | None = None,
        degrees: bool | None = None,
        min_x: PerCloud | None = None,
        max_x: PerCloud | None = None,
        min_y: PerCloud | None = None,
        max_y: PerCloud | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Render a batch of point clouds, one image each.

        Args:
            point_clouds: ``Pointclouds`` with features (B clouds; one camera or B).
            gamma: blending sharpness in [1e-5, 1], one per cloud or shared (required).
            znear, zfar: depth limits per cloud (default: the cameras'; required for
                PerspectiveCameras and OrthographicCameras).
            radius_world: use ``raster_settings.radius`` as world radii as is.
            bg_col: (K,) background (default zeros). opacity: (N_i,) per cloud as a list,
                (B, N) padded, or one (N,) shared; values in [0, 1].
            percent_allowed_difference, max_n_hits, mode: see :func:`render_spheres`.
            return_forward_info: also return the (B, H, W, 3 + 2 n_track) info.
            R: camera override, as PyTorch3D's; so are ``T``, ``focal_length``,
                ``principal_point``, ``fov``, ``aspect_ratio``, ``degrees``, ``min_x``,
                ``max_x``, ``min_y`` and ``max_y``.

        Returns:
            (B, H, W, K) images, row 0 at the top; differentiable in the points, features,
            radii (through a tensor radius) and opacity; with return_forward_info, also the
            info, flipped alike.
        """
        cams = self.rasterizer.cameras
        if len(point_clouds) != len(cams) and len(cams) != 1:
            raise ValueError(
                f"point_clouds: len(point_clouds) ({len(point_clouds)}) must equal "
                f"len(rasterizer.cameras) ({len(cams)}) or there must be one camera"
            )
        if (self.height, self.width) != self._image_size():
            raise ValueError("rasterizer.raster_settings.image_size changed after construction")
        orthogonal = isinstance(cams, (FoVOrthographicCameras, OrthographicCameras))
        if orthogonal != self.renderer.orthogonal:
            raise ValueError("rasterizer.cameras changed projection type after construction")
        feats = point_clouds.features_list()
        if feats is None:
            raise ValueError("point_clouds must have features (the colours to render)")
        images, infos = [], []
        for i, (pos, col) in enumerate(zip(point_clouds.points_list(), feats, strict=True)):
            ci = 0 if len(cams) == 1 else i
            rot = (cams.R if R is None else R)[ci]
            tr = (cams.T if T is None else T)[ci]
            f, sensor, ppx, ppy, near, far = self._intrinsics(
                cams, ci, znear, zfar, fov, aspect_ratio, degrees, focal_length,
                principal_point, min_x, max_x, min_y, max_y,
            )
            # PyTorch3D's world-to-view (x @ R + T; +x left, +y up) as Pulsar's pose.
            flip = torch.tensor([-1.0, -1.0, 1.0], dtype=rot.dtype, device=rot.device)
            cam_pos = -(rot @ tr)
            rot6 = matrix_to_rotation_6d(rot * flip)
            intr = torch.tensor([f, sensor, ppx, ppy], dtype=pos.dtype, device=pos.device)
            cam_params = torch.cat([cam_pos.to(pos.dtype), rot6.to(pos.dtype), intr])
            rad = self._radii(pos, cam_pos.to(pos.dtype), orthogonal, f, radius_world, i)
            opy = opacity
            if isinstance(opacity, (list, tuple)):
                opy = opacity[i]
            elif isinstance(opacity, torch.Tensor) and opacity.ndim == 2:
                opy = opacity[i, : pos.shape[0]]
            bg = torch.zeros(col.shape[1], dtype=col.dtype, device=col.device)
            out = self.renderer(
                pos, col, rad, cam_params, _per_cloud(gamma, i, "gamma"), far, near,
                bg if bg_col is None else bg_col, opy, percent_allowed_difference,
                max_n_hits, mode, return_forward_info,
            )
            img, info = out if return_forward_info else (out, None)
            images.append(img.flip(0))
            infos.append(None if info is None else info.flip(0))
        images_t = torch.stack(images)
        if return_forward_info:
            return images_t, (torch.stack(infos) if infos[0] is not None else None)
        return images_t

    def _radii(
        self, pos: torch.Tensor, cam_pos: torch.Tensor, orthogonal: bool, focal: float,
        radius_world: bool, i: int,
    ) -> torch.Tensor:
        """(N,) world radii from ``raster_settings.radius`` (PyTorch3D's rule)."""
        r = self.rasterizer.raster_settings.radius
        if isinstance(r, torch.Tensor) and r.ndim > 1:
            r = r[i]
        if isinstance(r, torch.Tensor):
            r = r.to(pos.dtype)
        ones = torch.ones(pos.shape[0], dtype=pos.dtype, device=pos.device)
        if radius_world or orthogonal:
            return ones * r
        rad = r / focal * (pos - cam_pos).norm(dim=1)
        # FoV cameras' NDC spans 2 units; PerspectiveCameras fold it into the focal length.
        return rad if isinstance(self.rasterizer.cameras, PerspectiveCameras) else rad / 2.0
