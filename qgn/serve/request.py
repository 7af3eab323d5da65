"""A request's body, checked before the backend uses it, and the errors it answers with: a
``RequestError`` is a 4xx naming what is wrong (``check_type``: a field's type, ``annotation_parts``:
an annotation webhook's shape, ``DELETIONS``: a deletion webhook's list); ``PassingFailure`` one
that may pass by itself. Also how an error names a task (``task_name``), a held webhook's ids
(``held_ids``) and a cached answer renamed for the task asking (``renamed``)."""
from __future__ import annotations

import json

from qgn.shown import echo


class RequestError(ValueError):
    """A request the backend cannot serve: ``status`` (4xx) and a reason for the client."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class NoLabelStudio(RequestError):
    """An image is a Label Studio address, and no Label Studio URL is known yet (/setup brings one)."""


class PassingFailure(RequestError):
    """A failure that may pass by itself: an image's server unreachable, slow or overloaded (a refused
    or reset connection, a timeout, a name the resolver cannot look up *now* (EAI_AGAIN), HTTP
    408/425/429 or a 5xx, all fetches busy) or refusing a token that /setup may renew (401/403). A
    held webhook that meets one is read again later (``HELD_RETRY_S``, for ``HELD_RETRY_FOR_S``) and
    at the next start, not set aside. Not one: a name that does not resolve, a certificate that does
    not verify (``passing``)."""


TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "a whole number", type(None): "null"}
DELETIONS = {"ANNOTATIONS_DELETED": "annotations", "TASKS_DELETED": "tasks"}  # webhook action: its list of {"id"}


def check_type(value, field: str, kinds):
    """``value`` when it is of ``kinds`` (JSON true/false is no number), else a 400 naming ``field``."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        shown = json.dumps(value)[:40] if isinstance(value, (str, int, float, bool, type(None))) else \
            f"{TYPE_NAMES.get(type(value), type(value).__name__)}"
        raise RequestError(f"{field} is {shown}; expected {' or '.join(TYPE_NAMES[k] for k in kinds)}")
    return value


def renamed(answer: dict, length: int, made_for: str, prefix: str) -> tuple[dict, int]:
    """A cached answer (and its JSON's length) whose region ids, ``<made_for>_<class>``, name the
    task asking: ``<prefix>_<class>``."""
    if prefix == made_for:
        return answer, length
    results = [dict(r, id=prefix + r["id"][len(made_for):]) for r in answer["result"]]
    grown = (len(json.dumps(prefix)) - len(json.dumps(made_for))) * len(results)
    return dict(answer, result=results), length + grown


def annotation_parts(body: dict) -> tuple[dict, dict]:
    """(task, annotation) of an annotation webhook, their fields' types checked (a 400 naming the field)."""
    from qgn.formats.labelstudio import region_kind

    task, annotation = body.get("task"), body.get("annotation")
    if not isinstance(task, dict) or not isinstance(annotation, dict):
        raise RequestError("an annotation webhook needs 'task' and 'annotation' objects")
    check_type(task.get("id"), "task.id", (int, str, type(None)))
    check_type(task.get("data"), "task.data", dict)
    check_type(annotation.get("result"), "annotation.result", list)
    for index, result in enumerate(annotation["result"]):
        where = f"annotation.result[{index}]"
        check_type(result, where, dict)
        value = result.get("value", result)
        check_type(value, f"{where}.value", dict)
        kind = region_kind(value)
        if kind:
            labels = check_type(value[kind], f"{where}.value.{kind}", list)
            if not all(isinstance(name, str) and name.strip() for name in labels):
                raise RequestError(f"{where}.value.{kind} must be a list of label names")
    return task, annotation


def held_ids(body) -> tuple | None:
    """(project id, task id, annotation id) of a held annotation webhook's body; None for another."""
    try:
        return ((body.get("project") or {}).get("id"), body["task"].get("id"), body["annotation"].get("id"))
    except (AttributeError, KeyError, TypeError):
        return None


def task_name(task, index: int):
    """How an error names a task: its id (``echo``: a client's text), else its place in the request."""
    return echo(task.get("id", index)) if isinstance(task, dict) else str(index)
