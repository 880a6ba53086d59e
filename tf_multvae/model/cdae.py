"""CDAE (Wu et al., WSDM 2016) as the paper's Table 2 baseline.

A Mult-DAE-shaped network I -> 200 -> I with a per-user vector V_u added
at the bottleneck, tanh on both layers:

    h_u = tanh(W x~_u + b + V_u),  f_u = tanh(W' h_u + b')

x~_u is the DAE's input: the L2-normalized clicks with input dropout
(:class:`~tf_multvae.model.layers.SparseInputDense`, the paper's
initializers). V is ``n_users x latent_dim``, one row per training user,
looked up by the user's index in the training batches
(``tf_multvae.data.train_dataset(with_user_index=True)``); it starts at 0.

Each user's objective is the weighted square loss plus weight decay on the
user's vector, sum_i c_ui (x_ui - f_ui)^2 + lambda ||V_u||^2 with c_ui = 1
on clicks and ``negative_weight`` elsewhere
(:func:`~tf_multvae.model.losses.weighted_square_loss`); a batch's loss is
its mean over the batch's users plus lambda * (sum of squared kernel
entries), the DAE's weight decay. The penalty on V is the batch mean of
||V_u||^2 rather than its sum, so that each user's objective, and with it
a held-out user's fold-in below, does not depend on the batch size. Adam
updates V as a whole (its moments carry a row on after its user's batch).

A held-out user has no trained V_u. ``heldout="fit"`` fits V_u to the
fold-in items with every other weight fixed: ``fold_in_steps`` gradient
steps on that user's objective (no dropout) from V_u = 0, each of size
1 / L_u, with L_u = 2 (c_neg lambda_max(W' W'^T) + (1 - c_neg) sum over
the user's clicked items i of ||W'_i||^2 + lambda), a bound on the
Gauss-Newton curvature of the objective in V_u (tanh' <= 1, c_ui <= 1),
so no step size needs tuning. The gradient is written out in plain
TensorFlow ops (it runs in ``score``, inside tf.function, ``test_step``
and a SavedModel alike). ``heldout="zero"`` scores with V_u = 0.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_multvae import features
from tf_multvae.data import USER_INDEX
from tf_multvae.model import layers
from tf_multvae.model import losses
from tf_multvae.model.recommender import RecommenderModel

HELDOUT = ("fit", "zero")


@keras.saving.register_keras_serializable(package=layers.PACKAGE)
class CDAE(RecommenderModel):
    """CDAE: I -> 200 (tanh, plus V_u) -> I (tanh), weighted square loss.

    Args:
        n_items: I, the number of items.
        n_users: training users (rows of V).
        latent_dim: size of the bottleneck (200).
        dropout: input dropout rate (training only).
        negative_weight: c_ui of an unclicked item (1 on clicks).
        weight_decay: lambda, on the kernels and on the batch's ||V_u||^2.
        heldout: "fit" or "zero": a held-out user's V_u (module docstring).
        fold_in_steps: gradient steps of the "fit" fold-in.
        seed: seed of the initializers and the dropout noise.
    """

    def __init__(
        self,
        n_items: int,
        n_users: int,
        latent_dim: int = 200,
        dropout: float = 0.5,
        negative_weight: float = 0.1,
        weight_decay: float = 0.01 / 500,
        heldout: str = "fit",
        fold_in_steps: int = 10,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if heldout not in HELDOUT:
            raise ValueError(
                f"heldout must be one of {HELDOUT}, not {heldout!r}"
            )
        if int(fold_in_steps) < 0 or int(n_users) < 1:
            raise ValueError("fold_in_steps must be >= 0 and n_users >= 1")
        self.n_items = int(n_items)
        self.n_users = int(n_users)
        self.hidden_dims = ()
        self.latent_dim = int(latent_dim)
        self.dropout = float(dropout)
        self.likelihood = "gaussian"  # with confidences: the square loss
        self.negative_weight = float(negative_weight)
        self.weight_decay = float(weight_decay)
        self.heldout = heldout
        self.fold_in_steps = int(fold_in_steps)
        self.seed = seed
        # W x~ + b, linear: V_u is added before the tanh.
        self.encoder = layers.SparseInputDense(
            self.n_items,
            self.latent_dim,
            dropout=self.dropout,
            seed=seed,
            name="encoder",
        )
        self.decoder = layers.Decoder(
            self.n_items,
            (),
            seed=None if seed is None else seed + 2000,
            name="decoder",
        )
        self._init_trackers("l2")

    def build(self, input_shape):
        super().build(input_shape)
        self.user_factors = self.add_weight(
            name="user_factors",
            shape=(self.n_users, self.latent_dim),
            initializer="zeros",
        )  # V: [n_users, latent_dim]

    @property
    def kernels(self) -> list:
        """W and W', the matrices weight decay penalizes (no biases)."""
        return [self.encoder.kernel] + self.decoder.kernels

    def _outputs(self, item_ids, v, training):
        """W' h_u + b' (f_u before its tanh), float32 ``[batch, n_items]``."""
        pre = self.encoder(item_ids, training=training)  # [batch, latent]
        h = tf.tanh(pre + tf.cast(v, pre.dtype))
        return tf.cast(self.decoder(h), tf.float32)  # W' h + b'

    def call(self, inputs, training=False):
        """Outputs f_u and the users' V_u.

        Args:
            inputs: ``{"items": int64 [batch, max_len] padded ids, "user":
                int64 [batch] training-user indices}``; or padded ids
                alone, scored with V_u = 0 (not in training).
            training: input dropout when True.

        Returns:
            (f, v): float32 ``[batch, n_items]`` tanh outputs and float32
            ``[batch, latent_dim]`` V_u.
        """
        if isinstance(inputs, dict):
            item_ids = inputs[features.ITEMS]
            v = tf.gather(self.user_factors, inputs[USER_INDEX])
        elif training:
            raise ValueError(
                "CDAE trains on {'items', 'user'} batches "
                "(tf_multvae.data.train_dataset(with_user_index=True))"
            )
        else:
            item_ids = inputs
            v = tf.zeros([tf.shape(inputs)[0], self.latent_dim])
        logits = self._outputs(item_ids, v, training)
        return tf.tanh(logits), tf.cast(v, tf.float32)

    def per_user_nll(self, logits, item_ids):
        """The weighted square loss of each user (``logits`` is f_u)."""
        return losses.weighted_square_loss(
            logits, item_ids, self.negative_weight
        )

    def regularizer(self, outputs):
        """(lambda (||W||^2 + ||W'||^2 + batch mean of ||V_u||^2), 1)."""
        (v,) = outputs
        v_penalty = tf.reduce_mean(tf.reduce_sum(tf.square(v), axis=-1))
        l2 = self.weight_decay * (losses.l2_penalty(self.kernels) + v_penalty)
        return l2, tf.constant(1.0)

    def fold_in_loss(self, item_ids, v) -> tf.Tensor:
        """Each held-out user's objective at V_u = ``v`` (no dropout).

        Returns:
            float32 ``[batch]``: weighted square loss + lambda ||V_u||^2.
        """
        f = tf.tanh(self._outputs(item_ids, v, False))
        loss = losses.weighted_square_loss(f, item_ids, self.negative_weight)
        return loss + self.weight_decay * tf.reduce_sum(tf.square(v), -1)

    def user_vectors(self, item_ids) -> tf.Tensor:
        """V_u of held-out users given by their fold-in items.

        ``heldout="zero"``: 0. ``"fit"``: ``fold_in_steps`` gradient steps
        of size 1 / L_u from 0 (module docstring), W, b, W', b' fixed.

        Returns:
            float32 ``[batch, latent_dim]``.
        """
        item_ids = tf.convert_to_tensor(item_ids)
        pre = tf.cast(self.encoder(item_ids, training=False), tf.float32)
        v = tf.zeros_like(pre)  # [batch, latent]
        if self.heldout == "zero" or self.fold_in_steps == 0:
            return v
        dense = self.decoder.dense_layers[-1]
        kernel = tf.cast(tf.convert_to_tensor(dense.kernel), tf.float32)
        bias = tf.cast(tf.convert_to_tensor(dense.bias), tf.float32)
        x = losses.click_matrix(item_ids, self.n_items)  # [batch, n_items]
        c_neg, lam = self.negative_weight, self.weight_decay
        confidence = c_neg + (1.0 - c_neg) * x
        # L_u: W' C_u W'^T <= c_neg W' W'^T + (1 - c_neg) sum of clicked
        # columns' w w^T, whose largest eigenvalue is at most its trace.
        top = tf.reduce_max(
            tf.linalg.eigvalsh(tf.matmul(kernel, kernel, transpose_b=True))
        )
        clicked = tf.linalg.matvec(x, tf.reduce_sum(tf.square(kernel), 0))
        curvature = c_neg * top + (1.0 - c_neg) * clicked + lam  # L_u / 2
        step = 0.5 / tf.maximum(curvature, 1e-12)  # [batch]; 0: no gradient

        def body(k, v):
            h = tf.tanh(pre + v)
            f = tf.tanh(tf.matmul(h, kernel) + bias)  # [batch, n_items]
            d_logits = 2.0 * confidence * (f - x) * (1.0 - tf.square(f))
            d_h = tf.matmul(d_logits, kernel, transpose_b=True)
            grad = d_h * (1.0 - tf.square(h)) + 2.0 * lam * v
            return k + 1, v - step[:, None] * grad

        _, v = tf.while_loop(
            lambda k, v: k < self.fold_in_steps, body, (tf.constant(0), v)
        )
        return v

    def score(self, item_ids):
        """W' h_u + b' with h_u = tanh(W x_u + b + V_u) and V_u fitted or
        0 (``heldout``): f_u before its tanh, the same ranking without the
        ties of a saturated tanh. float32 ``[batch, n_items]``."""
        v = self.user_vectors(item_ids)
        return self._outputs(item_ids, v, False)

    def get_config(self):
        config = super().get_config()
        config.update(
            n_items=self.n_items,
            n_users=self.n_users,
            latent_dim=self.latent_dim,
            dropout=self.dropout,
            negative_weight=self.negative_weight,
            weight_decay=self.weight_decay,
            heldout=self.heldout,
            fold_in_steps=self.fold_in_steps,
            seed=self.seed,
        )
        return config
