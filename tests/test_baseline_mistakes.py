"""A baseline's bad flag stops before anything is written, naming it."""

from __future__ import annotations

import os

import pytest
from conftest import IN_PROCESS

from tf_multvae.baselines import command


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    from data_prep import pipeline

    out = tmp_path_factory.mktemp("mistakes") / "synthetic"
    code = pipeline.main(
        ["--dataset", "synthetic", "--synthetic-users", "400",
         "--synthetic-items", "150", "--out", str(out), *IN_PROCESS]
    )  # fmt: skip
    assert code == 0
    return str(out)


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--model", "wmf", "--factors", "0"], "--factors"),
        (["--model", "wmf", "--iterations", "0"], "--iterations"),
        (["--model", "wmf", "--confidence", "-1"], "--confidence"),
        (["--model", "slim", "--l1", "0"], "--l1"),
        (["--model", "slim", "--l2", "-1"], "--l2"),
        (["--model", "ease", "--l2", "0"], "--l2"),
        (["--model", "popularity", "--factors", "10"], "--factors"),
        (["--model", "ease", "--grid", "--l2", "5"], "--grid varies l2"),
        (["--model", "popularity", "--grid"], "popularity has no grid"),
    ],
)
def test_bad_values_name_the_flag_and_write_nothing(
    dataset, tmp_path, capsys, flags, message
):
    run_dir = tmp_path / "run"
    argv = [*flags, "--data-dir", dataset, "--run-dir", str(run_dir)]
    assert command.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1  # one line
    assert not os.path.exists(run_dir)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused_by_the_parser(
    dataset, tmp_path, capsys, value
):
    argv = ["--model", "wmf", "--confidence", value, "--data-dir", dataset,
            "--run-dir", str(tmp_path / "run")]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        command.main(argv)
    assert exit_.value.code == 2
    assert "--confidence" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "run")
