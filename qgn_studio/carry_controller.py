"""The "Previous" start: the previous image's saved labels carried onto this one by optical flow.

``CarryController`` offers the Annotate panel's "Previous" start for an image of the open project
whose predecessor in the project's order (frames of a video, named in order) has a saved annotation
of the same size (``qgn.annotation.carry.carried_start``, on a job thread). It becomes the start of
new images by default only once it has beaten the app's other default start (the prediction, or
the head once preferred) on saved images: every image saved for the first time whose predecessor
was saved is judged — the carried start's pixel accuracy against the saved annotation, and the best
of the other starts offered (the prediction, the head) (``qgn.project_head.judge_start``) — and
``qgn.annotation.carry.prefer_carried`` reads the last three. The record lives for the session of
one project.
"""
from __future__ import annotations

from PySide6 import QtCore


class CarryController(QtCore.QObject):
    """See the module docstring. ``workspace``: the project and the classes; ``annotator``: where the
    start is offered (``extra_sources["previous"]``, wrapping its ``default_source``); ``projects``:
    its ``image_saved`` signal, after which a saved image is judged."""

    judged = QtCore.Signal(object, object)  # (generation, (key, (carried's, other's) accuracy) or None)

    def __init__(self, workspace, annotator, projects, parent=None):
        super().__init__(parent)
        from qgn_studio.jobs import JobRunner

        self.workspace, self.annotator, self.projects = workspace, annotator, projects
        self.runner = JobRunner(self)
        self.record: dict[str, tuple[float, float]] = {}  # image key → (carried's, other's) pixel accuracy
        self._generation = 0
        self._other_default = annotator.default_source
        annotator.extra_sources["previous"] = (self.available, self.predict)
        annotator.default_source = self.default_source
        projects.image_saved.connect(self.judge)
        workspace.project_changed.connect(self._forget)
        annotator.class_set_edited.connect(lambda _classes: self._forget())
        self.judged.connect(self._judged)

    def _forget(self, _project=None) -> None:
        self._generation += 1
        self.record = {}

    # ------------------------------------------------------------------ the start
    def predecessor(self, doc):
        """(project, the ProjectImage before ``doc``'s in the project's order) when that one has a saved
        annotation; else None. Cheap (one file test): the panel asks on every image shown."""
        project = self.workspace.project
        if project is None or doc is None:
            return None
        try:
            image = project.image_for(doc.path)
        except KeyError:
            return None
        index = project.images.index(image)
        if index == 0:
            return None
        before = project.images[index - 1]
        return (project, before) if project.annotation_path(before).is_file() else None

    def available(self, doc=None) -> bool:
        return self.predecessor(doc) is not None and self.workspace.classes is not None \
            and self.workspace.classes.ignore_index is not None

    def default_source(self, doc) -> str:
        """The start of a new annotation: "previous" once it has beaten the other default on the last
        saved images judged (``prefer_carried``) and the image has a saved predecessor; else the other."""
        from qgn.annotation.carry import prefer_carried

        if prefer_carried(self.record.values()) and self._same_size(doc):
            return "previous"
        return self._other_default(doc)

    def _same_size(self, doc) -> bool:
        """Whether ``doc``'s predecessor is saved and of its size (read from the file's header): a
        default start that could not be built would leave the image without an annotation."""
        from qgn.imagefile import upright_size

        found = self.predecessor(doc) if self.available(doc) else None
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

        found = self.predecessor(doc)
        if found is None or doc.image is None:
            raise ValueError("the image before this one in the project has no saved annotation")
        project, before = found
        label = project.load_annotation(before)
        if label is None:
            raise ValueError(f"{before.path.name}'s saved annotation is gone")
        return carried_start(read_image(before.path), label, doc.image, project.classes.ignore_index)

    # ------------------------------------------------------------------ the record
    def judge(self, doc, label) -> None:
        """After ``doc``'s annotation ``label`` was saved: the first time, with a saved predecessor,
        score the carried start and the other default start against it (on a job thread)."""
        key = self.annotator.file_key(doc)
        if key is None or key in self.record or not self.available(doc):
            return
        others = ["prediction"] + [s for s, (available, _) in self.annotator.extra_sources.items()
                                   if s != "previous" and available(doc)]
        generation = self._generation

        def run():
            from qgn.project_head import judge_start

            carried = self.predict(doc)
            if carried.shape != label.shape:
                return None
            best = None
            for source in others:  # the best of the other starts: the carried one must beat them all
                try:
                    other_map = self.annotator.start_label(doc, source)
                except ValueError:
                    continue
                judged = judge_start(carried, other_map, label, self.workspace.classes.ignore_index) \
                    if other_map.shape == label.shape else None
                if judged is not None and (best is None or judged[1] > best[1]):
                    best = judged
            return None if best is None else (key, best)

        self.runner.submit(run, lambda result: self.judged.emit(generation, result), None)

    def _judged(self, generation: int, result) -> None:
        if generation != self._generation or result is None:
            return
        key, judged = result
        self.record[key] = judged
        from qgn.annotation.carry import prefer_carried

        carried, other = judged
        verdict = ("new images start from the previous image's labels" if prefer_carried(self.record.values())
                   else "new images keep their other start")
        self.workspace.show_status(f"The previous image's labels carried to this one were {100 * carried:.1f} % right, "
                                   f"the best other start {100 * other:.1f} %: {verdict}", 6000)

    def shutdown(self) -> None:
        """The window closes: a judge under way finishes, none queued starts (it only scores)."""
        self.runner.stop()
