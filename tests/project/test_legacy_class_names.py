"""Class names saved before the importers refused them at the door ("é" in NFC beside "é" in NFD,
a tab, spaces around a name) still open, read, autosave and take class edits: the door's rules
(``qgn.classes.check_class_names``, ``door_name_key``) are for the names that enter — an
importer's, a classes file's, a new or renamed class — never for what a user has saved. Such
projects and .qgt files are made here with the door's checks switched off, as the code before
them wrote them."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
from PIL import Image

import qgn.classes
from qgn.classes import ClassSet
from qgn.classes_edit import add_class, recolour_class, rename_class
from qgn.project import Project
from qgn.project_class_edit import apply_class_edit
from qgn.quadtree import Quadtree, read_qgt, write_qgt

NFC, NFD = "caf\u00e9", "cafe\u0301"
LEGACY = {"nfc-nfd": (NFC, NFD, "road"), "tab": ("a\tb", "road"), "spaces": (" car", "road")}


@contextlib.contextmanager
def as_before(monkeypatch):
    """The code before the door: class names checked only for repeats (trimmed, case ignored)."""
    def old_rule(names, source, lines=None, key=None):
        seen = set()
        for name in names:
            assert name.strip().casefold() not in seen
            seen.add(name.strip().casefold())

    with monkeypatch.context() as patch:
        patch.setattr(qgn.classes, "check_unique_names", old_rule)
        patch.setattr(qgn.classes, "check_class_names", old_rule)
        yield


def legacy_label(k: int) -> np.ndarray:
    """Every class of a k-class set and ignore (255), in bands: the pixels a rename must keep."""
    out = np.full((8, 12), 255, np.uint8)
    for i in range(k):
        out[:, 3 * i:3 * i + 3] = i
    return out


def legacy_project(root, names, monkeypatch) -> Project:
    image = root.parent / "img.png"
    Image.new("RGB", (12, 8)).save(image)
    with as_before(monkeypatch):
        project = Project.create(root, [image], ClassSet(names, (), 255))
        project.save_annotation(project.images[0], legacy_label(len(names)))
        project.autosave(project.images[0], legacy_label(len(names))[::-1].copy())
    return project


@pytest.mark.parametrize("kind", LEGACY)
def test_a_project_saved_with_names_the_door_now_refuses_opens_with_its_annotations(tmp_path, monkeypatch, kind):
    """'café' in NFC and in NFD were two classes of a project: opening it said 'bad "classes"'."""
    names = LEGACY[kind]
    legacy_project(tmp_path / "p", names, monkeypatch)
    project = Project.open(tmp_path / "p")
    assert project.classes.names == names
    np.testing.assert_array_equal(project.load_annotation(project.images[0]), legacy_label(len(names)))


@pytest.mark.parametrize("kind", LEGACY)
def test_a_qgt_saved_with_names_the_door_now_refuses_reads(tmp_path, monkeypatch, kind):
    """A .qgt holding 'café' twice (NFC, NFD) read as 'corrupt: class block'."""
    names = LEGACY[kind]
    lab = legacy_label(len(names)) % 255  # every class, no ignore
    with as_before(monkeypatch):
        write_qgt(tmp_path / "a.qgt", Quadtree.from_label(lab, len(names)), ClassSet(names, (), 255))
    qt, classes = read_qgt(tmp_path / "a.qgt")
    assert classes.names == names
    np.testing.assert_array_equal(qt.to_label(), lab)


def test_one_of_an_nfc_nfd_pair_can_be_renamed_and_not_into_its_twin(tmp_path, monkeypatch):
    legacy_project(tmp_path / "p", LEGACY["nfc-nfd"], monkeypatch)
    project = Project.open(tmp_path / "p")
    with pytest.raises(ValueError, match="there is already a class"):  # the door's rule for a new name
        rename_class(project.classes, 1, "CAF\u00c9")
    apply_class_edit(project, rename_class(project.classes, 1, "cafe (decomposed)"))
    again = Project.open(tmp_path / "p")
    assert again.classes.names == (NFC, "cafe (decomposed)", "road")
    np.testing.assert_array_equal(again.load_annotation(again.images[0]), legacy_label(3))


@pytest.mark.parametrize("kind", ["tab", "spaces"])
def test_a_class_edit_of_another_class_passes_an_inherited_name_through(tmp_path, monkeypatch, kind):
    """Recolouring 'road' refused because of ' car' ("the edited class set: … has spaces around it")."""
    names = LEGACY[kind]
    legacy_project(tmp_path / "p", names, monkeypatch)
    project = Project.open(tmp_path / "p")
    apply_class_edit(project, recolour_class(project.classes, 1, (0, 255, 0)))
    apply_class_edit(project, add_class(Project.open(tmp_path / "p").classes, "lane"))
    again = Project.open(tmp_path / "p")
    assert again.classes.names == names + ("lane",) and again.classes.palette[1] == (0, 255, 0)
    np.testing.assert_array_equal(again.load_annotation(again.images[0]), legacy_label(2))
    with pytest.raises(ValueError, match="holds a line break"):  # a name the user adds still meets the door
        add_class(again.classes, "la\nne")
    apply_class_edit(again, rename_class(again.classes, 0, " ".join(names[0].split())))  # the legacy name itself
    assert Project.open(tmp_path / "p").classes.names[0] == {"tab": "a b", "spaces": "car"}[kind]


@pytest.mark.parametrize("kind", LEGACY)
def test_the_autosave_projects_of_inherited_names_are_made(tmp_path, monkeypatch, kind):
    """A loose .qgt's scratch project and a read-only project's stand-in were refused (a ValueError
    the app did not catch: 'No autosave', and edits had nowhere to go); so was 'save as project'."""
    from qgn_studio.scratch import scratch_project, stand_in

    names = LEGACY[kind]
    with as_before(monkeypatch):
        classes = ClassSet(names, (), 255)
    scratch = scratch_project(tmp_path / "scratch", classes)
    assert scratch.classes == classes and scratch_project(tmp_path / "scratch", classes).root == scratch.root
    project = legacy_project(tmp_path / "p", names, monkeypatch)
    standing = stand_in(tmp_path / "stand", Project.open(project.root), True)
    assert standing.classes == project.classes
    assert Project.open(standing.root).classes.names == names


def test_relabel_checks_only_the_names_it_renames_and_the_message_fits_the_app(monkeypatch):
    from qgn.classes import parse_classes_txt
    from qgn.classes_edit import relabel

    with as_before(monkeypatch):
        before = ClassSet((" car", "road"), (), 255)
    assert relabel(before, ClassSet((" car", "street"), (), 255)).after.names == (" car", "street")
    with pytest.raises(ValueError, match="holds a tab"):
        relabel(before, ClassSet((" car", "str\teet"), (), 255))
    with pytest.raises(ValueError, match="there is already a class"):  # a rename into an NFD twin
        relabel(ClassSet(("\u00e9", "b"), (), 255), ClassSet(("\u00e9", "e\u0301"), (), 255))
    with pytest.raises(ValueError) as caught:  # typed in the class dialog: no file to correct
        parse_classes_txt("road\nsk\x1by\n", "the class list")
    assert "the class list line 2" in str(caught.value) and "in the file" not in str(caught.value)


EXPORT_FORMATS = ("cvat", "voc", "cityscapes", "camvid", "coco", "labelme", "labelstudio", "fiftyone")


@pytest.mark.parametrize("kind", [*LEGACY, "nl"])
def test_an_export_of_names_no_importer_reads_back_is_refused_in_one_line_before_writing(
        tmp_path, monkeypatch, run_cli, kind):
    """A project of such names exported files QGN's own import refused (or, in CVAT, a message that
    did not name tabs or twins): every format now refuses it, naming the class and the way out, and
    writes nothing."""
    names = LEGACY.get(kind, ("line\nbreak", "road"))
    project = legacy_project(tmp_path / "p", names, monkeypatch)
    bad = NFD if kind == "nfc-nfd" else names[0]
    for fmt in EXPORT_FORMATS:
        out = tmp_path / f"out-{fmt}"
        code, stdout, err = run_cli("export", "--project", project.root, "--formats", fmt, "--out", out,
                                    "--include-images", "copy")
        assert code == 2 and len(err.strip().splitlines()) == 1, (fmt, stdout, err)
        assert repr(bad) in err and "rename" in err and "in the project first" in err, (fmt, err)
        assert not out.exists() or not any(out.rglob("*")), (fmt, sorted(out.rglob("*")))
    code, stdout, err = run_cli("export", "--project", project.root, "--formats", ",".join(EXPORT_FORMATS),
                                "--out", tmp_path / "all")
    assert code == 2 and repr(bad) in err and not any((tmp_path / "all").rglob("*")), err


def test_a_project_of_names_the_door_takes_exports_every_format_and_imports_back(tmp_path, run_cli):
    """The same export, of names that are fine, still writes and reads back (the refusal is only theirs)."""
    image = tmp_path / "img.png"
    Image.new("RGB", (12, 8)).save(image)
    project = Project.create(tmp_path / "p", [image], ClassSet((NFC, "a b", "road"), (), 255))
    project.save_annotation(project.images[0], legacy_label(3))
    for fmt in EXPORT_FORMATS:
        code, stdout, err = run_cli("export", "--project", project.root, "--formats", fmt, "--out", tmp_path / fmt,
                                    "--include-images", "copy")
        assert code == 0, (fmt, err)
        code, stdout, err = run_cli("import", tmp_path / fmt / fmt, "--format", fmt, "--project", tmp_path / f"b-{fmt}")
        assert code == 0, (fmt, stdout, err)


@pytest.mark.parametrize("kind", LEGACY)
def test_qgn_s_own_files_of_such_names_still_export(tmp_path, monkeypatch, run_cli, kind):
    """A .qgt (and the leaves JSON) reads saved names as a project does: their export is not refused."""
    project = legacy_project(tmp_path / "p", LEGACY[kind], monkeypatch)
    code, stdout, err = run_cli("export", "--project", project.root, "--formats", "qgt,json", "--out", tmp_path / "o")
    assert code == 0, err
    assert read_qgt(next((tmp_path / "o" / "qgt").rglob("*.qgt")))[1].names == LEGACY[kind]


def legacy_qgts(folder, names, monkeypatch, count: int = 3):
    """``count`` .qgt files of ``names`` with an image beside each, as the code before the door wrote them."""
    folder.mkdir(parents=True)
    with as_before(monkeypatch):
        for i in range(count):
            write_qgt(folder / f"f{i:03d}.qgt", Quadtree.from_label(legacy_label(len(names)), len(names), 255),
                      ClassSet(names, (), 255))
            Image.new("RGB", (12, 8)).save(folder / f"f{i:03d}.png")
    return sorted(folder.glob("*.qgt"))


@pytest.mark.parametrize("formats", ["coco", "labelstudio,coco"])
def test_a_folder_dataset_export_of_such_names_is_refused_once_in_one_line(tmp_path, monkeypatch, run_cli, formats):
    """One dataset has one class set: its export was refused once per file (5,000 files: 5,001
    lines) with a project's advice; now one line naming the first file, with what fits loose .qgt
    files (no project to rename the class in), exit 2, nothing written."""
    files = legacy_qgts(tmp_path / "q", LEGACY["tab"], monkeypatch, count=12)
    out = tmp_path / "out"
    code, stdout, err = run_cli("export", tmp_path / "q", "--format", formats, "--out", out)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"qgn export: error: {files[0]}: the class 'a\\tb' holds a tab"), err
    assert "in the project first" not in err and "--png MASKS" in err and "qgn convert MASKS NEW" in err, err
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))


def test_a_per_file_export_of_such_names_says_the_refusal_once(tmp_path, monkeypatch, run_cli):
    """Each file is still tried (its own classes decide), but the same refusal is said once, then
    one line naming the others, then the count."""
    files = legacy_qgts(tmp_path / "q", LEGACY["nfc-nfd"], monkeypatch, count=12)
    other = legacy_qgts(tmp_path / "q" / "sub", LEGACY["spaces"], monkeypatch, count=2)
    out = tmp_path / "out"
    code, stdout, err = run_cli("export", tmp_path / "q", "--format", "labelme", "--out", out)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 5, err  # two refusals, two "more files", the count
    assert lines[0].startswith(f"qgn export: error: {files[0]}: the classes {NFC!r} and {NFD!r}"), err
    assert lines[1].startswith(f"qgn export: error: {other[0]}: the class ' car'"), err
    assert err.count("no importer reads") == 1 and err.count("one name to every importer") == 1, err
    assert "11 more file(s) refused the same way" in err and "1 more file(s) refused the same way" in err, err
    assert "in the project first" not in err and "qgn convert" in err, err
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))
    code, stdout, err = run_cli("export", files[0], "--format", "labelme", "--out", out)  # one file: one line
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith(f"qgn export: error: {files[0]}: ")
    assert "--png MASKS/f000.png" in err and "qgn convert MASKS NEW" in err and "export NEW/f000.qgt" in err, err


def test_the_advice_for_loose_qgt_files_works(tmp_path, monkeypatch, run_cli):
    """What the refusal says to do (export the values as PNG, convert them back under a classes.txt
    of new names, export those) gives an export that QGN's own import reads back with the new names."""
    legacy_qgts(tmp_path / "q", LEGACY["tab"], monkeypatch)
    code, stdout, err = run_cli("export", tmp_path / "q", "--format", "coco", "--out", tmp_path / "refused")
    assert code == 2
    assert run_cli("export", tmp_path / "q", "--png", tmp_path / "MASKS")[0] == 0
    (tmp_path / "classes.txt").write_text("a b 10 20 30\nroad 40 50 60\nignore: 255\n")
    assert run_cli("convert", tmp_path / "MASKS", tmp_path / "NEW", "--classes", tmp_path / "classes.txt")[0] == 0
    code, stdout, err = run_cli("export", tmp_path / "NEW", "--format", "coco", "--out", tmp_path / "o",
                                "--images", tmp_path / "q")
    assert code == 0, err
    code, stdout, err = run_cli("import", tmp_path / "o", "--format", "coco", "--project", tmp_path / "p",
                                "--images", tmp_path / "q")
    assert code == 0, err
    project = Project.open(tmp_path / "p")
    assert project.classes.names == ("a b", "road") and len(project.images) == 3
    assert np.array_equal(project.load_annotation(project.images[0]), legacy_label(2))


@pytest.mark.parametrize("kind", LEGACY)
def test_id_and_palette_png_exports_of_such_names_still_export(tmp_path, monkeypatch, run_cli, kind):
    """ids PNGs hold no class name, and palette PNGs go without classes.txt when a name is one no
    importer reads back: their export is not refused (it was, with the door's export check)."""
    project = legacy_project(tmp_path / "p", LEGACY[kind], monkeypatch)
    for fmt in ("ids", "png", "ids,png"):
        out = tmp_path / fmt
        code, stdout, err = run_cli("export", "--project", project.root, "--formats", fmt, "--out", out)
        assert code == 0, (fmt, err)
        for name in fmt.split(","):
            written = sorted(p.name for p in (out / name).iterdir())
            assert written == ["img.png"], (fmt, written)  # no classes.txt another import would refuse
            assert np.array_equal(np.asarray(Image.open(out / name / "img.png")), legacy_label(len(LEGACY[kind])))
    files = legacy_qgts(tmp_path / "q", LEGACY[kind], monkeypatch)
    code, stdout, err = run_cli("export", tmp_path / "q", "--format", "ids,png", "--out", tmp_path / "fromqgt")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "fromqgt" / "png").iterdir()) == [f.with_suffix(".png").name
                                                                               for f in files]


def _run_the_advice(err: str, cwd, run_cli) -> None:
    """The commands the refusal prints (backticked, starting `qgn `), run as they stand in ``cwd``, FILE
    a classes.txt of new names: not commands of the test's own."""
    import re
    import shlex

    commands = [shlex.split(c) for c in re.findall(r"`(qgn [^`]*)`", err)]
    assert len(commands) == 3, err
    (cwd / "FILE").write_text("a b 10 20 30\nroad 40 50 60\nignore: 255\n")
    for argv in commands:
        code, stdout, out_err = run_cli(*argv[1:])
        assert code == 0, (argv, out_err)


@pytest.mark.parametrize("form", ["file", "folder"])
def test_the_advice_the_refusal_prints_runs_and_imports_back(tmp_path, monkeypatch, run_cli, form):
    """The single-file recipe named the item after NEW.qgt, so --images found no NEW.png (COCO listed
    NEW.png, exit 0, its import failed): the file's stem is kept through the commands now."""
    legacy_qgts(tmp_path / "q", LEGACY["tab"], monkeypatch)
    monkeypatch.chdir(tmp_path)
    src = "q/f001.qgt" if form == "file" else "q"
    code, stdout, err = run_cli("export", src, "--format", "coco", "--out", "out")
    assert code == 2, err
    _run_the_advice(err, tmp_path, run_cli)
    code, stdout, err = run_cli("import", "out", "--format", "coco", "--project", "p", "--images", "q")
    assert code == 0, err
    project = Project.open(tmp_path / "p")
    assert project.classes.names == ("a b", "road")
    assert sorted(im.key for im in project.images) == (["f001"] if form == "file" else ["f000", "f001", "f002"])
    assert np.array_equal(project.load_annotation(project.images[0]), legacy_label(2))



def test_the_advice_keeps_the_split_the_refused_export_named(tmp_path, monkeypatch, run_cli):
    """The recipe rebuilt the refused export with --format, --out and --images only: a Cityscapes
    export refused with --split val, redone as printed, wrote gtFine/train (the review)."""
    legacy_qgts(tmp_path / "q", LEGACY["tab"], monkeypatch, count=2)
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run_cli("export", "q", "--format", "cityscapes", "--split", "val", "--out", "out")
    assert code == 2, err
    _run_the_advice(err, tmp_path, run_cli)
    assert sorted(p.name for p in (tmp_path / "out" / "gtFine").iterdir()) == ["val"]

def test_images_of_a_tree_are_found_by_the_qgt_s_path_not_another_folder_s_stem(tmp_path, monkeypatch, run_cli):
    """--images was looked up by stem only: NEW/sub/f000.qgt got --images' top-level f000.png, another
    image's photo, exit 0. The path under the exported folder comes first; a stem shared by several
    exported files is no match on its own."""
    legacy_qgts(tmp_path / "q", LEGACY["tab"], monkeypatch, count=1)
    legacy_qgts(tmp_path / "q" / "sub", LEGACY["tab"], monkeypatch, count=2)
    colours = {"f000.png": (200, 0, 0), "sub/f000.png": (0, 200, 0), "sub/f001.png": (0, 0, 200)}
    for name, colour in colours.items():
        Image.new("RGB", (12, 8), colour).save(tmp_path / "q" / name)
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run_cli("export", "q", "--format", "camvid", "--out", "refused")
    assert code == 2, err
    _run_the_advice(err.replace("--format camvid --out refused", "--format camvid --out cv"), tmp_path, run_cli)
    got = {p.name: Image.open(p).convert("RGB").getpixel((0, 0)) for p in (tmp_path / "cv" / "default").glob("*.png")}
    assert got == {"f000.png": (200, 0, 0), "sub__f000.png": (0, 200, 0), "f001.png": (0, 0, 200)}, got
    (tmp_path / "q" / "sub" / "f000.png").unlink()  # only the other folder's f000 is left: no guess
    code, stdout, err = run_cli("export", "NEW", "--format", "camvid", "--out", "cv2", "--images", "q")
    assert code == 2 and "sub/f000.qgt" in err and "could be the image of several" in err, err


def test_a_png_export_without_classes_txt_is_refused_beside_another_s_list(tmp_path, monkeypatch, run_cli):
    """A png export of legacy names goes without classes.txt: into a folder holding another export's
    classes.txt it exited 0 and the import read its PNGs under the other's names. Refused in one
    line naming the file; the export without it says so and why."""
    legacy_qgts(tmp_path / "q", LEGACY["tab"], monkeypatch, count=2)
    good = tmp_path / "good"
    good.mkdir()
    write_qgt(good / "g0.qgt", Quadtree.from_label(np.zeros((8, 12), np.uint8), 2, 255),
              ClassSet(("car", "sky"), (), 255))
    out = tmp_path / "mix"
    code, stdout, err = run_cli("export", good, "--format", "png", "--out", out)
    assert code == 0, err
    before = sorted(p.name for p in out.iterdir())
    code, stdout, err = run_cli("export", tmp_path / "q", "--format", "png", "--out", out)
    assert code == 2 and "export into an empty folder" in err, err
    assert err.splitlines()[0].count(str(out)) == 1, err
    assert sorted(p.name for p in out.iterdir()) == before
    code, stdout, err = run_cli("export", tmp_path / "q", "--format", "png", "--out", tmp_path / "alone")
    assert code == 0 and "go without classes.txt" in err and "holds a tab" in err and "--classes" in err, err


def test_a_png_export_into_a_folder_of_pngs_without_a_list_goes_on(tmp_path, run_cli):
    """PNGs without classes.txt in the folder - an export by QGN 0.2.0 (which wrote none), or one
    killed before its finish wrote it - are no reason to refuse exporting there again (a review of
    the guard that refused them: a killed export blocked its retry for good)."""
    good = tmp_path / "good"
    good.mkdir()
    for i in range(2):
        write_qgt(good / f"g{i}.qgt", Quadtree.from_label(np.full((8, 12), i, np.uint8), 2, 255),
                  ClassSet(("car", "sky"), (), 255))
    out = tmp_path / "out"
    code, _stdout, err = run_cli("export", good, "--format", "png", "--out", out)
    assert code == 0, err
    (out / "classes.txt").unlink()  # as 0.2.0 left it, or a kill before the finish
    code, _stdout, err = run_cli("export", good, "--format", "png", "--out", out)
    assert code == 0, err
    listed = (out / "classes.txt").read_text()
    assert "car" in listed and "sky" in listed


def test_the_app_s_export_result_says_the_pngs_went_without_classes_txt(tmp_path, monkeypatch):
    from qgn.project_export import export_project

    project = legacy_project(tmp_path / "p", LEGACY["tab"], monkeypatch)
    exported = export_project(project, tmp_path / "out", ["png"])
    assert [p.name for p in exported] == ["img.png"]
    assert len(exported.notes) == 1 and "go without classes.txt" in exported.notes[0], exported.notes


def _good_qgts(folder, count: int = 2, prefix: str = "g"):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_qgt(folder / f"{prefix}{i}.qgt", Quadtree.from_label(np.full((8, 12), i, np.uint8), 2, 255),
                  ClassSet(("car", "sky"), (), 255))


def test_a_png_export_with_a_list_is_refused_beside_another_export_s_list_less_pngs(tmp_path, monkeypatch, run_cli):
    """The other order of the relabel hole: a png export of legacy names went without classes.txt, and
    a later png export with a list into that folder wrote its classes.txt beside the earlier PNGs,
    which an import then read under the later names (exit 0). Refused in one line naming the PNG
    this export would not overwrite; nothing written."""
    legacy_qgts(tmp_path / "q", LEGACY["tab"], monkeypatch, count=2)
    _good_qgts(tmp_path / "good")
    out = tmp_path / "mix"
    code, _stdout, err = run_cli("export", tmp_path / "q", "--format", "png", "--out", out)
    assert code == 0 and "go without classes.txt" in err, err
    before = sorted(p.name for p in out.iterdir())
    code, _stdout, err = run_cli("export", tmp_path / "good", "--format", "png", "--out", out)
    assert code == 2 and "export into an empty folder" in err and "f000.png" in err, err
    assert err.splitlines()[0].count(str(out)) == 1, err
    assert sorted(p.name for p in out.iterdir()) == before


def test_a_project_s_png_export_with_a_list_is_refused_beside_list_less_pngs_it_does_not_write(tmp_path,
                                                                                               monkeypatch):
    """The app's and `qgn export --project`'s path: the same refusal, before anything is written."""
    from qgn.formats.base import FolderRefusedError
    from qgn.project_export import export_project

    image = tmp_path / "img.png"
    Image.new("RGB", (12, 8)).save(image)
    project = Project.create(tmp_path / "p", [image], ClassSet(("car", "sky"), (), 255))
    project.save_annotation(project.images[0], np.zeros((8, 12), np.uint8))
    (tmp_path / "out" / "png").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 12), np.uint8), "P").save(tmp_path / "out" / "png" / "other.png")
    with pytest.raises(FolderRefusedError, match="other.png"):
        export_project(project, tmp_path / "out", ["png"])
    assert sorted(p.name for p in (tmp_path / "out" / "png").iterdir()) == ["other.png"]


def test_a_png_export_into_a_0_2_0_export_or_a_killed_one_s_folder_still_goes_on(tmp_path):
    """A 0.2.0 export (no classes.txt) of this project, or one killed before its finish, left PNGs of
    this export's own names only: re-exporting there replaces them and writes the list."""
    from qgn.project_export import export_project

    images = []
    for i in range(2):
        images.append(tmp_path / f"img{i}.png")
        Image.new("RGB", (12, 8)).save(images[-1])
    project = Project.create(tmp_path / "p", images, ClassSet(("car", "sky"), (), 255))
    for im in project.images:
        project.save_annotation(im, np.ones((8, 12), np.uint8))
    export_project(project, tmp_path / "out", ["png"])
    (tmp_path / "out" / "png" / "classes.txt").unlink()  # as 0.2.0 left it
    exported = export_project(project, tmp_path / "out", ["png"])
    assert sorted(p.name for p in exported) == ["classes.txt", "img0.png", "img1.png"]
    (tmp_path / "out" / "png" / "classes.txt").unlink()  # a kill after the first PNG, before the finish
    (tmp_path / "out" / "png" / "img1.png").unlink()
    exported = export_project(project, tmp_path / "out", ["png"])
    assert sorted(p.name for p in exported) == ["classes.txt", "img0.png", "img1.png"]


def test_a_png_export_with_a_list_is_refused_above_list_less_pngs_in_a_subfolder(tmp_path, monkeypatch, run_cli):
    """The import of a folder reads every PNG beneath it (and a subfolder's import without a list takes
    its parent's): a list-less export's PNGs in mix/sub/ were read under a later export's classes.txt
    written into mix/ (exit 0), the check looked at mix/'s own PNGs only. Refused, nothing written."""
    from qgn.formats import scan_dataset

    legacy_qgts(tmp_path / "q" / "sub", LEGACY["tab"], monkeypatch, count=2)  # names no list can hold
    _good_qgts(tmp_path / "good")
    out = tmp_path / "mix"
    code, _stdout, err = run_cli("export", tmp_path / "q", "--format", "png", "--out", out)
    assert code == 0 and "go without classes.txt" in err, err
    assert scan_dataset(out, "png").file_classes is None  # the list-less PNGs, as an import sees them
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert before == ["sub", "sub/f000.png", "sub/f001.png"]
    code, _stdout, err = run_cli("export", tmp_path / "good", "--format", "png", "--out", out)
    assert code == 2 and "export into an empty folder" in err and str(out / "sub" / "f000.png") in err, err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert scan_dataset(out, "png").file_classes is None and scan_dataset(out / "sub", "png").file_classes is None


def test_a_project_s_png_export_with_a_list_is_refused_beside_a_list_less_upper_case_png(tmp_path):
    """OTHER.PNG is read by an import (on every system), and a folder's own PNGs are
    checked at every depth: both refused before anything is written; the folder's images/ (photos,
    which no import of it reads) is not."""
    from qgn.formats.base import FolderRefusedError
    from qgn.project_export import export_project

    image = tmp_path / "img.png"
    Image.new("RGB", (12, 8)).save(image)
    project = Project.create(tmp_path / "p", [image], ClassSet(("car", "sky"), (), 255))
    project.save_annotation(project.images[0], np.zeros((8, 12), np.uint8))
    folder = tmp_path / "out" / "png"
    (folder / "images").mkdir(parents=True)
    Image.new("RGB", (12, 8)).save(folder / "images" / "photo.png")
    for stray in ("OTHER.PNG", "deep/er/img.png"):
        (folder / stray).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((8, 12), np.uint8), "P").save(folder / stray, format="PNG")
        with pytest.raises(FolderRefusedError, match=stray.split("/")[-1].replace(".", r"\.")):
            export_project(project, tmp_path / "out", ["png"])
        assert not (folder / "classes.txt").exists() and not (folder / "img.png").exists()
        (folder / stray).unlink()
    exported = export_project(project, tmp_path / "out", ["png"])
    assert sorted(p.name for p in exported) == ["classes.txt", "img.png"]


@pytest.mark.parametrize("formats", ["png", "png,ids"])
def test_a_folder_tree_s_png_export_into_its_own_earlier_export_still_goes_on(tmp_path, run_cli, formats):
    """A 0.2.0 export (no classes.txt) or a killed one of a folder tree left PNGs of the tree's own
    names in OUT and beneath (OUT/sub/g0.png, named sub/g0 from OUT): exporting the tree there again
    replaces them and writes the lists."""
    _good_qgts(tmp_path / "tree")
    _good_qgts(tmp_path / "tree" / "sub", prefix="s")
    _good_qgts(tmp_path / "tree" / "sub" / "png", prefix="p")  # a subfolder named as a format's folder
    out = tmp_path / "out"
    code, _stdout, err = run_cli("export", tmp_path / "tree", "--format", formats, "--out", out)
    assert code == 0, err
    lists = sorted(out.rglob("classes.txt"))
    assert len(lists) == 3, lists  # one per png folder
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    for path in lists:  # as 0.2.0 left it; or a kill before each folder's finish
        path.unlink()
    (out / "sub" / ("png/" if "," in formats else "") / "s1.png").unlink()
    code, _stdout, err = run_cli("export", tmp_path / "tree", "--format", formats, "--out", out)
    assert code == 0, err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == written
    assert len(sorted(out.rglob("classes.txt"))) == len(lists)


def test_a_png_export_with_a_list_above_a_subfolder_s_list_goes_on_only_where_its_classes_are_the_same(tmp_path,
                                                                                                      run_cli):
    """A subfolder holding another png export with its own classes.txt: its PNGs are read under this
    export's list by the import of the folder (every PNG beneath it, one list). Of the same classes,
    nothing is misnamed: the export goes on; of other classes, refused naming that list."""
    _good_qgts(tmp_path / "good")
    other = tmp_path / "other"
    other.mkdir()
    write_qgt(other / "o0.qgt", Quadtree.from_label(np.ones((8, 12), np.uint8), 2, 255),
              ClassSet(("tree", "road"), (), 255))
    out = tmp_path / "out"
    code, _stdout, err = run_cli("export", other, "--format", "png", "--out", out / "sub")
    assert code == 0, err
    code, _stdout, err = run_cli("export", tmp_path / "good", "--format", "png", "--out", out)
    assert code == 2 and "export into an empty folder" in err, err
    assert f"{out / 'sub' / 'o0.png'} is listed by {out / 'sub' / 'classes.txt'} with other classes" in err, err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["sub", "sub/classes.txt", "sub/o0.png"]
    code, _stdout, err = run_cli("export", tmp_path / "good", "--format", "png", "--out", out / "sub2" / "deep")
    assert code == 0, err
    code, _stdout, err = run_cli("export", tmp_path / "good", "--format", "png", "--out", out / "sub2")
    assert code == 0, err
    assert (out / "sub2" / "classes.txt").is_file()


@pytest.mark.parametrize("where", ["images", "out"])
def test_a_png_export_beside_the_photos_in_a_subfolder_still_goes_on(tmp_path, run_cli, where):
    """Labels exported into DATA beside the photos' own subfolder (second review's repro
    test_b_photos_subfolder): the walk refused the export naming a photo as a list-less export's PNG.
    The import of DATA with --images DATA/photos never reads that folder (a palette PNG there neither);
    without --images, it reads an RGB or RGBA PNG as no label map (refused, never under the list's
    names): the export goes on, and is read back."""
    from qgn.formats import scan_dataset

    data = tmp_path / "DATA"
    photos = data / ("photos" if where == "images" else "shots")
    photos.mkdir(parents=True)
    _good_qgts(tmp_path / "q")
    for i, mode in enumerate(("RGB", "RGBA")):
        Image.new(mode, (12, 8), (9, 9, 9)).save(photos / (f"g{i}.png" if where == "images" else f"p{i}.png"))
    if where == "images":  # a palette picture in the --images folder: the import does not read it either
        Image.new("P", (12, 8)).save(photos / "other.png")
    images = ["--images", photos] if where == "images" else []
    code, _stdout, err = run_cli("export", tmp_path / "q", "--format", "png", "--out", data, *images)
    assert code == 0, err
    ds = scan_dataset(data, "png", images=photos if where == "images" else None)
    assert ds.file_classes.names == ("car", "sky")
    if where == "images":
        assert {item.name: item.image for item in ds.items} == {"g0": photos / "g0.png", "g1": photos / "g1.png"}
        return
    for item in ds.items:
        if item.name.startswith("shots/p"):  # (named by their place under DATA)
            with pytest.raises(ValueError, match="not a label map"):
                item.read(ds.file_classes)
        else:
            assert item.read(ds.file_classes).shape == (8, 12)
    assert sorted(item.name for item in ds.items) == ["g0", "g1", "shots/p0", "shots/p1"]


def test_a_refused_folder_export_walks_the_output_folder_once_and_stops_at_the_first_stray(tmp_path, run_cli,
                                                                                            monkeypatch):
    """Second review's repro test_b_slow_refusal (56 s: 100 .qgt files, a 100k-PNG tree): each .qgt file
    walked the whole OUT tree again for the same refusal. Walked once per output folder per run, and
    only up to the first PNG another export left: the folders os.walk yields are counted."""
    import os

    for prefix, count in (("a", 2), ("b", 2), ("c", 1)):  # 5 files
        _good_qgts(tmp_path / "q", count, prefix)
    out = tmp_path / "out"
    for d in range(10):
        (out / "old" / f"d{d}").mkdir(parents=True)
        for i in range(3):
            (out / "old" / f"d{d}" / f"x{i}.png").touch()
    walked = []
    real_walk = os.walk

    def counting_walk(top, *args, **kwargs):
        for entry in real_walk(top, *args, **kwargs):
            walked.append(entry[0])
            yield entry

    monkeypatch.setattr(os, "walk", counting_walk)
    code, _stdout, err = run_cli("export", tmp_path / "q", "--format", "png", "--out", out)
    monkeypatch.undo()
    assert code == 2 and str(out / "old" / "d0" / "x0.png") in err and "4 more file(s)" in err, err
    assert walked == [str(out), str(out / "old"), str(out / "old" / "d0")], walked
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == sorted([f"x{i}.png" for i in range(3)] * 10)
