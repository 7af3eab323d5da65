"""A symbolic link loop wherever a command resolves a path (an output folder or file, a dataset's
list entry, an --images sub-folder, --record, --out) is one line naming the link and the fix, exit 2,
or one skipped batch item: ``Path.resolve`` raises RuntimeError for a loop, which ended each of these
as 'unexpected RuntimeError' with a log (``qgn.fileio.resolved``)."""
from __future__ import annotations

import os

import pytest

from qgn.data.synthetic import SYNTHETIC_CLASSES
from qgn_studio.testing import write_samples


def _loop(path):
    """``path`` and ``path.b``: two links pointing at each other."""
    os.symlink(path.name + ".b", path)
    os.symlink(path.name, path.with_name(path.name + ".b"))
    return path


def _said_loop(code, _out, err, name):
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[")]
    assert code == 2 and "unexpected" not in err, err
    assert lines[-1].startswith("qgn ") and ": error: " in lines[-1] and name in lines[-1], err
    assert "loop of symbolic links" in lines[-1] and "remove the link" in lines[-1], err


@pytest.fixture
def samples(tmp_path, run_cli):
    root = tmp_path / "ds"
    write_samples(root, 2, (48, 64))
    (root / "classes.txt").write_text("\n".join(SYNTHETIC_CLASSES.names) + "\n")
    assert run_cli("convert", root / "labels", tmp_path / "qgt")[0] == 0
    assert run_cli("import", root, "--project", tmp_path / "p")[0] == 0
    return root


def test_convert_into_an_output_folder_that_is_a_loop(tmp_path, samples, run_cli):
    _said_loop(*run_cli("convert", samples / "labels", _loop(tmp_path / "out")), "out")


def test_export_of_qgt_files_with_a_loop_among_the_output_pngs_replaces_the_link(tmp_path, samples, run_cli):
    """The loop stands where the export also looks for the .qgt's image (beside it)."""
    qgt = next((tmp_path / "qgt").glob("*.qgt"))
    out = qgt.parent
    _loop(out / f"{qgt.stem}.png")
    code, _, err = run_cli("export", out, "--png", out)
    assert code == 0, err
    assert (out / f"{qgt.stem}.png").is_file() and not (out / f"{qgt.stem}.png").is_symlink()


def test_project_export_into_an_output_whose_format_folder_is_a_loop(tmp_path, samples, run_cli):
    (tmp_path / "o").mkdir()
    _loop(tmp_path / "o" / "png")
    _said_loop(*run_cli("export", "--project", tmp_path / "p", "--formats", "png", "--out", tmp_path / "o"), "png")


def test_project_export_onto_an_output_file_that_is_a_loop(tmp_path, samples, run_cli):
    (tmp_path / "o" / "png").mkdir(parents=True)
    name = sorted(p.stem for p in (samples / "images").iterdir())[0]
    _loop(tmp_path / "o" / "png" / f"{name}.png")
    _said_loop(*run_cli("export", "--project", tmp_path / "p", "--formats", "png", "--out", tmp_path / "o"), name)


def test_export_with_images_whose_sub_folder_is_a_loop_finds_the_image_by_name(tmp_path, samples, run_cli):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    qgt = next((tmp_path / "qgt").glob("*.qgt"))
    (tree / "sub" / qgt.name).write_bytes(qgt.read_bytes())
    images = tmp_path / "imgs"
    images.mkdir()
    for photo in (samples / "images").iterdir():
        (images / photo.name).write_bytes(photo.read_bytes())
    _loop(images / "sub")
    code, _, err = run_cli("export", tree, "--format", "coco", "--out", tmp_path / "o", "--images", images)
    assert code == 0, err
    assert qgt.stem in (tmp_path / "o" / "coco" / "annotations.json").read_text() if (tmp_path / "o" / "coco").is_dir() \
        else any(qgt.stem in p.read_text() for p in (tmp_path / "o").rglob("*.json"))


def test_camvid_list_naming_a_loop_is_one_skipped_item(tmp_path, samples, run_cli):
    root = tmp_path / "cv"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    names = sorted(p.name for p in (samples / "images").iterdir())
    for name in names:
        (root / "images" / name).write_bytes((samples / "images" / name).read_bytes())
    from PIL import Image

    Image.new("RGB", (64, 48), (70, 130, 180)).save(root / "labels" / names[1])
    _loop(root / "labels" / names[0])
    (root / "label_colors.txt").write_text("70 130 180 sky\n")
    (root / "train.txt").write_text("".join(f"/images/{n} /labels/{n}\n" for n in names))
    code, out, err = run_cli("import", root, "--format", "camvid", "--project", tmp_path / "cp")
    assert "unexpected" not in err and "imported 1 of 2" in out, (out, err)
    assert names[0].rsplit(".", 1)[0] in err


def test_eval_record_that_is_a_loop(tmp_path, samples, run_cli):
    _said_loop(*run_cli("eval", "--model", "demo", "--limit", "1", "--record", _loop(tmp_path / "r.safetensors"), samples),
               "r.safetensors")


def test_finetune_out_that_is_a_loop(tmp_path, samples, run_cli):
    _said_loop(*run_cli("finetune", "--model", "demo", "--images", samples / "images", "--labels", samples / "labels",
                        "--out", _loop(tmp_path / "m.safetensors"), "--iters", "1"), "m.safetensors")
