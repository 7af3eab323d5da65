"""The "Previous" start: the previous image's saved labels carried onto this one by optical flow.

``CarryController`` offers the Annotate panel's "Previous" start for an image of the open project
whose predecessor in the project's order (frames of a video, named in order) has a saved annotation
(``qgn.annotation.carry.carried_start``, on a job thread; images of another size are refused with a
message). It becomes the start of new images by default only once it has beaten the app's other
starts on saved images, and only for an image whose predecessor has its size: every image saved
for the first time whose predecessor was saved is judged — the carried start's pixel accuracy
against the saved annotation, and the start it would replace's: the empty map's (none right) where
the domain check flags the image, else the best of the other starts offered (the prediction; the
head, unless it was trained on that image) (``qgn.annotation.carry.judge_carried``) — and
``qgn.annotation.carry.prefer_carried`` reads the last three, whatever each was judged against (a
flagged image's entry counts for the unflagged images after it too; the status line names the
starts compared against). The record lives for the session of
one project and class set; a model change keeps it (the carried start does not read the model: its
entries say how it did against the starts those images were offered, and the images saved after the
change judge it against the new model's — forgetting it made the image after every fine-tune start
without it, benchmarks/RESULTS.md, "The carried start's record kept across a model change"; for up
to three judged images after it the kept entries, not the new model, decide: ``prefer_carried``). A
judge under way when the model changes is dropped (it took the old model's starts and head, and would
read the new model's features). An image taken out of the project leaves the record
(``ProjectController.images_removed``): it no longer counts among the last three, and an image added
again under its key is judged again; so does one another writer (a second window, ``qgn``) took out,
once the window shows that writer's change (``ProjectController.merged``), and one whose key another
writer gave to another image file (the entry holds its image: the project's own object, which a relink
in this window keeps, and the file's size and SHA-256 the project noted at the save, which another
writer's relink keeps and another file under the key lacks - unless it holds the same bytes: a copy
of the image added under the key in the same merge that took the image out keeps the entry, as the
project itself takes equal size and SHA-256 for the same image). A judgement is entered only for the
submission it was made for: not when its image was taken out while it ran, nor over a later save's
(the later save's judgement is entered). A default start that fails
falls back to the prediction (the annotator).
"""
from __future__ import annotations

import threading

from PySide6 import QtCore


class _Judged:
    """The image a judgement was submitted for (one per submission: ``_pending`` holds the one to enter)
    and, once entered, its entry's. ``same_image``: whether the project's image under the key is it."""

    __slots__ = ("image", "note")

    def __init__(self, image):
        self.image, self.note = image, image.file  # (bytes, sha256) noted at the save (None: not noted)

    def same_image(self, image) -> bool:
        """The project's own object (kept by a merge while the key names the same file, and by a relink
        in this window, which changes its path in place), else the file the project noted at the save
        (another writer's relink carries the note; another image added under the key has its own or
        none), else - nothing noted - the same file (the project's path key)."""
        from qgn.project_images import path_key

        if image is self.image:
            return True
        if self.note is not None:
            return image.file == self.note
        return path_key(image.path) == path_key(self.image.path)


class CarryController(QtCore.QObject):
    """See the module docstring. ``workspace``: the project, the classes and the model; ``annotator``:
    where the start is offered (``extra_sources["previous"]``, wrapping its ``default_source``);
    ``projects``: its ``image_saved`` signal, after which a saved image is judged; ``head``: the
    ``HeadController`` whose head is one of the other starts (None: the prediction alone)."""

    # ((generation, model changes), (key, (carried's, other's) accuracy, whether judged against the empty start)
    # or None)
    judged = QtCore.Signal(object, object)

    def __init__(self, workspace, annotator, projects, head=None, parent=None):
        super().__init__(parent)
        from qgn_studio.jobs import JobRunner

        self.workspace, self.annotator, self.projects, self.head = workspace, annotator, projects, head
        self.runner = JobRunner(self)
        self.record: dict[str, tuple[float, float]] = {}  # image key → (carried's, best other's) pixel accuracy
        self.flagged: set[str] = set()  # the record's keys judged against the empty start (flagged images)
        # key → the image of its entry (_Judged), and the submission of the judgement under way: an image
        # another writer adds under a removed image's key is another image (forget_absent); a judgement
        # is entered only for the submission still pending for its key (forget_images drops it from
        # ``_pending``; a later save of the image replaces it)
        self._images: dict[str, _Judged] = {}
        self._pending: dict[str, _Judged] = {}
        self._generation = 0
        self._models = 0  # model changes: a judge that ran across one is dropped (its starts mix two models)
        self._stop = threading.Event()  # set at shutdown: judges not started yet do nothing
        self._positions = (None, 0, {})  # (the project's image list, its length, key → position)
        self._other_default = annotator.default_source
        annotator.extra_sources["previous"] = (self.available, self.predict)
        annotator.default_source = self.default_source
        projects.image_saved.connect(self.judge)
        workspace.project_changed.connect(self._forget)
        workspace.model_changed.connect(self._model_changed)
        projects.images_removed.connect(self.forget_images)
        projects.merged.connect(self.forget_absent)  # another writer's change, removals included
        annotator.class_set_edited.connect(self._forget)
        self.judged.connect(self._judged)
        if head is not None:  # after the head's own message, which would name the head or the prediction
            head.fitted.connect(lambda _head: self._say_if_preferred())

    def _forget(self, _changed=None) -> None:
        self._generation += 1
        self.record = {}
        self.flagged = set()
        self._images, self._pending = {}, {}

    def _model_changed(self, _info=None) -> None:
        """The record is kept (module docstring); a judge under way is dropped: it was submitted with
        the old model's start and head and would read the new model's features."""
        self._models += 1

    def forget_images(self, keys) -> None:
        """``keys`` left the project: their entries leave the record (a removed image no longer counts
        among the last ones, and an image added again under its key is judged again)."""
        for key in keys:
            self.record.pop(key, None)
            self.flagged.discard(key)
            self._images.pop(key, None)
            self._pending.pop(key, None)  # a judgement under way for it is not entered when it lands

    def forget_absent(self, project) -> None:
        """Another writer's change was merged into ``project``: the entries (and judgements under way)
        of images no longer in it leave the record (``forget_images``; ``images_removed`` names this
        window's removals only) — an image whose key now names another file (removed, and another
        added under its key) included. A dict of the project's keys, only while the record or a
        judgement holds something (~5-12 ms at 100,000 images, once per change another writer made)."""
        if project is not self.workspace.project or not (self.record or self._pending):
            return
        present = {image.key: image for image in project.images}
        self.forget_images([key for key in (*self.record, *self._pending)
                            if key not in present or not self._held(key).same_image(present[key])])

    def _held(self, key):
        return self._images[key] if key in self._images else self._pending[key]

    # ------------------------------------------------------------------ the start
    def predecessor(self, doc):
        """(project, the ProjectImage before ``doc``'s in the project's order) when that one has a saved
        annotation; else None. Cheap (a dict look-up and one file test): the panel asks after every
        edit."""
        project = self.workspace.project
        if project is None or doc is None:
            return None
        try:
            image = project.image_for(doc.path)
        except KeyError:
            return None
        images = project.images
        listed, length, positions = self._positions
        index = positions.get(image.key, -1) if listed is images and length == len(images) else -1
        if not 0 <= index < len(images) or images[index].key != image.key:  # another list, or images moved
            positions = {im.key: i for i, im in enumerate(images)}
            self._positions = (images, len(images), positions)
            index = positions.get(image.key, 0)
        if index == 0:
            return None
        before = images[index - 1]
        return (project, before) if project.annotation_path(before).is_file() else None

    def available(self, doc=None) -> bool:
        return self._offered(doc) is not None

    def _offered(self, doc):
        """``predecessor(doc)`` where the classes have an ignore value to leave unseen pixels at, else None."""
        classes = self.workspace.classes
        return self.predecessor(doc) if classes is not None and classes.ignore_index is not None else None

    def default_source(self, doc) -> str:
        """The start of a new annotation: "previous" once it has beaten the other starts on the last
        saved images judged (``prefer_carried``) and the image's predecessor is saved and of its size;
        else the other default."""
        from qgn.annotation.carry import prefer_carried

        if prefer_carried(self.record.values()) and self._same_size(doc):
            return "previous"
        return self._other_default(doc)

    def _same_size(self, doc) -> bool:
        """Whether ``doc``'s predecessor is saved and of its size (read from the file's header)."""
        from qgn.imagefile import upright_size

        found = self._offered(doc)  # one look-up and one file test, not two
        if found is None or doc.size is None:
            return False
        try:
            width, height = upright_size(found[1].path)
        except (OSError, ValueError):
            return False
        return (height, width) == tuple(doc.size)

    def predict(self, doc):
        """(H, W) class ids: the predecessor's saved labels carried onto ``doc``'s image (job thread)."""
        from qgn.annotation.carry import carried_start
        from qgn_studio.document import read_image

        found, image = self.predecessor(doc), doc.image  # read once: the UI thread may drop the image
        if found is None or image is None:
            raise ValueError("the image before this one in the project has no saved annotation")
        project, before = found
        label = project.load_annotation(before)
        if label is None:
            raise ValueError(f"{before.path.name}'s saved annotation is gone")
        return carried_start(read_image(before.path), label, image, project.classes.ignore_index)

    # ------------------------------------------------------------------ the record
    def judge(self, doc, label) -> None:
        """After ``doc``'s annotation ``label`` was saved: the first time, with a saved predecessor,
        score the carried start and the other starts against it (on a job thread). The head is taken
        now, before the refit this save starts, and left out where it was trained on the image."""
        key = self.annotator.file_key(doc)
        if key is None or key in self.record or not self.available(doc):
            return
        try:
            image = self.workspace.project.image_for(doc.path)
        except KeyError:
            return
        submission = self._pending[key] = _Judged(image)  # a later save's replaces it: that one is entered
        head = None
        if self.head is not None and self.head.available(doc) and key not in self.head.head.trained:
            head = self.head.head
        # the start the carried one would replace: empty where the domain check flags the image
        # (HeadController.default_source), judged as such rather than against a prediction it is not offered
        flagged = self._other_default(doc) == "empty"
        generation, stop = (self._generation, self._models), self._stop

        def run():
            from qgn.annotation.carry import judge_carried

            if stop.is_set():
                return None
            carried = self.predict(doc)
            others = []
            if not flagged:
                try:  # the prediction may be dropped meanwhile (the UI thread keeps a recent few)
                    others.append(self.annotator.start_label(doc, "prediction"))
                except ValueError:
                    pass
                image = doc.image
                if head is not None and image is not None:
                    others.append(head.predict(self.head.features_model(), image))
            judged = judge_carried(carried, others, label, self.workspace.classes.ignore_index, flagged)
            return (key, judged, flagged, submission) if judged is not None else None

        def landed(result):
            if result is None and self._pending.get(key) is submission:
                del self._pending[key]  # nothing to enter: the key waits for no judgement
            self.judged.emit(generation, result)

        self.runner.submit(run, landed, None)

    def _judged(self, generation, result) -> None:
        """``result``: (key, (carried's, other's) accuracy, flagged, the submission it was made for)."""
        if result is None:
            return
        key, judged, flagged, submission = result
        if generation != (self._generation, self._models) or self._pending.get(key) is not submission:
            # another project or class set, a model change, its image left the project while it ran, or
            # a later save of it was submitted since (that one's judgement is entered)
            if generation[0] == self._generation and self._pending.get(key) is submission:
                del self._pending[key]
            return
        del self._pending[key]
        self._images[key] = submission
        self.record[key] = judged
        if flagged:
            self.flagged.add(key)
        self.workspace.show_status(self.said(), 6000)

    def said(self) -> str | None:
        """The status line of the record: the verdict first (the status bar cuts a line wider than the
        window at its end), then the carried start's mean over the last entries and the starts it is
        judged against (``recent``); the longest, a record mixing both kinds, is ~1000 px in the app's
        9-pt font (it was ~1300, cut before the verdict in a 1280-px window). None when nothing was judged."""
        from qgn.annotation.carry import prefer_carried

        recent = self.recent()
        if recent is None:
            return None
        images, carried, against = recent
        verdict = ("New images start from the image before's labels: they were" if prefer_carried(self.record.values())
                   else "New images keep their other start: the image before's labels were")
        over = "the last saved image" if images == 1 else f"the last {images} saved"
        return f"{verdict} {100 * carried:.1f} % right over {over}, {against}"

    def recent(self):
        """(images, the carried start's mean pixel accuracy, what it was judged against and its mean, in
        words) over the record's last entries ``prefer_carried`` reads; None when nothing was judged.
        Names the start compared against: the empty start (0 %: none right) for images the domain check
        flagged, the best other start offered for the others, both when the entries mix them."""
        from qgn.project_head import HEAD_WINDOW, recent_accuracy

        recent = recent_accuracy(self.record.values())
        if recent is None:
            return None
        images, carried, other = recent
        empty = sum(key in self.flagged for key in list(self.record)[-HEAD_WINDOW:])
        if empty == images:
            return images, carried, f"the empty start they replace {100 * other:.1f} %"
        if empty:
            return images, carried, (f"the starts they replace {100 * other:.1f} % (the empty start on {empty}, "
                                     f"the best other on {images - empty})")
        return images, carried, f"the best other start {100 * other:.1f} %"

    def _say_if_preferred(self) -> None:
        from qgn.annotation.carry import prefer_carried

        if prefer_carried(self.record.values()):
            self.workspace.show_status(self.said(), 6000)

    def shutdown(self, wait: bool = True) -> None:
        """The window closes: a judge under way finishes, the queued ones do nothing (they only
        score; ``wait``: wait for them)."""
        self._stop.set()
        self.runner.stop(wait)
