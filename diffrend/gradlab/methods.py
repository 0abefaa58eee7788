"""A gradient method with its settings, as the lab compares them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..cameras import CamerasBase
from ..gradients import METHODS, render_silhouette
from ..structures import Meshes


@dataclass(frozen=True)
class MethodSpec:
    """One row of the lab's tables.

    Attributes:
        label: the row's name.
        method: one of :data:`diffrend.gradients.METHODS`.
        image_size: side of the rendered images (the pose and fitting experiments).
        sigma: SoftRas sharpness ("soft" only).
        faces_per_pixel: K of the soft rasterizer ("soft" only).
    """

    label: str
    method: str
    image_size: int = 128
    sigma: float = 1e-4
    faces_per_pixel: int = 50

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")

    def render(self, mesh: Meshes, cameras: CamerasBase, image_size: int | None = None
               ) -> torch.Tensor:
        """Silhouettes (N, S, S) with this method's gradients (S: ``image_size`` or the
        spec's own)."""
        return render_silhouette(mesh, cameras, image_size or self.image_size, self.method,
                                 sigma=self.sigma, faces_per_pixel=self.faces_per_pixel)

    def blur_px(self, image_size: int | None = None) -> float:
        """The soft rasterizer's blur radius in pixels (0 for the hard-forward methods)."""
        if self.method != "soft":
            return 0.0
        s = image_size or self.image_size
        return math.sqrt(self.sigma * math.log(1.0 / self.sigma - 1.0)) * s / 2.0


def sigma_for_px(blur_px: float, image_size: int) -> float:
    """The SoftRas sigma whose blur radius is ``blur_px`` pixels at ``image_size``."""
    from ..jobs.views import sigma_for_blur

    return sigma_for_blur(blur_px, image_size)[0]


def default_methods(image_size: int = 128) -> list[MethodSpec]:
    """The five methods at ``image_size``; soft at PyTorch3D's sigma and at a wide blur
    (4 pixels, or a sixteenth of the image on small images)."""
    blur = min(4.0, image_size / 16)
    return [
        MethodSpec("soft (sigma 1e-4)", "soft", image_size, 1e-4, 50),
        MethodSpec(f"soft (blur {blur:g} px)", "soft", image_size,
                   sigma_for_px(blur, image_size), 80),
        MethodSpec("hard", "hard", image_size),
        MethodSpec("antialias", "antialias", image_size),
        MethodSpec("nmr", "nmr", image_size),
        MethodSpec("opendr", "opendr", image_size),
    ]


def tutorial_method(image_size: int = 256) -> MethodSpec:
    """PyTorch3D's camera-position tutorial: SoftSilhouetteShader, sigma = gamma = 1e-4,
    K = 100, 256 x 256."""
    return MethodSpec("PyTorch3D tutorial (soft, sigma 1e-4, K 100)", "soft", image_size,
                      1e-4, 100)
