"""The lab notebooks (docs/lab/NN_*.py) run top to bottom at their small test sizes.

Each notebook asserts the facts it teaches (the hard-raster gradient is zero away from edges,
a fit's IoU rises above a stated value, ...), so a run without error is the check.
With ``DIFFREND_LAB_KEEP=1`` the executed notebooks are kept as docs/lab/NN_*.ipynb, which
``python docs/build.py --reuse`` then renders without running them again (CI does this).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
_spec = importlib.util.spec_from_file_location("docs_build", DOCS / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

SOURCES = build.lab_sources()
NAMES = [p.stem for p in SOURCES]


def test_the_lab_has_its_six_notebooks_in_the_site_nav():
    assert len(SOURCES) >= 6, NAMES
    nav = (DOCS.parent / "mkdocs.yml").read_text()
    index = (DOCS / "lab" / "index.md").read_text()
    for name in NAMES:
        assert f"lab/{name}.ipynb" in nav, f"{name} is not in mkdocs.yml's nav"
        assert f"{name}.ipynb" in index, f"{name} is not listed in docs/lab/index.md"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_follows_the_lab_conventions(name):
    text = (DOCS / "lab" / f"{name}.py").read_text()
    assert re.search(r"^# %% \[markdown\]\n# # \S", text, re.M), "first cell: a '# Title'"
    assert 'SMALL = os.environ.get("DIFFREND_LAB_SMALL") == "1"' in text
    assert 'STATIC = os.environ.get("DIFFREND_LAB_STATIC") == "1"' in text
    # torch's OpenMP pool must not spin against Numba's: set before torch is imported.
    assert 0 <= text.find('"OMP_WAIT_POLICY", "PASSIVE"') < text.find("import torch"), \
        "set OMP_WAIT_POLICY=PASSIVE before importing torch (see docs/lab/05)"
    # A lab notebook checks what it teaches.
    assert len(re.findall(r"^\s*assert ", text, re.M)) >= 3, "fewer than 3 asserted facts"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_at_test_sizes(name):
    source = DOCS / "lab" / f"{name}.py"
    keep = os.environ.get("DIFFREND_LAB_KEEP") == "1"
    seconds = build.execute_notebook(source, source.with_suffix(".ipynb") if keep else None,
                                     small=True, timeout=300)
    print(f"{name}: {seconds:.1f} s")
