"""Exports with images="link" into a folder holding an earlier export: the earlier links are
replaced, never followed (``path_inside(follow=False)``, in ``place_image`` only: a file read
before it is replaced still refuses a link leading away), and a link is renamed over the earlier
file whole (``place_image``), so that a crash never leaves the path without a file."""
from __future__ import annotations

import os

import pytest

from qgn.project_export import export_project
from sample_files import synthetic_project


@pytest.fixture
def project(tmp_path):
    return synthetic_project(tmp_path / "project", tmp_path / "street")


IMAGE_FOLDERS = {"coco": "coco/images/default", "cvat": "cvat/JPEGImages"}


@pytest.mark.parametrize("second", ["link", "copy"])
@pytest.mark.parametrize("fmt", ["coco", "cvat"])
def test_a_reexport_over_an_earlier_link_export_replaces_its_links(project, tmp_path, fmt, second):
    """Before, every re-export into a link-mode export was refused: 'the name 'a.jpg' leads outside'
    (the check resolved the earlier link to the image outside the export)."""
    out = tmp_path / "out"
    export_project(project, out, [fmt], images="link")
    folder = out / IMAGE_FOLDERS[fmt]
    assert (folder / "a.jpg").is_symlink()
    export_project(project, out, [fmt], images=second)
    for image in project.images:
        placed = folder / image.path.name
        assert placed.is_symlink() == (second == "link")
        assert placed.read_bytes() == image.path.read_bytes()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_link_still_leading_outside_through_its_folder_is_refused(tmp_path):
    """Judging a link where it stands still refuses a folder linked away and a '..' name."""
    from qgn.fileio import OutsideRootError, path_inside

    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "away").symlink_to(tmp_path)
    (tmp_path / "root" / "x.jpg").symlink_to(tmp_path / "elsewhere.jpg")
    assert path_inside(tmp_path / "root", "x.jpg", follow=False) == tmp_path / "root" / "x.jpg"
    for parts in (("away", "x.jpg"), ("..",), ("../x.jpg",), ("sub", "..")):
        with pytest.raises(OutsideRootError):
            path_inside(tmp_path / "root", *parts, follow=False)
    with pytest.raises(OutsideRootError):
        path_inside(tmp_path / "root", "x.jpg")  # followed, as the project's own files are judged


class Killed(BaseException):
    """The process dying where it is raised: nothing after it runs (no undo)."""


def test_a_link_export_killed_as_it_links_leaves_the_earlier_file(project, tmp_path, monkeypatch):
    """A re-export with images="link" killed as it makes the link leaves the earlier export's copy
    where it was - before, the copy was set aside and unlinked first, and a kill before the
    symlink left the path with no file at all."""
    from qgn.fileio import ReplacedFiles

    out = tmp_path / "out"
    export_project(project, out, ["coco"], images="copy")
    copy = out / IMAGE_FOLDERS["coco"] / "a.jpg"
    before = copy.read_bytes()

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(os, "symlink", killed)
    monkeypatch.setattr(ReplacedFiles, "take_back", lambda self, *a, **k: None)  # a killed process undoes nothing
    with pytest.raises(Killed):
        export_project(project, out, ["coco"], images="link")
    assert copy.is_file() and not copy.is_symlink() and copy.read_bytes() == before


def test_a_leftover_temporary_link_is_removed_as_stale(tmp_path):
    """A link a killed export left under a temporary's name goes as a stale temporary, judged by
    the link's own time, whatever its target's."""
    from qgn.fileio import remove_stale_temporaries

    target = tmp_path / "image.jpg"
    target.write_bytes(b"x")
    os.utime(target, (0, 0))  # an old image: a live link to it is still new
    link = tmp_path / ".a.jpg.link.0123abcd.tmp"
    link.symlink_to(target)
    assert remove_stale_temporaries(tmp_path) == 0 and link.is_symlink()
    dangling = tmp_path / ".b.jpg.link.4567cdef.tmp"
    dangling.symlink_to(tmp_path / "gone.jpg")
    os.utime(link, (0, 0), follow_symlinks=False)
    os.utime(dangling, (0, 0), follow_symlinks=False)
    assert remove_stale_temporaries(tmp_path) == 2
    assert target.read_bytes() == b"x" and not os.path.lexists(link) and not os.path.lexists(dangling)


@pytest.mark.parametrize("fmt, rel", [("cvat", "ImageSets/Segmentation/default.txt"),
                                      ("coco", "annotations/instances_default.json"),
                                      ("cvat", "labelmap.txt")])
def test_a_planted_link_to_a_file_elsewhere_is_never_read_into_the_export(project, tmp_path, fmt, rel):
    """A file an export reads before replacing it (CVAT's image list, COCO's earlier entries, the
    class list), planted as a link to a file outside the export: refused, as before link-mode
    re-exports - the link-mode fix judged every file where it stands, and the secret's lines were
    read into the export's own image list."""
    from qgn.fileio import OutsideRootError

    out = tmp_path / "out"
    export_project(project, out, [fmt], images="copy")
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-LINE\n")
    planted = out / fmt / rel
    planted.unlink()
    planted.symlink_to(secret)
    with pytest.raises(OutsideRootError):
        export_project(project, out, [fmt], images="copy")
    assert planted.is_symlink() and secret.read_text() == "SECRET-LINE\n"
    assert not [f for f in (out / fmt).rglob("*") if f.is_file() and not f.is_symlink() and b"SECRET" in f.read_bytes()]


def test_a_users_own_links_named_like_temporaries_are_kept(tmp_path):
    """Links of the user's named like temporaries (8 characters before ".tmp", a date too) are
    never removed, however old; only place_image's (``.<name>.link.<8 hex>.tmp``) and set-asides."""
    from qgn.fileio import remove_stale_temporaries

    (tmp_path / "photos").mkdir()
    (tmp_path / "real.txt").write_text("x")
    own = {".backup.snapshot.tmp": "photos", ".cache.20261207.tmp": "gone", ".notes.previous.tmp": "real.txt",
           ".a.jpg.12345678.tmp": "real.txt"}
    ours = {".a.jpg.link.0123abcd.tmp": "real.txt"}  # (a set-aside's ctime, its making, cannot be made old here)
    for name, to in {**own, **ours}.items():
        os.symlink(to, tmp_path / name)
        os.utime(tmp_path / name, (0, 0), follow_symlinks=False)
    os.utime(tmp_path / "real.txt", (0, 0))
    assert remove_stale_temporaries(tmp_path) == len(ours)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_symlink()) == sorted(own)


def test_a_live_exports_set_aside_outlives_the_stale_temporaries(tmp_path, monkeypatch):
    """An export in the middle of an item for over a minute (a stopped command, a slow share) had its
    set-aside - the only copy of an earlier export's mask - removed by another export's clean-up of
    stale temporaries (found by a read-only review); it is left a week. A plain temporary still goes."""
    import time

    from qgn.fileio import SET_ASIDE_STALE_SECONDS, remove_stale_temporaries

    earlier = tmp_path / "x.png"
    earlier.write_bytes(b"the earlier export's mask")
    aside = tmp_path / ".aside.0123abcd.tmp"
    os.link(earlier, aside)  # as a writer sets it aside before replacing x.png
    earlier.unlink()
    temporary = tmp_path / ".y.png.4567cdef.tmp"
    temporary.write_bytes(b"half")
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 120)  # two minutes on, the export still mid-item
    assert remove_stale_temporaries(tmp_path) == 1
    assert aside.read_bytes() == b"the earlier export's mask" and not temporary.exists()
    monkeypatch.setattr(time, "time", lambda: now + SET_ASIDE_STALE_SECONDS + 1)  # a killed writer's, long after
    assert remove_stale_temporaries(tmp_path) == 1 and not aside.exists()
