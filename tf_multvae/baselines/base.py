"""The one interface of the baselines, and the clicks they are fitted on.

A baseline is fitted on the training users' clicks only and scores a
held-out user from that user's fold-in items alone, under the same
protocol and metric code as the two models (docs/design.md, "The paper's
protocol"). :class:`Baseline` is what popularity and EASE implement, and
what the paper's Table 2 baselines implement too.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np
import tensorflow as tf

from tf_multvae import data
from tf_multvae import datadir
from tf_multvae import features


class Baseline(abc.ABC):
    """Fit on X (training users × items), score users by their fold-in.

    Subclasses set :attr:`kind` (config.json's ``["model"]["kind"]``) and
    take their hyperparameters as keyword arguments, which
    :attr:`config` records.
    """

    kind: ClassVar[str]
    # hyperparameter -> (flag of python -m tf_multvae.baselines, type,
    # help); the defaults are the constructor's.
    flags: ClassVar[dict[str, tuple[str, type, str]]] = {}

    def __init__(self, **hyperparameters):
        self.hyperparameters = hyperparameters

    @property
    def config(self) -> dict:
        """``{"kind": ..., **hyperparameters}``, config.json's "model"."""
        return {"kind": self.kind, **self.hyperparameters}

    def check(
        self, n_items: int, n_clicks: int, available_bytes: int | None = -1
    ) -> None:
        """Fails before any work if fitting would not fit the machine.

        Args:
            n_items: I.
            n_clicks: the training clicks (non-zeros of X).
            available_bytes: the memory budget; -1: what the machine has
                now; None: do not check.

        Raises:
            MemoryError: the fit needs more; the message gives the figure.
        """

    @abc.abstractmethod
    def fit(self, x: tf.SparseTensor) -> None:
        """Fits on float32 ``[n_train_users, n_items]`` binary clicks."""

    @abc.abstractmethod
    def score(self, item_ids: tf.Tensor) -> tf.Tensor:
        """float32 ``[batch, n_items]`` scores (unmasked) of users given
        by int64 ``[batch, max_len]`` fold-in item indices, -1 padded."""

    def report(self) -> dict:
        """What the fit adds to metrics.json (e.g. a solve's residual)."""
        return {}


def train_matrix(data_dir: str) -> tf.SparseTensor:
    """The training users' clicks X, read with ``data.train_dataset``.

    Returns:
        float32 ``tf.SparseTensor`` ``[n_train_users, n_items]``, 1 at each
        click, in canonical (row-major) order.
    """
    n_items = datadir.load_info(data_dir).n_items
    rows, columns, offset = [], [], 0
    for batch in data.train_dataset(data_dir, 4096, seed=0, shuffle=False):
        ids = batch.numpy()  # [batch, max_len], -1 padded, sorted rows
        r, c = np.nonzero(ids != features.PAD)
        rows.append(r + offset)
        columns.append(ids[r, c])
        offset += ids.shape[0]
    indices = np.stack(
        [np.concatenate(rows), np.concatenate(columns)], axis=1
    ).astype(np.int64)  # [n_clicks, 2]
    return tf.SparseTensor(
        indices, tf.ones([len(indices)], tf.float32), [offset, n_items]
    )
