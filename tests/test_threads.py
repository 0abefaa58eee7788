"""The Numba kernels called from several Python threads, and from DataLoader worker processes.

Numba's default-here ``workqueue`` layer aborts the whole process (SIGABRT) on concurrent
launches, so the threaded part runs in a subprocess: an abort fails one test instead of
killing pytest. See diffrend/threads.py for the policy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import diffrend
from diffrend.raster import rasterize_points_packed
from diffrend.render.blend import BlendParams, sigmoid_alpha_blend, softmax_rgb_blend
from diffrend.structures import Meshes

ROOT = Path(__file__).resolve().parents[1]
N_FACES, N_POINTS = 60, 200


def render(seed: int) -> torch.Tensor:
    """Mesh and points forward + backward through every kind of Numba kernel (gather, binning,
    rasterizers, blends), on a small random scene; returns outputs and gradients, flattened."""
    g = torch.Generator().manual_seed(seed)
    verts = torch.rand(N_FACES * 3, 3, generator=g) * 2 - 1
    verts[:, 2] = verts[:, 2].abs() + 0.5
    verts.requires_grad_(True)
    faces = torch.arange(N_FACES * 3).view(N_FACES, 3)
    frags = diffrend.rasterize_meshes(Meshes([verts], [faces]), image_size=24,
                                      faces_per_pixel=3, blur_radius=1e-3)
    colors = torch.rand(1, 24, 24, 3, 3, generator=g)
    params = BlendParams(sigma=1e-3, gamma=1e-2)
    rgba = softmax_rgb_blend(colors, frags, params)
    sil = sigmoid_alpha_blend(colors, frags, params)
    pts = torch.rand(N_POINTS, 3, generator=g) * 2 - 1
    pts[:, 2] = pts[:, 2].abs() + 0.5
    pts.requires_grad_(True)
    pf = rasterize_points_packed(pts, torch.zeros(N_POINTS, dtype=torch.int64), 1,
                                 image_size=24, radius=0.1, points_per_pixel=3)
    loss = (frags.zbuf.sum() + frags.bary_coords.sum() + rgba.sum() + sil.sum()
            + pf.zbuf.sum() + pf.dists.sum())
    loss.backward()
    return torch.cat([frags.zbuf.flatten(), rgba.flatten(), sil.flatten(), pf.dists.flatten(),
                      verts.grad.flatten(), pts.grad.flatten()]).detach()


THREADED = textwrap.dedent("""
    import sys, threading
    {preamble}
    import torch
    sys.path.insert(0, {tests!r})
    from test_threads import render

    n_threads, n = {n_threads}, {n}
    ref = [render(i) for i in range(n)]  # one thread
    out, errors = {{}}, []

    def work(t):
        try:
            out[t] = [render(i) for i in range(n)]
        except BaseException as e:  # reported below, not lost in the thread
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    bad = [(t, i) for t in range(n_threads) for i in range(n)
           if not torch.equal(out[t][i], ref[i])]
    assert not bad, f"renders differing from the one-thread run: {{bad[:5]}}"
    import numba
    print("OK", numba.threading_layer())
""")


def _run(code: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -c code`` with this checkout first on the path and no inherited layer choice."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING_LAYER")}
    env.update(PYTHONPATH=str(ROOT), **env_extra)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)


def _threaded(preamble: str, n_threads: int, n: int) -> subprocess.CompletedProcess:
    """``n_threads`` threads each render scenes 0..n-1, compared with a one-thread run;
    ``preamble`` runs before anything is imported."""
    code = THREADED.format(preamble=preamble, tests=str(ROOT / "tests"), n_threads=n_threads,
                           n=n)
    return _run(code, {})


def test_threads_render_same_as_one_thread():
    """4 threads x 50 renders (forward + backward, mesh and points) under the default layer:
    no abort, and every result bit-identical to the single-thread run."""
    proc = _threaded("", n_threads=4, n=50)
    assert proc.returncode == 0, (
        f"exit {proc.returncode} (-6 = SIGABRT)\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    )
    assert "OK" in proc.stdout


def test_user_config_is_kept():
    """A layer the user set in numba.config before importing diffrend is the one Numba runs
    (omp here: thread-safe, so no lock is taken), and the threads still agree."""
    proc = _threaded("import numba; numba.config.THREADING_LAYER = 'omp'", n_threads=2, n=4)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "OK omp" in proc.stdout


@pytest.mark.parametrize("var", ["NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"])
def test_user_env_choice_is_kept(monkeypatch, var):
    """With a layer named in the environment, the priority is left as the user's."""
    import numba

    from diffrend.threads import configure_numba

    monkeypatch.setattr(numba.config, "THREADING_LAYER_PRIORITY", ["omp", "tbb", "workqueue"])
    monkeypatch.setenv(var, "omp")
    configure_numba()
    assert numba.config.THREADING_LAYER_PRIORITY == ["omp", "tbb", "workqueue"]
    monkeypatch.delenv(var)
    configure_numba()  # (and without the variable, diffrend's order)
    assert numba.config.THREADING_LAYER_PRIORITY == ["tbb", "workqueue", "omp"]


class _Renders(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> torch.Tensor:
        return render(i)


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method (Linux's default)")
def test_dataloader_workers_render():
    """DataLoader with 2 forked workers rendering, after the parent already ran the kernels
    (the thread pool and lock exist before the fork): same results as in the parent."""
    ref = [render(i) for i in range(6)]
    loader = torch.utils.data.DataLoader(_Renders(), batch_size=None, num_workers=2,
                                         multiprocessing_context="fork", timeout=120)
    got = list(loader)
    assert len(got) == 6
    for i, (a, b) in enumerate(zip(got, ref, strict=True)):
        assert torch.equal(a, b), f"render {i} differs in the worker"


def test_workqueue_layer_takes_the_lock():
    """Under ``workqueue`` (the layer when TBB is missing), which aborts on concurrent
    launches, the lock serialises them: 4 threads x 20 renders, no abort, same results."""
    proc = _threaded("import numba; numba.config.THREADING_LAYER = 'workqueue'",
                     n_threads=4, n=20)
    assert proc.returncode == 0, (
        f"exit {proc.returncode} (-6 = SIGABRT)\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    )
    assert "OK workqueue" in proc.stdout


def test_kernels_follow_torch_thread_count():
    """A kernel launch sets Numba's thread count to torch's (one knob for both pools), capped
    by the size of Numba's pool."""
    import numba

    from diffrend.threads import kernel_lock

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with kernel_lock():
            assert numba.get_num_threads() == 1
        torch.set_num_threads(numba.config.NUMBA_NUM_THREADS + 3)
        with kernel_lock():
            assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    finally:
        torch.set_num_threads(before)
    with kernel_lock():
        assert numba.get_num_threads() == min(before, numba.config.NUMBA_NUM_THREADS)


_ORDER_PROBE = textwrap.dedent("""
    import sys, warnings
    warnings.simplefilter("always")
    if sys.argv[1] == "torch":
        import torch
    import diffrend
    import torch
    from diffrend.threads import PerformanceWarning, kernel_lock
    torch.set_num_threads(int(sys.argv[2]))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):
            with kernel_lock():
                pass
    print("WARNINGS", sum(issubclass(w.category, PerformanceWarning) for w in seen))
""")


@pytest.mark.parametrize(("first", "threads", "policy", "expected"), [
    ("torch", 2, None, 1),         # torch's threads busy-wait: said once, not per launch
    ("diffrend", 2, None, 0),      # diffrend set OMP_WAIT_POLICY before torch read it
    ("torch", 2, "ACTIVE", 0),     # the user's own choice
    ("torch", 1, None, 0),         # one thread: no other core to spin on
])
def test_warns_when_torch_threads_busy_wait(first, threads, policy, expected):
    """torch imported before diffrend with no OMP wait policy set: one PerformanceWarning at
    the first multi-threaded kernel launch, none otherwise."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    env["NUMBA_NUM_THREADS"] = "2"  # (so the 2-thread cases hold on a 1-core machine too)
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    proc = subprocess.run([sys.executable, "-c", _ORDER_PROBE, first, str(threads)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"WARNINGS {expected}" in proc.stdout, proc.stdout + proc.stderr[-2000:]
