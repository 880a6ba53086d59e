"""The Beam counters of a data prep run, named once for both sides.

The stages count into Beam Metrics under :data:`NAMESPACE` with these names
(``transforms.count``); the driver reads them back (``beam_run.counters_of``)
and ``output.build_metadata`` turns them into metadata.json. The comments,
the per-split functions' docstrings and :data:`ROWS_FIELDS` /
:data:`DROPPED_FIELDS` say where each lands there. Imports no Beam.
"""

from __future__ import annotations

from tf_multvae import features

NAMESPACE = "data_prep"

# Reading, binarizing and the item filter (transforms.py). Where each
# lands: ROWS_FIELDS and DROPPED_FIELDS below.
ROWS_READ = "rows_read"
BAD_LINES = "bad_lines"
ROWS_BELOW_THRESHOLD = "rows_below_threshold"
CLICKS = "clicks"
ROWS_DROPPED_BY_MIN_ITEM_USERS = "rows_dropped_by_min_item_users"
ITEMS_DROPPED_BY_MIN_ITEM_USERS = "items_dropped_by_min_item_users"

# The split plan (split.SplitPlan.stats, counted by transforms.PlanSplit).
USERS_WITH_CLICKS = "users_with_clicks"  # counted, not in metadata.json
USERS_DROPPED_BY_MIN_USER_CLICKS = "users_dropped_by_min_user_clicks"
ROWS_DROPPED_BY_MIN_USER_CLICKS = "rows_dropped_by_min_user_clicks"
# metadata.json heldout_users_per_split; with split_users, each held-out
# split's users_with_no_known_item. Under leave-one-out every kept user is
# held out, so leave_one_out.SplitLatest counts them here.
HELDOUT_USERS_PER_SPLIT = "heldout_users_per_split"

# Leave-one-out (leave_one_out.KeptUserItems): users with fewer than three
# distinct items, too few for a training, a validation and a test item;
# LEAVE_ONE_OUT_FIELDS below.
USERS_DROPPED_WITH_FEWER_THAN_3_ITEMS = "users_dropped_with_fewer_than_3_items"

# Per split, counted by grouping.DrawHeldout (leave_one_out.SplitLatest
# under leave-one-out): metadata.json "splits".


def split_users(split: str) -> str:
    """Users written to ``split``'s shards: splits.SPLIT.users."""
    return f"{split}_users"


def split_users_scored(split: str) -> str:
    """Held-out users given targets: splits.SPLIT.users_scored."""
    return f"{split}_users_scored"


def split_interactions(split: str, key: str | None = None) -> str:
    """Items written to ``split``'s records.

    Args:
        split: a split name (``features.SPLITS``).
        key: None for the training split (splits.train.interactions);
            ``features.FOLD_IN`` or ``features.HELDOUT`` for a held-out
            split (splits.SPLIT.fold_in_interactions, heldout_interactions);
            ``features.CANDIDATES`` under leave-one-out (splits.SPLIT.
            candidates, the held-out items and their negatives).
    """
    if key is None:
        return f"{split}_interactions"
    return f"{split}_{key}_interactions"


def outside_vocabulary(split: str) -> str:
    """Held-out clicks on items outside the training users' vocabulary.

    Lands in rows.SPLIT_clicks_outside_vocabulary.
    """
    return f"{split}_clicks_outside_vocabulary"


# metadata.json "rows": field -> counter, in the order they are written.
ROWS_FIELDS = {
    "read": ROWS_READ,
    "bad_lines": BAD_LINES,
    "below_threshold": ROWS_BELOW_THRESHOLD,
    "clicks": CLICKS,
    "dropped_by_min_item_users": ROWS_DROPPED_BY_MIN_ITEM_USERS,
    "dropped_by_min_user_clicks": ROWS_DROPPED_BY_MIN_USER_CLICKS,
    **{
        outside_vocabulary(split): outside_vocabulary(split)
        for split in features.HELDOUT_SPLITS
    },
}
# metadata.json's last top-level fields: field -> counter.
DROPPED_FIELDS = {
    "items_dropped_by_min_item_users": ITEMS_DROPPED_BY_MIN_ITEM_USERS,
    "users_dropped_by_min_user_clicks": USERS_DROPPED_BY_MIN_USER_CLICKS,
}
# After those, in leave-one-out datasets only: field -> counter.
LEAVE_ONE_OUT_FIELDS = {
    USERS_DROPPED_WITH_FEWER_THAN_3_ITEMS: (
        USERS_DROPPED_WITH_FEWER_THAN_3_ITEMS
    ),
}
