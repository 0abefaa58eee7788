"""``pytorch3d.renderer.utils``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.raster import (
    parse_image_size,
)

# not yet in diffrend: TensorAccessor, BROADCAST_TYPES, TensorProperties, format_tensor,
# convert_to_tensors_and_broadcast, ndc_grid_sample, ndc_to_grid_sample_coords

__all__ = [
    "parse_image_size",
]
