"""Mult-VAE^PR and Mult-DAE as Keras models (Liang et al., WWW 2018, §2).

Both models take a batch of users' clicked items as int64
``[batch, max_len]`` item indices padded with -1 and return logits over all
items. ``train_step`` minimizes the paper's per-user objective averaged
over the batch; ``test_step`` takes evaluation batches
``{"fold_in": ids, "heldout": ids}`` and tracks NDCG@100 and Recall@20/50
over the users that have held-out items (§4.2), so ``fit(validation_data=
...)`` logs ``val_ndcg_at_100``.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from tf_multvae import features
from tf_multvae import layers
from tf_multvae import losses
from tf_multvae import metrics
from tf_multvae.annealing import kl_beta
from tf_multvae.optimizers import FusedAdam

_PACKAGE = "tf_multvae"
RANKING_METRICS = ("ndcg_at_100", "recall_at_20", "recall_at_50")
KINDS = ("vae", "dae")


def _check_likelihood(likelihood: str) -> str:
    if likelihood not in losses.LIKELIHOODS:
        raise ValueError(
            f"unknown likelihood {likelihood!r}; expected one of "
            f"{', '.join(losses.LIKELIHOODS)}"
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
    """``{"fold_in", "heldout"}`` -> int64 ``[batch, 2, L]``, -1 padded.

    Keras under MultiWorkerMirroredStrategy reduces a first evaluation
    batch to build the model and cannot reduce a dict; one tensor works.
    """
    fold_in, heldout = batch[features.FOLD_IN], batch[features.HELDOUT]
    width = tf.maximum(tf.shape(fold_in)[1], tf.shape(heldout)[1])

    def pad(ids):
        extra = width - tf.shape(ids)[1]
        return tf.pad(ids, [[0, 0], [0, extra]], constant_values=features.PAD)

    return tf.stack([pad(fold_in), pad(heldout)], axis=1)


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


class _RecommenderModel(keras.Model):
    """What both models share: scoring, evaluation and the trackers."""

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

    def _init_ranking_trackers(self):
        self.ranking_trackers = [
            keras.metrics.Mean(name=name) for name in RANKING_METRICS
        ]

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
        """Ranking metrics of one evaluation batch (§4.2).

        Args:
            data: ``{"fold_in": int64 [batch, L1], "heldout": int64
                [batch, L2]}``, both padded with -1, or the two stacked
                as int64 ``[batch, 2, L]`` (see :func:`stack_eval_batch`).

        Returns:
            ``{"ndcg_at_100", "recall_at_20", "recall_at_50"}``: running
            means over the users with held-out items.
        """
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, dict):
            fold_in, heldout = x[features.FOLD_IN], x[features.HELDOUT]
        else:
            fold_in, heldout = x[:, 0], x[:, 1]
        scores = self.score(fold_in)  # [batch, n_items]
        per_user = metrics.ranking_metrics(scores, fold_in, heldout)
        weight = tf.cast(metrics.has_heldout(heldout), tf.float32)  # [batch]
        for tracker in self.ranking_trackers:
            tracker.update_state(per_user[tracker.name], sample_weight=weight)
        return _logs(self.ranking_trackers)

    def _train_results(self) -> dict:
        return _logs(self.train_trackers)

    @property
    def metrics(self):
        return list(self.train_trackers) + list(self.ranking_trackers)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MultVAE(_RecommenderModel):
    """Mult-VAE^PR: I -> 600 -> (mu, log sigma^2) of 200 -> z -> 600 -> I.

    Trained on the beta-weighted ELBO of §2.2.2, per user
    -log p(x_u | z_u) + beta_t * KL(q(z_u | x_u) || N(0, I)), averaged over
    the batch, with beta_t = min(anneal_cap, t / total_anneal_steps) and t
    the optimizer's update count (so beta continues across fit() calls and
    resumes).

    Args:
        n_items: I, the number of items.
        hidden_dims: encoder hidden sizes (the decoder mirrors them).
        latent_dim: size of z.
        dropout: input dropout rate (training only).
        likelihood: "multinomial" (the paper's), "gaussian" or "logistic".
        anneal_cap: beta_cap.
        total_anneal_steps: updates over which beta would reach 1.
        seed: seed of the initializers and the dropout and sampling noise
            (None: drawn from Keras's global seed).
    """

    def __init__(
        self,
        n_items: int,
        hidden_dims: Sequence[int] = (600,),
        latent_dim: int = 200,
        dropout: float = 0.5,
        likelihood: str = "multinomial",
        anneal_cap: float = 0.2,
        total_anneal_steps: int = 200_000,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._set_shared(
            layers.Encoder,
            n_items, hidden_dims, latent_dim, dropout, likelihood, seed,
        )
        self.anneal_cap = float(anneal_cap)
        self.total_anneal_steps = int(total_anneal_steps)
        self.sampling = layers.Sampling(
            seed=None if seed is None else seed + 1000, name="sampling"
        )
        self.train_trackers = [
            keras.metrics.Mean(name=name) for name in ("loss", "nll", "kl")
        ]
        # beta is a schedule, not a batch statistic: it reports beta_t of
        # the latest step (reset before each update).
        self.beta_tracker = keras.metrics.Mean(name="beta")
        self.train_trackers.append(self.beta_tracker)
        self._init_ranking_trackers()

    def build(self, input_shape):
        self.encoder.build(input_shape)
        self.decoder.build((input_shape[0], self.latent_dim))
        self.built = True

    def call(self, item_ids, training=False):
        """Logits and the posterior of a batch of users.

        Args:
            item_ids: int64 ``[batch, max_len]`` item indices padded with -1.
            training: dropout and sampling when True; z = mu otherwise.

        Returns:
            (logits, mu, logvar): float32 ``[batch, n_items]``,
            ``[batch, latent_dim]`` and ``[batch, latent_dim]``.
        """
        mu, logvar = self.encoder(item_ids, training=training)
        z = self.sampling((mu, logvar), training=training)
        logits = tf.cast(self.decoder(z), tf.float32)  # [batch, n_items]
        return logits, mu, logvar

    def score(self, item_ids):
        logits, _, _ = self(item_ids, training=False)
        return logits

    def train_step(self, data):
        item_ids, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        beta = kl_beta(
            self.optimizer.iterations, self.anneal_cap, self.total_anneal_steps
        )
        with tf.GradientTape() as tape:
            logits, mu, logvar = self(item_ids, training=True)
            nll = tf.reduce_mean(
                losses.negative_log_likelihood(
                    self.likelihood, logits, item_ids
                )
            )
            kl = tf.reduce_mean(losses.gaussian_kl(mu, logvar))
            loss = nll + beta * kl
            scaled = self.optimizer.scale_loss(_per_replica(loss))
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        users = tf.cast(tf.shape(item_ids)[0], tf.float32)
        for tracker, value in zip(self.train_trackers, (loss, nll, kl)):
            tracker.update_state(value, sample_weight=users)
        self.beta_tracker.reset_state()
        self.beta_tracker.update_state(beta)
        return self._train_results()

    def get_config(self):
        config = super().get_config()
        config.update(
            self._shared_config(),
            anneal_cap=self.anneal_cap,
            total_anneal_steps=self.total_anneal_steps,
        )
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MultDAE(_RecommenderModel):
    """Mult-DAE: I -> 200 (tanh) -> I, with input dropout (§2.3).

    Trained on -log p(x_u | x~_u) averaged over the batch plus
    weight_decay * (sum of squared kernel entries, no biases), the
    authors' l2 regularization (their 2 * lam * l2_loss, lam = 0.01 / 500).

    Args:
        n_items: I, the number of items.
        hidden_dims: encoder hidden sizes between I and latent_dim (the
            decoder mirrors them); the paper's DAE has none.
        latent_dim: size of the code.
        dropout: input dropout rate (training only).
        likelihood: "multinomial" (the paper's), "gaussian" or "logistic".
        weight_decay: lambda.
        seed: seed of the initializers and the dropout noise.
    """

    def __init__(
        self,
        n_items: int,
        hidden_dims: Sequence[int] = (),
        latent_dim: int = 200,
        dropout: float = 0.5,
        likelihood: str = "multinomial",
        weight_decay: float = 0.01 / 500,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._set_shared(
            layers.DenoisingEncoder,
            n_items, hidden_dims, latent_dim, dropout, likelihood, seed,
        )
        self.weight_decay = float(weight_decay)
        # "l2" is the term added to the loss: weight_decay * sum of w^2.
        self.train_trackers = [
            keras.metrics.Mean(name=name) for name in ("loss", "nll", "l2")
        ]
        self._init_ranking_trackers()

    def build(self, input_shape):
        self.encoder.build(input_shape)
        self.decoder.build((input_shape[0], self.latent_dim))
        self.built = True

    @property
    def kernels(self) -> list:
        """The weight matrices that weight decay penalizes (no biases)."""
        return self.encoder.kernels + self.decoder.kernels

    def call(self, item_ids, training=False):
        """Logits of a batch of users.

        Args:
            item_ids: int64 ``[batch, max_len]`` item indices padded with -1.
            training: input dropout when True.

        Returns:
            float32 ``[batch, n_items]`` logits.
        """
        code = self.encoder(item_ids, training=training)
        return tf.cast(self.decoder(code), tf.float32)  # [batch, n_items]

    def score(self, item_ids):
        return self(item_ids, training=False)

    def train_step(self, data):
        item_ids, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            logits = self(item_ids, training=True)
            nll = tf.reduce_mean(
                losses.negative_log_likelihood(
                    self.likelihood, logits, item_ids
                )
            )
            l2 = self.weight_decay * losses.l2_penalty(self.kernels)
            loss = nll + l2
            scaled = self.optimizer.scale_loss(_per_replica(loss))
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        users = tf.cast(tf.shape(item_ids)[0], tf.float32)
        for tracker, value in zip(self.train_trackers, (loss, nll, l2)):
            tracker.update_state(value, sample_weight=users)
        return self._train_results()

    def get_config(self):
        config = super().get_config()
        config.update(self._shared_config(), weight_decay=self.weight_decay)
        return config


def build_model(kind: str, n_items: int, **hparams) -> keras.Model:
    """A built (weights created), uncompiled Mult-VAE^PR or Mult-DAE.

    Args:
        kind: "vae" or "dae".
        n_items: I.
        **hparams: constructor arguments of :class:`MultVAE` or
            :class:`MultDAE`.

    Raises:
        ValueError: unknown ``kind``.
    """
    classes = {"vae": MultVAE, "dae": MultDAE}
    if kind not in classes:
        raise ValueError(f"unknown model kind {kind!r}; expected vae or dae")
    model = classes[kind](n_items, **hparams)
    model.build((None, None))
    return model


def compile_model(model: keras.Model, learning_rate: float = 1e-3) -> None:
    """Compile with the paper's optimizer: Adam, epsilon 1e-8 (§4.3).

    The update is Keras's Adam, run as TensorFlow's fused kernel
    (:class:`tf_multvae.optimizers.FusedAdam`).
    """
    model.compile(optimizer=FusedAdam(learning_rate=learning_rate, epsilon=1e-8))
