"""Each composite PTransform on TestPipeline, checked with assert_that."""

from __future__ import annotations

import glob
import os

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to
from conftest import IN_PROCESS

from data_prep import config as cfg
from data_prep import grouping
from data_prep import pipeline as pipelib
from data_prep import sinks
from data_prep import split as splitlib
from data_prep import transforms as tr
from data_prep.ranges import ByteRange
from tf_multvae import features

INT = pa.int64()


def pipeline():
    return test_pipeline.TestPipeline(argv=IN_PROCESS)


def table(users, items, ratings=None, order=None):
    n = len(users)
    columns = {"user": pa.array(users, INT), "item": pa.array(items, INT)}
    if ratings is not None:
        columns["rating"] = pa.array(ratings, pa.float64())
    columns["order"] = pa.array(order if order is not None else range(n), INT)
    return pa.table(columns)


def rows(tables):
    """(user, item) pairs of a PCollection of tables, for equal_to."""
    return [
        (u, i)
        for t in tables
        for u, i in zip(t["user"].to_pylist(), t["item"].to_pylist())
    ]


def as_rows(pcoll):
    return (
        pcoll
        | beam.combiners.ToList()
        | beam.Map(rows)
        | beam.FlatMap(lambda r: r)
    )


def test_read_ratings(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("1\t5\t4\t0\n2\t6\t3\t0\n3\t7\t5\t0\n")
    ranges = [ByteRange(0, str(path), 0, 9), ByteRange(0, str(path), 9, 27)]
    with pipeline() as p:
        out = p | beam.Create(ranges) | tr.ReadRatings(cfg.MOVIELENS_100K)
        assert_that(as_rows(out), equal_to([(1, 5), (2, 6), (3, 7)]))


def test_binarize_keeps_ratings_above_threshold():
    with pipeline() as p:
        out = (
            p
            | beam.Create([table([1, 1, 2], [1, 2, 3], [3.5, 4.0, 5.0])])
            | tr.Binarize(3.5)
        )
        assert_that(as_rows(out), equal_to([(1, 2), (2, 3)]))
        assert_that(
            out | beam.Map(lambda t: t.column_names),
            equal_to([["user", "item", "order"]]),
            label="no rating column",
        )


def test_filter_items_counts_clicks_over_all_batches():
    batches = [table([1, 2, 3], [10, 10, 11]), table([4, 5], [10, 12])]
    with pipeline() as p:
        out = p | beam.Create(batches) | tr.FilterItems(3, INT)
        assert_that(as_rows(out), equal_to([(1, 10), (2, 10), (4, 10)]))


def test_plan_split_is_a_singleton_plan():
    batches = [
        table([1, 2, 2, 3, 6], [1, 1, 2, 1, 1]),
        table([3, 3, 5, 5, 6], [2, 3, 1, 2, 2]),
    ]
    with pipeline() as p:
        plan = (
            p
            | beam.Create(batches)
            | tr.PlanSplit(
                min_user_clicks=2, heldout_users=None, seed=0, id_type=INT
            )
        )
        assert_that(
            plan | beam.Map(lambda s: (s.users.to_pylist(), sorted(s.split))),
            equal_to([([2, 3, 5, 6], [0, 0, 1, 2])]),
        )


def _fixed_plan(users, codes):
    return splitlib.SplitPlan(pa.array(users, INT), np.array(codes, np.int8))


def test_group_clicks_by_user_and_vocabulary_of_training_users():
    # Users 1, 2 train (two groups), 3 validation, 9 filtered out.
    batches = [table([1, 2, 3, 9], [30, 10, 20, 50]), table([1, 2], [10, 40])]
    plan = _fixed_plan([1, 2, 3], [0, 0, 1])

    def summary(kv):
        (split, group), parts = kv
        return (
            split,
            group,
            sorted(
                (int(p), item)
                for pos, items, _ in parts
                for p, item in zip(pos, items.to_pylist())
            ),
        )

    with pipeline() as p:
        plan_pc = p | "Plan" >> beam.Create([plan])
        grouped = (
            p | beam.Create(batches) | grouping.GroupClicksByUser(plan_pc, 2)
        )
        assert_that(
            grouped[grouping.GROUPS] | beam.Map(summary),
            equal_to(
                [
                    ("train", 0, [(0, 10), (0, 30)]),
                    ("train", 1, [(1, 10), (1, 40)]),
                    ("validation", 0, [(2, 20)]),
                ]
            ),
            label="groups",
        )
        vocab = grouped[grouping.TRAIN_ITEMS] | tr.BuildVocabulary(INT)
        assert_that(
            vocab | beam.Map(lambda v: v.to_pylist()),
            equal_to([[10, 30, 40]]),
            label="vocabulary",
        )


def decode_shards(directory):
    """{(split, user_id, (items, fold_in, heldout))} of all written shards
    (strong generalization: every record's candidates are empty)."""
    out = set()
    for split in features.SPLITS:
        for path in glob.glob(f"{directory}/{features.shard_pattern(split)}"):
            for data in tf.data.TFRecordDataset(path):
                ex = tf.io.parse_single_example(data, features.parse_spec())
                lists = tuple(
                    tuple(ex[k].values.numpy().tolist())
                    for k in features.ITEM_KEYS
                )
                assert lists[-1] == ()  # features.CANDIDATES
                lists = lists[:-1]
                out.add((split, ex["user_id"].numpy().decode(), lists))
    return out


def test_write_user_shards_one_example_per_user(tmp_path):
    # Users 1, 2 train; user 3 validation: 6 clicks, one repeated and one
    # outside the vocabulary, so 4 known distinct items (< 5: no targets);
    # user 4 test with 2 clicks.
    clicks = table(
        [1, 1, 2, 3, 3, 3, 3, 3, 3, 4, 4],
        [10, 20, 20, 10, 20, 30, 10, 40, 99, 20, 10],
    )
    plan = _fixed_plan([1, 2, 3, 4], [0, 0, 1, 2])
    vocab = pa.array([10, 20, 30, 40], INT)
    with pipeline() as p:
        plan_pc = p | "Plan" >> beam.Create([plan])
        vocab_pc = p | "Vocab" >> beam.Create([vocab])
        grouped = (
            p | beam.Create([clicks]) | grouping.GroupClicksByUser(plan_pc, 2)
        )
        written = (
            grouped[grouping.GROUPS]
            | grouping.DrawHeldout(plan_pc, vocab_pc, seed=98765)
            | sinks.WriteUserShards(str(tmp_path), 2)
        )
        assert_that(
            written,
            equal_to(
                [
                    ("train", 0, 1),
                    ("train", 1, 1),
                    ("validation", 0, 1),
                    ("test", 0, 1),
                ]
            ),
        )
    assert decode_shards(tmp_path) == {
        ("train", "1", ((0, 1), (), ())),
        ("train", "2", ((1,), (), ())),
        ("validation", "3", ((), (0, 1, 2, 3), ())),
        ("test", "4", ((), (0, 1), ())),
    }
    names = sorted(os.path.basename(f) for f in glob.glob(f"{tmp_path}/*"))
    assert names == [
        "multvae-test.tfrecord-00000-of-00001",
        "multvae-train.tfrecord-00000-of-00002",
        "multvae-train.tfrecord-00001-of-00002",
        "multvae-validation.tfrecord-00000-of-00001",
    ]


def test_heldout_draw_in_the_pipeline_matches_numpy(tmp_path):
    users, items = [5] * 10, list(range(10))
    order = list(range(10))[::-1]  # raw-file order is reversed
    plan = _fixed_plan([5, 6, 7], [1, 0, 2])
    vocab = pa.array(range(10), INT)
    chosen = np.random.RandomState(7).choice(10, size=2, replace=False)
    clicks_in_file_order = np.array(items)[np.argsort(order)]
    heldout = tuple(sorted(clicks_in_file_order[chosen].tolist()))
    fold_in = tuple(sorted(set(items) - set(heldout)))
    batches = [table(users, items, order=order), table([6], [0])]
    with pipeline() as p:
        plan_pc = p | "Plan" >> beam.Create([plan])
        vocab_pc = p | "Vocab" >> beam.Create([vocab])
        grouped = (
            p | beam.Create(batches) | grouping.GroupClicksByUser(plan_pc, 1)
        )
        _ = (
            grouped[grouping.GROUPS]
            | grouping.DrawHeldout(plan_pc, vocab_pc, seed=7)
            | sinks.WriteUserShards(str(tmp_path), 1)
        )
    written = decode_shards(tmp_path)
    assert ("validation", "5", ((), fold_in, heldout)) in written


def _lists_summary(element):
    """(split, group, [(user_id, {key: items})]) of DrawHeldout's output."""
    split, group, user_ids, lists = element
    users = []
    for j, user in enumerate(user_ids):
        items = {
            key: values[offsets[j] : offsets[j + 1]].tolist()
            for key, (values, offsets) in lists.items()
        }
        users.append((user, items))
    return split, group, users


def test_draw_heldout_makes_the_seeded_draw_whatever_the_batching():
    # User 5 (validation) has 10 clicks in reversed raw-file order; user 6
    # trains; user 7 (test) has 2 clicks, too few to be scored. The same
    # clicks in one batch or in three, fed in another order, give the same
    # draw: it follows the order keys, not the order of arrival.
    users, items = [5] * 10 + [6, 6, 7, 7], list(range(10)) + [0, 3, 1, 2]
    order = list(range(10))[::-1] + [10, 11, 12, 13]
    plan = _fixed_plan([5, 6, 7], [1, 0, 2])
    vocab = pa.array(range(10), INT)
    chosen = np.random.RandomState(7).choice(10, size=2, replace=False)
    heldout = sorted(np.arange(10)[::-1][chosen].tolist())
    fold_in = sorted(set(range(10)) - set(heldout))
    expected = [
        ("train", 0, [("6", {features.ITEMS: [0, 3]})]),
        (
            "validation",
            0,
            [("5", {features.FOLD_IN: fold_in, features.HELDOUT: heldout})],
        ),
        ("test", 0, [("7", {features.FOLD_IN: [1, 2], features.HELDOUT: []})]),
    ]
    whole = table(users, items, order=order)
    parts = [whole.slice(8, 6), whole.slice(0, 3), whole.slice(3, 5)]
    for label, batches in (("one batch", [whole]), ("three", parts)):
        with pipeline() as p:
            plan_pc = p | "Plan" >> beam.Create([plan])
            vocab_pc = p | "Vocab" >> beam.Create([vocab])
            grouped = (
                p
                | beam.Create(batches)
                | grouping.GroupClicksByUser(plan_pc, 1)
            )
            drawn = grouped[grouping.GROUPS] | grouping.DrawHeldout(
                plan_pc, vocab_pc, seed=7
            )
            assert_that(
                drawn | beam.Map(_lists_summary),
                equal_to(expected),
                label=label,
            )


def test_write_user_shards_writes_the_lists_it_is_given(tmp_path):
    lists = [
        (
            "train",
            1,
            ["u1", "u2"],
            {features.ITEMS: (np.array([3, 0, 4]), np.array([0, 1, 3]))},
        ),
        (
            "test",
            0,
            ["u9"],
            {
                features.FOLD_IN: (np.array([1, 2]), np.array([0, 2])),
                features.HELDOUT: (np.array([5]), np.array([0, 1])),
            },
        ),
    ]
    with pipeline() as p:
        written = (
            p | beam.Create(lists) | sinks.WriteUserShards(str(tmp_path), 3)
        )
        assert_that(written, equal_to([("train", 1, 2), ("test", 0, 1)]))
    assert decode_shards(tmp_path) == {
        ("train", "u1", ((3,), (), ())),
        ("train", "u2", ((0, 4), (), ())),
        ("test", "u9", ((), (1, 2), (5,))),
    }
    names = sorted(os.path.basename(f) for f in glob.glob(f"{tmp_path}/*"))
    assert names == [
        "multvae-test.tfrecord-00000-of-00001",
        "multvae-train.tfrecord-00001-of-00003",
    ]


def test_draw_heldout_is_a_step_between_grouping_and_writing():
    """The pipeline's graph: GroupByUser -> DrawHeldout -> WriteShards, and
    the writing step takes no side input (it only writes)."""
    p = pipeline()
    ranges = [ByteRange(0, "ratings.csv", 0, 1)]
    pipelib.build(p, cfg.PRESETS["ml-100k"], ranges, "/nowhere", 2)
    steps = {
        t.unique_name: t
        for t in p.to_runner_api().components.transforms.values()
    }
    groups = steps["GroupByUser"].outputs[grouping.GROUPS]
    draw = steps["DrawHeldout"]
    assert list(draw.inputs.values()) == [groups]
    assert "DrawHeldout/Draw" in steps
    write = steps["WriteShards/Write"]
    assert list(write.inputs.values()) == list(draw.outputs.values())


def test_write_vocabulary(tmp_path):
    with pipeline() as p:
        _ = (
            p
            | beam.Create([pa.array(["a", "b"])])
            | sinks.WriteVocabulary(str(tmp_path))
        )
    assert (tmp_path / "items.txt").read_text() == "a\nb\n"


@pytest.mark.parametrize("threshold,kept", [(None, 3), (4.0, 1)])
def test_binarize_none_keeps_every_row(threshold, kept):
    with pipeline() as p:
        out = (
            p
            | beam.Create([table([1, 2, 3], [1, 2, 3], [1.0, 4.0, 5.0])])
            | tr.Binarize(threshold)
            | beam.Map(lambda t: t.num_rows)
        )
        assert_that(out, equal_to([kept]))
