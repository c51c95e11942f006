"""The bin-by-bin packer: every size placed once, on a box that holds it, or None."""

from __future__ import annotations

import random

import pytest

from provisioner.scheduling.packing import Box, Size, cover, unit_prices

from ..brute_force import GRAVITON, priced_types

MIB = 2**20


def test_cover_places_every_size_once_on_a_box_that_holds_it() -> None:
    rng = random.Random(7)
    sizes = [Size(rng.randrange(100, 1501), rng.randrange(100, 4097) * MIB) for _ in range(300)]
    boxes = sorted(
        (Box(t.cheapest().price, t.allocatable.cpu, t.allocatable.memory, t.allocatable.pods,  # type: ignore[union-attr]
             t.allocatable.ephemeral_storage) for _, t in priced_types(GRAVITON)),
        key=lambda b: b.price,
    )  # fmt: skip
    for unit in unit_prices(boxes, sum(s.cpu for s in sizes), sum(s.memory for s in sizes)):
        packed = cover(sizes, boxes, unit)
        assert packed is not None
        total, bins = packed
        seen = sorted(i for _, members in bins for i in members)
        assert seen == list(range(len(sizes)))
        for index, members in bins:
            box = boxes[index]
            assert box.holds(
                sum(sizes[i].cpu for i in members),
                sum(sizes[i].memory for i in members),
                len(members),
                0,
                {},
            )
            # Shrunk: no cheaper box holds the same pods.
            assert not any(
                b.price < box.price
                and b.holds(
                    sum(sizes[i].cpu for i in members),
                    sum(sizes[i].memory for i in members),
                    len(members),
                    0,
                    {},
                )
                for b in boxes
            )
        assert total == pytest.approx(sum(boxes[i].price for i, _ in bins))


def test_cover_reports_a_size_no_boxholds() -> None:
    assert cover([Size(10_000, MIB)], [Box(1.0, 2000, 4 * 2**30, 10, 0)], (1.0, 1.0)) is None
