"""A request's JSON body, read from a stream with memory bounded by what the backend will use of it.

``json.loads`` of a 23.6 MB ``/predict`` body of 330,000 tiny tasks built 161 MB of objects beyond
its text, though at most ``QGN_SERVE_MAX_TASKS`` of them are ever predicted; and Label Studio sends
each task with its annotations and earlier predictions, so retrieving predictions for a project
whose tasks hold large ones made a body over any fixed limit (a 413, and Label Studio stored
nothing). ``read_body`` reads the top-level object value by value from a stream (the server
spools the body into a temporary file first: it must take it as fast as it comes), and the list
named ``list_key`` item by item: it keeps the first ``keep`` items while their kept part — of an
object only its ``fields`` (a task's ``id`` and ``data``) — comes to at most ``keep_chars``, counts
the rest, and drops each as soon as it is read. What it holds at once: about three times the largest
single value (at most ``max_value`` characters, else ``ValueTooLarge``) and the items kept (an 82 MB
body of 20 tasks with a 4 MB earlier prediction each: a 31 MB peak, against 232 MB for
``json.loads``, in 1.6 times its time). Values are parsed by ``json`` itself; a body that is not
JSON raises ``NotJSON`` with json's reason and where.
"""
from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from json.decoder import WHITESPACE, JSONDecodeError

DECODER = json.JSONDecoder()
KINDS = {str: "string", bool: "boolean", type(None): "null", list: "list"}
CHUNK = 1 << 20
MARGIN = 64  # a value parsed this near the end of what has arrived may go on (a number: "12" of "125")


class NotJSON(ValueError):
    pass


class ValueTooLarge(ValueError):
    pass


class CutList(list):
    """The first items of a request's list: ``total`` how many it had, ``full`` whether the kept
    part's size (not the count) stopped the keeping."""

    total = 0
    full = False


class Stream:
    """The body's text as it arrives: ``buf[pos:]`` is what is read and not yet parsed."""

    def __init__(self, read: Callable[[int], bytes], max_value: int):
        self.read, self.max_value = read, max_value
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf, self.pos, self.base, self.eof = "", 0, 0, False

    def more(self, at_least: int = CHUNK) -> None:
        """Read on (``at_least`` bytes when there are), dropping what was parsed."""
        if self.pos > len(self.buf) // 2:
            self.base, self.buf, self.pos = self.base + self.pos, self.buf[self.pos:], 0
        data = self.read(max(CHUNK, at_least))
        self.eof = not data
        self.buf += self.decoder.decode(data, final=self.eof)

    def skip(self) -> None:
        """Past whitespace; then ``buf[pos]`` is the next character, or the body has ended."""
        while True:
            self.pos = WHITESPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or self.eof:
                return
            self.more()

    def at(self, char: str) -> bool:
        self.skip()
        return self.buf.startswith(char, self.pos)

    def expect(self, char: str, message: str) -> None:
        if not self.at(char):
            self.fail(message, self.pos)
        self.pos += 1

    def fail(self, message: str, pos: int):
        raise NotJSON(f"{message} at character {self.base + pos}")

    def value(self):
        """The JSON value at ``pos``, parsed by json once all of it has arrived."""
        self.skip()
        while True:
            try:
                value, end = DECODER.raw_decode(self.buf, self.pos)
                if self.eof or end + MARGIN < len(self.buf):
                    self.pos = end
                    return value
            except JSONDecodeError as exc:
                if self.eof:
                    self.fail(exc.msg, exc.pos)
            except ValueError as exc:  # an integer of more digits than int() takes (sys.get_int_max_str_digits)
                self.fail(f"a number of too many digits ({exc.args[0].split(':')[0]})", self.pos)
            if len(self.buf) - self.pos > self.max_value:
                raise ValueTooLarge(f"a value at character {self.base + self.pos} is more than {self.max_value} "
                                    "characters")
            self.more(2 * (len(self.buf) - self.pos))  # twice as much again: a long value is parsed a few times

    def end(self) -> None:
        self.skip()
        if self.pos < len(self.buf):
            self.fail("Extra data", self.pos)


def read_body(read: Callable[[int], bytes], list_key: str | None, keep: int, fields: tuple[str, ...],
              keep_chars: int, max_value: int):
    """The body's object (see the module docstring), or for a body that is no object its kind as a
    string ("list", "string", ...; a list is not read at all). ``read(n)``: up to n more bytes, b""
    at the end."""
    stream = Stream(read, max_value)
    if stream.at("["):
        return "list"
    if not stream.at("{"):
        value = stream.value()
        stream.end()
        return KINDS.get(type(value), "number")
    stream.pos += 1
    body = {}
    if stream.at("}"):
        stream.pos += 1
    else:
        while True:
            if not stream.at('"'):
                stream.fail("Expecting property name enclosed in double quotes", stream.pos)
            key = stream.value()
            stream.expect(":", "Expecting ':' delimiter")
            if key == list_key and stream.at("["):
                body[key] = read_list(stream, keep, fields, keep_chars)
            else:
                body[key] = stream.value()
            if stream.at("}"):
                stream.pos += 1
                break
            stream.expect(",", "Expecting ',' delimiter")
    stream.end()
    return body


def read_list(stream: Stream, keep: int, fields: tuple[str, ...], keep_chars: int) -> CutList:
    """The list at the stream's ``[``: its first items, each trimmed to ``fields``, while they
    are at most ``keep`` and their JSON at most ``keep_chars`` characters; the rest counted."""
    items, kept = CutList(), 0
    stream.pos += 1
    if stream.at("]"):
        stream.pos += 1
        return items
    while True:
        item = stream.value()
        items.total += 1
        if len(items) < keep and not items.full:
            item = {k: item[k] for k in fields if k in item} if isinstance(item, dict) else item
            kept += len(json.dumps(item))
            if kept <= keep_chars:
                items.append(item)
            else:
                items.full = True
        if stream.at("]"):
            stream.pos += 1
            return items
        stream.expect(",", "Expecting ',' delimiter")
