"""SavedModel export: signatures, serving without Keras, REST, CLIs, errors.

Every ranking is checked against the in-memory model: its scores with the
input items set to -inf, ranked by numpy (ties: lower index first, as
tf.math.top_k).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO

from tf_multvae import data

from tf_multvae import datadir
from tf_multvae.serving import export
from tf_multvae import features
from tf_multvae import rundir
from tf_multvae.serving import recommend
from tf_multvae.serving import signatures
from tf_multvae import train

SMALL = [
    "--hidden-dims", "32", "--latent-dim", "16", "--batch-size", "100",
    "--total-anneal-steps", "200",
]
USERS = 40  # test users checked against the in-memory model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, small_dataset) -> pathlib.Path:
    """A 2-epoch run on small synthetic data, exported by train itself."""
    root = tmp_path_factory.mktemp("export")
    data_dir = small_dataset
    run = root / "run"
    assert train.main(
        ["--dataset", "synthetic", "--data-dir", str(data_dir), "--run-dir",
         str(run), "--epochs", "2", *SMALL,
         "--export-dir", str(root / "models")]
    ) == 0
    return run


@pytest.fixture(scope="module")
def saved_model(run_dir) -> pathlib.Path:
    """The version that ``train --export-dir`` wrote (top-k 100)."""
    return run_dir.parent / "models" / "1"


@pytest.fixture(scope="module")
def loaded(saved_model):
    return tf.saved_model.load(str(saved_model))


@pytest.fixture(scope="module")
def model(run_dir):
    return keras.saving.load_model(str(run_dir / rundir.BEST_MODEL))


@pytest.fixture(scope="module")
def vocab(run_dir) -> np.ndarray:
    config = json.loads((run_dir / "config.json").read_text())
    path = os.path.join(config["data_dir"], features.VOCAB_FILE)
    return np.array(datadir.read_vocabulary(path), dtype=object)


@pytest.fixture(scope="module")
def users(run_dir) -> np.ndarray:
    """Fold-in items of test users: int64 [USERS, L], -1 padded."""
    config = json.loads((run_dir / "config.json").read_text())
    batch = next(iter(data.eval_dataset(config["data_dir"], "test", USERS)))
    return batch[features.FOLD_IN].numpy()


def reference_top_k(model, indices: np.ndarray, k: int):
    """numpy top-k of the in-memory model's masked scores.

    Args:
        indices: int64 [batch, L] distinct known items, -1 padded.

    Returns:
        (int64 [batch, k] item indices, float32 [batch, k] scores).
    """
    scores = model.score(tf.constant(indices, tf.int64)).numpy()
    for u, row in enumerate(indices):
        scores[u, row[row >= 0]] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return top, np.take_along_axis(scores, top, axis=1)


def as_ids(indices: np.ndarray, vocab: np.ndarray) -> np.ndarray:
    """Item indices -> raw ids, -1 -> "" (object [batch, L])."""
    return np.where(indices >= 0, vocab[np.maximum(indices, 0)], "")


def assert_same_ranking(out: dict, model, indices, vocab, k: int) -> None:
    top, scores = reference_top_k(model, indices, k)
    np.testing.assert_array_equal(np.asarray(out["item_indices"]), top)
    np.testing.assert_allclose(
        np.asarray(out["scores"], np.float32), scores, rtol=1e-5, atol=1e-5
    )
    ids = [[i.decode() if isinstance(i, bytes) else i for i in row]
           for row in np.asarray(out["item_ids"], dtype=object)]
    assert ids == vocab[top].tolist()


# 1. Export layout and versions -------------------------------------------


def test_train_exports_its_best_model(run_dir, saved_model):
    assert (saved_model / "saved_model.pb").exists()
    assert (saved_model / "variables").is_dir()
    assert (saved_model / "assets" / features.VOCAB_FILE).exists()
    # Nothing else under the model_base_path: no half-written versions.
    assert os.listdir(saved_model.parent) == ["1"]


def test_cli_writes_numbered_versions(run_dir, tmp_path, capsys):
    out = tmp_path / "models"
    base = ["--run-dir", str(run_dir), "--out", str(out), "--top-k", "5"]
    assert export.main(base) == 0
    assert export.main(base) == 0  # next version
    assert sorted(os.listdir(out)) == ["1", "2"]
    assert "SavedModel:" in capsys.readouterr().out
    assert export.main(base + ["--version", "2"]) == 2
    err = capsys.readouterr().err
    assert f"{out / '2'} already exists; pass --overwrite" in err
    assert export.main(base + ["--version", "2", "--overwrite"]) == 0
    assert export.main(base + ["--version", "7"]) == 0
    assert sorted(os.listdir(out)) == ["1", "2", "7"]  # no staging left
    loaded = tf.saved_model.load(str(out / "7"))
    assert int(loaded.top_k.numpy()) == 5


# 2. Signatures against the in-memory model --------------------------------


def test_both_signatures_match_the_in_memory_model(
    loaded, model, users, vocab
):
    k = int(loaded.top_k.numpy())
    assert k == signatures.DEFAULT_TOP_K
    by_index = loaded.signatures[signatures.INDEX_SIGNATURE](
        item_indices=tf.constant(users)
    )
    assert_same_ranking(by_index, model, users, vocab, k)
    by_id = loaded.signatures[signatures.SERVING_SIGNATURE](
        items=tf.constant(as_ids(users, vocab).astype(str))
    )
    assert_same_ranking(by_id, model, users, vocab, k)
    assert by_id["unknown_items"].numpy().tolist() == [0] * len(users)


def test_unknown_repeated_and_empty_inputs(loaded, model, vocab):
    rows = [
        [vocab[3], "no-such-item", vocab[7], "", "also-unknown"],
        [vocab[7], vocab[3], vocab[3], "", ""],  # repeats count once
        ["", "", "", "", ""],  # empty history
    ]
    out = loaded.signatures[signatures.SERVING_SIGNATURE](
        items=tf.constant(rows)
    )
    assert out["unknown_items"].numpy().tolist() == [2, 0, 0]
    known = np.array([[3, 7], [3, 7], [-1, -1]], np.int64)
    k = int(loaded.top_k.numpy())
    assert_same_ranking(
        {key: v.numpy() for key, v in out.items()}, model, known, vocab, k
    )
    # Indices outside [0, n_items) are unknown too; -1 is padding.
    n_items = len(vocab)
    out = loaded.signatures[signatures.INDEX_SIGNATURE](
        item_indices=tf.constant(
            [[3, n_items, 7, -5], [-1, -1, -1, -1]], tf.int64
        )
    )
    assert out["unknown_items"].numpy().tolist() == [2, 0]
    assert_same_ranking(
        {key: v.numpy() for key, v in out.items()},
        model, known[[0, 2]], vocab, k,
    )
    # A batch of width 0 is a batch of empty histories.
    empty = loaded.signatures[signatures.SERVING_SIGNATURE](
        items=tf.zeros([2, 0], tf.string)
    )
    np.testing.assert_array_equal(
        empty["item_indices"].numpy(), out["item_indices"].numpy()[[1, 1]]
    )


# 3. Serving needs TensorFlow only ----------------------------------------

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
def outside(saved_model, users, vocab, tmp_path_factory) -> dict:
    """The SavedModel served by a fresh Python process, and saved_model_cli
    show --all on it; both run at once (each starts TensorFlow anew).

    Returns:
        ``{"serve": the script's JSON result, "cli": the CLI's stdout}``.
    """
    tmp = tmp_path_factory.mktemp("outside")
    (tmp / "serve.py").write_text(SERVE_SCRIPT)
    inputs = {
        signatures.SERVING_SIGNATURE: (
            signatures.IDS_INPUT, "string", as_ids(users, vocab).tolist()
        ),
        signatures.INDEX_SIGNATURE: (
            signatures.INDICES_INPUT, "int64", users.tolist()
        ),
    }
    (tmp / "inputs.json").write_text(json.dumps(inputs))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cli = pathlib.Path(sys.executable).with_name("saved_model_cli")
    commands = {
        "serve": [sys.executable, str(tmp / "serve.py"), str(saved_model),
                  str(tmp / "inputs.json"), str(tmp / "out.json")],
        "cli": [str(cli), "show", "--dir", str(saved_model), "--all"],
    }
    procs = {
        name: subprocess.Popen(
            command, cwd=tmp, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
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


def test_serving_in_a_fresh_process_needs_no_keras(
    outside, model, users, vocab
):
    result = outside["serve"]
    assert result["newly_imported"] == []
    assert result["tf_multvae_imported"] is False
    for name in (signatures.SERVING_SIGNATURE, signatures.INDEX_SIGNATURE):
        assert sorted(result[name]) == sorted(signatures.OUTPUTS)
        assert_same_ranking(
            result[name], model, users, vocab, signatures.DEFAULT_TOP_K
        )


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
            r"shape: \(-1, -1\)", block
        ), block
        for output in signatures.OUTPUTS:
            assert f"outputs['{output}']" in block
        assert "shape: (-1, 100)" in block
        assert "Method name is: tensorflow/serving/predict" in block


# 4. The README's REST request, mapped to tensors as TF Serving does ---------


def rest_predict(loaded, body: dict) -> dict:
    """TF Serving's REST predict, in process (tensorflow.org/tfx/serving/
    api_rest): the row format ({"instances": [...]}) or the columnar one
    ({"inputs": ...}), JSON values checked against the input's dtype, the
    response as {"predictions": [per-row objects]} or {"outputs": {...}}.
    """
    signature = loaded.signatures[body.get("signature_name", "serving_default")]
    _, specs = signature.structured_input_signature
    names = sorted(specs)

    def tensor(name, value):
        dtype = specs[name].dtype
        leaves = tf.nest.flatten(value)
        want = {tf.string: str, tf.int64: int}[dtype]
        for leaf in leaves:
            if type(leaf) is not want:
                raise TypeError(
                    f"JSON Value: {json.dumps(leaf)} is not of expected type: "
                    f"{dtype.name} (input {name!r})"
                )
        return tf.constant(value, dtype)

    if "instances" in body:
        rows = body["instances"]
        if rows and isinstance(rows[0], dict):
            inputs = {n: tensor(n, [r[n] for r in rows]) for n in names}
        else:
            (name,) = names
            inputs = {name: tensor(name, rows)}
    else:
        columns = body["inputs"]
        if not isinstance(columns, dict):
            (name,) = names
            columns = {name: columns}
        inputs = {n: tensor(n, columns[n]) for n in names}
    out = {k: v.numpy() for k, v in sorted(signature(**inputs).items())}
    out = {
        k: v.astype(str).tolist() if v.dtype == object  # utf-8 strings
        # float32 as its shortest repr (4.141305, not 4.141304969787598)
        else tf.nest.map_structure(lambda x: float(str(np.float32(x))),
                                   v.tolist())
        if v.dtype == np.float32 else v.tolist()
        for k, v in out.items()
    }
    if "instances" in body:
        batch = len(out["scores"])
        return {
            "predictions": [
                {k: out[k][u] for k in sorted(out)} for u in range(batch)
            ]
        }
    return {"outputs": out}


def readme_examples() -> list[tuple[dict, dict]]:
    """(request, response) JSON pairs of the README's Serving section."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Serving", 1)[1].split("\n## ", 1)[0]
    requests = [
        json.loads(body) for body in re.findall(r"curl -d '(\{.*?\})'", section)
    ]
    responses = [
        json.loads(block)
        for block in re.findall(r"```json\n(.*?)```", section, re.S)
    ]
    assert requests and len(requests) == len(responses), section
    return list(zip(requests, responses))


@pytest.fixture(scope="module")
def top3(run_dir, tmp_path_factory):
    """The run exported as the README's example is (--top-k 3)."""
    out = tmp_path_factory.mktemp("top3")
    path = export.export_run(str(run_dir), str(out), top_k=3)
    return tf.saved_model.load(path)


def test_readme_rest_requests(top3, model, vocab):
    positions = {item: i for i, item in enumerate(vocab)}
    for request, documented in readme_examples():
        response = rest_predict(top3, request)
        # The documented response has the same form (keys and shapes).
        key = "predictions" if "instances" in request else "outputs"
        assert list(response) == list(documented) == [key]
        shapes = tf.nest.map_structure(lambda _: 0, response)
        assert shapes == tf.nest.map_structure(lambda _: 0, documented)
        # Its values are this model's ranking of the same users.
        if key == "predictions":
            rows = response[key]
            out = {k: [row[k] for row in rows] for k in rows[0]}
        else:
            out = response[key]
        if "instances" in request:
            rows = request["instances"]
        else:
            rows = request["inputs"][signatures.INDICES_INPUT]
        by_index = request.get("signature_name") == signatures.INDEX_SIGNATURE
        if by_index:
            known = [[i for i in row if 0 <= i < len(vocab)] for row in rows]
            pads = (signatures.INDEX_PAD,)
        else:
            known = [[positions[i] for i in row if i in positions]
                     for row in rows]
            pads = (signatures.ID_PAD,)
        unknown = [
            sum(1 for i in row if i not in pads) - len(known[u])
            for u, row in enumerate(rows)
        ]
        known = [sorted(set(row)) for row in known]
        width = max(len(row) for row in known)
        indices = np.full((len(rows), max(width, 1)), -1, np.int64)
        for u, row in enumerate(known):
            indices[u, : len(row)] = row
        assert_same_ranking(out, model, indices, vocab, 3)
        assert out["unknown_items"] == unknown


def test_rest_rejects_ids_of_the_wrong_type(top3):
    with pytest.raises(TypeError, match="is not of expected type: string"):
        rest_predict(top3, {"instances": [[1, 2]]})


# 5. recommend CLI ---------------------------------------------------------


def test_recommend_cli_prints_the_top_k(
    saved_model, model, vocab, capsys
):
    argv = ["--model", str(saved_model.parent), "--items",
            f"{vocab[3]},{vocab[7]},nope", "-k", "5"]
    assert recommend.main(argv) == 0
    printed = capsys.readouterr().out
    top, scores = reference_top_k(model, np.array([[3, 7]]), 5)
    assert "ignored 1 item(s)" in printed
    lines = [line.split() for line in printed.splitlines()
             if re.match(r"\s+\d+\s", line)]
    assert [line[1] for line in lines] == vocab[top[0]].tolist()
    assert [int(line[2]) for line in lines] == top[0].tolist()
    np.testing.assert_allclose(
        [float(line[3]) for line in lines], scores[0], atol=1e-4
    )
    assert recommend.main(
        ["--model", str(saved_model), "--items", "3,7", "--indices", "-k", "5"]
    ) == 0
    assert vocab[top[0][0]] in capsys.readouterr().out


def test_recommend_python_api(loaded, model, vocab):
    ids = recommend.recommend(loaded, [[vocab[3], vocab[7]], []], k=4)
    indices = recommend.recommend(loaded, [[3, 7], []], k=4)
    assert ids == indices
    top, _ = reference_top_k(model, np.array([[3, 7], [-1, -1]]), 4)
    assert [r.item_indices for r in ids] == top.tolist()


# 6. Bad input -------------------------------------------------------------


def test_a_run_without_a_best_model_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    code = export.main(["--run-dir", str(run), "--out", str(tmp_path / "m")])
    assert code == 2
    assert f"--run-dir {run} has no best model (best.keras)" in (
        capsys.readouterr().err
    )
    code = export.main(["--run-dir", str(tmp_path / "nope"), "--out", "m"])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_top_k_larger_than_the_items_is_refused(
    run_dir, vocab, tmp_path, capsys
):
    too_many = len(vocab) + 1
    code = export.main(
        ["--run-dir", str(run_dir), "--out", str(tmp_path / "m"),
         "--top-k", str(too_many)]
    )
    assert code == 2
    assert (
        f"--top-k {too_many} must be between 1 and the number of items, "
        f"{len(vocab)}" in capsys.readouterr().err
    )
    assert not (tmp_path / "m" / "1").exists()


def test_a_vocabulary_of_another_size_is_refused(run_dir, tmp_path, capsys):
    (tmp_path / features.VOCAB_FILE).write_text("a\nb\nc\n")
    code = export.main(
        ["--run-dir", str(run_dir), "--out", str(tmp_path / "m"),
         "--data-dir", str(tmp_path)]
    )
    assert code == 2
    assert "has 3 items but the model scores" in capsys.readouterr().err


def test_ids_of_the_wrong_type_are_named(loaded):
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="expected to be a string tensor but is a int64 tensor",
    ):
        loaded.signatures[signatures.SERVING_SIGNATURE](
            items=tf.constant([[1, 2]], tf.int64)
        )
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="expected to be a int64 tensor but is a float tensor",
    ):
        loaded.signatures[signatures.INDEX_SIGNATURE](
            item_indices=tf.constant([[1.5]])
        )
    with pytest.raises(TypeError, match="item 1.5 is a float"):
        recommend.recommend(loaded, [[1.5]])
    with pytest.raises(TypeError, match="mixes raw item ids"):
        recommend.recommend(loaded, [["1"], [2]])
    with pytest.raises(ValueError, match="-k 101 must be between 1 and"):
        recommend.recommend(loaded, [["1"]], k=101)


def test_recommend_cli_bad_arguments(saved_model, tmp_path, capsys):
    assert recommend.main(
        ["--model", str(tmp_path), "--items", "1"]
    ) == 2
    assert "is not a SavedModel" in capsys.readouterr().err
    assert recommend.main(
        ["--model", str(saved_model), "--items", "a,b", "--indices"]
    ) == 2
    assert "--indices takes integers" in capsys.readouterr().err
