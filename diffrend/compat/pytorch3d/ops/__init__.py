"""``pytorch3d.ops``: PyTorch3D's path, mapped onto diffrend's names.

Re-exports the submodules' names, as PyTorch3D's package does.
"""

from .interp_face_attrs import *  # noqa: F403
from .knn import *  # noqa: F403
from .laplacian_matrices import *  # noqa: F403
from .mesh_face_areas_normals import *  # noqa: F403
from .packed_to_padded import *  # noqa: F403
from .points_normals import *  # noqa: F403
from .sample_points_from_meshes import *  # noqa: F403
from .subdivide_meshes import *  # noqa: F403
from .utils import *  # noqa: F403

# PyTorch3D's package also imports: ball_query, cameras_alignment, cubify, graph_conv,
# iou_box3d, mesh_filtering, perspective_n_points, points_alignment, points_to_volumes,
# sample_farthest_points, vert_align
