"""Each user's clicks in one place, then each user's item lists.

:class:`GroupClicksByUser` routes the clicks of the users the split plan
kept to groups (training users spread over ``n_groups``, each held-out split
one group) and collects the training users' items for the vocabulary.
:class:`DrawHeldout` turns each group into per-user item lists over the
vocabulary, making the notebook's seeded held-out draw (docs/design.md,
"The paper's protocol"); :mod:`data_prep.sinks` only writes them.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_prep import counters
from data_prep import split as splitlib
from data_prep.config import ITEM
from data_prep.config import USER
from data_prep.readers import ORDER
from data_prep.transforms import count
from tf_multvae import features

TRAIN_ITEMS = "train_items"
GROUPS = "groups"
_SPLIT_NAMES = {
    splitlib.TRAIN_CODE: features.TRAIN,
    splitlib.VALIDATION_CODE: features.VALIDATION,
    splitlib.TEST_CODE: features.TEST,
}


def _route(table: pa.Table, plan: splitlib.SplitPlan):
    """Adds each row's user position and split code; drops filtered users."""
    pos = plan.positions(table[USER])
    kept = pc.is_valid(pos)
    pos = pos.filter(kept).to_numpy()
    table = table.filter(kept)
    return table, pos, plan.split[pos]


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


def _train_lists(pos, item, n_items):
    users, values, offsets = splitlib.train_lists(pos, item, n_items)
    count(counters.split_users(features.TRAIN), users.size)
    count(counters.split_interactions(features.TRAIN), values.size)
    return users, {features.ITEMS: (values, offsets)}


class _DrawUserLists(beam.DoFn):
    """One user group -> (split, group, user ids, item lists)."""

    def __init__(self, seed: int, fraction: float, min_clicks: int):
        self._draw = (seed, fraction, min_clicks)

    def process(self, keyed, plan, vocab):
        (name, group), parts = keyed
        pos, items, order = zip(*parts)
        pos, order = np.concatenate(pos), np.concatenate(order)
        index = pc.index_in(
            pa.chunked_array(items, vocab.type), value_set=vocab
        )
        known = index.is_valid().to_numpy(zero_copy_only=False)
        if name != features.TRAIN:
            count(counters.outside_vocabulary(name), (~known).sum())
        pos, order = pos[known], order[known]
        item = index.filter(pa.array(known)).to_numpy().astype(np.int64)
        if name == features.TRAIN:
            users, lists = _train_lists(pos, item, len(vocab))
        else:
            users, lists = self._heldout(name, pos, item, order, len(vocab))
        user_ids = list(map(str, plan.users.take(pa.array(users)).to_pylist()))
        yield name, group, user_ids, lists

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
            count(counters.split_interactions(name, key), values.size)
        count(counters.split_users(name), users.size)
        scored = np.diff(lists[features.HELDOUT][1]) > 0
        count(counters.split_users_scored(name), scored.sum())
        return users, lists


class DrawHeldout(beam.PTransform):
    """Grouped clicks -> each user's item lists, the held-out draw made.

    Raw item ids become vocabulary indices. Training users get their
    sorted unique items (``features.ITEMS``). Held-out users lose the
    clicks outside the vocabulary (counted), then get the notebook's draw
    (:func:`data_prep.split.draw_heldout`: the generator reseeded with
    ``seed`` once per held-out split, users in sorted id order, clicks in
    raw-file order) into ``features.FOLD_IN`` and ``features.HELDOUT``.
    The draw depends only on the plan, the vocabulary and the seed, not on
    how the clicks were batched or on how many workers ran.

    Outputs one ``(split, group, user_ids, lists)`` per group: user ids
    (str) ascending by position, and per list key ``(values, offsets)``
    with user ``j``'s items ``values[offsets[j]:offsets[j + 1]]``.
    """

    def __init__(
        self,
        plan: beam.PCollection,
        vocab: beam.PCollection,
        seed: int,
        fraction: float = 0.2,
        min_clicks: int = 5,
    ):
        super().__init__()
        self._plan = plan
        self._vocab = vocab
        self._args = (seed, fraction, min_clicks)

    def expand(self, groups):
        return groups | "Draw" >> beam.ParDo(
            _DrawUserLists(*self._args),
            beam.pvalue.AsSingleton(self._plan),
            beam.pvalue.AsSingleton(self._vocab),
        )
