"""The authors' preprocessing, transcribed with pandas as a reference.

This is a plain, in-memory transcription of the procedure in the authors'
ML-20M notebook (Liang et al., 2018, ``VAE_ML20M_WWW2018.ipynb``), kept for
two jobs: the tests prove that the Beam pipeline reproduces its split exactly,
and ``python -m benchmarks.prep_speed`` times it as the "straightforward
pandas" baseline (``benchmarks/prep_pandas.py``).
The pipeline does not import it. It holds the whole table in memory, which is
what the pipeline is built to avoid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def filter_triplets(
    tp: pd.DataFrame, min_uc: int = 5, min_sc: int = 0
) -> pd.DataFrame:
    """Item filter first, then the user filter, as the notebook does."""
    if min_sc > 0:
        itemcount = tp.groupby("item").size()
        tp = tp[tp["item"].isin(itemcount.index[itemcount >= min_sc])]
    if min_uc > 0:
        usercount = tp.groupby("user").size()
        tp = tp[tp["user"].isin(usercount.index[usercount >= min_uc])]
    return tp


def split_train_test_proportion(
    data: pd.DataFrame, seed: int, test_prop: float = 0.2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user (sorted id order), int(test_prop * n) random held-out clicks."""
    tr_list, te_list = [], []
    np.random.seed(seed)
    for _, group in data.groupby("user"):
        n_items_u = len(group)
        if n_items_u >= 5:
            idx = np.zeros(n_items_u, dtype="bool")
            chosen = np.random.choice(
                n_items_u, size=int(test_prop * n_items_u), replace=False
            )
            idx[chosen.astype("int64")] = True
            tr_list.append(group[np.logical_not(idx)])
            te_list.append(group[idx])
        else:
            tr_list.append(group)
    data_tr = pd.concat(tr_list) if tr_list else data.iloc[:0]
    data_te = pd.concat(te_list) if te_list else data.iloc[:0]
    return data_tr, data_te


def notebook_split(
    raw: pd.DataFrame,
    threshold: float | None,
    min_uc: int,
    min_sc: int,
    n_heldout_users: int,
    seed: int = 98765,
) -> dict:
    """Runs the notebook's procedure on a ``user, item[, rating]`` frame.

    Args:
        raw: one row per raw rating, in raw-file order; columns ``user``,
            ``item`` and (when ``threshold`` is set) ``rating``.
        threshold: a row is a click iff rating > threshold; None keeps all.
        min_uc: users need at least this many clicks.
        min_sc: items need at least this many clicks (applied first).
        n_heldout_users: users per held-out split (validation, test).
        seed: the numpy seed (98765 in the paper).

    Returns:
        dict with ``train_users``, ``validation_users``, ``test_users``
        (arrays of raw ids), ``items`` (the vocabulary, in the notebook's
        first-appearance order), ``train_plays`` and, per held-out split,
        ``<split>_fold_in`` and ``<split>_heldout`` frames of raw ids.
    """
    if threshold is not None:
        raw = raw[raw["rating"] > threshold]
    raw = filter_triplets(raw, min_uc=min_uc, min_sc=min_sc)
    unique_uid = raw.groupby("user").size().index
    np.random.seed(seed)
    idx_perm = np.random.permutation(unique_uid.size)
    unique_uid = unique_uid[idx_perm]
    n_users = unique_uid.size
    tr_users = unique_uid[: (n_users - n_heldout_users * 2)]
    vd_users = unique_uid[
        (n_users - n_heldout_users * 2) : (n_users - n_heldout_users)
    ]
    te_users = unique_uid[(n_users - n_heldout_users) :]
    train_plays = raw.loc[raw["user"].isin(tr_users)]
    unique_sid = pd.unique(train_plays["item"])
    out = {
        "train_users": np.asarray(tr_users),
        "validation_users": np.asarray(vd_users),
        "test_users": np.asarray(te_users),
        "items": np.asarray(unique_sid),
        "train_plays": train_plays[["user", "item"]],
    }
    for name, users in (("validation", vd_users), ("test", te_users)):
        plays = raw.loc[raw["user"].isin(users)]
        plays = plays.loc[plays["item"].isin(unique_sid)]
        fold_in, heldout = split_train_test_proportion(
            plays[["user", "item"]], seed
        )
        out[f"{name}_fold_in"] = fold_in
        out[f"{name}_heldout"] = heldout
    return out
