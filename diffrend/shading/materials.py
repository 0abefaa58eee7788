"""Materials with PyTorch3D's names and defaults: reflectivities and a specular exponent."""

from __future__ import annotations

from .lights import BatchedProperties, DeviceLike, PropValue, _as_batched_tensors


class Materials(BatchedProperties):
    """A batch of materials, one per batch element (PyTorch3D's ``Materials``).

    Attributes (differentiable):
        ambient_color, diffuse_color, specular_color: (N, C) reflectivities (C = 3 for RGB),
            multiplied with the light's ambient, diffuse and specular terms.
        shininess: (N,) the specular exponent (larger = a smaller, sharper highlight).
    """

    _props = ("ambient_color", "diffuse_color", "specular_color", "shininess")
    # PyTorch3D accepts a negative exponent; its compat class sets this (see compat)
    _allow_negative_shininess = False

    def __init__(
        self,
        ambient_color: PropValue = ((1.0, 1.0, 1.0),),
        diffuse_color: PropValue = ((1.0, 1.0, 1.0),),
        specular_color: PropValue = ((1.0, 1.0, 1.0),),
        shininess: PropValue = 64,
        device: DeviceLike = None,
    ) -> None:
        """Build a batch; every argument has batch size 1 or N and is broadcast to N.

        Args:
            ambient_color, diffuse_color, specular_color: ``(N, C)``, ``(1, C)`` or ``(C,)``,
                the same C for all three.
            shininess: a number, ``(1,)`` or ``(N,)``; must be >= 0 (a negative exponent
                would turn the zero highlight of unlit points into inf).
            device: None = the device of the tensors given (CPU if none).

        Raises:
            ValueError: naming the argument, on wrong shapes, different C, batch sizes other
                than 1 and N, NaN/inf, or a negative shininess.
        """
        self._set_props(
            _as_batched_tensors(
                {
                    "ambient_color": ambient_color,
                    "diffuse_color": diffuse_color,
                    "specular_color": specular_color,
                    "shininess": shininess,
                },
                {"ambient_color": 1, "diffuse_color": 1, "specular_color": 1, "shininess": 0},
                device,
            )
        )
        c = self.ambient_color.shape[-1]
        for name in ("diffuse_color", "specular_color"):
            if getattr(self, name).shape[-1] != c:
                raise ValueError(
                    f"{name} must have shape (N, {c}) like ambient_color, "
                    f"got {tuple(getattr(self, name).shape)}"
                )
        if not self._allow_negative_shininess and bool((self.shininess < 0).any()):
            raise ValueError("shininess must be >= 0")
