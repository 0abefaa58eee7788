"""The lab's scenes: the bundled cow and teapot, centred and scaled to max |coordinate| 1."""

from __future__ import annotations

from pathlib import Path

import torch

from ..io import load_objs_as_meshes
from ..structures import Meshes

_DATA = Path(__file__).resolve().parents[1] / "data"
SCENES = {"cow": _DATA / "cow_mesh" / "cow.obj", "teapot": _DATA / "teapot" / "teapot.obj"}


def load_scene_mesh(name: str | Path, device: torch.device | str = "cpu") -> Meshes:
    """One mesh (no textures), centred on its bounding box and scaled to max |coord| 1.

    Args:
        name: "cow" or "teapot" (bundled), or a path to a mesh file.
        device: where the mesh lives.

    Raises:
        ValueError: an unknown name that is not an existing file.
    """
    path = SCENES.get(str(name), Path(name))
    if not Path(path).is_file():
        raise ValueError(f"scene must be one of {sorted(SCENES)} or a mesh file, got {name!r}")
    mesh = load_objs_as_meshes([path], device=device, load_textures=False)
    v = mesh.verts_packed()
    lo, hi = v.amin(0), v.amax(0)
    v = (v - (lo + hi) / 2) / ((hi - lo).max() / 2).clamp(min=1e-12)
    return Meshes([v], [mesh.faces_packed()])
