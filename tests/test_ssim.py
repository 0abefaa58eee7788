"""diffrend.losses.ssim against scikit-image's structural_similarity, and its checks."""

import pytest
import torch

from diffrend.losses import ssim


def _pair(seed: int = 0, shape=(2, 40, 33, 3)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(*shape, generator=g, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(*shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return a, b


def test_matches_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    a, b = _pair()
    ours = ssim(a, b, reduce=False)
    for i in range(a.shape[0]):
        ref = skm.structural_similarity(a[i].numpy(), b[i].numpy(), channel_axis=2,
                                        gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=1.0)
        assert float(ours[i]) == pytest.approx(ref, abs=1e-10)
    assert float(ssim(a, b)) == pytest.approx(float(ours.mean()), abs=1e-12)


def test_identical_is_one_and_noise_lowers_it():
    a, b = _pair(1)
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-12)
    assert float(ssim(a, b)) < 0.99


def test_gradcheck():
    a, b = _pair(2, (1, 12, 13, 2))
    a.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: ssim(x, b, window_size=5), (a,))


@pytest.mark.parametrize("kwargs, match", [
    ({"window_size": 4}, "window_size"),
    ({"window_size": 0}, "window_size"),
    ({"window_size": 41}, "smaller than window_size"),
    ({"sigma": 0.0}, "sigma"),
    ({"data_range": float("nan")}, "data_range"),
])
def test_bad_settings(kwargs, match):
    a, b = _pair()
    with pytest.raises(ValueError, match=match):
        ssim(a, b, **kwargs)


def test_bad_shapes():
    a, b = _pair()
    with pytest.raises(ValueError, match="target"):
        ssim(a, b[:, :30])
    with pytest.raises(ValueError, match="pred"):
        ssim(a[0], b[0])
