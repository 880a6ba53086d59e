"""The split's pure functions against the notebook's pandas/numpy steps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from data_prep import notebook_reference
from data_prep import split as splitlib
from data_prep.errors import DataPrepError


@pytest.mark.parametrize(
    "ids",
    [
        [10, 2, 33, 1, 7],
        ["b", "A", "ab", "a", "Z0"],
        ["10", "2", "33", "1", "7"],  # pandas reads these as integers
        ["10", "2x", "33", "1"],  # ... but not these
    ],
)
def test_sort_order_matches_pandas(ids):
    series = pd.read_csv(
        pd.io.common.StringIO("\n".join(map(str, ids))), header=None
    )[0]
    expected = [str(v) for v in series.sort_values()]
    got = pa.array(ids).take(pa.array(splitlib.sort_order(pa.array(ids))))
    assert [str(v) for v in got.to_pylist()] == expected


def test_split_plan_is_the_notebooks_permutation():
    rng = np.random.default_rng(1)
    users = rng.choice(10_000, size=300, replace=False)
    counts = rng.integers(1, 20, size=300)
    plan = splitlib.make_split_plan(
        pa.array(users),
        counts,
        min_user_clicks=5,
        heldout_users=30,
        seed=98765,
    )
    # The notebook: sorted ids of kept users, permuted, last 2N held out.
    kept = np.sort(users[counts >= 5])
    np.random.seed(98765)
    perm = kept[np.random.permutation(kept.size)]
    n = kept.size
    assert plan.users.to_pylist() == kept.tolist()
    by_split = {
        code: set(kept[plan.split == code].tolist()) for code in range(3)
    }
    assert by_split[splitlib.TRAIN_CODE] == set(perm[: n - 60].tolist())
    assert by_split[splitlib.VALIDATION_CODE] == set(
        perm[n - 60 : n - 30].tolist()
    )
    assert by_split[splitlib.TEST_CODE] == set(perm[n - 30 :].tolist())
    dropped = plan.stats["rows_dropped_by_min_user_clicks"]
    assert dropped == counts[counts < 5].sum()


def test_split_plan_errors_name_the_flag():
    users, counts = pa.array([1, 2, 3]), np.array([1, 2, 9])
    with pytest.raises(
        DataPrepError, match="--min-user-clicks 10 left no users"
    ):
        splitlib.make_split_plan(users, counts, 10, 1, 0)
    with pytest.raises(
        DataPrepError, match="--heldout-users 1 needs more than 2"
    ):
        splitlib.make_split_plan(users, counts, 2, 1, 0)


def test_draw_heldout_matches_notebook():
    rng = np.random.default_rng(2)
    n_rows = 2_000
    frame = pd.DataFrame(
        {
            "user": rng.integers(0, 120, n_rows),
            "item": rng.permutation(np.arange(n_rows) % 700),
        }
    )
    frame = frame.drop_duplicates(["user", "item"]).reset_index(drop=True)
    fold_in, heldout = notebook_reference.split_train_test_proportion(
        frame, seed=98765
    )
    # Shuffle the rows: the draw must follow the order keys, not row order.
    shuffled = frame.assign(order=np.arange(len(frame))).sample(
        frac=1.0, random_state=3
    )
    got = list(
        splitlib.draw_heldout(
            shuffled["user"].to_numpy(),
            shuffled["item"].to_numpy(),
            shuffled["order"].to_numpy(),
            n_items=700,
            seed=98765,
        )
    )
    assert [u for u, _, _ in got] == sorted(frame["user"].unique())
    want_in = fold_in.groupby("user")["item"].apply(sorted).to_dict()
    want_out = heldout.groupby("user")["item"].apply(sorted).to_dict()
    for user, f, h in got:
        assert f.tolist() == want_in.get(user, [])
        assert h.tolist() == want_out.get(user, [])
    small = [u for u, _, h in got if not h.size]
    sizes = frame.groupby("user").size()
    assert small == sorted(u for u, n in sizes.items() if n < 5)


def test_train_lists_dedupe_and_sort():
    pos = np.array([3, 1, 3, 1, 3, 0])
    item = np.array([5, 2, 1, 2, 5, 9])
    users, values, offsets = splitlib.train_lists(pos, item, 10)
    got = [
        (int(u), values[offsets[j] : offsets[j + 1]].tolist())
        for j, u in enumerate(users)
    ]
    assert got == [(0, [9]), (1, [2]), (3, [1, 5])]
