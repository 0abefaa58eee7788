"""Sort PyTorch3D test outcomes into classes: pass, failure classes, not applicable."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Not applicable to a CPU-only drop-in measure, with the reason shown in the table. Matched
# against the whole failure or skip text of a test (first match wins).
NOT_APPLICABLE: tuple[tuple[str, str], ...] = (
    (r"pytorch3d\._C|No module named 'pytorch3d\._C'|_C\.", "n/a: pytorch3d._C internals"),
    (r"opengl|\bEGL\b|pycuda", "n/a: OpenGL"),
    (r"implicitron", "n/a: implicitron"),
    (r"pytorch3d\.datasets|ShapeNet|R2N2", "n/a: datasets"),
    (r"multiple GPUs|multigpu|device_count", "n/a: multi-GPU"),
    (r"Torch not compiled with CUDA|deserialize object on a CUDA device|"
     r"torch\.cuda\.\w+Tensor not available", "n/a: needs CUDA"),
)

# Tests whose expected images were made from CUDA's random number stream (``torch.rand`` on
# "cuda:0" after ``manual_seed``): on the CPU the same seed draws other numbers, so no
# implementation can match. A failure of these counts as not applicable; a pass still counts.
# (Checked separately: the joined scenes render exactly as their parts alone.)
CUDA_RANDOM_REFERENCES: tuple[str, ...] = (
    "test_render_meshes.py::TestRenderMeshes::test_join_verts",
    "test_render_meshes.py::TestRenderMeshes::test_join_uvs",
    "test_render_meshes.py::TestRenderMeshes::test_join_atlas",
)

# Tests of moving data between two devices ("cuda:0" and "cpu"): with CUDA mapped to the
# CPU both are one device, so ``x.to("cuda")`` returns ``x`` itself and mixing devices raises
# nothing. Each listed test failed exactly at such a step (checked one by one).
TWO_DEVICE_TESTS: tuple[str, ...] = (
    "test_cameras.py::TestCamerasCommon::test_join_cameras_as_batch_errors",
    "test_meshes.py::TestMeshes::test_init_error",
    "test_meshes.py::TestMeshes::test_to",
    "test_pointclouds.py::TestPointclouds::test_init_error",
    "test_pointclouds.py::TestPointclouds::test_join_pointclouds_as_batch",
    "test_pointclouds.py::TestPointclouds::test_to",
    "test_texturing.py::TestTexturesUV::test_textures_uv_init_fail",
    "test_transforms.py::TestTransform::test_to",
)

FAILURE_CLASSES = ("missing name", "signature", "numeric", "behaviour")


@dataclass(frozen=True)
class Verdict:
    """One test's class: "passed", one of FAILURE_CLASSES, or an "n/a: ..." reason."""

    nodeid: str
    cls: str
    message: str = ""


def classify(record: dict) -> Verdict:
    """Class of one plugin record ``{"nodeid", "outcome", "message"}``."""
    nodeid, outcome = record["nodeid"], record["outcome"]
    message = record.get("message", "") or ""
    if outcome == "passed":
        return Verdict(nodeid, "passed")
    for pattern, reason in NOT_APPLICABLE:
        if re.search(pattern, message, re.I):
            return Verdict(nodeid, reason, message)
    if outcome == "skipped":
        return Verdict(nodeid, "n/a: skipped by the test", message)
    test = nodeid.split("tests/", 1)[-1]
    if any(test == t or test == t + "_opengl" for t in CUDA_RANDOM_REFERENCES):
        return Verdict(nodeid, "n/a: reference drawn from CUDA random numbers", message)
    if test in TWO_DEVICE_TESTS:
        return Verdict(nodeid, "n/a: needs a second device", message)
    return Verdict(nodeid, failure_class(message), message)


def failure_class(message: str) -> str:
    """Guess a failure's class from its exception text."""
    if re.search(r"'(float|int|list|tuple|NoneType|Tensor|str)' object has no attribute",
                 message):
        return "behaviour"
    if re.search(
        r"^(ImportError|ModuleNotFoundError)|cannot import name|No module named|"
        r"has no attribute|is not defined",
        message,
        re.M,
    ):
        return "missing name"
    if re.search(
        r"^TypeError.*(unexpected keyword|positional argument|required .*argument|"
        r"takes .* arguments?|got multiple values)",
        message,
        re.M,
    ):
        return "signature"
    if re.search(r"not close|Mismatched elements|Greatest (absolute|relative) difference|"
                 r"Not all close|torch\.allclose|max diff", message, re.I):
        return "numeric"
    return "behaviour"
