"""A client's text as ``qgn serve`` repeats it, in an error it answers or a line of its log: at
most ``ECHO_CHARS`` characters of any one value (a task id, an image reference, a path), its
control characters escaped, so that a request cannot make an answer (or the log) as large as
itself, nor send escape sequences to the terminal that shows the log. A 1 MB image reference made
a 1.1 MB error answer; a 60 KB request line a 60 KB log line with its ESC bytes as sent.
``bounded`` caps a whole message the same way, the net under every answer's error and log line.
"""
from __future__ import annotations

ECHO_CHARS = 200  # of one value a client sent
MESSAGE_CHARS = 2000  # of a whole error or log line


def _escaped(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def echo(value, limit: int = ECHO_CHARS, quote: bool = False) -> str:
    """``value`` (a client's text; another value as ``str`` gives it) shown: its first ``limit``
    characters with control characters escaped (``\\x1b``), then ``… (N characters)`` when it has
    more; in single quotes with ``quote``."""
    text = value if isinstance(value, str) else str(value)
    shown = _escaped(text[:limit]) + (f"… ({len(text)} characters)" if len(text) > limit else "")
    return f"'{shown}'" if quote else shown


def bounded(message: str, limit: int = MESSAGE_CHARS) -> str:
    """A whole message (an error answered, a log line) at most ``limit`` characters, as ``echo``."""
    return echo(message, limit)
