"""Reading photos and label images: one pixel limit (``QGN_MAX_PIXELS``) checked before anything is
decoded, for every reader, and photos turned upright by their EXIF orientation."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sample_files import png_claiming, write_photo


@pytest.mark.parametrize("reader", ["read_rgb", "read_label", "read_label_rgb"])
def test_every_image_reader_refuses_a_bomb_before_decoding(tmp_path, reader):
    import qgn.data.imageio as imageio
    import qgn.quadtree.label_io as label_io
    from qgn.imagefile import ImageTooLargeError

    bomb = png_claiming(tmp_path / "bomb.png", 12000, 12000)
    assert bomb.stat().st_size < 2000
    with pytest.raises(ImageTooLargeError, match="QGN_MAX_PIXELS=144000000"):
        getattr(label_io if reader == "read_label" else imageio, reader)(bomb)


def test_pixel_limit_override(tmp_path, monkeypatch):
    from qgn.data.imageio import read_rgb
    from qgn.imagefile import ImageTooLargeError, max_pixels

    photo = write_photo(tmp_path / "a.png", (40, 32))
    monkeypatch.setenv("QGN_MAX_PIXELS", "1000")
    with pytest.raises(ImageTooLargeError, match="40×32"):
        read_rgb(photo)
    monkeypatch.setenv("QGN_MAX_PIXELS", "1280")
    assert read_rgb(photo).shape == (32, 40, 3)
    monkeypatch.setenv("QGN_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="QGN_MAX_PIXELS"):
        max_pixels()


def test_photos_are_read_upright(tmp_path):
    from qgn.data.imageio import read_rgb

    pixels = np.zeros((2, 3, 3), np.uint8)
    pixels[0, 0] = (255, 0, 0)  # stored: red at the top left of a 3 wide × 2 high photo
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    image.save(tmp_path / "portrait.jpg", exif=exif, quality=100, subsampling=0)
    upright = read_rgb(tmp_path / "portrait.jpg")
    assert upright.shape == (3, 2, 3)  # shown 2 wide × 3 high
    assert upright[0, 1, 0] > 200 and upright[0, 1, 1] < 60  # the red pixel is now at the top right


@pytest.mark.parametrize("reader", ["read_rgb", "read_label"])
def test_a_png_too_small_for_the_pixels_it_claims_is_refused_before_decoding(tmp_path, reader):
    """58 bytes claiming 1×67,000,000 pixels (under the pixel limit) made Pillow allocate ~600 MB
    of row pointers before it found the data missing; deflate packs at most 1032 bytes into one."""
    import qgn.data.imageio as imageio
    import qgn.quadtree.label_io as label_io

    tall = png_claiming(tmp_path / "tall.png", 1, 67_000_000)
    with pytest.raises(ValueError, match="no PNG of .* bytes can hold"):
        getattr(label_io if reader == "read_label" else imageio, reader)(tall)


def test_the_best_compressed_genuine_png_is_read(tmp_path):
    """The bound counts one bit a pixel and a filter byte a row, the least a PNG stores, so the
    most compressible genuine files (1-bit, one colour, zlib at its best) still open."""
    from qgn.imagefile import DEFLATE_MAX_RATIO, open_image

    path = tmp_path / "flat.png"
    Image.fromarray(np.zeros((4000, 4000), bool)).save(path, optimize=True, compress_level=9)
    assert path.stat().st_size * DEFLATE_MAX_RATIO < 3 * 4000 * (1 + 500)  # within a few times the bound
    with open_image(path) as image:
        assert np.asarray(image).shape == (4000, 4000) and not np.asarray(image).any()
