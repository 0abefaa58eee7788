"""Where :mod:`diffrend.jobs.preview` (rendering a mesh file for people to look at), the
image tiling of :mod:`diffrend.jobs.pictures` and the file writers of
:mod:`diffrend.io.outputs` used to live; kept so that old imports keep working."""

from .io.outputs import write_gif, write_png, write_text
from .jobs.pictures import image_grid
from .jobs.preview import (
    COMPARE,
    SHADERS,
    load_for_render,
    make_renderer,
    orbit_cameras,
    render_views,
    to_rgb,
)
from .jobs.views import normalize_meshes

__all__ = ["COMPARE", "SHADERS", "image_grid", "load_for_render", "make_renderer",
           "normalize_meshes", "orbit_cameras", "render_views", "to_rgb", "write_gif",
           "write_png", "write_text"]
