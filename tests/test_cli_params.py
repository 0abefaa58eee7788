"""Float options of the CLI: NaN and inf are usage errors that name the option."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from diffrend.cli import main
from diffrend.cli.params import SEED, FiniteFloat


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_finite_float_refuses_non_finite(text: str) -> None:
    with pytest.raises(click.BadParameter, match="not a finite number"):
        FiniteFloat().convert(text, None, None)


def test_finite_float_keeps_range_and_values() -> None:
    assert FiniteFloat().convert("-2.5", None, None) == -2.5
    assert FiniteFloat(0.0, 1.0).convert("1", None, None) == 1.0
    with pytest.raises(click.BadParameter):
        FiniteFloat(0.0, 1.0).convert("1.5", None, None)
    with pytest.raises(click.BadParameter):
        FiniteFloat(0.0, min_open=True).convert("0", None, None)
    with pytest.raises(click.BadParameter):
        FiniteFloat().convert("abc", None, None)


def _float_options() -> list[tuple[str, str, int]]:
    """(command, option, nargs) of every float-valued option of every command."""
    found = []
    for name, command in main.commands.items():
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.type, click.FloatRange):
                found.append((name, param.opts[0], param.nargs))
    return found


def test_every_float_option_is_finite() -> None:
    """No command takes a plain float (which lets NaN through): each is a FiniteFloat."""
    plain = [(name, p.opts[0]) for name, command in main.commands.items()
             for p in command.params
             if isinstance(p, click.Option) and p.type is click.FLOAT
             or isinstance(p, click.Option) and isinstance(p.type, click.FloatRange)
             and not isinstance(p.type, FiniteFloat)]
    assert plain == []
    assert len(_float_options()) >= 8


@pytest.mark.parametrize(("command", "option", "nargs"), _float_options())
@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_option_is_a_usage_error(command: str, option: str, nargs: int, bad: str,
                                            tmp_path) -> None:
    """Refused while the arguments are parsed (exit code 2, the option named), before any
    output is written: `--background nan 1 1` used to render silently garbled images."""
    values = [bad] + ["0.5"] * (nargs - 1)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [command, option, *values, "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert option in result.output
    # (inf beyond a bound is refused by the range check first, in its own words)
    assert "not a finite number" in result.output or "not in the range" in result.output
    if bad == "nan":
        assert "not a finite number" in result.output
    assert not out.exists()


def _seeded_commands() -> list[str]:
    return [name for name, command in main.commands.items()
            if any(p.name == "seed" for p in command.params)]


def test_seeds_are_64_bit() -> None:
    """Every command's --seed takes exactly what torch's generators take."""
    import torch

    names = _seeded_commands()
    assert len(names) >= 5
    for name in names:
        option = next(p for p in main.commands[name].params if p.name == "seed")
        assert option.type is SEED, name
    for seed in (-(2**63), -1, 2**64 - 1):
        torch.Generator().manual_seed(SEED.convert(str(seed), None, None))


@pytest.mark.parametrize("command", _seeded_commands())
@pytest.mark.parametrize("seed", [str(2**64), str(-(2**63) - 1)])
def test_seed_out_of_range_is_a_usage_error(command: str, seed: str, tmp_path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [command, "--seed", seed, "-o", str(out)])
    assert result.exit_code == 2 and "--seed" in result.output, result.output
    assert not out.exists()
