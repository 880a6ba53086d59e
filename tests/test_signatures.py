"""The SavedModel's signatures (tf_multvae.serving.signatures) against the
in-memory model; serving it without Keras; saved_model_cli.

Every ranking is checked against the in-memory model: its scores with the
input items set to -inf, ranked by numpy (ties: lower index first, as
tf.math.top_k). The exported run and its SavedModel are conftest's.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import references
import tensorflow as tf

from tf_multvae.serving import recommend
from tf_multvae.serving import signatures

# 1. Signatures against the in-memory model --------------------------------


def test_both_signatures_match_the_in_memory_model(
    loaded_model, keras_model, fold_in_users, vocab
):
    users = fold_in_users  # [SERVING_USERS, L]
    k = int(loaded_model.top_k.numpy())
    assert k == signatures.DEFAULT_TOP_K
    by_index = loaded_model.signatures[signatures.INDEX_SIGNATURE](
        item_indices=tf.constant(users)
    )
    references.assert_same_ranking(by_index, keras_model, users, vocab, k)
    by_id = loaded_model.signatures[signatures.SERVING_SIGNATURE](
        items=tf.constant(references.as_ids(users, vocab).astype(str))
    )
    references.assert_same_ranking(by_id, keras_model, users, vocab, k)
    assert by_id["unknown_items"].numpy().tolist() == [0] * len(users)


def test_unknown_repeated_and_empty_inputs(loaded_model, keras_model, vocab):
    rows = [
        [vocab[3], "no-such-item", vocab[7], "", "also-unknown"],
        [vocab[7], vocab[3], vocab[3], "", ""],  # repeats count once
        ["", "", "", "", ""],  # empty history
    ]
    out = loaded_model.signatures[signatures.SERVING_SIGNATURE](
        items=tf.constant(rows)
    )
    assert out["unknown_items"].numpy().tolist() == [2, 0, 0]
    known = np.array([[3, 7], [3, 7], [-1, -1]], np.int64)
    k = int(loaded_model.top_k.numpy())
    references.assert_same_ranking(
        {key: v.numpy() for key, v in out.items()},
        keras_model,
        known,
        vocab,
        k,
    )
    # Indices outside [0, n_items) are unknown too; -1 is padding.
    n_items = len(vocab)
    out = loaded_model.signatures[signatures.INDEX_SIGNATURE](
        item_indices=tf.constant(
            [[3, n_items, 7, -5], [-1, -1, -1, -1]], tf.int64
        )
    )
    assert out["unknown_items"].numpy().tolist() == [2, 0]
    references.assert_same_ranking(
        {key: v.numpy() for key, v in out.items()},
        keras_model,
        known[[0, 2]],
        vocab,
        k,
    )
    # A batch of width 0 is a batch of empty histories.
    empty = loaded_model.signatures[signatures.SERVING_SIGNATURE](
        items=tf.zeros([2, 0], tf.string)
    )
    np.testing.assert_array_equal(
        empty["item_indices"].numpy(), out["item_indices"].numpy()[[1, 1]]
    )


def test_ids_of_the_wrong_type_are_named(loaded_model):
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="expected to be a string tensor but is a int64 tensor",
    ):
        loaded_model.signatures[signatures.SERVING_SIGNATURE](
            items=tf.constant([[1, 2]], tf.int64)
        )
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="expected to be a int64 tensor but is a float tensor",
    ):
        loaded_model.signatures[signatures.INDEX_SIGNATURE](
            item_indices=tf.constant([[1.5]])
        )
    with pytest.raises(TypeError, match="item 1.5 is a float"):
        recommend.recommend(loaded_model, [[1.5]])
    with pytest.raises(TypeError, match="mixes raw item ids"):
        recommend.recommend(loaded_model, [["1"], [2]])
    with pytest.raises(ValueError, match="-k 101 must be between 1 and"):
        recommend.recommend(loaded_model, [["1"]], k=101)


# 2. Serving needs TensorFlow only ----------------------------------------

SERVE_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import tensorflow as tf

    # TensorFlow imports parts of Keras itself; anything of Keras or of
    # tf_multvae imported from here on would be the SavedModel's doing.
    BLOCKED = ("keras", "tf_multvae")
    before = {m for m in sys.modules if m.split(".")[0] in BLOCKED}

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED and name not in sys.modules:
                raise ImportError(f"serving tried to import {name}")
            return None

    sys.meta_path.insert(0, Block())
    model_dir, inputs_path, out_path = sys.argv[1:]
    with open(inputs_path) as f:
        inputs = json.load(f)
    loaded = tf.saved_model.load(model_dir)
    result = {}
    for name, (key, dtype, value) in inputs.items():
        out = loaded.signatures[name](**{key: tf.constant(value, dtype)})
        result[name] = {k: v.numpy().tolist() for k, v in out.items()}
        for row in result[name]["item_ids"]:
            row[:] = [i.decode() for i in row]
    after = {m for m in sys.modules if m.split(".")[0] in BLOCKED}
    result["newly_imported"] = sorted(after - before)
    result["tf_multvae_imported"] = "tf_multvae" in sys.modules
    with open(out_path, "w") as f:
        json.dump(result, f)
    """
)


@pytest.fixture(scope="module")
def outside(saved_model, fold_in_users, vocab, tmp_path_factory) -> dict:
    """The SavedModel served by a fresh Python process, and saved_model_cli
    show --all on it; both run at once (each starts TensorFlow anew).

    Returns:
        ``{"serve": the script's JSON result, "cli": the CLI's stdout}``.
    """
    users = fold_in_users
    tmp = tmp_path_factory.mktemp("outside")
    (tmp / "serve.py").write_text(SERVE_SCRIPT)
    inputs = {
        signatures.SERVING_SIGNATURE: (
            signatures.IDS_INPUT,
            "string",
            references.as_ids(users, vocab).tolist(),
        ),
        signatures.INDEX_SIGNATURE: (
            signatures.INDICES_INPUT,
            "int64",
            users.tolist(),
        ),
    }
    (tmp / "inputs.json").write_text(json.dumps(inputs))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cli = pathlib.Path(sys.executable).with_name("saved_model_cli")
    commands = {
        "serve": [
            sys.executable,
            str(tmp / "serve.py"),
            str(saved_model),
            str(tmp / "inputs.json"),
            str(tmp / "out.json"),
        ],
        "cli": [str(cli), "show", "--dir", str(saved_model), "--all"],
    }
    procs = {
        name: subprocess.Popen(
            command,
            cwd=tmp,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name, command in commands.items()
    }
    results = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name}: {stderr[-3000:]}"
        results[name] = stdout
    results["serve"] = json.loads((tmp / "out.json").read_text())
    return results


@pytest.mark.slow
def test_serving_in_a_fresh_process_needs_no_keras(
    outside, keras_model, fold_in_users, vocab
):
    result = outside["serve"]
    assert result["newly_imported"] == []
    assert result["tf_multvae_imported"] is False
    for name in (signatures.SERVING_SIGNATURE, signatures.INDEX_SIGNATURE):
        assert sorted(result[name]) == sorted(signatures.OUTPUTS)
        references.assert_same_ranking(
            result[name],
            keras_model,
            fold_in_users,
            vocab,
            signatures.DEFAULT_TOP_K,
        )


@pytest.mark.slow
def test_saved_model_cli_lists_the_signatures(outside):
    text = outside["cli"]
    for name, key, dtype in (
        (signatures.SERVING_SIGNATURE, signatures.IDS_INPUT, "DT_STRING"),
        (signatures.INDEX_SIGNATURE, signatures.INDICES_INPUT, "DT_INT64"),
    ):
        block = text.split(f"signature_def['{name}']:")[1]
        block = block.split("signature_def[")[0]
        assert re.search(
            rf"inputs\['{key}'\] tensor_info:\s+dtype: {dtype}\s+"
            r"shape: \(-1, -1\)",
            block,
        ), block
        for output in signatures.OUTPUTS:
            assert f"outputs['{output}']" in block
        assert "shape: (-1, 100)" in block
        assert "Method name is: tensorflow/serving/predict" in block
