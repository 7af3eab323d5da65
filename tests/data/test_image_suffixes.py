"""The one list of the files QGN opens as images (``qgn.imagefile.IMAGE_EXTENSIONS``): each suffix
listed opens through ``read_rgb`` on a file this Pillow writes, and every place that finds images by
their names - a dataset folder, an import's images, ``qgn predict``'s folders, the app's folders -
finds every one of them, in any case (``a.AVIF``)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, features

#: Suffixes the four finders once left out (each had its own list, none of them these) while
#: ``read_rgb`` opened the file: a folder of AVIFs was "no images in this folder".
ONCE_LEFT_OUT = (".avif", ".mpo", ".jp2", ".AVIF", ".JP2", ".Mpo")
#: The Pillow feature each of those needs (PIL.features): a Pillow without it reads none of them.
NEEDS = {".avif": "avif", ".mpo": "jpg", ".jp2": "jpg_2000"}


def picture() -> np.ndarray:
    """(48, 64, 3) uint8: flat 16×16 blocks of distinct colours (few colours, so that a GIF keeps
    them all; flat, so that lossy codecs keep them nearly)."""
    colours = np.random.default_rng(7).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    return np.repeat(np.repeat(colours, 16, axis=0), 16, axis=1)


def write(path, pixels: np.ndarray) -> np.ndarray:
    """Save ``pixels`` to ``path`` as Pillow saves a file by that name; the RGB it holds (a PBM's
    black and white, a PGM's grey), to compare a read with."""
    image = Image.fromarray(pixels)
    suffix = path.suffix.lower()
    if suffix == ".pbm":
        image = image.convert("L").point(lambda v: 255 if v > 127 else 0).convert("1", dither=Image.Dither.NONE)
    elif suffix == ".pgm":
        image = image.convert("L")
    image.save(path)
    return np.asarray(image.convert("RGB"))


def skip_unless_readable(suffix: str) -> None:
    need = NEEDS.get(suffix.lower())
    if need is not None and not features.check(need):
        pytest.skip(f"this Pillow reads no {suffix} files (no {need})")


def listed() -> tuple[str, ...]:
    from qgn.imagefile import IMAGE_EXTENSIONS

    return IMAGE_EXTENSIONS


@pytest.mark.parametrize("suffix", listed())
def test_every_suffix_listed_opens_through_read_rgb_in_either_case(tmp_path, suffix):
    from qgn.data.imageio import read_rgb

    for name in (f"a{suffix}", f"b{suffix.upper()}"):
        expected = write(tmp_path / name, picture())
        got = read_rgb(tmp_path / name)
        assert got.shape == (48, 64, 3) and got.dtype == np.uint8, (name, got.shape, got.dtype)
        error = np.abs(got.astype(int) - expected.astype(int)).mean()
        assert error < 6, f"{name}: mean error {error:.1f} against what was written"


def test_the_list_is_of_lower_case_suffixes_pillow_names_and_holds_what_it_reads():
    """Lower case (compared with ``path.suffix.lower()``), each one Pillow reads by that name (not
    PostScript, which QGN refuses), and the JPEG 2000, AVIF and MPO files this Pillow reads."""
    from qgn.imagefile import IMAGE_EXTENSIONS

    Image.init()
    pillow = Image.registered_extensions()
    assert all(s == s.lower() and s.startswith(".") for s in IMAGE_EXTENSIONS), IMAGE_EXTENSIONS
    assert len(set(IMAGE_EXTENSIONS)) == len(IMAGE_EXTENSIONS)
    opener = {"MPO": "JPEG"}  # Pillow's JPEG reader opens an MPO file (and makes it an MpoImageFile)
    unknown = [s for s in IMAGE_EXTENSIONS
               if s not in pillow or opener.get(pillow[s], pillow[s]) not in Image.OPEN or pillow[s] == "EPS"]
    assert not unknown, unknown
    for suffix, need in NEEDS.items():
        assert (suffix in IMAGE_EXTENSIONS) == features.check(need), suffix
    assert {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".ppm", ".pgm"} <= set(IMAGE_EXTENSIONS)


def test_a_suffix_this_pillow_cannot_read_is_left_out():
    """Pillow 10 and 11.0-11.1 have no AVIF reader, and a Pillow built without OpenJPEG or libwebp
    reads no JPEG 2000 or WebP: such a suffix is not listed, so that no folder lists a file that
    then fails to open."""
    from qgn.imagefile import image_suffixes

    everything = image_suffixes(lambda feature: True)
    assert {".avif", ".jp2", ".webp", ".mpo"} <= set(everything)
    without = image_suffixes(lambda feature: feature not in ("avif", "jpg_2000"))
    assert ".avif" not in without and ".jp2" not in without and ".j2k" not in without
    assert set(everything) - set(without) == {".avif", ".jp2", ".j2k", ".j2c", ".jpc", ".jpf", ".jpx"}


@pytest.mark.parametrize("suffix", ONCE_LEFT_OUT)
def test_the_apps_folder_lists_every_image_it_opens(tmp_path, suffix):
    from qgn_studio.discovery import expand_paths

    skip_unless_readable(suffix)
    write(tmp_path / f"a{suffix}", picture())
    images, models, problems = expand_paths([tmp_path])
    assert images == [(tmp_path / f"a{suffix}").resolve()] and not problems, (images, problems)


@pytest.mark.parametrize("suffix", ONCE_LEFT_OUT)
def test_predict_finds_every_image_it_opens_under_a_folder(tmp_path, suffix):
    from qgn.cli.predict import collect_images

    skip_unless_readable(suffix)
    write(tmp_path / f"a{suffix}", picture())
    assert collect_images([str(tmp_path)]) == [tmp_path / f"a{suffix}"]


@pytest.mark.parametrize("suffix", ONCE_LEFT_OUT)
def test_a_folder_dataset_pairs_every_image_it_opens(tmp_path, suffix):
    from qgn.data.folder import FolderDataset

    skip_unless_readable(suffix)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "classes.txt").write_text("road\nsky\n")
    expected = write(tmp_path / "images" / f"a{suffix}", picture())
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(tmp_path / "labels" / "a.png")
    dataset = FolderDataset(tmp_path)
    assert len(dataset) == 1
    sample = dataset[0]
    assert sample.name == "a" and sample.image.shape == expected.shape
    assert np.abs(sample.image.astype(int) - expected.astype(int)).mean() < 6


@pytest.mark.parametrize("suffix", ONCE_LEFT_OUT)
def test_an_import_finds_every_image_it_opens_by_name(tmp_path, suffix):
    from qgn.formats.source import find_image

    skip_unless_readable(suffix)
    write(tmp_path / f"a{suffix}", picture())
    assert find_image("a", tmp_path) == tmp_path / f"a{suffix}"
    assert find_image(f"a{suffix}", tmp_path) == tmp_path / f"a{suffix}"
