"""Run a PyTorch3D test folder against ``diffrend.compat.pytorch3d`` and tabulate the result.

    python -m diffrend.compat.conformance [TESTS_DIR] [--files test_cameras.py ...]
        [--out DIR] [--min-pass N] [--jobs J] [--tutorial-data DIR]

TESTS_DIR is a PyTorch3D checkout, its ``tests/`` folder, or a folder holding ``tests/``
(default ``../shared/pytorch3d-tests``). Each test file runs in its own pytest process (a crash
or hang costs one file, not the run) with the plugin :mod:`.plugin`. Writes
``conformance.md`` (per file: passed / failed / not applicable, and every failure with its
class) and ``conformance.json`` to ``--out``. Exit status: 0, or 1 when the renderer-related
files pass fewer than ``--min-pass`` tests, or 2 for bad arguments. A missing TESTS_DIR prints
why and exits 0, so that optional measurement steps skip cleanly.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from diffrend.compat.conformance.classify import FAILURE_CLASSES, Verdict, classify

# The renderer-related files (issue 15's 26 and their neighbours): the drop-in target counts
# these. Other files are run and reported, but are outside diffrend's scope (ops such as knn,
# marching cubes, volumes, implicit rendering).
RENDERER_FILES: tuple[str, ...] = (
    "test_blending.py",
    "test_camera_utils.py",
    "test_cameras.py",
    "test_chamfer.py",
    "test_compositing.py",
    "test_interpolate_face_attributes.py",
    "test_io_obj.py",
    "test_io_ply.py",
    "test_lighting.py",
    "test_materials.py",
    "test_mesh_edge_loss.py",
    "test_mesh_laplacian_smoothing.py",
    "test_mesh_normal_consistency.py",
    "test_meshes.py",
    "test_pointclouds.py",
    "test_rasterize_meshes.py",
    "test_rasterize_points.py",
    "test_rasterizer.py",
    "test_render_meshes.py",
    "test_render_points.py",
    "test_rotation_conversions.py",
    "test_sample_points_from_meshes.py",
    "test_shader.py",
    "test_so3.py",
    "test_texturing.py",
    "test_transforms.py",
    "test_vis.py",
)

FILE_TIMEOUT_S = 900


def find_tests_dir(path: Path) -> Path | None:
    """The folder named ``tests`` that holds PyTorch3D's ``common_testing.py``, or None."""
    for candidate in (path, path / "tests"):
        if (candidate / "common_testing.py").is_file() and candidate.name == "tests":
            return candidate.resolve()
    return None


def find_tutorial_data(tests_dir: Path) -> Path | None:
    """The folder of PyTorch3D's tutorial meshes (holding ``cow_mesh/``), or None.

    A PyTorch3D checkout has it at ``docs/tutorials/data``; a bare copy of the tests does
    not, and then the workplace's ``data/`` beside the tests' folder (the same cow) stands in.
    """
    for candidate in (tests_dir.parent / "docs/tutorials/data", tests_dir.parent.parent / "data"):
        if (candidate / "cow_mesh" / "cow.obj").is_file():
            return candidate.resolve()
    return None


def run_file(
    tests_dir: Path,
    name: str,
    timeout_s: float = FILE_TIMEOUT_S,
    tutorial_data: Path | None = None,
) -> list[dict]:
    """Run one test file in a child pytest; the plugin's records (one per test).

    ``tutorial_data`` (a folder holding ``cow_mesh/``) is shown to the tests as PyTorch3D's
    ``docs/tutorials/data`` when the tests' folder has none beside it.
    """
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.json"
        env = dict(os.environ)
        if tutorial_data is not None and not (tests_dir.parent / "docs/tutorials/data").is_dir():
            # common_testing.get_pytorch3d_dir() reads SRC_DIR under CONDA_BUILD_STATE=TEST
            root = Path(tmp) / "pytorch3d-root"
            (root / "docs/tutorials").mkdir(parents=True)
            (root / "docs/tutorials/data").symlink_to(tutorial_data, target_is_directory=True)
            env.update(CONDA_BUILD_STATE="TEST", SRC_DIR=str(root))
        env.update(
            DIFFREND_P3D_TESTS=str(tests_dir),
            DIFFREND_P3D_RESULTS=str(results),
            PYTHONDONTWRITEBYTECODE="1",
            # Two files run at once on small machines: keep their thread pools from fighting.
            OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
        )
        # The child runs in the tests' folder: let it import this very diffrend even when
        # it is a source checkout that is not installed.
        package_root = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        cmd = [
            sys.executable, "-m", "pytest", f"tests/{name}", "-q", "-p", "no:cacheprovider",
            "-p", "diffrend.compat.conformance.plugin", "--rootdir", str(tests_dir.parent),
            "-c", os.devnull, "-W", "ignore", "--tb=line",
        ]
        start = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, cwd=tests_dir.parent, env=env, capture_output=True, text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return [{"nodeid": f"tests/{name}", "outcome": "error",
                     "message": f"timeout: the file ran past {timeout_s:.0f} s"}]
        elapsed = time.monotonic() - start
        if results.exists():
            records = json.loads(results.read_text())
        else:
            records = []
        if not records:
            tail = (proc.stdout + proc.stderr)[-1500:]
            records = [{"nodeid": f"tests/{name}", "outcome": "error",
                        "message": f"pytest exited {proc.returncode} with no test run: {tail}"}]
        records = expand_collect_errors(records, tests_dir / name)
        for r in records:
            r["file"] = name
        records[0]["file_seconds"] = elapsed
        return records


def count_tests(path: Path) -> list[str]:
    """Node ids of the test methods/functions a file defines, read from its source.

    A file that fails at import runs no test; counting what it defines keeps the denominator
    honest (one import error costs every test in the file, as a user would see it).
    """
    tree = ast.parse(path.read_text())
    ids = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            ids.append(f"tests/{path.name}::{node.name}")
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                    ids.append(f"tests/{path.name}::{node.name}::{item.name}")
    return ids


def expand_collect_errors(records: list[dict], path: Path) -> list[dict]:
    """Replace a file-level collection error by one failed record per test the file defines."""
    if len(records) != 1 or records[0]["outcome"] not in ("collect_error", "error"):
        return records
    if "::" in records[0]["nodeid"]:
        return records
    ids = count_tests(path) or [records[0]["nodeid"]]
    return [dict(records[0], nodeid=i) for i in ids]


def summarize(verdicts: list[Verdict]) -> Counter:
    """Counts per class, plus "failed" (all failure classes) and "applicable"."""
    counts = Counter(v.cls for v in verdicts)
    counts["failed"] = sum(counts[c] for c in FAILURE_CLASSES)
    counts["applicable"] = counts["passed"] + counts["failed"]
    counts["n/a"] = len(verdicts) - counts["applicable"]
    return counts


def write_report(out: Path, per_file: dict[str, list[Verdict]], tests_dir: Path) -> str:
    """Write conformance.md / conformance.json to ``out``; returns the markdown."""
    def table(files: list[str]) -> list[str]:
        rows = ["| file | passed | failed | n/a | failure classes / n/a reasons |",
                "|---|---:|---:|---:|---|"]
        for f in files:
            c = summarize(per_file[f])
            detail = ", ".join(f"{k} {n}" for k, n in sorted(Counter(
                v.cls for v in per_file[f] if v.cls != "passed").items()))
            rows.append(f"| {f} | {c['passed']} | {c['failed']} | {c['n/a']} | {detail} |")
        return rows

    core = [f for f in per_file if f in RENDERER_FILES]
    other = [f for f in per_file if f not in RENDERER_FILES]
    lines = [f"# PyTorch3D conformance ({tests_dir})", ""]
    for title, files in (("Renderer-related files", core), ("Other files", other)):
        if not files:
            continue
        c = summarize([v for f in files for v in per_file[f]])
        rate = 100.0 * c["passed"] / max(c["applicable"], 1)
        lines += [f"## {title}: {c['passed']} of {c['applicable']} applicable tests pass "
                  f"({rate:.1f}%), {c['n/a']} not applicable", ""]
        lines += table(files) + [""]
    lines += ["## Failures", "", "| test | class | message |", "|---|---|---|"]
    for f in per_file:
        for v in per_file[f]:
            if v.cls in FAILURE_CLASSES:
                msg = " ".join(v.message.split())[:300].replace("|", "\\|")
                lines.append(f"| {v.nodeid} | {v.cls} | {msg} |")
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "conformance.md").write_text(text)
    (out / "conformance.json").write_text(json.dumps(
        {f: [v.__dict__ for v in vs] for f, vs in per_file.items()}, indent=1))
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m diffrend.compat.conformance",
        description="Run PyTorch3D's own tests against diffrend.compat.pytorch3d.")
    parser.add_argument("tests_dir", nargs="?", default="../shared/pytorch3d-tests",
                        help="a PyTorch3D checkout or its tests/ folder")
    parser.add_argument("--files", nargs="+", metavar="FILE",
                        help="test files to run (default: every tests/test_*.py)")
    parser.add_argument("--renderer-only", action="store_true",
                        help="run only the renderer-related files")
    parser.add_argument("--out", default="out/conformance", help="report folder")
    parser.add_argument("--min-pass", type=int, default=None,
                        help="fail when the renderer-related files pass fewer tests")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="test files run at once")
    parser.add_argument("--tutorial-data", default=None, metavar="DIR",
                        help="folder holding PyTorch3D's tutorial cow_mesh/ (default: the "
                        "checkout's docs/tutorials/data, else data/ beside the tests' folder)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")

    tests_dir = find_tests_dir(Path(args.tests_dir))
    if tests_dir is None:
        print(f"conformance: no PyTorch3D tests folder at {args.tests_dir} "
              "(want a folder 'tests' holding common_testing.py); skipped")
        return
    if args.tutorial_data is not None:
        tutorial_data = Path(args.tutorial_data).resolve()
        if not (tutorial_data / "cow_mesh" / "cow.obj").is_file():
            parser.error(f"--tutorial-data: no cow_mesh/cow.obj in {args.tutorial_data}")
    else:
        tutorial_data = find_tutorial_data(tests_dir)
    available = sorted(p.name for p in tests_dir.glob("test_*.py"))
    if args.files:
        names = [Path(f).name for f in args.files]
        unknown = [n for n in names if n not in available]
        if unknown:
            parser.error(f"--files: not in {tests_dir}: {', '.join(unknown)}")
    elif args.renderer_only:
        names = [n for n in available if n in RENDERER_FILES]
    else:
        names = available

    per_file: dict[str, list[Verdict]] = {}
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = pool.map(
            lambda n: run_file(tests_dir, n, tutorial_data=tutorial_data), names)
        for name, records in zip(names, results, strict=True):
            per_file[name] = [classify(r) for r in records]
            c = summarize(per_file[name])
            print(f"{name:45s} passed {c['passed']:4d}  failed {c['failed']:4d}  "
                  f"n/a {c['n/a']:4d}", flush=True)
    text = write_report(Path(args.out), per_file, tests_dir)
    print(text.split("## Failures")[0])
    core = summarize([v for f in per_file if f in RENDERER_FILES for v in per_file[f]])
    if args.min_pass is not None and core["passed"] < args.min_pass:
        print("## Failures" + text.split("## Failures")[1], file=sys.stderr)
        print(f"conformance: {core['passed']} renderer-related tests pass, fewer than "
              f"--min-pass {args.min_pass}", file=sys.stderr)
        sys.exit(1)
