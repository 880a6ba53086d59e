"""``python -m tf_multvae.serving.recommend``: recommendations from an export.

    python -m tf_multvae.serving.recommend --model models/ml-20m \\
        --items 1,32,260 -k 10

A quick look without a server: loads the SavedModel that
``python -m tf_multvae.serving.export`` wrote (a version directory, or the base
directory, whose highest version is used) with ``tf.saved_model.load`` and
calls its signature the way TF Serving would. Needs TensorFlow only.
"""

from __future__ import annotations

import argparse
import numbers
import os
import sys
from typing import NamedTuple
from typing import Sequence

import numpy as np

from tf_multvae import cli
from tf_multvae.serving.signatures import IDS_INPUT
from tf_multvae.serving.signatures import INDEX_SIGNATURE
from tf_multvae.serving.signatures import INDICES_INPUT
from tf_multvae.serving.signatures import ITEM_IDS
from tf_multvae.serving.signatures import ITEM_INDICES
from tf_multvae.serving.signatures import SAVED_MODEL_FILE
from tf_multvae.serving.signatures import SCORES
from tf_multvae.serving.signatures import SERVING_SIGNATURE
from tf_multvae.serving.signatures import UNKNOWN_ITEMS


class Recommendation(NamedTuple):
    """One user's result: best first."""

    item_ids: list[str]
    item_indices: list[int]
    scores: list[float]
    unknown_items: int  # input ids the model does not know (ignored)


def find_saved_model(path: str) -> str:
    """``path`` itself if it is a SavedModel, else its highest version.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: it holds neither saved_model.pb nor a numbered version
            directory with one.
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--model {path} does not exist")
    if os.path.exists(os.path.join(path, SAVED_MODEL_FILE)):
        return path
    versions = sorted(
        (int(name) for name in os.listdir(path) if name.isdigit()),
        reverse=True,
    )
    for version in versions:
        candidate = os.path.join(path, str(version))
        if os.path.exists(os.path.join(candidate, SAVED_MODEL_FILE)):
            return candidate
    raise ValueError(
        f"--model {path} is not a SavedModel: no {SAVED_MODEL_FILE} in it "
        "or in a numbered version directory (python -m "
        "tf_multvae.serving.export writes one)"
    )


def _is_index(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def pad_batch(users: Sequence[Sequence]) -> tuple[str, np.ndarray]:
    """Users' item lists -> the signature to call and its padded input.

    Args:
        users: per user, raw item ids (all ``str``) or item indices (all
            ``int``); the whole batch of one kind.

    Returns:
        (signature name, array): ``serving_default`` and an object array of
        ``str`` padded with "", or ``by_index`` and int64 padded with -1;
        shape ``[batch, max_len]``.

    Raises:
        TypeError: a user's items are not a list, or an item is neither a
            str nor an int, or the batch mixes the two.
    """
    kinds = set()
    for u, items in enumerate(users):
        if isinstance(items, (str, bytes)) or not isinstance(
            items, (Sequence, np.ndarray)
        ):
            raise TypeError(
                f"user {u}: expected a list of item ids, got "
                f"{type(items).__name__} {items!r}"
            )
        for item in items:
            if isinstance(item, str):
                kinds.add(str)
            elif _is_index(item):
                kinds.add(int)
            else:
                raise TypeError(
                    f"user {u}: item {item!r} is a {type(item).__name__}; "
                    "items must be raw item ids (str) or item indices (int)"
                )
    if len(kinds) > 1:
        raise TypeError(
            "the batch mixes raw item ids (str) and item indices (int); "
            "send one kind per request"
        )
    width = max((len(items) for items in users), default=0)
    if kinds == {int}:
        batch = np.full((len(users), width), -1, np.int64)
        name = INDEX_SIGNATURE
    else:  # strings, or only empty histories
        batch = np.full((len(users), width), "", object)
        name = SERVING_SIGNATURE
    for u, items in enumerate(users):
        batch[u, : len(items)] = list(items)
    return name, batch


def recommend(loaded, users: Sequence[Sequence], k: int | None = None):
    """Top-k recommendations of a batch of users from a loaded SavedModel.

    Args:
        loaded: ``tf.saved_model.load`` of an exported model.
        users: per user, raw item ids (str) or item indices (int).
        k: items per user, at most the exported top-k (default: all).

    Returns:
        One :class:`Recommendation` per user.

    Raises:
        TypeError: see :func:`pad_batch`.
        ValueError: ``k`` outside [1, exported top-k].
    """
    import tensorflow as tf

    exported_k = int(loaded.top_k.numpy())
    k = exported_k if k is None else k
    if not 1 <= k <= exported_k:
        raise ValueError(
            f"-k {k} must be between 1 and the model's exported top-k, "
            f"{exported_k} (export again with a larger --top-k)"
        )
    name, batch = pad_batch(users)
    if name == SERVING_SIGNATURE:
        inputs = {IDS_INPUT: tf.constant(batch, tf.string)}
    else:
        inputs = {INDICES_INPUT: tf.constant(batch, tf.int64)}
    out = {
        key: value.numpy()
        for key, value in loaded.signatures[name](**inputs).items()
    }
    return [
        Recommendation(
            item_ids=[i.decode("utf-8") for i in out[ITEM_IDS][u, :k]],
            item_indices=out[ITEM_INDICES][u, :k].tolist(),
            scores=out[SCORES][u, :k].tolist(),
            unknown_items=int(out[UNKNOWN_ITEMS][u]),
        )
        for u in range(len(users))
    ]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tf_multvae.serving.recommend",
        description="Recommend items for one user from an exported model.",
    )
    p.add_argument(
        "--model", required=True, help="SavedModel (or its base directory)"
    )
    p.add_argument(
        "--items", required=True, help="the user's items, comma-separated"
    )
    p.add_argument("-k", type=int, default=10, help="items to show (10)")
    p.add_argument(
        "--indices",
        action="store_true",
        help="--items are item indices (the by_index signature)",
    )
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    items = [item.strip() for item in args.items.split(",") if item.strip()]
    if args.indices:
        try:
            items = [int(item) for item in items]
        except ValueError:
            return cli.fail(
                f"--items with --indices takes integers, not {args.items!r}"
            )
    path, code = cli.call(find_saved_model, args.model)
    if code:
        return code
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    try:
        (result,) = recommend(loaded, [items], args.k)
    except (TypeError, ValueError) as err:
        return cli.fail(err)
    print(f"model: {path}")
    if result.unknown_items:
        print(f"ignored {result.unknown_items} item(s) the model does not know")
    print(f"{'rank':>4}  {'item':<20} {'index':>7}  score")
    for rank, (item, index, score) in enumerate(
        zip(result.item_ids, result.item_indices, result.scores), start=1
    ):
        print(f"{rank:>4}  {item:<20} {index:>7}  {score:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
