"""``python -m tf_multvae.serving.recommend``: recommendations from an export.

    python -m tf_multvae.serving.recommend --model models/ml-20m \\
        --items 1,32,260 -k 10

A quick look without a server: loads the SavedModel that
``python -m tf_multvae.serving.export`` wrote (a version directory, or the base
directory, whose highest version is used) with ``tf.saved_model.load`` and
calls its signature the way TF Serving would. Needs TensorFlow only.
Prints at most ``-k`` items: fewer where fewer are left besides the
input's. A damaged or partial export (saved_model.pb unreadable,
variables/ or the vocabulary missing) is refused with one ``error:`` line
naming the directory and what is wrong (exit code 2).
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
from tf_multvae import features
from tf_multvae.serving.signatures import IDS_INPUT
from tf_multvae.serving.signatures import INDEX_PAD
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


VARIABLES_DIR = "variables"
VARIABLES_INDEX = "variables.index"
ASSETS_DIR = "assets"


def _one_line(err: Exception) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _pb_problem(model_dir: str) -> str | None:
    """What is wrong with ``model_dir/saved_model.pb``, or None."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(model_dir, SAVED_MODEL_FILE)
    try:
        with open(path, "rb") as f:
            proto = saved_model_pb2.SavedModel.FromString(f.read())
    except DecodeError:
        return f"its {SAVED_MODEL_FILE} is damaged (not a SavedModel proto)"
    if not proto.meta_graphs:
        return f"its {SAVED_MODEL_FILE} is empty (no MetaGraph in it)"
    return None


def load_saved_model(path: str):
    """The SavedModel at ``path`` (see :func:`find_saved_model`), loaded.

    Checks what ``tf.saved_model.load`` would otherwise fail on deep
    inside, so the error names the directory and the part at fault.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not a SavedModel, or a damaged or partial one
            (saved_model.pb unreadable, variables/ or the vocabulary
            missing or damaged), or not an export of this package.
    """
    import tensorflow as tf

    model_dir = find_saved_model(path)

    def refuse(problem: str) -> ValueError:
        return ValueError(
            f"--model {model_dir} is not a usable SavedModel: {problem}; "
            "export it again (python -m tf_multvae.serving.export)"
        )

    problem = _pb_problem(model_dir)
    variables = os.path.join(model_dir, VARIABLES_DIR)
    vocab = os.path.join(model_dir, ASSETS_DIR, features.VOCAB_FILE)
    if problem is None and not os.path.isdir(variables):
        problem = f"it has no {VARIABLES_DIR}/ directory (the weights)"
    elif problem is None and not os.path.exists(
        os.path.join(variables, VARIABLES_INDEX)
    ):
        problem = f"its {VARIABLES_DIR}/ lacks {VARIABLES_INDEX}"
    elif problem is None and not os.path.exists(vocab):
        problem = (
            f"it has no {ASSETS_DIR}/{features.VOCAB_FILE} (the vocabulary)"
        )
    if problem:
        raise refuse(problem)
    try:
        loaded = tf.saved_model.load(model_dir)
    except (OSError, ValueError, LookupError, tf.errors.OpError) as err:
        raise refuse(
            f"loading it failed ({VARIABLES_DIR}/ damaged?): {_one_line(err)}"
        ) from None
    missing = [
        name
        for name in (SERVING_SIGNATURE, INDEX_SIGNATURE)
        if name not in loaded.signatures
    ]
    missing += [a for a in ("top_k", "n_items") if not hasattr(loaded, a)]
    if missing:
        raise refuse(f"it lacks {', '.join(missing)} (not an export of ours)")
    return loaded


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
        One :class:`Recommendation` per user, of at most ``k`` items:
        fewer where fewer are left to recommend (the model's items minus
        the user's input items); the signature's padding columns (index
        -1, score NaN) are dropped.

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
    results = []
    for u in range(len(users)):
        real = out[ITEM_INDICES][u, :k] != INDEX_PAD  # padding comes last
        results.append(
            Recommendation(
                item_ids=[
                    i.decode("utf-8") for i in out[ITEM_IDS][u, :k][real]
                ],
                item_indices=out[ITEM_INDICES][u, :k][real].tolist(),
                scores=out[SCORES][u, :k][real].tolist(),
                unknown_items=int(out[UNKNOWN_ITEMS][u]),
            )
        )
    return results


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
    cli.add_verbose(p)
    return p.parse_args(argv)


@cli.command("recommend")
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
    loaded, code = cli.call(load_saved_model, args.model)
    if code:
        return code
    path = find_saved_model(args.model)
    try:
        (result,) = recommend(loaded, [items], args.k)
    except (TypeError, ValueError) as err:
        return cli.fail(err)
    print(f"model: {path}")
    if result.unknown_items:
        print(f"ignored {result.unknown_items} item(s) the model does not know")
    left = len(result.item_ids)
    if left < args.k:
        n_items = int(loaded.n_items.numpy())
        print(
            f"only {left} item(s) left to recommend: the model has "
            f"{n_items} and the input holds the other {n_items - left}"
        )
    print(f"{'rank':>4}  {'item':<20} {'index':>7}  score")
    for rank, (item, index, score) in enumerate(
        zip(result.item_ids, result.item_indices, result.scores), start=1
    ):
        print(f"{rank:>4}  {item:<20} {index:>7}  {score:.4f}")
    return 0


if __name__ == "__main__":
    cli.quiet_process("recommend")
    sys.exit(cli.end_process(main()))
