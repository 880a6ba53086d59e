"""``--ncf-validation``: a validation split carved from NCF's train file.

NCF's files hold no validation split, so a model trained on them cannot
choose its epoch count without looking at the test file. With the flag
(off by default, and a deviation from NCF's data: it removes one training
interaction from every user that has two or more) each user's validation
item is one of its distinct training items, drawn uniformly at random; a
user with a single training item keeps it, gets no validation record and
is counted (metadata.json's
``splits.validation.users_with_a_single_training_item``). The remaining
items are the user's training items and its fold-in items in both
held-out splits; the test split is otherwise NCF's: were the validation
item among the user's NCF test negatives, the test candidates would keep
it exactly as the file lists them (it never is: a test negative that is a
training item is an error, ``HeldOut.check_group``).

The validation item is ranked among as many negatives as each line of
``NAME.test.negative`` holds (99 in NCF's files), drawn without
replacement from the vocabulary items the user has no interaction with in
the train or the test file (its validation and test items excluded; NCF's
own test negatives may be drawn again), in the order drawn, followed by
the validation item. A user left with fewer such items than that is an
error, as under ``--protocol leave-one-out``
(:func:`data_prep.leave_one_out.draw_candidates`).

Both draws come from one generator per user,
``numpy.random.default_rng([seed, VALIDATION_CODE, user id])``: the
validation item first (``integers(n)``: its position among the user's n
distinct training items in ascending id order), then the negatives
(``choice(m, size, replace=False)``: their ranks among the m items it may
draw, ascending). They depend on the seed and the files alone, not on the
number of workers, the byte ranges or the grouping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_prep.errors import DataPrepError
from data_prep.split import VALIDATION_CODE
from tf_multvae import features


@dataclass
class Validation:
    """A group's validation draw.

    Attributes:
        rows: int64 ``[m]``, the positions (among the group's users) of
            the users given a validation item, ascending.
        train: (values, offsets): every user's remaining training items,
            sorted, user ``j``'s at ``values[offsets[j]:offsets[j + 1]]``.
        fold_in: (values, offsets): the same lists, of ``rows`` only.
        items: int64 ``[m]``, the validation items of ``rows``.
        candidates: int64 ``[m, negatives + 1]``: the negatives as drawn,
            then the validation item.
        single: users of the group with one training item (no record).
    """

    rows: np.ndarray
    train: tuple[np.ndarray, np.ndarray]
    fold_in: tuple[np.ndarray, np.ndarray]
    items: np.ndarray
    candidates: np.ndarray
    single: int


def hold_out(
    users: np.ndarray,
    index: np.ndarray,
    offsets: np.ndarray,
    test_item: np.ndarray,
    n_items: int,
    negatives: int,
    seed: int,
    where: str = "",
) -> Validation:
    """Draws each user's validation item and negatives (module docstring).

    Args:
        users: int64 ``[n]``, the users' NCF ids, ascending.
        index, offsets: their sorted unique training items as vocabulary
            indices, user ``j``'s ``index[offsets[j]:offsets[j + 1]]``.
        test_item: int64 ``[n]``, each user's test item (index), none of
            its training items (``HeldOut.check_group``).
        n_items: the vocabulary size.
        negatives: negatives to draw per user.
        seed: the run's ``--seed``.
        where: appended to the error message (which file sets the count).

    Raises:
        DataPrepError: a user has fewer than ``negatives`` items left.
    """
    sizes = np.diff(offsets)
    rows = np.flatnonzero(sizes >= 2)
    keep = np.ones(index.size, bool)
    items = np.empty(rows.size, np.int64)
    candidates = np.empty((rows.size, negatives + 1), np.int64)
    for n, j in enumerate(rows.tolist()):
        start = int(offsets[j])
        mine = index[start : int(offsets[j + 1])]
        rng = np.random.default_rng([seed, VALIDATION_CODE, int(users[j])])
        pick = int(rng.integers(mine.size))
        keep[start + pick] = False
        items[n] = mine[pick]
        known = np.union1d(mine, test_item[j : j + 1])
        free = n_items - known.size
        if free < negatives:
            raise DataPrepError(
                f"--ncf-validation: user {users[j]} has interactions with "
                f"{known.size} of the {n_items} items, leaving {free} to "
                f"draw its {negatives} validation negatives from{where}"
            )
        ranks = rng.choice(free, size=negatives, replace=False)
        # The rank-th item not in ``known``: rank plus the known items
        # before it (``known[i] - i`` free items precede known[i]).
        below = known - np.arange(known.size)
        candidates[n, :negatives] = ranks + np.searchsorted(
            below, ranks, "right"
        )
        candidates[n, negatives] = items[n]
    left = sizes - (sizes >= 2)
    values = index[keep]
    train = (values, np.concatenate([[0], np.cumsum(left)]))
    fold_in = (
        values[np.repeat(sizes >= 2, left)],
        np.concatenate([[0], np.cumsum(left[rows])]),
    )
    single = int((sizes == 1).sum())
    return Validation(rows, train, fold_in, items, candidates, single)


def parameters(validation: bool, seed: int | None, negatives: int) -> dict:
    """metadata.json's parameters entries of the flag."""
    if not validation:
        return {"ncf_validation": False, "seed": None, "validation": None}
    return {
        "ncf_validation": True,
        "read_as_given": False,
        "seed": seed,
        "validation": (
            "one of each user's distinct training items, drawn uniformly "
            "and removed from its training and fold-in items (users with "
            "one training item keep it and have no validation record)"
        ),
        "validation_negatives": negatives,
        "validation_candidates": (
            f"{negatives} negatives drawn from the items the user has no "
            "interaction with in the train and test files, in the order "
            "drawn, then the validation item"
        ),
    }


def count_users_once(metadata: dict, single: int) -> None:
    """metadata.json's validation counts of NCF's files.

    ``output.build_metadata`` counts a leave-one-out dataset's users and
    interactions once; here the validation split's users are all known
    (none lost to the vocabulary), and with ``--ncf-validation`` the users
    without a validation record are counted.

    Args:
        single: the users with one training item, so no validation record.
    """
    splits = metadata["splits"]
    validation = splits[features.VALIDATION]
    validation["users_with_no_known_item"] = 0
    if metadata["parameters"]["ncf_validation"]:
        validation["users_with_a_single_training_item"] = single
