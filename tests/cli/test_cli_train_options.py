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
