"""A request's JSON body, read with memory bounded by what the backend will use of it.

``json.loads`` of a 22 MB ``/predict`` body of 330,000 tiny tasks built 184 MB of dicts, though at
most ``QGN_SERVE_MAX_TASKS`` of them are ever predicted. ``parse_body`` reads the top-level object
key by key and the one list named ``list_key`` item by item: it keeps the first ``keep`` items —
of an object only its ``fields`` (a task's ``id`` and ``data``, not the annotations and predictions
Label Studio sends along) — and counts the rest, each dropped as soon as it is read. Every other
value, and the JSON's errors, are ``json``'s own.
"""
from __future__ import annotations

import json
from json.decoder import WHITESPACE, JSONDecodeError, scanstring

DECODER = json.JSONDecoder()
KINDS = {str: "string", bool: "boolean", type(None): "null"}


class CutList(list):
    """The first items of a request's list; ``total``: how many it had."""

    total = 0


def skip_space(text: str, index: int) -> int:
    return WHITESPACE.match(text, index).end()


def expect(text: str, index: int, what: str, message: str) -> int:
    """The index after ``what`` (and the whitespace after it) at ``index``, else json's error."""
    if not text.startswith(what, index):
        raise JSONDecodeError(message, text, index)
    return skip_space(text, index + len(what))


def parse_body(text: str, list_key: str, keep: int, fields: tuple[str, ...]):
    """``json.loads(text)`` but for ``list_key``'s list (see the module docstring); a body that is
    no object is not parsed: its kind is returned as a string ("list", "number", ...)."""
    index = skip_space(text, 0)
    if text.startswith("[", index):  # of any length: not read
        return "list"
    if not text.startswith("{", index):  # one value: json's error, or its kind
        return KINDS.get(type(json.loads(text)), "number")
    body, index = {}, skip_space(text, index + 1)
    if text.startswith("}", index):
        index += 1
    else:
        while True:
            if not text.startswith('"', index):
                raise JSONDecodeError("Expecting property name enclosed in double quotes", text, index)
            key, index = scanstring(text, index + 1)
            index = expect(text, skip_space(text, index), ":", "Expecting ':' delimiter")
            if key == list_key and text.startswith("[", index):
                body[key], index = parse_list(text, index, keep, fields)
            else:
                body[key], index = DECODER.raw_decode(text, index)
            index = skip_space(text, index)
            if text.startswith("}", index):
                index += 1
                break
            index = expect(text, index, ",", "Expecting ',' delimiter")
    index = skip_space(text, index)
    if index != len(text):
        raise JSONDecodeError("Extra data", text, index)
    return body


def parse_list(text: str, index: int, keep: int, fields: tuple[str, ...]) -> tuple[CutList, int]:
    """The list at ``text[index]`` (a ``[``) as a ``CutList``, and the index after it."""
    items, index = CutList(), skip_space(text, index + 1)
    if text.startswith("]", index):
        return items, index + 1
    while True:
        item, index = DECODER.raw_decode(text, index)
        items.total += 1
        if len(items) < keep:
            items.append({k: item[k] for k in fields if k in item} if isinstance(item, dict) else item)
        index = skip_space(text, index)
        if text.startswith("]", index):
            return items, index + 1
        index = expect(text, index, ",", "Expecting ',' delimiter")
