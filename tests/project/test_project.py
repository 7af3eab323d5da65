"""Projects (issue #7): what project.json remembers, unique keys, relative/absolute paths, saving
and autosave/recovery, export, clear errors — and a writer SIGKILLed mid-save leaves the previous
annotation intact and readable."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.formats import import_annotation
from qgn.classes import ClassSet
from qgn.project import PROJECT_FILE, Project, ProjectError, STALE_TEMP_SECONDS
from qgn.project_generations import ANNOTATION_DIR, AUTOSAVE_DIR
from qgn.project_export import export_project

REPO = Path(__file__).resolve().parents[2]
CLASSES = ClassSet(("sky", "road", "car"), ((70, 130, 180), (128, 64, 128), (0, 0, 142)), 255)

# Shared by this test and the writer child process: version i of a large annotation.
VERSION_SRC = '''
def version(i):
    import numpy as np
    rng = np.random.default_rng(i)
    label = np.kron(rng.integers(0, 3, (256, 256)), np.ones((4, 4), np.int64))
    label[rng.random(label.shape) < 0.02] = 255
    label[0, 0] = i % 3  # versions differ in a known pixel too
    return label
'''
_ns: dict = {}
exec(VERSION_SRC, _ns)
version = _ns["version"]


def make_images(folder: Path, names) -> list[Path]:
    paths = []
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (6, 4)).save(path, format="PNG")  # a name without an extension too
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- project.json
def test_create_open_remembers_everything(tmp_path):
    root = tmp_path / "proj"
    project = Project.create(root, [], CLASSES, model="models/camvid.safetensors")
    inside = make_images(root / "images", ["a/street.png", "b/street.png", "b/street.jpg"])
    outside = make_images(tmp_path / "elsewhere", ["street.png", "x y#1.png"])
    project.add_images(inside + outside)
    keys = [im.key for im in project.images]
    assert keys == ["street", "street-2", "street-3", "street-4", "x_y_1"]
    project.set_done(project.images[1], True)

    doc = json.loads((root / PROJECT_FILE).read_text())
    assert doc["format"] == "qgn-project" and doc["version"] == 1
    stored = [e["path"] for e in doc["images"]]
    assert stored[:3] == ["images/a/street.png", "images/b/street.png", "images/b/street.jpg"]
    assert stored[3:] == [str(p) for p in outside]
    assert ClassSet.from_json(doc["classes"]) == CLASSES

    again = Project.open(root)
    assert [(im.path, im.key, im.done) for im in again.images] == [
        (p.resolve(), k, i == 1) for i, (p, k) in enumerate(zip(inside + outside, keys))
    ]
    assert again.classes == CLASSES and again.model == "models/camvid.safetensors" and again.levels == 6
    assert again.image_for(inside[1]).key == "street-2"
    with pytest.raises(KeyError, match="not an image of the project"):
        again.image_for(tmp_path / "nope.png")
    # Adding an image twice returns the existing entry; keys stay unique after reopening.
    added = again.add_images([inside[0], *make_images(tmp_path / "elsewhere", ["c/street.png"])])
    assert [im.key for im in added] == ["street", "street-5"]
    assert [im.key for im in Project.open(root).images][-1] == "street-5"
    with pytest.raises(FileNotFoundError, match="not image files"):
        again.add_images([tmp_path / "ghost.png"])
    assert len(Project.open(root).images) == 6


def test_project_json_is_one_line_per_image_and_a_one_image_change_is_two_lines_of_a_diff(tmp_path):
    """project.json was written with ``json.dumps(indent=1)``, the pure-Python encoder (141 ms for
    20,000 images, blocking an open that records the model): each image is now one line of the
    file, written by the C encoder. Checked with json itself: every line of the image list parses
    as one entry, the file as the document it was; marking one image done changes that image's line
    and the revision; a file written the old way (indent=1) opens the same."""
    import difflib

    root = tmp_path / "proj"
    names = ["a.png", 'b}, {"path": "x.png', "c d\u00e9.png", "e.png", "g}, {"]  # '}, {"' inside names
    project = Project.create(root, make_images(tmp_path / "im", names), CLASSES, model="m.safetensors")
    project.note_image_file(project.images[0])
    before = (root / PROJECT_FILE).read_text()
    doc = json.loads(before)
    lines = before.splitlines()
    start = lines.index(' "images": [')
    entries = [json.loads(line.strip().rstrip(",")) for line in lines[start + 1:start + 1 + len(names)]]
    assert entries == doc["images"] and lines[start + 1 + len(names)] == " ]"
    assert [Path(e["path"]).name for e in entries] == names and "file" in entries[0]

    project.set_done(project.images[2], True)
    after = (root / PROJECT_FILE).read_text()
    changed = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), n=0, lineterm="")
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert len(changed) == 4, changed  # - and + of the revision and of the image's line
    assert {json.loads(c[1:].strip().rstrip(","))["done"] for c in changed if '"key"' in c} == {False, True}

    old = json.loads(after)
    (root / PROJECT_FILE).write_text(json.dumps(old, indent=1) + "\n")
    reopened = Project.open(root)
    assert [(im.path, im.key, im.done, im.file) for im in reopened.images] == \
        [(im.path, im.key, im.done, im.file) for im in project.images]
    reopened.set_done(reopened.images[0], True)
    assert json.loads((root / PROJECT_FILE).read_text())["images"][0]["done"] is True


def test_project_moves_with_its_folder(tmp_path):
    root = tmp_path / "p1"
    project = Project.create(root, [], CLASSES)
    project.add_images(make_images(root, ["img/one.png"]))
    project.save_annotation(project.images[0], np.zeros((4, 6), np.int64))
    moved = tmp_path / "p2"
    root.rename(moved)
    reopened = Project.open(moved)
    assert reopened.images[0].path == moved.resolve() / "img" / "one.png"
    assert reopened.load_annotation(reopened.images[0]).tolist() == [[0] * 6] * 4


def test_create_and_open_errors(tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ProjectError, match="not an empty folder"):
        Project.create(busy, [], CLASSES)
    Project.create(tmp_path / "p", [], CLASSES)
    with pytest.raises(ProjectError, match="already holds a project"):
        Project.create(tmp_path / "p", [], CLASSES)
    with pytest.raises(FileNotFoundError, match="not a QGN project"):
        Project.open(tmp_path / "missing")
    path = tmp_path / "p" / PROJECT_FILE
    doc = json.loads(path.read_text())
    for text, message in [
        ("{not json", "corrupt"),
        (json.dumps({**doc, "format": "other"}), "not a QGN project file"),
        (json.dumps({**doc, "version": 2}), "version 2"),
        (json.dumps({k: v for k, v in doc.items() if k != "images"}), "missing or bad field"),
    ]:
        path.write_text(text)
        with pytest.raises(ProjectError, match=message):
            Project.open(tmp_path / "p")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_project_file_replaced_by_a_pipe_is_noticed_without_waiting_on_it(tmp_path, fifo):
    """The app's watch of project.json (every few seconds) waited for ever on a named pipe put in its
    place (``fifo`` fails the test if it did); opening the project says what it is."""
    project = Project.create(tmp_path / "p", [], CLASSES)
    (tmp_path / "p" / PROJECT_FILE).unlink()
    fifo(tmp_path / "p" / PROJECT_FILE)
    assert project.changed_on_disk()
    with pytest.raises(ProjectError, match="is not a file"):
        Project.open(tmp_path / "p")


def test_a_project_file_grown_huge_is_noticed_without_reading_it(tmp_path):
    """Another writer leaves a 4 GiB project.json (sparse): the watch (`changed_on_disk`, every
    few seconds in the app) says it changed at once, without reading it; opening it says why."""
    import tracemalloc

    project = Project.create(tmp_path / "p", [], CLASSES)
    assert not project.changed_on_disk()
    os.truncate(tmp_path / "p" / PROJECT_FILE, 4 << 30)
    tracemalloc.start()
    try:
        assert project.changed_on_disk()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    with pytest.raises(ProjectError, match="more than QGN reads of a project file"):
        Project.open(tmp_path / "p")


def test_a_project_file_over_the_bound_is_refused_before_it_is_read(tmp_path):
    """A project.json over the bound (256 MiB: the previous version's read bound; ~1 million
    images at ~240 bytes each) is refused unread, saying the bound and a way out true for any such
    file (no QGN that reads one writes one that big, but an older one wrote any size)."""
    import tracemalloc

    Project.create(tmp_path / "p", [], CLASSES)
    os.truncate(tmp_path / "p" / PROJECT_FILE, 300_000_000)  # sparse: no disk taken
    tracemalloc.start()
    try:
        with pytest.raises(ProjectError) as raised:
            Project.open(tmp_path / "p")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert str(raised.value) == (f"{tmp_path / 'p' / PROJECT_FILE} is 300.0 MB, more than QGN reads of a project file "
                                 "(256 MiB: about 1,000,000 images), so it is not read and nothing was changed: put "
                                 "back a smaller copy of the project's project.json from a backup, if there is one")


def test_a_project_file_the_previous_version_opened_still_opens(tmp_path):
    """The previous version read a project.json of up to 256 MiB and wrote any size; the 64 MiB
    bound of this branch refused one an earlier QGN wrote at 70 MB (its message even said no QGN
    wrote one that big). 70 MB of it (JSON whitespace, which costs next to nothing to parse) opens
    and is written back."""
    images = make_images(tmp_path / "imgs", ["a.png"])
    Project.create(tmp_path / "p", images, CLASSES)
    path = tmp_path / "p" / PROJECT_FILE
    with open(path, "ab") as f:
        f.write(b" " * 70_000_000)
    project = Project.open(tmp_path / "p")
    assert [im.path.name for im in project.images] == ["a.png"]
    project.set_done(project.images[0], True)
    assert Project.open(tmp_path / "p").images[0].done


def test_a_project_never_writes_a_project_file_over_the_bound(tmp_path, monkeypatch):
    """What the bound refuses to read is never written (one bound for both): adding images past it
    is refused, the project as it was; the refusal says what was refused - a done flag's is not
    'put further images in another project'."""
    images = []
    for i in range(3):
        images.append(tmp_path / f"img_{i}.png")
        Image.new("RGB", (4, 4)).save(images[-1])
    project = Project.create(tmp_path / "p", images[:1], CLASSES)
    before = (tmp_path / "p" / PROJECT_FILE).read_bytes()
    monkeypatch.setattr("qgn.project_file.MAX_PROJECT_FILE_BYTES", len(before) + 100)
    with pytest.raises(ProjectError) as raised:
        project.add_images(images[1:])
    assert str(raised.value).startswith(f"{tmp_path / 'p'}: adding 2 images was refused: its project.json would be ")
    assert str(raised.value).endswith(f" MB with 3 images, more than QGN reads of a project file ({len(before) + 100} "
                                      "bytes); nothing was written: put further images in another project")
    assert (tmp_path / "p" / PROJECT_FILE).read_bytes() == before and len(project.images) == 1
    assert len(Project.open(tmp_path / "p").images) == 1
    monkeypatch.setattr("qgn.project_file.MAX_PROJECT_FILE_BYTES", len(before))  # "true" is one byte shorter than "false"
    monkeypatch.setattr(Project, "_entry", lambda self, im: {"path": str(im.path), "key": im.key, "done": im.done,
                                                              "pad": "x" * 100})
    with pytest.raises(ProjectError) as raised:
        project.set_done(project.images[0], True)
    text = str(raised.value)
    assert text.startswith(f"{tmp_path / 'p'}: marking 1 image done or not was refused: its project.json would be ")
    assert "further images" not in text and text.endswith("nothing was written: the project holds more images than "
                                                           "one project file can list; move some into another project")
    assert (tmp_path / "p" / PROJECT_FILE).read_bytes() == before and not project.images[0].done


# --------------------------------------------------------------------------- annotations
def test_recoverable_lists_the_autosave_folder_once(tmp_path, monkeypatch):
    """Many images, few autosaves: the images whose autosave holds edits their saved annotation lacks
    (the brute-force answer: each image's own paths), found by one listing of the autosave folder
    — ``path_inside`` runs only for the names found there, not once per image."""
    import qgn.project

    images = make_images(tmp_path / "imgs", [f"i{i:03d}.png" for i in range(300)])
    project = Project.create(tmp_path / "p", images, CLASSES)
    label = np.zeros((2, 3), np.int64)
    older, newer, unsaved = project.images[5], project.images[7], project.images[200]
    project.save_annotation(older, label)
    project.autosave(older, label)
    os.utime(project.autosave_path(older), ns=(1, 1))  # older than the saved annotation, the same map
    project.save_annotation(newer, label)
    project.autosave(newer, label)
    project.autosave(unsaved, label)
    (project.root / project.autosave_dir / "stranger.qgt").write_bytes(b"")  # no image of that key

    def brute_force(p):
        return [im for im in p.images if p.autosave_path(im).is_file() and (
            not p.annotation_path(im).is_file()
            or p.autosave_path(im).stat().st_mtime_ns >= p.annotation_path(im).stat().st_mtime_ns
            or p.autosave_path(im).read_bytes() != p.annotation_path(im).read_bytes())]

    reopened = Project.open(tmp_path / "p")
    expected = brute_force(reopened)
    assert [im.key for im in expected] == [newer.key, unsaved.key]
    calls = []
    real = qgn.project.path_inside
    monkeypatch.setattr(qgn.project, "path_inside", lambda *a: (calls.append(a), real(*a))[1])
    assert reopened.recoverable() == expected
    assert len(calls) <= 2 * 3  # the autosave and saved paths of the 3 names found, not 2 per image
    # A name found there still may not lead outside the project: never offered (the others are).
    (project.root / project.autosave_dir / f"{unsaved.key}.qgt").unlink()
    outside = tmp_path / "elsewhere.qgt"
    outside.write_bytes(b"")
    (project.root / project.autosave_dir / f"{unsaved.key}.qgt").symlink_to(outside)
    assert [im.key for im in reopened.recoverable()] == [newer.key]
    # No autosave folder at all: nothing to recover.
    import shutil

    shutil.rmtree(project.root / project.autosave_dir)
    assert reopened.recoverable() == []


def test_save_load_autosave_recover(tmp_path):
    images = make_images(tmp_path / "imgs", ["a.png", "b.png"])
    project = Project.create(tmp_path / "p", images, CLASSES)
    a, b = project.images
    assert project.load_annotation(a) is None and project.recoverable() == []
    saved = np.array([[0, 1, 2], [255, 1, 0]])
    project.save_annotation(a, saved)
    assert np.array_equal(project.load_annotation(a), saved) and project.annotated() == [a]

    edited = saved.copy()
    edited[1, 0] = 2
    project.autosave(a, edited)
    project.autosave(b, np.full((2, 3), 255))
    del project  # the app "crashes": nothing else is saved
    reopened = Project.open(tmp_path / "p")
    a, b = reopened.images
    assert [im.key for im in reopened.recoverable()] == ["a", "b"]
    assert np.array_equal(reopened.recover(a), edited)
    assert np.array_equal(reopened.load_annotation(a), saved), "autosave never touches the saved annotation"
    reopened.save_annotation(a, reopened.recover(a))
    autosaved = reopened.autosave_path(b).read_bytes()
    kept = reopened.discard_autosave(b)
    assert reopened.recoverable() == []
    assert kept.parent == tmp_path / "p" / "discarded" and kept.read_bytes() == autosaved  # moved, not deleted
    assert np.array_equal(reopened.load_annotation(a), edited)
    with pytest.raises(FileNotFoundError, match="no autosave"):
        reopened.recover(b)
    with pytest.raises(ValueError, match=r"values \[7\]"):
        reopened.save_annotation(a, np.full((2, 3), 7))
    assert np.array_equal(reopened.load_annotation(a), edited)


def test_undone_autosaves_are_kept_by_content_one_file_per_state_none_replaced(tmp_path):
    """``discard_autosave(undone=True)`` (undo back to the saved map) keeps the autosave under a name of
    its bytes: the same state undone again (an undo/redo cycle without new edits) adds nothing, every
    other state keeps a file of its own. Fails before: one ``<key>.undone.qgt`` per image, which the
    next undone state replaced (the first state's edits, whose redo a new edit had dropped, were gone)."""
    project = Project.create(tmp_path / "p", make_images(tmp_path / "imgs", ["a.png", "b.png"]), CLASSES)
    a, b = project.images
    project.autosave(a, np.full((2, 3), 0))
    discarded = project.discard_autosave(a)  # the user's Discard
    project.autosave(b, np.full((2, 3), 2))
    other = project.discard_autosave(b, undone=True)
    kept = []
    for value in (1, 1, 1, 2, 2, 1):
        project.autosave(a, np.full((2, 3), value))
        kept.append(project.discard_autosave(a, undone=True))
    assert not project.autosave_path(a).exists() and project.recoverable() == []
    assert len({kept[0], kept[1], kept[2], kept[5]}) == 1 and kept[3] == kept[4] != kept[0]
    folder = tmp_path / "p" / "discarded"
    assert sorted(folder.iterdir()) == sorted([discarded, other, kept[0], kept[3]])
    assert re.fullmatch(r"a\.undone-[0-9a-f]{12}\.qgt", kept[0].name)
    for path, value in ((kept[0], 1), (kept[3], 2), (discarded, 0), (other, 2)):
        assert np.array_equal(import_annotation(path, CLASSES), np.full((2, 3), value))


def test_two_writers_undone_autosaves_never_replace_each_other(tmp_path):
    """Two windows (two Project objects) on one image each autosave and undo back to the saved map.
    Fails before: the second's ``a.undone.qgt`` replaced the first's (whose edits were then in its redo
    only: a crash of it lost them). Every writer assumes another exists."""
    Project.create(tmp_path / "p", make_images(tmp_path / "imgs", ["a.png"]), CLASSES)
    w1, w2 = Project.open(tmp_path / "p"), Project.open(tmp_path / "p")
    (a1,), (a2,) = w1.images, w2.images
    first = w1.discard_autosave(a1, ours=w1.autosave(a1, np.full((2, 3), 1)).version, undone=True)
    second = w2.discard_autosave(a2, ours=w2.autosave(a2, np.full((2, 3), 2)).version, undone=True)
    assert first != second and sorted((tmp_path / "p" / "discarded").iterdir()) == sorted([first, second])
    assert np.array_equal(import_annotation(first, CLASSES), np.full((2, 3), 1))
    assert np.array_equal(import_annotation(second, CLASSES), np.full((2, 3), 2))


def test_an_image_given_a_removed_images_key_never_replaces_its_undone_autosave(tmp_path):
    """An image removed after an undo back to the saved map; a new image of the same file name inherits
    its key. Fails before: the new image's undone autosave replaced the removed one's ``a.undone.qgt``."""
    for sub in ("x", "y"):
        make_images(tmp_path / sub, ["a.png"])
    project = Project.create(tmp_path / "p", [tmp_path / "x" / "a.png"], CLASSES)
    (x,) = project.images
    first = project.discard_autosave(x, ours=project.autosave(x, np.full((2, 3), 1)).version, undone=True)
    project.remove_image(x)
    (y,) = project.add_images([tmp_path / "y" / "a.png"], save=True)
    assert y.key == x.key
    second = project.discard_autosave(y, ours=project.autosave(y, np.full((2, 3), 2)).version, undone=True)
    assert first != second and first.is_file()
    assert np.array_equal(import_annotation(first, CLASSES), np.full((2, 3), 1))
    assert np.array_equal(import_annotation(second, CLASSES), np.full((2, 3), 2))


def test_temporary_files_are_never_annotations(tmp_path):
    project = Project.create(tmp_path / "p", make_images(tmp_path, ["a.png"]), CLASSES)
    (tmp_path / "p" / ANNOTATION_DIR).mkdir()
    fresh = tmp_path / "p" / ANNOTATION_DIR / ".a.qgt.fresh123.tmp"
    stale = tmp_path / "p" / AUTOSAVE_DIR / ".a.qgt.stale123.tmp"
    stale.parent.mkdir()
    fresh.write_bytes(b"half a file")
    stale.write_bytes(b"half a file")
    old = time.time() - STALE_TEMP_SECONDS - 10
    os.utime(stale, (old, old))
    reopened = Project.open(tmp_path / "p")
    assert reopened.load_annotation(reopened.images[0]) is None
    assert reopened.annotated() == [] and reopened.recoverable() == []
    assert fresh.exists() and stale.exists(), "opening never deletes"
    reopened.set_done(reopened.images[0], True)  # a writer, holding the lock, cleans up
    assert fresh.exists() and not stale.exists(), "only temporaries of long-dead writers are removed"
    del project


# --------------------------------------------------------------------------- crash: SIGKILL mid-write
WRITER = VERSION_SRC + textwrap.dedent('''
    import os, sys, time
    from qgn.project import Project

    root, slow_after = sys.argv[1], int(sys.argv[2])
    project = Project.open(root)
    image = project.images[0]
    i = 1
    while True:
        if i == slow_after:  # from now on every write stalls after its temporary file is written
            real_fsync = os.fsync
            def slow_fsync(fd):
                print("mid-write", flush=True)
                time.sleep(60)
                real_fsync(fd)
            os.fsync = slow_fsync
        project.save_annotation(image, version(i))
        print(f"saved {i}", flush=True)
        i += 1
''')


def start_writer(tmp_path: Path, root: Path, slow_after: int) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(root), str(slow_after)], stdout=subprocess.PIPE,
                            text=True, env=env, cwd=str(REPO))


def read_until(proc: subprocess.Popen, marker: str, timeout: float = 60.0) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.strip() == marker:
            return lines
    proc.kill()
    raise AssertionError(f"writer never printed {marker!r}; got {lines}")


def check_intact(root: Path, candidates: list[int]) -> int:
    """The saved annotation decodes and equals one whole version; returns which."""
    project = Project.open(root)
    label = project.load_annotation(project.images[0])
    matches = [i for i in candidates if np.array_equal(label, version(i))]
    assert len(matches) == 1, f"the annotation is none of versions {candidates}"
    assert project.annotated() == [project.images[0]]
    assert sorted(p.name for p in (root / ANNOTATION_DIR).glob("*.qgt")) == [f"{project.images[0].key}.qgt"]
    return matches[0]


@pytest.mark.slow
def test_sigkill_mid_write_keeps_previous_annotation(tmp_path):
    root = tmp_path / "p"
    Project.create(root, make_images(tmp_path, ["big.png"]), CLASSES)
    proc = start_writer(tmp_path, root, slow_after=3)
    read_until(proc, "saved 2")
    read_until(proc, "mid-write")  # version 3's temporary file is written, not yet renamed
    temporaries = list((root / ANNOTATION_DIR).glob(".*.tmp"))
    assert len(temporaries) == 1 and temporaries[0].stat().st_size > 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert check_intact(root, [1, 2, 3]) == 2
    assert (root / ANNOTATION_DIR / temporaries[0].name).exists(), "the dead writer's temporary file is left..."
    # ...and never read: a version-3 decode of it would equal version(3), the annotation is version 2.


@pytest.mark.slow
def test_sigkill_at_random_moments_never_corrupts(tmp_path):
    root = tmp_path / "p"
    Project.create(root, make_images(tmp_path, ["big.png"]), CLASSES)
    rng = np.random.default_rng(0)
    for _ in range(3):
        proc = start_writer(tmp_path, root, slow_after=0)
        lines = read_until(proc, "saved 1")
        time.sleep(float(rng.uniform(0.0, 0.4)))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        done = [int(w) for w in " ".join(lines + [out]).split() if w.isdigit()]
        # The file is the last version reported saved, or the one being written when killed.
        assert check_intact(root, list(range(1, max(done) + 2))) in (max(done), max(done) + 1)


# --------------------------------------------------------------------------- export
def test_export_project_with_progress(tmp_path):
    images = make_images(tmp_path / "imgs", ["a.png", "sub/a.png", "c.png"])
    project = Project.create(tmp_path / "p", images, CLASSES)
    first, second, third = project.images
    fit = np.ones((2, 3), np.int64)  # the images are 6 × 4: annotations of another size are warned about
    labels = {first.key: np.kron(np.array([[0, 1], [2, 255]]), fit), second.key: np.kron(np.array([[2, 2], [2, 2]]), fit)}
    project.save_annotation(first, labels[first.key])
    project.save_annotation(second, labels[second.key])
    project.set_done(second, True)
    calls = []
    paths = export_project(project, tmp_path / "out", ["png", "qgt", "cvat"], lambda i, n, t: calls.append((i, n, t)))
    assert calls == [(1, 3, "a: 6 file(s)"), (2, 3, "a-2: 6 file(s)"), (3, 3, "c: skipped (no saved annotation)")]
    assert (tmp_path / "out" / "png" / "a-2.png") in paths
    for key, label in labels.items():
        for fmt, path in [("png", f"png/{key}.png"), ("qgt", f"qgt/{key}.qgt"), ("cvat", f"cvat/SegmentationClass/{key}.png")]:
            assert np.array_equal(import_annotation(tmp_path / "out" / path, CLASSES), label)
    only = export_project(project, tmp_path / "done", ["json"], only_done=True)
    assert only == [tmp_path / "done" / "json" / "a-2.json"]
    with pytest.raises(ValueError, match="unknown export format"):
        export_project(project, tmp_path / "x", ["bmp"])


# --------------------------------------------------------------------------- qgn export (CLI)
def test_cli_export_project(capsys, tmp_path, run_cli):
    project = Project.create(tmp_path / "p", make_images(tmp_path, ["a.png", "b.png"]), CLASSES)
    label = np.array([[0, 1, 2], [255, 255, 1]])
    project.save_annotation(project.images[0], label)
    code, out, err = run_cli("export", "--project", tmp_path / "p", "--out", tmp_path / "out",
                             "--formats", "qgt,png,ids,cvat,levels,json")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("[1/2] a: ") and lines[1] == "[2/2] b: skipped (no saved annotation)"
    assert "exported 1 annotation(s) of 2 image(s)" in lines[2]
    for path in ["qgt/a.qgt", "png/a.png", "ids/a.png", "cvat/SegmentationClass/a.png", "json/a.json"]:
        assert np.array_equal(import_annotation(tmp_path / "out" / path, CLASSES), label), path
    assert sorted(p.name for p in (tmp_path / "out" / "levels").iterdir()) == [f"a_L{l}.png" for l in range(6)]
    code, out, _ = run_cli("export", "--project", tmp_path / "p", "--out", tmp_path / "d", "--only-done")
    assert code == 0 and "exported 0 annotation(s)" in out and not (tmp_path / "d" / "png").exists()


def test_cli_export_files_in_any_format(capsys, tmp_path, run_cli):
    from qgn.quadtree import Quadtree, write_qgt

    labels = {"a": np.array([[0, 1], [2, 255]]), "sub/b": np.array([[2, 2, 0]])}
    for stem, label in labels.items():
        (tmp_path / "q" / stem).parent.mkdir(parents=True, exist_ok=True)
        write_qgt(tmp_path / "q" / f"{stem}.qgt", Quadtree.from_label(label, 3, 255, 2), CLASSES)
    code, out, err = run_cli("export", tmp_path / "q" / "a.qgt", "--format", "json", "--out", tmp_path / "one")
    assert code == 0, err
    assert np.array_equal(import_annotation(tmp_path / "one" / "a.json", CLASSES), labels["a"])
    code, out, err = run_cli("export", tmp_path / "q", "--format", "cvat,ids", "--out", tmp_path / "many",
                             "--png", tmp_path / "pngs")
    assert code == 0 and "exported 2 file(s)" in out, err
    for stem, label in labels.items():
        sub = Path(stem).parent
        assert np.array_equal(import_annotation(tmp_path / "many" / sub / "ids" / f"{Path(stem).name}.png", CLASSES), label)
        assert np.array_equal(
            import_annotation(tmp_path / "many" / sub / "cvat" / "SegmentationClass" / f"{Path(stem).name}.png", CLASSES),
            label)
        assert np.array_equal(import_annotation(tmp_path / "pngs" / f"{stem}.png", CLASSES), label)
    # A .qgt without stored classes (as `qgn convert` writes by default) exports with generic names.
    write_qgt(tmp_path / "bare.qgt", Quadtree.from_label(labels["a"], 3, 255, 2))
    assert run_cli("export", tmp_path / "bare.qgt", "--format", "levels", "--out", tmp_path / "lv")[0] == 0
    assert sorted(p.name for p in (tmp_path / "lv").iterdir()) == ["bare_L0.png", "bare_L1.png"]


def test_cli_export_errors(capsys, tmp_path, run_cli):
    code, _, err = run_cli("export", "--project", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert code == 2 and "qgn export: error: --project" in err and "not a QGN project" in err
    Project.create(tmp_path / "p", [], CLASSES)
    code, _, err = run_cli("export", "--project", tmp_path / "p", "--out", tmp_path / "o", "--formats", "png,tiff")
    assert code == 2 and "unknown format(s) tiff" in err and "choose from qgt, png, ids, cvat, voc, cityscapes, camvid, coco, labelme, labelstudio, fiftyone, levels, json" in err
    code, _, err = run_cli("export", "--project", tmp_path / "p")
    assert code == 2 and "--out" in err
    code, _, err = run_cli("export", tmp_path / "x.qgt", "--format", "gif", "--out", tmp_path / "o")
    assert code == 2 and "unknown format(s) gif" in err
    code, _, err = run_cli("export", tmp_path / "x.qgt", "--format", "png")
    assert code == 2 and "--format needs --out" in err
    code, _, err = run_cli("export", tmp_path / "x.qgt", "--format", "png", "--out", tmp_path / "o")
    assert code == 2 and "no such file" in err
    code, _, err = run_cli("export", "--format", "png", "--out", tmp_path / "o")
    assert code == 2 and "name a .qgt file" in err
    assert not (tmp_path / "o").exists()


def test_the_image_file_an_annotation_was_saved_for_is_noted_and_checked(tmp_path):
    from qgn.project import Project

    image = tmp_path / "a.bmp"
    Image.new("RGB", (8, 6), (10, 20, 30)).save(image)
    project = Project.create(tmp_path / "P", [image], CLASSES)
    entry = project.image_for(image)
    assert project.image_file_changed(entry) is None, "nothing noted (an older project): nothing said"
    project.note_image_file(entry)
    again = Project.open(tmp_path / "P")
    assert again.image_for(image).file == entry.file and again.image_file_changed(again.image_for(image)) is None
    Image.new("RGB", (8, 6), (10, 20, 31)).save(image)  # same size on disk, other pixels
    assert image.stat().st_size == entry.file[0]
    assert "content changed" in again.image_file_changed(again.image_for(image))
    Image.new("RGB", (9, 6)).save(image)
    assert "bytes" in again.image_file_changed(again.image_for(image))
    doc = json.loads((tmp_path / "P" / "project.json").read_text())
    doc["images"][0]["file"] = {"bytes": "many"}  # malformed: ignored, never refused
    (tmp_path / "P" / "project.json").write_text(json.dumps(doc))
    assert Project.open(tmp_path / "P").image_for(image).file is None


def test_a_project_folder_that_is_a_loop_of_links_is_said_as_one(tmp_path):
    """`qgn export --project LOOP` said "LOOP is not a QGN project (no project.json); create one
    first": a loop of links, or a link to a folder that is gone, is no missing project."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(ProjectError) as raised:
        Project.open(tmp_path / "a")
    assert str(raised.value) == (f"{tmp_path / 'a'}: is a loop of symbolic links, which leads nowhere (remove the "
                                 "link); the project folder is there, and it cannot be opened without it. Nothing "
                                 "was changed")
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ProjectError, match="is a link to .*nowhere, which does not exist .*the project folder is there"):
        Project.open(tmp_path / "gone")
