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


@pytest.mark.parametrize("fmt, suffix", [("BMP", ".bmp"), ("PPM", ".ppm"), ("TGA", ".tga"), ("TIFF", ".tif")])
def test_uncompressed_pixels_the_file_cannot_hold_are_refused_before_decoding(tmp_path, fmt, suffix):
    """A 154-byte BMP claiming 8000×8000 pixels made ``qgn predict`` allocate 190 MB before the data
    was found missing: uncompressed pixels take a bit each at the least, from where the header says."""
    from qgn.imagefile import open_image

    whole = tmp_path / f"whole{suffix}"
    Image.new("RGB", (300, 200), (9, 99, 199)).save(whole, fmt)
    with open_image(whole) as image:  # the genuine file opens, and its every pixel is read
        assert np.asarray(image.convert("RGB"))[199, 299].tolist() == [9, 99, 199]
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 40])
    with pytest.raises(ValueError, match=r"claims 300×200 pixels stored uncompressed, which its \d+ bytes cannot hold"):
        with open_image(cut):
            pass


@pytest.mark.parametrize("fmt, suffix", [("BMP", ".bmp"), ("PPM", ".pbm"), ("TIFF", ".tif")])
def test_the_least_an_uncompressed_file_stores_a_pixel_is_read(tmp_path, fmt, suffix):
    """One bit a pixel (a 1-bit image) is the least the bound assumes: such files still open."""
    from qgn.imagefile import open_image

    path = tmp_path / f"bits{suffix}"
    Image.new("1", (4001, 3), 1).save(path, fmt)
    with open_image(path) as image:
        assert np.asarray(image).all() and image.size == (4001, 3)


def test_a_gif_claiming_more_pixels_than_its_codes_can_stand_for_is_refused(tmp_path):
    """29 bytes claiming 8000×8000 made Pillow allocate the 64 MB before finding the data broken. A
    genuine one-colour GIF, the most compressible, opens."""
    import struct

    from qgn.imagefile import open_image

    flat = tmp_path / "flat.gif"
    Image.new("P", (3000, 3000), 0).save(flat)
    with open_image(flat) as image:
        assert np.asarray(image).shape == (3000, 3000)
    claim = tmp_path / "claim.gif"
    claim.write_bytes(b"GIF89a" + struct.pack("<HHBBB", 8000, 8000, 0, 0, 0) + b","
                      + struct.pack("<HHHHB", 0, 0, 8000, 8000, 0) + b"\x08\x02\x4c\x01\x00;")
    with pytest.raises(ValueError, match=r"claims 8000×8000 pixels stored as GIF, which its 29 bytes cannot hold"):
        with open_image(claim):
            pass


@pytest.mark.parametrize("progressive", [False, True])
def test_a_jpeg_claiming_more_blocks_than_its_bytes_can_code_is_refused(tmp_path, progressive):
    """519 bytes whose frame header claimed 8000×8000 decoded as that many grey pixels (1.4 GB for
    ``qgn predict``, exit 0): Huffman-coded scans spend a bit on each block's DC value at the least.
    The most compressible genuine JPEG (one grey, quality 1, optimised tables) is far above the bound."""
    import io
    import struct

    from qgn.imagefile import open_image

    flat = tmp_path / "flat.jpg"
    Image.new("L", (2000, 2000), 128).save(flat, "JPEG", quality=1, optimize=True, progressive=progressive)
    with open_image(flat) as image:
        assert np.asarray(image).shape == (2000, 2000)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", progressive=progressive)
    data = bytearray(buffer.getvalue())
    frame = data.find(b"\xff\xc2" if progressive else b"\xff\xc0")
    struct.pack_into(">HH", data, frame + 5, 8000, 8000)  # height, width of the frame header
    claim = tmp_path / "claim.jpg"
    claim.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"claims 8000×8000 pixels, which no JPEG of \d+ bytes can hold"):
        with open_image(claim):
            pass


def multi_frame(path, kind: str):
    """Two different 12×8 pictures in one file: an animated GIF, PNG or WebP, or a two-page TIFF."""
    first = Image.new("P", (12, 8), 1)
    first.putpalette([0, 0, 0, 128, 64, 128, 0, 0, 142] + [0] * 759)
    second = first.copy()
    second.paste(2, (0, 0, 6, 8))
    frames = [first, second] if kind != "webp" else [first.convert("RGB"), second.convert("RGB")]
    options = {"webp": {"lossless": True}, "gif": {"duration": 100, "loop": 0}, "png": {"duration": 100}}
    frames[0].save(path, save_all=True, append_images=frames[1:], **options.get(kind, {}))
    with Image.open(path) as image:
        assert image.n_frames == 2
    return path


@pytest.mark.parametrize("kind", ["gif", "png", "webp", "tif"])
@pytest.mark.parametrize("reader", ["read_rgb", "read_label", "read_label_rgb", "upright_size", "mask", "image_mode",
                                    "probe"])
def test_a_file_of_several_pictures_is_refused_by_every_reader_not_read_as_its_first(tmp_path, kind, reader):
    """An animated GIF, PNG or WebP, or a multi-page TIFF, is several pictures: a label map or photo
    read as its first frame alone silently dropped the others (a stack of masks read as one, a
    photo annotated whose other frames the user meant). Every reader refuses it in one line that
    names the file and what to do."""
    import qgn.data.imageio as imageio
    import qgn.quadtree.label_io as label_io
    from qgn.formats.base import MaskProbe, read_rgb as read_mask
    from qgn.formats.source import image_mode
    from qgn.imagefile import upright_size

    path = multi_frame(tmp_path / f"two frames.{kind}", kind)
    read = {"read_rgb": imageio.read_rgb, "read_label": label_io.read_label, "upright_size": upright_size,
            "read_label_rgb": imageio.read_label_rgb, "mask": read_mask, "image_mode": image_mode,
            "probe": lambda p: MaskProbe(p).mode}[reader]  # what import and format detection say
    with pytest.raises(ValueError, match=r"two frames\.\w+ holds more than one picture \(a.*\); .*save the picture "
                                         r"you mean as a file of its own"):
        read(path)


def test_a_camera_jpeg_with_previews_and_a_tiff_with_overviews_are_one_picture(tmp_path):
    """Not several pictures: an MPO JPEG (a camera's photo with its preview images; every viewer shows
    the first) and a TIFF whose later pages are reduced-resolution overviews (NewSubfileType 1, as
    in a cloud-optimised GeoTIFF) are read as their full picture."""
    from qgn.data.imageio import read_rgb
    from qgn.imagefile import upright_size

    photo = np.random.default_rng(0).integers(0, 255, (8, 12, 3), np.uint8)
    Image.fromarray(photo).save(tmp_path / "camera.jpg", "MPO", save_all=True,
                                append_images=[Image.new("RGB", (6, 4))], quality=100, subsampling=0)
    with Image.open(tmp_path / "camera.jpg") as image:
        assert image.format == "MPO" and image.n_frames == 2
    assert read_rgb(tmp_path / "camera.jpg").shape == (8, 12, 3)
    overview = Image.new("RGB", (6, 4))
    overview.encoderinfo = {"tiffinfo": {254: 1}}
    Image.fromarray(photo).save(tmp_path / "cog.tif", save_all=True, append_images=[overview])
    with Image.open(tmp_path / "cog.tif") as image:
        assert image.n_frames == 2
        image.seek(1)
        assert image.tag_v2.get(254) == 1
    np.testing.assert_array_equal(read_rgb(tmp_path / "cog.tif"), photo)
    assert upright_size(tmp_path / "cog.tif") == (12, 8)


@pytest.mark.parametrize("reader", ["read_rgb", "read_label", "read_label_rgb", "upright_size"])
def test_a_postscript_file_is_refused_without_running_ghostscript(tmp_path, monkeypatch, reader):
    """Pillow reads an EPS by running Ghostscript on it, whatever the file is called: a PostScript
    ``{} loop`` named photo.png kept ``qgn serve`` (a task's image) or ``qgn predict`` busy for good,
    and the gs process outlived qgn. No reader runs it; the file is named with the fix."""
    import qgn.data.imageio as imageio
    import qgn.imagefile as imagefile
    import qgn.quadtree.label_io as label_io
    from PIL import EpsImagePlugin

    ran = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: ran.append(a) or (_ for _ in ()).throw(
        AssertionError("Ghostscript was run")))
    eps = tmp_path / "photo.png"
    eps.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{} loop\n")
    module = {"read_label": label_io, "upright_size": imagefile}.get(reader, imageio)
    with pytest.raises(ValueError, match=r"photo\.png is PostScript.*PNG"):
        getattr(module, reader)(eps)
    assert not ran


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _adam7_png(path, values: np.ndarray, cut: int = 0):
    """An 8-bit RGB PNG of ``values`` (H, W, 3) interlaced (Adam7, PNG spec 8.2: each pass's rows
    from (x0, y0) every (dx, dy), filter 0), written here byte by byte - Pillow's writer ignores
    interlace=1 - its data without the last ``cut`` rows of its last pass (a truncated file)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = values.shape[:2]
    rows = [b"\x00" + row.tobytes() for x0, y0, dx, dy in ADAM7 for row in values[y0::dy, x0::dx] if row.size]
    raw = b"".join(rows[:len(rows) - cut])
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    assert path.read_bytes()[28] == 1  # the header's interlace method: Adam7
    return path


def _claiming_more_rows(path, width: int, height: int, mode: str = "RGB", interlace: int = 0, seed: int = 5):
    """A genuine PNG of ``mode`` (random pixels, or black rows where ``seed`` is None), its header then
    made to claim one row more than its data holds (the CRC made right): a file whose header lies.
    ``interlace``: Adam7 (RGB only, ``_adam7_png``) of ``height`` + 1 rows, its data a row short
    (its last pass's last row: with the rows of ``height``, the passes would not fit the header)."""
    import struct
    import zlib

    rng = np.random.default_rng(seed)
    bands = len(Image.new(mode, (1, 1)).getbands())
    shape = (height, width) if bands == 1 else (height, width, bands)
    values = np.zeros(shape, np.uint8) if seed is None else rng.integers(0, 4 if mode == "P" else 255, shape,
                                                                         dtype=np.uint8)
    if interlace:
        return _adam7_png(path, np.concatenate([values, values[:1]]), cut=1)
    Image.fromarray(values, mode).save(path)
    data = path.read_bytes()
    body = b"IHDR" + struct.pack(">II", width, height + 1) + data[24:29]
    path.write_bytes(data[:8] + struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body)) + data[33:])
    return path


@pytest.mark.parametrize("mode, interlace, seed", [("RGB", 0, 5), ("RGBA", 0, 5), ("L", 0, 5), ("P", 0, 5),
                                                   ("RGB", 1, 5), ("RGB", 0, None)])
def test_a_photo_png_whose_header_claims_more_rows_than_its_data_is_refused(tmp_path, monkeypatch, mode, interlace,
                                                                           seed):
    """A photo PNG whose header claims more rows than its data was read with the missing rows as
    zeros (Pillow's decoder ends at the data's end without a word: the check of its ZipDecode.c is
    commented out), and predicted. Refused, naming the file; a whole file of black rows still reads."""
    from qgn.data.imageio import read_label_rgb, read_rgb

    path = _claiming_more_rows(tmp_path / "a.png", 12, 8, mode, interlace, seed)
    for reader in (read_rgb, read_label_rgb):
        with pytest.raises(ValueError, match=r"a\.png: its header claims 12×9 pixels"):
            reader(path)
    whole = tmp_path / "whole.png"
    values = np.zeros((8, 12, 3), np.uint8) if seed is None else np.random.default_rng(3).integers(0, 255, (8, 12, 3),
                                                                                                   dtype=np.uint8)
    if interlace:  # a genuine Adam7 file reads as its pixels
        _adam7_png(whole, values)
        assert Image.open(whole).info.get("interlace") == 1
    else:
        Image.fromarray(values).convert(mode).save(whole)
    if not interlace and seed is not None:  # decoded once: the data stream is not inflated a second time
        import qgn.imagefile

        def second_pass(path):
            raise AssertionError(f"{path} inflated twice")

        monkeypatch.setattr(qgn.imagefile, "check_png_rows", second_pass)
    assert read_rgb(whole).shape == (8, 12, 3)
    assert np.array_equal(read_rgb(whole), np.asarray(Image.open(whole).convert("RGB")))
    if interlace:
        assert np.array_equal(read_rgb(whole), values)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_read_stops_between_two_blocks_of_its_file_when_told(tmp_path, suffix):
    """A 24-megapixel photo is one decode (~0.5-0.9 s, seconds under load) that nothing could stop:
    ``read_rgb(path, should_stop)`` polls ``should_stop`` before each block of the file the decoder
    takes (64 KiB), and ImageReadStopped ends the read at the first true; never told to stop, it
    reads what a read without it reads."""
    from qgn.data.imageio import read_rgb
    from qgn.imagefile import ImageReadStopped

    pixels = np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8)  # ~1.4 MB as PNG
    path = tmp_path / f"noise{suffix}"
    Image.fromarray(pixels).save(path, quality=95)
    polls = []
    assert np.array_equal(read_rgb(path, lambda: polls.append(1) and False), read_rgb(path))
    assert len(polls) >= path.stat().st_size // (64 << 10)  # (at least one a block)
    asked = []
    with pytest.raises(ImageReadStopped):
        read_rgb(path, lambda: asked.append(1) or len(asked) > 3)
    assert len(asked) == 4  # stopped at the poll that said so


def _can_write(fmt: str) -> bool:
    """Whether this Pillow can save ``fmt`` (AVIF, JPEG 2000 and WebP need optional codecs)."""
    from PIL import features

    needs = {"WEBP": "webp", "AVIF": "avif", "JPEG2000": "jpg_2000"}.get(fmt)
    Image.init()
    return fmt in Image.SAVE and (needs is None or bool(features.check(needs)))


@pytest.mark.parametrize("fmt, suffix, options, stops", [
    ("PNG", ".png", {}, True), ("JPEG", ".jpg", {"quality": 95}, True), ("GIF", ".gif", {}, True),
    ("TIFF", ".tif", {}, True), ("TIFF", ".tiff", {"compression": "tiff_lzw"}, False), ("BMP", ".bmp", {}, True),
    ("TGA", ".tga", {}, True), ("PPM", ".ppm", {}, True), ("WEBP", ".webp", {"lossless": True}, True),
    ("WEBP", ".webp", {"quality": 80}, True), ("AVIF", ".avif", {}, True), ("JPEG2000", ".jp2", {}, False),
])
def test_a_read_that_may_stop_reads_every_format_as_a_read_without(tmp_path, fmt, suffix, options, stops):
    """``should_stop`` must change nothing for a read never told to stop, whatever the format: the
    hook once saved the file's read when it was set up, and Pillow's WebP and AVIF readers close
    that file and read from a copy in memory, so every .webp said "read of closed file". Told to
    stop, every format whose blocks Pillow reads stops; libtiff (a compressed TIFF) and OpenJPEG
    read the file themselves, so today those are read whole (polling_reads): they must stop or
    return the whole image, equal to the read never told to stop - never a part of it."""
    from qgn.data.imageio import read_rgb
    from qgn.imagefile import ImageReadStopped

    if not _can_write(fmt):
        pytest.skip(f"this Pillow cannot write {fmt}")
    pixels = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    path = tmp_path / f"a{suffix}"
    Image.fromarray(pixels).save(path, fmt, **options)
    whole = read_rgb(path)
    assert whole.shape == (48, 64, 3)
    assert np.array_equal(read_rgb(path, lambda: False), whole)
    if stops:
        with pytest.raises(ImageReadStopped):
            read_rgb(path, lambda: True)
    else:
        try:
            told_to_stop = read_rgb(path, lambda: True)
        except ImageReadStopped:
            return
        assert np.array_equal(told_to_stop, whole)


@pytest.mark.parametrize("fmt, suffix, options", [("AVIF", ".avif", {}), ("WEBP", ".webp", {}),
                                                  ("WEBP", ".webp", {"lossless": True})])
def test_an_avif_or_webp_smaller_than_a_bit_a_pixel_opens(tmp_path, fmt, suffix, options):
    """Pillow's AVIF reader (an older Pillow's WebP reader too) names its pixels a "raw" tile: libavif
    decodes them into memory, which the tile is read from, not the file. Bounded as pixels stored
    uncompressed (a bit a pixel at the least), a flat 800×600 AVIF of 407 bytes was refused as
    "truncated or corrupt" - and so is any AVIF photo under a bit a pixel, as most are."""
    from qgn.data.imageio import read_rgb

    if not _can_write(fmt):
        pytest.skip(f"this Pillow cannot write {fmt}")
    path = tmp_path / f"flat{suffix}"
    Image.fromarray(np.full((600, 800, 3), 120, np.uint8)).save(path, fmt, **options)
    assert path.stat().st_size * 8 < 800 * 600  # under a bit a pixel
    got = read_rgb(path)
    assert got.shape == (600, 800, 3) and np.abs(got.astype(int) - 120).max() <= 2
