"""Compatibility layers: other libraries' module paths mapped onto diffrend.

``diffrend.compat.pytorch3d`` mirrors PyTorch3D's public paths. :func:`install_pytorch3d`
registers it under the name ``pytorch3d`` (the pattern of PyMySQL's ``install_as_MySQLdb``),
so that a PyTorch3D script runs with one added line::

    import diffrend.compat
    diffrend.compat.install_pytorch3d()
    from pytorch3d.renderer import MeshRenderer   # diffrend's MeshRenderer

``import diffrend`` alone never does this.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

__all__ = ["install_pytorch3d", "uninstall_pytorch3d", "pytorch3d_installed"]

_ALIAS = "pytorch3d"
_TARGET = "diffrend.compat.pytorch3d"


class _AliasLoader(importlib.abc.Loader):
    """Hands back the already-imported diffrend module instead of executing a file."""

    def __init__(self, module: types.ModuleType) -> None:
        self._module = module

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self._module

    def exec_module(self, module: types.ModuleType) -> None:
        # Already executed under its diffrend name; executing again would make a second copy
        # of every class (isinstance would then fail across the two names).
        return None


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Resolves ``pytorch3d[.x.y]`` to the module object ``diffrend.compat.pytorch3d[.x.y]``."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001 (importlib protocol)
        if fullname != _ALIAS and not fullname.startswith(_ALIAS + "."):
            return None
        real_name = _TARGET + fullname[len(_ALIAS) :]
        if importlib.util.find_spec(real_name) is None:
            return None  # PyTorch3D has it, diffrend does not: a plain ModuleNotFoundError
        module = importlib.import_module(real_name)
        return importlib.util.spec_from_loader(
            fullname, _AliasLoader(module), is_package=hasattr(module, "__path__")
        )


def pytorch3d_installed() -> bool:
    """True when ``import pytorch3d`` resolves to diffrend's compatibility package."""
    return any(isinstance(f, _AliasFinder) for f in sys.meta_path)


def install_pytorch3d(force: bool = False) -> None:
    """Register ``diffrend.compat.pytorch3d`` as the importable module ``pytorch3d``.

    After this call ``import pytorch3d.renderer`` (and every other path the package mirrors)
    gives diffrend's modules; classes are the same objects under both names. Calling it again
    does nothing.

    Args:
        force: register even when a real PyTorch3D is installed or already imported. Without
            it that case raises, so that a script never mixes the two without saying so.

    Raises:
        RuntimeError: a real PyTorch3D is importable or imported and ``force`` is False.
    """
    if pytorch3d_installed():
        return
    loaded = sys.modules.get(_ALIAS)
    if loaded is not None or importlib.util.find_spec(_ALIAS) is not None:
        if not force:
            where = getattr(loaded, "__file__", None) or importlib.util.find_spec(_ALIAS).origin
            raise RuntimeError(
                f"install_pytorch3d: a real PyTorch3D is installed ({where}); "
                "call install_pytorch3d(force=True) to shadow it with diffrend's package"
            )
        for name in [n for n in sys.modules if n == _ALIAS or n.startswith(_ALIAS + ".")]:
            del sys.modules[name]
    sys.meta_path.insert(0, _AliasFinder())


def uninstall_pytorch3d() -> None:
    """Undo :func:`install_pytorch3d`: drop the finder and the ``pytorch3d*`` module names."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AliasFinder)]
    for name in [n for n in sys.modules if n == _ALIAS or n.startswith(_ALIAS + ".")]:
        del sys.modules[name]
