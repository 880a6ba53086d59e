"""tf.data: a prepared dataset directory -> padded batches of item ids.

A prepared dataset (docs/design.md, "The prepared-dataset contract",
written by ``python -m data_prep``) holds
one ``tf.train.Example`` per user. Batches are dense int64 ``[batch,
max_len]`` tensors of item indices, padded with ``features.PAD`` (-1) up to
the longest list in the batch, so the width differs between batches.
Dense padded ids, not ``tf.SparseTensor``: every tf.distribute strategy can
split them (Keras ``fit`` under MirroredStrategy rejects SparseTensor
inputs) and a SavedModel signature can take them; the model turns them into
a sparse product inside its first layer.

Records are batched first and parsed a batch at a time with
``tf.io.parse_example``, which is several times faster than parsing each
record and then ``padded_batch`` (measured on ML-1M: ~10k vs ~40-60k
users/s through the whole pipeline on 2 cores).

Files are read through ``tf.io.gfile``, so ``gs://`` and other file systems
TensorFlow knows work as well as local paths. The directory's checks and
metadata are ``tf_multvae.datadir``'s.
"""

from __future__ import annotations

import math
import numbers

import tensorflow as tf

from tf_multvae import features
from tf_multvae.datadir import count_users
from tf_multvae.datadir import load_info
from tf_multvae.datadir import shard_files

AUTOTUNE = tf.data.AUTOTUNE
# Shards read at once. A constant (not AUTOTUNE, which follows the core
# count) so that the record order, and with it the seeded shuffle, is the
# same on every machine.
_PARALLEL_READS = 8
# The key of a training user's index in :func:`train_dataset`'s batches
# with ``with_user_index`` (CDAE's per-user vectors are looked up by it).
USER_INDEX = "user"


def steps_per_epoch(
    data_dir: str, batch_size: int, drop_remainder: bool = False
) -> int:
    """Batches in one epoch of :func:`train_dataset`."""
    _check_batch_size(batch_size)
    users = count_users(data_dir, features.TRAIN)
    if drop_remainder:
        return users // batch_size
    return math.ceil(users / batch_size)


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(
            f"batch_size must be a positive integer, not {batch_size!r}"
        )


def _shard_by_data(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Under a multi-worker strategy, workers split each (global) batch.

    Every worker builds the same seeded sequence of batches and keeps its
    part of each, so a step sees the same users as on one machine
    (sharding by file would give workers different users and orders).
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return ds.with_options(options)


def _records(files: list[str]) -> tf.data.Dataset:
    """Serialized examples of ``files``, in an order fixed by the files."""
    if len(files) == 1:
        return tf.data.TFRecordDataset(files)
    return tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), _PARALLEL_READS),
        block_length=1,
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )


def _parser(keys: tuple[str, ...]):
    """Parses a batch of serialized examples: string ``[b]`` -> dict.

    Item keys come back as int64 ``[b, max_len]`` padded with PAD (the
    lists are sorted, so each row is its sorted ids, then padding);
    ``features.USER_ID`` as string ``[b]``.
    """
    spec = features.parse_spec()
    spec = {key: spec[key] for key in keys}

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_example(serialized, spec)
        out = {}
        for key in keys:
            value = parsed[key]
            if isinstance(value, tf.SparseTensor):
                value = tf.sparse.to_dense(value, default_value=features.PAD)
                value.set_shape([serialized.shape[0], None])
            out[key] = value
        return out

    return parse


def train_dataset(
    data_dir: str,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
    drop_remainder: bool = False,
    epochs: tuple[int, int] | None = None,
    with_user_index: bool = False,
) -> tf.data.Dataset:
    """Training users' item ids, one epoch per iteration.

    Every epoch (every new iterator) visits each training user once, in an
    order drawn from ``seed``: the shuffle buffer holds the whole split, so
    the order is a uniform permutation, different in every epoch and the
    same for two datasets built with the same seed (and the same TF global
    seed, which tf.data combines with it when one is set), on any machine.
    Workers that shard by data after the shuffle therefore agree on it.

    Args:
        data_dir: a prepared dataset directory.
        batch_size: users per batch (the global batch under a strategy).
        seed: the shuffle seed.
        shuffle: False keeps the file order (for inspection, not training).
        drop_remainder: drop the last, smaller batch (static batch size).
        epochs: (start, stop): instead of one epoch per iteration, the
            batches of epochs start .. stop - 1 in one sequence, epoch
            ``e`` shuffled with a seed derived from (seed, e) alone. A run
            resumed at epoch ``start`` therefore sees exactly the orders
            an uninterrupted run sees (pass steps_per_epoch to fit).
        with_user_index: batches are dicts that also say which user each
            row is (CDAE): ``{"items": ids, "user": int64 [batch]}``, the
            user's position 0 .. n_train_users - 1 in the unshuffled
            record order (the shards as :func:`_records` reads them, the
            order of ``shuffle=False``), the same on every machine and in
            every epoch.

    Returns:
        A dataset of int64 ``[batch, max_len]`` tensors: each row a user's
        sorted item indices (``features.ITEMS``), padded with
        ``features.PAD``; ``max_len`` is the longest list in the batch.
        With ``with_user_index``, dicts (see above).
    """
    _check_batch_size(batch_size)
    info = load_info(data_dir)
    files = shard_files(info.directory, features.TRAIN)
    n_users = int(info.metadata["splits"][features.TRAIN]["users"])
    # The split is small (one short record per user), so keep it in memory:
    # later epochs refill the shuffle buffer without reading the files.
    ds = _records(files)
    if with_user_index:
        ds = ds.enumerate()  # (index in the record order, record)
    ds = ds.cache()
    parse = _parser((features.ITEMS,))

    def rows(*batch):
        if not with_user_index:
            return parse(batch[0])[features.ITEMS]
        users, serialized = batch
        return {
            features.ITEMS: parse(serialized)[features.ITEMS],
            USER_INDEX: users,
        }

    def batches(records: tf.data.Dataset) -> tf.data.Dataset:
        records = records.batch(batch_size, drop_remainder=drop_remainder)
        return records.map(
            rows, num_parallel_calls=AUTOTUNE, deterministic=True
        )

    if epochs is not None:
        start, stop = epochs

        def epoch(e: tf.Tensor) -> tf.data.Dataset:
            order = ds.shuffle(
                max(1, n_users),
                seed=tf.constant(seed, tf.int64) * 1_000_003 + e,
                reshuffle_each_iteration=False,
            )
            return batches(order if shuffle else ds)

        return (
            tf.data.Dataset.range(start, stop)
            .flat_map(epoch)
            .prefetch(AUTOTUNE)
            .apply(_shard_by_data)
        )
    if shuffle:
        ds = ds.shuffle(
            max(1, n_users), seed=seed, reshuffle_each_iteration=True
        )
    return _shard_by_data(batches(ds).prefetch(AUTOTUNE))


def eval_dataset(
    data_dir: str,
    split: str,
    batch_size: int,
    with_user_ids: bool = False,
) -> tf.data.Dataset:
    """Held-out users' fold-in and held-out items, in file order.

    Users with too few clicks to score have an empty held-out list (a row
    of PAD only, or width 0 when the whole batch has none); the metrics
    decide what to do with them (the paper does not score them).

    Args:
        data_dir: a prepared dataset directory.
        split: ``"validation"`` or ``"test"``.
        batch_size: users per batch; the last batch may be smaller.
        with_user_ids: also yield each user's raw id.

    Returns:
        A dataset of dicts: ``"fold_in"`` int64 ``[batch, L1]`` (the
        model's input) and ``"heldout"`` int64 ``[batch, L2]`` (the
        targets), both padded with ``features.PAD``; for a dataset of the
        leave-one-out protocol also ``"candidates"`` int64 ``[batch, L3]``
        (what the held-out item is ranked among); and, when asked,
        ``"user_id"`` string ``[batch]``.

    Raises:
        ValueError: ``split`` is not a held-out split.
    """
    if split not in features.HELDOUT_SPLITS:
        raise ValueError(
            f"split must be one of {features.HELDOUT_SPLITS}, not {split!r}"
        )
    _check_batch_size(batch_size)
    info = load_info(data_dir)
    keys = (features.FOLD_IN, features.HELDOUT)
    if info.protocol == features.LEAVE_ONE_OUT:
        keys += (features.CANDIDATES,)
    if with_user_ids:
        keys += (features.USER_ID,)
    ds = _records(shard_files(info.directory, split)).cache()
    ds = ds.batch(batch_size).map(
        _parser(keys), num_parallel_calls=AUTOTUNE, deterministic=True
    )
    return _shard_by_data(ds.prefetch(AUTOTUNE))
