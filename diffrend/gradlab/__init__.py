"""The gradient lab: every silhouette-gradient method on the same scenes, measured.

``diffrend gradlab`` runs :func:`run_gradlab`, which writes a report (markdown, PNG, JSON):

- :mod:`.pictures`: the image-space change each method predicts for one vertex motion,
  beside the true change of a supersampled render;
- :mod:`.accuracy`: directional derivatives of a silhouette loss w.r.t. the vertices and the
  camera pose, against finite differences of the supersampled render;
- :mod:`.pose`: camera-pose recovery of the teapot from the same starts with each method
  (PyTorch3D's tutorial setting among them);
- :mod:`.fitting`: silhouette-only fitting of the cow with each method.
"""

from .methods import MethodSpec, default_methods
from .run import GradlabSettings, run_gradlab
from .scenes import SCENES, load_scene_mesh

__all__ = [
    "SCENES",
    "GradlabSettings",
    "MethodSpec",
    "default_methods",
    "load_scene_mesh",
    "run_gradlab",
]
