"""The limits a deployment moves with environment variables (``QGN_MAX_PIXELS``,
``QGN_PROJECT_LOCK_TIMEOUT``, ``QGN_SERVE_MAX_TASKS`` …), read the one way: unset or blank is the
default; a value that is not one is a ValueError naming the variable, its value and the fix.

``env_count(name, default, what, example)``: a whole number (``1e8`` is accepted);
``env_seconds(name, default, example)``: seconds.
"""
from __future__ import annotations

import math
import os

#: The largest count an environment variable may set (a petabyte, a quadrillion pixels).
MAX_ENV_COUNT = 1e15
#: The longest time in seconds an environment variable may set (about 11 days).
MAX_ENV_SECONDS = 1e6


def env_text(name: str) -> str:
    """The value of ``name``, stripped; "" when unset."""
    return os.environ.get(name, "").strip()


def env_count(name: str, default: int, what: str, example: int, low: int = 1) -> int:
    """``name`` as a whole number of at least ``low`` and at most ``MAX_ENV_COUNT``, else ``default``
    when unset; ``what``: what it counts ("pixel count"), ``example``: a value the error suggests."""
    text = env_text(name)
    return count_from_env(name, text, what, example, low) if text else default


def count_from_env(name: str, text: str, what: str, example: int, low: int = 1) -> int:
    """``text``, the value of the environment variable ``name``, as a whole number of at least
    ``low`` (``1e8`` is accepted); ValueError naming the variable and an example value otherwise
    (``abc``, ``inf``, ``nan``, ``1e400``, ``0``)."""
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not math.isfinite(number) or not MAX_ENV_COUNT >= number >= low:
        raise ValueError(f"the environment variable {name}={text!r} is not a {what} of at least {low} and at most "
                         f"{MAX_ENV_COUNT:.0e}; set it to a whole number such as {name}={example}, or unset it")
    return int(number)


def env_seconds(name: str, default: float, example: int, zero: bool = False) -> float:
    """``name`` as seconds in (0, ``MAX_ENV_SECONDS``] (``zero``: 0 too), else ``default`` when unset."""
    text = env_text(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 <= value if zero else 0 < value) or not value <= MAX_ENV_SECONDS:
        span = f"0..{MAX_ENV_SECONDS:.0f}" if zero else f"(0, {MAX_ENV_SECONDS:.0f}]"
        raise ValueError(f"the environment variable {name}={text!r} is not a number of seconds in {span}; "
                         f"set it to e.g. {name}={example}, or unset it")
    return value
