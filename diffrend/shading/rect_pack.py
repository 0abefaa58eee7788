"""Packing axis-aligned rectangles into one bounding rectangle (PyTorch3D's rule).

Used to put the texture images of several meshes into one image (``TexturesUV.join_scene``).
The placement follows PyTorch3D's ``pack_rectangles`` so that joined scenes get the same image
sizes:

1. every rectangle is first turned "landscape" (width >= height; ``flipped`` records a turn);
2. rectangles are taken largest first, ordered by (width, height, input index), descending;
3. the first one lies at (0, 0) and fixes the total width; the second one is stacked on it;
4. each further one goes into the leftmost-lowest free slot of the "skyline" (the right edges
   of the rows of rectangles placed so far, bottom to top), trying it landscape, then turned;
   if it fits neither way it is stacked on top at x = 0, growing the total height.

Coordinates are integers: x to the right, y up (the y of a rectangle is its bottom edge).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

__all__ = [
    "PackedRectangle",
    "PackedRectangles",
    "Rectangle",
    "pack_rectangles",
    "pack_unique_rectangles",
]


class Rectangle(NamedTuple):
    """A rectangle to pack: its size and a key; equal keys mean "the same image"."""

    xsize: int
    ysize: int
    identifier: int


class PackedRectangle(NamedTuple):
    """Where a rectangle went: lower-left corner, whether it was turned by 90 degrees, and
    whether it is the first of its identifier (the one whose pixels get copied)."""

    x: int
    y: int
    flipped: bool
    is_first: bool


class PackedRectangles(NamedTuple):
    """The bounding size (width, height) and one placement per input rectangle."""

    total_size: tuple[int, int]
    locations: list[PackedRectangle]


def _fit(skyline: list[list[int]], width: int, height: int) -> tuple[int, int, int, int] | None:
    """Lowest slot right of the skyline that fits a (width, height) rectangle.

    ``skyline`` holds bands [right, top], bottom to top; band k spans y from the previous
    band's top to its own. A slot is a run of consecutive bands that all leave ``width``
    free up to the total width (band 0's right) and together are at least ``height`` tall.

    Returns (first band, last band, x, y) or None.
    """
    limit = skyline[0][0] - width
    start = None
    x = span = 0
    for k in range(1, len(skyline)):
        right, top = skyline[k]
        if right > limit:
            start = None
            continue
        if start is None:
            start, x, span = k, 0, 0
        x = max(x, right)
        span += top - skyline[k - 1][1]
        if span >= height:
            return start, k, x, skyline[start - 1][1]
    return None


def _place(skyline: list[list[int]], width: int, height: int) -> tuple[int, int] | None:
    """Put a (width, height) rectangle into the skyline; returns its (x, y) or None."""
    slot = _fit(skyline, width, height)
    if slot is None:
        return None
    first, last, x, y = slot
    new_band = [x + width, y + height]
    if skyline[last][1] == y + height:
        skyline[first : last + 1] = [new_band]
    else:
        # The last band sticks out above the rectangle: it keeps its right edge and top.
        skyline[first:last] = [new_band]
    return x, y


def pack_rectangles(sizes: Sequence[tuple[int, int]]) -> PackedRectangles:
    """Pack rectangles, each possibly turned by 90 degrees, into one bounding rectangle.

    Args:
        sizes: at least two (width, height) pairs of non-negative ints.

    Returns:
        ``PackedRectangles``: the bounding (width, height) and, per input in order, its
        lower-left corner and whether it is turned (then it covers (height, width) pixels);
        ``is_first`` is always True. Placements never overlap.

    Raises:
        ValueError: fewer than two rectangles, or sizes that are not pairs of ints >= 0.
    """
    if len(sizes) < 2:
        raise ValueError("Cannot pack less than two boxes")
    landscape = []
    for i, size in enumerate(sizes):
        if len(size) != 2 or any(isinstance(s, bool) or int(s) != s or s < 0 for s in size):
            raise ValueError(f"sizes[{i}]: expected (width, height) ints >= 0, got {size!r}")
        w, h = int(size[0]), int(size[1])
        turned = w < h
        landscape.append(((h, w) if turned else (w, h), i, turned))
    order = sorted(landscape, reverse=True)
    locations: list[PackedRectangle | None] = [None] * len(sizes)

    (total_width, height), first, turned = order[0]
    locations[first] = PackedRectangle(0, 0, turned, True)
    (w, h), second, turned = order[1]
    locations[second] = PackedRectangle(0, height, turned, True)
    skyline = [[total_width, height], [w, height + h]]
    height += h

    for (w, h), i, turned in order[2:]:
        spot = _place(skyline, w, h)
        if spot is not None:
            locations[i] = PackedRectangle(spot[0], spot[1], turned, True)
            continue
        spot = _place(skyline, h, w)
        if spot is not None:
            locations[i] = PackedRectangle(spot[0], spot[1], not turned, True)
            continue
        locations[i] = PackedRectangle(0, height, turned, True)
        height += h
        skyline.append([w, height])
    return PackedRectangles((total_width, height), locations)  # type: ignore[arg-type]


def pack_unique_rectangles(rectangles: Sequence[Rectangle]) -> PackedRectangles:
    """:func:`pack_rectangles` of the distinct identifiers; repeats share the placement.

    Args:
        rectangles: at least two ``Rectangle``; the size of an identifier's first occurrence
            is the one packed.

    Returns:
        ``PackedRectangles`` with one placement per input; ``is_first`` is True only for the
        first rectangle of each identifier. A single distinct identifier gives its own size
        and (0, 0), unturned, for every input.

    Raises:
        ValueError: fewer than two rectangles.
    """
    if len(rectangles) < 2:
        raise ValueError("Cannot pack less than two boxes")
    unique: dict[int, int] = {}
    sizes: list[tuple[int, int]] = []
    for r in rectangles:
        if r.identifier not in unique:
            unique[r.identifier] = len(sizes)
            sizes.append((r.xsize, r.ysize))
    which = [unique[r.identifier] for r in rectangles]
    if len(sizes) == 1:
        placed = [PackedRectangle(0, 0, False, True)]
        total = sizes[0]
    else:
        total, placed = pack_rectangles(sizes)
    seen: set[int] = set()
    locations = []
    for u in which:
        locations.append(placed[u]._replace(is_first=u not in seen))
        seen.add(u)
    return PackedRectangles(total, locations)
