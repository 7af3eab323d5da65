"""The model's domain check decides the default start (issue #21's warning, followed): an image the
check calls unlike the model's training images starts from an empty map, with the warning on the
canvas; an image like them starts from the prediction. The verdict comes with the prediction, so
it is there when the annotation starts."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from studio_steps import WAIT_MS

SIZE = (64, 96)


@pytest.fixture
def model_with_reference(model_path, samples, tmp_path):
    """A copy of the tiny model with a domain reference made from the samples and 40 synthetic
    scenes of their kind (its "training images"): the samples are inside its domain, noise is not
    (both checked below)."""
    from qgn.data.synthetic import make_scene
    from qgn.domain import DomainReference, image_descriptor, reference_path
    from qgn.fileio import file_sha256
    from qgn.model.checkpoint import load_model

    path = tmp_path / "model" / model_path.name
    path.parent.mkdir()
    shutil.copy(model_path, path)
    shutil.copy(model_path.with_suffix(".json"), path.with_suffix(".json"))
    model = load_model(path)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in samples]
    images += [make_scene(9000 + i, *SIZE)[0] for i in range(40)]
    scenes = np.stack([image_descriptor(model, image) for image in images])
    DomainReference.fit(scenes, file_sha256(path)).save(reference_path(path))
    return path


def test_an_image_outside_the_models_domain_starts_empty_and_says_why(qtbot, windows, samples,
                                                                     model_with_reference, tmp_path):
    from qgn.domain import judge, reference_for
    from qgn.model.checkpoint import load_model

    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (*SIZE, 3), dtype=np.uint8)).save(noise)
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
    assert any(key == "domain" and "start from an empty map" in text for key, text in shown)
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
