"""The Annotator's class changes: renaming, recolouring, adding and deleting (merging) a class of the
open maps, their undo and redo, and each project's own class-change history.

``AnnotatorClassChangesMixin`` is a base of ``qgn_studio.annotator.Annotator`` (its methods were the Annotator's;
it has no state or ``__init__`` of its own). A change is made of the classes in use by name
(``_edit_classes``), waits while another is under way (``_queued_edits``, ``replay_class_edits``), and
is applied to the open maps (``apply_class_edit``): one that moves pixels remaps the maps, their
references, live pyramids and undo logs on the job thread (``remap_parts``, ``_remap_open_maps``), the
maps taking no edit meanwhile (``_edits_blocked``); the project controller then applies it to the
project's files (``class_edited``), records its inverse (``record_class_inverse``) or, when it cannot,
has it reverted (``revert_class_edit``).

Annotator state it writes: ``class_undo``, ``class_redo`` (the history), ``_class_snapshots`` (what
each change took from the open maps), ``_forward_of`` (undo step → the change it undoes),
``_class_histories`` (the histories of the projects left), ``_queued_edits``, ``_made_by``,
``_class_change`` (the remap under way), ``_after_class_change``, ``class_edit_backup``,
``project_classes``, the workspace's class set and the open sessions' maps. It reads: ``workspace``,
``panel``, ``tools``, ``jobs``, ``classes``, ``class_undo_action``/``class_redo_action``, the hooks the
projects set (``class_edit_owner``, ``class_edits_wait``, ``following_other_change``, ``file_key``,
``saved_annotations``), the injectable choices (``choose_colour``, ``choose_class_name``,
``choose_merge_target``), and calls back ``_warn``, ``_carry_keys``, ``_class_changed``,
``_name_class_actions`` and the signals ``class_edited``, ``class_set_edited``.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PySide6 import QtCore

from qgn_studio.annotation_doc import LivePyramid
from qgn_studio.jobs import STOPPED

APPLYING_CLASS_CHANGE = "Applying the class change…"
ANY_OWNER = object()  # the class-change history of the project open now (``Annotator._history_of``)
NO_LONGER_OPEN = "it was asked "  # ... in a project left (or without one) while its open maps were remapped
KEPT_HISTORIES = 8  # class-change histories of projects left kept (each may hold the pixels a merge took)


def remap_parts(edit, label, annotation_reference, session_reference, source, levels, tag, patch):
    """(Job thread) what ``Annotator._adopt_remap`` takes of an open map ``label`` (of ``edit.before``)
    in ``edit.after``: the remapped map (with the restore patch of file ``tag`` and the ``patch`` of a
    snapshot put back where nobody painted since), checked and copied as an ``Annotation`` of
    ``source`` and ``levels`` with its reference remapped, the session's reference remapped, the live
    pyramid, and what the edit takes from the map (``PixelsBeforeRemap`` or None)."""
    from qgn.annotation import Annotation
    from qgn.classes_edit import inverse_patch, remap_label
    from qgn_studio.tools.commands import PixelsBeforeRemap

    new = remap_label(label, edit, tag)
    if patch is not None:  # the pixels of a merged or deleted class, where nobody painted since
        index, wrote, value = patch.patch()
        index, wrote, value = index[index < new.size], wrote[index < new.size], value[index < new.size]
        same = label.reshape(-1)[index] == wrote
        new.reshape(-1)[index[same]] = value[same].astype(new.dtype)
    taken = inverse_patch(label, edit)
    annotation = Annotation(new, edit.after, source, levels)
    annotation.reference = remap_label(annotation_reference, edit)
    return SimpleNamespace(
        annotation=annotation, taken=None if taken is None else PixelsBeforeRemap(taken, label, edit.lut()),
        reference=None if session_reference is None else remap_label(session_reference, edit),
        pyramid=LivePyramid(annotation.label, edit.after.num_classes, edit.after.ignore_index))


def class_named(classes, name: str) -> int:
    """The id of the class ``name`` in ``classes``; ValueError naming it when it is not there (a class
    change that waited for another writer's, which renamed or deleted it)."""
    from qgn.classes import find_class

    found = find_class(classes, name)  # the same name (a case-only rename elsewhere keeps it: 'road', 'Road')
    if found is None:
        raise ValueError(f"there is no class {name!r} now (a class change made meanwhile renamed or deleted it: "
                         "one of yours that waited before it, or another window's or command's); choose the class "
                         "again")
    return found


def deleting(classes, class_id: int, to: int | None):
    """``make_edit`` of deleting class ``class_id`` of ``classes`` (into class ``to``, None: to
    ignore), naming the classes by name: made again on other classes, it deletes the same ones."""
    from qgn.classes_edit import delete_class

    name, into = classes.names[class_id], None if to is None else classes.names[to]
    return lambda c: delete_class(c, class_named(c, name), None if into is None else class_named(c, into))


class AnnotatorClassChangesMixin:
    """The class changes of the open maps (see the module docstring); a base of ``Annotator``."""

    def rename_class(self, class_id: int, name: str) -> None:
        from qgn.classes_edit import rename_class

        name = name.strip()
        if not name or self.classes is None or name == self.classes.names[class_id]:
            self.panel.set_classes(self.classes)
            return
        old = self.classes.names[class_id]
        self._edit_classes(lambda c: rename_class(c, class_named(c, old), name))

    def recolour_class(self, class_id: int, rgb=None) -> None:
        from qgn.classes_edit import recolour_class

        if self.classes is None:
            return
        if rgb is None:
            rgb = self.choose_colour(self.classes.palette[class_id], self.classes.names[class_id])
            if rgb is None:
                return
        old = self.classes.names[class_id]
        self._edit_classes(lambda c: recolour_class(c, class_named(c, old), rgb))

    def add_class(self, name: str | None = None) -> None:
        """A new class (its name asked when not given)."""
        from qgn.classes_edit import add_class

        if self.classes is None:
            return
        if name is None:
            name = self.choose_class_name()
            if name is None:
                return
        self._edit_classes(lambda c: add_class(c, name))

    def remove_class(self, class_id: int, to: int | None = -1) -> None:
        """Delete class ``class_id``: its pixels go to class ``to`` (a merge) or, with None, to
        ignore; ``to=-1`` asks which."""
        if self.classes is None or not 0 <= class_id < self.classes.num_classes:
            return
        if to == -1:
            self._count_then_ask(class_id)
            return
        self._edit_classes(deleting(self.classes, class_id, to))

    def _count_then_ask(self, class_id: int) -> None:
        """Count the class's pixels in the open and the saved annotations (job thread), then ask
        where they go, saying how many pixels and images change."""
        classes = self.classes
        # the open maps as they are now, counted on the job thread too (10-20 ms per 24-megapixel map held
        # the UI thread at each Delete); a stroke meanwhile may be counted or not, as a moment later
        maps = {doc.path: doc.annotation.label for doc in self.workspace.docs if doc.annotation is not None}
        counts: dict = {}
        saved = ((Path(im.path), load) for im, load in self.saved_annotations()  # looked for in count()
                 if Path(im.path) not in maps)

        def count() -> dict:
            for path, label in maps.items():
                counts[path] = int(np.count_nonzero(label == class_id))
            for path, load in saved:
                try:
                    counts[path] = int(np.count_nonzero(load() == class_id))
                except Exception:  # an unreadable file is reported where it is opened
                    continue
            return counts

        def counted(result: dict) -> None:
            if self.classes is not classes:
                return
            pixels, images = sum(result.values()), sum(1 for v in result.values() if v)
            to = self.choose_merge_target(class_id, pixels, images)
            if to != -1:
                self._edit_classes(deleting(classes, class_id, to))

        self.jobs.submit(count, counted, lambda message: self._warn(f"Cannot count the class: {message}"),
                                "Counting the class's pixels")

    def undo_class_edit(self) -> None:
        """Undo the latest class change (its inverse, with the pixels a merge or delete moved)."""
        self._step_class_edit(self.class_undo, "undo")

    def redo_class_edit(self) -> None:
        """Redo the latest undone class change."""
        self._step_class_edit(self.class_redo, "redo")

    def record_class_inverse(self, edit, inverse, kind: str, owner=ANY_OWNER) -> None:
        """The project applied ``edit`` (``kind`` "do", "undo", "redo") and made its ``inverse``:
        a change or a redo can be undone by the inverse; an undo is redone by the change it
        undid (a merge again, not the deletion the inverse of an inverse would be). ``owner``: the root
        of the project it was made in (the history of that project, kept aside when it is no longer open)."""
        undo, redo = self._history_of(owner)
        if kind == "undo":
            redo.append(self._forward_of.pop(id(edit), (None, inverse))[1])
        else:
            undo.append(inverse)
            self._forward_of[id(inverse)] = (inverse, edit)  # (the inverse kept alive: its id stays its own)
        self.refresh_class_buttons()

    def _history_of(self, owner) -> tuple[list, list]:
        """(undo, redo) of the project at ``owner`` (ANY_OWNER: the one open): kept aside when it is not."""
        if owner is ANY_OWNER or owner == self.class_edit_owner():
            return self.class_undo, self.class_redo
        undo, redo, _snapshots = self._class_histories.setdefault(owner, ([], [], {}))
        return undo, redo

    def refresh_class_buttons(self) -> None:
        """The class list's Undo and Redo: enabled only with a class change to take back or redo, their
        tooltips naming it (Ctrl+Z, beside them in the History, walks the strokes, never these)."""
        buttons = self.panel.class_buttons
        undo = self.class_undo[-1] if self.class_undo else None
        undo_name = self._forward_of.get(id(undo), (None, undo))[1].description if undo is not None else ""
        redo_name = self.class_redo[-1].description if self.class_redo else ""
        for button, name, verb in ((buttons["undo"], undo_name, "Undo"), (buttons["redo"], redo_name, "Redo")):
            action = self.class_undo_action if verb == "Undo" else self.class_redo_action
            if action is not None:
                action.setEnabled(bool(name))
                action.setText(f"{verb} class change: {name.replace('&', '&&')}" if name else f"{verb} class change")
            button.setEnabled(bool(name))
            button.setToolTip(f"{verb} the class change “{name}”, pixels included (not Ctrl+{'Z' if verb == 'Undo' else 'Y'}: "
                              "that walks the strokes)" if name else f"No class change to {verb.lower()}")

    def _step_class_edit(self, stack: list, kind: str) -> None:
        if not stack:
            self.workspace.show_status(f"No class change to {kind}", 4000)
            return
        if self._class_change is not None or self.class_edits_wait():
            # refused, its step kept where it is: queued, it would come after the change under way, on
            # classes it was not made of (an undo or redo step is of the classes before it), and be dropped
            if self._class_change is None and self.following_other_change():
                # the reload that follows it starts a new class-change history (its steps were of the old classes)
                self.workspace.show_status(
                    f"Cannot {kind} the class change now: another window's or command's class change is being "
                    f"followed here, and the class changes before it can no longer be {kind}ne", 8000)
                return
            self.workspace.show_status(f"{APPLYING_CLASS_CHANGE} Try the {kind} again in a moment", 6000)
            return
        edit = stack.pop()
        self.refresh_class_buttons()
        if edit.before != self.classes:
            self.workspace.show_status(f"The classes changed since; that class change cannot be {kind}ne",
                                                6000)
            return
        self._edit_classes(lambda c: edit, kind)

    def _edit_classes(self, make_edit, undoable: bool | str = True, retried: bool = False,
                      waited: str | None = None) -> None:
        """Make the class edit ``make_edit(classes)`` of the classes in use and apply it. While a class
        change is under way (ours, remapping the open maps or in the project's rewrite, or another
        writer's being followed here) it waits and is made once that one is in, on the classes then
        (``make_edit`` names the classes by name, so it follows a reload), rather than refused or made
        of classes about to change - in the project it was asked in only (see ``replay_class_edits``).
        ``waited``: its description when it was asked, for one that waited."""
        if self._class_change is not None or self.class_edits_wait():
            owner = self.class_edit_owner()
            try:
                asked = make_edit(self.classes)
            except ValueError:
                asked = None
            what = None if asked is None else asked.description
            last = self._queued_edits[-1] if self._queued_edits else None  # (only the latest: red, blue,
            if asked is not None and undoable is True and last is not None and (  # red again must end red)
                    last[3] == owner and last[4] == what and last[1] is True and self._same_change(last[0], asked)):
                self.panel.set_classes(self.classes)  # asked again while it waits (the list shows the old classes)
                self._show_waiting()
                return
            self._queued_edits.append((make_edit, undoable, retried, owner, what))
            self.panel.set_classes(self.classes)
            self._show_waiting()
            return
        try:
            edit = make_edit(self.classes)
        except ValueError as exc:
            if waited is not None:
                self._warn(f"Cannot make “{waited}” (it waited for the class change before it): {exc}")
            else:
                self._warn(f"Cannot change the classes: {exc}")
            self.panel.set_classes(self.classes)
            return
        if edit.before != self.classes:  # (an undo or redo step is never queued: see _step_class_edit)
            self.workspace.show_status("The classes changed since; that class change cannot be "
                                       f"{'redone' if undoable == 'redo' else 'undone'}", 6000)
            if undoable is not True:
                self.put_back_class_step(edit, "redo" if undoable == "redo" else "undo")
            self.panel.set_classes(self.classes)
            return
        self._made_by = (edit, make_edit, retried, self.class_edit_owner()) if undoable is True else None
        self.apply_class_edit(edit, undoable)

    def _same_change(self, make_edit, asked) -> bool:
        """Whether the latest waiting change ``make_edit`` makes of the classes in use what ``asked`` (made
        of them) makes: the same classes after and the same moves of the pixels - not only the same words
        (a recolour's description does not name the colour: a second recolour of a class to another
        colour is a new change, not the first asked again)."""
        try:
            waiting = make_edit(self.classes)
        except ValueError:
            return False
        return waiting.after == asked.after and waiting.value_map == asked.value_map

    def _show_waiting(self) -> None:
        """The status while class changes of ours wait: it stays until one of them is made, fails or is
        dropped (each says so), naming them (the class list shows the classes in use until then)."""
        names = [w for *_rest, w in self._queued_edits if w]
        one = len(self._queued_edits) == 1
        self.workspace.show_status(f"{APPLYING_CLASS_CHANGE} Yours wait{'s' if one else ''} and follow{'s' if one else ''} it"
                                   + (": " + ", ".join(f"“{w}”" for w in names) if names else ""), 0)

    def replay_class_edits(self) -> None:
        """The class changes that waited (see ``_edit_classes``), in order, once none is under way: until
        none waits or one is under way again (a remap of the open maps, or the project's rewrite, whose
        end calls this again) - a rename or recolour of no project, or one that cannot be made now
        (ValueError, said), is made or said at once, and the next follows. Those asked in another project
        than the one open now are not made (said, ``drop_queued_class_edits``)."""
        self.drop_queued_class_edits(self.class_edit_owner())
        while self._queued_edits and self._class_change is None and not self.class_edits_wait():
            make_edit, undoable, retried, _owner, what = self._queued_edits.pop(0)
            self._edit_classes(make_edit, undoable, retried, waited=what)
        if self._queued_edits:
            self._show_waiting()

    def drop_queued_class_edits(self, owner, why: str = "") -> list:
        """Forget the class changes that wait and were asked in another project than ``owner`` (its root;
        None: none open), said in one line: a change made of one project's classes is never made in
        another's (the project was closed, another opened, or the window closes: ``why``). Returns what
        was dropped (their descriptions)."""
        dropped = [e for e in self._queued_edits if e[3] != owner]
        if not dropped:
            return []
        self._queued_edits = [e for e in self._queued_edits if e[3] == owner]
        if self._made_by is not None and self._made_by[3] != owner:
            self._made_by = None
        names = [e[4] or "a class change" for e in dropped]
        where = dropped[0][3]
        self._warn(f"Not made: {', '.join(f'“{n}”' for n in names)} - "
                   f"{'it' if len(names) == 1 else 'they'} waited for the class change before "
                   f"{'it' if len(names) == 1 else 'them'}, and "
                   + (why or (f"the project {where.name} is no longer open" if where is not None
                              else "the window's classes are now a project's")))
        return names

    def retry_class_edit_later(self, edit) -> bool:
        """The project refused the new class change ``edit`` because another writer changed the project
        meanwhile: make it again (once) after that writer's change is followed here, first of those
        waiting (in the project it was asked in only). False when it cannot be (not a new change, or
        already a retry)."""
        made = self._made_by
        if made is None or made[0] is not edit or made[2]:
            return False
        self._made_by = None
        self._queued_edits.insert(0, (made[1], True, True, made[3], edit.description))
        return True

    def apply_class_edit(self, edit, undoable: bool | str = True) -> None:
        """Apply a ``qgn.classes_edit.ClassEdit`` to the open annotations and announce it: the
        project controller applies it to every saved annotation and autosave (one atomic step)
        and records its inverse in ``class_undo``. ``undoable``: True (a new change), False or
        "undo" (an undo: its inverse goes to ``class_redo``), "redo". An edit that moves pixels
        (merge, delete, a moved ignore value) remaps the open maps and every step of their undo
        logs, so Ctrl+Z still walks the image's history in the new classes; undoing it gives the
        open maps and their logs back exactly (the pixels of a merged class included).

        The open maps' new pixels, references, checks and live pyramids (~0.5 s or more for a
        24-megapixel map) are made on the job thread (``remap_parts``); meanwhile the maps take no
        edit ("Applying the class change…") and the class set, the workspace and the project stay as
        they were, so a save or autosave writes a map of the old classes into the project of the old
        classes, before the project's rewrite (submitted once the maps are remapped). The UI thread
        then adopts the parts and remaps the undo logs' steps (small patches)."""
        kind = "do" if undoable is True else "undo" if undoable is False else undoable
        if self._class_change is not None:
            self._refuse_during_class_change(edit, kind)
            return
        if not edit.moves_pixels:
            for doc in self.workspace.docs:
                if doc.annotation is not None:
                    doc.annotation.classes = edit.after
            self._class_edit_applied(edit, kind)
            return
        snapshot = self._class_snapshots.pop((edit.after, edit.before), {}) if kind != "do" else {}
        # the project's history (another project opened meanwhile keeps its own: ``switch_class_history``)
        stack, snapshots = self.class_undo if kind == "undo" else self.class_redo, self._class_snapshots

        def done(taken) -> None:
            if kind == "do":  # (before its own snapshot goes in: a redo step's key may be the same)
                self._clear_redo()
            self._class_snapshots[(edit.before, edit.after)] = taken
            while len(self._class_snapshots) > 64:
                self._class_snapshots.pop(next(iter(self._class_snapshots)))
            self._class_edit_applied(edit, kind)

        def failed(message: str) -> None:
            if kind != "do":  # the step goes back on its list (what it puts back with it): it can be tried again
                stack.append(edit)
                snapshots[(edit.after, edit.before)] = snapshot
                self.refresh_class_buttons()
            self.panel.set_classes(self.classes)
            if message == STOPPED:
                pass
            elif message.startswith(NO_LONGER_OPEN):  # (another project opened meanwhile: its maps untouched)
                what = {"do": "made", "undo": "undone", "redo": "redone"}[kind]
                step = self.forward_description(edit) if kind == "undo" else edit.description
                self._warn(f"Not {what}: “{step}” - {message}; nothing changed in it")
            else:
                self._warn(f"Cannot change the classes: {message}. Nothing changed")

        self._remap_open_maps(edit, snapshot, done, failed)

    def _class_edit_applied(self, edit, kind: str) -> None:
        self.class_edit_backup = edit  # until the project has applied it (see revert_class_edit)
        if edit.after.num_classes != edit.before.num_classes or edit.after.ignore_index != edit.before.ignore_index:
            self.project_classes = True  # the user's own class set now: a model's classes no longer replace it
        if kind == "do":
            self._clear_redo()
            self.refresh_class_buttons()
        self.class_edited.emit((edit, kind))  # first: the project queues its rewrite before the class write
        self._carry_keys(edit)
        self._replace_classes(edit.after)
        self.workspace.show_status(edit.description, 6000)

    def after_class_change(self, call) -> None:
        """``call()`` once the class change under way is in (its remap done or failed); now when none is."""
        if self._class_change is None:
            call()
        else:
            self._after_class_change.append(call)

    def _class_change_over(self) -> None:
        waiting, self._after_class_change = self._after_class_change, []
        for call in waiting:
            call()

    def class_change_pending(self) -> bool:
        """Whether a class change's remap of the open maps is under way (the maps take no edit)."""
        return self._class_change is not None

    def _edits_blocked(self) -> str | None:
        """Why the open maps take no edit now (a class change is being applied), or None."""
        return None if self._class_change is None else APPLYING_CLASS_CHANGE

    def _refuse_during_class_change(self, edit, kind: str) -> None:
        if kind != "do":
            (self.class_undo if kind == "undo" else self.class_redo).append(edit)
            self.refresh_class_buttons()
        self.panel.set_classes(self.classes)
        self.workspace.show_status(f"{APPLYING_CLASS_CHANGE} “{edit.description}” waits: try again in a moment", 6000)

    def _remap_open_maps(self, edit, snapshot: dict, done, failed) -> None:
        """Remap every open map, its reference and live pyramid into ``edit.after`` on the job thread
        (``remap_parts``), then, on the UI thread, adopt them and remap the undo logs; then
        ``done(taken)`` ({path: what the edit took}, see ``_remap_session``). Until then the maps take
        no edit. A map opened or changed meanwhile (it should not be) is remapped here, as before."""
        self.tools.finish_stroke()
        self._class_change = edit
        owner = self.class_edit_owner()  # the project it is of: another one opened meanwhile is not remapped
        self.workspace.show_status(APPLYING_CLASS_CHANGE, 0)
        inputs = []
        for doc in self.workspace.docs:
            session = doc.annotation
            if session is None:
                continue
            old = session.annotation
            tag, patch, before_edits = self._remap_inputs(doc, edit, snapshot.get(doc.path))
            inputs.append((doc, session, session.version, old, session.reference, before_edits,
                           (old.label, old.reference, session.reference, old.source, old.levels, tag, patch)))

        def run() -> list:
            return [(doc, session, version, old, reference, before_edits, remap_parts(edit, *args))
                    for doc, session, version, old, reference, before_edits, args in inputs]

        def made(results: list) -> None:
            self._class_change = None
            self.workspace.show_status("", 0)
            QtCore.QTimer.singleShot(0, self, self.replay_class_edits)
            if self.class_edit_owner() != owner:  # another project opened (or none): its maps are not of this
                # change, nor is it made there - of the same classes, it was (a merge asked in P made in Q)
                failed(NO_LONGER_OPEN + ("without a project, and a project is open now" if owner is None
                                         else f"in the project {owner.name}, no longer open here"))
                self._class_change_over()
                return
            if self.classes != edit.before:  # replaced meanwhile (another writer's, followed): not ours to remap
                failed("the classes changed meanwhile")
                self._class_change_over()
                return
            taken, remapped = {}, set()
            for doc, session, version, old, reference, before_edits, parts in results:
                if doc.annotation is not session:
                    continue  # closed meanwhile: its files follow the project's rewrite
                remapped.add(doc.path)
                if session.version != version or session.annotation is not old or session.reference is not reference:
                    taken[doc.path] = self._remap_session(doc, edit, snapshot.get(doc.path))  # changed: again
                else:
                    taken[doc.path] = self._adopt_remap(session, edit, parts, before_edits)
            for doc in self.workspace.docs:
                if doc.annotation is not None and doc.path not in remapped:  # opened meanwhile
                    taken[doc.path] = self._remap_session(doc, edit, snapshot.get(doc.path))
            done(taken)
            self._class_change_over()

        def not_made(message: str) -> None:
            self._class_change = None
            self.workspace.show_status("", 0)
            QtCore.QTimer.singleShot(0, self, self.replay_class_edits)
            failed(message)
            self._class_change_over()

        self.jobs.submit(run, made, not_made, APPLYING_CLASS_CHANGE)

    def revert_class_edit(self, edit, then=None) -> None:
        """The project could not apply ``edit`` (its files keep the old classes): the open maps,
        their undo logs and the class set go back to ``edit.before``. Pixels painted since the
        edit keep their paint (mapped back); the others, the pixels of a merged or deleted class
        included, get their value from before the edit (what the edit took from the open maps).
        The maps are remapped on the job thread (see ``apply_class_edit``); the class set goes
        back once they are. Should that job fail, it is tried once more there (never on the UI
        thread: seconds of remapping, and twice the maps' memory); should that fail too, the maps and the class set stay in ``edit.after`` (no write
        puts them into the project of other classes), what the edit took is kept, and the revert can
        be tried again. ``then(reverted, why)`` once it is over (``why``: the failure, when not)."""
        from qgn.classes_edit import inverse_of

        then = then or (lambda _reverted, _why: None)
        if getattr(self, "class_edit_backup", None) is not edit or self.classes != edit.after:
            then(True, "")
            return
        self.class_edit_backup = None
        if not edit.moves_pixels:
            self._replace_classes(edit.before)
            then(True, "")
            return
        if self._class_change is not None:  # (refused while one runs: no second one is under way)
            QtCore.QTimer.singleShot(50, self, lambda: self._revert_later(edit, then))
            return
        # an undo step's revert is the change it undid (a merge again: the inverse of the inverse would
        # delete the class, its pixels to ignore); else the edit's inverse (the snapshot puts back its pixels)
        forward = self._forward_of.get(id(edit), (None, None))[1]
        usable = forward is not None and forward.before == edit.after and forward.after == edit.before
        inverse = forward if usable else inverse_of(edit)
        key = (edit.before, edit.after)
        snapshots = self._class_snapshots  # the history of the project it is of (kept aside if another opens)
        snapshot = snapshots.pop(key, {})
        owner = self.class_edit_owner()

        def reverted(taken: dict) -> None:
            self._class_snapshots[(edit.after, edit.before)] = taken  # what a later redo of the edit puts back
            self._replace_classes(edit.before)
            then(True, "")

        def failed(message: str, first: str | None = None) -> None:
            if (first is None and message != STOPPED and self.classes == edit.after
                    and self.class_edit_owner() == owner):  # (not into the maps of a project opened since)
                # once more on the job thread (the maps are as they were: a failed remap takes none). Not on
                # the UI thread: ~1.4 s per 24-megapixel map held there, with ~2x the maps' memory right when
                # the job had failed (often of memory)
                self._remap_open_maps(inverse, snapshot, reverted, lambda again: failed(again, message))
                return
            snapshots[key] = snapshot  # kept: the revert (or an undo) still puts the pixels back
            if self.class_edit_owner() != owner:  # another project opened meanwhile: the maps this was to put
                then(True, "")  # back are no longer open (its maps, never touched, keep their classes)
                return
            if first is not None and message != STOPPED:
                message = f"{first}; again: {message}"
            self.class_edit_backup = edit
            then(False, message)

        self._remap_open_maps(inverse, snapshot, reverted, failed)

    def switch_class_history(self, left, entered, carry: bool = False, classes=None) -> list:
        """The project open changed from ``left`` to ``entered`` (their roots; None: no project): the
        class-change history (undo, redo and what the changes took from the open maps) is that project's
        own - the history of ``left`` is kept aside, and ``entered``'s (kept when it was left) comes back.
        A step is of one project's files: applied in another with the same classes it rewrote that one
        (a merge undone there). ``carry``: the window's history becomes ``entered``'s (a new project made
        of the open maps and their classes). ``classes``: ``entered``'s classes now - its history kept
        aside is dropped when its steps are not of them (another writer changed them while it was not
        open here: each step would be refused, one Undo at a time), as a reload drops it. Returns the
        descriptions of the steps dropped so, latest first."""
        if entered == left or carry:
            self._forget_steps(self._class_histories.pop(entered, ([], [], {}))[0])
            return []
        # (kept even empty: a step of it whose remap is under way goes back on these very lists if it fails)
        self._class_histories[left] = (self.class_undo, self.class_redo, self._class_snapshots)
        undo, redo, snapshots = self._class_histories.pop(entered, ([], [], {}))
        top = undo[-1] if undo else redo[-1] if redo else None  # (each list's latest step is of the classes then)
        dropped = []
        if top is not None and classes is not None and top.before != classes:
            dropped = self._step_descriptions(undo, redo)
            self._forget_steps(undo)
            undo, redo, snapshots = [], [], {}
        self.class_undo, self.class_redo, self._class_snapshots = undo, redo, snapshots
        while len(self._class_histories) > KEPT_HISTORIES:
            self._forget_steps(self._class_histories.pop(next(iter(self._class_histories)))[0])
        self.refresh_class_buttons()
        return dropped

    def _step_descriptions(self, undo, redo) -> list:
        """The descriptions of the class changes of the history (``undo``, ``redo``), latest first."""
        return ([self.forward_description(step) for step in reversed(undo)]
                + [step.description for step in reversed(redo)])

    def _forget_steps(self, undo) -> None:
        """The undo steps ``undo`` were dropped (their history evicted, or dropped by a reload): their
        entries of ``_forward_of`` go too - each kept its inverse alive, with the restore patches it holds."""
        for step in undo:
            if self._forward_of.get(id(step), (None,))[0] is step:
                del self._forward_of[id(step)]

    def _clear_redo(self) -> None:
        """A new class change: the redo list goes, with what its steps would have put back in the open maps
        (their snapshots: the pixels an undo of a merge took back), but a snapshot an undo step still needs."""
        needed = {(step.after, step.before) for step in self.class_undo}
        for step in self.class_redo:
            if (step.after, step.before) not in needed:
                self._class_snapshots.pop((step.after, step.before), None)
        self.class_redo.clear()

    def forward_description(self, inverse) -> str:
        """The description of the class change the undo step ``inverse`` takes back."""
        return self._forward_of.get(id(inverse), (None, inverse))[1].description

    def drop_class_history(self) -> list:
        """Another writer changed the open project's classes and it was read again: the class changes of
        before can no longer be undone or redone (each step is of the classes before, and what they took
        from the open maps of maps read again). Returns the descriptions of the steps dropped, latest first."""
        dropped = self._step_descriptions(self.class_undo, self.class_redo)
        self._forget_steps(self.class_undo)
        self.class_undo, self.class_redo, self._class_snapshots = [], [], {}
        self.refresh_class_buttons()
        return dropped

    def put_back_class_step(self, edit, kind: str, owner=ANY_OWNER) -> None:
        """The project could not apply the undo or redo step ``edit`` (``kind``): it goes back on its list
        (of the project at ``owner``: kept aside when that is no longer open)."""
        undo, redo = self._history_of(owner)
        stack = undo if kind == "undo" else redo
        if kind in ("undo", "redo") and not any(step is edit for step in stack):
            stack.append(edit)
            self.refresh_class_buttons()

    def _revert_later(self, edit, then=None) -> None:
        self.class_edit_backup = edit
        self.revert_class_edit(edit, then)

    def _remap_inputs(self, doc, edit, snapshot):
        """(The restore patch tag of ``doc``'s files in ``edit``, the snapshot's patch, its steps'
        values before) — what ``_remap_session`` needs of the UI thread's state."""
        session = doc.annotation
        key = self.file_key(doc)
        tags = [f"autosave/{key}", f"annotations/{key}"] if session.dirty else [f"annotations/{key}", f"autosave/{key}"]
        tag = next((t for t in tags if key is not None and t in edit.restore), None)  # an undo's pixels
        patch, before_edits = snapshot if snapshot is not None else (None, {})
        return tag, patch, before_edits

    def _remap_session(self, doc, edit, snapshot=None):
        """``doc``'s open map and undo log in the classes of ``edit``, here (a map opened or edited
        while ``remap_parts`` ran); ``snapshot`` (what the forward edit took, when this undoes it)
        puts back what the value map alone cannot. Returns what this edit takes: (restore patch,
        {command serial: its values before, where the edit loses them (`ValuesBeforeRemap`)})."""
        session = doc.annotation
        old = session.annotation
        tag, patch, before_edits = self._remap_inputs(doc, edit, snapshot)
        parts = remap_parts(edit, old.label, old.reference, session.reference, old.source, old.levels, tag, patch)
        return self._adopt_remap(session, edit, parts, before_edits)

    def _adopt_remap(self, session, edit, parts, before_edits: dict):
        """(UI thread) ``session`` takes the map, reference and pyramid ``remap_parts`` made, and its
        undo log's steps are remapped (their patches: small). Returns what the edit takes."""
        from qgn.label_map import label_dtype

        taken = (parts.taken, {})
        table, dtype = edit.lut(), label_dtype(edit.after)
        commands = [session.undo.command(i) for i in range(session.undo.count())]
        if all(hasattr(c, "remap") for c in commands):  # the history follows the classes
            for command in commands:
                if command.serial in before_edits:  # exactly as before the edit this undoes (its
                    before_edits[command.serial].put_back(command)  # redo: the same remap again)
                else:
                    lost = command.remap(table, dtype)
                    if lost is not None:
                        taken[1][command.serial] = lost
        else:  # a step that cannot say its pixels in the new classes: the history ends here
            dirty = session.dirty
            session.undo.clear()
            if dirty:
                session.mark_unsaved()
        session.annotation = parts.annotation
        if session.reference is not None:
            session.reference = parts.reference
        session.pyramid = parts.pyramid
        session.reset.emit()
        return taken

    def _replace_classes(self, classes) -> None:
        self.workspace.set_classes(classes)
        for doc in self.workspace.docs:
            if doc.annotation is not None:
                doc.annotation.classes = classes
        self.tools.set_num_classes(classes.num_classes)
        self.panel.set_classes(classes)
        self.panel.set_class(min(self.tools.class_id, classes.num_classes - 1))
        self._class_changed(self.tools.class_id)
        self._name_class_actions()
        self.class_set_edited.emit(classes)

