"""`qgn train`'s --resume and --force: a contradiction is refused before any work, and a --resume
with nothing to continue says that a new run starts."""


def test_resume_with_force_is_refused_before_any_work(tmp_path, run_cli):
    """Both together went on with the run in --out, whatever --force promised."""
    blocker = tmp_path / "file"
    blocker.write_text("x")  # refused as a file if the contradiction were not: nothing trains here
    code, _, err = run_cli("train", "--preset", "demo", "--resume", "--force", "--out", blocker)
    assert code == 2 and "--resume continues the run in --out and --force starts it over" in err, err


def test_resume_with_nothing_to_continue_says_a_new_run_starts(tmp_path, run_cli):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # --out is refused as a file after the note: nothing trains here
    code, _, err = run_cli("train", "--preset", "demo", "--resume", "--out", blocker)
    assert code == 2 and f"--resume: {blocker} holds no run to continue" in err, err


def test_resume_of_a_run_that_cannot_be_resumed_promises_no_new_run(tmp_path, run_cli):
    """A checkpoint without last.state.json printed "… holds no run to continue …; starting a new
    run" and then the refusal that it cannot be resumed: two lines that contradict each other."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "last.safetensors").write_text("x")
    code, _, err = run_cli("train", "--preset", "demo", "--resume", "--out", out, "--set", "iterations=1")
    assert code == 2 and err == (f"qgn train: error: --out {out} has a checkpoint but not its training state "
                                 "(last.state.json: a run killed while saving it), so it cannot be resumed; "
                                 "--force starts over, replacing it\n"), err
