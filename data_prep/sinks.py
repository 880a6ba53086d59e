"""Writing a prepared dataset's shards and vocabulary.

The pipeline writes into a staging directory; :mod:`data_prep.output` adds
the metadata and moves it into place. Paths may be on any Beam filesystem.
"""

from __future__ import annotations

import typing
import uuid

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from tf_multvae import features
from tf_multvae import records as tf_records

UNCOMPRESSED = CompressionTypes.UNCOMPRESSED


def _write_shard(path: str, records) -> int:
    """Writes a shard under a temporary name, then renames it into place.

    A retried bundle rewrites the same bytes (users are sorted), so the
    write is idempotent. Paths may be on any Beam filesystem.
    """
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with FileSystems.create(tmp, compression_type=UNCOMPRESSED) as f:
        n = tf_records.write_tfrecord(f, records)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])
    return n


# Declared, so that Beam does not infer it: its trivial inference walks
# the globals process() reaches, and types each of the 16,384 entries of
# records' varint table on every inference (seconds per pipeline).
@beam.typehints.with_output_types(typing.Tuple[str, int, int])
class _WriteShard(beam.DoFn):
    """One group's user lists -> one TFRecord shard of tf.train.Example."""

    def __init__(self, directory: str, n_groups: int):
        self._directory = directory
        self._n_groups = n_groups

    def process(self, user_lists):
        name, group, user_ids, lists = user_lists
        shards = self._n_groups if name == features.TRAIN else 1
        records = tf_records.encode_examples(user_ids, lists)
        path = f"{self._directory}/{features.shard_name(name, group, shards)}"
        yield name, group, _write_shard(path, records)


class WriteUserShards(beam.PTransform):
    """User lists -> TFRecord shards, one tf.train.Example per user.

    Takes :class:`data_prep.grouping.DrawHeldout`'s output. Each training
    group becomes shard ``group`` of ``n_groups``; each held-out split one
    shard. Outputs (split, shard, records) per shard written.
    """

    def __init__(self, directory: str, n_groups: int):
        super().__init__()
        self._args = (directory, n_groups)

    def expand(self, user_lists):
        return user_lists | "Write" >> beam.ParDo(_WriteShard(*self._args))


def _lines(ids) -> str:
    return "\n".join(map(str, ids.to_pylist()))


class WriteVocabulary(beam.PTransform):
    """The sorted vocabulary -> items.txt, one raw item id per line."""

    def __init__(self, directory: str):
        super().__init__()
        self._directory = directory

    def expand(self, vocab):
        return (
            vocab
            | "Lines" >> beam.Map(_lines)
            | "Write"
            >> beam.io.WriteToText(
                f"{self._directory}/{features.VOCAB_FILE}",
                num_shards=1,
                shard_name_template="",
            )
        )
