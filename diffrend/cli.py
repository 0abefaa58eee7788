"""The ``diffrend`` command."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click


def _write_png_atomic(array, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        Image.fromarray(array).save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.group()
@click.version_option(package_name="diffrend")
def main() -> None:
    """diffrend: a differentiable renderer for PyTorch."""


@main.command()
@click.argument("mesh", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--output", default="out/render.png", show_default=True,
              type=click.Path(dir_okay=False), help="PNG image grid to write.")
@click.option("--views", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option("--image-size", default=256, show_default=True, type=click.IntRange(8, 4096))
@click.option("--elev", default=15.0, show_default=True, help="Camera elevation, degrees.")
@click.option("--dist", default=2.7, show_default=True, type=click.FloatRange(min=0.0,
              min_open=True), help="Camera distance to the (normalised) mesh.")
def render(mesh: str | None, output: str, views: int, image_size: int, elev: float,
           dist: float) -> None:
    """Render MESH (default: the bundled cow) from VIEWS cameras around it into a PNG grid."""
    from .io import default_mesh_path, load_mesh
    from .preview import image_grid, normalize_meshes, orbit_cameras, shaded_preview

    path = mesh or default_mesh_path()
    try:
        meshes = load_mesh(path)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    meshes = normalize_meshes(meshes)
    cameras = orbit_cameras(views, dist=dist, elev=elev)
    images = shaded_preview(meshes, cameras, image_size=image_size)
    out = Path(output)
    _write_png_atomic(image_grid(images), out)
    click.echo(f"wrote {out} ({views} views of {Path(path).name}, {image_size}x{image_size})")


@main.command()
@click.option("--quick", is_flag=True, help="Small sizes and few repeats (a smoke test).")
@click.option("--repeats", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--no-llvmpipe", is_flag=True, help="Skip the OpenGL (Mesa llvmpipe) baseline.")
def bench(quick: bool, repeats: int, no_llvmpipe: bool) -> None:
    """Time the rasterizer against Mesa's llvmpipe; print medians and ratios."""
    from .bench.raster_bench import run_benchmarks

    run_benchmarks(quick=quick, repeats=repeats, llvmpipe=not no_llvmpipe, echo=click.echo)


if __name__ == "__main__":
    main()
