"""``pytorch3d.vis.plotly_vis``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: Struct, get_camera_wireframe, AxisArgs, Lighting, plot_scene,
# plot_batch_individually

__all__ = [
]
