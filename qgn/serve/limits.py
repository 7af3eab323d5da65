"""The limits of ``qgn serve`` that a deployment may need to move, each a default and an environment
variable that overrides it (as ``QGN_MAX_PIXELS``, ``QGN_MAX_JSON_BYTES``). They are read when a
server or backend is made, so a bad value stops ``qgn serve`` at start with one error naming the
variable.

- ``QGN_SERVE_MAX_TASKS`` (1000): the most tasks one ``/predict`` answers;
- ``QGN_SERVE_MAX_RESPONSE_BYTES`` (64 MiB): the most bytes of results one ``/predict`` answers;
- ``QGN_SERVE_REQUEST_DEADLINE`` (120 s): the time a request's line, headers and body have to arrive
  in all (each read also waits at most 60 s: a client dripping a byte now and then is cut off here).
"""
from __future__ import annotations

import os

from qgn.imagefile import count_from_env

MAX_TASKS_ENV = "QGN_SERVE_MAX_TASKS"
DEFAULT_MAX_TASKS = 1000
MAX_RESPONSE_BYTES_ENV = "QGN_SERVE_MAX_RESPONSE_BYTES"
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
REQUEST_DEADLINE_ENV = "QGN_SERVE_REQUEST_DEADLINE"
DEFAULT_REQUEST_DEADLINE_S = 120.0


def max_tasks() -> int:
    text = os.environ.get(MAX_TASKS_ENV, "").strip()
    return count_from_env(MAX_TASKS_ENV, text, "task count", example=5000) if text else DEFAULT_MAX_TASKS


def max_response_bytes() -> int:
    text = os.environ.get(MAX_RESPONSE_BYTES_ENV, "").strip()
    return count_from_env(MAX_RESPONSE_BYTES_ENV, text, "byte count", example=268435456) if text \
        else DEFAULT_MAX_RESPONSE_BYTES


def request_deadline_s() -> float:
    text = os.environ.get(REQUEST_DEADLINE_ENV, "").strip()
    if not text:
        return DEFAULT_REQUEST_DEADLINE_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1e6:
        raise ValueError(f"the environment variable {REQUEST_DEADLINE_ENV}={text!r} is not a number of seconds in "
                         f"(0, 1000000]; set it to e.g. {REQUEST_DEADLINE_ENV}=300, or unset it")
    return value
