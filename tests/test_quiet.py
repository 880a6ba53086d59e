"""Quiet by default, everything with --verbose, and never a traceback.

A command prints its own account (data prep: one line per stage) and, on
a mistake, one ``error:`` line; Beam's and TensorFlow's logs go to a log
file that ``--log-file`` keeps. An unexpected error (a bug, a fault of
the machine) also ends in one line, naming the log file that holds its
trace; with ``--verbose`` it propagates with the trace.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import IN_PROCESS
from conftest import REPO
from conftest import TINY

from data_prep import pipeline
from tf_multvae import cli
from tf_multvae import train

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
STAGES = ("reading ", "read ", "clicks ", "kept ", "grouped ", "wrote ")


def _prep(args, tmp_path, **kw):
    return subprocess.run(
        [sys.executable, "-m", "data_prep", *args],
        cwd=REPO,
        env={**ENV, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def _ratings(tmp_path, bad: bool) -> str:
    path = tmp_path / "ratings.csv"
    rows = [f"{u},{i},{4 + (u + i) % 2}" for u in range(40) for i in range(12)]
    if bad:
        rows.insert(100, "7,3,x")
    path.write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    return str(path)


LAYOUT = ["--dataset", "csv", "--header", "--columns", "user,item,rating"]
SPLIT = ["--heldout-users", "5", "--min-user-clicks", "1"]


@pytest.mark.slow
def test_a_prep_prints_its_stages_and_nothing_on_stderr(tmp_path):
    raw = _ratings(tmp_path, bad=False)
    log = tmp_path / "kept.log"
    out = tmp_path / "ds"
    done = _prep(
        [*LAYOUT, *SPLIT, "--raw", raw, "--out", str(out)]
        + ["--log-file", str(log)],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    for stage in STAGES:
        assert any(line.startswith(stage) for line in lines), done.stdout
    assert "read     480 rows of 1 raw file(s); bad lines 0" in lines
    assert f"log      {log}" in lines
    text = log.read_text()
    assert "sdk_worker" in text  # the workers' log came to the file
    assert "INFO" in text


@pytest.mark.slow
def test_a_bad_line_is_one_line_on_stderr_and_leaves_no_log(tmp_path):
    raw = _ratings(tmp_path, bad=True)
    done = _prep(
        [*LAYOUT, *SPLIT, "--raw", raw, "--out", str(tmp_path / "ds")],
        tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert re.match(rf"error: {re.escape(raw)}, line 102: ", done.stderr)
    assert not os.path.exists(tmp_path / "ds")
    left = [e for e in os.listdir(tmp_path) if e.endswith(".log")]
    assert left == []  # nothing to read: the line said it all


@pytest.mark.slow
def test_verbose_shows_beams_log(tmp_path):
    raw = _ratings(tmp_path, bad=True)
    done = _prep(
        [*LAYOUT, *SPLIT, "--raw", raw, "--out", str(tmp_path / "ds")]
        + ["--verbose"],
        tmp_path,
    )
    assert done.returncode == 2
    assert "INFO" in done.stderr and "sdk_worker" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith("error: ")


def _boom(*args, **kwargs):
    raise RuntimeError("boom: a fault no check foresaw")


def _unexpected_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: unexpected RuntimeError: boom"), err
    return lines[0]


def _named_log(line: str) -> str:
    found = re.search(r"the full trace is in (\S+);", line)
    assert found, line
    return found.group(1)


def test_an_unexpected_prep_error_is_one_line_naming_its_trace(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(pipeline, "run", _boom)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    argv = ["--dataset", "synthetic", "--out", str(tmp_path / "ds")]
    assert pipeline.main([*argv, *IN_PROCESS]) == cli.FAILED
    log = _named_log(_unexpected_line(capsys.readouterr().err))
    assert log.startswith(str(tmp_path))
    with open(log) as f:
        text = f.read()
    assert "Traceback" in text and "boom: a fault" in text
    with pytest.raises(RuntimeError, match="boom"):
        pipeline.main([*argv, *IN_PROCESS, "--verbose"])


def test_an_unexpected_training_error_is_one_line_naming_its_trace(
    tmp_path, monkeypatch, capsys, report_dataset
):
    from tf_multvae.training import loop

    monkeypatch.setattr(loop, "run", _boom)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    argv = [
        "--dataset",
        "synthetic",
        "--data-dir",
        report_dataset,
        "--run-dir",
        str(tmp_path / "run"),
        *TINY,
    ]
    assert train.main(argv) == cli.FAILED
    log = _named_log(_unexpected_line(capsys.readouterr().err))
    with open(log) as f:
        assert "Traceback" in f.read()
    with pytest.raises(RuntimeError, match="boom"):
        train.main([*argv, "--verbose"])


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run", interrupted)
    argv = ["--dataset", "synthetic", "--out", str(tmp_path / "ds")]
    assert pipeline.main([*argv, *IN_PROCESS]) == cli.INTERRUPTED
    assert capsys.readouterr().err == "error: interrupted\n"


@pytest.mark.slow
def test_train_as_a_program_keeps_tensorflows_start_up_lines_off_stderr(
    tmp_path, report_dataset
):
    done = subprocess.run(
        [sys.executable, "-m", "tf_multvae.train", "--dataset", "synthetic"]
        + ["--data-dir", report_dataset, "--run-dir", str(tmp_path / "run")]
        + ["--epochs", "1", *TINY],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # no TF_CPP_MIN_LOG_LEVEL
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "absl" not in done.stderr and "oneDNN" not in done.stderr
    assert "best epoch 1" in done.stdout
    assert [e for e in os.listdir(tmp_path) if e.endswith(".log")] == []
    # A command module that imports TensorFlow at its top: the package's
    # own import, first, already sent the C++ lines to the log file.
    done = subprocess.run(
        [sys.executable, "-m", "tf_multvae.serving.export"]
        + ["--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "m")],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "SavedModel:" in done.stdout
    assert [e for e in os.listdir(tmp_path) if e.endswith(".log")] == []


def test_paths_that_must_be_directories_or_files_are_refused_by_flag(
    tmp_path, capsys, report_dataset, vae_run
):
    from tf_multvae.serving import export

    a_file = tmp_path / "notes.txt"
    a_file.write_text("the user's\n")
    cases = [
        (
            train.main,
            ["--dataset", "synthetic", "--data-dir", report_dataset]
            + ["--run-dir", str(tmp_path / "run"), "--epochs", "1", *TINY]
            + ["--export-dir", str(a_file)],
            f"--export-dir {a_file} is a file, not a directory",
        ),
        (
            export.main,
            ["--run-dir", vae_run, "--out", str(a_file)],
            f"--out {a_file} is a file, not a directory",
        ),
        (
            pipeline.main,
            ["--dataset", "synthetic", "--out", str(tmp_path / "ds")]
            + ["--log-file", str(tmp_path), *IN_PROCESS],
            f"--log-file {tmp_path} is a directory; name a file",
        ),
        (
            pipeline.main,
            ["--dataset", "synthetic", "--out", str(tmp_path / "ds")]
            + ["--log-file", str(tmp_path / "no" / "x.log"), *IN_PROCESS],
            f"no directory {tmp_path / 'no'}",
        ),
    ]
    for main, argv, message in cases:
        assert main(argv) == cli.USAGE, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert a_file.read_text() == "the user's\n"
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]
