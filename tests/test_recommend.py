"""The recommend command and Python API (tf_multvae.serving.recommend)
against the in-memory model, and its bad arguments.

The exported run and its SavedModel are conftest's.
"""

from __future__ import annotations

import re

import numpy as np
import references

from tf_multvae.serving import recommend


def test_recommend_cli_prints_the_top_k(
    saved_model, keras_model, vocab, capsys
):
    argv = [
        "--model",
        str(saved_model.parent),
        "--items",
        f"{vocab[3]},{vocab[7]},nope",
        "-k",
        "5",
    ]
    assert recommend.main(argv) == 0
    printed = capsys.readouterr().out
    top, scores = references.serving_top_k(keras_model, np.array([[3, 7]]), 5)
    assert "ignored 1 item(s)" in printed
    lines = [
        line.split()
        for line in printed.splitlines()
        if re.match(r"\s+\d+\s", line)
    ]
    assert [line[1] for line in lines] == vocab[top[0]].tolist()
    assert [int(line[2]) for line in lines] == top[0].tolist()
    np.testing.assert_allclose(
        [float(line[3]) for line in lines], scores[0], atol=1e-4
    )
    assert (
        recommend.main(
            [
                "--model",
                str(saved_model),
                "--items",
                "3,7",
                "--indices",
                "-k",
                "5",
            ]
        )
        == 0
    )
    assert vocab[top[0][0]] in capsys.readouterr().out


def test_recommend_python_api(loaded_model, keras_model, vocab):
    ids = recommend.recommend(loaded_model, [[vocab[3], vocab[7]], []], k=4)
    indices = recommend.recommend(loaded_model, [[3, 7], []], k=4)
    assert ids == indices
    top, _ = references.serving_top_k(
        keras_model, np.array([[3, 7], [-1, -1]]), 4
    )
    assert [r.item_indices for r in ids] == top.tolist()


def test_recommend_cli_bad_arguments(saved_model, tmp_path, capsys):
    assert recommend.main(["--model", str(tmp_path), "--items", "1"]) == 2
    assert "is not a SavedModel" in capsys.readouterr().err
    assert (
        recommend.main(
            ["--model", str(saved_model), "--items", "a,b", "--indices"]
        )
        == 2
    )
    assert "--indices takes integers" in capsys.readouterr().err
