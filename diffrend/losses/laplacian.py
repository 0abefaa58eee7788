"""Cotangent Laplacian (PyTorch3D's ``cot_laplacian``); it lives in :mod:`diffrend.ops`."""

from ..ops.mesh_geometry import cot_laplacian

__all__ = ["cot_laplacian"]
