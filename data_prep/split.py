"""The authors' user split and held-out draws, as pure numpy functions.

As in docs/design.md, "The paper's protocol": users that pass the filters
are sorted the way pandas sorts the id column, permuted with
``RandomState(seed)``, and the last 2×N are held out (validation, then
test). Each held-out user with at least five clicks left has int(0.2·n) of
them drawn as targets with ``choice(n, size, replace=False)`` from a
generator reseeded at the start of each held-out split, users visited in
sorted id order, clicks in raw-file order.

Leave-one-out needs only the user filter and the sorted users
(:func:`make_user_plan`); its per-user split is
:mod:`data_prep.leave_one_out`.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_prep import counters
from data_prep.errors import DataPrepError

TRAIN_CODE, VALIDATION_CODE, TEST_CODE = 0, 1, 2


def sort_order(ids: pa.Array) -> np.ndarray:
    """Indices that sort ``ids`` the way pandas sorts the id column.

    Integer ids sort numerically. String ids sort lexicographically, unless
    every one of them is a decimal integer: pandas would have read such a
    column as integers, so they sort numerically too.
    """
    if pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type):
        if (
            len(ids)
            and pc.all(
                pc.match_substring_regex(ids, r"^-?[0-9]{1,18}$")
            ).as_py()
        ):
            ids = pc.cast(ids, pa.int64())
    return pc.sort_indices(ids).to_numpy()


def sorted_ids(ids: pa.Array) -> pa.Array:
    return ids.take(pa.array(sort_order(ids)))


@dataclass
class SplitPlan:
    """Which split each kept user belongs to.

    Attributes:
        users: Arrow array of the kept users' raw ids, in sorted id order;
            a user's position in it is its ``pos``.
        split: int8 ``[n_users]``, TRAIN_CODE / VALIDATION_CODE / TEST_CODE.
        stats: counts for metadata.json, by :mod:`data_prep.counters` name.
    """

    users: pa.Array
    split: np.ndarray
    stats: dict = field(default_factory=dict)

    def positions(self, ids: pa.Array) -> pa.Array:
        """pos of each id in ``users``; null for users that were dropped."""
        return pc.index_in(ids, value_set=self.users)


def make_split_plan(
    users: pa.Array,
    counts: np.ndarray,
    min_user_clicks: int,
    heldout_users: int | None,
    seed: int,
) -> SplitPlan:
    """Applies the user filter and draws the held-out users.

    Args:
        users: every user id with at least one click after the item filter.
        counts: int64 ``[n]``, clicks per user.
        min_user_clicks: users with fewer clicks are dropped.
        heldout_users: N, users per held-out split; None means 10% of users.
        seed: seed of the permutation (98765 in the paper).

    Raises:
        DataPrepError: the filter leaves no users, or too few for 2×N
            held-out users plus at least one training user.
    """
    kept, stats = _filter_users(users, counts, min_user_clicks)
    n = len(kept)
    n_heldout = heldout_users if heldout_users is not None else max(1, n // 10)
    if n_heldout < 1 or 2 * n_heldout >= n:
        raise DataPrepError(
            f"--heldout-users {n_heldout} needs more than {2 * n_heldout} "
            f"users, but {n} are left after --min-user-clicks "
            f"{min_user_clicks}"
        )
    kept = sorted_ids(kept)
    perm = np.random.RandomState(seed).permutation(n)
    split = np.full(n, TRAIN_CODE, np.int8)
    split[perm[n - 2 * n_heldout : n - n_heldout]] = VALIDATION_CODE
    split[perm[n - n_heldout :]] = TEST_CODE
    stats[counters.HELDOUT_USERS_PER_SPLIT] = int(n_heldout)
    return SplitPlan(kept, split, stats)


def _filter_users(
    users: pa.Array, counts: np.ndarray, min_user_clicks: int
) -> tuple[pa.Array, dict]:
    """The users with at least ``min_user_clicks`` clicks, and the stats."""
    keep = np.asarray(counts) >= min_user_clicks
    kept = users.filter(pa.array(keep))
    if len(kept) == 0:
        raise DataPrepError(
            f"--min-user-clicks {min_user_clicks} left no users "
            f"(of {len(users)} with a click)"
        )
    dropped = ~keep
    stats = {
        counters.USERS_WITH_CLICKS: int(len(users)),
        counters.USERS_DROPPED_BY_MIN_USER_CLICKS: int(dropped.sum()),
        counters.ROWS_DROPPED_BY_MIN_USER_CLICKS: int(
            np.asarray(counts)[dropped].sum()
        ),
    }
    return kept, stats


def make_user_plan(
    users: pa.Array, counts: np.ndarray, min_user_clicks: int
) -> SplitPlan:
    """Leave-one-out's plan: the user filter, every kept user trains.

    Args and errors are those of :func:`make_split_plan` without the
    held-out users. ``split`` is all TRAIN_CODE: under leave-one-out every
    user is in every split, and ``pos`` (sorted id order, whatever the
    batching) seeds the user's negatives. Users left with fewer than three
    items are dropped later, per user (:mod:`data_prep.leave_one_out`).
    """
    kept, stats = _filter_users(users, counts, min_user_clicks)
    kept = sorted_ids(kept)
    return SplitPlan(kept, np.full(len(kept), TRAIN_CODE, np.int8), stats)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy 2's hash-based unique is slower here)."""
    values = np.sort(values)
    if values.size:
        values = values[np.concatenate([[True], values[1:] != values[:-1]])]
    return values


def train_lists(
    pos: np.ndarray, item: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each training user's sorted unique item indices.

    Args:
        pos: int64 ``[n]``, each click's user position.
        item: int64 ``[n]``, each click's item index (< n_items).

    Returns:
        (users, values, offsets): users ascending ``[k]``; user ``j``'s
        items are ``values[offsets[j]:offsets[j + 1]]``.
    """
    keys = sorted_unique(pos.astype(np.int64) * n_items + item)
    users, values = np.divmod(keys, n_items)
    starts = np.flatnonzero(np.concatenate([[True], users[1:] != users[:-1]]))
    return users[starts], values, np.append(starts, keys.size)


def draw_heldout(
    pos: np.ndarray,
    item: np.ndarray,
    order: np.ndarray,
    n_items: int,
    seed: int,
    fraction: float = 0.2,
    min_clicks: int = 5,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """The notebook's per-user held-out draw over one held-out split.

    Args:
        pos: int64 ``[n]``, each click's user position (sorted id order).
        item: int64 ``[n]``, each click's item index.
        order: int64 ``[n]``, each click's place in the raw files.
        n_items: vocabulary size (for de-duplication keys).
        seed: the generator is reseeded with it once, here.
        fraction: int(fraction * n) targets per user.
        min_clicks: users with fewer clicks get no targets.

    Yields:
        (pos, fold_in, heldout) per user in ascending pos, item index arrays
        sorted; ``heldout`` is empty for users with fewer than min_clicks.
    """
    if not pos.size:
        return
    rank = np.lexsort((order, pos))  # by user, then raw-file order
    pos, item = pos[rank], item[rank]
    # A repeated (user, item) keeps its first click (a no-op on the paper's
    # datasets, which have no repeats).
    keys = pos.astype(np.int64) * n_items + item
    by_key = np.argsort(keys, kind="stable")  # ties keep raw-file order
    sorted_keys = keys[by_key]
    new = np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]])
    first = np.sort(by_key[new])
    pos, item = pos[first], item[first]
    rng = np.random.RandomState(seed)
    bounds = np.flatnonzero(np.diff(pos)) + 1
    starts = np.concatenate([[0], bounds])
    for start, clicks in zip(starts, np.split(item, bounds)):
        user = int(pos[start])
        n = clicks.size
        targets = np.zeros(n, dtype=bool)
        if n >= min_clicks:
            targets[rng.choice(n, size=int(fraction * n), replace=False)] = True
        yield user, np.sort(clicks[~targets]), np.sort(clicks[targets])
