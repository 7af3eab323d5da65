"""The limits of ``qgn serve`` that a deployment may need to move, each a default and an environment
variable that overrides it (as ``QGN_MAX_PIXELS``, ``QGN_MAX_JSON_BYTES``). They are read when a
server or backend is made, so a bad value stops ``qgn serve`` at start with one error naming the
variable.

- ``QGN_SERVE_MAX_TASKS`` (1000): the most tasks one ``/predict`` answers;
- ``QGN_SERVE_MAX_RESPONSE_BYTES`` (64 MiB): the most bytes of results one ``/predict`` answers;
- ``QGN_SERVE_REQUEST_DEADLINE`` (120 s): the time a request's line, headers and body have to arrive
  in all (each read also waits at most 60 s: a client dripping a byte now and then is cut off here);
- ``QGN_SERVE_PREDICT_DEADLINE`` (90 s): the time one ``/predict`` has for its tasks, counted from
  its body's arrival — Label Studio gives up on an answer after 100 s (``ML_TIMEOUT_PREDICT``,
  label_studio/ml/api_connector.py), so a batch must answer before then; a task starts only while
  the slowest one so far still fits (see ``QGNBackend.collect``).
"""
from __future__ import annotations

from qgn.env import env_count, env_seconds

MAX_TASKS_ENV = "QGN_SERVE_MAX_TASKS"
DEFAULT_MAX_TASKS = 1000
MAX_RESPONSE_BYTES_ENV = "QGN_SERVE_MAX_RESPONSE_BYTES"
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
REQUEST_DEADLINE_ENV = "QGN_SERVE_REQUEST_DEADLINE"
DEFAULT_REQUEST_DEADLINE_S = 120.0
PREDICT_DEADLINE_ENV = "QGN_SERVE_PREDICT_DEADLINE"
DEFAULT_PREDICT_DEADLINE_S = 90.0


def max_tasks() -> int:
    return env_count(MAX_TASKS_ENV, DEFAULT_MAX_TASKS, "task count", example=5000)


def max_response_bytes() -> int:
    return env_count(MAX_RESPONSE_BYTES_ENV, DEFAULT_MAX_RESPONSE_BYTES, "byte count", example=268435456)


def request_deadline_s() -> float:
    return env_seconds(REQUEST_DEADLINE_ENV, DEFAULT_REQUEST_DEADLINE_S, example=300)


def predict_deadline_s() -> float:
    return env_seconds(PREDICT_DEADLINE_ENV, DEFAULT_PREDICT_DEADLINE_S, example=60)
