"""The pipeline's stages as small composite PTransforms.

Elements are Arrow tables (batches of rows), not single rows, so that every
stage runs vectorized; only per-user aggregates (the split plan), the item
vocabulary and the held-out users' clicks ever meet in one place. Counts go
to Beam Metrics in the ``data_prep`` namespace; the driver copies them into
metadata.json.
"""

from __future__ import annotations

import uuid

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from data_prep import split as splitlib
from data_prep.config import ITEM
from data_prep.config import RATING
from data_prep.config import USER
from data_prep.config import Layout
from data_prep.readers import ORDER
from data_prep.readers import DataPrepError
from data_prep.readers import ByteRange
from data_prep.readers import read_range
from tf_multvae import features
from tf_multvae import records as tf_records

NAMESPACE = "data_prep"
UNCOMPRESSED = CompressionTypes.UNCOMPRESSED
_SPLIT_NAMES = {
    splitlib.TRAIN_CODE: features.TRAIN,
    splitlib.VALIDATION_CODE: features.VALIDATION,
    splitlib.TEST_CODE: features.TEST,
}


def count(name: str, value: int = 1) -> None:
    Metrics.counter(NAMESPACE, name).inc(int(value))


class _ParseRange(beam.DoFn):
    def __init__(self, layout: Layout, on_bad_lines: str):
        self._layout = layout
        self._on_bad_lines = on_bad_lines

    def process(self, rng: ByteRange):
        table, rows, bad = read_range(rng, self._layout, self._on_bad_lines)
        count("rows_read", rows)
        if bad:
            count("bad_lines", bad)
        if table.num_rows:
            yield table


class ReadRatings(beam.PTransform):
    """ByteRange -> Arrow tables (user, item, rating, order)."""

    def __init__(self, layout: Layout, on_bad_lines: str = "error"):
        super().__init__()
        self._layout = layout
        self._on_bad_lines = on_bad_lines

    def expand(self, ranges):
        return (
            ranges
            # Spread the ranges over workers before the expensive parse.
            | "Spread" >> beam.Reshuffle()
            | "Parse" >> beam.ParDo(_ParseRange(self._layout, self._on_bad_lines))
        )


def _binarize(table: pa.Table, threshold: float | None) -> pa.Table:
    if threshold is not None:
        kept = table.filter(pc.greater(table[RATING], threshold))
        count("rows_below_threshold", table.num_rows - kept.num_rows)
        table = kept
    count("clicks", table.num_rows)
    return table.drop_columns([RATING])


class Binarize(beam.PTransform):
    """Ratings -> clicks (user, item, order): rating > threshold."""

    def __init__(self, threshold: float | None):
        super().__init__()
        self._threshold = threshold

    def expand(self, tables):
        return tables | "Threshold" >> beam.Map(_binarize, self._threshold)


class CountIds(beam.CombineFn):
    """Counts rows per distinct value of one column -> (ids, counts)."""

    def __init__(self, column: str, id_type: pa.DataType):
        self._column = column
        self._id_type = id_type

    def create_accumulator(self):
        return []

    def add_input(self, acc, table):
        vc = pc.value_counts(table[self._column])
        acc.append(pa.table({"id": vc.field("values"), "n": vc.field("counts")}))
        return [self._compact(acc)] if len(acc) > 32 else acc

    def merge_accumulators(self, accs):
        return [self._compact([t for acc in accs for t in acc])]

    def _compact(self, acc) -> pa.Table:
        if not acc:
            return pa.table(
                {"id": pa.array([], self._id_type), "n": pa.array([], pa.int64())}
            )
        grouped = pa.concat_tables(acc).group_by("id").aggregate([("n", "sum")])
        return grouped.rename_columns(["id", "n"])

    def extract_output(self, acc):
        table = self._compact(acc)
        return table["id"].combine_chunks(), table["n"].to_numpy()


def _frequent_items(id_counts, min_item_users: int) -> pa.Array:
    ids, counts = id_counts
    kept = ids.filter(pa.array(counts >= min_item_users))
    count("items_dropped_by_min_item_users", len(ids) - len(kept))
    if not len(kept):
        raise DataPrepError(
            f"--min-item-users {min_item_users} left no items "
            f"(of {len(ids)} with a click)"
        )
    return kept


def _keep_items(table: pa.Table, kept: pa.Array) -> pa.Table:
    out = table.filter(pc.is_in(table[ITEM], value_set=kept))
    count("rows_dropped_by_min_item_users", table.num_rows - out.num_rows)
    return out


class FilterItems(beam.PTransform):
    """Keeps clicks on items with at least ``min_item_users`` clicks."""

    def __init__(self, min_item_users: int, id_type: pa.DataType):
        super().__init__()
        self._min = min_item_users
        self._id_type = id_type

    def expand(self, clicks):
        if self._min <= 0:
            return clicks
        kept = (
            clicks
            | "CountItems" >> beam.CombineGlobally(CountIds(ITEM, self._id_type))
            | "Frequent" >> beam.Map(_frequent_items, self._min)
        )
        return clicks | "Keep" >> beam.Map(
            _keep_items, beam.pvalue.AsSingleton(kept)
        )


def _plan(id_counts, min_user_clicks, heldout_users, seed, why_empty):
    users, counts = id_counts
    if not len(users):
        raise DataPrepError(f"no clicks left after {why_empty}")
    plan = splitlib.make_split_plan(
        users, counts, min_user_clicks, heldout_users, seed
    )
    for name, value in plan.stats.items():
        count(name, value)
    return plan


class PlanSplit(beam.PTransform):
    """Clicks -> one SplitPlan (user filter, permutation, held-out users)."""

    def __init__(
        self,
        min_user_clicks: int,
        heldout_users: int | None,
        seed: int,
        id_type: pa.DataType,
        why_empty: str = "the filters",
    ):
        super().__init__()
        self._args = (min_user_clicks, heldout_users, seed, why_empty)
        self._id_type = id_type

    def expand(self, clicks):
        return (
            clicks
            | "CountUsers" >> beam.CombineGlobally(CountIds(USER, self._id_type))
            | "Plan" >> beam.Map(_plan, *self._args)
        )


class UnionIds(beam.CombineFn):
    """Set union of Arrow arrays of ids."""

    def __init__(self, id_type: pa.DataType):
        self._id_type = id_type

    def create_accumulator(self):
        return []

    def add_input(self, acc, ids):
        acc.append(ids)
        return [self._compact(acc)] if len(acc) > 32 else acc

    def merge_accumulators(self, accs):
        return [self._compact([a for acc in accs for a in acc])]

    def _compact(self, acc) -> pa.Array:
        if not acc:
            return pa.array([], self._id_type)
        return pc.unique(pa.chunked_array(acc, self._id_type))

    def extract_output(self, acc):
        return self._compact(acc)


def _route(table: pa.Table, plan: splitlib.SplitPlan):
    """Adds each row's user position and split code; drops filtered users."""
    pos = plan.positions(table[USER])
    kept = pc.is_valid(pos)
    pos = pos.filter(kept).to_numpy()
    table = table.filter(kept)
    return table, pos, plan.split[pos]


def _vocabulary(items: pa.Array) -> pa.Array:
    if not len(items):
        raise DataPrepError("no training user has a click left")
    return splitlib.sorted_ids(items)


class BuildVocabulary(beam.PTransform):
    """Training users' clicked items -> the sorted vocabulary (one array).

    Line number in items.txt = position in this array = item index.
    """

    def __init__(self, id_type: pa.DataType):
        super().__init__()
        self._id_type = id_type

    def expand(self, train_items):
        return (
            train_items
            | "Union" >> beam.CombineGlobally(UnionIds(self._id_type))
            | "Sort" >> beam.Map(_vocabulary)
        )


TRAIN_ITEMS = "train_items"
GROUPS = "groups"


class _KeyByUserGroup(beam.DoFn):
    """Clicks -> ((split, group), (pos, items, order)), plus train items.

    Training users go to ``n_groups`` groups by position; each held-out
    split is one group, since its seeded draws visit users in one sequence.
    The distinct items of training users' clicks go to a second output, so
    the vocabulary needs no second pass over the clicks.
    """

    def __init__(self, n_groups: int):
        self._n_groups = n_groups

    def process(self, table, plan):
        table, pos, split = _route(table, plan)
        order = table[ORDER].to_numpy()
        items = table[ITEM].combine_chunks()
        for code, name in _SPLIT_NAMES.items():
            rows = split == code
            if not rows.any():
                continue
            p, o, i = pos[rows], order[rows], items.filter(pa.array(rows))
            if code != splitlib.TRAIN_CODE:
                yield (name, 0), (p, i, o)
                continue
            yield beam.pvalue.TaggedOutput(TRAIN_ITEMS, pc.unique(i))
            group = p % self._n_groups
            for g in np.unique(group):
                sel = group == g
                yield (name, int(g)), (p[sel], i.filter(pa.array(sel)), o[sel])


class GroupClicksByUser(beam.PTransform):
    """Clicks -> {GROUPS: ((split, group), parts), TRAIN_ITEMS: arrays}.

    Drops the users the plan filtered out. A group's parts hold the columns
    (pos, raw items, order) of its users' clicks, from every input batch.
    """

    def __init__(self, plan, n_groups: int):
        super().__init__()
        self._plan = plan
        self._n_groups = n_groups

    def expand(self, clicks):
        keyed = clicks | "Key" >> beam.ParDo(
            _KeyByUserGroup(self._n_groups),
            beam.pvalue.AsSingleton(self._plan),
        ).with_outputs(TRAIN_ITEMS, main=GROUPS)
        return {
            GROUPS: keyed[GROUPS] | "Group" >> beam.GroupByKey(),
            TRAIN_ITEMS: keyed[TRAIN_ITEMS],
        }


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


class _WriteShard(beam.DoFn):
    """One user group -> one TFRecord shard of tf.train.Example records."""

    def __init__(self, directory, n_groups, seed, fraction, min_clicks):
        self._directory = directory
        self._n_groups = n_groups
        self._draw = (seed, fraction, min_clicks)

    def process(self, keyed, plan, vocab):
        (name, group), parts = keyed
        pos, items, order = zip(*parts)
        pos, order = np.concatenate(pos), np.concatenate(order)
        index = pc.index_in(pa.chunked_array(items, vocab.type), value_set=vocab)
        known = index.is_valid().to_numpy(zero_copy_only=False)
        if name != features.TRAIN:
            count(f"{name}_clicks_outside_vocabulary", (~known).sum())
        pos, order = pos[known], order[known]
        item = index.filter(pa.array(known)).to_numpy().astype(np.int64)
        if name == features.TRAIN:
            users, lists = self._train(pos, item, len(vocab))
            shards = self._n_groups
        else:
            users, lists = self._heldout(name, pos, item, order, len(vocab))
            shards = 1
        user_ids = list(map(str, plan.users.take(pa.array(users)).to_pylist()))
        records = tf_records.encode_examples(user_ids, lists)
        path = f"{self._directory}/{features.shard_name(name, group, shards)}"
        yield name, group, _write_shard(path, records)

    @staticmethod
    def _train(pos, item, n_items):
        users, values, offsets = splitlib.train_lists(pos, item, n_items)
        count("train_users", users.size)
        count("train_interactions", values.size)
        return users, {features.ITEMS: (values, offsets)}

    def _heldout(self, name, pos, item, order, n_items):
        draws = list(
            splitlib.draw_heldout(pos, item, order, n_items, *self._draw)
        )
        users = np.array([p for p, _, _ in draws], np.int64)
        lists = {}
        for key, column in ((features.FOLD_IN, 1), (features.HELDOUT, 2)):
            arrays = [d[column] for d in draws]
            lengths = np.array([a.size for a in arrays], np.int64)
            values = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
            lists[key] = (values, np.concatenate([[0], np.cumsum(lengths)]))
            count(f"{name}_{key}_interactions", values.size)
        count(f"{name}_users", users.size)
        scored = np.diff(lists[features.HELDOUT][1]) > 0
        count(f"{name}_users_scored", scored.sum())
        return users, lists


class WriteUserShards(beam.PTransform):
    """Grouped clicks -> TFRecord shards, one tf.train.Example per user.

    Training users get their sorted unique item indices; held-out users
    lose clicks outside the vocabulary, then get the notebook's draw. Each
    training group becomes shard ``group`` of ``n_groups``; each held-out
    split one shard. Outputs (split, shard, records) per shard written.
    """

    def __init__(self, plan, vocab, directory: str, n_groups: int, seed: int,
                 fraction: float = 0.2, min_clicks: int = 5):
        super().__init__()
        self._plan = plan
        self._vocab = vocab
        self._args = (directory, n_groups, seed, fraction, min_clicks)

    def expand(self, groups):
        return groups | "Write" >> beam.ParDo(
            _WriteShard(*self._args),
            beam.pvalue.AsSingleton(self._plan),
            beam.pvalue.AsSingleton(self._vocab),
        )


class WriteVocabulary(beam.PTransform):
    """The sorted vocabulary -> items.txt, one raw item id per line."""

    def __init__(self, directory: str):
        super().__init__()
        self._directory = directory

    def expand(self, vocab):
        return (
            vocab
            | "Lines" >> beam.Map(lambda ids: "\n".join(map(str, ids.to_pylist())))
            | "Write"
            >> beam.io.WriteToText(
                f"{self._directory}/{features.VOCAB_FILE}",
                num_shards=1,
                shard_name_template="",
            )
        )
