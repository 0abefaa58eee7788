"""``diffrend render-dataset``: a folder of meshes -> per-mesh multi-view datasets.

One small folder (an ico-sphere, an empty file, a garbage file) is rendered once per module;
the tests read the result back (load_views, masks, depth, normals against the mesh), rerun
it (finished meshes skipped), and run it on two gloo ranks through torchrun.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from diffrend.cli import main
from diffrend.cli.dataset_job import EXIT_PARTIAL
from diffrend.io import load_views, save_obj
from diffrend.jobs.dataset import (
    DEPTH_SCALE,
    MARKER,
    DatasetSettings,
    find_meshes,
    is_complete,
    output_names,
)
from diffrend.jobs.distributed import (
    DistContext,
    choose_backend,
    distributed,
    shard,
    threads_per_rank,
)
from diffrend.jobs.preview import load_for_render
from diffrend.structures.ico_sphere import ico_sphere

ROOT = Path(__file__).resolve().parents[1]
SIZE, VIEWS = 48, 4
ARGS = ["--views", str(VIEWS), "--image-size", str(SIZE)]


def _mesh_folder(folder: Path, spheres: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    mesh = ico_sphere(3)
    for i in range(spheres):
        name = "sphere.obj" if i == 0 else f"sphere{i}.obj"
        save_obj(folder / name, mesh.verts_packed() * 0.5, mesh.faces_packed())
    (folder / "empty.ply").write_bytes(b"")
    (folder / "garbage.stl").write_bytes(b"\x00\x01 not a mesh \xff" * 20)
    (folder / "notes.txt").write_text("not a mesh file: not matched by the default pattern")
    return folder


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dataset")
    meshes = _mesh_folder(tmp / "meshes")
    out = tmp / "out"
    result = CliRunner().invoke(main, ["render-dataset", str(meshes), "-o", str(out), *ARGS])
    return meshes, out, result


def test_partial_success_reports_the_broken_files(rendered):
    meshes, out, result = rendered
    assert result.exit_code == EXIT_PARTIAL, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rendered"] == ["sphere"]
    assert summary["skipped"] == []
    assert sorted(f["name"] for f in summary["failed"]) == ["empty", "garbage"]
    assert all(f["error"] for f in summary["failed"])
    assert "2 failed" in result.output
    assert f"failed: {meshes / 'empty.ply'}" in result.output
    assert f"failed: {meshes / 'garbage.stl'}" in result.output
    # only complete mesh folders: no folder for the broken files, no partial folder left
    assert sorted(p.name for p in out.iterdir()) == ["sphere", "summary.json"]


def test_views_read_back_and_maps_agree_with_the_mesh(rendered):
    meshes, out, _ = rendered
    folder = out / "sphere"
    data = load_views(folder)
    assert data.images.shape == (VIEWS, SIZE, SIZE, 3)
    spec = json.loads((folder / "transforms.json").read_text())
    assert spec["integer_depth_scale"] == DEPTH_SCALE
    masks = np.stack([np.asarray(Image.open(folder / f["mask_path"])) for f in spec["frames"]])
    assert set(np.unique(masks)) == {0, 255}
    np.testing.assert_array_equal(data.masks.numpy(), masks / 255.0)

    mesh = load_for_render(meshes / "sphere.obj")  # the normalised mesh the views show
    verts, vnormals = mesh.verts_packed(), mesh.verts_normals_packed()
    cams = data.cameras
    view = cams.get_world_to_view_transform().transform_points(verts)  # (N, V, 3)
    pix = cams.transform_points_screen(verts, image_size=(SIZE, SIZE))[..., :2]
    ij = pix.floor().long().clamp(0, SIZE - 1)
    for i, frame in enumerate(spec["frames"]):
        depth = np.asarray(Image.open(folder / frame["depth_file_path"])).astype(np.float64)
        normals = np.asarray(Image.open(folder / "normals" / f"view_{i:03d}.png"))
        # vertices that face the camera within 37 degrees: depth changes by at most
        # 0.75 x the pixel offset there (a pixel is ~0.05 units at this distance)
        facing = (vnormals * (cams.get_camera_center()[i] - verts)).sum(-1) > 0.8 * (
            cams.get_camera_center()[i] - verts).norm(dim=-1)
        x, y = ij[i, facing, 0].numpy(), ij[i, facing, 1].numpy()
        assert len(x) > 10
        # every vertex that faces the camera projects into the mask
        assert masks[i][y, x].min() == 255
        # the depth there is the vertex's view-space z (within the slope over the <= 0.71
        # pixel from the vertex to the pixel centre: 0.75 * 0.71 * 0.05 < 0.03)
        z = depth[y, x] * DEPTH_SCALE
        np.testing.assert_allclose(z, view[i, facing, 2].numpy(), atol=0.03)
        # and the decoded normal is the vertex normal
        n = normals[y, x].astype(np.float64) / 255.0 * 2.0 - 1.0
        cos = (n * vnormals[facing].numpy()).sum(-1) / np.linalg.norm(n, axis=-1)
        assert cos.min() > 0.95, cos.min()
        assert depth[masks[i] == 0].max() == 0 and normals[masks[i] == 0].max() == 0


def test_rerun_skips_finished_meshes_and_redoes_a_changed_one(rendered):
    meshes, out, _ = rendered
    marker = out / "sphere" / MARKER
    before = marker.stat().st_mtime_ns
    result = CliRunner().invoke(main, ["render-dataset", str(meshes), "-o", str(out), *ARGS])
    assert result.exit_code == EXIT_PARTIAL, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["rendered"], summary["skipped"]) == ([], ["sphere"])
    assert len(summary["failed"]) == 2
    assert marker.stat().st_mtime_ns == before
    # other settings are not the finished dataset
    assert not is_complete(out / "sphere", meshes / "sphere.obj",
                           DatasetSettings(views=VIEWS + 1, image_size=SIZE))
    # a source file changed since is rendered again
    st = (meshes / "sphere.obj").stat()
    os.utime(meshes / "sphere.obj", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    result = CliRunner().invoke(main, ["render-dataset", str(meshes), "-o", str(out),
                                       "--pattern", "sphere.obj", *ARGS])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["rendered"] == ["sphere"]
    assert marker.stat().st_mtime_ns != before
    # --overwrite renders a finished mesh again
    before = marker.stat().st_mtime_ns
    result = CliRunner().invoke(main, ["render-dataset", str(meshes), "-o", str(out),
                                       "--pattern", "sphere.obj", "--overwrite", *ARGS])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["rendered"] == ["sphere"]
    assert marker.stat().st_mtime_ns != before


def test_a_folder_that_is_not_an_output_is_never_replaced(tmp_path):
    meshes = _mesh_folder(tmp_path / "meshes")
    (tmp_path / "out" / "sphere").mkdir(parents=True)
    (tmp_path / "out" / "sphere" / "mine.txt").write_text("keep")
    result = CliRunner().invoke(main, ["render-dataset", str(meshes), "-o",
                                       str(tmp_path / "out"), "--pattern", "*.obj", *ARGS])
    assert result.exit_code == EXIT_PARTIAL
    assert "not a render-dataset output" in result.output
    assert (tmp_path / "out" / "sphere" / "mine.txt").read_text() == "keep"


def test_two_gloo_ranks_render_each_mesh_once(tmp_path):
    meshes = _mesh_folder(tmp_path / "meshes", spheres=3)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
         "-m", "diffrend", "render-dataset", str(meshes), "-o", str(out), *ARGS],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    log = proc.stdout + proc.stderr
    # rank 0 exits 3 (partial success); torchrun turns a rank's non-zero code into 1
    assert proc.returncode == 1, log
    assert "exitcode  : 3" in log
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["rendered"] == ["sphere", "sphere1", "sphere2"]
    assert sorted(f["name"] for f in summary["failed"]) == ["empty", "garbage"]
    assert sorted(p.name for p in out.iterdir()) == ["sphere", "sphere1", "sphere2",
                                                      "summary.json"]
    for name in summary["rendered"]:
        assert len(list((out / name / "images").iterdir())) == VIEWS
    assert log.count("2 failed") == 1  # rank 0 reports, once
    assert log.count(f"failed: {meshes / 'empty.ply'}") == 1


@pytest.mark.parametrize("args", [
    ["--views", "0"],
    ["--image-size", "4"],
    ["--bogus"],
    ["--device", "nonsense"],
    ["--pattern", "/abs/*.obj"],
    ["--pattern", "../*.obj"],
])
def test_bad_arguments_are_usage_errors(tmp_path, args):
    result = CliRunner().invoke(main, ["render-dataset", str(tmp_path), *args])
    assert result.exit_code == 2, result.output


def test_missing_folder_is_a_usage_error_and_no_meshes_an_error(tmp_path):
    result = CliRunner().invoke(main, ["render-dataset", str(tmp_path / "missing")])
    assert result.exit_code == 2
    (tmp_path / "notes.txt").write_text("x")
    result = CliRunner().invoke(main, ["render-dataset", str(tmp_path), "-o",
                                       str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "no mesh files" in result.output


def test_names_patterns_and_shards(tmp_path):
    for name in ("cow.obj", "cow.PLY", "a b.stl", "x.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.off").write_text("")
    found = find_meshes(tmp_path)
    assert [p.name for p in found] == ["a b.stl", "cow.PLY", "cow.obj"]
    assert output_names(found, tmp_path) == ["a_b", "cow_ply", "cow_obj"]
    with pytest.raises(ValueError, match="patterns"):
        find_meshes(tmp_path, ["../*.obj"])
    deep = find_meshes(tmp_path, ["**/*.off"])
    assert output_names(deep, tmp_path) == ["sub__deep"]
    items = list(range(7))
    shares = [shard(items, DistContext(rank=r, world_size=3)) for r in range(3)]
    assert sorted(sum(shares, [])) == items and [len(s) for s in shares] == [3, 2, 2]
    assert threads_per_rank(2, cores=16) == 8 and threads_per_rank(32, cores=16) == 1
    with pytest.raises(ValueError, match="local_world_size"):
        threads_per_rank(0)
    with pytest.raises(ValueError, match="views"):
        DatasetSettings(views=0)
    assert DistContext().sum([2, 3]) == [2, 3]  # a group of one: no collectives
    assert choose_backend("cpu") == "gloo"
    assert choose_backend("cuda") == ("nccl" if torch.distributed.is_nccl_available()
                                      else "gloo")
    with distributed() as ctx:  # no torchrun variables here: one plain process
        assert (ctx.world_size, ctx.rank, ctx.active) == (1, 0, False)
        assert ctx.broadcast("x") == "x" and ctx.gather(1) == [1]
    assert torch.get_num_threads() >= 1


def test_a_locked_output_folder_is_refused_unless_forced(tmp_path):
    from diffrend.cli.folder import lock_folder

    meshes = _mesh_folder(tmp_path / "meshes")
    out = tmp_path / "out"
    args = ["render-dataset", str(meshes), "-o", str(out), "--pattern", "*.obj", *ARGS]
    with lock_folder(out):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "--force" in result.output
        assert not (out / "summary.json").exists()
        forced = CliRunner().invoke(main, [*args, "--force"])
        assert forced.exit_code == 0, forced.output
    assert (out / "sphere" / MARKER).is_file()
