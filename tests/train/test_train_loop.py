"""The training loop: checkpoints, resume after an interruption, Ctrl-C, class re-weighting."""
import json

import numpy as np
import pytest

from qgn.model.checkpoint import load_model
from qgn.train.loop import TrainConfig, class_weights_from_iou, poly_lr, train

pytestmark = pytest.mark.slow


def _config(out, **kw):
    base = dict(synthetic_n=6, synthetic_size=64, batch_size=2, crop=0, iterations=4, log_every=1,
                checkpoint_every=2, out=str(out), optimizer="adamw", lr=0.003)
    return TrainConfig.from_dict({**base, **kw})


def test_interrupt_saves_and_resume_continues(tmp_path):
    out = tmp_path / "run"

    def interrupt_at_3(iteration, row):
        if iteration == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_config(out), progress=interrupt_at_3)
    assert json.loads((out / "last.state.json").read_text())["iteration"] == 3  # Ctrl-C saved iteration 3
    final = train(_config(out), resume=True)
    rows = (out / "log.csv").read_text().strip().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == [1, 2, 3, 4]  # nothing lost, nothing repeated
    assert load_model(final).config.extra["iteration"] == 4


def test_unknown_settings_are_rejected():
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainConfig.from_dict({"iterationz": 3})


def test_class_weights_double_below_median_iou():
    iou = np.array([0.9, 0.2, np.nan, 0.5, 0.1])
    assert class_weights_from_iou(iou).tolist() == [1.0, 2.0, 1.0, 1.0, 2.0]


def test_poly_lr():
    assert poly_lr(0.02, 0, 100, 0.9) == 0.02
    assert poly_lr(0.02, 50, 100, 0.9) == pytest.approx(0.02 * 0.5 ** 0.9)
    assert poly_lr(0.02, 100, 100, 0.9) == 0.0


def test_training_schemes_alternate_all_and_gtc():
    from qgn.train.loop import training_schemes

    assert [s.name for s in training_schemes("all")] == ["all"]
    assert [s.name for s in training_schemes("all+gtc")] == ["all", "gtc"]
    with pytest.raises(ValueError, match="all\\+gtc"):
        training_schemes("pc")
    with pytest.raises(ValueError, match="all\\+gtc"):
        training_schemes("all+")


def test_resuming_a_finished_run_trains_nothing_and_gives_its_model(tmp_path):
    out = tmp_path / "run"
    train(_config(out))
    rows_before = (out / "log.csv").read_text()
    final = train(_config(out), resume=True)  # e.g. the same command run twice
    assert (out / "log.csv").read_text() == rows_before  # nothing trained again, nothing repeated
    assert load_model(final).config.extra["iteration"] == 4


def test_resume_keeps_the_refitted_class_weights(tmp_path):
    out = tmp_path / "run"

    def interrupt_at_3(iteration, row):
        if iteration == 3:
            raise KeyboardInterrupt

    config = _config(out, class_weight_every=2, class_weight_images=2)
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=interrupt_at_3)  # weights refitted at iteration 2, saved with the state at 3
    from safetensors.torch import load_file

    saved = load_file(str(out / "last.state.safetensors"))["loss.class_weights"]
    assert saved.numel() > 0
    final = train(config, resume=True)
    assert load_model(final).config.extra["iteration"] == 4


def test_a_new_run_never_overwrites_a_previous_one_unasked(tmp_path):
    """The same command run again without --resume emptied log.csv at once and replaced the
    checkpoint at its first save: a long run's progress, lost without a word."""
    out = tmp_path / "run"
    train(_config(out, iterations=2))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match="holds a previous run .*--resume.*--force"):
        train(_config(out, iterations=2))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    train(_config(out, iterations=2), replace=True)  # asked: starts over
    assert (out / "log.csv").read_text().count("\n") == 3


def test_a_run_never_overwrites_the_model_it_starts_from(tmp_path):
    """init naming a run folder (or its final.safetensors) that is also --out: the run's own final
    model replaced the model it started from (exit 0)."""
    first = tmp_path / "first"
    train(_config(first, iterations=2))
    model = (first / "final.safetensors").read_bytes()
    for init in (str(first), str(first / "final.safetensors")):
        with pytest.raises(ValueError, match="is the model this run starts from"):
            train(_config(first, iterations=2, init=init), replace=True)
    assert (first / "final.safetensors").read_bytes() == model


def test_a_checkpoint_without_its_state_is_not_resumed_from_zero(tmp_path):
    """Killed while saving its first checkpoint, a run left last.safetensors without
    last.state.json; --resume then started again at iteration 1 and overwrote that checkpoint."""
    out = tmp_path / "run"
    train(_config(out, iterations=2))
    (out / "last.state.json").unlink()
    kept = (out / "last.safetensors").read_bytes()
    with pytest.raises(ValueError, match="not its training state"):
        train(_config(out, iterations=4), resume=True)
    assert (out / "last.safetensors").read_bytes() == kept


def test_a_torn_checkpoint_is_not_resumed(tmp_path):
    """Killed between writing a checkpoint's weights and its training state, a run left iteration-4
    weights beside iteration-2 state; --resume mixed them and trained iterations 3-4 twice."""
    out = tmp_path / "run"
    train(_config(out, iterations=2))
    (out / "last.state.json").write_text(json.dumps({"iteration": 1}))
    with pytest.raises(ValueError, match="torn: its weights are of iteration 2, its training state of iteration 1"):
        train(_config(out, iterations=4), resume=True)


@pytest.mark.parametrize("change", ["optimizer", "model", "state file"])
def test_resuming_with_other_settings_or_a_damaged_state_is_one_clear_error(tmp_path, change):
    """These gave 'unexpected KeyError: exp_avg', a state_dict RuntimeError or a SafetensorError
    through the crash handler."""
    out = tmp_path / "run"
    train(_config(out, iterations=2))
    kw = {"iterations": 4}
    if change == "optimizer":
        kw["optimizer"] = "sgd"
    elif change == "model":
        kw["model"] = "small"
    else:
        (out / "last.state.safetensors").write_bytes(b"\x00\x01truncated")
    with pytest.raises(ValueError, match="--force starts over|--force to start over"):
        train(_config(out, **kw), resume=True)


@pytest.mark.parametrize("text", ["", "[1]", '{"iteration": "2"}', '{"iteration": 1' + "0" * 5000 + "}"])
def test_a_damaged_training_state_names_its_file_and_the_ways_on(tmp_path, text):
    """An empty last.state.json said "Expecting value: line 1 column 1 (char 0)" naming no file; a
    list in it was an unexpected AttributeError through the crash handler."""
    out = tmp_path / "run"
    train(_config(out, iterations=2))
    (out / "last.state.json").write_text(text)
    with pytest.raises(ValueError) as caught:
        train(_config(out, iterations=4), resume=True)
    message = str(caught.value)
    assert message.startswith(str(out / "last.state.json")) and "--force starts over" in message, message
    assert f"--set init={out / 'last.safetensors'}" in message and "\n" not in message


class Killed(BaseException):
    """The process ends here: nothing after it runs (not the checkpoint Ctrl-C saves)."""


def test_killed_while_saving_a_checkpoint_the_one_before_stays_resumable(tmp_path, monkeypatch):
    """The weights were renamed into place before the training state was even serialised: a kill
    in between left a torn checkpoint, which --resume refuses, and the good one before was gone."""
    from qgn.train import loop

    out = tmp_path / "run"
    train(_config(out, iterations=2))
    names = ("last.safetensors", "last.json", "last.state.safetensors", "last.state.json")
    before = {name: (out / name).read_bytes() for name in names}
    real = loop.save

    def dies(tensors, *args, **kwargs):
        if any(key.startswith("opt.") for key in tensors):  # the training state's turn
            raise Killed
        return real(tensors, *args, **kwargs)

    monkeypatch.setattr(loop, "save", dies)
    with pytest.raises(Killed):
        train(_config(out, iterations=4), resume=True)
    monkeypatch.undo()
    assert {name: (out / name).read_bytes() for name in names} == before
    train(_config(out, iterations=4), resume=True)
    assert load_model(out / "final.safetensors").config.extra["iteration"] == 4


def test_a_trained_model_comes_with_its_domain_reference(tmp_path):
    """final.domain.json: made from the training split's images for this very file, so the app's
    domain check (and its empty start on images unlike them) works for a model a person trained;
    its training images score inside, noise outside."""
    from qgn.data.registry import open_dataset
    from qgn.domain import MIN_REFERENCE_IMAGES, judge, reference_for

    final = train(_config(tmp_path / "run", iterations=2, synthetic_n=MIN_REFERENCE_IMAGES, synthetic_size=32))
    reference = reference_for(final)
    assert reference is not None and reference.images == MIN_REFERENCE_IMAGES
    assert reference.pixels == (32 * 32, 32 * 32)
    model = load_model(final)
    scenes = open_dataset("synthetic", "train", n=MIN_REFERENCE_IMAGES, size=32)
    inside = [judge(model, scenes[i].image, reference).inside for i in range(0, MIN_REFERENCE_IMAGES, 10)]
    assert sum(inside) >= 18  # (its 95th percentile; 1.5 times that)
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert not judge(model, noise, reference).inside


def test_too_few_training_images_make_no_domain_reference_and_say_so(tmp_path, capsys):
    """Six images' own 95th percentile is no bar for new images of their kind (it would flag them
    all): no reference, and the run says why; the model is saved as ever."""
    from qgn.domain import reference_for, reference_path

    final = train(_config(tmp_path / "run", iterations=2))
    assert load_model(final) and reference_for(final) is None and not reference_path(final).exists()
    assert "no domain reference: 6 training images" in capsys.readouterr().err


def test_a_log_line_that_cannot_be_written_does_not_end_the_run(tmp_path, capsys, monkeypatch):
    """A full disk under log.csv (its writes go to /dev/full, which fails each with ENOSPC as a
    full disk does) is said once on stderr, naming the file and the reason, and the run goes on to
    its checkpoints and final model, which are written as before."""
    import builtins

    from qgn.train import loop

    out = tmp_path / "run"

    def full_disk_log(path, *args, **kwargs):
        if str(path) == str(out / "log.csv"):
            return builtins.open("/dev/full", *args, **kwargs)
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(loop, "open", full_disk_log, raising=False)
    seen = []
    final = train(_config(out), progress=lambda iteration, row: seen.append(iteration))
    assert seen == [1, 2, 3, 4]  # every iteration trained and reported
    assert load_model(final).config.extra["iteration"] == 4
    assert json.loads((out / "last.state.json").read_text())["iteration"] == 4
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "log.csv" in line]
    assert len(warnings) == 1 and str(out / "log.csv") in warnings[0], err
    assert "No space left on device" in warnings[0] and "training goes on" in warnings[0]
