"""The pipeline's stages as small composite PTransforms.

Elements are Arrow tables (batches of rows), not single rows, so that every
stage runs vectorized; only per-user aggregates (the split plan), the item
vocabulary and the held-out users' clicks ever meet in one place. Counts go
to Beam Metrics in the ``data_prep`` namespace; the driver copies them into
metadata.json.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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

NAMESPACE = "data_prep"
_SPLIT_NAMES = {
    splitlib.TRAIN_CODE: features.TRAIN,
    splitlib.VALIDATION_CODE: features.VALIDATION,
    splitlib.TEST_CODE: features.TEST,
}


def count(name: str, value: int = 1) -> None:
    Metrics.counter(NAMESPACE, name).inc(int(value))


def arrow_id_type(layout: Layout) -> pa.DataType:
    return pa.int64() if layout.id_type == "int" else pa.string()


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


def _train_items(table: pa.Table, plan: splitlib.SplitPlan) -> pa.Array:
    table, _, split = _route(table, plan)
    train = table.filter(pa.array(split == splitlib.TRAIN_CODE))
    return pc.unique(train[ITEM])


def _vocabulary(items: pa.Array) -> pa.Array:
    if not len(items):
        raise DataPrepError("no training user has a click left")
    return splitlib.sorted_ids(items)


class BuildVocabulary(beam.PTransform):
    """The items clicked by training users, sorted: line number = index."""

    def __init__(self, plan, id_type: pa.DataType):
        super().__init__()
        self._plan = plan
        self._id_type = id_type

    def expand(self, clicks):
        return (
            clicks
            | "TrainItems"
            >> beam.Map(_train_items, beam.pvalue.AsSingleton(self._plan))
            | "Union" >> beam.CombineGlobally(UnionIds(self._id_type))
            | "Sort" >> beam.Map(_vocabulary)
        )


class _KeyByUserGroup(beam.DoFn):
    """Clicks -> ((split, group), columns) with item indices.

    Training users go to ``n_groups`` groups by position; each held-out split
    is one group, since its seeded draws visit users in one sequence.
    """

    def __init__(self, n_groups: int):
        self._n_groups = n_groups

    def process(self, table, plan, vocab):
        table, pos, split = _route(table, plan)
        item = pc.index_in(table[ITEM], value_set=vocab)
        order = table[ORDER].to_numpy()
        for code, name in _SPLIT_NAMES.items():
            rows = split == code
            if not rows.any():
                continue
            known = rows & item.is_valid().to_numpy(zero_copy_only=False)
            if code != splitlib.TRAIN_CODE:
                count(f"{name}_clicks_outside_vocabulary", rows.sum() - known.sum())
            idx = item.filter(pa.array(known)).to_numpy()
            p, o = pos[known], order[known]
            if code == splitlib.TRAIN_CODE:
                group = p % self._n_groups
                for g in np.unique(group):
                    sel = group == g
                    yield (name, int(g)), (p[sel], idx[sel], o[sel])
            else:
                yield (name, 0), (p, idx, o)


class _BuildExamples(beam.DoFn):
    def __init__(self, seed: int, fraction: float, min_clicks: int):
        self._seed = seed
        self._fraction = fraction
        self._min_clicks = min_clicks

    def process(self, keyed, plan, vocab):
        (name, _), parts = keyed
        pos, item, order = (np.concatenate(c) for c in zip(*parts))
        present = np.unique(pos)
        names = dict(zip(present, map(str, plan.users.take(present).to_pylist())))
        n_items = len(vocab)
        if name == features.TRAIN:
            for p, items in splitlib.group_train_items(pos, item, n_items):
                count("train_users")
                count("train_interactions", items.size)
                yield name, features.make_example(names[p], items=items)
            return
        draws = splitlib.draw_heldout(
            pos, item, order, n_items, self._seed, self._fraction,
            self._min_clicks,
        )
        for p, fold_in, heldout in draws:
            count(f"{name}_users")
            count(f"{name}_fold_in_interactions", fold_in.size)
            count(f"{name}_heldout_interactions", heldout.size)
            if heldout.size:
                count(f"{name}_users_scored")
            yield name, features.make_example(
                names[p], fold_in=fold_in, heldout=heldout
            )


class ToUserRecords(beam.PTransform):
    """Clicks -> (split name, serialized tf.train.Example), one per user."""

    def __init__(self, plan, vocab, n_groups: int, seed: int,
                 fraction: float = 0.2, min_clicks: int = 5):
        super().__init__()
        self._plan = plan
        self._vocab = vocab
        self._n_groups = n_groups
        self._draw = (seed, fraction, min_clicks)

    def expand(self, clicks):
        plan = beam.pvalue.AsSingleton(self._plan)
        vocab = beam.pvalue.AsSingleton(self._vocab)
        return (
            clicks
            | "KeyByUserGroup"
            >> beam.ParDo(_KeyByUserGroup(self._n_groups), plan, vocab)
            | "Group" >> beam.GroupByKey()
            | "Examples" >> beam.ParDo(_BuildExamples(*self._draw), plan, vocab)
        )


class WriteSplits(beam.PTransform):
    """(split, example) -> TFDS-named TFRecord shards in ``directory``."""

    def __init__(self, directory: str, train_shards: int):
        super().__init__()
        self._directory = directory
        self._shards = {
            features.TRAIN: train_shards,
            features.VALIDATION: 1,
            features.TEST: 1,
        }

    def expand(self, records):
        parts = records | "BySplit" >> beam.Partition(
            lambda kv, n: features.SPLITS.index(kv[0]), len(features.SPLITS)
        )
        for name, part in zip(features.SPLITS, parts):
            prefix = f"{self._directory}/{features.shard_prefix(name)}"
            _ = (
                part
                | f"Values[{name}]" >> beam.Values()
                | f"Write[{name}]"
                >> beam.io.WriteToTFRecord(
                    prefix,
                    num_shards=self._shards[name],
                    shard_name_template=features.SHARD_TEMPLATE,
                )
            )
        return records.pipeline


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
