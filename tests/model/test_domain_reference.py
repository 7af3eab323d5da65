"""A domain reference read from a file (``qgn.domain.DomainReference.load``) is refused where its
values cannot give a verdict: values that pass "finite and positive" but overflow every distance
(a NaN score flags every image), and a "pixels" range no model works at (resizing every image to
it); a score that is not a finite number is a ValueError, never a verdict. What stands where a
reference belongs, when it is not a file, is said as what it is."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from qgn.domain import MIN_REFERENCE_PIXELS, DomainReference, load_reference, reference_path
from qgn.model.qgn import max_native_pixels


@pytest.fixture
def fitted():
    """A reference fitted to random descriptors (40 of 20 values), and one of them."""
    rng = np.random.default_rng(0)
    descriptors = rng.normal(1.0, 0.5, (40, 20))
    return DomainReference.fit(descriptors[:-1]), descriptors[-1]


def saved(tmp_path, reference, change=None):
    path = reference.save(tmp_path / "m.domain.json")
    if change:
        doc = json.loads(path.read_text())
        change(doc)
        path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("key,value", [("std", 1e-300), ("variances", 1e-300), ("residual", 1e-300),
                                       ("threshold", 1e-320)])
def test_values_too_small_to_divide_by_are_refused_at_load(tmp_path, fitted, key, value):
    reference, _ = fitted

    def change(doc):
        doc[key] = [value] * len(doc[key]) if isinstance(doc[key], list) else value
    path = saved(tmp_path, reference, change)
    with pytest.raises(ValueError, match=rf"{path.name}.*below"):
        DomainReference.load(path)
    assert DomainReference.load(saved(tmp_path, reference)).threshold == pytest.approx(reference.threshold)


def test_a_score_that_is_not_a_finite_number_is_a_value_error(tmp_path, fitted):
    """Values that load (finite, above the floor) but overflow the distance of an image."""
    reference, descriptor = fitted
    assert np.isfinite(reference.score(descriptor))
    path = saved(tmp_path, reference, lambda doc: doc.__setitem__("mean", [1e300] * len(doc["mean"])))
    huge = DomainReference.load(path)
    with pytest.raises(ValueError, match="not a finite number"):
        huge.score(descriptor)


@pytest.mark.parametrize("pixels", [[1, 1], [3, 3], [MIN_REFERENCE_PIXELS - 1, 50_000], [1024, 10**9],
                                    [10**9, 10**9]])
def test_a_pixels_range_no_model_works_at_is_refused_at_load(tmp_path, fitted, pixels):
    reference, _ = fitted
    path = saved(tmp_path, reference, lambda doc: doc.__setitem__("pixels", pixels))
    assert pixels[1] > max_native_pixels() or pixels[0] < MIN_REFERENCE_PIXELS
    with pytest.raises(ValueError, match=rf"{path.name}.*\"pixels\" must be"):
        DomainReference.load(path)


def test_the_bundled_references_pixels_load():
    from qgn.resources import models_dir

    for path in sorted(models_dir().glob("*.domain.json")):
        reference = DomainReference.load(path)
        assert reference.pixels is not None and reference.pixels[0] >= MIN_REFERENCE_PIXELS


def test_an_image_is_never_resized_above_the_working_pixel_cap(model_path, samples, monkeypatch):
    """A reference whose images were larger than this machine's working-size cap (made with a
    larger QGN_MAX_WORKING_PIXELS, or by hand) resizes a small image up to the cap at most."""
    import qgn.data.transforms as transforms
    from qgn.data.imageio import read_rgb
    from qgn.domain import image_descriptor
    from qgn.model.checkpoint import load_model

    monkeypatch.setenv("QGN_MAX_WORKING_PIXELS", "4096")
    sizes = []
    resize = transforms.resize_image
    monkeypatch.setattr(transforms, "resize_image", lambda image, size: sizes.append(size) or resize(image, size))
    image = read_rgb(samples[0])  # 64×96: 6,144 pixels, above the cap too
    image_descriptor(load_model(model_path), image, (1_000_000, 4_000_000))
    assert len(sizes) == 2 and max(h * w for h, w in sizes) <= 4096  # its working size, then the reference's


@pytest.mark.parametrize("kind", ["folder", "fifo", "link to /dev/zero", "link loop", "dangling link"])
def test_what_stands_where_the_reference_belongs_is_said(tmp_path, kind):
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights")
    where = reference_path(model)
    if kind == "folder":
        where.mkdir()
    elif kind == "fifo":
        os.mkfifo(where)
    elif kind == "link to /dev/zero":
        where.symlink_to("/dev/zero")
    elif kind == "link loop":
        where.symlink_to(where.name)
    else:
        where.symlink_to("gone.json")
    reference, why = load_reference(model)
    said = {"folder": "is a folder", "fifo": "is a named pipe (FIFO)", "link to /dev/zero": "is a character device",
            "link loop": "is a link in a loop", "dangling link": "is a link to gone.json, which does not exist"}
    assert reference is None and why.startswith(f"{where} {said[kind]}") and "beside the model" not in why
    where.unlink() if kind != "folder" else where.rmdir()
    assert load_reference(model) == (None, f"no domain reference beside the model ({where})")
