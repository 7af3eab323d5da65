"""Dataset loaders on tiny fake directory layouts (and CamVid from ../shared/data when present)."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.data import DATASET_NAMES, DatasetLayoutError, LabelSizeError, open_dataset
from qgn.data.ade20k import ADE20K_CLASSES, ADE20kDataset
from qgn.data.camvid import CAMVID_CLASSES, CamVidDataset
from qgn.data.cityscapes import CITYSCAPES_CLASSES, CityscapesDataset
from qgn.classes import parse_classes_txt
from qgn.data.folder import FolderDataset
from qgn.data.imageio import read_rgb
from qgn.data.sunrgbd import SUNRGBDDataset
from qgn.data.synthetic import SyntheticDataset

CAMVID_ROOT = Path(__file__).parents[2] / "../shared/data/camvid"


def write_image(path: Path, array: np.ndarray) -> Path:
    """Write an array with Pillow (format from the suffix), creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def rgb_noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# Cityscapes


def make_cityscapes(
    root: Path, split: str, label: np.ndarray, city: str = "aachen", stem: str = "aachen_000000_000019"
) -> None:
    h, w = label.shape
    write_image(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", rgb_noise(h, w))
    write_image(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", label.astype(np.uint8))


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path: Path) -> None:
    label_ids = np.array([[7, 26, 0, 33], [23, 24, 4, 255], [8, 11, 17, 1]], dtype=np.uint8)
    make_cityscapes(tmp_path, "val", label_ids)
    dataset = CityscapesDataset(tmp_path, "val")
    assert len(dataset) == 1
    sample = dataset[0]
    expected = np.array([[0, 13, 255, 18], [10, 11, 255, 255], [1, 2, 5, 255]])
    np.testing.assert_array_equal(sample.label, expected)
    assert sample.label.dtype == np.int64
    assert sample.image.shape == (3, 4, 3) and sample.image.dtype == np.uint8
    assert sample.name == "aachen_000000_000019"
    assert dataset.classes is CITYSCAPES_CLASSES
    assert CITYSCAPES_CLASSES.num_classes == 19 and CITYSCAPES_CLASSES.ignore_index == 255
    assert CITYSCAPES_CLASSES.names[0] == "road" and CITYSCAPES_CLASSES.palette[0] == (128, 64, 128)
    assert CITYSCAPES_CLASSES.names[13] == "car" and CITYSCAPES_CLASSES.palette[13] == (0, 0, 142)


def test_cityscapes_wrong_layout_says_what_was_expected_where(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError) as error:
        CityscapesDataset(tmp_path, "train")
    expected = str(tmp_path / "leftImg8bit" / "train" / "*" / "*_leftImg8bit.png")
    assert f"expected images under {expected}; found none" in str(error.value)

    make_cityscapes(tmp_path, "val", np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(DatasetLayoutError, match="has: val"):
        CityscapesDataset(tmp_path, "train")


def test_cityscapes_missing_label_names_the_expected_file(tmp_path: Path) -> None:
    make_cityscapes(tmp_path, "train", np.zeros((2, 2), dtype=np.uint8))
    write_image(tmp_path / "leftImg8bit/train/bonn/bonn_000001_000019_leftImg8bit.png", rgb_noise(2, 2))
    with pytest.raises(DatasetLayoutError) as error:
        CityscapesDataset(tmp_path, "train")
    assert "1 of 2 images have no label file" in str(error.value)
    assert str(tmp_path / "gtFine/train/bonn/bonn_000001_000019_gtFine_labelIds.png") in str(error.value)


def test_size_mismatch_names_the_label_file(tmp_path: Path) -> None:
    make_cityscapes(tmp_path, "train", np.zeros((4, 6), dtype=np.uint8))
    label_path = tmp_path / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"
    write_image(label_path, np.zeros((5, 6), dtype=np.uint8))
    dataset = CityscapesDataset(tmp_path, "train")
    with pytest.raises(LabelSizeError) as error:
        dataset[0]
    assert str(label_path) in str(error.value) and "6×5" in str(error.value) and "6×4" in str(error.value)


# ---------------------------------------------------------------------------------------------
# ADE20K, SUN RGB-D, CamVid


def test_ade20k_label_zero_is_ignore_and_ids_shift_down(tmp_path: Path) -> None:
    root = tmp_path / "ADEChallengeData2016"
    write_image(root / "images/validation/ADE_val_00000001.jpg", rgb_noise(3, 4))
    write_image(root / "annotations/validation/ADE_val_00000001.png",
                np.array([[0, 1, 2, 150], [3, 0, 149, 151], [1, 1, 1, 1]], dtype=np.uint8))
    for split_name, dataset_root in (("validation", root), ("val", tmp_path)):
        sample = ADE20kDataset(dataset_root, split_name)[0]
        np.testing.assert_array_equal(sample.label, [[255, 0, 1, 149], [2, 255, 148, 255], [0, 0, 0, 0]])
    assert ADE20K_CLASSES.num_classes == 150 and len(set(ADE20K_CLASSES.names)) == 150
    assert ADE20K_CLASSES.names[:3] == ("wall", "building", "sky") and ADE20K_CLASSES.names[-1] == "flag"
    expected = r"expected images under .*images/training/\*.jpg; found none"
    with pytest.raises(DatasetLayoutError, match=expected):
        ADE20kDataset(root, "train")
    with pytest.raises(ValueError, match="split 'testing' unknown"):
        ADE20kDataset(root, "testing")


@pytest.mark.parametrize("num_classes", [13, 37])
def test_sunrgbd_variants(tmp_path: Path, num_classes: int) -> None:
    write_image(tmp_path / "image/test/img-000001.jpg", rgb_noise(2, 3))
    raw = np.array([[0, 1, num_classes], [2, num_classes + 1, 5]], dtype=np.uint8)
    write_image(tmp_path / f"label{num_classes}/test/img-000001.png", raw)
    dataset = SUNRGBDDataset(tmp_path, "val", num_classes=num_classes)  # val is an alias of test
    np.testing.assert_array_equal(dataset[0].label, [[255, 0, num_classes - 1], [1, 255, 4]])
    assert dataset.classes.num_classes == num_classes and dataset.classes.ignore_index == 255
    other = 37 if num_classes == 13 else 13
    with pytest.raises(DatasetLayoutError, match=f"expected .*label{other}/test/img-000001.png"):
        SUNRGBDDataset(tmp_path, "test", num_classes=other)


def test_camvid_fake_layout_keeps_ids_and_void(tmp_path: Path) -> None:
    write_image(tmp_path / "train/images/0001TP_006690.jpg", rgb_noise(3, 4))
    write_image(tmp_path / "train/labels/0001TP_006690.png", np.arange(12, dtype=np.uint8).reshape(3, 4))
    dataset = CamVidDataset(tmp_path, "train")
    np.testing.assert_array_equal(dataset[0].label, np.arange(12).reshape(3, 4))
    assert dataset.classes.ignore_index == 11 and dataset.classes.names[2] == "pole"
    with pytest.raises(DatasetLayoutError, match=r"expected images under .*val/images/\*\.jpg; found none"):
        CamVidDataset(tmp_path, "val")


@pytest.mark.data
@pytest.mark.skipif(not CAMVID_ROOT.is_dir(), reason="../shared/data/camvid not present")
def test_camvid_real_data() -> None:
    train, val = CamVidDataset(CAMVID_ROOT, "train"), open_dataset(CAMVID_ROOT, "val")
    assert (len(train), len(val)) == (367, 101)
    assert val.classes is CAMVID_CLASSES
    for dataset in (train, val):
        for image_path, label_path in dataset.pairs:
            raw = dataset.read_raw_label(label_path)
            assert raw.shape == (360, 480) and raw.max() <= 11
    sample = val[0]
    assert sample.image.shape == (360, 480, 3) and sample.label.dtype == np.int64
    assert 0 <= sample.label.min() and sample.label.max() <= 11


# ---------------------------------------------------------------------------------------------
# Generic folder


def test_classes_txt_parsing() -> None:
    classes = parse_classes_txt("# comment\nroad 128 64 128\n\ntraffic light 250 170 30\nsky\nignore: 11\n")
    assert classes.names == ("road", "traffic light", "sky")
    assert classes.palette[:2] == ((128, 64, 128), (250, 170, 30))
    assert classes.ignore_index == 11
    assert parse_classes_txt("a\nb").ignore_index == 255
    assert parse_classes_txt("a\nb\nignore: none").ignore_index is None
    with pytest.raises(ValueError, match="collides"):
        parse_classes_txt("a\nb\nignore: 1")


def test_folder_converts_any_image_mode_to_rgb(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("background\nthing 255 0 0\nignore: 255\n")
    gray16 = np.array([[0, 65535], [257 * 100, 257 * 7]], dtype=np.uint16)
    write_image(tmp_path / "images/a_gray16.png", gray16)
    write_image(tmp_path / "images/b_rgba.png", np.dstack([rgb_noise(2, 2), np.zeros((2, 2), np.uint8)]))
    write_image(tmp_path / "images/c_gray.png", np.array([[1, 2], [3, 4]], dtype=np.uint8))
    palette_image = Image.fromarray(np.array([[0, 1], [1, 0]], dtype=np.uint8))
    palette_image.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)  # L → P
    palette_image.save(tmp_path / "images/d_palette.png")
    for stem in ("a_gray16", "b_rgba", "c_gray", "d_palette"):
        write_image(tmp_path / f"labels/{stem}.png", np.array([[0, 1], [255, 1]], dtype=np.uint8))
    dataset = FolderDataset(tmp_path)
    assert [s.name for s in dataset] == ["a_gray16", "b_rgba", "c_gray", "d_palette"]
    for sample in dataset:
        assert sample.image.shape == (2, 2, 3) and sample.image.dtype == np.uint8
        np.testing.assert_array_equal(sample.label, [[0, 1], [255, 1]])
    np.testing.assert_array_equal(dataset[0].image[..., 0], [[0, 255], [100, 7]])
    np.testing.assert_array_equal(dataset[2].image[..., 1], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(dataset[3].image[0, 1], [40, 50, 60])
    assert Image.open(tmp_path / "images/d_palette.png").mode == "P"
    assert Image.open(tmp_path / "images/a_gray16.png").mode.startswith("I")
    np.testing.assert_array_equal(read_rgb(tmp_path / "images/b_rgba.png"), dataset[1].image)


def test_folder_colour_coded_labels_and_bad_values(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("road 128 64 128\ncar 0 0 142\n")
    write_image(tmp_path / "images/x.jpg", rgb_noise(1, 3))
    colours = np.array([[[128, 64, 128], [0, 0, 142], [0, 0, 0]]], dtype=np.uint8)
    write_image(tmp_path / "labels/x.png", colours)
    np.testing.assert_array_equal(FolderDataset(tmp_path)[0].label, [[0, 1, 255]])
    write_image(tmp_path / "labels/x.png", np.array([[0, 1, 7]], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"labels/x.png has values \[7\]; expected 0..1 or 255"):
        FolderDataset(tmp_path)[0]


def test_folder_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=f"expected class names in {tmp_path}/classes.txt"):
        FolderDataset(tmp_path)
    (tmp_path / "classes.txt").write_text("a\nb\n")
    with pytest.raises(DatasetLayoutError, match=f"expected a folder {tmp_path}/images"):
        FolderDataset(tmp_path)
    write_image(tmp_path / "images/one.png", rgb_noise(2, 2))
    (tmp_path / "labels").mkdir()
    with pytest.raises(DatasetLayoutError, match=f"expected {tmp_path}/labels/one.png for"):
        FolderDataset(tmp_path)


# ---------------------------------------------------------------------------------------------
# Registry and DataLoader compatibility


def test_open_dataset_by_name_path_and_detection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cityscapes, folder = tmp_path / "cs", tmp_path / "mine"
    make_cityscapes(cityscapes, "train", np.full((2, 2), 7, dtype=np.uint8))
    (folder / "classes.txt").parent.mkdir(parents=True)
    (folder / "classes.txt").write_text("a\nb\n")
    write_image(folder / "images/p.png", rgb_noise(2, 2))
    write_image(folder / "labels/p.png", np.zeros((2, 2), dtype=np.uint8))
    assert isinstance(open_dataset("cityscapes", "train", root=cityscapes), CityscapesDataset)
    assert isinstance(open_dataset(f"cityscapes:{cityscapes}", "train"), CityscapesDataset)
    assert isinstance(open_dataset(cityscapes, "train"), CityscapesDataset)
    assert isinstance(open_dataset(folder, "train"), FolderDataset)
    assert isinstance(open_dataset("folder", root=folder), FolderDataset)
    synthetic = open_dataset("synthetic", "val", n=3, size=32)
    assert isinstance(synthetic, SyntheticDataset) and len(synthetic) == 3
    assert set(DATASET_NAMES) == {
        "cityscapes", "ade20k", "sunrgbd13", "sunrgbd37", "camvid", "folder", "synthetic"
    }
    monkeypatch.setenv("QGN_DATA", str(tmp_path))
    monkeypatch.setattr("qgn.data.registry.SHARED_DATA", tmp_path / "no_shared_data")
    (tmp_path / "cityscapes").symlink_to(cityscapes)
    assert isinstance(open_dataset("cityscapes", "train"), CityscapesDataset)
    with pytest.raises(DatasetLayoutError, match="'ade20k' needs a root folder.*tried"):
        open_dataset("ade20k", "val")
    with pytest.raises(DatasetLayoutError, match="neither a dataset name"):
        open_dataset(tmp_path / "nowhere", "val")
    with pytest.raises(DatasetLayoutError, match="cannot tell the dataset layout"):
        open_dataset(tmp_path, "val")


def test_datasets_work_with_torch_dataloader() -> None:
    from torch.utils.data import DataLoader

    from qgn.data.transforms import collate

    dataset = SyntheticDataset(3, seed0=5, size=(40, 70))
    loader = DataLoader(dataset, batch_size=2, collate_fn=functools.partial(collate, ignore_index=255))
    batches = list(loader)
    assert [tuple(b.images.shape) for b in batches] == [(2, 3, 64, 96), (1, 3, 64, 96)]
    assert batches[0].names == ["synthetic_000005", "synthetic_000006"]
