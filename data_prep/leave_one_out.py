"""NCF's leave-one-out protocol (He et al. 2017), as pure numpy functions.

Every user that passes the filters trains. A user's clicks are first
reduced to one per item, the item's latest; "latest" is by time, and
among equal times the click later in the raw files (its ``order``) counts
as later. The user's latest item is its test item, the latest one left its
validation item, the rest its training items. A user with fewer than
:data:`MIN_ITEMS` distinct items has no such split and is dropped.

Each held-out item is ranked among negatives the user never clicked (in
any split), drawn without replacement from the whole vocabulary by a
generator seeded from ``(seed, split code, pos)``: the user's own stream,
so the draws depend on the plan and the vocabulary alone, not on batching,
grouping or the number of workers. The Beam stages are in
:mod:`data_prep.leave_one_out_stages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from data_prep.errors import DataPrepError
from data_prep.split import sorted_unique

# A training, a validation and a test item.
MIN_ITEMS = 3


def users_with_enough_items(
    pos: np.ndarray, code: np.ndarray, n_codes: int
) -> tuple[np.ndarray, int]:
    """The users with at least MIN_ITEMS distinct items.

    Args:
        pos: int ``[n]``, each click's user position.
        code: int ``[n]``, each click's item as a code < n_codes (any
            one-to-one coding of the raw ids will do).
        n_codes: the number of codes.

    Returns:
        (kept, n_users): the kept users' positions, ascending, and how many
        distinct users there were.
    """
    keys = sorted_unique(pos.astype(np.int64) * n_codes + code)
    users, n_items = np.unique(keys // n_codes, return_counts=True)
    return users[n_items >= MIN_ITEMS], users.size


@dataclass
class LatestSplit:
    """Each kept user's leave-one-out split, over item indices.

    Attributes:
        users: int64 ``[k]``, the kept users' positions, ascending.
        train: (values, offsets): user ``j``'s training items, sorted and
            unique, are ``values[offsets[j]:offsets[j + 1]]``.
        validation: int64 ``[k]``, each user's validation item.
        test: int64 ``[k]``, each user's test item.
        dropped: users with fewer than MIN_ITEMS distinct items.
    """

    users: np.ndarray
    train: tuple[np.ndarray, np.ndarray]
    validation: np.ndarray
    test: np.ndarray
    dropped: int


def latest_split(
    pos: np.ndarray, item: np.ndarray, time: np.ndarray, order: np.ndarray
) -> LatestSplit:
    """Splits every user's clicks by time (see the module docstring).

    Args:
        pos: int ``[n]``, each click's user position.
        item: int ``[n]``, each click's item index.
        time: int64 ``[n]``, each click's time.
        order: int64 ``[n]``, each click's place in the raw files (unique).

    The result depends on the set of clicks alone, not on their order.
    """
    pos, item = pos.astype(np.int64), item.astype(np.int64)
    if not pos.size:
        empty = np.zeros(0, np.int64)
        return LatestSplit(
            empty, (empty, np.zeros(1, np.int64)), empty, empty, 0
        )
    # By user, then time, then raw-file order: each user's latest last.
    rank = np.lexsort((order, time, pos))
    pos, item = pos[rank], item[rank]
    # A repeated (user, item) counts once, at its latest click: the last
    # of its clicks in this order (np.unique's index is the first one's).
    width = int(item.max()) + 1
    _, first = np.unique((pos * width + item)[::-1], return_index=True)
    last = np.zeros(pos.size, bool)
    last[pos.size - 1 - first] = True
    pos, item = pos[last], item[last]
    starts = np.flatnonzero(np.concatenate([[True], pos[1:] != pos[:-1]]))
    ends = np.append(starts[1:], pos.size).astype(np.int64)
    sizes = ends - starts
    keep = sizes >= MIN_ITEMS
    held = np.zeros(pos.size, bool)
    held[ends[keep] - 1] = held[ends[keep] - 2] = True
    train = np.repeat(keep, sizes) & ~held
    train_keys = np.sort(pos[train] * width + item[train])
    offsets = np.concatenate([[0], np.cumsum(sizes[keep] - 2)])
    return LatestSplit(
        users=pos[starts[keep]],
        train=(train_keys % width, offsets.astype(np.int64)),
        validation=item[ends[keep] - 2],
        test=item[ends[keep] - 1],
        dropped=int((~keep).sum()),
    )


def user_items(
    split: LatestSplit, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's items in every split: (values, offsets), sorted."""
    values, offsets = split.train
    sizes = np.diff(offsets)
    rows = np.arange(split.users.size)
    user = np.concatenate([np.repeat(rows, sizes), rows, rows])
    items = np.concatenate([values, split.validation, split.test])
    keys = np.sort(user * n_items + items)
    return keys % n_items, np.concatenate([[0], np.cumsum(sizes + 2)])


def draw_candidates(
    split: LatestSplit,
    heldout: np.ndarray,
    n_items: int,
    negatives: int,
    seed: int,
    split_code: int,
    user_ids: Sequence[str],
) -> np.ndarray:
    """Each user's candidates: ``negatives`` drawn items, then ``heldout``.

    User ``pos`` draws ``r = Generator.choice(n_free, negatives,
    replace=False)`` from ``default_rng([seed, split_code, pos])``; each r
    means the r-th item (in vocabulary order) that the user never clicked.

    Args:
        split: the users' split.
        heldout: int64 ``[k]``, the item ranked among the candidates
            (``split.validation`` or ``split.test``).
        n_items: the vocabulary size; negatives are item indices below it.
        negatives: how many to draw per user.
        seed: the run's seed.
        split_code: the held-out split's code (data_prep.split), so that
            validation and test draw different negatives.
        user_ids: raw user ids, for the message below.

    Returns:
        int64 ``[k * (negatives + 1)]``, user ``j``'s candidates at
        ``[j * (negatives + 1):(j + 1) * (negatives + 1)]``, the negatives
        in the order drawn.

    Raises:
        DataPrepError: a user has fewer than ``negatives`` items left that
            it never clicked.
    """
    known, offsets = user_items(split, n_items)
    sizes = np.diff(offsets)
    free = n_items - sizes
    short = np.flatnonzero(free < negatives)
    if short.size:
        j = int(short[0])
        raise DataPrepError(
            f"user {user_ids[j]} clicked {sizes[j]} of the {n_items} items, "
            f"leaving {free[j]} to draw --negatives {negatives} from"
        )
    k = split.users.size
    ranks = np.empty((k, negatives), np.int64)
    for j, (user, n_free) in enumerate(
        zip(split.users.tolist(), free.tolist())
    ):
        rng = np.random.default_rng([seed, split_code, user])
        ranks[j] = rng.choice(n_free, size=negatives, replace=False)
    # The r-th unclicked item is r plus the clicked items before it. A
    # clicked item has (item - its rank among the user's clicks) unclicked
    # ones before it, non-decreasing per user; shifting user j's by
    # j * stride makes one sorted array that one searchsorted reads.
    row = np.repeat(np.arange(k), sizes)
    below = known - (np.arange(known.size) - offsets[:-1][row])
    stride = n_items + 1
    query = np.arange(k)[:, None] * stride + ranks
    before = np.searchsorted(row * stride + below, query, "right")
    out = np.empty((k, negatives + 1), np.int64)
    out[:, :negatives] = ranks + before - offsets[:-1][:, None]
    out[:, negatives] = heldout
    return out.reshape(-1)


def take_lists(
    values: np.ndarray, offsets: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lists ``rows`` of (values, offsets), in that order, as new lists."""
    starts = offsets[:-1][rows]
    lengths = np.diff(offsets)[rows]
    new = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    index = np.repeat(starts - new[:-1], lengths) + np.arange(new[-1])
    return values[index], new
