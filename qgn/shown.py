"""Text from outside — a file name, a value a client or a file sent — as a message shows it: on one
line, with line breaks and other control characters escaped (``\\n``, ``\\x1b``), so that every
failure stays the one line it promises and nothing a name holds reaches a terminal as a control
sequence; and, with ``echo``, at most so many characters of it.

Found by hostile rounds: a file named ``bad\\nname.png`` split ``qgn predict``'s error in two (and
``qgn import`` cut its reason at the break); a 1 MB image reference made a 1.1 MB error answer of
``qgn serve``, and a 60 KB request line its log line, ESC bytes as sent.
"""
from __future__ import annotations

import unicodedata

ECHO_CHARS = 200  # of one value a client sent
MESSAGE_CHARS = 2000  # of a whole error or log line of qgn serve
_BREAKING = {"Cc", "Zl", "Zp", "Cs"}  # controls, line and paragraph separators, undecodable bytes of a name


def one_line(text) -> str:
    """``text`` (another value: its ``str``) with control characters, line separators and the
    surrogates of a name's undecodable bytes escaped as Python writes them (``\\n``, ``\\udcff``)."""
    text = text if isinstance(text, str) else str(text)
    if text.isprintable():
        return text
    return "".join(c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   if unicodedata.category(c) in _BREAKING else c for c in text)


def path_text(path) -> str:
    """A file name as every message shows one: bytes that are not UTF-8 as ``\\xff`` (not Python's
    ``\\udcff``), then on one line (``one_line``)."""
    import os

    return one_line(os.fsencode(path).decode("utf-8", "backslashreplace"))


def echo(value, limit: int = ECHO_CHARS, quote: bool = False) -> str:
    """``value`` (a client's text; another value as ``str`` gives it) shown: its first ``limit``
    characters on one line (``one_line``), then ``… (N characters)`` when it has more; in single
    quotes with ``quote``."""
    text = value if isinstance(value, str) else str(value)
    shown = one_line(text[:limit]) + (f"… ({len(text)} characters)" if len(text) > limit else "")
    return f"'{shown}'" if quote else shown


def bounded(message: str, limit: int = MESSAGE_CHARS) -> str:
    """A whole message (an error ``qgn serve`` answers, a line of its log) at most ``limit``
    characters, as ``echo``."""
    return echo(message, limit)
