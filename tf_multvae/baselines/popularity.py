"""Popularity: every user gets the items ranked by their training users."""

from __future__ import annotations

import tensorflow as tf

from tf_multvae.baselines.base import Baseline


class Popularity(Baseline):
    """Scores each item by the number of training users who clicked it."""

    kind = "popularity"

    def fit(self, x: tf.SparseTensor) -> None:
        self.counts = tf.sparse.reduce_sum(x, axis=0)  # float32 [n_items]

    def score(self, item_ids: tf.Tensor) -> tf.Tensor:
        """float32 ``[batch, n_items]``: the counts, for each user."""
        batch = tf.shape(item_ids)[0]
        return tf.broadcast_to(self.counts[None, :], [batch, len(self.counts)])
