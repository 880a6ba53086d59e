"""The leave-one-out protocol's stages: clicks -> each user's item lists.

Under ``--protocol leave-one-out`` these replace grouping's
GroupClicksByUser and DrawHeldout (the protocol itself, as numpy, is
:mod:`data_prep.leave_one_out`). Every user the plan kept goes to one of
``n_groups`` groups by position; within its group a user's clicks meet in
one place. The groups are read twice: once for the vocabulary (every item
of a user with enough items for the split, held-out items included, so
that negatives can be drawn from it), then, with the vocabulary, for the
split and the negatives. Each group writes its training users' shard; the
held-out lists of all groups then meet per held-out split, because each
held-out split is one shard (:mod:`data_prep.sinks`). Only numpy arrays
and Arrow tables travel, never one Python object per click.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_prep import counters
from data_prep import leave_one_out as loo
from data_prep import split as splitlib
from data_prep.config import ITEM
from data_prep.config import USER
from data_prep.readers import ORDER
from data_prep.readers import TIME
from data_prep.transforms import BuildVocabulary
from data_prep.transforms import count
from tf_multvae import features

_TRAIN_LISTS = "train_lists"
_HELDOUT_PARTS = "heldout_parts"
_SPLIT_CODES = {
    features.VALIDATION: splitlib.VALIDATION_CODE,
    features.TEST: splitlib.TEST_CODE,
}


class _KeyByGroup(beam.DoFn):
    """Clicks -> (group, (pos, raw items, time, order)) for kept users."""

    def __init__(self, n_groups: int):
        self._n_groups = n_groups

    def process(self, table, plan):
        pos = plan.positions(table[USER])
        kept = pc.is_valid(pos)
        table = table.filter(kept)
        pos = pos.filter(kept).to_numpy().astype(np.int64)
        items = table[ITEM].combine_chunks()
        time, order = table[TIME].to_numpy(), table[ORDER].to_numpy()
        group = pos % self._n_groups
        for g in np.unique(group):
            sel = group == g
            rows = pa.array(sel)
            yield int(g), (pos[sel], items.filter(rows), time[sel], order[sel])


def _columns(parts):
    """A group's parts -> (pos, raw items as one Arrow array, time, order)."""
    pos, items, time, order = zip(*parts)
    return (
        np.concatenate(pos),
        pa.chunked_array(list(items)).combine_chunks(),
        np.concatenate(time),
        np.concatenate(order),
    )


class _KeptItems(beam.DoFn):
    """A group -> the distinct raw items of its users with enough items.

    Counts the users with fewer than ``leave_one_out.MIN_ITEMS``.
    """

    def process(self, keyed):
        _, parts = keyed
        pos, items, _, _ = _columns(parts)
        encoded = pc.dictionary_encode(items)
        kept, n_users = loo.users_with_enough_items(
            pos, encoded.indices.to_numpy(), len(encoded.dictionary)
        )
        count(
            counters.USERS_DROPPED_WITH_FEWER_THAN_3_ITEMS, n_users - kept.size
        )
        if kept.size:
            yield pc.unique(items.filter(pa.array(np.isin(pos, kept))))


def _count_lists(split: loo.LatestSplit, negatives: int) -> None:
    users = split.users.size
    interactions = split.train[0].size
    count(counters.split_users(features.TRAIN), users)
    count(counters.split_interactions(features.TRAIN), interactions)
    count(counters.HELDOUT_USERS_PER_SPLIT, users)
    for name in features.HELDOUT_SPLITS:
        count(counters.split_users(name), users)
        count(counters.split_users_scored(name), users)
        count(counters.split_interactions(name, features.FOLD_IN), interactions)
        count(counters.split_interactions(name, features.HELDOUT), users)
        count(
            counters.split_interactions(name, features.CANDIDATES),
            users * (negatives + 1),
        )


class _SplitLatest(beam.DoFn):
    """A group -> its training shard's lists, and its held-out parts."""

    def __init__(self, seed: int, negatives: int):
        self._seed = seed
        self._negatives = negatives

    def process(self, keyed, plan, vocab):
        group, parts = keyed
        pos, items, time, order = _columns(parts)
        # Only users dropped for too few items have items outside it.
        index = pc.index_in(items, value_set=vocab)
        known = index.is_valid().to_numpy(zero_copy_only=False)
        item = index.filter(pa.array(known)).to_numpy().astype(np.int64)
        split = loo.latest_split(pos[known], item, time[known], order[known])
        if not split.users.size:
            return
        _count_lists(split, self._negatives)
        user_ids = plan.users.take(pa.array(split.users)).to_pylist()
        user_ids = list(map(str, user_ids))
        lists = {features.ITEMS: split.train}
        yield features.TRAIN, group, user_ids, lists
        for name, code in _SPLIT_CODES.items():
            heldout = split.test if name == features.TEST else split.validation
            candidates = loo.draw_candidates(
                split,
                heldout,
                len(vocab),
                self._negatives,
                self._seed,
                code,
                user_ids,
            )
            part = (split.users, split.train, heldout, candidates)
            yield beam.pvalue.TaggedOutput(_HELDOUT_PARTS, (name, part))


class _GatherHeldout(beam.DoFn):
    """One held-out split's parts -> its lists, users in ascending pos."""

    def __init__(self, negatives: int):
        self._width = negatives + 1

    def process(self, keyed, plan):
        name, parts = keyed
        users, trains, heldouts, candidates = zip(*parts)
        users = np.concatenate(users)
        rows = np.argsort(users, kind="stable")
        sizes = np.concatenate([np.diff(offsets) for _, offsets in trains])
        fold_in = loo.take_lists(
            np.concatenate([values for values, _ in trains]),
            np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            rows,
        )
        k, width = users.size, self._width
        lists = {
            features.FOLD_IN: fold_in,
            features.HELDOUT: (
                np.concatenate(heldouts)[rows],
                np.arange(k + 1, dtype=np.int64),
            ),
            features.CANDIDATES: (
                np.concatenate(candidates).reshape(k, width)[rows].ravel(),
                np.arange(0, (k + 1) * width, width, dtype=np.int64),
            ),
        }
        user_ids = plan.users.take(pa.array(users[rows])).to_pylist()
        yield name, 0, list(map(str, user_ids)), lists


class LeaveOneOut(beam.PTransform):
    """Clicks (with TIME) -> (user lists, vocabulary).

    The user lists are :class:`data_prep.grouping.DrawHeldout`'s output
    format, ready for :class:`data_prep.sinks.WriteUserShards`: every kept
    user once in ``train`` (``features.ITEMS``: its training items) and
    once in each held-out split (``features.FOLD_IN``: the same training
    items; ``features.HELDOUT``: the validation or test item;
    ``features.CANDIDATES``: ``negatives`` sampled items, then the held-out
    one). The vocabulary is the sorted array of the kept users' items.
    """

    def __init__(
        self,
        plan: beam.PCollection,
        n_groups: int,
        id_type: pa.DataType,
        seed: int,
        negatives: int,
        why_empty: str = "the filters",
    ):
        super().__init__()
        self._plan = plan
        self._n_groups = n_groups
        self._id_type = id_type
        self._seed = seed
        self._negatives = negatives
        self._why_empty = (
            f"no user has the {loo.MIN_ITEMS} distinct items leave-one-out "
            f"needs (training, validation, test) after {why_empty}"
        )

    def expand(self, clicks):
        plan = beam.pvalue.AsSingleton(self._plan)
        groups = (
            clicks
            | "Key" >> beam.ParDo(_KeyByGroup(self._n_groups), plan)
            | "Group" >> beam.GroupByKey()
        )
        vocab = (
            groups
            | "KeptItems" >> beam.ParDo(_KeptItems())
            | "Vocabulary"
            >> BuildVocabulary(self._id_type, why_empty=self._why_empty)
        )
        lists = groups | "Split" >> beam.ParDo(
            _SplitLatest(self._seed, self._negatives),
            plan,
            beam.pvalue.AsSingleton(vocab),
        ).with_outputs(_HELDOUT_PARTS, main=_TRAIN_LISTS)
        heldout = (
            lists[_HELDOUT_PARTS]
            | "GroupHeldout" >> beam.GroupByKey()
            | "Gather" >> beam.ParDo(_GatherHeldout(self._negatives), plan)
        )
        user_lists = (lists[_TRAIN_LISTS], heldout) | "Lists" >> beam.Flatten()
        return user_lists, vocab
