"""The prepared-dataset contract: file names, split names and feature keys.

data_prep writes records with :func:`make_example`; ``tf_multvae.data`` parses
them with :data:`PARSE_SPEC`; TFDS reads them through :func:`tfds_features`.
This module is the one place these facts live (DESIGN.md §3).
"""

from __future__ import annotations

from typing import Iterable

import tensorflow as tf

FORMAT_VERSION = 1

# Split names, in the order the pipeline writes and TFDS lists them.
TRAIN = "train"
VALIDATION = "validation"
TEST = "test"
SPLITS = (TRAIN, VALIDATION, TEST)
HELDOUT_SPLITS = (VALIDATION, TEST)

# Feature keys. Every record carries all four (empty lists where unused),
# because TFDS features belong to the whole dataset.
USER_ID = "user_id"  # bytes: the raw user id
ITEMS = "items"  # int64 list: sorted unique item indices (train)
FOLD_IN = "fold_in"  # int64 list: sorted unique item indices (held-out users)
HELDOUT = "heldout"  # int64 list: sorted unique item indices, disjoint
ITEM_KEYS = (ITEMS, FOLD_IN, HELDOUT)

# Files of a prepared dataset directory.
VOCAB_FILE = "items.txt"  # raw item id per line; line number = item index
METADATA_FILE = "metadata.json"
TFDS_NAME = "multvae"  # the {DATASET} part of TFDS shard names
TFRECORD_SUFFIX = "tfrecord"


def shard_prefix(split: str) -> str:
    """File prefix of a split's shards, without the shard suffix.

    Full shard names follow TFDS's default template
    ``{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}``, e.g.
    ``multvae-train.tfrecord-00000-of-00004``.
    """
    return f"{TFDS_NAME}-{split}.{TFRECORD_SUFFIX}"


SHARD_TEMPLATE = "-SSSSS-of-NNNNN"  # Beam's spelling of {SHARD_X_OF_Y}


def shard_pattern(split: str) -> str:
    """Glob matching all shards of ``split`` inside a dataset directory."""
    return shard_prefix(split) + "-*-of-*"


def _int64_feature(values: Iterable[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def make_example(
    user_id: str | bytes,
    items: Iterable[int] = (),
    fold_in: Iterable[int] = (),
    heldout: Iterable[int] = (),
) -> bytes:
    """Serializes one user's record as a ``tf.train.Example``.

    Args:
        user_id: the raw user id.
        items: int item indices of a training user, sorted and unique.
        fold_in: int item indices a held-out user shows the model.
        heldout: int item indices a held-out user is scored on.

    Returns:
        The serialized example.
    """
    if isinstance(user_id, str):
        user_id = user_id.encode("utf-8")
    feature = {
        USER_ID: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[user_id])
        ),
        ITEMS: _int64_feature(items),
        FOLD_IN: _int64_feature(fold_in),
        HELDOUT: _int64_feature(heldout),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


# tf.io parsing spec for one serialized example. The item lists come back as
# tf.SparseTensor (VarLenFeature) so that empty lists parse too.
PARSE_SPEC = {
    USER_ID: tf.io.FixedLenFeature([], tf.string),
    ITEMS: tf.io.VarLenFeature(tf.int64),
    FOLD_IN: tf.io.VarLenFeature(tf.int64),
    HELDOUT: tf.io.VarLenFeature(tf.int64),
}


def tfds_features():
    """The same contract as a TFDS ``FeaturesDict`` (for write_metadata)."""
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict(
        {
            USER_ID: tfds.features.Text(),
            **{
                key: tfds.features.Sequence(tf.int64)
                for key in ITEM_KEYS
            },
        }
    )
