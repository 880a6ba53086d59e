"""Mult-VAE^PR and Mult-DAE as Keras models (Liang et al., WWW 2018, §2).

What both share (building, the training step, scoring, evaluation) is in
``tf_multvae.model.recommender``; each model here adds its encoder, its
forward pass and its regularizer term.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from tf_multvae import config as cfg
from tf_multvae.model import encoders
from tf_multvae.model import layers
from tf_multvae.model import losses
from tf_multvae.model.annealing import kl_beta
from tf_multvae.model.cdae import CDAE
from tf_multvae.model.optimizers import FusedAdam
from tf_multvae.model.recommender import RecommenderModel


@keras.saving.register_keras_serializable(package=layers.PACKAGE)
class MultVAE(RecommenderModel):
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
            encoders.Encoder,
            n_items,
            hidden_dims,
            latent_dim,
            dropout,
            likelihood,
            seed,
        )
        self.anneal_cap = float(anneal_cap)
        self.total_anneal_steps = int(total_anneal_steps)
        self.sampling = layers.Sampling(
            seed=None if seed is None else seed + 1000, name="sampling"
        )
        self._init_trackers("kl")
        # beta is a schedule, not a batch statistic: it reports beta_t of
        # the latest step (reset before each update).
        self.beta_tracker = keras.metrics.Mean(name="beta")
        self.train_trackers.append(self.beta_tracker)

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

    def latent(self, item_ids):
        """The decoder's input at prediction: mu of q(z | x), float32
        ``[batch, latent_dim]`` (``score`` is ``decoder(latent(...))``)."""
        mu, _ = self.encoder(item_ids, training=False)
        return mu

    def regularizer(self, outputs):
        """(KL(q(z|x) || N(0, I)) averaged over users, beta_t), §2.2.2.

        beta_t is read before this step's update, from the optimizer's
        update count t.
        """
        mu, logvar = outputs
        beta = kl_beta(
            self.optimizer.iterations, self.anneal_cap, self.total_anneal_steps
        )
        self.beta_tracker.reset_state()
        self.beta_tracker.update_state(beta)
        return tf.reduce_mean(losses.gaussian_kl(mu, logvar)), beta

    def get_config(self):
        config = super().get_config()
        config.update(
            self._shared_config(),
            anneal_cap=self.anneal_cap,
            total_anneal_steps=self.total_anneal_steps,
        )
        return config


@keras.saving.register_keras_serializable(package=layers.PACKAGE)
class MultDAE(RecommenderModel):
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
            encoders.DenoisingEncoder,
            n_items,
            hidden_dims,
            latent_dim,
            dropout,
            likelihood,
            seed,
        )
        self.weight_decay = float(weight_decay)
        # "l2" is the term added to the loss: weight_decay * sum of w^2.
        self._init_trackers("l2")

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

    def latent(self, item_ids):
        """The decoder's input at prediction: the code, no dropout
        (``score`` is ``decoder(latent(...))``)."""
        return self.encoder(item_ids, training=False)

    def regularizer(self, outputs):
        """(lambda * sum of squared kernel entries, 1): weight decay, §2.3."""
        l2 = self.weight_decay * losses.l2_penalty(self.kernels)
        return l2, tf.constant(1.0)

    def get_config(self):
        config = super().get_config()
        config.update(self._shared_config(), weight_decay=self.weight_decay)
        return config


def build_model(kind: str, n_items: int, **hparams) -> keras.Model:
    """A built (weights created), uncompiled Mult-VAE^PR, Mult-DAE or CDAE.

    Args:
        kind: "vae", "dae" or "cdae".
        n_items: I.
        **hparams: constructor arguments of :class:`MultVAE`,
            :class:`MultDAE` or :class:`~tf_multvae.model.cdae.CDAE`
            (which needs ``n_users``).

    Raises:
        ValueError: unknown ``kind``.
    """
    classes = {"vae": MultVAE, "dae": MultDAE, "cdae": CDAE}
    if kind not in classes:
        raise ValueError(
            f"unknown model kind {kind!r}; expected one of {cfg.MODELS}"
        )
    model = classes[kind](n_items, **hparams)
    model.build((None, None))
    return model


def compile_model(
    model: keras.Model, learning_rate: float = 1e-3, jit_compile=False
) -> None:
    """Compile with the paper's optimizer: Adam, epsilon 1e-8 (§4.3).

    The update is Keras's Adam, run as TensorFlow's fused kernel
    (:class:`tf_multvae.model.optimizers.FusedAdam`). ``jit_compile``:
    Keras's XLA switch (False: the training steps run as TensorFlow
    graphs; the speed benchmark measures True on a GPU).
    """
    model.compile(
        optimizer=FusedAdam(learning_rate=learning_rate, epsilon=1e-8),
        jit_compile=jit_compile,
    )
