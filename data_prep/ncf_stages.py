"""The Beam stages of ``--dataset ncf`` (:mod:`data_prep.ncf` wires them).

The train file's byte ranges are parsed (:class:`ParseTrain`) into rows
keyed by group of consecutive users; each group's rows meet in one place
(:class:`Lists`), are checked against the test files' side input and
become the group's training shard and its held-out parts, optionally
after ``--ncf-validation``'s draw (:mod:`data_prep.ncf_validation`); each
held-out split's parts then meet in one element (:func:`heldout_split`),
since each held-out split is one shard. Only numpy arrays travel.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from data_prep import counters
from data_prep import ncf_files
from data_prep import ncf_heldout
from data_prep import ncf_validation
from data_prep.transforms import count
from tf_multvae import features

# Counted here, recorded in metadata.json's "source".
TRAIN_ITEMS = "ncf_items_in_train"
ITEMS_ONLY_IN_TEST_FILES = "ncf_items_only_in_test_files"
# --ncf-validation: splits.validation.users_with_a_single_training_item.
USERS_WITH_ONE_ITEM = "ncf_users_with_a_single_training_item"


def union(arrays) -> np.ndarray:
    """int64 arrays -> their sorted distinct values (a CombineGlobally)."""
    return np.unique(np.concatenate([np.zeros(0, np.int64), *arrays]))


def vocabulary(train_items: np.ndarray, held: ncf_heldout.HeldOut):
    """Every item of the three files, sorted (numpy int64)."""
    held_items = np.union1d(held.items, held.negatives.ravel())
    vocab = np.union1d(train_items, held_items).astype(np.int64)
    count(TRAIN_ITEMS, train_items.size)
    count(ITEMS_ONLY_IN_TEST_FILES, vocab.size - train_items.size)
    return vocab


class ParseTrain(beam.DoFn):
    """A byte range of the train file -> (group, (users, items)) per group
    its lines fall in, and its distinct items (tagged ``items``)."""

    def __init__(self, bounds: np.ndarray):
        self._bounds = bounds

    def process(self, rng):
        users, items = ncf_files.parse_train_range(rng)
        count(counters.ROWS_READ, users.size)
        count(counters.CLICKS, users.size)
        if not users.size:
            return
        yield beam.pvalue.TaggedOutput("items", np.unique(items))
        group = ncf_heldout.group_of(self._bounds, users)
        for g in np.unique(group):
            rows = group == g
            yield int(g), (users[rows], items[rows])


def user_lists(parts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows -> (users, their sorted unique items, offsets)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(1, np.int64)
    users = np.concatenate([u for u, _ in parts])
    items = np.concatenate([i for _, i in parts])
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    keep = np.ones(users.size, bool)
    keep[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    users, items = users[keep], items[keep]
    unique, starts = np.unique(users, return_index=True)
    return unique, items, np.append(starts, users.size)


class Lists(beam.DoFn):
    """One user group -> its training record lists, and its held-out parts
    (tagged by split), after checking the group against the test files.

    Args:
        seed: ``--ncf-validation``'s seed, or None for no validation split.
    """

    def __init__(self, bounds: np.ndarray, seed: int | None = None):
        self._bounds = bounds
        self._seed = seed

    def process(self, keyed, held, vocab):
        group, parts = keyed
        users, items, offsets = user_lists(parts)
        mine = ncf_heldout.group_of(self._bounds, held.users) == group
        rows = np.flatnonzero(mine)
        index = np.searchsorted(vocab, items)
        test_item = np.searchsorted(vocab, held.items[rows])
        negatives = np.searchsorted(vocab, held.negatives[rows])
        held.check_group(rows, users, offsets, index, test_item, negatives)
        candidates = np.concatenate([negatives, test_item[:, None]], axis=1)
        if self._seed is not None:
            drawn = ncf_validation.hold_out(
                users,
                index,
                offsets,
                test_item,
                len(vocab),
                negatives.shape[1],
                self._seed,
                f" (as many as each line of {held.files.negative} holds)",
            )
            count(USERS_WITH_ONE_ITEM, drawn.single)
            index, offsets = drawn.train
            part = (group, users[drawn.rows], *drawn.fold_in, drawn.items)
            yield _tag(features.VALIDATION, (*part, drawn.candidates))
        if users.size:
            count(counters.split_users(features.TRAIN), users.size)
            count(counters.split_interactions(features.TRAIN), index.size)
            lists = {features.ITEMS: (index, offsets)}
            yield features.TRAIN, group, [str(u) for u in users], lists
        part = (group, users, index, offsets, test_item, candidates)
        yield _tag(features.TEST, part)


def _tag(name, part):
    return beam.pvalue.TaggedOutput(name, (name, part))


def heldout_split(keyed):
    """(split, every group's parts) -> the held-out split's one element."""
    name, parts = keyed
    parts = sorted(parts, key=lambda part: part[0])
    users = np.concatenate([p[1] for p in parts])
    fold_in = np.concatenate([p[2] for p in parts])
    lengths = np.concatenate([np.diff(p[3]) for p in parts])
    heldout = np.concatenate([p[4] for p in parts])
    candidates = np.concatenate([p[5] for p in parts])
    n, width = candidates.shape
    lists = {
        features.FOLD_IN: (fold_in, np.concatenate([[0], np.cumsum(lengths)])),
        features.HELDOUT: (heldout, np.arange(n + 1)),
        features.CANDIDATES: (candidates.ravel(), np.arange(n + 1) * width),
    }
    count(counters.split_users(name), n)
    count(counters.split_users_scored(name), n)
    for key, (values, _) in lists.items():
        count(counters.split_interactions(name, key), values.size)
    return name, 0, [str(u) for u in users], lists
