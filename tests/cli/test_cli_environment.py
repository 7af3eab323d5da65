"""Environment variables the library reads (``QGN_MAX_PIXELS``, ``QGN_MAX_JSON_BYTES``, …) are read
when used, and a bad value is one line naming the variable and a value that works — never a
traceback at import, never an OverflowError."""
import os
import subprocess
import sys

import pytest

BAD_COUNTS = ["abc", "inf", "nan", "1e400", "0", "-5"]


def test_a_bad_json_limit_does_not_break_the_help():
    """Imported modules parse nothing from the environment: ``qgn export --help`` still works
    (a fresh interpreter, since the test process has imported the modules already)."""
    env = dict(os.environ, QGN_MAX_JSON_BYTES="abc")
    done = subprocess.run([sys.executable, "-m", "qgn", "export", "--help"], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "Traceback" not in done.stderr and "usage" in done.stdout


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_a_bad_json_limit_is_named_when_a_json_file_is_read(tmp_path, monkeypatch, value):
    from qgn.formats.guards import load_json

    path = tmp_path / "a.json"
    path.write_text("{}")
    monkeypatch.setenv("QGN_MAX_JSON_BYTES", value)
    with pytest.raises(ValueError, match=r"QGN_MAX_JSON_BYTES=.*set it to a whole number") as caught:
        load_json(path)
    assert len(str(caught.value).splitlines()) == 1
    monkeypatch.setenv("QGN_MAX_JSON_BYTES", "1e3")
    assert load_json(path) == {}


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_a_bad_pixel_limit_is_one_line_naming_the_variable(tmp_path, monkeypatch, run_cli, value):
    from sample_files import qgt_claiming

    path = tmp_path / "a.qgt"
    path.write_bytes(qgt_claiming(8, 8))
    monkeypatch.setenv("QGN_MAX_PIXELS", value)
    code, out, err = run_cli("export", path, "--png", tmp_path / "z.png")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"QGN_MAX_PIXELS={value!r}" in err and "QGN_MAX_PIXELS=100000000" in err
    assert "unexpected" not in err and "too large or too deeply nested" not in err


@pytest.mark.parametrize("variable", ["QGN_MAX_WORKING_PIXELS", "QGN_MAX_NATIVE_PIXELS"])
def test_bad_network_pixel_limits_name_the_variable(monkeypatch, variable):
    from qgn.model.qgn import max_native_pixels, max_working_pixels

    read = max_working_pixels if variable == "QGN_MAX_WORKING_PIXELS" else max_native_pixels
    for value in ("inf", "1e400", "100"):
        monkeypatch.setenv(variable, value)
        with pytest.raises(ValueError, match=f"{variable}="):
            read()


def test_a_bad_lock_timeout_names_the_variable(monkeypatch):
    from qgn.project import lock_timeout_s

    monkeypatch.setenv("QGN_PROJECT_LOCK_TIMEOUT", "abc")
    with pytest.raises(ValueError, match="QGN_PROJECT_LOCK_TIMEOUT='abc'"):
        lock_timeout_s()
    monkeypatch.setenv("QGN_PROJECT_LOCK_TIMEOUT", "2.5")
    assert lock_timeout_s() == 2.5


def header_claiming(data: bytes, width: int, height: int) -> bytes:
    """``data``, a .qgt of an 8×8 map, with a header claiming ``width × height`` (its body unchanged)."""
    import zlib

    from sample_files import varint

    assert data[6:8] == bytes([8, 8])  # magic, version, flags, then height and width as varints
    body = data[:6] + varint(height) + varint(width) + data[8:-4]
    return body + zlib.crc32(body).to_bytes(4, "little")


def test_the_pixel_limit_suggests_raising_it_only_for_a_size_that_fits_in_memory(tmp_path, run_cli):
    from sample_files import qgt_claiming

    path = tmp_path / "huge.qgt"
    path.write_bytes(header_claiming(qgt_claiming(8, 8), 1 << 60, 1 << 60))
    code, out, err = run_cli("export", path, "--png", tmp_path / "z.png")
    assert code == 2 and "corrupt" in err and "set QGN_MAX_PIXELS=" not in err
    path.write_bytes(qgt_claiming(9000, 9000))  # 81 megapixels: genuine photos are that large
    code, out, err = run_cli("export", path, "--png", tmp_path / "z.png")
    assert code == 2 and "set QGN_MAX_PIXELS=81000000" in err
