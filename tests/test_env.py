"""Limits set by environment variables (qgn.env): the default when unset or blank, the value when
good, one error naming the variable, its value and the fix otherwise — the same for every limit."""
from __future__ import annotations

import pytest


def test_project_lock_timeout_takes_zero_and_says_its_range(monkeypatch):
    from qgn.project import LOCK_TIMEOUT_S, lock_timeout_s

    monkeypatch.setenv("QGN_PROJECT_LOCK_TIMEOUT", " ")
    assert lock_timeout_s() == LOCK_TIMEOUT_S
    monkeypatch.setenv("QGN_PROJECT_LOCK_TIMEOUT", "0")
    assert lock_timeout_s() == 0.0
    for bad in ("-1", "nan", "1e7", "soon"):
        monkeypatch.setenv("QGN_PROJECT_LOCK_TIMEOUT", bad)
        with pytest.raises(ValueError) as caught:
            lock_timeout_s()
        assert str(caught.value) == (f"the environment variable QGN_PROJECT_LOCK_TIMEOUT={bad!r} is not a number of "
                                     "seconds in 0..1000000; set it to e.g. QGN_PROJECT_LOCK_TIMEOUT=60, or unset it")


def test_serve_request_deadline_refuses_zero_and_says_its_range(monkeypatch):
    from qgn.serve.limits import DEFAULT_REQUEST_DEADLINE_S, request_deadline_s

    monkeypatch.delenv("QGN_SERVE_REQUEST_DEADLINE", raising=False)
    assert request_deadline_s() == DEFAULT_REQUEST_DEADLINE_S
    monkeypatch.setenv("QGN_SERVE_REQUEST_DEADLINE", "1e6")
    assert request_deadline_s() == 1e6
    for bad in ("0", "inf", "x"):
        monkeypatch.setenv("QGN_SERVE_REQUEST_DEADLINE", bad)
        with pytest.raises(ValueError) as caught:
            request_deadline_s()
        assert str(caught.value) == (f"the environment variable QGN_SERVE_REQUEST_DEADLINE={bad!r} is not a number "
                                     "of seconds in (0, 1000000]; set it to e.g. QGN_SERVE_REQUEST_DEADLINE=300, "
                                     "or unset it")


@pytest.mark.parametrize("name, read", [("QGN_MAX_PIXELS", "qgn.imagefile:max_pixels"),
                                        ("QGN_SERVE_MAX_TASKS", "qgn.serve.limits:max_tasks"),
                                        ("QGN_MAX_JSON_BYTES", "qgn.formats.guards:max_json_bytes"),
                                        ("QGN_MAX_WORKING_PIXELS", "qgn.model.qgn:max_working_pixels")])
def test_counts_read_1e8_and_name_the_variable_for_a_bad_value(monkeypatch, name, read):
    import importlib

    module, function = read.split(":")
    read = getattr(importlib.import_module(module), function)
    monkeypatch.setenv(name, "1e8")
    assert read() == 100_000_000
    monkeypatch.setenv(name, "lots")
    with pytest.raises(ValueError, match=rf"^the environment variable {name}='lots' is not a .* count of at least "
                                         rf"\d+ and at most 1e\+15; set it to a whole number such as {name}=\d+, "
                                         "or unset it$"):
        read()
