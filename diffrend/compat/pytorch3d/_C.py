"""``pytorch3d._C``: PyTorch3D's compiled extension. diffrend has no such thing.

The module exists so that a script or test file that imports it still loads; any attribute
raises AttributeError saying what to use instead (the public functions, which run diffrend's
kernels).
"""


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(
        f"pytorch3d._C.{name}: PyTorch3D's compiled internals are not part of diffrend's "
        "compatibility package; call the public function instead (e.g. "
        "pytorch3d.renderer.mesh.rasterize_meshes), which runs diffrend's kernels"
    )
