"""Opening image files, the one way every reader does it: one pixel limit, EXIF orientation, and a
ValueError that names the file for anything that is not a readable image.

The pixel limit (``max_pixels()``) guards every image and label reader against decompression bombs:
a 140 KB PNG can claim 12000×12000 pixels, and decoding it needs gigabytes. The default,
``DEFAULT_MAX_PIXELS`` = 2**26 (8192×8192, 64 megapixels), is set higher or lower with the
environment variable ``QGN_MAX_PIXELS`` (a pixel count, e.g. ``QGN_MAX_PIXELS=200000000``).
The size is checked from the file header, before any pixel is decoded.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from PIL import Image, ImageOps, UnidentifiedImageError

from qgn.env import env_count
from qgn.fileio import check_regular_file, missing_file_error, os_error_text

DEFAULT_MAX_PIXELS = 1 << 26
MAX_PIXELS_ENV = "QGN_MAX_PIXELS"
ORIENTATION_TAG = 0x0112  # EXIF "Orientation"
NEW_SUBFILE_TYPE = 254  # TIFF: bit 0 a reduced-resolution version of another page, bit 2 a transparency mask
NOT_A_PAGE = 0b101
#: TIFF directories looked at for a second page; a file with more is taken for a stack of pages.
MAX_TIFF_DIRECTORIES = 64


#: The picture files QGN opens as images, by suffix, each with the Pillow feature (``PIL.features``)
#: that reads it (None: Pillow's own code): JPEG (and a camera's MPO), PNG, TIFF, BMP, WebP, AVIF,
#: JPEG 2000, GIF, TGA and the PNM family. Formats Pillow reads that are no photo (icons, textures,
#: Photoshop layers, PostScript, which ``open_image`` refuses) are left out of folder listings.
IMAGE_SUFFIX_FEATURES: tuple[tuple[str, str | None], ...] = (
    (".jpg", "jpg"), (".jpeg", "jpg"), (".jpe", "jpg"), (".jfif", "jpg"), (".mpo", "jpg"),
    (".png", "zlib"), (".tif", None), (".tiff", None), (".bmp", None), (".webp", "webp"), (".avif", "avif"),
    (".jp2", "jpg_2000"), (".j2k", "jpg_2000"), (".j2c", "jpg_2000"), (".jpc", "jpg_2000"), (".jpf", "jpg_2000"),
    (".jpx", "jpg_2000"), (".gif", None), (".tga", None), (".ppm", None), (".pgm", None), (".pbm", None),
    (".pnm", None),
)


def image_suffixes(reads: Callable[[str], bool] | None = None) -> tuple[str, ...]:
    """The suffixes of ``IMAGE_SUFFIX_FEATURES`` whose feature this Pillow has (``reads(feature)``;
    default ``PIL.features.check``, a feature this Pillow does not know being absent: Pillow before
    11.2 has no AVIF reader, a build without OpenJPEG or libwebp none for JPEG 2000 or WebP)."""
    if reads is None:
        from PIL import features

        known = {*features.modules, *features.codecs, *features.features}
        reads = lambda feature: feature in known and bool(features.check(feature))  # noqa: E731
    return tuple(suffix for suffix, feature in IMAGE_SUFFIX_FEATURES if feature is None or reads(feature))


#: The one list of the files every finder of images by name takes (a dataset folder, an import's
#: images, ``qgn predict``'s folders, the app's folders), lower case: compare ``path.suffix.lower()``.
#: Each opens through ``qgn.data.imageio.read_rgb`` with this Pillow (tests/data/test_image_suffixes.py).
#: Label maps have their own readers and lists.
IMAGE_EXTENSIONS: tuple[str, ...] = image_suffixes()


class ImageTooLargeError(ValueError):
    """An image with more pixels than ``max_pixels()``."""


class ImageReadStopped(Exception):
    """A read its caller's ``should_stop()`` stopped (``load_checked``): no error, nothing of it kept."""


class SeveralPicturesError(ValueError):
    """A file of several pictures (``check_one_picture``): readable, but not as one image."""


def max_pixels() -> int:
    """The pixel limit: ``QGN_MAX_PIXELS`` when set (a positive integer), else DEFAULT_MAX_PIXELS."""
    return env_count(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS, "pixel count", example=100000000)


#: Bytes per pixel that reading and holding a label map or photo takes at the least.
BYTES_PER_PIXEL = 4


def plausible_pixels(pixels: int) -> bool:
    """Whether an image of ``pixels`` pixels could be genuine here: it would fit in this machine's
    memory (at ``BYTES_PER_PIXEL``). A header claiming more is corrupt or built to exhaust memory."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        memory = 1 << 40
    return pixels * BYTES_PER_PIXEL <= memory


def check_pixels(width: int, height: int, source) -> None:
    """ImageTooLargeError when ``width × height`` exceeds ``max_pixels()``. The message suggests
    raising the limit only for a size that could fit in memory; a larger claim is called corrupt."""
    limit = max_pixels()
    pixels = width * height
    if pixels > limit:
        if plausible_pixels(pixels):
            advice = f"if the image is genuine and memory allows, set {MAX_PIXELS_ENV}={pixels}"
        else:
            advice = ("no image that large fits in this machine's memory: the file is corrupt or its header "
                      "lies about its size")
        raise ImageTooLargeError(
            f"{source} is {width}×{height} = {pixels / 1e6:.{'1f' if pixels < 1e15 else '3g'}} megapixels, more than the limit of "
            f"{limit / 1e6:.1f} ({MAX_PIXELS_ENV}); {advice}"
        )


# Deflate never expands data by more than this factor (a 258-byte match in two bits at best):
# a PNG's pixels cannot come from fewer bytes than their size over it.
DEFLATE_MAX_RATIO = 1032


def check_compressed_size(image: Image.Image, path: Path) -> None:
    """ValueError when the file is too small to hold the pixels its header claims, however well
    they compress, checked before Pillow allocates them. A PNG: a few bytes claiming 1×67,000,000
    pixels made Pillow allocate 600 MB of row pointers before finding the data missing; each row
    is at least a filter byte and one bit a pixel (the least any PNG stores). Uncompressed pixels
    (BMP, PPM, TGA, an uncompressed TIFF's strips: Pillow's "raw" tiles) are in the file at one bit
    a pixel at the least, from where the header says they start: a 154-byte BMP claiming 8000×8000
    made ``qgn predict`` allocate 190 MB. A Huffman-coded JPEG codes each 8×8 block's DC value in a
    bit at the least (``least_jpeg_bytes``): 519 bytes claiming 8000×8000 were decoded as that many
    grey pixels and predicted. A GIF's LZW codes are 3 bits at the least and none stands for more
    than its table's 4096 entries of pixels (``GIF_MAX_PIXELS_PER_BYTE``). No bound refuses a
    genuine file. Other formats (WebP's zero-bit codes, an arithmetic-coded JPEG's, a compressed
    TIFF's fax codes) have none: not checked - nor AVIF and WebP, whose "raw" tile is of the pixels
    libavif/libwebp decode into memory (``DECODED_IN_MEMORY``), not of the file."""
    if image.format in DECODED_IN_MEMORY:
        return
    size = path.stat().st_size
    if image.format == "JPEG":
        least = least_jpeg_bytes(path, image.width, image.height)
        if size < least:
            raise ValueError(f"{path} claims {image.width}×{image.height} pixels, which no JPEG of {size} bytes can "
                             f"hold (at least {least}; truncated or corrupt)")
        return
    if image.format == "PNG":
        least = image.height * (1 + (image.width + 7) // 8)
        if size * DEFLATE_MAX_RATIO < least:
            raise ValueError(f"{path} claims {image.width}×{image.height} pixels, which no PNG of {size} bytes can "
                             "hold (truncated or corrupt)")
        return
    for tile in getattr(image, "tile", None) or ():
        codec, (x0, y0, x1, y1), offset = tile[0], tile[1], tile[2]
        ratio = {"raw": 8, "gif": GIF_MAX_PIXELS_PER_BYTE}.get(codec)
        if ratio is not None and (size - offset) * ratio < (x1 - x0) * (y1 - y0):
            how = "uncompressed" if codec == "raw" else f"as {image.format}"
            raise ValueError(f"{path} claims {image.width}×{image.height} pixels stored {how}, which its "
                             f"{size} bytes cannot hold (truncated or corrupt)")


#: Formats whose Pillow reader names its pixels a "raw" tile but reads them from what its library
#: decoded into memory (AVIF; WebP in an older Pillow built without libwebp's animation API): a
#: 407-byte AVIF of 800×600 is genuine.
DECODED_IN_MEMORY = ("AVIF", "WEBP")

#: The most pixels one byte of GIF data can stand for: 8/3 codes of 3 bits, each at most 4096 pixels.
GIF_MAX_PIXELS_PER_BYTE = 4096 * 8 // 3

#: JPEG frame markers whose scans are Huffman-coded (baseline, extended, progressive, lossless).
HUFFMAN_FRAMES = (0xC0, 0xC1, 0xC2, 0xC3)
#: A JPEG component's blocks are at most this many times coarser than the image's, each way.
MAX_SAMPLING = 4


def least_jpeg_bytes(path: Path, width: int, height: int) -> int:
    """The fewest bytes a JPEG of ``width`` × ``height`` with Huffman-coded scans can hold: a bit for
    the DC value of each 8×8 block of a component sampled at the coarsest JPEG allows (Huffman codes
    are a bit long at the least). 0 for a frame of another kind (arithmetic-coded, hierarchical)
    or a header this reader cannot walk: those are not bounded."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != b"\xff\xd8":
                return 0
            for _ in range(256):  # segments before the frame: APPn, DQT, DHT, COM …
                marker = f.read(2)
                while marker[:1] == b"\xff" and marker[1:] == b"\xff":  # fill bytes
                    marker = marker[1:] + f.read(1)
                if len(marker) < 2 or marker[0] != 0xFF or marker[1] == 0xDA:
                    return 0
                if 0xC0 <= marker[1] <= 0xCF and marker[1] not in (0xC4, 0xC8, 0xCC):
                    if marker[1] not in HUFFMAN_FRAMES:
                        return 0
                    blocks = -(-width // (8 * MAX_SAMPLING)) * -(-height // (8 * MAX_SAMPLING))
                    return blocks // 8
                length = int.from_bytes(f.read(2), "big")
                if length < 2:
                    return 0
                f.seek(length - 2, os.SEEK_CUR)
    except OSError:
        return 0
    return 0


@contextmanager
def open_image(path: str | os.PathLike) -> Iterator[Image.Image]:
    """``PIL.Image.open(path)`` with the pixel limit checked from the header (nothing decoded yet).

    FileNotFoundError for a missing file; ValueError naming the file for an empty, unreadable,
    corrupt or too large one, or for a named pipe or device (``check_regular_file``: Pillow would
    wait on a pipe for ever). Decoding errors inside the block (truncated data) become ValueError too."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an image file")
    if not path.exists():
        raise missing_file_error(path)
    check_regular_file(path)
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty")
    try:
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # our limit, checked below
        try:
            image = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = previous
    except UnidentifiedImageError:
        raise ValueError(f"{path} is not a readable image (Pillow reads PNG, JPEG, TIFF, BMP, WebP, …; is it one?)") from None
    except (OSError, SyntaxError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:  # the system's: said for a person
            raise ValueError(f"{path} could not be read: {os_error_text(OSError(exc.errno, exc.strerror))}") from None
        raise ValueError(f"{path} could not be read as an image: {exc}") from None
    with image:
        check_not_postscript(image, path)
        check_pixels(image.width, image.height, path)
        check_compressed_size(image, path)
        check_one_picture(image, path)
        try:
            yield image
        except (OSError, SyntaxError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"{path} could not be decoded (corrupt or truncated image?): {exc}") from None


def check_not_postscript(image: Image.Image, path: Path) -> None:
    """ValueError for a PostScript (EPS) file, whatever its name: Pillow decodes one by running
    Ghostscript on it, and a file's PostScript may loop for ever (``{} loop``) — a task image
    holding it kept ``qgn serve`` busy for good, its gs process outliving qgn — or do worse."""
    if image.format == "EPS":
        raise ValueError(f"{path} is PostScript (EPS), not a picture file QGN reads: it would have to run "
                         "Ghostscript on it; convert it to a PNG or JPEG first")


def check_one_picture(image: Image.Image, path: Path) -> None:
    """ValueError when the file holds several pictures: an animated GIF, PNG or WebP, a multi-page
    TIFF. Read as its first frame alone, the others would be dropped without a word (a stack of
    masks read as one). A camera's MPO JPEG (its previews beside the photo) and a TIFF's
    reduced-resolution overviews and masks are one picture. Read from the headers (a GIF's up to
    its second frame); the file is left at its first frame."""
    if image.format == "MPO" or not getattr(image, "is_animated", False):
        return
    if image.format == "TIFF":
        pages = 0
        try:
            for index in range(MAX_TIFF_DIRECTORIES):
                image.seek(index)
                pages += not int(image.tag_v2.get(NEW_SUBFILE_TYPE, 0)) & NOT_A_PAGE
                if pages > 1:
                    break
        except EOFError:
            pass
        finally:
            image.seek(0)
        if pages <= 1 and index < MAX_TIFF_DIRECTORIES - 1:
            return
    kind = "a multi-page TIFF" if image.format == "TIFF" else f"an animated {image.format}"
    raise SeveralPicturesError(f"{path} holds more than one picture ({kind}); QGN reads one picture a file and would silently "
                     "use the first alone: save the picture you mean as a file of its own (e.g. a PNG)")


def oriented(image: Image.Image) -> Image.Image:
    """``image`` turned upright by its EXIF orientation tag (a no-op without one), as cameras and
    image viewers show it. Photos are read upright everywhere; label files carry no orientation."""
    try:
        orientation = image.getexif().get(ORIENTATION_TAG, 1)
    except (OSError, SyntaxError, ValueError):  # a damaged EXIF block: show the pixels as stored
        return image
    if orientation in (None, 1):
        return image  # no copy of a large image that needs no turning
    return ImageOps.exif_transpose(image)


def upright_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the image as read upright (EXIF orientations 5–8 swap the stored sides),
    from the header alone."""
    with open_image(path) as image:
        try:
            orientation = image.getexif().get(ORIENTATION_TAG, 1)
        except (OSError, SyntaxError, ValueError):
            orientation = 1
        return (image.height, image.width) if orientation in (5, 6, 7, 8) else (image.width, image.height)


_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def check_png_rows(path: str | os.PathLike) -> None:
    """ValueError when the PNG ``path``'s image data holds fewer rows than its header claims: PIL
    fills the rows a data stream that ends early lacks with zeros, without a word (a label PNG whose
    header said 12×9 over 12×8 rows of data was imported with a ninth row of class 0). Counts the
    data's bytes as zlib inflates them, holding none of them; nothing for a file that is no PNG."""
    import struct
    import zlib

    with open(path, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            return
        head = f.read(25)
        if len(head) < 25 or head[4:8] != b"IHDR":
            return
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", head[8:21])
        bits = depth * _PNG_CHANNELS.get(colour, 1)
        passes = _ADAM7 if interlace == 1 else ((0, 0, 1, 1),)
        expected = 0
        for x0, y0, dx, dy in passes:
            cols, rows = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
            if cols > 0 and rows > 0:
                expected += rows * (1 + (cols * bits + 7) // 8)
        inflate, got = zlib.decompressobj(), 0
        while True:
            chunk_head = f.read(8)
            if len(chunk_head) < 8:
                break
            length, kind = struct.unpack(">I4s", chunk_head)
            if kind == b"IEND":
                break
            if kind != b"IDAT":
                f.seek(length + 4, os.SEEK_CUR)
                continue
            data = f.read(length)
            f.read(4)
            try:
                while data and got <= expected:
                    got += len(inflate.decompress(data, 1 << 20))
                    data = inflate.unconsumed_tail
            except zlib.error:
                return  # damaged data: the decoder says so itself
            if got > expected:
                break
    if got < expected:
        raise ValueError(f"{path}: its header claims {width}×{height} pixels but its data holds only "
                         f"{got} of their {expected} bytes (rows missing: the header lies or the file is cut); "
                         "save the image again")


#: What a PNG's image memory holds before it is decoded (``load_checked``): Pillow decodes into it
#: and leaves the rows its data never reaches as they were; a value that no whole row is likely to
#: hold (black, white, a flat grey are common), so that a last row still holding it was most likely
#: never written.
UNWRITTEN = (0xA5, 0x5A, 0xC3, 0x3C)


def polling_reads(image: Image.Image, should_stop: Callable[[], bool] | None) -> None:
    """Make ``image.load()`` poll ``should_stop()`` before each block of the file it hands its
    decoder (Pillow's ``decodermaxblock``, 64 KiB), and raise ImageReadStopped at the first true.
    Through Pillow's ``load_read`` hook: the reader's own (PNG's, JPEG's), else the read of the file
    the image holds when the block is read - looked up then, not now: Pillow's WebP and AVIF readers
    close the file and put a copy of the decoded pixels in its place before reading blocks.

    Where a read can stop (read_rgb of 24-megapixel files, a loaded 2-core machine): only while the
    file's blocks are read, never during what comes before or after them (the copy to RGB, an
    EXIF turn). A PNG through most of its read (each block is inflated as it is read: polls up to
    0.7-1.4 s of 1.2-1.7 s); a JPEG (an MPO too) in its first third or so (0.24-0.28 s of 0.8-0.9 s:
    libjpeg then decodes what it holds); an uncompressed TIFF, BMP, TGA or PPM in its first part (to
    0.07-0.19 s of 0.2-0.5 s: the pixels are copied, then converted); a GIF, PCX, SGI or PSD, an
    RLE TGA and a DXT/BC-compressed DDS throughout (each block is decoded as it is read); a WebP or
    AVIF only after its decode, one step of libwebp/libavif before any block (first poll 0.6-0.8 s
    into a 1.0-1.1 s WebP read, 1.3-1.7 s into a 1.6-2.1 s AVIF read, as its decoded pixels are
    copied). Never: a compressed TIFF (LZW, Deflate, JPEG, PackBits …) or a JPEG 2000 (libtiff,
    OpenJPEG read the file themselves), a QOI, an uncompressed DDS or a BLP (Pillow's Python
    decoders, which read the file themselves), an ICO or ICNS (each read through an inner image of
    its own, whose reads are not hooked). Nothing when ``should_stop`` is None or the image is read
    already."""
    if should_stop is None or getattr(image, "fp", None) is None:
        return
    own = getattr(image, "load_read", None)

    def polled(size: int) -> bytes:
        if should_stop():
            raise ImageReadStopped(f"reading {getattr(image, 'filename', 'the image')} was stopped")
        return own(size) if own is not None else image.fp.read(size)

    image.load_read = polled


def load_checked(image: Image.Image, path: str | os.PathLike,
                 should_stop: Callable[[], bool] | None = None) -> None:
    """``image.load()`` (an image of ``open_image``), and ValueError naming the file where a PNG's
    data ends before the rows its header claims: Pillow's decoder ends at the data's end without a
    word (ZipDecode.c's check that "the image and the data should end simultaneously" is commented
    out), so the missing rows read as zeros - black in a photo, class 0 in a label map. The image
    memory is filled with ``UNWRITTEN`` before Pillow decodes into it, and the data stream is
    inflated a second time (``check_png_rows``) only where the last row still holds it - missing
    rows, or a genuine row of that one value - or where the rows come interlaced (each pass
    writes some of every row). A file cut short fails in Pillow itself ("image file is truncated").
    ``should_stop``: polled as the file's blocks are read (``polling_reads``)."""
    polling_reads(image, should_stop)
    if image.format != "PNG" or getattr(image, "_im", None) is not None:
        image.load()
        return
    width, height = image.size
    try:
        fill = UNWRITTEN[0] if len(image.getbands()) == 1 else UNWRITTEN[:len(image.getbands())]
        unwritten = Image.new(image.mode, (width, 1), fill).tobytes()  # a row of it, to compare with
        image.im = Image.new(image.mode, (width, height), fill).im  # Pillow decodes into it (load_prepare)
    except (ValueError, TypeError, AttributeError):  # a mode Image.new cannot fill, another Pillow: counted instead
        unwritten = None
    image.load()
    if unwritten is None or image.info.get("interlace") or height == 0 or width == 0 \
            or image.crop((0, height - 1, width, height)).tobytes() == unwritten:
        check_png_rows(path)
