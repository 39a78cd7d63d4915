"""Odd and broken image files: a clear ImageError or a sensible RGB array."""
import numpy as np
import pytest
from PIL import Image

from stl.io import ImageError, as_rgb_uint8, read_image, write_json_atomic


@pytest.fixture
def astronaut():
    from skimage import data

    return data.astronaut()


def test_modes_convert_to_rgb(tmp_path, astronaut):
    small = Image.fromarray(astronaut[:64, :64])
    small.convert("L").save(tmp_path / "gray.png")
    small.convert("CMYK").save(tmp_path / "cmyk.jpg")
    small.convert("RGBA").save(tmp_path / "rgba.png")
    small.convert("P").save(tmp_path / "pal.gif")
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)).save(tmp_path / "g16.png")
    Image.fromarray(np.array([[[7, 8, 9]]], np.uint8)).save(tmp_path / "one.png")
    for name in ["gray.png", "cmyk.jpg", "rgba.png", "pal.gif", "g16.png", "one.png"]:
        a = read_image(tmp_path / name)
        assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3, name
    assert read_image(tmp_path / "one.png").tolist() == [[[7, 8, 9]]]
    g16 = read_image(tmp_path / "g16.png")
    assert g16.max() > 200  # 16-bit values scaled, not clipped to 255 everywhere
    assert len(np.unique(g16)) > 100


def test_broken_files_raise_clear_errors(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "text.jpg").write_text("not an image at all")
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ["trunc.jpg", "text.jpg", "empty.png", "missing.png"]:
        with pytest.raises(ImageError) as e:
            read_image(tmp_path / name)
        assert name in str(e.value)


def test_decompression_bomb_is_reported(tmp_path):
    Image.new("L", (3000, 3000)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="too large"):
        read_image(tmp_path / "big.png", max_pixels=1_000_000)


def test_arrays():
    assert as_rgb_uint8(np.ones((4, 5), np.float32)).max() == 255
    assert as_rgb_uint8(np.zeros((4, 5, 1), bool)).shape == (4, 5, 3)
    with pytest.raises(ImageError):
        as_rgb_uint8(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ImageError):
        as_rgb_uint8(np.full((2, 2, 3), np.nan))


def test_atomic_json(tmp_path):
    write_json_atomic(tmp_path / "a" / "x.json", {"v": np.float32(1.5), "a": np.arange(2)})
    assert (tmp_path / "a" / "x.json").read_text().count("1.5") == 1
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]
