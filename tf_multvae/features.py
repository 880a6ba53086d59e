"""The prepared-dataset contract: file names, split names and feature keys.

data_prep writes records with ``tf_multvae.records``; ``tf_multvae.data``
parses them with :func:`parse_spec`; TFDS reads them through
:func:`tfds_features`.
This module is the one place these facts live (docs/design.md, "The
prepared-dataset contract").
"""

from __future__ import annotations

# 2 added CANDIDATES and PROTOCOL_KEY; readers take format 1 (no
# candidates, strong generalization) too.
FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)

# Split names, in the order the pipeline writes and TFDS lists them.
TRAIN = "train"
VALIDATION = "validation"
TEST = "test"
SPLITS = (TRAIN, VALIDATION, TEST)
HELDOUT_SPLITS = (VALIDATION, TEST)

# Feature keys. Every record carries all of them (empty lists where
# unused), because TFDS features belong to the whole dataset.
USER_ID = "user_id"  # bytes: the raw user id
ITEMS = "items"  # int64 list: sorted unique item indices (train)
FOLD_IN = "fold_in"  # int64 list: sorted unique item indices (held-out users)
HELDOUT = "heldout"  # int64 list: sorted unique item indices, disjoint
# int64 list, leave-one-out held-out splits only: the items the held-out
# item is ranked among, in the order NCF's evaluation visits them (the
# sampled negatives as drawn or as NCF's file lists them, then the held-out
# item); NCF's files may repeat an item. Empty under strong generalization.
CANDIDATES = "candidates"
ITEM_KEYS = (ITEMS, FOLD_IN, HELDOUT, CANDIDATES)

# The evaluation protocol a dataset was prepared for, metadata.json's
# PROTOCOL_KEY (absent in datasets of format 1: strong generalization).
PROTOCOL_KEY = "protocol"
# The paper's (§4.1): disjoint training and held-out users, each held-out
# user's clicks split into fold-in and held-out items, full ranking.
STRONG_GENERALIZATION = "strong-generalization"
# NCF's (He et al. 2017), the paper's Table 3: every user trains; the
# held-out split holds each user's training items as fold-in, one held-out
# item and its candidates (it and sampled negatives) to rank it among.
LEAVE_ONE_OUT = "leave-one-out"
PROTOCOLS = (STRONG_GENERALIZATION, LEAVE_ONE_OUT)
# metadata.json's listing of each split's shards: {split: [{"name",
# "bytes", "records"}]}, checked before a dataset is used.
SHARD_LISTING = "shard_files"

# Files of a prepared dataset directory.
VOCAB_FILE = "items.txt"  # raw item id per line; line number = item index
METADATA_FILE = "metadata.json"
TFDS_NAME = "multvae"  # the {DATASET} part of TFDS shard names
TFRECORD_SUFFIX = "tfrecord"


def parse_vocabulary(data: bytes, path: str) -> list[str]:
    """The raw item ids of an ``items.txt``'s bytes; line number = index.

    The one reader of the vocabulary's format: training and export read
    the file through ``tf_multvae.datadir.read_vocabulary``, data prep
    through Beam's file systems, and both parse it here.

    Args:
        data: the file's bytes, UTF-8, one id per line.
        path: the file, for messages.

    Raises:
        ValueError: invalid UTF-8, an empty line, an id with surrounding
            whitespace or a repeated id (none could be looked up
            unambiguously).
    """
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err})") from None
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    for number, item in enumerate(lines, start=1):
        if not item.strip() or item != item.strip():
            raise ValueError(
                f"{path} line {number}: empty item id or surrounding "
                "whitespace (ids are looked up as whole lines)"
            )
    if len(set(lines)) != len(lines):
        raise ValueError(f"{path} repeats item ids")
    return lines


def shard_prefix(split: str) -> str:
    """File prefix of a split's shards, without the shard suffix.

    Full shard names follow TFDS's default template
    ``{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}``, e.g.
    ``multvae-train.tfrecord-00000-of-00004``.
    """
    return f"{TFDS_NAME}-{split}.{TFRECORD_SUFFIX}"


def shard_name(split: str, index: int, count: int) -> str:
    """File name of shard ``index`` of ``count`` of ``split``."""
    return f"{shard_prefix(split)}-{index:05d}-of-{count:05d}"


def shard_pattern(split: str) -> str:
    """Glob matching all shards of ``split`` inside a dataset directory."""
    return shard_prefix(split) + "-*-of-*"


def parse_spec() -> dict:
    """tf.io parsing spec of one serialized example.

    The item lists come back as ``tf.SparseTensor`` (VarLenFeature), so
    empty lists parse too. (A function, so that importing this module does
    not import TensorFlow: the Beam workers never need it.)
    """
    import tensorflow as tf

    return {
        USER_ID: tf.io.FixedLenFeature([], tf.string),
        ITEMS: tf.io.VarLenFeature(tf.int64),
        FOLD_IN: tf.io.VarLenFeature(tf.int64),
        HELDOUT: tf.io.VarLenFeature(tf.int64),
        CANDIDATES: tf.io.VarLenFeature(tf.int64),
    }


def tfds_features():
    """The same contract as a TFDS ``FeaturesDict`` (for write_metadata)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict(
        {
            USER_ID: tfds.features.Text(),
            **{key: tfds.features.Sequence(tf.int64) for key in ITEM_KEYS},
        }
    )


# Batches of item ids are padded with PAD up to the longest list in the
# batch: a dense int64 [batch, max_len] tensor that every tf.distribute
# strategy can split and a SavedModel signature can take.
PAD = -1
