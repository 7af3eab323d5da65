"""``qgn.fileio.open_regular``, the one opener of files a reader must never wait on: it reads
regular files where there is no O_NONBLOCK (Windows, where ``os.set_blocking`` refuses a file,
CPython gh-101881), waits as a plain open does for a file under a conflicting lease (Samba oplocks,
NFS delegations), and says of a folder that it is one."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from qgn.fileio import NotAFileError, open_regular, read_json, read_text_within


def test_regular_files_are_read_where_there_is_no_o_nonblock(tmp_path, monkeypatch):
    def refuses(fd, blocking):  # Windows (Python 3.12+): set_blocking exists, and raises on a file
        raise OSError(22, "Invalid argument")

    monkeypatch.delattr(os, "O_NONBLOCK")
    monkeypatch.setattr(os, "set_blocking", refuses)
    (tmp_path / "classes.txt").write_text("sky\nroad\n")
    (tmp_path / "m.json").write_text('{"a": 1}')
    assert read_text_within(tmp_path / "classes.txt", "class list") == "sky\nroad\n"
    assert read_json(tmp_path / "m.json", "model description", 1000) == {"a": 1}
    with open_regular(tmp_path / "classes.txt") as f:
        assert f.read() == b"sky\nroad\n"


HOLDER = textwrap.dedent("""
    import fcntl, os, signal, sys, time
    F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)
    fd = os.open(sys.argv[1], os.O_RDONLY)
    try:
        fcntl.fcntl(fd, F_SETLEASE, fcntl.F_WRLCK)
    except OSError as exc:
        print("no lease:", exc, flush=True)
        sys.exit(0)
    # as Samba or an NFS server does on a break: give the lease up (after a moment)
    signal.signal(signal.SIGIO, lambda *a: (time.sleep(0.3), fcntl.fcntl(fd, F_SETLEASE, fcntl.F_UNLCK)))
    print("held", flush=True)
    time.sleep(30)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="file leases (F_SETLEASE) are Linux's")
def test_a_file_under_a_lease_is_read_once_the_lease_is_broken(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("sky\nroad\n")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        said = holder.stdout.readline()
        if said != "held\n":
            pytest.skip(f"this file system gives no leases ({said.strip()})")
        assert read_text_within(path, "class list") == "sky\nroad\n"  # was EAGAIN: "Resource temporarily unavailable"
    finally:
        holder.kill()
        holder.wait()


def test_a_folder_is_said_to_be_a_folder(tmp_path):
    with pytest.raises(NotAFileError) as caught:
        open_regular(tmp_path)
    assert str(caught.value) == f"{tmp_path} is a folder, not a file; name a file in it"


def test_a_leased_file_turned_into_a_pipe_meanwhile_is_refused_not_waited_on(tmp_path, monkeypatch):
    """The open is tried again without waiting while a lease is broken: were it tried the plain way,
    a path swapped for a named pipe in between would block it for good (a review's race)."""
    import qgn.fileio as fileio

    path = tmp_path / "a.json"
    path.write_text("{}")
    real_open, tries = os.open, []

    def leased_once(p, flags, *args):
        if not tries:
            tries.append(flags)
            path.unlink()
            os.mkfifo(path)  # swapped for a pipe while the lease is being broken
            raise BlockingIOError(11, "Resource temporarily unavailable")
        tries.append(flags)
        return real_open(p, flags, *args)

    monkeypatch.setattr(fileio.os, "open", leased_once)
    with pytest.raises(fileio.NotAFileError, match="named pipe"):
        fileio.open_regular(path)
    assert tries and all(flags & os.O_NONBLOCK for flags in tries)  # (the pipe is seen before a second try)


def test_a_device_answering_eagain_is_not_tried_again_as_a_leased_file(monkeypatch):
    import qgn.fileio as fileio

    tries = []

    def busy(p, flags, *args):
        tries.append(p)
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(fileio.os, "open", busy)
    with pytest.raises(fileio.NotAFileError, match="/dev/null"):
        fileio.open_regular("/dev/null")
    assert len(tries) == 1
