"""A user's mistakes against the exported SavedModel: inputs of the wrong
rank, asking for more items than are left, a damaged or partial export.

Each case goes through the real SavedModel of conftest's ``serving_run``
(or a copy of it, damaged here) and checks that nothing under the export
directory changed.
"""

from __future__ import annotations

import hashlib
import pathlib
import re
import shutil

import numpy as np
import pytest
import references
import tensorflow as tf

from tf_multvae.serving import recommend
from tf_multvae.serving import signatures


def tree(root: pathlib.Path) -> dict:
    """Every path under ``root`` -> its sha256 (None for a directory)."""
    return {
        str(path.relative_to(root)): None
        if path.is_dir()
        else hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
    }


@pytest.fixture
def unchanged(saved_model):
    """Asserts, after the test, that the export directory is as before."""
    base = saved_model.parent
    before = tree(base)
    yield
    assert tree(base) == before


# 1. Inputs of the wrong rank ----------------------------------------------

WRONG_RANK = {
    "1-D": lambda v: [v, v],
    "3-D": lambda v: [[[v, v]]],
    "scalar": lambda v: v,
}
SIGNATURES = {
    signatures.SERVING_SIGNATURE: (signatures.IDS_INPUT, tf.string, "1"),
    signatures.INDEX_SIGNATURE: (signatures.INDICES_INPUT, tf.int64, 1),
}


def _expected(name: str) -> str:
    kind = "a string" if name == signatures.IDS_INPUT else "an int64"
    return re.escape(f"{name} must be {kind} tensor of shape [batch, max_len]")


@pytest.mark.parametrize("rank", sorted(WRONG_RANK))
@pytest.mark.parametrize("signature", sorted(SIGNATURES))
def test_a_wrong_rank_names_the_expected_shape(
    loaded_model, unchanged, signature, rank
):
    name, dtype, value = SIGNATURES[signature]
    inputs = tf.constant(WRONG_RANK[rank](value), dtype)
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        loaded_model.signatures[signature](**{name: inputs})
    text = str(err.value)
    assert re.search(_expected(name), text), text
    shape = inputs.shape.as_list()
    assert f"[got shape] [{' '.join(map(str, shape))}]" in text, text


def test_tf_serving_sees_the_same_error(saved_model, unchanged):
    """Through the C++ Session::Run that TF Serving calls (Python's own
    feed check, which TF Serving lacks, is bypassed)."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        meta = tf.compat.v1.saved_model.loader.load(
            sess, ["serve"], str(saved_model)
        )
        signature = meta.signature_def[signatures.SERVING_SIGNATURE]
        feed = graph.get_tensor_by_name(
            signature.inputs[signatures.IDS_INPUT].name
        )
        fetch = graph.get_tensor_by_name(
            signature.outputs[signatures.ITEM_IDS].name
        )

        def run(value):
            return sess._call_tf_sessionrun(
                None,
                {feed._as_tf_output(): np.array(value, object)},
                [fetch._as_tf_output()],
                [],
                None,
            )

        (ok,) = run([["", ""]])
        assert ok.shape == (1, signatures.DEFAULT_TOP_K)
        with pytest.raises(
            tf.errors.InvalidArgumentError, match=_expected("items")
        ):
            run(["", ""])


# 2. More items asked for than are left ------------------------------------


def _all_but(n_items: int, left: list[int]) -> list[int]:
    return [i for i in range(n_items) if i not in left]


def test_signature_pads_past_the_items_left(
    loaded_model, keras_model, vocab, unchanged
):
    n_items = len(vocab)
    k = signatures.DEFAULT_TOP_K
    left = [5, 17, 42]
    history = _all_but(n_items, left)
    # Repeats and unknown indices do not count as items the user has.
    row = history + history[:10] + [n_items, n_items + 3]
    empty = [-1] * len(row)
    out = loaded_model.signatures[signatures.INDEX_SIGNATURE](
        item_indices=tf.constant([row, empty], tf.int64)
    )
    out = {key: value.numpy() for key, value in out.items()}
    top, scores = references.serving_top_k(
        keras_model, np.array([history], np.int64), len(left)
    )
    assert sorted(out["item_indices"][0, :3]) == left
    np.testing.assert_array_equal(out["item_indices"][0, :3], top[0])
    np.testing.assert_allclose(out["scores"][0, :3], scores[0], atol=1e-5)
    assert out["item_ids"][0, :3].astype(str).tolist() == vocab[top[0]].tolist()
    # The padding: no item, no id, no score; never an input item or -inf.
    assert (out["item_indices"][0, 3:] == signatures.INDEX_PAD).all()
    assert (out["item_ids"][0, 3:] == b"").all()
    assert np.isnan(out["scores"][0, 3:]).all()
    assert not np.isneginf(out["scores"]).any()
    assert out["unknown_items"].tolist() == [2, 0]
    # The other user of the batch still gets all k.
    assert (out["item_indices"][1] >= 0).all()
    assert np.isfinite(out["scores"][1]).all()
    assert out["item_indices"].shape == (2, k)
    # The same through raw ids, and a user with every item: all padding.
    ids = loaded_model.signatures[signatures.SERVING_SIGNATURE](
        items=tf.constant(
            [vocab[history].tolist() + [""] * len(left), vocab.tolist()]
        )
    )
    np.testing.assert_array_equal(
        ids["item_indices"].numpy()[0], out["item_indices"][0]
    )
    assert (ids["item_indices"].numpy()[1] == -1).all()
    assert np.isnan(ids["scores"].numpy()[1]).all()


def test_recommend_returns_only_the_items_left(loaded_model, vocab, unchanged):
    n_items = len(vocab)
    history = _all_but(n_items, [5, 17, 42])
    few, none, some = recommend.recommend(
        loaded_model, [history, list(range(n_items)), [1, 2]], k=10
    )
    assert sorted(few.item_indices) == [5, 17, 42]
    assert few.item_ids == vocab[few.item_indices].tolist()
    assert np.isfinite(few.scores).all() and len(few.scores) == 3
    assert none == recommend.Recommendation([], [], [], 0)
    assert len(some.item_indices) == 10


def test_recommend_cli_prints_only_the_items_left(
    saved_model, vocab, unchanged, capsys
):
    n_items = len(vocab)
    history = _all_but(n_items, [5, 17, 42])
    argv = ["--model", str(saved_model.parent), "-k", "10", "--items"]
    assert recommend.main(argv + [",".join(vocab[history])]) == 0
    printed = capsys.readouterr().out
    ranks = [
        line.split()
        for line in printed.splitlines()
        if re.match(r"\s+\d", line)
    ]
    assert sorted(int(line[2]) for line in ranks) == [5, 17, 42]
    assert all(np.isfinite(float(line[3])) for line in ranks)
    assert f"only 3 item(s) left to recommend: the model has {n_items}" in (
        printed
    )
    assert recommend.main(argv + [",".join(vocab)]) == 0
    printed = capsys.readouterr().out
    assert "only 0 item(s) left" in printed
    assert not [
        line for line in printed.splitlines() if re.match(r"\s+\d", line)
    ]


# 3. A damaged or partial SavedModel ---------------------------------------


def _truncate(path: pathlib.Path, size=None) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if size is None else size])


DAMAGE = {
    "saved_model.pb truncated": (
        lambda d: _truncate(d / "saved_model.pb"),
        "its saved_model.pb is damaged (not a SavedModel proto)",
    ),
    "saved_model.pb garbage": (
        lambda d: (d / "saved_model.pb").write_bytes(b"\xff\xfe not a pb" * 9),
        "its saved_model.pb is damaged (not a SavedModel proto)",
    ),
    "saved_model.pb empty": (
        lambda d: _truncate(d / "saved_model.pb", 0),
        "its saved_model.pb is empty (no MetaGraph in it)",
    ),
    "variables missing": (
        lambda d: shutil.rmtree(d / "variables"),
        "it has no variables/ directory (the weights)",
    ),
    "variables empty": (
        lambda d: [p.unlink() for p in (d / "variables").iterdir()],
        "its variables/ lacks variables.index",
    ),
    "variables data truncated": (
        lambda d: [_truncate(p, 3) for p in (d / "variables").glob("*.data-*")],
        "loading it failed (variables/ damaged?): ",
    ),
    "vocabulary missing": (
        lambda d: shutil.rmtree(d / "assets"),
        "it has no assets/items.txt (the vocabulary)",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
@pytest.mark.parametrize("pass_base", [False, True], ids=["version", "base"])
def test_a_damaged_saved_model_is_one_error_line(
    saved_model, tmp_path, capsys, case, pass_base
):
    damage, problem = DAMAGE[case]
    copy = tmp_path / "models" / "1"
    shutil.copytree(saved_model, copy)
    damage(copy)
    before = tree(tmp_path)
    model = copy.parent if pass_base else copy
    code = recommend.main(["--model", str(model), "--items", "1,2"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(
        f"error: --model {copy} is not a usable SavedModel: {problem}"
    ), lines[0]
    assert lines[0].endswith(
        "export it again (python -m tf_multvae.serving.export)"
    )
    assert tree(tmp_path) == before
    with pytest.raises(ValueError, match=re.escape(problem)):
        recommend.load_saved_model(str(model))


def test_the_undamaged_copy_loads(saved_model, tmp_path):
    copy = tmp_path / "1"
    shutil.copytree(saved_model, copy)
    loaded = recommend.load_saved_model(str(copy))
    assert int(loaded.top_k.numpy()) == signatures.DEFAULT_TOP_K
