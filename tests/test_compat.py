"""diffrend.compat: the opt-in ``pytorch3d`` alias and the conformance harness's pieces."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import diffrend
import diffrend.compat as compat
from diffrend.compat.conformance.classify import classify, failure_class
from diffrend.compat.conformance.plugin import cuda_to_cpu_source


@pytest.fixture
def installed():
    compat.install_pytorch3d()
    yield
    compat.uninstall_pytorch3d()


def test_import_diffrend_does_not_register_pytorch3d():
    code = "import sys, diffrend; print('pytorch3d' in sys.modules or "
    code += "any(type(f).__name__ == '_AliasFinder' for f in sys.meta_path))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_alias_gives_the_same_objects(installed):
    import pytorch3d
    from pytorch3d.renderer import MeshRasterizer
    from pytorch3d.renderer.mesh.rasterizer import RasterizationSettings
    from pytorch3d.structures import Meshes

    assert compat.pytorch3d_installed()
    assert MeshRasterizer is diffrend.MeshRasterizer
    assert RasterizationSettings is diffrend.RasterizationSettings
    assert Meshes is diffrend.Meshes
    assert pytorch3d.__version__ == "0.7.9"
    # The same module object under both names: no second copy of any class.
    import diffrend.compat.pytorch3d.structures as real

    assert sys.modules["pytorch3d.structures"] is real


def test_install_twice_is_a_no_op(installed):
    compat.install_pytorch3d()
    finders = [f for f in sys.meta_path if type(f).__name__ == "_AliasFinder"]
    assert len(finders) == 1


def test_missing_submodule_is_a_plain_import_error(installed):
    with pytest.raises(ModuleNotFoundError):
        import pytorch3d.implicitron  # noqa: F401


def test_compiled_internals_say_what_to_use(installed):
    from pytorch3d import _C  # importable, so files that import it load

    with pytest.raises(AttributeError, match="public function"):
        _C.rasterize_meshes  # noqa: B018


def test_uninstall_removes_the_alias():
    compat.install_pytorch3d()
    import pytorch3d.structures  # noqa: F401

    compat.uninstall_pytorch3d()
    assert not compat.pytorch3d_installed()
    assert not any(n == "pytorch3d" or n.startswith("pytorch3d.") for n in sys.modules)


def test_refuses_to_shadow_a_real_pytorch3d(tmp_path):
    fake = tmp_path / "pytorch3d"
    fake.mkdir()
    (fake / "__init__.py").write_text("REAL = True\n")
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import diffrend.compat as c
        try:
            c.install_pytorch3d()
        except RuntimeError as e:
            print("refused", "force=True" in str(e))
        c.install_pytorch3d(force=True)
        import pytorch3d
        print(hasattr(pytorch3d, "REAL"), pytorch3d.__version__)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["refused True", "False 0.7.9"]


def test_cuda_rewrite_changes_only_device_tokens():
    src = textwrap.dedent(
        """
        device = torch.device("cuda:0")
        x = y.cuda()
        torch.cuda.synchronize()
        name = "cuda kernels"
        z = torch.zeros(3, device='cuda')
        """
    )
    out = cuda_to_cpu_source(src)
    assert 'torch.device("cpu")' in out
    assert "x = y.cpu()" in out
    assert "torch.cuda.synchronize()" in out
    assert '"cuda kernels"' in out
    assert 'device="cpu"' in out


@pytest.mark.parametrize(
    ("message", "cls"),
    [
        ("ImportError: cannot import name 'FishEyeCameras' from 'pytorch3d.renderer'",
         "missing name"),
        ("AttributeError: 'Meshes' object has no attribute 'submeshes'", "missing name"),
        ("TypeError: save_obj() got an unexpected keyword argument 'decimal_places'",
         "signature"),
        ("AssertionError: Tensor-likes are not close!", "numeric"),
        ("AssertionError: False is not true", "behaviour"),
        ("ValueError: shininess must be >= 0", "behaviour"),
    ],
)
def test_failure_classes(message, cls):
    assert failure_class(message) == cls


def test_not_applicable_reasons():
    rec = {"nodeid": "t", "outcome": "collect_error",
           "message": "ModuleNotFoundError: No module named 'pytorch3d._C'"}
    assert classify(rec).cls == "n/a: pytorch3d._C internals"
    assert classify({"nodeid": "t", "outcome": "passed"}).cls == "passed"
    skipped = {"nodeid": "t", "outcome": "skipped", "message": "needs multiple GPUs"}
    assert classify(skipped).cls == "n/a: multi-GPU"
