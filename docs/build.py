"""Build the documentation site: run the lab notebooks, then ``mkdocs build --strict``.

    python docs/build.py            # notebooks at their default sizes (about a minute each)
    python docs/build.py --small    # CI's test sizes (seconds each)
    python docs/build.py --reuse    # keep notebooks already executed into docs/lab/*.ipynb

The lab is stored as jupytext percent-format scripts (``docs/lab/NN_name.py``: plain Python,
reviewable diffs, ruff-checked). Each one is executed with nbclient into
``docs/lab/NN_name.ipynb`` (git-ignored), which mkdocs-jupyter renders with its outputs.
The site lands in ``site/``; open ``site/index.html`` through a web server
(``python -m http.server -d site``) so that search works.

``tests/test_lab.py`` runs the same :func:`execute_notebook` at the small sizes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
LAB = DOCS / "lab"


def lab_sources() -> list[Path]:
    """The lab notebooks' sources, in reading order (``docs/lab/NN_*.py``)."""
    return sorted(p for p in LAB.glob("[0-9][0-9]_*.py"))


def execute_notebook(source: Path, out: Path | None = None, *, small: bool = False,
                     timeout: int = 600) -> float:
    """Run one jupytext notebook top to bottom in a fresh kernel; return the seconds it took.

    The kernel's working folder is ``docs/lab``. ``DIFFREND_LAB_STATIC=1`` is always set (no
    widgets: a static page cannot run them); ``DIFFREND_LAB_SMALL=1`` when ``small``. The
    executed notebook, outputs included, is written to ``out`` (atomically) when given.
    Raises ``nbclient.exceptions.CellExecutionError`` naming the failing cell, or
    ``CellTimeoutError`` after ``timeout`` seconds in one cell.
    """
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    nb = jupytext.read(source)
    env = {"DIFFREND_LAB_STATIC": "1", "DIFFREND_LAB_SMALL": "1" if small else "0",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(source.parent)}}).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - start
    if out is not None:
        tmp = out.with_name(f".{out.name}.tmp")
        nbformat.write(nb, tmp)
        os.replace(tmp, out)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help="run the notebooks at their small test sizes")
    parser.add_argument("--reuse", action="store_true",
                        help="do not re-run notebooks already executed into docs/lab/*.ipynb")
    parser.add_argument("--site-dir", default=str(ROOT / "site"),
                        help="where the site is written (default: site/)")
    parser.add_argument("--no-site", action="store_true",
                        help="only execute the notebooks")
    args = parser.parse_args(argv)

    for source in lab_sources():
        out = source.with_suffix(".ipynb")
        if args.reuse and out.exists() and out.stat().st_mtime >= source.stat().st_mtime:
            print(f"{source.name}: reused {out.name}", flush=True)
            continue
        seconds = execute_notebook(source, out, small=args.small)
        print(f"{source.name}: {seconds:.1f} s", flush=True)
    if args.no_site:
        return 0
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
           str(ROOT / "mkdocs.yml"), "--site-dir", args.site_dir]
    # (mkdocs-material prints a notice about its successor on every build; it is not ours.)
    return subprocess.call(cmd, cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


if __name__ == "__main__":
    sys.exit(main())
