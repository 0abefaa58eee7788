"""Shading: interpolation, textures, lights, materials and shading functions."""

from .interpolate import interpolate_face_attributes

__all__ = ["interpolate_face_attributes"]
