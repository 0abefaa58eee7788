"""pytest plugin that runs PyTorch3D's own tests against ``diffrend.compat.pytorch3d``.

Loaded by :mod:`diffrend.compat.conformance.run` in a child pytest (``-p``); not for
diffrend's own test suite. It registers the ``pytorch3d`` alias, runs tests that hard-code a
CUDA device on the CPU (device strings in the test sources become ``"cpu"``, ``.cuda()``
becomes ``.cpu()``, ``torch.cuda.synchronize`` does nothing), and writes one JSON record per
test for the runner to classify.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import io
import json
import os
import sys
import tokenize
from pathlib import Path

import pytest

_RESULTS: dict[str, dict] = {}
_CUDA_STRINGS = {"'cuda'", '"cuda"', "'cuda:0'", '"cuda:0"', "'cuda:1'", '"cuda:1"'}


def cuda_to_cpu_source(source: str) -> str:
    """Rewrite a test module's source so that its CUDA devices are the CPU.

    Only tokens change: string literals ``"cuda"``, ``"cuda:0"``, ``"cuda:1"`` become
    ``"cpu"``, and ``x.cuda(`` becomes ``x.cpu(`` (``torch.cuda.*`` is left alone).
    """
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    out = []
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.STRING and tok.string in _CUDA_STRINGS:
            tok = tok._replace(string='"cpu"')
        elif (
            tok.type == tokenize.NAME
            and tok.string == "cuda"
            and i >= 2
            and tokens[i - 1].string == "."
            and tokens[i - 2].string != "torch"
            and i + 1 < len(tokens)
            and tokens[i + 1].string == "("
        ):
            tok = tok._replace(string="cpu")
        out.append(tok)
    return tokenize.untokenize(out)


class _RewritingLoader(importlib.machinery.SourceFileLoader):
    def get_data(self, path):  # noqa: ANN001 (importlib protocol)
        data = super().get_data(path)
        if str(path).endswith(".py"):
            return cuda_to_cpu_source(data.decode("utf-8")).encode("utf-8")
        return data

    def get_code(self, fullname):  # noqa: ANN001
        # Skip the bytecode cache: it holds the unrewritten module (and the folder is read-only).
        source = self.get_data(self.get_filename(fullname))
        return compile(source, self.get_filename(fullname), "exec", dont_inherit=True)


class _TestsFinder(importlib.abc.MetaPathFinder):
    """Loads ``tests.*`` modules of the PyTorch3D test folder through the rewriting loader."""

    def __init__(self, tests_dir: Path) -> None:
        self.tests_dir = tests_dir

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001
        if fullname != "tests" and not fullname.startswith("tests."):
            return None
        parts = fullname.split(".")[1:]
        base = self.tests_dir.joinpath(*parts)
        if base.is_dir() and (base / "__init__.py").exists():
            origin, is_pkg = base / "__init__.py", True
        elif base.with_suffix(".py").exists():
            origin, is_pkg = base.with_suffix(".py"), False
        else:
            return None
        loader = _RewritingLoader(fullname, str(origin))
        spec = importlib.util.spec_from_file_location(
            fullname,
            str(origin),
            loader=loader,
            submodule_search_locations=[str(base)] if is_pkg else None,
        )
        return spec


def _patch_torch_cuda() -> None:
    import torch

    torch.cuda.synchronize = lambda *args, **kwargs: None
    torch.cuda.set_device = lambda *args, **kwargs: None


def pytest_configure(config: pytest.Config) -> None:
    import diffrend.compat

    diffrend.compat.install_pytorch3d()
    tests_dir = Path(os.environ["DIFFREND_P3D_TESTS"]).resolve()
    sys.meta_path.insert(0, _TestsFinder(tests_dir))
    _patch_torch_cuda()
    import tests.common_testing as common

    common.get_random_cuda_device = lambda: "cpu"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    record = _RESULTS.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed"})
    if report.when == "call" or report.outcome != "passed":
        if report.skipped:
            record["outcome"] = "skipped"
            if isinstance(report.longrepr, tuple):
                record["message"] = str(report.longrepr[2])
        elif report.failed:
            record["outcome"] = "failed" if report.when == "call" else "error"
            record["message"] = _failure_text(report)
        record["duration"] = record.get("duration", 0.0) + report.duration


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _RESULTS[report.nodeid] = {
            "nodeid": report.nodeid,
            "outcome": "collect_error",
            "message": _failure_text(report),
        }


def _failure_text(report) -> str:  # noqa: ANN001
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return f"{crash.message}"
    text = str(report.longrepr)
    # A module that fails at import: pytest's text ends with the exception's "E   " lines.
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    if errors:
        return " ".join(errors)[-2000:]
    return text[-2000:]


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("DIFFREND_P3D_RESULTS")
    if out:
        Path(out).write_text(json.dumps(list(_RESULTS.values()), indent=1))
