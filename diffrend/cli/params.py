"""Click parameter types the commands share."""

from __future__ import annotations

import math

import click

# torch.Generator.manual_seed takes any 64-bit seed, signed or not; beyond that it fails with
# "Overflow when unpacking long long", which does not say which argument.
SEED = click.IntRange(-(2**63), 2**64 - 1)


class FiniteFloat(click.FloatRange):
    """A float option that must be finite, optionally within bounds (``click.FloatRange``'s).

    ``click.FloatRange`` lets ``nan`` through (every comparison with it is false), and
    ``inf`` when no bound excludes it; here both are usage errors that name the option.
    """

    name = "float"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number!r} is not a finite number.", param, ctx)
        return number
