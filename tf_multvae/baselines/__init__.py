"""Baselines behind one fit/score interface (:class:`Baseline`).

- ``popularity``: the items ranked by their training users;
- ``ease``: EASE (Steck, WWW 2019), λ = ``--l2``.

``python -m tf_multvae.baselines --model KIND ...`` fits one on a
prepared dataset and writes a run directory like training's
(``tf_multvae.baselines.command``).
"""

from __future__ import annotations

from tf_multvae.baselines.base import Baseline
from tf_multvae.baselines.base import train_matrix
from tf_multvae.baselines.ease import EASE
from tf_multvae.baselines.popularity import Popularity
from tf_multvae.baselines.slim import SLIM
from tf_multvae.baselines.wmf import WMF

REGISTRY: dict[str, type[Baseline]] = {
    cls.kind: cls for cls in (Popularity, EASE, WMF, SLIM)
}
KINDS = tuple(REGISTRY)


def make(model_config: dict) -> Baseline:
    """An unfitted baseline from config.json's "model" (``{"kind", ...}``).

    Raises:
        ValueError: an unknown kind or a bad hyperparameter.
    """
    params = dict(model_config)
    kind = params.pop("kind")
    if kind not in REGISTRY:
        raise ValueError(f"--model must be one of {KINDS}, not {kind!r}")
    return REGISTRY[kind](**params)


def fit(
    model_config: dict, data_dir: str, available_bytes: int | None = -1
) -> Baseline:
    """The baseline of ``model_config``, fitted on data_dir's train users.

    Args:
        model_config: config.json's "model", e.g. ``{"kind": "ease",
            "l2": 500.0}``.
        data_dir: a prepared dataset directory.
        available_bytes: the memory budget (see :meth:`Baseline.check`).

    Raises:
        ValueError: unknown kind.
        MemoryError: it would not fit, found before reading the data.
    """
    model = make(model_config)
    check(model, data_dir, available_bytes)
    model.fit(train_matrix(data_dir))
    return model


def check(
    model: Baseline, data_dir: str, available_bytes: int | None = -1
) -> None:
    """``model.check`` for data_dir's size: fails before any work.

    Raises:
        ValueError: the dataset has no training users.
        MemoryError: the fit would not fit in memory (with the figure).
    """
    from tf_multvae import datadir
    from tf_multvae import features

    info = datadir.load_info(data_dir)
    train = info.metadata["splits"][features.TRAIN]
    if int(train["users"]) < 1:
        raise ValueError(f"{data_dir} has no training users to fit on")
    model.check(info.n_items, int(train["interactions"]), available_bytes)


__all__ = [
    "KINDS",
    "REGISTRY",
    "EASE",
    "Baseline",
    "Popularity",
    "SLIM",
    "WMF",
    "check",
    "fit",
    "make",
    "train_matrix",
]
