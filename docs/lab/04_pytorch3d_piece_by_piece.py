# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # PyTorch3D's implementation, piece by piece
#
# A PyTorch3D renderer is a short chain of plain objects: a batch of **meshes**, **cameras**
# that carry it from world space to the screen, a **rasterizer** (with its settings) that
# returns **fragments**, and a **shader** that turns fragments into colours. This notebook
# takes the chain apart with PyTorch3D's own names (diffrend's drop-in), draws what each
# piece holds, and checks the facts it shows. It runs in about 20 seconds on two CPU cores
# (the first run also compiles the rasterizer's kernels).

# %%
import os
import warnings

SMALL = os.environ.get("DIFFREND_LAB_SMALL") == "1"    # CI's test sizes (seconds, not minutes)
STATIC = os.environ.get("DIFFREND_LAB_STATIC") == "1"  # no widgets: the docs site and CI

# Idle OpenMP threads wait passively, so torch's and Numba's thread pools do not spin on
# each other's cores (diffrend sets this when imported before torch; here torch comes
# first). Without it, a busy 2-core machine runs the kernels up to 10x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from diffrend.compat.pytorch3d.io import load_objs_as_meshes  # noqa: E402
from diffrend.compat.pytorch3d.ops import interpolate_face_attributes  # noqa: E402
from diffrend.compat.pytorch3d.renderer import (  # noqa: E402
    AmbientLights,
    BlendParams,
    DirectionalLights,
    FoVPerspectiveCameras,
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    Materials,
    MeshRasterizer,
    MeshRenderer,
    PointLights,
    RasterizationSettings,
    SoftPhongShader,
    SoftSilhouetteShader,
    TexturesUV,
    TexturesVertex,
    look_at_view_transform,
)
from diffrend.compat.pytorch3d.structures import Meshes  # noqa: E402
from diffrend.compat.pytorch3d.utils import ico_sphere  # noqa: E402
from diffrend.io import default_mesh_path  # noqa: E402

torch.manual_seed(0)
IMG = 64 if SMALL else 128          # image size of most renders
COW_OBJ = default_mesh_path()       # the bundled PyTorch3D tutorial cow

# %% [markdown]
# ## The drop-in, once
#
# Everything below imports from `diffrend.compat.pytorch3d`, which mirrors PyTorch3D's module
# paths. One opt-in call, `install_pytorch3d()`, registers that package under the name
# `pytorch3d`, so code written for PyTorch3D runs unchanged: the classes are the *same
# objects* under both names. (If a real PyTorch3D is installed, the call refuses: the real
# one wins.)

# %%
from diffrend.compat import install_pytorch3d, uninstall_pytorch3d  # noqa: E402

try:
    install_pytorch3d()
    # From here on, plain PyTorch3D code:
    import pytorch3d.renderer as p3d  # noqa: E402
    from pytorch3d.utils import ico_sphere as p3d_ico_sphere  # noqa: E402

    cams = p3d.FoVPerspectiveCameras(T=torch.tensor([[0.0, 0.0, 3.0]]))
    rasterizer = p3d.MeshRasterizer(cams, p3d.RasterizationSettings(image_size=32))
    print("pix_to_face:", tuple(rasterizer(p3d_ico_sphere(1)).pix_to_face.shape))
    print("pytorch3d.renderer.MeshRasterizer is", p3d.MeshRasterizer)
    assert p3d.MeshRasterizer is MeshRasterizer, "one class, two names"
    uninstall_pytorch3d()  # the rest of the notebook uses the diffrend.compat paths
except RuntimeError as err:  # a real PyTorch3D is installed
    print("skipped:", err)

# %% [markdown]
# ## 1. Meshes: list, padded and packed
#
# A `Meshes` holds a *batch* of meshes of different sizes. PyTorch3D keeps three views of the
# same vertices (and faces), and converts between them lazily:
#
# * **list**: one `(V_i, 3)` tensor per mesh, what you pass in;
# * **padded**: one `(N, max V_i, 3)` tensor, for batched maths per mesh (vertices padded
#   with zeros, faces with -1);
# * **packed**: one `(sum V_i, 3)` tensor, all meshes end to end, which the rasterizer
#   uses: `pix_to_face` indexes `faces_packed()`.
#
# Here: an ico-sphere (162 vertices) and the cow (2930), in that order.

# %%
cow = load_objs_as_meshes([COW_OBJ])               # one textured mesh (TexturesUV)
ball = ico_sphere(2)
ball_v = ball.verts_packed() * 0.6                 # radius 0.6, at the origin like the cow
batch = Meshes(verts=[ball_v, cow.verts_packed()], faces=[ball.faces_packed(),
                                                          cow.faces_packed()])

for name in ("verts_list", "verts_padded", "verts_packed", "faces_padded", "faces_packed"):
    x = getattr(batch, name)()
    print(f"{name:13s}", [tuple(t.shape) for t in x] if isinstance(x, list) else tuple(x.shape))


# %%
def draw_layout(meshes):
    """Bars for the list / padded / packed layouts of a batch's vertices, to scale."""
    nv = meshes.num_verts_per_mesh().tolist()
    first = meshes.mesh_to_verts_packed_first_idx().tolist()
    vmax, colors = max(nv), ["tab:orange", "tab:blue"]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    rows = {"list[0]": 5, "list[1]": 4.2, "padded[0]": 3, "padded[1]": 2.2, "packed": 0.8}
    for i, n in enumerate(nv):
        ax.barh(rows[f"list[{i}]"], n, color=colors[i], height=0.6)
        ax.barh(rows[f"padded[{i}]"], n, color=colors[i], height=0.6)
        ax.barh(rows[f"padded[{i}]"], vmax - n, left=n, color="lightgrey", height=0.6,
                hatch="//", edgecolor="grey")
        ax.barh(rows["packed"], n, left=first[i], color=colors[i], height=0.6)
        ax.annotate(f"mesh_to_verts_packed_first_idx[{i}] = {first[i]}",
                    (first[i], rows["packed"] - 0.35), xytext=(200 + 1300 * i, -0.6),
                    arrowprops={"arrowstyle": "->"}, fontsize=8)
        ax.text(n + 40, rows[f"list[{i}]"], f"{n} verts", va="center", fontsize=8)
    ax.text(vmax * 0.5, rows["padded[0]"], "zero padding", fontsize=8, va="center",
            bbox={"facecolor": "white", "edgecolor": "none"})
    ax.set_yticks(list(rows.values()), list(rows.keys()))
    ax.set_xlabel("vertex slot")
    ax.set_ylim(-1.2, 5.6)
    ax.set_title("One batch, three layouts (ball first, then the cow)")
    plt.show()


draw_layout(batch)

# %% [markdown]
# The maps between the layouts are index tensors. `verts_padded_to_packed_idx()` gives, for
# each packed vertex, its row in `verts_padded().reshape(-1, 3)`; the cow's rows there start
# at `1 * max V_i = 2930`, not at its packed start 162. The packed **faces** index the packed
# vertices, so the cow's faces are shifted by its first vertex index: forget that and a
# second mesh in a batch samples the first mesh's vertices.

# %%
idx = batch.verts_padded_to_packed_idx()
table = []
for i in range(len(batch)):
    own = batch.verts_packed_to_mesh_idx() == i
    table.append([
        ["ball", "cow"][i],
        int(batch.num_verts_per_mesh()[i]), int(batch.num_faces_per_mesh()[i]),
        int(batch.mesh_to_verts_packed_first_idx()[i]),
        int(batch.mesh_to_faces_packed_first_idx()[i]),
        f"{int(idx[own][0])} .. {int(idx[own][-1])}",
    ])
fig, ax = plt.subplots(figsize=(9, 1.6))
ax.axis("off")
tab = ax.table(cellText=table, bbox=(0, 0, 1, 1), cellLoc="center",
               colLabels=["mesh", "num_verts\n_per_mesh", "num_faces\n_per_mesh",
                          "mesh_to_verts\n_packed_first_idx", "mesh_to_faces\n_packed_first_idx",
                          "verts_padded_to\n_packed_idx"])
tab.auto_set_font_size(False)
tab.set_fontsize(9)
ax.set_title("The index maps of the batch")
plt.show()

# %% [markdown]
# Checked: packed vertices are the padded rows picked by `verts_padded_to_packed_idx`; the
# cow's packed faces are its listed faces plus its first packed vertex index; padding is
# zeros for vertices and -1 for faces.

# %%
flat = batch.verts_padded().reshape(-1, 3)
assert torch.equal(batch.verts_packed(), flat[idx]), "packed = padded rows at the index map"
f0 = int(batch.mesh_to_faces_packed_first_idx()[1])
v0 = int(batch.mesh_to_verts_packed_first_idx()[1])
assert torch.equal(batch.faces_packed()[f0:], batch.faces_list()[1] + v0), "faces are shifted"
assert bool((batch.verts_padded()[0, 162:] == 0).all()), "vertices are padded with zeros"
assert bool((batch.faces_padded()[0, 320:] == -1).all()), "faces are padded with -1"

# %% [markdown]
# The whole batch renders in one call: the rasterizer sees the packed meshes, and each image
# of the output belongs to one mesh (here both seen by the same camera; per-vertex colours).

# %%
R, T = look_at_view_transform(dist=2.2, elev=15, azim=150)
cameras = FoVPerspectiveCameras(R=R, T=T)
colors = [torch.tensor([1.0, 0.6, 0.2]).expand(162, 3),
          torch.tensor([0.3, 0.5, 1.0]).expand(2930, 3)]
batch.textures = TexturesVertex(verts_features=colors)
renderer = MeshRenderer(
    rasterizer=MeshRasterizer(cameras=cameras, raster_settings=RasterizationSettings(IMG)),
    shader=HardPhongShader(cameras=cameras, lights=PointLights(location=[[2.0, 2.0, -2.0]])),
)
images = renderer(batch)
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for i, ax in enumerate(axes):
    ax.imshow(images[i, ..., :3].clamp(0, 1))
    ax.set_title(f"images[{i}]  ({['ball', 'cow'][i]})")
    ax.set_xlabel("x (pixel)")
    ax.set_ylabel("y (pixel)")
plt.show()
print("images:", tuple(images.shape), "(N, H, W, RGBA)")

# %% [markdown]
# ## 2. Cameras and the four spaces
#
# A point travels **world -> view -> NDC -> screen**:
#
# * `get_world_to_view_transform()`: `X_view = X_world @ R + T` (row vectors). In view space
#   the camera sits at the origin looking down **+Z**, with **+X to the left** and **+Y up**
#   (PyTorch3D's convention; OpenGL's +Z points out of the screen instead).
# * `get_projection_transform()`: the projection matrix, then (in `transform_points`) the
#   divide by depth; `FoVPerspectiveCameras` maps its field of view to NDC x, y in [-1, 1]
#   (+X left, +Y up) and depths from `znear` to `zfar` to z in [0, 1].
# * `transform_points_screen(..., image_size=(H, W))`: NDC to pixels, +x right, +y down,
#   origin at the top-left *corner* of the image, so pixel `(row, col)` has its centre at
#   `(col + 0.5, row + 0.5)`.
#
# `look_at_view_transform(dist, elev, azim)` builds R and T of a camera on a sphere around
# the origin looking at it. Six extreme vertices of the cow go through each step:

# %%
verts = cow.verts_packed()
pick = torch.stack([verts[:, 0].argmax(), verts[:, 0].argmin(), verts[:, 1].argmax(),
                    verts[:, 1].argmin(), verts[:, 2].argmax(), verts[:, 2].argmin()])
p_world = verts[pick]

p_view = cameras.get_world_to_view_transform().transform_points(p_world)
p_ndc = cameras.get_projection_transform().transform_points(p_view)
p_screen = cameras.transform_points_screen(p_world, image_size=(IMG, IMG))

raster = MeshRasterizer(cameras=cameras, raster_settings=RasterizationSettings(IMG))
frags = raster(cow)
cow_img = MeshRenderer(raster, HardPhongShader(cameras=cameras, lights=PointLights(
    location=[[2.0, 2.0, -2.0]])))(cow)[0, ..., :3].clamp(0, 1)

# %%
colors6 = plt.cm.tab10(np.arange(6))
all_view = cameras.get_world_to_view_transform().transform_points(verts)
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
ax = axes[0]
ax.scatter(all_view[:, 0], all_view[:, 2], s=1, c="lightgrey")
ax.scatter(p_view[:, 0], p_view[:, 2], c=colors6, s=30)
half = np.tan(np.radians(30))              # FoVPerspectiveCameras' default fov is 60 degrees
ax.plot([3.5 * half, 0, -3.5 * half], [3.5, 0, 3.5], "k--", lw=0.8)
ax.invert_xaxis()                           # +X points left in view space
ax.set_title("view space, from above\n(camera at 0, looking +Z)")
ax.set_xlabel("x_view (+X to the left)")
ax.set_ylabel("z_view (depth)")
ax = axes[1]
ax.scatter(p_ndc[:, 0], p_ndc[:, 1], c=colors6, s=30)
ax.plot([-1, 1, 1, -1, -1], [-1, -1, 1, 1, -1], "k-", lw=0.8)
ax.invert_xaxis()
ax.set_aspect("equal")
ax.set_title("NDC\n(+X left, +Y up)")
ax.set_xlabel("x_ndc")
ax.set_ylabel("y_ndc")
ax = axes[2]
ax.imshow(cow_img, extent=(0, IMG, IMG, 0))  # pixel (r, c) covers [c, c+1] x [r, r+1]
ax.scatter(p_screen[:, 0], p_screen[:, 1], c=colors6, s=30, edgecolors="k")
ax.set_title("screen, over the render\n(+x right, +y down)")
ax.set_xlabel("x (pixel)")
ax.set_ylabel("y (pixel)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Checked: the three steps agree with writing them out (`X @ R + T`; then
# `x_screen = W/2 - x_ndc * min(H, W)/2`, the flip that turns +X-left into +x-right). And
# every cow vertex projects onto a pixel the rasterizer covered (`pix_to_face >= 0`) or
# next to one: vertices on the silhouette sit on pixel boundaries, where the pixel centre
# may fall just outside. Reading NDC's x as "+X right" (a common slip) mirrors the points,
# and many then miss the cow.

# %%
assert torch.allclose(p_view, p_world @ R[0] + T[0], atol=1e-5), "X_view = X_world @ R + T"
assert torch.allclose(p_ndc, cameras.transform_points(p_world), atol=1e-5), "two steps = one"
assert torch.allclose(p_screen[:, 0], IMG / 2 - p_ndc[:, 0] * IMG / 2, atol=1e-4), "x flips"
assert torch.allclose(p_screen[:, 1], IMG / 2 - p_ndc[:, 1] * IMG / 2, atol=1e-4), "y flips"

scr = cameras.transform_points_screen(verts, image_size=(IMG, IMG))
col = scr[:, 0].floor().long().clamp(0, IMG - 1)
row = scr[:, 1].floor().long().clamp(0, IMG - 1)
mask = frags.pix_to_face[0, ..., 0] >= 0                       # (H, W) coverage
near = torch.nn.functional.max_pool2d(mask[None].float(), 3, 1, 1)[0] > 0
on, by = mask[row, col].float().mean(), near[row, col].float().mean()
mirrored = mask[row, IMG - 1 - col].float().mean()
print(f"on a covered pixel: {on:.1%}; on or next to one: {by:.1%}; mirrored x: {mirrored:.1%}")
assert on > 0.9 and by == 1.0, "vertices project where the rasterizer draws"
assert mirrored < 0.8, "+X is left: mirrored points miss the cow"

# %% [markdown]
# ## 3. RasterizationSettings
#
# The rasterizer finds, for every pixel centre, the nearest faces that cover it. Its settings:
#
# * `image_size` (256): `H`, or `(H, W)`, of the output.
# * `blur_radius` (0): a face also counts at a pixel *outside* it, up to this **squared**
#   NDC distance: the band that SoftRas (Liu et al. 2019) needs for silhouette gradients.
# * `faces_per_pixel` (1): K, how many faces to keep per pixel, nearest first (soft
#   blending mixes them).
# * `bin_size`, `max_faces_per_bin` (automatic): PyTorch3D's coarse-to-fine tiling.
#   `bin_size=0` picks its naive kernel; a too small `max_faces_per_bin` overflows a tile
#   and drops faces (with a warning). diffrend sizes its tiles itself and accepts both only
#   so that PyTorch3D code runs: they change nothing here, so no picture.
# * `perspective_correct` (the camera's kind): barycentrics interpolated in 3D (correct) or
#   in screen space (affine).
# * `cull_backfaces` (False): drop faces whose winding is clockwise as seen from the camera.
# * `z_clip_value` (`znear / 2` for perspective cameras): clip faces at this view depth;
#   nearer parts are cut away.
#
# A helper runs the cow's camera with some settings. First **image_size**, which may be
# `(H, W)`: NDC's *shorter* side spans [-1, 1], so a wider image sees more at the sides
# instead of stretching the cow, and the square render is the centre of the wide one,
# pixel for pixel (red lines).

# %%
def rasterize(mesh, cams=cameras, image_size=IMG, **settings):
    """Fragments of `mesh` seen by `cams`, with RasterizationSettings(image_size, **settings)."""
    raster_settings = RasterizationSettings(image_size=image_size, **settings)
    return MeshRasterizer(cameras=cams, raster_settings=raster_settings)(mesh)


square = rasterize(cow).pix_to_face[0, ..., 0]
wide = rasterize(cow, image_size=(IMG, IMG + IMG // 2)).pix_to_face[0, ..., 0]
fig, axes = plt.subplots(1, 2, figsize=(8, 2.8), gridspec_kw={"width_ratios": [2, 3]})
for ax, p2f_ in zip(axes, (square, wide), strict=True):
    ax.imshow(p2f_ >= 0, cmap="Greys")
    ax.set_title(f"image_size = {tuple(p2f_.shape)}", fontsize=9)
    ax.set_xlabel("x (pixel)")
axes[1].axvline(IMG // 4, color="tab:red", lw=0.8)
axes[1].axvline(IMG // 4 + IMG, color="tab:red", lw=0.8)
axes[0].set_ylabel("y (pixel)")
plt.tight_layout()
plt.show()
assert torch.equal(wide[:, IMG // 4:IMG // 4 + IMG], square), "the square image is the centre"

# %% [markdown]
# **blur_radius** widens each face by a band (in squared NDC units; here given in pixels).

# %%
PIX = 2.0 / IMG                       # one pixel in NDC units
blurs = [0.0, (1 * PIX) ** 2, (3 * PIX) ** 2, (8 * PIX) ** 2]
masks = [rasterize(cow, blur_radius=b).pix_to_face[0, ..., 0] >= 0 for b in blurs]
fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
for ax, b, m in zip(axes, blurs, masks, strict=True):
    ax.imshow(m, cmap="Greys")
    ax.contour(masks[0], levels=[0.5], colors="tab:red", linewidths=0.8)
    ax.set_title(f"blur_radius = ({b ** 0.5 / PIX:.0f} px)²\ncovered: {int(m.sum())} px")
    ax.set_xlabel("x (pixel)")
axes[0].set_ylabel("y (pixel)")
plt.show()

# %% [markdown]
# Red: the silhouette at `blur_radius = 0`. Checked: coverage grows strictly with the blur
# radius, and the sharp silhouette stays inside every blurred one.

# %%
counts = [int(m.sum()) for m in masks]
assert all(a < b for a, b in zip(counts[:-1], counts[1:], strict=True)), "coverage grows"
assert all(bool(m[masks[0]].all()) for m in masks), "the blur only adds pixels"

# %% [markdown]
# **faces_per_pixel.** With K slots the rasterizer lists the K nearest faces that cover each
# pixel, nearest first, `-1` in unused slots. Without blur, the number of filled slots is the
# *depth complexity*: how many layers of cow surface the pixel's ray crosses (2 where it
# enters and leaves the body, 4 through a leg behind another).

# %%
K = 4
fk = rasterize(cow, faces_per_pixel=K)
layers = (fk.pix_to_face[0] >= 0).sum(-1)
z = fk.zbuf[0].masked_fill(fk.pix_to_face[0] < 0, float("nan"))
fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
im = axes[0].imshow(layers, cmap="viridis", vmin=0, vmax=K)
plt.colorbar(im, ax=axes[0], ticks=range(K + 1), label="faces listed")
axes[0].set_title(f"filled slots of K = {K}")
for k, ax in zip((0, 1), axes[1:], strict=True):
    im = ax.imshow(z[..., k], cmap="magma", vmin=float(z[..., 0].nan_to_num(9).min()),
                   vmax=float(z[..., 1].nan_to_num(0).max()))
    plt.colorbar(im, ax=ax, label="view depth")
    ax.set_title(f"zbuf[..., {k}]: {'nearest' if k == 0 else 'second'} face")
for ax in axes:
    ax.set_xlabel("x (pixel)")
axes[0].set_ylabel("y (pixel)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Checked: filled slots come first, their depths increase along K, slot 0 is what K = 1
# gives, and a closed surface is crossed an even number of times almost everywhere.

# %%
filled = fk.pix_to_face[0] >= 0
assert bool((filled[..., :-1] >= filled[..., 1:]).all()), "filled slots first"
dz = fk.zbuf[0, ..., 1:] - fk.zbuf[0, ..., :-1]
assert bool((dz[filled[..., 1:]] >= 0).all()), "nearest first"
f1 = rasterize(cow)
assert torch.equal(fk.pix_to_face[..., :1], f1.pix_to_face), "slot 0 is the K=1 result"
even = (layers[layers > 0] % 2 == 0).float().mean()
print(f"pixels with an even number of layers: {even:.1%}")
assert even > 0.9, "a closed surface is entered and left"

# %% [markdown]
# **perspective_correct.** A pixel's barycentrics can be interpolated in screen space
# (affine, cheap) or corrected for the perspective divide. The difference shows on a large
# textured floor of just two triangles seen at a grazing angle: without the correction the
# checker lines bend where the two triangles meet.

# %%
n = 8                                                       # checks per side
u, v = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
checker = (((u * n // 64) + (v * n // 64)) % 2).float()[..., None].expand(64, 64, 3)
floor = Meshes(
    verts=[torch.tensor([[-1.0, -0.5, -1.0], [1.0, -0.5, -1.0], [1.0, -0.5, 1.0],
                         [-1.0, -0.5, 1.0]])],
    faces=[torch.tensor([[0, 2, 1], [0, 3, 2]])],
    textures=TexturesUV(maps=[checker * 0.8 + 0.1], faces_uvs=[torch.tensor([[0, 2, 1],
                                                                              [0, 3, 2]])],
                        verts_uvs=[torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0],
                                                 [0.0, 1.0]])]),
)
R_f, T_f = look_at_view_transform(dist=1.8, elev=25, azim=30)
cam_f = FoVPerspectiveCameras(R=R_f, T=T_f)
floor_imgs = []
for correct in (True, False):
    rs = RasterizationSettings(image_size=IMG, perspective_correct=correct)
    r = MeshRenderer(MeshRasterizer(cameras=cam_f, raster_settings=rs),
                     HardFlatShader(cameras=cam_f, lights=AmbientLights()))
    floor_imgs.append(r(floor)[0, ..., :3])
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, img, correct in zip(axes, floor_imgs, (True, False), strict=True):
    ax.imshow(img.clamp(0, 1))
    ax.set_title(f"perspective_correct={correct}")
    ax.set_xlabel("x (pixel)")
axes[0].set_ylabel("y (pixel)")
plt.show()
assert (floor_imgs[0] - floor_imgs[1]).abs().amax(-1).gt(0.5).float().mean() > 0.02, \
    "the affine interpolation moves the checks"

# %% [markdown]
# **cull_backfaces** and **z_clip_value.** A closed mesh hides its back faces behind its
# front faces, so culling them changes nothing; an *open* mesh shows its inside. Below, the
# cow is opened by deleting every face whose centre is nearer to the camera than the cow's
# middle: without culling we look into its body (dark: those faces' normals point away from
# the light), with `cull_backfaces=True` the inside faces (clockwise on screen) vanish.
# `z_clip_value` cuts the *closed* cow instead: every face part nearer than that view depth
# is clipped away before rasterizing, and we look into the far half just the same.

# %%
faces = cow.faces_packed()
centre_depth = cameras.get_world_to_view_transform().transform_points(
    verts[faces].mean(1))[:, 2]
middle = float(centre_depth.median())
open_cow = Meshes(verts=[verts], faces=[faces[centre_depth > middle]], textures=TexturesVertex(
    verts_features=[torch.full_like(verts, 0.8)]))
closed = Meshes(verts=[verts], faces=[faces], textures=open_cow.textures)
lights = PointLights(location=cameras.get_camera_center())  # a headlight

runs = {"open, cull_backfaces=False": (open_cow, {}),
        "open, cull_backfaces=True": (open_cow, {"cull_backfaces": True}),
        "closed, z_clip_value=None": (closed, {}),
        f"closed, z_clip_value={middle:.2f}": (closed, {"z_clip_value": middle})}
fig, axes = plt.subplots(1, 4, figsize=(10, 2.9))
clip_frags = {}
for ax, (title, (mesh, extra)) in zip(axes, runs.items(), strict=True):
    rs = RasterizationSettings(image_size=IMG, **extra)
    rast = MeshRasterizer(cameras=cameras, raster_settings=rs)
    clip_frags[title] = rast(mesh)
    img = MeshRenderer(rast, HardPhongShader(cameras=cameras, lights=lights))(mesh)
    ax.imshow(img[0, ..., :3].clamp(0, 1))
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x (pixel)")
axes[0].set_ylabel("y (pixel)")
plt.show()

# %% [markdown]
# Checked: culling removes pixels from the open cow but none from the closed one (its back
# faces are always hidden), and after clipping no fragment is nearer than `z_clip_value`.

# %%
cov = {t: int((f.pix_to_face[0, ..., 0] >= 0).sum()) for t, f in clip_frags.items()}
keys = list(cov)
assert cov[keys[1]] < 0.8 * cov[keys[0]], "culling empties the open cow's inside"
closed_culled = rasterize(closed, cull_backfaces=True).pix_to_face[0, ..., 0] >= 0
assert int(closed_culled.sum()) == cov[keys[2]], "a closed mesh loses nothing"
zc = clip_frags[keys[3]].zbuf[0, ..., 0]
assert bool((zc[zc >= 0] >= middle - 1e-4).all()), "nothing nearer than z_clip_value"

# %% [markdown]
# ## 4. Fragments
#
# The rasterizer's whole output is four `(N, H, W, K)` tensors, nearest face first:
#
# * `pix_to_face`: index into `faces_packed()`, `-1` where no face;
# * `zbuf`: the face's view depth at the pixel centre, `-1` where no face;
# * `bary_coords` `(..., 3)`: where the pixel centre sits in the face (weights of its three
#   vertices), what shaders interpolate normals, colours and UVs with;
# * `dists`: the signed squared NDC distance from the pixel centre to the face's 2D
#   triangle, **negative inside**, positive outside (only possible with `blur_radius > 0`).
#
# `zbuf`, `bary_coords` and `dists` are differentiable with respect to the vertices;
# `pix_to_face` is an integer, and the reason why a *hard* rasterizer has no gradient at the
# silhouette. Soft rasterizers (Liu et al. 2019) turn `dists` into a coverage probability.
# At these image sizes most of the cow's triangles are smaller than a pixel, so we zoom in on its
# horns (a narrow field of view aimed at them). The first three panels are the sharp
# rasterization (`blur_radius=0`, K = 1); for `dists` the cow is rasterized again with a
# 2-pixel blur and K = 8, and each pixel shows its smallest distance over the listed
# faces: negative inside the silhouette (darkest at triangle centres), positive on the band
# around it.

# %%
horn = verts[verts[:, 1].argmax()] - torch.tensor([0.0, 0.15, 0.0])
R_z, T_z = look_at_view_transform(dist=2.2, elev=15, azim=150, at=horn[None])
cam_zoom = FoVPerspectiveCameras(R=R_z, T=T_z, fov=20)
fz = rasterize(cow, cam_zoom)
p2f, zbuf, bary, _ = (t[0, :, :, 0] for t in fz)          # image 0, nearest face
BLUR = (2 * PIX) ** 2
fb = rasterize(cow, cam_zoom, blur_radius=BLUR, faces_per_pixel=8)
d_min = fb.dists[0].masked_fill(fb.pix_to_face[0] < 0, float("inf")).amin(-1)
nan = float("nan")
shuffle = torch.randperm(int(p2f.max()) + 1)               # neighbouring faces, other colours
fig, axes = plt.subplots(1, 4, figsize=(10, 2.9))
axes[0].imshow(np.where(p2f >= 0, shuffle[p2f.clamp(min=0)], nan), cmap="tab20",
               interpolation="nearest")
axes[0].set_title("pix_to_face (shuffled)")
im = axes[1].imshow(zbuf.masked_fill(p2f < 0, nan), cmap="magma")
plt.colorbar(im, ax=axes[1], fraction=0.046)
axes[1].set_title("zbuf (view depth)")
axes[2].imshow(np.where((p2f >= 0)[..., None], bary.clamp(0, 1), 1.0))
axes[2].set_title("bary_coords as RGB")
im = axes[3].imshow(d_min.masked_fill(d_min.isinf(), nan), cmap="RdBu_r", vmin=-BLUR,
                    vmax=BLUR)
plt.colorbar(im, ax=axes[3], fraction=0.046)
axes[3].set_title("dists, blurred (< 0 inside)")
for ax in axes:
    ax.set_xlabel("x (pixel)")
axes[0].set_ylabel("y (pixel)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Checked, on every slot: `pix_to_face == -1` exactly where `zbuf == -1`; barycentrics sum
# to 1 on covered pixels; without blur every listed face contains its pixel (`dists <= 0`);
# with blur, `0 < dists <= blur_radius` on the band that only the blur adds. (Inside the sharp
# silhouette a blurred slot may hold a face that misses the pixel but lies in front: slots
# are sorted by depth, not by distance.)

# %%
for frag in (fz, fb):
    empty = frag.pix_to_face < 0
    assert torch.equal(empty, frag.zbuf == -1), "pix_to_face and zbuf agree on empty slots"
    assert torch.allclose(frag.bary_coords.sum(-1)[~empty], torch.tensor(1.0), atol=1e-4), \
        "barycentrics sum to 1"
sharp = p2f >= 0
assert bool((fz.dists[0, ..., 0][sharp] <= 0).all()), "no blur: inside, dists <= 0"
band = fb.pix_to_face[0, ..., 0].ge(0) & ~sharp
band_d = fb.dists[0][band][fb.pix_to_face[0][band] >= 0]
assert band_d.numel() > 0 and bool((band_d > 0).all()), "outside: dists > 0"
assert bool((band_d <= BLUR * (1 + 1e-4)).all()), "within the blur radius"

# %% [markdown]
# **From fragments to colours.** Every shader starts the same way:
# `interpolate_face_attributes(pix_to_face, bary_coords, per_face_vertex_values)` gives any
# per-vertex quantity at every pixel. Interpolating the *positions* and moving them to view
# space must give back `zbuf`; interpolating the *normals* and dotting them with a light
# direction is Lambert's diffuse term, which is what `HardPhongShader` computes with a
# `DirectionalLights` and a diffuse-only material. A few lines reproduce it:

# %%
cov1 = f1.pix_to_face[0, ..., 0] >= 0                       # covered pixels
pts = interpolate_face_attributes(f1.pix_to_face, f1.bary_coords, verts[faces])
z_pts = cameras.get_world_to_view_transform().transform_points(pts.reshape(1, -1, 3))[..., 2]
normals = interpolate_face_attributes(f1.pix_to_face, f1.bary_coords,
                                      cow.verts_normals_packed()[faces])[0, :, :, 0]
normals = torch.nn.functional.normalize(normals, dim=-1)
to_light = torch.nn.functional.normalize(                   # from the camera, raised
    cameras.get_camera_center()[0] + torch.tensor([0.0, 1.5, 0.0]), dim=0)
by_hand = normals @ to_light                                 # n . l, per pixel
by_hand = by_hand.clamp(min=0)[..., None] * 0.8              # x diffuse colour x grey texture

grey = Meshes(verts=[verts], faces=[faces],
              textures=TexturesVertex(verts_features=[torch.full_like(verts, 0.8)]))
diffuse_only = Materials(ambient_color=[[0.0, 0.0, 0.0]], specular_color=[[0.0, 0.0, 0.0]])
sun = DirectionalLights(direction=to_light[None], diffuse_color=[[1.0, 1.0, 1.0]])
shader = HardPhongShader(cameras=cameras, lights=sun, materials=diffuse_only)
by_shader = MeshRenderer(MeshRasterizer(cameras=cameras, raster_settings=RasterizationSettings(
    IMG)), shader)(grey)[0, ..., :3]

fig, axes = plt.subplots(1, 3, figsize=(9, 3))
axes[0].imshow(np.where(cov1[..., None], (normals + 1) / 2, 1.0))
axes[0].set_title("interpolated normals, (n+1)/2", fontsize=9)
axes[1].imshow(np.where(cov1[..., None], by_hand.expand(-1, -1, 3), 1.0))
axes[1].set_title("by hand: 0.8 * max(0, n . l)", fontsize=9)
axes[2].imshow(by_shader.clamp(0, 1))
axes[2].set_title("HardPhongShader, diffuse only", fontsize=9)
for ax in axes:
    ax.set_xlabel("x (pixel)")
axes[0].set_ylabel("y (pixel)")
plt.show()

# %% [markdown]
# Checked: interpolated positions sit at depth `zbuf` (perspective-correct barycentrics), and
# the hand-made Lambert term is the shader's image.

# %%
zb = f1.zbuf.reshape(1, -1)
hit = zb >= 0
assert torch.allclose(z_pts[hit], zb[hit], atol=1e-4), "interpolated points lie at zbuf"
assert torch.allclose(by_hand.expand(-1, -1, 3)[cov1], by_shader[cov1], atol=1e-4), \
    "Lambert by hand = the shader"

# %% [markdown]
# ## 5. Shaders = shading x blending
#
# A shader does two independent things with the fragments:
#
# * **shading** computes a colour for each of the K faces listed at a pixel: per pixel
#   (Phong: normals interpolated with `bary_coords`, then lit), per vertex (Gouraud: lit at
#   the vertices, colours interpolated), per face (flat), or not at all (silhouette);
# * **blending** turns the K colours into one RGBA pixel: *hard* keeps the nearest face
#   (alpha is 0 or 1, no gradient at the silhouette), *soft* weighs the K faces by
#   `sigmoid(-dists / sigma)` and a softmax over depth with temperature `gamma`
#   (SoftRas, Liu et al. 2019), which needs a `blur_radius` so that faces just outside a
#   pixel are listed at all.
#
# | shading \ blending | hard | soft (softmax RGB) | sigmoid (alpha only) |
# |---|---|---|---|
# | Phong | `HardPhongShader` | `SoftPhongShader` | |
# | Gouraud | `HardGouraudShader` | `SoftGouraudShader` | |
# | flat | `HardFlatShader` | | |
# | none | | | `SoftSilhouetteShader` |
#
# (diffrend exposes the product directly as `diffrend.MeshShader(shading, blend)`; the
# PyTorch3D names are fixed pairs.) The soft raster settings follow from `sigma`: a face
# whose probability would be below 1e-4 need not be listed, so
# `blur_radius = log(1/1e-4 - 1) * sigma`. A low-poly ball shows the shadings apart (Gouraud
# lights only the vertices' own colours, so it needs a `TexturesVertex`: a grey one here).

# %%
ball1 = ico_sphere(1)                                       # 80 faces: shading shows
ball1.textures = TexturesVertex(verts_features=[torch.full((42, 3), 0.8)])
R_b, T_b = look_at_view_transform(dist=2.4, elev=0, azim=0)  # camera on +Z, looking at 0
cam_b = FoVPerspectiveCameras(R=R_b, T=T_b)
light_b = PointLights(location=[[1.5, 1.5, 3.0]])
soft = BlendParams(sigma=3e-4, gamma=1e-4, background_color=(1.0, 1.0, 1.0))
hard_rs = RasterizationSettings(image_size=IMG)
soft_rs = RasterizationSettings(image_size=IMG, blur_radius=np.log(1 / 1e-4 - 1) * soft.sigma,
                                faces_per_pixel=20)
shaders = {"HardPhongShader": (HardPhongShader, hard_rs),
           "HardGouraudShader": (HardGouraudShader, hard_rs),
           "HardFlatShader": (HardFlatShader, hard_rs),
           "SoftPhongShader": (SoftPhongShader, soft_rs),
           "SoftSilhouetteShader": (SoftSilhouetteShader, soft_rs)}
rgba = {}
for name, (shader_cls, rs) in shaders.items():
    shader = shader_cls(cameras=cam_b, lights=light_b, blend_params=soft)
    rgba[name] = MeshRenderer(MeshRasterizer(cameras=cam_b, raster_settings=rs),
                              shader)(ball1)[0]

sil = rgba["HardPhongShader"][..., 3] > 0                  # a window on the left silhouette
r0 = IMG // 2
c0 = int(sil[r0].nonzero()[0])
h = IMG // 10
win = (slice(r0 - h, r0 + h), slice(c0 - h, c0 + h))
fig, axes = plt.subplots(2, 5, figsize=(10, 4.4))
for j, (name, img) in enumerate(rgba.items()):
    rgb = img[..., 3:].expand(-1, -1, 3) if "Silhouette" in name else img[..., :3]
    axes[0, j].imshow(rgb.clamp(0, 1))
    axes[0, j].set_title(name.replace("Shader", "\nShader"), fontsize=9)
    axes[1, j].imshow(img[..., 3][win], cmap="gray", vmin=0, vmax=1)
    axes[1, j].set_title("alpha, zoomed", fontsize=9)
    axes[1, j].set_xlabel("x (pixel)")
axes[0, 0].set_ylabel("RGB (silhouette: alpha)")
axes[1, 0].set_ylabel("y (pixel)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Inside the soft silhouette, alpha dips slightly along the edges between faces: a pixel
# centre on an edge is at distance 0 from both faces, each of which then counts only half.
#
# Checked: hard blending gives alpha exactly 0 or 1; soft blending gives fractional alpha at
# the silhouette and a nearly opaque inside; and `SoftPhongShader`'s alpha is
# `SoftSilhouetteShader`'s: the colour never enters the alpha channel, only `dists` does.

# %%
a_hard, a_soft = rgba["HardPhongShader"][..., 3], rgba["SoftPhongShader"][..., 3]
assert bool(((a_hard == 0) | (a_hard == 1)).all()), "hard alpha is binary"
assert int(((a_soft > 0.05) & (a_soft < 0.95)).sum()) > IMG // 2, "soft alpha is fractional"
assert float(a_soft[a_hard == 1].mean()) > 0.95, "opaque inside"
assert torch.allclose(a_soft, rgba["SoftSilhouetteShader"][..., 3], atol=1e-5), "same alpha"

# %% [markdown]
# `sigma` sets the width of the soft edge (in squared NDC units, like `blur_radius`): small
# is nearly hard, large is a halo. `gamma` does the same for depth: how much faces behind
# the nearest one show through.

# %%
def soft_silhouette(sigma):
    """Alpha of the low-poly ball under SoftSilhouetteShader with this sigma."""
    rs = RasterizationSettings(image_size=IMG, blur_radius=np.log(1 / 1e-4 - 1) * sigma,
                               faces_per_pixel=20)
    shader = SoftSilhouetteShader(blend_params=BlendParams(sigma=sigma, gamma=1e-4))
    return MeshRenderer(MeshRasterizer(cameras=cam_b, raster_settings=rs), shader)(ball1)[0, ..., 3]


sigmas = [1e-5, 1e-4, 1e-3]
alphas = [soft_silhouette(sg) for sg in sigmas]
fig, axes = plt.subplots(1, 3, figsize=(8, 2.9))
for ax, sg, a in zip(axes, sigmas, alphas, strict=True):
    ax.imshow(a[win], cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"sigma = {sg:g}: alpha, zoomed", fontsize=9)
    ax.set_xlabel("x (pixel)")
axes[0].set_ylabel("y (pixel)")
plt.show()
widths = [int(((a > 0.05) & (a < 0.95)).sum()) for a in alphas]
assert widths[0] < widths[1] < widths[2], "a larger sigma, a wider soft edge"

if not STATIC:
    try:
        from ipywidgets import FloatLogSlider, interact
    except ImportError:
        interact = None
    if interact is not None:
        def show_sigma(sigma=1e-4):
            plt.imshow(soft_silhouette(sigma), cmap="gray", vmin=0, vmax=1)
            plt.title(f"SoftSilhouetteShader, sigma = {sigma:.1e}")
            plt.xlabel("x (pixel)")
            plt.ylabel("y (pixel)")
            plt.show()

        interact(show_sigma, sigma=FloatLogSlider(value=1e-4, base=10, min=-6, max=-2))

# %% [markdown]
# ### Lights
#
# `PointLights` shine from a position (the direction changes across the surface),
# `DirectionalLights` from a direction (the sun), `AmbientLights` light everything equally.
# Each has an ambient, a diffuse and a specular colour. Under a white ambient light alone,
# every surface shows exactly its texture colour: shading multiplies the texture, it does not
# replace it.

# %%
lights = {"PointLights (headlight)": PointLights(location=cameras.get_camera_center()),
          "PointLights (from the side)": PointLights(location=[[3.0, 0.5, 0.5]]),
          "DirectionalLights (from above)": DirectionalLights(direction=[[0.0, 1.0, 0.0]]),
          "AmbientLights": AmbientLights()}
rast = MeshRasterizer(cameras=cameras, raster_settings=hard_rs)
lit = {}
fig, axes = plt.subplots(1, 4, figsize=(10, 2.9))
for ax, (name, lt) in zip(axes, lights.items(), strict=True):
    lit[name] = MeshRenderer(rast, HardPhongShader(cameras=cameras, lights=lt))(cow)[0]
    ax.imshow(lit[name][..., :3].clamp(0, 1))
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("x (pixel)")
axes[0].set_ylabel("y (pixel)")
plt.show()

texels = cow.sample_textures(f1)[0, :, :, 0]               # the texture at each pixel
assert torch.allclose(lit["AmbientLights"][..., :3][cov1], texels[cov1], atol=1e-5), \
    "white ambient light = the texture"

# %% [markdown]
# ### Materials
#
# Phong's model sums three terms, each weighted by the material's colour for it:
# **ambient** (constant), **diffuse** (`max(0, n . l)`, Lambert), **specular**
# (`max(0, r . v) ** shininess`, the highlight). On a grey ball: each term alone, then their
# sum at growing `shininess` (a smaller, sharper highlight).

# %%
ball3 = ico_sphere(3)
ball3.textures = TexturesVertex(verts_features=[torch.full((642, 3), 0.7)])
lb = PointLights(location=[[1.5, 1.5, 3.0]], ambient_color=[[0.3, 0.3, 0.3]],
                 diffuse_color=[[0.7, 0.7, 0.7]], specular_color=[[0.6, 0.6, 0.6]])
black = BlendParams(background_color=(0.0, 0.0, 0.0))
rast_b = MeshRasterizer(cameras=cam_b, raster_settings=hard_rs)


def shade_ball(**material):
    """The ball under `lb` with Materials(**material); RGB."""
    shader = HardPhongShader(cameras=cam_b, lights=lb, materials=Materials(**material),
                             blend_params=black)
    return MeshRenderer(rast_b, shader)(ball3)[0, ..., :3]


zero = [[0.0, 0.0, 0.0]]
terms = {"ambient only": shade_ball(diffuse_color=zero, specular_color=zero),
         "diffuse only": shade_ball(ambient_color=zero, specular_color=zero),
         "specular only": shade_ball(ambient_color=zero, diffuse_color=zero, shininess=16),
         "all three (shininess 16)": shade_ball(shininess=16)}
shiny = {s: shade_ball(shininess=s) for s in (4, 64, 256)}
fig, axes = plt.subplots(2, 4, figsize=(10, 5))
for ax, (name, img) in zip(axes[0], terms.items(), strict=True):
    ax.imshow(img.clamp(0, 1))
    ax.set_title(name, fontsize=9)
for ax, (s, img) in zip(axes[1], shiny.items(), strict=False):
    ax.imshow(img.clamp(0, 1))
    ax.set_title(f"shininess = {s}", fontsize=9)
highlight = [int(shade_ball(ambient_color=zero, diffuse_color=zero, shininess=s).mean(-1)
                 .gt(0.1).sum()) for s in shiny]           # pixels where specular > 0.1
axes[1, 3].bar([str(s) for s in shiny], highlight, color="tab:orange")
axes[1, 3].set_title("highlight size", fontsize=9)
axes[1, 3].set_xlabel("shininess")
axes[1, 3].set_ylabel("pixels with specular > 0.1")
for ax in axes[:, :3].ravel():
    ax.set_xlabel("x (pixel)")
axes[0, 0].set_ylabel("y (pixel)")
axes[1, 0].set_ylabel("y (pixel)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Checked: the three single-term images add up to the full one (the model is a sum), and
# the highlight shrinks as `shininess` grows.

# %%
total = terms["ambient only"] + terms["diffuse only"] + terms["specular only"]
assert torch.allclose(total, terms["all three (shininess 16)"], atol=1e-5), "Phong is a sum"
assert highlight[0] > highlight[1] > highlight[2], "higher shininess, smaller highlight"

# %% [markdown]
# ### Textures
#
# Where a surface's colour comes from:
#
# * `TexturesVertex`: one colour per vertex, interpolated with `bary_coords` (here the
#   vertex position as RGB);
# * `TexturesUV`: per-vertex UV coordinates into an image, sampled bilinearly (the cow's
#   own texture, drawn at the right with its UV triangles);
# * `TexturesAtlas`: a small R x R colour grid per face, sampled from the image once when
#   loading (`load_objs_as_meshes(..., create_texture_atlas=True)`): no UV lookup at render
#   time, at the cost of resolution.

# %%
lo, hi = verts.min(0).values, verts.max(0).values
cow_vertex = Meshes(verts=[verts], faces=[faces],
                    textures=TexturesVertex(verts_features=[(verts - lo) / (hi - lo)]))
with warnings.catch_warnings():  # the cow's UVs leave [0, 1] a little; they wrap, as intended
    warnings.simplefilter("ignore", UserWarning)
    cow_atlas = load_objs_as_meshes([COW_OBJ], create_texture_atlas=True, texture_atlas_size=4)
amb = HardPhongShader(cameras=cameras, lights=AmbientLights())
tex_imgs = {"TexturesVertex": MeshRenderer(rast, amb)(cow_vertex)[0, ..., :3],
            "TexturesUV": MeshRenderer(rast, amb)(cow)[0, ..., :3],
            "TexturesAtlas (R = 4)": MeshRenderer(rast, amb)(cow_atlas)[0, ..., :3]}
fig, axes = plt.subplots(1, 4, figsize=(10, 2.9))
for ax, (name, img) in zip(axes, tex_imgs.items(), strict=False):
    ax.imshow(img.clamp(0, 1))
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("x (pixel)")
tex = cow.textures
uv = tex.verts_uvs_padded()[0][tex.faces_uvs_padded()[0][::8]]     # every 8th triangle
axes[3].imshow(tex.maps_padded()[0].clamp(0, 1), extent=(0, 1, 0, 1))
axes[3].plot(*uv[:, [0, 1, 2, 0]].permute(2, 1, 0), color="tab:red", lw=0.3)
axes[3].set_title("the UV map, 1/8 of the triangles", fontsize=9)
axes[3].set_xlabel("u")
axes[3].set_ylabel("v")
axes[0].set_ylabel("y (pixel)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Checked: the atlas render matches the UV render up to its coarser sampling (mean
# difference over the cow below 5% of the colour range), and the vertex-coloured cow differs.

# %%
d_atlas = (tex_imgs["TexturesAtlas (R = 4)"] - tex_imgs["TexturesUV"]).abs()[cov1].mean()
d_vertex = (tex_imgs["TexturesVertex"] - tex_imgs["TexturesUV"]).abs()[cov1].mean()
print(f"mean |atlas - UV| = {d_atlas:.3f}, mean |vertex - UV| = {d_vertex:.3f}")
assert d_atlas < 0.05 < d_vertex, "the atlas samples the same image"
