"""README.md and the documentation pages (docs/**/*.md) say only what is true.

- Every ```python block runs as written, in a fresh namespace and an empty working folder.
  A block that must not run starts with the line ``# no-run`` (or opens with
  ```python no-run, which not every Markdown renderer shows as code); keep that rare.
- Every ``diffrend CMD --option`` the text mentions exists.
- README's first bash block holds the two set-up commands, byte for byte.
- Every relative link in README.md points to an existing file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
NO_RUN = "# no-run"


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _python_blocks() -> list[tuple[str, int, str]]:
    blocks = []
    for page in PAGES:
        found = re.findall(r"^```python([^\n]*)\n(.*?)^```", page.read_text(), re.S | re.M)
        blocks += [(_name(page), i, NO_RUN + "\n" + code if "no-run" in info else code)
                   for i, (info, code) in enumerate(found)]
    return blocks


BLOCKS = _python_blocks()


def test_pages_have_examples():
    assert len(BLOCKS) >= 8
    assert any(name == "README.md" for name, _, _ in BLOCKS)


@pytest.mark.parametrize("name,index,code", BLOCKS,
                         ids=[f"{name}-{index}" for name, index, _ in BLOCKS])
def test_example_runs(name, index, code, tmp_path, monkeypatch):
    if code.startswith(NO_RUN):
        pytest.skip(f"{name} example {index} is marked {NO_RUN!r}")
    monkeypatch.chdir(tmp_path)  # examples may write files; none may rely on the folder
    exec(compile(code, f"{name} example {index}", "exec"), {"__name__": "__main__"})


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


def _module_options() -> set[str]:
    """Options of the ``python -m diffrend...`` tools and of docs/build.py (argparse), which
    the text may name."""
    found = set()
    for source in [*(ROOT / "diffrend").rglob("*.py"), ROOT / "docs" / "build.py"]:
        found |= set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", source.read_text()))
    return found


TAKES = re.compile(r"((?:`diffrend [\w-]+`(?:,| and| or)? )+)takes? "
                   r"((?:`--[\w-]+[^`]*`(?:,| and)? ?)+)")


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_option_the_text_lists_exists(page):
    # README once listed pose options that `diffrend pose` does not have.
    options = _command_options()
    name = _name(page)
    text = " ".join(page.read_text().split())  # one line: sentences wrap
    # "`diffrend A` and `diffrend B` take `--x`, `--y`, ..." and "`diffrend C` takes ..."
    for commands, opts in TAKES.findall(text):
        for command in re.findall(r"`diffrend ([\w-]+)`", commands):
            assert command in options, f"{name}: {command}"
            for opt in re.findall(r"`(--[\w-]+)", opts):
                assert opt in options[command], f"{name}: `diffrend {command}` {opt}"
    # Inline commands with options: `diffrend CMD ... --opt ...`, and the same in bash blocks.
    commands = re.findall(r"`diffrend ([\w-]+)((?: [^`]*)?)`", text)
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
        for line in block.splitlines():
            line = line.split("#")[0]
            commands += re.findall(r"(?:^|&& |\| )diffrend ([\w-]+)((?: [^&|]*)?)", line)
    for cmd, rest in commands:
        if cmd in options:
            for opt in re.findall(r"(?<![\w-])(--[\w-]+)", rest):
                assert opt in options[cmd] | {"--help"}, f"{name}: `diffrend {cmd}{rest}`"
    # Any other --option in the prose belongs to some command (or to a `python -m` tool).
    everything = set().union(*options.values()) | {"--help"} | _module_options()
    prose = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    prose = re.sub(r"`python -m [^`]*`|`pip install[^`]*`", "", " ".join(prose.split()))
    unknown = sorted(set(re.findall(r"`(--[\w-]+)", prose)) - everything)
    assert not unknown, f"{name}: {unknown}"


def test_the_pages_list_options_in_takes_sentences():
    # The per-page check above must have something to check.
    listed = [m for page in PAGES for m in TAKES.findall(" ".join(page.read_text().split()))]
    assert len(listed) >= 3, listed


def test_readme_links_point_to_files():
    text = README.read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [ln for ln in links if not re.match(r"[a-z]+:|#", ln)]
    assert local, "README.md links to no docs page"
    missing = [ln for ln in local if not (ROOT / ln.split("#")[0]).is_file()]
    assert not missing, missing
