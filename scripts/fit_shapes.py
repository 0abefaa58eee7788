"""Fit every test shape (diffrend.io.shapes) with ``diffrend fit`` and tabulate the results.

For each shape: write it to OUT/targets/NAME.obj (per-vertex colours), run
``python -m diffrend fit OUT/targets/NAME.obj -o OUT/NAME`` (the CLI's default settings unless
--iters or --fit-args say otherwise; one fit at a time), then read OUT/NAME/metrics.json and
the fitted OUT/NAME/mesh.ply and print a markdown table: the target's genus against the fit's
(from its Euler characteristic V - E + F and its components), held-out silhouette IoU mean and
min, chamfer at unit size, seconds. The table also goes to OUT/results.md, the numbers to
OUT/results.json.

    PYTHONPATH=. python scripts/fit_shapes.py                   # all shapes, default fit
    PYTHONPATH=. python scripts/fit_shapes.py --shapes torus,cow --iters 30 -o out/smoke
    PYTHONPATH=. python scripts/fit_shapes.py --fit-args "--image-size 96"
    PYTHONPATH=. python scripts/fit_shapes.py --picture docs/shapes.png   # the set, no fits
    PYTHONPATH=. python scripts/fit_shapes.py --picture docs/shapes_fit.png --fits out/shapes

Not run by the tests (minutes per shape).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffrend.io import load_obj, load_ply, save_obj  # noqa: E402
from diffrend.io.shapes import load_shape, shape_arrays, shape_info, shape_names  # noqa: E402


def topology(verts: np.ndarray, faces: np.ndarray) -> dict:
    """Euler characteristic, components (of the edge graph, isolated vertices ignored),
    implied total genus and whether every edge has exactly two faces.

    Args:
        verts: (V, 3) positions. faces: (F, 3) vertex indices.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    used = np.unique(faces)
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    edges, uses = np.unique(e, axis=0, return_counts=True)
    chi = len(used) - len(edges) + len(faces)
    n = len(verts)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    labels = connected_components(graph, directed=False)[1]
    components = len(np.unique(labels[used]))
    return {"euler": int(chi), "components": int(components),
            "genus": (2 * components - chi) / 2, "closed": bool((uses == 2).all())}


def write_target(name: str, folder: Path) -> Path:
    """Save the shape as an OBJ with per-vertex colours; returns its path."""
    verts, faces, colours = shape_arrays(name)
    path = folder / f"{name}.obj"
    save_obj(path, torch.tensor(verts, dtype=torch.float32), torch.tensor(faces),
             verts_colors=torch.tensor(colours, dtype=torch.float32))
    return path


def fit_one(name: str, out: Path, iters: int | None, fit_args: list[str]) -> dict:
    """Run ``diffrend fit`` on one shape in a subprocess; returns the row of the table."""
    target = write_target(name, out / "targets")
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)  # a fresh run: no stale checkpoint or pictures
    cmd = [sys.executable, "-m", "diffrend", "fit", str(target), "-o", str(folder)]
    if iters is not None:
        cmd += ["--iters", str(iters)]
    cmd += fit_args
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    print("$ " + shlex.join(["diffrend", *cmd[3:]]), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    info = shape_info(name)
    row = {"shape": name, "genus_target": info.genus, "components_target": info.components,
           "euler_target": info.euler, "wall_seconds": round(wall, 1),
           "returncode": proc.returncode}
    if proc.returncode != 0:
        row["error"] = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        print(proc.stdout + proc.stderr, file=sys.stderr)
        return row
    print(proc.stdout.strip().splitlines()[-1], flush=True)
    metrics = json.loads((folder / "metrics.json").read_text())
    if (folder / "mesh.ply").exists():
        v, f = load_ply(folder / "mesh.ply")
    else:  # --colors texture writes the mesh as OBJ (with its texture) only
        v, faces, _ = load_obj(folder / "mesh.obj")
        f = faces.verts_idx
    topo = topology(v.numpy(), f.numpy().astype(np.int64))
    row.update({"euler_result": topo["euler"], "components_result": topo["components"],
                "genus_result": topo["genus"], "closed_result": topo["closed"],
                "iou_mean": metrics.get("heldout_iou_mean"),
                "iou_min": metrics.get("heldout_iou_min"),
                "chamfer": metrics.get("chamfer_normalized"),
                "chamfer_surface": metrics.get("chamfer_surface"),
                "fit_seconds": metrics.get("seconds"), "steps": metrics.get("steps")})
    return row


def table(rows: list[dict]) -> str:
    """The markdown table of the rows."""
    lines = ["| shape | genus target (χ) | genus result (χ, parts) | IoU mean | IoU min | "
             "chamfer (10k samples) | chamfer (surface) | s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        target = f"{r['genus_target']} ({r['euler_target']})"
        if "error" in r:
            lines.append(f"| {r['shape']} | {target} | failed: {' '.join(r['error'])} "
                         "| | | | | |")
            continue
        g = r["genus_result"]
        genus = f"{g:g}" if g == int(g) else f"{g:.1f}"
        ok = "" if (r["euler_result"] == r["euler_target"]
                    and r["components_result"] == r["components_target"]) else " ✗"
        lines.append(
            f"| {r['shape']} | {target} | {genus} ({r['euler_result']}, "
            f"{r['components_result']}){ok} | {r['iou_mean']:.4f} | {r['iou_min']:.4f} | "
            f"{r['chamfer']:.2e} | {r['chamfer_surface']:.2e} | {r['fit_seconds']:.0f} |")
    return "\n".join(lines)


def _fitted(path: Path):
    """A fit's mesh.ply with its vertex colours, in its own frame (the target's)."""
    import trimesh

    from diffrend.shading import TexturesVertex
    from diffrend.structures import Meshes

    tm = trimesh.load(path, process=False)
    colours = torch.tensor(np.asarray(tm.visual.vertex_colors)[:, :3] / 255.0,
                           dtype=torch.float32)
    return Meshes([torch.tensor(tm.vertices, dtype=torch.float32)],
                  [torch.tensor(tm.faces, dtype=torch.int64)], textures=TexturesVertex([colours]))


def picture(path: Path, size: int = 192, fits: Path | None = None) -> None:
    """Render the set with diffrend (two views per shape: names across, views down) into a
    PNG; with ``fits`` (an output folder of this script), the fitted meshes below them."""
    from diffrend.cameras import FoVPerspectiveCameras, look_at_view_transform
    from diffrend.io.outputs import write_png
    from diffrend.jobs.pictures import image_grid
    from diffrend.jobs.views import render_mesh_views

    R, T = look_at_view_transform(dist=2.7, elev=torch.tensor([25.0, 65.0]),
                                  azim=torch.tensor([30.0, -60.0]))
    cams = FoVPerspectiveCameras(R=R, T=T, fov=60)
    names = shape_names()
    meshes = [load_shape(n) for n in names]
    if fits is not None:
        names = [n for n in names if (fits / n / "mesh.ply").is_file()]
        meshes = ([load_shape(n) for n in names]
                  + [_fitted(fits / n / "mesh.ply") for n in names])
    views = torch.stack([render_mesh_views(m, cams, size, True) for m in meshes])
    if fits is not None:  # rows: target view 0, fit view 0, target view 1, fit view 1
        views = views.reshape(2, len(names), 2, size, size, 3).permute(2, 0, 1, 3, 4, 5)
        grid = views.reshape(-1, size, size, 3)
    else:
        grid = views.transpose(0, 1).reshape(-1, size, size, 3)  # row 0: view 0 of each
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(image_grid(grid, cols=len(names)), path)
    print(f"wrote {path} ({', '.join(names)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=",".join(shape_names()),
                        help="comma-separated shape names (default: all)")
    parser.add_argument("--iters", type=int, default=None,
                        help="steps per fit (default: the CLI's), e.g. 30 for a smoke run")
    parser.add_argument("--fit-args", default="",
                        help="more arguments for `diffrend fit`, one string")
    parser.add_argument("-o", "--output", default="out/shapes", type=Path,
                        help="output folder (default out/shapes)")
    parser.add_argument("--picture", type=Path, default=None,
                        help="render the set into this PNG instead of fitting")
    parser.add_argument("--fits", type=Path, default=None,
                        help="with --picture: an earlier -o folder; its fitted meshes are "
                        "drawn under the targets")
    args = parser.parse_args(argv)
    if args.picture is not None:
        picture(args.picture, fits=args.fits)
        return 0
    names = [s.strip() for s in args.shapes.split(",") if s.strip()]
    for n in names:
        shape_info(n)  # unknown names fail before any fit
    out: Path = args.output
    (out / "targets").mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    rows = []
    for n in names:
        rows.append(fit_one(n, out, args.iters, shlex.split(args.fit_args)))
        (out / "results.json").write_text(json.dumps(rows, indent=1))
    text = table(rows)
    command = "python scripts/fit_shapes.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    (out / "results.md").write_text(
        f"{text}\n\n`{command}`, started {started:%Y-%m-%d %H:%M} UTC, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads\n")
    print(text)
    return 0 if all(r["returncode"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
