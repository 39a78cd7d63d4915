"""The separable crop / input resize equals ``skimage.transform.resize`` as the authors called it.

The authors' ``NetworkCaffe.evaluate`` takes the central square of a crop and resizes it with
``skimage.transform.resize`` (order 1, constant border, no anti-aliasing) on ``x / 255``.
:func:`stl.models.base.skimage_bilinear` computes the same two-tap interpolation separably;
here it must give the same float32 pixels bit for bit on random integer-valued crops (STL's
crops come from the uint8 input image) of many shapes, and within one float32 ulp otherwise.
"""
import numpy as np
import pytest
from skimage.transform import resize

from stl.models.base import center_square, crop_to_input, crops_to_input, linear_taps, skimage_bilinear


def reference(image, size):
    x = np.asarray(image, np.float64) / 255.0
    out = resize(x, tuple(size), order=1, mode="constant", cval=0.0, clip=False, preserve_range=False,
                 anti_aliasing=False)
    return (np.clip(out, 0.0, 1.0) * 255.0).astype(np.float32)


def test_linear_taps_hand_computed():
    # 2 -> 4: coordinates (o + 1/2) / 2 - 1/2 = -0.25, 0.25, 0.75, 1.25
    idx, w0, w1 = linear_taps(2, 4)
    np.testing.assert_array_equal(idx, [0, 1, 1, 2])  # into the axis padded with one zero
    np.testing.assert_allclose(w0, [0.25, 0.75, 0.25, 0.75])
    np.testing.assert_allclose(w1, [0.75, 0.25, 0.75, 0.25])


def test_constant_border_hand_computed():
    img = np.full((2, 2, 3), 100.0, np.float32)
    out = skimage_bilinear(img, (4, 4))[..., 0]
    # corner 0.75 * 0.75 * 100, edge 0.75 * 100, inside 100 (the zero border of mode="constant")
    np.testing.assert_allclose(out[0, 0], 56.25, rtol=1e-6)
    np.testing.assert_allclose(out[0, 1], 75.0, rtol=1e-6)
    np.testing.assert_allclose(out[1, 1], 100.0, rtol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_equals_skimage_on_random_shapes(seed):
    rng = np.random.default_rng(seed)
    size = [(224, 224), (227, 227), (17, 31)][seed % 3]
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 260, 2))
        img = rng.integers(0, 256, (h, w, 3)).astype(np.float32)
        np.testing.assert_array_equal(skimage_bilinear(img, size), reference(img, size))
        sq = center_square(img)
        np.testing.assert_array_equal(crop_to_input(img, size), reference(sq, size))


def test_batch_equals_one_at_a_time():
    rng = np.random.default_rng(7)
    # STL's crops hold integer pixel values (the uint8 input image): bit for bit
    crops = [rng.integers(0, 256, (int(h), int(w), 3)).astype(np.float32)
             for h, w in rng.integers(1, 200, (30, 2))]
    batch = crops_to_input(crops, (224, 224))
    assert batch.shape == (30, 224, 224, 3) and batch.dtype == np.float32
    for c, b in zip(crops, batch):
        np.testing.assert_array_equal(b, reference(center_square(c), (224, 224)))
    warped = crops_to_input(crops[:3], (50, 40), "warp")
    np.testing.assert_array_equal(warped[1], crop_to_input(crops[1], (50, 40), "warp"))


def test_fractional_pixels_within_one_ulp():
    rng = np.random.default_rng(8)
    for h, w in rng.integers(1, 200, (20, 2)):
        img = rng.uniform(0, 255, (int(h), int(w), 3)).astype(np.float32)
        np.testing.assert_allclose(skimage_bilinear(img, (224, 224)), reference(img, (224, 224)),
                                   rtol=2e-7, atol=2e-5)
