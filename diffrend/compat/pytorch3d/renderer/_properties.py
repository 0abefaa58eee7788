"""PyTorch3D's ``TensorProperties`` behaviour for lights and materials in the compat paths.

diffrend's lights and materials read a ``(C,)`` colour as one colour, return copies from
``obj[i]`` and refuse a negative shininess. PyTorch3D differs in three observable ways,
which the classes built here reproduce (the work stays diffrend's):

- a 1-D vector value of length L (``ambient_color=torch.tensor([1., 1., 1.])``) makes the
  batch L long, every element holding that vector (PyTorch3D broadcasts the batch to
  ``len(value)`` and then views the value as one vector);
- ``obj[i]`` with an int is an accessor: ``obj[i].attr`` reads row i (no batch dimension) and
  ``obj[i].attr = value`` writes into row i of ``obj``;
- ``Materials`` accepts a negative shininess (then unlit points get an infinite highlight,
  as in PyTorch3D).
"""

from __future__ import annotations

from typing import Any

import torch


def _vector_batch(value: Any) -> Any:
    """A 1-D vector value as PyTorch3D reads it: (L,) -> (L, L), each row the vector."""
    t = value if torch.is_tensor(value) else None
    if t is None:
        try:
            t = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            return value  # not numbers: diffrend's check names the argument
    if t.ndim != 1 or t.numel() == 0:
        return value
    return t[None].expand(t.shape[0], -1)


class TensorAccessor:
    """Row ``index`` of a lights/materials batch: reads give the row, writes go to ``obj``."""

    def __init__(self, class_object: Any, index: int) -> None:
        object.__setattr__(self, "class_object", class_object)
        object.__setattr__(self, "index", index)

    def __getattr__(self, name: str) -> Any:
        obj = object.__getattribute__(self, "class_object")
        if name in obj._props:
            t = getattr(obj, name)
            return t[0] if t.shape[0] == 1 else t[object.__getattribute__(self, "index")]
        return getattr(obj, name)

    def __setattr__(self, name: str, value: Any) -> None:
        obj, index = self.class_object, self.index
        if name not in obj._props:
            raise AttributeError(f"{type(obj).__name__} has no batched property {name!r}")
        t = getattr(obj, name)
        # properties are broadcast views: give the batch its own storage before writing a row
        t = t.expand(len(obj), *t.shape[1:]).clone()
        t[index] = torch.as_tensor(value, dtype=t.dtype, device=t.device)
        setattr(obj, name, t)


class PyTorch3DProperties:
    """Mixin (before a diffrend lights/materials class) giving PyTorch3D's behaviour above."""

    _props: tuple[str, ...]  # the diffrend class's (not set here: the mixin comes first)
    _scalar_props: tuple[str, ...] = ("shininess",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        vectors = {k: _vector_batch(v) if k in self._props and k not in self._scalar_props
                   else v for k, v in kwargs.items()}
        super().__init__(*args, **vectors)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._props and name not in self._scalar_props and torch.is_tensor(value):
            value = _vector_batch(value)
        super().__setattr__(name, value)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int) and not isinstance(index, bool):
            n = len(self)
            if not -n <= index < n:
                raise IndexError(f"index {index} out of range for batch size {n}")
            return TensorAccessor(self, index % n)
        return super().__getitem__(index)
