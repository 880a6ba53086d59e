"""The pipeline's stages up to the split plan, as composite PTransforms.

Reading, binarizing, the item filter, the split plan and the vocabulary;
grouping each user's clicks and the held-out draw are in
:mod:`data_prep.grouping` (:mod:`data_prep.leave_one_out_stages` under
leave-one-out), writing the dataset in :mod:`data_prep.sinks`.

Elements are Arrow tables (batches of rows), not single rows, so that every
stage runs vectorized; only per-user aggregates (the split plan), the item
vocabulary and the held-out users' clicks ever meet in one place. Counts go
to Beam Metrics under the names of :mod:`data_prep.counters`; the driver
copies them into metadata.json.
"""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from data_prep import counters
from data_prep import split as splitlib
from data_prep.config import ITEM
from data_prep.config import RATING
from data_prep.config import USER
from data_prep.config import Layout
from data_prep.errors import DataPrepError
from data_prep.ranges import ByteRange
from data_prep.readers import read_range
from tf_multvae import features


def count(name: str, value: int = 1) -> None:
    """Adds ``value`` to the counter ``name`` (a :mod:`counters` name)."""
    Metrics.counter(counters.NAMESPACE, name).inc(int(value))


class _ParseRange(beam.DoFn):
    def __init__(self, layout: Layout, on_bad_lines: str, timestamps: bool):
        self._layout = layout
        self._on_bad_lines = on_bad_lines
        self._timestamps = timestamps

    def process(self, rng: ByteRange):
        table, rows, bad = read_range(
            rng, self._layout, self._on_bad_lines, self._timestamps
        )
        count(counters.ROWS_READ, rows)
        if bad:
            count(counters.BAD_LINES, bad)
        if table.num_rows:
            yield table


class ReadRatings(beam.PTransform):
    """ByteRange -> Arrow tables (user, item, rating, order[, time]).

    ``timestamps``: also parse the layout's time column into ``time``
    (int64 seconds); only leave-one-out needs it.
    """

    def __init__(
        self,
        layout: Layout,
        on_bad_lines: str = "error",
        timestamps: bool = False,
    ):
        super().__init__()
        self._args = (layout, on_bad_lines, timestamps)

    def expand(self, ranges):
        return (
            ranges
            # Spread the ranges over workers before the expensive parse.
            | "Spread" >> beam.Reshuffle()
            | "Parse" >> beam.ParDo(_ParseRange(*self._args))
        )


def _binarize(table: pa.Table, threshold: float | None) -> pa.Table:
    if threshold is not None:
        kept = table.filter(pc.greater(table[RATING], threshold))
        count(counters.ROWS_BELOW_THRESHOLD, table.num_rows - kept.num_rows)
        table = kept
    count(counters.CLICKS, table.num_rows)
    return table.drop_columns([RATING])


class Binarize(beam.PTransform):
    """Ratings -> clicks (user, item, order[, time]): rating > threshold."""

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
        acc.append(
            pa.table({"id": vc.field("values"), "n": vc.field("counts")})
        )
        return [self._compact(acc)] if len(acc) > 32 else acc

    def merge_accumulators(self, accs):
        return [self._compact([t for acc in accs for t in acc])]

    def _compact(self, acc) -> pa.Table:
        if not acc:
            return pa.table(
                {
                    "id": pa.array([], self._id_type),
                    "n": pa.array([], pa.int64()),
                }
            )
        grouped = pa.concat_tables(acc).group_by("id").aggregate([("n", "sum")])
        return grouped.rename_columns(["id", "n"])

    def extract_output(self, acc):
        table = self._compact(acc)
        return table["id"].combine_chunks(), table["n"].to_numpy()


def _frequent_items(id_counts, min_item_users: int) -> pa.Array:
    ids, counts = id_counts
    kept = ids.filter(pa.array(counts >= min_item_users))
    count(counters.ITEMS_DROPPED_BY_MIN_ITEM_USERS, len(ids) - len(kept))
    if not len(kept):
        raise DataPrepError(
            f"--min-item-users {min_item_users} left no items "
            f"(of {len(ids)} with a click)"
        )
    return kept


def _keep_items(table: pa.Table, kept: pa.Array) -> pa.Table:
    out = table.filter(pc.is_in(table[ITEM], value_set=kept))
    count(
        counters.ROWS_DROPPED_BY_MIN_ITEM_USERS, table.num_rows - out.num_rows
    )
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
            | "CountItems"
            >> beam.CombineGlobally(CountIds(ITEM, self._id_type))
            | "Frequent" >> beam.Map(_frequent_items, self._min)
        )
        return clicks | "Keep" >> beam.Map(
            _keep_items, beam.pvalue.AsSingleton(kept)
        )


def _plan(id_counts, min_user_clicks, heldout_users, seed, why_empty, protocol):
    users, counts = id_counts
    if not len(users):
        raise DataPrepError(f"no clicks left after {why_empty}")
    if protocol == features.LEAVE_ONE_OUT:
        plan = splitlib.make_user_plan(users, counts, min_user_clicks)
    else:
        plan = splitlib.make_split_plan(
            users, counts, min_user_clicks, heldout_users, seed
        )
    for name, value in plan.stats.items():
        count(name, value)
    return plan


class PlanSplit(beam.PTransform):
    """Clicks -> one SplitPlan (user filter, permutation, held-out users).

    Under ``features.LEAVE_ONE_OUT`` the plan is the user filter alone
    (``split.make_user_plan``); ``heldout_users`` is then unused.
    """

    def __init__(
        self,
        min_user_clicks: int,
        heldout_users: int | None,
        seed: int,
        id_type: pa.DataType,
        why_empty: str = "the filters",
        protocol: str = features.STRONG_GENERALIZATION,
    ):
        super().__init__()
        self._args = (
            min_user_clicks,
            heldout_users,
            seed,
            why_empty,
            protocol,
        )
        self._id_type = id_type

    def expand(self, clicks):
        return (
            clicks
            | "CountUsers"
            >> beam.CombineGlobally(CountIds(USER, self._id_type))
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


def _vocabulary(items: pa.Array, why_empty: str) -> pa.Array:
    if not len(items):
        raise DataPrepError(why_empty)
    return splitlib.sorted_ids(items)


class BuildVocabulary(beam.PTransform):
    """Training users' clicked items -> the sorted vocabulary (one array).

    Line number in items.txt = position in this array = item index.
    ``why_empty`` is the error when there are no items.
    """

    def __init__(
        self,
        id_type: pa.DataType,
        why_empty: str = "no training user has a click left",
    ):
        super().__init__()
        self._id_type = id_type
        self._why_empty = why_empty

    def expand(self, train_items):
        return (
            train_items
            | "Union" >> beam.CombineGlobally(UnionIds(self._id_type))
            | "Sort" >> beam.Map(_vocabulary, self._why_empty)
        )
