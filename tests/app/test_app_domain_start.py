"""The model's domain check decides the default start (issue #21's warning, followed): an image the
check calls unlike the model's training images starts from an empty map, with the warning on the
canvas; an image like them starts from the prediction. The verdict comes with the prediction, so
it is there when the annotation starts."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image
from PySide6 import QtWidgets

from sample_files import write_domain_reference
from studio_steps import WAIT_MS

SIZE = (64, 96)


def banners(win) -> dict:
    """The canvas banners shown now, by key (kept up to date)."""
    shown = {}
    win.workspace.message.connect(lambda text, kind, key: shown.__setitem__(key, text))
    win.workspace.message_cleared.connect(lambda key: shown.pop(key, None))
    return shown


def test_an_image_outside_the_models_domain_starts_empty_and_says_why(qtbot, windows, samples,
                                                                     model_with_reference, noise):
    from qgn.domain import judge, reference_for
    from qgn.model.checkpoint import load_model

    model, reference = load_model(model_with_reference), reference_for(model_with_reference)
    assert judge(model, np.asarray(Image.open(samples[0]).convert("RGB")), reference).inside
    assert not judge(model, np.asarray(Image.open(noise).convert("RGB")), reference).inside

    shown = []
    win = windows()
    win.workspace.message.connect(lambda text, kind, key: shown.append((key, text)))
    win.start([samples[0], noise], str(model_with_reference))
    qtbot.waitUntil(lambda: win.current is not None and win.current.result is not None, timeout=WAIT_MS)
    win.annotator.set_mode(True)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    assert win.current.result.domain.inside and win.current.annotation.origin == "prediction"
    assert not [text for key, text in shown if key == "domain"]

    win.step_image(1)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    session = win.current.annotation
    assert not win.current.result.domain.inside and session.origin == "empty"
    assert (session.label == win.annotator.classes.ignore_index).all()  # nothing of the model's
    assert any(key == "domain" and "starts from an empty map" in text for key, text in shown)
    win.annotator.start_from("prediction")  # the model's start is one choice away
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: session.version > 0, timeout=WAIT_MS)
    assert (session.label != win.annotator.classes.ignore_index).any()


def test_the_verdict_reuses_the_predictions_encoder_pass(model_path):
    """The engine judges from the features its prediction computed (no second encoder pass at the
    working size), and the verdict equals a judge of its own."""
    from qgn.data.synthetic import make_scene
    from qgn.domain import DomainReference, image_descriptor, judge_session
    from qgn.infer import ImageSession
    from qgn.model.checkpoint import load_model

    model = load_model(model_path)
    images = [make_scene(100 + i, *SIZE)[0] for i in range(5)]
    reference = DomainReference.fit(np.stack([image_descriptor(model, im) for im in images[:4]]))
    session = ImageSession(model, images[4])
    session.features()
    calls = []
    encode = model.encode
    model.encode = lambda x: calls.append(1) or encode(x)
    verdict = judge_session(session, images[4], reference)
    assert calls == [] and verdict.score == pytest.approx(reference.score(image_descriptor(model, images[4])))


@pytest.mark.parametrize("damage", ["truncated", "another encoder", "a mean that overflows", "pixels below the floor"])
def test_a_reference_that_does_not_fit_costs_the_verdict_not_the_prediction(qtbot, windows, samples,
                                                                            model_with_reference, damage):
    """A hand-edited reference (arrays of mismatched lengths, "pixels" of [1, 1]) is no
    reference; one of another encoder (its SHA-256 blank, so not refused by it), or whose values
    overflow the distance (an infinite score flagged every image), gives no verdicts: the image
    still shows."""
    from qgn.domain import DomainReference, reference_path

    ref = reference_path(model_with_reference)
    doc = json.loads(ref.read_text())
    if damage == "truncated":
        doc["mean"] = doc["mean"][:10]
    elif damage == "a mean that overflows":
        doc["mean"] = [1e300] * len(doc["mean"])
    elif damage == "pixels below the floor":
        doc["pixels"] = [1, 1]
    else:
        doc["model_sha256"] = ""
        for key in ("mean", "std"):
            doc[key] = doc[key] * 2
        doc["components"] = [c * 2 for c in doc["components"]]
    ref.write_text(json.dumps(doc))
    if damage == "truncated":
        with pytest.raises(ValueError, match="mismatched shapes"):
            DomainReference.load(ref)
    failures = []
    win = windows()
    win.worker.failed.connect(lambda _doc, message: failures.append(message))
    win.start([samples[0]], str(model_with_reference))
    qtbot.waitUntil(lambda: failures or (win.current is not None and win.current.result is not None),
                    timeout=WAIT_MS)
    assert not failures and win.current.result.domain is None


def test_without_an_ignore_value_a_flagged_image_keeps_the_prediction_and_says_so(qtbot, windows, samples,
                                                                                  noise, tmp_path):
    """A class set with no ignore value has no empty map: the flagged image starts from the
    prediction without a failed attempt, and the banner does not promise an empty start."""
    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn_studio.testing import make_dev_model

    path = make_dev_model(tmp_path / "model" / "noignore.safetensors", composite_bias=0.6,
                          classes=dataclasses.replace(SYNTHETIC_CLASSES, ignore_index=None))
    write_domain_reference(path, samples)
    win = windows()
    shown, statuses = banners(win), []
    win.workspace.status.connect(lambda text, ms: statuses.append(text))
    win.start([noise], str(path))
    qtbot.waitUntil(lambda: win.current is not None and win.current.result is not None, timeout=WAIT_MS)
    win.annotator.set_mode(True)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    assert not win.current.result.domain.inside and win.current.annotation.origin == "prediction"
    assert not [text for text in statuses if "Cannot start from" in text]
    assert "Check its start closely" in shown["domain"] and "empty map" not in shown["domain"]


def test_the_banner_names_the_carried_start_when_that_is_taken(qtbot, windows, samples, model_with_reference,
                                                               noise):
    win = windows()
    shown = banners(win)
    win.carry._same_size = lambda doc: True
    win.carry.available = lambda doc=None: True
    win.annotator.extra_sources["previous"] = (win.carry.available, lambda doc: np.zeros(doc.size, np.int64))
    win.start([noise], str(model_with_reference))
    qtbot.waitUntil(lambda: win.current is not None and win.current.result is not None, timeout=WAIT_MS)
    win.carry.record = {"a": (0.99, 0.5), "b": (0.99, 0.5), "c": (0.99, 0.5)}  # it beat the others (a model
    win.annotator.set_mode(True)  # change forgets the record: set after the model is in)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    assert win.current.annotation.origin == "previous"
    assert "image before's labels" in shown["domain"] and "empty map" not in shown["domain"]


def test_another_model_clears_the_old_models_warning_at_once(qtbot, windows, model_with_reference, model_path,
                                                             noise, monkeypatch):
    from qgn_studio import engine as engine_module
    from studio_steps import hold

    win = windows()
    shown = banners(win)
    win.start([noise], str(model_with_reference))
    qtbot.waitUntil(lambda: win.current is not None and win.current.result is not None, timeout=WAIT_MS)
    assert "domain" in shown
    _started, release = hold(monkeypatch, engine_module.Engine, "predict")
    win.load_model(model_path)  # another model (no reference), its prediction held back
    qtbot.waitUntil(lambda: win.model_info is not None and win.model_info.path.name == model_path.name
                    and win.model_info.path != model_with_reference, timeout=WAIT_MS)
    assert "domain" not in shown
    release.set()


def annotating_flagged(qtbot, win, noise, model) -> None:
    """``win`` annotating the one image ``noise``, which ``model``'s domain check flags."""
    win.start([noise], str(model))
    qtbot.waitUntil(lambda: win.current is not None and win.current.result is not None, timeout=WAIT_MS)
    win.annotator.set_mode(True)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)


def test_the_banner_follows_the_start_over_and_its_undo(qtbot, windows, model_with_reference, noise):
    """The banner's last words name the start on screen, as the dock's header does: after Start
    over → Prediction it no longer says the image starts from an empty map, and undo / redo of that
    step bring each note back (the banner was only written on an image switch; the review of uifix)."""
    win = windows()
    shown = banners(win)
    annotating_flagged(qtbot, win, noise, model_with_reference)
    session = win.current.annotation
    assert session.started_from == "empty" and "starts from an empty map" in shown["domain"]
    win.annotator.start_from("prediction")
    qtbot.waitUntil(lambda: session.undo.index() == 1, timeout=WAIT_MS)
    assert "from the prediction" in win.annotator.panel.status.text()
    assert "Check its start closely" in shown["domain"] and "empty map" not in shown["domain"]
    session.undo.undo()
    assert "starts from an empty map" in shown["domain"]
    session.undo.redo()
    assert "Check its start closely" in shown["domain"]


def test_a_closed_banner_stays_closed_when_the_start_changes_without_changing_its_note(qtbot, windows,
                                                                                     model_with_reference, noise):
    """The user closed the domain warning; the map's origin then changed to one whose note is the same
    (a recovered autosave applied over the saved map sets ``origin`` without an edit: 'recovered', as
    'saved', has no note) - the next ordinary stroke brought the closed warning back with the very
    words it said (it compared the start, not its note; the review of the fix round). Strokes after
    Dismiss never bring it back."""
    from studio_steps import paint

    win = windows()
    annotating_flagged(qtbot, win, noise, model_with_reference)
    banner = win.canvas.banner
    qtbot.waitUntil(lambda: "domain" in banner.messages, timeout=WAIT_MS)
    session = win.current.annotation
    session.origin = "saved"  # as a saved map's (no note) ...
    win.annotator.start_from("prediction")
    qtbot.waitUntil(lambda: session.undo.index() == 1, timeout=WAIT_MS)
    session.undo.undo()  # ... back to it: the warning says the saved map's (no) note
    banner.dismiss()  # the user's ✕
    for i in range(3):
        paint(win, 0, 1, [(2.0 + i, 2.0), (10.0 + i, 8.0)])
    assert "domain" not in banner.messages
    session.origin = "recovered"  # project_controller's recovered autosave: no edit signal, no note either
    paint(win, 0, 1, [(2.0, 12.0), (10.0, 18.0)])
    assert "domain" not in banner.messages


def test_a_closed_banner_stays_closed_through_a_start_over_and_its_undo(qtbot, windows, model_with_reference,
                                                                       noise):
    """The user closed the domain warning; Start over → Prediction, its undo and its redo each
    showed it again (its words changed with the start); it stays closed, and the next image switch
    writes it again."""
    win = windows()
    annotating_flagged(qtbot, win, noise, model_with_reference)
    banner = win.canvas.banner
    qtbot.waitUntil(lambda: "domain" in banner.messages, timeout=WAIT_MS)
    session = win.current.annotation
    banner.findChild(QtWidgets.QToolButton).click()  # the banner's ✕
    assert "domain" not in banner.messages
    win.annotator.start_from("prediction")
    qtbot.waitUntil(lambda: session.undo.index() == 1, timeout=WAIT_MS)
    assert "from the prediction" in win.annotator.panel.status.text()
    assert "domain" not in banner.messages
    session.undo.undo()
    assert "domain" not in banner.messages
    session.undo.redo()
    assert "domain" not in banner.messages and not banner.isVisible()
    win.head.show_verdict(win.current)  # as a switch back to this image does
    assert "Check its start closely" in banner.messages["domain"][0]
