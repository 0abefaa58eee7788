"""The Python examples in README.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index):
    exec(compile(BLOCKS[index], f"README.md example {index}", "exec"), {})


def test_first_command_installs_only_the_jobs_needs_and_the_test_command_is_unchanged():
    text = README.read_text()
    first = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    commands = [ln for ln in first.splitlines() if ln and not ln.startswith("#")]
    # The main job needs no test extra (pytest, hypothesis, ~1 GB of Triton).
    assert commands[0] == "pip install torch==2.13.0 -e . && diffrend fit"
    # CI greps for this exact line.
    assert commands[1] == 'pip install torch==2.13.0 -e ".[test]" && python -m pytest -q'


def _command_options() -> dict[str, set[str]]:
    import click

    from diffrend.cli import main

    return {name: {opt for p in cmd.params if isinstance(p, click.Option)
                   for opt in p.opts + p.secondary_opts}
            for name, cmd in main.commands.items()}


def test_every_option_the_readme_lists_exists():
    # README once listed pose options that `diffrend pose` does not have.
    options = _command_options()
    text = " ".join(README.read_text().split())  # one line: sentences wrap
    # "`diffrend A` and `diffrend B` take `--x`, `--y`, ..." and "`diffrend C` takes ..."
    listed = re.findall(r"((?:`diffrend [\w-]+`(?:,| and| or)? )+)takes? "
                        r"((?:`--[\w-]+[^`]*`(?:,| and)? ?)+)", text)
    assert len(listed) >= 3, listed
    for commands, opts in listed:
        for command in re.findall(r"`diffrend ([\w-]+)`", commands):
            assert command in options, command
            for opt in re.findall(r"`(--[\w-]+)", opts):
                assert opt in options[command], f"README: `diffrend {command}` {opt}"
    # Inline commands with options: `diffrend CMD ... --opt ...`.
    for cmd, rest in re.findall(r"`diffrend ([\w-]+)((?: [^`]*)?)`", text):
        if cmd in options:
            for opt in re.findall(r"(?<![\w-])(--[\w-]+)", rest):
                assert opt in options[cmd] | {"--help"}, f"README: `diffrend {cmd} {rest}`"
    # Any other --option in the prose belongs to some command.
    everything = set().union(*options.values()) | {"--help"}
    prose = re.sub(r"```.*?```", "", README.read_text(), flags=re.S)
    prose = re.sub(r"`python -m [^`]*`|`pip install[^`]*`", "", " ".join(prose.split()))
    unknown = sorted(set(re.findall(r"`(--[\w-]+)", prose)) - everything)
    assert not unknown, unknown
