"""What Mult-VAE^PR and Mult-DAE share: one build, one training step.

Both models take a batch of users' clicked items as int64
``[batch, max_len]`` item indices padded with -1 and return logits over all
items. ``train_step`` minimizes the paper's per-user objective averaged
over the batch, the negative log-likelihood plus a model's regularizer
term (:meth:`RecommenderModel.regularizer`); ``test_step`` takes
evaluation batches ``{"fold_in": ids, "heldout": ids}`` and tracks
NDCG@100 and Recall@20/50 over the users that have held-out items (§4.2),
so ``fit(validation_data=...)`` logs ``val_ndcg_at_100``. A model built
for the leave-one-out protocol (``protocol``) tracks HR@10 and NDCG@10 of
each held-out item among its ``"candidates"`` instead (``val_ndcg_at_10``).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_multvae import config as cfg
from tf_multvae import features
from tf_multvae import metrics
from tf_multvae import sampled
from tf_multvae.model import layers
from tf_multvae.model import losses

# The order of the trackers is part of saved backups: keep it.
RANKING_METRICS = {
    features.STRONG_GENERALIZATION: (
        metrics.SELECTION_METRIC,
        metrics.metric_name("recall", 20),
        metrics.metric_name("recall", 50),
    ),
    features.LEAVE_ONE_OUT: (
        metrics.SAMPLED_SELECTION_METRIC,
        metrics.metric_name("hr", 10),
    ),
}


def _check_likelihood(likelihood: str) -> str:
    if likelihood not in cfg.LIKELIHOODS:
        raise ValueError(
            f"unknown likelihood {likelihood!r}; expected one of "
            f"{', '.join(cfg.LIKELIHOODS)}"
        )
    return likelihood


def _per_replica(loss: tf.Tensor) -> tf.Tensor:
    """Scale a per-replica batch-mean loss for tf.distribute.

    Gradients are summed over replicas, so each replica's mean is divided
    by the number of replicas (what Keras's own compute_loss does).
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / replicas if replicas > 1 else loss


def stack_eval_batch(batch: dict) -> tf.Tensor:
    """``{"fold_in", "heldout"[, "candidates"]}`` -> int64 ``[batch, 2 or
    3, L]``, -1 padded.

    Keras under MultiWorkerMirroredStrategy reduces a first evaluation
    batch to build the model and cannot reduce a dict; one tensor works.
    """
    keys = [features.FOLD_IN, features.HELDOUT]
    if features.CANDIDATES in batch:
        keys.append(features.CANDIDATES)
    lists = [batch[key] for key in keys]
    width = tf.reduce_max([tf.shape(ids)[1] for ids in lists])

    def pad(ids):
        extra = width - tf.shape(ids)[1]
        return tf.pad(ids, [[0, 0], [0, extra]], constant_values=features.PAD)

    return tf.stack([pad(ids) for ids in lists], axis=1)


def _logs(trackers) -> dict:
    """Tracker results as step logs.

    Under MultiWorkerMirroredStrategy Keras reduces each log with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails on scalars
    (tensorflow/tensorflow#72388); there the logs are shape-[1] tensors.
    """
    logs = {t.name: t.result() for t in trackers}
    strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


class RecommenderModel(keras.Model):
    """What both models share: building, the training step, scoring,
    evaluation and the trackers.

    A subclass gives its encoder class, :meth:`call` (logits first), and
    :meth:`regularizer`, the term added to the negative log-likelihood:
    beta_t * KL for Mult-VAE^PR, lambda * ||W||^2 for Mult-DAE; a model
    with a loss of its own overrides :meth:`per_user_nll` (CDAE).

    Args:
        protocol: the evaluation protocol of the dataset it trains on
            (``features.PROTOCOLS``), which decides what :meth:`test_step`
            computes and tracks.
    """

    def __init__(
        self, protocol: str = features.STRONG_GENERALIZATION, **kwargs
    ):
        super().__init__(**kwargs)
        if protocol not in RANKING_METRICS:
            raise ValueError(
                f"protocol must be one of {features.PROTOCOLS}, not "
                f"{protocol!r}"
            )
        self.protocol = protocol

    def get_config(self):
        return {**super().get_config(), "protocol": self.protocol}

    def _set_shared(
        self,
        encoder_class,
        n_items,
        hidden_dims,
        latent_dim,
        dropout,
        likelihood,
        seed,
    ):
        """The constructor arguments both models take, normalized, and the
        encoder (of ``encoder_class``) and decoder built from them."""
        self.n_items = int(n_items)
        self.hidden_dims = tuple(int(d) for d in hidden_dims)
        self.latent_dim = int(latent_dim)
        self.dropout = float(dropout)
        self.likelihood = _check_likelihood(likelihood)
        self.seed = seed
        self.encoder = encoder_class(
            self.n_items,
            self.hidden_dims,
            self.latent_dim,
            self.dropout,
            seed=seed,
            name="encoder",
        )
        self.decoder = layers.Decoder(
            self.n_items,
            tuple(reversed(self.hidden_dims)),
            seed=None if seed is None else seed + 2000,
            name="decoder",
        )

    def _shared_config(self) -> dict:
        return dict(
            n_items=self.n_items,
            hidden_dims=list(self.hidden_dims),
            latent_dim=self.latent_dim,
            dropout=self.dropout,
            likelihood=self.likelihood,
            seed=self.seed,
        )

    def _init_trackers(self, term: str):
        """``loss``, ``nll`` and the regularizer's ``term``, then the
        ranking metrics of evaluation."""
        self.train_trackers = [
            keras.metrics.Mean(name=name) for name in ("loss", "nll", term)
        ]
        self.ranking_trackers = [
            keras.metrics.Mean(name=name)
            for name in RANKING_METRICS[self.protocol]
        ]

    def build(self, input_shape):
        self.encoder.build(input_shape)
        self.decoder.build((input_shape[0], self.latent_dim))
        self.built = True

    def regularizer(self, outputs) -> tuple[tf.Tensor, tf.Tensor]:
        """The term added to the loss, from :meth:`call`'s other outputs.

        Returns:
            (term, weight): float32 scalars; the loss is nll + weight *
            term, and ``term`` is logged under the third train tracker.
        """
        raise NotImplementedError

    def per_user_nll(self, logits, item_ids) -> tf.Tensor:
        """The data term of each user's objective, float32 ``[batch]``.

        The negative log-likelihood that ``self.likelihood`` names; a model
        with a loss of its own (CDAE's weighted square loss) overrides it.
        """
        return losses.negative_log_likelihood(self.likelihood, logits, item_ids)

    def train_step(self, data):
        """One update on the batch mean of the per-user objective.

        ``data`` is padded item ids, or a dict of them (``"items"``) and
        what else a model's :meth:`call` reads (CDAE: the users' index).
        """
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        item_ids = x[features.ITEMS] if isinstance(x, dict) else x
        with tf.GradientTape() as tape:
            logits, *outputs = self._training_outputs(x)
            nll = tf.reduce_mean(self.per_user_nll(logits, item_ids))
            term, weight = self.regularizer(outputs)
            loss = nll + weight * term
            scaled = self.optimizer.scale_loss(_per_replica(loss))
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        users = tf.cast(tf.shape(item_ids)[0], tf.float32)
        for tracker, value in zip(self.train_trackers, (loss, nll, term)):
            tracker.update_state(value, sample_weight=users)
        return _logs(self.train_trackers)

    def _training_outputs(self, item_ids) -> tuple:
        """:meth:`call` in training mode, as a tuple (logits first)."""
        outputs = self(item_ids, training=True)
        return outputs if isinstance(outputs, tuple) else (outputs,)

    def score(self, item_ids: tf.Tensor) -> tf.Tensor:
        """Scores of every item for users given by their items.

        Args:
            item_ids: int64 ``[batch, max_len]`` fold-in item indices padded
                with -1.

        Returns:
            float32 ``[batch, n_items]`` logits (z = mu for the VAE, no
            dropout). Fold-in items are not masked here.
        """
        raise NotImplementedError

    def predict_step(self, data):
        """``predict`` gives :meth:`score` of padded ids or of eval dicts."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, dict):
            x = x[features.FOLD_IN]
        return self.score(x)

    def test_step(self, data):
        """Ranking metrics of one evaluation batch (§4.2, or NCF's).

        Args:
            data: ``{"fold_in": int64 [batch, L1], "heldout": int64
                [batch, L2]}``, both padded with -1 (under leave-one-out
                also ``"candidates"``), or the lists stacked as int64
                ``[batch, 2 or 3, L]`` (see :func:`stack_eval_batch`).

        Returns:
            ``{"ndcg_at_100", "recall_at_20", "recall_at_50"}`` (under
            leave-one-out ``{"ndcg_at_10", "hr_at_10"}``): running means
            over the users that are scored.
        """
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, dict):
            fold_in, heldout = x[features.FOLD_IN], x[features.HELDOUT]
            candidates = x.get(features.CANDIDATES)
        else:
            fold_in, heldout = x[:, 0], x[:, 1]
            candidates = x[:, 2] if x.shape[1] == 3 else None
        scores = self.score(fold_in)  # [batch, n_items]
        if self.protocol == features.LEAVE_ONE_OUT:
            if candidates is None:
                raise ValueError(
                    "a leave-one-out model evaluates batches with candidates"
                )
            per_user = sampled.sampled_metrics(scores, candidates, heldout)
            scored = sampled.has_candidates(candidates, heldout)
        else:
            per_user = metrics.ranking_metrics(scores, fold_in, heldout)
            scored = metrics.has_heldout(heldout)
        weight = tf.cast(scored, tf.float32)  # [batch]
        for tracker in self.ranking_trackers:
            tracker.update_state(per_user[tracker.name], sample_weight=weight)
        return _logs(self.ranking_trackers)

    @property
    def metrics(self):
        return list(self.train_trackers) + list(self.ranking_trackers)
