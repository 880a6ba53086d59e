"""The TF-free Example encoder and TFRecord writer, read back by TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tf_multvae import features
from tf_multvae import records


def parse(serialized):
    ex = tf.io.parse_single_example(serialized, features.parse_spec())
    return ex[features.USER_ID].numpy().decode(), {
        key: ex[key].values.numpy().tolist() for key in features.ITEM_KEYS
    }


@pytest.mark.parametrize(
    "items",
    [[], [0], [1, 127, 128, 16383, 16384, 2**21, 2**35, 2**62]],
)
def test_make_example_parses_with_tensorflow(items):
    example = records.make_example(
        "ü-42", items=items, heldout=[7], candidates=[3, 7, 3]
    )
    user, lists = parse(example)
    assert user == "ü-42"
    assert lists == {
        "items": items,
        "fold_in": [],
        "heldout": [7],
        "candidates": [3, 7, 3],  # kept as given: order and repeats count
    }


def test_encode_examples_many_users_match_tf_train_example():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 300, size=50)
    values = rng.integers(0, 50_000, size=lengths.sum())
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    users = [f"user{j}" for j in range(50)]
    encoded = list(
        records.encode_examples(users, {features.FOLD_IN: (values, offsets)})
    )
    for j, data in enumerate(encoded):
        expected = tf.train.Example(
            features=tf.train.Features(
                feature={
                    features.USER_ID: tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[users[j].encode()])
                    ),
                    **{
                        key: tf.train.Feature(
                            int64_list=tf.train.Int64List(
                                value=values[offsets[j] : offsets[j + 1]]
                                if key == features.FOLD_IN
                                else []
                            )
                        )
                        for key in features.ITEM_KEYS
                    },
                }
            )
        )
        assert tf.train.Example.FromString(data) == expected


def test_write_tfrecord_frames_are_valid(tmp_path):
    path = tmp_path / "x.tfrecord"
    data = [records.make_example(str(j), items=[j]) for j in range(100)]
    with open(path, "wb") as f:
        assert records.write_tfrecord(f, data) == 100
    got = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
    assert got == data
    # A flipped byte must fail TensorFlow's CRC check.
    raw = bytearray(path.read_bytes())
    raw[20] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(path)))


def test_negative_indices_are_refused():
    with pytest.raises(ValueError, match=">= 0"):
        records.make_example("u", items=[3, -1])


def test_count_tfrecords(tmp_path):
    path = tmp_path / "y.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:  # TensorFlow's writer
        for j in range(37):
            writer.write(b"x" * j)
    with open(path, "rb") as f:
        assert records.count_tfrecords(f) == 37


@pytest.mark.slow
def test_record_format_imports_without_tensorflow():
    """The Beam workers write records without paying TensorFlow's import."""
    import subprocess
    import sys

    code = (
        "import sys, tf_multvae, tf_multvae.records, data_prep.transforms;"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().splitlines()[-1] == "False"
