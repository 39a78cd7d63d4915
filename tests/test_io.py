"""Odd and broken image files: a clear ImageError or a sensible RGB array."""
import os

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


# ---------------------------------------------------------------- issue 13: orientation, huge images, outputs
def test_exif_orientation_applied_only_when_asked(tmp_path):
    """All 8 EXIF orientations: `load_image(exif_transpose=True)` equals Pillow's ImageOps.exif_transpose
    (what a photo viewer shows); the default keeps the stored pixels (what dataset annotations use)."""
    from PIL import ImageOps

    from stl.io import load_image

    stored = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    for o in range(1, 9):
        ex = Image.Exif()
        ex[0x0112] = o
        p = tmp_path / f"o{o}.png"  # lossless, so pixels compare exactly
        Image.fromarray(stored).save(p, exif=ex.tobytes())
        shown = load_image(p, exif_transpose=True)
        with Image.open(p) as im:
            want = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        np.testing.assert_array_equal(shown.array, want)
        assert shown.orientation == o and shown.exif_applied == (o != 1)
        assert shown.size == ((40, 30) if o >= 5 else (30, 40)) and shown.file_size == (30, 40)
        kept = load_image(p)
        np.testing.assert_array_equal(kept.array, stored)
        assert kept.size == (30, 40) and not kept.exif_applied


def test_large_images_decoded_reduced(tmp_path):
    from stl.io import load_image

    big = Image.fromarray(np.random.default_rng(1).integers(0, 255, (60, 100, 3), dtype=np.uint8)).resize((3000, 1800))
    big.save(tmp_path / "big.jpg", quality=90)
    big.save(tmp_path / "big.png", compress_level=1)
    for name in ("big.jpg", "big.png"):
        full = load_image(tmp_path / name)
        small = load_image(tmp_path / name, max_side=700)
        assert full.array.shape == (1800, 3000, 3) and not full.reduced
        assert max(small.array.shape[:2]) <= 700 and small.reduced
        assert small.size == small.file_size == (1800, 3000)
        # the same picture: the full decode block-averaged to the reduced size is close
        fh, fw = small.array.shape[:2]
        ref = np.asarray(Image.fromarray(full.array).resize((fw, fh), Image.BOX), np.float64)
        assert np.abs(ref - small.array).mean() < 6, name


def test_outputs_get_the_users_permissions(tmp_path):
    from stl.io import write_json_atomic

    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "a.json", {"x": 1})
        os.umask(0o077)
        write_json_atomic(tmp_path / "b.json", {"x": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600


def test_output_names_and_output_dir(tmp_path):
    from stl.errors import UserError
    from stl.io import check_output_dir, output_names

    assert output_names(["a/x.png", "b/x.png", "c.png", "a/x.png", "x.jpg"]) == ["a_x", "b_x", "c", "a_x-2", "x"]
    assert output_names(["x.png", "y.png"]) == ["x", "y"]
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="exists and is not a folder"):
        check_output_dir(tmp_path / "file")
    (tmp_path / "out" / "x_wl.json").mkdir(parents=True)
    with pytest.raises(UserError, match="x_wl.json: exists and cannot be replaced"):
        check_output_dir(tmp_path / "out", ["x_wl.json"])
    assert check_output_dir(tmp_path / "new" / "deeper").is_dir()


def test_bounded_figure_for_extreme_shapes(tmp_path):
    """A 5000x1 image used to ask matplotlib for a 30000-inch figure (31.9 GiB)."""
    import resource

    from stl.visualize import draw_windows

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for shape in ((5000, 1, 3), (1, 5000, 3), (1, 1, 3)):
        p = tmp_path / f"{shape[0]}x{shape[1]}.png"
        draw_windows(np.zeros(shape, np.uint8), np.array([[0, 0, 0, 10.0]]), np.array([1.0]), p)
        with Image.open(p) as im:
            assert max(im.size) <= 700
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB
