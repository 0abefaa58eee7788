"""Rectangle packing (PyTorch3D's rule): placements never overlap, stay inside the bounding
box, touch both of its far edges, follow the largest-first/skyline rule, and dedupe ids."""

from __future__ import annotations

import random

import pytest
import torch

from diffrend.shading.rect_pack import (
    PackedRectangle,
    Rectangle,
    pack_rectangles,
    pack_unique_rectangles,
)


def _check_layout(sizes, packed):
    W, H = packed.total_size
    cover = torch.zeros(W, H, dtype=torch.int64)
    for (w, h), loc in zip(sizes, packed.locations, strict=True):
        assert loc.is_first
        pw, ph = (h, w) if loc.flipped else (w, h)
        assert loc.x >= 0 and loc.y >= 0 and loc.x + pw <= W and loc.y + ph <= H
        cover[loc.x : loc.x + pw, loc.y : loc.y + ph] += 1
    assert int(cover.max()) <= 1, "rectangles overlap"
    # the box is tight: every column and row of it holds some rectangle
    assert bool((cover.sum(1) > 0).all()) and bool((cover.sum(0) > 0).all())


@pytest.mark.parametrize("seed", range(6))
def test_random_layouts_are_valid(seed):
    rng = random.Random(seed)
    sizes = [(rng.randint(1, 17), rng.randint(1, 17)) for _ in range(20)]
    _check_layout(sizes, pack_rectangles(sizes))


def test_two_rectangles_are_stacked_landscape():
    sizes = [(3, 4), (4, 3)]
    packed = pack_rectangles(sizes)
    _check_layout(sizes, packed)
    # both turned landscape (4 wide); equal sizes: the later index goes first, at the bottom
    assert packed.total_size == (4, 6)
    assert packed.locations == [PackedRectangle(0, 3, True, True),
                                PackedRectangle(0, 0, False, True)]


def test_small_squares_fill_the_gap_beside_the_second():
    # 3x3 at the bottom, a 1x1 on top of it, then 1x1s to its right before growing upwards
    sizes = [(3, 3)] + [(1, 1)] * 3
    packed = pack_rectangles(sizes)
    _check_layout(sizes, packed)
    assert packed.total_size == (3, 4)
    assert sorted((p.x, p.y) for p in packed.locations[1:]) == [(0, 3), (1, 3), (2, 3)]
    sizes = [(3, 3)] + [(1, 1)] * 4
    assert pack_rectangles(sizes).total_size == (3, 5)


def test_turned_placement_is_tried():
    # (4, 5) does not fit landscape beside the (96, 5) strip but does turned: 4 wide, 5 high
    sizes = [(1, 100), (5, 96), (4, 5)]
    packed = pack_rectangles(sizes)
    _check_layout(sizes, packed)
    assert packed.total_size == (100, 6)
    assert packed.locations[2] == PackedRectangle(96, 1, False, True)


def test_pack_unique_rectangles_shares_placements():
    rects = [Rectangle(61, 82, 7)] * 2 + [Rectangle(61, 82, 9)] * 2
    total, locs = pack_unique_rectangles(rects)
    assert total == (82, 122)
    assert [p.is_first for p in locs] == [True, False, True, False]
    assert locs[0][:3] == locs[1][:3] and locs[2][:3] == locs[3][:3]
    assert {locs[0].y, locs[2].y} == {0, 61} and all(p.flipped for p in locs)


def test_single_identifier_is_placed_once():
    total, locs = pack_unique_rectangles([Rectangle(5, 8, 1)] * 3)
    assert total == (5, 8)
    assert locs == [PackedRectangle(0, 0, False, i == 0) for i in range(3)]


def test_errors():
    with pytest.raises(ValueError, match="less than two"):
        pack_rectangles([(1, 2)])
    with pytest.raises(ValueError, match="less than two"):
        pack_unique_rectangles([Rectangle(1, 2, 0)])
    with pytest.raises(ValueError, match=r"sizes\[1\]"):
        pack_rectangles([(1, 2), (1.5, 2)])
